//! Session mode on the local backend: start, submit, list, status, cancel,
//! authentication, stop.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use support::*;

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
    wait_for(Duration::from_secs(20), "the slow job to run", || {
        let o = run(state, &["status", "-m", &addr, &job]);
        text(&o).contains("\"RUNNING\": 1").then_some(())
    });
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

    let o = run(state, &["session", "stop", "-m", &addr]);
    assert!(o.status.success(), "{}", text(&o));
    wait_for(Duration::from_secs(20), "the session and its TaskManagers to exit", || {
        processes_mentioning(work.to_str().unwrap()).is_empty().then_some(())
    });
}
