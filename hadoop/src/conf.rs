//! Hadoop client configuration: `core-site.xml`, `hdfs-site.xml` and
//! `yarn-site.xml` from `HADOOP_CONF_DIR`, read the way Hadoop's
//! `Configuration` reads them.
//!
//! What is reproduced: later files override earlier ones unless a property
//! was marked `<final>true</final>`; `${var}` expands from other properties,
//! `${env.X}` from the environment, up to [`MAX_SUBST_DEPTH`] levels (an
//! undefined variable stays as written, like Hadoop); the defaults of
//! `*-default.xml` for the keys this project reads; NameNode and
//! ResourceManager HA; `_HOST` in service principals.
//!
//! Malformed files are errors naming the file and the line, never a silently
//! empty configuration: an edge node with a half-written `yarn-site.xml`
//! should say so, not submit to `0.0.0.0:8032`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use quick_xml::events::Event;

/// Hadoop's `Configuration.MAX_SUBST`.
pub const MAX_SUBST_DEPTH: usize = 20;
/// No site file is this big; bigger input is refused before parsing.
pub const MAX_CONF_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The site files read from a configuration directory, in override order.
pub const SITE_FILES: [&str; 3] = ["core-site.xml", "hdfs-site.xml", "yarn-site.xml"];

#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("cannot read Hadoop configuration file {path}: {source}; check HADOOP_CONF_DIR")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "HADOOP_CONF_DIR={dir} is not a directory; point it at the directory holding core-site.xml and yarn-site.xml"
    )]
    NotADirectory { dir: PathBuf },
    #[error("{path} line {line}: {detail}; fix the XML (a Hadoop site file is <configuration><property><name>..</name><value>..</value></property>..</configuration>)")]
    Xml { path: PathBuf, line: usize, detail: String },
    #[error("variable substitution in {key} = {value:?} is deeper than {MAX_SUBST_DEPTH} levels (a ${{var}} cycle?); fix the configuration")]
    SubstitutionDepth { key: String, value: String },
    #[error("{key} = {value:?} (from {source_name}) is not {expected}; fix it in the configuration")]
    BadValue { key: String, value: String, expected: String, source_name: String },
    #[error("{key} is not set but {why}; set it in {file}")]
    Missing { key: String, why: String, file: &'static str },
}

/// `hadoop.security.authentication`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityMode {
    Simple,
    Kerberos,
}

/// `hadoop.rpc.protection`: the SASL QOP Hadoop IPC asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RpcProtection {
    Authentication,
    Integrity,
    Privacy,
}

impl std::fmt::Display for RpcProtection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RpcProtection::Authentication => "authentication",
            RpcProtection::Integrity => "integrity",
            RpcProtection::Privacy => "privacy",
        })
    }
}

/// `yarn.http.policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpPolicy {
    HttpOnly,
    HttpsOnly,
}

/// One server of a possibly-HA service: the HA id (`rm1`, `nn1`) when HA is
/// configured, and `host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub id: Option<String>,
    pub address: String,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{id}={}", self.address),
            None => f.write_str(&self.address),
        }
    }
}

#[derive(Clone, Debug)]
struct Property {
    value: String,
    is_final: bool,
    /// File it came from, or `set()` / `default`.
    source: String,
}

/// A loaded configuration. Values are kept raw and substituted on read, as
/// Hadoop does, so `set()` of one key changes every key that refers to it.
#[derive(Clone, Debug, Default)]
pub struct HadoopConf {
    props: BTreeMap<String, Property>,
    /// The configuration directory, if one was used.
    pub conf_dir: Option<PathBuf>,
    /// Files read, in order.
    pub loaded_files: Vec<PathBuf>,
    /// Site files looked for in `conf_dir` but absent.
    pub missing_files: Vec<PathBuf>,
    /// Overrides `final` values that later files tried to change (for doctor).
    pub ignored_overrides: Vec<String>,
    /// When set, `${env.X}` reads this map instead of the process environment.
    env: Option<HashMap<String, String>>,
}

