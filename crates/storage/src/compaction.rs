//! Log compaction (`cleanup.policy=compact`): keep only the latest record per
//! key in closed segments, and drop tombstones older than
//! `delete.retention.ms`.
//!
//! The cleaner works in three steps so that produce and fetch are blocked only
//! briefly:
//! 1. [`Log::clean_plan`] (under the partition lock): the closed segments and
//!    how far the log extends.
//! 2. [`clean`] (no lock): read every batch up to that point through its own
//!    file handles, build the key → latest-offset map, and write each closed
//!    segment's survivors to `<base>.log.cleaned`.
//! 3. [`Log::install_cleaned`] (under the lock): for each segment still as
//!    planned, delete its indexes, rename the cleaned file over the `.log`
//!    (atomic), and rebuild the indexes. A crash leaves either the old or the
//!    new file; leftover `.cleaned` files are removed when the log opens, and
//!    missing indexes are rebuilt.
//!
//! Records are kept byte-for-byte: a cleaned batch keeps its base offset,
//! base timestamp, last offset delta, producer fields and attributes, with
//! only the surviving records (their deltas stay valid) and a new length,
//! count and CRC. Compressed batches are decompressed through the caller's
//! function and written back uncompressed; a batch the function refuses
//! (corrupt, or over its size limit) is kept unchanged. Transactions: records
//! of committed transactions are compacted like any others, those of aborted
//! ones are dropped, and markers and undecided transactions (at or above the
//! last stable offset) are kept unchanged and add no keys. Offsets and the order
//! of surviving records never change.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;

use crate::batch::{BatchHeader, HEADER_LEN};
use crate::error::{Result, StorageError};
use crate::producer_state::AbortedTxn;

/// Decompresses a batch's records section: (codec id, compressed bytes) → raw records.
pub type Decompress<'a> = &'a dyn Fn(i16, &[u8]) -> std::result::Result<Vec<u8>, String>;

/// A segment as planned: where it is and how much of it existed.
#[derive(Debug, Clone)]
pub struct PlannedSegment {
    pub base_offset: i64,
    pub path: PathBuf,
    pub size: u64,
    /// Largest record timestamp in the segment (-1 when empty).
    pub max_timestamp: i64,
}

/// What [`clean`] needs, taken under the partition lock.
#[derive(Debug, Clone)]
pub struct CleanPlan {
    /// Closed segments to rewrite, oldest first.
    pub closed: Vec<PlannedSegment>,
    /// Closed segments newer than `closed` that are left alone this time
    /// (too young for `min.compaction.lag.ms`); read for their keys only.
    pub later: Vec<PlannedSegment>,
    /// The active segment and how much of it existed when planned; read for
    /// its keys only.
    pub active: Option<PlannedSegment>,
    /// Aborted transactions of the log: their records are dropped.
    pub aborted: Vec<AbortedTxn>,
    /// The last stable offset: transactional batches from here on are
    /// undecided and left alone.
    pub stable_offset: i64,
}

/// What compaction may do with a batch, by its transaction's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Not transactional, or of a committed transaction: compacted by key.
    Compact,
    /// Of an aborted transaction: no consumer should see it; dropped.
    Drop,
    /// A marker, or a transaction not decided yet: kept unchanged.
    Keep,
}

impl CleanPlan {
    fn fate(&self, h: &BatchHeader) -> Fate {
        if !h.is_transactional() {
            return Fate::Compact;
        }
        if h.is_control() || h.base_offset >= self.stable_offset {
            return Fate::Keep;
        }
        let aborted = self.aborted.iter().any(|a| {
            a.producer_id == h.producer_id
                && a.first_offset <= h.base_offset
                && h.base_offset <= a.last_offset
        });
        if aborted {
            Fate::Drop
        } else {
            Fate::Compact
        }
    }
}

