//! Gregor's wire layer: framing with a size guard, request-header resolution,
//! body decoding and response encoding through `kafka-protocol`, and the table
//! of supported API versions. No I/O.

pub mod codec;
pub mod error;
pub mod frame;
pub mod header;
pub mod versions;

pub use error::ProtocolError;
pub use kafka_protocol;
