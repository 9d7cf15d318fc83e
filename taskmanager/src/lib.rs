//! The TaskManager (TaskExecutor) role.
//!
//! Layout:
//! - [`task_executor`]: registration, slots, heartbeats and task lifecycle (the control plane side).
//! - [`data_plane`]: running one subtask attempt and moving its records (pipes, partitions, the network exchange).

pub mod data_plane;
pub mod task_executor;

pub use task_executor::{run, TaskExecutorConfig, TaskExecutorError};
