//! Broker-wide settings, named after Kafka's broker configs.
//!
//! [`BROKER_CONFIGS`] is the one table of every broker config Gregor reads:
//! its value type and bounds, and whether it may change at runtime
//! (IncrementalAlterConfigs on the BROKER resource). The server crate fills a
//! [`BrokerConfig`] from defaults, `config/gregor.toml` and `GREGOR_*`
//! variables through [`BrokerConfig::set`]; dynamic changes go through the
//! same function, so a value is validated the same way wherever it comes from.

use std::path::PathBuf;

use gregor_storage::LogConfig;

/// A `host:port` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// Parses the first `PLAINTEXT://host:port` of a listener list (the
    /// scheme may be left out; an empty host means all interfaces).
    pub fn parse_listener(v: &str) -> Result<HostPort, String> {
        let first = v.split(',').next().unwrap_or("").trim();
        let rest = match first.split_once("://") {
            Some((proto, rest)) if proto.eq_ignore_ascii_case("PLAINTEXT") => rest,
            Some(_) => return Err("only PLAINTEXT listeners are supported".into()),
            None => first,
        };
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| "expected PLAINTEXT://host:port".to_string())?;
        let port: u16 = port
            .parse()
            .map_err(|_| "port must be 0-65535".to_string())?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(HostPort {
            host: if host.is_empty() {
                "0.0.0.0".into()
            } else {
                host.into()
            },
            port,
        })
    }
}

/// How a broker config's value is written, with its bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueType {
    /// A 32-bit integer in `min..=max`.
    Int(i64, i64),
    /// A 64-bit integer in `min..=max`.
    Long(i64, i64),
    /// A fraction in `min..=max`.
    Double(f64, f64),
    /// `true` or `false`.
    Bool,
    /// One of these words (compared case-insensitively).
    Enum(&'static [&'static str]),
    /// Free text (listeners, paths).
    Text,
}

impl ValueType {
    /// Kafka's `ConfigType` code reported by DescribeConfigs v3+.
    pub fn type_code(self) -> i8 {
        match self {
            ValueType::Bool => 1,
            ValueType::Text | ValueType::Enum(_) => 2,
            ValueType::Int(..) => 3,
            ValueType::Long(..) => 5,
            ValueType::Double(..) => 6,
        }
    }
}

/// One broker config.
#[derive(Debug, Clone, Copy)]
pub struct BrokerConfigDef {
    pub name: &'static str,
    pub value: ValueType,
    /// Changeable at runtime with IncrementalAlterConfigs / AlterConfigs.
    pub dynamic: bool,
    /// Another name for a config listed under its own name (`broker.id`,
    /// `log.retention.hours`, …): accepted in files, not listed by DescribeConfigs.
    pub alias: bool,
}

const I32: i64 = i32::MAX as i64;

const fn c(name: &'static str, value: ValueType, dynamic: bool) -> BrokerConfigDef {
    BrokerConfigDef {
        name,
        value,
        dynamic,
        alias: false,
    }
}

const fn alias(name: &'static str, value: ValueType) -> BrokerConfigDef {
    BrokerConfigDef {
        name,
        value,
        dynamic: false,
        alias: true,
    }
}