impl CleanPlan {
    /// Applies the cleaner's policy to a plan of every closed segment:
    /// segments from the first one holding a record younger than
    /// `min_lag_ms` on are not rewritten, and the pass is worth running only
    /// when the part written since the last cleaning (from `first_dirty` on)
    /// is at least `min_dirty_ratio` of the cleanable bytes, as Kafka's
    /// `min.cleanable.dirty.ratio`. `None`: nothing to do now.
    pub fn select(
        mut self,
        first_dirty: i64,
        now_ms: i64,
        min_lag_ms: i64,
        min_dirty_ratio: f64,
    ) -> Option<CleanPlan> {
        let horizon = now_ms.saturating_sub(min_lag_ms);
        let young = self
            .closed
            .iter()
            // Without a lag every closed segment is cleanable, whatever
            // timestamps producers chose (as in Kafka).
            .position(|s| min_lag_ms > 0 && s.max_timestamp > horizon)
            .unwrap_or(self.closed.len());
        let later = self.closed.split_off(young);
        self.later = later.into_iter().chain(self.later).collect();
        let total: u64 = self.closed.iter().map(|s| s.size).sum();
        let dirty: u64 = self
            .closed
            .iter()
            .filter(|s| s.base_offset >= first_dirty)
            .map(|s| s.size)
            .sum();
        if dirty == 0 || (dirty as f64) < min_dirty_ratio * total as f64 {
            return None;
        }
        Some(self)
    }

    /// The first offset after the rewritten segments: where the next pass's
    /// dirty section starts.
    pub fn cleaned_up_to(&self) -> i64 {
        self.later
            .first()
            .or(self.active.as_ref())
            .map(|s| s.base_offset)
            .unwrap_or(0)
    }
}

/// A cleaned segment waiting to be installed.
#[derive(Debug)]
pub struct Cleaned {
    pub base_offset: i64,
    pub planned_size: u64,
    pub cleaned_path: PathBuf,
    pub records_removed: u64,
}

/// One record inside an uncompressed records section.
struct RawRecord<'a> {
    offset_delta: i64,
    timestamp_delta: i64,
    key: Option<&'a [u8]>,
    tombstone: bool,
    bytes: &'a [u8],
}

fn varint(b: &[u8], pos: &mut usize) -> Result<i64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b
            .get(*pos)
            .ok_or(StorageError::Corrupt("truncated varint"))?;
        *pos += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return Ok(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    Err(StorageError::Corrupt("varint too long"))
}

fn bytes_field<'a>(b: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>> {
    let n = varint(b, pos)?;
    if n < 0 {
        return Ok(None);
    }
    let end = pos
        .checked_add(n as usize)
        .filter(|e| *e <= b.len())
        .ok_or(StorageError::Corrupt("field past record end"))?;
    let s = &b[*pos..end];
    *pos = end;
    Ok(Some(s))
}

/// Smallest encoded record: length, attributes, timestamp delta, offset
/// delta, key length, value length and header count, one byte each.
const MIN_RECORD_LEN: usize = 7;

/// Splits an uncompressed records section into records. `count` comes from
/// the producer, so it only bounds the loop; the allocation is bounded by
/// what the section can hold.
fn records(section: &[u8], count: i32) -> Result<Vec<RawRecord<'_>>> {
    let mut out = Vec::with_capacity((count.max(0) as usize).min(section.len() / MIN_RECORD_LEN));
    let mut pos = 0;
    for _ in 0..count {
        let start = pos;
        let len = varint(section, &mut pos)?;
        let body_start = pos;
        let end = body_start
            .checked_add(len.max(0) as usize)
            .filter(|e| *e <= section.len())
            .ok_or(StorageError::Corrupt("record past batch end"))?;
        let body = &section[..end];
        let mut p = body_start + 1; // attributes
        let timestamp_delta = varint(body, &mut p)?;
        let offset_delta = varint(body, &mut p)?;
        let key = bytes_field(body, &mut p)?;
        let value = bytes_field(body, &mut p)?;
        out.push(RawRecord {
            offset_delta,
            timestamp_delta,
            key,
            tombstone: value.is_none(),
            bytes: &section[start..end],
        });
        pos = end;
    }
    Ok(out)
}

