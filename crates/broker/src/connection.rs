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
    let (tx, rx) = mpsc::channel::<Pending>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(write_responses(wr, rx));
    let max = broker.config.socket_request_max_bytes;
    let peer_ip = peer.ip().to_string();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    'conn: loop {
        loop {
            let frame = match take_frame(&mut buf, max) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection: bad frame");
                    break 'conn;
                }
            };
            let req = match parse_request(frame) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection: bad request header");
                    break 'conn;
                }
            };
            let (key, version, corr) = (req.api_key, req.api_version, req.correlation_id);
            match dispatch(&broker, req, &peer_ip) {
                Ok(p) => {
                    if tx.send(p).await.is_err() {
                        break 'conn;
                    }
                }
                Err(e) => {
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
    tracing::debug!(%peer, "connection closed");
}

async fn write_responses(wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Pending>) {
    let mut out = BufWriter::with_capacity(64 * 1024, wr);
    while let Some(p) = rx.recv().await {
        let frame = match p {
            Pending::Ready(f) => f,
            Pending::Later(fut) => match fut.await {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode response; closing connection");
                    break;
                }
            },
        };
        if let Some(f) = frame {
            if out.write_all(&f).await.is_err() {
                return;
            }
        }
        if rx.is_empty() && out.flush().await.is_err() {
            return;
        }
    }
    let _ = out.flush().await;
    let _ = out.into_inner().shutdown().await;
}
