//! Configuration: built-in defaults ← a TOML file (`config/gregor.toml` or
//! `--config PATH`) ← environment variables `GREGOR_<NAME>` (the Kafka name
//! upper-cased, dots as underscores: `GREGOR_LOG_RETENTION_MS`).
//!
//! Option names are Kafka's, so broker configs carry over. In the TOML file
//! they are written as dotted keys: `log.retention.ms = 604800000`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat, Value, ValueKind};
use gregor_broker::{BrokerConfig, HostPort};

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read configuration: {0}")]
    Load(String),
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

/// Every option the broker reads, with its bounds (for numbers).
pub const KNOWN: &[(&str, i64, i64)] = &[
    ("node.id", 0, i32::MAX as i64),
    ("broker.id", 0, i32::MAX as i64),
    ("listeners", 0, 0),
    ("advertised.listeners", 0, 0),
    ("log.dirs", 0, 0),
    ("log.dir", 0, 0),
    ("num.partitions", 1, 100_000),
    ("default.replication.factor", 1, 1),
    ("auto.create.topics.enable", 0, 0),
    ("delete.topic.enable", 0, 0),
    ("socket.request.max.bytes", 1024, i32::MAX as i64),
    ("max.connections", 1, i32::MAX as i64),
    ("message.max.bytes", 0, i32::MAX as i64),
    ("log.segment.bytes", 14, i32::MAX as i64),
    ("log.roll.ms", 1, i64::MAX),
    ("log.roll.hours", 1, i32::MAX as i64),
    ("log.index.size.max.bytes", 4, i32::MAX as i64),
    ("log.index.interval.bytes", 0, i32::MAX as i64),
    ("log.retention.ms", -1, i64::MAX),
    ("log.retention.minutes", -1, i32::MAX as i64),
    ("log.retention.hours", -1, i32::MAX as i64),
    ("log.retention.bytes", -1, i64::MAX),
    ("log.retention.check.interval.ms", 1, i64::MAX),
    ("log.flush.interval.messages", 1, i64::MAX),
    ("log.flush.interval.ms", 0, i64::MAX),
    ("log.message.timestamp.type", 0, 0),
    ("offsets.topic.num.partitions", 1, 10_000),
    ("offsets.retention.minutes", 1, i32::MAX as i64),
    ("offset.metadata.max.bytes", 0, i32::MAX as i64),
    ("group.initial.rebalance.delay.ms", 0, i32::MAX as i64),
    ("group.min.session.timeout.ms", 1, i32::MAX as i64),
    ("group.max.session.timeout.ms", 1, i32::MAX as i64),
    ("group.consumer.session.timeout.ms", 1, i32::MAX as i64),
    ("group.consumer.heartbeat.interval.ms", 1, i32::MAX as i64),
    ("log.cleaner.enable", 0, 0),
    ("log.cleaner.backoff.ms", 1, i64::MAX),
    ("log.cleaner.delete.retention.ms", 0, i64::MAX),
    ("metrics.enabled", 0, 0),
    ("metrics.listener", 0, 0),
];

/// Where `/metrics` is served: `metrics.listener` (`host:port`, default
/// `0.0.0.0:9644`), or nowhere with `metrics.enabled = false`.
pub fn metrics_listener(map: &HashMap<String, String>) -> Result<Option<String>, SettingsError> {
    if boolean(map, "metrics.enabled")? == Some(false) {
        return Ok(None);
    }
    let v = map
        .get("metrics.listener")
        .cloned()
        .unwrap_or_else(|| "0.0.0.0:9644".into());
    let hp = parse_listener("metrics.listener", &v)?;
    Ok(Some(format!("{}:{}", hp.host, hp.port)))
}

fn flatten(prefix: &str, v: &Value, out: &mut HashMap<String, String>) {
    match &v.kind {
        ValueKind::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        _ => {
            out.insert(prefix.to_string(), v.to_string());
        }
    }
}

/// Reads the layered configuration into flat `name → value` pairs.
pub fn load(
    file: Option<&Path>,
    env: &[(String, String)],
) -> Result<HashMap<String, String>, SettingsError> {
    let mut b = Config::builder();
    if let Some(path) = file {
        b = b.add_source(
            File::from(path.to_path_buf())
                .format(FileFormat::Toml)
                .required(true),
        );
    }
    let vars: HashMap<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with("GREGOR_"))
        .cloned()
        .collect();
    b = b.add_source(
        Environment::with_prefix("GREGOR")
            .separator("_")
            .source(Some(vars)),
    );
    let cfg = b.build().map_err(|e| SettingsError::Load(e.to_string()))?;
    let root: Value = cfg.cache.clone();
    let mut out = HashMap::new();
    flatten("", &root, &mut out);
    Ok(out)
}

