//! `yarn-flink taskmanager`: the TaskManager process a driver starts. All it
//! needs comes from its environment (see `common::launch`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use common::launch::TaskManagerLaunch;
use common::rpc::{AppSecret, RpcTimeouts};
use taskmanager::data_plane::DataPlaneConfig;
use taskmanager::TaskExecutorConfig;

pub async fn run() -> Result<ExitCode> {
    let launch = TaskManagerLaunch::from_env(|k| std::env::var(k).ok())?;
    let secret = AppSecret::read_from(&launch.secret_file)?;
    let (rpc, data, _) = taskmanager::task_executor::bind(&launch.host)
        .await
        .with_context(|| format!("cannot listen on {}", launch.host))?;
    let config = TaskExecutorConfig {
        resource_id: launch.resource_id,
        rm_address: launch.rm_address,
        total: launch.total,
        default_slot: launch.default_slot,
        num_slots: launch.num_slots,
        advertised_host: launch.host,
        work_dir: launch.work_dir,
        secret,
        rpc: RpcTimeouts::default(),
        registration_timeout: Duration::from_secs(60),
        data_plane: DataPlaneConfig::default(),
    };
    let shutdown = async {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    taskmanager::run(config, rpc, data, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
