//! `submit`, `kill`, and the YARN side of `list` / `status`: flags resolved
//! into a plan here, the work done in `crate::yarn`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use common::resources::parse_memory;
use hadoop::conf::HadoopConf;
use hadoop::kerberos::KerberosLogin;

use am::drivers::yarn::contract::ClusterShape;

use crate::cli::{ClusterArgs, ClusterLogin, SubmitArgs, YarnArgs};
use crate::yarn::rest::{RestResource, RmRestClient};
use crate::yarn::staging;
use crate::yarn::submit::{self, KerberosIdentity, Mode, SubmitPlan};

pub(super) fn load_conf(args: &YarnArgs) -> Result<HadoopConf> {
    Ok(match &args.conf_dir {
        Some(d) => HadoopConf::load_dir(d)?,
        None => HadoopConf::load_from_env()?,
    })
}

/// The cluster shape flags as the AM contract carries them, checked here on
/// the edge node (a bad `--slot-cpu` fails before anything is uploaded).
pub fn cluster_shape(c: &ClusterArgs) -> Result<ClusterShape> {
    let shape = ClusterShape {
        sizing: match c.sizing {
            crate::cli::Sizing::Fixed => "fixed",
            crate::cli::Sizing::Fit => "fit",
        }
        .into(),
        tm_slots: c.tm_slots,
        slot_cpu: c.slot_cpu.clone(),
        slot_memory: c.slot_memory.clone(),
        idle_timeout: c.idle_timeout,
        heartbeat_interval: c.heartbeat_interval,
        heartbeat_timeout: c.heartbeat_timeout,
        bundle_limits: c.bundle_limits(),
    };
    shape.resource_manager_config(None).map_err(|e| anyhow::anyhow!("the cluster flags are unusable: {e}"))?;
    Ok(shape)
}

/// The Kerberos login on a secure cluster (keytab + principal, else the ticket cache); `None` on simple auth.
pub(super) fn kerberos(
    conf: &HadoopConf,
    keytab: Option<&Path>,
    principal: Option<&str>,
) -> Result<Option<KerberosIdentity>> {
    if conf.security()? != hadoop::conf::SecurityMode::Kerberos {
        if keytab.is_some() {
            bail!("--keytab was given but hadoop.security.authentication is not kerberos in core-site.xml; drop --keytab/--principal or point HADOOP_CONF_DIR at the secure cluster's configuration");
        }
        return Ok(None);
    }
    let login = match (keytab, principal) {
        (Some(k), Some(p)) => KerberosLogin::from_keytab(k, p)?,
        _ => KerberosLogin::from_ticket_cache(None)?,
    };
    Ok(Some(KerberosIdentity { login, keytab: keytab.map(Path::to_owned) }))
}

/// One login to a YARN cluster, shared by a command's clients: its
/// configuration and, on a Kerberized cluster, the Kerberos login (made once).
pub(super) struct Cluster {
    pub conf: HadoopConf,
    pub kerberos: Option<KerberosIdentity>,
}

impl Cluster {
    pub fn login(login: &ClusterLogin) -> Result<Self> {
        Self::login_with(&login.yarn, login.keytab.as_deref(), login.principal.as_deref())
    }

    fn login_with(yarn: &YarnArgs, keytab: Option<&Path>, principal: Option<&str>) -> Result<Self> {
        let conf = load_conf(yarn)?;
        let kerberos = kerberos(&conf, keytab, principal)?;
        Ok(Self { conf, kerberos })
    }

    /// HDFS's login: the principal, and its keytab when there is one.
    pub fn hdfs_login(&self) -> Option<(&str, Option<&Path>)> {
        self.kerberos.as_ref().map(|k| (k.login.principal(), k.keytab.as_deref()))
    }

    /// The Hadoop user this login acts as (see [`submit::hadoop_user`]).
    pub fn user(&self) -> Result<String> {
        submit::hadoop_user(&self.conf, self.kerberos.as_ref().map(|k| k.login.principal()))
    }

    pub fn staging(&self, user: &str) -> Result<staging::AnyStaging> {
        Ok(staging::open(&self.conf.default_fs()?, user, self.conf.conf_dir.as_deref(), self.hdfs_login())?)
    }

    /// With Kerberos the user is the login's; without, [`submit::current_user`]
    /// (what [`Cluster::user`] is then too).
    pub fn rm(&self) -> Result<RmRestClient> {
        RmRestClient::from_conf(&self.conf, submit::rest_auth(&submit::current_user(), self.kerberos.as_ref()))
    }
}

