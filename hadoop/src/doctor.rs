//! `yarn-flink doctor`: what an operator runs first on an edge node.
//!
//! It reports which configuration was loaded, where the ResourceManager(s),
//! scheduler, web app and NameNode(s) are said to be, which auth mode would be
//! used, the Kerberos login when security is on, and then tries them: a TCP
//! connect to each RM and NameNode and an HTTP GET of the RM's
//! `/ws/v1/cluster/info`, each bounded by a timeout. Every check ends in a
//! plain verdict and, unless it is fine, the fix.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::conf::{
    resolve_host_principal, split_host_port, ConfError, HadoopConf, HttpPolicy, RpcProtection, SecurityMode,
};
use crate::credentials::{Credentials, TokenIdentifier};
use crate::kerberos::KerberosLogin;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Short name, e.g. `rm tcp rm1=host:8032`.
    pub name: String,
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// What to do, when the verdict is not `Ok`.
    pub fix: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct DoctorReport {
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// The worst verdict (`Ok` when there are no checks).
    pub fn worst(&self) -> Verdict {
        self.checks.iter().map(|c| c.verdict).max().unwrap_or(Verdict::Ok)
    }

    pub fn check(&self, name_prefix: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name.starts_with(name_prefix))
    }

    fn push(&mut self, name: impl Into<String>, verdict: Verdict, detail: impl Into<String>, fix: Option<String>) {
        self.checks.push(Check { name: name.into(), verdict, detail: detail.into(), fix });
    }

    fn ok(&mut self, name: impl Into<String>, detail: impl Into<String>) {
        self.push(name, Verdict::Ok, detail, None);
    }

    fn conf_fail(&mut self, name: &str, e: &ConfError) {
        self.push(name, Verdict::Fail, e.to_string(), Some("fix the configuration as the message says".into()));
    }
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &self.checks {
            writeln!(f, "[{:>4}] {:width$}  {}", c.verdict.to_string(), c.name, c.detail)?;
            if let Some(fix) = &c.fix {
                writeln!(f, "       {:width$}  fix: {fix}", "")?;
            }
        }
        let (w, x) = (
            self.checks.iter().filter(|c| c.verdict == Verdict::Warn).count(),
            self.checks.iter().filter(|c| c.verdict == Verdict::Fail).count(),
        );
        write!(f, "{} checks: {} failed, {} warnings", self.checks.len(), x, w)
    }
}

/// How doctor logs in and how long it waits.
#[derive(Clone, Debug)]
pub struct DoctorOptions {
    /// Per network check.
    pub timeout: Duration,
    /// Log in from this keytab (with `principal`) instead of the ticket cache.
    pub keytab: Option<PathBuf>,
    pub principal: Option<String>,
    /// Ticket cache to use instead of the default.
    pub ccache: Option<String>,
    /// Skip the TCP and HTTP checks (configuration and login only).
    pub offline: bool,
    /// A token file to list (the CLI passes `HADOOP_TOKEN_FILE_LOCATION`).
    pub token_file: Option<PathBuf>,
}

impl Default for DoctorOptions {
    fn default() -> Self {
        DoctorOptions {
            timeout: Duration::from_secs(5),
            keytab: None,
            principal: None,
            ccache: None,
            offline: false,
            token_file: None,
        }
    }
}

