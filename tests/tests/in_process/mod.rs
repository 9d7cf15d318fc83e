//! Shared by the in-process tests (a cluster in the test's own runtime).
#![allow(dead_code)] // each test binary uses its part

pub mod kubernetes;
pub mod yarn;

use am::resource_manager::driver::ResourceManagerDriver;
use am::resource_manager::worker::WorkerSpec;
use common::ids::ResourceId;

/// A driver that starts no workers: for in-process tests that start their
/// TaskExecutors themselves.
pub struct NoWorkers;

impl ResourceManagerDriver for NoWorkers {
    fn name(&self) -> &'static str {
        "none"
    }
    fn request_worker(&mut self, _: &WorkerSpec) {}
    fn cancel_request(&mut self, _: &WorkerSpec) {}
    fn release_worker(&mut self, _: &ResourceId) {}
    fn terminate(&mut self) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}
