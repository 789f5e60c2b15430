//! CreatePartitions (key 37): grow a topic's partition count.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::{code, s, topic_error, Ctx, Outcome};

pub fn handle(ctx: &Ctx, req: CreatePartitionsRequest) -> Outcome<CreatePartitionsResponse> {
    let b = &ctx.broker;
    let node = b.config().node_id;
    let results = req
        .topics
        .into_iter()
        .map(|t| {
            let r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            if let Some(a) = &t.assignments {
                if a.iter()
                    .any(|a| a.broker_ids.len() != 1 || a.broker_ids[0].0 != node)
                {
                    return r
                        .with_error_code(code::INVALID_REPLICA_ASSIGNMENT)
                        .with_error_message(Some(s(format!(
                            "Replica assignments may only name broker {node}, once."
                        ))));
                }
            }
            match b.create_partitions(&t.name.0, t.count, req.validate_only) {
                Ok(()) => r,
                Err(e) => {
                    let (c, m) = topic_error(&e);
                    r.with_error_code(c).with_error_message(Some(s(m)))
                }
            }
        })
        .collect();
    Outcome::Now(CreatePartitionsResponse::default().with_results(results))
}
