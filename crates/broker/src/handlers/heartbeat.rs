//! Heartbeat (key 12): keeps a member's session alive and tells it when a
//! rebalance is in progress.

use gregor_coordinator::Effects;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::{code, Ctx, Outcome};

pub fn handle(ctx: &Ctx, req: HeartbeatRequest) -> Outcome<HeartbeatResponse> {
    let instance = req.group_instance_id.as_ref().map(|x| x.to_string());
    let err = ctx
        .broker
        .groups
        .run(&ctx.broker, |c, now| {
            (
                Effects::default(),
                c.heartbeat(
                    now,
                    &req.group_id.0,
                    req.generation_id,
                    &req.member_id,
                    instance.as_deref(),
                ),
            )
        })
        .unwrap_or(code::COORDINATOR_NOT_AVAILABLE);
    Outcome::Now(HeartbeatResponse::default().with_error_code(err))
}
