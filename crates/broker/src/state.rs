//! The broker's shared state: topics, their partitions' logs, and the
//! metadata that must survive restarts.
//!
//! On disk, in the data directory (`log.dirs`):
//! * `gregor-metadata.json`: cluster id, node id, the producer-id block,
//!   every topic (name, topic id, partition count, config overrides) and the
//!   dynamic broker configs (this broker's and the cluster defaults). Written
//!   atomically (temp file, fsync, rename) on every change.
//! * `<topic>-<partition>/`: one partition log (see `gregor_storage::Log`).
//! * `.clean-shutdown`: present only after a graceful stop; when missing at
//!   start, active segments are recovered (CRC-checked, torn tails truncated).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use gregor_storage::{Log, LogConfig};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::clock::Clock;
use crate::config::{self, BrokerConfig, ConfigLayers};
use crate::error::{BrokerError, Result};
use crate::groups::{GroupService, OFFSETS_TOPIC};
use crate::topic_config;

const METADATA_FILE: &str = "gregor-metadata.json";
const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";
const PRODUCER_ID_BLOCK: i64 = 1000;

/// One partition: its log plus what readers need without taking the lock.
#[derive(Debug)]
pub struct Partition {
    pub index: i32,
    pub log: Mutex<Log>,
    /// Woken after every append (long-polling fetches wait on it).
    pub appended: Notify,
    high_watermark: AtomicI64,
    log_start_offset: AtomicI64,
    unflushed: AtomicI64,
    /// Every offset below this is fsynced.
    durable: AtomicI64,
    /// Serialises fsyncs so a caller never returns before the fsync covering
    /// its records has finished.
    flush_lock: Mutex<()>,
    /// The log cleaner's checkpoint: offsets below were compacted by its last
    /// pass (kept in memory; after a restart the whole log counts as dirty).
    pub cleaned_up_to: AtomicI64,
}

impl Partition {
    fn new(index: i32, log: Log) -> Self {
        let p = Partition {
            index,
            high_watermark: AtomicI64::new(log.log_end_offset()),
            log_start_offset: AtomicI64::new(log.log_start_offset()),
            log: Mutex::new(log),
            appended: Notify::new(),
            unflushed: AtomicI64::new(0),
            durable: AtomicI64::new(0),
            flush_lock: Mutex::new(()),
            cleaned_up_to: AtomicI64::new(0),
        };
        p.appended.notify_waiters();
        p
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }
    /// Publishes the log's offsets after a change and wakes waiting fetches.
    pub fn publish(&self, log: &Log, appended_records: i64) {
        self.log_start_offset
            .store(log.log_start_offset(), Ordering::Release);
        self.high_watermark
            .store(log.log_end_offset(), Ordering::Release);
        if appended_records > 0 {
            self.unflushed.fetch_add(appended_records, Ordering::AcqRel);
            self.appended.notify_waiters();
        }
    }
    /// Records appended since the last flush.
    pub fn unflushed(&self) -> i64 {
        self.unflushed.load(Ordering::Acquire)
    }
    /// fsyncs everything appended so far (blocking: call from a blocking
    /// thread).
    pub fn flush(&self) -> Result<()> {
        self.flush_to(self.high_watermark())
    }

    /// Returns once every offset below `target` is fsynced. The fsync runs on
    /// a duplicate file handle without holding the log lock, so appends and
    /// reads continue meanwhile; concurrent callers wait for the fsync that
    /// covers them instead of returning early.
    pub fn flush_to(&self, target: i64) -> Result<()> {
        if self.durable.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let _serial = self.flush_lock.lock();
        if self.durable.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let pending = self.unflushed.swap(0, Ordering::AcqRel);
        let (handle, end) = {
            let mut log = self.log.lock();
            (log.flush_handle(), log.log_end_offset())
        };
        let result = match handle {
            Ok(Some(f)) => f.sync_data().map_err(crate::error::BrokerError::from),
            Ok(None) => Ok(()),
            Err(e) => Err(e.into()),
        };
        match &result {
            Ok(()) => self.durable.fetch_max(end, Ordering::AcqRel),
            Err(_) => {
                self.log.lock().mark_dirty();
                self.unflushed.fetch_add(pending, Ordering::AcqRel);
                0
            }
        };
        result
    }
}

