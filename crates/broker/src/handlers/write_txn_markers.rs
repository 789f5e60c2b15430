//! WriteTxnMarkers (key 27), version 1: appends commit or abort markers for
//! a producer. In Kafka the transaction coordinator sends it to partition
//! leaders; administrators send it through `kafka-transactions.sh abort` to
//! end a hanging transaction. A single Gregor writes its own markers, so
//! only the latter reaches this handler.

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use gregor_coordinator::transactions::Marker;

use super::{code, Ctx, Outcome};

pub fn handle(ctx: &Ctx, req: WriteTxnMarkersRequest) -> Outcome<WriteTxnMarkersResponse> {
    let b = &ctx.broker;
    let markers = req
        .markers
        .into_iter()
        .map(|m| {
            let topics = m
                .topics
                .iter()
                .map(|t| {
                    let partitions = t
                        .partition_indexes
                        .iter()
                        .map(|p| {
                            let marker = Marker {
                                topic: t.name.0.to_string(),
                                partition: *p,
                                producer_id: m.producer_id.0,
                                producer_epoch: m.producer_epoch,
                                commit: m.transaction_result,
                            };
                            let error = match b.txns.write_marker(b, &marker, m.coordinator_epoch) {
                                Ok(()) => code::NONE,
                                Err(e) => e,
                            };
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(*p)
                                .with_error_code(error)
                        })
                        .collect();
                    WritableTxnMarkerTopicResult::default()
                        .with_name(t.name.clone())
                        .with_partitions(partitions)
                })
                .collect();
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics)
        })
        .collect();
    Outcome::Now(WriteTxnMarkersResponse::default().with_markers(markers))
}