/// The `*-default.xml` values of the keys this project reads.
const DEFAULTS: &[(&str, &str)] = &[
    ("fs.defaultFS", "file:///"),
    ("hadoop.security.authentication", "simple"),
    ("hadoop.rpc.protection", "authentication"),
    ("yarn.resourcemanager.hostname", "0.0.0.0"),
    ("yarn.resourcemanager.address", "${yarn.resourcemanager.hostname}:8032"),
    ("yarn.resourcemanager.scheduler.address", "${yarn.resourcemanager.hostname}:8030"),
    ("yarn.resourcemanager.webapp.address", "${yarn.resourcemanager.hostname}:8088"),
    ("yarn.resourcemanager.webapp.https.address", "${yarn.resourcemanager.hostname}:8090"),
    ("yarn.resourcemanager.ha.enabled", "false"),
    ("yarn.http.policy", "HTTP_ONLY"),
    ("yarn.scheduler.minimum-allocation-mb", "1024"),
    ("yarn.scheduler.maximum-allocation-mb", "8192"),
    ("yarn.scheduler.minimum-allocation-vcores", "1"),
    ("yarn.scheduler.maximum-allocation-vcores", "4"),
];

/// Default ports of the per-RM-id addresses (`yarn.resourcemanager.X.rm1`
/// falls back to `yarn.resourcemanager.hostname.rm1:<port>`).
const RM_ADDRESS_PORTS: &[(&str, u16)] = &[
    ("yarn.resourcemanager.address", 8032),
    ("yarn.resourcemanager.scheduler.address", 8030),
    ("yarn.resourcemanager.webapp.address", 8088),
    ("yarn.resourcemanager.webapp.https.address", 8090),
];

/// The NameNode's RPC port when `fs.defaultFS` names none.
pub const DEFAULT_NAMENODE_PORT: u16 = 8020;

impl HadoopConf {
    /// Only the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads `HADOOP_CONF_DIR`, else `$HADOOP_HOME/etc/hadoop`, else nothing
    /// (defaults only; `conf_dir` stays `None` and doctor says so).
    pub fn load_from_env() -> Result<Self, ConfError> {
        if let Some(dir) = std::env::var_os("HADOOP_CONF_DIR").filter(|d| !d.is_empty()) {
            return Self::load_dir(Path::new(&dir));
        }
        if let Some(home) = std::env::var_os("HADOOP_HOME").filter(|d| !d.is_empty()) {
            let dir = Path::new(&home).join("etc/hadoop");
            if dir.is_dir() {
                return Self::load_dir(&dir);
            }
        }
        Ok(Self::new())
    }

    /// Loads the [`SITE_FILES`] that exist in `dir`.
    pub fn load_dir(dir: &Path) -> Result<Self, ConfError> {
        if !dir.is_dir() {
            return Err(ConfError::NotADirectory { dir: dir.to_owned() });
        }
        let mut conf = Self { conf_dir: Some(dir.to_owned()), ..Self::default() };
        for name in SITE_FILES {
            let path = dir.join(name);
            if path.is_file() {
                conf.add_file(&path)?;
            } else {
                conf.missing_files.push(path);
            }
        }
        Ok(conf)
    }

    /// Loads exactly these files, in order (each must exist).
    pub fn load_files(files: &[PathBuf]) -> Result<Self, ConfError> {
        let mut conf = Self::new();
        for f in files {
            conf.add_file(f)?;
        }
        Ok(conf)
    }

