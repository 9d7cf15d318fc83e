//! The staging file system: where the client puts the binary and the bundle
//! for YARN to localize.
//!
//! Layout under `<fs.defaultFS>/user/<user>/.yarn-flink/`:
//! - `cache/<sha256>/<name>`: content-keyed, shared by every submission of
//!   this user, so a repeat submit uploads only what changed;
//! - `<application id>/`: per-application files (removed when the app ends).
//!
//! [`Staging`] is the seam, with two implementations: [`FileStaging`]
//! (`file://`, what single-node Hadoop runs with and what the test double
//! uses) and [`HdfsStaging`] (`hdfs://`, through the pure-Rust `hdfs-native`
//! client; it cannot run here, so it is kept thin: the cache logic above the
//! trait is shared and tested on `file://`). [`open`] picks one by `fs.defaultFS`.

use std::io::Read;
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
    #[error("fs.defaultFS is {0}: staging supports hdfs:// and file:// only; set fs.defaultFS in core-site.xml to the cluster's HDFS")]
    Unsupported(String),
    #[error("HDFS: cannot {op} {path}: {detail}; check that the NameNode in fs.defaultFS is reachable and that this user may write under /user/<user> (hdfs dfs -mkdir -p /user/<user>)")]
    Hdfs { op: &'static str, path: String, detail: String },
}

/// The operations a submission needs. Paths are relative to [`Staging::root`].
#[allow(async_fn_in_trait)]
pub trait Staging {
    /// The root URL, `<fs.defaultFS>/user/<user>/.yarn-flink`.
    fn root(&self) -> &str;
    async fn stat(&self, rel: &str) -> Result<Option<RemoteFile>, StagingError>;
    /// Copies `local` to `rel` (atomically: readers never see half a file),
    /// calling `progress(done, total)` as bytes go.
    async fn put(
        &self,
        local: &Path,
        rel: &str,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RemoteFile, StagingError>;
    async fn write(&self, rel: &str, bytes: &[u8]) -> Result<RemoteFile, StagingError>;
    /// Removes a directory and everything under it; absent is fine.
    async fn remove_dir(&self, rel: &str) -> Result<(), StagingError>;
    /// The entries of a directory (absent: none), for `staging list|clean`.
    async fn list(&self, rel: &str) -> Result<Vec<DirEntry>, StagingError>;
    /// A small file's bytes (at most `max`; larger is an error), `None` when absent.
    async fn read(&self, rel: &str, max: u64) -> Result<Option<Vec<u8>>, StagingError>;
    /// Readable by its owner only (0400): for a keytab.
    async fn make_private(&self, rel: &str) -> Result<(), StagingError>;
}

/// One entry of a staging directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
    /// Modification time (ms since the epoch).
    pub modified_ms: i64,
}

/// The staging dir URL for `user` on the default file system `default_fs`.
pub fn staging_root(default_fs: &str, user: &str) -> String {
    format!("{}/user/{user}/.yarn-flink", default_fs.trim_end_matches('/'))
}

/// The staging file system named by `fs.defaultFS`. `conf_dir` is the Hadoop
/// configuration the HDFS client reads (NameNode HA, etc.); `kerberos`
/// (principal, keytab) makes the HDFS client log in (from the keytab, else
/// the ticket cache) instead of acting as `user`.
pub fn open(
    default_fs: &str,
    user: &str,
    conf_dir: Option<&Path>,
    kerberos: Option<(&str, Option<&Path>)>,
) -> Result<AnyStaging, StagingError> {
    if default_fs.starts_with("file:") {
        Ok(AnyStaging::File(FileStaging::new(&staging_root(default_fs, user))))
    } else if default_fs.starts_with("hdfs://") {
        Ok(AnyStaging::Hdfs(HdfsStaging::new(default_fs, user, conf_dir, kerberos)?))
    } else {
        Err(StagingError::Unsupported(default_fs.to_owned()))
    }
}

