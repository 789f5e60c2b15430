//! CreateTopics (key 19): partitions, replication factor 1 (or -1 for the
//! default), manual assignments to this broker, configs, `validate_only`.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::{code, s, topic_error, Ctx, Outcome};
use crate::state::TopicError;
use crate::topic_config::{self, TOPIC_CONFIGS};

pub fn handle(ctx: &Ctx, req: CreateTopicsRequest) -> Outcome<CreateTopicsResponse> {
    let b = &ctx.broker;
    let node = b.config().node_id;
    let mut seen = std::collections::HashSet::new();
    let results =
        req.topics
            .into_iter()
            .map(|t| {
                let name = t.name.0.to_string();
                let mut result = CreatableTopicResult::default()
                    .with_name(t.name.clone())
                    .with_num_partitions(-1)
                    .with_replication_factor(-1);
                if !seen.insert(name.clone()) {
                    return result
                        .with_error_code(code::INVALID_REQUEST)
                        .with_error_message(Some(s(format!(
                            "Duplicate topic name {name} in request"
                        ))));
                }
                let mut partitions = t.num_partitions;
                let mut replication = t.replication_factor;
                if !t.assignments.is_empty() {
                    if partitions != -1 || replication != -1 {
                        return result
                        .with_error_code(code::INVALID_REQUEST)
                        .with_error_message(Some(s(
                        "Both numPartitions or replicationFactor and replicasAssignments were set.",
                    )));
                    }
                    if t.assignments.iter().any(|a| {
                        a.broker_ids.iter().any(|id| id.0 != node) || a.broker_ids.len() != 1
                    }) {
                        return result
                            .with_error_code(code::INVALID_REPLICA_ASSIGNMENT)
                            .with_error_message(Some(s(format!(
                                "Replica assignments may only name broker {node}, once."
                            ))));
                    }
                    partitions = t.assignments.len() as i32;
                    replication = 1;
                }
                let mut configs = BTreeMap::new();
                for c in &t.configs {
                    match &c.value {
                        Some(v) => {
                            configs.insert(c.name.to_string(), v.to_string());
                        }
                        None => {
                            return result
                                .with_error_code(code::INVALID_CONFIG)
                                .with_error_message(Some(s(format!(
                                    "Null value not supported for topic config {}",
                                    c.name
                                ))));
                        }
                    }
                }
                let outcome = if req.validate_only {
                    b.validate_new_topic(&name, partitions, replication, &configs)
                        .map(|_| None)
                } else {
                    b.create_topic(&name, partitions, replication, configs.clone())
                        .map(Some)
                };
                match outcome {
                    Ok(created) => {
                        let n = if partitions == -1 {
                            b.config().num_partitions
                        } else {
                            partitions
                        };
                        result = result.with_num_partitions(n).with_replication_factor(1);
                        if let Some(t) = created {
                            result = result.with_topic_id(t.id);
                        }
                        if ctx.version >= 5 {
                            let cfgs = TOPIC_CONFIGS
                                .iter()
                                .map(|d| {
                                    let set = configs.contains_key(d.name);
                                    CreatableTopicConfigs::default()
                                        .with_name(s(d.name))
                                        .with_value(
                                            topic_config::effective(d.name, &configs, &b.config())
                                                .map(s),
                                        )
                                        .with_config_source(if set { 1 } else { 5 })
                                })
                                .collect();
                            result = result.with_configs(Some(cfgs));
                        }
                        result
                    }
                    Err(e) => {
                        let (c, m) = topic_error(&e);
                        if e != TopicError::AlreadyExists {
                            tracing::info!(topic = %name, error = %m, "create topic refused");
                        }
                        result.with_error_code(c).with_error_message(Some(s(m)))
                    }
                }
            })
            .collect();
    Outcome::Now(CreateTopicsResponse::default().with_topics(results))
}
