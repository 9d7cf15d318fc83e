//! One suite every `ResourceManagerDriver` passes, in the spirit of Flink's
//! ResourceManagerDriverTestBase: the same scenarios (request, a start that
//! fails, a worker that dies, release, terminate, an ask over the maximum)
//! against the process driver (real child processes: a stand-in TaskManager
//! script) and the YARN driver (the IPC ResourceManager and NodeManager
//! doubles) and the Kubernetes driver (the kube-apiserver and kubelet
//! doubles). Mesos joins when it lands: implement [`Harness`] and add a
//! `suite!` line.

mod in_process;

use std::path::PathBuf;
use std::time::Duration;

use am::drivers::process::{ProcessDriver, ProcessDriverConfig};
use am::resource_manager::driver::{DriverEvent, ResourceManagerDriver};
use am::resource_manager::worker::WorkerSpec;
use common::ids::ResourceId;
use common::resources::{ResourceProfile, MIB};
use tokio::sync::mpsc;

/// How a scenario drives one cluster manager and sees what happened there.
trait Harness: Sized {
    async fn start() -> Self;
    fn driver(&mut self) -> &mut dyn ResourceManagerDriver;
    async fn next_event(&mut self) -> DriverEvent;
    /// The worker dies on its own (killed, OOM): not the driver's doing.
    fn kill(&mut self, id: &ResourceId);
    /// What the death's diagnostics must mention.
    const KILLED_SAYS: &'static str;
    fn running(&self, id: &ResourceId) -> bool;
    /// Starts of workers fail in the cluster manager, until [`Harness::heal`].
    fn fail_next_start(&mut self);
    fn heal(&mut self);
    /// The largest worker the cluster manager gives, if it has a limit the driver knows.
    fn maximum(&self) -> Option<ResourceProfile>;
}

fn spec(cpu_millis: u64, mem_mb: u64) -> WorkerSpec {
    WorkerSpec::uniform(ResourceProfile::new(cpu_millis, mem_mb * MIB), 1)
}

async fn started<H: Harness>(h: &mut H) -> ResourceId {
    match h.next_event().await {
        DriverEvent::WorkerStarted { resource_id, .. } => resource_id,
        other => panic!("expected a started worker, got {other:?}"),
    }
}

