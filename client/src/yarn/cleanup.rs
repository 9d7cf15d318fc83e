//! `yarn-flink staging list|clean`: what crashed or killed clients left in
//! the staging dir, decided by the ResourceManager's word on each application.
//!
//! - `<application id>/` is stale when its application ended (FINISHED,
//!   FAILED, KILLED) or is unknown to the RM, and it was last modified more
//!   than `--older-than` ago (a submit in progress has a young dir whose
//!   application the RM does not know yet). An application whose state cannot
//!   be read is never touched, and makes the run fail.
//! - `cache/<sha256>/` entries are pruned only with `--prune-cache DAYS`:
//!   older than DAYS and referenced by no application dir that is still alive
//!   (running, queued, or not yet known to the RM). What an application
//!   localizes is in its dir's AM contract (`local_resources`), which the AM
//!   also uses for every TaskManager container it starts; an application whose
//!   contract cannot be read stops the pruning (nothing is deleted blindly).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use am::drivers::yarn::contract::{AmContract, CONTRACT_LINK};

use super::rest::{is_terminal_state, RmError, RmRestClient};
use super::staging::{DirEntry, Staging};
use crate::commands::report::{Item, Report, Severity};

/// A contract is a few KB; anything near this is not ours.
const CONTRACT_MAX: u64 = 1 << 20;

/// What the RM says of an application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppState {
    /// NEW .. RUNNING, FINISHING: it may still localize.
    Alive(String),
    /// FINISHED, FAILED, KILLED.
    Ended(String),
    /// The RM does not know it (404): never submitted, or long forgotten.
    Unknown,
}

/// Where application states come from: the RM REST API, or a test's table.
#[allow(async_fn_in_trait)]
pub trait AppStates {
    async fn state(&self, id: &str) -> Result<AppState, String>;
}

impl AppStates for RmRestClient {
    async fn state(&self, id: &str) -> Result<AppState, String> {
        match self.app_state(id).await {
            Ok(s) if is_terminal_state(&s) => Ok(AppState::Ended(s)),
            Ok(s) => Ok(AppState::Alive(s)),
            Err(RmError::NotFound(_)) => Ok(AppState::Unknown),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub older_than: Duration,
    /// `--prune-cache DAYS`, as a duration.
    pub prune_cache: Option<Duration>,
    pub action: Action,
}

/// What is done with what is stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `staging list`: say what is stale.
    List,
    /// `staging clean --dry-run`: say what would be deleted.
    DryRun,
    /// `staging clean`.
    Delete,
}

fn modified(e: &DirEntry) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(e.modified_ms.max(0) as u64)
}

