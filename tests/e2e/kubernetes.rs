//! `yarn-flink submit / kill --target kubernetes` end to end: the real binary
//! against the kube-apiserver double and a kubelet double that runs the
//! JobManager and TaskManager pods as local processes of the same binary
//! (`integration_tests::kube_double`). The scenarios are YARN's: a job of
//! two pod sizes, a TaskManager pod deleted mid-job, an ask no node fits,
//! `kill`, and a session with five jobs; after each, nothing is left in the
//! namespace and no process is left running.
//!
//! With `YARN_FLINK_TEST_KUBECONFIG` (and `YARN_FLINK_TEST_IMAGE`, the image
//! of docs/kubernetes.md with `/bin/sh`) the same commands run against that
//! cluster instead; checks of the doubles' insides are skipped. The test's
//! dir is mounted into every pod at the same path (`--mount-host-path`), so
//! the cluster's nodes must see this machine's temp dir there: a one-node
//! kind cluster whose node mounts the host's /tmp (extraMounts) does.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use integration_tests::kube_double::kubelet::{Kubelet, KubeletConfig};
use integration_tests::kube_double::{KubeDouble, Node};
use support::{output_lines, processes_mentioning, text};

const REAL_CLUSTER_ENV: &str = "YARN_FLINK_TEST_KUBECONFIG";
const IMAGE: &str = "yarn-flink:test";
const BROKEN_IMAGE: &str = "yarn-flink:broken";

struct Doubles {
    api: KubeDouble,
    kubelet: Kubelet,
}

struct Cluster {
    tmp: tempfile::TempDir,
    kubeconfig: PathBuf,
    image: String,
    doubles: Option<Doubles>,
}

impl Cluster {
    /// One node of `cpu_millis` and `memory_gib`.
    async fn start(cpu_millis: u64, memory_gib: u64) -> Cluster {
        let tmp = tempfile::Builder::new().prefix("yf-kube-").tempdir().unwrap();
        if let Some(k) = std::env::var_os(REAL_CLUSTER_ENV) {
            let image = std::env::var("YARN_FLINK_TEST_IMAGE").unwrap_or_else(|_| "yarn-flink:latest".into());
            return Cluster { tmp, kubeconfig: PathBuf::from(k), image, doubles: None };
        }
        // An image whose entrypoint fails at once, as one built for another libc would.
        let broken = tmp.path().join("broken-entrypoint");
        integration_tests::files::write_executable(
            &broken,
            "#!/bin/sh\necho 'yarn-flink: /lib/x86_64-linux-gnu/libc.so.6: version GLIBC_2.99 not found' >&2\nexit 1\n",
        );
        let api =
            KubeDouble::start(vec![Node { name: "node-1".into(), cpu_millis, memory_bytes: memory_gib << 30 }]).await;
        let kubeconfig = tmp.path().join("kubeconfig");
        api.write_kubeconfig(&kubeconfig);
        let kubelet = Kubelet::start(
            api.shared.clone(),
            KubeletConfig {
                node: "node-1".into(),
                root: tmp.path().join("kubelet"),
                images: HashMap::from([(IMAGE.to_owned(), image_binary()), (BROKEN_IMAGE.to_owned(), broken.clone())]),
                kubeconfig: Some(kubeconfig.clone()),
            },
        );
        Cluster { tmp, kubeconfig, image: IMAGE.into(), doubles: Some(Doubles { api, kubelet }) }
    }

    fn root(&self) -> &Path {
        self.tmp.path()
    }

    async fn yf(&self, args: &[&str]) -> Output {
        let mut cmd = support::cmd(&self.root().join("state"));
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("YF_POLL_INTERVAL", "50ms")
            // Pods of the double share one loopback: any free port.
            .env("YF_K8S_RPC_PORT", "0")
            .env("YF_K8S_REST_PORT", "0")
            .env("YF_K8S_PENDING_TIMEOUT", "2s")
            .args(args);
        if args.first() == Some(&"submit") {
            cmd.args(["--target", "kubernetes", "--tm-slots", "1", "--idle-timeout", "2s"]);
            // Bundles and outputs live under the test's dir: every pod sees it at the same path.
            cmd.arg("--mount-host-path").arg(self.root());
            if !args.contains(&"--image") {
                cmd.args(["--image", &self.image]);
            }
        }
        tokio::process::Command::from(cmd).output().await.unwrap()
    }

