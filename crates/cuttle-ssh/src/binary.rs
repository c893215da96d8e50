//! This server's `cuttle` binary on the target: hashed once here, uploaded over SFTP when the
//! target lacks it, named by its hash so versions never mix (`cuttle-<16 hex digits>`).
//!
//! An upload goes to a temporary name, is made executable and then renamed into place, so the
//! final name only ever holds a whole binary; two servers uploading at once both succeed.
//! Presence is checked by name and size. Old versions are left on the target.

use std::path::{Path, PathBuf};

use russh_sftp::client::SftpSession;
use russh_sftp::protocol::{FileAttributes, StatusCode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::error::SshError;
use crate::remote::RemotePath;

/// How much of the binary is read (and sent) at a time.
const CHUNK: usize = 256 << 10;

/// The local binary to run on targets.
#[derive(Debug, Clone)]
pub(crate) struct LocalBinary {
    pub(crate) path: PathBuf,
    pub(crate) sha256: String,
    pub(crate) length: u64,
}

impl LocalBinary {
    /// Hashes the file at `path` (on a blocking thread).
    pub(crate) async fn load(path: PathBuf) -> Result<LocalBinary, SshError> {
        let hashed_path = path.clone();
        let hashed = tokio::task::spawn_blocking(move || hash_file(&hashed_path)).await;
        let failure = |reason: String| SshError::LocalBinary {
            path: path.display().to_string(),
            reason,
        };
        match hashed {
            Ok(Ok((sha256, length))) => Ok(LocalBinary {
                path,
                sha256,
                length,
            }),
            Ok(Err(error)) => Err(failure(error.to_string())),
            Err(error) => Err(failure(error.to_string())),
        }
    }

    /// The file name on the target.
    pub(crate) fn remote_name(&self) -> String {
        format!("cuttle-{}", &self.sha256[..16])
    }
}

fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0u8; 1 << 20];
    let mut length = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        length += read as u64;
    }
    Ok((hex::encode(hasher.finish()), length))
}

/// Makes sure `directory/<remote name>` holds `binary`; returns whether it uploaded it.
pub(crate) async fn ensure_uploaded(
    sftp: &SftpSession,
    binary: &LocalBinary,
    directory: &RemotePath,
    address: &str,
) -> Result<bool, SshError> {
    let target = directory.join(&binary.remote_name());
    let upload_error = |reason: String| SshError::Upload {
        address: address.to_owned(),
        path: target.to_string(),
        reason,
    };
    match sftp.metadata(target.sftp()).await {
        Ok(metadata) if metadata.size == Some(binary.length) => return Ok(false),
        Ok(_) => {
            // A different length under our hash's name: damaged; replace it.
            tracing::warn!(path = %target, address, "replacing a damaged cuttle binary");
        }
        Err(russh_sftp::client::error::Error::Status(status))
            if status.status_code == StatusCode::NoSuchFile => {}
        Err(error) => return Err(upload_error(format!("could not look for it: {error}"))),
    }

    create_directories(sftp, directory)
        .await
        .map_err(upload_error)?;

    let temporary = directory.join(&format!(
        ".{}.upload-{:016x}",
        binary.remote_name(),
        rand::random::<u64>()
    ));
    let written = write_file(sftp, binary, &temporary).await;
    let placed = match written {
        Ok(()) => place(sftp, &temporary, &target).await,
        Err(error) => Err(error),
    };
    if let Err(reason) = placed {
        let _removed = sftp.remove_file(temporary.sftp()).await;
        return Err(upload_error(reason));
    }
    tracing::info!(path = %target, address, bytes = binary.length, "uploaded cuttle");
    Ok(true)
}

/// Creates `directory` and its missing ancestors (`mkdir -p`).
pub(crate) async fn create_directories(
    sftp: &SftpSession,
    directory: &RemotePath,
) -> Result<(), String> {
    for ancestor in directory.ancestors_and_self() {
        if sftp.try_exists(ancestor.sftp()).await.unwrap_or(false) {
            continue;
        }
        if let Err(error) = sftp.create_dir(ancestor.sftp()).await {
            // Someone else may have made it meanwhile.
            if !sftp.try_exists(ancestor.sftp()).await.unwrap_or(false) {
                return Err(format!("could not create {ancestor}: {error}"));
            }
        }
    }
    Ok(())
}

