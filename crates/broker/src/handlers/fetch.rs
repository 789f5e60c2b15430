//! Fetch (key 1): whole record batches from each requested partition.
//!
//! * KIP-74: `max_bytes` bounds the response and `partition_max_bytes` each
//!   partition, except that the first batch of the first non-empty partition
//!   is returned whole even when larger, so a consumer always progresses.
//! * A fetch offset inside a batch returns that whole batch (the client skips
//!   the records before its offset).
//! * Long polling: when fewer than `min_bytes` are available the response
//!   waits until an append to one of the partitions wakes it (no timer polling)
//!   or `max_wait_ms` passes.
//! * `isolation_level = read_committed`: batches from the last stable offset
//!   on are held back, and the aborted transactions overlapping the returned
//!   range are listed so the client drops their records.
//! * KIP-227 fetch sessions are not created: full fetches are answered with
//!   session id 0 (which tells the client no session exists), and an
//!   incremental fetch naming a session gets FETCH_SESSION_ID_NOT_FOUND.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use tokio::time::Instant;
use uuid::Uuid;

use super::{code, storage_code, Ctx, Outcome};
use crate::state::Partition;

/// One partition of the request, resolved.
struct Wanted {
    topic_slot: usize,
    index: i32,
    partition: Result<Arc<Partition>, i16>,
    offset: i64,
    max_bytes: usize,
}

struct Plan {
    version: i16,
    topics: Vec<(TopicName, Uuid)>,
    wanted: Vec<Wanted>,
    max_bytes: usize,
    min_bytes: usize,
    read_committed: bool,
}

impl Plan {
    /// Reads every partition once. Returns the response and the bytes in it,
    /// and whether any partition reported an error.
    fn collect(&self) -> (FetchResponse, usize, bool) {
        let mut remaining = self.max_bytes;
        let mut total = 0usize;
        let mut any_error = false;
        let mut topics: Vec<FetchableTopicResponse> = self
            .topics
            .iter()
            .map(|(name, id)| {
                let t = FetchableTopicResponse::default();
                if self.version >= 13 {
                    t.with_topic_id(*id)
                } else {
                    t.with_topic(name.clone())
                }
            })
            .collect();
        for w in &self.wanted {
            let mut pd = PartitionData::default().with_partition_index(w.index);
            if self.read_committed {
                pd = pd.with_aborted_transactions(Some(Vec::new()));
            }
            match &w.partition {
                Err(e) => {
                    any_error = true;
                    pd = pd
                        .with_error_code(*e)
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1)
                        .with_log_start_offset(-1);
                }
                Ok(p) => {
                    let limit = w.max_bytes.min(remaining);
                    let min_one = total == 0;
                    let read = {
                        let log = p.log.lock();
                        let lso = log.last_stable_offset();
                        let r = if self.read_committed {
                            log.read_below(w.offset, limit, min_one, lso)
                        } else {
                            log.read(w.offset, limit, min_one)
                        };
                        // Aborted transactions overlapping what is returned.
                        let aborted = match &r {
                            Ok(data) if self.read_committed && !data.is_empty() => {
                                log.aborted_transactions(w.offset, lso)
                            }
                            _ => Vec::new(),
                        };
                        (
                            r,
                            log.log_end_offset(),
                            lso,
                            log.log_start_offset(),
                            aborted,
                        )
                    };
                    let (r, hw, lso, start, aborted) = read;
                    pd = pd
                        .with_high_watermark(hw)
                        .with_last_stable_offset(lso)
                        .with_log_start_offset(start);
                    if self.read_committed {
                        pd = pd.with_aborted_transactions(Some(
                            aborted
                                .iter()
                                .map(|a| {
                                    AbortedTransaction::default()
                                        .with_producer_id(ProducerId(a.producer_id))
                                        .with_first_offset(a.first_offset)
                                })
                                .collect(),
                        ));
                    }
                    match r {
                        Ok(data) => {
                            total += data.len();
                            remaining = remaining.saturating_sub(data.len());
                            pd = pd.with_records(Some(Bytes::from(data)));
                        }
                        Err(e) => {
                            any_error = true;
                            pd = pd.with_error_code(storage_code(&e));
                        }
                    }
                }
            }
            topics[w.topic_slot].partitions.push(pd);
        }
        (
            FetchResponse::default().with_responses(topics),
            total,
            any_error,
        )
    }
}

