//! Prometheus metrics, all prefixed `gregor_`, units in the names, labels
//! bounded (API names, error codes, topics and partitions that exist).
//!
//! Counters and histograms are updated on the request path; per-partition,
//! per-group and lag gauges are computed from the broker's state when
//! `/metrics` is scraped, so they cost nothing between scrapes.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::state::Broker;

/// Every metric the broker exports.
pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub request_errors: IntCounterVec,
    pub request_seconds: HistogramVec,
    pub bytes_in: IntCounterVec,
    pub records_in: IntCounterVec,
    pub bytes_out: IntCounterVec,
    pub connections: IntGauge,
    pub waiting: IntGaugeVec,
    pub flush_seconds: Histogram,
    partition_start: IntGaugeVec,
    partition_end: IntGaugeVec,
    partition_size: IntGaugeVec,
    partition_segments: IntGaugeVec,
    groups: IntGaugeVec,
    group_members: IntGaugeVec,
    group_lag: IntGaugeVec,
    transactions: IntGaugeVec,
    /// Transactions ended, by result (`commit`, `abort`) and cause (`client`, `timeout`, `fenced`).
    pub transaction_ends: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "gregor_request_duration_seconds",
                "Time from reading a request to writing its response, by API.",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["api"],
        )
        .expect("valid metric");
        r.register(Box::new(request_seconds.clone()))
            .expect("unique metric");
        let flush_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "gregor_flush_duration_seconds",
                "fsync time of one partition log.",
            )
            .buckets(vec![
                0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
            ]),
        )
        .expect("valid metric");
        r.register(Box::new(flush_seconds.clone()))
            .expect("unique metric");
        let connections = IntGauge::new("gregor_connections_active", "Open client connections.")
            .expect("valid metric");
        r.register(Box::new(connections.clone()))
            .expect("unique metric");
        #[cfg(target_os = "linux")]
        {
            let _ = r.register(Box::new(
                prometheus::process_collector::ProcessCollector::new(
                    std::process::id() as i32,
                    "gregor",
                ),
            ));
        }
        Metrics {
            requests: counter(&r, "gregor_requests_total", "Requests handled, by API and version.", &["api", "version"]),
            request_errors: counter(
                &r,
                "gregor_request_errors_total",
                "Errors returned or connections closed, by API and Kafka error code (\"malformed\" for undecodable requests).",
                &["api", "error_code"],
            ),
            request_seconds,
            bytes_in: counter(&r, "gregor_topic_bytes_in_total", "Record-batch bytes appended by producers, per topic.", &["topic"]),
            records_in: counter(&r, "gregor_topic_records_in_total", "Records appended by producers, per topic.", &["topic"]),
            bytes_out: counter(&r, "gregor_topic_bytes_out_total", "Record-batch bytes returned by fetches, per topic.", &["topic"]),
            connections,
            waiting: gauge(&r, "gregor_requests_waiting", "Requests waiting to complete: fetch long polls and produce acknowledgements.", &["api"]),
            flush_seconds,
            partition_start: gauge(&r, "gregor_partition_log_start_offset", "First offset of each partition.", &["topic", "partition"]),
            partition_end: gauge(&r, "gregor_partition_log_end_offset", "Log end offset (high watermark) of each partition.", &["topic", "partition"]),
            partition_size: gauge(&r, "gregor_partition_size_bytes", "Bytes on disk of each partition's segments.", &["topic", "partition"]),
            partition_segments: gauge(&r, "gregor_partition_segments", "Segments of each partition.", &["topic", "partition"]),
            groups: gauge(&r, "gregor_consumer_groups", "Consumer groups by type and state.", &["type", "state"]),
            group_members: gauge(&r, "gregor_consumer_group_members", "Members of each consumer group.", &["group"]),
            group_lag: gauge(
                &r,
                "gregor_consumer_group_lag_records",
                "High watermark minus committed offset, per group and partition.",
                &["group", "topic", "partition"],
            ),
            transactions: gauge(&r, "gregor_transactions", "Transactional ids by transaction state.", &["state"]),
            transaction_ends: counter(
                &r,
                "gregor_transactions_ended_total",
                "Transactions ended, by result (commit, abort) and cause (client, timeout, fenced).",
                &["result", "cause"],
            ),
            registry: r,
        }
    }

    /// Records one finished request.
    pub fn observe(&self, api: &str, version: i16, elapsed: Duration) {
        self.requests
            .with_label_values(&[api, &version.to_string()])
            .inc();
        self.request_seconds
            .with_label_values(&[api])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts an error code returned by an API.
    pub fn error(&self, api: &str, code: i16) {
        if code != 0 {
            self.request_errors
                .with_label_values(&[api, &code.to_string()])
                .inc();
        }
    }

    /// Refreshes the state-derived gauges and renders the text format.
    pub fn render(&self, broker: &Broker) -> String {
        for g in [
            &self.partition_start,
            &self.partition_end,
            &self.partition_size,
            &self.partition_segments,
            &self.group_members,
            &self.group_lag,
        ] {
            g.reset();
        }
        self.groups.reset();
        self.transactions.reset();
        broker.txns.read(|t| {
            for (_, m) in t.list() {
                self.transactions
                    .with_label_values(&[m.status.name()])
                    .inc();
            }
        });
        let mut hw = std::collections::HashMap::new();
        for t in broker.topics() {
            for p in t.partitions.read().iter() {
                let idx = p.index.to_string();
                let labels = [t.name.as_str(), idx.as_str()];
                let log = p.log.lock();
                self.partition_start
                    .with_label_values(&labels)
                    .set(log.log_start_offset());
                self.partition_end
                    .with_label_values(&labels)
                    .set(log.log_end_offset());
                self.partition_size
                    .with_label_values(&labels)
                    .set(log.size_bytes() as i64);
                self.partition_segments
                    .with_label_values(&labels)
                    .set(log.segment_count() as i64);
                hw.insert((t.name.clone(), p.index), log.log_end_offset());
            }
        }
        broker.groups.read(|c| {
            for g in c.list_groups(&[], &[]) {
                self.groups
                    .with_label_values(&[g.group_type, g.state])
                    .inc();
                let members = c.describe_group(&g.group_id).members.len();
                self.group_members
                    .with_label_values(&[&g.group_id])
                    .set(members as i64);
                for o in c.fetch_offsets(&g.group_id, None) {
                    if let Some(end) = hw.get(&(o.topic.clone(), o.partition)) {
                        let p = o.partition.to_string();
                        self.group_lag
                            .with_label_values(&[&g.group_id, &o.topic, &p])
                            .set((end - o.offset).max(0));
                    }
                }
            }
        });
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Serves `GET /metrics` on `listener` until `stop` turns true.
pub async fn serve(
    broker: std::sync::Arc<Broker>,
    listener: tokio::net::TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let (mut s, _) = tokio::select! {
            a = listener.accept() => match a { Ok(x) => x, Err(_) => continue },
            _ = stop.changed() => return,
        };
        let b = broker.clone();
        tokio::spawn(async move {
            let mut req = vec![0u8; 4096];
            let mut n = 0;
            // Read the request head (bounded).
            while n < req.len() {
                match tokio::time::timeout(Duration::from_secs(5), s.read(&mut req[n..])).await {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                    Ok(Ok(k)) => {
                        n += k;
                        if req[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
            let head = String::from_utf8_lossy(&req[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, ctype, body) = if head.starts_with("GET ")
                && (path == "/metrics" || path.starts_with("/metrics?"))
            {
                (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    b.metrics.render(&b),
                )
            } else {
                ("404 Not Found", "text/plain", "try /metrics\n".to_string())
            };
            let resp = format!("HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            let _ = s.write_all(resp.as_bytes()).await;
            let _ = s.shutdown().await;
        });
    }
}
