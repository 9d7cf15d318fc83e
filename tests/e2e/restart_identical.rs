//! Byte-identical restarts (issue 5.3): a word count (built-in source ->
//! tokenizer -> hash -> counter -> built-in sink) runs once cleanly, then
//! several times with a TaskManager killed mid-job. Every hurt run must
//! restart and still commit part files byte for byte equal to the clean run's.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;

/// The tokenizer waits a moment first, so there is a "mid-job" to kill in;
/// the counter sorts (under the C locale) so its output does not depend on
/// the order in which its input channels interleave.
const WORDCOUNT_JOB: &str = r#"
[job]
name = "wordcount-identical"
restart = { strategy = "fixed-delay", attempts = 5, delay = "100ms" }

[[vertex]]
name = "read"
parallelism = 2
source = { type = "text", path = "input" }

[[vertex]]
name = "tokenize"
parallelism = 2
shell = "sleep 1; tr -cs 'A-Za-z0-9' '\n' | tr 'A-Z' 'a-z' | grep -v '^$'"

[[vertex]]
name = "count"
parallelism = 2
shell = "awk '{ n[$0]++ } END { for (w in n) print w \"\t\" n[w] }' | LC_ALL=C sort"

[[vertex]]
name = "write"
parallelism = 2
sink = { type = "text", path = "out" }

[[edge]]
from = "read"
to = "tokenize"
partitioning = "forward"

[[edge]]
from = "tokenize"
to = "count"
partitioning = "hash"

[[edge]]
from = "count"
to = "write"
partitioning = "forward"
"#;

/// A deterministic text of a few thousand lines: Zipf-ish words, mixed case.
fn corpus() -> String {
    let words = ["the", "Flink", "yarn", "slot", "Task", "manager", "record", "hash", "sink", "source", "a", "of"];
    let mut x: u32 = 12345;
    let mut text = String::new();
    for line in 0..4000 {
        for i in 0..(line % 9 + 1) {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let r = (x >> 16) as usize;
            let w = words[(r % words.len()) * (r % 3 + 1) / 3 % words.len()];
            text.push_str(w);
            text.push_str(if i % 4 == 3 { ", " } else { " " });
        }
        text.push_str(&format!("w{}\n", line % 97));
    }
    text
}

/// Log lines may carry terminal colour codes (`ESC [ ... m`) between a field's name and value.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn part_files(out: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("part-"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn fresh_bundle(dir: &Path) -> PathBuf {
    bundle(dir, WORDCOUNT_JOB, &[("input/corpus.txt", &corpus())])
}

fn run_args(work: &Path, b: &Path) -> Vec<String> {
    // Two-slot TaskManagers: the job's 8 subtasks spread over several of them.
    let mut args: Vec<String> =
        ["run", "--sizing", "fixed", "--tm-slots", "2", "--slot-cpu", "1", "--slot-memory", "128m", "--work-dir"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    args.push(work.display().to_string());
    args.push(b.display().to_string());
    args
}

/// Runs the job and SIGKILLs the TaskManager that runs `victim`'s subtasks
/// once that vertex is deployed.
fn run_killing(tmp: &Path, victim: &str) -> (std::process::Output, BTreeMap<String, Vec<u8>>) {
    let b = fresh_bundle(&tmp.join(format!("b-{victim}")));
    let work = tmp.join(format!("work-{victim}"));
    let child = cmd(tmp)
        .args(run_args(&work, &b))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = Guard(child);
    let needle = format!("vertex={victim} ");
    let (pid, _) = wait_for(Duration::from_secs(30), &format!("a TaskManager running {victim}"), || {
        task_managers(&work).into_iter().find(|(_, id)| {
            std::fs::read_to_string(work.join("taskmanagers").join(format!("{id}.log"))).is_ok_and(|log| {
                log.lines().map(strip_ansi).any(|l| l.contains("deploying task") && l.contains(&needle))
            })
        })
    });
    signal(pid, libc::SIGKILL);
    let status = wait_for(Duration::from_secs(90), "the job to end", || guard.0.try_wait().unwrap());
    let (mut stdout, mut stderr) = (String::new(), String::new());
    use std::io::Read;
    guard.0.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    guard.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let o = std::process::Output { status, stdout: stdout.into_bytes(), stderr: stderr.into_bytes() };
    assert!(o.status.success(), "{victim}: the hurt run must still succeed: {}", text(&o));
    assert!(processes_mentioning(work.to_str().unwrap()).is_empty(), "{victim}: processes left behind");
    let parts = part_files(&b.join("out"));
    (o, parts)
}

#[test]
fn a_word_count_restarted_after_task_manager_kills_writes_the_clean_runs_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let clean_bundle = fresh_bundle(&tmp.path().join("b-clean"));
    let work = tmp.path().join("work-clean");
    let args = run_args(&work, &clean_bundle);
    let o = cmd(tmp.path()).args(&args).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("(after "), "the clean run must not restart: {}", text(&o));
    let clean = part_files(&clean_bundle.join("out"));
    assert_eq!(clean.keys().collect::<Vec<_>>(), ["part-00000", "part-00001"]);
    let lines: usize = clean.values().map(|p| p.iter().filter(|&&b| b == b'\n').count()).sum();
    assert!(lines > 100, "the clean run counted too few words: {lines} lines");

    // Kill the TaskManager of each stage in turn: the source's, the
    // counter's, the sink's (each run restarts a different region's tasks).
    for victim in ["tokenize", "count", "write"] {
        let (o, parts) = run_killing(tmp.path(), victim);
        assert!(text(&o).contains("(after "), "{victim}: the kill must have cost a restart: {}", text(&o));
        assert_eq!(parts.keys().collect::<Vec<_>>(), clean.keys().collect::<Vec<_>>(), "{victim}: part file names");
        for (name, bytes) in &parts {
            assert!(
                bytes == &clean[name],
                "{victim}: {name} differs from the clean run's ({} vs {} bytes)",
                bytes.len(),
                clean[name].len()
            );
        }
    }
}
