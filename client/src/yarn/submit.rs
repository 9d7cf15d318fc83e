//! `yarn-flink submit`: the upload, the AM container contract filled in
//! (`am::drivers::yarn::contract`, see `docs/yarn.md`), the submission and
//! the follow loop; plus `list`, `status`, `kill`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::rpc::AppSecret;
use hadoop::conf::HadoopConf;
use hadoop::credentials::Credentials;

use hadoop::kerberos::KerberosLogin;

use am::drivers::yarn::contract::{
    self, AmContract, ClusterShape, KeytabLogin, LocalResourceEntry, CONTRACT_VERSION, KEYTAB_LINK,
};
pub use am::drivers::yarn::contract::{Mode, BINARY_LINK, BUNDLE_LINK, CONTRACT_LINK, SECRET_ALIAS};

use super::cluster_binary;
use super::rest::{
    AmContainerSpec, AppReport, Commands, Entries, RestAuth, RestLocalResource, RestResource, RmRestClient,
    SubmissionContext, APPLICATION_TYPE,
};
use super::staging::{self, Staging, Upload};

/// A submission with every path and value resolved (what `cli::SubmitArgs` becomes).
#[derive(Clone, Debug)]
pub struct SubmitPlan {
    pub conf: HadoopConf,
    pub user: String,
    pub name: String,
    pub queue: String,
    pub mode: Mode,
    /// Application mode: a bundle directory, a job.toml, or a .tar.gz.
    pub bundle: Option<PathBuf>,
    /// The `yarn-flink` binary to ship (normally this one), or its packed `.tar.gz`.
    pub binary: PathBuf,
    pub am_resource: RestResource,
    pub max_attempts: u32,
    pub tags: Vec<String>,
    pub cluster: ClusterShape,
    pub detached: bool,
    pub poll: Duration,
    /// Set on Kerberized clusters (`hadoop.security.authentication=kerberos`).
    pub kerberos: Option<KerberosIdentity>,
}

/// Who we are on a Kerberized cluster.
#[derive(Clone)]
pub struct KerberosIdentity {
    pub login: KerberosLogin,
    /// Given with --keytab: the HDFS client logs in from it too.
    pub keytab: Option<PathBuf>,
}

impl std::fmt::Debug for KerberosIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KerberosIdentity").field("principal", &self.login.principal()).finish_non_exhaustive()
    }
}

/// REST authentication for the cluster's security mode.
pub fn rest_auth(user: &str, kerberos: Option<&KerberosIdentity>) -> RestAuth {
    match kerberos {
        Some(k) => RestAuth::Kerberos { login: k.login.clone() },
        None => RestAuth::Simple { user: user.to_owned() },
    }
}

/// The user Hadoop acts as: on a Kerberized cluster the login principal's
/// short name under `hadoop.security.auth_to_local` (what HDFS and YARN call
/// the user: `alice@REALM` is `alice`, whatever the Unix login), else
/// [`current_user`]. The staging dir is this user's.
pub fn hadoop_user(conf: &HadoopConf, principal: Option<&str>) -> Result<String> {
    hadoop_user_in(conf, principal, hadoop::auth_to_local::default_realm().as_deref())
}

/// [`hadoop_user`] with krb5.conf's default realm given; without one, the
/// login's own realm counts as the default.
fn hadoop_user_in(conf: &HadoopConf, principal: Option<&str>, default_realm: Option<&str>) -> Result<String> {
    let Some(principal) = principal else { return Ok(current_user()) };
    let rules = conf.auth_to_local()?;
    let own_realm = principal.rsplit_once('@').map(|(_, r)| r);
    Ok(rules.short_name(principal, default_realm.or(own_realm))?)
}

