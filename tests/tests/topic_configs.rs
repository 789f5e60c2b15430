//! Topic configs that change what clients observe: LogAppendTime, retention
//! driven by the broker's background task, and fsync-before-ack.

use std::time::Duration;

use gregor_blackbox::{wait_for, Gregor};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, Timestamp, TopicPartitionList};

const T: Duration = Duration::from_secs(30);

async fn create(g: &Gregor, topic: NewTopic<'_>) {
    let a: AdminClient<DefaultClientContext> = g.client_config().create().expect("admin");
    let r = a
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .expect("create");
    assert!(r[0].is_ok(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_append_time_topics_stamp_the_broker_clock() {
    let g = Gregor::start();
    create(
        &g,
        NewTopic::new("lat", 1, TopicReplication::Fixed(1))
            .set("message.timestamp.type", "LogAppendTime"),
    )
    .await;
    let p: FutureProducer = g.client_config().create().expect("producer");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    p.send(
        FutureRecord::<(), _>::to("lat").payload("x").timestamp(42),
        T,
    )
    .await
    .expect("send");
    let c: BaseConsumer = g
        .client_config()
        .set("group.id", "lat")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("lat", 0, Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let m = loop {
        if let Some(m) = c.poll(T) {
            break m.expect("message");
        }
    };
    match m.timestamp() {
        Timestamp::LogAppendTime(t) => assert!(
            t >= before && t < before + 60_000,
            "append time {t} not the broker's clock"
        ),
        other => panic!("expected LogAppendTime, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_bytes_deletes_old_segments_in_the_background() {
    let g = Gregor::start_with(&[("GREGOR_LOG_RETENTION_CHECK_INTERVAL_MS", "200")]);
    create(
        &g,
        NewTopic::new("ret", 1, TopicReplication::Fixed(1))
            .set("segment.bytes", "4096")
            .set("retention.bytes", "8192"),
    )
    .await;
    let p: FutureProducer = g.client_config().create().expect("producer");
    for i in 0..200 {
        p.send(
            FutureRecord::<(), _>::to("ret").payload(&format!("{i:0>200}")),
            T,
        )
        .await
        .expect("send");
    }
    let c: BaseConsumer = g.client_config().create().expect("consumer");
    let moved = wait_for(Duration::from_secs(20), || {
        c.fetch_watermarks("ret", 0, T)
            .map(|(lo, _)| lo > 0)
            .unwrap_or(false)
    });
    assert!(moved, "retention never advanced the log start offset");
    let (lo, hi) = c.fetch_watermarks("ret", 0, T).expect("watermarks");
    assert_eq!(hi, 200);
    assert!(hi - lo < 100, "retention kept too much: {lo}..{hi}");
    let segments: Vec<_> = std::fs::read_dir(g.data_dir.join("ret-0"))
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    assert!(
        segments.len() <= 5,
        "old segment files were not deleted: {segments:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_per_request_still_acknowledges_every_record() {
    let g = Gregor::start_with(&[("GREGOR_LOG_FLUSH_INTERVAL_MESSAGES", "1")]);
    let p: FutureProducer = g
        .client_config()
        .set("acks", "all")
        .create()
        .expect("producer");
    let mut fs = Vec::new();
    for i in 0..500 {
        fs.push(
            p.send_result(FutureRecord::<(), _>::to("fsync").payload(&format!("{i}")))
                .map_err(|(e, _)| e)
                .expect("enqueue"),
        );
    }
    let mut offsets = Vec::new();
    for f in fs {
        offsets.push(
            f.await
                .expect("delivery")
                .map_err(|(e, _)| e)
                .expect("acknowledged")
                .offset,
        );
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (0..500).collect::<Vec<i64>>());
}
