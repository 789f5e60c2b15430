//! The transaction coordinator as a state machine without I/O: transactional
//! ids, their producer id and epoch, and the partitions of the open
//! transaction. Every change is a record for `__transaction_state`, in
//! Kafka's schema, and the state is rebuilt by replaying them.
//!
//! Record layout (big-endian; `string` is an `i16` length then UTF-8):
//! * key v0: `version: i16 (0), transactional_id: string`
//! * value v0: `version: i16 (0), producer_id: i64, producer_epoch: i16,
//!   transaction_timeout_ms: i32, transaction_status: i8,
//!   transaction_partitions: [topic: string, partition_ids: [i32]],
//!   transaction_last_update_timestamp_ms: i64,
//!   transaction_start_timestamp_ms: i64` (arrays: `i32` count, -1 null)
//!
//! A single broker ends a transaction in one go: the shell persists the
//! PrepareCommit/PrepareAbort record, writes the markers, then persists the
//! Complete record. A Prepare state found at start-up means the markers may
//! be missing; the shell writes them again and completes.

use std::collections::{BTreeSet, HashMap};

use bytes::{BufMut, Bytes, BytesMut};

use crate::records::{Reader, RecordError};

/// Kafka error codes the transaction APIs answer with.
pub mod code {
    pub const NONE: i16 = 0;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub const PRODUCER_FENCED: i16 = 90;
}

/// Kafka's transaction states (the `transaction_status` byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnStatus {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
}

impl TxnStatus {
    fn from_byte(b: i8) -> Option<TxnStatus> {
        Some(match b {
            0 => TxnStatus::Empty,
            1 => TxnStatus::Ongoing,
            2 => TxnStatus::PrepareCommit,
            3 => TxnStatus::PrepareAbort,
            4 => TxnStatus::CompleteCommit,
            5 => TxnStatus::CompleteAbort,
            _ => return None,
        })
    }
    /// The name DescribeTransactions/ListTransactions report.
    pub fn name(self) -> &'static str {
        match self {
            TxnStatus::Empty => "Empty",
            TxnStatus::Ongoing => "Ongoing",
            TxnStatus::PrepareCommit => "PrepareCommit",
            TxnStatus::PrepareAbort => "PrepareAbort",
            TxnStatus::CompleteCommit => "CompleteCommit",
            TxnStatus::CompleteAbort => "CompleteAbort",
        }
    }
}

/// One transactional id's state (also the `__transaction_state` value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub status: TxnStatus,
    /// Partitions of the open transaction, as (topic, partition).
    pub partitions: BTreeSet<(String, i32)>,
    pub last_update_ms: i64,
    pub start_ms: i64,
}

/// A `__transaction_state` record: the id and its state (`None`: deleted).
pub type TxnRecord = (String, Option<TxnMetadata>);

/// A transaction marker to write: the end of `producer_id`'s transaction in
/// one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub topic: String,
    pub partition: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
}

/// Ending a transaction, for the shell to carry out in order: persist
/// `prepare`, write `markers`, then call [`Transactions::complete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndPlan {
    pub transactional_id: String,
    pub prepare: TxnRecord,
    pub markers: Vec<Marker>,
}

/// What InitProducerId needs from the shell besides the state: a fresh
/// producer id when the id is new or its epoch is exhausted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitOutcome {
    /// Done: persist `record`, answer with the id and epoch.
    Ready {
        record: TxnRecord,
        producer_id: i64,
        producer_epoch: i16,
    },
    /// An open transaction must be aborted first (with the bumped epoch, so
    /// the old producer is fenced); afterwards call `init` again.
    AbortFirst(EndPlan),
}

/// Every transactional id this broker coordinates.
#[derive(Debug, Default)]
pub struct Transactions {
    txns: HashMap<String, TxnMetadata>,
}

fn record(id: &str, m: &TxnMetadata) -> TxnRecord {
    (id.to_string(), Some(m.clone()))
}

