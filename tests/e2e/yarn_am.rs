//! The YARN ApplicationMaster end to end: the IPC ResourceManager and
//! NodeManager doubles, `yarn-flink appmaster` started as the AM container
//! through the NodeManager double (binary and bundle localized from a temp
//! dir as `file://` resources), TaskManagers started by the AM in containers
//! of the NodeManager double, as real processes.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use am::drivers::yarn::contract::{self, AmContract, ClusterShape, LocalResourceEntry, Mode, CONTRACT_LINK};
use common::launch::YARN_SECRET_ALIAS;
use common::rpc::AppSecret;
use hadoop::credentials::Credentials;
use hadoop::yarn::{
    ApplicationAttemptId, ApplicationId, ContainerId, ContainerLaunchContext, LocalResource, LocalResourceType,
    LocalResourceVisibility, NodeId, Resource, YarnUrl,
};
use integration_tests::hadoop_ipc_server::launcher::{
    ContainerExit, ContainerLauncher, LaunchedContainer, LauncherConfig,
};
use integration_tests::hadoop_ipc_server::sasl::SecretManager;
use integration_tests::hadoop_ipc_server::yarn::{NodeManager, ResourceManager, RmConfig};
use integration_tests::hadoop_ipc_server::{self as server, ServerConfig, ServerHandle};

const SUCCEEDED: i32 = 1;
const FAILED: i32 = 2;

fn attempt() -> ApplicationAttemptId {
    ApplicationAttemptId { application: ApplicationId { cluster_timestamp: 1795750141222, id: 1 }, attempt: 1 }
}

/// One RM, one NM that really launches containers, and a staging dir.
struct MiniYarn {
    tmp: tempfile::TempDir,
    rm: Arc<ResourceManager>,
    launcher: Arc<ContainerLauncher>,
    secret: AppSecret,
    _servers: (ServerHandle, ServerHandle),
}

/// A Kerberized HDFS the containers use (its NameNode, as `localhost:<port>`).
struct SecureHdfs {
    namenode_port: u16,
}

/// What an AM container gets beyond the secret and its AMRMToken.
#[derive(Default)]
struct AmExtras {
    /// The HDFS delegation token a submission would have obtained.
    hdfs_token: Option<hadoop::credentials::Token>,
    /// `submit --keytab`: (keytab, principal).
    keytab: Option<(PathBuf, String)>,
}

impl MiniYarn {
    async fn start(maximum_allocation: Resource) -> Self {
        Self::start_with(maximum_allocation, None).await
    }