/// Calls `f(header, raw batch, records section)` for every batch of the
/// segment's first `size` bytes. The section is `None` when the batch cannot
/// be decompressed (a codec error or over the caller's size limit): such a
/// batch is kept as it is and its keys take no part in compaction.
fn for_each_batch(
    path: &PathBuf,
    size: u64,
    decompress: Decompress<'_>,
    f: impl FnMut(&BatchHeader, &[u8], Option<&[u8]>) -> Result<()>,
) -> Result<()> {
    let mut file = File::open(path)?;
    let mut data = Vec::with_capacity(size as usize);
    (&mut file).take(size).read_to_end(&mut data)?;
    batches_in(&data, decompress, f)
}

/// [`for_each_batch`] over batches in memory; a truncated last batch is ignored.
fn batches_in(
    data: &[u8],
    decompress: Decompress<'_>,
    mut f: impl FnMut(&BatchHeader, &[u8], Option<&[u8]>) -> Result<()>,
) -> Result<()> {
    let mut pos = 0usize;
    while pos + HEADER_LEN <= data.len() {
        let h = BatchHeader::parse(&data[pos..])?;
        if pos + h.size > data.len() {
            break;
        }
        let raw = &data[pos..pos + h.size];
        let section = &raw[HEADER_LEN..];
        if h.compression() == 0 {
            f(&h, raw, Some(section))?;
        } else {
            match decompress(h.compression(), section) {
                Ok(plain) => f(&h, raw, Some(&plain))?,
                Err(_) => f(&h, raw, None)?,
            }
        }
        pos += h.size;
    }
    Ok(())
}

/// Why a produce request's batches break the rule of compacted topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheckError {
    /// Record `record` (its index within its batch) has no key.
    Keyless { record: usize },
    /// A batch could not be read or decompressed (within the caller's limit).
    Unreadable(String),
}

/// Checks that every record in `batches` (as a producer sent them) has a
/// key, as Kafka requires for topics with `cleanup.policy=compact`.
/// Compressed batches go through `decompress`, which should bound its output.
pub fn check_keys(
    batches: &[u8],
    decompress: Decompress<'_>,
) -> std::result::Result<(), KeyCheckError> {
    let mut found = Ok(());
    let walked = batches_in(batches, decompress, |h, _raw, section| {
        if found.is_err() || h.is_control() {
            return Ok(());
        }
        let Some(section) = section else {
            found = Err(KeyCheckError::Unreadable(
                "cannot decompress the batch".into(),
            ));
            return Ok(());
        };
        if let Some(i) = records(section, h.record_count)?
            .iter()
            .position(|r| r.key.is_none())
        {
            found = Err(KeyCheckError::Keyless { record: i });
        }
        Ok(())
    });
    walked.map_err(|e| KeyCheckError::Unreadable(e.to_string()))?;
    found
}

