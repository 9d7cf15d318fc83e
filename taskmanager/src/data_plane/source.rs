//! The built-in text source: files split across subtasks by byte ranges.
//!
//! The files (one file, every visible file of a directory, or the matches of a
//! `*`/`?` pattern in the last path component, sorted by path) are laid end to
//! end; subtask `i` of `p` owns bytes `[total*i/p, total*(i+1)/p)`. A line
//! belongs to the subtask whose range holds its first byte, so each subtask
//! skips the line its range starts inside and reads past its range end to
//! finish its last line: every line is read exactly once. Lines never span
//! files; a file's last line gets a newline if it has none.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0:?} is on HDFS; the data plane lists hdfs:// inputs with `hdfs_io::list_input_files`")]
    HdfsUnsupported(String),
    #[error(transparent)]
    Hdfs(#[from] common::hdfs::HdfsIoError),
    #[error("the text source found no input at {0:?}; check the source path in job.toml")]
    NoInput(PathBuf),
    #[error("listing {path:?} for the text source failed: {source}")]
    List {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading {path:?} failed: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path:?} has a line longer than {limit} bytes; raise `max_record_bytes` or split the line")]
    LineTooLong { path: PathBuf, limit: usize },
}

/// The input files of `path`, sorted, with their sizes.
pub fn list_input_files(path: &Path) -> Result<Vec<(PathBuf, u64)>, SourceError> {
    let text = path.to_string_lossy();
    if text.starts_with("hdfs://") {
        return Err(SourceError::HdfsUnsupported(text.into_owned()));
    }
    let list = |p: &Path, e: io::Error| SourceError::List { path: p.to_path_buf(), source: e };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut files = Vec::new();
    if name.contains(['*', '?']) {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        for entry in std::fs::read_dir(dir).map_err(|e| list(dir, e))? {
            let entry = entry.map_err(|e| list(dir, e))?;
            if glob_match(name.as_bytes(), entry.file_name().as_encoded_bytes()) {
                files.push(entry.path());
            }
        }
    } else if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(|e| list(path, e))? {
            let entry = entry.map_err(|e| list(path, e))?;
            // Hidden and `_`-prefixed files are metadata (`_SUCCESS`, `.staging`), as in Hadoop.
            let n = entry.file_name();
            if !n.as_encoded_bytes().starts_with(b".") && !n.as_encoded_bytes().starts_with(b"_") {
                files.push(entry.path());
            }
        }
    } else {
        files.push(path.to_path_buf());
    }
    files.sort();
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        match std::fs::metadata(&f) {
            Ok(m) if m.is_file() => out.push((f, m.len())),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(list(&f, e)),
        }
    }
    if out.is_empty() {
        return Err(SourceError::NoInput(path.to_path_buf()));
    }
    Ok(out)
}

/// `*` matches any run of bytes, `?` one byte.
pub(crate) fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = n;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            n = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The byte range subtask `index` of `parallelism` owns.
pub fn split_range(total: u64, parallelism: u32, index: u32) -> (u64, u64) {
    let p = u128::from(parallelism.max(1));
    let at = |i: u32| (u128::from(total) * u128::from(i) / p) as u64;
    (at(index), at(index + 1))
}

/// Reads the lines whose first byte lies in `[start, end)` of the laid-out
/// files, handing `emit` chunks of whole lines of about `chunk_size` bytes.
/// `emit` returns false to stop early.
pub fn read_split(
    files: &[(PathBuf, u64)],
    start: u64,
    end: u64,
    chunk_size: usize,
    max_line: usize,
    emit: &mut dyn FnMut(Bytes) -> bool,
) -> Result<(), SourceError> {
    let mut open_local = |path: &Path, at: u64| -> io::Result<Box<dyn Read>> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(at))?;
        Ok(Box::new(file))
    };
    read_split_with(files, start, end, chunk_size, max_line, &mut open_local, emit)
}

/// Opens `path` for reading from byte `offset` on: the one thing a file
/// system must give the split reader.
pub type OpenAt<'a> = dyn FnMut(&Path, u64) -> io::Result<Box<dyn Read>> + 'a;

/// [`read_split`] over any file system: `open(path, offset)` gives a reader
/// of `path` from `offset` on (HDFS uses this; see `hdfs_source`).
pub fn read_split_with(
    files: &[(PathBuf, u64)],
    start: u64,
    end: u64,
    chunk_size: usize,
    max_line: usize,
    open: &mut OpenAt<'_>,
    emit: &mut dyn FnMut(Bytes) -> bool,
) -> Result<(), SourceError> {
    let mut base = 0u64;
    for (path, size) in files {
        let (from, to) = (start.saturating_sub(base).min(*size), end.saturating_sub(base).min(*size));
        base += size;
        if from < to && !read_file_range(path, from, to, chunk_size.max(1), max_line, open, emit)? {
            return Ok(());
        }
    }
    Ok(())
}

/// Lines of one file starting in `[from, to)`. Returns false if `emit` said stop.
fn read_file_range(
    path: &Path,
    from: u64,
    to: u64,
    chunk_size: usize,
    max_line: usize,
    open: &mut OpenAt<'_>,
    emit: &mut dyn FnMut(Bytes) -> bool,
) -> Result<bool, SourceError> {
    let read_err = |e| SourceError::Read { path: path.to_path_buf(), source: e };
    // Offset in the file of buf[0].
    let mut pos = from.saturating_sub(1);
    let mut file = open(path, pos).map_err(read_err)?;
    let mut buf = BytesMut::with_capacity(chunk_size);
    // Unless the range starts the file, the first line is ours only if the byte
    // before the range is a newline; otherwise skip to after the next one.
    let mut skipping = from > 0;
    let mut eof = false;
    loop {
        if !eof {
            // At most `chunk_size` per read, so chunks stay near that size.
            let filled = buf.len();
            buf.resize(filled + chunk_size, 0);
            let n = file.read(&mut buf[filled..]).map_err(read_err)?;
            buf.truncate(filled + n);
            eof = n == 0;
        }
        if skipping {
            match memchr::memchr(b'\n', &buf) {
                Some(i) => {
                    pos += i as u64 + 1;
                    let _ = buf.split_to(i + 1);
                    skipping = false;
                    if pos >= to {
                        return Ok(true);
                    }
                }
                None if eof => return Ok(true),
                None => {
                    pos += buf.len() as u64;
                    buf.clear();
                    continue;
                }
            }
        }
        // The last line we own starts at or before to-1: stop at the first
        // newline at or after to-1.
        let last = (to - 1).saturating_sub(pos) as usize;
        if last < buf.len() {
            if let Some(i) = memchr::memchr(b'\n', &buf[last..]) {
                let chunk = buf.split_to(last + i + 1).freeze();
                return Ok(emit(chunk));
            }
        }
        if let Some(i) = memchr::memrchr(b'\n', &buf) {
            pos += i as u64 + 1;
            if !emit(buf.split_to(i + 1).freeze()) {
                return Ok(false);
            }
        } else if buf.len() > max_line {
            return Err(SourceError::LineTooLong { path: path.to_path_buf(), limit: max_line });
        }
        if eof {
            if buf.is_empty() {
                return Ok(true);
            }
            buf.extend_from_slice(b"\n");
            return Ok(emit(buf.split().freeze()));
        }
    }
}