/// `list` and `clean`: one item per application dir (and per cache entry with `prune_cache`).
pub async fn run<S: Staging, R: AppStates>(staging: &S, rm: &R, opts: &Options, now: SystemTime) -> Report {
    let mut report = Report::default();
    let entries = match staging.list("").await {
        Ok(e) => e,
        Err(e) => {
            report.push(Item::new("unreadable", Severity::Fail, "staging-dir", staging.root()).note(e.to_string()));
            return report;
        }
    };
    // Cache entries that a live application (or one being submitted) may localize.
    let mut in_use: BTreeSet<String> = BTreeSet::new();
    let mut in_use_known = true;
    let apps: Vec<&DirEntry> = entries.iter().filter(|e| e.is_dir && e.name.starts_with("application_")).collect();
    for dir in &apps {
        let id = &dir.name;
        let when = modified(dir);
        let young = now.duration_since(when).unwrap_or_default() < opts.older_than;
        let state = rm.state(id).await;
        let (status, severity, note, stale) = match &state {
            Err(e) => ("unchecked", Severity::Fail, format!("its state cannot be read, so it is kept: {e}"), false),
            Ok(AppState::Alive(s)) => ("alive", Severity::Ok, format!("{s}: kept"), false),
            Ok(_) if young => (
                "young",
                Severity::Ok,
                format!("modified within --older-than {}: kept (a submit may be in progress)", human(opts.older_than)),
                false,
            ),
            Ok(AppState::Ended(s)) => ("stale", Severity::Ok, s.clone(), true),
            Ok(AppState::Unknown) => ("stale", Severity::Ok, "unknown to the ResourceManager".into(), true),
        };
        // What it may still localize: alive, being submitted (young and unknown),
        // or unknown to us. An ended application localizes nothing more.
        if !stale && !matches!(state, Ok(AppState::Ended(_))) {
            match read_refs(staging, id).await {
                Ok(refs) => in_use.extend(refs),
                // A live app's contract is always there; an unreadable one stops the pruning.
                Err(e) => {
                    in_use_known = false;
                    if opts.prune_cache.is_some() {
                        // A submit in progress has not written its contract yet: expected, not a failure.
                        let severity =
                            if matches!(state, Ok(AppState::Unknown)) { Severity::Warn } else { Severity::Fail };
                        report.push(Item::new("unchecked", severity, "app-dir", id.clone()).note(format!(
                            "cannot tell which cache entries it uses, so the cache is not pruned this time: {e}"
                        )));
                    }
                }
            }
        }
        let item = match (stale, opts.action) {
            (true, Action::Delete) => match staging.remove_dir(id).await {
                Ok(()) => Item::new("deleted", Severity::Ok, "app-dir", id.clone()).note(note),
                Err(e) => Item::new("failed", Severity::Fail, "app-dir", id.clone()).note(format!("{note}; {e}")),
            },
            (true, Action::DryRun) => Item::new("would-delete", severity, "app-dir", id.clone()).note(note),
            _ => Item::new(status, severity, "app-dir", id.clone()).note(note),
        };
        report.push(item.at(when));
    }
    if let Some(age) = opts.prune_cache {
        if in_use_known {
            let deleted = prune(staging, &in_use, age, opts.action, now, &mut report).await;
            if !deleted.is_empty() {
                recheck(staging, &apps, &deleted, &mut report).await;
            }
        }
    }
    report
}

/// The cache dirs (`<sha256>`) an application's contract names.
async fn read_refs<S: Staging>(staging: &S, id: &str) -> Result<Vec<String>, String> {
    let rel = format!("{id}/{CONTRACT_LINK}");
    let bytes = staging.read(&rel, CONTRACT_MAX).await.map_err(|e| e.to_string())?;
    let Some(bytes) = bytes else {
        return Err(format!("{rel} is missing"));
    };
    let text = String::from_utf8_lossy(&bytes);
    let contract = AmContract::from_json(&rel, &text).map_err(|e| e.to_string())?;
    Ok(contract
        .local_resources
        .values()
        .filter_map(|r| r.url.split("/cache/").nth(1)?.split('/').next().map(str::to_owned))
        .collect())
}

async fn prune<S: Staging>(
    staging: &S,
    in_use: &BTreeSet<String>,
    age: Duration,
    action: Action,
    now: SystemTime,
    report: &mut Report,
) -> BTreeSet<String> {
    let mut deleted = BTreeSet::new();
    let entries = match staging.list("cache").await {
        Ok(e) => e,
        Err(e) => {
            report.push(Item::new("unreadable", Severity::Fail, "cache", "cache").note(e.to_string()));
            return deleted;
        }
    };
    for e in entries.iter().filter(|e| e.is_dir) {
        let name = format!("cache/{}", e.name);
        let when = modified(e);
        let item = if in_use.contains(&e.name) {
            Item::new("in-use", Severity::Ok, "cache-entry", name).note("localized by a live application: kept")
        } else if now.duration_since(when).unwrap_or_default() < age {
            Item::new("recent", Severity::Ok, "cache-entry", name)
                .note(format!("uploaded within --prune-cache {}: kept", human(age)))
        } else if action != Action::Delete {
            Item::new(if action == Action::List { "stale" } else { "would-delete" }, Severity::Ok, "cache-entry", name)
                .note("unused and old")
        } else {
            match staging.remove_dir(&name).await {
                Ok(()) => {
                    deleted.insert(e.name.clone());
                    Item::new("deleted", Severity::Ok, "cache-entry", name).note("unused and old")
                }
                Err(err) => Item::new("failed", Severity::Fail, "cache-entry", name).note(err.to_string()),
            }
        };
        report.push(item.at(when));
    }
    deleted
}

