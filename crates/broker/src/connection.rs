//! One client connection: a reader that frames, resolves and dispatches
//! requests in order, and a writer that sends their responses in the same
//! order (awaiting any that are still pending). Up to [`MAX_IN_FLIGHT`]
//! requests may be outstanding before the reader stops reading.
//!
//! A frame that is oversized, truncated or undecodable ends this connection
//! (after the responses already queued are written) and nothing else.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use gregor_protocol::frame::take_frame;
use gregor_protocol::header::parse_request;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::handlers::{dispatch, Pending};
use crate::state::Broker;

/// What the writer needs to account for a request once it is answered.
struct Answer {
    pending: Pending,
    api: &'static str,
    version: i16,
    start: std::time::Instant,
    /// A produce or fetch that is waiting (counted in `gregor_requests_waiting`).
    waiting: bool,
}

/// Requests a connection may have outstanding (read but not yet answered).
pub const MAX_IN_FLIGHT: usize = 4096;

/// Serves one connection until the peer closes it, it sends a bad frame, or
/// `shutdown` turns true (then in-flight requests are still answered).
pub async fn serve(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Answer>(MAX_IN_FLIGHT);
    broker.metrics.connections.inc();
    let writer = tokio::spawn(write_responses(broker.clone(), wr, rx));
    let max = broker.config().socket_request_max_bytes;
    let peer_ip = peer.ip().to_string();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    'conn: loop {
        loop {
            // A bad length prefix or an undecodable header ends the connection.
            let req = match take_frame(&mut buf, max).and_then(|f| f.map(parse_request).transpose())
            {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    broker
                        .metrics
                        .request_errors
                        .with_label_values(&["Unknown", "malformed"])
                        .inc();
                    tracing::warn!(%peer, error = %e, "closing connection: bad frame");
                    break 'conn;
                }
            };
            let (key, version, corr) = (req.api_key, req.api_version, req.correlation_id);
            let api = req
                .api
                .map(gregor_protocol::codec::api_name)
                .unwrap_or("Unknown");
            let start = std::time::Instant::now();
            match dispatch(&broker, req, &peer_ip) {
                Ok(pending) => {
                    let waiting = matches!(pending, Pending::Later(_))
                        && (api == "Produce" || api == "Fetch");
                    if waiting {
                        broker.metrics.waiting.with_label_values(&[api]).inc();
                    }
                    if tx
                        .send(Answer {
                            pending,
                            api,
                            version,
                            start,
                            waiting,
                        })
                        .await
                        .is_err()
                    {
                        break 'conn;
                    }
                }
                Err(e) => {
                    broker
                        .metrics
                        .request_errors
                        .with_label_values(&[api, "malformed"])
                        .inc();
                    tracing::warn!(%peer, api_key = key, api_version = version, correlation_id = corr, error = %e, "closing connection");
                    break 'conn;
                }
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        tokio::select! {
            n = rd.read_buf(&mut buf) => match n {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "read failed");
                    break;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    drop(tx);
    let _ = writer.await;
    broker.metrics.connections.dec();
    tracing::debug!(%peer, "connection closed");
}

async fn write_responses(broker: Arc<Broker>, wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Answer>) {
    let mut out = BufWriter::with_capacity(64 * 1024, wr);
    while let Some(a) = rx.recv().await {
        let frame = match a.pending {
            Pending::Ready(f) => f,
            Pending::Later(fut) => {
                let r = fut.await;
                if a.waiting {
                    broker.metrics.waiting.with_label_values(&[a.api]).dec();
                }
                match r {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot encode response; closing connection");
                        break;
                    }
                }
            }
        };
        if let Some(f) = frame {
            if out.write_all(&f).await.is_err() {
                break;
            }
        }
        if rx.is_empty() && out.flush().await.is_err() {
            break;
        }
        broker.metrics.observe(a.api, a.version, a.start.elapsed());
    }
    // The peer is gone or the stream ended: release what was still queued.
    rx.close();
    while let Ok(a) = rx.try_recv() {
        if a.waiting {
            broker.metrics.waiting.with_label_values(&[a.api]).dec();
        }
    }
    let _ = out.flush().await;
    let _ = out.into_inner().shutdown().await;
}
