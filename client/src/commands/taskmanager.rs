//! `yarn-flink taskmanager`: the TaskManager process a driver starts. All it
//! needs comes from its environment (see `common::launch`); the secret comes
//! from a file or from the YARN container's Hadoop credentials.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use common::launch::{SecretSource, TaskManagerLaunch, ENV_HADOOP_TOKEN_FILE};
use common::rpc::{AppSecret, RpcTimeouts};
use taskmanager::data_plane::DataPlaneConfig;
use taskmanager::TaskExecutorConfig;

pub async fn run() -> Result<ExitCode> {
    let mut launch = TaskManagerLaunch::from_env(|k| std::env::var(k).ok())?;
    let secret = read_secret(&launch.secret)?;
    if launch.work_dir.is_relative() {
        // Subtasks change directory; keep their work dir anchored to ours (the container's).
        launch.work_dir = std::env::current_dir().context("cannot read the working directory")?.join(&launch.work_dir);
    }
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
        registration_timeout: registration_timeout()?,
        data_plane: DataPlaneConfig::default(),
        serve_metrics: true,
        leader: common::ha::LeaderSource::from_env(|k| std::env::var(k).ok())?,
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

/// How long a TaskManager looks for a ResourceManager before it exits
/// (Flink's `taskmanager.registration.timeout`): `YF_TM_REGISTRATION_TIMEOUT`, 60 s by default.
fn registration_timeout() -> Result<Duration> {
    match std::env::var(ENV_REGISTRATION_TIMEOUT) {
        Ok(v) => crate::cli::parse_positive_duration(&v)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{ENV_REGISTRATION_TIMEOUT}={v}")),
        Err(_) => Ok(Duration::from_secs(60)),
    }
}

pub const ENV_REGISTRATION_TIMEOUT: &str = "YF_TM_REGISTRATION_TIMEOUT";

/// The application secret from where the driver said it is.
pub fn read_secret(source: &SecretSource) -> Result<AppSecret> {
    match source {
        SecretSource::File(path) => Ok(AppSecret::read_from(path)?),
        SecretSource::HadoopCredentials { alias } => {
            let Some(file) = std::env::var_os(ENV_HADOOP_TOKEN_FILE) else {
                bail!(
                    "{ENV_HADOOP_TOKEN_FILE} is not set, so the application secret (credentials alias {alias}) \
                     cannot be read; a YARN NodeManager sets it for every container it starts"
                );
            };
            Ok(am::drivers::yarn::application_master::secret_from_token_file(std::path::Path::new(&file), alias)?)
        }
    }
}
