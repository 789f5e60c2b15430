//! Body decoding and response encoding through the `kafka-protocol` crate.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::error::ProtocolError;

/// Decodes a request body of type `T` at `version`. The whole body must be consumed.
pub fn decode_body<T: Decodable>(
    api: ApiKey,
    mut body: Bytes,
    version: i16,
) -> Result<T, ProtocolError> {
    let malformed = |reason: String| ProtocolError::MalformedBody {
        api: api_name(api),
        version,
        reason,
    };
    // kafka-protocol's decoders index into the buffer; guard against panics on
    // hostile input so that one bad frame can only close its own connection.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        T::decode(&mut body, version)
    }))
    .map_err(|_| malformed("decoder panicked".into()))?
    .map_err(|e| malformed(e.to_string()))?;
    Ok(decoded)
}

/// Encodes a full response frame: length prefix, response header (v0 or v1 as
/// the API and version require) and body.
pub fn encode_response<T: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<Bytes, ProtocolError> {
    let err = |reason: String| ProtocolError::Encode {
        api: api_name(api),
        version,
        reason,
    };
    let header_version = api.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header
        .compute_size(header_version)
        .map_err(|e| err(e.to_string()))?
        + body.compute_size(version).map_err(|e| err(e.to_string()))?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| err(e.to_string()))?;
    body.encode(&mut buf, version)
        .map_err(|e| err(e.to_string()))?;
    Ok(buf.freeze())
}

/// A printable name of an API key.
pub fn api_name(api: ApiKey) -> &'static str {
    match api {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::ConsumerGroupHeartbeat => "ConsumerGroupHeartbeat",
        ApiKey::ConsumerGroupDescribe => "ConsumerGroupDescribe",
        ApiKey::DescribeLogDirs => "DescribeLogDirs",
        ApiKey::DescribeProducers => "DescribeProducers",
        ApiKey::AddPartitionsToTxn => "AddPartitionsToTxn",
        ApiKey::AddOffsetsToTxn => "AddOffsetsToTxn",
        ApiKey::EndTxn => "EndTxn",
        ApiKey::TxnOffsetCommit => "TxnOffsetCommit",
        ApiKey::WriteTxnMarkers => "WriteTxnMarkers",
        ApiKey::DescribeTransactions => "DescribeTransactions",
        ApiKey::ListTransactions => "ListTransactions",
        _ => "Other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsResponse, MetadataRequest};
    use proptest::prelude::*;

    #[test]
    fn api_versions_response_uses_header_v0_even_when_flexible() {
        let f = encode_response(ApiKey::ApiVersions, 3, 5, &ApiVersionsResponse::default())
            .expect("encode");
        let len = i32::from_be_bytes([f[0], f[1], f[2], f[3]]) as usize;
        assert_eq!(len, f.len() - 4);
        assert_eq!(&f[4..8], &5i32.to_be_bytes());
        // v0 header: the body (error code 0) follows immediately, no tagged-field byte.
        assert_eq!(&f[8..10], &[0, 0]);
    }

    proptest! {
        #[test]
        fn metadata_round_trips(topics in proptest::collection::vec("[a-z]{1,12}", 0..5), version in 1i16..13) {
            use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
            use kafka_protocol::messages::TopicName;
            use kafka_protocol::protocol::StrBytes;
            let req = MetadataRequest::default().with_topics(Some(topics.iter().map(|t|
                MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(t.clone()))))).collect()));
            let mut b = BytesMut::new();
            req.encode(&mut b, version).expect("encode");
            let back: MetadataRequest = decode_body(ApiKey::Metadata, b.freeze(), version).expect("decode");
            prop_assert_eq!(back.topics.map(|t| t.len()), Some(topics.len()));
        }

        #[test]
        fn garbage_bodies_never_panic(data in proptest::collection::vec(any::<u8>(), 0..128), version in 0i16..14) {
            let _ = decode_body::<MetadataRequest>(ApiKey::Metadata, Bytes::from(data.clone()), version);
            let _ = decode_body::<kafka_protocol::messages::ProduceRequest>(ApiKey::Produce, Bytes::from(data.clone()), version.max(3));
            let _ = decode_body::<kafka_protocol::messages::FetchRequest>(ApiKey::Fetch, Bytes::from(data), version.max(4));
        }
    }
}
