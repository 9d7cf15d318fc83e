//! The ResourceManager: knows every TaskExecutor, matches declared
//! requirements to slots (the SlotManager), and starts and stops workers
//! through a cluster-manager driver.
//!
//! - `slot_manager`: the pure decisions (no I/O, injected clock).
//! - `driver`: the trait every cluster manager implements.
//! - `actor`: the task that owns both and carries decisions out.
//! - `service`: its gRPC endpoint for TaskExecutors.

mod actor;
#[cfg(test)]
mod actor_tests;
pub mod driver;
pub(crate) mod service;
pub mod slot_manager;
pub mod worker;

pub use actor::{spawn, JobMasterNotice, ResourceManagerConfig, ResourceManagerHandle, ResourceManagerOverview};
