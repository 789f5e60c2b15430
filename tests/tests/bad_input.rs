//! Malformed, oversized and invalid requests on raw sockets: each closes only
//! its own connection or gets the precise Kafka error, and a real client
//! keeps working.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gregor_blackbox::raw::{call, closed_by_broker, connect, read_response};
use gregor_blackbox::Gregor;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader,
    TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn assert_client_works(g: &Gregor, topic: &str) {
    let p: BaseProducer = g.client_config().create().expect("producer");
    p.send(BaseRecord::<(), _>::to(topic).payload("still alive"))
        .expect("send");
    assert_eq!(
        p.flush(Duration::from_secs(20)).map_err(|e| e.to_string()),
        Ok(())
    );
    let c: BaseConsumer = g.client_config().create().expect("consumer");
    let (_, hi) = c
        .fetch_watermarks(topic, 0, Duration::from_secs(20))
        .expect("watermarks");
    assert!(hi >= 1);
}

#[test]
fn garbage_and_oversized_frames_close_only_their_connection() {
    let g = Gregor::start_with(&[("GREGOR_SOCKET_REQUEST_MAX_BYTES", "1048576")]);
    // A healthy connection opened before the bad ones, used after them.
    let mut healthy = connect(&g);

    let mut s = connect(&g);
    s.write_all(&(200 * 1024 * 1024i32).to_be_bytes())
        .expect("write");
    assert!(closed_by_broker(&mut s), "oversized frame was not refused");

    let mut s = connect(&g);
    s.write_all(&(-1i32).to_be_bytes()).expect("write");
    assert!(closed_by_broker(&mut s), "negative length was not refused");

    let mut s = connect(&g);
    let mut junk = 64i32.to_be_bytes().to_vec();
    junk.extend((0..64).map(|i| (i * 37 + 11) as u8));
    s.write_all(&junk).expect("write");
    assert!(closed_by_broker(&mut s), "garbage was not refused");

    // Unknown API key.
    let mut s = connect(&g);
    let mut f = 10i32.to_be_bytes().to_vec();
    f.extend_from_slice(&[0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
    s.write_all(&f).expect("write");
    assert!(closed_by_broker(&mut s), "unknown api key was not refused");

    // Metadata v0 declaring 2^31-1 topics in a 15-byte body (the codec's OOM case).
    let mut s = connect(&g);
    let mut body = vec![0u8, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff];
    body.extend_from_slice(&i32::MAX.to_be_bytes());
    body.push(0);
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(&body);
    s.write_all(&f).expect("write");
    assert!(
        closed_by_broker(&mut s),
        "hostile array count was not refused"
    );

    // A truncated frame followed by EOF.
    let mut s = connect(&g);
    s.write_all(&[0, 0, 0, 100, 1, 2, 3]).expect("write");
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    assert!(closed_by_broker(&mut s));

    let md: MetadataResponse = call(
        &mut healthy,
        ApiKey::Metadata,
        9,
        &MetadataRequest::default(),
    );
    assert_eq!(md.brokers.len(), 1);
    assert_client_works(&g, "after-garbage");
}

#[test]
fn api_versions_at_an_unknown_version_gets_v0_unsupported_version() {
    let g = Gregor::start();
    let mut s = connect(&g);
    // ApiVersions v99 with a v2 header (what a newer client would send).
    let mut b = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(18)
        .with_request_api_version(99)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("future")))
        .encode(&mut b, 2)
        .expect("header");
    b.extend_from_slice(&[0, 0, 0]);
    let mut f = (b.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(&b);
    s.write_all(&f).expect("write");
    let r = read_response(&mut s);
    assert_eq!(&r[0..4], &7i32.to_be_bytes(), "correlation id");
    assert_eq!(i16::from_be_bytes([r[4], r[5]]), 35, "UNSUPPORTED_VERSION");
    let n = i32::from_be_bytes([r[6], r[7], r[8], r[9]]);
    assert!(n >= 10, "the v0 response lists our ranges");
    let entry = |i: usize| {
        let at = 10 + i * 6;
        (
            i16::from_be_bytes([r[at], r[at + 1]]),
            i16::from_be_bytes([r[at + 2], r[at + 3]]),
            i16::from_be_bytes([r[at + 4], r[at + 5]]),
        )
    };
    assert!((0..n as usize).map(entry).any(|e| e == (18, 0, 4)));
    assert!(
        (0..n as usize).map(entry).any(|e| e == (11, 0, 9)),
        "JoinGroup is advertised"
    );
    assert!(
        (0..n as usize).map(entry).any(|e| e == (68, 0, 1)),
        "ConsumerGroupHeartbeat (KIP-848) is advertised"
    );
    assert!(
        (0..n as usize).map(entry).any(|e| e == (24, 0, 3)),
        "AddPartitionsToTxn is advertised in its client versions"
    );
    // ACLs (DescribeAcls, CreateAcls) are not implemented.
    assert!(
        (0..n as usize).map(entry).all(|e| e.0 != 29 && e.0 != 30),
        "an unimplemented API is advertised"
    );
}

fn record(offset: i64, key: Option<Bytes>, value: Bytes) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: -1,
        timestamp: 1000,
        key,
        value: Some(value),
        headers: Default::default(),
    }
}

