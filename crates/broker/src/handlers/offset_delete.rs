//! OffsetDelete (key 47): remove committed offsets of topics the group does
//! not subscribe to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::{code, Ctx, Outcome};

pub fn handle(ctx: &Ctx, req: OffsetDeleteRequest) -> Outcome<OffsetDeleteResponse> {
    let parts: Vec<(String, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    let (group_error, errors) = match ctx.broker.groups.run(&ctx.broker, |c, _| {
        let (fx, ge, errs) = c.delete_offsets(&req.group_id.0, &parts);
        (fx, (ge, errs))
    }) {
        Ok(x) => x,
        Err(_) => (code::COORDINATOR_NOT_AVAILABLE, Vec::new()),
    };
    if group_error != code::NONE {
        return Outcome::Now(OffsetDeleteResponse::default().with_error_code(group_error));
    }
    let mut errs = errors.into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(errs.next().unwrap_or(0))
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    Outcome::Now(OffsetDeleteResponse::default().with_topics(topics))
}
