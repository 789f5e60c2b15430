//! ApiVersions (key 18): the implemented API table, straight from
//! `gregor_protocol::versions::SUPPORTED`.

use bytes::Bytes;
use gregor_protocol::codec::encode_response;
use gregor_protocol::versions::SUPPORTED;
use gregor_protocol::ProtocolError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use super::{code, Ctx, Outcome};

fn table() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|a| {
            ApiVersion::default()
                .with_api_key(a.key as i16)
                .with_min_version(a.min)
                .with_max_version(a.max)
        })
        .collect()
}

pub fn handle(_ctx: &Ctx, _req: ApiVersionsRequest) -> Outcome<ApiVersionsResponse> {
    Outcome::Now(ApiVersionsResponse::default().with_api_keys(table()))
}

/// KIP-511: a request at a version we do not know is answered at v0 with
/// UNSUPPORTED_VERSION and our ranges, so the client can retry at one we do.
pub fn unsupported_version_response(correlation_id: i32) -> Result<Bytes, ProtocolError> {
    let body = ApiVersionsResponse::default()
        .with_error_code(code::UNSUPPORTED_VERSION)
        .with_api_keys(table());
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &body)
}
