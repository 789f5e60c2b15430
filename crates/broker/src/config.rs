//! Broker-wide settings, named after Kafka's broker configs. The server crate
//! fills this from defaults, `config/gregor.toml` and `GREGOR_*` variables.

use std::path::PathBuf;

use gregor_storage::LogConfig;

/// A `host:port` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

/// Every broker setting the shell uses.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id`.
    pub node_id: i32,
    /// First `listeners` entry: where to bind.
    pub listener: HostPort,
    /// First `advertised.listeners` entry: what Metadata tells clients.
    pub advertised: HostPort,
    /// `log.dirs` (first directory).
    pub data_dir: PathBuf,
    /// `num.partitions`: partitions of auto-created topics and of CreateTopics with -1.
    pub num_partitions: i32,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `socket.request.max.bytes`: largest accepted request frame.
    pub socket_request_max_bytes: usize,
    /// `log.flush.interval.messages`: 1 fsyncs before acknowledging every
    /// produce request; larger values leave flushing to the interval below.
    pub flush_interval_messages: i64,
    /// `log.flush.interval.ms`: background fsync period (0 disables it).
    pub flush_interval_ms: i64,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: i64,
    /// `log.message.timestamp.type` is LogAppendTime.
    pub log_append_time: bool,
    /// Defaults for every topic's log (`log.segment.bytes`, `log.retention.ms`, `message.max.bytes` …).
    pub log: LogConfig,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `max.connections`.
    pub max_connections: usize,
    /// `log.cleaner.enable`: run the compaction of `cleanup.policy=compact` topics.
    pub cleaner_enable: bool,
    /// `log.cleaner.backoff.ms`: pause between cleaning passes.
    pub cleaner_backoff_ms: i64,
    /// `log.cleaner.delete.retention.ms`: default `delete.retention.ms`.
    pub cleaner_delete_retention_ms: i64,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_partitions: i32,
    /// KIP-848 group settings (`group.consumer.session.timeout.ms`, `group.consumer.heartbeat.interval.ms`).
    pub consumer_group: gregor_coordinator::consumer::ConsumerGroupConfig,
    /// Group coordinator settings (`group.*`, `offsets.retention.minutes`, `offset.metadata.max.bytes`).
    pub group: gregor_coordinator::GroupConfig,
    /// Names of the settings given explicitly (file or environment), so
    /// DescribeConfigs can tell them from defaults.
    pub explicit: std::collections::BTreeSet<String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let hp = HostPort {
            host: "127.0.0.1".into(),
            port: 9092,
        };
        BrokerConfig {
            node_id: 0,
            listener: hp.clone(),
            advertised: hp,
            data_dir: PathBuf::from("./data"),
            num_partitions: 1,
            auto_create_topics: true,
            socket_request_max_bytes: 100 * 1024 * 1024,
            flush_interval_messages: i64::MAX,
            flush_interval_ms: 1000,
            retention_check_interval_ms: 300_000,
            log_append_time: false,
            log: LogConfig::default(),
            delete_topic_enable: true,
            max_connections: 10_000,
            offsets_topic_partitions: 50,
            cleaner_enable: true,
            cleaner_backoff_ms: 15_000,
            cleaner_delete_retention_ms: 86_400_000,
            group: gregor_coordinator::GroupConfig::default(),
            consumer_group: Default::default(),
            explicit: Default::default(),
        }
    }
}

impl BrokerConfig {
    /// Every broker config with its current value, in Kafka's names, for
    /// DescribeConfigs(BROKER). All are static (read-only) on this broker.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let l = &self.log;
        let listener = |h: &HostPort| format!("PLAINTEXT://{}:{}", h.host, h.port);
        vec![
            ("node.id", self.node_id.to_string()),
            ("broker.id", self.node_id.to_string()),
            ("listeners", listener(&self.listener)),
            ("advertised.listeners", listener(&self.advertised)),
            ("log.dirs", self.data_dir.display().to_string()),
            ("num.partitions", self.num_partitions.to_string()),
            ("default.replication.factor", "1".into()),
            ("min.insync.replicas", "1".into()),
            (
                "auto.create.topics.enable",
                self.auto_create_topics.to_string(),
            ),
            ("delete.topic.enable", self.delete_topic_enable.to_string()),
            (
                "socket.request.max.bytes",
                self.socket_request_max_bytes.to_string(),
            ),
            ("max.connections", self.max_connections.to_string()),
            ("message.max.bytes", l.max_message_bytes.to_string()),
            ("log.segment.bytes", l.segment_bytes.to_string()),
            ("log.roll.ms", l.segment_ms.to_string()),
            (
                "log.index.size.max.bytes",
                l.segment_index_bytes.to_string(),
            ),
            (
                "log.index.interval.bytes",
                l.index_interval_bytes.to_string(),
            ),
            ("log.retention.ms", l.retention_ms.to_string()),
            ("log.retention.bytes", l.retention_bytes.to_string()),
            (
                "log.retention.check.interval.ms",
                self.retention_check_interval_ms.to_string(),
            ),
            (
                "log.flush.interval.messages",
                self.flush_interval_messages.to_string(),
            ),
            ("log.flush.interval.ms", self.flush_interval_ms.to_string()),
            (
                "log.message.timestamp.type",
                if self.log_append_time {
                    "LogAppendTime"
                } else {
                    "CreateTime"
                }
                .into(),
            ),
            ("log.cleanup.policy", "delete".into()),
            ("log.cleaner.enable", self.cleaner_enable.to_string()),
            (
                "log.cleaner.backoff.ms",
                self.cleaner_backoff_ms.to_string(),
            ),
            (
                "log.cleaner.delete.retention.ms",
                self.cleaner_delete_retention_ms.to_string(),
            ),
            ("compression.type", "producer".into()),
            (
                "offsets.topic.num.partitions",
                self.offsets_topic_partitions.to_string(),
            ),
            (
                "offsets.retention.minutes",
                (self.group.offsets_retention_ms / 60_000).to_string(),
            ),
            (
                "offset.metadata.max.bytes",
                self.group.offset_metadata_max_bytes.to_string(),
            ),
            (
                "group.initial.rebalance.delay.ms",
                self.group.initial_rebalance_delay_ms.to_string(),
            ),
            (
                "group.min.session.timeout.ms",
                self.group.min_session_timeout_ms.to_string(),
            ),
            (
                "group.max.session.timeout.ms",
                self.group.max_session_timeout_ms.to_string(),
            ),
            (
                "group.consumer.session.timeout.ms",
                self.consumer_group.session_timeout_ms.to_string(),
            ),
            (
                "group.consumer.heartbeat.interval.ms",
                self.consumer_group.heartbeat_interval_ms.to_string(),
            ),
        ]
    }
}
