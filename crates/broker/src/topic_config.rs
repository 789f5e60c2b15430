//! Topic-level configs: which keys exist, their defaults (from the broker's
//! `log.*` settings), validation, and how they map onto a [`LogConfig`].

use std::collections::BTreeMap;

use gregor_storage::LogConfig;

use crate::config::{BrokerConfig, CleanupPolicy};

/// Value type of a config, as DescribeConfigs v3+ reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Long,
    Double,
    Enum(&'static [&'static str]),
}

impl Kind {
    /// Kafka's `ConfigType` code: 3 INT, 5 LONG, 2 STRING.
    pub fn type_code(self) -> i8 {
        match self {
            Kind::Int => 3,
            Kind::Long => 5,
            Kind::Double => 6,
            Kind::Enum(_) => 2,
        }
    }
}

/// One topic config.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    pub name: &'static str,
    /// The broker config that supplies the default.
    pub broker_name: &'static str,
    pub kind: Kind,
    pub min: i64,
    pub doc: &'static str,
}

const fn def(
    name: &'static str,
    broker_name: &'static str,
    kind: Kind,
    min: i64,
    doc: &'static str,
) -> ConfigDef {
    ConfigDef {
        name,
        broker_name,
        kind,
        min,
        doc,
    }
}

/// Every topic config Gregor implements.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    def("cleanup.policy", "log.cleanup.policy", Kind::Enum(&["delete", "compact", "compact,delete", "delete,compact"]), 0, "delete: remove old segments by retention.ms/retention.bytes; compact: keep the latest record per key; both: compact and delete."),
    def("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", Kind::Long, 0, "The cleaner leaves segments holding records younger than this alone, ms."),
    def("min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", Kind::Double, 0, "Clean a partition only when this fraction of its closed log has not been cleaned yet (0 to 1)."),
    def("delete.retention.ms", "log.cleaner.delete.retention.ms", Kind::Long, 0, "How long tombstones survive compaction, ms."),
    def("retention.ms", "log.retention.ms", Kind::Long, -1, "Delete closed segments whose newest record is older than this; -1 keeps them."),
    def("retention.bytes", "log.retention.bytes", Kind::Long, -1, "Delete the oldest closed segments while a partition is larger than this; -1 means no limit."),
    def("segment.bytes", "log.segment.bytes", Kind::Int, 14, "Roll to a new segment when the active one would exceed this size."),
    def("segment.ms", "log.roll.ms", Kind::Long, 1, "Roll to a new segment when the active one's first record is this old."),
    def("segment.index.bytes", "log.index.size.max.bytes", Kind::Int, 4, "Preallocated size of each segment index file."),
    def("index.interval.bytes", "log.index.interval.bytes", Kind::Int, 0, "Bytes of log between two offset-index entries."),
    def("max.message.bytes", "message.max.bytes", Kind::Int, 0, "Largest record batch accepted."),
    def("message.timestamp.type", "log.message.timestamp.type", Kind::Enum(&["CreateTime", "LogAppendTime"]), 0, "Whether records keep the producer's timestamp or get the broker's append time."),
    def("min.insync.replicas", "min.insync.replicas", Kind::Int, 1, "Replicas that must acknowledge an acks=all write (always satisfied by a single node)."),
    def("compression.type", "compression.type", Kind::Enum(&["producer"]), 0, "Batches are stored as the producer compressed them."),
];

