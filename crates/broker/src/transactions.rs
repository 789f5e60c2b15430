//! The broker side of the transaction coordinator: owns the sans-I/O
//! [`Transactions`], persists its records to `__transaction_state`, writes
//! transaction markers into the partitions, and makes transactional offset
//! commits visible when their transaction commits.
//!
//! `__transaction_state` is created on first use with
//! `transaction.state.log.num.partitions` partitions and
//! `cleanup.policy = compact`; a transactional id lives in partition
//! `abs(hash(id)) % partitions`, as in Kafka.
//!
//! Ending a transaction, in order: persist Prepare{Commit,Abort}; append a
//! marker to every partition of the transaction (for `__consumer_offsets`
//! this also applies or drops the transaction's offset commits); persist
//! Complete{Commit,Abort}. A crash in between leaves a Prepare record, and
//! start-up finishes the job. All of it runs under one lock, so transaction
//! operations are serialised (they are rare next to produce and fetch).

use gregor_coordinator::transactions::{
    self, code, EndPlan, InitOutcome, Marker, Transactions, TxnRecord, TxnStatus,
};
use gregor_coordinator::{partition_for, CoordinatorRecord};
use parking_lot::Mutex;

use crate::groups::{PendingTxnOffsets, OFFSETS_TOPIC};
use crate::internal_topic;
use crate::state::{Broker, Topic};

/// Name of the internal transaction log topic.
pub const TXN_TOPIC: &str = "__transaction_state";

/// COORDINATOR_NOT_AVAILABLE: what a client hears when a write failed.
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// Why a marker was not written.
enum Unmarked {
    /// The partition does not exist (any more).
    NoPartition,
    /// The producer's epoch in that partition is newer than the marker's.
    Refused(i16),
    /// The append failed (error code for the client).
    Failed(i16),
}

/// Transaction state shared by all connections.
#[derive(Debug, Default)]
pub struct TxnService {
    state: Mutex<Transactions>,
    /// Offset commits of open transactions, by producer id.
    offsets: Mutex<PendingTxnOffsets>,
}

impl TxnService {
    /// Rebuilds the state from `__transaction_state` and adopts the open
    /// transactions' offset commits found in `__consumer_offsets`.
    pub fn load(
        &self,
        topic: Option<&Topic>,
        open_offsets: PendingTxnOffsets,
    ) -> crate::Result<usize> {
        *self.offsets.lock() = open_offsets;
        let Some(topic) = topic else { return Ok(0) };
        let mut state = self.state.lock();
        let mut n = 0;
        crate::internal_topic::for_each_record(topic, |partition, r| {
            let Some(key) = r.key else { return };
            match transactions::decode(&key, r.value.as_deref()) {
                Ok(Some(rec)) => {
                    state.replay(rec);
                    n += 1;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(partition, offset = r.offset, error = %e, "skipping malformed record")
                }
            }
        })?;
        Ok(n)
    }

    /// Finishes transactions a crash left in a Prepare state.
    pub fn recover(&self, broker: &Broker) {
        let mut state = self.state.lock();
        for plan in state.unfinished() {
            tracing::info!(transactional_id = %plan.transactional_id, "finishing a transaction left prepared");
            if let Err(e) = self.finish(broker, &mut state, plan) {
                tracing::error!(error = e, "cannot finish a prepared transaction");
            }
        }
    }

    /// Appends one record to the id's `__transaction_state` partition.
    fn persist(&self, broker: &Broker, rec: &TxnRecord) -> Result<(), i16> {
        let partitions = broker.config().transaction_partitions;
        let topic = internal_topic::get_or_create(broker, TXN_TOPIC, partitions)
            .map_err(|_| COORDINATOR_NOT_AVAILABLE)?;
        let partition = topic
            .partition(partition_for(&rec.0, topic.partition_count()))
            .ok_or(COORDINATOR_NOT_AVAILABLE)?;
        internal_topic::append(broker, &partition, vec![transactions::encode(rec)], None)
            .map_err(|_| COORDINATOR_NOT_AVAILABLE)
    }

    /// Carries out an [`EndPlan`]: markers, then the Complete record.
    fn finish(&self, broker: &Broker, state: &mut Transactions, plan: EndPlan) -> Result<(), i16> {
        let now = broker.clock.now_ms();
        for m in &plan.markers {
            match self.mark(broker, m, 0, now) {
                Ok(()) => {}
                Err(Unmarked::NoPartition) => {} // deleted meanwhile: nothing to mark
                Err(Unmarked::Refused(_)) | Err(Unmarked::Failed(_)) => {
                    return Err(COORDINATOR_NOT_AVAILABLE);
                }
            }
        }
        // Offsets of a transaction whose __consumer_offsets partition was
        // never marked (it added no offsets) cannot exist; drop any leftovers.
        if let Some(pid) = plan.markers.first().map(|m| m.producer_id) {
            self.offsets.lock().remove(&pid);
        }
        if let Some(rec) = state.complete(&plan.transactional_id, now) {
            self.persist(broker, &rec)?;
        }
        Ok(())
    }

