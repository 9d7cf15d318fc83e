//! A local session with ZooKeeper high availability (issue 11):
//! `session start --ha zookeeper://… --standby N` starts N+1 `session serve`
//! processes. Each contends for leadership; the leader serves the session's
//! one REST port and runs the cluster, the others wait. A leader that loses
//! its ZooKeeper session steps down at once by re-executing itself (nothing of
//! its state or its in-flight calls survives), and contends again.
//! TaskManagers outlive their leader and follow the next one.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use am::cluster::LeaderServices;
use am::high_availability::JobStore;
use anyhow::{bail, Context, Result};
use common::ha::{Election, HaError, HaLocator, LeaderInfo, ZooKeeper};
use common::ids::ResourceManagerId;
use common::rpc::AppSecret;
use tokio::net::TcpListener;
use tracing::{error, info};

use super::local::{start_cluster_as, AsLeader, WorkDir};
use crate::cli::SessionStartArgs;
use crate::rest_client::{session_dir, state_dir};

/// Every process of one HA session reads the secret `start` generated.
const SECRET_FILE_ENV: &str = "YF_SESSION_SECRET_FILE";
const READY_FILE_ENV: &str = "YF_SESSION_READY_FILE";
const PORT_ENV: &str = "YF_SESSION_PORT";

fn locator(args: &SessionStartArgs) -> Result<HaLocator> {
    let url = args.ha.url.as_deref().unwrap_or_default();
    Ok(HaLocator::parse(url, &args.ha.ha_cluster_id, args.ha.ha_session_timeout)?)
}

/// A path, absolute (every session process must find the same one), or an `hdfs://` URL.
fn storage_dir(args: &SessionStartArgs) -> Result<String> {
    let dir = args.ha.ha_storage_dir.clone().unwrap_or_else(|| state_dir().join("ha").display().to_string());
    if common::hdfs::is_hdfs(&dir) {
        return Ok(dir);
    }
    if dir.contains("://") {
        bail!("--ha-storage-dir {dir}: give a directory every session process can write, or an hdfs:// URL");
    }
    Ok(std::path::absolute(&dir).with_context(|| format!("--ha-storage-dir {dir}"))?.display().to_string())
}

/// Our argv for `session serve`, without any `--port`: the port travels in the environment.
fn serve_argv() -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        if a == "--port" {
            args.next();
        } else if a.to_string_lossy().starts_with("--port=") {
        } else if a == "start" && out.len() <= 1 {
            out.push("serve".into());
        } else {
            out.push(a);
        }
    }
    out
}

