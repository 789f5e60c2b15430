//! Errors of the wire layer. Any of them means the connection's byte stream
//! can no longer be trusted: the broker closes that connection (and only it).

/// Why a frame or header could not be accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// The length prefix exceeds `socket.request.max.bytes`.
    #[error("frame of {size} bytes exceeds the maximum of {max}")]
    FrameTooLarge { size: usize, max: usize },
    /// The length prefix is negative or too small to hold a request header.
    #[error("invalid frame length {0}")]
    InvalidLength(i32),
    /// The request header could not be decoded.
    #[error("malformed request header: {0}")]
    MalformedHeader(String),
    /// A request body could not be decoded at its declared version.
    #[error("malformed {api} v{version} request: {reason}")]
    MalformedBody {
        api: &'static str,
        version: i16,
        reason: String,
    },
    /// A response could not be encoded (a broker bug, never client input).
    #[error("cannot encode {api} v{version} response: {reason}")]
    Encode {
        api: &'static str,
        version: i16,
        reason: String,
    },
}
