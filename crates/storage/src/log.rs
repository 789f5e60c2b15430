//! The log of one partition: an ordered set of segments in one directory.
//!
//! Directory contents: the segments' `.log`/`.index`/`.timeindex` files and an
//! optional `log-start-offset` file (ASCII decimal), the log start offset set
//! by DeleteRecords or retention, written atomically (temp file + rename).
//!
//! Offsets: `log_start_offset <= high_watermark == log_end_offset`. On a single
//! node every appended record is immediately committed, so the high watermark
//! is the log end offset.
//!
//! Not thread-safe; the broker wraps each `Log` in a mutex.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::batch::{self, BatchHeader};
use crate::error::{Result, StorageError};
use crate::producer_state::{ProducerStates, SequenceCheck};
use crate::segment::{IndexConfig, Segment};

const LOG_START_FILE: &str = "log-start-offset";

/// Per-log settings, named after the Kafka topic configs they implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is this old.
    pub segment_ms: i64,
    /// `segment.index.bytes`: preallocated size of each index file.
    pub segment_index_bytes: usize,
    /// `index.interval.bytes`: log bytes between index entries.
    pub index_interval_bytes: usize,
    /// `retention.ms`: delete closed segments older than this; -1 keeps all.
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest closed segments while the log is larger; -1 keeps all.
    pub retention_bytes: i64,
    /// `max.message.bytes`: largest accepted record batch.
    pub max_message_bytes: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
        }
    }
}

impl LogConfig {
    fn index(&self) -> IndexConfig {
        IndexConfig {
            max_index_bytes: self.segment_index_bytes,
            index_interval_bytes: self.index_interval_bytes,
        }
    }
}

/// Outcome of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker time written into the batches, or -1 for CreateTime.
    pub log_append_time: i64,
    /// The batch was a retry of one already in the log; nothing was written.
    pub duplicate: bool,
    pub record_count: i64,
    pub bytes: usize,
}

/// A partition's log.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    next_offset: i64,
    producers: ProducerStates,
    dirty: bool,
}

fn parse_base(name: &str) -> Option<i64> {
    name.strip_suffix(".log")?.parse().ok()
}

impl Log {
    /// Opens (or creates) the log in `dir`. `recover` is set after an unclean
    /// shutdown: the active segment is CRC-checked, its torn tail truncated and
    /// its indexes rebuilt. Damaged or missing indexes are always rebuilt.
    pub fn open(dir: &Path, config: LogConfig, recover: bool, now_ms: i64) -> Result<Log> {
        fs::create_dir_all(dir)?;
        let mut bases: Vec<i64> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_str().unwrap_or_default();
            if name.ends_with(".cleaned") {
                // A compaction that did not finish: the original segment is intact.
                fs::remove_file(entry.path())?;
                continue;
            }
            if let Some(b) = parse_base(name) {
                bases.push(b);
            }
        }
        bases.sort_unstable();
        let checkpoint = fs::read_to_string(dir.join(LOG_START_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok());
        let mut segments = BTreeMap::new();
        let n = bases.len();
        for (i, base) in bases.into_iter().enumerate() {
            let active = i + 1 == n;
            let seg = Segment::open(dir, base, config.index(), active, recover && active, now_ms)?;
            segments.insert(base, seg);
        }
        if segments.is_empty() {
            let base = checkpoint.unwrap_or(0).max(0);
            segments.insert(base, Segment::create(dir, base, config.index(), now_ms)?);
        }
        let first_base = segments.keys().next().copied().unwrap_or(0);
        let next_offset = segments
            .values()
            .next_back()
            .map(|s| s.next_offset())
            .unwrap_or(0);
        let log_start_offset = checkpoint
            .unwrap_or(first_base)
            .max(first_base)
            .min(next_offset);
        let mut log = Log {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset,
            next_offset,
            producers: ProducerStates::default(),
            dirty: false,
        };
        log.rebuild_producer_state()?;
        Ok(log)
    }