/// Step 2: builds the key map and writes the cleaned files. `now_ms` and
/// `delete_retention_ms` decide which tombstones are old enough to drop.
pub fn clean(
    plan: &CleanPlan,
    now_ms: i64,
    delete_retention_ms: i64,
    decompress: Decompress<'_>,
) -> Result<Vec<Cleaned>> {
    let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
    for seg in plan
        .closed
        .iter()
        .chain(plan.later.iter())
        .chain(plan.active.iter())
    {
        for_each_batch(&seg.path, seg.size, decompress, |h, _raw, section| {
            let Some(section) = section.filter(|_| plan.fate(h) == Fate::Compact) else {
                return Ok(());
            };
            for r in records(section, h.record_count)? {
                if let Some(k) = r.key {
                    latest.insert(k.to_vec(), h.base_offset + r.offset_delta);
                }
            }
            Ok(())
        })?;
    }
    let mut out = Vec::new();
    for seg in &plan.closed {
        let cleaned_path = seg.path.with_extension("log.cleaned");
        let mut w = std::io::BufWriter::new(File::create(&cleaned_path)?);
        let mut removed = 0u64;
        for_each_batch(&seg.path, seg.size, decompress, |h, raw, section| {
            match plan.fate(h) {
                Fate::Drop => {
                    removed += h.record_count.max(0) as u64;
                    return Ok(());
                }
                Fate::Keep => {
                    w.write_all(raw)?;
                    return Ok(());
                }
                Fate::Compact => {}
            }
            let Some(section) = section else {
                w.write_all(raw)?;
                return Ok(());
            };
            let recs = records(section, h.record_count)?;
            let keep: Vec<&RawRecord<'_>> = recs
                .iter()
                .filter(|r| match r.key {
                    None => true,
                    Some(k) => {
                        let newest = latest.get(k) == Some(&(h.base_offset + r.offset_delta));
                        let expired_tombstone = r.tombstone
                            && h.base_timestamp + r.timestamp_delta < now_ms - delete_retention_ms;
                        newest && !expired_tombstone
                    }
                })
                .collect();
            removed += (recs.len() - keep.len()) as u64;
            if keep.is_empty() {
                return Ok(());
            }
            if keep.len() == recs.len() && h.compression() == 0 {
                w.write_all(raw)?;
                return Ok(());
            }
            let body: Vec<u8> = keep.iter().flat_map(|r| r.bytes.iter().copied()).collect();
            let mut batch = raw[..HEADER_LEN].to_vec();
            batch.extend_from_slice(&body);
            let len = (batch.len() - 12) as i32;
            batch[8..12].copy_from_slice(&len.to_be_bytes());
            let attrs = i16::from_be_bytes([batch[21], batch[22]]) & !0x07; // now uncompressed
            batch[21..23].copy_from_slice(&attrs.to_be_bytes());
            batch[57..61].copy_from_slice(&(keep.len() as i32).to_be_bytes());
            let crc = crc32c::crc32c(&batch[21..]);
            batch[17..21].copy_from_slice(&crc.to_be_bytes());
            w.write_all(&batch)?;
            Ok(())
        })?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        out.push(Cleaned {
            base_offset: seg.base_offset,
            planned_size: seg.size,
            cleaned_path,
            records_removed: removed,
        });
    }
    Ok(out)
}

/// Removes a cleaned file that will not be installed.
pub fn discard(c: &Cleaned) {
    let _ = std::fs::remove_file(&c.cleaned_path);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: i64, size: u64, ts: i64) -> PlannedSegment {
        PlannedSegment {
            base_offset: base,
            path: PathBuf::from(format!("{base}.log")),
            size,
            max_timestamp: ts,
        }
    }

    fn plan() -> CleanPlan {
        CleanPlan {
            closed: vec![seg(0, 100, 1_000), seg(10, 100, 2_000), seg(20, 100, 3_000)],
            later: vec![],
            active: Some(seg(30, 5, 4_000)),
            aborted: vec![],
            stable_offset: 35,
        }
    }

    fn bases(v: &[PlannedSegment]) -> Vec<i64> {
        v.iter().map(|s| s.base_offset).collect()
    }

    #[test]
    fn everything_closed_is_dirty_at_first() {
        let p = plan().select(0, 10_000, 0, 0.5).expect("dirty");
        assert_eq!(bases(&p.closed), vec![0, 10, 20]);
        assert_eq!(p.cleaned_up_to(), 30);
    }

    #[test]
    fn the_dirty_ratio_decides_whether_to_clean() {
        // 100 of 300 cleanable bytes are new since offset 20.
        assert!(plan().select(20, 10_000, 0, 0.5).is_none());
        assert!(plan().select(20, 10_000, 0, 0.3).is_some());
        assert!(plan().select(30, 10_000, 0, 0.0).is_none(), "nothing new");
    }

    #[test]
    fn young_segments_wait_for_the_compaction_lag() {
        // Segments whose newest record is newer than now - lag (2_500) stay.
        let p = plan().select(0, 4_000, 1_500, 0.5).expect("old part");
        assert_eq!(bases(&p.closed), vec![0, 10]);
        assert_eq!(bases(&p.later), vec![20], "still read for its keys");
        assert_eq!(p.cleaned_up_to(), 20);
        assert!(
            plan().select(0, 4_000, 3_500, 0.5).is_none(),
            "all too young"
        );
        // Without a lag, future producer timestamps do not block cleaning.
        let future = CleanPlan {
            closed: vec![seg(0, 100, i64::MAX)],
            later: vec![],
            active: None,
            aborted: vec![],
            stable_offset: 0,
        };
        assert!(future.select(0, 0, 0, 0.5).is_some());
    }
}