/// A directory of the cluster's file systems, read through the same code:
/// `dir` is a URL (`hdfs://nn:9000/tmp/logs`, `file:///tmp/logs`) or a path
/// on `fs.defaultFS` (`/tmp/logs`), as Hadoop's configuration names dirs.
pub fn open_dir(
    default_fs: &str,
    dir: &str,
    user: &str,
    conf_dir: Option<&Path>,
    kerberos: Option<(&str, Option<&Path>)>,
) -> Result<AnyStaging, StagingError> {
    let url = if dir.contains("://") || dir.starts_with("file:") {
        dir.to_owned()
    } else {
        format!("{}{dir}", default_fs.trim_end_matches('/'))
    };
    if url.starts_with("file:") {
        Ok(AnyStaging::File(FileStaging::new(&url)))
    } else if let Some(rest) = url.strip_prefix("hdfs://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        Ok(AnyStaging::Hdfs(HdfsStaging::at(
            &format!("hdfs://{authority}"),
            &format!("/{path}"),
            user,
            conf_dir,
            kerberos,
        )?))
    } else {
        Err(StagingError::Unsupported(url))
    }
}

/// One of the implementations, chosen at run time.
pub enum AnyStaging {
    File(FileStaging),
    Hdfs(HdfsStaging),
}

impl Staging for AnyStaging {
    fn root(&self) -> &str {
        match self {
            AnyStaging::File(s) => s.root(),
            AnyStaging::Hdfs(s) => s.root(),
        }
    }
    async fn stat(&self, rel: &str) -> Result<Option<RemoteFile>, StagingError> {
        match self {
            AnyStaging::File(s) => s.stat(rel).await,
            AnyStaging::Hdfs(s) => s.stat(rel).await,
        }
    }
    async fn put(
        &self,
        local: &Path,
        rel: &str,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RemoteFile, StagingError> {
        match self {
            AnyStaging::File(s) => s.put(local, rel, progress).await,
            AnyStaging::Hdfs(s) => s.put(local, rel, progress).await,
        }
    }
    async fn write(&self, rel: &str, bytes: &[u8]) -> Result<RemoteFile, StagingError> {
        match self {
            AnyStaging::File(s) => s.write(rel, bytes).await,
            AnyStaging::Hdfs(s) => s.write(rel, bytes).await,
        }
    }
    async fn remove_dir(&self, rel: &str) -> Result<(), StagingError> {
        match self {
            AnyStaging::File(s) => s.remove_dir(rel).await,
            AnyStaging::Hdfs(s) => s.remove_dir(rel).await,
        }
    }
    async fn list(&self, rel: &str) -> Result<Vec<DirEntry>, StagingError> {
        match self {
            AnyStaging::File(s) => s.list(rel).await,
            AnyStaging::Hdfs(s) => s.list(rel).await,
        }
    }
    async fn read(&self, rel: &str, max: u64) -> Result<Option<Vec<u8>>, StagingError> {
        match self {
            AnyStaging::File(s) => s.read(rel, max).await,
            AnyStaging::Hdfs(s) => s.read(rel, max).await,
        }
    }
    async fn make_private(&self, rel: &str) -> Result<(), StagingError> {
        match self {
            AnyStaging::File(s) => s.make_private(rel).await,
            AnyStaging::Hdfs(s) => s.make_private(rel).await,
        }
    }
}

fn too_large(path: &str, max: u64) -> StagingError {
    StagingError::Io {
        op: "read",
        path: path.to_owned(),
        source: std::io::Error::other(format!("larger than {max} bytes: not a file yarn-flink wrote")),
    }
}

/// `hdfs://` staging through `hdfs-native`.
pub struct HdfsStaging {
    client: hdfs_native::Client,
    root_url: String,
    /// The root as an absolute path on the file system (`/user/<user>/.yarn-flink`).
    root_path: String,
}

impl HdfsStaging {
    pub fn new(
        default_fs: &str,
        user: &str,
        conf_dir: Option<&Path>,
        kerberos: Option<(&str, Option<&Path>)>,
    ) -> Result<Self, StagingError> {
        Self::at(default_fs, &format!("/user/{user}/.yarn-flink"), user, conf_dir, kerberos)
    }

