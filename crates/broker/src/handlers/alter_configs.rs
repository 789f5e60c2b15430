//! AlterConfigs (key 33: replaces a resource's configs) and
//! IncrementalAlterConfigs (key 44: SET/DELETE per key, APPEND/SUBTRACT for
//! the list config `cleanup.policy`; a key twice in one resource is
//! INVALID_REQUEST) for topics and brokers. A BROKER resource named by `node.id` holds this broker's dynamic
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
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// Configs whose value is a comma-separated list, so APPEND and SUBTRACT apply.
const LIST_CONFIGS: &[&str] = &["cleanup.policy", "log.cleanup.policy"];

/// The value a list config has now for this resource (override or default).
fn current_list(ctx: &Ctx, rtype: i8, resource: &str, key: &str) -> Vec<String> {
    let value = match rtype {
        RESOURCE_TOPIC => ctx.broker.topic(resource).and_then(|t| {
            crate::topic_config::effective(key, &t.configs.read(), &ctx.broker.config())
        }),
        _ => ctx.broker.config().get(key),
    };
    value
        .unwrap_or_default()
        .split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

/// Turns one IncrementalAlterConfigs entry into a set (`Some`) or a removal
/// (`None`); APPEND/SUBTRACT become a SET of the edited list.
fn incremental_change(
    ctx: &Ctx,
    rtype: i8,
    resource: &str,
    name: &str,
    op: i8,
    value: Option<&str>,
) -> Result<(String, Option<String>), String> {
    match op {
        OP_SET => Ok((name.into(), Some(value.unwrap_or_default().into()))),
        OP_DELETE => Ok((name.into(), None)),
        OP_APPEND | OP_SUBTRACT if LIST_CONFIGS.contains(&name) => {
            let mut list = current_list(ctx, rtype, resource, name);
            for item in value.unwrap_or_default().split(',').map(str::trim) {
                if item.is_empty() {
                    continue;
                }
                let present = list.iter().any(|x| x.eq_ignore_ascii_case(item));
                if op == OP_APPEND && !present {
                    list.push(item.to_string());
                } else if op == OP_SUBTRACT {
                    list.retain(|x| !x.eq_ignore_ascii_case(item));
                }
            }
            Ok((name.into(), Some(list.join(","))))
        }
        OP_APPEND | OP_SUBTRACT => Err(format!(
            "Config operation {op} (APPEND/SUBTRACT) is not valid for {name}: it is not a list config"
        )),
        op => Err(format!("Unknown config operation {op} for {name}")),
    }
}

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
            let mut names: Vec<&str> = r.configs.iter().map(|c| c.name.as_str()).collect();
            names.sort_unstable();
            let duplicate = names.windows(2).any(|w| w[0] == w[1]);
            let (err, msg) = if duplicate {
                (
                    code::INVALID_REQUEST,
                    Some("Error due to duplicate config keys".to_string()),
                )
            } else {
                let changes: Result<Vec<_>, String> = r
                    .configs
                    .iter()
                    .map(|c| {
                        incremental_change(
                            ctx,
                            r.resource_type,
                            &r.resource_name,
                            &c.name,
                            c.config_operation,
                            c.value.as_deref(),
                        )
                    })
                    .collect();
                apply(
                    ctx,
                    r.resource_type,
                    &r.resource_name,
                    changes,
                    false,
                    req.validate_only,
                )
            };
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(err)
                .with_error_message(msg.map(s))
        })
        .collect();
    Outcome::Now(IncrementalAlterConfigsResponse::default().with_responses(responses))
}