    fn rebuild_producer_state(&mut self) -> Result<()> {
        let mut states = ProducerStates::default();
        for seg in self.segments.values() {
            for bp in seg.headers_from(0) {
                let bp = bp?;
                let h = bp.header;
                if h.is_control() {
                    let head = seg.read_at(bp.position, h.size.min(128))?;
                    if let Some(commit) = batch::marker_is_commit(&head) {
                        states.end_transaction(
                            h.producer_id,
                            h.producer_epoch,
                            h.base_offset,
                            commit,
                        );
                    }
                } else {
                    states.update(&h);
                }
            }
        }
        states.forget_before(self.log_start_offset);
        self.producers = states;
        Ok(())
    }

    /// The last stable offset: every offset below it belongs to no open
    /// transaction (read_committed consumers read up to here).
    pub fn last_stable_offset(&self) -> i64 {
        // An open transaction whose start was deleted by retention cannot
        // hold readers below the log start.
        self.producers
            .first_unstable_offset()
            .unwrap_or(self.next_offset)
            .max(self.log_start_offset)
            .min(self.next_offset)
    }

    /// Aborted transactions with records in `[from, to)`, for read_committed fetches.
    pub fn aborted_transactions(
        &self,
        from: i64,
        to: i64,
    ) -> Vec<crate::producer_state::AbortedTxn> {
        self.producers
            .aborted_between(from.max(self.log_start_offset), to)
    }