/// Delegation tokens for the AM on a Kerberized cluster: one from the
/// NameNode(s) of `fs.defaultFS` (when it is HDFS) and one from the RM, both
/// renewable by the RM, as (alias, token) with the alias = the token's
/// service, as Hadoop's `Credentials` keys them.
///
/// The renewer is the RM's *full* principal (`_HOST` resolved): the NameNode
/// shortens it by its own auth_to_local rules (often `rm/*` → `yarn`) and
/// later accepts a renewal only from that user. Services follow
/// `hadoop.security.token.service.use_ip`: `127.0.0.1:9000`, or
/// `ha-hdfs:<nameservice>` for an HA file system.
pub async fn delegation_tokens(
    conf: &HadoopConf,
    login: &KerberosLogin,
    rm: &RmRestClient,
) -> Result<Vec<(String, hadoop::credentials::Token)>> {
    let rms = conf.rm_addresses()?;
    let rm_host = rms.first().and_then(|e| hadoop::conf::split_host_port(&e.address)).map(|(h, _)| h.to_owned());
    let renewer = conf
        .rm_principal(rm_host.as_deref().unwrap_or("localhost"))?
        .context("yarn.resourcemanager.principal is not set in yarn-site.xml; a Kerberized cluster needs it (the renewer of the AM's delegation tokens)")?;
    let use_ip = conf.token_service_use_ip()?;
    let mut out = Vec::new();
    let hdfs = hadoop::hdfs::delegation::obtain_for_default_fs(conf, login, &renewer)
        .await
        .context("cannot get an HDFS delegation token for the AM from the NameNode")?;
    if let Some(token) = hdfs {
        eprintln!("  HDFS delegation token for {} (renewer {renewer})", token.service);
        out.push((token.service.clone(), token));
    }
    let mut token = rm.delegation_token(&renewer).await.context("cannot get an RM delegation token for the AM")?;
    // ClientRMProxy's service for RM tokens: every RM's client address, comma-separated.
    token.service =
        rms.iter().map(|e| hadoop::credentials::token_service(&e.address, use_ip)).collect::<Vec<_>>().join(",");
    eprintln!("  RM delegation token for {} (renewer {renewer})", token.service);
    out.push((token.service.clone(), token));
    Ok(out)
}

/// The user Hadoop would act as: `HADOOP_USER_NAME`, else the login user.
pub fn current_user() -> String {
    if let Some(u) = std::env::var("HADOOP_USER_NAME").ok().filter(|u| !u.is_empty()) {
        return u;
    }
    if let Some(u) = std::env::var("USER").ok().filter(|u| !u.is_empty()) {
        return u;
    }
    // SAFETY: getpwuid returns a pointer into static storage or null; we copy at once.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned();
        }
    }
    "nobody".into()
}

