//! Configuration: built-in defaults ← a TOML file (`config/gregor.toml` or
//! `--config PATH`) ← environment variables `GREGOR_<NAME>` (the Kafka name
//! upper-cased, dots as underscores: `GREGOR_LOG_RETENTION_MS`).
//!
//! Option names are Kafka's, so broker configs carry over. In the TOML file
//! they are written as dotted keys: `log.retention.ms = 604800000`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use config::{Config, Environment, File, FileFormat, Value, ValueKind};
use gregor_broker::config::{find, BROKER_CONFIGS};
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

/// Options read by the server itself rather than the broker (the broker's
/// own are [`gregor_broker::config::BROKER_CONFIGS`]).
pub const SERVER_KEYS: &[&str] = &["metrics.enabled", "metrics.listener"];

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
    HostPort::parse_listener(v).map_err(|reason| SettingsError::Invalid {
        key: key.into(),
        value: v.into(),
        reason,
    })
}

/// Builds the broker configuration, applying every known key in the order of
/// [`BROKER_CONFIGS`] (aliases such as `log.retention.hours` first, so the
/// more precise key wins). `advertised.listeners` defaults to the listener
/// (with port 0 resolved by the caller after binding); the flag says whether
/// it was given.
pub fn broker_config(map: &HashMap<String, String>) -> Result<(BrokerConfig, bool), SettingsError> {
    for k in map.keys() {
        if find(k).is_none() && !SERVER_KEYS.contains(&k.as_str()) {
            tracing::warn!(key = %k, "unknown configuration key ignored");
        }
    }
    let mut c = BrokerConfig::default();
    for d in BROKER_CONFIGS {
        if let Some(v) = map.get(d.name) {
            c.set(d.name, v).map_err(|reason| SettingsError::Invalid {
                key: d.name.into(),
                value: v.clone(),
                reason,
            })?;
        }
    }
    let advertised_set = map.contains_key("advertised.listeners");
    if !advertised_set {
        c.advertised = c.listener.clone();
    }
    c.check().map_err(|(key, reason)| SettingsError::Invalid {
        key: key.into(),
        value: map.get(key).cloned().unwrap_or_default(),
        reason,
    })?;
    c.explicit = map.keys().cloned().collect::<BTreeSet<_>>();
    Ok((c, advertised_set))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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

    /// `config/gregor.toml` documents every broker config, marks exactly the
    /// dynamic ones with `[dynamic]`, and loads with its shown values.
    #[test]
    fn the_shipped_config_file_documents_every_option() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/gregor.toml");
        let text = std::fs::read_to_string(&path).expect("config/gregor.toml");
        let lines: Vec<&str> = text.lines().collect();
        let key_of = |l: &str| -> Option<String> {
            let l = l.trim_start_matches("# ").trim();
            let (k, _) = l.split_once(" = ")?;
            (!k.contains(' ')).then(|| k.to_string())
        };
        let mut documented = std::collections::BTreeMap::new();
        for (i, l) in lines.iter().enumerate() {
            let Some(k) = key_of(l) else { continue };
            if find(&k).is_none() && !SERVER_KEYS.contains(&k.as_str()) {
                continue;
            }
            // The comment block above the key (other keys in between belong to it too).
            let mut dynamic = false;
            for above in lines[..i].iter().rev() {
                if above.trim().is_empty() {
                    break;
                }
                dynamic |= above.contains("[dynamic]");
            }
            documented.insert(k, dynamic);
        }
        for d in BROKER_CONFIGS.iter().filter(|d| !d.alias) {
            let marked = documented
                .get(d.name)
                .unwrap_or_else(|| panic!("{} is not documented in config/gregor.toml", d.name));
            assert_eq!(*marked, d.dynamic, "[dynamic] marker of {}", d.name);
        }
        let map = load(Some(&path), &[]).expect("load");
        let (c, _) = broker_config(&map).expect("the shipped file is valid");
        let defaults = BrokerConfig::default();
        for (d, v) in c.describe() {
            if !matches!(d.name, "log.dirs" | "log.dir") {
                assert_eq!(
                    Some(v),
                    defaults.get(d.name),
                    "{} differs from the built-in default",
                    d.name
                );
            }
        }
    }
}