/// A topic and its partitions.
#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub partitions: RwLock<Vec<Arc<Partition>>>,
    pub configs: RwLock<BTreeMap<String, String>>,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.read().get(i).cloned())
    }
    pub fn partition_count(&self) -> i32 {
        self.partitions.read().len() as i32
    }
}

#[derive(Debug, Serialize, Deserialize, Default)]
struct MetadataFile {
    cluster_id: String,
    node_id: i32,
    producer_id_block_end: i64,
    topics: Vec<TopicRecord>,
    /// Dynamic configs of this broker (IncrementalAlterConfigs on BROKER `node.id`).
    #[serde(default)]
    broker_configs: BTreeMap<String, String>,
    /// Dynamic cluster-wide defaults (IncrementalAlterConfigs on BROKER "").
    #[serde(default)]
    default_broker_configs: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize, Clone)]
struct TopicRecord {
    name: String,
    id: Uuid,
    partitions: i32,
    configs: BTreeMap<String, String>,
}

#[derive(Default)]
struct Topics {
    by_name: HashMap<String, Arc<Topic>>,
    by_id: HashMap<Uuid, Arc<Topic>>,
}

/// Why a topic operation was refused (mapped to Kafka error codes by handlers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicError {
    InvalidName(String),
    AlreadyExists,
    UnknownTopic,
    InvalidPartitions(String),
    InvalidReplicationFactor(String),
    InvalidConfig(String),
    Disabled,
    Internal(String),
}

/// Which BROKER resource a dynamic config change addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerScope {
    /// The resource named by this broker's `node.id`.
    Node,
    /// The resource with an empty name: the cluster-wide default.
    ClusterDefault,
}

/// Why a broker config change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerConfigError {
    /// Unknown or static key, or a value out of bounds (INVALID_REQUEST in Kafka).
    Invalid(String),
    /// The change could not be persisted.
    Internal(String),
}

/// The shared state of one broker.
pub struct Broker {
    /// The configuration the process started with (defaults, file, environment).
    static_config: Arc<BrokerConfig>,
    /// The effective configuration: static plus dynamic changes. Swapped
    /// whole on every change; readers keep the snapshot they took.
    config: RwLock<Arc<BrokerConfig>>,
    /// Woken after every dynamic config change (periodic tasks re-read their intervals).
    pub config_changed: Notify,
    pub clock: Arc<dyn Clock>,
    pub cluster_id: String,
    topics: RwLock<Topics>,
    /// Serialises metadata changes and their persistence.
    meta: Mutex<MetadataFile>,
    next_producer_id: Mutex<i64>,
    /// Consumer groups and committed offsets.
    pub groups: GroupService,
    /// Transactions.
    pub txns: crate::transactions::TxnService,
    /// Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("cluster_id", &self.cluster_id)
            .finish()
    }
}