/// Every broker config, in the order they are applied: an alias comes before
/// the config it stands for, so `log.retention.ms` wins over
/// `log.retention.hours` as in Kafka.
pub const BROKER_CONFIGS: &[BrokerConfigDef] = &[
    alias("broker.id", ValueType::Int(0, I32)),
    c("node.id", ValueType::Int(0, I32), false),
    c("listeners", ValueType::Text, false),
    c("advertised.listeners", ValueType::Text, false),
    alias("log.dir", ValueType::Text),
    c("log.dirs", ValueType::Text, false),
    c("num.partitions", ValueType::Int(1, 100_000), false),
    c("default.replication.factor", ValueType::Int(1, 1), false),
    c("min.insync.replicas", ValueType::Int(1, 1), false),
    c("auto.create.topics.enable", ValueType::Bool, false),
    c("delete.topic.enable", ValueType::Bool, false),
    c("socket.request.max.bytes", ValueType::Int(1024, I32), false),
    c("max.connections", ValueType::Int(1, I32), true),
    c("message.max.bytes", ValueType::Int(0, I32), true),
    c("log.segment.bytes", ValueType::Int(14, I32), true),
    alias("log.roll.hours", ValueType::Int(1, I32)),
    c("log.roll.ms", ValueType::Long(1, i64::MAX), true),
    c("log.index.size.max.bytes", ValueType::Int(4, I32), true),
    c("log.index.interval.bytes", ValueType::Int(0, I32), true),
    alias("log.retention.hours", ValueType::Int(-1, I32)),
    alias("log.retention.minutes", ValueType::Int(-1, I32)),
    c("log.retention.ms", ValueType::Long(-1, i64::MAX), true),
    c("log.retention.bytes", ValueType::Long(-1, i64::MAX), true),
    c(
        "log.retention.check.interval.ms",
        ValueType::Long(1, i64::MAX),
        false,
    ),
    c(
        "log.flush.interval.messages",
        ValueType::Long(1, i64::MAX),
        true,
    ),
    c("log.flush.interval.ms", ValueType::Long(0, i64::MAX), true),
    c(
        "log.message.timestamp.type",
        ValueType::Enum(&["CreateTime", "LogAppendTime"]),
        true,
    ),
    c(
        "log.cleanup.policy",
        ValueType::Enum(&["delete", "compact", "compact,delete", "delete,compact"]),
        true,
    ),
    c("compression.type", ValueType::Enum(&["producer"]), true),
    c("log.cleaner.enable", ValueType::Bool, false),
    c("log.cleaner.backoff.ms", ValueType::Long(1, i64::MAX), true),
    c(
        "log.cleaner.delete.retention.ms",
        ValueType::Long(0, i64::MAX),
        true,
    ),
    c(
        "log.cleaner.min.compaction.lag.ms",
        ValueType::Long(0, i64::MAX),
        true,
    ),
    c(
        "log.cleaner.min.cleanable.ratio",
        ValueType::Double(0.0, 1.0),
        true,
    ),
    c(
        "offsets.topic.num.partitions",
        ValueType::Int(1, 10_000),
        false,
    ),
    c("offsets.retention.minutes", ValueType::Int(1, I32), false),
    c(
        "transaction.state.log.num.partitions",
        ValueType::Int(1, 10_000),
        false,
    ),
    c("transaction.max.timeout.ms", ValueType::Int(1, I32), false),
    c("offset.metadata.max.bytes", ValueType::Int(0, I32), false),
    c(
        "group.initial.rebalance.delay.ms",
        ValueType::Int(0, I32),
        false,
    ),
    c(
        "group.min.session.timeout.ms",
        ValueType::Int(1, I32),
        false,
    ),
    c(
        "group.max.session.timeout.ms",
        ValueType::Int(1, I32),
        false,
    ),
    c(
        "group.consumer.session.timeout.ms",
        ValueType::Int(1, I32),
        false,
    ),
    c(
        "group.consumer.heartbeat.interval.ms",
        ValueType::Int(1, I32),
        false,
    ),
];

/// The table entry of `name`.
pub fn find(name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIGS.iter().find(|d| d.name == name)
}

/// A value checked against its [`ValueType`].
enum Parsed {
    Num(i64),
    Frac(f64),
    Flag(bool),
    Word(String),
}

