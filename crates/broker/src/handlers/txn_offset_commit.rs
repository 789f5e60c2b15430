//! TxnOffsetCommit (key 28), versions 0–5: offsets committed as part of a
//! transaction (consume-transform-produce). They are validated like
//! OffsetCommit (generation and member from v3), written to
//! `__consumer_offsets` as the producer's transactional records, and become
//! the group's committed offsets only when the transaction commits.

use gregor_coordinator::{CommitRequest, OffsetToCommit};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::{code, Ctx, Outcome};
use crate::transactions::fenced_code;

pub fn handle(ctx: &Ctx, req: TxnOffsetCommitRequest) -> Outcome<TxnOffsetCommitResponse> {
    let b = &ctx.broker;
    let offsets: Vec<OffsetToCommit> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| OffsetToCommit {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let commit = CommitRequest {
        group_id: req.group_id.0.to_string(),
        generation_id: if ctx.version >= 3 {
            req.generation_id
        } else {
            -1
        },
        member_id: if ctx.version >= 3 {
            req.member_id.to_string()
        } else {
            String::new()
        },
        group_instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
        offsets,
    };
    let now = b.clock.now_ms();
    let (records, mut errors) = b.groups.read(|c| c.transactional_commit(now, commit));
    if errors.contains(&code::NONE) {
        if let Err(e) = b.txns.commit_offsets(
            b,
            &req.transactional_id.0,
            req.producer_id.0,
            req.producer_epoch,
            records,
        ) {
            let e = fenced_code(e, ctx.version >= 2);
            errors
                .iter_mut()
                .filter(|x| **x == code::NONE)
                .for_each(|x| *x = e);
        }
    }
    let mut errors = errors.into_iter();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(errors.next().unwrap_or(code::NONE))
                        })
                        .collect(),
                )
        })
        .collect();
    Outcome::Now(TxnOffsetCommitResponse::default().with_topics(topics))
}
