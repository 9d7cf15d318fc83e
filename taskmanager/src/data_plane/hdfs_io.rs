//! The built-in text source and sink on HDFS (`hdfs://` paths).
//!
//! The source lists its input on the NameNode (a file, the visible files of a
//! directory, or a `*`/`?` pattern in the last component, sorted like the
//! local source) and reads its byte range through [`source::read_split_with`],
//! so splitting on line boundaries is the very code the local source runs;
//! only the bytes come from the DataNodes (`FileReader::read_range`, a few MiB
//! per request).
//!
//! The sink writes its part file locally first (the local sink's code, which
//! keeps channel order deterministic), then uploads it to the attempt's HDFS
//! staging path; the JobMaster commits with `common::output::commit`, which
//! handles `hdfs://` directories.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::hdfs;
use hdfs_native::file::FileReader;
use hdfs_native::Client;
use tokio::runtime::Handle;

use super::source::{self, SourceError};

/// How much one DataNode request reads; large enough that the per-request
/// cost (block location lookup, connection) is small next to the transfer.
const FETCH: usize = 4 << 20;

/// The input files of the source URL `url`, as paths within its file system.
pub async fn list_input_files(url: &str) -> Result<(Client, Vec<(PathBuf, u64)>), SourceError> {
    let (client, path) = hdfs::connect_async(url).await?;
    let name = path.rsplit('/').next().unwrap_or_default().to_string();
    let files = if name.contains(['*', '?']) {
        let matches = |n: &str| source::glob_match(name.as_bytes(), n.as_bytes());
        hdfs::list(&client, &path, Some(&matches)).await?
    } else {
        hdfs::list(&client, &path, None).await?
    };
    if files.is_empty() {
        return Err(SourceError::NoInput(PathBuf::from(url)));
    }
    Ok((client, files.into_iter().map(|(p, len)| (PathBuf::from(p), len)).collect()))
}

/// Reads lines whose first byte is in `[start, end)` of `files` (see
/// [`source::read_split`]). Blocks: run it on a blocking thread of `handle`'s runtime.
#[allow(clippy::too_many_arguments)] // the local `read_split`'s arguments plus the client
pub fn read_split(
    handle: &Handle,
    client: &Client,
    files: &[(PathBuf, u64)],
    start: u64,
    end: u64,
    chunk_size: usize,
    max_line: usize,
    emit: &mut dyn FnMut(Bytes) -> bool,
) -> Result<(), SourceError> {
    let mut open = |path: &Path, at: u64| -> io::Result<Box<dyn Read>> {
        let name = path.to_string_lossy().into_owned();
        let reader = handle.block_on(client.read(&name)).map_err(io::Error::other)?;
        Ok(Box::new(HdfsRead { handle: handle.clone(), reader, pos: at, buf: Bytes::new() }))
    };
    source::read_split_with(files, start, end, chunk_size, max_line, &mut open, emit)
}

/// A blocking, buffered reader of one HDFS file from some offset on.
struct HdfsRead {
    handle: Handle,
    reader: FileReader,
    /// File offset just after `buf`.
    pos: u64,
    buf: Bytes,
}

impl Read for HdfsRead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.buf.is_empty() {
            let len = (self.reader.file_length() as u64).saturating_sub(self.pos).min(FETCH as u64) as usize;
            if len == 0 {
                return Ok(0);
            }
            self.buf =
                self.handle.block_on(self.reader.read_range(self.pos as usize, len)).map_err(io::Error::other)?;
            if self.buf.is_empty() {
                return Ok(0);
            }
            self.pos += self.buf.len() as u64;
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

/// Where the sink writes its part file before uploading it: in the subtask's work directory.
pub fn local_staging(work_dir: &Path, staging_url: &Path) -> PathBuf {
    work_dir.join(".hdfs-staging").join(staging_url.file_name().unwrap_or_default())
}

/// Uploads the finished local part file to the attempt's staging URL on HDFS, then removes it locally.
pub async fn upload_staged(local: &Path, staging_url: &Path) -> Result<(), hdfs::HdfsIoError> {
    let (client, path) = hdfs::connect_async(&staging_url.to_string_lossy()).await?;
    hdfs::upload(&client, local, &path).await?;
    let _ = tokio::fs::remove_file(local).await;
    Ok(())
}
