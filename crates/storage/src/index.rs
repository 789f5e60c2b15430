//! Sparse, memory-mapped segment indexes in Kafka's on-disk format.
//!
//! * `.index` ([`OffsetIndex`]): 8-byte entries, `relative offset: u32 BE` then
//!   `file position: u32 BE`. An entry `(o, p)` says: the batch that ends at
//!   offset `base + o` starts at byte `p` of the `.log` file, so any offset
//!   `>= base + o` lies at or after `p`.
//! * `.timeindex` ([`TimeIndex`]): 12-byte entries, `timestamp: i64 BE` then
//!   `relative offset: u32 BE`: every record at or after that offset has been
//!   preceded by a record with at least that timestamp.
//!
//! Entries are appended every `index.interval.bytes` of log. While a segment is
//! active its index files are preallocated to `segment.index.bytes` (sparse
//! zeros on disk) and trimmed to their entries when the segment is rolled or
//! closed. Indexes carry no checksum: after an unclean shutdown the active
//! segment's indexes are rebuilt from the log, and an index that fails
//! [`IndexFile::sane`] is rebuilt too.
//!
//! Not thread-safe: the owning `Log` serialises access.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

/// A file of fixed-size entries mapped into memory.
#[derive(Debug)]
pub struct IndexFile {
    path: PathBuf,
    file: File,
    mmap: Option<MmapMut>,
    entry_size: usize,
    entries: usize,
    capacity: usize,
}

