//! Reading an internal topic (`__consumer_offsets`, `__transaction_state`)
//! from start to end when the broker starts, to rebuild a coordinator.

use bytes::Bytes;
use gregor_storage::batch::BatchHeader;
use kafka_protocol::records::{Record, RecordBatchDecoder};

use crate::state::Topic;

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
