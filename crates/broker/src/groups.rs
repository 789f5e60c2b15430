//! The broker side of the group coordinator: owns the sans-I/O
//! [`Coordinator`], writes the records it emits to `__consumer_offsets`
//! (before delivering the replies of the same step), hands delayed replies
//! to the requests waiting for them, and rebuilds the coordinator from the
//! topic at start.
//!
//! `__consumer_offsets` is created on first use with
//! `offsets.topic.num.partitions` partitions and `cleanup.policy = compact`;
//! a group lives in partition `abs(hash(group id)) % partitions`, as in
//! Kafka. Replay applies records in order (last write wins), so compaction,
//! which keeps the latest record per key and the order, changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use gregor_coordinator::{
    partition_for, Coordinator, CoordinatorRecord, Effects, GroupConfig, Reply, Token,
};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::internal_topic;
use crate::state::{Broker, Topic};

/// Name of the internal offsets topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Whether a topic is internal (not writable by clients).
pub fn is_internal(topic: &str) -> bool {
    topic == OFFSETS_TOPIC || topic == crate::transactions::TXN_TOPIC
}

/// Offset commits of open transactions found in `__consumer_offsets` at
/// start, by producer id: they take effect when the transaction commits.
pub type PendingTxnOffsets = HashMap<i64, Vec<CoordinatorRecord>>;

/// Group state shared by all connections.
pub struct GroupService {
    coordinator: Mutex<Coordinator>,
    pending: Mutex<HashMap<Token, oneshot::Sender<Reply>>>,
    next_token: AtomicU64,
    partitions: i32,
    last_full_tick: AtomicI64,
}

impl std::fmt::Debug for GroupService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupService")
            .field("partitions", &self.partitions)
            .finish()
    }
}

pub use crate::internal_topic::WriteFailed;

impl GroupService {
    pub fn new(
        config: GroupConfig,
        consumer: gregor_coordinator::consumer::ConsumerGroupConfig,
        partitions: i32,
    ) -> Self {
        GroupService {
            coordinator: Mutex::new(Coordinator::new(config).with_consumer_config(consumer)),
            pending: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
            partitions,
            last_full_tick: AtomicI64::new(0),
        }
    }

    /// Replays every record of an existing `__consumer_offsets` topic.
    /// Transactional offset commits wait for their transaction's marker: a
    /// commit replays them, an abort drops them, and those of transactions
    /// still open are returned.
    pub fn load(&self, topic: &Topic, now: i64) -> crate::Result<(usize, PendingTxnOffsets)> {
        let mut coordinator = self.coordinator.lock();
        let mut n = 0;
        let mut open: PendingTxnOffsets = HashMap::new();
        crate::internal_topic::for_each_record(topic, |partition, r| {
            let Some(key) = r.key else { return };
            if r.control {
                let commit = key.len() >= 4 && key[2..4] == [0, 1];
                for rec in open.remove(&r.producer_id).unwrap_or_default() {
                    if commit {
                        coordinator.replay(now, rec);
                        n += 1;
                    }
                }
                return;
            }
            match CoordinatorRecord::decode(&key, r.value.as_deref()) {
                Ok(Some(rec)) if r.transactional => {
                    open.entry(r.producer_id).or_default().push(rec);
                }
                Ok(Some(rec)) => {
                    coordinator.replay(now, rec);
                    n += 1;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(partition, offset = r.offset, error = %e, "skipping malformed record")
                }
            }
        })?;
        Ok((n, open))
    }

    /// Applies offset commits whose transaction committed.
    pub fn apply_committed(&self, now: i64, records: Vec<CoordinatorRecord>) {
        let mut c = self.coordinator.lock();
        for r in records {
            c.replay(now, r);
        }
    }

    /// The `__consumer_offsets` partition of a group, creating the topic on
    /// first use.
    pub fn offsets_partition(
        &self,
        broker: &Broker,
        group: &str,
    ) -> Result<(String, i32), WriteFailed> {
        let topic = self.offsets_topic(broker)?;
        Ok((
            OFFSETS_TOPIC.to_string(),
            partition_for(group, topic.partition_count()),
        ))
    }

