//! A throwaway MIT KDC (realm `YARNFLINK.TEST` on a loopback port) for the
//! Kerberos tests, set up by `scripts/test-kdc` and killed by PID on drop.
//!
//! The krb5 library reads `KRB5_CONFIG` from the process environment, so a
//! test process can only talk to one KDC at a time: [`TestKdc::start`] holds a
//! process-wide lock for the life of the fixture and points `KRB5_CONFIG` at
//! its realm. Tests that use a KDC therefore run one after the other.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use anyhow::{bail, Context as _};

pub const REALM: &str = "YARNFLINK.TEST";

static ONE_KDC_AT_A_TIME: Mutex<()> = Mutex::new(());

pub struct TestKdc {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pid: i32,
    _guard: MutexGuard<'static, ()>,
}

impl TestKdc {
    /// Sets up the realm and starts `krb5kdc`. Fails (with the fix) when the
    /// MIT KDC is not installed: CI installs it, so a missing KDC is an error.
    pub fn start() -> anyhow::Result<TestKdc> {
        let guard = ONE_KDC_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-kdc");
        let dir = tempfile::Builder::new().prefix("yarn-flink-kdc").tempdir()?;
        // The script picks a free port; another process may grab it before
        // krb5kdc binds, so a failed start is retried a few times.
        let mut attempt = 0;
        let out = loop {
            attempt += 1;
            let out = Command::new(&script)
                .arg(dir.path())
                .output()
                .with_context(|| format!("running {}", script.display()))?;
            if out.status.success() {
                break out;
            }
            if attempt == 3 || out.status.code() == Some(2) {
                bail!(
                    "{} failed ({}): {}\nIf the MIT KDC is missing, run scripts/install-deps (as root).",
                    script.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        };
        let env = String::from_utf8_lossy(&out.stdout);
        let var = |name: &str| -> anyhow::Result<String> {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")).map(str::to_owned))
                .with_context(|| format!("test-kdc printed no {name}"))
        };
        let port = var("TEST_KDC_PORT")?.parse()?;
        let pid = var("TEST_KDC_PID")?.parse()?;
        // Only this fixture's thread touches the environment while it holds the lock.
        std::env::set_var("KRB5_CONFIG", var("KRB5_CONFIG")?);
        std::env::remove_var("KRB5CCNAME");
        Ok(TestKdc { dir, port, pid, _guard: guard })
    }

    pub fn keytab(&self, name: &str) -> PathBuf {
        self.dir.path().join("keytabs").join(format!("{name}.keytab"))
    }

    /// `alice` → `alice@YARNFLINK.TEST`.
    pub fn principal(name: &str) -> String {
        format!("{name}@{REALM}")
    }

    /// `kinit -k -t <keytab> <principal>` into a fresh cache; returns `FILE:<path>`.
    /// `lifetime` is kinit's `-l` (e.g. `1s`).
    pub fn kinit(&self, principal: &str, keytab: &Path, lifetime: Option<&str>) -> anyhow::Result<String> {
        let cache = format!("FILE:{}", self.dir.path().join(format!("cc-{}", principal.replace('/', "_"))).display());
        let mut cmd = Command::new("kinit");
        cmd.arg("-c").arg(&cache).arg("-k").arg("-t").arg(keytab);
        if let Some(l) = lifetime {
            cmd.arg("-l").arg(l);
        }
        let out = cmd.arg(principal).output().context("running kinit (scripts/install-deps installs it)")?;
        if !out.status.success() {
            bail!("kinit {principal} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(cache)
    }

    /// Whether `klist -s` says the cache holds valid (unexpired) tickets.
    pub fn cache_valid(&self, cache: &str) -> bool {
        Command::new("klist").arg("-s").arg("-c").arg(cache).status().is_ok_and(|s| s.success())
    }
}

impl Drop for TestKdc {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on the daemon this fixture started.
        unsafe {
            libc::kill(self.pid, libc::SIGTERM);
        }
    }
}
