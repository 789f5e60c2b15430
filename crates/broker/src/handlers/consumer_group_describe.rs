//! ConsumerGroupDescribe (key 69): KIP-848 groups with their epochs, members,
//! current and target assignments.

use gregor_coordinator::consumer_records::Assignment;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as WireAssignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};

use super::{s, Ctx, Outcome};

const GROUP_ID_NOT_FOUND: i16 = 69;

fn wire(a: &Assignment, names: &std::collections::HashMap<uuid::Uuid, String>) -> WireAssignment {
    WireAssignment::default().with_topic_partitions(
        a.iter()
            .map(|(id, ps)| {
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(TopicName(s(names.get(id).cloned().unwrap_or_default())))
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

pub fn handle(
    ctx: &Ctx,
    req: ConsumerGroupDescribeRequest,
) -> Outcome<ConsumerGroupDescribeResponse> {
    let names: std::collections::HashMap<uuid::Uuid, String> = ctx
        .broker
        .topics()
        .into_iter()
        .map(|t| (t.id, t.name.clone()))
        .collect();
    let groups = req
        .group_ids
        .into_iter()
        .map(|gid| {
            ctx.broker.groups.read(|c| match c.consumer_group(&gid.0) {
                None => DescribedGroup::default()
                    .with_group_id(gid.clone())
                    .with_error_code(GROUP_ID_NOT_FOUND)
                    .with_error_message(Some(s(format!("Group {} not found.", gid.0))))
                    .with_group_state(s("Dead")),
                Some(g) => {
                    let assignor = g
                        .members
                        .values()
                        .find_map(|m| m.meta.server_assignor.clone())
                        .unwrap_or_else(|| "uniform".into());
                    let members = g
                        .members
                        .values()
                        .map(|m| {
                            let mut mm = Member::default()
                                .with_member_id(s(m.id.clone()))
                                .with_instance_id(m.meta.instance_id.clone().map(s))
                                .with_rack_id(m.meta.rack_id.clone().map(s))
                                .with_member_epoch(m.current.member_epoch)
                                .with_client_id(s(m.meta.client_id.clone()))
                                .with_client_host(s(m.meta.client_host.clone()))
                                .with_subscribed_topic_names(
                                    m.meta
                                        .subscribed_topic_names
                                        .iter()
                                        .map(|n| TopicName(s(n.clone())))
                                        .collect(),
                                )
                                .with_subscribed_topic_regex(
                                    m.meta.subscribed_topic_regex.clone().map(s),
                                )
                                .with_assignment(wire(&m.current.assigned, &names))
                                .with_target_assignment(wire(
                                    g.target.get(&m.id).unwrap_or(&Assignment::new()),
                                    &names,
                                ));
                            if ctx.version >= 1 {
                                mm = mm.with_member_type(1);
                            }
                            mm
                        })
                        .collect();
                    let mut d = DescribedGroup::default()
                        .with_group_id(gid.clone())
                        .with_group_state(s(g.state()))
                        .with_group_epoch(g.epoch)
                        .with_assignment_epoch(g.assignment_epoch)
                        .with_assignor_name(s(assignor))
                        .with_members(members);
                    if req.include_authorized_operations {
                        d = d.with_authorized_operations(0b1_1111_1111_1000);
                    }
                    d
                }
            })
        })
        .collect();
    Outcome::Now(ConsumerGroupDescribeResponse::default().with_groups(groups))
}
