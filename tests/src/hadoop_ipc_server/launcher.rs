//! Really starting containers, as a NodeManager does (much as Hadoop's
//! MiniYARNCluster runs them as local processes), by the rules a real Hadoop
//! 3.3.6 NodeManager follows (`shared/wire/hadoop-3.3.6/nm/`, checked against
//! `am-launch_container.sh` and `tm-launch_container.sh` there):
//! - local resources are localized per application into
//!   `usercache/<user>/appcache/<app>/filecache/<n>/<file name>` (an ARCHIVE is
//!   unpacked into a directory of the archive's file name) and linked into the
//!   work dir with `ln -sf --` lines of the script;
//! - the launch context's tokens go to `container_tokens`
//!   (`HADOOP_TOKEN_FILE_LOCATION`);
//! - a `launch_container.sh` is written and run with bash: whitelisted
//!   variables as `export NAME=${NAME:-"value"}`, then the NodeManager's own
//!   (`CONTAINER_ID`, `NM_HOST`, ..., `HOME="/home/"`) and the application's as
//!   `export NAME="VALUE"` with the value copied *verbatim* after expanding
//!   `<LOG_DIR>`, `<CPS>`, `{{` → `$` and dropping `}}`: nothing is escaped, so
//!   bash interprets quotes, `$`, backquotes and backslashes in values, as on
//!   a real cluster; the command last, as `exec /bin/bash -c "<command>"`;
//! - the script's own output goes to `prelaunch.out` / `prelaunch.err`, and a
//!   container that exits non-zero gets diagnostics quoting the last 4096
//!   bytes of `prelaunch.err`.
//!
//! Each container is its own process group (the NodeManager's container
//! executor does the same with a session), so stopping it stops what it
//! started. Signals only ever go to the process groups of containers this
//! launcher started and has not reaped yet. Exits are reported, with YARN's
//! exit statuses and diagnostics, to every [`ContainerLauncher::on_exit`]
//! listener; the [`super::yarn::NodeManager`] double forwards them to the
//! ResourceManager double as completed containers, and the RM REST double
//! uses [`ContainerLauncher::launch`] to start AM containers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hadoop::yarn::{ContainerId, ContainerLaunchContext, LocalResource, LocalResourceType, NodeId};
use tokio::sync::watch;

/// YARN's exit status for a container stopped by its ApplicationMaster.
pub const KILLED_BY_APPMASTER: i32 = -105;
/// YARN's exit status when the container never ran (e.g. localization failed).
pub const INVALID: i32 = -1000;

#[derive(Clone, Debug)]
pub struct LauncherConfig {
    /// Container work dirs go under `<root>/local/<app>/<container>`, logs
    /// under `<root>/logs/<app>/<container>`.
    pub root: PathBuf,
    /// The NodeManager this launcher stands for (`NM_HOST`, `NM_PORT`).
    pub node: NodeId,
    pub http_port: u16,
    /// The NodeManager's whitelisted environment (e.g. HADOOP_CONF_DIR,
    /// RUST_LOG); PATH, HOME and LANG are always passed on.
    pub env: Vec<(String, String)>,
    /// Between SIGTERM and SIGKILL on stopContainers.
    pub stop_grace: Duration,
}

impl LauncherConfig {
    pub fn new(root: impl Into<PathBuf>, node: NodeId) -> Self {
        Self { root: root.into(), node, http_port: 8042, env: Vec::new(), stop_grace: Duration::from_secs(3) }
    }
}

/// How a container ended, as the ResourceManager reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerExit {
    pub id: ContainerId,
    pub exit_status: i32,
    pub diagnostics: String,
}

/// A started container.
#[derive(Clone, Debug)]
pub struct LaunchedContainer {
    pub id: ContainerId,
    pub pid: u32,
    pub work_dir: PathBuf,
    pub log_dir: PathBuf,
    exit: watch::Receiver<Option<ContainerExit>>,
}

impl LaunchedContainer {
    /// Resolves when the container's process exited.
    pub async fn wait(&mut self) -> ContainerExit {
        loop {
            if let Some(e) = self.exit.borrow_and_update().clone() {
                return e;
            }
            if self.exit.changed().await.is_err() {
                return self.exit.borrow().clone().unwrap_or(ContainerExit {
                    id: self.id,
                    exit_status: INVALID,
                    diagnostics: "the launcher went away".into(),
                });
            }
        }
    }

