//! The listener: accepts connections (at most `max.connections`), runs the
//! background flusher and retention tasks, and shuts down gracefully: stop
//! accepting, let every connection answer what it has read, flush and close
//! the logs.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

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
    let permits = Arc::new(Semaphore::new(broker.config.max_connections));
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
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "max.connections reached; refusing connection");
                    continue;
                };
                let b = broker.clone();
                let rx = stop_rx.clone();
                conns.spawn(async move {
                    connection::serve(b, stream, peer, rx).await;
                    drop(permit);
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

fn spawn_background(
    broker: Arc<Broker>,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let every = |ms: i64| Duration::from_millis(ms.max(1) as u64);
    if broker.config.flush_interval_ms > 0 {
        let period = every(broker.config.flush_interval_ms);
        tasks.push(periodic(
            broker.clone(),
            stop.clone(),
            period,
            "flush",
            |b| b.flush_all().map(|_| ()),
        ));
    }
    tasks.push(periodic(
        broker.clone(),
        stop.clone(),
        Duration::from_millis(100),
        "groups",
        |b| {
            b.groups.tick(b);
            Ok(())
        },
    ));
    if broker.config.cleaner_enable {
        tasks.push(periodic(
            broker.clone(),
            stop.clone(),
            every(broker.config.cleaner_backoff_ms),
            "cleaner",
            |b| crate::cleaner::clean_all(b).map(|_| ()),
        ));
    }
    let period = every(broker.config.retention_check_interval_ms);
    tasks.push(periodic(broker, stop, period, "retention", |b| {
        let n = b.enforce_retention()?;
        if n > 0 {
            tracing::info!(segments = n, "retention deleted segments");
        }
        Ok(())
    }));
    tasks
}

fn periodic(
    broker: Arc<Broker>,
    mut stop: watch::Receiver<bool>,
    period: Duration,
    name: &'static str,
    work: fn(&Broker) -> Result<()>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let b = broker.clone();
                    match tokio::task::spawn_blocking(move || work(&b)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::error!(task = name, error = %e, "background task failed"),
                        Err(e) => tracing::error!(task = name, error = %e, "background task panicked"),
                    }
                }
                _ = stop.changed() => return,
            }
        }
    })
}
