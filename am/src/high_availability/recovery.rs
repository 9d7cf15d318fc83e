//! What a new leader does with the jobs its predecessors accepted (Flink's
//! Dispatcher recovery, with the JobResultStore's rule: a job with a result is
//! never run again).

use std::path::{Path, PathBuf};

use common::ids::JobId;
use common::jobspec::{Bundle, BundleLimits};
use common::protocol::BundleBlob;
use tracing::{info, warn};

use super::job_store::{BundleSource, JobGraphRecord, JobStore, JobStoreError};
use crate::blob_store::BlobStore;
use crate::dispatcher::{Dispatcher, JobDetails};

/// Where recovered bundles are unpacked and served from.
pub struct RecoveryContext<'a> {
    pub blobs: &'a BlobStore,
    /// `http://<REST address>`, for TaskExecutors to fetch uploaded bundles.
    pub base_url: Option<&'a str>,
    pub work_dir: &'a Path,
    pub limits: BundleLimits,
}

/// Recovers every job in the dispatcher's store. For each one:
/// - it has a result: it ended under an earlier leader; it is shown, not run;
/// - a commit was begun: the commit is finished (idempotent renames), and the
///   job is FINISHED without running again;
/// - otherwise it runs again from the start, under its own id. (Every exchange
///   is pipelined, so no intermediate result survives its leader; the sinks
///   commit only at the end, so nothing committed is written twice.)
///
/// Returns how many jobs run again.
pub async fn recover_jobs(dispatcher: &Dispatcher, ctx: RecoveryContext<'_>) -> Result<usize, JobStoreError> {
    let Some(store) = dispatcher.store().cloned() else { return Ok(0) };
    let mut resumed = 0;
    for record in store.job_graphs().await? {
        let job_id = record.job_id;
        if let Some(details) = store.result(job_id).await? {
            info!(%job_id, state = %details.state, "recovered an ended job; not running it again");
            finish(dispatcher, &store, job_id, details).await;
            continue;
        }
        if let Some(commit) = store.commit(job_id).await? {
            info!(%job_id, sinks = commit.sinks.len(), "finishing the commit the previous leader began");
            let details = match finish_commit(job_id, commit.sinks).await {
                Ok(()) => ended(&record, "FINISHED", None),
                Err(e) => ended(&record, "FAILED", Some(format!("committing the output failed: {e}"))),
            };
            finish(dispatcher, &store, job_id, details).await;
            continue;
        }
        match load(&store, &record, &ctx).await {
            Ok((bundle, blob)) => {
                info!(%job_id, name = %record.name, "recovered a job; running it again");
                dispatcher.resume(job_id, bundle, blob).map_err(|e| JobStoreError::Resume(e.to_string()))?;
                resumed += 1;
            }
            Err(e) => {
                warn!(%job_id, error = %e, "a recovered job's bundle cannot be loaded; failing the job");
                let details = ended(&record, "FAILED", Some(format!("recovery after a leader change failed: {e}")));
                finish(dispatcher, &store, job_id, details).await;
            }
        }
    }
    Ok(resumed)
}

/// Finishes a commit an earlier leader began (idempotent renames, then `_SUCCESS`).
pub async fn finish_commit(job_id: JobId, sinks: Vec<(PathBuf, Vec<(u32, u32)>)>) -> Result<(), String> {
    tokio::task::spawn_blocking(move || -> Result<(), String> {
        for (dir, parts) in sinks {
            common::output::commit(&dir, job_id, &parts).map_err(|e| e.to_string())?;
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()))
}

async fn finish(dispatcher: &Dispatcher, store: &JobStore, job_id: JobId, details: JobDetails) {
    if let Err(e) = store.job_ended(&details, job_id).await {
        warn!(%job_id, error = %e, "cannot record the job's end in the HA store");
    }
    dispatcher.insert_ended(job_id, details);
}

fn ended(record: &JobGraphRecord, state: &str, error: Option<String>) -> JobDetails {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    JobDetails {
        jid: record.job_id.to_string(),
        name: record.name.clone(),
        state: state.into(),
        start_time: record.submitted,
        end_time: now as i64,
        duration: now.saturating_sub(record.submitted),
        error,
        ..JobDetails::default()
    }
}

async fn load(
    store: &JobStore,
    record: &JobGraphRecord,
    ctx: &RecoveryContext<'_>,
) -> Result<(Bundle, Option<BundleBlob>), String> {
    let work = ctx.work_dir.join(format!("bundle-{}", record.job_id));
    let limits = ctx.limits;
    match &record.source {
        BundleSource::Path(p) => {
            let p = p.clone();
            let loaded =
                tokio::task::spawn_blocking(move || Bundle::load(&p, &work, &limits).map_err(|e| e.to_string()));
            loaded.await.map_err(|e| e.to_string())?.map(|b| (b, None))
        }
        BundleSource::Blob { sha256 } => {
            let base = ctx.base_url.ok_or("an uploaded bundle needs the REST API to serve it")?;
            std::fs::create_dir_all(ctx.blobs.dir()).map_err(|e| e.to_string())?;
            let tmp =
                tempfile::Builder::new().prefix(".recover-").tempfile_in(ctx.blobs.dir()).map_err(|e| e.to_string())?;
            store.fetch_blob(sha256, tmp.path()).await.map_err(|e| e.to_string())?;
            let (blobs, key) = (ctx.blobs.clone(), sha256.clone());
            let loaded = tokio::task::spawn_blocking(move || -> Result<Bundle, String> {
                let path = blobs.adopt(tmp, &key).map_err(|e| e.to_string())?;
                Bundle::load(&path, &work, &limits).map_err(|e| e.to_string())
            });
            let bundle = loaded.await.map_err(|e| e.to_string())??;
            let blob = BundleBlob { sha256: sha256.clone(), url: format!("{base}/blobs/{sha256}"), limits };
            Ok((bundle, Some(blob)))
        }
    }
}