    pub fn exited(&self) -> Option<ContainerExit> {
        self.exit.borrow().clone()
    }
}

type Listener = Arc<dyn Fn(&ContainerExit) + Send + Sync>;

struct Running {
    pid: u32,
    stop_requested: bool,
}

#[derive(Default)]
struct State {
    running: HashMap<ContainerId, Running>,
    exits: Vec<ContainerExit>,
    launched: Vec<LaunchedContainer>,
    /// Localized resources per (application, URL, timestamp), as the
    /// NodeManager keeps APPLICATION resources for all of an app's containers.
    localized: HashMap<(String, String, i64), PathBuf>,
    next_filecache: u32,
    /// Each application's user (its submitter), as a NodeManager learns it from
    /// the container token; absent: this process's user.
    app_users: HashMap<String, String>,
}

pub struct ContainerLauncher {
    config: LauncherConfig,
    state: Mutex<State>,
    listeners: Mutex<Vec<Listener>>,
    reaper: Mutex<Option<Reaper>>,
}

/// Kills the containers' process groups if the test process dies without
/// dropping the launcher (a panic that aborts, SIGKILL, a reference cycle
/// keeping it alive at exit). PR_SET_PDEATHSIG covers only the container's
/// shell, not what it starts; this covers the whole group: a small shell
/// process reads "+pgid" / "-pgid" lines from a pipe only we hold, and when
/// the pipe closes (we are gone) it SIGKILLs the groups still listed.
struct Reaper {
    input: std::process::ChildStdin,
    child: std::process::Child,
}

const REAPER_SCRIPT: &str = r#"live=" "
while read -r line; do
  case "$line" in
    +*) live="$live${line#+} " ;;
    -*) live="${live// ${line#-} / }" ;;
  esac
done
for pg in $live; do kill -9 -- "-$pg" 2>/dev/null; done"#;

impl Reaper {
    fn start() -> Option<Reaper> {
        use std::os::unix::process::CommandExt as _;
        let mut child = std::process::Command::new("bash")
            .arg("-c")
            .arg(REAPER_SCRIPT)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group: a Ctrl-C to the test's group must not stop it first.
            .process_group(0)
            .spawn()
            .ok()?;
        let input = child.stdin.take()?;
        Some(Reaper { input, child })
    }

