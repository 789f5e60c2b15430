//! The real `gregor` binary driven by librdkafka through the `rdkafka` crate.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gregor_blackbox::proxy::CuttingProxy;
use gregor_blackbox::{wait_for, Gregor};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, Timestamp, TopicPartitionList};

const T: Duration = Duration::from_secs(30);

fn producer(g: &Gregor, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = g.client_config();
    c.set("linger.ms", "5").set("message.timeout.ms", "30000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("producer")
}

fn consumer(g: &Gregor, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut c: ClientConfig = g.client_config();
    c.set("group.id", "blackbox")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("consumer")
}

fn admin(g: &Gregor) -> AdminClient<DefaultClientContext> {
    g.client_config().create().expect("admin")
}

/// A consumed record: (partition, offset) → (key, value, headers, timestamp).
type Rec = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
    i64,
);

fn consume_from(
    c: &BaseConsumer,
    topic: &str,
    parts: &[(i32, Offset)],
    want: usize,
) -> HashMap<(i32, i64), Rec> {
    let mut tpl = TopicPartitionList::new();
    for (p, o) in parts {
        tpl.add_partition_offset(topic, *p, *o).expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut got = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < want && Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| (x.key.to_string(), x.value.map(|v| v.to_vec())))
                            .collect()
                    })
                    .unwrap_or_default();
                let ts = match m.timestamp() {
                    Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => t,
                    Timestamp::NotAvailable => -1,
                };
                let prev = got.insert(
                    (m.partition(), m.offset()),
                    (
                        m.key().map(|k| k.to_vec()),
                        m.payload().map(|v| v.to_vec()),
                        headers,
                        ts,
                    ),
                );
                assert!(prev.is_none(), "offset {} delivered twice", m.offset());
            }
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    got
}

