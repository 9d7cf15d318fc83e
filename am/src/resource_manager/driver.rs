//! The seam between the ResourceManager and a cluster manager (Flink's
//! `ResourceManagerDriver` + `ResourceEventHandler`).
//!
//! A driver is the only cluster-manager-specific code: it turns a
//! [`WorkerSpec`] into a process, a YARN container or a pod, and reports back
//! through [`DriverEvent`]s on a channel. Its methods never block: slow work
//! (container asks, pod creation) happens on the driver's own tasks.

use common::ids::ResourceId;
use futures::future::BoxFuture;

use super::worker::WorkerSpec;

#[derive(Clone, Debug, PartialEq)]
pub enum DriverEvent {
    /// A worker of `spec` is starting; its TaskManager registers as `resource_id`.
    WorkerStarted { resource_id: ResourceId, spec: WorkerSpec },
    /// A requested worker could not be had.
    WorkerRequestFailed { spec: WorkerSpec, reason: String },
    /// A worker is gone (exited, container completed, pod deleted).
    WorkerTerminated { resource_id: ResourceId, diagnostics: String },
    /// The driver cannot go on (e.g. the cluster manager refused the application).
    Fatal(String),
}

pub trait ResourceManagerDriver: Send + 'static {
    /// Short name for logs and `/overview` ("process", "yarn", ...).
    fn name(&self) -> &'static str;
    /// Starts one worker of `spec`; the answer comes as a [`DriverEvent`].
    fn request_worker(&mut self, spec: &WorkerSpec);
    /// One earlier request of `spec` is not needed any more: withdraw it if
    /// no worker was had for it yet. A worker already starting is left alone
    /// (it registers, sits idle, and is released by the idle timeout).
    fn cancel_request(&mut self, spec: &WorkerSpec);
    /// Stops a worker this driver started.
    fn release_worker(&mut self, resource_id: &ResourceId);
    /// Stops every worker and resolves when they are gone. Called once, last.
    fn terminate(&mut self) -> BoxFuture<'static, ()>;
    /// What the cluster manager calls a worker, and where its log is, for
    /// `/taskmanagers` and `yarn-flink status`.
    fn worker_details(&self, _resource_id: &ResourceId) -> WorkerDetails {
        WorkerDetails::default()
    }
    /// The end (at most `limit` bytes) of a worker's log whose location is
    /// [`LogLocation::Driver`]. The future runs off the ResourceManager's loop.
    fn worker_log(&self, _resource_id: &ResourceId, _limit: u64) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        Box::pin(async { Err("this cluster manager's driver serves no logs".to_owned()) })
    }
}

/// A worker as its cluster manager knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerDetails {
    /// The cluster manager's name for it (a YARN container id, a pod name).
    pub container: Option<String>,
    pub log: Option<LogLocation>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogLocation {
    /// A file the AM can read and serve (`/taskmanagers/<id>/log`): local processes.
    File(std::path::PathBuf),
    /// Where the cluster manager serves it (a NodeManager's container log page).
    Url(String),
    /// The driver fetches it (a pod's log, through the apiserver) for
    /// `/taskmanagers/<id>/log`.
    Driver,
}
