//! Transactions with librdkafka: commit and abort as read_committed and
//! read_uncommitted consumers see them, fencing of a second producer with
//! the same transactional id, consume-transform-produce with offsets sent
//! to the transaction, and an open transaction across a broker kill -9.

use std::time::Duration;

use gregor_blackbox::{wait_for, Gregor};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

const T: Duration = Duration::from_secs(30);

type TxProducer = ThreadedProducer<DefaultProducerContext>;

async fn create(g: &Gregor, name: &str, partitions: i32) {
    let a: AdminClient<DefaultClientContext> = g.client_config().create().expect("admin");
    let r = a
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create");
    assert!(r[0].is_ok(), "{r:?}");
}

fn producer(g: &Gregor, id: &str) -> TxProducer {
    let p: TxProducer = g
        .client_config()
        .set("transactional.id", id)
        .set("transaction.timeout.ms", "5000")
        .create()
        .expect("producer");
    p.init_transactions(T).expect("init_transactions");
    p
}

fn send(p: &TxProducer, topic: &str, values: &[&str]) {
    for (i, v) in values.iter().enumerate() {
        let key = format!("k{i}");
        p.send(BaseRecord::to(topic).key(&key).payload(*v))
            .map_err(|(e, _)| e)
            .expect("send");
    }
    p.flush(T).expect("flush");
}

