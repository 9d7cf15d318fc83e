//! Bundles uploaded to a session, kept by content (Flink's BlobServer, for
//! bundles only): the Dispatcher stores the `.tar.gz` it received, and
//! TaskExecutors on other machines fetch it by its SHA-256 over the REST API.

use std::io::Write;
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
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
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

    /// Stores `bytes` under their SHA-256 and returns it. Storing the same
    /// content twice keeps one copy.
    pub fn put(&self, bytes: &[u8]) -> Result<(String, PathBuf), BlobError> {
        let key = sha256_hex(bytes);
        let path = self.dir.join(format!("{key}.tar.gz"));
        if !path.exists() {
            let err = |source| BlobError { dir: self.dir.display().to_string(), source };
            std::fs::create_dir_all(&self.dir).map_err(err)?;
            // Write aside, then rename: a reader never sees half a blob.
            let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(err)?;
            tmp.write_all(bytes).map_err(err)?;
            tmp.persist(&path).map_err(|e| err(e.error))?;
        }
        Ok((key, path))
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
    use super::*;

    #[test]
    fn stores_by_content_and_refuses_keys_that_are_not_digests() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::new(tmp.path().join("blobs"));
        let (k1, p1) = store.put(b"bundle").unwrap();
        let (k2, p2) = store.put(b"bundle").unwrap();
        assert_eq!((k1.clone(), p1), (k2, p2));
        assert_eq!(std::fs::read(store.path(&k1).unwrap()).unwrap(), b"bundle");
        assert!(store.path("../secret").is_none());
        assert!(store.path(&"0".repeat(64)).is_none());
    }
}
