//! HDFS access for the built-in text source and sink (`hdfs://` paths), on
//! `hdfs-native` (a pure Rust NameNode/DataNode client).
//!
//! A sink or source path is a URL `hdfs://<authority>/<path>`; an empty
//! authority (`hdfs:///data`) means `fs.defaultFS` from `HADOOP_CONF_DIR`.
//! Security comes from the environment, as for Hadoop's own clients:
//! hdfs-native reads `hadoop.security.authentication` from the configuration,
//! then uses the Kerberos ticket cache or, in a YARN container, the delegation
//! tokens of `HADOOP_TOKEN_FILE_LOCATION`.
//!
//! Everything here is async; [`block_on`] runs it from the blocking code of
//! [`crate::output`] (which the JobMaster calls on a blocking thread).

use std::future::Future;

use bytes::Bytes;
use hdfs_native::{Client, ClientBuilder, HdfsError, WriteOptions};

/// `true` for the paths this module serves.
pub fn is_hdfs(path: &str) -> bool {
    path.starts_with("hdfs://")
}

#[derive(Debug, thiserror::Error)]
pub enum HdfsIoError {
    #[error("{0:?} is not an HDFS URL; write it as hdfs://<namenode:port>/<path> or hdfs:///<path>")]
    BadUrl(String),
    #[error(
        "connecting to HDFS for {url} failed: {detail}; check the NameNode address, HADOOP_CONF_DIR and, on a secure \
         cluster, the Kerberos ticket (kinit) or delegation tokens"
    )]
    Connect { url: String, detail: String },
    #[error(
        "HDFS {op} {path} failed: {detail}; check that the path exists, that you may access it, and that the \
         NameNode and DataNodes are reachable"
    )]
    Op { op: &'static str, path: String, detail: String },
}

impl HdfsIoError {
    fn op<'a>(op: &'static str, path: &'a str) -> impl FnOnce(HdfsError) -> HdfsIoError + 'a {
        move |e| HdfsIoError::Op { op, path: path.to_owned(), detail: e.to_string() }
    }
}

/// Splits `hdfs://authority/path` into the file system URL (`None` for the
/// configured default) and the absolute path within it.
pub fn split_url(url: &str) -> Result<(Option<String>, String), HdfsIoError> {
    let bad = || HdfsIoError::BadUrl(url.into());
    let parsed = url::Url::parse(url).map_err(|_| bad())?;
    if parsed.scheme() != "hdfs" {
        return Err(bad());
    }
    // `hdfs` is not a special scheme: the host is kept as written (nameservice ids are case-sensitive).
    let fs = match (parsed.host_str().filter(|h| !h.is_empty()), parsed.port()) {
        (Some(host), Some(port)) => Some(format!("hdfs://{host}:{port}")),
        (Some(host), None) => Some(format!("hdfs://{host}")),
        (None, _) => None,
    };
    let path = percent_encoding::percent_decode_str(parsed.path()).decode_utf8().map_err(|_| bad())?;
    let path = match path.trim_end_matches('/') {
        "" => "/".to_string(),
        p => p.to_string(),
    };
    Ok((fs, path))
}

/// Inside a YARN container (`HADOOP_TOKEN_FILE_LOCATION` set): makes sure the
/// container's HDFS delegation token can be found under the name an HDFS
/// client will look it up by for the file system `fs` (`hdfs://authority`,
/// `None` = `fs.defaultFS`). hdfs-native compares the token's service with
/// the NameNode address *as written* (`localhost:9000`) or `ha-hdfs:<ns>`,
/// while Hadoop files tokens by IP (`127.0.0.1:9000`, with the default
/// `hadoop.security.token.service.use_ip`). Without this, a job naming the
/// NameNode another way falls back to Kerberos, which containers lack
/// (`GSS_S_NO_CRED`). Best effort: a failure is logged, not fatal.
pub fn alias_container_token(fs: Option<&str>) {
    let Some(file) = std::env::var_os("HADOOP_TOKEN_FILE_LOCATION") else { return };
    // A container's configuration does not change: read it once, not per subtask.
    static CONF: std::sync::OnceLock<Option<hadoop::conf::HadoopConf>> = std::sync::OnceLock::new();
    let conf = CONF.get_or_init(|| match hadoop::conf::HadoopConf::load_from_env() {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::debug!(error = %e, "no Hadoop configuration to resolve the NameNode's token name");
            None
        }
    });
    let Some(conf) = conf else { return };
    match alias_token_in(std::path::Path::new(&file), conf, fs) {
        Ok(Some(service)) => {
            tracing::info!(%service, "the HDFS delegation token is now also filed under the NameNode's name as written")
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot add an alias to the container's token file"),
    }
}