    /// Persists Prepare, then finishes; counts the ending by `cause`.
    fn end_with(
        &self,
        broker: &Broker,
        state: &mut Transactions,
        plan: EndPlan,
        cause: &str,
    ) -> Result<(), i16> {
        let commit = plan
            .prepare
            .1
            .as_ref()
            .is_some_and(|m| m.status == TxnStatus::PrepareCommit);
        self.persist(broker, &plan.prepare)?;
        self.finish(broker, state, plan)?;
        broker
            .metrics
            .transaction_ends
            .with_label_values(&[if commit { "commit" } else { "abort" }, cause])
            .inc();
        Ok(())
    }

    /// InitProducerId with a transactional id: (producer id, epoch).
    pub fn init_producer_id(
        &self,
        broker: &Broker,
        id: &str,
        timeout_ms: i32,
    ) -> Result<(i64, i16), i16> {
        let mut state = self.state.lock();
        let max = broker.config().transaction_max_timeout_ms;
        loop {
            let now = broker.clock.now_ms();
            let mut fresh = || broker.allocate_producer_id().ok();
            match state.init(id, timeout_ms, max, now, &mut fresh)? {
                InitOutcome::Ready {
                    record,
                    producer_id,
                    producer_epoch,
                } => {
                    self.persist(broker, &record)?;
                    return Ok((producer_id, producer_epoch));
                }
                InitOutcome::AbortFirst(plan) => {
                    self.end_with(broker, &mut state, plan, "fenced")?
                }
            }
        }
    }

