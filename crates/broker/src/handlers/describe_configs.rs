//! DescribeConfigs (key 32) for topics (type 2) and this broker (type 4).

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::{code, s, Ctx, Outcome};
use crate::topic_config::{self, TOPIC_CONFIGS};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// Whether `name` addresses this broker ("" means the default broker resource).
pub fn is_this_broker(ctx: &Ctx, name: &str) -> bool {
    name.is_empty() || name == ctx.broker.config.node_id.to_string()
}

pub fn handle(ctx: &Ctx, req: DescribeConfigsRequest) -> Outcome<DescribeConfigsResponse> {
    let b = &ctx.broker;
    let v3 = ctx.version >= 3;
    let results = req
        .resources
        .into_iter()
        .map(|res| {
            let name = res.resource_name.to_string();
            let keys: Option<Vec<String>> = res
                .configuration_keys
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
                            let set = overrides.get(d.name);
                            let default = topic_config::default_value(d, &b.config);
                            let broker_source = if b.config.explicit.contains(d.broker_name) {
                                SOURCE_STATIC_BROKER
                            } else {
                                SOURCE_DEFAULT
                            };
                            let mut e = DescribeConfigsResourceResult::default()
                                .with_name(s(d.name))
                                .with_value(Some(s(set
                                    .cloned()
                                    .unwrap_or_else(|| default.clone()))))
                                .with_config_source(if set.is_some() {
                                    SOURCE_TOPIC
                                } else {
                                    broker_source
                                });
                            if req.include_synonyms {
                                let mut syn = Vec::new();
                                if let Some(v) = set {
                                    syn.push(
                                        DescribeConfigsSynonym::default()
                                            .with_name(s(d.name))
                                            .with_value(Some(s(v.clone())))
                                            .with_source(SOURCE_TOPIC),
                                    );
                                }
                                syn.push(
                                    DescribeConfigsSynonym::default()
                                        .with_name(s(d.broker_name))
                                        .with_value(Some(s(default)))
                                        .with_source(broker_source),
                                );
                                e = e.with_synonyms(syn);
                            }
                            if v3 {
                                e = e.with_config_type(d.kind.type_code());
                                if req.include_documentation {
                                    e = e.with_documentation(Some(s(d.doc)));
                                }
                            }
                            e
                        })
                        .collect();
                    result.with_configs(configs)
                }
                RESOURCE_BROKER if is_this_broker(ctx, &name) => {
                    let configs = b
                        .config
                        .describe()
                        .into_iter()
                        .filter(|(n, _)| wanted(n))
                        .map(|(n, v)| {
                            let source = if b.config.explicit.contains(n) {
                                SOURCE_STATIC_BROKER
                            } else {
                                SOURCE_DEFAULT
                            };
                            let mut e = DescribeConfigsResourceResult::default()
                                .with_name(s(n))
                                .with_value(Some(s(v.clone())))
                                .with_read_only(true)
                                .with_config_source(source);
                            if req.include_synonyms {
                                e = e.with_synonyms(vec![DescribeConfigsSynonym::default()
                                    .with_name(s(n))
                                    .with_value(Some(s(v)))
                                    .with_source(source)]);
                            }
                            if v3 {
                                e = e.with_config_type(if n.contains("enable") { 1 } else { 2 });
                            }
                            e
                        })
                        .collect();
                    result.with_configs(configs)
                }
                RESOURCE_BROKER => result
                    .with_error_code(code::INVALID_REQUEST)
                    .with_error_message(Some(s(format!("Unexpected broker id {name}")))),
                other => result
                    .with_error_code(code::INVALID_REQUEST)
                    .with_error_message(Some(s(format!("Unsupported resource type {other}")))),
            }
        })
        .collect();
    Outcome::Now(DescribeConfigsResponse::default().with_results(results))
}
