//! EndTxn (key 26), versions 0–4: commit or abort the producer's open
//! transaction. The markers are written before the answer, so a commit
//! acknowledged here is visible to read_committed consumers.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::{code, Ctx, Outcome};
use crate::transactions::fenced_code;

pub fn handle(ctx: &Ctx, req: EndTxnRequest) -> Outcome<EndTxnResponse> {
    let b = &ctx.broker;
    let error = match b.txns.end(
        b,
        &req.transactional_id.0,
        req.producer_id.0,
        req.producer_epoch,
        req.committed,
    ) {
        Ok(()) => code::NONE,
        Err(e) => fenced_code(e, ctx.version >= 2),
    };
    Outcome::Now(EndTxnResponse::default().with_error_code(error))
}