    /// The pod logs the kubelet double wrote, for failure messages.
    fn logs(&self) -> String {
        let mut out = String::new();
        let dir = self.root().join("kubelet/default");
        for pod in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(pod.path()).into_iter().flatten().flatten() {
                if f.path().extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(f.path()).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(15).collect();
                    out.push_str(&format!("--- {}\n", f.path().display()));
                    out.extend(tail.into_iter().rev().map(|l| format!("{l}\n")));
                }
            }
        }
        out
    }

    /// Every log line of the pods whose name has `component` in it.
    fn full_logs(&self, component: &str) -> String {
        let dir = self.root().join("kubelet/default");
        let mut out = String::new();
        for pod in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if !pod.file_name().to_string_lossy().contains(component) {
                continue;
            }
            for f in std::fs::read_dir(pod.path()).into_iter().flatten().flatten() {
                if f.path().extension().is_some_and(|e| e == "log") {
                    out.push_str(&std::fs::read_to_string(f.path()).unwrap_or_default());
                }
            }
        }
        out
    }

    fn pods(&self, component: &str) -> Vec<String> {
        let Some(d) = &self.doubles else { return Vec::new() };
        d.api
            .pod_names("default")
            .into_iter()
            .filter(|n| {
                d.api.pod("default", n).and_then(|p| p.metadata.labels?.get("component").cloned()).as_deref()
                    == Some(component)
            })
            .collect()
    }

    /// Nothing of the cluster is left in the namespace, and no process of it runs.
    async fn assert_nothing_left(&self) {
        let Some(d) = &self.doubles else { return };
        let needle = self.root().display().to_string();
        let start = Instant::now();
        loop {
            let objects: Vec<String> = ["deployments", "services", "configmaps"]
                .iter()
                .flat_map(|r| d.api.object_names(r, "default").into_iter().map(move |n| format!("{r}/{n}")))
                .chain(d.api.pod_names("default").into_iter().map(|n| format!("pods/{n}")))
                .chain(d.api.secret_names("default").into_iter().map(|n| format!("secrets/{n}")))
                .collect();
            let pids = processes_mentioning(&needle);
            if objects.is_empty() && pids.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "left behind: {objects:?}, processes {pids:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What the image runs: this test build, or (scripts/bench-kubernetes) the
/// release binary named by `YF_K8S_IMAGE_BINARY`, so RSS is a release's.
fn image_binary() -> PathBuf {
    std::env::var_os("YF_K8S_IMAGE_BINARY").map_or_else(support::bin, PathBuf::from)
}

/// Polls `f` without blocking the runtime (the doubles run on it).
async fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `status --target kubernetes <id>` once it shows `state`.
async fn wait_for_status(c: &Cluster, id: &str, state: &str) -> String {
    let start = Instant::now();
    loop {
        let o = c.yf(&["status", "--target", "kubernetes", id]).await;
        let t = text(&o);
        if o.status.success() && t.lines().any(|l| l.starts_with("state:") && l.contains(state)) {
            return t;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "status never showed {state}: {t}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn local(bundle: &Path) -> String {
    format!("local://{}", bundle.display())
}

/// The cluster id: the first line `submit` prints on stdout.
fn cluster_id(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or_default().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_two_pod_sizes_finishes_and_leaves_nothing() {
    let c = Cluster::start(8000, 16).await;
    let out = c.root().join("out");
    let bundle = support::two_vertex_bundle(&c.root().join("bundle"), &out, "0");
    let t = Instant::now();
    let o = c.yf(&["submit", &local(&bundle)]).await;
    let took = t.elapsed();
    assert!(o.status.success(), "{}\n{}", text(&o), c.logs());
    assert!(text(&o).contains("FINISHED"), "{}", text(&o));
    assert_eq!(output_lines(&out), support::expected_output());
    eprintln!("kubernetes double: 1 small job, submit -> FINISHED in {:.2} s", took.as_secs_f64());
    if let Some(d) = &c.doubles {
        let calls = d.api.calls();
        eprintln!("kubernetes double: API calls {calls:?}");
        // gen[0] + sink[0] share a slot (2.5 cpu), gen[1] is alone (0.5 cpu): two sizes, at least two pods.
        assert!(calls.get("POST pods").copied().unwrap_or(0) >= 2, "{calls:?}");
    }
    c.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_manager_pod_deleted_mid_job_restarts_its_region_with_identical_output() {
    let c = Cluster::start(8000, 16).await;
    let Some(d) = &c.doubles else { return };
    let out = c.root().join("out");
    let bundle = support::two_vertex_bundle(&c.root().join("bundle"), &out, "3");
    let url = local(&bundle);
    let args = ["submit", url.as_str()];
    let submit = c.yf(&args);
    let kill_one = async {
        let pod = wait_for(Duration::from_secs(30), "a running TaskManager pod", || {
            c.pods("taskmanager")
                .into_iter()
                .find(|n| d.api.pod("default", n).and_then(|p| p.status?.phase).as_deref() == Some("Running"))
        })
        .await;
        // Let its subtask start, then take the pod away.
        tokio::time::sleep(Duration::from_millis(800)).await;
        d.api.delete_pod("default", &pod);
        pod
    };
    let (o, deleted) = tokio::join!(submit, kill_one);
    assert!(o.status.success(), "{}\n{}", text(&o), c.logs());
    assert!(d.api.pod("default", &deleted).is_none());
    assert_eq!(output_lines(&out), support::expected_output(), "byte-identical after the restart");
    c.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_larger_than_any_node_fails_with_the_schedulers_message() {
    let c = Cluster::start(4000, 8).await;
    let bundle = support::bundle(
        &c.root().join("big"),
        "[job]\nname = \"big\"\n[[vertex]]\nname = \"huge\"\nparallelism = 1\n\
         resources = { cpu = 16, memory = \"1g\" }\nshell = \"echo x\"\n",
        &[],
    );
    let o = tokio::time::timeout(Duration::from_secs(90), c.yf(&["submit", &local(&bundle)]))
        .await
        .unwrap_or_else(|_| panic!("the job waited forever\n{}", c.logs()));
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("FAILED"), "{t}");
    assert!(t.contains("Insufficient cpu"), "the scheduler's message reaches the user: {t}");
    assert!(t.contains("fits on no node") && t.contains("lower the vertex's resources"), "and the fix: {t}");
    c.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_leaves_nothing_behind() {
    let c = Cluster::start(8000, 16).await;
    let out = c.root().join("out");
    let bundle = support::two_vertex_bundle(&c.root().join("bundle"), &out, "60");
    let o = c.yf(&["submit", "--detached", &local(&bundle)]).await;
    assert!(o.status.success(), "{}", text(&o));
    let id = cluster_id(&o);
    if let Some(d) = &c.doubles {
        wait_for(Duration::from_secs(30), "TaskManager pods", || (!c.pods("taskmanager").is_empty()).then_some(()))
            .await;
        // Every pod of the cluster mounts the test's dir from the node, at the same path.
        let root = c.root().display().to_string();
        let pods = d.api.pod_names("default");
        assert!(pods.len() >= 2, "{pods:?}");
        for name in pods {
            let spec = d.api.pod("default", &name).and_then(|p| p.spec).unwrap_or_default();
            let host = spec.volumes.iter().flatten().find_map(|v| v.host_path.as_ref().map(|h| h.path.clone()));
            assert_eq!(host.as_deref(), Some(root.as_str()), "{name}");
        }
    }
    let l = c.yf(&["list", "--target", "kubernetes"]).await;
    assert!(l.status.success(), "{}", text(&l));
    let line = String::from_utf8_lossy(&l.stdout).lines().find(|l| l.starts_with(&id)).map(str::to_owned);
    assert!(line.is_some(), "list names the cluster: {}", text(&l));
    let s = wait_for_status(&c, &id, "RUNNING").await;
    assert!(s.contains("taskmanager") && s.contains("jobmanager"), "status lists the pods: {s}");
    let k = c.yf(&["kill", "--target", "kubernetes", &id]).await;
    assert!(k.status.success(), "{}", text(&k));
    c.assert_nothing_left().await;
    let gone = c.yf(&["status", "--target", "kubernetes", &id]).await;
    assert!(!gone.status.success() && text(&gone).contains(&format!("no cluster {id}")), "{}", text(&gone));
    let again = c.yf(&["kill", "--target", "kubernetes", &id]).await;
    assert!(!again.status.success());
    assert!(text(&again).contains(&format!("no cluster {id}")), "{}", text(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_takes_five_jobs_back_to_back() {
    let c = Cluster::start(8000, 16).await;
    let o = c.yf(&["submit", "--session"]).await;
    assert!(o.status.success(), "{}\n{}", text(&o), c.logs());
    let id = cluster_id(&o);
    let rest = String::from_utf8_lossy(&o.stdout).lines().nth(1).unwrap_or_default().trim().to_owned();
    assert!(!rest.is_empty(), "the session's REST address: {}", text(&o));
    for n in 1..=5 {
        let out = c.root().join(format!("out{n}"));
        let bundle = support::two_vertex_bundle(&c.root().join(format!("bundle{n}")), &out, "0");
        let t = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(60), c.yf(&["run", "-m", &rest, bundle.to_str().unwrap()]))
            .await
            .unwrap_or_else(|_| panic!("job {n} did not finish in 60 s\n{}", c.logs()));
        assert!(r.status.success(), "job {n}: {}\n{}", text(&r), c.logs());
        assert_eq!(output_lines(&out), support::expected_output(), "job {n}");
        eprintln!("kubernetes double: session job {n} end to end in {:.2} s", t.elapsed().as_secs_f64());
        if n == 1 {
            // Each TaskManager's log, read by the JobManager through the apiserver (pods/log).
            let l = c.yf(&["logs", "-m", &rest]).await;
            let t = text(&l);
            assert!(l.status.success(), "{t}");
            assert!(t.contains("==> yf-") && t.contains("taskmanager log <=="), "{t}");
            assert!(t.contains("registered with the ResourceManager"), "the log's text: {t}");
        }
    }
    if c.doubles.is_some() {
        // --idle-timeout 2s: the session's idle TaskManager pods are deleted; its JobManager stays.
        wait_for(Duration::from_secs(30), "idle TaskManager pods to go", || {
            c.pods("taskmanager").is_empty().then_some(())
        })
        .await;
        assert_eq!(c.pods("jobmanager").len(), 1);
    }
    let k = c.yf(&["kill", "--target", "kubernetes", &id]).await;
    assert!(k.status.success(), "{}", text(&k));
    c.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_missing_from_the_image_fails_with_the_job_managers_words() {
    let c = Cluster::start(8000, 16).await;
    // local:// names a path inside the image; this one is not there.
    let missing = c.root().join("no-such-bundle");
    let o = c.yf(&["submit", &local(&missing)]).await;
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("no-such-bundle") && t.contains("does not exist"), "{t}");
    c.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_manager_that_cannot_start_says_why_and_leaves_nothing() {
    let c = Cluster::start(8000, 16).await;
    if c.doubles.is_none() {
        return; // needs the double's broken image
    }
    let bundle = support::two_vertex_bundle(&c.root().join("bundle"), &c.root().join("out"), "0");
    let o = tokio::time::timeout(Duration::from_secs(60), c.yf(&["submit", "--image", BROKEN_IMAGE, &local(&bundle)]))
        .await
        .unwrap_or_else(|_| panic!("submit waited forever\n{}", c.logs()));
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("CrashLoopBackOff"), "the kubelet's state: {t}");
    assert!(t.contains("GLIBC_2.99 not found"), "the container's last words (FallbackToLogsOnError): {t}");
    c.assert_nothing_left().await;
}

/// scripts/bench-kubernetes: figures for a 1 KB job on the doubles (prints
/// FIGURE lines, asserts only that the jobs finish): submit to RUNNING and to
/// FINISHED, API calls and pods per job, and the peak RSS of the JobManager
/// and TaskManager processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench-kubernetes"]
async fn bench_figures() {
    use std::sync::{Arc, Mutex};
    let runs: usize = std::env::var("YF_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    for run in 1..=runs {
        let c = Arc::new(Cluster::start(8000, 16).await);
        let out = c.root().join("out");
        let bundle = support::two_vertex_bundle(&c.root().join("bundle"), &out, "0");
        let peaks: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
        let running_at: Arc<Mutex<Option<Duration>>> = Arc::default();
        let t = Instant::now();
        let sampler = {
            let (c, peaks, running_at) = (c.clone(), peaks.clone(), running_at.clone());
            tokio::spawn(async move {
                let d = c.doubles.as_ref().expect("the bench runs on the doubles");
                loop {
                    for name in d.api.pod_names("default") {
                        let component = d
                            .api
                            .pod("default", &name)
                            .and_then(|p| p.metadata.labels?.get("component").cloned())
                            .unwrap_or_default();
                        let Some(pid) = d.kubelet.pid("default", &name) else { continue };
                        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                        let hwm = status
                            .lines()
                            .find_map(|l| l.strip_prefix("VmHWM:"))
                            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                            .unwrap_or(0);
                        let mut p = peaks.lock().unwrap();
                        let e = p.entry(component).or_default();
                        *e = (*e).max(hwm);
                    }
                    for cm in d.api.object_names("configmaps", "default") {
                        let state = d
                            .api
                            .object("configmaps", "default", &cm)
                            .and_then(|v| v["data"]["state"].as_str().map(str::to_owned));
                        if state.as_deref() == Some("RUNNING") {
                            running_at.lock().unwrap().get_or_insert(t.elapsed());
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        };
        let o = c.yf(&["submit", &local(&bundle)]).await;
        let finished = t.elapsed();
        sampler.abort();
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(output_lines(&out), support::expected_output());
        let d = c.doubles.as_ref().unwrap();
        let calls = d.api.calls();
        let total: u64 = calls.values().sum();
        let running = running_at.lock().unwrap().map_or("?".into(), |r| format!("{:.3}", r.as_secs_f64()));
        let peaks = peaks.lock().unwrap();
        eprintln!(
            "FIGURE run {run}: submit->RUNNING {running} s, ->FINISHED {:.3} s; API calls {total} ({} pods created); \
             peak RSS JobManager {:.1} MB, TaskManager {:.1} MB",
            finished.as_secs_f64(),
            calls.get("POST pods").copied().unwrap_or(0) + 1,
            peaks.get("jobmanager").copied().unwrap_or(0) as f64 / 1024.0,
            peaks.get("taskmanager").copied().unwrap_or(0) as f64 / 1024.0,
        );
        eprintln!("FIGURE run {run}: calls {calls:?}");
    }
}

/// An `hdfs://` archive: the JobManager downloads it into its blob store and
/// the TaskManagers fetch it from there. The bundle exists nowhere else (its
/// local dir is removed before submit), so a TaskManager that looked for it
/// on disk would fail the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_on_hdfs_reaches_the_task_managers_through_the_blob_store() {
    let c = Cluster::start(8000, 16).await;
    if c.doubles.is_none() {
        return; // the HDFS double is local
    }
    let hdfs = integration_tests::hdfs_double::HdfsDouble::start().await.unwrap();
    let out = c.root().join("out");
    let dir = support::two_vertex_bundle(&c.root().join("bundle"), &out, "0");
    let archive = c.root().join("bundle.tar.gz");
    let tar =
        std::process::Command::new("tar").arg("-czf").arg(&archive).arg("-C").arg(&dir).arg(".").status().unwrap();
    assert!(tar.success());
    std::fs::remove_dir_all(&dir).unwrap();
    let client = hdfs_native::ClientBuilder::new().with_url(hdfs.url()).build().unwrap();
    let opts = hdfs_native::WriteOptions { create_parent: true, ..Default::default() };
    let mut w = client.create("/jobs/two-sizes.tar.gz", opts).await.unwrap();
    w.write_bytes(bytes::Bytes::from(std::fs::read(&archive).unwrap())).await.unwrap();
    w.close().await.unwrap();
    std::fs::remove_file(&archive).unwrap();

    let url = format!("{}/jobs/two-sizes.tar.gz", hdfs.url());
    let o = c.yf(&["submit", &url]).await;
    assert!(o.status.success(), "{}\n{}", text(&o), c.logs());
    assert_eq!(output_lines(&out), support::expected_output());
    let fetched = c.full_logs("taskmanager").matches("fetched the job bundle").count();
    assert!(fetched >= 2, "each TaskManager fetched the bundle from the JobManager's blob store\n{}", c.logs());
    c.assert_nothing_left().await;

    let missing = format!("{}/jobs/none.tar.gz", hdfs.url());
    let o = c.yf(&["submit", &missing]).await;
    assert!(!o.status.success());
    assert!(text(&o).contains("none.tar.gz does not exist"), "{}", text(&o));
    c.assert_nothing_left().await;
}

/// A bundle from the submitting machine's disk: packed into the bundle
/// ConfigMap, checked by the JobManager against the SHA-256 in the contract,
/// and fetched by the TaskManagers from its blob store. Too large for a
/// ConfigMap, it is refused before anything is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_from_the_client_disk_goes_through_a_config_map() {
    let c = Cluster::start(8000, 16).await;
    let out = c.root().join("out");
    let dir = support::two_vertex_bundle(&c.root().join("bundle"), &out, "0");
    let o = c.yf(&["submit", dir.to_str().unwrap()]).await;
    assert!(o.status.success(), "{}\n{}", text(&o), c.logs());
    assert_eq!(output_lines(&out), support::expected_output());
    if c.doubles.is_some() {
        let fetched = c.full_logs("taskmanager").matches("fetched the job bundle").count();
        assert!(fetched >= 2, "the TaskManagers fetched it from the JobManager\n{}", c.logs());
    }
    c.assert_nothing_left().await;

    // A sink to a relative path would write into the pod's copy of the bundle: refused up front.
    let relative = support::bundle(
        &c.root().join("relative"),
        "[[vertex]]\nname = \"src\"\nparallelism = 1\nshell = \"echo x\"\n\
         [[vertex]]\nname = \"out\"\nparallelism = 1\nsink = { type = \"text\", path = \"out\" }\n\
         [[edge]]\nfrom = \"src\"\nto = \"out\"\npartitioning = \"forward\"\n",
        &[],
    );
    let o = c.yf(&["submit", relative.to_str().unwrap()]).await;
    assert!(!o.status.success());
    assert!(text(&o).contains("relative path") && text(&o).contains("hdfs://"), "{}", text(&o));
    c.assert_nothing_left().await;

    // 1.1 MB that does not compress.
    let big = c.root().join("big");
    std::fs::create_dir_all(&big).unwrap();
    std::fs::copy(dir.join("job.toml"), big.join("job.toml")).unwrap();
    let mut noise = vec![0u8; 1_100_000];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in &mut noise {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(big.join("data.bin"), noise).unwrap();
    let o = c.yf(&["submit", big.to_str().unwrap()]).await;
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("a ConfigMap can carry") && t.contains("local://") && t.contains("hdfs://"), "{t}");
    c.assert_nothing_left().await;
}
