//! The few file operations of the HA storage dir and the YARN leader file,
//! on a local (or mounted) path, a `file://` URL, or `hdfs://` (through
//! [`crate::hdfs`]). Every location is a full path or URL, as the ZooKeeper
//! pointers hold them. Files are written aside and renamed into place, so a
//! reader never sees half of one.

use std::path::{Path, PathBuf};

use crate::hdfs;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Hdfs(String),
    #[error("{0} is gone")]
    Missing(String),
}

fn local_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Io { action, path: path.to_owned(), source }
}

fn hdfs_err(e: hdfs::HdfsIoError) -> StorageError {
    StorageError::Hdfs(e.to_string())
}

/// A local location as a path: a `file://` URL (a staging dir on the local file system) or a path.
fn local(location: &str) -> PathBuf {
    PathBuf::from(location.strip_prefix("file://").unwrap_or(location))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(StorageError::Hdfs(e.to_string())))
}

/// `base` joined with a relative path, for either kind of location.
pub fn join(base: &str, rel: &str) -> String {
    format!("{}/{rel}", base.trim_end_matches('/'))
}

pub async fn write(location: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
    if hdfs::is_hdfs(location) {
        let (client, path) = hdfs::connect_async(location).await.map_err(hdfs_err)?;
        let tmp = format!("{path}.tmp");
        let opts = hdfs_native::WriteOptions { overwrite: true, create_parent: true, ..Default::default() };
        let op = |op: &'static str, p: &str| {
            let p = p.to_owned();
            move |e: hdfs_native::HdfsError| StorageError::Hdfs(format!("HDFS {op} {p}: {e}"))
        };
        let mut w = client.create(&tmp, opts).await.map_err(op("create", &tmp))?;
        w.write_bytes(bytes.into()).await.map_err(op("write", &tmp))?;
        w.close().await.map_err(op("close", &tmp))?;
        client.rename(&tmp, &path, true).await.map_err(op("rename into", &path))?;
        return Ok(());
    }
    let path = local(location);
    blocking(move || write_local(&path, &bytes)).await
}

/// [`write`] for a local path, from blocking code.
pub fn write_local(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(local_err("create", dir))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(local_err("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(local_err("rename", &tmp))
}

/// [`write`] from blocking code (the JobMaster's commit thread).
pub fn write_blocking(location: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
    if hdfs::is_hdfs(location) {
        return hdfs::block_on(write(location, bytes)).map_err(|e| StorageError::Hdfs(e.to_string()))?;
    }
    write_local(&local(location), &bytes)
}

/// The file's bytes, `None` when it does not exist.
pub async fn read(location: &str) -> Result<Option<Vec<u8>>, StorageError> {
    if hdfs::is_hdfs(location) {
        let (client, path) = hdfs::connect_async(location).await.map_err(hdfs_err)?;
        if !hdfs::is_file(&client, &path).await.map_err(hdfs_err)? {
            return Ok(None);
        }
        let bytes = hdfs::read_range(&client, &path, 0, usize::MAX).await.map_err(hdfs_err)?;
        return Ok(Some(bytes.to_vec()));
    }
    let path = local(location);
    blocking(move || match std::fs::read(&path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(local_err("read", &path)(e)),
    })
    .await
}

/// Removes a file or a whole directory; a missing one is no error.
pub async fn remove(location: &str) -> Result<(), StorageError> {
    if hdfs::is_hdfs(location) {
        let (client, path) = hdfs::connect_async(location).await.map_err(hdfs_err)?;
        return hdfs::remove(&client, &path).await.map_err(hdfs_err);
    }
    let path = local(location);
    blocking(move || {
        let r = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        match r {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(local_err("remove", &path)(e)),
        }
    })
    .await
}

/// The files directly in the directory `location` (full locations), sorted;
/// none when it does not exist.
pub async fn list(location: &str) -> Result<Vec<String>, StorageError> {
    if hdfs::is_hdfs(location) {
        let (client, path) = hdfs::connect_async(location).await.map_err(hdfs_err)?;
        let files = hdfs::list(&client, &path, None).await.map_err(hdfs_err)?;
        let base = location.trim_end_matches('/');
        return Ok(files
            .into_iter()
            .filter_map(|(p, _)| p.rsplit('/').next().map(|name| format!("{base}/{name}")))
            .collect());
    }
    let dir = local(location);
    blocking(move || {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(local_err("list", &dir)(e)),
        };
        let mut files: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path().display().to_string())
            .collect();
        files.sort();
        Ok(files)
    })
    .await
}

/// Copies a local file to `location` unless something is there already
/// (blobs are named by their content).
pub async fn put_file(local_file: &Path, location: &str) -> Result<(), StorageError> {
    if hdfs::is_hdfs(location) {
        let (client, path) = hdfs::connect_async(location).await.map_err(hdfs_err)?;
        if hdfs::is_file(&client, &path).await.map_err(hdfs_err)? {
            return Ok(());
        }
        let tmp = format!("{path}.tmp");
        hdfs::upload(&client, local_file, &tmp).await.map_err(hdfs_err)?;
        client
            .rename(&tmp, &path, true)
            .await
            .map_err(|e| StorageError::Hdfs(format!("HDFS rename into {path}: {e}")))?;
        return Ok(());
    }
    let (from, to) = (local_file.to_owned(), local(location));
    blocking(move || {
        if to.is_file() {
            return Ok(());
        }
        let dir = to.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(local_err("create", dir))?;
        let tmp = to.with_extension("tmp");
        std::fs::copy(&from, &tmp).map_err(local_err("copy", &from))?;
        std::fs::rename(&tmp, &to).map_err(local_err("rename", &tmp))
    })
    .await
}

/// Copies `location` to the local file `to`.
pub async fn get_file(location: &str, to: &Path) -> Result<(), StorageError> {
    let bytes = read(location).await?.ok_or_else(|| StorageError::Missing(location.to_owned()))?;
    let to = to.to_owned();
    blocking(move || std::fs::write(&to, &bytes).map_err(local_err("write", &to))).await
}
