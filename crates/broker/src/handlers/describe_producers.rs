//! DescribeProducers (key 61): the idempotent producers each partition
//! remembers (id, epoch, last sequence, last timestamp). No transactions, so
//! no coordinator epoch or open transaction.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use super::{code, Ctx, Outcome};

pub fn handle(ctx: &Ctx, req: DescribeProducersRequest) -> Outcome<DescribeProducersResponse> {
    let b = &ctx.broker;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = b.topic(&t.name.0);
            let partitions = t
                .partition_indexes
                .into_iter()
                .map(|p| {
                    let r = PartitionResponse::default().with_partition_index(p);
                    let Some(part) = topic.as_ref().and_then(|t| t.partition(p)) else {
                        return r.with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION);
                    };
                    let mut producers: Vec<(i64, i16, i32, i64, i64)> =
                        part.log.lock().producer_states().describe();
                    producers.sort();
                    r.with_active_producers(
                        producers
                            .into_iter()
                            .map(|(id, epoch, seq, ts, txn_start)| {
                                ProducerState::default()
                                    .with_producer_id(ProducerId(id))
                                    .with_producer_epoch(epoch as i32)
                                    .with_last_sequence(seq)
                                    .with_last_timestamp(ts)
                                    .with_coordinator_epoch(-1)
                                    .with_current_txn_start_offset(txn_start)
                            })
                            .collect(),
                    )
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    Outcome::Now(DescribeProducersResponse::default().with_topics(topics))
}