    async fn start_with(maximum_allocation: Resource, secure: Option<SecureHdfs>) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let secrets = SecretManager::random();
        let nm = Arc::new(NodeManager::default());
        let nm_server = server::start(
            ServerConfig::default()
                .with_sasl(secrets.digest_md5())
                .with_handler(hadoop::yarn::nm::PROTOCOL, nm.clone()),
        )
        .await
        .unwrap();
        let node = NodeId { host: "127.0.0.1".into(), port: i32::from(nm_server.addr().port()) };
        let rm = ResourceManager::new(
            RmConfig {
                attempt: attempt(),
                minimum_allocation: Resource::new(128, 1),
                maximum_allocation,
                nodes: vec![node.clone()],
                node_http_addresses: Vec::new(),
                containers_per_allocate: 8,
                finish_pending_calls: 1,
                capacity: None,
            },
            secrets.clone(),
        );
        let rm_server = server::start(
            ServerConfig::default()
                .with_sasl(secrets.digest_md5())
                .with_handler(hadoop::yarn::amrm::PROTOCOL, rm.clone()),
        )
        .await
        .unwrap();
        let conf_dir = tmp.path().join("conf");
        std::fs::create_dir_all(&conf_dir).unwrap();
        std::fs::write(
            conf_dir.join("yarn-site.xml"),
            format!(
                "<configuration><property><name>yarn.resourcemanager.scheduler.address</name>\
                 <value>{}</value></property></configuration>",
                rm_server.addr()
            ),
        )
        .unwrap();
        let mut config = LauncherConfig::new(tmp.path().join("nm"), node);
        if let Some(h) = &secure {
            // The cluster's own configuration, as a Kerberized cluster has it.
            let prop = |k: &str, v: String| format!("<property><name>{k}</name><value>{v}</value></property>");
            let core = [
                prop("fs.defaultFS", format!("hdfs://localhost:{}", h.namenode_port)),
                prop("hadoop.security.authentication", "kerberos".into()),
            ];
            std::fs::write(conf_dir.join("core-site.xml"), format!("<configuration>{}</configuration>", core.concat()))
                .unwrap();
            let hdfs = prop("dfs.namenode.kerberos.principal", "nn/_HOST@YARNFLINK.TEST".into());
            std::fs::write(conf_dir.join("hdfs-site.xml"), format!("<configuration>{hdfs}</configuration>")).unwrap();
            // The nodes' krb5.conf: the test KDC's.
            config.env.push(("KRB5_CONFIG".into(), std::env::var("KRB5_CONFIG").unwrap()));
        }
        config.env.push(("HADOOP_CONF_DIR".into(), conf_dir.display().to_string()));
        config.env.push(("RUST_LOG".into(), "info".into()));
        config.stop_grace = Duration::from_secs(2);
        let launcher = ContainerLauncher::new(config);
        nm.attach(launcher.clone(), Some(rm.clone()));
        Self { tmp, rm, launcher, secret: AppSecret::generate(), _servers: (nm_server, rm_server) }
    }

    /// A local resource for `path` with its real modification time.
    /// The application's staging dir (`YF_STAGING_DIR`): made here, removed by the AM.
    fn staging_dir(&self) -> std::path::PathBuf {
        let dir = self.tmp.path().join("staging").join("application_1795750141222_0001");
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    fn resource(path: &Path) -> LocalResource {
        let meta = std::fs::metadata(path).unwrap();
        let mtime = meta.modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        LocalResource {
            url: YarnUrl { scheme: "file".into(), file: path.display().to_string(), ..Default::default() },
            size: meta.len() as i64,
            timestamp: mtime,
            kind: LocalResourceType::File,
            visibility: LocalResourceVisibility::Application,
            pattern: None,
        }
    }

    /// Starts `yarn-flink appmaster` in container 1, as the RM would after a
    /// submission: the binary packed as the client packs it, the contract file.
    fn launch_am(&self, mode: &str, bundle: Option<&Path>, shape: &ClusterShape) -> LaunchedContainer {
        self.launch_am_with(mode, bundle, shape, AmExtras::default())
    }

    fn launch_am_with(
        &self,
        mode: &str,
        bundle: Option<&Path>,
        shape: &ClusterShape,
        extras: AmExtras,
    ) -> LaunchedContainer {
        let archive = self.tmp.path().join("yarn-flink.tar.gz");
        if !archive.exists() {
            let status = std::process::Command::new("tar")
                .args(["-czf"])
                .arg(&archive)
                .arg("-C")
                .arg(Path::new(env!("CARGO_BIN_EXE_yarn-flink")).parent().unwrap())
                .arg("yarn-flink")
                .status()
                .unwrap();
            assert!(status.success());
        }
        let mut binary = Self::resource(&archive);
        binary.kind = LocalResourceType::Archive;
        let mut tm_resources = BTreeMap::from([("yarn-flink".to_string(), binary)]);
        if let Some(b) = bundle {
            tm_resources.insert("bundle".to_string(), Self::resource(b));
        }
        let c = AmContract {
            version: contract::CONTRACT_VERSION,
            mode: if mode == "session" { Mode::Session } else { Mode::Application },
            bundle: bundle.map(|_| "bundle".to_string()),
            staging_dir: Some(format!("file://{}", self.staging_dir().display())),
            local_resources: tm_resources.iter().map(|(k, r)| (k.clone(), LocalResourceEntry::from_yarn(r))).collect(),
            cluster: shape.clone(),
            keytab_login: extras.keytab.as_ref().map(|(_, principal)| contract::KeytabLogin {
                principal: principal.clone(),
                keytab: contract::KEYTAB_LINK.into(),
            }),
            max_attempts: 1,
        };
        let contract_file = self.staging_dir().join(CONTRACT_LINK);
        std::fs::write(&contract_file, c.to_json()).unwrap();
        let mut resources = tm_resources;
        resources.insert(CONTRACT_LINK.to_string(), Self::resource(&contract_file));
        if let Some((keytab, _)) = &extras.keytab {
            resources.insert(contract::KEYTAB_LINK.to_string(), Self::resource(keytab));
        }
        let mut tokens = vec![(String::new(), self.rm.amrm_token())];
        tokens.extend(extras.hdfs_token.map(|t| (t.service.clone(), t)));
        let creds = Credentials {
            tokens,
            secrets: vec![(YARN_SECRET_ALIAS.into(), self.secret.to_hex().into_bytes())],
            ..Default::default()
        };
        let mut environment = contract::am_environment(None, None).unwrap();
        environment.insert("APP_SUBMIT_TIME_ENV".to_string(), "1795750141300".to_string());
        let ctx = ContainerLaunchContext {
            local_resources: resources,
            environment,
            commands: vec![contract::am_command()],
            tokens: creds.to_bytes(),
        };
        self.launcher.launch(ContainerId { attempt: attempt(), id: 1 }, &ctx).unwrap()
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for c in self.launcher.launched() {
            for name in ["appmaster.err", "taskmanager.err", "prelaunch.err"] {
                if let Ok(t) = std::fs::read_to_string(c.log_dir.join(name)) {
                    let tail: Vec<&str> = t.lines().rev().take(40).collect();
                    out +=
                        &format!("---- {} {name}\n{}\n", c.id, tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
                }
            }
        }
        out
    }

    fn tracking_url(&self) -> Option<String> {
        self.rm.state.lock().unwrap().registered_as.as_ref().map(|r| r.2.clone())
    }
}

fn shape() -> ClusterShape {
    ClusterShape {
        sizing: "fit".into(),
        tm_slots: 1,
        heartbeat_interval: Duration::from_millis(200),
        heartbeat_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(2),
        ..ClusterShape::default()
    }
}

/// A bundle whose `out` dir exists before it is "uploaded", so the sink's
/// writes do not change the bundle directory's timestamp (the NodeManager
/// checks it, as Hadoop does).
/// Each vertex in a group of its own (not the default group), so the job
/// needs three TaskManagers of two shapes.
fn two_size_bundle(dir: &Path, gen_sleep: &str) -> PathBuf {
    let toml = format!(
        "[job]\nname = \"two-sizes\"\n\
         [[vertex]]\nname = \"gen\"\nparallelism = 2\nslot_sharing_group = \"gen\"\nresources = {{ cpu = 0.5, memory = \"256m\" }}\n\
         shell = \"sleep {gen_sleep}; for i in 1 2 3; do printf 'k%s\\\\t%s\\\\n' $i $YF_SUBTASK_INDEX; done\"\n\
         [[vertex]]\nname = \"sink\"\nparallelism = 1\nslot_sharing_group = \"sink\"\nresources = {{ cpu = 2, memory = \"2g\" }}\n\
         sink = {{ type = \"text\", path = \"out\" }}\n\
         [[edge]]\nfrom = \"gen\"\nto = \"sink\"\npartitioning = \"hash\"\n"
    );
    let b = support::bundle(dir, &toml, &[]);
    std::fs::create_dir_all(b.join("out")).unwrap();
    b
}

fn expected_two_size_output() -> Vec<String> {
    let mut v: Vec<String> = (1..=3).flat_map(|i| (0..2).map(move |s| format!("k{i}\t{s}"))).collect();
    v.sort();
    v
}

/// Polls the AM's REST API with the application secret.
async fn rest_get(url: &str, secret: &AppSecret) -> Option<serde_json::Value> {
    let http = common::http::client_builder().ok()?.timeout(Duration::from_secs(5)).build().ok()?;
    let r = http.get(url).bearer_auth(secret.to_hex()).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

async fn wait_until<T>(limit: Duration, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Peak RSS (VmHWM, kB) of the `yarn-flink` process among `pid` and its
/// descendants (the container's bash runs it as a child), under `key`.
fn peak_rss(pid: u32, key: &str, into: &mut BTreeMap<String, u64>) {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return };
    let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string());
    if field("Name:").as_deref() == Some("yarn-flink") {
        let hwm = field("VmHWM:").and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok()).unwrap_or(0);
        let e = into.entry(key.to_string()).or_default();
        *e = (*e).max(hwm);
    }
    if let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            peak_rss(c, key, into);
        }
    }
}

