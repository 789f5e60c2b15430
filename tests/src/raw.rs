//! Raw Kafka requests over a plain socket, encoded with the kafka-protocol
//! crate: for what no installable client can send (malformed frames, the
//! cluster-default BROKER resource, exact versions).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::Gregor;

/// A connection to the broker with a 10 s read timeout.
pub fn connect(g: &Gregor) -> TcpStream {
    let s = TcpStream::connect(&g.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// One request frame: length prefix, header (correlation id 42), body.
pub fn frame<T: Encodable>(key: ApiKey, version: i16, body: &T) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(42)
        .with_client_id(Some(StrBytes::from_static_str("raw")));
    let mut b = BytesMut::new();
    header
        .encode(&mut b, key.request_header_version(version))
        .expect("header");
    body.encode(&mut b, version).expect("body");
    let mut out = (b.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&b);
    out
}

/// Reads one response frame (without its length prefix).
pub fn read_response(s: &mut TcpStream) -> Bytes {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("response length");
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("response body");
    Bytes::from(body)
}

/// Sends `req` and decodes the response, checking the correlation id.
pub fn call<Q: Encodable, R: Decodable>(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
    req: &Q,
) -> R {
    s.write_all(&frame(key, version, req)).expect("write");
    let mut b = read_response(s);
    let h = ResponseHeader::decode(&mut b, key.response_header_version(version)).expect("header");
    assert_eq!(h.correlation_id, 42);
    R::decode(&mut b, version).expect("decode response")
}

/// True when the broker closed the connection (EOF or reset) instead of answering.
pub fn closed_by_broker(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}