/// Human-readable bytes.
pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// Uploads `local` through the cache, printing what happened.
async fn stage_one<S: Staging>(staging: &S, local: &Path, name: &str) -> Result<Upload> {
    let started = Instant::now();
    // A bar on a terminal; on a pipe only the summary line below.
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut progress = |done: u64, total: u64| {
        let b = bar.get_or_insert_with(|| {
            crate::commands::progress::upload_bar(name, total).unwrap_or_else(indicatif::ProgressBar::hidden)
        });
        b.set_position(done);
    };
    let up = staging::upload_cached(staging, local, name, &mut progress)
        .await
        .with_context(|| format!("cannot stage {}", local.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if up.reused {
        eprintln!("  {name}: reused ({}, cached as {})", bytes(up.file.size), &up.sha256[..12]);
    } else {
        eprintln!("  {name}: uploaded {} in {:.1?}", bytes(up.file.size), started.elapsed());
    }
    Ok(up)
}

/// Totals of one submission's staging, for the user and the tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct StagingFigures {
    pub uploaded_bytes: u64,
    pub reused_bytes: u64,
    pub uploaded_files: u32,
    pub reused_files: u32,
}

/// The bundle as a `.tar.gz` file: packed (deterministically) when it is a
/// directory or a lone job.toml, as is when it already is an archive.
fn bundle_archive(bundle: &Path, tmp: &Path) -> Result<PathBuf> {
    let meta = std::fs::metadata(bundle).with_context(|| {
        format!(
            "bundle {} does not exist; give a directory with a job.toml, a job.toml, or a .tar.gz",
            bundle.display()
        )
    })?;
    let name = bundle.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if meta.is_file() && (name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
        return Ok(bundle.to_owned());
    }
    let out = tmp.join("bundle.tar.gz");
    if meta.is_dir() {
        staging::pack_dir(bundle, &out)?;
    } else {
        // A lone job spec: pack it as the bundle's job.toml.
        let dir = tmp.join("bundle");
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(bundle, dir.join("job.toml")).with_context(|| format!("cannot read {}", bundle.display()))?;
        staging::pack_dir(&dir, &out)?;
    }
    Ok(out)
}

fn entry(file: &staging::RemoteFile, kind: &str) -> LocalResourceEntry {
    LocalResourceEntry {
        url: file.url.clone(),
        size: i64::try_from(file.size).unwrap_or(i64::MAX),
        timestamp: file.timestamp_ms,
        kind: kind.into(),
        visibility: "APPLICATION".into(),
    }
}

fn rest_resource(e: &LocalResourceEntry) -> RestLocalResource {
    RestLocalResource {
        resource: e.url.clone(),
        kind: e.kind.clone(),
        visibility: e.visibility.clone(),
        size: u64::try_from(e.size).unwrap_or(0),
        timestamp: e.timestamp,
    }
}

/// The contract the AM reads (its local resources are what TaskManagers get).
pub fn am_contract(
    plan: &SubmitPlan,
    staging_dir: &str,
    resources: BTreeMap<String, LocalResourceEntry>,
) -> AmContract {
    AmContract {
        version: CONTRACT_VERSION,
        mode: plan.mode,
        bundle: (plan.mode == Mode::Application).then(|| BUNDLE_LINK.to_string()),
        staging_dir: Some(staging_dir.to_owned()),
        local_resources: resources,
        cluster: plan.cluster.clone(),
        keytab_login: plan.kerberos.as_ref().and_then(|k| {
            k.keytab
                .as_ref()
                .map(|_| KeytabLogin { principal: k.login.principal().to_owned(), keytab: KEYTAB_LINK.into() })
        }),
        max_attempts: plan.max_attempts,
    }
}

/// Builds the `am-container-spec`: the contract's resources plus the
/// contract file itself, the checked environment, the command.
pub fn am_container_spec(
    plan: &SubmitPlan,
    contract: &AmContract,
    contract_file: &staging::RemoteFile,
    keytab: Option<&staging::RemoteFile>,
    credentials: &Credentials,
) -> Result<AmContainerSpec> {
    let mut resources: BTreeMap<String, RestLocalResource> =
        contract.local_resources.iter().map(|(k, e)| (k.clone(), rest_resource(e))).collect();
    resources.insert(CONTRACT_LINK.into(), rest_resource(&entry(contract_file, "FILE")));
    // The AM's alone: TaskManagers never get it (they get the tokens it obtains).
    if let Some(k) = keytab {
        resources.insert(KEYTAB_LINK.into(), rest_resource(&entry(k, "FILE")));
    }
    let simple = plan.conf.security()? == hadoop::conf::SecurityMode::Simple;
    let rust_log = std::env::var("RUST_LOG").ok();
    let env = contract::am_environment(simple.then_some(plan.user.as_str()), rust_log.as_deref())?;
    Ok(AmContainerSpec {
        local_resources: resources.into_iter().collect(),
        environment: env.into_iter().collect::<Entries<String>>(),
        commands: Commands { command: contract::am_command() },
        credentials: credentials.to_rest_json(),
    })
}

/// Loads the bundle on the edge node and refuses what cannot work in the
/// cluster, before anything is uploaded.
pub fn check_bundle(bundle: &Path, limits: &common::jobspec::BundleLimits) -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("yarn-flink-check-").tempdir()?;
    let loaded = common::jobspec::Bundle::load(bundle, tmp.path().join("b"), limits)?;
    if let Some((vertex, path)) = loaded.spec.relative_sinks().first() {
        bail!(
            "{}: the sink of vertex {vertex:?} writes to the relative path {path:?}; on YARN that lands in the \
             NodeManager's localized copy of the bundle, which is deleted when the application ends. Write to \
             HDFS instead, e.g. path = \"hdfs:///user/<you>/{path}\" (or an absolute path on a file system every \
             node shares)",
            loaded.spec_path.display()
        );
    }
    Ok(())
}

