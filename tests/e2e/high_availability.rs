//! ZooKeeper high availability on local sessions (issue 11), against a real
//! ZooKeeper server (Debian's package) on loopback: the leader `kill -9`ed,
//! ZooKeeper restarted, and the leader cut off from ZooKeeper while it keeps
//! running. Every scenario checks the job's output against what a clean run
//! writes, and that nothing is left running after `session stop`.

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use integration_tests::zookeeper::{TcpProxy, TestZooKeeper};
use support::*;

/// Short enough for quick failovers, long enough for a loaded 2-core CI machine.
const SESSION_TIMEOUT: &str = "2s";

/// A job long enough to be killed in the middle: `read` deals 3,000 numbers
/// to two `work` subtasks, which wait a while and then double them into the sink.
fn slow_bundle(dir: &Path, out: &Path, wait: &str) -> PathBuf {
    let numbers: String = (1..=3000).map(|i| format!("{i}\n")).collect();
    let toml = format!(
        "[job]\nname = \"ha-slow\"\n\
         [[vertex]]\nname = \"read\"\nparallelism = 1\nsource = {{ type = \"text\", path = \"input\" }}\n\
         [[vertex]]\nname = \"work\"\nparallelism = 2\nshell = \"sleep {wait}; awk '{{ print $1 * 2 }}'\"\n\
         [[vertex]]\nname = \"write\"\nparallelism = 2\nsink = {{ type = \"text\", path = \"{}\" }}\n\
         [[edge]]\nfrom = \"read\"\nto = \"work\"\npartitioning = \"rebalance\"\n\
         [[edge]]\nfrom = \"work\"\nto = \"write\"\npartitioning = \"forward\"\n",
        out.display()
    );
    bundle(dir, &toml, &[("input/numbers.txt", &numbers)])
}

/// What a clean run of [`slow_bundle`] writes, sorted.
fn clean_output() -> Vec<String> {
    let mut v: Vec<String> = (1..=3000).map(|i: u64| (i * 2).to_string()).collect();
    v.sort();
    v
}

fn http(addr: &str, method: &str, path: &str, bearer: &str) -> Option<(String, String)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bearer}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    Some((head.lines().next().unwrap_or("").to_owned(), body.to_owned()))
}

fn secret_hex(state: &Path, addr: &str) -> String {
    let dir = state.join("sessions").join(addr.replace([':', '/'], "_"));
    std::fs::read_to_string(dir.join("secret")).unwrap().trim().to_owned()
}

/// The job's state as the session's current leader reports it (None while no one serves).
fn job_state(addr: &str, bearer: &str, job: &str) -> Option<String> {
    let (status, body) = http(addr, "GET", &format!("/jobs/{job}"), bearer)?;
    if !status.contains("200") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["state"].as_str().map(str::to_owned)
}

fn running_subtasks(addr: &str, bearer: &str, job: &str) -> u64 {
    let Some((_, body)) = http(addr, "GET", &format!("/jobs/{job}"), bearer) else { return 0 };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["vertices"].as_array().into_iter().flatten().map(|x| x["tasks"]["RUNNING"].as_u64().unwrap_or(0)).sum()
}

