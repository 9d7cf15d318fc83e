//! One function per command. Each returns the process exit code or an error
//! that `main` prints.

mod doctor;
mod local;
mod progress;
mod session;
mod taskmanager;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command, SessionCommand};
use crate::rest_client::RestClient;

pub async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run(args) => match &args.jobmanager {
            Some(addr) => session::run_on_session(addr, &args).await,
            None => local::run(args).await,
        },
        Command::Session(SessionCommand::Start(a)) => session::start(a).await,
        Command::Session(SessionCommand::Serve(a)) => session::serve(a).await,
        Command::Session(SessionCommand::Stop(s)) => {
            RestClient::new(&s.jobmanager, s.secret_file.as_deref())?.stop_cluster().await?;
            println!("session at {} is stopping", s.jobmanager);
            Ok(ExitCode::SUCCESS)
        }
        Command::List(s) => {
            let v = RestClient::new(&s.jobmanager, s.secret_file.as_deref())?.get("/jobs/overview").await?;
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
        Command::Status { session, job_id } => {
            let c = RestClient::new(&session.jobmanager, session.secret_file.as_deref())?;
            let v = c.get(&format!("/jobs/{job_id}")).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { session, job_id } => {
            RestClient::new(&session.jobmanager, session.secret_file.as_deref())?.cancel(&job_id).await?;
            println!("cancelling job {job_id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor(args) => doctor::run(args).await,
        Command::Taskmanager => taskmanager::run().await,
    }
}
