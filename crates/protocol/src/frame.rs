//! Length-prefixed framing.
//!
//! Every Kafka request and response is `length: i32 BE` followed by `length`
//! bytes. The length is checked against the configured maximum
//! (`socket.request.max.bytes`) before anything is allocated for the body.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::ProtocolError;

/// Smallest possible request: api key (2) + version (2) + correlation id (4) + client id length (2).
pub const MIN_REQUEST_LEN: usize = 10;

/// Takes one complete frame off the front of `buf`, if there is one.
///
/// Returns `Ok(None)` when more bytes are needed, with `buf` untouched (the
/// caller may reserve `needed` bytes); an error when the declared length is
/// invalid or over `max`: the connection must then be closed.
pub fn take_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, ProtocolError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < MIN_REQUEST_LEN as i32 {
        return Err(ProtocolError::InvalidLength(len));
    }
    let len = len as usize;
    if len > max {
        return Err(ProtocolError::FrameTooLarge { size: len, max });
    }
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn waits_for_whole_frame_then_splits() {
        let mut b = BytesMut::new();
        b.extend_from_slice(&12i32.to_be_bytes());
        b.extend_from_slice(&[1; 6]);
        assert_eq!(take_frame(&mut b, 100), Ok(None));
        b.extend_from_slice(&[2; 6]);
        b.extend_from_slice(&[9, 9]);
        let f = take_frame(&mut b, 100).expect("ok").expect("frame");
        assert_eq!(f.len(), 12);
        assert_eq!(&b[..], &[9, 9]);
    }

    #[test]
    fn rejects_oversized_and_negative_lengths_before_reading_body() {
        let mut b = BytesMut::from(&(1i32 << 30).to_be_bytes()[..]);
        assert_eq!(
            take_frame(&mut b, 1 << 20),
            Err(ProtocolError::FrameTooLarge {
                size: 1 << 30,
                max: 1 << 20
            })
        );
        let mut b = BytesMut::from(&(-5i32).to_be_bytes()[..]);
        assert_eq!(
            take_frame(&mut b, 100),
            Err(ProtocolError::InvalidLength(-5))
        );
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut b = BytesMut::from(&data[..]);
            while let Ok(Some(_)) = take_frame(&mut b, 32) {}
        }
    }
}