    fn say(&mut self, line: String) {
        use std::io::Write as _;
        let _ = writeln!(self.input, "{line}");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("container {0} is already running on this node")]
    Duplicate(ContainerId),
    #[error("cannot localize {name} ({url}): {detail}")]
    Localize { name: String, url: String, detail: String },
    #[error("cannot prepare the container's directories: {0}")]
    Io(#[from] std::io::Error),
}

impl ContainerLauncher {
    pub fn new(config: LauncherConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            state: Mutex::default(),
            listeners: Mutex::default(),
            reaper: Mutex::new(Reaper::start()),
        })
    }

    pub fn config(&self) -> &LauncherConfig {
        &self.config
    }

    /// Calls `f` for every container that exits from now on.
    pub fn on_exit(&self, f: impl Fn(&ContainerExit) + Send + Sync + 'static) {
        self.listeners.lock().unwrap().push(Arc::new(f));
    }

    fn report(&self, exit: ContainerExit) {
        self.state.lock().unwrap().exits.push(exit.clone());
        let listeners: Vec<Listener> = self.listeners.lock().unwrap().clone();
        for l in listeners {
            l(&exit);
        }
    }

    /// The user `app`'s containers run as (`USER`, the usercache dir): its submitter.
    pub fn set_app_user(&self, app: &str, user: &str) {
        self.state.lock().unwrap().app_users.insert(app.to_owned(), user.to_owned());
    }

    /// Localizes and starts the container. Must run inside a Tokio runtime.
    pub fn launch(
        self: &Arc<Self>,
        id: ContainerId,
        ctx: &ContainerLaunchContext,
    ) -> Result<LaunchedContainer, LaunchError> {
        if self.state.lock().unwrap().running.contains_key(&id) {
            return Err(LaunchError::Duplicate(id));
        }
        let app = id.attempt.application.to_string();
        let user = self.state.lock().unwrap().app_users.get(&app).cloned();
        let user = user.unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "yarn".into()));
        let user_dir = self.config.root.join("local").join("usercache").join(&user);
        let app_local = user_dir.join("appcache").join(&app);
        let work_dir = app_local.join(id.to_string());
        let log_dir = self.config.root.join("logs").join(&app).join(id.to_string());
        std::fs::create_dir_all(&work_dir)?;
        std::fs::create_dir_all(&log_dir)?;
        let mut links = Vec::new();
        for (name, resource) in &ctx.local_resources {
            links.push((self.localize(&app, &app_local, name, resource)?, name.clone()));
        }
        let token_file = work_dir.join("container_tokens");
        std::fs::write(&token_file, &ctx.tokens)?;

        // Rule 1 of nm/README.md: the NodeManager's expansions, on values and command alike.
        let expand = |s: &str| {
            s.replace("<LOG_DIR>", &log_dir.display().to_string())
                .replace("<CPS>", ":")
                .replace("{{", "$")
                .replace("}}", "")
        };
        let q = |p: &Path| p.display().to_string();
        let mut script = String::from("#!/bin/bash\n\nset -o pipefail -e\n");
        script +=
            &format!("export PRELAUNCH_OUT=\"{}\"\nexec >\"${{PRELAUNCH_OUT}}\"\n", q(&log_dir.join("prelaunch.out")));
        script +=
            &format!("export PRELAUNCH_ERR=\"{}\"\nexec 2>\"${{PRELAUNCH_ERR}}\"\n", q(&log_dir.join("prelaunch.err")));
        script += "echo \"Setting up env variables\"\n";
        // Whitelisted variables keep a value the process already has.
        let mut whitelist: Vec<(String, String)> = Vec::new();
        for name in ["PATH", "LANG"] {
            if let Ok(v) = std::env::var(name) {
                whitelist.push((name.into(), v));
            }
        }
        whitelist.extend(self.config.env.iter().cloned());
        for (k, v) in &whitelist {
            script += &format!("export {k}=${{{k}:-\"{v}\"}}\n");
        }
        let mut nm_env = vec![
            ("HADOOP_TOKEN_FILE_LOCATION".to_string(), q(&token_file)),
            ("CONTAINER_ID".into(), id.to_string()),
            ("NM_PORT".into(), self.config.node.port.to_string()),
            ("NM_HOST".into(), self.config.node.host.clone()),
            ("NM_HTTP_PORT".into(), self.config.http_port.to_string()),
            ("LOCAL_DIRS".into(), q(&app_local)),
            ("LOCAL_USER_DIRS".into(), format!("{}/", q(&user_dir))),
            ("LOG_DIRS".into(), q(&log_dir)),
            ("USER".into(), user.clone()),
            ("LOGNAME".into(), user.clone()),
            // yarn.nodemanager.user-home-dir's default, as in both captures.
            ("HOME".into(), "/home/".into()),
            ("PWD".into(), q(&work_dir)),
            ("JVM_PID".into(), "$$".into()),
        ];
        if id.id == 1 {
            nm_env.push(("APPLICATION_WEB_PROXY_BASE".into(), format!("/proxy/{app}")));
        }
        let app_env = ctx.environment.iter().map(|(k, v)| (k.clone(), v.clone()));
        for (k, v) in nm_env.into_iter().chain(app_env) {
            // Verbatim between double quotes: no escaping, as the real NodeManager writes it.
            script += &format!("export {k}=\"{}\"\n", expand(&v));
        }
        script += "export MALLOC_ARENA_MAX=\"\"\necho \"Setting up job resources\"\n";
        for (target, name) in &links {
            script += &format!("ln -sf -- \"{}\" \"{name}\"\n", q(target));
        }
        script += &format!(
            "echo \"Copying debugging information\"\ncp \"launch_container.sh\" \"{}\"\n",
            q(&log_dir.join("launch_container.sh"))
        );
        let command = ctx.commands.iter().map(|c| expand(c)).collect::<Vec<_>>().join(" ");
        script += &format!("echo \"Launching container\"\nexec /bin/bash -c \"{command}\"\n");
        std::fs::write(work_dir.join("launch_container.sh"), &script)?;

        let mut cmd = tokio::process::Command::new("bash");
        cmd.arg("launch_container.sh").current_dir(&work_dir).env_clear();
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(false).process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // Containers die with the test process, even on a panic.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pid = child.id().unwrap_or(0);
        tracing::info!(container = %id, pid, %command, "container started");
        let (exit_tx, exit_rx) = watch::channel(None);
        self.state.lock().unwrap().running.insert(id, Running { pid, stop_requested: false });
        self.tell_reaper(format!("+{pid}"));
        let this = Arc::clone(self);
        let prelaunch_err = log_dir.join("prelaunch.err");
        tokio::spawn(async move {
            let status = child.wait().await;
            let stopped = this.state.lock().unwrap().running.remove(&id).is_some_and(|r| r.stop_requested);
            this.tell_reaper(format!("-{pid}"));
            let exit = exit_of(id, status, stopped, &prelaunch_err);
            tracing::info!(container = %id, pid, exit_status = exit.exit_status, "container exited");
            let _ = exit_tx.send(Some(exit.clone()));
            this.report(exit);
        });
        let launched = LaunchedContainer { id, pid, work_dir, log_dir, exit: exit_rx };
        self.state.lock().unwrap().launched.push(launched.clone());
        Ok(launched)
    }

    fn tell_reaper(&self, line: String) {
        if let Some(r) = self.reaper.lock().unwrap().as_mut() {
            r.say(line);
        }
    }

    /// Reports a container that could not start as completed (what a
    /// NodeManager does when localization fails).
    pub fn report_failed_start(&self, id: ContainerId, error: &LaunchError) {
        self.report(ContainerExit { id, exit_status: INVALID, diagnostics: error.to_string() });
    }

    fn signal(&self, id: &ContainerId, sig: i32, mark_stop: bool) -> bool {
        let mut state = self.state.lock().unwrap();
        let Some(r) = state.running.get_mut(id) else { return false };
        r.stop_requested |= mark_stop;
        if let Ok(pgid) = i32::try_from(r.pid) {
            // SAFETY: kill(2) on the process group of a child we started. It leaves
            // `running` right after it is reaped, and Linux hands pids out
            // sequentially, so the id cannot have been reused in between.
            unsafe {
                libc::kill(-pgid, sig);
            }
        }
        true
    }

    /// stopContainers: SIGTERM, then SIGKILL after the grace period.
    pub fn stop(self: &Arc<Self>, id: &ContainerId) -> bool {
        let pgid = self.pid(id).and_then(|p| i32::try_from(p).ok());
        if !self.signal(id, libc::SIGTERM, true) {
            return false;
        }
        let grace = self.config.stop_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            // The whole group, even when its leader (bash) is already gone:
            // a container's other processes must not outlive the stop.
            if let Some(pgid) = pgid {
                // SAFETY: kill(2) on the process group of a container we started.
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
            }
        });
        true
    }

    /// SIGKILL now, as if the process crashed or its node died (not a stop).
    pub fn kill(&self, id: &ContainerId) -> bool {
        self.signal(id, libc::SIGKILL, false)
    }

    pub fn pid(&self, id: &ContainerId) -> Option<u32> {
        self.state.lock().unwrap().running.get(id).map(|r| r.pid)
    }

    pub fn running(&self) -> Vec<ContainerId> {
        let mut ids: Vec<_> = self.state.lock().unwrap().running.keys().copied().collect();
        ids.sort();
        ids
    }

    pub fn exit_of(&self, id: &ContainerId) -> Option<ContainerExit> {
        self.state.lock().unwrap().exits.iter().find(|e| e.id == *id).cloned()
    }

    pub fn exits(&self) -> Vec<ContainerExit> {
        self.state.lock().unwrap().exits.clone()
    }

    /// Every container started so far, in order.
    pub fn launched(&self) -> Vec<LaunchedContainer> {
        self.state.lock().unwrap().launched.clone()
    }

    /// SIGKILLs every running container (the double shutting down).
    pub fn shutdown(&self) {
        let ids: Vec<ContainerId> = self.state.lock().unwrap().running.keys().copied().collect();
        for id in ids {
            self.signal(&id, libc::SIGKILL, true);
        }
    }
}

