//! A whole YARN cluster for end-to-end tests, as Hadoop's MiniYARNCluster:
//! the RM REST double, NodeManager doubles (IPC) that really launch
//! containers, one shared token secret, a `file://` default file system, and
//! a client `HADOOP_CONF_DIR` pointing at all of it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hadoop::yarn::NodeId;

use super::node_web::NodeWeb;
use super::rest::{RestRm, RestRmConfig};
use crate::hadoop_ipc_server::launcher::{ContainerLauncher, LauncherConfig};
use crate::hadoop_ipc_server::sasl::SecretManager;
use crate::hadoop_ipc_server::yarn::NodeManager;
use crate::hadoop_ipc_server::{self as ipc, ServerConfig, ServerHandle};

#[derive(Clone, Debug)]
pub struct MiniYarnConfig {
    pub nodes: usize,
    /// (memory MB, vcores) of the largest container.
    pub max_allocation: (u64, u32),
    /// Environment every container gets (the NodeManager's whitelist), e.g. RUST_LOG.
    pub env: Vec<(String, String)>,
    /// Each node's (memory MB, vcores), shared by all containers; `None` = unlimited.
    pub node_capacity: Option<(u64, u32)>,
    /// `yarn.scheduler.minimum-allocation-mb` / `-vcores`.
    pub min_allocation: (u64, u32),
    /// `yarn.log-aggregation-enable`: ended applications' logs go to `<root>/fs/tmp/logs`.
    pub log_aggregation: bool,
    /// The web proxy on its own host (`yarn.web-proxy.address`, 127.0.0.2).
    pub standalone_web_proxy: bool,
}

impl Default for MiniYarnConfig {
    fn default() -> Self {
        Self {
            nodes: 1,
            max_allocation: (8192, 8),
            env: Vec::new(),
            node_capacity: None,
            min_allocation: (128, 1),
            log_aggregation: false,
            standalone_web_proxy: false,
        }
    }
}

pub struct MiniYarn {
    pub root: PathBuf,
    pub rm: RestRm,
    pub launchers: Vec<Arc<ContainerLauncher>>,
    /// The client's `HADOOP_CONF_DIR`.
    pub conf_dir: PathBuf,
    /// `fs.defaultFS` (a `file://` dir under `root`).
    pub default_fs: String,
    _nm_servers: Vec<ServerHandle>,
    _nm_webs: Vec<NodeWeb>,
}

pub(crate) fn site_xml(props: &[(&str, String)]) -> String {
    let mut s = String::from("<?xml version=\"1.0\"?>\n<configuration>\n");
    for (k, v) in props {
        s.push_str(&format!("  <property><name>{k}</name><value>{v}</value></property>\n"));
    }
    s.push_str("</configuration>\n");
    s
}

/// Writes a client configuration for an RM web app at `webapp` and a default FS.
pub fn write_client_conf(dir: &Path, webapp: &str, default_fs: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("core-site.xml"),
        site_xml(&[("fs.defaultFS", default_fs.into()), ("hadoop.security.authentication", "simple".into())]),
    )?;
    std::fs::write(dir.join("yarn-site.xml"), site_xml(&[("yarn.resourcemanager.webapp.address", webapp.into())]))?;
    std::fs::write(dir.join("hdfs-site.xml"), site_xml(&[]))
}

impl MiniYarn {
    /// Everything lives under `root` (a test's temp dir).
    pub async fn start(root: &Path, config: MiniYarnConfig) -> std::io::Result<MiniYarn> {
        let secrets = SecretManager::random();
        let default_fs = format!("file://{}", root.join("fs").display());
        let conf_dir = root.join("client-conf");
        let mut nodes = Vec::new();
        let mut servers = Vec::new();
        let mut nms = Vec::new();
        let mut webs = Vec::new();
        for i in 0..config.nodes.max(1) {
            let nm = Arc::new(NodeManager::default());
            let server = ipc::start(
                ServerConfig::default()
                    .with_sasl(secrets.digest_md5())
                    .with_handler(hadoop::yarn::nm::PROTOCOL, nm.clone()),
            )
            .await?;
            let node = NodeId { host: "127.0.0.1".into(), port: i32::from(server.addr().port()) };
            let nm_root = root.join(format!("nm{i}"));
            let web = NodeWeb::start(&nm_root, node.to_string()).await?;
            let mut lc = LauncherConfig::new(nm_root, node.clone());
            lc.http_port = web.port();
            lc.env.push(("HADOOP_CONF_DIR".into(), conf_dir.display().to_string()));
            lc.env.extend(config.env.iter().cloned());
            lc.stop_grace = Duration::from_secs(2);
            let launcher = ContainerLauncher::new(lc);
            nodes.push((node, launcher));
            nms.push(nm);
            servers.push(server);
            webs.push(web);
        }
        let mut rc = RestRmConfig::new(root.join("rm"), &default_fs, secrets, nodes.clone());
        rc.node_http_addresses = webs.iter().map(NodeWeb::http_address).collect();
        rc.max_allocation = config.max_allocation;
        rc.min_allocation = config.min_allocation;
        rc.node_capacity = config.node_capacity;
        rc.standalone_web_proxy = config.standalone_web_proxy;
        let remote_logs = root.join("fs/tmp/logs");
        if config.log_aggregation {
            rc.remote_app_log_dir = Some(remote_logs.clone());
        }
        std::fs::create_dir_all(&rc.work_root)?;
        let rm = RestRm::start(rc).await?;
        for (nm, (_, launcher)) in nms.iter().zip(&nodes) {
            // Exits go to the owning application's scheduler (the REST double routes them).
            nm.attach(launcher.clone(), None);
            launcher.on_exit(rm.exit_router());
        }
        write_client_conf(&conf_dir, &rm.addr().to_string(), &default_fs)?;
        if config.log_aggregation {
            let yarn = [
                ("yarn.resourcemanager.webapp.address", rm.addr().to_string()),
                ("yarn.log-aggregation-enable", "true".into()),
                ("yarn.nodemanager.remote-app-log-dir", format!("file://{}", remote_logs.display())),
            ];
            std::fs::write(conf_dir.join("yarn-site.xml"), site_xml(&yarn))?;
        }
        Ok(MiniYarn {
            root: root.to_owned(),
            rm,
            launchers: nodes.into_iter().map(|(_, l)| l).collect(),
            conf_dir,
            default_fs,
            _nm_servers: servers,
            _nm_webs: webs,
        })
    }

    pub fn rm_addr(&self) -> SocketAddr {
        self.rm.addr()
    }

    /// Pids of containers still running on any node.
    pub fn running_containers(&self) -> usize {
        self.launchers.iter().map(|l| l.running().len()).sum()
    }

    /// The last lines of every container's logs (for failure messages).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for l in &self.launchers {
            for c in l.launched() {
                for name in ["appmaster.err", "taskmanager.err", "prelaunch.err"] {
                    if let Ok(t) = std::fs::read_to_string(c.log_dir.join(name)) {
                        let tail: Vec<&str> = t.lines().rev().take(30).collect();
                        let tail: Vec<&str> = tail.into_iter().rev().collect();
                        out += &format!("---- {} {name}\n{}\n", c.id, tail.join("\n"));
                    }
                }
            }
        }
        out
    }

    pub fn shutdown(self) {
        for l in &self.launchers {
            l.shutdown();
        }
        self.rm.shutdown();
    }
}
