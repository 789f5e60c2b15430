//! Request header resolution.
//!
//! Layout (all versions): `api_key: i16`, `api_version: i16`,
//! `correlation_id: i32`, `client_id: nullable string (i16 length)`; header v2
//! (flexible APIs) adds tagged fields after the client id. Which header
//! version applies depends on the API key and version, so the fixed prefix is
//! read first and the rest decoded only for a supported key and version.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

use crate::error::ProtocolError;
use crate::versions;

/// A request split into its resolved header and undecoded body.
#[derive(Debug, Clone)]
pub struct Request {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// The API, when this broker implements this key at this version.
    pub api: Option<ApiKey>,
    /// The bytes after the header (undecoded when `api` is `None`).
    pub body: Bytes,
}

/// Reads the fixed prefix of a frame: (api key, version, correlation id).
pub fn peek_prefix(frame: &[u8]) -> Result<(i16, i16, i32), ProtocolError> {
    if frame.len() < 8 {
        return Err(ProtocolError::MalformedHeader(
            "frame shorter than the header prefix".into(),
        ));
    }
    Ok((
        i16::from_be_bytes([frame[0], frame[1]]),
        i16::from_be_bytes([frame[2], frame[3]]),
        i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
    ))
}

/// Resolves the header of one frame.
///
/// For an unsupported key or version only the prefix is read (the header
/// version of an unknown version is unknowable), `api` is `None`, and the
/// caller answers with the protocol's error for that case.
pub fn parse_request(mut frame: Bytes) -> Result<Request, ProtocolError> {
    let (api_key, api_version, correlation_id) = peek_prefix(&frame)?;
    let api = ApiKey::try_from(api_key)
        .ok()
        .filter(|_| versions::is_supported(api_key, api_version));
    let Some(key) = api else {
        frame.advance(8);
        return Ok(Request {
            api_key,
            api_version,
            correlation_id,
            client_id: None,
            api: None,
            body: frame,
        });
    };
    let header_version = key.request_header_version(api_version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| ProtocolError::MalformedHeader(e.to_string()))?;
    Ok(Request {
        api_key,
        api_version,
        correlation_id,
        client_id: header.client_id.map(|s| s.to_string()),
        api: Some(key),
        body: frame,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use proptest::prelude::*;

    fn encode_header(key: i16, version: i16, header_version: i16) -> Bytes {
        let h = RequestHeader::default()
            .with_request_api_key(key)
            .with_request_api_version(version)
            .with_correlation_id(77)
            .with_client_id(Some(StrBytes::from_static_str("rdkafka")));
        let mut b = BytesMut::new();
        h.encode(&mut b, header_version).expect("encode");
        b.extend_from_slice(b"body");
        b.freeze()
    }

    #[test]
    fn resolves_flexible_and_classic_headers() {
        let r = parse_request(encode_header(18, 3, 2)).expect("v2 header");
        assert_eq!(
            (r.api, r.correlation_id, r.client_id.as_deref()),
            (Some(ApiKey::ApiVersions), 77, Some("rdkafka"))
        );
        assert_eq!(&r.body[..], b"body");
        let r = parse_request(encode_header(3, 1, 1)).expect("v1 header");
        assert_eq!(r.api, Some(ApiKey::Metadata));
        assert_eq!(&r.body[..], b"body");
    }

    #[test]
    fn unsupported_version_keeps_correlation_id() {
        let r = parse_request(encode_header(18, 99, 2)).expect("parsed prefix");
        assert_eq!(
            (r.api, r.api_key, r.api_version, r.correlation_id),
            (None, 18, 99, 77)
        );
        let r = parse_request(encode_header(1000, 0, 1)).expect("unknown key");
        assert!(r.api.is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_frames_never_panic(key in 0i16..100, version in -1i16..20, rest in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut b = BytesMut::new();
            b.extend_from_slice(&key.to_be_bytes());
            b.extend_from_slice(&version.to_be_bytes());
            b.extend_from_slice(&1i32.to_be_bytes());
            b.extend_from_slice(&rest);
            let _ = parse_request(b.freeze());
        }
    }
}
