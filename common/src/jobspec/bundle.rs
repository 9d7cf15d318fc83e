//! Loading a bundle: a directory holding `job.toml` and the programs it runs,
//! a `.tar.gz`/`.tgz` of such a directory, or the path of a `job.toml`.

use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::error::BundleError;
use super::model::Bundle;
use super::parse::read_job_spec;

/// The spec's file name inside a bundle.
pub const JOB_SPEC_FILE: &str = "job.toml";

impl Bundle {
    /// Loads the bundle at `path`. An archive is extracted into `work_dir`
    /// (created if missing, refused unless empty), and the bundle's `dir` is
    /// then the directory in it that holds `job.toml` (the archive's root, or
    /// its single top-level directory). `work_dir` is unused for directories
    /// and spec files, and the caller owns (and removes) it.
    pub fn load(path: impl AsRef<Path>, work_dir: impl AsRef<Path>) -> Result<Bundle, BundleError> {
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
            extract(path, into)?;
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

fn extract(archive: &Path, into: &Path) -> Result<(), BundleError> {
    let extract_err =
        |source: io::Error| BundleError::Extract { archive: archive.to_owned(), into: into.to_owned(), source };
    std::fs::create_dir_all(into).map_err(extract_err)?;
    if std::fs::read_dir(into).map_err(extract_err)?.next().is_some() {
        return Err(BundleError::WorkDirNotEmpty { archive: archive.to_owned(), into: into.to_owned() });
    }
    let file = File::open(archive).map_err(|source| BundleError::Io { path: archive.to_owned(), source })?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    // Keep the executable bits programs need, but no setuid/setgid/sticky
    // bits and nothing writable by others.
    tar.set_preserve_permissions(true);
    tar.set_mask(0o7002);
    tar.set_overwrite(false);
    for entry in tar.entries().map_err(extract_err)? {
        let mut entry = entry.map_err(extract_err)?;
        let entry_path = entry.path().map_err(extract_err)?.into_owned();
        // `unpack_in` would skip such entries silently; a bundle that needs
        // them is broken, so say so instead.
        let unsafe_path = entry_path.is_absolute()
            || entry_path.components().any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)));
        let kind = entry.header().entry_type();
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
