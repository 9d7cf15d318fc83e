//! End to end on the embedded default: the real `yarn-flink` binary, real
//! TaskManager processes, real failures.

mod support;

use std::time::Duration;

use support::*;

const COUNT_JOB: &str = r#"
[job]
name = "count"
restart = { strategy = "fixed-delay", attempts = 3, delay = "100ms" }

[[vertex]]
name = "gen"
parallelism = 4
shell = "seq 1 50 | sed \"s/^/k$((YF_SUBTASK_INDEX % 2))\t/\""
resources = { cpu = 0.5, memory = "64m" }

[[vertex]]
name = "count"
parallelism = 2
shell = "awk -F '\t' '{ n[$1]++ } END { for (k in n) print k \"\t\" n[k] }'"
resources = { cpu = 1, memory = "128m" }

[[vertex]]
name = "sink"
parallelism = 2
sink = { type = "text", path = "out" }

[[edge]]
from = "gen"
to = "count"
partitioning = "hash"

[[edge]]
from = "count"
to = "sink"
partitioning = "forward"
"#;

#[test]
fn a_job_runs_across_several_task_managers_of_two_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(&tmp.path().join("b"), COUNT_JOB, &[]);
    let work = tmp.path().join("work");
    let o = run(tmp.path(), &["run", "--tm-slots", "2", "--work-dir", work.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("FINISHED"), "{}", text(&o));
    // Issue 15: on a pipe, one progress line per state of the job and nothing
    // else (it printed one per subtask step before: 16 lines for a 0.3 s job).
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let states = ["CREATED", "RUNNING", "FAILING", "FAILED", "CANCELLING", "CANCELED", "FINISHED", "RESTARTING"];
    let progress: Vec<&str> = err.lines().filter(|l| states.iter().any(|s| l.starts_with(&format!("{s} ")))).collect();
    let mut seen = std::collections::BTreeSet::new();
    assert!(progress.iter().all(|l| seen.insert(l.split_whitespace().next())), "a state printed twice:\n{err}");
    assert!(err.lines().count() <= 5, "{err}");
    // Each key was produced by two of the four generators, 50 each.
    assert_eq!(output_lines(&b.join("out")), vec!["k0\t100", "k1\t100"]);
    // Fit sizing: TaskManagers shaped for 0.5 cpu and for 1 cpu slots.
    let mut sizes = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(work.join("taskmanagers")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "log") {
            let log = std::fs::read_to_string(e.path()).unwrap();
            if let Some(line) = log.lines().find(|l| l.contains("TaskExecutor starting")) {
                sizes.insert(line.split("total=").nth(1).unwrap_or("").trim().to_owned());
            }
        }
    }
    assert!(sizes.len() >= 2, "expected TaskManagers of several sizes, saw {sizes:?}");
    assert!(processes_mentioning(work.to_str().unwrap()).is_empty(), "processes left behind");
}

/// A job whose generators wait a little, so a TaskManager can be hurt mid-job.
fn slow_job() -> String {
    COUNT_JOB.replace("shell = \"seq 1 50", "shell = \"sleep 1; seq 1 50")
}