/// Runs every check; never fails (failures are verdicts in the report).
pub async fn run(conf: &HadoopConf, opts: &DoctorOptions) -> DoctorReport {
    let mut r = DoctorReport::default();
    config_checks(conf, &mut r);

    let rm = conf.rm_addresses();
    match &rm {
        Ok(v) => address_check(&mut r, "rm address", v, "yarn.resourcemanager.address / .hostname"),
        Err(e) => r.conf_fail("rm address", e),
    }
    match conf.scheduler_addresses() {
        Ok(v) => address_check(&mut r, "scheduler address", &v, "yarn.resourcemanager.scheduler.address"),
        Err(e) => r.conf_fail("scheduler address", &e),
    }
    let web = conf.rm_webapp_urls();
    match &web {
        Ok(v) => r.ok("rm webapp", join(v)),
        Err(e) => r.conf_fail("rm webapp", e),
    }
    let nn = conf.namenode_addresses();
    match &nn {
        Ok(v) if v.is_empty() => r.push(
            "namenode address",
            Verdict::Warn,
            format!("fs.defaultFS = {} is not HDFS", conf.get_raw("fs.defaultFS").unwrap_or("")),
            Some("set fs.defaultFS to hdfs://<namenode or nameservice> in core-site.xml to ship files via HDFS".into()),
        ),
        Ok(v) => r.ok("namenode address", join(v)),
        Err(e) => r.conf_fail("namenode address", e),
    }
    for (key, value) in [
        ("yarn.scheduler.maximum-allocation-mb", conf.max_allocation().map(|(mb, vc)| format!("{mb} MB, {vc} vcores"))),
        ("yarn.scheduler.minimum-allocation-mb", conf.min_allocation_mb().map(|mb| format!("{mb} MB"))),
    ] {
        match value {
            Ok(v) => r.ok(key, v),
            Err(e) => r.conf_fail(key, &e),
        }
    }

    let security = conf.security();
    match &security {
        Ok(SecurityMode::Simple) => r.ok("auth", "simple (no Kerberos): the cluster trusts the user name we send"),
        Ok(SecurityMode::Kerberos) => r.ok("auth", "kerberos"),
        Err(e) => r.conf_fail("auth", e),
    }
    match conf.rpc_protection() {
        Ok(p) if p.contains(&RpcProtection::Authentication) => r.ok("rpc protection", list(&p)),
        Ok(p) => r.push(
            "rpc protection",
            Verdict::Fail,
            format!("hadoop.rpc.protection = {}", list(&p)),
            Some("yarn-flink speaks `authentication` only; the cluster must allow it in hadoop.rpc.protection".into()),
        ),
        Err(e) => r.conf_fail("rpc protection", &e),
    }
    let secure = matches!(security, Ok(SecurityMode::Kerberos));
    if secure {
        kerberos_check(conf, opts, &mut r);
    }
    if let Some(path) = &opts.token_file {
        token_file_check(path, &mut r);
    }

    if opts.offline {
        return r;
    }
    if let Ok(v) = &rm {
        for e in v {
            tcp_check(&mut r, &format!("rm tcp {e}"), &e.address, opts.timeout).await;
        }
    }
    if let Ok(v) = &nn {
        for e in v {
            tcp_check(&mut r, &format!("namenode tcp {e}"), &e.address, opts.timeout).await;
        }
    }
    if let (Ok(v), Ok(policy)) = (&web, conf.http_policy()) {
        for e in v {
            http_info_check(&mut r, &e.to_string(), &e.address, policy, secure, opts.timeout).await;
        }
    }
    r
}

fn list(p: &[RpcProtection]) -> String {
    p.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")
}

fn join(v: &[crate::conf::Endpoint]) -> String {
    v.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")
}

fn config_checks(conf: &HadoopConf, r: &mut DoctorReport) {
    match &conf.conf_dir {
        None => r.push(
            "config dir",
            Verdict::Warn,
            "none (HADOOP_CONF_DIR and HADOOP_HOME unset): Hadoop defaults only",
            Some(
                "export HADOOP_CONF_DIR=<the directory with core-site.xml and yarn-site.xml, e.g. /etc/hadoop/conf>"
                    .into(),
            ),
        ),
        Some(dir) => {
            let loaded = conf.loaded_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
            r.ok(
                "config dir",
                format!("{} (loaded: {})", dir.display(), if loaded.is_empty() { "none" } else { &loaded }),
            );
            if !conf.missing_files.is_empty() {
                let missing = conf.missing_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
                let verdict = if conf.loaded_files.is_empty() { Verdict::Fail } else { Verdict::Warn };
                r.push(
                    "config files",
                    verdict,
                    format!("missing: {missing}"),
                    Some(
                        "copy the cluster's client configuration (core-site.xml, hdfs-site.xml, yarn-site.xml) here"
                            .into(),
                    ),
                );
            }
        }
    }
    if !conf.ignored_overrides.is_empty() {
        r.push(
            "final properties",
            Verdict::Warn,
            format!("later files tried to override final values: {}", conf.ignored_overrides.join("; ")),
            Some("remove the overrides, or drop <final> where the property is defined".into()),
        );
    }
}