    /// Reads one more site file on top of what is loaded.
    pub fn add_file(&mut self, path: &Path) -> Result<(), ConfError> {
        let read_err = |source| ConfError::Read { path: path.to_owned(), source };
        let size = std::fs::metadata(path).map_err(read_err)?.len();
        if size > MAX_CONF_FILE_BYTES {
            return Err(ConfError::Xml {
                path: path.to_owned(),
                line: 1,
                detail: format!("the file is {size} bytes, too big to be a Hadoop site file"),
            });
        }
        let bytes = std::fs::read(path).map_err(read_err)?;
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t,
            Err(e) => {
                return Err(ConfError::Xml {
                    path: path.to_owned(),
                    line: line_of(&bytes, e.valid_up_to()),
                    detail: "not valid UTF-8".into(),
                })
            }
        };
        let props = parse_site_xml(text).map_err(|(pos, detail)| ConfError::Xml {
            path: path.to_owned(),
            line: line_of(text.as_bytes(), pos),
            detail,
        })?;
        let source = path.display().to_string();
        for (name, value, is_final) in props {
            self.put(name, value, is_final, &source);
        }
        self.loaded_files.push(path.to_owned());
        Ok(())
    }

    /// Parses site-file XML from a string (`origin` names it in errors).
    pub fn add_xml_str(&mut self, xml: &str, origin: &str) -> Result<(), ConfError> {
        let props = parse_site_xml(xml).map_err(|(pos, detail)| ConfError::Xml {
            path: PathBuf::from(origin),
            line: line_of(xml.as_bytes(), pos),
            detail,
        })?;
        for (name, value, is_final) in props {
            self.put(name, value, is_final, origin);
        }
        Ok(())
    }

    fn put(&mut self, name: String, value: String, is_final: bool, source: &str) {
        if let Some(old) = self.props.get(&name) {
            if old.is_final {
                if old.value != value {
                    tracing::warn!(key = %name, kept_from = %old.source, ignored_from = %source,
                        "a final property was overridden by a later file; keeping the final value");
                    self.ignored_overrides.push(format!("{name} (final in {}, ignored from {source})", old.source));
                }
                return;
            }
        }
        self.props.insert(name, Property { value, is_final, source: source.to_owned() });
    }

    /// Sets a value explicitly (e.g. `-D key=value`); wins over files, even final ones.
    pub fn set(&mut self, key: &str, value: &str) {
        self.props.insert(key.to_owned(), Property { value: value.to_owned(), is_final: false, source: "set".into() });
    }

    /// Makes `${env.X}` read `env` instead of the process environment (tests).
    pub fn with_env(mut self, env: HashMap<String, String>) -> Self {
        self.env = Some(env);
        self
    }

    /// The value as written (or the default), not substituted.
    pub fn get_raw(&self, key: &str) -> Option<&str> {
        match self.props.get(key) {
            Some(p) => Some(&p.value),
            None => DEFAULTS.iter().find(|(k, _)| *k == key).map(|(_, v)| *v),
        }
    }

    /// Where the value came from: a file path, `set`, `default`, or `None`.
    pub fn source_of(&self, key: &str) -> Option<&str> {
        match self.props.get(key) {
            Some(p) => Some(&p.source),
            None => DEFAULTS.iter().any(|(k, _)| *k == key).then_some("default"),
        }
    }

    /// The substituted, trimmed value (or the default).
    pub fn get(&self, key: &str) -> Result<Option<String>, ConfError> {
        match self.get_raw(key) {
            None => Ok(None),
            Some(raw) => self.substitute(key, raw).map(|v| Some(v.trim().to_owned())),
        }
    }

    /// `${var}` expansion, Hadoop style: `env.X` from the environment, then
    /// other properties; undefined variables are left as written.
    fn substitute(&self, key: &str, raw: &str) -> Result<String, ConfError> {
        let mut value = raw.to_owned();
        for _ in 0..MAX_SUBST_DEPTH {
            let Some((start, end, var)) = find_var(&value) else { return Ok(value) };
            let replacement = if let Some(name) = var.strip_prefix("env.") {
                match &self.env {
                    Some(env) => env.get(name).cloned(),
                    None => std::env::var(name).ok(),
                }
            } else if var == "user.name" && !self.props.contains_key(var) {
                // A Java system property every daemon has; the nearest thing here.
                std::env::var("USER").ok()
            } else {
                self.get_raw(var).map(str::to_owned)
            };
            let Some(replacement) = replacement else { return Ok(value) };
            value = format!("{}{}{}", &value[..start], replacement, &value[end..]);
        }
        if find_var(&value).is_some() {
            return Err(ConfError::SubstitutionDepth { key: key.to_owned(), value: raw.to_owned() });
        }
        Ok(value)
    }

    fn source_name(&self, key: &str) -> String {
        self.source_of(key).unwrap_or("nowhere").to_owned()
    }

    fn bad(&self, key: &str, value: &str, expected: &str) -> ConfError {
        ConfError::BadValue {
            key: key.into(),
            value: value.into(),
            expected: expected.into(),
            source_name: self.source_name(key),
        }
    }

    fn get_parsed<T: std::str::FromStr>(&self, key: &str, expected: &str) -> Result<Option<T>, ConfError> {
        match self.get(key)? {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| self.bad(key, &v, expected)),
        }
    }

    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, ConfError> {
        match self.get(key)? {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(self.bad(key, &v, "true or false")),
        }
    }

    /// A comma-separated list, trimmed, empty entries dropped.
    pub fn get_list(&self, key: &str) -> Result<Vec<String>, ConfError> {
        Ok(self
            .get(key)?
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default())
    }

    fn required(&self, key: &str) -> Result<String, ConfError> {
        self.get(key)?.ok_or_else(|| ConfError::Missing {
            key: key.into(),
            why: "it has no default".into(),
            file: "the site files",
        })
    }

    // ------------------------------------------------------------------
    // Typed accessors

    pub fn security(&self) -> Result<SecurityMode, ConfError> {
        let v = self.required("hadoop.security.authentication")?;
        match v.to_ascii_lowercase().as_str() {
            "simple" => Ok(SecurityMode::Simple),
            "kerberos" => Ok(SecurityMode::Kerberos),
            _ => Err(self.bad("hadoop.security.authentication", &v, "simple or kerberos")),
        }
    }

    /// The protections listed in `hadoop.rpc.protection`, strongest last.
    pub fn rpc_protection(&self) -> Result<Vec<RpcProtection>, ConfError> {
        let mut out = Vec::new();
        for v in self.get_list("hadoop.rpc.protection")? {
            out.push(match v.to_ascii_lowercase().as_str() {
                "authentication" => RpcProtection::Authentication,
                "integrity" => RpcProtection::Integrity,
                "privacy" => RpcProtection::Privacy,
                _ => return Err(self.bad("hadoop.rpc.protection", &v, "authentication, integrity or privacy")),
            });
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    pub fn http_policy(&self) -> Result<HttpPolicy, ConfError> {
        let v = self.required("yarn.http.policy")?;
        match v.as_str() {
            "HTTP_ONLY" => Ok(HttpPolicy::HttpOnly),
            "HTTPS_ONLY" => Ok(HttpPolicy::HttpsOnly),
            _ => Err(self.bad("yarn.http.policy", &v, "HTTP_ONLY or HTTPS_ONLY")),
        }
    }

    /// `(maximum-allocation-mb, maximum-allocation-vcores)`.
    pub fn max_allocation(&self) -> Result<(u64, u32), ConfError> {
        let mb = self.get_parsed("yarn.scheduler.maximum-allocation-mb", "a number of MB")?.unwrap_or(8192);
        let vcores = self.get_parsed("yarn.scheduler.maximum-allocation-vcores", "a number of vcores")?.unwrap_or(4);
        Ok((mb, vcores))
    }

    pub fn min_allocation_mb(&self) -> Result<u64, ConfError> {
        Ok(self.get_parsed("yarn.scheduler.minimum-allocation-mb", "a number of MB")?.unwrap_or(1024))
    }

    pub fn rm_ha_enabled(&self) -> Result<bool, ConfError> {
        Ok(self.get_bool("yarn.resourcemanager.ha.enabled")?.unwrap_or(false))
    }

    /// The RM ids when HA is on (`yarn.resourcemanager.ha.rm-ids`), else empty.
    pub fn rm_ids(&self) -> Result<Vec<String>, ConfError> {
        if !self.rm_ha_enabled()? {
            return Ok(Vec::new());
        }
        let ids = self.get_list("yarn.resourcemanager.ha.rm-ids")?;
        if ids.is_empty() {
            return Err(ConfError::Missing {
                key: "yarn.resourcemanager.ha.rm-ids".into(),
                why: "yarn.resourcemanager.ha.enabled is true".into(),
                file: "yarn-site.xml",
            });
        }
        Ok(ids)
    }

    /// Addresses of one RM service (`key` is e.g. `yarn.resourcemanager.address`),
    /// one per RM id under HA (`key.rmN`, else `yarn.resourcemanager.hostname.rmN`
    /// + the default port), like YARN's `HAUtil.getConfValueForRMInstance`.
    fn rm_service(&self, key: &str) -> Result<Vec<Endpoint>, ConfError> {
        let ids = self.rm_ids()?;
        if ids.is_empty() {
            let address = self.required(key)?;
            self.check_address(key, &address)?;
            return Ok(vec![Endpoint { id: None, address }]);
        }
        let port = RM_ADDRESS_PORTS.iter().find(|(k, _)| *k == key).map(|(_, p)| *p).unwrap_or(0);
        ids.into_iter()
            .map(|id| {
                let per_id = format!("{key}.{id}");
                let address = match self.get(&per_id)? {
                    Some(a) => {
                        self.check_address(&per_id, &a)?;
                        a
                    }
                    None => {
                        let host_key = format!("yarn.resourcemanager.hostname.{id}");
                        let host = self.get(&host_key)?.ok_or_else(|| ConfError::Missing {
                            key: format!("{per_id} (or {host_key})"),
                            why: format!("RM HA lists the id {id}"),
                            file: "yarn-site.xml",
                        })?;
                        format!("{host}:{port}")
                    }
                };
                Ok(Endpoint { id: Some(id), address })
            })
            .collect()
    }

    fn check_address(&self, key: &str, address: &str) -> Result<(), ConfError> {
        match split_host_port(address) {
            Some((host, _)) if !host.is_empty() => Ok(()),
            _ => Err(self.bad(key, address, "host:port")),
        }
    }

    /// The RM client-protocol addresses (`ApplicationClientProtocol`, 8032).
    pub fn rm_addresses(&self) -> Result<Vec<Endpoint>, ConfError> {
        self.rm_service("yarn.resourcemanager.address")
    }

    /// The RM scheduler addresses (`ApplicationMasterProtocol`, 8030).
    pub fn scheduler_addresses(&self) -> Result<Vec<Endpoint>, ConfError> {
        self.rm_service("yarn.resourcemanager.scheduler.address")
    }

    /// Base URLs of the RM web apps (`http://host:8088` or `https://host:8090`
    /// per `yarn.http.policy`), without a trailing slash.
    pub fn rm_webapp_urls(&self) -> Result<Vec<Endpoint>, ConfError> {
        let (key, scheme) = match self.http_policy()? {
            HttpPolicy::HttpOnly => ("yarn.resourcemanager.webapp.address", "http"),
            HttpPolicy::HttpsOnly => ("yarn.resourcemanager.webapp.https.address", "https"),
        };
        Ok(self
            .rm_service(key)?
            .into_iter()
            .map(|e| Endpoint { id: e.id, address: format!("{scheme}://{}", e.address) })
            .collect())
    }

    /// The hosts of the web proxy that fronts an AM's tracking URL, as
    /// Hadoop's `WebAppUtils.getProxyHostsAndPortsForAmFilter` finds them:
    /// `yarn.web-proxy.address` when the proxy runs on its own, else each RM's
    /// web app (it embeds the proxy). An AM trusts requests from these hosts
    /// alone without its secret (Hadoop's `AmIpFilter`). A wildcard host
    /// (`0.0.0.0`, the single-node default) is returned as is: the caller
    /// stands in its own host, as Hadoop resolves it to the local host.
    pub fn web_proxy_hosts(&self) -> Result<Vec<String>, ConfError> {
        let addresses = match self.get("yarn.web-proxy.address")? {
            Some(a) if !a.trim().is_empty() => {
                self.check_address("yarn.web-proxy.address", a.trim())?;
                vec![a.trim().to_owned()]
            }
            _ => self
                .rm_webapp_urls()?
                .into_iter()
                .map(|e| e.address.split_once("://").map(|(_, a)| a.to_owned()).unwrap_or(e.address))
                .collect(),
        };
        let mut hosts: Vec<String> =
            addresses.iter().filter_map(|a| split_host_port(a).map(|(h, _)| h.to_owned())).collect();
        hosts.dedup();
        Ok(hosts)
    }

    pub fn default_fs(&self) -> Result<String, ConfError> {
        self.required("fs.defaultFS")
    }

    /// The NameNode RPC addresses behind `fs.defaultFS`: one per NameNode id
    /// when it names an HA nameservice, else its host and port (8020 by
    /// default). Empty when the default filesystem is not HDFS.
    pub fn namenode_addresses(&self) -> Result<Vec<Endpoint>, ConfError> {
        let fs = self.default_fs()?;
        let Ok(url) = url::Url::parse(&fs) else {
            if fs.starts_with("hdfs://") {
                return Err(self.bad("fs.defaultFS", &fs, "hdfs://host[:port] or hdfs://nameservice"));
            }
            return Ok(Vec::new());
        };
        if url.scheme() != "hdfs" {
            return Ok(Vec::new());
        }
        // `hdfs` is not a special scheme: the host keeps its case (nameservice ids are case-sensitive).
        let authority = match (url.host_str().unwrap_or_default(), url.port()) {
            (host, Some(port)) => format!("{host}:{port}"),
            (host, None) => host.to_owned(),
        };
        let authority = authority.as_str();
        if authority.is_empty() {
            return Err(self.bad("fs.defaultFS", &fs, "hdfs://host[:port] or hdfs://nameservice"));
        }
        if self.is_nameservice(authority)? {
            let ha_key = format!("dfs.ha.namenodes.{authority}");
            let ids = self.get_list(&ha_key)?;
            if ids.is_empty() {
                // A nameservice without HA: one rpc-address for the nameservice.
                let key = format!("dfs.namenode.rpc-address.{authority}");
                let address = self.get(&key)?.ok_or_else(|| ConfError::Missing {
                    key: key.clone(),
                    why: format!("fs.defaultFS names the nameservice {authority}"),
                    file: "hdfs-site.xml",
                })?;
                return Ok(vec![Endpoint { id: None, address }]);
            }
            return ids
                .into_iter()
                .map(|id| {
                    let key = format!("dfs.namenode.rpc-address.{authority}.{id}");
                    let address = self.get(&key)?.ok_or_else(|| ConfError::Missing {
                        key: key.clone(),
                        why: format!("{ha_key} lists {id}"),
                        file: "hdfs-site.xml",
                    })?;
                    self.check_address(&key, &address)?;
                    Ok(Endpoint { id: Some(id), address })
                })
                .collect();
        }
        let address = match split_host_port(authority) {
            Some(_) => authority.to_owned(),
            None => format!("{authority}:{DEFAULT_NAMENODE_PORT}"),
        };
        Ok(vec![Endpoint { id: None, address }])
    }

    /// Whether `authority` (of an `hdfs://` URL) names a nameservice of
    /// `dfs.nameservices` rather than a host.
    pub fn is_nameservice(&self, authority: &str) -> Result<bool, ConfError> {
        Ok(self.get_list("dfs.nameservices")?.iter().any(|ns| ns == authority))
    }

    /// `dfs.namenode.kerberos.principal` with `_HOST` resolved to `host`.
    pub fn namenode_principal(&self, host: &str) -> Result<Option<String>, ConfError> {
        Ok(self.get("dfs.namenode.kerberos.principal")?.map(|p| resolve_host_principal(&p, host)))
    }

    /// `hadoop.security.auth_to_local` (default `DEFAULT`), parsed.
    pub fn auth_to_local(&self) -> Result<crate::auth_to_local::AuthToLocal, ConfError> {
        let rules = self.get("hadoop.security.auth_to_local")?.unwrap_or_else(|| "DEFAULT".into());
        crate::auth_to_local::AuthToLocal::parse(&rules)
            .map_err(|e| self.bad("hadoop.security.auth_to_local", &rules, &format!("a list of rules ({e})")))
    }

    /// `hadoop.security.token.service.use_ip` (default true): token services
    /// name NameNodes and RMs by IP address (`127.0.0.1:9000`), not by host name.
    pub fn token_service_use_ip(&self) -> Result<bool, ConfError> {
        Ok(self.get("hadoop.security.token.service.use_ip")?.is_none_or(|v| !v.trim().eq_ignore_ascii_case("false")))
    }

    /// `yarn.resourcemanager.principal` with `_HOST` resolved to `host`.
    pub fn rm_principal(&self, host: &str) -> Result<Option<String>, ConfError> {
        Ok(self.get("yarn.resourcemanager.principal")?.map(|p| resolve_host_principal(&p, host)))
    }

    /// `yarn.nodemanager.principal` with `_HOST` resolved to `host`.
    pub fn nm_principal(&self, host: &str) -> Result<Option<String>, ConfError> {
        Ok(self.get("yarn.nodemanager.principal")?.map(|p| resolve_host_principal(&p, host)))
    }
}

/// Hadoop's `SecurityUtil.getServerPrincipal`: `svc/_HOST@REALM` becomes
/// `svc/<host, lower case>@REALM`; anything else is returned unchanged.
pub fn resolve_host_principal(principal: &str, host: &str) -> String {
    let (name, realm) = match principal.split_once('@') {
        Some((n, r)) => (n, Some(r)),
        None => (principal, None),
    };
    match name.split_once('/') {
        Some((service, "_HOST")) => {
            let host = host.to_ascii_lowercase();
            match realm {
                Some(r) => format!("{service}/{host}@{r}"),
                None => format!("{service}/{host}"),
            }
        }
        _ => principal.to_owned(),
    }
}

/// `host:port` → (host, port); IPv6 as `[::1]:port`.
pub fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    Some((host, port))
}