impl Drop for ContainerLauncher {
    fn drop(&mut self) {
        self.shutdown();
        if let Some(Reaper { input, mut child }) = self.reaper.lock().unwrap().take() {
            // EOF: the reaper kills what is left (nothing, normally) and exits.
            drop(input);
            let _ = child.wait();
        }
    }
}

fn exit_of(
    id: ContainerId,
    status: std::io::Result<std::process::ExitStatus>,
    stopped: bool,
    prelaunch_err: &Path,
) -> ContainerExit {
    use std::os::unix::process::ExitStatusExt as _;
    let status = match status {
        Ok(s) => s,
        Err(e) => return ContainerExit { id, exit_status: INVALID, diagnostics: format!("waiting failed: {e}") },
    };
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    if stopped {
        return ContainerExit {
            id,
            exit_status: KILLED_BY_APPMASTER,
            diagnostics: format!(
                "Container killed by the ApplicationMaster.\nContainer killed on request. Exit code is {code}"
            ),
        };
    }
    let diagnostics = match (status.code(), status.signal()) {
        (Some(0), _) => String::new(),
        (_, Some(sig)) => format!("Container exited with a non-zero exit code {code}. Killed by signal {sig}."),
        _ => {
            // Rule 6: the last 4096 bytes of prelaunch.err (usually empty; the program's own .err has the story).
            let err = std::fs::read(prelaunch_err).unwrap_or_default();
            let tail = String::from_utf8_lossy(&err[err.len().saturating_sub(4096)..]).into_owned();
            format!(
                "Exception from container-launch.\nContainer id: {id}\nExit code: {code}\n\
                 Container exited with a non-zero exit code {code}. Last 4096 bytes of prelaunch.err :\n{tail}"
            )
        }
    };
    ContainerExit { id, exit_status: code, diagnostics }
}