fn address_check(r: &mut DoctorReport, name: &str, v: &[crate::conf::Endpoint], key: &str) {
    let wildcard = v.iter().any(|e| split_host_port(&e.address).is_some_and(|(h, _)| h == "0.0.0.0"));
    if wildcard {
        r.push(
            name,
            Verdict::Warn,
            format!("{} (0.0.0.0: the default; is yarn-site.xml loaded?)", join(v)),
            Some(format!("set {key} (or yarn.resourcemanager.hostname) in yarn-site.xml")),
        );
    } else {
        r.ok(name, join(v));
    }
}

fn kerberos_check(conf: &HadoopConf, opts: &DoctorOptions, r: &mut DoctorReport) {
    let login = match (&opts.keytab, &opts.principal) {
        (Some(kt), Some(p)) => KerberosLogin::from_keytab(kt, p),
        (Some(_), None) | (None, Some(_)) => {
            r.push(
                "kerberos login",
                Verdict::Fail,
                "a keytab needs a principal and the other way round",
                Some("pass both --keytab and --principal, or neither to use the ticket cache".into()),
            );
            return;
        }
        (None, None) => KerberosLogin::from_ticket_cache(opts.ccache.as_deref()),
    };
    match login {
        Ok(login) => {
            let left = login.expires_at().duration_since(SystemTime::now()).unwrap_or_default();
            let detail = format!(
                "{} until {} (in {}h{:02}m)",
                login.principal(),
                format_utc(login.expires_at()),
                left.as_secs() / 3600,
                left.as_secs() / 60 % 60
            );
            if left < Duration::from_secs(3600) {
                r.push("kerberos login", Verdict::Warn, detail, Some("renew soon: `kinit -R` or `kinit`".into()));
            } else {
                r.ok("kerberos login", detail);
            }
        }
        Err(e) => r.push("kerberos login", Verdict::Fail, e.to_string(), Some("see the message".into())),
    }
    for (key, servers) in [
        ("yarn.resourcemanager.principal", conf.rm_addresses()),
        ("dfs.namenode.kerberos.principal", conf.namenode_addresses()),
    ] {
        match conf.get(key) {
            Ok(Some(p)) => {
                // What the client will ask the KDC for, per server (`_HOST` resolved).
                let resolved: Vec<String> = servers
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|e| split_host_port(&e.address).map(|(h, _)| resolve_host_principal(&p, h)))
                    .collect();
                let detail = if resolved.is_empty() { p } else { format!("{p} -> {}", resolved.join(", ")) };
                r.ok(key, detail)
            }
            Ok(None) => r.push(
                key,
                Verdict::Warn,
                "not set; the server's NEGOTIATE will be trusted for its principal",
                Some(format!("set {key} (e.g. rm/_HOST@REALM) as the cluster has it")),
            ),
            Err(e) => r.conf_fail(key, &e),
        }
    }
}