/// Every read-modify-write of this process's token file goes through this
/// lock: an alias being added must not write back tokens just replaced.
static TOKEN_FILE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Inside a container: the HDFS delegation tokens of `token_file` (a token
/// storage file's bytes, as the ResourceManager sends fresh ones) replace the
/// container's, in `HADOOP_TOKEN_FILE_LOCATION`, which hdfs-native reads again
/// at every new connection. `None` when the variable is unset. Blocking.
pub fn replace_container_tokens(token_file: &[u8]) -> Result<Option<usize>, hadoop::credentials::CredentialsError> {
    let Some(file) = std::env::var_os("HADOOP_TOKEN_FILE_LOCATION") else { return Ok(None) };
    replace_tokens_in(std::path::Path::new(&file), token_file).map(Some)
}

/// [`replace_container_tokens`] on the token file `path`.
pub fn replace_tokens_in(
    path: &std::path::Path,
    token_file: &[u8],
) -> Result<usize, hadoop::credentials::CredentialsError> {
    let fresh =
        hadoop::credentials::Credentials::from_bytes(token_file).map_err(|e| e.at("the fresh delegation tokens"))?;
    let _guard = TOKEN_FILE.lock().unwrap_or_else(|e| e.into_inner());
    hadoop::credentials::Credentials::replace_hdfs_tokens_in_file(path, &fresh)
}

/// [`alias_container_token`] without the environment: the token file and the
/// configuration given. Returns the service added, if any.
pub fn alias_token_in(
    file: &std::path::Path,
    conf: &hadoop::conf::HadoopConf,
    fs: Option<&str>,
) -> Result<Option<String>, hadoop::credentials::CredentialsError> {
    let authority_of = |url: &str| url.trim_start_matches("hdfs://").split('/').next().unwrap_or_default().to_owned();
    let authority = match fs {
        Some(fs) => authority_of(fs),
        None => match conf.default_fs() {
            Ok(d) if d.starts_with("hdfs://") => authority_of(&d),
            _ => return Ok(None),
        },
    };
    if authority.is_empty() {
        return Ok(None);
    }
    let (wanted, addresses) = token_names(conf, &authority);
    let mut same_as: Vec<String> = Vec::new();
    for a in &addresses {
        same_as.push(a.clone());
        same_as.push(hadoop::credentials::token_service(a, true));
    }
    let _guard = TOKEN_FILE.lock().unwrap_or_else(|e| e.into_inner());
    let added = hadoop::credentials::Credentials::alias_hdfs_token_in_file(file, &wanted, &same_as)?;
    Ok(added.then_some(wanted))
}

/// What an HDFS client looks a token up by for `authority`, and the NameNode
/// addresses behind it: `ha-hdfs:<ns>` and the NameNodes of an HA nameservice,
/// or `host:port` (8020 by default) itself.
fn token_names(conf: &hadoop::conf::HadoopConf, authority: &str) -> (String, Vec<String>) {
    if conf.is_nameservice(authority).unwrap_or(false) {
        let ids = conf.get_list(&format!("dfs.ha.namenodes.{authority}")).unwrap_or_default();
        let mut addresses: Vec<String> = ids
            .iter()
            .filter_map(|id| conf.get(&format!("dfs.namenode.rpc-address.{authority}.{id}")).ok().flatten())
            .collect();
        addresses.extend(conf.get(&format!("dfs.namenode.rpc-address.{authority}")).ok().flatten());
        return (format!("ha-hdfs:{authority}"), addresses);
    }
    let address = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:8020") };
    (address.clone(), vec![address])
}

/// Removes the directory `url` names (`file:` or `hdfs:`), with everything
/// in it; absent is fine. The ApplicationMaster removes its application's
/// staging dir so once it has unregistered; on a secure cluster the HDFS
/// client authenticates with the container's delegation tokens.
pub async fn remove_dir_url(url: &str, conf_dir: Option<&std::path::Path>) -> Result<(), HdfsIoError> {
    let url = url.trim_end_matches('/');
    if let Some(path) = url.strip_prefix("file://").or_else(|| url.strip_prefix("file:")) {
        return match tokio::fs::remove_dir_all(path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(HdfsIoError::Op { op: "remove", path: url.to_owned(), detail: e.to_string() })
            }
            _ => Ok(()),
        };
    }
    let (fs, path) = split_url(url)?;
    let mut b = ClientBuilder::new();
    if let Some(fs) = fs {
        b = b.with_url(fs);
    }
    if let Some(dir) = conf_dir {
        b = b.with_config_dir(dir.display().to_string());
    }
    let client = b.build().map_err(|e| HdfsIoError::Connect { url: url.to_owned(), detail: e.to_string() })?;
    match client.delete(&path, true).await {
        Ok(_) | Err(HdfsError::FileNotFound(_)) => Ok(()),
        Err(e) => Err(HdfsIoError::op("remove", &path)(e)),
    }
}

