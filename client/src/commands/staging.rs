//! `yarn-flink staging list|clean`: through the same HDFS client, Kerberos
//! login and RM REST client as `submit`, so it works wherever `submit` works
//! (NameNode RPC, not WebHDFS; simple auth, a ticket cache or a keytab; HA).

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Result;

use super::yarn::Cluster;
use crate::cli::{StagingArgs, StagingCommand};
use crate::yarn::cleanup::{self, Action, Options};

pub async fn run(cmd: StagingCommand) -> Result<ExitCode> {
    let (args, options) = match cmd {
        StagingCommand::List(a) => {
            let o = Options { older_than: a.older_than, prune_cache: None, action: Action::List };
            (a, o)
        }
        StagingCommand::Clean(c) => {
            let o = Options {
                older_than: c.staging.older_than,
                prune_cache: c.prune_cache.map(|days| Duration::from_secs(days * 86400)),
                action: if c.dry_run { Action::DryRun } else { Action::Delete },
            };
            (c.staging, o)
        }
    };
    let StagingArgs { login, json, .. } = args;
    let cluster = Cluster::login(&login)?;
    let staging = cluster.staging(&cluster.user()?)?;
    let rm = cluster.rm()?;
    let report = cleanup::run(&staging, &rm, &options, SystemTime::now()).await;
    report.print(json);
    Ok(report.exit_code())
}
