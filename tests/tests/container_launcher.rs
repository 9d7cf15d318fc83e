//! The NodeManager double's container launcher: localization (symlinks,
//! archives, the timestamp check), the container environment and tokens,
//! `<LOG_DIR>` expansion, exit statuses, stop and kill.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use hadoop::yarn::{
    ApplicationAttemptId, ApplicationId, ContainerId, ContainerLaunchContext, LocalResource, LocalResourceType,
    LocalResourceVisibility, NodeId, YarnUrl,
};
use integration_tests::hadoop_ipc_server::launcher::{
    ContainerLauncher, LaunchError, LauncherConfig, KILLED_BY_APPMASTER,
};

fn id(n: i64) -> ContainerId {
    ContainerId {
        attempt: ApplicationAttemptId {
            application: ApplicationId { cluster_timestamp: 1795750141222, id: 3 },
            attempt: 1,
        },
        id: n,
    }
}

fn file_resource(path: &Path, kind: LocalResourceType) -> LocalResource {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    LocalResource {
        url: YarnUrl { scheme: "file".into(), file: path.display().to_string(), ..Default::default() },
        size: 0,
        timestamp: mtime.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64,
        kind,
        visibility: LocalResourceVisibility::Application,
        pattern: None,
    }
}

fn launcher(root: &Path) -> std::sync::Arc<ContainerLauncher> {
    let mut config = LauncherConfig::new(root.join("nm"), NodeId { host: "127.0.0.1".into(), port: 45454 });
    config.env.push(("HADOOP_CONF_DIR".into(), "/etc/hadoop/conf".into()));
    config.stop_grace = Duration::from_millis(200);
    ContainerLauncher::new(config)
}

#[tokio::test]
async fn a_container_sees_its_resources_environment_tokens_and_log_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data.txt");
    std::fs::write(&data, "payload\n").unwrap();
    let src = tmp.path().join("arch");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("inner.txt"), "inside\n").unwrap();
    let archive = tmp.path().join("arch.tar.gz");
    assert!(std::process::Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&src)
        .arg("inner.txt")
        .status()
        .unwrap()
        .success());
    let l = launcher(tmp.path());
    let ctx = ContainerLaunchContext {
        local_resources: BTreeMap::from([
            ("data".to_string(), file_resource(&data, LocalResourceType::File)),
            ("arch".to_string(), file_resource(&archive, LocalResourceType::Archive)),
        ]),
        environment: BTreeMap::from([("MINE".to_string(), "<LOG_DIR>/x".to_string())]),
        commands: vec![
            "{ cat data; cat arch/inner.txt; echo $CONTAINER_ID $NM_HOST $NM_PORT $HADOOP_CONF_DIR;".into(),
            "head -c 4 $HADOOP_TOKEN_FILE_LOCATION; echo; echo $MINE; }".into(),
            "1><LOG_DIR>/stdout".into(),
        ],
        tokens: b"HDTS-bytes".to_vec(),
    };
    let mut c = l.launch(id(2), &ctx).unwrap();
    let exit = c.wait().await;
    assert_eq!(exit.exit_status, 0, "{exit:?}");
    let out = std::fs::read_to_string(c.log_dir.join("stdout")).unwrap();
    let log_dir = c.log_dir.display().to_string();
    assert_eq!(out, format!("payload\ninside\n{} 127.0.0.1 45454 /etc/hadoop/conf\nHDTS\n{log_dir}/x\n", id(2)));
    assert_eq!(l.exit_of(&id(2)), Some(exit));
}

#[tokio::test]
async fn a_changed_resource_is_refused_like_hadoop_does() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data.txt");
    std::fs::write(&data, "x").unwrap();
    let mut r = file_resource(&data, LocalResourceType::File);
    r.timestamp -= 1000;
    let ctx = ContainerLaunchContext {
        local_resources: BTreeMap::from([("data".to_string(), r)]),
        commands: vec!["true".into()],
        ..Default::default()
    };
    let err = launcher(tmp.path()).launch(id(2), &ctx).unwrap_err();
    assert!(matches!(err, LaunchError::Localize { .. }), "{err}");
    assert!(err.to_string().contains("changed on src filesystem"), "{err}");
    let mut hdfs = file_resource(&data, LocalResourceType::File);
    hdfs.url.scheme = "hdfs".into();
    let ctx =
        ContainerLaunchContext { local_resources: BTreeMap::from([("d".to_string(), hdfs)]), ..Default::default() };
    assert!(launcher(tmp.path()).launch(id(3), &ctx).unwrap_err().to_string().contains("file:// URLs only"));
}