fn run_and_hurt(sig: i32) -> (std::process::Output, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap().keep();
    let b = bundle(&tmp.join("b"), &slow_job(), &[]);
    let work = tmp.join("work");
    let child = cmd(&tmp)
        .args(["run", "--sizing", "fixed", "--tm-slots", "2", "--slot-cpu", "1", "--slot-memory", "128m"])
        .args(["--work-dir", work.to_str().unwrap(), b.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = Guard(child);
    // Wait until tasks run on some TaskManager, then hurt the first one.
    let (pid, id) = wait_for(Duration::from_secs(20), "a TaskManager running tasks", || {
        task_managers(&work).into_iter().find(|(_, id)| {
            std::fs::read_to_string(work.join("taskmanagers").join(format!("{id}.log")))
                .is_ok_and(|l| l.contains("deploying task"))
        })
    });
    signal(pid, sig);
    let out = wait_for(Duration::from_secs(60), "the job to end", || guard.0.try_wait().unwrap());
    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read;
    guard.0.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    guard.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let _ = id;
    let o = std::process::Output { status: out, stdout: stdout.into_bytes(), stderr: stderr.into_bytes() };
    (o, b, work)
}

#[test]
fn a_killed_task_manager_is_replaced_and_the_job_still_succeeds() {
    let (o, b, work) = run_and_hurt(libc::SIGKILL);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("after 1 restart"), "the kill must have cost a restart: {}", text(&o));
    assert_eq!(output_lines(&b.join("out")), vec!["k0\t100", "k1\t100"], "output must equal a clean run's");
    assert!(processes_mentioning(work.to_str().unwrap()).is_empty(), "processes left behind");
}

#[test]
fn a_frozen_task_manager_is_noticed_by_the_heartbeat_timeout() {
    // SIGSTOP: the process stays, so only missed heartbeats can tell.
    let (o, b, work) = run_and_hurt(libc::SIGSTOP);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("after 1 restart"), "the freeze must have cost a restart: {}", text(&o));
    assert_eq!(output_lines(&b.join("out")), vec!["k0\t100", "k1\t100"]);
    // The frozen worker was released (SIGTERM, then SIGKILL after the grace period).
    wait_for(Duration::from_secs(15), "the frozen TaskManager to be gone", || {
        processes_mentioning(work.to_str().unwrap()).is_empty().then_some(())
    });
}

#[test]
fn a_subtask_that_keeps_failing_fails_the_job_and_commits_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let job = r#"
[job]
name = "doomed"
restart = { strategy = "fixed-delay", attempts = 1, delay = "50ms" }
[[vertex]]
name = "gen"
shell = "echo partial; echo 'boom: bad record' >&2; exit 3"
[[vertex]]
name = "sink"
sink = { type = "text", path = "out" }
[[edge]]
from = "gen"
to = "sink"
partitioning = "forward"
"#;
    let b = bundle(&tmp.path().join("b"), job, &[]);
    let work = tmp.path().join("work");
    let o = run(tmp.path(), &["run", "--work-dir", work.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("FAILED"), "{t}");
    assert!(t.contains("boom: bad record"), "the cause must carry the task's stderr: {t}");
    assert!(!b.join("out").join("part-00000").exists(), "a failed job must not commit output");
    assert!(processes_mentioning(work.to_str().unwrap()).is_empty(), "processes left behind");
}

#[test]
fn bad_bundles_fail_clearly_and_start_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, Option<&str>, &[&str])] = &[
        ("missing", None, &["missing"]),
        (
            "typo",
            Some("[[vertex]]\nname = \"a\"\nparalelism = 2\nshell = \"true\"\n"),
            &["paralelism", "parallelism", "job.toml"],
        ),
        (
            "cycle",
            Some(
                "[[vertex]]\nname = \"a\"\nshell = \"cat\"\n[[vertex]]\nname = \"b\"\nshell = \"cat\"\n\
                 [[edge]]\nfrom = \"a\"\nto = \"b\"\npartitioning = \"hash\"\n\
                 [[edge]]\nfrom = \"b\"\nto = \"a\"\npartitioning = \"hash\"\n",
            ),
            &["cycle"],
        ),
        ("nosuchprogram", Some("[[vertex]]\nname = \"a\"\ncommand = [\"./nope.sh\"]\n"), &["nope.sh"]),
    ];
    for (name, spec, needles) in cases {
        let dir = tmp.path().join(name);
        if let Some(spec) = spec {
            bundle(&dir, spec, &[]);
        }
        let work = tmp.path().join(format!("work-{name}"));
        let o = run(tmp.path(), &["run", "--work-dir", work.to_str().unwrap(), dir.to_str().unwrap()]);
        assert!(!o.status.success(), "{name}: must fail");
        let t = text(&o);
        for n in *needles {
            assert!(t.contains(n), "{name}: error should mention `{n}`: {t}");
        }
        assert!(!t.contains("panicked"), "{name}: {t}");
        assert!(!work.join("taskmanagers").exists(), "{name}: nothing may start for a bad bundle");
        assert!(processes_mentioning(work.to_str().unwrap()).is_empty());
    }
}

