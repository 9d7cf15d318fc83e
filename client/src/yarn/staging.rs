//! The staging file system: where the client puts the binary and the bundle
//! for YARN to localize.
//!
//! Layout under `<fs.defaultFS>/user/<user>/.yarn-flink/`:
//! - `cache/<sha256>/<name>`: content-keyed, shared by every submission of
//!   this user, so a repeat submit uploads only what changed;
//! - `<application id>/`: per-application files (removed when the app ends).
//!
//! [`Staging`] is the seam: [`FileStaging`] (`file://`, what single-node Hadoop
//! runs with and what the test double uses) implements it today; HDFS plugs in
//! behind the same trait.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A file in the staging file system, as YARN's local resource needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    pub url: String,
    pub size: u64,
    /// Modification time (ms since the epoch); YARN checks it at localization.
    pub timestamp_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error("cannot {op} {path} in the staging dir: {source}; check that the directory exists and is writable by this user (fs.defaultFS in core-site.xml names the file system)")]
    Io { op: &'static str, path: String, source: std::io::Error },
    #[error("cannot read {path}: {source}")]
    Local { path: String, source: std::io::Error },
    #[error("fs.defaultFS is {0}: staging there is not supported yet; set fs.defaultFS to file:/// (single node) or run from a cluster whose default file system is file://")]
    Unsupported(String),
}

/// The operations a submission needs. Paths are relative to [`Staging::root`].
#[allow(async_fn_in_trait)]
pub trait Staging {
    /// The root URL, `<fs.defaultFS>/user/<user>/.yarn-flink`.
    fn root(&self) -> &str;
    async fn stat(&self, rel: &str) -> Result<Option<RemoteFile>, StagingError>;
    /// Copies `local` to `rel` (atomically: readers never see half a file),
    /// calling `progress(done, total)` as bytes go.
    async fn put(&self, local: &Path, rel: &str, progress: &mut dyn FnMut(u64, u64)) -> Result<RemoteFile, StagingError>;
    async fn write(&self, rel: &str, bytes: &[u8]) -> Result<RemoteFile, StagingError>;
    /// Removes a directory and everything under it; absent is fine.
    async fn remove_dir(&self, rel: &str) -> Result<(), StagingError>;
}

/// The staging dir URL for `user` on the default file system `default_fs`.
pub fn staging_root(default_fs: &str, user: &str) -> String {
    format!("{}/user/{user}/.yarn-flink", default_fs.trim_end_matches('/'))
}

/// The staging file system named by `fs.defaultFS`.
pub fn open(default_fs: &str, user: &str) -> Result<FileStaging, StagingError> {
    if default_fs.starts_with("file:") {
        Ok(FileStaging::new(&staging_root(default_fs, user)))
    } else {
        Err(StagingError::Unsupported(default_fs.to_owned()))
    }
}

/// `file://` staging (Hadoop's `LocalFileSystem`).
pub struct FileStaging {
    root_url: String,
    root: PathBuf,
}

impl FileStaging {
    /// `root_url`: `file:///abs/path` (or `file:/abs/path`, as Hadoop also writes it).
    pub fn new(root_url: &str) -> Self {
        let path = root_url.strip_prefix("file://").or_else(|| root_url.strip_prefix("file:")).unwrap_or(root_url);
        let root = PathBuf::from(if path.is_empty() { "/" } else { path });
        Self { root_url: format!("file://{}", root.display()), root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn url(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root_url)
    }

    fn remote(&self, rel: &str, meta: &std::fs::Metadata) -> RemoteFile {
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        RemoteFile { url: self.url(rel), size: meta.len(), timestamp_ms: mtime }
    }

    fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StagingError + '_ {
        move |source| StagingError::Io { op, path: path.display().to_string(), source }
    }

