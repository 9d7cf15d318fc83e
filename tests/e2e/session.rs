//! Session mode on the local backend: start, submit, list, status, cancel,
//! authentication, stop.

mod support;

use std::io::{Read, Write};

use std::time::Duration;

use support::*;

/// `GET path` at `addr` with a bearer token: (status line, body).
fn http_get(addr: &str, path: &str, bearer: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bearer}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    (head.lines().next().unwrap_or("").to_owned(), body.to_owned())
}

/// Each TaskManager's own `/metrics` page, read with `bearer`, parsed as
/// Prometheus parses it: (its REST entry, the page, the parse).
fn task_manager_metrics(addr: &str, bearer: &str) -> Vec<(serde_json::Value, String, prometheus_parse::Scrape)> {
    let (_, body) = http_get(addr, "/taskmanagers", bearer);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let tms = v["taskmanagers"].as_array().cloned().unwrap_or_default();
    assert!(!tms.is_empty(), "{body}");
    tms.into_iter()
        .map(|t| {
            let at = t["metricsAddress"].as_str().unwrap_or_else(|| panic!("no metricsAddress: {t}")).to_owned();
            assert!(http_get(&at, "/metrics", "0123").0.contains("401"), "{at}: a wrong token is refused");
            let (status, page) = http_get(&at, "/metrics", bearer);
            assert!(status.contains("200"), "{at}: {status} {page}");
            let parsed = prometheus_parse::Scrape::parse(page.lines().map(|l| Ok(l.to_owned())))
                .unwrap_or_else(|e| panic!("{e}: {page}"));
            assert!(page.trim_end().ends_with("# EOF"), "OpenMetrics: {page}");
            (t, page, parsed)
        })
        .collect()
}