#[test]
fn relative_bundle_and_work_dir_paths_work() {
    let tmp = tempfile::tempdir().unwrap();
    bundle(
        &tmp.path().join("b"),
        "[[vertex]]\nname = \"a\"\ncommand = [\"./hi.sh\"]\n[[vertex]]\nname = \"s\"\nsink = { type = \"text\", path = \"out\" }\n[[edge]]\nfrom = \"a\"\nto = \"s\"\npartitioning = \"forward\"\n",
        &[("hi.sh", "#!/bin/sh\necho hi\n")],
    );
    let o = cmd(tmp.path()).current_dir(tmp.path()).args(["run", "--work-dir", "work", "b"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(output_lines(&tmp.path().join("b").join("out")), vec!["hi"]);
}

#[test]
fn a_killed_task_manager_leaves_no_subtask_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let job = "[job]\nrestart = { strategy = \"none\" }\n[[vertex]]\nname = \"a\"\ncommand = [\"sleep\", \"60\"]\n";
    let b = bundle(&tmp.path().join("b"), job, &[]);
    let work = tmp.path().join("work");
    let child = cmd(tmp.path())
        .args(["run", "--work-dir", work.to_str().unwrap(), b.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = Guard(child);
    // The subtask's environment names its work dir, under the TaskManager's.
    let (tm, _) = wait_for(Duration::from_secs(20), "the subtask to run", || {
        let tms = task_managers(&work);
        let all = processes_mentioning(work.to_str().unwrap());
        (all.len() > tms.len()).then(|| tms.into_iter().next()).flatten()
    });
    signal(tm, libc::SIGKILL);
    let status = wait_for(Duration::from_secs(30), "the job to fail", || guard.0.try_wait().unwrap());
    assert_eq!(status.code(), Some(1));
    wait_for(Duration::from_secs(10), "no process of the job left", || {
        processes_mentioning(work.to_str().unwrap()).is_empty().then_some(())
    });
}

/// Issue 14: a vertex asking more than this machine has ran without a word.
/// It is refused with the machine's figures, unless `--oversubscribe`.
#[test]
fn a_slot_larger_than_the_machine_fails_the_job_naming_the_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let job =
        "[[vertex]]\nname = \"big\"\nparallelism = 1\nresources = { cpu = 500, memory = \"900g\" }\nshell = \"true\"\n";
    let b = bundle(&tmp.path().join("b"), job, &[]);
    let o = run(tmp.path(), &["run", b.to_str().unwrap()]);
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    let cores = std::thread::available_parallelism().unwrap().get();
    assert!(t.contains("what this machine has") && t.contains(&format!("({cores} cpu,")), "{t}");
    assert!(t.contains("--oversubscribe"), "{t}");
    let o = run(tmp.path(), &["run", "--oversubscribe", b.to_str().unwrap()]);
    assert!(o.status.success(), "on purpose it runs: {}", text(&o));
}

/// Issue 14: a bundle archive is unpacked within `--bundle-max-size`; over
/// it, `run` fails before any process starts and leaves nothing in its work dir.
#[test]
fn a_local_run_refuses_a_bundle_over_the_size_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let bomb = tmp.path().join("bomb.tgz");
    zeros_bomb(&bomb, 8 << 20);
    let work = tmp.path().join("work");
    let w = work.to_str().unwrap();
    let o = run(tmp.path(), &["run", "--work-dir", w, "--bundle-max-size", "4m", bomb.to_str().unwrap()]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("more than 4 MiB") && t.contains("--bundle-max-size"), "{t}");
    assert!(!work.join("bundle").exists(), "the half-unpacked bundle is removed");
    let o = run(tmp.path(), &["run", "--work-dir", w, "--bundle-max-size", "16m", bomb.to_str().unwrap()]);
    assert!(o.status.success(), "within the limit it runs: {}", text(&o));
}
