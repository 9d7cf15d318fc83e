//! The HA job stores (`am::high_availability::JobStore`) on both kinds of
//! storage dir, a local directory and `hdfs://` (the HDFS double), with their
//! pointers in a real ZooKeeper: what a submitted, committing and ended job
//! leaves for the next leader, and that nothing is left at the end.

use std::sync::Arc;
use std::time::Duration;

use am::dispatcher::JobDetails;
use am::high_availability::{BundleSource, JobGraphRecord, JobStore};
use common::ha::{Election, HaLocator, LeaderInfo, ZooKeeper};
use common::ids::JobId;
use integration_tests::hdfs_double::HdfsDouble;
use integration_tests::zookeeper::TestZooKeeper;

/// `exists` tells whether a file (relative to the cluster's dir) is in the storage.
async fn exercise(storage_dir: &str, zk: &TestZooKeeper, cluster: &str, exists: &dyn Fn(&str) -> bool) {
    let l = HaLocator::parse(&zk.url("store-test"), cluster, Duration::from_secs(5)).unwrap();
    let session = ZooKeeper::connect(&l).await.unwrap();
    let info = LeaderInfo { session_id: uuid::Uuid::new_v4(), rpc_address: "x:1".into(), rest_address: None };
    let leadership = Arc::new(Election::contend(&session, info).await.unwrap());
    let store = JobStore::new(storage_dir, leadership);

    let tmp = tempfile::tempdir().unwrap();
    let upload = tmp.path().join("bundle.tar.gz");
    std::fs::write(&upload, b"not really a tarball, but bytes to keep").unwrap();
    let (a, b) = (JobId::from_u128(1), JobId::from_u128(2));
    let blob = JobGraphRecord {
        job_id: a,
        name: "uploaded".into(),
        source: BundleSource::Blob { sha256: "ab".repeat(32) },
        submitted: 10,
    };
    let path = JobGraphRecord {
        job_id: b,
        name: "by path".into(),
        source: BundleSource::Path("/jobs/x".into()),
        submitted: 20,
    };
    store.put_job_graph(&blob, Some(upload.clone())).await.unwrap();
    store.put_job_graph(&path, None).await.unwrap();
    assert_eq!(store.job_graphs().await.unwrap(), vec![blob.clone(), path.clone()], "oldest first");
    let record = format!("jobgraphs/{b}.json");
    assert!(exists(&record), "{record} is kept");
    assert!(exists(&format!("blobs/{}.tar.gz", "ab".repeat(32))));
    let fetched = tmp.path().join("fetched");
    store.fetch_blob(&"ab".repeat(32), &fetched).await.unwrap();
    assert_eq!(std::fs::read(&fetched).unwrap(), std::fs::read(&upload).unwrap());

    // The commit record is written from the JobMaster's blocking commit thread.
    let log = store.commit_log();
    let sinks = vec![(std::path::PathBuf::from("/out"), vec![(0, 1), (1, 0)])];
    let s = sinks.clone();
    tokio::task::spawn_blocking(move || log.record(a, &s)).await.unwrap().unwrap();
    assert_eq!(store.commit(a).await.unwrap().map(|c| c.sinks), Some(sinks));
    assert_eq!(store.commit(b).await.unwrap(), None);

    let done =
        JobDetails { jid: a.to_string(), name: "uploaded".into(), state: "FINISHED".into(), ..JobDetails::default() };
    store.job_ended(&done, a).await.unwrap();
    assert_eq!(store.result(a).await.unwrap(), Some(done));
    assert_eq!(store.commit(a).await.unwrap(), None, "the commit record goes with the job");
    assert_eq!(store.job_graphs().await.unwrap(), vec![path]);

    assert!(exists(&format!("job-result-store/{a}.json")));
    store.remove_all().await.unwrap();
    assert!(!exists(&record) && !exists(&format!("job-result-store/{a}.json")));
    assert!(store.job_graphs().await.unwrap().is_empty());
    assert_eq!(store.result(a).await.unwrap(), None, "the cluster's files are gone");
}

/// Without ZooKeeper (a YARN application's later attempts), records are found in the dir itself.
async fn exercise_unfenced(dir: &str) {
    let store = JobStore::unfenced(dir);
    let record = |n: u128, submitted| JobGraphRecord {
        job_id: JobId::from_u128(n),
        name: format!("job {n}"),
        source: BundleSource::Path("/jobs/x".into()),
        submitted,
    };
    store.put_job_graph(&record(7, 70), None).await.unwrap();
    store.put_job_graph(&record(5, 50), None).await.unwrap();
    assert_eq!(store.job_graphs().await.unwrap(), vec![record(5, 50), record(7, 70)]);
    let done = JobDetails { state: "FAILED".into(), ..JobDetails::default() };
    store.job_ended(&done, JobId::from_u128(5)).await.unwrap();
    assert_eq!(store.job_graphs().await.unwrap(), vec![record(7, 70)]);
    assert_eq!(store.result(JobId::from_u128(5)).await.unwrap().map(|d| d.state), Some("FAILED".into()));
    store.remove_all().await.unwrap();
    assert!(store.job_graphs().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_stores_on_a_local_dir_and_on_hdfs() {
    let zk = TestZooKeeper::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("local");
    exercise(&dir.path().display().to_string(), &zk, "local", &|rel| root.join(rel).is_file()).await;
    assert!(!root.exists());

    let hdfs = HdfsDouble::start().await.unwrap();
    exercise(&format!("{}/ha", hdfs.url()), &zk, "on-hdfs", &|rel| hdfs.read(&format!("/ha/on-hdfs/{rel}")).is_some())
        .await;
    exercise_unfenced(&format!("file://{}/unfenced", dir.path().display())).await;
    exercise_unfenced(&format!("{}/staging/app_1/ha", hdfs.url())).await;
}