fn encode(records: &[Record], compression: Compression) -> BytesMut {
    let mut b = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut b,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode");
    b
}

/// A batch of keyless records.
fn batch(values: &[&str], corrupt: bool) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| record(i as i64, None, Bytes::copy_from_slice(v.as_bytes())))
        .collect();
    let mut b = encode(&records, Compression::None);
    if corrupt {
        let last = b.len() - 1;
        b[last] ^= 0x55;
    }
    b.freeze()
}

fn produce(topic: &str, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

#[test]
fn invalid_requests_get_precise_error_codes() {
    let g = Gregor::start_with(&[
        ("GREGOR_AUTO_CREATE_TOPICS_ENABLE", "false"),
        ("GREGOR_MESSAGE_MAX_BYTES", "1000"),
    ]);
    let mut s = connect(&g);
    let md = |name: &str| {
        MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name.into()))))]))
            .with_allow_auto_topic_creation(true)
    };
    let r: MetadataResponse = call(&mut s, ApiKey::Metadata, 12, &md("no-such-topic"));
    assert_eq!(
        r.topics[0].error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION with auto-creation off"
    );
    let r: MetadataResponse = call(&mut s, ApiKey::Metadata, 12, &md("bad/name"));
    assert_eq!(r.topics[0].error_code, 17, "INVALID_TOPIC_EXCEPTION");

    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        g.client_config().create().expect("admin");
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(admin.create_topics(
        &[rdkafka::admin::NewTopic::new(
            "t",
            1,
            rdkafka::admin::TopicReplication::Fixed(1),
        )],
        &rdkafka::admin::AdminOptions::new(),
    ))
    .expect("create");

    let r: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        9,
        &produce("t", batch(&["a", "b"], true)),
    );
    assert_eq!(
        r.responses[0].partition_responses[0].error_code, 2,
        "CORRUPT_MESSAGE for a CRC mismatch"
    );
    let big = "x".repeat(2000);
    let r: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        9,
        &produce("t", batch(&[&big], false)),
    );
    assert_eq!(
        r.responses[0].partition_responses[0].error_code, 10,
        "MESSAGE_TOO_LARGE"
    );
    let r: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        9,
        &produce("missing", batch(&["a"], false)),
    );
    assert_eq!(
        r.responses[0].partition_responses[0].error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    let r: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        9,
        &produce("t", batch(&["a", "b"], false)),
    );
    let ok = &r.responses[0].partition_responses[0];
    assert_eq!(
        (ok.error_code, ok.base_offset),
        (0, 0),
        "nothing already written was damaged"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let g = Gregor::start();
    let mut s = connect(&g);
    let mut all = Vec::new();
    for i in 0..200 {
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Metadata as i16)
            .with_request_api_version(12)
            .with_correlation_id(i)
            .with_client_id(None);
        let mut b = BytesMut::new();
        header.encode(&mut b, 2).expect("header");
        MetadataRequest::default().encode(&mut b, 12).expect("body");
        all.extend_from_slice(&(b.len() as i32).to_be_bytes());
        all.extend_from_slice(&b);
    }
    s.write_all(&all).expect("write all at once");
    for i in 0..200 {
        let r = read_response(&mut s);
        assert_eq!(
            i32::from_be_bytes([r[0], r[1], r[2], r[3]]),
            i,
            "response out of order"
        );
    }
}

#[test]
fn delete_topics_by_id_and_metadata_by_id() {
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
    let g = Gregor::start();
    let mut s = connect(&g);
    let by_name = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("by-id"))))]))
        .with_allow_auto_topic_creation(true);
    let r: MetadataResponse = call(&mut s, ApiKey::Metadata, 12, &by_name);
    let id = r.topics[0].topic_id;
    assert!(!id.is_nil(), "auto-created topic has an id");
    let by_id = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_topic_id(id)
    ]));
    let r: MetadataResponse = call(&mut s, ApiKey::Metadata, 12, &by_id);
    assert_eq!(
        r.topics[0]
            .name
            .as_ref()
            .map(|n| n.0.to_string())
            .as_deref(),
        Some("by-id")
    );
    let del = DeleteTopicsRequest::default()
        .with_topics(vec![DeleteTopicState::default().with_topic_id(id)])
        .with_timeout_ms(5000);
    let r: DeleteTopicsResponse = call(&mut s, ApiKey::DeleteTopics, 6, &del);
    assert_eq!(
        (r.responses[0].error_code, r.responses[0].topic_id),
        (0, id)
    );
    assert_eq!(
        r.responses[0]
            .name
            .as_ref()
            .map(|n| n.0.to_string())
            .as_deref(),
        Some("by-id")
    );
    let r: DeleteTopicsResponse = call(&mut s, ApiKey::DeleteTopics, 6, &del);
    assert_eq!(
        r.responses[0].error_code, 100,
        "UNKNOWN_TOPIC_ID the second time"
    );
    let r: MetadataResponse = call(&mut s, ApiKey::Metadata, 12, &by_id);
    assert_eq!(r.topics[0].error_code, 100);
}

