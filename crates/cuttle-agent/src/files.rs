//! The agent's file store: named files the server uploads (packages, scripts' inputs) and
//! downloads, in one flat directory.
//!
//! An upload streams into a hidden temporary file (`.upload-<random>.partial`) while its
//! SHA-256 is computed, and becomes visible under its name only by a rename once the bytes
//! match the checksum the server sent; a mismatch, an interrupted body or a file over the size
//! bound leaves nothing behind. Names are checked with
//! [`crate::protocol::validate_file_name`], so a name never leaves the directory and never
//! names a temporary file. A download hashes the file it opened, then streams the same open
//! file, so the checksum always describes the bytes sent even if an upload replaces the name
//! meanwhile.
//!
//! What this module does not do: speak HTTP (see `crate::service`), or clean up old files
//! (the server completes tickets; files stay until replaced).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

use crate::protocol::{UploadedFile, validate_file_name};

/// The prefix of the store's temporary files; no valid name starts with a dot.
const TEMPORARY_PREFIX: &str = ".upload-";

/// Why a file could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("invalid file name: {0}")]
    InvalidName(String),
    #[error("the {header} header must be 64 hex digits (a SHA-256), not {value:?}")]
    InvalidChecksum { header: &'static str, value: String },
    #[error(
        "the file {name:?} does not match its checksum: expected {expected}, received {actual}"
    )]
    ChecksumMismatch {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("the file {name:?} is larger than the {max_length} bytes this agent accepts")]
    TooLarge { name: String, max_length: u64 },
    #[error("no file named {0:?}")]
    NotFound(String),
    #[error("the upload of {name:?} was interrupted: {reason}")]
    Interrupted { name: String, reason: String },
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FileError + use<> {
    let path = path.to_owned();
    move |source| FileError::Io {
        action,
        path,
        source,
    }
}

/// A flat directory of named files, each written whole or not at all.
#[derive(Debug, Clone)]
pub struct FileStore {
    directory: PathBuf,
    max_length: u64,
}

/// A stored file opened for reading, with its length and checksum.
#[derive(Debug)]
pub struct OpenedFile {
    /// Positioned at the start.
    pub file: tokio::fs::File,
    pub length: u64,
    /// Lower-case hex.
    pub sha256: String,
}

impl FileStore {
    /// Opens (creating) the store's directory and removes temporary files an interrupted
    /// process left behind.
    pub fn open(directory: &Path, max_length: u64) -> Result<FileStore, FileError> {
        std::fs::create_dir_all(directory).map_err(io_error("create", directory))?;
        let entries = std::fs::read_dir(directory).map_err(io_error("list", directory))?;
        for entry in entries.flatten() {
            let is_temporary = entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.starts_with(TEMPORARY_PREFIX));
            if is_temporary {
                let path = entry.path();
                if let Err(error) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), "could not remove a stale upload: {error}");
                }
            }
        }
        Ok(FileStore {
            directory: directory.to_owned(),
            max_length,
        })
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// The largest file accepted, in bytes.
    pub fn max_length(&self) -> u64 {
        self.max_length
    }

    /// Where the file `name` is (or would be) stored.
    pub fn path_of(&self, name: &str) -> Result<PathBuf, FileError> {
        validate_file_name(name).map_err(FileError::InvalidName)?;
        Ok(self.directory.join(name))
    }

    /// Stores `chunks` as `name` if their SHA-256 is `expected_sha256` (hex, any case) and they
    /// hold at most [`FileStore::max_length`] bytes; a file of the same name is replaced.
    /// `declared_length` (a `Content-Length`) lets an oversized upload be refused at once.
    pub async fn write<S, E>(
        &self,
        name: &str,
        expected_sha256: &str,
        declared_length: Option<u64>,
        chunks: S,
    ) -> Result<UploadedFile, FileError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let destination = self.path_of(name)?;
        let expected = parse_sha256(expected_sha256)?;
        let too_large = || FileError::TooLarge {
            name: name.to_owned(),
            max_length: self.max_length,
        };
        if declared_length.is_some_and(|length| length > self.max_length) {
            return Err(too_large());
        }
        let temporary = self.directory.join(format!(
            "{TEMPORARY_PREFIX}{:016x}.partial",
            rand::random::<u64>()
        ));
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .await
            .map_err(io_error("create", &temporary))?;
        // Removes the temporary file on every way out but success, including this future
        // being dropped because the server reset the stream.
        let mut cleanup = RemoveOnDrop(Some(temporary.clone()));
        let mut hasher = Sha256::new();
        let mut length: u64 = 0;
        let mut chunks = std::pin::pin!(chunks);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|error| FileError::Interrupted {
                name: name.to_owned(),
                reason: error.to_string(),
            })?;
            length = length.saturating_add(chunk.len() as u64);
            if length > self.max_length {
                return Err(too_large());
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(io_error("write", &temporary))?;
        }
        file.flush().await.map_err(io_error("write", &temporary))?;
        file.sync_all()
            .await
            .map_err(io_error("sync", &temporary))?;
        drop(file);
        let actual = hex::encode(hasher.finalize());
        if actual != expected {
            return Err(FileError::ChecksumMismatch {
                name: name.to_owned(),
                expected,
                actual,
            });
        }
        tokio::fs::rename(&temporary, &destination)
            .await
            .map_err(io_error("rename into place", &destination))?;
        cleanup.0 = None;
        tracing::debug!(name, length, sha256 = %actual, "stored an uploaded file");
        Ok(UploadedFile {
            name: name.to_owned(),
            length,
            sha256: actual,
        })
    }

    /// Opens the file `name`, hashed and rewound, ready to stream.
    pub async fn open_file(&self, name: &str) -> Result<OpenedFile, FileError> {
        let path = self.path_of(name)?;
        open_hashed(&path, name).await
    }
}

