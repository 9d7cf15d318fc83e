//! Helpers for driving the real `yarn-flink` binary in temp dirs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test; benchmarks point `YF_BENCH_BINARY` at a release build.
pub fn bin() -> PathBuf {
    std::env::var_os("YF_BENCH_BINARY").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_yarn-flink")), PathBuf::from)
}

/// A bundle directory made from a job.toml text and extra files.
pub fn bundle(dir: &Path, job_toml: &str, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("job.toml"), job_toml).unwrap();
    for (name, text) in files {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        if name.ends_with(".sh") || name.starts_with("bin/") {
            integration_tests::files::write_executable(&p, text);
        } else {
            std::fs::write(&p, text).unwrap();
        }
    }
    dir.to_owned()
}

/// `yarn-flink` with fast heartbeats and an isolated state dir.
pub fn cmd(state: &Path) -> Command {
    let mut c = Command::new(bin());
    c.env("YARN_FLINK_HOME", state)
        .env("YF_HEARTBEAT_INTERVAL", "100ms")
        .env("YF_HEARTBEAT_TIMEOUT", "1500ms")
        .env("YF_IDLE_TIMEOUT", "2s")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    c
}

pub fn run(state: &Path, args: &[&str]) -> Output {
    cmd(state).args(args).output().unwrap()
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Pids of live processes whose environment mentions `needle` (e.g. a test's
/// unique work dir): what a test started and must not leave behind.
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Zombies are already gone as far as resources go.
        if stat.split(") ").nth(1).is_some_and(|s| s.starts_with('Z')) {
            continue;
        }
        if env.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

/// Waits until `f` returns Some, polling; panics with `what` after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// TaskManager processes of a local cluster whose work dir is `work`, with
/// their resource ids.
pub fn task_managers(work: &Path) -> Vec<(u32, String)> {
    let needle = work.join("taskmanagers").display().to_string();
    let mut v = Vec::new();
    for pid in processes_mentioning(&needle) {
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
        let id = env
            .split(|b| *b == 0)
            .filter_map(|kv| std::str::from_utf8(kv).ok())
            .find_map(|kv| kv.strip_prefix("YF_RESOURCE_ID="))
            .map(str::to_owned);
        if let Some(id) = id {
            v.push((pid, id));
        }
    }
    v.sort_by(|a, b| a.1.cmp(&b.1));
    v
}

pub fn signal(pid: u32, sig: i32) {
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Kills a child we started if the test fails half-way.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// All lines of all part files under `out`, sorted.
pub fn output_lines(out: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let mut parts: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("part-")))
        .collect();
    parts.sort();
    for p in parts {
        lines.extend(std::fs::read_to_string(p).unwrap().lines().map(str::to_owned));
    }
    lines.sort();
    lines
}

/// A bundle archive (`job.toml` running `true`) with a file of `zeros` zero
/// bytes: gzip makes 64 MiB of them about 64 KiB.
pub fn zeros_bomb(archive: &Path, zeros: u64) {
    use std::io::Read as _;
    let file = std::fs::File::create(archive).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::best()));
    let spec = b"[[vertex]]\nname = \"a\"\nshell = \"true\"\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(spec.len() as u64);
    h.set_mode(0o644);
    tar.append_data(&mut h, "job.toml", &spec[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(zeros);
    h.set_mode(0o644);
    tar.append_data(&mut h, "zeros", std::io::repeat(0).take(zeros)).unwrap();
    tar.into_inner().and_then(|gz| gz.finish()).unwrap();
}

/// Where scripts/install-deps put playwright-core. Its absence fails the test
/// unless YF_SKIP_BROWSER is set (a machine without a browser, knowingly).
pub fn browser_dir() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("YF_BROWSER_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/yarn-flink/browser")
    });
    if dir.join("node_modules/playwright-core").is_dir() {
        return Some(dir);
    }
    if std::env::var_os("YF_SKIP_BROWSER").is_some() {
        eprintln!("YF_SKIP_BROWSER: the web UI is not checked in a browser");
        return None;
    }
    panic!("playwright-core is not in {}: run scripts/install-deps (as root), or set YF_SKIP_BROWSER", dir.display());
}

/// The YARN and Kubernetes e2e job. Two vertices with two container (pod) sizes: `gen` (2 x 0.5 cpu / 256m) hashes
/// into `sink` (1 x 2 cpu / 1g) which writes text files to `out`.
pub fn two_vertex_bundle(dir: &Path, out: &Path, gen_sleep: &str) -> PathBuf {
    let toml = format!(
        "[job]\nname = \"two-sizes\"\n\
         [[vertex]]\nname = \"gen\"\nparallelism = 2\nresources = {{ cpu = 0.5, memory = \"256m\" }}\n\
         shell = \"sleep {gen_sleep}; for i in 1 2 3; do printf 'k%s\\\\t%s\\\\n' $i $YF_SUBTASK_INDEX; done\"\n\
         [[vertex]]\nname = \"sink\"\nparallelism = 1\nresources = {{ cpu = 2, memory = \"1g\" }}\n\
         sink = {{ type = \"text\", path = \"{}\" }}\n\
         [[edge]]\nfrom = \"gen\"\nto = \"sink\"\npartitioning = \"hash\"\n",
        out.display()
    );
    bundle(dir, &toml, &[])
}

pub fn expected_output() -> Vec<String> {
    let mut v: Vec<String> = (1..=3).flat_map(|i| (0..2).map(move |s| format!("k{i}\t{s}"))).collect();
    v.sort();
    v
}