    /// Rooted at `root_path` (absolute) of the file system `fs` (`hdfs://authority`).
    pub fn at(
        default_fs: &str,
        root_path: &str,
        user: &str,
        conf_dir: Option<&Path>,
        kerberos: Option<(&str, Option<&Path>)>,
    ) -> Result<Self, StagingError> {
        // In the AM container (its staging cleanup): find the token by the name written here.
        common::hdfs::alias_container_token(Some(default_fs));
        let mut b = hdfs_native::ClientBuilder::new().with_url(default_fs);
        if let Some(dir) = conf_dir {
            b = b.with_config_dir(dir.display().to_string());
        }
        match kerberos {
            None => b = b.with_user(user),
            Some((principal, keytab)) => {
                b = b.with_kerberos_principal(principal);
                if let Some(k) = keytab {
                    b = b.with_kerberos_keytab(k.display().to_string());
                }
            }
        }
        let client = b.build().map_err(|e| StagingError::Hdfs {
            op: "connect to",
            path: default_fs.into(),
            detail: e.to_string(),
        })?;
        let root_path = root_path.trim_end_matches('/').to_owned();
        Ok(Self { client, root_url: format!("{}{root_path}", default_fs.trim_end_matches('/')), root_path })
    }

    fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root_path)
    }

    fn err<'a>(op: &'static str, path: &'a str) -> impl FnOnce(hdfs_native::HdfsError) -> StagingError + 'a {
        move |e| {
            let full = e.to_string();
            tracing::debug!(op, path, error = %full, "HDFS call failed");
            StagingError::Hdfs { op, path: path.to_owned(), detail: hadoop::error::without_java_trace(&full) }
        }
    }

    async fn status(&self, rel: &str) -> Result<RemoteFile, StagingError> {
        let path = self.path(rel);
        let st = self.client.get_file_info(&path).await.map_err(Self::err("stat", &path))?;
        Ok(RemoteFile {
            url: format!("{}/{rel}", self.root_url),
            size: st.length as u64,
            timestamp_ms: st.modification_time as i64,
        })
    }

    /// Writes `src` to a temp name beside `rel`, then renames it into place.
    async fn write_from(
        &self,
        rel: &str,
        total: u64,
        mut src: impl tokio::io::AsyncRead + Unpin,
        src_name: &str,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RemoteFile, StagingError> {
        use tokio::io::AsyncReadExt as _;
        let dest = self.path(rel);
        let tmp = match dest.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/.{name}.tmp-{}", uuid::Uuid::new_v4().simple()),
            None => format!(".{dest}.tmp"),
        };
        // The staging root is the user's alone (0700), as Hadoop's staging dirs are.
        self.client.mkdirs(&self.root_path, 0o700, true).await.map_err(Self::err("create", &self.root_path))?;
        let opts = hdfs_native::WriteOptions { overwrite: true, create_parent: true, ..Default::default() };
        let mut w = self.client.create(&tmp, opts).await.map_err(Self::err("create", &tmp))?;
        let mut done = 0u64;
        loop {
            let mut chunk = bytes::BytesMut::with_capacity(4 << 20);
            while chunk.len() < chunk.capacity() {
                let n = src
                    .read_buf(&mut chunk)
                    .await
                    .map_err(|source| StagingError::Local { path: src_name.to_owned(), source })?;
                if n == 0 {
                    break;
                }
            }
            if chunk.is_empty() {
                break;
            }
            done += chunk.len() as u64;
            w.write_bytes(chunk.freeze()).await.map_err(Self::err("write", &tmp))?;
            progress(done, total);
        }
        w.close().await.map_err(Self::err("close", &tmp))?;
        self.client.rename(&tmp, &dest, true).await.map_err(Self::err("rename into", &dest))?;
        self.status(rel).await
    }
}

impl Staging for HdfsStaging {
    fn root(&self) -> &str {
        &self.root_url
    }

    async fn stat(&self, rel: &str) -> Result<Option<RemoteFile>, StagingError> {
        let path = self.path(rel);
        match self.client.get_file_info(&path).await {
            Ok(st) if !st.isdir => Ok(Some(RemoteFile {
                url: format!("{}/{rel}", self.root_url),
                size: st.length as u64,
                timestamp_ms: st.modification_time as i64,
            })),
            Ok(_) | Err(hdfs_native::HdfsError::FileNotFound(_)) => Ok(None),
            Err(e) => Err(Self::err("stat", &path)(e)),
        }
    }