#[tokio::test]
async fn exit_statuses_follow_yarn_for_exits_stops_and_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let l = launcher(tmp.path());
    let run = |cmd: &str| ContainerLaunchContext { commands: vec![cmd.into()], ..Default::default() };
    let mut failing = l.launch(id(2), &run("exit 3")).unwrap();
    let e = failing.wait().await;
    assert_eq!(e.exit_status, 3);
    assert!(e.diagnostics.contains("Exit code: 3"), "{e:?}");

    let mut stopped = l.launch(id(3), &run("sleep 30")).unwrap();
    let mut killed = l.launch(id(4), &run("sleep 30")).unwrap();
    assert_eq!(l.running(), vec![id(3), id(4)]);
    assert!(l.stop(&id(3)));
    assert!(l.kill(&id(4)));
    let (s, k) = (stopped.wait().await, killed.wait().await);
    assert_eq!(s.exit_status, KILLED_BY_APPMASTER, "{s:?}");
    assert_eq!(k.exit_status, 137, "{k:?}");
    assert!(l.running().is_empty());
    assert!(!l.kill(&id(4)), "an exited container is not signalled again");
}

#[test]
fn containers_die_with_the_test_process_even_without_a_drop() {
    // A child process plays the test process: it starts a container whose
    // shell starts a grandchild, then dies by SIGKILL (nothing is dropped).
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("grandchild.pid");
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args(["--exact", "orphan_maker", "--nocapture"])
        .env("YF_ORPHAN_PID_FILE", &pid_file)
        .env("YF_ORPHAN_ROOT", tmp.path())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let grandchild: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file).ok().and_then(|s| s.trim().parse().ok()) {
            break pid;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the container never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split(") ").nth(1).is_some_and(|rest| !rest.starts_with('Z')))
    };
    let start = std::time::Instant::now();
    while alive(grandchild) {
        assert!(start.elapsed() < Duration::from_secs(10), "the container's process {grandchild} outlived the test");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Not a test of its own: the entry point of the child process the test above
/// starts (and kills); without its variables it has nothing to do.
#[tokio::test]
async fn orphan_maker() {
    let (Some(pid_file), Some(root)) = (std::env::var_os("YF_ORPHAN_PID_FILE"), std::env::var_os("YF_ORPHAN_ROOT"))
    else {
        return;
    };
    let l = launcher(Path::new(&root));
    // `sleep` runs as a child of the container's bash, so PR_SET_PDEATHSIG alone would not reach it.
    // `\$`: the command sits inside `exec /bin/bash -c "..."` in launch_container.sh, so a bare
    // `$!` would be expanded by the script's own shell (shared/wire/hadoop-3.3.6/nm/ rule 5).
    let cmd = format!("sleep 60 & echo \\$! > {}; wait", Path::new(&pid_file).display());
    let _c = l.launch(id(9), &ContainerLaunchContext { commands: vec![cmd], ..Default::default() }).unwrap();
    std::mem::forget(l);
    tokio::time::sleep(Duration::from_secs(60)).await;
}

/// Issue 16: on a node of another architecture the container says so in one
/// line, in its `.err` file and in the diagnostics the RM reports to the AM
/// (the tail of `prelaunch.err`), instead of an "Exec format error".
#[tokio::test]
async fn a_node_of_another_architecture_is_named_in_the_diagnostics() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("fake-bin");
    std::fs::create_dir_all(&fake).unwrap();
    integration_tests::files::write_executable(&fake.join("uname"), "#!/bin/sh\necho aarch64\n");
    let l = launcher(tmp.path());
    // The launch context's own PATH: a whitelisted one would not override the process's.
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
    let ctx = ContainerLaunchContext {
        commands: vec![am::drivers::yarn::task_manager_command()],
        environment: BTreeMap::from([("PATH".to_string(), path)]),
        ..Default::default()
    };
    let mut c = l.launch(id(2), &ctx).unwrap();
    let exit = c.wait().await;
    let line = format!(
        "yarn-flink: the shipped binary is built for {} Linux, but this node is aarch64",
        std::env::consts::ARCH
    );
    let script = std::fs::read_to_string(c.work_dir.join("launch_container.sh")).unwrap_or_default();
    assert_eq!(exit.exit_status, 1, "{exit:?}\n{script}");
    assert!(exit.diagnostics.contains(&line), "{}", exit.diagnostics);
    let err = std::fs::read_to_string(c.log_dir.join("taskmanager.err")).unwrap();
    assert_eq!(err.trim(), line);
}
