//! Loading a bundle: a directory holding `job.toml` and the programs it runs,
//! a `.tar.gz`/`.tgz` of such a directory, or the path of a `job.toml`.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use super::error::{BundleError, LimitKind};
use super::model::Bundle;
use super::parse::read_job_spec;

/// The spec's file name inside a bundle.
pub const JOB_SPEC_FILE: &str = "job.toml";

/// How much an archive may unpack to, checked while unpacking: a 3 MB
/// `.tar.gz` can hold gigabytes of zeros. The defaults fit real bundles (the
/// programs and their small inputs); data belongs on HDFS or a shared path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BundleLimits {
    /// The unpacked size of every file together, in bytes (`--bundle-max-size`).
    pub max_bytes: u64,
    /// Files, directories and links together (`--bundle-max-entries`).
    pub max_entries: u64,
}

impl BundleLimits {
    pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;
    pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;

    /// What the decompressed tar stream may hold besides file contents: a
    /// header block and padding per entry, and long-name/pax records. Bounds
    /// what the tar reader buffers in memory for one of those, too.
    fn stream_budget(&self) -> u64 {
        self.max_bytes.saturating_add(self.max_entries.saturating_mul(1536)).saturating_add(1 << 20)
    }
}

impl Default for BundleLimits {
    fn default() -> Self {
        BundleLimits { max_bytes: Self::DEFAULT_MAX_BYTES, max_entries: Self::DEFAULT_MAX_ENTRIES }
    }
}

impl Bundle {
    /// Loads the bundle at `path`. An archive is extracted into `work_dir`
    /// (created if missing, refused unless empty) within `limits`, and the
    /// bundle's `dir` is then the directory in it that holds `job.toml` (the
    /// archive's root, or its single top-level directory). An archive that
    /// cannot be extracted leaves `work_dir` removed. `work_dir` is unused for
    /// directories and spec files, and the caller owns (and removes) it.
    pub fn load(
        path: impl AsRef<Path>,
        work_dir: impl AsRef<Path>,
        limits: &BundleLimits,
    ) -> Result<Bundle, BundleError> {
        let path = path.as_ref();
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(BundleError::NotFound(path.to_owned())),
            Err(source) => return Err(BundleError::Io { path: path.to_owned(), source }),
        };
        // Absolute paths from here on: TaskExecutors are other processes, with
        // other working directories, and must find the same files.
        let path = &std::fs::canonicalize(path).map_err(|source| BundleError::Io { path: path.to_owned(), source })?;
        if meta.is_dir() {
            return Self::load_dir(path);
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
        if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            let into = &std::path::absolute(work_dir.as_ref())
                .map_err(|source| BundleError::Io { path: work_dir.as_ref().to_owned(), source })?;
            if let Err(e) = extract(path, into, limits) {
                // Nothing half-unpacked stays behind (a refused bomb included).
                if !matches!(e, BundleError::WorkDirNotEmpty { .. }) {
                    let _ = std::fs::remove_dir_all(into);
                }
                return Err(e);
            }
            return Self::load_dir(
                &bundle_root(into).map_err(|source| BundleError::Io { path: into.to_owned(), source })?,
            );
        }
        if name.ends_with(".toml") {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                _ => PathBuf::from("."),
            };
            let spec = read_job_spec(path, &dir)?;
            return Ok(Bundle { dir, spec_path: path.to_owned(), spec });
        }
        Err(BundleError::UnsupportedKind(path.to_owned()))
    }

    fn load_dir(dir: &Path) -> Result<Bundle, BundleError> {
        let spec_path = dir.join(JOB_SPEC_FILE);
        if !spec_path.is_file() {
            return Err(BundleError::NoJobSpec(dir.to_owned()));
        }
        let spec = read_job_spec(&spec_path, dir)?;
        Ok(Bundle { dir: dir.to_owned(), spec_path, spec })
    }
}

