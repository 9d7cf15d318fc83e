//! One function per command. Each returns the process exit code or an error
//! that `main` prints.

mod appmaster;
mod credentials;
mod doctor;
mod local;
mod logs;
pub(crate) mod progress;
pub mod report;
mod session;
mod session_ha;
mod staging;
mod taskmanager;
mod yarn;

pub use yarn::cluster_shape;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, ClusterTarget, Command, ListArgs, SessionCommand};
use crate::rest_client::RestClient;

/// The REST client of a session named by `-m`: `host:port` (a local session,
/// or any reachable AM), or `application_<id>` (a YARN session: its address
/// comes from the application report, its secret from where `submit
/// --session` saved it).
pub async fn session_client(target: &str, secret_file: Option<&std::path::Path>) -> Result<RestClient> {
    if target.starts_with("application_") {
        let address = yarn::session_address(target).await?;
        let default = crate::rest_client::session_dir(target).join("secret");
        return RestClient::new(&address, Some(secret_file.unwrap_or(&default)));
    }
    RestClient::new(target, secret_file)
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run(args) => match &args.jobmanager {
            Some(addr) => session::run_on_session(addr, &args).await,
            None => local::run(args).await,
        },
        Command::Session(SessionCommand::Start(a)) => session::start(a).await,
        Command::Session(SessionCommand::Serve(a)) => session::serve(a).await,
        Command::Session(SessionCommand::Stop(s)) => {
            session_client(&s.jobmanager, s.secret_file.as_deref()).await?.stop_cluster().await?;
            println!("session at {} is stopping", s.jobmanager);
            Ok(ExitCode::SUCCESS)
        }
        Command::Submit(args) if args.target == ClusterTarget::Kubernetes => crate::kubernetes::submit(*args).await,
        Command::Submit(args) => yarn::submit(*args).await,
        Command::Kill { target: ClusterTarget::Kubernetes, namespace, application_id, .. } => {
            crate::kubernetes::kill(namespace.as_deref(), &application_id).await
        }
        Command::Kill { yarn: y, application_id, .. } => yarn::kill(&y, &application_id).await,
        Command::List(ListArgs { jobmanager: None, target: ClusterTarget::Kubernetes, namespace, .. }) => {
            crate::kubernetes::list(namespace.as_deref()).await
        }
        Command::Status {
            target: ListArgs { jobmanager: None, target: ClusterTarget::Kubernetes, namespace, .. },
            id,
        } => crate::kubernetes::status(namespace.as_deref(), &id).await,
        Command::List(ListArgs { jobmanager: None, yarn: y, .. }) => yarn::list(&y).await,
        Command::Status { target: ListArgs { jobmanager: None, yarn: y, .. }, id } => yarn::status(&y, &id).await,
        Command::List(ListArgs { jobmanager: Some(jobmanager), secret_file, .. }) => {
            let v = session_client(&jobmanager, secret_file.as_deref()).await?.get("/jobs/overview").await?;
            let jobs = v["jobs"].as_array().cloned().unwrap_or_default();
            if jobs.is_empty() {
                println!("no jobs");
            }
            for j in jobs {
                println!(
                    "{}  {:<10}  {}",
                    j["jid"].as_str().unwrap_or("?"),
                    j["state"].as_str().unwrap_or("?"),
                    j["name"].as_str().unwrap_or("")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { target: ListArgs { jobmanager: Some(jobmanager), secret_file, .. }, id: job_id } => {
            let c = session_client(&jobmanager, secret_file.as_deref()).await?;
            let v = c.get(&format!("/jobs/{job_id}")).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { session, job_id } => {
            session_client(&session.jobmanager, session.secret_file.as_deref()).await?.cancel(&job_id).await?;
            println!("cancelling job {job_id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor(args) => doctor::run(args).await,
        Command::Credentials(args) => credentials::run(&args),
        Command::Staging(cmd) => staging::run(cmd).await,
        Command::Logs(args) => logs::run(args).await,
        Command::Taskmanager => taskmanager::run().await,
        Command::Appmaster => appmaster::run().await,
        Command::KubernetesJobmanager => crate::kubernetes::jobmanager().await,
    }
}