fn parse(d: &BrokerConfigDef, raw: &str) -> Result<Parsed, String> {
    let v = raw.trim();
    match d.value {
        ValueType::Int(lo, hi) | ValueType::Long(lo, hi) => {
            let n: i64 = v.parse().map_err(|_| "not an integer".to_string())?;
            if n < lo || n > hi {
                return Err(format!("must be between {lo} and {hi}"));
            }
            Ok(Parsed::Num(n))
        }
        ValueType::Double(lo, hi) => {
            let f: f64 = v.parse().map_err(|_| "not a number".to_string())?;
            if !(lo..=hi).contains(&f) {
                return Err(format!("must be between {lo} and {hi}"));
            }
            Ok(Parsed::Frac(f))
        }
        ValueType::Bool => match v.to_ascii_lowercase().as_str() {
            "true" => Ok(Parsed::Flag(true)),
            "false" => Ok(Parsed::Flag(false)),
            _ => Err("must be true or false".into()),
        },
        ValueType::Enum(allowed) => allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(v))
            .map(|a| Parsed::Word(a.to_string()))
            .ok_or_else(|| format!("must be one of: {}", allowed.join(", "))),
        ValueType::Text => Ok(Parsed::Word(v.to_string())),
    }
}

/// Where a config's value comes from: Kafka's `ConfigSource` as
/// DescribeConfigs reports it, in order of precedence (first wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// A topic override (`TOPIC_CONFIG`, 1).
    Topic,
    /// Set at runtime for this broker (`DYNAMIC_BROKER_CONFIG`, 2).
    DynamicBroker,
    /// Set at runtime as the cluster-wide default (`DYNAMIC_DEFAULT_BROKER_CONFIG`, 3).
    DynamicDefault,
    /// From `config/gregor.toml` or `GREGOR_*` (`STATIC_BROKER_CONFIG`, 4).
    Static,
    /// Built in (`DEFAULT_CONFIG`, 5).
    Default,
}

impl ConfigSource {
    pub fn code(self) -> i8 {
        match self {
            ConfigSource::Topic => 1,
            ConfigSource::DynamicBroker => 2,
            ConfigSource::DynamicDefault => 3,
            ConfigSource::Static => 4,
            ConfigSource::Default => 5,
        }
    }
}

/// The layers a broker config's value is resolved through: dynamic
/// per-broker, dynamic cluster default, static, built-in default.
#[derive(Debug, Clone)]
pub struct ConfigLayers {
    /// Dynamic configs of this broker (BROKER resource named by `node.id`).
    pub node: std::collections::BTreeMap<String, String>,
    /// Dynamic cluster-wide defaults (BROKER resource with an empty name).
    pub cluster: std::collections::BTreeMap<String, String>,
    /// The configuration the process started with.
    pub static_config: std::sync::Arc<BrokerConfig>,
}

impl ConfigLayers {
    /// Every layer that sets `name`, highest precedence first; the built-in
    /// default is always last.
    pub fn sources(&self, name: &str) -> Vec<(ConfigSource, String)> {
        let mut out = Vec::new();
        if let Some(v) = self.node.get(name) {
            out.push((ConfigSource::DynamicBroker, v.clone()));
        }
        if let Some(v) = self.cluster.get(name) {
            out.push((ConfigSource::DynamicDefault, v.clone()));
        }
        if self.static_config.explicit.contains(name) {
            if let Some(v) = self.static_config.get(name) {
                out.push((ConfigSource::Static, v));
            }
        }
        if let Some(v) = BrokerConfig::default().get(name) {
            out.push((ConfigSource::Default, v));
        }
        out
    }

    /// The effective configuration: the static one with the cluster
    /// defaults, then this broker's dynamic configs applied. The error names
    /// the key and what is wrong with its value.
    pub fn compose(&self) -> Result<BrokerConfig, String> {
        let mut c = (*self.static_config).clone();
        for layer in [&self.cluster, &self.node] {
            for (k, v) in layer {
                c.set(k, v)
                    .map_err(|e| format!("Invalid value {v} for configuration {k}: {e}"))?;
            }
        }
        c.check()
            .map_err(|(k, e)| format!("Invalid configuration {k}: {e}"))?;
        Ok(c)
    }
}

/// `log.cleanup.policy` / `cleanup.policy`: which of the two log-trimming
/// mechanisms apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Retention deletes old segments.
    pub delete: bool,
    /// The cleaner keeps the latest record per key.
    pub compact: bool,
}