fn value_for(i: usize) -> Vec<u8> {
    (0..(i * 7) % 300).map(|j| (i * 31 + j) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_keyed_records_with_headers_round_trip_byte_exact() {
    let g = Gregor::start();
    let a = admin(&g);
    let r = a
        .create_topics(
            &[NewTopic::new("roundtrip", 3, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create");
    assert!(r[0].is_ok(), "{r:?}");
    let p = producer(&g, &[("acks", "all")]);
    let n = 10_000usize;
    let mut futures = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("key-{i}");
        let value = value_for(i);
        let idx = (i as u32).to_be_bytes();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "idx",
                value: Some(&idx[..]),
            })
            .insert(Header {
                key: "empty",
                value: Some(&b""[..]),
            })
            .insert(Header {
                key: "null",
                value: None::<&[u8]>,
            });
        let rec = FutureRecord::to("roundtrip")
            .key(&key)
            .payload(&value)
            .headers(headers)
            .partition((i % 3) as i32)
            .timestamp(1_700_000_000_000 + i as i64);
        futures.push(p.send_result(rec).map_err(|(e, _)| e).expect("enqueue"));
    }
    let mut expected = HashMap::new();
    for (i, f) in futures.into_iter().enumerate() {
        let d = f
            .await
            .expect("delivery")
            .map_err(|(e, _)| e)
            .expect("delivered");
        expected.insert((d.partition, d.offset), i);
    }
    assert_eq!(expected.len(), n, "every record got its own offset");
    let c = consumer(&g, &[]);
    let got = consume_from(
        &c,
        "roundtrip",
        &[
            (0, Offset::Beginning),
            (1, Offset::Beginning),
            (2, Offset::Beginning),
        ],
        n,
    );
    assert_eq!(got.len(), n);
    for ((part, off), i) in expected {
        let (k, v, h, ts) = got
            .get(&(part, off))
            .unwrap_or_else(|| panic!("missing {part}/{off}"));
        assert_eq!(k.as_deref(), Some(format!("key-{i}").as_bytes()));
        assert_eq!(v.as_deref(), Some(&value_for(i)[..]), "value of record {i}");
        assert_eq!(*ts, 1_700_000_000_000 + i as i64);
        assert_eq!(
            h,
            &vec![
                ("idx".to_string(), Some((i as u32).to_be_bytes().to_vec())),
                ("empty".to_string(), Some(vec![])),
                ("null".to_string(), None)
            ]
        );
        assert_eq!(part, (i % 3) as i32);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_codec_round_trips() {
    let g = Gregor::start();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        let p = producer(&g, &[("compression.codec", codec), ("linger.ms", "50")]);
        let mut fs = Vec::new();
        for i in 0..500 {
            let v = format!("{codec}-{i}-").repeat(10);
            fs.push(
                p.send_result(FutureRecord::<(), _>::to(&topic).payload(&v))
                    .map_err(|(e, _)| e)
                    .expect("enqueue"),
            );
        }
        for f in fs {
            f.await
                .expect("delivery")
                .map_err(|(e, _)| e)
                .expect("delivered");
        }
        let got = consume_from(&consumer(&g, &[]), &topic, &[(0, Offset::Beginning)], 500);
        for i in 0..500i64 {
            let v = &got
                .get(&(0, i))
                .unwrap_or_else(|| panic!("{codec}: offset {i} missing"))
                .1;
            assert_eq!(
                v.as_deref(),
                Some(format!("{codec}-{i}-").repeat(10).as_bytes()),
                "{codec} offset {i}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_values_null_keys_and_a_one_mib_value() {
    let g = Gregor::start();
    let a = admin(&g);
    a.create_topics(
        &[
            NewTopic::new("edge", 1, TopicReplication::Fixed(1))
                .set("max.message.bytes", "2097152"),
        ],
        &AdminOptions::new(),
    )
    .await
    .expect("create")[0]
        .as_ref()
        .expect("created");
    let p = producer(&g, &[("message.max.bytes", "2097152")]);
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let d0 = p
        .send(FutureRecord::<(), _>::to("edge").payload(&b""[..]), T)
        .await
        .expect("empty value");
    let d1 = p
        .send(FutureRecord::<[u8], [u8]>::to("edge"), T)
        .await
        .expect("null key and value");
    let d2 = p
        .send(FutureRecord::to("edge").key("big").payload(&big), T)
        .await
        .expect("1 MiB value");
    assert_eq!((d0.offset, d1.offset, d2.offset), (0, 1, 2));
    let got = consume_from(
        &consumer(&g, &[("fetch.max.bytes", "5242880")]),
        "edge",
        &[(0, Offset::Beginning)],
        3,
    );
    assert_eq!(got[&(0, 0)].0, None);
    assert_eq!(got[&(0, 0)].1.as_deref(), Some(&b""[..]));
    assert_eq!(
        (got[&(0, 1)].0.clone(), got[&(0, 1)].1.clone()),
        (None, None)
    );
    assert_eq!(got[&(0, 2)].1.as_deref(), Some(&big[..]));
    // Over max.message.bytes of a default topic: MESSAGE_TOO_LARGE from the broker.
    let err = p
        .send(FutureRecord::to("edge-default").key("big").payload(&big), T)
        .await
        .expect_err("too large");
    assert_eq!(
        err.0,
        KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_one_and_all() {
    let g = Gregor::start();
    for acks in ["0", "1", "all"] {
        let p = producer(&g, &[("acks", acks)]);
        let mut fs = Vec::new();
        for i in 0..100 {
            let v = format!("{acks}-{i}");
            fs.push(
                p.send_result(FutureRecord::<(), _>::to("acks").payload(&v))
                    .map_err(|(e, _)| e)
                    .expect("enqueue"),
            );
        }
        for f in fs {
            let d = f
                .await
                .expect("delivery")
                .map_err(|(e, _)| e)
                .expect("delivered");
            if acks != "0" {
                assert!(d.offset >= 0);
            }
        }
        p.flush(T).expect("flush");
    }
    let got = consume_from(&consumer(&g, &[]), "acks", &[(0, Offset::Beginning)], 300);
    assert_eq!(got.len(), 300);
    let values: HashSet<_> = got.values().map(|r| r.1.clone().expect("value")).collect();
    assert!(values.contains(b"0-99".as_slice()) && values.contains(b"all-0".as_slice()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_into_the_middle_of_a_batch_and_offsets_for_times() {
    let g = Gregor::start();
    // One request, one batch of 100 records with timestamps 10 ms apart.
    let p = producer(&g, &[("linger.ms", "200"), ("batch.num.messages", "1000")]);
    let base = 1_600_000_000_000i64;
    let mut fs = Vec::new();
    for i in 0..100i64 {
        let v = format!("v{i}");
        fs.push(
            p.send_result(
                FutureRecord::<(), _>::to("seek")
                    .payload(&v)
                    .timestamp(base + i * 10),
            )
            .map_err(|(e, _)| e)
            .expect("enqueue"),
        );
    }
    for f in fs {
        f.await
            .expect("delivery")
            .map_err(|(e, _)| e)
            .expect("delivered");
    }
    let c = consumer(&g, &[]);
    let got = consume_from(&c, "seek", &[(0, Offset::Offset(37))], 63);
    assert_eq!(got.len(), 63);
    assert!(
        got.keys().all(|(_, o)| *o >= 37),
        "records before the seek offset were delivered"
    );
    assert_eq!(got[&(0, 37)].1.as_deref(), Some(&b"v37"[..]));

    let mut q = TopicPartitionList::new();
    q.add_partition_offset("seek", 0, Offset::Offset(base + 555))
        .expect("tpl");
    let r = c.offsets_for_times(q, T).expect("offsets_for_times");
    assert_eq!(
        r.find_partition("seek", 0).expect("p").offset(),
        Offset::Offset(56)
    );
    let mut q = TopicPartitionList::new();
    q.add_partition_offset("seek", 0, Offset::Offset(base + 1_000_000))
        .expect("tpl");
    let r = c.offsets_for_times(q, T).expect("offsets_for_times");
    assert_eq!(
        r.find_partition("seek", 0).expect("p").offset(),
        Offset::End
    );
    let (lo, hi) = c.fetch_watermarks("seek", 0, T).expect("watermarks");
    assert_eq!((lo, hi), (0, 100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_create_describe_alter_partition_and_delete_topics() {
    let g = Gregor::start();
    let a = admin(&g);
    let opts = AdminOptions::new().operation_timeout(Some(T));
    let r = a
        .create_topics(
            &[
                NewTopic::new("adm", 2, TopicReplication::Fixed(1)).set("retention.ms", "3600000"),
                NewTopic::new("bad name!", 1, TopicReplication::Fixed(1)),
                NewTopic::new("badcfg", 1, TopicReplication::Fixed(1)).set("retention.ms", "soon"),
                NewTopic::new("rf3", 1, TopicReplication::Fixed(3)),
            ],
            &opts,
        )
        .await
        .expect("create");
    assert_eq!(r[0], Ok("adm".to_string()));
    assert_eq!(
        r[1],
        Err(("bad name!".to_string(), RDKafkaErrorCode::InvalidTopic))
    );
    assert_eq!(
        r[2],
        Err(("badcfg".to_string(), RDKafkaErrorCode::InvalidConfig))
    );
    assert_eq!(
        r[3],
        Err((
            "rf3".to_string(),
            RDKafkaErrorCode::InvalidReplicationFactor
        ))
    );
    let again = a
        .create_topics(
            &[NewTopic::new("adm", 2, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .expect("create");
    assert_eq!(
        again[0],
        Err(("adm".to_string(), RDKafkaErrorCode::TopicAlreadyExists))
    );

    let d = a
        .describe_configs(&[ResourceSpecifier::Topic("adm")], &opts)
        .await
        .expect("describe");
    let res = d[0].as_ref().expect("resource");
    assert_eq!(
        res.get("retention.ms")
            .and_then(|e| e.value.clone())
            .as_deref(),
        Some("3600000")
    );
    assert!(!res.get("retention.ms").expect("entry").is_default);
    assert!(res.get("segment.bytes").expect("entry").is_default);

    let alt = a
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic("adm")).set("retention.bytes", "1048576")],
            &opts,
        )
        .await
        .expect("alter");
    assert!(alt[0].is_ok(), "{alt:?}");
    let d = a
        .describe_configs(&[ResourceSpecifier::Topic("adm")], &opts)
        .await
        .expect("describe");
    let res = d[0].as_ref().expect("resource");
    assert_eq!(
        res.get("retention.bytes")
            .and_then(|e| e.value.clone())
            .as_deref(),
        Some("1048576")
    );
    // AlterConfigs replaces the overrides: retention.ms is back to its default.
    assert!(res.get("retention.ms").expect("entry").is_default);

    let broker = a
        .describe_configs(&[ResourceSpecifier::Broker(0)], &opts)
        .await
        .expect("describe broker");
    let broker = broker[0].as_ref().expect("broker resource");
    assert_eq!(
        broker
            .get("num.partitions")
            .and_then(|e| e.value.clone())
            .as_deref(),
        Some("1")
    );

    let cp = a
        .create_partitions(&[NewPartitions::new("adm", 5)], &opts)
        .await
        .expect("partitions");
    assert!(cp[0].is_ok(), "{cp:?}");
    let shrink = a
        .create_partitions(&[NewPartitions::new("adm", 3)], &opts)
        .await
        .expect("partitions");
    assert_eq!(
        shrink[0],
        Err(("adm".to_string(), RDKafkaErrorCode::InvalidPartitions))
    );
    let md = a.inner().fetch_metadata(Some("adm"), T).expect("metadata");
    assert_eq!(md.topics()[0].partitions().len(), 5);

    let del = a
        .delete_topics(&["adm", "nope"], &opts)
        .await
        .expect("delete");
    assert_eq!(del[0], Ok("adm".to_string()));
    assert_eq!(
        del[1],
        Err((
            "nope".to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))
    );
    let md = a.inner().fetch_metadata(None, T).expect("metadata");
    assert!(md.topics().iter().all(|t| t.name() != "adm"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_moves_the_log_start_offset() {
    let g = Gregor::start();
    let p = producer(&g, &[]);
    for i in 0..50 {
        p.send(
            FutureRecord::<(), _>::to("trim").payload(&format!("{i}")),
            T,
        )
        .await
        .expect("send");
    }
    let a = admin(&g);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("trim", 0, Offset::Offset(20))
        .expect("tpl");
    let r = a
        .delete_records(&tpl, &AdminOptions::new())
        .await
        .expect("delete records");
    assert_eq!(
        r.find_partition("trim", 0).expect("p").offset(),
        Offset::Offset(20)
    );
    let c = consumer(&g, &[]);
    let (lo, hi) = c.fetch_watermarks("trim", 0, T).expect("watermarks");
    assert_eq!((lo, hi), (20, 50));
    let got = consume_from(&c, "trim", &[(0, Offset::Beginning)], 30);
    assert_eq!(got.keys().map(|k| k.1).min(), Some(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_retries_through_dropped_connections_without_duplicates() {
    let mut proxy = CuttingProxy::bind(3, 2000);
    let proxy_addr = proxy.addr.clone();
    let g = Gregor::start_with(&[(
        "GREGOR_ADVERTISED_LISTENERS",
        &format!("PLAINTEXT://{proxy_addr}"),
    )]);
    proxy.forward_to(&g.addr);
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &proxy_addr)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("retry.backoff.ms", "50")
        .set("message.timeout.ms", "60000");
    let p: FutureProducer = c.create().expect("producer");
    let n = 3000;
    let mut fs = Vec::new();
    for i in 0..n {
        let v = format!("idem-{i:05}-").repeat(4);
        fs.push(
            p.send_result(FutureRecord::<(), _>::to("idem").payload(&v))
                .map_err(|(e, _)| e)
                .expect("enqueue"),
        );
    }
    for f in fs {
        f.await
            .expect("delivery")
            .map_err(|(e, _)| e)
            .expect("delivered despite dropped connections");
    }
    assert!(
        proxy.cuts.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the proxy never cut a produce; the test proved nothing"
    );
    let got = consume_from(&consumer(&g, &[]), "idem", &[(0, Offset::Beginning)], n);
    std::thread::sleep(Duration::from_millis(300));
    let (_, hi) = consumer(&g, &[])
        .fetch_watermarks("idem", 0, T)
        .expect("watermarks");
    assert_eq!(hi, n as i64, "the log holds duplicates");
    let mut values: Vec<_> = got
        .into_iter()
        .map(|((_, o), r)| (o, r.1.expect("value")))
        .collect();
    values.sort();
    for (i, (o, v)) in values.iter().enumerate() {
        assert_eq!(*o, i as i64);
        assert_eq!(
            v,
            &format!("idem-{i:05}-").repeat(4).into_bytes(),
            "order kept"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_is_woken_by_the_append() {
    let g = Gregor::start();
    let p = producer(&g, &[("linger.ms", "0")]);
    p.send(FutureRecord::<(), _>::to("lp").payload("first"), T)
        .await
        .expect("send");
    let c = consumer(
        &g,
        &[("fetch.wait.max.ms", "5000"), ("fetch.min.bytes", "1")],
    );
    assert_eq!(
        consume_from(&c, "lp", &[(0, Offset::Beginning)], 1).len(),
        1
    );
    // The consumer is now parked in a 5 s long poll.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent = Instant::now();
    p.send(FutureRecord::<(), _>::to("lp").payload("second"), T)
        .await
        .expect("send");
    let waited = loop {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
            assert_eq!(m.payload(), Some(&b"second"[..]));
            break sent.elapsed();
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "second record never arrived"
        );
    };
    assert!(
        waited < Duration::from_millis(2500),
        "fetch was not woken by the append: {waited:?}"
    );
}

#[test]
fn sigterm_shuts_down_cleanly_and_data_survives() {
    let mut g = Gregor::start();
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let p = producer(&g, &[]);
    rt.block_on(async {
        for i in 0..100 {
            p.send(
                FutureRecord::<(), _>::to("term").payload(&format!("{i}")),
                T,
            )
            .await
            .expect("send");
        }
    });
    drop(p);
    assert_eq!(g.terminate(), Some(0), "log:\n{}", g.log());
    assert!(g.log().contains("stopped cleanly"));
    g.restart();
    let got = consume_from(&consumer(&g, &[]), "term", &[(0, Offset::Beginning)], 100);
    assert_eq!(got.len(), 100);
    assert!(g.log().contains("clean=true"));
}

/// (partition, offset, value) of an acknowledged record.
type Acked = (i32, i64, Vec<u8>);

#[test]
fn sigkill_during_acks_all_produce_loses_no_acknowledged_record() {
    let mut g = Gregor::start_with(&[("GREGOR_LOG_SEGMENT_BYTES", "262144")]);
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::new(Mutex::new(Vec::new()));
    let p = producer(
        &g,
        &[
            ("acks", "all"),
            ("message.timeout.ms", "3000"),
            ("linger.ms", "2"),
        ],
    );
    rt.block_on(async {
        let admin = admin(&g);
        admin
            .create_topics(
                &[NewTopic::new("crash", 2, TopicReplication::Fixed(1))],
                &AdminOptions::new(),
            )
            .await
            .expect("create");
    });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer_task = {
        let acked = acked.clone();
        let stop = stop.clone();
        rt.spawn(async move {
            let mut i = 0u64;
            let mut pending = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let v: Vec<u8> = format!("crash-{i}-")
                    .repeat(1 + (i % 13) as usize)
                    .into_bytes();
                if let Ok(f) = p.send_result(
                    FutureRecord::<(), _>::to("crash")
                        .payload(&v)
                        .partition((i % 2) as i32),
                ) {
                    pending.push((f, v));
                }
                i += 1;
                if pending.len() >= 200 {
                    for (f, v) in pending.drain(..) {
                        if let Ok(Ok(d)) = f.await {
                            acked.lock().expect("lock").push((d.partition, d.offset, v));
                        }
                    }
                }
            }
            for (f, v) in pending.drain(..) {
                if let Ok(Ok(d)) = f.await {
                    acked.lock().expect("lock").push((d.partition, d.offset, v));
                }
            }
        })
    };
    assert!(
        wait_for(Duration::from_secs(30), || acked
            .lock()
            .expect("lock")
            .len()
            > 20_000),
        "producer made no progress"
    );
    g.kill9();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    rt.block_on(producer_task).expect("producer task");
    let acked = acked.lock().expect("lock").clone();
    g.restart();
    let c = consumer(&g, &[]);
    let max = |p: i32| {
        acked
            .iter()
            .filter(|a| a.0 == p)
            .map(|a| a.1)
            .max()
            .unwrap_or(-1)
    };
    let (_, hi0) = c.fetch_watermarks("crash", 0, T).expect("wm");
    let (_, hi1) = c.fetch_watermarks("crash", 1, T).expect("wm");
    assert!(
        hi0 > max(0) && hi1 > max(1),
        "acknowledged offsets beyond the recovered log end"
    );
    let got = consume_from(
        &c,
        "crash",
        &[(0, Offset::Beginning), (1, Offset::Beginning)],
        (hi0 + hi1) as usize,
    );
    for (p, o, v) in &acked {
        let rec = got
            .get(&(*p, *o))
            .unwrap_or_else(|| panic!("acknowledged record {p}/{o} lost"));
        assert_eq!(rec.1.as_deref(), Some(&v[..]), "record {p}/{o} differs");
    }
    assert!(g.log().contains("not clean"), "recovery did not run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_group_subscribes_commits_and_resumes() {
    group_round_trip("classic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kip848_consumer_group_subscribes_commits_and_resumes() {
    group_round_trip("consumer").await;
}

/// Subscribe, consume 25 of 40, commit, restart the consumer: it resumes at 25.
async fn group_round_trip(protocol: &str) {
    use rdkafka::consumer::CommitMode;
    let g = Gregor::start_with(&[
        ("GREGOR_GROUP_INITIAL_REBALANCE_DELAY_MS", "100"),
        ("GREGOR_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS", "300"),
    ]);
    let topic = format!("grp-{protocol}");
    let p = producer(&g, &[]);
    for i in 0..40 {
        p.send(
            FutureRecord::<(), _>::to(&topic).payload(&format!("{i}")),
            T,
        )
        .await
        .expect("send");
    }
    let group_consumer = || -> BaseConsumer {
        let mut c = g.client_config();
        c.set("group.id", format!("rust-{protocol}"))
            .set("group.protocol", protocol)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest");
        let c: BaseConsumer = c.create().expect("consumer");
        c.subscribe(&[&topic]).expect("subscribe");
        c
    };
    let poll_values = |c: &BaseConsumer, n: usize| -> Vec<i64> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while out.len() < n && Instant::now() < deadline {
            if let Some(m) = c.poll(Duration::from_millis(200)) {
                out.push(m.expect("message").offset());
            }
        }
        out
    };
    let c = group_consumer();
    assert_eq!(poll_values(&c, 25), (0..25).collect::<Vec<_>>());
    c.commit_consumer_state(CommitMode::Sync).expect("commit");
    drop(c);
    let c = group_consumer();
    assert_eq!(
        poll_values(&c, 15),
        (25..40).collect::<Vec<_>>(),
        "resumes at the committed offset"
    );
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&topic, 0);
    let committed = c.committed_offsets(tpl, T).expect("committed");
    assert_eq!(
        committed.find_partition(&topic, 0).expect("p").offset(),
        Offset::Offset(25)
    );
}