    async fn put(
        &self,
        local: &Path,
        rel: &str,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RemoteFile, StagingError> {
        let shown = local.display().to_string();
        let lerr = |source| StagingError::Local { path: shown.clone(), source };
        let f = tokio::fs::File::open(local).await.map_err(lerr)?;
        let total = f.metadata().await.map_err(lerr)?.len();
        self.write_from(rel, total, f, &shown, progress).await
    }

    async fn write(&self, rel: &str, data: &[u8]) -> Result<RemoteFile, StagingError> {
        self.write_from(rel, data.len() as u64, data, rel, &mut |_, _| {}).await
    }

    async fn remove_dir(&self, rel: &str) -> Result<(), StagingError> {
        let path = self.path(rel);
        match self.client.delete(&path, true).await {
            Ok(_) | Err(hdfs_native::HdfsError::FileNotFound(_)) => Ok(()),
            Err(e) => Err(Self::err("remove", &path)(e)),
        }
    }

    async fn list(&self, rel: &str) -> Result<Vec<DirEntry>, StagingError> {
        let path = self.path(rel);
        let statuses = match self.client.list_status(&path, false).await {
            Ok(s) => s,
            Err(hdfs_native::HdfsError::FileNotFound(_)) => return Ok(vec![]),
            Err(e) => return Err(Self::err("list", &path)(e)),
        };
        Ok(statuses
            .into_iter()
            .map(|s| DirEntry {
                name: s.path.rsplit('/').next().unwrap_or_default().to_owned(),
                is_dir: s.isdir,
                modified_ms: s.modification_time as i64,
            })
            .collect())
    }

    async fn read(&self, rel: &str, max: u64) -> Result<Option<Vec<u8>>, StagingError> {
        let path = self.path(rel);
        let reader = match self.client.read(&path).await {
            Ok(r) => r,
            Err(hdfs_native::HdfsError::FileNotFound(_)) => return Ok(None),
            Err(e) => return Err(Self::err("read", &path)(e)),
        };
        let len = reader.file_length();
        if len as u64 > max {
            return Err(too_large(&path, max));
        }
        let bytes = reader.read_range(0, len).await.map_err(Self::err("read", &path))?;
        Ok(Some(bytes.to_vec()))
    }

    async fn make_private(&self, rel: &str) -> Result<(), StagingError> {
        let path = self.path(rel);
        self.client.set_permission(&path, 0o400).await.map_err(Self::err("restrict", &path))
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

    /// The staging root is the user's alone (0700), as Hadoop's staging dirs are.
    async fn ensure_root(&self) -> Result<(), StagingError> {
        if tokio::fs::metadata(&self.root).await.is_ok_and(|m| m.is_dir()) {
            return Ok(());
        }
        tokio::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .await
            .map_err(Self::io("create", &self.root))
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

    fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StagingError + 'a {
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
        match tokio::fs::metadata(&p).await {
            Ok(m) if m.is_file() => Ok(Some(self.remote(rel, &m))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::io("stat", &p)(e)),
        }
    }

    async fn put(
        &self,
        local: &Path,
        rel: &str,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RemoteFile, StagingError> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        self.ensure_root().await?;
        let dest = self.path(rel);
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(Self::io("create", parent))?;
        }
        let lerr = |source| StagingError::Local { path: local.display().to_string(), source };
        let mut src = tokio::fs::File::open(local).await.map_err(lerr)?;
        let src_meta = src.metadata().await.map_err(lerr)?;
        let total = src_meta.len();
        let tmp = Self::tmp_beside(&dest);
        let result = async {
            let mut out = tokio::fs::File::create(&tmp).await.map_err(Self::io("create", &tmp))?;
            let mut buf = vec![0u8; 1 << 20];
            let mut done = 0u64;
            loop {
                let n = src.read(&mut buf).await.map_err(lerr)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n]).await.map_err(Self::io("write", &tmp))?;
                done += n as u64;
                progress(done, total);
            }
            // Keep the source's mode: the binary must stay executable where the
            // NodeManager links it (HDFS drops it; YARN's localizer restores it).
            out.set_permissions(src_meta.permissions()).await.map_err(Self::io("chmod", &tmp))?;
            out.sync_all().await.map_err(Self::io("sync", &tmp))?;
            tokio::fs::rename(&tmp, &dest).await.map_err(Self::io("rename into", &dest))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result?;
        let meta = tokio::fs::metadata(&dest).await.map_err(Self::io("stat", &dest))?;
        Ok(self.remote(rel, &meta))
    }

