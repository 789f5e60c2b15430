//! OffsetCommit (key 8): durable in `__consumer_offsets` before the reply.

use gregor_coordinator::{CommitRequest, OffsetToCommit};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::{code, Ctx, Outcome};

pub fn handle(ctx: &Ctx, req: OffsetCommitRequest) -> Outcome<OffsetCommitResponse> {
    let offsets: Vec<OffsetToCommit> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| OffsetToCommit {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if ctx.version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let n = offsets.len();
    let cr = CommitRequest {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id_or_member_epoch,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|x| x.to_string()),
        offsets,
    };
    let errors = ctx
        .broker
        .groups
        .run(&ctx.broker, |c, now| c.commit(now, cr))
        .unwrap_or_else(|_| vec![code::COORDINATOR_NOT_AVAILABLE; n]);
    let mut errs = errors.into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(errs.next().unwrap_or(0))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    Outcome::Now(OffsetCommitResponse::default().with_topics(topics))
}
