//! Part files of the built-in text sink: where a subtask attempt stages its
//! output and how a job's output is committed or aborted.
//!
//! Layout under the sink's directory `<path>`:
//! - `<path>/.staging/<job_id>/part-<subtask:05>-<attempt>`: written by one
//!   attempt of one sink subtask while the job runs. A failed or restarted
//!   attempt leaves its file behind; only the attempts named at commit count.
//! - `<path>/part-<subtask:05>`: the committed output, one file per subtask.
//! - `<path>/_SUCCESS`: written last by [`commit`] (Hadoop's convention), so a
//!   reader can tell complete output from a crash mid-commit.
//!
//! [`commit`] renames each chosen staging file into place (a rename within one
//! file system is atomic per file), writes `_SUCCESS`, then removes the job's
//! staging directory. It is idempotent: running it again after a crash (or
//! twice) finishes the renames still missing and succeeds once every part is
//! in place. [`abort`] removes the job's staging directory and is idempotent
//! too. `hdfs://` sink directories get the same steps on HDFS (see
//! [`crate::hdfs`]); HDFS renames are atomic per file too.

use std::io;
use std::path::{Path, PathBuf};

use crate::ids::JobId;

/// The directory holding every staged file of one job.
pub fn staging_dir(sink_dir: &Path, job_id: JobId) -> PathBuf {
    sink_dir.join(".staging").join(job_id.to_string())
}

/// Where attempt `attempt_number` of sink subtask `subtask` writes its output.
pub fn staging_file(sink_dir: &Path, job_id: JobId, subtask: u32, attempt_number: u32) -> PathBuf {
    staging_dir(sink_dir, job_id).join(format!("part-{subtask:05}-{attempt_number}"))
}

/// The committed part file of sink subtask `subtask`.
pub fn part_file(sink_dir: &Path, subtask: u32) -> PathBuf {
    sink_dir.join(format!("part-{subtask:05}"))
}

/// The marker [`commit`] writes once all parts are in place.
pub fn success_marker(sink_dir: &Path) -> PathBuf {
    sink_dir.join("_SUCCESS")
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    Hdfs(#[from] crate::hdfs::HdfsIoError),
    #[error(
        "cannot commit part {subtask} of job {job_id} in {sink_dir:?}: neither the staged file {staged:?} nor the \
         committed part exists; the attempt named for it did not finish its output, so rerun the job"
    )]
    MissingPart { job_id: JobId, sink_dir: PathBuf, subtask: u32, staged: PathBuf },
    #[error("{action} {path:?} failed: {source}; check that the sink directory is writable and on one file system")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> OutputError + 'a {
    move |source| OutputError::Io { action, path: path.to_path_buf(), source }
}

/// Makes the output of the named attempts (`(subtask, attempt_number)`) the
/// sink's output. Idempotent; see the module docs. Blocks (call it from a
/// blocking thread).
pub fn commit(sink_dir: &Path, job_id: JobId, parts: &[(u32, u32)]) -> Result<(), OutputError> {
    if crate::hdfs::is_hdfs(&sink_dir.to_string_lossy()) {
        return hdfs_blocking(commit_hdfs(sink_dir, job_id, parts));
    }
    for &(subtask, attempt) in parts {
        let staged = staging_file(sink_dir, job_id, subtask, attempt);
        let part = part_file(sink_dir, subtask);
        match std::fs::rename(&staged, &part) {
            Ok(()) => {}
            // Already renamed by an earlier (possibly interrupted) commit.
            Err(e) if e.kind() == io::ErrorKind::NotFound && part.is_file() => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OutputError::MissingPart { job_id, sink_dir: sink_dir.to_path_buf(), subtask, staged })
            }
            Err(e) => return Err(io_err("renaming the staged part into", &part)(e)),
        }
    }
    let marker = success_marker(sink_dir);
    std::fs::write(&marker, b"").map_err(io_err("writing", &marker))?;
    remove_staging(sink_dir, job_id)
}

/// Drops everything a job staged in `sink_dir`. Idempotent.
pub fn abort(sink_dir: &Path, job_id: JobId) -> Result<(), OutputError> {
    if crate::hdfs::is_hdfs(&sink_dir.to_string_lossy()) {
        return hdfs_blocking(abort_hdfs(sink_dir, job_id));
    }
    remove_staging(sink_dir, job_id)
}

fn hdfs_blocking(f: impl std::future::Future<Output = Result<(), OutputError>>) -> Result<(), OutputError> {
    crate::hdfs::block_on(f).map_err(io_err("starting a runtime for HDFS output of", Path::new("hdfs://")))?
}

