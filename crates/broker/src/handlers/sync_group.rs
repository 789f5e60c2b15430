//! SyncGroup (key 14): the leader's assignment, delivered to every member.

use gregor_coordinator::{code as gcode, Reply, SyncRequest, SyncResponse};
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::{s, Ctx, Outcome};

fn to_wire(r: SyncResponse, version: i16) -> SyncGroupResponse {
    let mut w = SyncGroupResponse::default()
        .with_error_code(r.error)
        .with_assignment(r.assignment);
    if version >= 5 {
        w = w
            .with_protocol_type(r.protocol_type.map(s))
            .with_protocol_name(r.protocol_name.map(s));
    }
    w
}

pub fn handle(ctx: &Ctx, req: SyncGroupRequest) -> Outcome<SyncGroupResponse> {
    let version = ctx.version;
    let sr = SyncRequest {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|x| x.to_string()),
        protocol_type: req.protocol_type.map(|x| x.to_string()),
        protocol_name: req.protocol_name.map(|x| x.to_string()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let rx = ctx
        .broker
        .groups
        .run_delayed(&ctx.broker, move |c, now, token| c.sync(now, token, sr));
    Outcome::Later(Box::pin(async move {
        match rx.await {
            Ok(Reply::Sync(r)) => to_wire(r, version),
            _ => to_wire(
                SyncResponse::error(gcode::COORDINATOR_NOT_AVAILABLE),
                version,
            ),
        }
    }))
}
