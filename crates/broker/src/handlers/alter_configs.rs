//! AlterConfigs (key 33: replaces a resource's configs) and
//! IncrementalAlterConfigs (key 44: SET/DELETE per key) for topics and
//! brokers. A BROKER resource named by `node.id` holds this broker's dynamic
//! configs, the one with the empty name the cluster-wide defaults; both are
//! persisted and apply at once. A static broker config, an unknown one or a
//! value out of bounds is refused with INVALID_REQUEST (as Kafka does for
//! broker resources; topics get INVALID_CONFIG).

use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use super::describe_configs::{broker_scope, RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{code, s, topic_error, Ctx, Outcome};
use crate::state::BrokerConfigError;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// Applies one resource's changes; returns (error code, message).
fn apply(
    ctx: &Ctx,
    rtype: i8,
    name: &str,
    changes: Result<Vec<(String, Option<String>)>, String>,
    replace: bool,
    validate_only: bool,
) -> (i16, Option<String>) {
    let changes = match changes {
        Ok(c) => c,
        Err(m) if rtype == RESOURCE_BROKER => return (code::INVALID_REQUEST, Some(m)),
        Err(m) => return (code::INVALID_CONFIG, Some(m)),
    };
    match rtype {
        RESOURCE_TOPIC => {
            match ctx
                .broker
                .alter_topic_configs(name, &changes, replace, validate_only)
            {
                Ok(()) => (code::NONE, None),
                Err(e) => {
                    let (c, m) = topic_error(&e);
                    (c, Some(m))
                }
            }
        }
        RESOURCE_BROKER => {
            let Some(scope) = broker_scope(ctx, name) else {
                return (
                    code::INVALID_REQUEST,
                    Some(format!("Unexpected broker id {name}")),
                );
            };
            match ctx
                .broker
                .alter_broker_configs(scope, &changes, replace, validate_only)
            {
                Ok(()) => (code::NONE, None),
                Err(BrokerConfigError::Invalid(m)) => (
                    code::INVALID_REQUEST,
                    Some(format!(
                        "Invalid config value for resource ConfigResource(type=BROKER, name='{name}'): {m}"
                    )),
                ),
                Err(BrokerConfigError::Internal(m)) => (code::UNKNOWN_SERVER_ERROR, Some(m)),
            }
        }
        other => (
            code::INVALID_REQUEST,
            Some(format!("Unsupported resource type {other}")),
        ),
    }
}

pub fn handle_alter(ctx: &Ctx, req: AlterConfigsRequest) -> Outcome<AlterConfigsResponse> {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            let changes = r
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect();
            let (err, msg) = apply(
                ctx,
                r.resource_type,
                &r.resource_name,
                Ok(changes),
                true,
                req.validate_only,
            );
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(err)
                .with_error_message(msg.map(s))
        })
        .collect();
    Outcome::Now(AlterConfigsResponse::default().with_responses(responses))
}

pub fn handle_incremental(
    ctx: &Ctx,
    req: IncrementalAlterConfigsRequest,
) -> Outcome<IncrementalAlterConfigsResponse> {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            let changes: Result<Vec<_>, String> = r
                .configs
                .iter()
                .map(|c| match c.config_operation {
                    OP_SET => Ok((c.name.to_string(), Some(c.value.as_ref().map(|v| v.to_string()).unwrap_or_default()))),
                    OP_DELETE => Ok((c.name.to_string(), None)),
                    op => Err(format!("Config operation {op} (APPEND/SUBTRACT) is not valid for {}: it is not a list config", c.name)),
                })
                .collect();
            let (err, msg) = apply(ctx, r.resource_type, &r.resource_name, changes, false, req.validate_only);
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(err)
                .with_error_message(msg.map(s))
        })
        .collect();
    Outcome::Now(IncrementalAlterConfigsResponse::default().with_responses(responses))
}
