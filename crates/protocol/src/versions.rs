//! The one table of APIs Gregor implements, with the version range of each.
//!
//! The broker's dispatcher has a handler for exactly these keys (a test there
//! checks it) and ApiVersions advertises exactly this table, so a client never
//! negotiates an API the broker cannot serve.

use kafka_protocol::messages::ApiKey;

/// An implemented API and the versions accepted for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

const fn r(key: ApiKey, min: i16, max: i16) -> ApiRange {
    ApiRange { key, min, max }
}

/// Every implemented API, at the version ranges Kafka 4.1 accepts.
pub const SUPPORTED: &[ApiRange] = &[
    r(ApiKey::Produce, 3, 13),
    r(ApiKey::Fetch, 4, 18),
    r(ApiKey::ListOffsets, 1, 10),
    r(ApiKey::Metadata, 0, 13),
    r(ApiKey::ApiVersions, 0, 4),
    r(ApiKey::CreateTopics, 2, 7),
    r(ApiKey::DeleteTopics, 1, 6),
    r(ApiKey::DeleteRecords, 0, 2),
    r(ApiKey::InitProducerId, 0, 5),
    r(ApiKey::DescribeConfigs, 1, 4),
    r(ApiKey::AlterConfigs, 0, 2),
    r(ApiKey::CreatePartitions, 0, 3),
    r(ApiKey::IncrementalAlterConfigs, 0, 1),
    r(ApiKey::DescribeCluster, 0, 2),
    r(ApiKey::FindCoordinator, 0, 6),
    r(ApiKey::JoinGroup, 0, 9),
    r(ApiKey::SyncGroup, 0, 5),
    r(ApiKey::Heartbeat, 0, 4),
    r(ApiKey::LeaveGroup, 0, 5),
    r(ApiKey::OffsetCommit, 2, 9),
    r(ApiKey::OffsetFetch, 1, 9),
    r(ApiKey::ListGroups, 0, 5),
    r(ApiKey::DescribeGroups, 0, 6),
    r(ApiKey::DeleteGroups, 0, 2),
    r(ApiKey::OffsetDelete, 0, 0),
    r(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    r(ApiKey::ConsumerGroupDescribe, 0, 1),
    r(ApiKey::DescribeLogDirs, 1, 4),
    r(ApiKey::DescribeProducers, 0, 0),
    r(ApiKey::AddPartitionsToTxn, 0, 3),
    r(ApiKey::AddOffsetsToTxn, 0, 4),
    r(ApiKey::EndTxn, 0, 4),
    r(ApiKey::TxnOffsetCommit, 0, 5),
    r(ApiKey::WriteTxnMarkers, 1, 1),
    r(ApiKey::DescribeTransactions, 0, 0),
    r(ApiKey::ListTransactions, 0, 2),
];

/// The supported range of an API key, if implemented.
pub fn supported(api_key: i16) -> Option<ApiRange> {
    SUPPORTED.iter().copied().find(|a| a.key as i16 == api_key)
}

/// Whether `version` of `api_key` is implemented.
pub fn is_supported(api_key: i16, version: i16) -> bool {
    supported(api_key).is_some_and(|a| (a.min..=a.max).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_within_what_the_codec_knows() {
        for a in SUPPORTED {
            let codec = a.key.valid_versions();
            assert!(
                a.min >= codec.min && a.max <= codec.max,
                "{:?} outside codec range",
                a.key
            );
            assert!(a.min <= a.max);
        }
        assert!(is_supported(18, 4));
        assert!(!is_supported(18, 5));
        assert!(is_supported(24, 3));
        assert!(
            !is_supported(24, 4),
            "AddPartitionsToTxn v4+ is broker-to-broker only"
        );
        assert!(!is_supported(29, 0), "ACLs are not implemented");
    }
}
