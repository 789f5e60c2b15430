//! FindCoordinator (key 10): this broker coordinates every group (key type
//! 0) and every transactional id (key type 1).

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::{code, s, Ctx, Outcome};

pub fn handle(ctx: &Ctx, req: FindCoordinatorRequest) -> Outcome<FindCoordinatorResponse> {
    let b = &ctx.broker;
    let (node, host, port) = (
        b.config().node_id,
        b.config().advertised.host.clone(),
        b.config().advertised.port as i32,
    );
    let answer = |key: &StrBytes| -> (i16, Option<String>) {
        match req.key_type {
            0 if key.is_empty() => (code::INVALID_GROUP_ID, Some("empty group id".into())),
            0 | 1 => (code::NONE, None),
            other => (
                code::INVALID_REQUEST,
                Some(format!("unknown coordinator key type {other}")),
            ),
        }
    };
    if ctx.version >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|k| {
                let (err, msg) = answer(k);
                let c = Coordinator::default()
                    .with_key(k.clone())
                    .with_error_code(err)
                    .with_error_message(msg.map(s));
                if err == code::NONE {
                    c.with_node_id(BrokerId(node))
                        .with_host(s(host.clone()))
                        .with_port(port)
                } else {
                    c.with_node_id(BrokerId(-1)).with_port(-1)
                }
            })
            .collect();
        return Outcome::Now(FindCoordinatorResponse::default().with_coordinators(coordinators));
    }
    let (err, msg) = answer(&req.key);
    let mut r = FindCoordinatorResponse::default().with_error_code(err);
    if ctx.version >= 1 {
        r = r.with_error_message(msg.map(s));
    }
    if err == code::NONE {
        r = r
            .with_node_id(BrokerId(node))
            .with_host(s(host))
            .with_port(port);
    } else {
        r = r.with_node_id(BrokerId(-1)).with_port(-1);
    }
    Outcome::Now(r)
}
