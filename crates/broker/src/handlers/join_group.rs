//! JoinGroup (key 11): waits until the rebalance's join phase completes.

use gregor_coordinator::{code as gcode, JoinRequest, JoinResponse, Protocol, Reply};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use super::{s, Ctx, Outcome};

fn to_wire(j: JoinResponse, version: i16) -> JoinGroupResponse {
    let mut r = JoinGroupResponse::default()
        .with_error_code(j.error)
        .with_generation_id(j.generation_id)
        .with_protocol_name(j.protocol_name.map(s))
        .with_leader(s(j.leader))
        .with_member_id(s(j.member_id))
        .with_members(
            j.members
                .into_iter()
                .map(|m| {
                    let mm = JoinGroupResponseMember::default()
                        .with_member_id(s(m.member_id))
                        .with_metadata(m.metadata);
                    if version >= 5 {
                        mm.with_group_instance_id(m.group_instance_id.map(s))
                    } else {
                        mm
                    }
                })
                .collect(),
        );
    if version >= 7 {
        r = r.with_protocol_type(j.protocol_type.map(s));
    }
    if version >= 9 {
        r = r.with_skip_assignment(j.skip_assignment);
    }
    // Before v7 the protocol name is not nullable.
    if version < 7 && r.protocol_name.is_none() {
        r.protocol_name = Some(s(""));
    }
    r
}

pub fn handle(ctx: &Ctx, req: JoinGroupRequest) -> Outcome<JoinGroupResponse> {
    let version = ctx.version;
    let jr = JoinRequest {
        group_id: req.group_id.0.to_string(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|x| x.to_string()),
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| Protocol {
                name: p.name.to_string(),
                metadata: p.metadata,
            })
            .collect(),
        client_id: ctx.client_id.clone(),
        client_host: ctx.client_host.clone(),
        require_known_member_id: version >= 4,
    };
    let member = jr.member_id.clone();
    let rx = ctx
        .broker
        .groups
        .run_delayed(&ctx.broker, move |c, now, token| c.join(now, token, jr));
    Outcome::Later(Box::pin(async move {
        match rx.await {
            Ok(Reply::Join(j)) => to_wire(j, version),
            _ => to_wire(
                JoinResponse::error(gcode::COORDINATOR_NOT_AVAILABLE, &member),
                version,
            ),
        }
    }))
}
