//! Idempotent-producer bookkeeping for one partition, as in Kafka's
//! `ProducerStateManager`: per producer id the current epoch and the last five
//! batches (sequence range and offsets), so a retried batch is recognised and
//! answered with its original offsets instead of being appended twice.
//!
//! Transactions: the first offset of every producer's open transaction
//! (the last stable offset is the smallest of them) and the list of aborted
//! transactions that read_committed fetches return, as Kafka keeps in its
//! producer snapshots and `.txnindex` files.
//!
//! State is rebuilt from the log (batch headers, and the marker type of
//! control batches) when a partition is opened, so it survives restarts and
//! `kill -9` exactly as the log does.

use std::collections::{HashMap, VecDeque};

use crate::batch::BatchHeader;
use crate::error::{Result, StorageError};

/// How many recent batches per producer are remembered (Kafka's in-flight limit).
pub const MAX_CACHED_BATCHES: usize = 5;

/// A batch already in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedBatch {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<CachedBatch>,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not a duplicate: append it.
    Append,
    /// A retry of a batch already in the log.
    Duplicate(CachedBatch),
}

/// A transaction ended by an abort marker: read_committed consumers skip
/// the producer's records from `first_offset` up to the marker at `last_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// Producer state of one partition.
#[derive(Debug, Default, Clone)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    /// Producer id → first offset of its open transaction.
    ongoing: HashMap<i64, i64>,
    /// Aborted transactions, in the order of their markers.
    aborted: Vec<AbortedTxn>,
}