/// Every value in `topic` (all partitions) with the given isolation level, sorted.
fn read_all(g: &Gregor, topic: &str, partitions: i32, isolation: &str) -> Vec<String> {
    let c: BaseConsumer = g
        .client_config()
        .set("group.id", format!("reader-{isolation}"))
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut seen = Vec::new();
    let mut idle = 0;
    while idle < 3 {
        match c.poll(Duration::from_millis(700)) {
            Some(Ok(m)) => {
                idle = 0;
                seen.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => idle += 1,
        }
    }
    seen.sort();
    seen
}

fn set(values: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_transactions_are_visible_and_aborted_ones_are_not() {
    let g = Gregor::start();
    create(&g, "tx", 2).await;
    let p = producer(&g, "writer");
    p.begin_transaction().expect("begin");
    send(&p, "tx", &["c1", "c2", "c3"]);
    p.commit_transaction(T).expect("commit");
    p.begin_transaction().expect("begin");
    send(&p, "tx", &["a1", "a2"]);
    p.abort_transaction(T).expect("abort");
    p.begin_transaction().expect("begin");
    send(&p, "tx", &["c4"]);
    p.commit_transaction(T).expect("commit");

    assert_eq!(
        read_all(&g, "tx", 2, "read_committed"),
        set(&["c1", "c2", "c3", "c4"])
    );
    assert_eq!(
        read_all(&g, "tx", 2, "read_uncommitted"),
        set(&["c1", "c2", "c3", "a1", "a2", "c4"])
    );

    // An open transaction is invisible to read_committed until it commits.
    p.begin_transaction().expect("begin");
    send(&p, "tx", &["late"]);
    assert!(!read_all(&g, "tx", 2, "read_committed").contains(&"late".to_string()));
    assert!(read_all(&g, "tx", 2, "read_uncommitted").contains(&"late".to_string()));

    // A second instance with the same id fences the first and aborts its transaction.
    let zombie = p;
    let p2 = producer(&g, "writer");
    assert!(
        zombie.commit_transaction(T).is_err(),
        "the fenced producer could still commit"
    );
    p2.begin_transaction().expect("begin");
    send(&p2, "tx", &["c5"]);
    p2.commit_transaction(T).expect("commit");
    assert_eq!(
        read_all(&g, "tx", 2, "read_committed"),
        set(&["c1", "c2", "c3", "c4", "c5"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_sent_to_a_transaction_commit_with_it() {
    let g = Gregor::start();
    create(&g, "in", 1).await;
    create(&g, "out", 1).await;
    let input = producer(&g, "loader");
    input.begin_transaction().expect("begin");
    send(&input, "in", &["x0", "x1", "x2", "x3"]);
    input.commit_transaction(T).expect("commit");

    let c: BaseConsumer = g
        .client_config()
        .set("group.id", "etl")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("in", 0, Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let p = producer(&g, "etl-writer");
    let committed_offset = |c: &BaseConsumer| {
        let mut want = TopicPartitionList::new();
        want.add_partition("in", 0);
        let got = c.committed_offsets(want, T).expect("committed");
        got.find_partition("in", 0).expect("in-0").offset()
    };

    // Abort first: output and offsets both roll back.
    for (commit, expect) in [(false, Offset::Invalid), (true, Offset::Offset(2))] {
        p.begin_transaction().expect("begin");
        let mut last = -1;
        let mut n = 0;
        while n < 2 {
            if let Some(m) = c.poll(T) {
                let m = m.expect("message");
                last = m.offset();
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_uppercase();
                send(&p, "out", &[v.as_str()]);
                n += 1;
            }
        }
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset("in", 0, Offset::Offset(last + 1))
            .expect("offsets");
        let meta = c.group_metadata().expect("group metadata");
        p.send_offsets_to_transaction(&offsets, &meta, T)
            .expect("send offsets");
        if commit {
            p.commit_transaction(T).expect("commit");
        } else {
            p.abort_transaction(T).expect("abort");
            c.seek("in", 0, Offset::Offset(0), T).expect("rewind");
        }
        assert_eq!(committed_offset(&c), expect, "commit={commit}");
    }
    assert_eq!(read_all(&g, "out", 1, "read_committed"), set(&["X0", "X1"]));
    assert_eq!(
        read_all(&g, "out", 1, "read_uncommitted"),
        set(&["X0", "X0", "X1", "X1"]),
        "the aborted attempt is in the log, skipped by read_committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_survives_kill9_and_times_out_into_an_abort() {
    let mut g = Gregor::start();
    create(&g, "crash", 1).await;
    let p = producer(&g, "crasher");
    p.begin_transaction().expect("begin");
    send(&p, "crash", &["before"]);
    p.commit_transaction(T).expect("commit");
    p.begin_transaction().expect("begin");
    send(&p, "crash", &["in-flight"]);
    drop(p);
    g.kill9();
    g.restart();
    assert_eq!(read_all(&g, "crash", 1, "read_committed"), set(&["before"]));
    // transaction.timeout.ms = 5000: the broker aborts it.
    let aborted = wait_for(Duration::from_secs(20), || {
        g.log().contains("transaction timed out")
    });
    assert!(
        aborted,
        "the open transaction was never aborted:\n{}",
        g.log()
    );
    assert_eq!(read_all(&g, "crash", 1, "read_committed"), set(&["before"]));
    let after = producer(&g, "crasher");
    after.begin_transaction().expect("begin");
    send(&after, "crash", &["after"]);
    after.commit_transaction(T).expect("commit");
    assert_eq!(
        read_all(&g, "crash", 1, "read_committed"),
        set(&["before", "after"])
    );
}

/// A transactional batch the coordinator never heard of (a "hanging"
/// transaction, as a buggy or pre-KIP-890 producer can leave) holds the last
/// stable offset until an administrator aborts it with WriteTxnMarkers, the
/// request `kafka-transactions.sh abort` sends.
#[test]
fn a_hanging_transaction_is_ended_by_write_txn_markers() {
    use bytes::{Bytes, BytesMut};
    use gregor_blackbox::raw::{call, connect};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::write_txn_markers_request::{
        WritableTxnMarker, WritableTxnMarkerTopic,
    };
    use kafka_protocol::messages::{
        ApiKey, ListOffsetsRequest, ListOffsetsResponse, ProduceRequest, ProduceResponse,
        ProducerId, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
    };
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    let g = Gregor::start();
    let topic = || TopicName(StrBytes::from_static_str("hang"));
    let mut s = connect(&g);
    let produce = |s: &mut std::net::TcpStream, transactional: bool, value: &'static [u8]| {
        let record = Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: if transactional { 4242 } else { -1 },
            producer_epoch: if transactional { 3 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: if transactional { 0 } else { -1 },
            timestamp: 1,
            key: None,
            value: Some(Bytes::from_static(value)),
            headers: Default::default(),
        };
        let mut b = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut b,
            [&record],
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encode");
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(b.freeze()))])]);
        let r: ProduceResponse = call(s, ApiKey::Produce, 9, &req);
        r.responses[0].partition_responses[0].error_code
    };
    let stable_end = |s: &mut std::net::TcpStream| {
        let req = ListOffsetsRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_isolation_level(1)
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic())
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1)])]);
        let r: ListOffsetsResponse = call(s, ApiKey::ListOffsets, 5, &req);
        r.topics[0].partitions[0].offset
    };

    // Metadata auto-creates the topic; then a plain record (offset 0), the stray one (1).
    let md: MetadataResponse = call(
        &mut s,
        ApiKey::Metadata,
        9,
        &MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic()))
            ]))
            .with_allow_auto_topic_creation(true),
    );
    assert_eq!(md.topics[0].error_code, 0);
    assert_eq!(produce(&mut s, false, b"plain"), 0);
    assert_eq!(produce(&mut s, true, b"stray"), 0);
    assert_eq!(produce(&mut s, false, b"after"), 0);
    assert_eq!(stable_end(&mut s), 1, "the stray transaction holds the LSO");

    let abort = |s: &mut std::net::TcpStream, epoch: i16| {
        let req =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(4242))
                .with_producer_epoch(epoch)
                .with_transaction_result(false)
                .with_coordinator_epoch(-1)
                .with_topics(vec![WritableTxnMarkerTopic::default()
                    .with_name(topic())
                    .with_partition_indexes(vec![0])])]);
        let r: WriteTxnMarkersResponse = call(s, ApiKey::WriteTxnMarkers, 1, &req);
        r.markers[0].topics[0].partitions[0].error_code
    };
    assert_eq!(
        abort(&mut s, 2),
        47,
        "an older epoch is refused (INVALID_PRODUCER_EPOCH)"
    );
    assert_eq!(abort(&mut s, 3), 0);
    assert_eq!(stable_end(&mut s), 4, "stable up to the log end again");
    assert_eq!(
        read_all(&g, "hang", 1, "read_committed"),
        set(&["after", "plain"]),
        "the aborted record is skipped"
    );
}
