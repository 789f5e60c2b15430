//! Internal failures of the broker shell (as opposed to client mistakes,
//! which become Kafka error codes in responses).

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("storage error: {0}")]
    Storage(#[from] gregor_storage::StorageError),
    #[error("protocol error: {0}")]
    Protocol(#[from] gregor_protocol::ProtocolError),
    #[error("metadata file {path} is unreadable: {reason}")]
    Metadata { path: String, reason: String },
    #[error("invalid configuration: {0}")]
    Config(String),
}

pub type Result<T> = std::result::Result<T, BrokerError>;