    async fn write(&self, rel: &str, bytes: &[u8]) -> Result<RemoteFile, StagingError> {
        self.ensure_root().await?;
        let dest = self.path(rel);
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(Self::io("create", parent))?;
        }
        let tmp = Self::tmp_beside(&dest);
        tokio::fs::write(&tmp, bytes).await.map_err(Self::io("write", &tmp))?;
        tokio::fs::rename(&tmp, &dest).await.map_err(Self::io("rename into", &dest))?;
        let meta = tokio::fs::metadata(&dest).await.map_err(Self::io("stat", &dest))?;
        Ok(self.remote(rel, &meta))
    }

    async fn remove_dir(&self, rel: &str) -> Result<(), StagingError> {
        let p = self.path(rel);
        match tokio::fs::remove_dir_all(&p).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Self::io("remove", &p)(e)),
            _ => Ok(()),
        }
    }

    async fn list(&self, rel: &str) -> Result<Vec<DirEntry>, StagingError> {
        let p = self.path(rel);
        let mut dir = match tokio::fs::read_dir(&p).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(Self::io("list", &p)(e)),
        };
        let mut out = Vec::new();
        while let Some(e) = dir.next_entry().await.map_err(Self::io("list", &p))? {
            let Ok(meta) = e.metadata().await else { continue };
            out.push(DirEntry {
                name: e.file_name().to_string_lossy().into_owned(),
                is_dir: meta.is_dir(),
                modified_ms: self.remote(rel, &meta).timestamp_ms,
            });
        }
        Ok(out)
    }

    async fn read(&self, rel: &str, max: u64) -> Result<Option<Vec<u8>>, StagingError> {
        let p = self.path(rel);
        match tokio::fs::metadata(&p).await {
            Ok(m) if m.len() > max => Err(too_large(&p.display().to_string(), max)),
            Ok(_) => tokio::fs::read(&p).await.map(Some).map_err(Self::io("read", &p)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::io("read", &p)(e)),
        }
    }

    async fn make_private(&self, rel: &str) -> Result<(), StagingError> {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path(rel);
        tokio::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).await.map_err(Self::io("restrict", &p))
    }
}

/// What [`upload_cached`] did with one file.
#[derive(Clone, Debug)]
pub struct Upload {
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
    Ok(hex::encode(h.finalize()))
}

