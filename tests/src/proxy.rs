//! A TCP proxy that can drop a connection after forwarding a request but
//! before the response comes back, to make a real client retry a produce
//! that the broker has already appended.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// A proxy listening on `addr`; call [`CuttingProxy::forward_to`] once the
/// upstream address is known (the broker must advertise the proxy's address,
/// so the proxy is bound first).
pub struct CuttingProxy {
    pub addr: String,
    /// Connections cut so far.
    pub cuts: Arc<AtomicUsize>,
    listener: Option<TcpListener>,
    max_cuts: usize,
    min_request_bytes: usize,
}

impl CuttingProxy {
    /// On each of the first `max_cuts` connections that carry a
    /// client→broker chunk of at least `min_request_bytes`, the chunk is
    /// forwarded, then both sides are closed without relaying the response.
    pub fn bind(max_cuts: usize, min_request_bytes: usize) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("addr").to_string();
        CuttingProxy {
            addr,
            cuts: Arc::new(AtomicUsize::new(0)),
            listener: Some(listener),
            max_cuts,
            min_request_bytes,
        }
    }

    /// Starts relaying connections to `upstream`.
    pub fn forward_to(&mut self, upstream: &str) {
        let listener = self.listener.take().expect("forward_to called once");
        let upstream = upstream.to_string();
        let counter = self.cuts.clone();
        let (cuts, min) = (self.max_cuts, self.min_request_bytes);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let counter = counter.clone();
                thread::spawn(move || relay(client, server, counter, cuts, min));
            }
        });
    }
}

fn relay(
    mut client: TcpStream,
    server: TcpStream,
    cuts_done: Arc<AtomicUsize>,
    cuts: usize,
    min: usize,
) {
    let mut server_w = server.try_clone().expect("clone");
    let mut server_r = server;
    let mut client_w = client.try_clone().expect("clone");
    let cut_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = cut_flag.clone();
    let back = thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match server_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if flag.load(Ordering::SeqCst) {
                break;
            }
            if client_w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = client_w.shutdown(Shutdown::Both);
    });
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let cut_now = n >= min && cuts_done.load(Ordering::SeqCst) < cuts;
        if cut_now {
            cut_flag.store(true, Ordering::SeqCst);
        }
        if server_w.write_all(&buf[..n]).is_err() {
            break;
        }
        if cut_now {
            cuts_done.fetch_add(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(200));
            break;
        }
    }
    let _ = server_w.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
    let _ = back.join();
}
