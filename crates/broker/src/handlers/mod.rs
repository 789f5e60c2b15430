//! One module per Kafka API, all with the same contract:
//!
//! `handle(ctx, request) -> Outcome<Response>`: the synchronous part (for
//! Produce: validating and appending) runs immediately, in request order per
//! connection; anything that must wait (a long-polling fetch, an fsync before
//! acknowledging) is returned as a future that the connection's writer awaits
//! in order. So responses leave in request order while later requests are
//! already being processed.
//!
//! [`dispatch`] is driven by `gregor_protocol::versions::SUPPORTED`: every key
//! in that table has an arm here (checked by a test), so ApiVersions never
//! advertises an API without a handler.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_transactions;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod write_txn_markers;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::codec::{decode_body, encode_response};
use gregor_protocol::header::Request;
use gregor_protocol::ProtocolError;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::state::Broker;

/// What a handler produced.
pub enum Outcome<R> {
    /// The response is ready.
    Now(R),
    /// The response comes when this future completes.
    Later(Pin<Box<dyn Future<Output = R> + Send>>),
    /// No response is sent (Produce with acks=0).
    Silent,
}

/// An encoded response frame, now or later; `None` means send nothing.
pub enum Pending {
    Ready(Option<Bytes>),
    Later(Pin<Box<dyn Future<Output = Result<Option<Bytes>, ProtocolError>> + Send>>),
}

/// What every handler is given besides its request.
pub struct Ctx {
    pub broker: Arc<Broker>,
    pub version: i16,
    pub client_id: String,
    /// The peer's address as Kafka reports it (`/127.0.0.1`).
    pub client_host: String,
}

fn run<Q, R>(
    broker: &Arc<Broker>,
    req: Request,
    peer: &str,
    api: ApiKey,
    handle: fn(&Ctx, Q) -> Outcome<R>,
) -> Result<Pending, ProtocolError>
where
    Q: Decodable,
    R: Encodable + Send + 'static,
{
    let version = req.api_version;
    let body: Q = decode_body(api, req.body, version)?;
    let ctx = Ctx {
        broker: broker.clone(),
        version,
        client_id: req.client_id.unwrap_or_default(),
        client_host: format!("/{peer}"),
    };
    let correlation_id = req.correlation_id;
    Ok(match handle(&ctx, body) {
        Outcome::Now(r) => Pending::Ready(Some(encode_response(api, version, correlation_id, &r)?)),
        Outcome::Silent => Pending::Ready(None),
        Outcome::Later(fut) => Pending::Later(Box::pin(async move {
            let r = fut.await;
            encode_response(api, version, correlation_id, &r).map(Some)
        })),
    })
}

/// Decodes, handles and encodes one request.
///
/// Errors mean the connection must be closed: an undecodable body, or an API
/// or version that is not implemented (ApiVersions excepted, which answers
/// unknown versions with UNSUPPORTED_VERSION as KIP-511 requires).
/// `peer` is the client's IP address, for group member descriptions.
pub fn dispatch(broker: &Arc<Broker>, req: Request, peer: &str) -> Result<Pending, ProtocolError> {
    let Some(api) = req.api else {
        if req.api_key == ApiKey::ApiVersions as i16 {
            let frame = api_versions::unsupported_version_response(req.correlation_id)?;
            return Ok(Pending::Ready(Some(frame)));
        }
        return Err(ProtocolError::MalformedHeader(format!(
            "unsupported API key {} version {}",
            req.api_key, req.api_version
        )));
    };
    match api {
        ApiKey::ApiVersions => run(broker, req, peer, api, api_versions::handle),
        ApiKey::Metadata => run(broker, req, peer, api, metadata::handle),
        ApiKey::Produce => run(broker, req, peer, api, produce::handle),
        ApiKey::Fetch => run(broker, req, peer, api, fetch::handle),
        ApiKey::ListOffsets => run(broker, req, peer, api, list_offsets::handle),
        ApiKey::CreateTopics => run(broker, req, peer, api, create_topics::handle),
        ApiKey::DeleteTopics => run(broker, req, peer, api, delete_topics::handle),
        ApiKey::CreatePartitions => run(broker, req, peer, api, create_partitions::handle),
        ApiKey::DeleteRecords => run(broker, req, peer, api, delete_records::handle),
        ApiKey::InitProducerId => run(broker, req, peer, api, init_producer_id::handle),
        ApiKey::DescribeCluster => run(broker, req, peer, api, describe_cluster::handle),
        ApiKey::DescribeConfigs => run(broker, req, peer, api, describe_configs::handle),
        ApiKey::AlterConfigs => run(broker, req, peer, api, alter_configs::handle_alter),
        ApiKey::IncrementalAlterConfigs => {
            run(broker, req, peer, api, alter_configs::handle_incremental)
        }
        ApiKey::FindCoordinator => run(broker, req, peer, api, find_coordinator::handle),
        ApiKey::JoinGroup => run(broker, req, peer, api, join_group::handle),
        ApiKey::SyncGroup => run(broker, req, peer, api, sync_group::handle),
        ApiKey::Heartbeat => run(broker, req, peer, api, heartbeat::handle),
        ApiKey::LeaveGroup => run(broker, req, peer, api, leave_group::handle),
        ApiKey::OffsetCommit => run(broker, req, peer, api, offset_commit::handle),
        ApiKey::OffsetFetch => run(broker, req, peer, api, offset_fetch::handle),
        ApiKey::ListGroups => run(broker, req, peer, api, list_groups::handle),
        ApiKey::DescribeGroups => run(broker, req, peer, api, describe_groups::handle),
        ApiKey::DeleteGroups => run(broker, req, peer, api, delete_groups::handle),
        ApiKey::OffsetDelete => run(broker, req, peer, api, offset_delete::handle),
        ApiKey::ConsumerGroupHeartbeat => {
            run(broker, req, peer, api, consumer_group_heartbeat::handle)
        }
        ApiKey::ConsumerGroupDescribe => {
            run(broker, req, peer, api, consumer_group_describe::handle)
        }
        ApiKey::DescribeLogDirs => run(broker, req, peer, api, describe_log_dirs::handle),
        ApiKey::DescribeProducers => run(broker, req, peer, api, describe_producers::handle),
        ApiKey::AddPartitionsToTxn => run(broker, req, peer, api, add_partitions_to_txn::handle),
        ApiKey::AddOffsetsToTxn => run(broker, req, peer, api, add_offsets_to_txn::handle),
        ApiKey::EndTxn => run(broker, req, peer, api, end_txn::handle),
        ApiKey::TxnOffsetCommit => run(broker, req, peer, api, txn_offset_commit::handle),
        ApiKey::WriteTxnMarkers => run(broker, req, peer, api, write_txn_markers::handle),
        ApiKey::DescribeTransactions => run(broker, req, peer, api, describe_transactions::handle),
        ApiKey::ListTransactions => run(broker, req, peer, api, list_transactions::handle),
        other => Err(ProtocolError::MalformedHeader(format!(
            "no handler for {other:?}"
        ))),
    }
}

