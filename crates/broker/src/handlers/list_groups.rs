//! ListGroups (key 16), with state (v4+) and type (v5+) filters.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::{s, Ctx, Outcome};

pub fn handle(ctx: &Ctx, req: ListGroupsRequest) -> Outcome<ListGroupsResponse> {
    let states: Vec<String> = req.states_filter.iter().map(|x| x.to_string()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|x| x.to_string()).collect();
    let groups = ctx
        .broker
        .groups
        .read(|c| c.list_groups(&states, &types))
        .into_iter()
        .map(|g| {
            let mut l = ListedGroup::default()
                .with_group_id(GroupId(s(g.group_id)))
                .with_protocol_type(s(g.protocol_type));
            if ctx.version >= 4 {
                l = l.with_group_state(s(g.state));
            }
            if ctx.version >= 5 {
                l = l.with_group_type(s(g.group_type));
            }
            l
        })
        .collect();
    Outcome::Now(ListGroupsResponse::default().with_groups(groups))
}