/// A submit that started while the cache was pruned may have found an entry
/// just before it was deleted: such an application is named, so it can be
/// resubmitted (the next submit uploads the entry again).
async fn recheck<S: Staging>(staging: &S, before: &[&DirEntry], deleted: &BTreeSet<String>, report: &mut Report) {
    let Ok(now) = staging.list("").await else { return };
    for dir in now.iter().filter(|e| e.is_dir && e.name.starts_with("application_")) {
        if before.iter().any(|b| b.name == dir.name) {
            continue;
        }
        if let Ok(refs) = read_refs(staging, &dir.name).await {
            if let Some(gone) = refs.iter().find(|r| deleted.contains(*r)) {
                report.push(Item::new("raced", Severity::Fail, "app-dir", dir.name.clone()).note(format!(
                    "submitted while the cache was pruned; it uses cache/{gone}, which was deleted: kill it and submit again"
                )));
            }
        }
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s.is_multiple_of(86400) {
        format!("{} d", s / 86400)
    } else if s > 0 && s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use am::drivers::yarn::contract::{ClusterShape, LocalResourceEntry, Mode, BINARY_LINK, CONTRACT_VERSION};

    use super::*;
    use crate::yarn::staging::{staging_root, FileStaging, HdfsStaging};

    /// The RM's word on each application, as a table.
    struct Table(BTreeMap<&'static str, Result<AppState, String>>);

    impl AppStates for Table {
        async fn state(&self, id: &str) -> Result<AppState, String> {
            self.0.get(id).cloned().unwrap_or(Ok(AppState::Unknown))
        }
    }

    const LIVE: &str = "application_1795750141222_0001";
    const KILLED: &str = "application_1795750141222_0002";
    const FORGOTTEN: &str = "application_1795750141222_0003";
    const UNREADABLE: &str = "application_1795750141222_0004";

    fn table(with_unreadable: bool) -> Table {
        let mut t = BTreeMap::new();
        t.insert(LIVE, Ok(AppState::Alive("RUNNING".into())));
        t.insert(KILLED, Ok(AppState::Ended("KILLED".into())));
        if with_unreadable {
            t.insert(UNREADABLE, Err("the ResourceManager answered 500".into()));
        }
        Table(t)
    }

    /// A contract whose binary is `cache/<sha>/yarn-flink.tar.gz`.
    fn contract(root: &str, sha: &str) -> Vec<u8> {
        let mut local_resources = BTreeMap::new();
        local_resources.insert(
            BINARY_LINK.to_owned(),
            LocalResourceEntry {
                url: format!("{root}/cache/{sha}/yarn-flink.tar.gz"),
                size: 1,
                timestamp: 1,
                kind: "ARCHIVE".into(),
                visibility: "APPLICATION".into(),
            },
        );
        let c = AmContract {
            version: CONTRACT_VERSION,
            mode: Mode::Session,
            bundle: None,
            staging_dir: None,
            local_resources,
            cluster: ClusterShape::default(),
            keytab_login: None,
            max_attempts: 1,
        };
        c.to_json().into_bytes()
    }

    /// Two cache entries (`aaaa` used by the live app, `bbbb` by none), the
    /// live app, a killed one, one the RM forgot, and (optionally) one whose
    /// state cannot be read.
    async fn lay_out<S: Staging>(s: &S, with_unreadable: bool) {
        for sha in ["aaaa", "bbbb"] {
            s.write(&format!("cache/{sha}/yarn-flink.tar.gz"), b"x").await.unwrap();
        }
        s.write(&format!("{LIVE}/{CONTRACT_LINK}"), &contract(s.root(), "aaaa")).await.unwrap();
        s.write(&format!("{KILLED}/{CONTRACT_LINK}"), &contract(s.root(), "bbbb")).await.unwrap();
        s.write(&format!("{FORGOTTEN}/x"), b"x").await.unwrap();
        if with_unreadable {
            s.write(&format!("{UNREADABLE}/x"), b"x").await.unwrap();
        }
    }

    fn statuses(r: &Report) -> Vec<(String, String)> {
        r.items.iter().map(|i| (i.name.clone(), i.status.clone())).collect()
    }

    fn opts(action: Action, prune: bool) -> Options {
        Options {
            older_than: Duration::from_secs(3600),
            prune_cache: prune.then(|| Duration::from_secs(86400)),
            action,
        }
    }

    /// Later than every mtime by more than `--older-than` and `--prune-cache`.
    fn later() -> SystemTime {
        SystemTime::now() + Duration::from_secs(3 * 86400)
    }

    async fn names<S: Staging>(s: &S, rel: &str) -> Vec<String> {
        let mut v: Vec<String> = s.list(rel).await.unwrap().into_iter().map(|e| e.name).collect();
        v.sort();
        v
    }

    async fn exactly_the_dirs_of_ended_applications_go<S: Staging>(s: &S) {
        lay_out(s, false).await;
        let listed = run(s, &table(false), &opts(Action::List, false), later()).await;
        let mut seen = statuses(&listed);
        seen.sort();
        assert_eq!(
            seen,
            [(LIVE.into(), "alive".into()), (KILLED.into(), "stale".into()), (FORGOTTEN.into(), "stale".into())]
        );
        assert_eq!(listed.worst(), Severity::Ok);
        let dry = run(s, &table(false), &opts(Action::DryRun, true), later()).await;
        assert!(dry.items.iter().all(|i| i.status != "deleted"), "{:?}", dry.items);
        assert_eq!(names(s, "").await.len(), 4, "a dry run deletes nothing");

        let clean = run(s, &table(false), &opts(Action::Delete, true), later()).await;
        assert_eq!(clean.worst(), Severity::Ok, "{:?}", clean.items);
        assert_eq!(names(s, "").await, ["application_1795750141222_0001", "cache"]);
        // The killed app's entry goes; the live app's stays, however old.
        assert_eq!(names(s, "cache").await, ["aaaa"]);
        let entries: BTreeMap<String, String> = clean
            .items
            .iter()
            .filter(|i| i.kind == "cache-entry")
            .map(|i| (i.name.clone(), i.status.clone()))
            .collect();
        assert_eq!(entries["cache/aaaa"], "in-use");
        assert_eq!(entries["cache/bbbb"], "deleted");
    }

    #[tokio::test]
    async fn file_staging_clean_removes_exactly_the_dirs_of_ended_applications() {
        let t = tempfile::tempdir().unwrap();
        let s = FileStaging::new(&staging_root(&format!("file://{}", t.path().display()), "alice"));
        exactly_the_dirs_of_ended_applications_go(&s).await;
    }

    /// The same through the NameNode's RPC (hdfs-native against the HDFS
    /// double, which has no WebHDFS at all): what `submit` uses, so `staging`
    /// works wherever `submit` does, including where WebHDFS is HTTPS-only or off.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hdfs_staging_clean_works_without_webhdfs() {
        let hdfs = integration_tests::hdfs_double::HdfsDouble::start().await.unwrap();
        let s = HdfsStaging::new(&hdfs.url(), "alice", None, None).unwrap();
        exactly_the_dirs_of_ended_applications_go(&s).await;
        assert!(hdfs.paths().iter().any(|p| p == "/user/alice/.yarn-flink/cache/aaaa"), "{:?}", hdfs.paths());
        assert!(!hdfs.paths().iter().any(|p| p.contains(KILLED)));
        assert!(hdfs.unknown_methods().is_empty(), "{:?}", hdfs.unknown_methods());
    }

    /// With security on: a Kerberized NameNode (SIMPLE refused), reached with a
    /// keytab login through the client's own configuration, as `submit` does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hdfs_staging_clean_works_on_a_kerberized_name_node() {
        use integration_tests::hdfs_double::tokens::TokenLifetimes;
        use integration_tests::hdfs_double::{HdfsDouble, HdfsDoubleConfig, HdfsSecurity};
        let kdc = integration_tests::kdc::TestKdc::start().unwrap();
        let lifetimes =
            TokenLifetimes { renew_interval: Duration::from_secs(60), max_lifetime: Duration::from_secs(600) };
        let security = Some(HdfsSecurity { nn_keytab: kdc.keytab("nn"), lifetimes });
        let hdfs = HdfsDouble::start_with(HdfsDoubleConfig { security, ..Default::default() }).await.unwrap();
        let fs = format!("hdfs://localhost:{}", hdfs.namenode_addr().port());
        let conf = tempfile::tempdir().unwrap();
        let prop = |k: &str, v: &str| format!("<property><name>{k}</name><value>{v}</value></property>");
        let core = format!(
            "<configuration>{}{}</configuration>",
            prop("fs.defaultFS", &fs),
            prop("hadoop.security.authentication", "kerberos")
        );
        std::fs::write(conf.path().join("core-site.xml"), core).unwrap();
        let hdfs_site = prop("dfs.namenode.kerberos.principal", "nn/_HOST@YARNFLINK.TEST");
        std::fs::write(conf.path().join("hdfs-site.xml"), format!("<configuration>{hdfs_site}</configuration>"))
            .unwrap();
        let alice = integration_tests::kdc::TestKdc::principal("alice");
        let keytab = kdc.keytab("alice");
        let s = HdfsStaging::new(&fs, "alice", Some(conf.path()), Some((&alice, Some(&keytab)))).unwrap();
        exactly_the_dirs_of_ended_applications_go(&s).await;
        // `submit --keytab` ships the keytab readable by its owner only.
        s.write("application_1795750141222_0009/krb5.keytab", b"k").await.unwrap();
        s.make_private("application_1795750141222_0009/krb5.keytab").await.unwrap();
        let shipped = "/user/alice/.yarn-flink/application_1795750141222_0009/krb5.keytab";
        assert_eq!(hdfs.permission(shipped), Some(0o400));
        // Without a login, the same NameNode refuses the client (hdfs-native retries
        // a refused connection for minutes: a few seconds of it show no listing).
        let anonymous = HdfsStaging::new(&fs, "alice", None, None).unwrap();
        let refused = tokio::time::timeout(Duration::from_secs(3), anonymous.list("")).await;
        assert!(!matches!(refused, Ok(Ok(_))), "SIMPLE must not list a Kerberized NameNode");
    }

    #[tokio::test]
    async fn an_unreadable_state_keeps_the_dir_fails_the_run_and_stops_the_pruning() {
        let t = tempfile::tempdir().unwrap();
        let s = FileStaging::new(&staging_root(&format!("file://{}", t.path().display()), "alice"));
        lay_out(&s, true).await;
        let r = run(&s, &table(true), &opts(Action::Delete, true), later()).await;
        assert_eq!(r.worst(), Severity::Fail);
        assert!(r.items.iter().any(|i| i.name == UNREADABLE && i.status == "unchecked"), "{:?}", r.items);
        assert!(names(&s, "").await.contains(&UNREADABLE.to_owned()));
        // It may be alive and use any entry: nothing in the cache is deleted.
        assert_eq!(names(&s, "cache").await, ["aaaa", "bbbb"]);
    }

    #[tokio::test]
    async fn young_dirs_and_recent_cache_entries_are_kept() {
        let t = tempfile::tempdir().unwrap();
        let s = FileStaging::new(&staging_root(&format!("file://{}", t.path().display()), "alice"));
        lay_out(&s, false).await;
        let r = run(&s, &table(false), &opts(Action::Delete, true), SystemTime::now()).await;
        let got: BTreeMap<String, String> = r.items.iter().map(|i| (i.name.clone(), i.status.clone())).collect();
        assert_eq!(got[KILLED], "young", "a submit may still be writing it");
        assert_eq!(got[FORGOTTEN], "young");
        // A young dir the RM does not know is a submit in progress, whose
        // contract (what it will localize) is not written yet: no pruning.
        assert!(!got.contains_key("cache/bbbb"), "{:?}", r.items);
        assert_eq!(r.worst(), Severity::Warn);
        assert_eq!(names(&s, "").await.len(), 4);
        assert_eq!(names(&s, "cache").await, ["aaaa", "bbbb"]);
        // Once it has its contract, only what it names is protected, and recent entries stay.
        s.write(&format!("{FORGOTTEN}/{CONTRACT_LINK}"), &contract(s.root(), "aaaa")).await.unwrap();
        let r = run(&s, &table(false), &opts(Action::Delete, true), SystemTime::now()).await;
        let got: BTreeMap<String, String> = r.items.iter().map(|i| (i.name.clone(), i.status.clone())).collect();
        assert_eq!(got["cache/bbbb"], "recent", "{:?}", r.items);
        assert_eq!(r.worst(), Severity::Ok);
    }
}
