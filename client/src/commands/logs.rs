//! `yarn-flink logs <appId>`: every container's log files, each under a
//! `==> <container> on <node>: <file> <==` header (as `tail` marks files),
//! or with `--list` one line per file. Exit 0 when every file was read, 2
//! when any could not be.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::yarn::Cluster;
use crate::cli::LogsArgs;
use crate::yarn::logs::{self, NodeLogs};

pub async fn run(args: LogsArgs) -> Result<ExitCode> {
    if let Some(session) = &args.jobmanager {
        return session_logs(session, &args).await;
    }
    let Some(app) = &args.application_id else { bail!("name an application id, or a session with -m") };
    if !app.starts_with("application_") {
        bail!("{app} is not a YARN application id (application_<cluster>_<n>); `yarn-flink list` shows them");
    }
    let cluster = Cluster::login(&args.login)?;
    let conf = &cluster.conf;
    let user = cluster.user()?;
    let rm = cluster.rm()?;
    let report = rm.app(app).await?;
    if report.is_terminal() {
        if !conf.get_bool("yarn.log-aggregation-enable")?.unwrap_or(false) {
            bail!(
                "{app} has ended ({}) and log aggregation is off (yarn.log-aggregation-enable): its logs stay on \
                 each NodeManager's local log dirs until yarn.nodemanager.log.retain-seconds; read them there",
                report.state
            );
        }
        let owner = if report.user.is_empty() { user.clone() } else { report.user.clone() };
        let Some((dir, nodes)) = logs::aggregated(conf, &owner, app, cluster.hdfs_login()).await? else {
            bail!(
                "{app} has ended ({}), but no aggregated logs are under {}/{owner}/ yet: aggregation starts when \
                 the application ends on each node; try again in a moment",
                report.state,
                conf.get("yarn.nodemanager.remote-app-log-dir")?.unwrap_or_else(|| "/tmp/logs".into())
            );
        };
        return print_aggregated(&dir, nodes, &args);
    }
    let https = conf.http_policy()? == hadoop::conf::HttpPolicy::HttpsOnly;
    let nodes = NodeLogs::new(rm.auth().clone(), https)?;
    let mut containers = logs::containers(&rm, &nodes, app).await?;
    if let Some(only) = &args.container {
        containers.retain(|c, _| c == only);
        if containers.is_empty() {
            bail!("{app} has no container {only} that a NodeManager serves logs of; `yarn-flink logs --list {app}` lists them");
        }
    }
    if containers.is_empty() {
        bail!("{app} has no container yet ({}): try again once it is RUNNING", report.state);
    }
    let mut failed = 0;
    let mut out = std::io::stdout().lock();
    for (container, node) in &containers {
        let files = match nodes.log_files(node, container).await {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{container} on {node}: cannot list its logs: {e}");
                failed += 1;
                continue;
            }
        };
        for f in files {
            if args.list {
                let size = f.size.map_or("-".to_owned(), |s| s.to_string());
                writeln!(out, "{container}\t{node}\t{}\t{size}", f.name)?;
                continue;
            }
            match nodes.log(node, container, &f.name).await {
                Ok(bytes) => {
                    writeln!(out, "==> {container} on {node}: {} <==", f.name)?;
                    out.write_all(&bytes)?;
                    if !bytes.ends_with(b"\n") && !bytes.is_empty() {
                        writeln!(out)?;
                    }
                    if bytes.len() >= logs::MAX_LOG_BYTES {
                        writeln!(out, "(cut at {} MiB)", logs::MAX_LOG_BYTES >> 20)?;
                    }
                }
                Err(e) => {
                    eprintln!("{container} on {node}: cannot read {}: {e}", f.name);
                    failed += 1;
                }
            }
        }
    }
    out.flush()?;
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

/// `logs -m <session>`: each TaskManager's log as the session serves it
/// (`/taskmanagers/<id>/log`). A session on YARN is read with
/// `logs <application id>` instead: its NodeManagers keep the logs.
async fn session_logs(session: &str, args: &LogsArgs) -> Result<ExitCode> {
    let client = super::session_client(session, args.secret_file.as_deref()).await?;
    let v = client.get("/taskmanagers").await?;
    let tms = v["taskmanagers"].as_array().cloned().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    let mut shown = 0;
    for tm in &tms {
        let id = tm["id"].as_str().unwrap_or("?");
        if args.container.as_deref().is_some_and(|c| c != id) {
            continue;
        }
        shown += 1;
        let Some(path) = tm["log"].as_str() else {
            eprintln!("{id}: this session's cluster manager keeps its log (on YARN: yarn-flink logs <application id>)");
            failed += 1;
            continue;
        };
        if args.list {
            writeln!(out, "{id}\t{session}\t{path}")?;
            continue;
        }
        match client.get_text(path).await {
            Ok(bytes) => {
                writeln!(out, "==> {id} on {session}: taskmanager log <==")?;
                out.write_all(&bytes)?;
                if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                    writeln!(out)?;
                }
            }
            Err(e) => {
                eprintln!("{id}: {e}");
                failed += 1;
            }
        }
    }
    if shown == 0 {
        match &args.container {
            Some(c) => bail!(
                "the session at {session} has no TaskManager {c}; `yarn-flink logs --list -m {session}` lists them"
            ),
            None => eprintln!("the session at {session} has no TaskManager now (idle ones are released)"),
        }
    }
    out.flush()?;
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

/// An ended application's aggregated logs, in the same form as a running one's.
fn print_aggregated(
    dir: &str,
    nodes: Vec<(String, hadoop::yarn::aggregated_logs::AggregatedLogs)>,
    args: &LogsArgs,
) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let mut shown = 0;
    for (node, logs) in &nodes {
        for c in &logs.containers {
            if args.container.as_deref().is_some_and(|only| only != c.container) {
                continue;
            }
            shown += 1;
            for (name, bytes) in &c.files {
                if args.list {
                    writeln!(out, "{}\t{node}\t{name}\t{}", c.container, bytes.len())?;
                    continue;
                }
                writeln!(out, "==> {} on {node}: {name} <==", c.container)?;
                out.write_all(bytes)?;
                if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                    writeln!(out)?;
                }
            }
        }
    }
    out.flush()?;
    if shown == 0 {
        match &args.container {
            Some(c) => bail!("the aggregated logs under {dir} have no container {c}"),
            None => bail!("the aggregated logs under {dir} hold no container"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
