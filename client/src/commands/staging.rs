//! `yarn-flink staging list|clean`: through the same HDFS client, Kerberos
//! login and RM REST client as `submit`, so it works wherever `submit` works
//! (NameNode RPC, not WebHDFS; simple auth, a ticket cache or a keytab; HA).

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Result;

use super::yarn::{kerberos, load_conf};
use crate::cli::{StagingArgs, StagingCommand};
use crate::yarn::cleanup::{self, Action, Options};
use crate::yarn::rest::RmRestClient;
use crate::yarn::{staging, submit};

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
    let conf = load_conf(&login.yarn)?;
    let k = kerberos(&conf, login.keytab.as_deref(), login.principal.as_deref())?;
    let principal = k.as_ref().map(|k| k.login.principal().to_owned());
    let user = submit::hadoop_user(&conf, principal.as_deref())?;
    let staging = staging::open(
        &conf.default_fs()?,
        &user,
        conf.conf_dir.as_deref(),
        principal.as_deref().map(|p| (p, login.keytab.as_deref())),
    )?;
    let rm = RmRestClient::from_conf(&conf, submit::rest_auth(&user, k.as_ref()))?;
    let report = cleanup::run(&staging, &rm, &options, SystemTime::now()).await;
    report.print(json);
    Ok(report.exit_code())
}