async fn wait_exit(am: &mut LaunchedContainer, limit: Duration, yarn: &MiniYarn) -> ContainerExit {
    match tokio::time::timeout(limit, am.wait()).await {
        Ok(e) => e,
        Err(_) => panic!("the AM did not exit within {limit:?}\n{}", yarn.logs()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_mode_runs_a_job_on_containers_of_two_sizes() {
    let yarn = MiniYarn::start(Resource::new(8192, 8)).await;
    let bundle = two_size_bundle(&yarn.tmp.path().join("bundle"), "1");
    let t0 = Instant::now();
    let mut am = yarn.launch_am("application", Some(&bundle), &shape());

    // Figures: AM registered, all three TaskManagers registered, peak RSS.
    let url = wait_until(Duration::from_secs(30), "the AM to register", async || yarn.tracking_url()).await;
    let registered = t0.elapsed();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let mut rss: BTreeMap<String, u64> = BTreeMap::new();
    let mut all_tms = None;
    let mut job_running = None;
    while am.exited().is_none() {
        for c in yarn.launcher.running() {
            if let Some(pid) = yarn.launcher.pid(&c) {
                peak_rss(pid, &if c.id == 1 { "am".to_string() } else { format!("tm {c}") }, &mut rss);
            }
        }
        if all_tms.is_none() {
            if let Some(v) = rest_get(&format!("{url}taskmanagers"), &yarn.secret).await {
                if v["taskmanagers"].as_array().is_some_and(|a| a.len() >= 3) {
                    all_tms = Some(t0.elapsed());
                }
            }
        }
        if job_running.is_none() {
            if let Some(v) = rest_get(&format!("{url}jobs/overview"), &yarn.secret).await {
                if v["jobs"].as_array().is_some_and(|a| a.iter().any(|j| j["state"] == "RUNNING")) {
                    job_running = Some(t0.elapsed());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let exit = wait_exit(&mut am, Duration::from_secs(60), &yarn).await;
    let total = t0.elapsed();
    eprintln!(
        "FIGURES application: AM registered {registered:?}, job RUNNING {job_running:?}, 3 TaskManagers registered \
         {all_tms:?}, AM exited (job done, unregistered) {total:?}, peak RSS kB {rss:?}"
    );
    assert_eq!(exit.exit_status, 0, "AM exit {exit:?}\n{}", yarn.logs());
    assert_eq!(support::output_lines(&bundle.join("out")), expected_two_size_output());
    let staging = yarn.tmp.path().join("staging").join("application_1795750141222_0001");
    assert!(!staging.exists(), "the AM removes its application's staging dir once unregistered");

    let state = yarn.rm.state.lock().unwrap();
    assert_eq!(state.final_status, Some(SUCCEEDED), "{:?}", state.final_diagnostics);
    assert!(state.unregistered && state.finish_calls >= 2, "finish repeated until unregistered");
    // Two shapes, each under its own priority and allocation request id.
    let asked: BTreeSet<(i32, i64, Resource)> =
        state.asks_seen.iter().filter(|a| a.3 > 0).map(|a| (a.0, a.1, a.2.clone())).collect();
    let sizes: BTreeSet<Resource> = asked.iter().map(|a| a.2.clone()).collect();
    assert_eq!(sizes, BTreeSet::from([Resource::new(256, 1), Resource::new(2048, 2)]), "{asked:?}");
    assert_eq!(asked.iter().map(|a| a.1).collect::<BTreeSet<_>>().len(), 2, "{asked:?}");
    assert_eq!(asked.iter().map(|a| a.0).collect::<BTreeSet<_>>().len(), 2, "{asked:?}");
    let mut got: Vec<Resource> = state.allocated_seen.iter().map(|a| a.2.clone()).collect();
    got.sort();
    assert_eq!(got, vec![Resource::new(256, 1), Resource::new(256, 1), Resource::new(2048, 2)]);
    assert_eq!(state.last_progress, Some(1.0));
    drop(state);
    assert!(yarn.launcher.running().is_empty(), "every container is gone: {:?}", yarn.launcher.running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_task_manager_container_is_replaced_and_the_job_finishes() {
    let yarn = MiniYarn::start(Resource::new(8192, 8)).await;
    let bundle = two_size_bundle(&yarn.tmp.path().join("bundle"), "3");
    let mut am = yarn.launch_am("application", Some(&bundle), &shape());
    let url = wait_until(Duration::from_secs(30), "the AM to register", async || yarn.tracking_url()).await;
    wait_until(Duration::from_secs(30), "three TaskManagers", async || {
        let v = rest_get(&format!("{url}taskmanagers"), &yarn.secret).await?;
        (v["taskmanagers"].as_array()?.len() >= 3).then_some(())
    })
    .await;
    let am_id = ContainerId { attempt: attempt(), id: 1 };
    let victim = yarn.launcher.running().into_iter().find(|c| *c != am_id).unwrap();
    let before = yarn.launcher.launched().len();
    assert!(yarn.launcher.kill(&victim));

    let exit = wait_exit(&mut am, Duration::from_secs(90), &yarn).await;
    assert_eq!(exit.exit_status, 0, "AM exit {exit:?}\n{}", yarn.logs());
    assert_eq!(support::output_lines(&bundle.join("out")), expected_two_size_output());
    assert!(
        yarn.launcher.exits().iter().any(|e| e.id == victim && e.exit_status == 137),
        "{:?}",
        yarn.launcher.exits()
    );
    assert!(yarn.launcher.launched().len() > before, "a replacement container was started");
    assert_eq!(yarn.rm.state.lock().unwrap().final_status, Some(SUCCEEDED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_above_the_maximum_allocation_fails_the_job_quickly_and_clearly() {
    let yarn = MiniYarn::start(Resource::new(1024, 1)).await;
    let bundle = two_size_bundle(&yarn.tmp.path().join("bundle"), "0");
    let t0 = Instant::now();
    let mut am = yarn.launch_am("application", Some(&bundle), &shape());
    let exit = wait_exit(&mut am, Duration::from_secs(30), &yarn).await;
    eprintln!("FIGURES oversized ask: AM exit after {:?}", t0.elapsed());
    assert_eq!(exit.exit_status, 1, "{}", yarn.logs());
    let state = yarn.rm.state.lock().unwrap();
    assert_eq!(state.final_status, Some(FAILED));
    let diagnostics = state.final_diagnostics.clone().unwrap_or_default();
    // The limit by its YARN name, its figures and the fix (issue 14: messages read alike on every backend).
    assert!(diagnostics.contains("larger than the largest container YARN hands out (1 cpu, 1024 MB)"), "{diagnostics}");
    assert!(diagnostics.contains("yarn.scheduler.maximum-allocation-mb"), "{diagnostics}");
    assert!(state.asks_seen.iter().all(|a| a.2.memory_mb <= 1024), "nothing above the maximum was asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode_takes_a_job_over_rest_and_stops_on_delete_cluster() {
    let yarn = MiniYarn::start(Resource::new(8192, 8)).await;
    let bundle = two_size_bundle(&yarn.tmp.path().join("bundle"), "0");
    let mut am = yarn.launch_am("session", None, &shape());
    let url = wait_until(Duration::from_secs(30), "the AM to register", async || yarn.tracking_url()).await;
    let http = common::http::client_builder().unwrap().build().unwrap();
    let submitted: serde_json::Value = http
        .post(format!("{url}jobs"))
        .bearer_auth(yarn.secret.to_hex())
        .json(&serde_json::json!({ "bundle": bundle }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = submitted["jobid"].as_str().unwrap_or_else(|| panic!("{submitted}")).to_string();
    let state = wait_until(Duration::from_secs(60), "the session's job to end", async || {
        let v = rest_get(&format!("{url}jobs/{job}"), &yarn.secret).await?;
        let s = v["state"].as_str()?.to_string();
        matches!(s.as_str(), "FINISHED" | "FAILED" | "CANCELED").then_some(s)
    })
    .await;
    assert_eq!(state, "FINISHED", "{}", yarn.logs());
    assert_eq!(support::output_lines(&bundle.join("out")), expected_two_size_output());
    assert!(am.exited().is_none(), "the session stays up after its job");

    let r = http.delete(format!("{url}cluster")).bearer_auth(yarn.secret.to_hex()).send().await.unwrap();
    assert!(r.status().is_success());
    let exit = wait_exit(&mut am, Duration::from_secs(30), &yarn).await;
    assert_eq!(exit.exit_status, 0, "{}", yarn.logs());
    assert_eq!(yarn.rm.state.lock().unwrap().final_status, Some(SUCCEEDED));
}

/// Issue 13: with `--keytab`, the AM logs in from the shipped keytab and
/// obtains fresh HDFS delegation tokens before the submitted one expires; its
/// TaskManagers get them. A job that runs past the first token's expiry still
/// writes to (and commits on) a Kerberized HDFS. Without the keytab the same
/// job fails with the NameNode's "is expired", which is what the first half
/// guards against.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_am_with_a_keytab_keeps_hdfs_tokens_fresh_past_the_first_one_s_expiry() {
    use integration_tests::hdfs_double::tokens::TokenLifetimes;
    use integration_tests::hdfs_double::{HdfsDouble, HdfsDoubleConfig, HdfsSecurity};
    let kdc = integration_tests::kdc::TestKdc::start().unwrap();
    // A 6 s renew interval stands for the NameNode's 24 h: the AM obtains tokens every 4.5 s, so
    // one round (keytab login, get, renew) may take up to 1.5 s on a loaded machine.
    let lifetimes = TokenLifetimes { renew_interval: Duration::from_secs(6), max_lifetime: Duration::from_secs(600) };
    let security = HdfsSecurity { nn_keytab: kdc.keytab("nn"), lifetimes };
    let hdfs =
        HdfsDouble::start_with(HdfsDoubleConfig { security: Some(security), ..Default::default() }).await.unwrap();
    let port = hdfs.namenode_addr().port();
    let alice = integration_tests::kdc::TestKdc::principal("alice");

    for with_keytab in [true, false] {
        let yarn = MiniYarn::start_with(Resource::new(8192, 8), Some(SecureHdfs { namenode_port: port })).await;
        let conf = hadoop::conf::HadoopConf::load_dir(&yarn.tmp.path().join("conf")).unwrap();
        let login = hadoop::kerberos::KerberosLogin::from_keytab(&kdc.keytab("alice"), &alice).unwrap();
        // What `submit` obtains: a token the RM would renew (here nobody does).
        let token = hadoop::hdfs::delegation::obtain_for_default_fs(&conf, &login, "rm/localhost@YARNFLINK.TEST")
            .await
            .unwrap()
            .unwrap();
        let out = format!("/out-{with_keytab}");
        let toml = format!(
            "[job]\nname = \"outlives-its-token\"\nrestart = {{ strategy = \"none\" }}\n\
             [[vertex]]\nname = \"gen\"\nparallelism = 1\n\
             shell = \"sleep 8; printf 'a\\\\tb\\\\n'\"\n\
             [[vertex]]\nname = \"sink\"\nparallelism = 1\n\
             sink = {{ type = \"text\", path = \"hdfs://localhost:{port}{out}\" }}\n\
             [[edge]]\nfrom = \"gen\"\nto = \"sink\"\npartitioning = \"forward\"\n"
        );
        let bundle = support::bundle(&yarn.tmp.path().join("bundle"), &toml, &[]);
        let extras =
            AmExtras { hdfs_token: Some(token), keytab: with_keytab.then(|| (kdc.keytab("alice"), alice.clone())) };
        let t0 = Instant::now();
        let mut am = yarn.launch_am_with("application", Some(&bundle), &shape(), extras);
        let exit = wait_exit(&mut am, Duration::from_secs(60), &yarn).await;
        eprintln!("with keytab {with_keytab}: the AM exited after {:?}", t0.elapsed());
        let state = yarn.rm.state.lock().unwrap();
        if with_keytab {
            assert_eq!(exit.exit_status, 0, "AM exit {exit:?}\n{}", yarn.logs());
            assert_eq!(state.final_status, Some(SUCCEEDED), "{:?}\n{}", state.final_diagnostics, yarn.logs());
            let parts: Vec<String> =
                hdfs.paths().into_iter().filter(|p| p.starts_with(&format!("{out}/part-"))).collect();
            assert_eq!(parts.len(), 1, "{:?}", hdfs.paths());
            assert_eq!(hdfs.read(&parts[0]).unwrap(), b"a\tb\n");
            assert!(yarn.logs().contains("fresh HDFS delegation tokens obtained"), "{}", yarn.logs());
            // The running TaskManager got them over the control plane (not only new containers).
            let tm_logs: String = yarn
                .launcher
                .launched()
                .iter()
                .filter(|c| c.id.id != 1)
                .filter_map(|c| std::fs::read_to_string(c.log_dir.join("taskmanager.err")).ok())
                .collect();
            assert!(tm_logs.contains("HDFS delegation tokens replaced"), "{tm_logs}");
        } else {
            assert_eq!(state.final_status, Some(FAILED), "{}", yarn.logs());
            let why = format!("{:?}", state.final_diagnostics);
            assert!(why.contains("is expired"), "the job fails on the expired token: {why}\n{}", yarn.logs());
        }
    }
}