fn num(map: &HashMap<String, String>, key: &str) -> Result<Option<i64>, SettingsError> {
    let Some(v) = map.get(key) else {
        return Ok(None);
    };
    let (lo, hi) = KNOWN
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, lo, hi)| (*lo, *hi))
        .unwrap_or((i64::MIN, i64::MAX));
    let n: i64 = v.trim().parse().map_err(|_| SettingsError::Invalid {
        key: key.into(),
        value: v.clone(),
        reason: "not an integer".into(),
    })?;
    if n < lo || n > hi {
        return Err(SettingsError::Invalid {
            key: key.into(),
            value: v.clone(),
            reason: format!("must be between {lo} and {hi}"),
        });
    }
    Ok(Some(n))
}

fn boolean(map: &HashMap<String, String>, key: &str) -> Result<Option<bool>, SettingsError> {
    let Some(v) = map.get(key) else {
        return Ok(None);
    };
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(Some(true)),
        "false" => Ok(Some(false)),
        _ => Err(SettingsError::Invalid {
            key: key.into(),
            value: v.clone(),
            reason: "must be true or false".into(),
        }),
    }
}

/// Parses the first `PLAINTEXT://host:port` of a listener list.
pub fn parse_listener(key: &str, v: &str) -> Result<HostPort, SettingsError> {
    let invalid = |reason: &str| SettingsError::Invalid {
        key: key.into(),
        value: v.into(),
        reason: reason.into(),
    };
    let first = v.split(',').next().unwrap_or("").trim();
    let rest = match first.split_once("://") {
        Some((proto, rest)) if proto.eq_ignore_ascii_case("PLAINTEXT") => rest,
        Some(_) => return Err(invalid("only PLAINTEXT listeners are supported")),
        None => first,
    };
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected PLAINTEXT://host:port"))?;
    let port: u16 = port.parse().map_err(|_| invalid("port must be 0-65535"))?;
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

/// Builds the broker configuration; `advertised.listeners` defaults to the
/// listener (with port 0 resolved by the caller after binding).
pub fn broker_config(map: &HashMap<String, String>) -> Result<(BrokerConfig, bool), SettingsError> {
    for k in map.keys() {
        if !KNOWN.iter().any(|(n, _, _)| n == k) {
            tracing::warn!(key = %k, "unknown configuration key ignored");
        }
    }
    let mut c = BrokerConfig::default();
    if let Some(n) = num(map, "broker.id")? {
        c.node_id = n as i32;
    }
    if let Some(n) = num(map, "node.id")? {
        c.node_id = n as i32;
    }
    if let Some(v) = map.get("listeners") {
        c.listener = parse_listener("listeners", v)?;
    }
    let advertised_set = map.contains_key("advertised.listeners");
    c.advertised = match map.get("advertised.listeners") {
        Some(v) => parse_listener("advertised.listeners", v)?,
        None => c.listener.clone(),
    };
    if let Some(v) = map.get("log.dirs").or_else(|| map.get("log.dir")) {
        let first = v.split(',').next().unwrap_or("").trim();
        if first.is_empty() {
            return Err(SettingsError::Invalid {
                key: "log.dirs".into(),
                value: v.clone(),
                reason: "must name a directory".into(),
            });
        }
        c.data_dir = PathBuf::from(first);
    }
    if let Some(n) = num(map, "num.partitions")? {
        c.num_partitions = n as i32;
    }
    num(map, "default.replication.factor")?;
    if let Some(b) = boolean(map, "auto.create.topics.enable")? {
        c.auto_create_topics = b;
    }
    if let Some(b) = boolean(map, "delete.topic.enable")? {
        c.delete_topic_enable = b;
    }
    if let Some(n) = num(map, "socket.request.max.bytes")? {
        c.socket_request_max_bytes = n as usize;
    }
    if let Some(n) = num(map, "max.connections")? {
        c.max_connections = n as usize;
    }
    if let Some(n) = num(map, "message.max.bytes")? {
        c.log.max_message_bytes = n as usize;
    }
    if let Some(n) = num(map, "log.segment.bytes")? {
        c.log.segment_bytes = n as u64;
    }
    if let Some(n) = num(map, "log.roll.hours")? {
        c.log.segment_ms = n * 3_600_000;
    }
    if let Some(n) = num(map, "log.roll.ms")? {
        c.log.segment_ms = n;
    }
    if let Some(n) = num(map, "log.index.size.max.bytes")? {
        c.log.segment_index_bytes = n as usize;
    }
    if let Some(n) = num(map, "log.index.interval.bytes")? {
        c.log.index_interval_bytes = n as usize;
    }
    let ret_hours =
        num(map, "log.retention.hours")?.map(|h| if h < 0 { -1 } else { h * 3_600_000 });
    let ret_min = num(map, "log.retention.minutes")?.map(|m| if m < 0 { -1 } else { m * 60_000 });
    if let Some(ms) = num(map, "log.retention.ms")?.or(ret_min).or(ret_hours) {
        c.log.retention_ms = ms;
    }
    if let Some(n) = num(map, "log.retention.bytes")? {
        c.log.retention_bytes = n;
    }
    if let Some(n) = num(map, "log.retention.check.interval.ms")? {
        c.retention_check_interval_ms = n;
    }
    if let Some(n) = num(map, "log.flush.interval.messages")? {
        c.flush_interval_messages = n;
    }
    if let Some(n) = num(map, "log.flush.interval.ms")? {
        c.flush_interval_ms = n;
    }
    if let Some(v) = map.get("log.message.timestamp.type") {
        c.log_append_time = match v.trim() {
            "CreateTime" => false,
            "LogAppendTime" => true,
            _ => {
                return Err(SettingsError::Invalid {
                    key: "log.message.timestamp.type".into(),
                    value: v.clone(),
                    reason: "must be CreateTime or LogAppendTime".into(),
                })
            }
        };
    }
    if let Some(n) = num(map, "offsets.topic.num.partitions")? {
        c.offsets_topic_partitions = n as i32;
    }
    if let Some(n) = num(map, "offsets.retention.minutes")? {
        c.group.offsets_retention_ms = n * 60_000;
    }
    if let Some(n) = num(map, "offset.metadata.max.bytes")? {
        c.group.offset_metadata_max_bytes = n as usize;
    }
    if let Some(n) = num(map, "group.initial.rebalance.delay.ms")? {
        c.group.initial_rebalance_delay_ms = n as i32;
    }
    if let Some(n) = num(map, "group.min.session.timeout.ms")? {
        c.group.min_session_timeout_ms = n as i32;
    }
    if let Some(n) = num(map, "group.max.session.timeout.ms")? {
        c.group.max_session_timeout_ms = n as i32;
    }
    if let Some(b) = boolean(map, "log.cleaner.enable")? {
        c.cleaner_enable = b;
    }
    if let Some(n) = num(map, "log.cleaner.backoff.ms")? {
        c.cleaner_backoff_ms = n;
    }
    if let Some(n) = num(map, "log.cleaner.delete.retention.ms")? {
        c.cleaner_delete_retention_ms = n;
    }
    if let Some(n) = num(map, "group.consumer.session.timeout.ms")? {
        c.consumer_group.session_timeout_ms = n as i32;
    }
    if let Some(n) = num(map, "group.consumer.heartbeat.interval.ms")? {
        c.consumer_group.heartbeat_interval_ms = n as i32;
    }
    if c.group.min_session_timeout_ms > c.group.max_session_timeout_ms {
        return Err(SettingsError::Invalid {
            key: "group.min.session.timeout.ms".into(),
            value: c.group.min_session_timeout_ms.to_string(),
            reason: "must not exceed group.max.session.timeout.ms".into(),
        });
    }
    c.explicit = map.keys().cloned().collect::<BTreeSet<_>>();
    Ok((c, advertised_set))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("g.toml");
        std::fs::write(&f, "num.partitions = 3\nlog.retention.ms = 1000\nlisteners = \"PLAINTEXT://127.0.0.1:1234\"\n").expect("write");
        let map = load(
            Some(&f),
            &env(&[
                ("GREGOR_LOG_RETENTION_MS", "2000"),
                ("GREGOR_LOG_DIRS", "/tmp/g1"),
                ("OTHER", "x"),
            ]),
        )
        .expect("load");
        let (c, adv) = broker_config(&map).expect("config");
        assert_eq!(c.num_partitions, 3);
        assert_eq!(c.log.retention_ms, 2000);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/g1"));
        assert_eq!(
            c.listener,
            HostPort {
                host: "127.0.0.1".into(),
                port: 1234
            }
        );
        assert!(!adv);
        assert_eq!(
            c.log.segment_bytes,
            BrokerConfig::default().log.segment_bytes
        );
    }

    #[test]
    fn listeners_from_environment_like_kafka_images() {
        let map = load(
            None,
            &env(&[("GREGOR_LISTENERS", "PLAINTEXT://127.0.0.1:19092")]),
        )
        .expect("load");
        let (c, _) = broker_config(&map).expect("config");
        assert_eq!(c.listener.port, 19092);
        assert_eq!(c.advertised.port, 19092);
    }

    #[test]
    fn errors_name_the_key_and_the_range() {
        let map = load(None, &env(&[("GREGOR_NUM_PARTITIONS", "0")])).expect("load");
        let e = broker_config(&map).expect_err("bounds").to_string();
        assert!(
            e.contains("num.partitions") && e.contains("between 1"),
            "{e}"
        );
        let map = load(None, &env(&[("GREGOR_LISTENERS", "SSL://x:1")])).expect("load");
        assert!(broker_config(&map).is_err());
    }
}