/// Resource ids of the TaskManagers the current leader knows.
fn task_manager_ids(addr: &str, bearer: &str) -> Vec<(String, String)> {
    let Some((_, body)) = http(addr, "GET", "/taskmanagers", bearer) else { return Vec::new() };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["taskmanagers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t["id"].as_str()?.to_owned(), t["path"].as_str()?.to_owned())))
        .collect()
}

/// The pid whose session log says it leads.
fn leader_pid(started: &str) -> u32 {
    wait_for(Duration::from_secs(20), "a process to lead", || leader_pid_excluding(started, &[]))
}

struct HaSession {
    state: PathBuf,
    work: PathBuf,
    addr: String,
    bearer: String,
    started: String,
}

fn start_session(tmp: &Path, zk_url: &str, standby: u32) -> HaSession {
    let state = tmp.join("state");
    let work = tmp.join("work");
    let o = cmd(&state)
        .env("YF_TM_REGISTRATION_TIMEOUT", "15s")
        .args(["session", "start", "--ha", zk_url, "--standby", &standby.to_string()])
        .args(["--ha-session-timeout", SESSION_TIMEOUT, "--ha-storage-dir"])
        .arg(tmp.join("ha"))
        .arg("--work-dir")
        .arg(&work)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let addr = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let bearer = secret_hex(&state, &addr);
    HaSession { state, work, addr, bearer, started: String::from_utf8_lossy(&o.stderr).into_owned() }
}

fn submit(s: &HaSession, bundle: &Path) -> String {
    let o = run(&s.state, &["run", "-m", &s.addr, "--detached", bundle.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn wait_running(s: &HaSession, job: &str) {
    wait_for(Duration::from_secs(30), "the job's subtasks to run", || {
        (running_subtasks(&s.addr, &s.bearer, job) >= 2).then_some(())
    });
}

fn wait_finished(s: &HaSession, job: &str) {
    let state = wait_for(Duration::from_secs(90), "the job to end under a leader", || {
        job_state(&s.addr, &s.bearer, job).filter(|st| matches!(st.as_str(), "FINISHED" | "FAILED" | "CANCELED"))
    });
    assert_eq!(state, "FINISHED", "job {job}");
}

/// `session stop`, then nothing of the session (its processes, their TaskManagers) may be left.
fn stop_and_check_nothing_left(s: &HaSession) {
    let o = run(&s.state, &["session", "stop", "-m", &s.addr]);
    assert!(o.status.success(), "{}", text(&o));
    let needle = s.work.display().to_string();
    wait_for(Duration::from_secs(30), "every process of the session to end", || {
        processes_mentioning(&needle).is_empty().then_some(())
    });
    let state = s.state.display().to_string();
    wait_for(Duration::from_secs(30), "every session process to end", || {
        processes_mentioning(&state).is_empty().then_some(())
    });
}

#[test]
fn a_killed_leader_is_replaced_by_a_standby_that_finishes_the_job() {
    let zk = TestZooKeeper::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let job_dir = slow_bundle(&tmp.path().join("job"), &out, "2");
    let s = start_session(tmp.path(), &zk.url("yf-kill"), 1);
    let job = submit(&s, &job_dir);
    wait_running(&s, &job);
    let before: Vec<String> = task_manager_ids(&s.addr, &s.bearer).into_iter().map(|(id, _)| id).collect();
    assert!(!before.is_empty());
    let leader = leader_pid(&s.started);
    signal(leader, libc::SIGKILL);
    let killed = Instant::now();
    // The standby serves the same address once elected, and recovers the job.
    wait_for(Duration::from_secs(30), "the standby to run the recovered job", || {
        (job_state(&s.addr, &s.bearer, &job).as_deref() == Some("RUNNING")).then_some(())
    });
    eprintln!("leader killed -> job RUNNING again under the standby: {:?}", killed.elapsed());
    // The old leader's TaskManagers reconnected to the new one (none was lost).
    let after: Vec<String> = wait_for(Duration::from_secs(20), "the TaskManagers to re-register", || {
        let ids: Vec<String> = task_manager_ids(&s.addr, &s.bearer).into_iter().map(|(id, _)| id).collect();
        before.iter().all(|b| ids.contains(b)).then_some(ids)
    });
    assert!(before.iter().all(|b| after.contains(b)), "before {before:?}, after {after:?}");
    wait_finished(&s, &job);
    assert_eq!(output_lines(&out), clean_output());
    assert!(out.join("_SUCCESS").is_file());
    stop_and_check_nothing_left(&s);
    assert!(!tmp.path().join("ha").join("default").exists(), "the session's HA data is removed at stop");
}

#[test]
fn a_job_survives_a_zookeeper_restart() {
    let mut zk = TestZooKeeper::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let job_dir = slow_bundle(&tmp.path().join("job"), &out, "3");
    let s = start_session(tmp.path(), &zk.url("yf-restart"), 1);
    let job = submit(&s, &job_dir);
    wait_running(&s, &job);
    zk.restart().unwrap();
    wait_finished(&s, &job);
    assert_eq!(output_lines(&out), clean_output());
    // A finished job is not run again by later leaders: its result is kept.
    let results = tmp.path().join("ha/default/job-result-store").join(format!("{job}.json"));
    assert!(results.is_file(), "{}", results.display());
    stop_and_check_nothing_left(&s);
}

/// One `session serve` process of an HA session, started as `session start --ha` starts them.
fn serve_process(s: &HaSession, tmp: &Path, zk_url: &str, port: &str, log: &str) -> Guard {
    let log = std::fs::File::create(tmp.join(log)).unwrap();
    let child = cmd(&s.state)
        .env("YF_TM_REGISTRATION_TIMEOUT", "10s")
        .env("YF_SESSION_PORT", port)
        .env("YF_SESSION_SECRET_FILE", s.state.join("secret"))
        .args(["session", "serve", "--ha", zk_url, "--ha-session-timeout", SESSION_TIMEOUT, "--ha-storage-dir"])
        .arg(tmp.join("ha"))
        .arg("--work-dir")
        .arg(&s.work)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Guard(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_zookeeper_steps_down_and_its_commands_are_refused() {
    use common::ids::{AllocationId, JobId, JobMasterId, ResourceId, ResourceManagerId, SlotId};
    use common::protocol::RequestSlot;
    use common::rpc::{AppSecret, Channels, RpcTimeouts};

    let zk = TestZooKeeper::start().unwrap();
    let proxy = TcpProxy::start(format!("127.0.0.1:{}", zk.port).parse().unwrap()).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let job_dir = slow_bundle(&tmp.path().join("job"), &out, "2");
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let secret = AppSecret::generate();
    secret.write_to(&state.join("secret")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let sdir = state.join("sessions").join(addr.replace(':', "_"));
    std::fs::create_dir_all(&sdir).unwrap();
    std::fs::copy(state.join("secret"), sdir.join("secret")).unwrap();
    let bearer = secret_hex(&state, &addr);
    let s = HaSession { state, work: tmp.path().join("work"), addr, bearer, started: String::new() };
    // The leader reaches ZooKeeper through the proxy (and so do its TaskManagers); the standby directly.
    let proxied = format!("zookeeper://{}/yf-cut", proxy.address);
    let _leader = serve_process(&s, tmp.path(), &proxied, &port.to_string(), "leader.log");
    let locator = common::ha::HaLocator::parse(&zk.url("yf-cut"), "default", Duration::from_secs(2)).unwrap();
    let mut retrieval = common::ha::LeaderRetrieval::start(locator);
    let first = retrieval.leader(Duration::from_secs(30)).await.expect("a leader is elected");
    let _standby = serve_process(&s, tmp.path(), &zk.url("yf-cut"), &port.to_string(), "standby.log");
    let (job, bearer) = (submit(&s, &job_dir), s.bearer.clone());
    let (a, j) = (s.addr.clone(), job.clone());
    tokio::task::spawn_blocking(move || {
        wait_for(Duration::from_secs(30), "the job's subtasks to run", || {
            (running_subtasks(&a, &bearer, &j) >= 2).then_some(())
        })
    })
    .await
    .unwrap();
    let old_tms = task_manager_ids(&s.addr, &s.bearer);
    assert!(!old_tms.is_empty());

    proxy.cut();
    // The standby is elected once the cut-off leader's session expires; by
    // then the old leader has stepped down.
    let mut current = retrieval.current.clone();
    let second = tokio::time::timeout(
        Duration::from_secs(30),
        current.wait_for(|l| l.as_ref().is_some_and(|l| l.session_id != first.session_id)),
    )
    .await
    .expect("the standby takes over")
    .unwrap()
    .clone()
    .unwrap();
    let leader_log = std::fs::read_to_string(tmp.path().join("leader.log")).unwrap();
    assert!(leader_log.contains("lost leadership: stepping down"), "{leader_log}");

    // The old leader's TaskExecutors take nothing from it any more.
    let channels = Channels::new(secret.clone(), RpcTimeouts::default());
    for (id, address) in &old_tms {
        let req = RequestSlot {
            rm_id: ResourceManagerId(first.session_id),
            slot_id: SlotId { resource_id: ResourceId::new(id.clone()), index: 0 },
            allocation_id: AllocationId::random(),
            job_id: JobId::random(),
            profile: common::resources::ResourceProfile::new(100, 1 << 20),
            job_master_address: first.rpc_address.clone(),
            job_master_id: JobMasterId::random(),
        };
        let answer = channels.task_executor_gateway(address).unwrap().request_slot(&req).await;
        let err = answer.expect_err("a deposed leader's RequestSlot is refused");
        assert!(err.to_string().contains("leader"), "{err}");
    }
    assert_ne!(second.session_id, first.session_id);

    let (a, b, j) = (s.addr.clone(), s.bearer.clone(), job.clone());
    let state = tokio::task::spawn_blocking(move || {
        wait_for(Duration::from_secs(90), "the job to end under the new leader", || {
            job_state(&a, &b, &j).filter(|st| matches!(st.as_str(), "FINISHED" | "FAILED" | "CANCELED"))
        })
    })
    .await
    .unwrap();
    assert_eq!(state, "FINISHED");
    assert_eq!(output_lines(&out), clean_output());
    tokio::task::spawn_blocking(move || stop_and_check_nothing_left(&s)).await.unwrap();
    drop(proxy);
}

fn dir_bytes(p: &Path) -> u64 {
    if p.is_file() {
        return p.metadata().map(|m| m.len()).unwrap_or(0);
    }
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(
                    |e| {
                        if e.path().is_dir() {
                            dir_bytes(&e.path())
                        } else {
                            e.metadata().map(|m| m.len()).unwrap_or(0)
                        }
                    },
                )
                .sum()
        })
        .unwrap_or(0)
}

/// `scripts/bench-ha`: the time from the leader's `kill -9` to the job RUNNING
/// again under a standby, and the bytes a job keeps in the HA storage dir.
#[test]
#[ignore = "a benchmark: scripts/bench-ha"]
fn bench_figures() {
    let runs: u32 = std::env::var("YF_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let timeout = std::env::var("YF_BENCH_HA_SESSION_TIMEOUT").unwrap_or_else(|_| "1s".into());
    let zk = TestZooKeeper::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let job_dir = slow_bundle(&tmp.path().join("job"), &out, "1");
    let state = tmp.path().join("state");
    let o = cmd(&state)
        .env("YF_TM_REGISTRATION_TIMEOUT", "30s")
        .args(["session", "start", "--ha", &zk.url("bench"), "--standby", &runs.to_string()])
        .args(["--ha-session-timeout", &timeout, "--ha-storage-dir"])
        .arg(tmp.path().join("ha"))
        .arg("--work-dir")
        .arg(tmp.path().join("work"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let addr = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let s = HaSession {
        bearer: secret_hex(&state, &addr),
        state,
        work: tmp.path().join("work"),
        addr,
        started: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    let ha = tmp.path().join("ha").join("default");
    let mut times = Vec::new();
    let mut killed_pids = Vec::new();
    for _ in 0..runs {
        let job = submit(&s, &job_dir);
        wait_running(&s, &job);
        let running_bytes = dir_bytes(&ha.join("jobgraphs"));
        let leader =
            wait_for(Duration::from_secs(30), "a new leader", || leader_pid_excluding(&s.started, &killed_pids));
        signal(leader, libc::SIGKILL);
        killed_pids.push(leader);
        let t = Instant::now();
        wait_for(Duration::from_secs(30), "RUNNING under the next leader", || {
            (job_state(&s.addr, &s.bearer, &job).as_deref() == Some("RUNNING")).then_some(())
        });
        times.push(t.elapsed().as_secs_f64());
        wait_finished(&s, &job);
        assert_eq!(output_lines(&out), clean_output());
        let result = dir_bytes(&ha.join("job-result-store").join(format!("{job}.json")));
        println!("FIGURE HA storage while running: {running_bytes} B (job graph record); result kept: {result} B");
    }
    times.sort_by(f64::total_cmp);
    println!(
        "FIGURE leader kill -9 -> job RUNNING again (session timeout {timeout}, {runs} runs): min {:.2} s, median {:.2} s, max {:.2} s",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1]
    );
    let upload = submit_upload(&s, &job_dir);
    wait_running(&s, &upload);
    println!(
        "FIGURE HA storage while an uploaded job runs: {} B (record + bundle)",
        dir_bytes(&ha) - dir_bytes(&ha.join("job-result-store"))
    );
    wait_finished(&s, &upload);
    stop_and_check_nothing_left(&s);
}

fn submit_upload(s: &HaSession, bundle: &Path) -> String {
    let o = run(&s.state, &["run", "-m", &s.addr, "--upload", "--detached", bundle.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// The leading process, among those `session start` started, not yet killed.
fn leader_pid_excluding(started: &str, killed: &[u32]) -> Option<u32> {
    let pids: Vec<u32> = started
        .lines()
        .find_map(|l| l.split("(pids ").nth(1))
        .map(|p| p.split(')').next().unwrap_or("").split(' ').filter_map(|x| x.parse().ok()).collect())?;
    let logs: Vec<PathBuf> =
        started.lines().find_map(|l| l.strip_prefix("logs: ")).map(|l| l.split(' ').map(PathBuf::from).collect())?;
    logs.iter().zip(&pids).filter(|(_, p)| !killed.contains(p)).find_map(|(l, p)| {
        let t = std::fs::read_to_string(l).ok()?;
        // A process that led and stepped down re-executes itself: the last word counts.
        (t.rfind("leading the session") > t.rfind("contending for leadership")).then_some(*p)
    })
}

#[test]
fn bad_ha_settings_are_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let o = run(&state, &["session", "start", "--ha", "http://127.0.0.1:2181/x"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("zookeeper://host:port"), "{}", text(&o));
    // Nothing listens on this port: the quorum is named, and nothing is left running.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("zookeeper://127.0.0.1:{closed}/x");
    let o = run(&state, &["session", "start", "--ha", &url, "--ha-session-timeout", "1s"]);
    assert!(!o.status.success());
    assert!(text(&o).contains(&format!("cannot reach ZooKeeper at 127.0.0.1:{closed}")), "{}", text(&o));
    let nn = format!("hdfs://127.0.0.1:{closed}/ha");
    let o = run(&state, &["session", "start", "--ha", &url, "--ha-storage-dir", &nn]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--ha-storage-dir") && text(&o).contains("unreachable"), "{}", text(&o));
    let o = run(&state, &["session", "start", "--standby", "2"]);
    assert!(!o.status.success(), "--standby without --ha");
    assert!(processes_mentioning(&state.display().to_string()).is_empty());
}