/// Kafka's topic-name rule: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err(format!("Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"));
    }
    Ok(())
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, data)?;
    fs::File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl Broker {
    /// Opens the data directory: loads metadata and every partition log,
    /// recovering them if the last shutdown was not clean.
    pub fn open(config: BrokerConfig, clock: Arc<dyn Clock>) -> Result<Arc<Broker>> {
        let dir = config.data_dir.clone();
        fs::create_dir_all(&dir)?;
        let meta_path = dir.join(METADATA_FILE);
        let mut meta: MetadataFile = match fs::read(&meta_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| BrokerError::Metadata {
                path: meta_path.display().to_string(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MetadataFile::default(),
            Err(e) => return Err(e.into()),
        };
        if meta.cluster_id.is_empty() {
            meta.cluster_id = cluster_id_from(Uuid::new_v4());
        }
        meta.node_id = config.node_id;
        let static_config = Arc::new(config);
        // A stored value that no longer validates (an older or newer version
        // wrote it) is dropped with a warning rather than keeping the broker down.
        for layer in [&mut meta.default_broker_configs, &mut meta.broker_configs] {
            layer.retain(|k, v| {
                let usable = config::find(k).is_some_and(|d| d.dynamic)
                    && (*static_config).clone().set(k, v).is_ok();
                if !usable {
                    tracing::warn!(key = %k, value = %v, "ignoring a stored dynamic broker config");
                }
                usable
            });
        }
        let layers = ConfigLayers {
            node: meta.broker_configs.clone(),
            cluster: meta.default_broker_configs.clone(),
            static_config: static_config.clone(),
        };
        let config = layers.compose().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "ignoring stored dynamic broker configs");
            meta.broker_configs.clear();
            meta.default_broker_configs.clear();
            (*static_config).clone()
        });
        if !meta.broker_configs.is_empty() || !meta.default_broker_configs.is_empty() {
            tracing::info!(node = ?meta.broker_configs, cluster = ?meta.default_broker_configs, "dynamic broker configs applied");
        }
        let clean_marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = clean_marker.exists();
        if clean {
            fs::remove_file(&clean_marker)?;
        } else if !meta.topics.is_empty() {
            tracing::warn!(dir = %dir.display(), "previous shutdown was not clean; recovering logs");
        }
        let now = clock.now_ms();
        let mut topics = Topics::default();
        for rec in &meta.topics {
            let topic = Self::open_topic(&config, rec, !clean, now)?;
            topics.by_id.insert(topic.id, topic.clone());
            topics.by_name.insert(topic.name.clone(), topic);
        }
        let next_pid = meta.producer_id_block_end;
        let groups = GroupService::new(
            config.group,
            config.consumer_group,
            config.offsets_topic_partitions,
        );
        let mut pending_txn_offsets = Default::default();
        if let Some(t) = topics.by_name.get(OFFSETS_TOPIC) {
            let (n, open) = groups.load(t, now)?;
            pending_txn_offsets = open;
            tracing::info!(
                records = n,
                "consumer groups loaded from __consumer_offsets"
            );
        }
        let txns = crate::transactions::TxnService::default();
        let n = txns.load(
            topics
                .by_name
                .get(crate::transactions::TXN_TOPIC)
                .map(|t| t.as_ref()),
            pending_txn_offsets,
        )?;
        if n > 0 {
            tracing::info!(records = n, "transactions loaded from __transaction_state");
        }
        let broker = Broker {
            groups,
            txns,
            metrics: crate::metrics::Metrics::new(),
            cluster_id: meta.cluster_id.clone(),
            static_config,
            config: RwLock::new(Arc::new(config)),
            config_changed: Notify::new(),
            clock,
            topics: RwLock::new(topics),
            meta: Mutex::new(meta),
            next_producer_id: Mutex::new(next_pid),
        };
        broker.persist(&broker.meta.lock())?;
        broker.txns.recover(&broker);
        tracing::info!(dir = %dir.display(), topics = broker.topics.read().by_name.len(), clean, "data directory loaded");
        Ok(Arc::new(broker))
    }

    fn partition_dir(config: &BrokerConfig, topic: &str, p: i32) -> PathBuf {
        config.data_dir.join(format!("{topic}-{p}"))
    }

    fn open_topic(
        config: &BrokerConfig,
        rec: &TopicRecord,
        recover: bool,
        now: i64,
    ) -> Result<Arc<Topic>> {
        let log_config = topic_config::log_config(&rec.configs, config);
        let mut parts = Vec::with_capacity(rec.partitions as usize);
        for p in 0..rec.partitions {
            let log = Log::open(
                &Self::partition_dir(config, &rec.name, p),
                log_config,
                recover,
                now,
            )?;
            parts.push(Arc::new(Partition::new(p, log)));
        }
        Ok(Arc::new(Topic {
            name: rec.name.clone(),
            id: rec.id,
            partitions: RwLock::new(parts),
            configs: RwLock::new(rec.configs.clone()),
        }))
    }

    /// The effective configuration (a snapshot: dynamic changes made later
    /// are not reflected in it).
    pub fn config(&self) -> Arc<BrokerConfig> {
        self.config.read().clone()
    }

    /// The layers broker configs resolve through, for DescribeConfigs.
    pub fn config_layers(&self) -> ConfigLayers {
        let meta = self.meta.lock();
        ConfigLayers {
            node: meta.broker_configs.clone(),
            cluster: meta.default_broker_configs.clone(),
            static_config: self.static_config.clone(),
        }
    }

    /// Changes dynamic broker configs of `scope`: `changes` maps a key to
    /// `Some(value)` to set and `None` to remove; `replace` first drops every
    /// dynamic config of the scope (AlterConfigs). Only keys marked dynamic in
    /// [`config::BROKER_CONFIGS`] are accepted. The change is persisted, then
    /// takes effect at once: topics without an override pick up new log
    /// defaults, and periodic tasks read their new intervals.
    pub fn alter_broker_configs(
        &self,
        scope: BrokerScope,
        changes: &[(String, Option<String>)],
        replace: bool,
        validate_only: bool,
    ) -> std::result::Result<(), BrokerConfigError> {
        let mut meta = self.meta.lock();
        let mut layers = ConfigLayers {
            node: meta.broker_configs.clone(),
            cluster: meta.default_broker_configs.clone(),
            static_config: self.static_config.clone(),
        };
        let target = match scope {
            BrokerScope::Node => &mut layers.node,
            BrokerScope::ClusterDefault => &mut layers.cluster,
        };
        if replace {
            target.clear();
        }
        let mut unknown = Vec::new();
        let mut fixed = Vec::new();
        for (k, v) in changes {
            match config::find(k) {
                None => unknown.push(k.as_str()),
                Some(d) if !d.dynamic => fixed.push(k.as_str()),
                Some(_) => match v {
                    Some(v) => {
                        target.insert(k.clone(), v.trim().to_string());
                    }
                    None => {
                        target.remove(k);
                    }
                },
            }
        }
        if !unknown.is_empty() {
            return Err(BrokerConfigError::Invalid(format!(
                "Unknown broker configs: {}",
                unknown.join(", ")
            )));
        }
        if !fixed.is_empty() {
            return Err(BrokerConfigError::Invalid(format!(
                "Cannot update these configs dynamically: {}",
                fixed.join(", ")
            )));
        }
        let effective = layers.compose().map_err(BrokerConfigError::Invalid)?;
        if validate_only {
            return Ok(());
        }
        meta.broker_configs = layers.node;
        meta.default_broker_configs = layers.cluster;
        self.persist(&meta)
            .map_err(|e| BrokerConfigError::Internal(e.to_string()))?;
        let effective = Arc::new(effective);
        *self.config.write() = effective.clone();
        self.config_changed.notify_waiters();
        for t in self.topics() {
            let log_config = topic_config::log_config(&t.configs.read(), &effective);
            for p in t.partitions.read().iter() {
                p.log.lock().set_config(log_config);
            }
        }
        tracing::info!(?scope, ?changes, "broker configs changed");
        Ok(())
    }

    fn persist(&self, meta: &MetadataFile) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(meta).map_err(|e| BrokerError::Metadata {
            path: METADATA_FILE.into(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.static_config.data_dir.join(METADATA_FILE), &bytes)?;
        Ok(())
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().by_name.get(name).cloned()
    }
    pub fn topic_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.topics.read().by_id.get(id).cloned()
    }
    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<_> = self.topics.read().by_name.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Checks a topic creation without performing it (CreateTopics `validate_only`).
    pub fn validate_new_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        configs: &BTreeMap<String, String>,
    ) -> std::result::Result<(), TopicError> {
        validate_topic_name(name).map_err(TopicError::InvalidName)?;
        if self.topic(name).is_some() {
            return Err(TopicError::AlreadyExists);
        }
        if partitions <= 0 && partitions != -1 {
            return Err(TopicError::InvalidPartitions(format!(
                "Number of partitions was set to an invalid non-positive value: {partitions}"
            )));
        }
        if partitions > 100_000 {
            return Err(TopicError::InvalidPartitions(format!(
                "Number of partitions {partitions} is larger than 100000"
            )));
        }
        if replication != 1 && replication != -1 {
            return Err(TopicError::InvalidReplicationFactor(format!(
                "Replication factor: {replication} larger than available brokers: 1 (or not positive)"
            )));
        }
        for (k, v) in configs {
            topic_config::validate(k, Some(v)).map_err(TopicError::InvalidConfig)?;
        }
        Ok(())
    }

    /// Creates a topic (validated as above). `partitions == -1` means `num.partitions`.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        configs: BTreeMap<String, String>,
    ) -> std::result::Result<Arc<Topic>, TopicError> {
        let mut meta = self.meta.lock();
        self.validate_new_topic(name, partitions, replication, &configs)?;
        let partitions = if partitions == -1 {
            self.config().num_partitions
        } else {
            partitions
        };
        let rec = TopicRecord {
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions,
            configs,
        };
        // A leftover directory of a deleted topic with the same name must not leak into the new one.
        for p in 0..partitions {
            let d = Self::partition_dir(&self.static_config, name, p);
            if d.exists() {
                fs::remove_dir_all(&d).map_err(|e| TopicError::Internal(e.to_string()))?;
            }
        }
        let topic = Self::open_topic(&self.config(), &rec, false, self.clock.now_ms())
            .map_err(|e| TopicError::Internal(e.to_string()))?;
        meta.topics.push(rec);
        self.persist(&meta)
            .map_err(|e| TopicError::Internal(e.to_string()))?;
        let mut t = self.topics.write();
        t.by_id.insert(topic.id, topic.clone());
        t.by_name.insert(topic.name.clone(), topic.clone());
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Deletes a topic and its data.
    pub fn delete_topic(&self, name: &str) -> std::result::Result<Uuid, TopicError> {
        if !self.static_config.delete_topic_enable {
            return Err(TopicError::Disabled);
        }
        if crate::groups::is_internal(name) {
            return Err(TopicError::InvalidName(format!(
                "Cannot delete the internal topic {name}"
            )));
        }
        let mut meta = self.meta.lock();
        let topic = {
            let mut t = self.topics.write();
            let topic = t.by_name.remove(name).ok_or(TopicError::UnknownTopic)?;
            t.by_id.remove(&topic.id);
            topic
        };
        meta.topics.retain(|r| r.name != name);
        self.persist(&meta)
            .map_err(|e| TopicError::Internal(e.to_string()))?;
        for p in topic.partitions.read().iter() {
            p.appended.notify_waiters();
            let dir = Self::partition_dir(&self.static_config, name, p.index);
            if let Err(e) = fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove deleted partition");
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic.id)
    }

    /// Grows a topic to `count` partitions.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> std::result::Result<(), TopicError> {
        let mut meta = self.meta.lock();
        let topic = self.topic(name).ok_or(TopicError::UnknownTopic)?;
        let current = topic.partition_count();
        if count <= current {
            return Err(TopicError::InvalidPartitions(format!("Topic currently has {current} partitions, which is higher than the requested {count}.")));
        }
        if count > 100_000 {
            return Err(TopicError::InvalidPartitions(format!(
                "Number of partitions {count} is larger than 100000"
            )));
        }
        if validate_only {
            return Ok(());
        }
        let log_config = topic_config::log_config(&topic.configs.read(), &self.config());
        let now = self.clock.now_ms();
        let mut new = Vec::new();
        for p in current..count {
            let log = Log::open(
                &Self::partition_dir(&self.static_config, name, p),
                log_config,
                false,
                now,
            )
            .map_err(|e| TopicError::Internal(e.to_string()))?;
            new.push(Arc::new(Partition::new(p, log)));
        }
        if let Some(rec) = meta.topics.iter_mut().find(|r| r.name == name) {
            rec.partitions = count;
        }
        self.persist(&meta)
            .map_err(|e| TopicError::Internal(e.to_string()))?;
        topic.partitions.write().extend(new);
        Ok(())
    }

    /// Replaces (`incremental == false`) or edits a topic's config overrides.
    /// `changes` maps a key to `Some(value)` to set, `None` to remove.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        changes: &[(String, Option<String>)],
        replace: bool,
        validate_only: bool,
    ) -> std::result::Result<(), TopicError> {
        let mut meta = self.meta.lock();
        let topic = self.topic(name).ok_or(TopicError::UnknownTopic)?;
        let mut next = if replace {
            BTreeMap::new()
        } else {
            topic.configs.read().clone()
        };
        for (k, v) in changes {
            match v {
                Some(v) => {
                    topic_config::validate(k, Some(v)).map_err(TopicError::InvalidConfig)?;
                    next.insert(k.clone(), v.clone());
                }
                None => {
                    if topic_config::find(k).is_none() {
                        return Err(TopicError::InvalidConfig(format!(
                            "Unknown topic config name: {k}"
                        )));
                    }
                    next.remove(k);
                }
            }
        }
        if validate_only {
            return Ok(());
        }
        if let Some(rec) = meta.topics.iter_mut().find(|r| r.name == name) {
            rec.configs = next.clone();
        }
        self.persist(&meta)
            .map_err(|e| TopicError::Internal(e.to_string()))?;
        let log_config: LogConfig = topic_config::log_config(&next, &self.config());
        *topic.configs.write() = next;
        for p in topic.partitions.read().iter() {
            p.log.lock().set_config(log_config);
        }
        Ok(())
    }

    /// Hands out a fresh producer id; ids are reserved on disk in blocks so an
    /// id is never reused after a restart.
    pub fn allocate_producer_id(&self) -> Result<i64> {
        let mut next = self.next_producer_id.lock();
        let mut meta = self.meta.lock();
        if *next >= meta.producer_id_block_end {
            meta.producer_id_block_end = *next + PRODUCER_ID_BLOCK;
            self.persist(&meta)?;
        }
        let id = *next;
        *next += 1;
        Ok(id)
    }

    /// Every partition of every topic.
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics()
            .iter()
            .flat_map(|t| t.partitions.read().clone())
            .collect()
    }

    /// fsyncs every partition with unflushed appends (blocking).
    pub fn flush_all(&self) -> Result<()> {
        for p in self.all_partitions() {
            self.flush_partition(&p)?;
        }
        Ok(())
    }

    /// fsyncs one partition up to its current end, timing it (blocking).
    pub fn flush_partition(&self, p: &Partition) -> Result<()> {
        if p.durable.load(Ordering::Acquire) >= p.high_watermark() {
            return Ok(());
        }
        let t = std::time::Instant::now();
        p.flush()?;
        self.metrics
            .flush_seconds
            .observe(t.elapsed().as_secs_f64());
        Ok(())
    }

    /// Applies retention to every partition (blocking).
    pub fn enforce_retention(&self) -> Result<usize> {
        let now = self.clock.now_ms();
        let mut deleted = 0;
        let config = self.config();
        for t in self.topics() {
            if !topic_config::deletes(&t.configs.read(), &config) {
                continue; // compact-only topics keep every key's latest record
            }
            for p in t.partitions.read().iter() {
                let mut log = p.log.lock();
                deleted += log.enforce_retention(now)?;
                p.publish(&log, 0);
            }
        }
        Ok(deleted)
    }

    /// Graceful stop: flush and close every log, then mark the shutdown clean.
    pub fn close(&self) -> Result<()> {
        let topics = std::mem::take(&mut *self.topics.write());
        for t in topics.by_name.values() {
            for p in t.partitions.write().drain(..) {
                p.appended.notify_waiters();
                match Arc::try_unwrap(p) {
                    Ok(p) => p.log.into_inner().close()?,
                    Err(p) => p.log.lock().flush()?,
                }
            }
        }
        write_atomic(&self.static_config.data_dir.join(CLEAN_SHUTDOWN_FILE), b"")?;
        tracing::info!("logs flushed and closed");
        Ok(())
    }
}