    /// Writes TxnOffsetCommit records as a transactional batch of the
    /// producer, to be made visible by its commit marker.
    pub fn write_transactional(
        &self,
        broker: &Broker,
        records: Vec<CoordinatorRecord>,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<(), WriteFailed> {
        self.write_as(broker, records, Some((producer_id, producer_epoch)))
    }

    fn offsets_topic(&self, broker: &Broker) -> Result<Arc<Topic>, WriteFailed> {
        internal_topic::get_or_create(broker, OFFSETS_TOPIC, self.partitions)
    }

    /// Appends the records (grouped into one batch per partition), then
    /// delivers the replies.
    fn apply(&self, broker: &Broker, fx: Effects) -> Result<(), WriteFailed> {
        let mut result = Ok(());
        if !fx.records.is_empty() {
            result = self.write(broker, fx.records);
        }
        let mut pending = self.pending.lock();
        for (token, reply) in fx.replies {
            if let Some(tx) = pending.remove(&token) {
                let _ = tx.send(reply);
            }
        }
        result
    }

    fn write(&self, broker: &Broker, records: Vec<CoordinatorRecord>) -> Result<(), WriteFailed> {
        self.write_as(broker, records, None)
    }

    /// Appends records, one batch per partition; with a producer they form a
    /// transactional batch of that producer.
    fn write_as(
        &self,
        broker: &Broker,
        records: Vec<CoordinatorRecord>,
        producer: Option<(i64, i16)>,
    ) -> Result<(), WriteFailed> {
        let topic = self.offsets_topic(broker)?;
        let mut by_partition: BTreeMap<i32, Vec<(Bytes, Option<Bytes>)>> = BTreeMap::new();
        for r in records {
            let p = partition_for(r.group(), topic.partition_count());
            by_partition.entry(p).or_default().push(r.encode());
        }
        for (p, recs) in by_partition {
            let partition = topic.partition(p).ok_or(WriteFailed)?;
            internal_topic::append(broker, &partition, recs, producer)?;
        }
        Ok(())
    }

    /// Runs a coordinator operation that may reply later: registers a
    /// waiter, runs `op` with its token, applies the effects.
    pub fn run_delayed(
        &self,
        broker: &Broker,
        op: impl FnOnce(&mut Coordinator, i64, Token) -> Effects,
    ) -> oneshot::Receiver<Reply> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(token, tx);
        let mut c = self.coordinator.lock();
        let fx = op(&mut c, broker.clock.now_ms(), token);
        let _ = self.apply(broker, fx);
        rx
    }

    /// Runs a coordinator operation that answers at once, applying its effects.
    pub fn run<T>(
        &self,
        broker: &Broker,
        op: impl FnOnce(&mut Coordinator, i64) -> (Effects, T),
    ) -> Result<T, WriteFailed> {
        let mut c = self.coordinator.lock();
        let (fx, out) = op(&mut c, broker.clock.now_ms());
        self.apply(broker, fx).map(|_| out)
    }

    /// Reads coordinator state.
    pub fn read<T>(&self, f: impl FnOnce(&Coordinator) -> T) -> T {
        f(&self.coordinator.lock())
    }

    /// Timeouts: session expiry, join and sync deadlines, offset expiry.
    pub fn tick(&self, broker: &Broker) {
        let mut c = self.coordinator.lock();
        let now = broker.clock.now_ms();
        // Offset expiry is checked about once a minute; the rest only when due.
        let expiry_due = now - self.last_full_tick.load(Ordering::Relaxed) >= 60_000;
        if !expiry_due && c.next_deadline().is_none_or(|d| d > now) {
            return;
        }
        if expiry_due {
            self.last_full_tick.store(now, Ordering::Relaxed);
        }
        let fx = c.tick(now);
        let _ = self.apply(broker, fx);
    }
}