async fn write_file(
    sftp: &SftpSession,
    binary: &LocalBinary,
    temporary: &RemotePath,
) -> Result<(), String> {
    let sent = send_file(sftp, &binary.path, temporary).await?;
    if sent != binary.length {
        return Err(format!(
            "the binary changed while it was sent ({sent} bytes, expected {})",
            binary.length
        ));
    }
    Ok(())
}

/// Streams the local file at `local` to `remote` (created or truncated); returns the bytes
/// sent.
pub(crate) async fn send_file(
    sftp: &SftpSession,
    local: &Path,
    remote: &RemotePath,
) -> Result<u64, String> {
    let mut local_file = tokio::fs::File::open(local)
        .await
        .map_err(|error| format!("could not open {}: {error}", local.display()))?;
    let mut remote_file = sftp
        .create(remote.sftp())
        .await
        .map_err(|error| format!("could not create {remote}: {error}"))?;
    let mut buffer = vec![0u8; CHUNK];
    let mut sent = 0u64;
    loop {
        let read = local_file
            .read(&mut buffer)
            .await
            .map_err(|error| format!("could not read {}: {error}", local.display()))?;
        if read == 0 {
            break;
        }
        remote_file
            .write_all(&buffer[..read])
            .await
            .map_err(|error| format!("could not write {remote}: {error}"))?;
        sent += read as u64;
    }
    remote_file
        .shutdown()
        .await
        .map_err(|error| format!("could not close {remote}: {error}"))?;
    Ok(sent)
}

/// Writes `bytes` to `remote` (created or truncated); returns the bytes sent.
pub(crate) async fn send_bytes(
    sftp: &SftpSession,
    bytes: &[u8],
    remote: &RemotePath,
) -> Result<u64, String> {
    let mut remote_file = sftp
        .create(remote.sftp())
        .await
        .map_err(|error| format!("could not create {remote}: {error}"))?;
    for chunk in bytes.chunks(CHUNK) {
        remote_file
            .write_all(chunk)
            .await
            .map_err(|error| format!("could not write {remote}: {error}"))?;
    }
    remote_file
        .shutdown()
        .await
        .map_err(|error| format!("could not close {remote}: {error}"))?;
    Ok(bytes.len() as u64)
}

/// Makes the upload executable and renames it to its final name.
async fn place(
    sftp: &SftpSession,
    temporary: &RemotePath,
    target: &RemotePath,
) -> Result<(), String> {
    let attributes = FileAttributes {
        permissions: Some(0o755),
        ..FileAttributes::empty()
    };
    sftp.set_metadata(temporary.sftp(), attributes)
        .await
        .map_err(|error| format!("could not make {temporary} executable: {error}"))?;
    match sftp.rename(temporary.sftp(), target.sftp()).await {
        Ok(()) => Ok(()),
        // SFTP's rename refuses to replace a file: another upload won the race.
        Err(_) if sftp.try_exists(target.sftp()).await.unwrap_or(false) => {
            let _removed = sftp.remove_file(temporary.sftp()).await;
            Ok(())
        }
        Err(error) => Err(format!("could not rename {temporary} to {target}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_binary_is_named_by_its_hash() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("cuttle");
        std::fs::write(&path, b"abc").expect("write");
        let binary = LocalBinary::load(path).await.expect("hash");
        assert_eq!(
            binary.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(binary.length, 3);
        assert_eq!(binary.remote_name(), "cuttle-ba7816bf8f01cfea");
    }

    #[tokio::test]
    async fn a_missing_binary_is_a_clear_error() {
        let error = LocalBinary::load(PathBuf::from("/nonexistent/cuttle"))
            .await
            .expect_err("no such file");
        assert!(error.to_string().contains("/nonexistent/cuttle"), "{error}");
    }
}
