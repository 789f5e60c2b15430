//! Gregor's group coordinator: the classic consumer-group protocol and
//! committed offsets, as a state machine without I/O. It emits records for
//! `__consumer_offsets` (in Kafka's schemas) and rebuilds itself by replaying
//! them; time is always passed in, so tests drive it on a manual clock.

pub mod coordinator;
pub mod group;
pub mod records;
pub mod transactions;
pub mod types;

pub use coordinator::{partition_for, Coordinator, Effects};
pub use group::GroupState;
pub use records::CoordinatorRecord;
pub use types::*;
pub mod consumer;
pub mod consumer_records;
