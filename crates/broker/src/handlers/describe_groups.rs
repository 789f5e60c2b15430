//! DescribeGroups (key 15): state, protocol and members with their
//! subscription metadata and assignment.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::{s, Ctx, Outcome};

pub fn handle(ctx: &Ctx, req: DescribeGroupsRequest) -> Outcome<DescribeGroupsResponse> {
    let groups = req
        .groups
        .into_iter()
        .map(|g| {
            let d = ctx.broker.groups.read(|c| c.describe_group(&g.0));
            // Before v6 an unknown group is described as Dead without an error.
            let error = if ctx.version >= 6 { d.error } else { 0 };
            let members = d
                .members
                .into_iter()
                .map(|m| {
                    let dm = DescribedGroupMember::default()
                        .with_member_id(s(m.member_id))
                        .with_client_id(s(m.client_id))
                        .with_client_host(s(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment);
                    if ctx.version >= 4 {
                        dm.with_group_instance_id(m.group_instance_id.map(s))
                    } else {
                        dm
                    }
                })
                .collect();
            let mut out = DescribedGroup::default()
                .with_error_code(error)
                .with_group_id(g)
                .with_group_state(s(d.state))
                .with_protocol_type(s(d.protocol_type))
                .with_protocol_data(s(d.protocol))
                .with_members(members);
            if ctx.version >= 3 && req.include_authorized_operations {
                out = out.with_authorized_operations(0b1_1111_1111_1000);
            }
            out
        })
        .collect();
    Outcome::Now(DescribeGroupsResponse::default().with_groups(groups))
}
