//! Produce (key 0): validate each partition's record batches (header, CRC,
//! size, idempotent sequence; keys on compacted topics) and append them as
//! sent, in request order.
//!
//! The append happens during dispatch, so two pipelined produce requests on
//! one connection are appended in the order they were sent. With
//! `log.flush.interval.messages` reached, the response waits for an fsync
//! (on a blocking thread) before acknowledging acks=1/all.

use std::cell::Cell;
use std::sync::Arc;

use bytes::BytesMut;
use gregor_storage::compaction::{self, KeyCheckError};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::{code, s, storage_code, Ctx, Outcome};
use crate::decompress::{DecompressError, DECOMPRESSED_LIMIT};
use crate::state::{Partition, Topic};
use crate::topic_config;

fn partition_error(index: i32, error: i16) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(error)
        .with_base_offset(-1)
}

/// Kafka refuses records without a key on compacted topics (INVALID_RECORD,
/// naming the record in `record_errors`). Compressed batches are
/// decompressed for the check, within [`DECOMPRESSED_LIMIT`]: a batch over it
/// gets MESSAGE_TOO_LARGE, an undecodable one CORRUPT_MESSAGE.
fn key_refusal(records: &[u8], topic: &str, index: i32) -> Option<PartitionProduceResponse> {
    let too_large = Cell::new(false);
    let decompress = |codec: i16, data: &[u8]| {
        crate::decompress::decompress(codec, data, DECOMPRESSED_LIMIT).map_err(|e| {
            too_large.set(matches!(e, DecompressError::TooLarge { .. }));
            e.to_string()
        })
    };
    let refusal = match compaction::check_keys(records, &decompress) {
        Ok(()) => return None,
        Err(KeyCheckError::Keyless { record }) => {
            let msg = format!(
                "Compacted topic cannot accept message without key in topic partition {topic}-{index}."
            );
            partition_error(index, code::INVALID_RECORD)
                .with_error_message(Some(s(msg.clone())))
                .with_record_errors(vec![BatchIndexAndErrorMessage::default()
                    .with_batch_index(record as i32)
                    .with_batch_index_error_message(Some(s(msg)))])
        }
        Err(KeyCheckError::Unreadable(reason)) if too_large.get() => {
            partition_error(index, code::MESSAGE_TOO_LARGE).with_error_message(Some(s(format!(
                "records decompress to more than {DECOMPRESSED_LIMIT} bytes ({reason})"
            ))))
        }
        Err(KeyCheckError::Unreadable(reason)) => {
            partition_error(index, code::CORRUPT_MESSAGE).with_error_message(Some(s(reason)))
        }
    };
    Some(refusal)
}

pub fn handle(ctx: &Ctx, req: ProduceRequest) -> Outcome<ProduceResponse> {
    let b = &ctx.broker;
    let now = b.clock.now_ms();
    let config = b.config();
    let acks = req.acks;
    let by_id = ctx.version >= 13;
    let mut to_flush: Vec<Arc<Partition>> = Vec::new();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for td in req.topic_data {
        let topic: Option<Arc<Topic>> = if by_id {
            b.topic_by_id(&td.topic_id)
        } else {
            b.topic(&td.name.0)
        };
        let unknown = if by_id {
            code::UNKNOWN_TOPIC_ID
        } else {
            code::UNKNOWN_TOPIC_OR_PARTITION
        };
        let mut parts = Vec::with_capacity(td.partition_data.len());
        let (append_time, compacted) = topic
            .as_ref()
            .map(|t| {
                let c = t.configs.read();
                (
                    topic_config::log_append_time(&c, &config),
                    topic_config::compacts(&c, &config),
                )
            })
            .unwrap_or((false, false));
        let tname = topic.as_ref().map(|t| t.name.clone()).unwrap_or_default();
        for pd in td.partition_data {
            if !matches!(acks, -1..=1) {
                parts.push(partition_error(pd.index, code::INVALID_REQUIRED_ACKS));
                continue;
            }
            if crate::groups::is_internal(&td.name.0)
                || topic
                    .as_ref()
                    .is_some_and(|t| crate::groups::is_internal(&t.name))
            {
                parts.push(
                    partition_error(pd.index, code::INVALID_TOPIC_EXCEPTION)
                        .with_error_message(Some(s("Cannot append to an internal topic"))),
                );
                continue;
            }
            let Some(partition) = topic.as_ref().and_then(|t| t.partition(pd.index)) else {
                parts.push(partition_error(pd.index, unknown));
                continue;
            };
            let Some(records) = pd.records else {
                parts.push(partition_error(pd.index, code::CORRUPT_MESSAGE));
                continue;
            };
            if compacted {
                if let Some(refusal) = key_refusal(&records, &tname, pd.index) {
                    parts.push(refusal.with_log_start_offset(partition.log_start_offset()));
                    continue;
                }
            }
            let mut buf = records
                .try_into_mut()
                .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
            let result = {
                let mut log = partition.log.lock();
                let r = log.append(&mut buf, 0, append_time, now);
                if let Ok(a) = &r {
                    partition.publish(&log, a.record_count);
                }
                r
            };
            match result {
                Ok(a) => {
                    if !a.duplicate {
                        b.metrics
                            .bytes_in
                            .with_label_values(&[tname.as_str()])
                            .inc_by(a.bytes as u64);
                        b.metrics
                            .records_in
                            .with_label_values(&[tname.as_str()])
                            .inc_by(a.record_count as u64);
                    }
                    if !a.duplicate
                        && partition.unflushed() >= config.flush_interval_messages
                        && acks != 0
                    {
                        to_flush.push(partition.clone());
                    }
                    parts.push(
                        PartitionProduceResponse::default()
                            .with_index(pd.index)
                            .with_base_offset(a.base_offset)
                            .with_log_append_time_ms(a.log_append_time)
                            .with_log_start_offset(partition.log_start_offset()),
                    );
                }
                Err(e) => {
                    tracing::debug!(topic = %td.name.0, partition = pd.index, error = %e, "produce rejected");
                    parts.push(
                        partition_error(pd.index, storage_code(&e))
                            .with_error_message(Some(s(e.to_string())))
                            .with_log_start_offset(partition.log_start_offset()),
                    );
                }
            }
        }
        let mut tr = TopicProduceResponse::default().with_partition_responses(parts);
        tr = if by_id {
            tr.with_topic_id(td.topic_id)
        } else {
            tr.with_name(td.name)
        };
        responses.push(tr);
    }
    for t in &responses {
        for p in &t.partition_responses {
            b.metrics.error("Produce", p.error_code);
        }
    }
    if acks == 0 {
        return Outcome::Silent;
    }
    let resp = ProduceResponse::default().with_responses(responses);
    if to_flush.is_empty() {
        return Outcome::Now(resp);
    }
    let broker = b.clone();
    Outcome::Later(Box::pin(async move {
        let flushed = tokio::task::spawn_blocking(move || {
            to_flush.iter().try_for_each(|p| broker.flush_partition(p))
        })
        .await;
        match flushed {
            Ok(Ok(())) => resp,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "fsync failed; failing the produce");
                fail_all(resp, code::KAFKA_STORAGE_ERROR)
            }
            Err(e) => {
                tracing::error!(error = %e, "flush task failed");
                fail_all(resp, code::KAFKA_STORAGE_ERROR)
            }
        }
    }))
}

fn fail_all(mut resp: ProduceResponse, error: i16) -> ProduceResponse {
    for t in &mut resp.responses {
        for p in &mut t.partition_responses {
            if p.error_code == code::NONE {
                p.error_code = error;
                p.base_offset = -1;
            }
        }
    }
    resp
}
