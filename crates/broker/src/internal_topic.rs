//! The internal topics the coordinators keep their state in
//! (`__consumer_offsets`, `__transaction_state`): created on first use,
//! compacted and kept forever; written one batch per call; read from start
//! to end when the broker starts, to rebuild a coordinator.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gregor_storage::batch::BatchHeader;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::state::{Broker, Partition, Topic, TopicError};

/// A write to an internal topic failed (and was logged); the caller answers
/// with COORDINATOR_NOT_AVAILABLE.
#[derive(Debug)]
pub struct WriteFailed;

/// The internal topic `name`, created with `partitions` partitions,
/// `cleanup.policy = compact` and no retention when it does not exist yet.
pub fn get_or_create(
    broker: &Broker,
    name: &str,
    partitions: i32,
) -> Result<Arc<Topic>, WriteFailed> {
    if let Some(t) = broker.topic(name) {
        return Ok(t);
    }
    let configs = BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("retention.ms".to_string(), "-1".to_string()),
    ]);
    match broker.create_topic(name, partitions, 1, configs) {
        Ok(t) => Ok(t),
        Err(TopicError::AlreadyExists) => broker.topic(name).ok_or(WriteFailed),
        Err(e) => {
            tracing::error!(topic = name, error = ?e, "cannot create an internal topic");
            Err(WriteFailed)
        }
    }
}

/// Appends `(key, value)` records to `partition` as one uncompressed batch;
/// with a `(producer id, epoch)` the batch is that producer's transactional
/// batch.
pub fn append(
    broker: &Broker,
    partition: &Partition,
    records: Vec<(Bytes, Option<Bytes>)>,
    producer: Option<(i64, i16)>,
) -> Result<(), WriteFailed> {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    let now = broker.clock.now_ms();
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: now,
            key: Some(key),
            value,
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let opts = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    if let Err(e) = RecordBatchEncoder::encode(&mut buf, &records, &opts) {
        tracing::error!(partition = partition.index, error = %e, "cannot encode an internal-topic batch");
        return Err(WriteFailed);
    }
    let mut log = partition.log.lock();
    match log.append(&mut buf, 0, false, now) {
        Ok(a) => {
            partition.publish(&log, a.record_count);
            Ok(())
        }
        Err(e) => {
            tracing::error!(partition = partition.index, error = %e, "cannot append to an internal topic");
            Err(WriteFailed)
        }
    }
}

/// Calls `f(partition, record)` for every record of every partition, in log
/// order, control records included. Reading moves on by batch (from each
/// header's last offset), so batches that compaction left with gaps are read
/// once. An undecodable batch ends that partition's replay with an error log.
pub fn for_each_record(topic: &Topic, mut f: impl FnMut(i32, Record)) -> crate::Result<()> {
    for p in topic.partitions.read().iter() {
        let log = p.log.lock();
        let mut offset = log.log_start_offset();
        'partition: while offset < log.log_end_offset() {
            let data = Bytes::from(log.read(offset, 1 << 20, true)?);
            if data.is_empty() {
                break;
            }
            let mut pos = 0;
            while pos < data.len() {
                let header = BatchHeader::parse(&data[pos..]);
                let Some(h) = header.ok().filter(|h| pos + h.size <= data.len()) else {
                    tracing::error!(topic = %topic.name, partition = p.index, offset, "unreadable batch; skipping the rest of the partition");
                    break 'partition;
                };
                let mut batch = data.slice(pos..pos + h.size);
                match RecordBatchDecoder::decode(&mut batch) {
                    Ok(set) => set.records.into_iter().for_each(|r| f(p.index, r)),
                    Err(e) => {
                        tracing::error!(topic = %topic.name, partition = p.index, offset, error = %e, "undecodable batch; skipping the rest of the partition");
                        break 'partition;
                    }
                }
                offset = h.last_offset() + 1;
                pos += h.size;
            }
        }
    }
    Ok(())
}