impl CleanupPolicy {
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };

    /// Parses a comma-separated policy list (`delete`, `compact`, both).
    pub fn parse(v: &str) -> CleanupPolicy {
        let has = |w: &str| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(w));
        CleanupPolicy {
            delete: has("delete"),
            compact: has("compact"),
        }
    }

    /// Kafka's spelling of the policy.
    pub fn name(self) -> &'static str {
        match (self.compact, self.delete) {
            (true, true) => "compact,delete",
            (true, false) => "compact",
            _ => "delete",
        }
    }
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
    /// `log.cleanup.policy`: default `cleanup.policy` of topics.
    pub cleanup_policy: CleanupPolicy,
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
    /// `log.cleaner.min.compaction.lag.ms`: default `min.compaction.lag.ms`.
    pub cleaner_min_compaction_lag_ms: i64,
    /// `log.cleaner.min.cleanable.ratio`: default `min.cleanable.dirty.ratio`.
    pub cleaner_min_cleanable_ratio: f64,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_partitions: i32,
    /// `transaction.state.log.num.partitions`.
    pub transaction_partitions: i32,
    /// `transaction.max.timeout.ms`: the longest transaction timeout a producer may ask for.
    pub transaction_max_timeout_ms: i32,
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
            cleanup_policy: CleanupPolicy::DELETE,
            delete_topic_enable: true,
            max_connections: 10_000,
            offsets_topic_partitions: 50,
            transaction_partitions: 50,
            transaction_max_timeout_ms: 900_000,
            cleaner_enable: true,
            cleaner_backoff_ms: 15_000,
            cleaner_delete_retention_ms: 86_400_000,
            cleaner_min_compaction_lag_ms: 0,
            cleaner_min_cleanable_ratio: 0.5,
            group: gregor_coordinator::GroupConfig::default(),
            consumer_group: Default::default(),
            explicit: Default::default(),
        }
    }
}