/// The first `${...}` in `s`: (start, end exclusive, name).
fn find_var(s: &str) -> Option<(usize, usize, &str)> {
    let mut from = 0;
    while let Some(rel) = s[from..].find("${") {
        let start = from + rel;
        let len = s[start + 2..].find('}')?;
        let name = &s[start + 2..start + 2 + len];
        // Hadoop's pattern: `\$\{[^\}\$ ]+\}`.
        if !name.is_empty() && !name.contains(['$', ' ']) {
            return Some((start, start + 3 + len, name));
        }
        from = start + 2;
    }
    None
}

fn line_of(bytes: &[u8], pos: usize) -> usize {
    1 + bytes[..pos.min(bytes.len())].iter().filter(|&&b| b == b'\n').count()
}

type Parsed = Vec<(String, String, bool)>;

/// Parses a site file into (name, value, final) triples, or (byte position, what is wrong).
fn parse_site_xml(text: &str) -> Result<Parsed, (usize, String)> {
    #[derive(PartialEq, Clone, Copy)]
    enum Field {
        Name,
        Value,
        Final,
        Other,
    }
    let mut reader = quick_xml::Reader::from_str(text);
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut saw_root = false;
    // Inside <property>: collected fields, and the field whose text we are in.
    let mut prop: Option<(Option<String>, Option<String>, bool, usize)> = None;
    let mut field: Option<(Field, String)> = None;
    loop {
        let at = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| (reader.error_position() as usize, e.to_string()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let name = e.local_name().as_ref().to_owned();
                match depth {
                    0 => {
                        if name != "configuration" {
                            return Err((at, format!("the root element is <{name}>, not <configuration>")));
                        }
                        saw_root = true;
                    }
                    1 if name == "property" => prop = Some((None, None, false, at)),
                    // XInclude and other top-level elements are skipped, visibly.
                    1 => tracing::warn!(element = %name, "skipping an unsupported element in a Hadoop site file"),
                    2 if prop.is_some() => {
                        let f = match name.as_str() {
                            "name" => Field::Name,
                            "value" => Field::Value,
                            "final" => Field::Final,
                            _ => Field::Other,
                        };
                        field = Some((f, String::new()));
                    }
                    _ => {}
                }
                if is_empty {
                    close(&mut prop, &mut field, &mut out, depth + 1)?;
                } else {
                    depth += 1;
                }
            }
            Event::End(_) => {
                close(&mut prop, &mut field, &mut out, depth)?;
                depth = depth.saturating_sub(1);
            }
            Event::Text(t) => {
                if let Some((_, buf)) = field.as_mut() {
                    buf.push_str(&t.xml10_content());
                } else if depth == 0 && !t.xml10_content().trim().is_empty() {
                    return Err((at, "text outside <configuration>".into()));
                }
            }
            Event::CData(c) => {
                if let Some((_, buf)) = field.as_mut() {
                    buf.push_str(&c.into_inner());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(|e| (at, e.to_string()))?
                } else {
                    match r.xml10_content().as_ref() {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "apos" => Some('\''),
                        "quot" => Some('"'),
                        other => return Err((at, format!("unknown entity &{other};"))),
                    }
                };
                if let (Some((_, buf)), Some(c)) = (field.as_mut(), resolved) {
                    buf.push(c);
                }
            }
            Event::Eof => {
                if !saw_root {
                    return Err((at, "no <configuration> element: this is not a Hadoop site file".into()));
                }
                if depth != 0 {
                    return Err((at, "the file ends before </configuration>".into()));
                }
                return Ok(out);
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }

    /// Ends the element at `depth_closing` (1 = root, 2 = property, 3 = field).
    fn close(
        prop: &mut Option<(Option<String>, Option<String>, bool, usize)>,
        field: &mut Option<(Field, String)>,
        out: &mut Parsed,
        depth_closing: usize,
    ) -> Result<(), (usize, String)> {
        match depth_closing {
            3 => {
                if let (Some((f, text)), Some((name, value, is_final, _))) = (field.take(), prop.as_mut()) {
                    match f {
                        Field::Name => *name = Some(text.trim().to_owned()),
                        Field::Value => *value = Some(text),
                        Field::Final => *is_final = text.trim() == "true",
                        Field::Other => {}
                    }
                }
            }
            2 => {
                if let Some((name, value, is_final, start)) = prop.take() {
                    match name {
                        Some(n) if !n.is_empty() => {
                            // A property without <value> is ignored by Hadoop too.
                            if let Some(v) = value {
                                out.push((n, v, is_final));
                            }
                        }
                        _ => return Err((start, "a <property> without a <name>".into())),
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