/// Opens the file at `path` (known to the caller as `name`), hashed and rewound.
pub(crate) async fn open_hashed(path: &Path, name: &str) -> Result<OpenedFile, FileError> {
    let path = path.to_owned();
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(file)
            if file
                .metadata()
                .await
                .is_ok_and(|metadata| metadata.is_file()) =>
        {
            file
        }
        Ok(_) => return Err(FileError::NotFound(name.to_owned())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(FileError::NotFound(name.to_owned()));
        }
        Err(error) => return Err(io_error("open", &path)(error)),
    };
    let mut hasher = Sha256::new();
    let mut length: u64 = 0;
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = file
            .read(&mut buffer)
            .await
            .map_err(io_error("read", &path))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        length += read as u64;
    }
    file.rewind().await.map_err(io_error("rewind", &path))?;
    Ok(OpenedFile {
        file,
        length,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// A SHA-256 in hex (any case), as lower-case hex.
pub(crate) fn parse_sha256(text: &str) -> Result<String, FileError> {
    let text = text.trim();
    if text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(FileError::InvalidChecksum {
            header: crate::protocol::SHA256_HEADER,
            value: text.chars().take(80).collect(),
        })
    }
}

/// The SHA-256 of `bytes`, in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take()
            && let Err(error) = std::fs::remove_file(&path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), "could not remove a failed upload: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
        futures::stream::iter(
            parts
                .iter()
                .map(|part| Ok(Bytes::from_static(part)))
                .collect::<Vec<_>>(),
        )
    }

    fn leftovers(directory: &Path) -> Vec<String> {
        std::fs::read_dir(directory)
            .expect("list")
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.starts_with('.'))
            .collect()
    }

    #[tokio::test]
    async fn a_file_is_stored_only_when_its_checksum_matches() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let store = FileStore::open(directory.path(), 10).expect("open");
        let sha = sha256_hex(b"hello world");
        let error = store
            .write("a.txt", &sha, None, chunks(&[b"hello ", b"world"]))
            .await
            .expect_err("eleven bytes are over the bound of ten");
        assert!(matches!(error, FileError::TooLarge { .. }), "{error}");
        let store = FileStore::open(directory.path(), 100).expect("open");
        let stored = store
            .write(
                "a.txt",
                &sha.to_uppercase(),
                None,
                chunks(&[b"hello ", b"world"]),
            )
            .await
            .expect("stored");
        assert_eq!(stored.length, 11);
        assert_eq!(stored.sha256, sha);
        let error = store
            .write("b.txt", &sha, None, chunks(&[b"hello there"]))
            .await
            .expect_err("a mismatch");
        assert!(
            matches!(error, FileError::ChecksumMismatch { .. }),
            "{error}"
        );
        assert!(!directory.path().join("b.txt").exists());
        assert!(leftovers(directory.path()).is_empty());
        let opened = store.open_file("a.txt").await.expect("open");
        assert_eq!((opened.length, opened.sha256), (11, sha));
        assert!(matches!(
            store.open_file("missing").await,
            Err(FileError::NotFound(_))
        ));
        assert!(matches!(
            store.open_file("../a.txt").await,
            Err(FileError::InvalidName(_))
        ));
    }
}
