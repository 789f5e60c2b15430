//! One log segment: a `.log` file of record batches plus its two indexes.
//!
//! Files are named by the segment's base offset, zero-padded to 20 digits
//! (`00000000000000000042.log`, `.index`, `.timeindex`), as in Kafka. The
//! `.log` file is a plain concatenation of v2 record batches exactly as
//! clients sent them, except for the broker-assigned base offset and leader
//! epoch (and the max timestamp for LogAppendTime topics).
//!
//! Crash behaviour: appends are `write(2)`s to the end of the file; a crash can
//! leave a partial last batch. [`Segment::recover`] validates every batch's
//! CRC, truncates the file at the first invalid or partial batch, and rebuilds
//! both indexes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::batch::{crc_matches, BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use crate::error::Result;
use crate::index::{OffsetIndex, TimeIndex};

/// File name stem of a segment with this base offset.
pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// Index sizing for a segment.
#[derive(Debug, Clone, Copy)]
pub struct IndexConfig {
    /// Maximum size of each index file while active (`segment.index.bytes`).
    pub max_index_bytes: usize,
    /// Bytes of log between two index entries (`index.interval.bytes`).
    pub index_interval_bytes: usize,
}

/// A segment of a partition's log.
#[derive(Debug)]
pub struct Segment {
    pub base_offset: i64,
    log: File,
    log_path: PathBuf,
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    bytes_since_index: usize,
    /// The offset after the last batch (== base_offset when empty).
    next_offset: i64,
    max_timestamp: i64,
    /// Timestamp of the first batch, or creation time: drives `segment.ms`.
    pub roll_timestamp: i64,
    index_config: IndexConfig,
}

/// Where a batch is in a segment.
#[derive(Debug, Clone, Copy)]
pub struct BatchPosition {
    pub position: u64,
    pub header: BatchHeader,
}

impl Segment {
    fn paths(dir: &Path, base: i64) -> (PathBuf, PathBuf, PathBuf) {
        let stem = file_stem(base);
        (
            dir.join(format!("{stem}.log")),
            dir.join(format!("{stem}.index")),
            dir.join(format!("{stem}.timeindex")),
        )
    }