async fn until<H: Harness>(h: &H, what: &str, f: impl Fn(&H) -> bool) {
    for _ in 0..500 {
        if f(h) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn a_requested_worker_starts_with_its_spec<H: Harness>() {
    let mut h = H::start().await;
    let want = spec(1000, 512);
    h.driver().request_worker(&want);
    match h.next_event().await {
        DriverEvent::WorkerStarted { resource_id, spec } => {
            assert_eq!(spec, want);
            until(&h, "the worker to run", |h| h.running(&resource_id)).await;
        }
        other => panic!("{other:?}"),
    }
    h.driver().terminate().await;
}

async fn a_start_that_fails_is_reported_with_why<H: Harness>() {
    let mut h = H::start().await;
    h.fail_next_start();
    let want = spec(1000, 512);
    h.driver().request_worker(&want);
    match h.next_event().await {
        DriverEvent::WorkerRequestFailed { spec, reason } => {
            assert_eq!(spec, want);
            assert!(!reason.is_empty());
        }
        other => panic!("expected a failed request, got {other:?}"),
    }
    // Once the cluster manager is well again, the next one starts.
    h.heal();
    h.driver().request_worker(&want);
    started(&mut h).await;
    h.driver().terminate().await;
}

async fn a_worker_that_dies_is_reported_terminated_with_why<H: Harness>() {
    let mut h = H::start().await;
    h.driver().request_worker(&spec(1000, 512));
    let id = started(&mut h).await;
    until(&h, "the worker to run", |h| h.running(&id)).await;
    h.kill(&id);
    match h.next_event().await {
        DriverEvent::WorkerTerminated { resource_id, diagnostics } => {
            assert_eq!(resource_id, id);
            assert!(diagnostics.contains(H::KILLED_SAYS), "{diagnostics}");
        }
        other => panic!("{other:?}"),
    }
    h.driver().terminate().await;
}

async fn a_released_worker_stops<H: Harness>() {
    let mut h = H::start().await;
    h.driver().request_worker(&spec(1000, 512));
    h.driver().request_worker(&spec(1000, 512));
    let (a, b) = (started(&mut h).await, started(&mut h).await);
    until(&h, "both workers to run", |h| h.running(&a) && h.running(&b)).await;
    h.driver().release_worker(&a);
    until(&h, "the released worker to stop", |h| !h.running(&a)).await;
    assert!(h.running(&b), "only the released one stops");
    h.driver().terminate().await;
}

async fn terminate_stops_every_worker<H: Harness>() {
    let mut h = H::start().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        h.driver().request_worker(&spec(500, 256));
        ids.push(started(&mut h).await);
    }
    until(&h, "the workers to run", |h| ids.iter().all(|id| h.running(id))).await;
    tokio::time::timeout(Duration::from_secs(20), h.driver().terminate()).await.expect("terminate ends");
    until(&h, "every worker to stop", |h| ids.iter().all(|id| !h.running(id))).await;
}

async fn an_ask_over_the_maximum_fails_the_request_up_front<H: Harness>() {
    let mut h = H::start().await;
    // The process driver has no maximum of its own: the SlotManager refuses a
    // slot larger than the machine before any worker is asked for (slot_manager/tests.rs).
    let Some(max) = h.maximum() else { return };
    let too_big = WorkerSpec::uniform(ResourceProfile::new(max.cpu_millis + 1000, max.total_memory_bytes()), 1);
    h.driver().request_worker(&too_big);
    match h.next_event().await {
        DriverEvent::WorkerRequestFailed { spec, reason } => {
            assert_eq!(spec, too_big);
            assert!(reason.contains("maximum"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    h.driver().terminate().await;
}

/// Runs every scenario against one harness.
macro_rules! suite {
    ($module:ident, $harness:ty) => {
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_requested_worker_starts_with_its_spec() {
                super::a_requested_worker_starts_with_its_spec::<$harness>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_start_that_fails_is_reported_with_why() {
                super::a_start_that_fails_is_reported_with_why::<$harness>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_worker_that_dies_is_reported_terminated_with_why() {
                super::a_worker_that_dies_is_reported_terminated_with_why::<$harness>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_released_worker_stops() {
                super::a_released_worker_stops::<$harness>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn terminate_stops_every_worker() {
                super::terminate_stops_every_worker::<$harness>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn an_ask_over_the_maximum_fails_the_request_up_front() {
                super::an_ask_over_the_maximum_fails_the_request_up_front::<$harness>().await
            }
        }
    };
}

suite!(process, ProcessHarness);
suite!(yarn, YarnHarness);
suite!(kubernetes, KubernetesHarness);

// ---- the process driver: child processes of a stand-in TaskManager ----

struct ProcessHarness {
    driver: ProcessDriver,
    events: mpsc::UnboundedReceiver<DriverEvent>,
    dir: tempfile::TempDir,
    script: PathBuf,
}

impl ProcessHarness {
    /// The pid the stand-in wrote in its work dir.
    fn pid(&self, id: &ResourceId) -> Option<i32> {
        std::fs::read_to_string(self.dir.path().join(id.as_str()).join("pid")).ok()?.trim().parse().ok()
    }
}

impl Harness for ProcessHarness {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Stands in for `yarn-flink taskmanager`: says where it is, then waits to be stopped.
        let script = dir.path().join("taskmanager.sh");
        integration_tests::files::write_executable(
            &script,
            "#!/bin/sh\necho $$ > \"$YF_TM_WORK_DIR/pid\"\nexec sleep 600\n",
        );
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "00").unwrap();
        let config = ProcessDriverConfig {
            binary: script.clone(),
            rm_address: "127.0.0.1:1".into(),
            secret_file: secret,
            work_dir: dir.path().to_owned(),
            host: "127.0.0.1".into(),
            env: Vec::new(),
            stop_grace: Duration::from_secs(2),
            id_prefix: "tm-".into(),
            detach: false,
        };
        let (tx, events) = mpsc::unbounded_channel();
        ProcessHarness { driver: ProcessDriver::new(config, tx), events, dir, script }
    }

    fn driver(&mut self) -> &mut dyn ResourceManagerDriver {
        &mut self.driver
    }

    async fn next_event(&mut self) -> DriverEvent {
        tokio::time::timeout(Duration::from_secs(10), self.events.recv()).await.expect("an event in time").unwrap()
    }

    fn kill(&mut self, id: &ResourceId) {
        let pid = self.pid(id).expect("the stand-in wrote its pid");
        // SAFETY: kill(2) on a process this test's driver started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }

    const KILLED_SAYS: &'static str = "SIGKILL";

    fn running(&self, id: &ResourceId) -> bool {
        // Alive and not a zombie (the driver reaps its children).
        self.pid(id).is_some_and(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
        })
    }

    fn fail_next_start(&mut self) {
        // The binary is gone: the spawn fails.
        std::fs::rename(&self.script, self.script.with_extension("aside")).unwrap();
    }

    fn heal(&mut self) {
        std::fs::rename(self.script.with_extension("aside"), &self.script).unwrap();
    }

    fn maximum(&self) -> Option<ResourceProfile> {
        None
    }
}

// ---- the YARN driver: the RM and NM doubles ----

struct YarnHarness(in_process::yarn::Setup);

impl Harness for YarnHarness {
    async fn start() -> Self {
        YarnHarness(in_process::yarn::setup().await)
    }

    fn driver(&mut self) -> &mut dyn ResourceManagerDriver {
        &mut self.0.driver
    }

    async fn next_event(&mut self) -> DriverEvent {
        in_process::yarn::next(&mut self.0.events).await
    }

    fn kill(&mut self, id: &ResourceId) {
        self.0.rm.complete(in_process::yarn::container_of(id), 137, "Container killed on request. Exit code is 137");
    }

    const KILLED_SAYS: &'static str = "exit status 137";

    fn running(&self, id: &ResourceId) -> bool {
        let container = in_process::yarn::container_of(id);
        let live = self.0.rm.state.lock().unwrap().live.contains_key(&container);
        let on_node = self
            .0
            .nm
            .containers
            .lock()
            .unwrap()
            .get(&container)
            .is_some_and(|c| c.1 == hadoop::proto::yarn::ContainerStateProto::CRunning);
        live && on_node
    }

    fn fail_next_start(&mut self) {
        self.0.nm.refuse_next_start("NodeManager is not ready yet (NMNotYetReadyException)");
    }

    fn heal(&mut self) {
        // The refusal is for one start only.
    }

    fn maximum(&self) -> Option<ResourceProfile> {
        Some(ResourceProfile::new(4000, 4096 * MIB))
    }
}

// ---- the Kubernetes driver: the kube-apiserver and kubelet doubles ----

struct KubernetesHarness(in_process::kubernetes::Setup);

impl Harness for KubernetesHarness {
    async fn start() -> Self {
        KubernetesHarness(in_process::kubernetes::setup(8000, 16 << 30, Duration::from_secs(30)).await)
    }

    fn driver(&mut self) -> &mut dyn ResourceManagerDriver {
        &mut self.0.driver
    }

    async fn next_event(&mut self) -> DriverEvent {
        in_process::kubernetes::next(&mut self.0.events).await
    }

    fn kill(&mut self, id: &ResourceId) {
        self.0.kubelet.oom_kill(in_process::kubernetes::NAMESPACE, id.as_str());
    }

    const KILLED_SAYS: &'static str = "OOMKilled (exit code 137)";

    fn running(&self, id: &ResourceId) -> bool {
        self.0.running(id)
    }

    fn fail_next_start(&mut self) {
        self.0.api.deny("create", "pods");
    }

    fn heal(&mut self) {
        self.0.api.allow("create", "pods");
    }

    fn maximum(&self) -> Option<ResourceProfile> {
        // No maximum up front: an ask no node fits is a late Unschedulable
        // (kubernetes_driver.rs).
        None
    }
}