impl BrokerConfig {
    /// Sets one config from its text form, validated against
    /// [`BROKER_CONFIGS`]. The error says what is wrong with the value (the
    /// caller names the key).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let d = find(name).ok_or_else(|| "unknown broker config".to_string())?;
        let p = parse(d, value)?;
        let (n, f, b, w) = match p {
            Parsed::Num(n) => (n, 0.0, false, String::new()),
            Parsed::Frac(f) => (0, f, false, String::new()),
            Parsed::Flag(b) => (0, 0.0, b, String::new()),
            Parsed::Word(w) => (0, 0.0, false, w),
        };
        let l = &mut self.log;
        match name {
            "broker.id" | "node.id" => self.node_id = n as i32,
            "listeners" => self.listener = HostPort::parse_listener(&w)?,
            "advertised.listeners" => self.advertised = HostPort::parse_listener(&w)?,
            "log.dir" | "log.dirs" => {
                let first = w.split(',').next().unwrap_or("").trim();
                if first.is_empty() {
                    return Err("must name a directory".into());
                }
                self.data_dir = PathBuf::from(first);
            }
            "num.partitions" => self.num_partitions = n as i32,
            "default.replication.factor" | "min.insync.replicas" => {}
            "auto.create.topics.enable" => self.auto_create_topics = b,
            "delete.topic.enable" => self.delete_topic_enable = b,
            "socket.request.max.bytes" => self.socket_request_max_bytes = n as usize,
            "max.connections" => self.max_connections = n as usize,
            "message.max.bytes" => l.max_message_bytes = n as usize,
            "log.segment.bytes" => l.segment_bytes = n as u64,
            "log.roll.hours" => l.segment_ms = n * 3_600_000,
            "log.roll.ms" => l.segment_ms = n,
            "log.index.size.max.bytes" => l.segment_index_bytes = n as usize,
            "log.index.interval.bytes" => l.index_interval_bytes = n as usize,
            "log.retention.hours" => l.retention_ms = if n < 0 { -1 } else { n * 3_600_000 },
            "log.retention.minutes" => l.retention_ms = if n < 0 { -1 } else { n * 60_000 },
            "log.retention.ms" => l.retention_ms = n,
            "log.retention.bytes" => l.retention_bytes = n,
            "log.retention.check.interval.ms" => self.retention_check_interval_ms = n,
            "log.flush.interval.messages" => self.flush_interval_messages = n,
            "log.flush.interval.ms" => self.flush_interval_ms = n,
            "log.message.timestamp.type" => self.log_append_time = w == "LogAppendTime",
            "log.cleanup.policy" => self.cleanup_policy = CleanupPolicy::parse(&w),
            "compression.type" => {}
            "log.cleaner.enable" => self.cleaner_enable = b,
            "log.cleaner.backoff.ms" => self.cleaner_backoff_ms = n,
            "log.cleaner.delete.retention.ms" => self.cleaner_delete_retention_ms = n,
            "log.cleaner.min.compaction.lag.ms" => self.cleaner_min_compaction_lag_ms = n,
            "log.cleaner.min.cleanable.ratio" => self.cleaner_min_cleanable_ratio = f,
            "offsets.topic.num.partitions" => self.offsets_topic_partitions = n as i32,
            "transaction.state.log.num.partitions" => self.transaction_partitions = n as i32,
            "transaction.max.timeout.ms" => self.transaction_max_timeout_ms = n as i32,
            "offsets.retention.minutes" => self.group.offsets_retention_ms = n * 60_000,
            "offset.metadata.max.bytes" => self.group.offset_metadata_max_bytes = n as usize,
            "group.initial.rebalance.delay.ms" => self.group.initial_rebalance_delay_ms = n as i32,
            "group.min.session.timeout.ms" => self.group.min_session_timeout_ms = n as i32,
            "group.max.session.timeout.ms" => self.group.max_session_timeout_ms = n as i32,
            "group.consumer.session.timeout.ms" => {
                self.consumer_group.session_timeout_ms = n as i32
            }
            "group.consumer.heartbeat.interval.ms" => {
                self.consumer_group.heartbeat_interval_ms = n as i32
            }
            _ => return Err("unknown broker config".into()),
        }
        Ok(())
    }

    /// Constraints between configs; returns the key to blame and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.group.min_session_timeout_ms > self.group.max_session_timeout_ms {
            return Err((
                "group.min.session.timeout.ms",
                "must not exceed group.max.session.timeout.ms".into(),
            ));
        }
        Ok(())
    }

    /// The current value of a listed (non-alias) config, as text.
    pub fn get(&self, name: &str) -> Option<String> {
        let l = &self.log;
        let listener = |h: &HostPort| format!("PLAINTEXT://{}:{}", h.host, h.port);
        Some(match name {
            "node.id" | "broker.id" => self.node_id.to_string(),
            "listeners" => listener(&self.listener),
            "advertised.listeners" => listener(&self.advertised),
            "log.dirs" | "log.dir" => self.data_dir.display().to_string(),
            "num.partitions" => self.num_partitions.to_string(),
            "default.replication.factor" | "min.insync.replicas" => "1".into(),
            "auto.create.topics.enable" => self.auto_create_topics.to_string(),
            "delete.topic.enable" => self.delete_topic_enable.to_string(),
            "socket.request.max.bytes" => self.socket_request_max_bytes.to_string(),
            "max.connections" => self.max_connections.to_string(),
            "message.max.bytes" => l.max_message_bytes.to_string(),
            "log.segment.bytes" => l.segment_bytes.to_string(),
            "log.roll.ms" => l.segment_ms.to_string(),
            "log.index.size.max.bytes" => l.segment_index_bytes.to_string(),
            "log.index.interval.bytes" => l.index_interval_bytes.to_string(),
            "log.retention.ms" => l.retention_ms.to_string(),
            "log.retention.bytes" => l.retention_bytes.to_string(),
            "log.retention.check.interval.ms" => self.retention_check_interval_ms.to_string(),
            "log.flush.interval.messages" => self.flush_interval_messages.to_string(),
            "log.flush.interval.ms" => self.flush_interval_ms.to_string(),
            "log.message.timestamp.type" => if self.log_append_time {
                "LogAppendTime"
            } else {
                "CreateTime"
            }
            .into(),
            "log.cleanup.policy" => self.cleanup_policy.name().into(),
            "compression.type" => "producer".into(),
            "log.cleaner.enable" => self.cleaner_enable.to_string(),
            "log.cleaner.backoff.ms" => self.cleaner_backoff_ms.to_string(),
            "log.cleaner.delete.retention.ms" => self.cleaner_delete_retention_ms.to_string(),
            "log.cleaner.min.compaction.lag.ms" => self.cleaner_min_compaction_lag_ms.to_string(),
            "log.cleaner.min.cleanable.ratio" => self.cleaner_min_cleanable_ratio.to_string(),
            "offsets.topic.num.partitions" => self.offsets_topic_partitions.to_string(),
            "transaction.state.log.num.partitions" => self.transaction_partitions.to_string(),
            "transaction.max.timeout.ms" => self.transaction_max_timeout_ms.to_string(),
            "offsets.retention.minutes" => (self.group.offsets_retention_ms / 60_000).to_string(),
            "offset.metadata.max.bytes" => self.group.offset_metadata_max_bytes.to_string(),
            "group.initial.rebalance.delay.ms" => self.group.initial_rebalance_delay_ms.to_string(),
            "group.min.session.timeout.ms" => self.group.min_session_timeout_ms.to_string(),
            "group.max.session.timeout.ms" => self.group.max_session_timeout_ms.to_string(),
            "group.consumer.session.timeout.ms" => {
                self.consumer_group.session_timeout_ms.to_string()
            }
            "group.consumer.heartbeat.interval.ms" => {
                self.consumer_group.heartbeat_interval_ms.to_string()
            }
            _ => return None,
        })
    }

    /// Every listed broker config with its current value, for
    /// DescribeConfigs(BROKER). `broker.id` is listed too, as Kafka does.
    pub fn describe(&self) -> Vec<(&'static BrokerConfigDef, String)> {
        BROKER_CONFIGS
            .iter()
            .filter(|d| !d.alias || d.name == "broker.id")
            .filter_map(|d| self.get(d.name).map(|v| (d, v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_can_be_set_and_read_back() {
        let defaults = BrokerConfig::default();
        for d in BROKER_CONFIGS {
            let mut c = BrokerConfig::default();
            let Some(current) = defaults.get(d.name) else {
                assert!(d.alias, "{} has no value", d.name);
                continue;
            };
            c.set(d.name, &current)
                .unwrap_or_else(|e| panic!("{} = {current}: {e}", d.name));
            if !d.alias {
                assert_eq!(
                    c.get(d.name).as_deref(),
                    Some(current.as_str()),
                    "{}",
                    d.name
                );
            }
        }
    }

    #[test]
    fn values_are_checked_against_their_bounds() {
        let mut c = BrokerConfig::default();
        assert!(c
            .set("num.partitions", "0")
            .expect_err("bound")
            .contains("between 1"));
        assert!(c.set("log.retention.ms", "soon").is_err());
        assert!(c.set("log.cleaner.min.cleanable.ratio", "1.5").is_err());
        assert!(c.set("log.cleanup.policy", "shred").is_err());
        assert!(c.set("no.such.config", "1").is_err());
        c.set("log.cleanup.policy", "COMPACT")
            .expect("case-insensitive");
        assert_eq!(c.get("log.cleanup.policy").as_deref(), Some("compact"));
        c.set("log.retention.hours", "2").expect("hours");
        assert_eq!(c.log.retention_ms, 7_200_000);
        c.set("listeners", "PLAINTEXT://:19092").expect("listener");
        assert_eq!(c.listener.host, "0.0.0.0");
        assert!(c.set("listeners", "SSL://x:1").is_err());
    }
}