/// Puts `local` at `cache/<sha256>/<name>` unless that content is already there.
pub async fn upload_cached<S: Staging>(
    staging: &S,
    local: &Path,
    name: &str,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Upload, StagingError> {
    // Hashing reads the whole file: off the async workers.
    let path = local.to_owned();
    let sha256 = tokio::task::spawn_blocking(move || sha256_file(&path))
        .await
        .map_err(|e| StagingError::Local { path: local.display().to_string(), source: std::io::Error::other(e) })??;
    let rel = format!("cache/{sha256}/{name}");
    let size = tokio::fs::metadata(local)
        .await
        .map_err(|source| StagingError::Local { path: local.display().to_string(), source })?
        .len();
    if let Some(existing) = staging.stat(&rel).await? {
        // Same key and same size: the same bytes (a torn copy never gets the final name).
        if existing.size == size {
            return Ok(Upload { file: existing, reused: true, sha256 });
        }
    }
    let file = staging.put(local, &rel, progress).await?;
    Ok(Upload { file, reused: false, sha256 })
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
    // Every path first, then one sorted pass: a parent sorts before its children.
    let mut paths = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        for e in std::fs::read_dir(&abs).map_err(lerr(&abs))? {
            let r = rel.join(e.map_err(lerr(&abs))?.file_name());
            let a = dir.join(&r);
            if std::fs::metadata(&a).map_err(lerr(&a))?.is_dir() {
                stack.push(r.clone());
            }
            paths.push(r);
        }
    }
    paths.sort();
    for r in paths {
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
        tree(&b);
        // Different mtimes on disk must not matter.
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        std::fs::File::options().write(true).open(b.join("job.toml")).unwrap().set_modified(old).unwrap();
        pack_dir(&a, &t.path().join("a.tgz")).unwrap();
        pack_dir(&b, &t.path().join("b.tgz")).unwrap();
        let (x, y) = (std::fs::read(t.path().join("a.tgz")).unwrap(), std::fs::read(t.path().join("b.tgz")).unwrap());
        assert_eq!(x, y);
        let entries = crate::yarn::test_fixtures::tar_entries(&x);
        assert_eq!(entries, vec![("bin".into(), 0o755), ("bin/run.sh".into(), 0o755), ("job.toml".into(), 0o644)]);
        std::fs::write(b.join("job.toml"), "name = 'y'\n").unwrap();
        pack_dir(&b, &t.path().join("b.tgz")).unwrap();
        assert_ne!(x, std::fs::read(t.path().join("b.tgz")).unwrap());
    }

    #[tokio::test]
    async fn second_upload_of_the_same_content_is_a_cache_hit() {
        let t = tempfile::tempdir().unwrap();
        let fs = FileStaging::new(&staging_root(&format!("file://{}", t.path().display()), "alice"));
        assert!(fs.root().ends_with("/user/alice/.yarn-flink"));
        assert!(fs.stat("nothing").await.unwrap().is_none());
        let local = t.path().join("blob");
        std::fs::write(&local, vec![7u8; 3 << 20]).unwrap();
        let mut calls = 0;
        let first = upload_cached(&fs, &local, "blob", &mut |_, _| calls += 1).await.unwrap();
        assert!(!first.reused && calls >= 3);
        assert_eq!(first.file.size, 3 << 20);
        assert!(first.file.url.starts_with("file:///") && first.file.url.contains("/cache/"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(t.path().join("user/alice/.yarn-flink")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let second = upload_cached(&fs, &local, "blob", &mut |_, _| panic!("copied again")).await.unwrap();
        assert!(second.reused);
        assert_eq!(second.file, first.file);
        std::fs::write(&local, b"changed").unwrap();
        assert!(!upload_cached(&fs, &local, "blob", &mut |_, _| {}).await.unwrap().reused);
        fs.write("application_1_0001/x", b"y").await.unwrap();
        // A keytab is readable by its owner alone.
        fs.make_private("application_1_0001/x").await.unwrap();
        let mode = std::fs::metadata(t.path().join("user/alice/.yarn-flink/application_1_0001/x"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o400);
        fs.remove_dir("application_1_0001").await.unwrap();
        assert!(fs.stat("application_1_0001/x").await.unwrap().is_none());
        fs.remove_dir("application_1_0001").await.unwrap();
        // The AM's cleanup, by URL (common::hdfs::remove_dir_url: it runs in the cluster).
        fs.write("application_1_0002/x", b"y").await.unwrap();
        common::hdfs::remove_dir_url(&format!("{}/application_1_0002", fs.root()), None).await.unwrap();
        assert!(fs.stat("application_1_0002/x").await.unwrap().is_none());
        assert!(fs.stat("blob").await.is_ok(), "the cache stays");
        assert!(matches!(
            common::hdfs::remove_dir_url("s3://b/x", None).await,
            Err(common::hdfs::HdfsIoError::BadUrl(_))
        ));
    }

    #[test]
    fn the_default_fs_picks_the_implementation() {
        let e = open("s3a://bucket", "alice", None, None).err().unwrap().to_string();
        assert!(e.contains("s3a://bucket") && e.contains("fs.defaultFS"), "{e}");
        assert!(matches!(open("file:///tmp/x", "alice", None, None).unwrap(), AnyStaging::File(_)));
        // Building the HDFS client does not connect (nothing listens here).
        let hdfs = open("hdfs://127.0.0.1:1", "alice", None, None).unwrap();
        assert_eq!(hdfs.root(), "hdfs://127.0.0.1:1/user/alice/.yarn-flink");
    }
}