/// Submits and (unless detached) follows to the end. The exit code is the job's result.
pub async fn submit(plan: SubmitPlan) -> Result<ExitCode> {
    let started = Instant::now();
    if let Some(bundle) = &plan.bundle {
        // Unpacking is file work: off the async workers (so for packing, below).
        let (bundle, limits) = (bundle.clone(), plan.cluster.bundle_limits);
        tokio::task::spawn_blocking(move || check_bundle(&bundle, &limits)).await??;
    }
    let rm = RmRestClient::from_conf(&plan.conf, rest_auth(&plan.user, plan.kerberos.as_ref()))?;
    let app = rm.new_application().await?;
    let max = app.maximum_resource_capability;
    if plan.am_resource.memory > max.memory || plan.am_resource.vcores > max.vcores {
        // Refused up front: nothing uploaded, nothing submitted.
        bail!(super::rest::RmError::OverMaximum { asked: plan.am_resource, max });
    }
    let id = app.application_id.clone();
    let default_fs = plan.conf.default_fs()?;
    let kerberos = plan.kerberos.as_ref().map(|k| (k.login.principal(), k.keytab.as_deref()));
    let staging = staging::open(&default_fs, &plan.user, plan.conf.conf_dir.as_deref(), kerberos)?;
    let app_dir = format!("{}/{id}", staging.root());
    eprintln!("Staging to {} (cache: {}/cache)", app_dir, staging.root());

    let result = async {
        let tmp = tempfile::Builder::new().prefix("yarn-flink-submit-").tempdir()?;
        let mut figures = StagingFigures::default();
        let mut resources = BTreeMap::new();
        let binary = {
            let binary = plan.binary.clone();
            tokio::task::spawn_blocking(move || cluster_binary::archive_for(&binary)).await??
        };
        let mut uploads =
            vec![(stage_one(&staging, &binary, cluster_binary::ARCHIVE_NAME).await?, "ARCHIVE", BINARY_LINK)];
        if let Some(bundle) = &plan.bundle {
            let archive = {
                let (bundle, tmp) = (bundle.clone(), tmp.path().to_owned());
                tokio::task::spawn_blocking(move || bundle_archive(&bundle, &tmp)).await??
            };
            uploads.push((stage_one(&staging, &archive, "bundle.tar.gz").await?, "ARCHIVE", BUNDLE_LINK));
        }
        for (up, kind, link) in &uploads {
            if up.reused {
                figures.reused_bytes += up.file.size;
                figures.reused_files += 1;
            } else {
                figures.uploaded_bytes += up.file.size;
                figures.uploaded_files += 1;
            }
            resources.insert(link.to_string(), entry(&up.file, kind));
        }
        eprintln!(
            "Staged: uploaded {} file(s), {}; reused {} file(s), {} from the cache",
            figures.uploaded_files,
            bytes(figures.uploaded_bytes),
            figures.reused_files,
            bytes(figures.reused_bytes)
        );
        let secret = AppSecret::generate();
        let mut credentials = Credentials::default();
        credentials.secrets.push((SECRET_ALIAS.into(), secret.to_hex().into_bytes()));
        if let Some(k) = &plan.kerberos {
            credentials.tokens.extend(delegation_tokens(&plan.conf, &k.login, &rm).await?);
        }
        let contract = am_contract(&plan, &app_dir, resources);
        let contract_file = staging.write(&format!("{id}/{CONTRACT_LINK}"), contract.to_json().as_bytes()).await?;
        // --keytab: into this application's dir (never the shared cache), readable by
        // its owner alone, localized with APPLICATION visibility, removed with the dir.
        let keytab = match plan.kerberos.as_ref().and_then(|k| k.keytab.as_ref()) {
            Some(local) => {
                let rel = format!("{id}/{KEYTAB_LINK}");
                let file = staging.put(local, &rel, &mut |_, _| {}).await?;
                staging.make_private(&rel).await?;
                eprintln!(
                    "  keytab for {} shipped to the ApplicationMaster: it obtains fresh delegation tokens",
                    plan.user
                );
                Some(file)
            }
            None => None,
        };
        let spec = am_container_spec(&plan, &contract, &contract_file, keytab.as_ref(), &credentials)?;
        let mut tags = plan.tags.clone();
        tags.sort();
        tags.dedup();
        let ctx = SubmissionContext {
            application_id: id.clone(),
            application_name: plan.name.clone(),
            application_type: APPLICATION_TYPE.into(),
            application_tags: tags,
            queue: plan.queue.clone(),
            priority: 0,
            max_app_attempts: plan.max_attempts,
            keep_containers_across_application_attempts: true,
            unmanaged_am: false,
            resource: plan.am_resource,
            am_container_spec: spec,
        };
        rm.submit(&ctx, Some(max)).await?;
        anyhow::Ok(secret)
    }
    .await;
    let secret = match result {
        Ok(s) => s,
        Err(e) => {
            // Never submitted: the staging dir is ours to remove (the cache stays).
            let _ = staging.remove_dir(&id).await;
            return Err(e);
        }
    };
    eprintln!("Submitted application {id} to queue {} ({:.1?})", plan.queue, started.elapsed());
    follow(&rm, &staging, &plan, &id, &secret, started).await
}