impl IndexFile {
    /// Opens or creates an index. Existing entries are taken to be the file
    /// length divided by the entry size (the file was trimmed at close). With
    /// `preallocate` the file is grown to `max_bytes` for appends.
    pub fn open(
        path: &Path,
        entry_size: usize,
        max_bytes: usize,
        preallocate: bool,
    ) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len() as usize;
        let entries = len / entry_size;
        let mut idx = IndexFile {
            path: path.to_path_buf(),
            file,
            mmap: None,
            entry_size,
            entries,
            capacity: entries,
        };
        if preallocate {
            idx.resize((max_bytes / entry_size).max(entries + 1))?;
        } else {
            idx.map()?;
        }
        Ok(idx)
    }

    fn map(&mut self) -> io::Result<()> {
        self.mmap = None;
        if self.capacity > 0 {
            // SAFETY: the file is private to this process's log directory and
            // only ever resized through `resize`, which drops the map first.
            #[allow(unsafe_code)]
            let m = unsafe { MmapMut::map_mut(&self.file)? };
            self.mmap = Some(m);
        }
        Ok(())
    }

    fn resize(&mut self, capacity: usize) -> io::Result<()> {
        if let Some(m) = self.mmap.take() {
            m.flush()?;
        }
        self.file.set_len((capacity * self.entry_size) as u64)?;
        self.capacity = capacity;
        self.entries = self.entries.min(capacity);
        self.map()
    }

    /// Shrinks the file to its entries (called when a segment stops being active).
    pub fn trim(&mut self) -> io::Result<()> {
        self.resize(self.entries)
    }

    /// Flushes the mapped pages to disk.
    pub fn flush(&self) -> io::Result<()> {
        match &self.mmap {
            Some(m) => m.flush(),
            None => Ok(()),
        }
    }

    pub fn len(&self) -> usize {
        self.entries
    }
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
    pub fn is_full(&self) -> bool {
        self.entries >= self.capacity
    }
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn entry(&self, i: usize) -> &[u8] {
        match &self.mmap {
            Some(m) => &m[i * self.entry_size..(i + 1) * self.entry_size],
            None => &[],
        }
    }

    fn push(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.is_full() {
            let cap = (self.capacity * 2).max(64);
            self.resize(cap)?;
        }
        let at = self.entries * self.entry_size;
        if let Some(m) = self.mmap.as_mut() {
            m[at..at + self.entry_size].copy_from_slice(bytes);
        }
        self.entries += 1;
        Ok(())
    }

    /// Drops every entry (before a rebuild).
    pub fn clear(&mut self) {
        self.entries = 0;
    }

    /// Removes entries from `n` on.
    pub fn truncate_entries(&mut self, n: usize) {
        self.entries = self.entries.min(n);
    }

    /// Largest index `i` with `key(i) <= target`, by binary search.
    fn floor_by<K: Ord>(&self, target: K, key: impl Fn(&[u8]) -> K) -> Option<usize> {
        let (mut lo, mut hi) = (0usize, self.entries);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if key(self.entry(mid)) <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }

    /// Deletes the file.
    pub fn delete(mut self) -> io::Result<()> {
        self.mmap = None;
        std::fs::remove_file(&self.path)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

/// The `.index` file of one segment.
#[derive(Debug)]
pub struct OffsetIndex {
    pub file: IndexFile,
    base_offset: i64,
}

impl OffsetIndex {
    pub const ENTRY: usize = 8;

    pub fn open(
        path: &Path,
        base_offset: i64,
        max_bytes: usize,
        preallocate: bool,
    ) -> io::Result<Self> {
        Ok(OffsetIndex {
            file: IndexFile::open(path, Self::ENTRY, max_bytes, preallocate)?,
            base_offset,
        })
    }

    /// Entry `i` as (absolute offset, position).
    pub fn get(&self, i: usize) -> (i64, u32) {
        let e = self.file.entry(i);
        (self.base_offset + u32_at(e, 0) as i64, u32_at(e, 4))
    }

    pub fn last(&self) -> Option<(i64, u32)> {
        self.file.len().checked_sub(1).map(|i| self.get(i))
    }

    /// Appends `(offset, position)`; offsets must grow.
    pub fn append(&mut self, offset: i64, position: u32) -> io::Result<()> {
        let mut e = [0u8; 8];
        e[0..4].copy_from_slice(&((offset - self.base_offset) as u32).to_be_bytes());
        e[4..8].copy_from_slice(&position.to_be_bytes());
        self.file.push(&e)
    }

    /// Position to start scanning from for `offset`: that of the largest entry
    /// at or below it, or 0.
    pub fn lookup(&self, offset: i64) -> u32 {
        let rel = (offset - self.base_offset).max(0) as u64;
        self.file
            .floor_by(rel, |e| u32_at(e, 0) as u64)
            .map(|i| self.get(i).1)
            .unwrap_or(0)
    }

    /// Entries strictly increase in offset, positions do not decrease and lie
    /// inside a log of `log_size` bytes.
    pub fn sane(&self, log_size: u64) -> bool {
        let mut prev: Option<(i64, u32)> = None;
        for i in 0..self.file.len() {
            let (o, p) = self.get(i);
            if p as u64 >= log_size.max(1) {
                return false;
            }
            if let Some((po, pp)) = prev {
                if o <= po || p < pp {
                    return false;
                }
            }
            prev = Some((o, p));
        }
        true
    }

    /// Keeps only entries whose position is below `position`.
    pub fn truncate_to_position(&mut self, position: u32) {
        let keep = (0..self.file.len())
            .take_while(|&i| self.get(i).1 < position)
            .count();
        self.file.truncate_entries(keep);
    }
}

/// The `.timeindex` file of one segment.
#[derive(Debug)]
pub struct TimeIndex {
    pub file: IndexFile,
    base_offset: i64,
}

impl TimeIndex {
    pub const ENTRY: usize = 12;

    pub fn open(
        path: &Path,
        base_offset: i64,
        max_bytes: usize,
        preallocate: bool,
    ) -> io::Result<Self> {
        Ok(TimeIndex {
            file: IndexFile::open(path, Self::ENTRY, max_bytes, preallocate)?,
            base_offset,
        })
    }

    /// Entry `i` as (timestamp, absolute offset).
    pub fn get(&self, i: usize) -> (i64, i64) {
        let e = self.file.entry(i);
        (i64_at(e, 0), self.base_offset + u32_at(e, 8) as i64)
    }

    pub fn last(&self) -> Option<(i64, i64)> {
        self.file.len().checked_sub(1).map(|i| self.get(i))
    }

    /// Appends `(timestamp, offset)` if the timestamp is larger than the last one.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) -> io::Result<()> {
        if let Some((t, o)) = self.last() {
            if timestamp <= t || offset < o {
                return Ok(());
            }
        }
        let mut e = [0u8; 12];
        e[0..8].copy_from_slice(&timestamp.to_be_bytes());
        e[8..12].copy_from_slice(&((offset - self.base_offset) as u32).to_be_bytes());
        self.file.push(&e)
    }

    /// Offset of the largest entry with a timestamp at or below `ts`.
    pub fn lookup(&self, ts: i64) -> Option<i64> {
        self.file
            .floor_by(ts, |e| i64_at(e, 0))
            .map(|i| self.get(i).1)
    }

    /// Timestamps and offsets never decrease.
    pub fn sane(&self) -> bool {
        (1..self.file.len()).all(|i| {
            let (t0, o0) = self.get(i - 1);
            let (t1, o1) = self.get(i);
            t1 >= t0 && o1 >= o0 && o0 >= self.base_offset
        })
    }

    /// Keeps only entries for offsets below `offset`.
    pub fn truncate_to_offset(&mut self, offset: i64) {
        let keep = (0..self.file.len())
            .take_while(|&i| self.get(i).1 < offset)
            .count();
        self.file.truncate_entries(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_and_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("00000000000000000100.index");
        let mut idx = OffsetIndex::open(&p, 100, 1024, true).expect("open");
        assert_eq!(idx.lookup(150), 0);
        idx.append(110, 4096).expect("append");
        idx.append(130, 8192).expect("append");
        assert_eq!(idx.lookup(105), 0);
        assert_eq!(idx.lookup(110), 4096);
        assert_eq!(idx.lookup(129), 4096);
        assert_eq!(idx.lookup(1000), 8192);
        assert!(idx.sane(9000));
        assert!(!idx.sane(8000));
        idx.file.trim().expect("trim");
        drop(idx);
        assert_eq!(std::fs::metadata(&p).expect("meta").len(), 16);
        let idx = OffsetIndex::open(&p, 100, 1024, false).expect("reopen");
        assert_eq!(idx.file.len(), 2);
        assert_eq!(idx.get(1), (130, 8192));
    }

    #[test]
    fn time_index_only_grows() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("0.timeindex");
        let mut idx = TimeIndex::open(&p, 0, 1200, true).expect("open");
        idx.maybe_append(1000, 0).expect("a");
        idx.maybe_append(900, 5).expect("b");
        idx.maybe_append(2000, 10).expect("c");
        assert_eq!(idx.file.len(), 2);
        assert_eq!(idx.lookup(999), None);
        assert_eq!(idx.lookup(1500), Some(0));
        assert_eq!(idx.lookup(2000), Some(10));
        assert!(idx.sane());
    }

    #[test]
    fn grows_past_preallocation() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("0.index");
        let mut idx = OffsetIndex::open(&p, 0, 16, true).expect("open");
        for i in 0..100 {
            idx.append(i, i as u32 * 10).expect("append");
        }
        assert_eq!(idx.lookup(57), 570);
    }
}
