//! The `yarn-flink` binary that goes to the cluster, and the form it travels
//! in: a deterministic `yarn-flink.tar.gz` holding one file, `yarn-flink`,
//! localized as an ARCHIVE (the NodeManager unpacks it into a directory with
//! the link's name, `shared/wire/hadoop-3.3.6/nm/README.md` rule 4). A release
//! build is stripped (`[profile.release] strip`), so this is a few MB.
//!
//! Which binary ([`choose`]): `YARN_FLINK_CLUSTER_BINARY` (a binary or an
//! already packed `.tar.gz`), else a `yarn-flink.tar.gz` beside the running
//! binary (what `scripts/build-portable` puts in `dist/`, built for glibc
//! 2.17), else the running binary itself. The archive is packed once per
//! binary and kept under `~/.cache/yarn-flink/cluster-binary/`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The archive's only entry: the binary, as containers run it (`./yarn-flink/yarn-flink`).
pub const ENTRY: &str = "yarn-flink";
pub const ARCHIVE_NAME: &str = "yarn-flink.tar.gz";
pub const ENV_CLUSTER_BINARY: &str = "YARN_FLINK_CLUSTER_BINARY";

/// The binary (or archive) `submit` ships; see the module documentation.
pub fn choose() -> Result<PathBuf> {
    if let Some(b) = std::env::var_os(ENV_CLUSTER_BINARY).filter(|b| !b.is_empty()) {
        return Ok(b.into());
    }
    let me = std::env::current_exe().context("cannot find this binary to ship it")?;
    if let Some(beside) = me.parent().map(|d| d.join(ARCHIVE_NAME)).filter(|p| p.is_file()) {
        return Ok(beside);
    }
    Ok(me)
}

/// The archive to upload for `binary`: as it is when it already is a
/// `.tar.gz`, else packed (once; cached by path, size and mtime).
pub fn archive_for(binary: &Path) -> Result<PathBuf> {
    let name = binary.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        return Ok(binary.to_owned());
    }
    let meta = std::fs::metadata(binary)
        .with_context(|| format!("cannot read the binary to ship to the cluster, {}", binary.display()))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let canonical = std::fs::canonicalize(binary).unwrap_or_else(|_| binary.to_owned());
    let key = {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(canonical.as_os_str().as_encoded_bytes());
        h.update(meta.len().to_le_bytes());
        h.update(mtime.to_le_bytes());
        hex::encode(&h.finalize()[..12])
    };
    let dir = cache_dir().join(key);
    let out = dir.join(ARCHIVE_NAME);
    if out.is_file() {
        return Ok(out);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(".{ARCHIVE_NAME}.{}", std::process::id()));
    pack(binary, &tmp)?;
    std::fs::rename(&tmp, &out).with_context(|| format!("cannot create {}", out.display()))?;
    prune(&cache_dir(), KEEP_PACKED);
    Ok(out)
}

/// Packed binaries kept (each rebuild makes a new one).
const KEEP_PACKED: usize = 4;

/// Removes all but the `keep` most recent packed binaries (best effort).
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .filter(|(_, p)| p.is_dir())
        .collect();
    dirs.sort();
    let excess = dirs.len().saturating_sub(keep);
    for (_, p) in dirs.into_iter().take(excess) {
        let _ = std::fs::remove_dir_all(p);
    }
}

fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("yarn-flink").join("cluster-binary")
}

/// A deterministic tar.gz of `binary` as [`ENTRY`], mode 0755.
pub fn pack(binary: &Path, out: &Path) -> Result<()> {
    let mut input =
        std::fs::File::open(binary).with_context(|| format!("cannot read the binary {}", binary.display()))?;
    let size = input.metadata()?.len();
    let file = std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let gz = flate2::GzBuilder::new().mtime(0).write(std::io::BufWriter::new(file), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o755);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_cksum();
    tar.append_data(&mut header, ENTRY, &mut input).with_context(|| format!("cannot pack {}", binary.display()))?;
    let mut writer = tar.into_inner()?.finish()?;
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_holds_the_executable_binary_and_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("yf");
        std::fs::write(&bin, b"\x7fELF pretend binary").unwrap();
        let (a, b) = (dir.path().join("a.tar.gz"), dir.path().join("b.tar.gz"));
        pack(&bin, &a).unwrap();
        pack(&bin, &b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let entries = crate::yarn::test_fixtures::tar_entries(&std::fs::read(&a).unwrap());
        assert_eq!(entries, vec![(ENTRY.to_string(), 0o755)]);
        // An already packed archive is shipped as it is.
        assert_eq!(archive_for(&a).unwrap(), a);
    }

    #[test]
    fn the_pack_cache_keeps_only_the_newest_entries() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..6u64 {
            let d = dir.path().join(format!("k{i}"));
            std::fs::create_dir(&d).unwrap();
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + i);
            std::fs::File::open(&d).unwrap().set_modified(t).unwrap();
        }
        prune(dir.path(), 4);
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["k2", "k3", "k4", "k5"]);
    }
}
