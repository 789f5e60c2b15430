//! Gregor's broker: the async shell around the protocol and storage cores.
//!
//! * [`state`]: topics, partitions and persisted cluster metadata.
//! * [`handlers`]: one module per Kafka API and the dispatch table.
//! * [`connection`]: per-connection framing, pipelining and in-order replies.
//! * [`server`]: accept loop, background flush and retention, graceful stop.

pub mod cleaner;
pub mod clock;
pub mod config;
pub mod connection;
pub mod decompress;
pub mod error;
pub mod groups;
pub mod handlers;
pub mod internal_topic;
pub mod metrics;
pub mod server;
pub mod state;
pub mod topic_config;
pub mod transactions;

pub use config::{BrokerConfig, HostPort};
pub use error::{BrokerError, Result};
pub use state::Broker;
