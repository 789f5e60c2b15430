//! Gregor's storage engine: the segmented, Kafka-format partition log.
//!
//! Synchronous and free of async runtimes: the broker calls it from its tasks
//! (short appends and reads) or from blocking threads (fsync, retention).

pub mod batch;
pub mod compaction;
pub mod error;
pub mod index;
pub mod log;
pub mod producer_state;
pub mod segment;

pub use batch::BatchHeader;
pub use error::{Result, StorageError};
pub use log::{AppendResult, Log, LogConfig};