    /// Appends a transaction marker for `producer_id` (see
    /// [`batch::control_batch`]); returns its offset.
    pub fn append_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<i64> {
        let mut b = batch::control_batch(producer_id, epoch, commit, coordinator_epoch, now_ms);
        let offset = self.next_offset;
        batch::assign_offset(&mut b, offset, 0);
        let mut h = BatchHeader::parse(&b)?;
        h.base_offset = offset;
        self.maybe_roll(b.len() as u64, now_ms)?;
        self.active().append(&b, &h)?;
        self.producers
            .end_transaction(producer_id, epoch, offset, commit);
        self.next_offset = offset + 1;
        self.dirty = true;
        Ok(offset)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    /// Offset the next appended record gets (also the high watermark).
    pub fn log_end_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size()).sum()
    }
    pub fn producer_states(&self) -> &ProducerStates {
        &self.producers
    }

    fn active(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    /// Validates and appends the record batches of one produce request
    /// partition. `records` is rewritten in place (offsets, leader epoch and,
    /// with `log_append_time`, the timestamp). A retried idempotent batch is
    /// answered with its original offsets and not written again.
    pub fn append(
        &mut self,
        records: &mut [u8],
        leader_epoch: i32,
        log_append_time: bool,
        now_ms: i64,
    ) -> Result<AppendResult> {
        let headers = batch::validate_batches(records)?;
        for h in &headers {
            if h.is_control() {
                return Err(StorageError::InvalidRecord(
                    "control batches are written by the transaction coordinator, not producers",
                ));
            }
            if h.size > self.config.max_message_bytes {
                return Err(StorageError::MessageTooLarge {
                    size: h.size,
                    max: self.config.max_message_bytes,
                });
            }
        }
        for (i, h) in headers.iter().enumerate() {
            if let SequenceCheck::Duplicate(b) = self.producers.check(h)? {
                if i == 0 {
                    return Ok(AppendResult {
                        base_offset: b.first_offset,
                        last_offset: b.last_offset,
                        log_append_time: -1,
                        duplicate: true,
                        record_count: 0,
                        bytes: 0,
                    });
                }
                return Err(StorageError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    expected: -1,
                    got: h.base_sequence,
                });
            }
        }
        let mut offset = self.next_offset;
        let mut pos = 0;
        let mut assigned = Vec::with_capacity(headers.len());
        let mut record_count = 0;
        for h in &headers {
            let b = &mut records[pos..pos + h.size];
            batch::assign_offset(b, offset, leader_epoch);
            if log_append_time {
                batch::set_log_append_time(b, now_ms);
            }
            let mut h = *h;
            h.base_offset = offset;
            h.partition_leader_epoch = leader_epoch;
            if log_append_time {
                h.max_timestamp = now_ms;
                h.attributes |= 0x08;
            }
            offset = h.last_offset() + 1;
            record_count += h.record_count as i64;
            pos += h.size;
            assigned.push(h);
        }
        self.maybe_roll(records.len() as u64, now_ms)?;
        let mut pos = 0;
        for h in &assigned {
            self.active().append(&records[pos..pos + h.size], h)?;
            self.producers.update(h);
            pos += h.size;
        }
        let base_offset = self.next_offset;
        self.next_offset = offset;
        self.dirty = true;
        Ok(AppendResult {
            base_offset,
            last_offset: offset - 1,
            log_append_time: if log_append_time { now_ms } else { -1 },
            duplicate: false,
            record_count,
            bytes: records.len(),
        })
    }

    fn maybe_roll(&mut self, incoming: u64, now_ms: i64) -> Result<()> {
        let cfg = self.config;
        let next = self.next_offset;
        let active = self.active();
        if active.is_empty() {
            return Ok(());
        }
        let too_big = active.size() + incoming > cfg.segment_bytes;
        let too_old = now_ms - active.roll_timestamp > cfg.segment_ms;
        let offsets_overflow = next - active.base_offset > u32::MAX as i64 / 2;
        if too_big
            || too_old
            || offsets_overflow
            || active.index_full()
            || active.size() + incoming > u32::MAX as u64
        {
            self.roll(now_ms)?;
        }
        Ok(())
    }

    /// Closes the active segment and starts a new one at the log end offset.
    pub fn roll(&mut self, now_ms: i64) -> Result<()> {
        let next = self.next_offset;
        let dir = self.dir.clone();
        let idx = self.config.index();
        let active = self.active();
        if active.base_offset == next {
            return Ok(());
        }
        active.flush()?;
        active.seal()?;
        self.segments
            .insert(next, Segment::create(&dir, next, idx, now_ms)?);
        tracing::debug!(dir = %dir.display(), base_offset = next, "rolled segment");
        Ok(())
    }

    fn check_range(&self, offset: i64) -> Result<()> {
        if offset < self.log_start_offset || offset > self.next_offset {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                start: self.log_start_offset,
                end: self.next_offset,
            });
        }
        Ok(())
    }

    /// Reads whole batches starting with the one that contains `offset`, up to
    /// `max_bytes`. With `min_one_batch` (KIP-74) the first batch is returned
    /// even when it alone is larger than `max_bytes`. Reading at the log end
    /// offset returns nothing; outside `[log_start, log_end]` is an error.
    pub fn read(&self, offset: i64, max_bytes: usize, min_one_batch: bool) -> Result<Vec<u8>> {
        self.read_below(offset, max_bytes, min_one_batch, i64::MAX)
    }

    /// [`Log::read`], returning only batches that start below `limit` (the
    /// last stable offset for read_committed fetches).
    pub fn read_below(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        limit: i64,
    ) -> Result<Vec<u8>> {
        self.check_range(offset)?;
        if offset >= limit {
            return Ok(Vec::new());
        }
        if offset == self.next_offset {
            return Ok(Vec::new());
        }
        let floor = self
            .segments
            .range(..=offset)
            .next_back()
            .map(|(b, _)| *b)
            .unwrap_or(i64::MIN);
        for (_, seg) in self.segments.range(floor..) {
            let Some(bp) = seg.find_offset(offset)? else {
                continue;
            };
            let first = bp.header.size;
            if first > max_bytes && !min_one_batch {
                return Ok(Vec::new());
            }
            let want = max_bytes.max(if min_one_batch { first } else { 0 });
            let mut data = seg.read_at(bp.position, want)?;
            let mut end = 0;
            while let Some(Ok((base, size))) = BatchHeader::peek_size(&data[end..]) {
                if end + size > data.len() || base >= limit {
                    break;
                }
                end += size;
            }
            data.truncate(end);
            return Ok(data);
        }
        Ok(Vec::new())
    }

    /// The first batch with a max timestamp `>= ts` (for ListOffsets by time):
    /// its bytes, so the caller can find the exact record.
    pub fn batch_for_timestamp(&self, ts: i64) -> Result<Option<Vec<u8>>> {
        for seg in self.segments.values() {
            if seg.max_timestamp() < ts {
                continue;
            }
            if let Some(bp) = seg.find_timestamp(ts)? {
                if bp.header.last_offset() < self.log_start_offset {
                    continue;
                }
                return Ok(Some(seg.read_at(bp.position, bp.header.size)?));
            }
        }
        Ok(None)
    }

    /// The batch holding the largest timestamp in the log.
    pub fn batch_with_max_timestamp(&self) -> Result<Option<Vec<u8>>> {
        let Some(seg) = self
            .segments
            .values()
            .filter(|s| !s.is_empty())
            .max_by_key(|s| s.max_timestamp())
        else {
            return Ok(None);
        };
        let target = seg.max_timestamp();
        for bp in seg.headers_from(0) {
            let bp = bp?;
            if bp.header.max_timestamp == target {
                return Ok(Some(seg.read_at(bp.position, bp.header.size)?));
            }
        }
        Ok(None)
    }

    /// Advances the log start offset to `offset` (DeleteRecords) and deletes
    /// the segments entirely below it. Returns the new log start offset.
    pub fn delete_records_before(&mut self, offset: i64, now_ms: i64) -> Result<i64> {
        if offset > self.next_offset || offset < 0 {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                start: self.log_start_offset,
                end: self.next_offset,
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.producers.forget_before(offset);
            self.write_log_start()?;
            self.delete_segments_below_start(now_ms)?;
        }
        Ok(self.log_start_offset)
    }

    fn write_log_start(&self) -> Result<()> {
        let tmp = self.dir.join(format!("{LOG_START_FILE}.tmp"));
        fs::write(&tmp, self.log_start_offset.to_string())?;
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, self.dir.join(LOG_START_FILE))?;
        Ok(())
    }

    fn delete_segments_below_start(&mut self, now_ms: i64) -> Result<()> {
        if self.log_start_offset == self.next_offset {
            self.roll(now_ms)?;
        }
        let start = self.log_start_offset;
        let active_base = self.segments.keys().next_back().copied().unwrap_or(0);
        let doomed: Vec<i64> = self
            .segments
            .iter()
            .filter(|(b, s)| **b != active_base && s.next_offset() <= start)
            .map(|(b, _)| *b)
            .collect();
        for b in doomed {
            if let Some(seg) = self.segments.remove(&b) {
                seg.delete()?;
            }
        }
        Ok(())
    }

    /// Applies `retention.ms` and `retention.bytes` to closed segments.
    /// Returns how many segments were deleted.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<usize> {
        let mut deleted = 0;
        // Time-based: let a fully expired active segment roll, so it can go too.
        if self.config.retention_ms >= 0 {
            let expired_active = {
                let ms = self.config.retention_ms;
                let a = self.active();
                !a.is_empty() && a.max_timestamp() < now_ms - ms
            };
            if expired_active {
                self.roll(now_ms)?;
            }
        }
        loop {
            if self.segments.len() < 2 {
                break;
            }
            let total = self.size_bytes() as i64;
            let (&base, oldest) = self.segments.iter().next().expect("at least two segments");
            let by_time = self.config.retention_ms >= 0
                && oldest.max_timestamp() < now_ms - self.config.retention_ms;
            let by_size = self.config.retention_bytes >= 0
                && total - oldest.size() as i64 >= self.config.retention_bytes;
            if !(by_time || by_size) {
                break;
            }
            let seg = self.segments.remove(&base).expect("present");
            self.log_start_offset = self.log_start_offset.max(seg.next_offset());
            self.producers.forget_before(self.log_start_offset);
            seg.delete()?;
            deleted += 1;
        }
        if deleted > 0 {
            self.write_log_start()?;
        }
        Ok(deleted)
    }

    /// For flushing without holding the log: a duplicate handle of the
    /// active segment's file (fsync on it syncs the same file), or `None`
    /// when nothing was appended since the last flush. The log counts as
    /// clean afterwards; call [`Log::mark_dirty`] if the fsync fails.
    pub fn flush_handle(&mut self) -> Result<Option<std::fs::File>> {
        if !self.dirty {
            return Ok(None);
        }
        let f = self.active().log_file().try_clone()?;
        self.dirty = false;
        Ok(Some(f))
    }

    /// Marks the log as having unflushed data (after a failed fsync).
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// fsyncs what was appended since the last flush.
    pub fn flush(&mut self) -> Result<()> {
        if self.dirty {
            self.active().flush()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Clean shutdown: flush and trim the active segment's indexes.
    pub fn close(mut self) -> Result<()> {
        self.flush()?;
        self.active().seal()
    }

    /// Compaction step 1: every closed segment and the active one's extent
    /// (narrow it with [`crate::compaction::CleanPlan::select`]).
    pub fn clean_plan(&self) -> crate::compaction::CleanPlan {
        let mut closed: Vec<crate::compaction::PlannedSegment> = self
            .segments
            .values()
            .map(|s| crate::compaction::PlannedSegment {
                base_offset: s.base_offset,
                path: s.log_path().to_path_buf(),
                size: s.size(),
                max_timestamp: s.max_timestamp(),
            })
            .collect();
        let active = closed.pop();
        crate::compaction::CleanPlan {
            closed,
            later: Vec::new(),
            active,
            aborted: self
                .producers
                .aborted_between(self.log_start_offset, self.next_offset),
            stable_offset: self.last_stable_offset(),
        }
    }

    /// Compaction step 3: swaps in cleaned segments that are still as planned
    /// (others are discarded). Returns the records removed.
    pub fn install_cleaned(
        &mut self,
        cleaned: Vec<crate::compaction::Cleaned>,
        now_ms: i64,
    ) -> Result<u64> {
        let idx = self.config.index();
        let active_base = self.segments.keys().next_back().copied();
        let mut removed = 0;
        for c in cleaned {
            let unchanged = Some(c.base_offset) != active_base
                && self
                    .segments
                    .get(&c.base_offset)
                    .is_some_and(|s| s.size() == c.planned_size);
            if !unchanged || c.records_removed == 0 {
                crate::compaction::discard(&c);
                continue;
            }
            let Some(seg) = self.segments.remove(&c.base_offset) else {
                continue;
            };
            let (ip, tp) = seg.index_paths();
            let log_path = seg.log_path().to_path_buf();
            drop(seg);
            // Indexes first: if we crash after this, they are rebuilt from whichever .log is there.
            let _ = fs::remove_file(&ip);
            let _ = fs::remove_file(&tp);
            fs::rename(&c.cleaned_path, &log_path)?;
            fs::File::open(&self.dir)?.sync_all()?;
            let seg = Segment::open(&self.dir, c.base_offset, idx, false, false, now_ms)?;
            self.segments.insert(c.base_offset, seg);
            removed += c.records_removed;
        }
        Ok(removed)
    }

    /// Removes the log and its directory.
    pub fn delete(self) -> Result<()> {
        let dir = self.dir.clone();
        drop(self);
        fs::remove_dir_all(dir)?;
        Ok(())
    }
}