pub async fn start(args: SessionStartArgs) -> Result<ExitCode> {
    let locator = locator(&args)?;
    // Fail here, with the fix, rather than in N background processes.
    let storage = storage_dir(&args)?;
    if common::hdfs::is_hdfs(&storage) {
        common::hdfs::connect_async(&storage).await.context("--ha-storage-dir")?;
    }
    let zk = ZooKeeper::connect(&locator).await?;
    if zk.is_stopped().await? {
        bail!(
            "the HA cluster {} was stopped earlier and its path is kept; start with another --ha-cluster-id, or \
             remove {} in ZooKeeper",
            locator.cluster_path(),
            locator.cluster_path()
        );
    }
    drop(zk);
    let port = match args.port {
        0 => TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port(),
        p => p,
    };
    let address = format!("127.0.0.1:{port}");
    let sdir = session_dir(&address);
    std::fs::create_dir_all(&sdir).with_context(|| format!("cannot create {}", sdir.display()))?;
    let secret_file = sdir.join("secret");
    AppSecret::generate().write_to(&secret_file)?;
    let dir = state_dir();
    let ready = dir.join(format!("starting-{}", std::process::id()));
    let _ = std::fs::remove_file(&ready);
    let mut children = Vec::new();
    let mut logs = Vec::new();
    for i in 0..=args.ha.standby {
        let log_path = dir.join(format!("session-{}-{i}.log", std::process::id()));
        let mut cmd = super::session::serve_command(serve_argv(), &log_path)?;
        cmd.env(READY_FILE_ENV, &ready).env(SECRET_FILE_ENV, &secret_file).env(PORT_ENV, port.to_string());
        children.push(cmd.spawn().context("cannot start a session process")?);
        logs.push(log_path);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let pids: Vec<String> = children.iter().map(|c| c.id().to_string()).collect();
    loop {
        if std::fs::read_to_string(&ready).is_ok_and(|a| !a.is_empty()) {
            let _ = std::fs::remove_file(&ready);
            println!("{address}");
            eprintln!(
                "HA session started: {} processes (pids {}), leader elected through {}",
                children.len(),
                pids.join(" "),
                locator.url()
            );
            eprintln!("logs: {}", logs.iter().map(|l| l.display().to_string()).collect::<Vec<_>>().join(" "));
            eprintln!("Submit with: yarn-flink run -m {address} <bundle>");
            if let Ok(secret) = AppSecret::read_from(&secret_file) {
                eprintln!("Web UI: http://{address}/#token={}", secret.read_only_token());
            }
            return Ok(ExitCode::SUCCESS);
        }
        for (c, log) in children.iter_mut().zip(&logs) {
            if let Some(status) = c.try_wait()? {
                if !status.success() {
                    bail!("a session process exited at start ({status}); see {}", log.display());
                }
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no session process became leader within 30 s; see {}", logs[0].display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One process of an HA session: contends, then leads until the session is
/// stopped or leadership is lost.
pub async fn serve(args: SessionStartArgs) -> Result<ExitCode> {
    let locator = locator(&args)?;
    let secret_file = std::env::var_os(SECRET_FILE_ENV)
        .map(std::path::PathBuf::from)
        .context("an HA session process is started by `yarn-flink session start --ha`, which shares its secret")?;
    let secret = AppSecret::read_from(&secret_file)?;
    if args.port == 0 {
        bail!("an HA session process needs the session's fixed REST port ({PORT_ENV})");
    }
    let work = WorkDir::new(args.cluster.work_dir.as_ref())?;
    let rpc = TcpListener::bind("127.0.0.1:0").await.context("cannot listen on 127.0.0.1")?;
    let address = format!("127.0.0.1:{}", args.port);
    let zk = ZooKeeper::connect(&locator).await?;
    let info = LeaderInfo {
        session_id: uuid::Uuid::new_v4(),
        rpc_address: rpc.local_addr()?.to_string(),
        rest_address: Some(address.clone()),
    };
    info!(session_id = %info.session_id, "contending for leadership of {}", locator.cluster_path());
    let leadership = match Election::contend(&zk, info).await {
        Ok(l) => Arc::new(l),
        Err(HaError::Stopped(path)) => {
            info!(%path, "the session was stopped; this standby exits");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e.into()),
    };
    // From here on, a session that is not connected ends our leadership at once.
    let lost = leadership.lost();
    tokio::pin!(lost);
    let rest = tokio::select! {
        r = bind_when_free(&address) => r?,
        reason = &mut lost => step_down(&reason),
    };
    let store = JobStore::new(&storage_dir(&args)?, leadership.clone());
    let leader = AsLeader {
        locator: locator.clone(),
        services: LeaderServices { rm_id: ResourceManagerId(leadership.info.session_id), store: Some(store.clone()) },
    };
    let cluster = tokio::select! {
        c = start_cluster_as(&args.cluster, &work.path, rpc, Some(rest), (secret, secret_file.clone()), Some(leader)) => c?,
        reason = &mut lost => step_down(&reason),
    };
    if let Ok(ready) = std::env::var(READY_FILE_ENV) {
        let _ = std::fs::write(&ready, &address);
    }
    info!(%address, "leading the session");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = cluster.stopped() => {
            // Stopped for good: standbys exit, the HA data goes, then the TaskManagers.
            if let Err(e) = leadership.mark_stopped().await {
                error!(error = %e, "cannot mark the session stopped; standbys may take over");
            }
            if let Err(e) = store.remove_all().await {
                error!(error = %e, "cannot remove the session's HA data");
            }
            cluster.shutdown().await;
            let _ = std::fs::remove_dir_all(session_dir(&address));
        }
        reason = &mut lost => step_down(&reason),
        // This process leaves; a standby takes over the jobs and TaskManagers.
        _ = term.recv() => info!("terminated; a standby takes over"),
        _ = tokio::signal::ctrl_c() => info!("interrupted; a standby takes over"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The REST port is the session's; a leader killed a moment ago may still hold it.
async fn bind_when_free(address: &str) -> Result<TcpListener> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match TcpListener::bind(address).await {
            Ok(l) => return Ok(l),
            Err(e) if tokio::time::Instant::now() > deadline => {
                return Err(e).with_context(|| format!("cannot listen on the session's address {address}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Stops leading now: replaces this process with a fresh contender, so no
/// task, timer or call of the old leadership can act after this point.
fn step_down(reason: &str) -> ! {
    error!(%reason, "lost leadership: stepping down");
    use std::os::unix::process::CommandExt;
    let err = match std::env::current_exe() {
        Ok(exe) => std::process::Command::new(exe).args(std::env::args_os().skip(1)).exec(),
        Err(e) => e,
    };
    error!(error = %err, "cannot restart as a contender; exiting");
    std::process::exit(75)
}