    /// A temp name beside `dest`, then rename: readers never see half a file.
    fn tmp_beside(dest: &Path) -> PathBuf {
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        dest.with_file_name(format!(".{name}.tmp-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()))
    }
}

impl Staging for FileStaging {
    fn root(&self) -> &str {
        &self.root_url
    }

    async fn stat(&self, rel: &str) -> Result<Option<RemoteFile>, StagingError> {
        let p = self.path(rel);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => Ok(Some(self.remote(rel, &m))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::io("stat", &p)(e)),
        }
    }

    async fn put(&self, local: &Path, rel: &str, progress: &mut dyn FnMut(u64, u64)) -> Result<RemoteFile, StagingError> {
        let dest = self.path(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(Self::io("create", parent))?;
        }
        let lerr = |source| StagingError::Local { path: local.display().to_string(), source };
        let mut src = std::fs::File::open(local).map_err(lerr)?;
        let total = src.metadata().map_err(lerr)?.len();
        let tmp = Self::tmp_beside(&dest);
        let result = (|| {
            let mut out = std::fs::File::create(&tmp).map_err(Self::io("create", &tmp))?;
            let mut buf = vec![0u8; 1 << 20];
            let mut done = 0u64;
            loop {
                let n = src.read(&mut buf).map_err(lerr)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n]).map_err(Self::io("write", &tmp))?;
                done += n as u64;
                progress(done, total);
            }
            out.sync_all().map_err(Self::io("sync", &tmp))?;
            std::fs::rename(&tmp, &dest).map_err(Self::io("rename into", &dest))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result?;
        let meta = std::fs::metadata(&dest).map_err(Self::io("stat", &dest))?;
        Ok(self.remote(rel, &meta))
    }

    async fn write(&self, rel: &str, bytes: &[u8]) -> Result<RemoteFile, StagingError> {
        let dest = self.path(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(Self::io("create", parent))?;
        }
        let tmp = Self::tmp_beside(&dest);
        std::fs::write(&tmp, bytes).map_err(Self::io("write", &tmp))?;
        std::fs::rename(&tmp, &dest).map_err(Self::io("rename into", &dest))?;
        let meta = std::fs::metadata(&dest).map_err(Self::io("stat", &dest))?;
        Ok(self.remote(rel, &meta))
    }

    async fn remove_dir(&self, rel: &str) -> Result<(), StagingError> {
        let p = self.path(rel);
        match std::fs::remove_dir_all(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Self::io("remove", &p)(e)),
            _ => Ok(()),
        }
    }
}

/// What [`upload_cached`] did with one file.
#[derive(Clone, Debug)]
pub struct Upload {
    pub name: String,
    pub file: RemoteFile,
    /// True when the content was already in the cache (nothing copied).
    pub reused: bool,
    pub sha256: String,
}