/// The plan that ends a transaction in a Prepare state: its record, and a
/// marker of the prepared outcome for each of its partitions.
fn end_plan(id: &str, m: &TxnMetadata) -> EndPlan {
    let commit = m.status == TxnStatus::PrepareCommit;
    EndPlan {
        transactional_id: id.to_string(),
        prepare: record(id, m),
        markers: m
            .partitions
            .iter()
            .map(|(topic, partition)| Marker {
                topic: topic.clone(),
                partition: *partition,
                producer_id: m.producer_id,
                producer_epoch: m.producer_epoch,
                commit,
            })
            .collect(),
    }
}

impl Transactions {
    pub fn get(&self, id: &str) -> Option<&TxnMetadata> {
        self.txns.get(id)
    }

    /// Every transactional id, sorted.
    pub fn list(&self) -> Vec<(String, TxnMetadata)> {
        let mut v: Vec<_> = self
            .txns
            .iter()
            .map(|(k, m)| (k.clone(), m.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// InitProducerId with a transactional id; the timeout must lie within
    /// `transaction.max.timeout.ms`. `fresh_id` hands out a new producer id
    /// when needed.
    pub fn init(
        &mut self,
        id: &str,
        timeout_ms: i32,
        max_timeout_ms: i32,
        now: i64,
        fresh_id: &mut dyn FnMut() -> Option<i64>,
    ) -> Result<InitOutcome, i16> {
        if timeout_ms <= 0 || timeout_ms > max_timeout_ms {
            return Err(code::INVALID_TRANSACTION_TIMEOUT);
        }
        match self.txns.get(id).cloned() {
            None => {
                let producer_id = fresh_id().ok_or(code::CONCURRENT_TRANSACTIONS)?;
                let m = TxnMetadata {
                    producer_id,
                    producer_epoch: 0,
                    timeout_ms,
                    status: TxnStatus::Empty,
                    partitions: BTreeSet::new(),
                    last_update_ms: now,
                    start_ms: -1,
                };
                self.txns.insert(id.to_string(), m.clone());
                Ok(InitOutcome::Ready {
                    record: record(id, &m),
                    producer_id,
                    producer_epoch: 0,
                })
            }
            Some(m) if m.status == TxnStatus::Ongoing => Ok(InitOutcome::AbortFirst(
                self.begin_end(id, false, true, now),
            )),
            Some(m) if matches!(m.status, TxnStatus::PrepareCommit | TxnStatus::PrepareAbort) => {
                Err(code::CONCURRENT_TRANSACTIONS)
            }
            Some(mut m) => {
                if m.producer_epoch >= i16::MAX - 1 {
                    m.producer_id = fresh_id().ok_or(code::CONCURRENT_TRANSACTIONS)?;
                    m.producer_epoch = 0;
                } else {
                    m.producer_epoch += 1;
                }
                m.timeout_ms = timeout_ms;
                m.status = TxnStatus::Empty;
                m.partitions.clear();
                m.last_update_ms = now;
                m.start_ms = -1;
                self.txns.insert(id.to_string(), m.clone());
                Ok(InitOutcome::Ready {
                    record: record(id, &m),
                    producer_id: m.producer_id,
                    producer_epoch: m.producer_epoch,
                })
            }
        }
    }

    /// Checks that a request comes from the id's current producer.
    fn check_producer(&self, id: &str, producer_id: i64, epoch: i16) -> Result<&TxnMetadata, i16> {
        let m = self.txns.get(id).ok_or(code::INVALID_PRODUCER_ID_MAPPING)?;
        if m.producer_id != producer_id {
            return Err(code::INVALID_PRODUCER_ID_MAPPING);
        }
        if m.producer_epoch != epoch {
            return Err(code::INVALID_PRODUCER_EPOCH);
        }
        Ok(m)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the transaction (re)opens and
    /// holds these partitions. Returns the record to persist when anything
    /// changed.
    pub fn add_partitions(
        &mut self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        now: i64,
    ) -> Result<Option<TxnRecord>, i16> {
        let m = self.check_producer(id, producer_id, epoch)?;
        if matches!(m.status, TxnStatus::PrepareCommit | TxnStatus::PrepareAbort) {
            return Err(code::CONCURRENT_TRANSACTIONS);
        }
        let new = partitions.iter().any(|p| !m.partitions.contains(p));
        if m.status == TxnStatus::Ongoing && !new {
            return Ok(None);
        }
        let m = self
            .txns
            .get_mut(id)
            .ok_or(code::INVALID_PRODUCER_ID_MAPPING)?;
        if m.status != TxnStatus::Ongoing {
            m.status = TxnStatus::Ongoing;
            m.partitions.clear();
            m.start_ms = now;
        }
        m.partitions.extend(partitions.iter().cloned());
        m.last_update_ms = now;
        Ok(Some(record(id, m)))
    }

    /// Whether `producer_id`/`epoch` is the id's current producer with an
    /// open transaction (TxnOffsetCommit).
    pub fn check_ongoing(&self, id: &str, producer_id: i64, epoch: i16) -> Result<(), i16> {
        let m = self.check_producer(id, producer_id, epoch)?;
        if m.status != TxnStatus::Ongoing {
            return Err(code::INVALID_TXN_STATE);
        }
        Ok(())
    }

    /// EndTxn: `Ok(None)` when the transaction already ended this way (a
    /// retry); otherwise the plan to carry out.
    pub fn end(
        &mut self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now: i64,
    ) -> Result<Option<EndPlan>, i16> {
        let m = self.check_producer(id, producer_id, epoch)?;
        match (m.status, commit) {
            (TxnStatus::Ongoing, _) => Ok(Some(self.begin_end(id, commit, false, now))),
            (TxnStatus::CompleteCommit, true) | (TxnStatus::CompleteAbort, false) => Ok(None),
            (TxnStatus::PrepareCommit | TxnStatus::PrepareAbort, _) => {
                Err(code::CONCURRENT_TRANSACTIONS)
            }
            _ => Err(code::INVALID_TXN_STATE),
        }
    }

    /// Moves an open transaction to Prepare{Commit,Abort}; `fence` bumps the
    /// epoch first so the current producer can no longer write (timeouts and
    /// re-initialisation).
    fn begin_end(&mut self, id: &str, commit: bool, fence: bool, now: i64) -> EndPlan {
        let m = self.txns.get_mut(id).expect("caller checked the id exists");
        if fence && m.producer_epoch < i16::MAX - 1 {
            m.producer_epoch += 1;
        }
        m.status = if commit {
            TxnStatus::PrepareCommit
        } else {
            TxnStatus::PrepareAbort
        };
        m.last_update_ms = now;
        end_plan(id, m)
    }

    /// After the markers are written: Complete{Commit,Abort}. Returns the
    /// record to persist.
    pub fn complete(&mut self, id: &str, now: i64) -> Option<TxnRecord> {
        let m = self.txns.get_mut(id)?;
        m.status = match m.status {
            TxnStatus::PrepareCommit => TxnStatus::CompleteCommit,
            TxnStatus::PrepareAbort => TxnStatus::CompleteAbort,
            _ => return None,
        };
        m.partitions.clear();
        m.last_update_ms = now;
        Some(record(id, m))
    }

    /// Open transactions past their timeout, aborted with a bumped epoch.
    pub fn expire(&mut self, now: i64) -> Vec<EndPlan> {
        let due: Vec<String> = self
            .txns
            .iter()
            .filter(|(_, m)| {
                m.status == TxnStatus::Ongoing && m.start_ms + m.timeout_ms as i64 <= now
            })
            .map(|(id, _)| id.clone())
            .collect();
        due.into_iter()
            .map(|id| self.begin_end(&id, false, true, now))
            .collect()
    }

    /// Transactions left in a Prepare state (after a restart): their markers
    /// must be written again before they complete.
    pub fn unfinished(&self) -> Vec<EndPlan> {
        let mut out: Vec<EndPlan> = self
            .txns
            .iter()
            .filter(|(_, m)| matches!(m.status, TxnStatus::PrepareCommit | TxnStatus::PrepareAbort))
            .map(|(id, m)| end_plan(id, m))
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// Rebuilds state from a `__transaction_state` record.
    pub fn replay(&mut self, (id, value): TxnRecord) {
        match value {
            Some(m) => {
                self.txns.insert(id, m);
            }
            None => {
                self.txns.remove(&id);
            }
        }
    }
}

// ----- Record codec ---------------------------------------------------------

fn put_str(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

/// Encodes a record as (key, value).
pub fn encode((id, value): &TxnRecord) -> (Bytes, Option<Bytes>) {
    let mut k = BytesMut::new();
    k.put_i16(0);
    put_str(&mut k, id);
    let v = value.as_ref().map(|m| {
        let mut v = BytesMut::new();
        v.put_i16(0);
        v.put_i64(m.producer_id);
        v.put_i16(m.producer_epoch);
        v.put_i32(m.timeout_ms);
        v.put_i8(m.status as i8);
        let mut by_topic: Vec<(&str, Vec<i32>)> = Vec::new();
        for (t, p) in &m.partitions {
            match by_topic.last_mut() {
                Some((last, ps)) if *last == t.as_str() => ps.push(*p),
                _ => by_topic.push((t, vec![*p])),
            }
        }
        v.put_i32(by_topic.len() as i32);
        for (t, ps) in by_topic {
            put_str(&mut v, t);
            v.put_i32(ps.len() as i32);
            for p in ps {
                v.put_i32(p);
            }
        }
        v.put_i64(m.last_update_ms);
        v.put_i64(m.start_ms);
        v.freeze()
    });
    (k.freeze(), v)
}

/// Decodes a record; `Ok(None)` for a key version this broker does not know.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<TxnRecord>, RecordError> {
    let mut k = Reader(key);
    if k.i16()? != 0 {
        return Ok(None);
    }
    let id = k.string()?;
    let Some(value) = value else {
        return Ok(Some((id, None)));
    };
    let mut v = Reader(value);
    let _version = v.i16()?;
    let producer_id = v.i64()?;
    let producer_epoch = v.i16()?;
    let timeout_ms = v.i32()?;
    let status = TxnStatus::from_byte(v.i8()?).ok_or(RecordError("unknown transaction status"))?;
    let mut partitions = BTreeSet::new();
    for _ in 0..v.count(6)? {
        let topic = v.string()?;
        for _ in 0..v.count(4)? {
            partitions.insert((topic.clone(), v.i32()?));
        }
    }
    let last_update_ms = v.i64()?;
    let start_ms = v.i64()?;
    Ok(Some((
        id,
        Some(TxnMetadata {
            producer_id,
            producer_epoch,
            timeout_ms,
            status,
            partitions,
            last_update_ms,
            start_ms,
        }),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> impl FnMut() -> Option<i64> {
        let mut next = 100;
        move || {
            next += 1;
            Some(next)
        }
    }

    fn ready(o: InitOutcome) -> (i64, i16) {
        match o {
            InitOutcome::Ready {
                producer_id,
                producer_epoch,
                ..
            } => (producer_id, producer_epoch),
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    #[test]
    fn a_transaction_commits_and_the_next_one_starts_clean() {
        let mut t = Transactions::default();
        let mut fresh = ids();
        let (pid, epoch) = ready(t.init("tx", 60_000, 900_000, 0, &mut fresh).expect("init"));
        assert_eq!((pid, epoch), (101, 0));
        let parts = vec![("a".to_string(), 0), ("b".to_string(), 1)];
        assert!(t
            .add_partitions("tx", pid, epoch, &parts, 5)
            .expect("add")
            .is_some());
        assert!(
            t.add_partitions("tx", pid, epoch, &parts[..1], 6)
                .expect("again")
                .is_none(),
            "nothing new"
        );
        assert_eq!(
            t.end("tx", pid, epoch + 1, true, 7),
            Err(code::INVALID_PRODUCER_EPOCH)
        );
        let plan = t
            .end("tx", pid, epoch, true, 7)
            .expect("end")
            .expect("plan");
        assert_eq!(plan.markers.len(), 2);
        assert!(plan
            .markers
            .iter()
            .all(|m| m.commit && m.producer_epoch == 0));
        assert_eq!(
            t.add_partitions("tx", pid, epoch, &parts, 8),
            Err(code::CONCURRENT_TRANSACTIONS)
        );
        t.complete("tx", 8).expect("complete");
        assert_eq!(
            t.end("tx", pid, epoch, true, 9),
            Ok(None),
            "a retried commit succeeds"
        );
        assert_eq!(
            t.end("tx", pid, epoch, false, 9),
            Err(code::INVALID_TXN_STATE)
        );
        t.add_partitions("tx", pid, epoch, &parts[1..], 10)
            .expect("next txn");
        assert_eq!(t.get("tx").expect("tx").partitions.len(), 1);
    }

    #[test]
    fn reinitialising_aborts_the_open_transaction_and_fences_the_old_producer() {
        let mut t = Transactions::default();
        let mut fresh = ids();
        let (pid, epoch) = ready(t.init("tx", 60_000, 900_000, 0, &mut fresh).expect("init"));
        t.add_partitions("tx", pid, epoch, &[("a".into(), 0)], 1)
            .expect("add");
        let InitOutcome::AbortFirst(plan) =
            t.init("tx", 60_000, 900_000, 2, &mut fresh).expect("init")
        else {
            panic!("expected an abort first");
        };
        assert_eq!(
            plan.markers[0].producer_epoch, 1,
            "markers carry the bumped epoch"
        );
        assert!(!plan.markers[0].commit);
        t.complete("tx", 3).expect("complete");
        assert_eq!(
            ready(t.init("tx", 60_000, 900_000, 4, &mut fresh).expect("init")),
            (pid, 2)
        );
        assert_eq!(
            t.add_partitions("tx", pid, 0, &[("a".into(), 0)], 5),
            Err(code::INVALID_PRODUCER_EPOCH)
        );
        assert_eq!(
            t.init("tx", 0, 900_000, 5, &mut fresh),
            Err(code::INVALID_TRANSACTION_TIMEOUT)
        );
    }

    #[test]
    fn timeouts_abort_and_replay_restores_prepared_transactions() {
        let mut t = Transactions::default();
        let mut fresh = ids();
        let (pid, epoch) = ready(t.init("slow", 1_000, 900_000, 0, &mut fresh).expect("init"));
        t.add_partitions("slow", pid, epoch, &[("a".into(), 3)], 100)
            .expect("add");
        assert!(t.expire(1_099).is_empty());
        let plans = t.expire(1_100);
        assert_eq!(plans.len(), 1);
        // Crash before completing: a fresh coordinator replays the Prepare record.
        let mut again = Transactions::default();
        let (k, v) = encode(&plans[0].prepare);
        again.replay(decode(&k, v.as_deref()).expect("decode").expect("known"));
        let redo = again.unfinished();
        assert_eq!(redo.len(), 1);
        assert_eq!(redo[0].markers, plans[0].markers);
        assert_eq!(
            again.get("slow").expect("slow").status,
            TxnStatus::PrepareAbort
        );
    }

    #[test]
    fn records_round_trip_and_garbage_is_an_error() {
        let m = TxnMetadata {
            producer_id: 7,
            producer_epoch: 3,
            timeout_ms: 60_000,
            status: TxnStatus::Ongoing,
            partitions: [
                ("a".to_string(), 1),
                ("a".to_string(), 2),
                ("b".to_string(), 0),
            ]
            .into_iter()
            .collect(),
            last_update_ms: 5,
            start_ms: 4,
        };
        let r: TxnRecord = ("tx".into(), Some(m));
        let (k, v) = encode(&r);
        assert_eq!(decode(&k, v.as_deref()), Ok(Some(r)));
        assert_eq!(decode(&k, None), Ok(Some(("tx".into(), None))));
        let mut hostile = v.expect("value").to_vec();
        hostile[17..21].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode(&k, Some(&hostile)).is_err());
    }
}
