//! Gregor's coordinators as state machines without I/O: the group
//! coordinator (classic and KIP-848 consumer groups, committed offsets) and
//! the transaction coordinator (`transactions`). They emit records for
//! `__consumer_offsets` and `__transaction_state` (in Kafka's schemas) and
//! rebuild themselves by replaying them; time is always passed in, so tests
//! drive them on a manual clock.

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
