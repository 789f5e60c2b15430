//! InitProducerId (key 22): producer ids for idempotent producers.
//!
//! As in Kafka, a non-transactional producer always gets a fresh id with
//! epoch 0 (also when it asks to bump an existing one, KIP-360). With a
//! transactional id the transaction coordinator answers: the id's producer
//! id with a bumped epoch (fencing earlier instances; an open transaction is
//! aborted first).

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{code, Ctx, Outcome};
use crate::transactions::fenced_code;

pub fn handle(ctx: &Ctx, req: InitProducerIdRequest) -> Outcome<InitProducerIdResponse> {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if let Some(id) = req.transactional_id.as_ref().filter(|id| !id.0.is_empty()) {
        let b = &ctx.broker;
        return Outcome::Now(
            match b
                .txns
                .init_producer_id(b, &id.0, req.transaction_timeout_ms)
            {
                Ok((pid, epoch)) => resp
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch),
                Err(e) => resp.with_error_code(fenced_code(e, ctx.version >= 4)),
            },
        );
    }
    match ctx.broker.allocate_producer_id() {
        Ok(id) => Outcome::Now(resp.with_producer_id(ProducerId(id)).with_producer_epoch(0)),
        Err(e) => {
            tracing::error!(error = %e, "cannot persist producer id block");
            Outcome::Now(resp.with_error_code(code::KAFKA_STORAGE_ERROR))
        }
    }
}