impl ProducerStates {
    /// Decides whether `h` may be appended. Errors mean the client must be told
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER` or `INVALID_PRODUCER_EPOCH`.
    pub fn check(&self, h: &BatchHeader) -> Result<SequenceCheck> {
        if h.producer_id < 0 || h.base_sequence < 0 {
            return Ok(SequenceCheck::Append);
        }
        let Some(e) = self.producers.get(&h.producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < e.epoch {
            return Err(StorageError::ProducerFenced {
                producer_id: h.producer_id,
                current: e.epoch,
                got: h.producer_epoch,
            });
        }
        if h.producer_epoch > e.epoch {
            if h.base_sequence != 0 {
                return Err(StorageError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    expected: 0,
                    got: h.base_sequence,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        if let Some(b) = e
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == h.last_sequence())
        {
            return Ok(SequenceCheck::Duplicate(*b));
        }
        let Some(last) = e.batches.back() else {
            return Ok(SequenceCheck::Append);
        };
        let expected = if last.last_seq == i32::MAX {
            0
        } else {
            last.last_seq + 1
        };
        if h.base_sequence != expected {
            return Err(StorageError::OutOfOrderSequence {
                producer_id: h.producer_id,
                expected,
                got: h.base_sequence,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records an appended batch (offsets assigned). For a control batch use
    /// [`ProducerStates::end_transaction`].
    pub fn update(&mut self, h: &BatchHeader) {
        if h.producer_id < 0 {
            return;
        }
        if h.is_transactional() && !h.is_control() {
            self.ongoing.entry(h.producer_id).or_insert(h.base_offset);
        }
        let e = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != e.epoch {
            e.epoch = h.producer_epoch;
            e.batches.clear();
        }
        if h.base_sequence < 0 {
            return;
        }
        if e.batches.len() == MAX_CACHED_BATCHES {
            e.batches.pop_front();
        }
        e.batches.push_back(CachedBatch {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
            timestamp: h.max_timestamp,
        });
    }

    /// Records a transaction marker at `offset`: the producer's open
    /// transaction (if any) ends, and is remembered when it was aborted.
    pub fn end_transaction(&mut self, producer_id: i64, epoch: i16, offset: i64, commit: bool) {
        let e = self.producers.entry(producer_id).or_default();
        if epoch > e.epoch {
            e.epoch = epoch;
            e.batches.clear();
        }
        if let Some(first) = self.ongoing.remove(&producer_id) {
            if !commit {
                self.aborted.push(AbortedTxn {
                    producer_id,
                    first_offset: first,
                    last_offset: offset,
                });
            }
        }
    }

    /// First offset of the oldest open transaction (the last stable offset
    /// is this, or the log end when there is none).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.values().min().copied()
    }

    /// The producer's current epoch, if it has written here.
    pub fn epoch(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|e| e.epoch)
    }

    /// Whether `producer_id` has an open transaction.
    pub fn in_transaction(&self, producer_id: i64) -> bool {
        self.ongoing.contains_key(&producer_id)
    }

    /// Aborted transactions with records in `[from, to)`.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|a| a.last_offset >= from && a.first_offset < to)
            .copied()
            .collect()
    }

    /// Forgets aborted transactions wholly below `offset` (the log start).
    pub fn forget_before(&mut self, offset: i64) {
        self.aborted.retain(|a| a.last_offset >= offset);
    }

    /// Number of producers with state.
    pub fn len(&self) -> usize {
        self.producers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// (producer id, epoch, last sequence, last timestamp, first offset of
    /// the open transaction or -1) of every producer.
    pub fn describe(&self) -> Vec<(i64, i16, i32, i64, i64)> {
        self.producers
            .iter()
            .map(|(id, e)| {
                let last = e.batches.back();
                (
                    *id,
                    e.epoch,
                    last.map(|b| b.last_seq).unwrap_or(-1),
                    last.map(|b| b.timestamp).unwrap_or(-1),
                    self.ongoing.get(id).copied().unwrap_or(-1),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{builder::batch, BatchHeader};

    fn header(pid: i64, epoch: i16, seq: i32, n: usize, base_offset: i64) -> BatchHeader {
        let vals: Vec<&[u8]> = (0..n).map(|_| b"v".as_slice()).collect();
        let mut b = batch(&vals, 0, Some((pid, epoch, seq)));
        crate::batch::assign_offset(&mut b, base_offset, 0);
        BatchHeader::parse(&b).expect("header")
    }

    #[test]
    fn duplicates_gaps_and_fencing() {
        let mut s = ProducerStates::default();
        let a = header(1, 0, 0, 3, 0);
        assert_eq!(s.check(&a).expect("ok"), SequenceCheck::Append);
        s.update(&a);
        // retry of the same batch
        match s.check(&header(1, 0, 0, 3, 99)).expect("dup") {
            SequenceCheck::Duplicate(b) => assert_eq!((b.first_offset, b.last_offset), (0, 2)),
            other => panic!("expected duplicate, got {other:?}"),
        }
        // gap
        assert!(matches!(
            s.check(&header(1, 0, 4, 1, 3)),
            Err(StorageError::OutOfOrderSequence { expected: 3, .. })
        ));
        // next in order
        assert_eq!(
            s.check(&header(1, 0, 3, 1, 3)).expect("ok"),
            SequenceCheck::Append
        );
        // older epoch fenced; newer epoch must restart at 0
        s.update(&header(1, 2, 0, 1, 4));
        assert!(matches!(
            s.check(&header(1, 1, 1, 1, 5)),
            Err(StorageError::ProducerFenced { .. })
        ));
        assert!(s.check(&header(1, 3, 5, 1, 5)).is_err());
        assert_eq!(
            s.check(&header(1, 3, 0, 1, 5)).expect("ok"),
            SequenceCheck::Append
        );
    }

    #[test]
    fn transactions_track_the_stable_offset_and_aborts() {
        let mut s = ProducerStates::default();
        let txn = |pid, base| {
            let mut b = batch(&[b"v".as_slice()], 0, Some((pid, 0, 0)));
            b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
            crate::batch::assign_offset(&mut b, base, 0);
            BatchHeader::parse(&b).expect("header")
        };
        s.update(&header(5, 0, 0, 1, 0)); // plain idempotent: not a transaction
        assert_eq!(s.first_unstable_offset(), None);
        s.update(&txn(1, 1));
        s.update(&txn(2, 2));
        assert_eq!(s.first_unstable_offset(), Some(1));
        s.end_transaction(1, 0, 3, true);
        assert_eq!(s.first_unstable_offset(), Some(2));
        s.end_transaction(2, 0, 4, false);
        assert_eq!(s.first_unstable_offset(), None);
        let aborted = AbortedTxn {
            producer_id: 2,
            first_offset: 2,
            last_offset: 4,
        };
        assert_eq!(s.aborted_between(0, 10), vec![aborted]);
        assert!(s.aborted_between(5, 10).is_empty());
        s.end_transaction(9, 0, 5, false);
        assert_eq!(
            s.aborted_between(0, 10).len(),
            1,
            "a marker without a transaction aborts nothing"
        );
        s.forget_before(5);
        assert!(s.aborted_between(0, 10).is_empty());
    }

    #[test]
    fn only_last_five_batches_are_remembered() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.update(&header(9, 0, i, 1, i as i64));
        }
        assert!(s.check(&header(9, 0, 0, 1, 0)).is_err());
        assert!(matches!(
            s.check(&header(9, 0, 6, 1, 0)).expect("dup"),
            SequenceCheck::Duplicate(_)
        ));
    }
}