#[test]
fn describe_producers_and_log_dirs_report_what_a_real_producer_wrote() {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::{
        DescribeLogDirsRequest, DescribeLogDirsResponse, DescribeProducersRequest,
        DescribeProducersResponse,
    };
    let g = Gregor::start();
    let p: BaseProducer = g
        .client_config()
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for i in 0..20 {
        p.send(
            BaseRecord::<(), _>::to("described")
                .payload(&format!("{i}"))
                .partition(0),
        )
        .expect("send");
    }
    assert_eq!(
        p.flush(Duration::from_secs(20)).map_err(|e| e.to_string()),
        Ok(())
    );
    let mut s = connect(&g);
    let req = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(StrBytes::from_static_str("described")))
        .with_partition_indexes(vec![0, 9])]);
    let r: DescribeProducersResponse = call(&mut s, ApiKey::DescribeProducers, 0, &req);
    let parts = &r.topics[0].partitions;
    assert_eq!(parts[0].error_code, 0);
    assert_eq!(
        parts[0].active_producers.len(),
        1,
        "one idempotent producer"
    );
    assert_eq!(parts[0].active_producers[0].last_sequence, 19);
    assert!(parts[0].active_producers[0].producer_id.0 >= 0);
    assert_eq!(parts[1].error_code, 3, "unknown partition");

    let req =
        DescribeLogDirsRequest::default()
            .with_topics(Some(vec![DescribableLogDirTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("described")))
                .with_partitions(vec![0])]));
    let r: DescribeLogDirsResponse = call(&mut s, ApiKey::DescribeLogDirs, 4, &req);
    let dir = &r.results[0];
    assert!(dir.total_bytes > 0 && dir.usable_bytes > 0 && dir.usable_bytes <= dir.total_bytes);
    assert_eq!(dir.topics.len(), 1);
    assert!(dir.topics[0].partitions[0].partition_size > 0);
    let all: DescribeLogDirsResponse = call(
        &mut s,
        ApiKey::DescribeLogDirs,
        1,
        &DescribeLogDirsRequest::default().with_topics(None),
    );
    assert!(all.results[0]
        .topics
        .iter()
        .any(|t| t.name.0.as_str() == "described"));
}

/// Peak resident memory of a process, from /proc (Linux).
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib / 1024
}

#[test]
fn compacted_topics_refuse_keyless_records_and_decompression_bombs() {
    // Topics are compacted by default here, so the auto-created one is too.
    let g = Gregor::start_with(&[("GREGOR_LOG_CLEANUP_POLICY", "compact")]);
    let mut s = connect(&g);
    let md: MetadataResponse = call(
        &mut s,
        ApiKey::Metadata,
        9,
        &MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("bomb"))))]))
            .with_allow_auto_topic_creation(true),
    );
    assert_eq!(md.topics[0].error_code, 0);
    let answer = |s: &mut TcpStream, records: Bytes| {
        let r: ProduceResponse = call(s, ApiKey::Produce, 9, &produce("bomb", records));
        r.responses[0].partition_responses[0].clone()
    };

    // 1 GiB of zeros under a key: about 32 KiB once zstd-compressed.
    let zeros = Bytes::from(vec![0u8; 1 << 30]);
    let bomb = encode(
        &[record(0, Some(Bytes::from_static(b"k")), zeros)],
        Compression::Zstd,
    )
    .freeze();
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let p = answer(&mut s, bomb);
    assert_eq!(p.error_code, 10, "MESSAGE_TOO_LARGE: {:?}", p.error_message);
    let peak = peak_rss_mib(g.pid());
    assert!(
        peak < 256,
        "the broker's memory peaked at {peak} MiB for a 1 GiB bomb"
    );

    let p = answer(&mut s, batch(&["no key"], false));
    assert_eq!(p.error_code, 87, "INVALID_RECORD");
    assert_eq!(p.record_errors.len(), 1);
    assert_eq!(p.record_errors[0].batch_index, 0);
    assert!(p.error_message.is_some_and(|m| m.contains("without key")));

    let keyed = encode(
        &[record(
            0,
            Some(Bytes::from_static(b"k")),
            Bytes::from_static(b"v"),
        )],
        Compression::Lz4,
    )
    .freeze();
    assert_eq!(
        answer(&mut s, keyed).error_code,
        0,
        "keyed records are accepted on the same connection"
    );
}