fn token_file_check(path: &std::path::Path, r: &mut DoctorReport) {
    let creds = match Credentials::read_file(path) {
        Ok(c) => c,
        Err(e) => {
            r.push(
                "token file",
                Verdict::Fail,
                e.to_string(),
                Some("unset HADOOP_TOKEN_FILE_LOCATION or point it at a valid token file".into()),
            );
            return;
        }
    };
    r.ok(
        "token file",
        format!("{}: {} token(s), {} secret(s)", path.display(), creds.tokens.len(), creds.secrets.len()),
    );
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    for (alias, token) in &creds.tokens {
        let id = token.decode_identifier();
        let name = format!("token {} {}", token.kind, if token.service.is_empty() { alias } else { &token.service });
        match &id {
            TokenIdentifier::Delegation(d) if d.max_date_ms <= now_ms => r.push(
                name,
                Verdict::Warn,
                format!("{} (past its maximum lifetime)", id.summary()),
                Some("fetch a new delegation token; this one can no longer be renewed or used".into()),
            ),
            _ => r.ok(name, id.summary()),
        }
    }
}

async fn tcp_check(r: &mut DoctorReport, name: &str, address: &str, timeout: Duration) {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
        Ok(Ok(_)) => r.ok(name, "reachable"),
        Ok(Err(e)) => r.push(
            name,
            Verdict::Fail,
            format!("cannot connect: {e}"),
            Some("check that the service runs there, the address in the configuration, and firewalls".into()),
        ),
        Err(_) => r.push(
            name,
            Verdict::Fail,
            format!("no answer within {}s", timeout.as_secs_f32()),
            Some("a firewall may drop the connection; check the address and the network path".into()),
        ),
    }
}

async fn http_info_check(
    r: &mut DoctorReport,
    label: &str,
    url: &str,
    policy: HttpPolicy,
    secure: bool,
    timeout: Duration,
) {
    let name = format!("rm http {label}/ws/v1/cluster/info");
    let Some(authority) = url.strip_prefix("http://") else {
        debug_assert_eq!(policy, HttpPolicy::HttpsOnly);
        r.push(
            name,
            Verdict::Warn,
            "HTTPS_ONLY: not checked (doctor speaks plain HTTP only)",
            Some("check it with `curl --negotiate -u : <url>/ws/v1/cluster/info`".into()),
        );
        return;
    };
    match tokio::time::timeout(timeout, http_get(authority, "/ws/v1/cluster/info")).await {
        Err(_) => r.push(
            name,
            Verdict::Fail,
            format!("no answer within {}s", timeout.as_secs_f32()),
            Some("check yarn.resourcemanager.webapp.address and that the RM is up".into()),
        ),
        Ok(Err(e)) => r.push(
            name,
            Verdict::Fail,
            format!("request failed: {e}"),
            Some("check yarn.resourcemanager.webapp.address and that the RM is up".into()),
        ),
        Ok(Ok((200, body))) => {
            let info = serde_json::from_str::<serde_json::Value>(&body).ok();
            let field = |k: &str| {
                info.as_ref()
                    .and_then(|v| v.get("clusterInfo"))
                    .and_then(|c| c.get(k))
                    .and_then(|v| v.as_str())
                    .unwrap_or("?")
                    .to_owned()
            };
            r.ok(
                name,
                format!("200: state {}, HA {}, Hadoop {}", field("state"), field("haState"), field("hadoopVersion")),
            );
        }
        Ok(Ok((401, _))) if secure => {
            r.push(name, Verdict::Ok, "401 Negotiate: the web app wants SPNEGO, as a secure cluster should", None)
        }
        Ok(Ok((status, _))) => r.push(
            name,
            Verdict::Fail,
            format!("HTTP {status}"),
            Some("the address may not be a ResourceManager web app; check yarn.resourcemanager.webapp.address".into()),
        ),
    }
}

/// A minimal HTTP/1.1 GET (no TLS, no redirects): (status, body).
async fn http_get(authority: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(authority).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nUser-Agent: yarn-flink-doctor\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    // Cluster info is small; a cap keeps a misbehaving server from filling memory.
    stream.take(256 * 1024).read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let status_line = text.lines().next().ok_or_else(bad)?;
    let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
fn format_utc(t: SystemTime) -> String {
    crate::credentials::format_utc_secs(t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64)
}

#[cfg(test)]
mod tests;
