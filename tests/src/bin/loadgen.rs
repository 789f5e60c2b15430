//! `gregor-loadgen`: a librdkafka-based load generator. Prints one JSON
//! object per run on stdout.
//!
//! ```text
//! gregor-loadgen produce  BROKERS TOPIC PARTITIONS RECORDS SIZE ACKS
//! gregor-loadgen consume  BROKERS TOPIC PARTITIONS RECORDS
//! gregor-loadgen e2e      BROKERS TOPIC RATE SECONDS
//! gregor-loadgen txn      BROKERS TOPIC PARTITIONS TRANSACTIONS RECORDS_PER_TXN SIZE
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// Records per-message send→ack latency in microseconds.
struct Latencies {
    epoch: Instant,
    samples: Mutex<Vec<u32>>,
    errors: Mutex<u64>,
}

/// The producer context: shares the latency record with the caller.
#[derive(Clone)]
struct Ctx(Arc<Latencies>);

impl ClientContext for Ctx {}
impl ProducerContext for Ctx {
    /// Microseconds since `epoch` when the record was sent, or 0 for an
    /// unsampled record (no allocation per message).
    type DeliveryOpaque = usize;
    fn delivery(&self, r: &DeliveryResult<'_>, sent_us: usize) {
        match r {
            Ok(_) if sent_us > 0 => {
                let now = self.0.epoch.elapsed().as_micros() as usize;
                self.0
                    .samples
                    .lock()
                    .expect("lock")
                    .push((now.saturating_sub(sent_us)).min(u32::MAX as usize) as u32);
            }
            Ok(_) => {}
            Err(_) => *self.0.errors.lock().expect("lock") += 1,
        }
    }
}

/// Every SAMPLE-th record's send→ack latency is recorded.
const SAMPLE: usize = 16;

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn cpu_seconds_self() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}

fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(admin.create_topics(
        &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new(),
    ))?;
    match &r[0] {
        Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => Ok(()),
        Err((_, e)) => bail!("create topic {topic}: {e}"),
    }
}

fn produce(
    brokers: &str,
    topic: &str,
    partitions: i32,
    records: usize,
    size: usize,
    acks: &str,
) -> Result<()> {
    create_topic(brokers, topic, partitions)?;
    let ctx = Arc::new(Latencies {
        epoch: Instant::now(),
        samples: Mutex::new(Vec::with_capacity(records / SAMPLE + 1)),
        errors: Mutex::new(0),
    });
    let producer: ThreadedProducer<Ctx> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", acks)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "2097151")
        .set("batch.num.messages", "100000")
        .set("batch.size", "1000000")
        .create_with_context(Ctx(ctx.clone()))?;
    let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let cpu0 = cpu_seconds_self();
    let start = Instant::now();
    for i in 0..records {
        let sent_us = if i % SAMPLE == 0 {
            ctx.epoch.elapsed().as_micros() as usize + 1
        } else {
            0
        };
        let mut rec = BaseRecord::<(), [u8], usize>::with_opaque_to(topic, sent_us)
            .payload(&payload[..])
            .partition((i % partitions as usize) as i32);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err((e, _)) => bail!("send: {e}"),
            }
        }
    }
    producer.flush(Duration::from_secs(120)).context("flush")?;
    let secs = start.elapsed().as_secs_f64();
    let mut lat = ctx.samples.lock().expect("lock").clone();
    lat.sort_unstable();
    let errors = *ctx.errors.lock().expect("lock");
    println!(
        "{{\"mode\":\"produce\",\"topic\":\"{topic}\",\"partitions\":{partitions},\"records\":{records},\"size\":{size},\"acks\":\"{acks}\",\"seconds\":{secs:.3},\"records_per_s\":{:.0},\"mb_per_s\":{:.1},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"errors\":{errors},\"client_cpu_s\":{:.2}}}",
        records as f64 / secs,
        (records * size) as f64 / secs / 1e6,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        cpu_seconds_self() - cpu0
    );
    if errors > 0 {
        bail!("{errors} records failed");
    }
    Ok(())
}

/// A consumer that keeps fetching while the application drains its queue:
/// with librdkafka's defaults (`queued.min.messages` 100000,
/// `fetch.queue.backoff.ms` 1000) a fast reader empties the queue in a
/// fraction of a second and then waits up to a second for the next fetch,
/// which measures that timer rather than the broker.
fn consumer(brokers: &str) -> Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "loadgen")
        .set("enable.auto.commit", "false")
        .set("fetch.queue.backoff.ms", "5")
        .create()?)
}

fn consume(brokers: &str, topic: &str, partitions: i32, records: usize) -> Result<()> {
    let c = consumer(brokers)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    c.assign(&tpl)?;
    let cpu0 = cpu_seconds_self();
    let mut start = Instant::now();
    let (mut n, mut bytes) = (0usize, 0usize);
    while n < records {
        match c.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => {
                if n == 0 {
                    // Throughput from the first record: connection set-up and
                    // the offset lookup are not part of it.
                    start = Instant::now();
                }
                n += 1;
                bytes += m.payload_len();
            }
            Some(Err(e)) => bail!("consume: {e}"),
            None => bail!("consume stalled after {n} records"),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"mode\":\"consume\",\"topic\":\"{topic}\",\"records\":{n},\"seconds\":{secs:.3},\"records_per_s\":{:.0},\"mb_per_s\":{:.1},\"client_cpu_s\":{:.2}}}",
        n as f64 / secs,
        bytes as f64 / secs / 1e6,
        cpu_seconds_self() - cpu0
    );
    Ok(())
}