/// [`connect`] from async code: its DNS lookup, reachability check and token
/// file work run on a blocking thread, not on an async worker.
pub async fn connect_async(url: &str) -> Result<(Client, String), HdfsIoError> {
    let owned = url.to_owned();
    tokio::task::spawn_blocking(move || connect(&owned)).await.map_err(|e| HdfsIoError::Connect {
        url: url.to_owned(),
        detail: format!("the connecting thread failed: {e}"),
    })?
}

/// A client for the file system of `url`, and `url`'s path within it.
pub fn connect(url: &str) -> Result<(Client, String), HdfsIoError> {
    let (fs, path) = split_url(url)?;
    alias_container_token(fs.as_deref());
    let mut b = ClientBuilder::new();
    if let Some(fs) = fs {
        reachable(&fs).map_err(|detail| HdfsIoError::Connect { url: url.into(), detail })?;
        b = b.with_url(fs);
    }
    let client = b.build().map_err(|e| HdfsIoError::Connect { url: url.into(), detail: e.to_string() })?;
    Ok((client, path))
}

/// A quick look at an explicit `hdfs://host:port`: hdfs-native retries an
/// unreachable NameNode for minutes, a user should hear at once. (A
/// nameservice without a port is resolved by the HDFS client from the
/// configuration and is not checked here.)
fn reachable(fs: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let authority = fs.trim_start_matches("hdfs://").split('/').next().unwrap_or_default();
    if !authority.contains(':') {
        return Ok(());
    }
    let addrs: Vec<_> = authority.to_socket_addrs().map_err(|e| format!("cannot resolve {authority}: {e}"))?.collect();
    let mut last = String::new();
    for a in addrs {
        match std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(3)) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("the NameNode at {a} is unreachable: {e}"),
        }
    }
    Err(last)
}

/// Which names of a listed directory count.
type NameFilter<'a> = dyn Fn(&str) -> bool + Send + Sync + 'a;

/// A file's path (within its file system) and length.
pub type Listed = (String, u64);

