//! `yarn-flink appmaster`: the ApplicationMaster entry point inside the YARN
//! AM container. Everything it needs comes from the container's environment
//! contract and credentials (see `am::drivers::yarn::contract` and docs/yarn.md);
//! the AM itself lives in `am::drivers::yarn::application_master`, this only
//! wires the process to it.

use std::process::ExitCode;

use am::drivers::yarn::application_master::{self as yarn_app, AmEnv};
use am::drivers::yarn::contract::CONTRACT_LINK;
use anyhow::{Context, Result};
use hadoop::conf::HadoopConf;
use hadoop::yarn::FinalStatus;

pub async fn run() -> Result<ExitCode> {
    let env = AmEnv::from_env(|k| std::env::var(k).ok(), std::path::Path::new(CONTRACT_LINK))?;
    let conf = HadoopConf::load_from_env().context("cannot load the Hadoop configuration (HADOOP_CONF_DIR)")?;
    let shutdown = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let staging = env.staging_dir.clone();
    let outcome = yarn_app::run(env, &conf, shutdown).await?;
    eprintln!("yarn-flink appmaster: {:?}: {}", outcome.final_status, outcome.diagnostics);
    // The application is over for YARN: its staged files are not needed by
    // any later attempt (the content cache beside them stays).
    if let (true, Some(dir)) = (outcome.unregistered, staging) {
        match common::hdfs::remove_dir_url(&dir, conf.conf_dir.as_deref()).await {
            Ok(()) => eprintln!("yarn-flink appmaster: removed the staging dir {dir}"),
            Err(e) => eprintln!("yarn-flink appmaster: could not remove the staging dir {dir}: {e}"),
        }
    }
    Ok(if outcome.final_status == FinalStatus::Succeeded { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
