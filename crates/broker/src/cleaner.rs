//! The log cleaner: compacts the partitions of topics whose `cleanup.policy`
//! includes `compact` (see `gregor_storage::compaction` for the algorithm).
//! Reading and rewriting happen without the partition lock; only planning
//! and the atomic swap take it.

use std::sync::atomic::Ordering;

use crate::decompress::DECOMPRESSED_LIMIT;

use crate::state::Broker;
use crate::topic_config;

/// Decompresses a records section for the cleaner, bounded by
/// [`DECOMPRESSED_LIMIT`] (a batch over it is kept as it is).
pub fn decompress(codec: i16, data: &[u8]) -> Result<Vec<u8>, String> {
    crate::decompress::decompress(codec, data, DECOMPRESSED_LIMIT).map_err(|e| e.to_string())
}

/// One pass over every compacted partition: a partition is cleaned when its
/// `min.cleanable.dirty.ratio` is reached, up to the first segment younger
/// than `min.compaction.lag.ms`. Returns the records removed.
pub fn clean_all(broker: &Broker) -> crate::Result<u64> {
    let now = broker.clock.now_ms();
    let config = broker.config();
    let mut removed = 0;
    for t in broker.topics() {
        let configs = t.configs.read().clone();
        if !topic_config::compacts(&configs, &config) {
            continue;
        }
        let delete_retention_ms = topic_config::delete_retention_ms(&configs, &config);
        let min_lag_ms = topic_config::min_compaction_lag_ms(&configs, &config);
        let min_ratio = topic_config::min_cleanable_ratio(&configs, &config);
        for p in t.partitions.read().clone() {
            let first_dirty = p.cleaned_up_to.load(Ordering::Acquire);
            let plan = p.log.lock().clean_plan();
            let Some(plan) = plan.select(first_dirty, now, min_lag_ms, min_ratio) else {
                continue;
            };
            let cleaned =
                gregor_storage::compaction::clean(&plan, now, delete_retention_ms, &decompress)?;
            let mut log = p.log.lock();
            let n = log.install_cleaned(cleaned, now)?;
            p.publish(&log, 0);
            drop(log);
            p.cleaned_up_to
                .fetch_max(plan.cleaned_up_to(), Ordering::AcqRel);
            if n > 0 {
                tracing::info!(topic = %t.name, partition = p.index, records_removed = n, "compacted");
            }
            removed += n;
        }
    }
    Ok(removed)
}
