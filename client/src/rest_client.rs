//! A small client for a session's REST API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use common::rpc::AppSecret;
use serde_json::Value;

pub struct RestClient {
    base: String,
    secret: AppSecret,
    http: reqwest::Client,
}

/// Where `session start` keeps a session's secret: `<state>/sessions/<host>_<port>/secret`.
pub fn session_dir(address: &str) -> PathBuf {
    state_dir().join("sessions").join(address.replace([':', '/'], "_"))
}

pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("YARN_FLINK_HOME") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".yarn-flink")
}

/// The bundle as `.tar.gz` bytes: an archive as it is, a directory (or the
/// directory of a job.toml) packed deterministically.
pub(crate) fn pack_bundle(path: &Path) -> Result<Vec<u8>> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        return std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    }
    let dir = if path.is_dir() { path } else { path.parent().unwrap_or(Path::new(".")) };
    let tmp = tempfile::NamedTempFile::new().context("cannot create a temp file")?;
    crate::yarn::staging::pack_dir(dir, tmp.path())?;
    std::fs::read(tmp.path()).context("cannot read the packed bundle")
}

impl RestClient {
    pub fn new(address: &str, secret_file: Option<&Path>) -> Result<Self> {
        let default = session_dir(address).join("secret");
        let path = secret_file.unwrap_or(&default);
        let secret = AppSecret::read_from(path).with_context(|| {
            format!("no secret for the session at {address}; pass --secret-file, or start the session with `yarn-flink session start`")
        })?;
        let http = common::http::client_builder()?.timeout(Duration::from_secs(30)).build()?;
        Ok(Self { base: format!("http://{address}"), secret, http })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value> {
        let resp = req.bearer_auth(self.secret.to_hex()).send().await.with_context(|| {
            format!("cannot reach the session at {}; is it running? (`yarn-flink session start`)", self.base)
        })?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = body["errors"].get(0).and_then(|v| v.as_str()).unwrap_or("no details").to_owned();
            bail!("the session answered {status}: {msg}");
        }
        Ok(body)
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    /// A text answer (a log).
    pub async fn get_text(&self, path: &str) -> Result<Vec<u8>> {
        let resp =
            self.http.get(format!("{}{path}", self.base)).bearer_auth(self.secret.to_hex()).send().await.with_context(
                || format!("cannot reach the session at {}; is it running? (`yarn-flink session start`)", self.base),
            )?;
        let status = resp.status();
        let body = resp.bytes().await?.to_vec();
        if !status.is_success() {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let msg = v["errors"].get(0).and_then(|v| v.as_str()).unwrap_or("no details").to_owned();
            bail!("the session answered {status}: {msg}");
        }
        Ok(body)
    }

    /// Submits a bundle. A session of local processes reads it in place (so
    /// relative output paths land beside it); any other session gets the
    /// bundle itself as a `.tar.gz`, which its TaskManagers fetch by content.
    pub async fn submit(&self, bundle: &Path, upload: bool) -> Result<String> {
        let abs = std::fs::canonicalize(bundle)
            .with_context(|| format!("bundle {} does not exist; give a directory with a job.toml", bundle.display()))?;
        let config = self.get("/config").await?;
        let local = !upload && config["driver"].as_str() == Some("process");
        let req = if local {
            self.http.post(format!("{}/jobs", self.base)).json(&serde_json::json!({ "bundle": abs }))
        } else {
            // Packing and reading the bundle are file work: off the async workers.
            let path = abs.clone();
            let archive = tokio::task::spawn_blocking(move || pack_bundle(&path)).await??;
            // The session would refuse it (413) once that much has arrived; say so before sending it.
            if let Some(limit) = config["bundleMaxSize"].as_u64().filter(|&l| archive.len() as u64 > l) {
                bail!(
                    "the bundle {} is {} packed, larger than the session's limit of {} (--bundle-max-size); \
                     leave data out of the bundle (read it from HDFS or a shared path), or start the session \
                     with a larger --bundle-max-size",
                    bundle.display(),
                    common::resources::format_size(archive.len() as u64),
                    common::resources::format_size(limit)
                );
            }
            self.http.post(format!("{}/jobs", self.base)).header("content-type", "application/gzip").body(archive)
        };
        let v = self.send(req).await?;
        v["jobid"].as_str().map(str::to_owned).context("the session's answer has no job id")
    }

    pub async fn cancel(&self, job: &str) -> Result<()> {
        self.send(self.http.patch(format!("{}/jobs/{job}?mode=cancel", self.base))).await.map(|_| ())
    }

    pub async fn stop_cluster(&self) -> Result<()> {
        self.send(self.http.delete(format!("{}/cluster", self.base))).await.map(|_| ())
    }
}