/// Produce at a fixed rate while a consumer waits; latency = arrival − send.
fn e2e(brokers: &str, topic: &str, rate: u64, seconds: u64) -> Result<()> {
    create_topic(brokers, topic, 1)?;
    let c = consumer(brokers)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::End)?;
    c.assign(&tpl)?;
    // librdkafka defaults: fetch.wait.max.ms=500, fetch.min.bytes=1, so only a
    // long poll woken by the append gives low latency.
    let ctx = Arc::new(Latencies {
        epoch: Instant::now(),
        samples: Mutex::new(Vec::new()),
        errors: Mutex::new(0),
    });
    let producer: ThreadedProducer<Ctx> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "0")
        .set("acks", "1")
        .create_with_context(Ctx(ctx))?;
    std::thread::sleep(Duration::from_secs(1));
    let epoch = Instant::now();
    let total = rate * seconds;
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let topic_owned = topic.to_string();
    let sender = std::thread::spawn(move || {
        for i in 0..total {
            let due = epoch + interval * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let sent_us = epoch.elapsed().as_micros() as u64;
            let _ = producer.send(
                BaseRecord::<(), [u8], usize>::with_opaque_to(topic_owned.as_str(), 0)
                    .payload(&sent_us.to_be_bytes()[..]),
            );
        }
        producer.flush(Duration::from_secs(30))
    });
    let mut lat = Vec::with_capacity(total as usize);
    while (lat.len() as u64) < total {
        match c.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => {
                let now_us = epoch.elapsed().as_micros() as u64;
                let p = m.payload().unwrap_or(&[]);
                if p.len() == 8 {
                    let sent = u64::from_be_bytes(p.try_into().expect("8 bytes"));
                    lat.push(now_us.saturating_sub(sent).min(u32::MAX as u64) as u32);
                }
            }
            Some(Err(e)) => bail!("consume: {e}"),
            None => bail!("e2e stalled after {} records", lat.len()),
        }
    }
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("sender panicked"))??;
    lat.sort_unstable();
    println!(
        "{{\"mode\":\"e2e\",\"rate\":{rate},\"records\":{},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2}}}",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
    Ok(())
}

/// Transactional produce: `txns` transactions of `per_txn` records each,
/// round-robin over the partitions, each committed before the next begins.
/// Reports records/s, transactions/s and the latency of commit_transaction
/// once the transaction's records are acknowledged (EndTxn: the broker
/// persisting the transaction state and writing its markers).
fn transactions(
    brokers: &str,
    topic: &str,
    partitions: i32,
    txns: usize,
    per_txn: usize,
    size: usize,
) -> Result<()> {
    create_topic(brokers, topic, partitions)?;
    let p: rdkafka::producer::BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("transactional.id", format!("loadgen-{topic}"))
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .create()?;
    let t = Duration::from_secs(30);
    p.init_transactions(t)?;
    let payload = vec![b'x'; size];
    let cpu0 = cpu_seconds_self();
    let start = Instant::now();
    let mut commits = Vec::with_capacity(txns);
    for _ in 0..txns {
        p.begin_transaction()?;
        for i in 0..per_txn {
            let record = BaseRecord::<(), _>::to(topic)
                .payload(&payload)
                .partition((i % partitions as usize) as i32);
            if let Err((e, _)) = p.send(record) {
                bail!("send: {e}");
            }
        }
        // rust-rdkafka's commit_transaction first flushes with poll(100 ms)
        // steps, which would show up as ~100 ms commits; drain it here in
        // 1 ms steps so the figure is the commit itself (EndTxn and markers).
        while p.in_flight_count() > 0 {
            p.poll(Duration::from_millis(1));
        }
        let c = Instant::now();
        p.commit_transaction(t)?;
        commits.push(c.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
    let secs = start.elapsed().as_secs_f64();
    commits.sort_unstable();
    let n = txns * per_txn;
    println!(
        "{{\"mode\":\"txn\",\"topic\":\"{topic}\",\"transactions\":{txns},\"records\":{n},\"seconds\":{secs:.3},\"records_per_s\":{:.0},\"mb_per_s\":{:.1},\"commits_per_s\":{:.0},\"commit_p50_ms\":{:.2},\"commit_p99_ms\":{:.2},\"client_cpu_s\":{:.2}}}",
        n as f64 / secs,
        (n * size) as f64 / secs / 1e6,
        txns as f64 / secs,
        percentile(&commits, 0.5),
        percentile(&commits, 0.99),
        cpu_seconds_self() - cpu0
    );
    Ok(())
}

fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let arg = |i: usize| {
        a.get(i)
            .cloned()
            .with_context(|| format!("missing argument {i}; see the usage in the source"))
    };
    match a.get(1).map(String::as_str) {
        Some("produce") => produce(
            &arg(2)?,
            &arg(3)?,
            arg(4)?.parse()?,
            arg(5)?.parse()?,
            arg(6)?.parse()?,
            &arg(7)?,
        ),
        Some("consume") => consume(&arg(2)?, &arg(3)?, arg(4)?.parse()?, arg(5)?.parse()?),
        Some("e2e") => e2e(&arg(2)?, &arg(3)?, arg(4)?.parse()?, arg(5)?.parse()?),
        Some("txn") => transactions(
            &arg(2)?,
            &arg(3)?,
            arg(4)?.parse()?,
            arg(5)?.parse()?,
            arg(6)?.parse()?,
            arg(7)?.parse()?,
        ),
        _ => bail!("usage: gregor-loadgen produce|consume|e2e|txn …"),
    }
}