pub async fn submit(args: SubmitArgs) -> Result<ExitCode> {
    let conf = load_conf(&args.yarn)?;
    let kerberos = kerberos(&conf, args.keytab.as_deref(), args.principal.as_deref())?;
    let memory = parse_memory(&args.am_memory).map_err(anyhow::Error::msg).context("--am-memory")?;
    let mode = if args.session { Mode::Session } else { Mode::Application };
    let name = args.name.clone().unwrap_or_else(|| match (&args.bundle, mode) {
        (Some(b), _) => std::fs::canonicalize(b)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().trim_end_matches(".tar.gz").to_owned()))
            .unwrap_or_else(|| "yarn-flink".into()),
        (None, _) => "yarn-flink session".into(),
    });
    let user = submit::hadoop_user(&conf, kerberos.as_ref().map(|k| k.login.principal()))?;
    let plan = SubmitPlan {
        conf,
        user,
        name,
        queue: args.queue.clone(),
        mode,
        bundle: args.bundle.clone(),
        binary: crate::yarn::cluster_binary::choose()?,
        am_resource: RestResource { memory: memory.div_ceil(1 << 20), vcores: args.am_vcores },
        max_attempts: args.max_attempts,
        tags: args.tags.clone(),
        cluster: cluster_shape(&args.cluster)?,
        detached: args.detached,
        poll: args.poll_interval,
        kerberos,
    };
    submit::submit(plan).await
}

pub async fn kill(args: &YarnArgs, id: &str) -> Result<ExitCode> {
    let cluster = Cluster::login_with(args, None, None)?;
    let staging = cluster.staging(&cluster.user()?).ok();
    submit::kill(&cluster.rm()?, staging.as_ref(), id, Duration::from_secs(60)).await
}

pub async fn list(args: &YarnArgs) -> Result<ExitCode> {
    let cluster = Cluster::login_with(args, None, None)?;
    submit::print_list(&cluster.rm()?.list().await?);
    Ok(ExitCode::SUCCESS)
}

pub async fn status(args: &YarnArgs, id: &str) -> Result<ExitCode> {
    if !id.starts_with("application_") {
        bail!("{id} is not a YARN application id (application_<cluster>_<n>); for a session's job pass -m host:port");
    }
    let report = Cluster::login_with(args, None, None)?.rm()?.app(id).await?;
    submit::print_report(&report);
    // A running AM whose secret this client saved: its TaskManagers, and why each has its shape.
    let secret = crate::rest_client::session_dir(id).join("secret");
    if report.state == "RUNNING" && secret.is_file() {
        if let Some(address) = submit::am_rest_address(&report) {
            // The AM's own address: the RM's web proxy would drop the token.
            if let Ok(s) = common::rpc::AppSecret::read_from(&secret) {
                println!("web UI: http://{address}/#token={}", s.read_only_token());
            }
            match crate::rest_client::RestClient::new(&address, Some(&secret))?.get("/taskmanagers").await {
                Ok(v) => print_task_managers(&v),
                Err(e) => eprintln!("(cannot ask the AM for its TaskManagers: {e})"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the YARN session `id` serves its REST API: the AM registers that
/// port as its RPC port (as Flink's AM does), so the application report's
/// `amRPCAddress` names it. The RM's web proxy is not used: it forwards no
/// `Authorization` header and answers POST and DELETE itself with 405.
pub async fn session_address(id: &str) -> Result<String> {
    let conf = HadoopConf::load_from_env()?;
    let kerberos = kerberos(&conf, None, None)?;
    let report = Cluster { conf, kerberos }.rm()?.app(id).await?;
    if report.state != "RUNNING" {
        bail!(
            "the YARN session {id} is {} (final status {}), not RUNNING; start one with `yarn-flink submit --session`",
            report.state,
            report.final_status
        );
    }
    submit::am_rest_address(&report).with_context(|| {
        format!("the application report of {id} names no AM address (amRPCAddress); is it a yarn-flink session?")
    })
}

/// `GET /taskmanagers` as `status` prints it: one line per TaskManager.
fn print_task_managers(v: &serde_json::Value) {
    let tms = v["taskmanagers"].as_array().cloned().unwrap_or_default();
    println!("taskmanagers: {}", tms.len());
    for t in tms {
        let r = &t["totalResource"];
        let memory = ["taskHeapMemory", "taskOffHeapMemory", "managedMemory", "networkMemory"]
            .iter()
            .map(|k| r[*k].as_u64().unwrap_or(0))
            .sum::<u64>();
        println!(
            "  {}  {} cpu, {memory} MB, {} slots ({} used): {}",
            t["id"].as_str().unwrap_or("?"),
            r["cpuCores"].as_f64().unwrap_or(0.0),
            t["slotsNumber"],
            t["allocatedSlots"],
            t["why"].as_str().unwrap_or("not started by this ResourceManager")
        );
        if let Some(c) = t["container"].as_str() {
            println!("    container {c}{}", t["log"].as_str().map(|l| format!(", log {l}")).unwrap_or_default());
        }
    }
}
