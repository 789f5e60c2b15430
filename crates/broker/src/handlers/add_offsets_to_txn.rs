//! AddOffsetsToTxn (key 25): the group's `__consumer_offsets` partition
//! joins the transaction, so TxnOffsetCommit may follow.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::{code, Ctx, Outcome};
use crate::transactions::fenced_code;

pub fn handle(ctx: &Ctx, req: AddOffsetsToTxnRequest) -> Outcome<AddOffsetsToTxnResponse> {
    let b = &ctx.broker;
    let error = if req.group_id.0.is_empty() {
        code::INVALID_GROUP_ID
    } else {
        match b.txns.add_offsets(
            b,
            &req.transactional_id.0,
            req.producer_id.0,
            req.producer_epoch,
            &req.group_id.0,
        ) {
            Ok(()) => code::NONE,
            Err(e) => fenced_code(e, ctx.version >= 2),
        }
    };
    Outcome::Now(AddOffsetsToTxnResponse::default().with_error_code(error))
}
