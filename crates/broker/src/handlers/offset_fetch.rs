//! OffsetFetch (key 9): committed offsets of one group (v0–7) or several (v8+);
//! a null topic list means every committed partition. With `require_stable`
//! (v7+), a partition with an offset committed by a still-open transaction
//! gets UNSTABLE_OFFSET_COMMIT, so the client retries once it has ended.

use std::collections::BTreeMap;

use gregor_coordinator::FetchedOffset;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::{s, Ctx, Outcome};

fn by_topic(offsets: Vec<FetchedOffset>) -> BTreeMap<String, Vec<FetchedOffset>> {
    let mut m: BTreeMap<String, Vec<FetchedOffset>> = BTreeMap::new();
    for o in offsets {
        m.entry(o.topic.clone()).or_default().push(o);
    }
    m
}

const UNSTABLE_OFFSET_COMMIT: i16 = 88;

pub fn handle(ctx: &Ctx, req: OffsetFetchRequest) -> Outcome<OffsetFetchResponse> {
    let groups = &ctx.broker.groups;
    let txns = &ctx.broker.txns;
    let stable_only = ctx.version >= 7 && req.require_stable;
    let error = |group: &str, o: &FetchedOffset| {
        if stable_only && txns.unstable(group, &o.topic, o.partition) {
            UNSTABLE_OFFSET_COMMIT
        } else {
            0
        }
    };
    let epoch = |e: i32| if ctx.version >= 5 { e } else { -1 };
    if ctx.version >= 8 {
        let out = req
            .groups
            .into_iter()
            .map(|g| {
                let topics: Option<Vec<(String, Vec<i32>)>> = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                let offsets = groups.read(|c| c.fetch_offsets(&g.group_id.0, topics.as_deref()));
                let topics = by_topic(offsets)
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(s(t)))
                            .with_partitions(
                                ps.into_iter()
                                    .map(|o| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_error_code(error(&g.group_id.0, &o))
                                            .with_partition_index(o.partition)
                                            .with_committed_offset(o.offset)
                                            .with_committed_leader_epoch(o.leader_epoch)
                                            .with_metadata(Some(s(o.metadata)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(topics)
            })
            .collect();
        return Outcome::Now(OffsetFetchResponse::default().with_groups(out));
    }
    let topics: Option<Vec<(String, Vec<i32>)>> = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let offsets = groups.read(|c| c.fetch_offsets(&req.group_id.0, topics.as_deref()));
    let topics = by_topic(offsets)
        .into_iter()
        .map(|(t, ps)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(s(t)))
                .with_partitions(
                    ps.into_iter()
                        .map(|o| {
                            OffsetFetchResponsePartition::default()
                                .with_error_code(error(&req.group_id.0, &o))
                                .with_partition_index(o.partition)
                                .with_committed_offset(o.offset)
                                .with_committed_leader_epoch(epoch(o.leader_epoch))
                                .with_metadata(Some(s(o.metadata)))
                        })
                        .collect(),
                )
        })
        .collect();
    Outcome::Now(OffsetFetchResponse::default().with_topics(topics))
}
