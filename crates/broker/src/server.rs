//! The listener: accepts connections (at most `max.connections`), runs the
//! background flusher, group timer, cleaner and retention tasks, and shuts
//! down gracefully: stop accepting, let every connection answer what it has
//! read, flush and close the logs. `max.connections` and the flush and
//! cleaner intervals are read from the current configuration, so dynamic
//! changes apply without a restart.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::BrokerConfig;
use crate::connection;
use crate::error::Result;
use crate::state::Broker;

/// How long shutdown waits for connections to finish their in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `listener` until `shutdown` completes, then stops gracefully.
pub async fn run(
    broker: Arc<Broker>,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut background = spawn_background(broker.clone(), stop_rx.clone());
    if let Some(m) = metrics {
        background.push(tokio::spawn(crate::metrics::serve(
            broker.clone(),
            m,
            stop_rx.clone(),
        )));
    }
    let open = Arc::new(AtomicUsize::new(0));
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let limit = broker.config().max_connections;
                if open.load(Ordering::Acquire) >= limit {
                    tracing::warn!(%peer, limit, "max.connections reached; refusing connection");
                    continue;
                }
                let slot = Slot::take(&open);
                let b = broker.clone();
                let rx = stop_rx.clone();
                conns.spawn(async move {
                    connection::serve(b, stream, peer, rx).await;
                    drop(slot);
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    tracing::info!("shutting down: no longer accepting connections");
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections did not finish in time; aborting them");
        conns.abort_all();
    }
    for t in background {
        let _ = t.await;
    }
    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.close())
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
    Ok(())
}

/// One open connection counted against `max.connections`; released on drop,
/// also when the connection's task is aborted.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(open: &Arc<AtomicUsize>) -> Slot {
        open.fetch_add(1, Ordering::AcqRel);
        Slot(open.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How often a disabled periodic task looks whether it has been enabled.
const DISABLED_RECHECK: Duration = Duration::from_secs(1);

fn every(ms: i64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms as u64))
}

fn spawn_background(
    broker: Arc<Broker>,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    tasks.push(periodic(
        broker.clone(),
        stop.clone(),
        |c| every(c.flush_interval_ms),
        "flush",
        |b| b.flush_all().map(|_| ()),
    ));
    tasks.push(periodic(
        broker.clone(),
        stop.clone(),
        |_| Some(Duration::from_millis(100)),
        "groups",
        |b| {
            b.groups.tick(b);
            Ok(())
        },
    ));
    tasks.push(periodic(
        broker.clone(),
        stop.clone(),
        |_| Some(Duration::from_millis(500)),
        "transactions",
        |b| {
            b.txns.tick(b);
            Ok(())
        },
    ));
    if broker.config().cleaner_enable {
        tasks.push(periodic(
            broker.clone(),
            stop.clone(),
            |c| every(c.cleaner_backoff_ms),
            "cleaner",
            |b| crate::cleaner::clean_all(b).map(|_| ()),
        ));
    }
    let retention = |c: &BrokerConfig| every(c.retention_check_interval_ms);
    tasks.push(periodic(broker, stop, retention, "retention", |b| {
        let n = b.enforce_retention()?;
        if n > 0 {
            tracing::info!(segments = n, "retention deleted segments");
        }
        Ok(())
    }));
    tasks
}

/// Runs `work` on a blocking thread every `period` of the current
/// configuration (`None`: disabled for now). A config change restarts the
/// wait with the new period.
fn periodic(
    broker: Arc<Broker>,
    mut stop: watch::Receiver<bool>,
    period: fn(&BrokerConfig) -> Option<Duration>,
    name: &'static str,
    work: fn(&Broker) -> Result<()>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let wait = period(&broker.config());
            tokio::select! {
                _ = tokio::time::sleep(wait.unwrap_or(DISABLED_RECHECK)) => {
                    if wait.is_none() || period(&broker.config()).is_none() {
                        continue;
                    }
                    let b = broker.clone();
                    match tokio::task::spawn_blocking(move || work(&b)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::error!(task = name, error = %e, "background task failed"),
                        Err(e) => tracing::error!(task = name, error = %e, "background task panicked"),
                    }
                }
                _ = broker.config_changed.notified() => {}
                _ = stop.changed() => return,
            }
        }
    })
}