pub fn handle(ctx: &Ctx, req: FetchRequest) -> Outcome<FetchResponse> {
    let b = &ctx.broker;
    if req.session_id != 0 {
        return Outcome::Now(
            FetchResponse::default().with_error_code(code::FETCH_SESSION_ID_NOT_FOUND),
        );
    }
    let by_id = ctx.version >= 13;
    let mut plan = Plan {
        version: ctx.version,
        topics: Vec::with_capacity(req.topics.len()),
        wanted: Vec::new(),
        max_bytes: (req.max_bytes.max(0) as usize).max(1),
        min_bytes: req.min_bytes.max(0) as usize,
        read_committed: req.isolation_level == 1,
    };
    for ft in req.topics {
        let topic = if by_id {
            b.topic_by_id(&ft.topic_id)
        } else {
            b.topic(&ft.topic.0)
        };
        let unknown = if by_id {
            code::UNKNOWN_TOPIC_ID
        } else {
            code::UNKNOWN_TOPIC_OR_PARTITION
        };
        let slot = plan.topics.len();
        plan.topics.push((ft.topic, ft.topic_id));
        for fp in ft.partitions {
            let partition = topic
                .as_ref()
                .and_then(|t| t.partition(fp.partition))
                .ok_or(unknown);
            plan.wanted.push(Wanted {
                topic_slot: slot,
                index: fp.partition,
                partition,
                offset: fp.fetch_offset,
                max_bytes: fp.partition_max_bytes.max(0) as usize,
            });
        }
    }
    let (resp, bytes, error) = plan.collect();
    if bytes >= plan.min_bytes || error || req.max_wait_ms <= 0 || plan.wanted.is_empty() {
        account(b, &plan, &resp);
        return Outcome::Now(resp);
    }
    let broker = b.clone();
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms as u64);
    Outcome::Later(Box::pin(async move {
        let parts: Vec<Arc<Partition>> = plan
            .wanted
            .iter()
            .filter_map(|w| w.partition.as_ref().ok().cloned())
            .collect();
        loop {
            let mut waits: Vec<_> = parts
                .iter()
                .map(|p| Box::pin(p.appended.notified()))
                .collect();
            for w in waits.iter_mut() {
                w.as_mut().enable();
            }
            // Registered before re-reading, so no append can slip between.
            let (resp, bytes, error) = plan.collect();
            if bytes >= plan.min_bytes || error || Instant::now() >= deadline {
                account(&broker, &plan, &resp);
                return resp;
            }
            tokio::select! {
                _ = select_all(waits) => {}
                _ = tokio::time::sleep_until(deadline) => {
                    let resp = plan.collect().0;
                    account(&broker, &plan, &resp);
                    return resp;
                }
            }
        }
    }))
}

/// Counts bytes out per topic and per-partition errors.
fn account(b: &crate::state::Broker, plan: &Plan, resp: &FetchResponse) {
    for (i, t) in resp.responses.iter().enumerate() {
        let name = plan.topics.get(i).map(|(n, id)| {
            if n.0.is_empty() {
                b.topic_by_id(id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default()
            } else {
                n.0.to_string()
            }
        });
        for p in &t.partitions {
            b.metrics.error("Fetch", p.error_code);
            let n = p.records.as_ref().map(|r| r.len()).unwrap_or(0);
            if let (true, Some(name)) = (n > 0, &name) {
                b.metrics
                    .bytes_out
                    .with_label_values(&[name])
                    .inc_by(n as u64);
            }
        }
    }
}