/// Shorthand for an owned protocol string.
pub(crate) fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// Kafka error codes used by the handlers.
pub mod code {
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const INVALID_CONFIG: i16 = 40;
    pub const INVALID_REQUEST: i16 = 42;
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const INVALID_RECORD: i16 = 87;
    pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
    pub const TOPIC_DELETION_DISABLED: i16 = 73;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const INVALID_GROUP_ID: i16 = 24;
}

/// Maps a storage failure to the Kafka error code the client should see.
pub(crate) fn storage_code(e: &gregor_storage::StorageError) -> i16 {
    use gregor_storage::StorageError as E;
    match e {
        E::Io(_) => code::KAFKA_STORAGE_ERROR,
        E::Corrupt(_) => code::CORRUPT_MESSAGE,
        E::InvalidRecord(_) => code::INVALID_RECORD,
        E::UnsupportedMagic(_) => code::UNSUPPORTED_FOR_MESSAGE_FORMAT,
        E::MessageTooLarge { .. } => code::MESSAGE_TOO_LARGE,
        E::OffsetOutOfRange { .. } => code::OFFSET_OUT_OF_RANGE,
        E::OutOfOrderSequence { .. } => code::OUT_OF_ORDER_SEQUENCE_NUMBER,
        E::ProducerFenced { .. } => code::INVALID_PRODUCER_EPOCH,
    }
}

/// Maps a topic-operation refusal to (error code, message).
pub(crate) fn topic_error(e: &crate::state::TopicError) -> (i16, String) {
    use crate::state::TopicError as T;
    match e {
        T::InvalidName(m) => (code::INVALID_TOPIC_EXCEPTION, m.clone()),
        T::AlreadyExists => (code::TOPIC_ALREADY_EXISTS, "Topic already exists.".into()),
        T::UnknownTopic => (
            code::UNKNOWN_TOPIC_OR_PARTITION,
            "This server does not host this topic.".into(),
        ),
        T::InvalidPartitions(m) => (code::INVALID_PARTITIONS, m.clone()),
        T::InvalidReplicationFactor(m) => (code::INVALID_REPLICATION_FACTOR, m.clone()),
        T::InvalidConfig(m) => (code::INVALID_CONFIG, m.clone()),
        T::Disabled => (
            code::TOPIC_DELETION_DISABLED,
            "Topic deletion is disabled.".into(),
        ),
        T::Internal(m) => (code::KAFKA_STORAGE_ERROR, m.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::config::BrokerConfig;
    use bytes::BytesMut;

    /// Every advertised API dispatches to a handler (rather than the
    /// "no handler" error), at its lowest and highest version.
    #[test]
    fn every_supported_api_has_a_handler() {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = BrokerConfig {
            data_dir: dir.path().to_path_buf(),
            ..BrokerConfig::default()
        };
        let broker = Broker::open(cfg, Arc::new(SystemClock)).expect("open");
        for a in gregor_protocol::versions::SUPPORTED {
            for v in [a.min, a.max] {
                let req = Request {
                    api_key: a.key as i16,
                    api_version: v,
                    correlation_id: 1,
                    client_id: None,
                    api: Some(a.key),
                    body: BytesMut::new().freeze(),
                };
                if let Err(ProtocolError::MalformedHeader(m)) = dispatch(&broker, req, "127.0.0.1")
                {
                    panic!("{:?} v{v}: {m}", a.key);
                }
            }
        }
    }
}