/// SHA-256 of a local file, hex.
pub fn sha256_file(path: &Path) -> Result<String, StagingError> {
    let lerr = |source| StagingError::Local { path: path.display().to_string(), source };
    let mut f = std::fs::File::open(path).map_err(lerr)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(lerr)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Puts `local` at `cache/<sha256>/<name>` unless that content is already there.
pub async fn upload_cached<S: Staging>(
    staging: &S,
    local: &Path,
    name: &str,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Upload, StagingError> {
    let sha256 = sha256_file(local)?;
    let rel = format!("cache/{sha256}/{name}");
    let size = std::fs::metadata(local).map_err(|source| StagingError::Local { path: local.display().to_string(), source })?.len();
    if let Some(existing) = staging.stat(&rel).await? {
        // Same key and same size: the same bytes (a torn copy never gets the final name).
        if existing.size == size {
            return Ok(Upload { name: name.to_owned(), file: existing, reused: true, sha256 });
        }
    }
    let file = staging.put(local, &rel, progress).await?;
    Ok(Upload { name: name.to_owned(), file, reused: false, sha256 })
}

/// Packs a bundle directory as a deterministic `.tar.gz`: entries sorted,
/// mtimes, owners and gzip header fixed, modes reduced to 0755/0644, so the
/// same tree always gives the same bytes (and the same cache key).
pub fn pack_dir(dir: &Path, out: &Path) -> Result<(), StagingError> {
    let lerr = |p: &Path| {
        let path = p.display().to_string();
        move |source| StagingError::Local { path, source }
    };
    let file = std::fs::File::create(out).map_err(lerr(out))?;
    let gz = flate2::GzBuilder::new().mtime(0).write(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&abs)
            .map_err(lerr(&abs))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(lerr(&abs))?;
        entries.sort();
        // Directories are visited in sorted order: push them reversed.
        let mut subdirs = Vec::new();
        for name in entries {
            let r = rel.join(&name);
            let a = dir.join(&r);
            let meta = std::fs::metadata(&a).map_err(lerr(&a))?;
            let mut header = tar::Header::new_gnu();
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            if meta.is_dir() {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, &r, std::io::empty()).map_err(lerr(&a))?;
                subdirs.push(r);
            } else {
                use std::os::unix::fs::PermissionsExt;
                let exec = meta.permissions().mode() & 0o111 != 0;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if exec { 0o755 } else { 0o644 });
                header.set_size(meta.len());
                let f = std::fs::File::open(&a).map_err(lerr(&a))?;
                tar.append_data(&mut header, &r, f).map_err(lerr(&a))?;
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    let gz = tar.into_inner().map_err(lerr(out))?;
    gz.finish().map_err(lerr(out))?.sync_all().map_err(lerr(out))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) {
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("job.toml"), "name = 'x'\n").unwrap();
        std::fs::write(dir.join("bin/run.sh"), "#!/bin/sh\ncat\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("bin/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn identical_trees_pack_identically_and_keep_exec_bits() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        tree(&a);
        std::thread::sleep(std::time::Duration::from_millis(20)); // different mtimes on disk
        tree(&b);
        pack_dir(&a, &t.path().join("a.tgz")).unwrap();
        pack_dir(&b, &t.path().join("b.tgz")).unwrap();
        let (x, y) = (std::fs::read(t.path().join("a.tgz")).unwrap(), std::fs::read(t.path().join("b.tgz")).unwrap());
        assert_eq!(x, y);
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&x[..]));
        let entries: Vec<(String, u32)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.header().mode().unwrap())
            })
            .collect();
        assert_eq!(
            entries,
            vec![("bin".into(), 0o755), ("bin/run.sh".into(), 0o755), ("job.toml".into(), 0o644)]
        );
        std::fs::write(b.join("job.toml"), "name = 'y'\n").unwrap();
        pack_dir(&b, &t.path().join("b.tgz")).unwrap();
        assert_ne!(x, std::fs::read(t.path().join("b.tgz")).unwrap());
    }

    #[tokio::test]
    async fn second_upload_of_the_same_content_is_a_cache_hit() {
        let t = tempfile::tempdir().unwrap();
        let fs = FileStaging::new(&staging_root(&format!("file://{}", t.path().display()), "alice"));
        assert!(fs.root().ends_with("/user/alice/.yarn-flink"));
        let local = t.path().join("blob");
        std::fs::write(&local, vec![7u8; 3 << 20]).unwrap();
        let mut calls = 0;
        let first = upload_cached(&fs, &local, "blob", &mut |_, _| calls += 1).await.unwrap();
        assert!(!first.reused && calls >= 3);
        assert_eq!(first.file.size, 3 << 20);
        assert!(first.file.url.starts_with("file:///") && first.file.url.contains("/cache/"));
        let second = upload_cached(&fs, &local, "blob", &mut |_, _| panic!("copied again")).await.unwrap();
        assert!(second.reused);
        assert_eq!(second.file, first.file);
        std::fs::write(&local, b"changed").unwrap();
        assert!(!upload_cached(&fs, &local, "blob", &mut |_, _| {}).await.unwrap().reused);
        fs.write("application_1_0001/x", b"y").await.unwrap();
        fs.remove_dir("application_1_0001").await.unwrap();
        assert!(fs.stat("application_1_0001/x").await.unwrap().is_none());
        fs.remove_dir("application_1_0001").await.unwrap();
    }

    #[test]
    fn hdfs_is_refused_with_a_fix() {
        let e = open("hdfs://nn:8020", "alice").err().unwrap().to_string();
        assert!(e.contains("hdfs://nn:8020") && e.contains("fs.defaultFS"), "{e}");
    }
}