/// The input files of a source path: the file itself, the visible files of a
/// directory (not `.`/`_`-prefixed, as in Hadoop), or the files whose name
/// matches `glob` (already split off the last component by the caller), sorted.
pub async fn list(
    client: &Client,
    path: &str,
    glob: Option<&(dyn Fn(&str) -> bool + Send + Sync)>,
) -> Result<Vec<Listed>, HdfsIoError> {
    let (dir, filter): (&str, Box<NameFilter<'_>>) = match glob {
        Some(m) => {
            let dir = match path.rfind('/') {
                Some(0) | None => "/",
                Some(i) => &path[..i],
            };
            (dir, Box::new(m))
        }
        None => {
            let st = match client.get_file_info(path).await {
                Ok(st) => st,
                Err(HdfsError::FileNotFound(_)) => return Ok(Vec::new()),
                Err(e) => return Err(HdfsIoError::op("stat", path)(e)),
            };
            if !st.isdir {
                return Ok(vec![(path.to_string(), st.length as u64)]);
            }
            (path, Box::new(|n: &str| !n.starts_with('.') && !n.starts_with('_')))
        }
    };
    let entries = match client.list_status(dir, false).await {
        Ok(e) => e,
        Err(HdfsError::FileNotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(HdfsIoError::op("list", dir)(e)),
    };
    let mut out: Vec<Listed> = entries
        .into_iter()
        .filter(|st| !st.isdir)
        .filter(|st| filter(st.path.rsplit('/').next().unwrap_or_default()))
        .map(|st| (st.path, st.length as u64))
        .collect();
    out.sort();
    Ok(out)
}

/// Reads `len` bytes at `offset` of `path` (fewer at the end of the file).
pub async fn read_range(client: &Client, path: &str, offset: u64, len: usize) -> Result<Bytes, HdfsIoError> {
    let reader = client.read(path).await.map_err(HdfsIoError::op("open", path))?;
    let size = reader.file_length() as u64;
    let len = (size.saturating_sub(offset)).min(len as u64) as usize;
    if len == 0 {
        return Ok(Bytes::new());
    }
    reader.read_range(offset as usize, len).await.map_err(HdfsIoError::op("read", path))
}

/// Copies the local file `local` to `path` (replacing it), creating parents.
pub async fn upload(client: &Client, local: &std::path::Path, path: &str) -> Result<(), HdfsIoError> {
    use tokio::io::AsyncReadExt;
    let opts = WriteOptions { overwrite: true, create_parent: true, ..Default::default() };
    let mut w = client.create(path, opts).await.map_err(HdfsIoError::op("create", path))?;
    let mut file = tokio::fs::File::open(local).await.map_err(|e| HdfsIoError::Op {
        op: "upload to",
        path: path.into(),
        detail: format!("opening {local:?}: {e}"),
    })?;
    loop {
        let mut buf = bytes::BytesMut::with_capacity(4 << 20);
        let n = file.read_buf(&mut buf).await.map_err(|e| HdfsIoError::Op {
            op: "upload to",
            path: path.into(),
            detail: format!("reading {local:?}: {e}"),
        })?;
        if n == 0 {
            break;
        }
        w.write_bytes(buf.freeze()).await.map_err(HdfsIoError::op("write", path))?;
    }
    w.close().await.map_err(HdfsIoError::op("close", path))
}

/// Whether `path` exists as a file.
pub async fn is_file(client: &Client, path: &str) -> Result<bool, HdfsIoError> {
    match client.get_file_info(path).await {
        Ok(st) => Ok(!st.isdir),
        Err(HdfsError::FileNotFound(_)) => Ok(false),
        Err(e) => Err(HdfsIoError::op("stat", path)(e)),
    }
}

/// Renames `src` to `dst`; `Ok(false)` if `src` does not exist.
pub async fn rename(client: &Client, src: &str, dst: &str) -> Result<bool, HdfsIoError> {
    if !is_file(client, src).await? {
        return Ok(false);
    }
    client.rename(src, dst, true).await.map_err(HdfsIoError::op("rename into", dst))?;
    Ok(true)
}

/// Writes an empty file at `path`.
pub async fn touch(client: &Client, path: &str) -> Result<(), HdfsIoError> {
    let opts = WriteOptions { overwrite: true, create_parent: true, ..Default::default() };
    let mut w = client.create(path, opts).await.map_err(HdfsIoError::op("create", path))?;
    w.close().await.map_err(HdfsIoError::op("close", path))
}

/// Removes `path` recursively; a missing path is fine.
pub async fn remove(client: &Client, path: &str) -> Result<(), HdfsIoError> {
    match client.delete(path, true).await {
        Ok(_) | Err(HdfsError::FileNotFound(_)) => Ok(()),
        Err(e) => Err(HdfsIoError::op("remove", path)(e)),
    }
}

/// Runs `f` to completion from blocking code: on the current runtime when
/// called from one of its blocking threads, else on a runtime of its own.
/// Must not be called from async code (it blocks, like file system calls).
pub fn block_on<F: Future>(f: F) -> Result<F::Output, std::io::Error> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => Ok(h.block_on(f)),
        Err(_) => Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_name_node_is_reported_at_once() {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let started = std::time::Instant::now();
        let Err(err) = connect(&format!("hdfs://127.0.0.1:{port}/in")) else { panic!("must fail") };
        assert!(matches!(err, HdfsIoError::Connect { .. }), "{err}");
        assert!(err.to_string().contains("unreachable") && err.to_string().contains("NameNode"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    /// Real-cluster report, point 11: the token file says `127.0.0.1:9000`
    /// (as the captured one does); a job naming `hdfs://localhost:9000`, or an
    /// HA nameservice, must still find it. hdfs-native 0.14.8 looks tokens up
    /// by kind and exact service (`security/user.rs`, `User::get_token`): the
    /// `lookup` below is that rule.
    #[test]
    fn a_container_token_is_found_whatever_form_of_the_name_node_address_the_job_uses() {
        use hadoop::credentials::Credentials;
        let wire = std::env::var_os("HADOOP_WIRE_FIXTURES").map(std::path::PathBuf::from).unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/wire/hadoop-3.3.6")
        });
        let captured = Credentials::read_file(&wire.join("kerberos/tokens/alice-hdfs-delegation.tokens")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("container_tokens");
        captured.write_file(&file).unwrap();
        let lookup = |service: &str| {
            Credentials::read_file(&file)
                .unwrap()
                .tokens
                .iter()
                .any(|(_, t)| t.kind == "HDFS_DELEGATION_TOKEN" && t.service == service)
        };
        let mut conf = hadoop::conf::HadoopConf::new();
        conf.set("fs.defaultFS", "hdfs://localhost:9000");
        conf.set("dfs.nameservices", "ns1");
        conf.set("dfs.ha.namenodes.ns1", "nn1,nn2");
        conf.set("dfs.namenode.rpc-address.ns1.nn1", "localhost:9000");
        conf.set("dfs.namenode.rpc-address.ns1.nn2", "localhost:9001");
        assert!(!lookup("localhost:9000"), "the captured token is filed by IP");
        assert_eq!(alias_token_in(&file, &conf, None).unwrap().as_deref(), Some("localhost:9000"));
        assert!(lookup("localhost:9000"));
        assert_eq!(alias_token_in(&file, &conf, Some("hdfs://ns1")).unwrap().as_deref(), Some("ha-hdfs:ns1"));
        assert!(lookup("ha-hdfs:ns1"));
        assert_eq!(alias_token_in(&file, &conf, Some("hdfs://localhost:9000")).unwrap(), None, "already there");
        // Another NameNode's name never gets this token.
        assert_eq!(alias_token_in(&file, &conf, Some("hdfs://elsewhere.invalid:9000")).unwrap(), None);
    }

    #[test]
    fn urls_split_into_file_system_and_path() {
        assert_eq!(split_url("hdfs://nn:8020/a/b/").unwrap(), (Some("hdfs://nn:8020".into()), "/a/b".into()));
        assert_eq!(split_url("hdfs:///a").unwrap(), (None, "/a".into()));
        assert_eq!(split_url("hdfs://nn").unwrap(), (Some("hdfs://nn".into()), "/".into()));
        assert!(matches!(split_url("/local"), Err(HdfsIoError::BadUrl(_))));
        assert!(matches!(split_url("s3://bucket/a"), Err(HdfsIoError::BadUrl(_))));
        // A nameservice keeps its case (Hadoop's keys are case-sensitive); paths are decoded.
        assert_eq!(
            split_url("hdfs://MyCluster/in/a%20b").unwrap(),
            (Some("hdfs://MyCluster".into()), "/in/a b".into())
        );
        assert_eq!(split_url("hdfs:///in/a b").unwrap(), (None, "/in/a b".into()));
    }
}
