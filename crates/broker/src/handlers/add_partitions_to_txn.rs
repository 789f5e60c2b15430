//! AddPartitionsToTxn (key 24), versions 0–3 (the client form; 4+ is
//! broker-to-broker): the partitions join the producer's transaction. Every
//! partition must exist; otherwise the missing ones get
//! UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED, and
//! nothing is added.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use super::{code, Ctx, Outcome};
use crate::transactions::fenced_code;

const OPERATION_NOT_ATTEMPTED: i16 = 55;

pub fn handle(ctx: &Ctx, req: AddPartitionsToTxnRequest) -> Outcome<AddPartitionsToTxnResponse> {
    let b = &ctx.broker;
    let mut wanted = Vec::new();
    let mut missing = false;
    for t in &req.v3_and_below_topics {
        for p in &t.partitions {
            let exists = !crate::groups::is_internal(&t.name.0)
                && b.topic(&t.name.0)
                    .is_some_and(|topic| topic.partition(*p).is_some());
            missing |= !exists;
            wanted.push((t.name.0.to_string(), *p, exists));
        }
    }
    let outcome = if missing {
        Err(OPERATION_NOT_ATTEMPTED)
    } else {
        let parts: Vec<(String, i32)> = wanted.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
        b.txns.add_partitions(
            b,
            &req.v3_and_below_transactional_id.0,
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            &parts,
        )
    };
    let error_for = |exists: bool| match outcome {
        Ok(()) => code::NONE,
        Err(OPERATION_NOT_ATTEMPTED) if !exists => code::UNKNOWN_TOPIC_OR_PARTITION,
        Err(e) => fenced_code(e, ctx.version >= 2),
    };
    let results = req
        .v3_and_below_topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let exists = wanted
                                .iter()
                                .any(|(n, q, e)| *e && n == t.name.0.as_str() && q == p);
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(error_for(exists))
                        })
                        .collect(),
                )
        })
        .collect();
    Outcome::Now(AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results))
}