    /// Creates a new, empty, active segment.
    pub fn create(dir: &Path, base_offset: i64, cfg: IndexConfig, now_ms: i64) -> Result<Self> {
        let (lp, ip, tp) = Self::paths(dir, base_offset);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&lp)?;
        let _ = std::fs::remove_file(&ip);
        let _ = std::fs::remove_file(&tp);
        Ok(Segment {
            base_offset,
            log,
            log_path: lp,
            size: 0,
            offset_index: OffsetIndex::open(&ip, base_offset, cfg.max_index_bytes, true)?,
            time_index: TimeIndex::open(&tp, base_offset, cfg.max_index_bytes, true)?,
            bytes_since_index: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            roll_timestamp: now_ms,
            index_config: cfg,
        })
    }

    /// Opens an existing segment. With `recover`, every batch is CRC-checked,
    /// a torn or corrupt tail is truncated and the indexes are rebuilt;
    /// otherwise indexes are trusted when they pass their sanity check.
    /// `active` preallocates the index files for further appends.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        cfg: IndexConfig,
        active: bool,
        recover: bool,
        now_ms: i64,
    ) -> Result<Self> {
        let (lp, ip, tp) = Self::paths(dir, base_offset);
        let log = OpenOptions::new().read(true).write(true).open(&lp)?;
        let size = log.metadata()?.len();
        let index_missing = !ip.exists() || !tp.exists();
        let mut seg = Segment {
            base_offset,
            log,
            log_path: lp,
            size,
            offset_index: OffsetIndex::open(&ip, base_offset, cfg.max_index_bytes, active)?,
            time_index: TimeIndex::open(&tp, base_offset, cfg.max_index_bytes, active)?,
            bytes_since_index: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            roll_timestamp: now_ms,
            index_config: cfg,
        };
        let sane = !index_missing && seg.offset_index.sane(size) && seg.time_index.sane();
        if recover || !sane {
            if !recover {
                tracing::warn!(segment = %seg.log_path.display(), "index missing or damaged, rebuilding");
            }
            seg.rebuild(recover)?;
            if !active {
                seg.seal()?;
            }
        } else {
            // Trust the index: scan only from the last indexed batch to the end.
            let from = seg.offset_index.last().map(|(_, p)| p as u64).unwrap_or(0);
            let mut last = None;
            for bp in seg.headers_from(from) {
                last = Some(bp?);
            }
            if let Some(bp) = last {
                seg.next_offset = bp.header.last_offset() + 1;
            }
            seg.max_timestamp = seg.time_index.last().map(|(t, _)| t).unwrap_or(-1);
            if let Some(bp) = seg.headers_from(from).next() {
                seg.max_timestamp = seg.max_timestamp.max(bp?.header.max_timestamp);
            }
        }
        if let Some(first) = seg.headers_from(0).next() {
            seg.roll_timestamp = first?.header.max_timestamp.max(0).min(now_ms);
        }
        Ok(seg)
    }

    /// Rebuilds both indexes by scanning the log. With `verify`, checks each
    /// batch's CRC and truncates the file at the first bad or partial batch.
    fn rebuild(&mut self, verify: bool) -> Result<()> {
        self.offset_index.file.clear();
        self.time_index.file.clear();
        self.bytes_since_index = 0;
        self.next_offset = self.base_offset;
        self.max_timestamp = -1;
        let mut pos = 0u64;
        let mut buf = Vec::new();
        let mut header = [0u8; HEADER_LEN];
        while pos < self.size {
            let valid = (|| -> Result<Option<BatchHeader>> {
                if self.size - pos < HEADER_LEN as u64 {
                    return Ok(None);
                }
                self.log.read_exact_at(&mut header, pos)?;
                let h = match BatchHeader::parse(&header) {
                    Ok(h) => h,
                    Err(_) => return Ok(None),
                };
                if pos + h.size as u64 > self.size || h.base_offset < self.next_offset {
                    return Ok(None);
                }
                if verify {
                    buf.resize(h.size, 0);
                    self.log.read_exact_at(&mut buf, pos)?;
                    if !crc_matches(&buf, &h) {
                        return Ok(None);
                    }
                }
                Ok(Some(h))
            })()?;
            let Some(h) = valid else {
                tracing::warn!(segment = %self.log_path.display(), position = pos, size = self.size,
                    "truncating torn or corrupt tail");
                self.log.set_len(pos)?;
                self.size = pos;
                break;
            };
            self.index_batch(&h, pos)?;
            pos += h.size as u64;
        }
        Ok(())
    }

    fn index_batch(&mut self, h: &BatchHeader, position: u64) -> io::Result<()> {
        if self.bytes_since_index >= self.index_config.index_interval_bytes
            || self.offset_index.file.is_empty()
        {
            self.offset_index.append(h.last_offset(), position as u32)?;
            let ts = self.max_timestamp.max(h.max_timestamp);
            self.time_index.maybe_append(ts, h.last_offset())?;
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += h.size;
        self.next_offset = h.last_offset() + 1;
        self.max_timestamp = self.max_timestamp.max(h.max_timestamp);
        Ok(())
    }

    /// Appends one batch whose offsets are already assigned.
    pub fn append(&mut self, batch: &[u8], h: &BatchHeader) -> Result<()> {
        self.log.write_all_at(batch, self.size)?;
        let position = self.size;
        self.size += batch.len() as u64;
        if self.next_offset == self.base_offset {
            self.roll_timestamp = self.roll_timestamp.min(h.max_timestamp.max(0));
        }
        self.index_batch(h, position)?;
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
    /// True when another append could overflow an index or the 32-bit positions.
    pub fn index_full(&self) -> bool {
        self.offset_index.file.is_full() || self.time_index.file.is_full()
    }

    /// Iterates batch headers from a byte position to the end of the segment.
    pub fn headers_from(&self, position: u64) -> HeaderIter<'_> {
        HeaderIter {
            seg: self,
            pos: position,
        }
    }

    /// The first batch whose last offset is `>= offset`.
    pub fn find_offset(&self, offset: i64) -> Result<Option<BatchPosition>> {
        let start = self.offset_index.lookup(offset) as u64;
        for bp in self.headers_from(start) {
            let bp = bp?;
            if bp.header.last_offset() >= offset {
                return Ok(Some(bp));
            }
        }
        Ok(None)
    }

    /// The first batch whose max timestamp is `>= ts`.
    pub fn find_timestamp(&self, ts: i64) -> Result<Option<BatchPosition>> {
        let start = match self.time_index.lookup(ts) {
            Some(off) => self.offset_index.lookup(off) as u64,
            None => 0,
        };
        for bp in self.headers_from(start) {
            let bp = bp?;
            if bp.header.max_timestamp >= ts {
                return Ok(Some(bp));
            }
        }
        Ok(None)
    }

    /// Reads `len` bytes at `position` (clamped to the segment's end).
    pub fn read_at(&self, position: u64, len: usize) -> Result<Vec<u8>> {
        let len = len.min(self.size.saturating_sub(position) as usize);
        let mut buf = vec![0u8; len];
        self.log.read_exact_at(&mut buf, position)?;
        Ok(buf)
    }

    /// Removes every batch at or after `offset` (used by recovery and truncation).
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        if let Some(bp) = self.find_offset(offset)? {
            let pos = if bp.header.base_offset >= offset {
                bp.position
            } else {
                bp.position + bp.header.size as u64
            };
            self.log.set_len(pos)?;
            self.size = pos;
            self.offset_index.truncate_to_position(pos as u32);
            self.time_index.truncate_to_offset(offset);
            self.rebuild(false)?;
        }
        Ok(())
    }

    /// Stops being the active segment: trims the indexes to their entries.
    pub fn seal(&mut self) -> Result<()> {
        self.offset_index.file.trim()?;
        self.time_index.file.trim()?;
        Ok(())
    }

    /// fsyncs the log and flushes the indexes.
    pub fn flush(&self) -> Result<()> {
        self.log.sync_data()?;
        self.offset_index.file.flush()?;
        self.time_index.file.flush()?;
        Ok(())
    }

    /// Deletes the segment's three files.
    pub fn delete(self) -> Result<()> {
        let Segment {
            log,
            log_path,
            offset_index,
            time_index,
            ..
        } = self;
        drop(log);
        std::fs::remove_file(&log_path)?;
        offset_index.file.delete()?;
        time_index.file.delete()?;
        Ok(())
    }

    pub fn log_file(&self) -> &File {
        &self.log
    }

    /// Path of the `.log` file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Paths of the `.index` and `.timeindex` files.
    pub fn index_paths(&self) -> (PathBuf, PathBuf) {
        (
            self.offset_index.file.path().to_path_buf(),
            self.time_index.file.path().to_path_buf(),
        )
    }
}

/// Iterator over the batch headers of a segment, reading each header with one
/// positioned read. Stops at the end, or at a partial batch.
pub struct HeaderIter<'a> {
    seg: &'a Segment,
    pos: u64,
}

impl Iterator for HeaderIter<'_> {
    type Item = Result<BatchPosition>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos + (HEADER_LEN as u64) > self.seg.size {
            return None;
        }
        let mut hb = [0u8; HEADER_LEN];
        if let Err(e) = self.seg.log.read_exact_at(&mut hb, self.pos) {
            return Some(Err(e.into()));
        }
        let h = match BatchHeader::parse(&hb) {
            Ok(h) => h,
            Err(e) => return Some(Err(e)),
        };
        if self.pos + h.size as u64 > self.seg.size || h.size < LOG_OVERHEAD {
            return None;
        }
        let bp = BatchPosition {
            position: self.pos,
            header: h,
        };
        self.pos += h.size as u64;
        Some(Ok(bp))
    }
}
