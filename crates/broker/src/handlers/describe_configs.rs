//! DescribeConfigs (key 32) for topics (type 2) and brokers (type 4).
//!
//! A BROKER resource named by this broker's `node.id` lists every broker
//! config with the layer its value comes from (dynamic for this broker,
//! dynamic cluster default, static, built-in default); the one with the empty
//! name lists the dynamic cluster defaults only, as Kafka does. Dynamic
//! configs are reported as not read-only.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::{code, s, Ctx, Outcome};
use crate::config::{self, ConfigLayers, ConfigSource};
use crate::state::BrokerScope;
use crate::topic_config::{self, TOPIC_CONFIGS};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Which of this broker's BROKER resources `name` addresses: the empty name
/// is the cluster default, `node.id` this broker; anything else is another
/// broker, which this one cannot answer for.
pub fn broker_scope(ctx: &Ctx, name: &str) -> Option<BrokerScope> {
    if name.is_empty() {
        Some(BrokerScope::ClusterDefault)
    } else if name == ctx.broker.config().node_id.to_string() {
        Some(BrokerScope::Node)
    } else {
        None
    }
}

fn synonyms(sources: &[(ConfigSource, String)], name: &str) -> Vec<DescribeConfigsSynonym> {
    sources
        .iter()
        .map(|(src, v)| {
            DescribeConfigsSynonym::default()
                .with_name(s(name))
                .with_value(Some(s(v.clone())))
                .with_source(src.code())
        })
        .collect()
}

/// One config entry of a DescribeConfigs result.
fn entry(
    name: &str,
    value: String,
    source: ConfigSource,
    read_only: bool,
    synonyms: Option<Vec<DescribeConfigsSynonym>>,
    type_code: Option<i8>,
    doc: Option<&str>,
) -> DescribeConfigsResourceResult {
    let mut e = DescribeConfigsResourceResult::default()
        .with_name(s(name))
        .with_value(Some(s(value)))
        .with_read_only(read_only)
        .with_config_source(source.code());
    if let Some(syn) = synonyms {
        e = e.with_synonyms(syn);
    }
    if let Some(t) = type_code {
        e = e.with_config_type(t);
    }
    if let Some(d) = doc {
        e = e.with_documentation(Some(s(d)));
    }
    e
}

pub fn handle(ctx: &Ctx, req: DescribeConfigsRequest) -> Outcome<DescribeConfigsResponse> {
    let b = &ctx.broker;
    let v3 = ctx.version >= 3;
    let layers: ConfigLayers = b.config_layers();
    let effective = b.config();
    let results = req
        .resources
        .into_iter()
        .map(|res| {
            let name = res.resource_name.to_string();
            let keys: Option<Vec<String>> = res
                .configuration_keys
                .filter(|k| !k.is_empty()) // empty lists everything, like null (as Kafka does)
                .map(|k| k.iter().map(|x| x.to_string()).collect());
            let wanted = |n: &str| keys.as_ref().is_none_or(|k| k.iter().any(|x| x == n));
            let result = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            match res.resource_type {
                RESOURCE_TOPIC => {
                    let Some(topic) = b.topic(&name) else {
                        return result
                            .with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION)
                            .with_error_message(Some(s(format!("Topic {name} does not exist"))));
                    };
                    let overrides = topic.configs.read().clone();
                    let configs = TOPIC_CONFIGS
                        .iter()
                        .filter(|d| wanted(d.name))
                        .map(|d| {
                            let broker_sources = layers.sources(d.broker_name);
                            let (source, value) = match overrides.get(d.name) {
                                Some(v) => (ConfigSource::Topic, v.clone()),
                                None => (
                                    broker_sources
                                        .first()
                                        .map_or(ConfigSource::Default, |(src, _)| *src),
                                    topic_config::default_value(d, &effective),
                                ),
                            };
                            let mut syn = Vec::new();
                            if let Some(v) = overrides.get(d.name) {
                                syn = synonyms(&[(ConfigSource::Topic, v.clone())], d.name);
                            }
                            syn.extend(synonyms(&broker_sources, d.broker_name));
                            entry(
                                d.name,
                                value,
                                source,
                                false,
                                req.include_synonyms.then_some(syn),
                                v3.then(|| d.kind.type_code()),
                                (v3 && req.include_documentation).then_some(d.doc),
                            )
                        })
                        .collect();
                    result.with_configs(configs)
                }
                RESOURCE_BROKER => match broker_scope(ctx, &name) {
                    Some(BrokerScope::Node) => {
                        let configs = effective
                            .describe()
                            .into_iter()
                            .filter(|(d, _)| wanted(d.name))
                            .map(|(d, value)| {
                                let sources = layers.sources(d.name);
                                let source = sources
                                    .first()
                                    .map(|(src, _)| *src)
                                    .unwrap_or(ConfigSource::Default);
                                entry(
                                    d.name,
                                    value,
                                    source,
                                    !d.dynamic,
                                    req.include_synonyms.then(|| synonyms(&sources, d.name)),
                                    v3.then(|| d.value.type_code()),
                                    None,
                                )
                            })
                            .collect();
                        result.with_configs(configs)
                    }
                    Some(BrokerScope::ClusterDefault) => {
                        let configs = layers
                            .cluster
                            .iter()
                            .filter(|(k, _)| wanted(k))
                            .map(|(k, v)| {
                                let src = ConfigSource::DynamicDefault;
                                entry(
                                    k,
                                    v.clone(),
                                    src,
                                    false,
                                    req.include_synonyms
                                        .then(|| synonyms(&[(src, v.clone())], k)),
                                    v3.then(|| config::find(k).map_or(2, |d| d.value.type_code())),
                                    None,
                                )
                            })
                            .collect();
                        result.with_configs(configs)
                    }
                    None => result
                        .with_error_code(code::INVALID_REQUEST)
                        .with_error_message(Some(s(format!("Unexpected broker id {name}")))),
                },
                other => result
                    .with_error_code(code::INVALID_REQUEST)
                    .with_error_message(Some(s(format!("Unsupported resource type {other}")))),
            }
        })
        .collect();
    Outcome::Now(DescribeConfigsResponse::default().with_results(results))
}
