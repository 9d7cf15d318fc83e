//! Bundles uploaded to a session, kept by content (Flink's BlobServer, for
//! bundles only): the Dispatcher stores the `.tar.gz` it received, and
//! TaskExecutors on other machines fetch it by its SHA-256 over the REST API.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Clone, Debug)]
pub struct BlobStore {
    dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot store the uploaded bundle in {dir}: {source}")]
pub struct BlobError {
    dir: String,
    source: std::io::Error,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A blob key is 64 lowercase hex digits; anything else names no blob (and
/// never a path outside the store).
pub fn is_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl BlobStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The store of a cluster whose scratch space is `work_dir`: the REST API
    /// serves from it, recovery and the Kubernetes JobManager put bundles in it.
    pub fn in_work_dir(work_dir: &Path) -> Self {
        Self::new(work_dir.join("blobs"))
    }

    /// Keeps `tmp`, a file already in the store's dir whose SHA-256 is `key`,
    /// as that blob (or drops it if the store has the blob already).
    pub fn adopt(&self, tmp: tempfile::NamedTempFile, key: &str) -> Result<PathBuf, BlobError> {
        let path = self.dir.join(format!("{key}.tar.gz"));
        if !path.exists() {
            tmp.persist(&path).map_err(|e| BlobError { dir: self.dir.display().to_string(), source: e.error })?;
        }
        Ok(path)
    }

    pub fn path(&self, key: &str) -> Option<PathBuf> {
        if !is_key(key) {
            return None;
        }
        let p = self.dir.join(format!("{key}.tar.gz"));
        p.exists().then_some(p)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn stores_by_content_and_refuses_keys_that_are_not_digests() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::new(tmp.path().join("blobs"));
        std::fs::create_dir_all(store.dir()).unwrap();
        let put = |bytes: &[u8]| {
            let mut tmp = tempfile::NamedTempFile::new_in(store.dir()).unwrap();
            tmp.write_all(bytes).unwrap();
            let key = sha256_hex(bytes);
            (key.clone(), store.adopt(tmp, &key).unwrap())
        };
        let (k1, p1) = put(b"bundle");
        let (k2, p2) = put(b"bundle");
        assert_eq!((k1.clone(), p1), (k2, p2));
        assert_eq!(std::fs::read_dir(store.dir()).unwrap().count(), 1, "the second copy is dropped");
        assert_eq!(std::fs::read(store.path(&k1).unwrap()).unwrap(), b"bundle");
        assert!(store.path("../secret").is_none());
        assert!(store.path(&"0".repeat(64)).is_none());
    }
}
