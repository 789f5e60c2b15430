//! Idempotent-producer bookkeeping for one partition, as in Kafka's
//! `ProducerStateManager`: per producer id the current epoch and the last five
//! batches (sequence range and offsets), so a retried batch is recognised and
//! answered with its original offsets instead of being appended twice.
//!
//! State is rebuilt from the batch headers in the log when a partition is
//! opened, so it survives restarts and `kill -9` exactly as the log does.

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

/// Producer state of one partition.
#[derive(Debug, Default, Clone)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
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

    /// Records an appended batch (offsets assigned).
    pub fn update(&mut self, h: &BatchHeader) {
        if h.producer_id < 0 {
            return;
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

    /// Number of producers with state.
    pub fn len(&self) -> usize {
        self.producers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// (producer id, epoch, last sequence, last timestamp) of every producer.
    pub fn describe(&self) -> Vec<(i64, i16, i32, i64)> {
        self.producers
            .iter()
            .map(|(id, e)| {
                let last = e.batches.back();
                (
                    *id,
                    e.epoch,
                    last.map(|b| b.last_seq).unwrap_or(-1),
                    last.map(|b| b.timestamp).unwrap_or(-1),
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
