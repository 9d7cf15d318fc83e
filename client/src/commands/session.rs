//! Session mode on the local backend: a long-running cluster that takes jobs
//! over REST (`session start` / `session stop`), and submitting to it.

use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::net::TcpListener;

use super::local::{start_cluster, WorkDir};
use crate::cli::{RunArgs, SessionStartArgs, Target};
use crate::rest_client::{session_dir, state_dir};

const READY_FILE_ENV: &str = "YF_SESSION_READY_FILE";

/// Starts `yarn-flink session serve` in the background and waits until it
/// says where its REST API listens.
/// The arguments were parsed (and so checked) here; the child re-parses the same argv.
pub async fn start(args: SessionStartArgs) -> Result<ExitCode> {
    if args.ha.url.is_some() {
        return super::session_ha::start(args).await;
    }
    let dir = state_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ready = dir.join(format!("starting-{}", std::process::id()));
    let _ = std::fs::remove_file(&ready);
    let log_path = dir.join(format!("session-{}.log", std::process::id()));
    let argv = std::env::args_os().skip(1).map(|a| if a == "start" { "serve".into() } else { a });
    let mut cmd = serve_command(argv, &log_path)?;
    cmd.env(READY_FILE_ENV, &ready);
    let mut child = cmd.spawn().context("cannot start the session process")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(addr) = std::fs::read_to_string(&ready) {
            if !addr.is_empty() {
                let _ = std::fs::remove_file(&ready);
                println!("{}", addr.trim());
                eprintln!("Session started (pid {}); log: {}", child.id(), log_path.display());
                eprintln!("Submit with: yarn-flink run -m {} <bundle>", addr.trim());
                // The fragment never leaves the browser; the token only reads.
                if let Ok(secret) = common::rpc::AppSecret::read_from(&session_dir(addr.trim()).join("secret")) {
                    eprintln!("Web UI: http://{}/#token={}", addr.trim(), secret.read_only_token());
                }
                return Ok(ExitCode::SUCCESS);
            }
        }
        if let Some(status) = child.try_wait()? {
            // Its last words say why (an unreachable master, a refused role...).
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let last: Vec<&str> = log.lines().rev().take(3).collect();
            let last: Vec<&str> = last.into_iter().rev().collect();
            bail!("the session process exited at start ({status}): {}\nlog: {}", last.join("\n"), log_path.display());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the session did not come up within 20 s; see {}", log_path.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `yarn-flink <argv>` in its own session (the cluster outlives this command
/// and the terminal), logging to `log_path`.
pub(super) fn serve_command(
    argv: impl IntoIterator<Item = std::ffi::OsString>,
    log_path: &std::path::Path,
) -> Result<std::process::Command> {
    let log = std::fs::File::create(log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(argv).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    Ok(cmd)
}

/// The session cluster itself, in the foreground.
pub async fn serve(args: SessionStartArgs) -> Result<ExitCode> {
    if args.ha.url.is_some() {
        return super::session_ha::serve(args).await;
    }
    // Loopback, unless the session is run for others (Marathon sets the agent's host).
    let host = std::env::var("YF_SESSION_BIND_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let rest = TcpListener::bind((host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {host}:{}", args.port))?;
    let address = rest.local_addr()?.to_string();
    let work = WorkDir::new(args.cluster.work_dir.as_ref())?;
    let cluster = match args.target {
        Target::Local => start_cluster(&args.cluster, &work.path, Some(rest)).await?,
        Target::Mesos => super::local::start_mesos_cluster(&args.cluster, &args.mesos, &work.path, Some(rest)).await?,
    };
    // The client finds the secret by the session's address.
    let sdir = session_dir(&address);
    std::fs::create_dir_all(&sdir)?;
    std::fs::copy(work.path.join("secret"), sdir.join("secret"))?;
    if let Ok(ready) = std::env::var(READY_FILE_ENV) {
        std::fs::write(&ready, &address)?;
    }
    tracing::info!(%address, "session ready");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = cluster.stopped() => {}
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    cluster.shutdown().await;
    let _ = std::fs::remove_dir_all(&sdir);
    Ok(ExitCode::SUCCESS)
}

pub async fn run_on_session(address: &str, args: &RunArgs) -> Result<ExitCode> {
    let client = super::session_client(address, args.secret_file.as_deref()).await?;
    let job = client.submit(&args.bundle, args.upload).await?;
    eprintln!("Submitted job {job}");
    if args.detached {
        println!("{job}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut progress = super::progress::Progress::new();
    loop {
        let v = client.get(&format!("/jobs/{job}")).await?;
        let details: am::dispatcher::JobDetails = serde_json::from_value(v.clone()).unwrap_or_else(|_| fallback(&v));
        progress.show(&details);
        if details.is_terminal() {
            drop(progress);
            return Ok(super::progress::finish(&details));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fallback(v: &serde_json::Value) -> am::dispatcher::JobDetails {
    am::dispatcher::JobDetails {
        jid: v["jid"].as_str().unwrap_or("?").into(),
        name: v["name"].as_str().unwrap_or("").into(),
        state: v["state"].as_str().unwrap_or("UNKNOWN").into(),
        start_time: 0,
        end_time: -1,
        duration: v["duration"].as_u64().unwrap_or(0),
        restarts: 0,
        error: v["error"].as_str().map(str::to_owned),
        ..Default::default()
    }
}