    /// AddPartitionsToTxn.
    pub fn add_partitions(
        &self,
        broker: &Broker,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<(), i16> {
        let mut state = self.state.lock();
        if let Some(rec) =
            state.add_partitions(id, producer_id, epoch, partitions, broker.clock.now_ms())?
        {
            self.persist(broker, &rec)?;
        }
        Ok(())
    }

    /// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction.
    pub fn add_offsets(
        &self,
        broker: &Broker,
        id: &str,
        producer_id: i64,
        epoch: i16,
        group: &str,
    ) -> Result<(), i16> {
        let partition = broker
            .groups
            .offsets_partition(broker, group)
            .map_err(|_| COORDINATOR_NOT_AVAILABLE)?;
        self.add_partitions(broker, id, producer_id, epoch, &[partition])
    }

    /// TxnOffsetCommit: checks the transaction, writes the offsets as the
    /// producer's transactional records and keeps them for the marker.
    pub fn commit_offsets(
        &self,
        broker: &Broker,
        id: &str,
        producer_id: i64,
        epoch: i16,
        records: Vec<CoordinatorRecord>,
    ) -> Result<(), i16> {
        let state = self.state.lock();
        state.check_ongoing(id, producer_id, epoch)?;
        if records.is_empty() {
            return Ok(());
        }
        broker
            .groups
            .write_transactional(broker, records.clone(), producer_id, epoch)
            .map_err(|_| COORDINATOR_NOT_AVAILABLE)?;
        self.offsets
            .lock()
            .entry(producer_id)
            .or_default()
            .extend(records);
        Ok(())
    }

    /// EndTxn.
    pub fn end(
        &self,
        broker: &Broker,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), i16> {
        let mut state = self.state.lock();
        match state.end(id, producer_id, epoch, commit, broker.clock.now_ms())? {
            Some(plan) => self.end_with(broker, &mut state, plan, "client"),
            None => Ok(()),
        }
    }

    /// Aborts open transactions past their timeout (fencing their producers).
    pub fn tick(&self, broker: &Broker) {
        let mut state = self.state.lock();
        for plan in state.expire(broker.clock.now_ms()) {
            tracing::info!(transactional_id = %plan.transactional_id, "transaction timed out; aborting");
            if let Err(e) = self.end_with(broker, &mut state, plan, "timeout") {
                tracing::error!(error = e, "cannot abort a timed-out transaction");
            }
        }
    }

    /// Whether an open transaction has committed an offset for this group
    /// partition (OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT).
    pub fn unstable(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.offsets.lock().values().flatten().any(|r| {
            matches!(r, CoordinatorRecord::Offset { group: g, topic: t, partition: p, .. }
                if g == group && t == topic && *p == partition)
        })
    }

    /// WriteTxnMarkers (what `kafka-transactions.sh abort` sends for a
    /// hanging transaction): appends one marker; an offsets partition also
    /// applies or drops the producer's pending offset commits.
    pub fn write_marker(
        &self,
        broker: &Broker,
        m: &Marker,
        coordinator_epoch: i32,
    ) -> Result<(), i16> {
        const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
        let _serial = self.state.lock();
        match self.mark(broker, m, coordinator_epoch, broker.clock.now_ms()) {
            Ok(()) => Ok(()),
            Err(Unmarked::NoPartition) => Err(UNKNOWN_TOPIC_OR_PARTITION),
            Err(Unmarked::Refused(code) | Unmarked::Failed(code)) => Err(code),
        }
    }

    /// Appends one marker, refusing an epoch older than the producer's
    /// current one in that partition; on `__consumer_offsets` the
    /// producer's pending offset commits are applied (commit) or dropped.
    fn mark(
        &self,
        broker: &Broker,
        m: &Marker,
        coordinator_epoch: i32,
        now: i64,
    ) -> Result<(), Unmarked> {
        let p = broker
            .topic(&m.topic)
            .and_then(|t| t.partition(m.partition))
            .ok_or(Unmarked::NoPartition)?;
        {
            let mut log = p.log.lock();
            let current = log.producer_states().epoch(m.producer_id);
            if current.is_some_and(|e| m.producer_epoch < e) {
                return Err(Unmarked::Refused(code::INVALID_PRODUCER_EPOCH));
            }
            log.append_marker(m.producer_id, m.producer_epoch, m.commit, coordinator_epoch, now)
                .map_err(|e| {
                    tracing::error!(topic = %m.topic, partition = m.partition, error = %e, "cannot write a transaction marker");
                    Unmarked::Failed(crate::handlers::storage_code(&e))
                })?;
            p.publish(&log, 1);
        }
        if m.topic == OFFSETS_TOPIC {
            let records = self
                .offsets
                .lock()
                .remove(&m.producer_id)
                .unwrap_or_default();
            if m.commit {
                broker.groups.apply_committed(now, records);
            }
        }
        Ok(())
    }

    /// Reads the state (DescribeTransactions, ListTransactions).
    pub fn read<T>(&self, f: impl FnOnce(&Transactions) -> T) -> T {
        f(&self.state.lock())
    }
}

/// Error code for a producer that is not (or no longer) the id's current one,
/// as older request versions expect it (PRODUCER_FENCED came with KIP-588).
pub fn fenced_code(error: i16, new_enough: bool) -> i16 {
    if error == code::INVALID_PRODUCER_EPOCH && new_enough {
        code::PRODUCER_FENCED
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::config::BrokerConfig;
    use std::collections::BTreeMap as Map;
    use std::sync::Arc;

    /// A crash after Prepare was persisted but before the markers were
    /// written: the next start writes them and completes the transaction.
    #[test]
    fn a_transaction_left_prepared_is_finished_at_start() {
        let dir = tempfile::tempdir().expect("tmp");
        let config = BrokerConfig {
            data_dir: dir.path().to_path_buf(),
            transaction_partitions: 1,
            ..BrokerConfig::default()
        };
        let b = Broker::open(config.clone(), Arc::new(SystemClock)).expect("open");
        b.create_topic("t", 1, 1, Map::new()).expect("topic");
        let (pid, epoch) = b.txns.init_producer_id(&b, "tx", 60_000).expect("init");
        b.txns
            .add_partitions(&b, "tx", pid, epoch, &[("t".to_string(), 0)])
            .expect("add");
        let p = b.topic("t").and_then(|t| t.partition(0)).expect("t-0");
        let mut batch = gregor_storage::batch::builder::batch(&[b"v"], 1, Some((pid, epoch, 0)));
        batch[21..23].copy_from_slice(&0x10i16.to_be_bytes()); // transactional
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        {
            let mut log = p.log.lock();
            log.append(&mut batch, 0, false, 1).expect("append");
            p.publish(&log, 1);
            assert_eq!(log.last_stable_offset(), 0, "open transaction");
        }
        // EndTxn(commit) up to Prepare only, then the broker dies.
        {
            let mut state = b.txns.state.lock();
            let plan = state
                .end("tx", pid, epoch, true, b.clock.now_ms())
                .expect("end")
                .expect("plan");
            b.txns.persist(&b, &plan.prepare).expect("persist prepare");
        }
        drop((p, b)); // no close: as after kill -9
        let b = Broker::open(config, Arc::new(SystemClock)).expect("reopen");
        let status = b.txns.read(|t| t.get("tx").map(|m| m.status));
        assert_eq!(status, Some(TxnStatus::CompleteCommit));
        let p = b.topic("t").and_then(|t| t.partition(0)).expect("t-0");
        let log = p.log.lock();
        assert_eq!(log.log_end_offset(), 2, "the commit marker was written");
        assert_eq!(log.last_stable_offset(), 2);
        assert!(log.aborted_transactions(0, 2).is_empty());
    }
}