fn sample(parsed: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    parsed
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .and_then(|s| match s.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
}

fn http_status(addr: &str, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.lines().next().unwrap_or("").to_owned()
}

#[test]
fn a_session_takes_jobs_until_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path();
    let work = tmp.path().join("work");
    let o = run(state, &["session", "start", "--work-dir", work.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let addr = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let started = String::from_utf8_lossy(&o.stderr).into_owned();
    let ui_url = started
        .lines()
        .find_map(|l| l.strip_prefix("Web UI: "))
        .unwrap_or_else(|| panic!("session start names its web UI: {started}"))
        .to_owned();

    let quick = bundle(
        &tmp.path().join("quick"),
        "[[vertex]]\nname = \"a\"\nshell = \"echo hi\"\n[[vertex]]\nname = \"s\"\nsink = { type = \"text\", path = \"out\" }\n[[edge]]\nfrom = \"a\"\nto = \"s\"\npartitioning = \"forward\"\n",
        &[],
    );
    for _ in 0..2 {
        let o = run(state, &["run", "-m", &addr, quick.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
    }
    assert_eq!(output_lines(&quick.join("out")), vec!["hi"]);
    // Final counts come with each attempt's final state: one record, 3 bytes, a -> s.
    let jobs = text(&run(state, &["list", "-m", &addr]));
    let quick_job = jobs.split_whitespace().next().unwrap_or_default().to_owned();
    let o = run(state, &["status", "-m", &addr, &quick_job]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    let (a, s) = (&v["vertices"][0]["subtasks"][0]["metrics"], &v["vertices"][1]["subtasks"][0]["metrics"]);
    assert_eq!((a["write-records"].as_u64(), a["write-bytes"].as_u64()), (Some(1), Some(3)), "{v}");
    assert_eq!((s["read-records"].as_u64(), s["read-bytes"].as_u64()), (Some(1), Some(3)), "{v}");

    // An uploaded bundle: the TaskManagers fetch it from the session by content
    // and run its program from their own copy.
    let shipped = bundle(
        &tmp.path().join("shipped"),
        "[[vertex]]\nname = \"a\"\ncommand = [\"./hello.sh\"]\n",
        &[("hello.sh", "#!/bin/sh\ntest -f job.toml && echo from-the-blob >&2\n")],
    );
    let o = run(state, &["run", "-m", &addr, "--upload", shipped.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let fetched: Vec<_> = std::fs::read_dir(work.join("taskmanagers"))
        .unwrap()
        .flatten()
        .filter_map(|tm| std::fs::read_dir(tm.path().join("bundles")).ok())
        .flatten()
        .flatten()
        .collect();
    assert!(!fetched.is_empty(), "a TaskManager must have fetched the uploaded bundle");

    let slow = bundle(&tmp.path().join("slow"), "[[vertex]]\nname = \"a\"\nshell = \"sleep 60\"\n", &[]);
    let o = run(state, &["run", "-m", &addr, "--detached", slow.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let job = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let running = wait_for(Duration::from_secs(20), "the slow job to run", || {
        let o = run(state, &["status", "-m", &addr, &job]);
        text(&o).contains("\"RUNNING\": 1").then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    });
    // Each subtask says where it runs (Flink's subtask details).
    let v: serde_json::Value = serde_json::from_str(&running).unwrap();
    let sub = &v["vertices"][0]["subtasks"][0];
    assert_eq!(sub["status"], "RUNNING", "{running}");
    assert_eq!(sub["host"], "127.0.0.1", "{running}");
    // Live counts from the TaskManager's heartbeats: `sleep 60` has written nothing yet.
    let counted = wait_for(Duration::from_secs(20), "the slow job's counts", || {
        let o = run(state, &["status", "-m", &addr, &job]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        let m = v["vertices"][0]["subtasks"][0]["metrics"].clone();
        m.is_object().then_some(m)
    });
    assert_eq!(counted["write-records"], 0, "{counted}");
    assert!(sub["taskmanager-id"].as_str().is_some_and(|t| !t.is_empty()), "{running}");
    web_ui_shows_the_session(state, &addr, &ui_url, &quick_job, &job);
    let o = run(state, &["cancel", "-m", &addr, &job]);
    assert!(o.status.success(), "{}", text(&o));
    wait_for(Duration::from_secs(20), "the slow job to be canceled", || {
        let o = run(state, &["status", "-m", &addr, &job]);
        text(&o).contains("\"state\": \"CANCELED\"").then_some(())
    });
    let list = text(&run(state, &["list", "-m", &addr]));
    assert_eq!(list.matches("FINISHED").count(), 3, "{list}");
    assert_eq!(list.matches("CANCELED").count(), 1, "{list}");

    // Unknown jobs and missing credentials are refused with a clear answer.
    let o = run(state, &["status", "-m", &addr, "00000000000000000000000000000000"]);
    assert!(!o.status.success() && text(&o).contains("unknown"), "{}", text(&o));
    assert!(http_status(&addr, "GET /overview HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").contains("401"));
    let wrong = tmp.path().join("wrong-secret");
    std::fs::write(&wrong, "00112233").unwrap();
    let o = run(state, &["list", "-m", &addr, "--secret-file", wrong.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("401"), "{}", text(&o));

    // Issue 13: `logs -m` reads each TaskManager's log through the session's API.
    let o = run(state, &["logs", "--list", "-m", &addr]);
    assert!(o.status.success(), "{}", text(&o));
    let listed = String::from_utf8_lossy(&o.stdout).into_owned();
    let tm = listed.lines().next().and_then(|l| l.split('\t').next()).unwrap_or_else(|| panic!("{listed}")).to_owned();
    assert!(listed.contains(&format!("/taskmanagers/{tm}/log")), "{listed}");
    let o = run(state, &["logs", "-m", &addr, "--container", &tm]);
    assert!(o.status.success(), "{}", text(&o));
    let logs = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(logs.starts_with(&format!("==> {tm} on {addr}: taskmanager log <==")), "{logs}");
    assert!(logs.contains("registered with the ResourceManager") && logs.contains("deploying task"), "{logs}");
    let o = run(state, &["logs", "-m", &addr, "--container", "tm-nope"]);
    assert!(!o.status.success() && text(&o).contains("no TaskManager tm-nope"), "{}", text(&o));

    // Issue 15: /metrics, parsed as a Prometheus server parses it, says what the REST API says.
    let secret = std::fs::read_to_string(session_secret(state, &addr)).unwrap();
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            secret.trim()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        buf.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()
    };
    let page = get("/metrics");
    let parsed = prometheus_parse::Scrape::parse(page.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let value = |name: &str| match parsed.samples.iter().find(|s| s.metric == name).map(|s| &s.value) {
        Some(prometheus_parse::Value::Gauge(v))
        | Some(prometheus_parse::Value::Counter(v))
        | Some(prometheus_parse::Value::Untyped(v)) => *v,
        other => panic!("{name}: {other:?} in\n{page}"),
    };
    let listed = o_taskmanagers(&get("/taskmanagers"));
    assert_eq!(value("flink_jobmanager_numRegisteredTaskManagers"), listed.0 as f64, "{page}");
    assert_eq!(value("flink_jobmanager_taskSlotsTotal"), listed.1 as f64, "{page}");
    assert_eq!(value("flink_jobmanager_numRunningJobs"), 0.0, "{page}");
    let restarts: Vec<_> = parsed.samples.iter().filter(|s| s.metric == "flink_jobmanager_job_numRestarts").collect();
    assert_eq!(restarts.len(), 4, "one per job: {page}");
    assert!(page.trim_end().ends_with("# EOF"), "OpenMetrics: {page}");
    // Every TaskManager's own page says what the REST API says of it.
    for (tm, page, parsed) in task_manager_metrics(&addr, secret.trim()) {
        let slots = sample(&parsed, "yarn_flink_taskmanager_slots_total", &[]);
        assert_eq!(slots, tm["slotsNumber"].as_f64(), "{tm}\n{page}");
        let cpu = sample(&parsed, "yarn_flink_taskmanager_cpu_millis_total", &[]);
        assert_eq!(cpu, tm["totalResource"]["cpuCores"].as_f64().map(|c| c * 1000.0), "{tm}\n{page}");
        assert_eq!(sample(&parsed, "flink_taskmanager_numRunningTasks", &[]), Some(0.0), "{page}");
    }

    let o = run(state, &["session", "stop", "-m", &addr]);
    assert!(o.status.success(), "{}", text(&o));
    wait_for(Duration::from_secs(20), "the session and its TaskManagers to exit", || {
        processes_mentioning(work.to_str().unwrap()).is_empty().then_some(())
    });
}

/// Issue 15: the web UI, in a real browser, while `running` runs: what the
/// REST API says, read with the read-only token the URL carries, and nothing
/// that changes the cluster.
fn web_ui_shows_the_session(state: &std::path::Path, addr: &str, ui_url: &str, finished: &str, running: &str) {
    let token = ui_url.split_once("#token=").map(|(_, t)| t.to_owned()).unwrap_or_else(|| panic!("{ui_url}"));
    let secret = std::fs::read_to_string(session_secret(state, addr)).unwrap();
    assert!(!token.contains(secret.trim()) && token.len() == 64, "a derived token, not the secret: {ui_url}");
    let req = |method: &str, path: &str, bearer: &str| {
        http_status(addr, &format!("{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bearer}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
    };
    // The page needs no credentials (it holds no data); the API does.
    assert!(http_status(addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").contains("200"));
    assert!(req("GET", "/jobs/overview", &token).contains("200"));
    assert!(req("GET", &format!("/jobs/{running}"), &token).contains("200"));
    for (method, path) in
        [("PATCH", format!("/jobs/{running}?mode=cancel")), ("DELETE", "/cluster".into()), ("GET", "/blobs/00".into())]
    {
        assert!(req(method, &path, &token).contains("403"), "{method} {path} with the read-only token");
    }
    assert!(req("PATCH", &format!("/jobs/{running}?mode=cancel"), "0123").contains("401"));
    // The running subtask is on one TaskManager's own /metrics, which the UI's token reads.
    let pages = task_manager_metrics(addr, &token);
    let labels = [("job_id", running), ("task_name", "a"), ("subtask_index", "0")];
    let on: Vec<_> = pages
        .iter()
        .filter(|(_, _, p)| sample(p, "flink_taskmanager_job_task_numRecordsOut", &labels).is_some())
        .collect();
    assert_eq!(on.len(), 1, "{:?}", pages.iter().map(|(_, page, _)| page).collect::<Vec<_>>());
    assert_eq!(sample(&on[0].2, "flink_taskmanager_job_task_numRecordsOut", &labels), Some(0.0));
    assert_eq!(sample(&on[0].2, "flink_taskmanager_numRunningTasks", &[]), Some(1.0), "{}", on[0].1);

    let Some(browser) = support::browser_dir() else { return };
    // Screenshots to look at, in the target dir (outside the clone).
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-ui");
    std::fs::create_dir_all(&shots).unwrap();
    for name in ["overview", "job", "taskmanager"] {
        let _ = std::fs::remove_file(shots.join(format!("{name}.png")));
    }
    let o = std::process::Command::new("node")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/web_ui.js"))
        .args([ui_url, running])
        .arg(&shots)
        .env("NODE_PATH", browser.join("node_modules"))
        .output()
        .expect("node runs (scripts/install-deps installs it)");
    assert!(o.status.success(), "the browser run failed: {}", text(&o));
    let seen: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["hashAfterLoad"], "#/", "the token leaves the address bar: {seen}");
    let jobs = seen["jobs"].as_array().unwrap();
    let row = |id: &str| {
        jobs.iter().find(|r| r[0].as_str().is_some_and(|c| id.starts_with(c))).unwrap_or_else(|| panic!("{id}: {seen}"))
    };
    assert_eq!(jobs.len(), 4, "{seen}");
    assert_eq!(row(finished)[2], "FINISHED", "{seen}");
    assert_eq!(row(running)[2], "RUNNING", "{seen}");
    assert!(!seen["taskmanagers"].as_array().unwrap().is_empty(), "{seen}");
    assert_eq!(seen["vertices"], serde_json::json!(["a"]), "{seen}");
    let sub = &seen["subtasks"][0];
    assert_eq!(
        (sub[0].as_str(), sub[3].as_str(), sub[4].as_str()),
        (Some("a"), Some("RUNNING"), Some("127.0.0.1")),
        "{seen}"
    );
    assert_eq!(sub[8], "0", "records out of `sleep 60`: {seen}");
    assert!(seen["log"].as_str().unwrap_or("").contains("deploying task"), "{seen}");
    assert_eq!(seen["reloaded"], true, "{seen}");
    assert!(seen["withoutToken"].as_str().unwrap_or("").contains("401"), "{seen}");
    for name in ["overview", "job", "taskmanager"] {
        let png = std::fs::read(shots.join(format!("{name}.png"))).unwrap_or_default();
        assert!(png.starts_with(b"\x89PNG"), "{name}.png saved in {}", shots.display());
    }
    eprintln!("web UI screenshots: {}", shots.display());
}

/// Issue 14: a 3 MB `.tar.gz` of gigabytes of zeros filled the disk twice
/// over (the session unpacked it, then each TaskManager). Now the session
/// refuses it while unpacking, names the limit and its flag, and keeps
/// nothing; an upload larger than the limit is refused before it is stored.
#[test]
fn a_session_refuses_bundles_over_its_limits_and_keeps_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path();
    let work = tmp.path().join("work");
    let o = run(state, &["session", "start", "--work-dir", work.to_str().unwrap(), "--bundle-max-size", "1m"]);
    assert!(o.status.success(), "{}", text(&o));
    let addr = String::from_utf8_lossy(&o.stdout).trim().to_owned();

    // 64 MiB of zeros: about 64 KiB compressed, well under the upload limit.
    let bomb = tmp.path().join("bomb.tgz");
    zeros_bomb(&bomb, 64 << 20);
    let o = run(state, &["run", "-m", &addr, "--upload", bomb.to_str().unwrap()]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("more than 1 MiB") && t.contains("--bundle-max-size"), "{t}");

    // Larger than the limit as sent: the client says so before sending it...
    let big = tmp.path().join("big.tgz");
    let noise: Vec<u8> = (0..(2u32 << 20)).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    std::fs::write(&big, &noise).unwrap();
    let o = run(state, &["run", "-m", &addr, "--upload", big.to_str().unwrap()]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("limit of 1 MiB") && t.contains("--bundle-max-size"), "{t}");
    // ...and the session refuses it before storing it, from the declared length or as it streams in.
    let secret = std::fs::read_to_string(session_secret(state, &addr)).unwrap();
    let head = |len: usize| {
        format!(
            "POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/gzip\r\n\
             Content-Length: {len}\r\nConnection: close\r\n\r\n",
            secret.trim()
        )
    };
    assert!(http_status(&addr, &head(noise.len())).contains("413"), "a declared length over the limit");
    let chunked = format!(
        "POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/gzip\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        secret.trim()
    );
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(chunked.as_bytes()).unwrap();
    for piece in noise.chunks(256 << 10) {
        if s.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .and_then(|_| s.write_all(piece))
            .and_then(|_| s.write_all(b"\r\n"))
            .is_err()
        {
            break; // the session stopped reading: it answered already
        }
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "a stream over the limit: {answer}");

    // Nothing of either is left: no blob, no unpacked bundle.
    let kept: Vec<_> = walk(&work)
        .into_iter()
        .filter(|p| {
            let s = p.to_string_lossy();
            s.contains("/blobs/") || s.contains("/bundle-") || s.contains("zeros")
        })
        .collect();
    assert!(kept.is_empty(), "left on disk: {kept:?}");

    // And the session still takes a bundle within its limits.
    let ok = bundle(&tmp.path().join("ok"), "[[vertex]]\nname = \"a\"\nshell = \"true\"\n", &[]);
    let o = run(state, &["run", "-m", &addr, "--upload", ok.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));

    let o = run(state, &["session", "stop", "-m", &addr]);
    assert!(o.status.success(), "{}", text(&o));
    wait_for(Duration::from_secs(20), "the session and its TaskManagers to exit", || {
        processes_mentioning(work.to_str().unwrap()).is_empty().then_some(())
    });
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// Where `session start` saved the session's secret (under YARN_FLINK_HOME).
fn session_secret(state: &std::path::Path, addr: &str) -> std::path::PathBuf {
    state.join("sessions").join(addr.replace([':', '/'], "_")).join("secret")
}

/// (TaskManagers, their slots) from `/taskmanagers`.
fn o_taskmanagers(body: &str) -> (usize, u64) {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let tms = v["taskmanagers"].as_array().cloned().unwrap_or_default();
    (tms.len(), tms.iter().map(|t| t["slotsNumber"].as_u64().unwrap_or(0)).sum())
}