/// [`commit`] of an `hdfs://` sink directory.
pub async fn commit_hdfs(sink_dir: &Path, job_id: JobId, parts: &[(u32, u32)]) -> Result<(), OutputError> {
    use crate::hdfs;
    let url = |p: PathBuf| p.to_string_lossy().into_owned();
    let (client, _) = hdfs::connect(&url(sink_dir.to_path_buf()))?;
    let path = |p: PathBuf| hdfs::split_url(&url(p)).map(|(_, path)| path);
    for &(subtask, attempt) in parts {
        let staged = staging_file(sink_dir, job_id, subtask, attempt);
        let part = path(part_file(sink_dir, subtask))?;
        // Missing staged file: already renamed by an earlier (possibly interrupted) commit, or never written.
        if !hdfs::rename(&client, &path(staged.clone())?, &part).await? && !hdfs::is_file(&client, &part).await? {
            return Err(OutputError::MissingPart { job_id, sink_dir: sink_dir.to_path_buf(), subtask, staged });
        }
    }
    hdfs::touch(&client, &path(success_marker(sink_dir))?).await?;
    remove_staging_hdfs(&client, sink_dir, job_id).await
}

/// [`abort`] of an `hdfs://` sink directory.
pub async fn abort_hdfs(sink_dir: &Path, job_id: JobId) -> Result<(), OutputError> {
    let (client, _) = crate::hdfs::connect(&sink_dir.to_string_lossy())?;
    remove_staging_hdfs(&client, sink_dir, job_id).await
}

async fn remove_staging_hdfs(client: &hdfs_native::Client, sink_dir: &Path, job_id: JobId) -> Result<(), OutputError> {
    let (_, dir) = crate::hdfs::split_url(&staging_dir(sink_dir, job_id).to_string_lossy())?;
    crate::hdfs::remove(client, &dir).await?;
    // `.staging` itself goes once no other job stages there (a non-recursive delete of a non-empty dir fails).
    let (_, parent) = crate::hdfs::split_url(&sink_dir.join(".staging").to_string_lossy())?;
    let _ = client.delete(&parent, false).await;
    Ok(())
}

fn remove_staging(sink_dir: &Path, job_id: JobId) -> Result<(), OutputError> {
    let dir = staging_dir(sink_dir, job_id);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("removing", &dir)(e)),
    }
    // `.staging` itself goes once no other job stages there; failing because
    // another job still does is expected and harmless.
    let _ = std::fs::remove_dir(sink_dir.join(".staging"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(dir: &Path, job: JobId, subtask: u32, attempt: u32, text: &str) {
        let f = staging_file(dir, job, subtask, attempt);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    }

    #[test]
    fn commit_renames_chosen_attempts_and_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let job = JobId::from_u128(7);
        stage(tmp.path(), job, 0, 0, "a\n");
        stage(tmp.path(), job, 1, 0, "stale\n");
        stage(tmp.path(), job, 1, 1, "b\n");
        commit(tmp.path(), job, &[(0, 0), (1, 1)]).unwrap();
        assert_eq!(std::fs::read_to_string(part_file(tmp.path(), 0)).unwrap(), "a\n");
        assert_eq!(std::fs::read_to_string(part_file(tmp.path(), 1)).unwrap(), "b\n");
        assert!(success_marker(tmp.path()).is_file());
        assert!(!tmp.path().join(".staging").exists());
        // Again: nothing staged any more, every part in place.
        commit(tmp.path(), job, &[(0, 0), (1, 1)]).unwrap();
        assert_eq!(std::fs::read_to_string(part_file(tmp.path(), 1)).unwrap(), "b\n");
    }

    #[test]
    fn commit_finishes_an_interrupted_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let job = JobId::from_u128(8);
        stage(tmp.path(), job, 0, 0, "a\n");
        stage(tmp.path(), job, 1, 0, "b\n");
        std::fs::rename(staging_file(tmp.path(), job, 0, 0), part_file(tmp.path(), 0)).unwrap();
        commit(tmp.path(), job, &[(0, 0), (1, 0)]).unwrap();
        assert_eq!(std::fs::read_to_string(part_file(tmp.path(), 1)).unwrap(), "b\n");
    }

    #[test]
    fn commit_without_output_names_the_missing_part() {
        let tmp = tempfile::tempdir().unwrap();
        let job = JobId::from_u128(9);
        let err = commit(tmp.path(), job, &[(3, 0)]).unwrap_err();
        assert!(matches!(err, OutputError::MissingPart { subtask: 3, .. }), "{err}");
        assert!(!success_marker(tmp.path()).exists());
    }

    #[test]
    fn abort_removes_staging_and_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let job = JobId::from_u128(10);
        let other = JobId::from_u128(11);
        stage(tmp.path(), job, 0, 0, "a\n");
        stage(tmp.path(), other, 0, 0, "keep\n");
        abort(tmp.path(), job).unwrap();
        abort(tmp.path(), job).unwrap();
        assert!(!staging_dir(tmp.path(), job).exists());
        assert!(staging_file(tmp.path(), other, 0, 0).is_file());
        assert!(!part_file(tmp.path(), 0).exists());
    }
}
