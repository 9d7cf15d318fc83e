//! A real ZooKeeper server (Debian's `zookeeper` package) on a loopback port,
//! with its own data dir, started and stopped by PID; and a loopback TCP proxy
//! in front of it that a test can stop forwarding through (a network cut).
//!
//! The server's tick is 100 ms, so sessions may be as short as 200 ms
//! (`minSessionTimeout` is two ticks), which the failover tests use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

const CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/etc/zookeeper/conf";

pub struct TestZooKeeper {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl TestZooKeeper {
    /// Starts a standalone server. Fails, with the fix, when the package is missing.
    pub fn start() -> anyhow::Result<Self> {
        if !Path::new("/usr/share/java/zookeeper.jar").is_file() {
            bail!("ZooKeeper is not installed (/usr/share/java/zookeeper.jar); run scripts/install-deps as root");
        }
        let dir = tempfile::Builder::new().prefix("yarn-flink-zk").tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut zk = Self { dir, port, child: None };
        zk.launch()?;
        Ok(zk)
    }

    pub fn url(&self, root: &str) -> String {
        format!("zookeeper://127.0.0.1:{}/{root}", self.port)
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        let cfg = self.dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=100\nminSessionTimeout=200\nmaxSessionTimeout=60000\ndataDir={}\nclientPort={}\n\
                 clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=ruok\n",
                self.dir.path().join("data").display(),
                self.port
            ),
        )?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("zookeeper.log"))?;
        let child = Command::new("java")
            .args(["-Xmx256m", "-cp", CLASSPATH, "org.apache.zookeeper.server.ZooKeeperServerMain"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting java (ZooKeeper); run scripts/install-deps as root")?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30))
    }

    fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        use std::io::{Read, Write};
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let mut answer = String::new();
                if s.write_all(b"ruok").is_ok() && s.read_to_string(&mut answer).is_ok() && answer == "imok" {
                    return Ok(());
                }
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("ZooKeeper exited at start ({status}); see {}", self.dir.path().join("zookeeper.log").display());
            }
            if Instant::now() > deadline {
                bail!("ZooKeeper did not answer within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGKILL, by PID: a crash, not a clean shutdown).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and data: sessions and nodes survive.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.launch()
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("zookeeper.log")
    }
}

impl Drop for TestZooKeeper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Forwards loopback connections to `target` until [`TcpProxy::cut`]: from
/// then on it moves no byte in either direction and keeps every connection
/// open, as a network partition does (no reset for the peers to notice).
pub struct TcpProxy {
    pub address: SocketAddr,
    cut: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let cut = Arc::new(AtomicBool::new(false));
        let flag = cut.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((inbound, _)) = listener.accept().await {
                if flag.load(Ordering::SeqCst) {
                    held.push(inbound); // accepted, never answered
                    continue;
                }
                let Ok(outbound) = tokio::net::TcpStream::connect(target).await else { continue };
                let flag = flag.clone();
                tokio::spawn(async move {
                    let (ri, wi) = inbound.into_split();
                    let (ro, wo) = outbound.into_split();
                    let _ = tokio::join!(pump(ri, wo, flag.clone()), pump(ro, wi, flag));
                });
            }
        });
        Ok(Self { address, cut, task })
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, cut: Arc<AtomicBool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if cut.load(Ordering::SeqCst) {
            // Swallow everything from now on, keeping both ends open.
            let _hold = to;
            loop {
                match from.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
