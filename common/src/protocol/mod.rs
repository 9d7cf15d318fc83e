//! The slot protocol: plain domain types for every message that crosses a
//! process boundary between the ResourceManager, JobMasters and
//! TaskExecutors, whatever the cluster manager. They are turned into protobuf
//! only at the edge, in [`crate::rpc`].
//!
//! - `slots`: registration, slot reports, slot requests and offers.
//! - `tasks`: deploying subtasks and reporting their states.

mod slots;
mod tasks;

pub use slots::*;
pub use tasks::*;
