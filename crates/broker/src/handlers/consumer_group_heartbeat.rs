//! ConsumerGroupHeartbeat (key 68): the KIP-848 consumer protocol. Joins,
//! leaves and reconciles a member; assignments name topics by id.

use std::collections::BTreeSet;

use gregor_coordinator::consumer::{HeartbeatRequest, TopicMeta, TopicsView};
use gregor_coordinator::consumer_records::Assignment;
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as WireAssignment, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use super::{code, s, Ctx, Outcome};
use crate::state::Broker;

/// The broker's (non-internal) topics as the assignor sees them.
pub fn topics_view(b: &Broker) -> TopicsView {
    b.topics()
        .into_iter()
        .filter(|t| !crate::groups::is_internal(&t.name))
        .map(|t| {
            (
                t.name.clone(),
                TopicMeta {
                    name: t.name.clone(),
                    id: t.id,
                    partitions: t.partition_count(),
                },
            )
        })
        .collect()
}

pub fn handle(
    ctx: &Ctx,
    req: ConsumerGroupHeartbeatRequest,
) -> Outcome<ConsumerGroupHeartbeatResponse> {
    let owned: Option<Assignment> = req.topic_partitions.map(|tps| {
        tps.into_iter()
            .map(|tp| {
                (
                    tp.topic_id,
                    tp.partitions.into_iter().collect::<BTreeSet<i32>>(),
                )
            })
            .collect()
    });
    let hr = HeartbeatRequest {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.map(|x| x.to_string()),
        rack_id: req.rack_id.map(|x| x.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .map(|ns| ns.into_iter().map(|n| n.0.to_string()).collect()),
        subscribed_topic_regex: if ctx.version >= 1 {
            req.subscribed_topic_regex.map(|x| x.to_string())
        } else {
            None
        },
        server_assignor: req.server_assignor.map(|x| x.to_string()),
        owned,
        client_id: ctx.client_id.clone(),
        client_host: ctx.client_host.clone(),
    };
    let topics = topics_view(&ctx.broker);
    let member = hr.member_id.clone();
    let resp = match ctx
        .broker
        .groups
        .run(&ctx.broker, |c, now| c.consumer_heartbeat(now, hr, &topics))
    {
        Ok(r) => r,
        Err(_) => {
            return Outcome::Now(
                ConsumerGroupHeartbeatResponse::default()
                    .with_error_code(code::COORDINATOR_NOT_AVAILABLE)
                    .with_member_id(Some(s(member)))
                    .with_member_epoch(-1),
            )
        }
    };
    let assignment = resp.assignment.map(|a| {
        WireAssignment::default().with_topic_partitions(
            a.into_iter()
                .map(|(id, ps)| {
                    TopicPartitions::default()
                        .with_topic_id(id)
                        .with_partitions(ps.into_iter().collect())
                })
                .collect(),
        )
    });
    Outcome::Now(
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(resp.error)
            .with_error_message(resp.error_message.map(s))
            .with_member_id(Some(s(resp.member_id)))
            .with_member_epoch(resp.member_epoch)
            .with_heartbeat_interval_ms(resp.heartbeat_interval_ms)
            .with_assignment(assignment),
    )
}