pub fn find(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// The broker-wide default of a topic config, as a string: the current
/// value of its broker config.
pub fn default_value(d: &ConfigDef, b: &BrokerConfig) -> String {
    b.get(d.broker_name).unwrap_or_default()
}

/// Checks one `name=value` pair; the error text goes back to the client with
/// `INVALID_CONFIG`.
pub fn validate(name: &str, value: Option<&str>) -> Result<(), String> {
    let d = find(name).ok_or_else(|| format!("Unknown topic config name: {name}"))?;
    let Some(value) = value else {
        return Err(format!("Null value not supported for topic config {name}"));
    };
    match d.kind {
        Kind::Int | Kind::Long => {
            let v: i64 = value.trim().parse().map_err(|_| {
                format!("Invalid value {value} for configuration {name}: not a number")
            })?;
            if d.kind == Kind::Int && (v > i32::MAX as i64) {
                return Err(format!(
                    "Invalid value {value} for configuration {name}: larger than {}",
                    i32::MAX
                ));
            }
            if v < d.min {
                return Err(format!(
                    "Invalid value {value} for configuration {name}: Value must be at least {}",
                    d.min
                ));
            }
        }
        Kind::Double => {
            let v: f64 = value.trim().parse().map_err(|_| {
                format!("Invalid value {value} for configuration {name}: not a number")
            })?;
            if !(0.0..=1.0).contains(&v) {
                return Err(format!(
                    "Invalid value {value} for configuration {name}: Value must be between 0 and 1"
                ));
            }
        }
        Kind::Enum(allowed) => {
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(value.trim())) {
                return Err(format!(
                    "Invalid value {value} for configuration {name}: String must be one of: {}",
                    allowed.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// Effective value of `name` for a topic with these overrides.
pub fn effective(
    name: &str,
    overrides: &BTreeMap<String, String>,
    b: &BrokerConfig,
) -> Option<String> {
    overrides
        .get(name)
        .cloned()
        .or_else(|| find(name).map(|d| default_value(d, b)))
}

fn num(name: &str, overrides: &BTreeMap<String, String>, default: i64) -> i64 {
    overrides
        .get(name)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The log settings of a topic with these overrides.
pub fn log_config(overrides: &BTreeMap<String, String>, b: &BrokerConfig) -> LogConfig {
    let d = b.log;
    LogConfig {
        segment_bytes: num("segment.bytes", overrides, d.segment_bytes as i64) as u64,
        segment_ms: num("segment.ms", overrides, d.segment_ms),
        segment_index_bytes: num(
            "segment.index.bytes",
            overrides,
            d.segment_index_bytes as i64,
        ) as usize,
        index_interval_bytes: num(
            "index.interval.bytes",
            overrides,
            d.index_interval_bytes as i64,
        ) as usize,
        retention_ms: num("retention.ms", overrides, d.retention_ms),
        retention_bytes: num("retention.bytes", overrides, d.retention_bytes),
        max_message_bytes: num("max.message.bytes", overrides, d.max_message_bytes as i64) as usize,
    }
}

/// Whether the topic stamps LogAppendTime.
pub fn log_append_time(overrides: &BTreeMap<String, String>, b: &BrokerConfig) -> bool {
    match overrides.get("message.timestamp.type") {
        Some(v) => v.eq_ignore_ascii_case("LogAppendTime"),
        None => b.log_append_time,
    }
}

/// The topic's `cleanup.policy` (its override, else `log.cleanup.policy`).
pub fn policy(overrides: &BTreeMap<String, String>, b: &BrokerConfig) -> CleanupPolicy {
    overrides
        .get("cleanup.policy")
        .map(|p| CleanupPolicy::parse(p))
        .unwrap_or(b.cleanup_policy)
}

/// Whether the topic is compacted (`cleanup.policy` includes `compact`).
pub fn compacts(overrides: &BTreeMap<String, String>, b: &BrokerConfig) -> bool {
    policy(overrides, b).compact
}

/// Whether retention deletes old segments (`cleanup.policy` includes `delete`).
pub fn deletes(overrides: &BTreeMap<String, String>, b: &BrokerConfig) -> bool {
    policy(overrides, b).delete
}

/// `min.compaction.lag.ms` of the topic.
pub fn min_compaction_lag_ms(overrides: &BTreeMap<String, String>, b: &BrokerConfig) -> i64 {
    num(
        "min.compaction.lag.ms",
        overrides,
        b.cleaner_min_compaction_lag_ms,
    )
}

/// `min.cleanable.dirty.ratio` of the topic.
pub fn min_cleanable_ratio(overrides: &BTreeMap<String, String>, b: &BrokerConfig) -> f64 {
    overrides
        .get("min.cleanable.dirty.ratio")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(b.cleaner_min_cleanable_ratio)
}

/// `delete.retention.ms` of the topic.
pub fn delete_retention_ms(overrides: &BTreeMap<String, String>, b: &BrokerConfig) -> i64 {
    num(
        "delete.retention.ms",
        overrides,
        b.cleaner_delete_retention_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_key_and_bound() {
        assert!(validate("retention.ms", Some("1000")).is_ok());
        assert!(validate("retention.ms", Some("-2"))
            .expect_err("bound")
            .contains("at least -1"));
        assert!(validate("segment.bytes", Some("x")).is_err());
        assert!(validate("no.such", Some("1"))
            .expect_err("unknown")
            .contains("Unknown"));
        assert!(validate("message.timestamp.type", Some("LogAppendTime")).is_ok());
        assert!(validate("cleanup.policy", Some("compact")).is_ok());
        assert!(validate("cleanup.policy", Some("shred")).is_err());
    }

    #[test]
    fn overrides_reach_the_log_config() {
        let b = BrokerConfig::default();
        let mut o = BTreeMap::new();
        o.insert("retention.bytes".to_string(), "5000".to_string());
        let l = log_config(&o, &b);
        assert_eq!(l.retention_bytes, 5000);
        assert_eq!(l.segment_bytes, b.log.segment_bytes);
        assert_eq!(
            effective("retention.bytes", &o, &b).as_deref(),
            Some("5000")
        );
    }
}
