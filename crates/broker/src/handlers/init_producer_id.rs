//! InitProducerId (key 22): producer ids for idempotent producers.
//!
//! As in Kafka, a non-transactional producer always gets a fresh id with
//! epoch 0 (also when it asks to bump an existing one, KIP-360). Transactions
//! are not implemented yet, so a transactional id is refused with
//! INVALID_REQUEST rather than half-served.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{code, Ctx, Outcome};

pub fn handle(ctx: &Ctx, req: InitProducerIdRequest) -> Outcome<InitProducerIdResponse> {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        return Outcome::Now(resp.with_error_code(code::INVALID_REQUEST));
    }
    match ctx.broker.allocate_producer_id() {
        Ok(id) => Outcome::Now(resp.with_producer_id(ProducerId(id)).with_producer_epoch(0)),
        Err(e) => {
            tracing::error!(error = %e, "cannot persist producer id block");
            Outcome::Now(resp.with_error_code(code::KAFKA_STORAGE_ERROR))
        }
    }
}
