//! The log cleaner: compacts the partitions of topics whose `cleanup.policy`
//! includes `compact` (see `gregor_storage::compaction` for the algorithm).
//! Reading and rewriting happen without the partition lock; only planning
//! and the atomic swap take it.

use bytes::Bytes;
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};

use crate::state::Broker;
use crate::topic_config;

/// Decompresses a records section with the batch's codec (1 gzip, 2 snappy,
/// 3 lz4, 4 zstd).
pub fn decompress(codec: i16, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut b = Bytes::copy_from_slice(data);
    let out = |x: &mut Bytes| Ok(x.to_vec());
    let r = match codec {
        1 => Gzip::decompress(&mut b, out),
        2 => Snappy::decompress(&mut b, out),
        3 => Lz4::decompress(&mut b, out),
        4 => Zstd::decompress(&mut b, out),
        other => return Err(format!("unknown compression codec {other}")),
    };
    r.map_err(|e| e.to_string())
}

/// Cleans every compacted partition once. Returns the records removed.
pub fn clean_all(broker: &Broker) -> crate::Result<u64> {
    let now = broker.clock.now_ms();
    let mut removed = 0;
    for t in broker.topics() {
        let configs = t.configs.read().clone();
        if !topic_config::compacts(&configs) {
            continue;
        }
        let delete_retention_ms = topic_config::delete_retention_ms(&configs, &broker.config);
        for p in t.partitions.read().clone() {
            let plan = p.log.lock().clean_plan();
            if plan.closed.is_empty() {
                continue;
            }
            let cleaned =
                gregor_storage::compaction::clean(&plan, now, delete_retention_ms, &decompress)?;
            let mut log = p.log.lock();
            let n = log.install_cleaned(cleaned, now)?;
            p.publish(&log, 0);
            if n > 0 {
                tracing::info!(topic = %t.name, partition = p.index, records_removed = n, "compacted");
            }
            removed += n;
        }
    }
    Ok(removed)
}
