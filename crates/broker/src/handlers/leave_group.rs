//! LeaveGroup (key 13): one member (v0–2) or a batch by member or instance id (v3+).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::{code, s, Ctx, Outcome};

pub fn handle(ctx: &Ctx, req: LeaveGroupRequest) -> Outcome<LeaveGroupResponse> {
    let members: Vec<(String, Option<String>)> = if ctx.version >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|x| x.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let errors = ctx
        .broker
        .groups
        .run(&ctx.broker, |c, now| {
            c.leave(now, &req.group_id.0, &members)
        })
        .unwrap_or_else(|_| vec![code::COORDINATOR_NOT_AVAILABLE; members.len()]);
    if ctx.version < 3 {
        return Outcome::Now(
            LeaveGroupResponse::default().with_error_code(errors.first().copied().unwrap_or(0)),
        );
    }
    let responses = members
        .into_iter()
        .zip(errors)
        .map(|((m, i), e)| {
            MemberResponse::default()
                .with_member_id(s(m))
                .with_group_instance_id(i.map(s))
                .with_error_code(e)
        })
        .collect();
    Outcome::Now(LeaveGroupResponse::default().with_members(responses))
}