impl ContainerLauncher {
    /// Localizes one resource for `app` (once per application, as a
    /// NodeManager does for APPLICATION resources) and returns the path the
    /// container's link points at. Only `file` URLs (or bare paths) exist here;
    /// the size is not checked (Hadoop does not either), the timestamp is, like
    /// Hadoop's FSDownload.
    fn localize(&self, app: &str, app_local: &Path, name: &str, r: &LocalResource) -> Result<PathBuf, LaunchError> {
        let url = format!("{}://{}{}", r.url.scheme, r.url.host, r.url.file);
        let fail = |detail: String| LaunchError::Localize { name: name.into(), url: url.clone(), detail };
        if !(r.url.scheme.is_empty() || r.url.scheme == "file") {
            return Err(fail("this test NodeManager localizes file:// URLs only (no HDFS here)".into()));
        }
        if name.contains('/') || name == ".." || name.is_empty() {
            return Err(fail("the link name must be a plain file name".into()));
        }
        let key = (app.to_owned(), url.clone(), r.timestamp);
        if let Some(done) = self.state.lock().unwrap().localized.get(&key) {
            return Ok(done.clone());
        }
        let src = PathBuf::from(&r.url.file);
        let meta = std::fs::metadata(&src).map_err(|e| fail(e.to_string()))?;
        let mtime_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        if mtime_ms != r.timestamp {
            return Err(fail(format!(
                "Resource {url} changed on src filesystem - expected: \"{}\", was: \"{mtime_ms}\"",
                r.timestamp
            )));
        }
        let n = {
            let mut st = self.state.lock().unwrap();
            st.next_filecache += 1;
            st.next_filecache + 9
        };
        let file_name = src.file_name().map(|f| f.to_owned()).unwrap_or_else(|| name.into());
        let cache = app_local.join("filecache").join(n.to_string());
        std::fs::create_dir_all(&cache)?;
        let dest = cache.join(file_name);
        if r.kind == LocalResourceType::Archive && meta.is_file() {
            // Rule 4: unpacked into a directory that keeps the archive's file name.
            std::fs::create_dir_all(&dest)?;
            let lower = r.url.file.to_ascii_lowercase();
            let status = if lower.ends_with(".zip") || lower.ends_with(".jar") {
                std::process::Command::new("unzip").arg("-q").arg(&src).arg("-d").arg(&dest).status()
            } else {
                std::process::Command::new("tar").arg("-xf").arg(&src).arg("-C").arg(&dest).status()
            };
            match status {
                Ok(s) if s.success() => {}
                Ok(s) => return Err(fail(format!("unpacking the archive failed ({s})"))),
                Err(e) => return Err(fail(format!("cannot run the unpacker: {e}"))),
            }
        } else {
            // A copy on a real node; a link is enough here (nothing writes to it).
            std::os::unix::fs::symlink(&src, &dest).map_err(|e| fail(e.to_string()))?;
        }
        self.state.lock().unwrap().localized.insert(key, dest.clone());
        Ok(dest)
    }
}
