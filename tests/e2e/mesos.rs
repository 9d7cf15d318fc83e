//! Sessions on Mesos (issue 12), end to end: the real binary against the Mesos
//! master double (`integration_tests::mesos_double`), whose agents run the
//! TaskManager tasks as local processes. The double follows the v1 scheduler
//! API documentation; no capture exists (docs/mesos.md: *unverified*).

mod support;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use integration_tests::mesos_double::{AgentSpec, MasterConfig, MesosMaster};
use support::*;

async fn master(tmp: &Path, refused_roles: &[&str]) -> MesosMaster {
    let agents =
        (1..=2).map(|i| AgentSpec { id: format!("agent-{i}"), cpus: 4.0, mem_mb: 4096.0, gpus: 0.0 }).collect();
    let config = MasterConfig {
        agents,
        work_root: tmp.join("agents"),
        refused_roles: refused_roles.iter().map(|r| r.to_string()).collect(),
    };
    MesosMaster::start(config).await.unwrap()
}

async fn yf(state: &Path, args: &[&str]) -> Output {
    let mut c = cmd(state);
    c.env("YF_TM_REGISTRATION_TIMEOUT", "10s").args(args);
    tokio::process::Command::from(c).output().await.unwrap()
}

async fn session(tmp: &Path, m: &MesosMaster) -> String {
    let work = tmp.join("work");
    let o = yf(
        &tmp.join("state"),
        &["session", "start", "--target", "mesos", "--master", &m.url(), "--work-dir", work.to_str().unwrap()],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

async fn stop(tmp: &Path, addr: &str, m: &MesosMaster) {
    let o = yf(&tmp.join("state"), &["session", "stop", "-m", addr]).await;
    assert!(o.status.success(), "{}", text(&o));
    let needle = tmp.display().to_string();
    let start = Instant::now();
    while !processes_mentioning(&needle).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "left running: {:?}", processes_mentioning(&needle));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    m.state(|s| assert!(s.unacknowledged.is_empty(), "every status update was acknowledged: {:?}", s.unacknowledged));
}

fn launched(m: &MesosMaster) -> usize {
    m.state(|s| s.tasks.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heterogeneous_job_then_five_session_jobs_run_on_mesos_tasks() {
    let tmp = tempfile::tempdir().unwrap();
    let m = master(tmp.path(), &[]).await;
    let t = Instant::now();
    let addr = session(tmp.path(), &m).await;
    eprintln!("session on Mesos up (subscribed, REST serving): {:?}", t.elapsed());
    let out = tmp.path().join("out");
    let bundle = two_vertex_bundle(&tmp.path().join("job"), &out, "0");
    let state = tmp.path().join("state");
    let t = Instant::now();
    let o = yf(&state, &["run", "-m", &addr, bundle.to_str().unwrap()]).await;
    assert!(o.status.success(), "{}", text(&o));
    eprintln!("first job on Mesos, end to end: {:?}", t.elapsed());
    assert_eq!(output_lines(&out), expected_output());
    // Two sizes, each a task sized to its vertices (gen 2 x 0.5 cpu, sink 2 cpu in one slot).
    let sizes: Vec<(f64, f64)> = m.state(|s| s.tasks.values().map(|t| (t.res_cpus(), t.res_mem())).collect());
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    for i in 0..5 {
        let t = Instant::now();
        let o = yf(&state, &["run", "-m", &addr, bundle.to_str().unwrap()]).await;
        assert!(o.status.success(), "job {i}: {}", text(&o));
        eprintln!("session job {} on Mesos, end to end: {:?}", i + 2, t.elapsed());
        assert_eq!(output_lines(&out), expected_output());
    }
    assert!(launched(&m) <= 4, "the session's TaskManagers are reused, not relaunched per job: {}", launched(&m));
    stop(tmp.path(), &addr, &m).await;
    m.state(|s| assert!(s.calls.contains(&"TEARDOWN".to_string()), "{:?}", s.calls));
    m.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_task_manager_task_is_replaced_and_a_master_failover_keeps_the_tasks() {
    let tmp = tempfile::tempdir().unwrap();
    let m = master(tmp.path(), &[]).await;
    let addr = session(tmp.path(), &m).await;
    let out = tmp.path().join("out");
    let bundle = two_vertex_bundle(&tmp.path().join("job"), &out, "2");
    let state = tmp.path().join("state");
    let run = {
        let (state, addr, b) = (state.clone(), addr.clone(), bundle.clone());
        tokio::spawn(async move { yf(&state, &["run", "-m", &addr, b.to_str().unwrap()]).await })
    };
    let start = Instant::now();
    while m.state(|s| s.tasks.values().filter(|t| t.state == "TASK_RUNNING").count()) < 2 {
        assert!(start.elapsed() < Duration::from_secs(30), "no running tasks");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The master fails over: the stream drops; the framework subscribes again with its id.
    m.drop_stream();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subscribes = m.state(|s| s.calls.iter().filter(|c| *c == "SUBSCRIBE").count());
    assert!(subscribes >= 2, "resubscribed: {subscribes}");
    assert_eq!(m.state(|s| s.tasks.values().filter(|t| t.state == "TASK_RUNNING").count()), 2, "tasks kept");
    // A TaskManager task dies mid-job.
    let pid = m.state(|s| s.tasks.values().find(|t| t.state == "TASK_RUNNING").and_then(|t| t.pid)).unwrap();
    signal(pid, libc::SIGKILL);
    let o = run.await.unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(output_lines(&out), expected_output(), "identical output after the restart");
    assert!(launched(&m) >= 3, "a replacement task was launched");
    m.state(|s| assert!(s.tasks.values().any(|t| t.state == "TASK_FAILED"), "the killed task failed"));
    stop(tmp.path(), &addr, &m).await;
    m.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_no_agent_fits_fails_the_job_naming_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let m = master(tmp.path(), &[]).await;
    let addr = session(tmp.path(), &m).await;
    let bundle = bundle(
        &tmp.path().join("big"),
        "[[vertex]]\nname = \"huge\"\nshell = \"true\"\nresources = { cpu = 16, memory = \"1g\" }\n",
        &[],
    );
    let o = yf(&tmp.path().join("state"), &["run", "-m", &addr, bundle.to_str().unwrap()]).await;
    assert!(!o.status.success());
    assert!(text(&o).contains("the largest Mesos agent offers cpus 4"), "{}", text(&o));
    stop(tmp.path(), &addr, &m).await;
    m.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_mesos_settings_are_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let o =
        yf(&state, &["session", "start", "--target", "mesos", "--master", &format!("http://127.0.0.1:{closed}")]).await;
    assert!(!o.status.success());
    assert!(text(&o).contains("cannot reach the Mesos master") && text(&o).contains("--master"), "{}", text(&o));
    // Something that is not a master: this test's own Mesos double on a wrong path answers 404.
    let m = master(tmp.path(), &["forbidden"]).await;
    let o = yf(&state, &["session", "start", "--target", "mesos", "--master", &format!("{}/not-mesos", m.url())]).await;
    assert!(!o.status.success());
    assert!(text(&o).contains("does not answer as a Mesos master"), "{}", text(&o));
    let o = yf(&state, &["session", "start", "--target", "mesos", "--master", &m.url(), "--role", "forbidden"]).await;
    assert!(!o.status.success());
    assert!(text(&o).contains("refused the framework") && text(&o).contains("--role"), "{}", text(&o));
    let o = yf(&state, &["session", "start", "--target", "mesos"]).await;
    assert!(!o.status.success() && text(&o).contains("--master"), "{}", text(&o));
    assert!(processes_mentioning(&state.display().to_string()).is_empty());
    m.shutdown();
}