/// Kafka cluster ids are 16 random bytes in URL-safe base64 without padding.
fn cluster_id_from(u: Uuid) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let b = u.as_bytes();
    let mut out = String::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for &x in b {
        acc = (acc << 8) | x as u32;
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(A[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(A[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    fn cfg(dir: &Path) -> BrokerConfig {
        BrokerConfig {
            data_dir: dir.to_path_buf(),
            ..BrokerConfig::default()
        }
    }

    #[test]
    fn topics_and_producer_ids_survive_restart() {
        let dir = tempfile::tempdir().expect("tmp");
        let b = Broker::open(cfg(dir.path()), Arc::new(SystemClock)).expect("open");
        let t = b
            .create_topic("orders", 3, 1, BTreeMap::new())
            .expect("create");
        let id = t.id;
        assert_eq!(
            b.create_topic("orders", 1, 1, BTreeMap::new())
                .expect_err("dup"),
            TopicError::AlreadyExists
        );
        assert!(matches!(
            b.create_topic("bad name", 1, 1, BTreeMap::new()),
            Err(TopicError::InvalidName(_))
        ));
        let pid = b.allocate_producer_id().expect("pid");
        b.close().expect("close");
        drop(b);
        let b = Broker::open(cfg(dir.path()), Arc::new(SystemClock)).expect("reopen");
        let t = b.topic("orders").expect("still there");
        assert_eq!((t.id, t.partition_count()), (id, 3));
        assert!(b.allocate_producer_id().expect("pid") > pid);
        b.create_partitions("orders", 5, false).expect("grow");
        assert_eq!(b.topic("orders").expect("t").partition_count(), 5);
        b.delete_topic("orders").expect("delete");
        assert!(b.topic("orders").is_none());
        assert!(!dir.path().join("orders-0").exists());
    }

    #[test]
    fn flush_returns_only_when_its_records_are_durable() {
        let dir = tempfile::tempdir().expect("tmp");
        let b = Broker::open(cfg(dir.path()), Arc::new(SystemClock)).expect("open");
        let t = b.create_topic("f", 1, 1, BTreeMap::new()).expect("create");
        let p = t.partition(0).expect("p");
        std::thread::scope(|s| {
            for w in 0..4 {
                let p = p.clone();
                s.spawn(move || {
                    for i in 0..50u8 {
                        let mut batch = gregor_storage::batch::builder::batch(&[&[w, i]], 1, None);
                        let end = {
                            let mut log = p.log.lock();
                            let a = log.append(&mut batch, 0, false, 1).expect("append");
                            p.publish(&log, a.record_count);
                            a.last_offset + 1
                        };
                        p.flush_to(end).expect("flush");
                        assert!(
                            p.durable.load(Ordering::Acquire) >= end,
                            "acknowledged before its fsync finished"
                        );
                    }
                });
            }
        });
        assert_eq!(p.high_watermark(), 200);
    }

    #[test]
    fn dynamic_broker_configs_apply_at_once_and_survive_restart() {
        let dir = tempfile::tempdir().expect("tmp");
        let set = |k: &str, v: Option<&str>| vec![(k.to_string(), v.map(String::from))];
        let b = Broker::open(cfg(dir.path()), Arc::new(SystemClock)).expect("open");
        let t = b.create_topic("t", 1, 1, BTreeMap::new()).expect("create");
        let mut o = BTreeMap::new();
        o.insert("retention.ms".to_string(), "5".to_string());
        let pinned = b.create_topic("pinned", 1, 1, o).expect("create");
        let retention = |t: &Topic| t.partition(0).expect("p").log.lock().config().retention_ms;

        b.alter_broker_configs(
            BrokerScope::ClusterDefault,
            &set("log.retention.ms", Some("3000")),
            false,
            false,
        )
        .expect("cluster default");
        assert_eq!(
            retention(&t),
            3000,
            "topics without an override follow the default"
        );
        assert_eq!(retention(&pinned), 5, "a topic override wins");
        b.alter_broker_configs(
            BrokerScope::Node,
            &set("log.retention.ms", Some("2000")),
            false,
            false,
        )
        .expect("node");
        assert_eq!(
            (b.config().log.retention_ms, retention(&t)),
            (2000, 2000),
            "per-broker wins over the cluster default"
        );

        let refused = |scope, k: &str, v: &str| match b.alter_broker_configs(
            scope,
            &set(k, Some(v)),
            false,
            false,
        ) {
            Err(BrokerConfigError::Invalid(m)) => m,
            other => panic!("{k}={v} accepted: {other:?}"),
        };
        assert!(refused(BrokerScope::Node, "num.partitions", "3")
            .contains("Cannot update these configs dynamically: num.partitions"));
        assert!(refused(BrokerScope::Node, "log.retention.ms", "-7").contains("log.retention.ms"));
        assert!(refused(BrokerScope::ClusterDefault, "no.such.thing", "1").contains("Unknown"));
        b.alter_broker_configs(
            BrokerScope::Node,
            &set("log.segment.bytes", Some("1000")),
            false,
            true,
        )
        .expect("validate only");
        assert_eq!(
            b.config().log.segment_bytes,
            BrokerConfig::default().log.segment_bytes,
            "validate_only changes nothing"
        );
        assert_eq!(
            b.config().log.retention_ms,
            2000,
            "refused changes leave the config alone"
        );

        b.close().expect("close");
        drop((b, t, pinned));
        let b = Broker::open(cfg(dir.path()), Arc::new(SystemClock)).expect("reopen");
        let t = b.topic("t").expect("t");
        assert_eq!(
            (b.config().log.retention_ms, retention(&t)),
            (2000, 2000),
            "kept across restarts"
        );
        let layers = b.config_layers();
        assert_eq!(
            layers
                .sources("log.retention.ms")
                .iter()
                .map(|(s, _)| *s)
                .collect::<Vec<_>>(),
            vec![
                config::ConfigSource::DynamicBroker,
                config::ConfigSource::DynamicDefault,
                config::ConfigSource::Default
            ]
        );
        b.alter_broker_configs(
            BrokerScope::Node,
            &set("log.retention.ms", None),
            false,
            false,
        )
        .expect("delete");
        assert_eq!(
            retention(&t),
            3000,
            "deleting the per-broker value falls back to the cluster default"
        );
        b.alter_broker_configs(BrokerScope::ClusterDefault, &[], true, false)
            .expect("replace with nothing");
        assert_eq!(
            retention(&t),
            BrokerConfig::default().log.retention_ms,
            "back to the static value"
        );
    }

    #[test]
    fn unusable_stored_broker_configs_are_dropped_not_fatal() {
        let dir = tempfile::tempdir().expect("tmp");
        let b = Broker::open(cfg(dir.path()), Arc::new(SystemClock)).expect("open");
        b.close().expect("close");
        drop(b);
        let path = dir.path().join(METADATA_FILE);
        let mut meta: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
        meta["broker_configs"] = serde_json::json!({
            "log.retention.ms": "-9",
            "no.such.config": "1",
            "num.partitions": "4",
            "log.retention.bytes": "777",
        });
        fs::write(&path, serde_json::to_vec(&meta).expect("encode")).expect("write");
        let b = Broker::open(cfg(dir.path()), Arc::new(SystemClock)).expect("still starts");
        assert_eq!(
            b.config().log.retention_bytes,
            777,
            "the usable one is kept"
        );
        assert_eq!(
            b.config().log.retention_ms,
            BrokerConfig::default().log.retention_ms
        );
        assert_eq!(
            b.config().num_partitions,
            1,
            "a static key is not taken from storage"
        );
        assert_eq!(b.config_layers().node.len(), 1);
    }

    /// Compaction can leave a batch whose last records are gone; replaying
    /// `__consumer_offsets` at start must move past it (it once re-read the
    /// same batch forever).
    #[test]
    fn replay_reads_past_batches_compaction_left_with_gaps() {
        use gregor_coordinator::{CommitRequest, OffsetToCommit};
        let dir = tempfile::tempdir().expect("tmp");
        let config = BrokerConfig {
            offsets_topic_partitions: 1,
            cleaner_min_cleanable_ratio: 0.0,
            ..cfg(dir.path())
        };
        let commit = |b: &Broker, partitions: &[i32], offset: i64| {
            let req = CommitRequest {
                group_id: "g".into(),
                generation_id: -1,
                member_id: String::new(),
                group_instance_id: None,
                offsets: partitions
                    .iter()
                    .map(|p| OffsetToCommit {
                        topic: "t".into(),
                        partition: *p,
                        offset,
                        leader_epoch: -1,
                        metadata: None,
                    })
                    .collect(),
            };
            b.groups
                .run(b, |c, now| c.commit(now, req))
                .expect("commit");
        };
        let b = Broker::open(config.clone(), Arc::new(SystemClock)).expect("open");
        commit(&b, &[0, 1], 5); // one batch: (t,0) then (t,1)
        commit(&b, &[1], 9); // supersedes the batch's last record
        let offsets = b.topic(OFFSETS_TOPIC).expect("offsets topic");
        offsets
            .partition(0)
            .expect("p0")
            .log
            .lock()
            .roll(b.clock.now_ms())
            .expect("roll");
        assert!(crate::cleaner::clean_all(&b).expect("clean") >= 1);
        b.close().expect("close");
        drop((b, offsets));
        let b = Broker::open(config, Arc::new(SystemClock)).expect("reopen ends");
        let got = b.groups.read(|c| c.fetch_offsets("g", None));
        let mut got: Vec<(i32, i64)> = got.iter().map(|o| (o.partition, o.offset)).collect();
        got.sort();
        assert_eq!(got, vec![(0, 5), (1, 9)]);
    }

    #[test]
    fn cluster_id_is_22_chars() {
        assert_eq!(cluster_id_from(Uuid::new_v4()).len(), 22);
    }
}
