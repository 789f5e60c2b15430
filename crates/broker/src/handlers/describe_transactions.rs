//! DescribeTransactions (key 65): state, timeout, start time, producer id
//! and epoch, and the partitions of each transactional id's transaction;
//! TRANSACTIONAL_ID_NOT_FOUND for an unknown id.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};

use super::{s, Ctx, Outcome};

const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

pub fn handle(
    ctx: &Ctx,
    req: DescribeTransactionsRequest,
) -> Outcome<DescribeTransactionsResponse> {
    let states = req
        .transactional_ids
        .into_iter()
        .map(|id| {
            let found = ctx.broker.txns.read(|t| t.get(&id.0).cloned());
            let r = TransactionState::default().with_transactional_id(id);
            let Some(m) = found else {
                return r.with_error_code(TRANSACTIONAL_ID_NOT_FOUND);
            };
            let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for (t, p) in &m.partitions {
                topics.entry(t.clone()).or_default().push(*p);
            }
            r.with_transaction_state(s(m.status.name()))
                .with_transaction_timeout_ms(m.timeout_ms)
                .with_transaction_start_time_ms(m.start_ms)
                .with_producer_id(ProducerId(m.producer_id))
                .with_producer_epoch(m.producer_epoch)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            TopicData::default()
                                .with_topic(TopicName(s(t)))
                                .with_partitions(ps)
                        })
                        .collect(),
                )
        })
        .collect();
    Outcome::Now(DescribeTransactionsResponse::default().with_transaction_states(states))
}