/// The AM's REST address (`host:port`) for `run -m`: the AM registers its
/// REST port as its RPC port, so it is the report's `amRPCAddress`. (The
/// tracking URL goes through the RM's web proxy, which is read-only and drops
/// `Authorization`: `shared/wire/hadoop-3.3.6/proxy/`.)
pub fn am_rest_address(report: &AppReport) -> Option<String> {
    report.am_rpc_address.clone().filter(|a| !a.is_empty() && !a.ends_with(":-1") && !a.ends_with(":0"))
}

async fn follow<S: Staging>(
    rm: &RmRestClient,
    staging: &S,
    plan: &SubmitPlan,
    id: &str,
    secret: &AppSecret,
    started: Instant,
) -> Result<ExitCode> {
    let mut last = (String::new(), String::new());
    let mut printed_tracking = false;
    // Where the AM's secret is kept while it runs: `status`, `list -m` and `run -m` reach the AM
    // with it, keyed by application id (application mode too).
    let secret_dir = crate::rest_client::session_dir(id);
    loop {
        // A failed report (an RM failover, a network blip) does not end the follow loop: the
        // application goes on either way. Retried with backoff for about a minute.
        let report = {
            use backon::{ExponentialBuilder, Retryable as _};
            let policy = ExponentialBuilder::default()
                .with_min_delay(plan.poll)
                .with_max_delay(Duration::from_secs(10))
                .with_max_times(8);
            (|| rm.app(id))
                .retry(policy)
                .when(|e| !matches!(e, super::rest::RmError::NotFound(_)))
                .notify(|e, after| {
                    eprintln!("{id}: cannot get the application report ({e}); trying again in {after:.1?}")
                })
                .await
                .with_context(|| {
                    format!("stopped following {id}, which keeps running; follow it with `yarn-flink status {id}`")
                })?
        };
        if (report.state.clone(), report.diagnostics.clone()) != last {
            tracing::debug!(diagnostics = %report.diagnostics, "application report");
            let short = hadoop::error::without_java_trace(&report.diagnostics);
            let diag = if short.is_empty() { String::new() } else { format!(" ({short})") };
            eprintln!("{id}: {} after {:.1?}{diag}", report.state, started.elapsed());
            last = (report.state.clone(), report.diagnostics.clone());
        }
        if report.state == "RUNNING" && !printed_tracking {
            printed_tracking = true;
            if let Some(url) = &report.tracking_url {
                eprintln!("Tracking URL: {url}");
            }
            if let Err(e) = std::fs::create_dir_all(&secret_dir)
                .map_err(anyhow::Error::from)
                .and_then(|()| secret.write_to(&secret_dir.join("secret")).map_err(anyhow::Error::from))
            {
                tracing::warn!("cannot save the application secret under {}: {e}", secret_dir.display());
            }
            if plan.mode == Mode::Session {
                let address = am_rest_address(&report).context(
                    "the session's AM is running but reported no address; see its log (`yarn-flink status`)",
                )?;
                // `-m application_<id>` finds the AM through the RM.
                println!("{id}");
                eprintln!(
                    "Session {id} is up (REST API at {address}); its secret is in {}",
                    secret_dir.join("secret").display()
                );
                eprintln!("Submit with: yarn-flink run -m {id} <bundle>; stop with: yarn-flink kill {id}");
                return Ok(ExitCode::SUCCESS);
            }
            if plan.detached {
                println!("{id}");
                eprintln!("Detached: the staging dir stays until the AM or the ops cleanup script removes it");
                return Ok(ExitCode::SUCCESS);
            }
        }
        if report.is_terminal() {
            let _ = std::fs::remove_dir_all(&secret_dir);
            // The client that followed to the end cleans up; the cache stays.
            if let Err(e) = staging.remove_dir(id).await {
                tracing::warn!("cannot remove the staging dir of {id}: {e}");
            }
            return Ok(finish(&report));
        }
        tokio::select! {
            _ = tokio::time::sleep(plan.poll) => {}
            _ = tokio::signal::ctrl_c() => {
                // Interrupting the client never stops the application.
                eprintln!(
                    "Stopped following {id}; it keeps running. Follow it with `yarn-flink status {id}`, stop it with \
                     `yarn-flink kill {id}`; its staging dir stays until then"
                );
                return Ok(ExitCode::from(130));
            }
        }
    }
}

