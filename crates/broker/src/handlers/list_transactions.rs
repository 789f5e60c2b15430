//! ListTransactions (key 66), versions 0–2: every transactional id with its
//! producer id and state, filtered by state names, producer ids, how long
//! the transaction has been open (v1) and an id pattern (v2, a regular
//! expression matching the whole id).

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};

use super::{code, s, Ctx, Outcome};

const STATES: &[&str] = &[
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
];

pub fn handle(ctx: &Ctx, req: ListTransactionsRequest) -> Outcome<ListTransactionsResponse> {
    let now = ctx.broker.clock.now_ms();
    let unknown: Vec<_> = req
        .state_filters
        .iter()
        .filter(|f| !STATES.contains(&f.as_str()))
        .cloned()
        .collect();
    let pattern = match req
        .transactional_id_pattern
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(r) => Some(r),
            Err(_) => {
                return Outcome::Now(
                    ListTransactionsResponse::default().with_error_code(code::INVALID_REQUEST),
                )
            }
        },
    };
    let states = ctx.broker.txns.read(|t| t.list());
    let listed = states
        .into_iter()
        .filter(|(_, m)| {
            req.state_filters.is_empty()
                || req
                    .state_filters
                    .iter()
                    .any(|f| f.as_str() == m.status.name())
        })
        .filter(|(_, m)| {
            req.producer_id_filters.is_empty()
                || req.producer_id_filters.iter().any(|p| p.0 == m.producer_id)
        })
        .filter(|(_, m)| {
            req.duration_filter < 0 || (m.start_ms >= 0 && now - m.start_ms >= req.duration_filter)
        })
        .filter(|(id, _)| pattern.as_ref().is_none_or(|r| r.is_match(id)))
        .map(|(id, m)| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(s(id)))
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(s(m.status.name()))
        })
        .collect();
    Outcome::Now(
        ListTransactionsResponse::default()
            .with_unknown_state_filters(unknown)
            .with_transaction_states(listed),
    )
}