/// `into` itself when it holds `job.toml`, else its one top-level directory
/// (archives made with `tar -czf b.tgz wordcount/`), else `into`.
fn bundle_root(into: &Path) -> io::Result<PathBuf> {
    if into.join(JOB_SPEC_FILE).is_file() {
        return Ok(into.to_owned());
    }
    let entries: Vec<_> = std::fs::read_dir(into)?.collect::<Result<_, _>>()?;
    match entries.as_slice() {
        [only] if only.file_type()?.is_dir() => Ok(only.path()),
        _ => Ok(into.to_owned()),
    }
}

/// A reader that fails, and says so in `over`, once more than `left` bytes
/// have passed: tar trusts the sizes in headers, and buffers pax records whole.
struct Bounded<R> {
    inner: R,
    left: u64,
    over: Rc<Cell<bool>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        match self.left.checked_sub(n as u64) {
            Some(left) => {
                self.left = left;
                Ok(n)
            }
            None => {
                self.over.set(true);
                Err(io::Error::other("the archive unpacks to more than its limit"))
            }
        }
    }
}

fn extract(archive: &Path, into: &Path, limits: &BundleLimits) -> Result<(), BundleError> {
    let extract_err =
        |source: io::Error| BundleError::Extract { archive: archive.to_owned(), into: into.to_owned(), source };
    std::fs::create_dir_all(into).map_err(extract_err)?;
    if std::fs::read_dir(into).map_err(extract_err)?.next().is_some() {
        return Err(BundleError::WorkDirNotEmpty { archive: archive.to_owned(), into: into.to_owned() });
    }
    let file = File::open(archive).map_err(|source| BundleError::Io { path: archive.to_owned(), source })?;
    let over = Rc::new(Cell::new(false));
    let stream = Bounded {
        inner: flate2::read::GzDecoder::new(io::BufReader::new(file)),
        left: limits.stream_budget(),
        over: over.clone(),
    };
    let too_large = |what| BundleError::TooLarge { archive: archive.to_owned(), what, limits: *limits };
    // An error the bound caused is the limit's, whatever tar made of it.
    let extract_err = |source: io::Error| {
        if over.get() {
            too_large(LimitKind::Bytes)
        } else {
            extract_err(source)
        }
    };
    let mut tar = tar::Archive::new(stream);
    // Keep the executable bits programs need, but no setuid/setgid/sticky
    // bits and nothing writable by others.
    tar.set_preserve_permissions(true);
    tar.set_mask(0o7002);
    tar.set_overwrite(false);
    let (mut entries, mut bytes) = (0u64, 0u64);
    for entry in tar.entries().map_err(extract_err)? {
        let mut entry = entry.map_err(extract_err)?;
        entries += 1;
        if entries > limits.max_entries {
            return Err(too_large(LimitKind::Entries));
        }
        // Checked before writing: the header says how much the entry unpacks to.
        bytes = bytes.saturating_add(entry.size());
        if bytes > limits.max_bytes {
            return Err(too_large(LimitKind::Bytes));
        }
        let entry_path = entry.path().map_err(extract_err)?.into_owned();
        // `unpack_in` would skip such entries silently; a bundle that needs
        // them is broken, so say so instead.
        let unsafe_path = entry_path.is_absolute()
            || entry_path.components().any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)));
        let kind = entry.header().entry_type();
        // A sparse file's header size is what it stores, not what it unpacks to.
        if kind.is_gnu_sparse() {
            return Err(BundleError::UnsupportedEntry {
                archive: archive.to_owned(),
                entry: entry_path.display().to_string(),
                kind: "a sparse file",
            });
        }
        let unsafe_link = (kind.is_symlink() || kind.is_hard_link())
            && entry.link_name().ok().flatten().is_some_and(|l| {
                l.is_absolute() || l.components().any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
            });
        if unsafe_path || unsafe_link {
            return Err(BundleError::UnsafeEntry {
                archive: archive.to_owned(),
                entry: entry_path.display().to_string(),
            });
        }
        entry.unpack_in(into).map_err(extract_err)?;
    }
    Ok(())
}
