//! Content-addressed blob storage: package files kept in the data directory by the SHA-256 of
//! their content, at `<root>/sha256/<first two hex digits>/<hash>`.
//!
//! A blob is written by streaming into a temporary file under `<root>/tmp/` (same file system,
//! so the final rename is atomic) while hashing, then renamed to its hash's path. A blob path
//! therefore only ever holds complete content, and two uploads of the same bytes share one
//! file. A temporary file that is not committed is removed when its [`BlobUpload`] is dropped
//! (a failed or refused upload leaves nothing); ones left by a crash are removed at the next
//! start.
//!
//! What it does not do: know which records use a blob. The caller decides when a blob is no
//! longer referenced and removes it ([`BlobStore::remove`]).

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// The temporary file's write buffer: big enough that a multi-gigabyte upload is a few
/// thousand writes, small enough not to matter per request.
const WRITE_BUFFER_BYTES: usize = 1024 * 1024;

/// The blob directory tree.
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the blob store at `root`, removing temporary files a
    /// previous process left.
    pub fn open(root: &Path) -> io::Result<BlobStore> {
        let temporary = root.join("tmp");
        std::fs::create_dir_all(root.join("sha256"))?;
        if temporary.exists() {
            std::fs::remove_dir_all(&temporary)?;
        }
        std::fs::create_dir_all(&temporary)?;
        Ok(BlobStore {
            root: root.to_owned(),
        })
    }

    /// Starts writing a new blob.
    pub(crate) fn start_upload(&self) -> io::Result<BlobUpload> {
        let (file, temporary_path) = tempfile::Builder::new()
            .prefix("upload-")
            .tempfile_in(self.root.join("tmp"))?
            .into_parts();
        Ok(BlobUpload {
            writer: tokio::io::BufWriter::with_capacity(
                WRITE_BUFFER_BYTES,
                tokio::fs::File::from_std(file),
            ),
            temporary_path,
            hasher: Sha256::new(),
            n_bytes: 0,
        })
    }

    /// Where the blob with `hash` lives; `None` unless `hash` is 64 lower-case hex digits (so a
    /// hash read from a record can never name a path outside the store).
    pub fn path_of(&self, hash: &str) -> Option<PathBuf> {
        let is_sha256 = hash.len() == 64
            && hash
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        is_sha256.then(|| self.root.join("sha256").join(&hash[..2]).join(hash))
    }

    /// Moves a finished upload to its hash's path. When that blob already exists (the same
    /// bytes were uploaded before) the upload is discarded; returns whether the blob is new.
    pub(crate) async fn commit(&self, upload: FinishedUpload) -> io::Result<bool> {
        let Some(path) = self.path_of(&upload.hash) else {
            return Err(io::Error::other("a finished upload has a malformed hash"));
        };
        if tokio::fs::try_exists(&path).await? {
            return Ok(false);
        }
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let temporary_path = upload.temporary_path;
        tokio::task::spawn_blocking(move || {
            temporary_path.persist(&path).map_err(|error| error.error)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(true)
    }

    /// Removes the blob with `hash`; a missing blob is not an error.
    pub(crate) async fn remove(&self, hash: &str) -> io::Result<()> {
        let Some(path) = self.path_of(hash) else {
            return Ok(());
        };
        match tokio::fs::remove_file(&path).await {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

/// The deployment engine reads package files straight from the blob store.
impl cuttle_orchestrator::PackageBlobs for BlobStore {
    fn blob_path(&self, sha256: &str) -> Option<PathBuf> {
        self.path_of(sha256)
    }
}

/// A blob being written: bytes go to a temporary file and into the hash as they arrive.
pub(crate) struct BlobUpload {
    writer: tokio::io::BufWriter<tokio::fs::File>,
    /// Removes the file when dropped, unless persisted by [`BlobStore::commit`].
    temporary_path: tempfile::TempPath,
    hasher: Sha256,
    n_bytes: u64,
}

impl BlobUpload {
    pub(crate) async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.hasher.update(chunk);
        self.n_bytes += chunk.len() as u64;
        self.writer.write_all(chunk).await
    }

    /// Bytes written so far.
    pub(crate) fn n_bytes(&self) -> u64 {
        self.n_bytes
    }

    /// Flushes and syncs the file, so a committed blob survives a crash.
    pub(crate) async fn finish(mut self) -> io::Result<FinishedUpload> {
        self.writer.flush().await?;
        self.writer.get_mut().sync_all().await?;
        Ok(FinishedUpload {
            temporary_path: self.temporary_path,
            hash: hex::encode(self.hasher.finalize()),
            n_bytes: self.n_bytes,
        })
    }
}

/// A complete upload, not yet committed; dropping it removes the temporary file.
pub(crate) struct FinishedUpload {
    temporary_path: tempfile::TempPath,
    /// SHA-256 of the content, lower-case hex.
    pub(crate) hash: String,
    pub(crate) n_bytes: u64,
}

impl FinishedUpload {
    /// The temporary file, for checks before committing.
    pub(crate) fn path(&self) -> &Path {
        &self.temporary_path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn uploads_are_stored_by_hash_and_shared() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let store = BlobStore::open(directory.path()).expect("open");
        let mut first = store.start_upload().expect("start");
        first.write(b"hello ").await.expect("write");
        first.write(b"world").await.expect("write");
        let first = first.finish().await.expect("finish");
        assert_eq!(
            first.hash,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(first.n_bytes, 11);
        let hash = first.hash.clone();
        assert!(store.commit(first).await.expect("commit"));
        let path = store.path_of(&hash).expect("valid hash");
        assert_eq!(std::fs::read(&path).expect("read"), b"hello world");

        let mut second = store.start_upload().expect("start");
        second.write(b"hello world").await.expect("write");
        let second = second.finish().await.expect("finish");
        assert!(!store.commit(second).await.expect("commit"));
        let leftovers = std::fs::read_dir(directory.path().join("tmp"))
            .expect("list tmp")
            .count();
        assert_eq!(leftovers, 0);

        store.remove(&hash).await.expect("remove");
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn dropped_uploads_leave_nothing() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let store = BlobStore::open(directory.path()).expect("open");
        let mut upload = store.start_upload().expect("start");
        upload.write(b"partial").await.expect("write");
        drop(upload);
        let leftovers = std::fs::read_dir(directory.path().join("tmp"))
            .expect("list tmp")
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn only_sha256_hex_names_a_path() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let store = BlobStore::open(directory.path()).expect("open");
        assert!(store.path_of("../../etc/passwd").is_none());
        assert!(store.path_of(&"A".repeat(64)).is_none());
        assert!(store.path_of(&"a".repeat(64)).is_some());
    }
}
