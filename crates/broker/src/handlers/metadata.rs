//! Metadata (key 3): brokers, cluster id, controller, and topics with their
//! partitions; auto-creates requested topics when allowed.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use uuid::Uuid;

use super::{code, s, Ctx, Outcome};
use crate::state::{validate_topic_name, Topic, TopicError};

pub(crate) fn describe_topic(node: i32, t: &Topic) -> MetadataResponseTopic {
    let partitions = (0..t.partition_count())
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(node))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(node)])
                .with_isr_nodes(vec![BrokerId(node)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(s(t.name.clone()))))
        .with_topic_id(t.id)
        .with_is_internal(crate::groups::is_internal(&t.name))
        .with_partitions(partitions)
}

fn error_topic(name: Option<String>, id: Uuid, error: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name.map(|n| TopicName(s(n))))
        .with_topic_id(id)
        .with_error_code(error)
}

pub fn handle(ctx: &Ctx, req: MetadataRequest) -> Outcome<MetadataResponse> {
    let b = &ctx.broker;
    let node = b.config().node_id;
    let all = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && ctx.version == 0,
    };
    let auto_create =
        b.config().auto_create_topics && (ctx.version < 4 || req.allow_auto_topic_creation);
    let topics = if all {
        b.topics().iter().map(|t| describe_topic(node, t)).collect()
    } else {
        let mut out = Vec::new();
        for rt in req.topics.unwrap_or_default() {
            // v10+: a topic is named by id when its name is null (or empty).
            let by_id = !rt.topic_id.is_nil() && rt.name.as_ref().is_none_or(|n| n.0.is_empty());
            let Some(name) = rt.name.map(|n| n.0.to_string()).filter(|_| !by_id) else {
                out.push(match b.topic_by_id(&rt.topic_id) {
                    Some(t) => describe_topic(node, &t),
                    None => error_topic(None, rt.topic_id, code::UNKNOWN_TOPIC_ID),
                });
                continue;
            };
            if let Some(t) = b.topic(&name) {
                out.push(describe_topic(node, &t));
                continue;
            }
            if validate_topic_name(&name).is_err() {
                out.push(error_topic(
                    Some(name),
                    Uuid::nil(),
                    code::INVALID_TOPIC_EXCEPTION,
                ));
                continue;
            }
            if !auto_create {
                out.push(error_topic(
                    Some(name),
                    Uuid::nil(),
                    code::UNKNOWN_TOPIC_OR_PARTITION,
                ));
                continue;
            }
            match b.create_topic(&name, -1, -1, Default::default()) {
                Ok(t) => out.push(describe_topic(node, &t)),
                // Raced with another creator: describe what is there now.
                Err(TopicError::AlreadyExists) => match b.topic(&name) {
                    Some(t) => out.push(describe_topic(node, &t)),
                    None => out.push(error_topic(
                        Some(name),
                        Uuid::nil(),
                        code::UNKNOWN_TOPIC_OR_PARTITION,
                    )),
                },
                Err(e) => out.push(error_topic(
                    Some(name),
                    Uuid::nil(),
                    super::topic_error(&e).0,
                )),
            }
        }
        out
    };
    let adv = &b.config().advertised;
    Outcome::Now(
        MetadataResponse::default()
            .with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(node))
                .with_host(s(adv.host.clone()))
                .with_port(adv.port as i32)])
            .with_cluster_id(Some(s(b.cluster_id.clone())))
            .with_controller_id(BrokerId(node))
            .with_topics(topics),
    )
}
