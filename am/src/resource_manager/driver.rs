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
    /// Where a worker's TaskManager log can be read by the REST API, if
    /// this driver keeps it where the AM can read it (local processes). On
    /// YARN the NodeManagers serve container logs (`yarn-flink logs`).
    fn log_file(&self, _resource_id: &ResourceId) -> Option<std::path::PathBuf> {
        None
    }
}
