//! DeleteGroups (key 42): empty groups only (NON_EMPTY_GROUP otherwise);
//! their offsets and metadata are tombstoned in `__consumer_offsets`.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::{code, Ctx, Outcome};

pub fn handle(ctx: &Ctx, req: DeleteGroupsRequest) -> Outcome<DeleteGroupsResponse> {
    let results = req
        .groups_names
        .into_iter()
        .map(|g| {
            let err = ctx
                .broker
                .groups
                .run(&ctx.broker, |c, _| c.delete_group(&g.0))
                .unwrap_or(code::COORDINATOR_NOT_AVAILABLE);
            DeletableGroupResult::default()
                .with_group_id(g)
                .with_error_code(err)
        })
        .collect();
    Outcome::Now(DeleteGroupsResponse::default().with_results(results))
}