fn finish(report: &AppReport) -> ExitCode {
    eprintln!("Final status: {} ({})", report.final_status, report.state);
    if !report.diagnostics.is_empty() {
        // The RM quotes Java stack traces; `-v` logs them whole.
        eprintln!("Diagnostics: {}", hadoop::error::without_java_trace(&report.diagnostics));
    }
    if let Some(logs) = report.am_container_logs.as_deref().filter(|l| !l.is_empty()) {
        eprintln!("AM logs: {logs}");
    }
    if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `yarn-flink kill <appId>`: asks the RM and waits (up to `wait`) for the end.
pub async fn kill(
    rm: &RmRestClient,
    staging: Option<&staging::AnyStaging>,
    id: &str,
    wait: Duration,
) -> Result<ExitCode> {
    let answer = rm.kill(id).await?;
    eprintln!("{id}: {answer}");
    let deadline = Instant::now() + wait;
    loop {
        let report = rm.app(id).await?;
        if report.is_terminal() {
            println!("{id} {} {}", report.state, report.final_status);
            if let Some(s) = staging {
                let _ = s.remove_dir(id).await;
            }
            return Ok(ExitCode::SUCCESS);
        }
        if Instant::now() > deadline {
            bail!(
                "{id} is still {} after {:?}; the RM keeps killing it, check with `yarn-flink status {id}`",
                report.state,
                wait
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn print_report(r: &AppReport) {
    println!("id:           {}", r.id);
    println!("name:         {}", r.name);
    println!("user/queue:   {} / {}", r.user, r.queue);
    println!("state:        {} (final status {})", r.state, r.final_status);
    println!("progress:     {:.0}%", r.progress);
    if let Some(u) = &r.tracking_url {
        println!("tracking URL: {u}");
    }
    if let Some(l) = &r.am_container_logs {
        println!("AM logs:      {l}");
    }
    if !r.diagnostics.is_empty() {
        tracing::debug!(diagnostics = %r.diagnostics, "full diagnostics");
        println!("diagnostics:  {}", hadoop::error::without_java_trace(&r.diagnostics));
    }
}

pub fn print_list(apps: &[AppReport]) {
    if apps.is_empty() {
        println!("no yarn-flink applications");
    }
    for a in apps {
        println!("{}  {:<9} {:<9} {:<12} {}", a.id, a.state, a.final_status, a.queue, a.name);
    }
}

#[cfg(test)]
mod kerberos_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn am_container_spec_carries_the_contract_as_a_file_and_a_plain_environment() {
        let mut conf = HadoopConf::new();
        conf.set("fs.defaultFS", "file:///");
        let plan = SubmitPlan {
            conf,
            user: "alice".into(),
            name: "wc".into(),
            queue: "default".into(),
            mode: Mode::Application,
            bundle: Some("b".into()),
            binary: "yarn-flink".into(),
            am_resource: RestResource { memory: 1024, vcores: 1 },
            max_attempts: 1,
            tags: vec![],
            cluster: ClusterShape { tm_slots: 2, ..ClusterShape::default() },
            detached: false,
            poll: Duration::from_millis(100),
            kerberos: None,
        };
        let file = |url: &str| staging::RemoteFile { url: url.into(), size: 3, timestamp_ms: 42 };
        let resources = BTreeMap::from([
            (BINARY_LINK.to_string(), entry(&file("file:///s/cache/ab/yarn-flink.tar.gz"), "ARCHIVE")),
            (BUNDLE_LINK.to_string(), entry(&file("file:///s/cache/cd/bundle.tar.gz"), "ARCHIVE")),
        ]);
        let contract = am_contract(&plan, "file:///s/application_1_0001", resources);
        let mut creds = Credentials::default();
        creds.secrets.push((SECRET_ALIAS.into(), b"00ff".to_vec()));
        let contract_file = file("file:///s/application_1_0001/yarn-flink-am.json");
        let spec = am_container_spec(&plan, &contract, &contract_file, None, &creds).unwrap();
        let env: BTreeMap<_, _> = spec.environment.entry.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
        assert_eq!(env["HADOOP_USER_NAME"], "alice");
        // Nothing structured in the environment: every value reaches bash unchanged.
        hadoop::yarn::launch_env::check_all(&env).unwrap();
        hadoop::yarn::launch_env::check("command", &spec.commands.command).unwrap();
        let lr: BTreeMap<_, _> = spec.local_resources.entry.iter().map(|e| (e.key.as_str(), &e.value)).collect();
        assert_eq!(lr[CONTRACT_LINK].kind, "FILE");
        assert_eq!(lr[CONTRACT_LINK].resource, "file:///s/application_1_0001/yarn-flink-am.json");
        assert_eq!(lr[BINARY_LINK].kind, "ARCHIVE");
        assert_eq!(lr[BUNDLE_LINK].kind, "ARCHIVE");
        let back = AmContract::from_json("c", &contract.to_json()).unwrap();
        assert_eq!(back.bundle.as_deref(), Some(BUNDLE_LINK));
        assert_eq!(back.cluster.tm_slots, 2);
        assert!(!back.local_resources.contains_key(CONTRACT_LINK), "TaskManagers do not need the AM's contract");
        let back = Credentials::from_rest_json(&spec.credentials).unwrap();
        assert_eq!(back.secrets, vec![(SECRET_ALIAS.to_string(), b"00ff".to_vec())]);

        // --keytab: the keytab goes to the AM alone, as a FILE of this application
        // (never PUBLIC), and is named nowhere in its environment or command.
        let keytab = file("file:///s/application_1_0001/krb5.keytab");
        let spec = am_container_spec(&plan, &contract, &contract_file, Some(&keytab), &creds).unwrap();
        let lr: BTreeMap<_, _> = spec.local_resources.entry.iter().map(|e| (e.key.as_str(), &e.value)).collect();
        assert_eq!(lr[KEYTAB_LINK].kind, "FILE");
        assert_eq!(lr[KEYTAB_LINK].visibility, "APPLICATION");
        assert!(!contract.local_resources.contains_key(KEYTAB_LINK), "TaskManagers never get the keytab");
        assert!(!spec.commands.command.contains("keytab"));
        assert!(spec.environment.entry.iter().all(|e| !e.value.contains("keytab")));
    }

    /// Real-cluster report, point 8: staging went to `/user/root` (the Unix
    /// login) for the principal `alice@REALM`.
    #[test]
    fn the_hadoop_user_is_the_principal_s_short_name_not_the_unix_login() {
        let mut conf = HadoopConf::new();
        conf.set(
            "hadoop.security.auth_to_local",
            "RULE:[1:$1@$0](.*@CORP.EXAMPLE)s/@.*///L RULE:[2:$1/$2@$0](rm/.*@YARNFLINK.TEST)s/.*/yarn/ DEFAULT",
        );
        let realm = Some("YARNFLINK.TEST");
        assert_eq!(hadoop_user_in(&conf, Some("alice@YARNFLINK.TEST"), realm).unwrap(), "alice");
        assert_eq!(hadoop_user_in(&conf, Some("Alice@CORP.EXAMPLE"), realm).unwrap(), "alice");
        // No krb5.conf default realm: the login's own realm is the default.
        assert_eq!(hadoop_user_in(&conf, Some("alice@YARNFLINK.TEST"), None).unwrap(), "alice");
        conf.set("hadoop.security.auth_to_local", "RULE:[1:$1@$0](.*@CORP.EXAMPLE)s/@.*//");
        let err = hadoop_user_in(&conf, Some("bob@OTHER.REALM"), realm).unwrap_err().to_string();
        assert!(err.contains("bob@OTHER.REALM"), "{err}");
    }

    #[test]
    fn the_rest_address_is_the_registered_rpc_address_never_the_proxy() {
        let mut r = AppReport {
            tracking_url: Some("http://rm:8088/proxy/application_1_0001/".into()),
            am_rpc_address: Some("nm1:4242".into()),
            ..Default::default()
        };
        assert_eq!(am_rest_address(&r).unwrap(), "nm1:4242");
        // What a real RM reports before the AM registered.
        r.am_rpc_address = Some("N/A:-1".into());
        assert_eq!(am_rest_address(&r), None);
        r.am_rpc_address = None;
        assert_eq!(am_rest_address(&r), None);
    }
}
