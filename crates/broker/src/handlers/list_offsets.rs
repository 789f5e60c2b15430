//! ListOffsets (key 2): earliest (-2), latest (-1), max timestamp (-3),
//! earliest local (-4), or the first offset whose timestamp is at or after a
//! given time, found through the time index and then the batch's records.

use bytes::Bytes;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::records::{RecordBatchDecoder, TimestampType};

use super::{code, storage_code, Ctx, Outcome};
use crate::state::Partition;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const EARLIEST_PENDING_UPLOAD: i64 = -6;

/// The first record in `batch` with timestamp `>= ts` (or, with `max`, the
/// record holding the batch's largest timestamp), as (timestamp, offset).
fn find_in_batch(batch: Vec<u8>, ts: i64, max: bool) -> Option<(i64, i64)> {
    let mut buf = Bytes::from(batch);
    let set = RecordBatchDecoder::decode(&mut buf).ok()?;
    if max {
        return set
            .records
            .iter()
            .max_by_key(|r| (r.timestamp, std::cmp::Reverse(r.offset)))
            .map(|r| (r.timestamp, r.offset));
    }
    set.records
        .iter()
        .find(|r| r.timestamp_type == TimestampType::LogAppend || r.timestamp >= ts)
        .map(|r| (r.timestamp, r.offset))
}

/// Resolves one timestamp query; `read_committed` makes LATEST the last
/// stable offset (isolation level 1).
fn lookup(p: &Partition, ts: i64, read_committed: bool) -> Result<(i64, i64), i16> {
    let log = p.log.lock();
    match ts {
        LATEST if read_committed => Ok((-1, log.last_stable_offset())),
        LATEST => Ok((-1, log.log_end_offset())),
        EARLIEST | EARLIEST_LOCAL => Ok((-1, log.log_start_offset())),
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Ok((-1, -1)),
        MAX_TIMESTAMP => match log.batch_with_max_timestamp() {
            Ok(Some(b)) => Ok(find_in_batch(b, 0, true).unwrap_or((-1, -1))),
            Ok(None) => Ok((-1, -1)),
            Err(e) => Err(storage_code(&e)),
        },
        ts if ts < 0 => Err(code::INVALID_REQUEST),
        ts => match log.batch_for_timestamp(ts) {
            Ok(Some(b)) => Ok(find_in_batch(b, ts, false).unwrap_or((-1, -1))),
            Ok(None) => Ok((-1, -1)),
            Err(e) => Err(storage_code(&e)),
        },
    }
}

pub fn handle(ctx: &Ctx, req: ListOffsetsRequest) -> Outcome<ListOffsetsResponse> {
    let b = &ctx.broker;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = b.topic(&t.name.0);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let r = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let Some(part) = topic.as_ref().and_then(|t| t.partition(p.partition_index))
                    else {
                        return r
                            .with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION)
                            .with_timestamp(-1)
                            .with_offset(-1);
                    };
                    match lookup(&part, p.timestamp, req.isolation_level == 1) {
                        Ok((ts, off)) => r
                            .with_timestamp(ts)
                            .with_offset(off)
                            .with_leader_epoch(if ctx.version >= 4 { 0 } else { -1 }),
                        Err(e) => r.with_error_code(e).with_timestamp(-1).with_offset(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    Outcome::Now(ListOffsetsResponse::default().with_topics(topics))
}
