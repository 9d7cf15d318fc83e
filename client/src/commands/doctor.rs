//! `yarn-flink doctor`: the first command an operator runs on an edge node.
//! The checks live in `hadoop::doctor`; this only gathers the options and
//! turns the worst verdict into the exit code.

use std::process::ExitCode;

use anyhow::{Context, Result};
use hadoop::conf::HadoopConf;
use hadoop::doctor::{DoctorOptions, Verdict};

use crate::cli::DoctorArgs;

pub async fn run(args: DoctorArgs) -> Result<ExitCode> {
    let conf = match &args.conf_dir {
        Some(dir) => HadoopConf::load_dir(dir),
        None => HadoopConf::load_from_env(),
    }
    .context("cannot load the Hadoop configuration")?;
    let opts = DoctorOptions {
        timeout: args.timeout,
        keytab: args.keytab,
        principal: args.principal,
        ccache: None,
        offline: args.offline,
        token_file: args.token_file,
    };
    let report = hadoop::doctor::run(&conf, &opts).await;
    println!("{report}");
    Ok(match report.worst() {
        Verdict::Fail => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}
