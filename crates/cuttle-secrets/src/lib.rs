//! The master key and secrets at rest: sensitive values are sealed with AES-256-GCM under a
//! key that lives outside the database.
//!
//! The key comes from `CUTTLE_MASTER_KEY` (for several nodes, which must share it) or from
//! `master.key` in the data directory, created on first start with mode 0600. A database copy
//! without the key reveals no secret.
//!
//! A sealed value is text, `aes256gcm:v1:<base64 of nonce ‖ ciphertext ‖ tag>`, so it fits
//! wherever the plaintext did. Every seal draws a fresh 96-bit nonce from the OS.
//!
//! What this crate does not do: decide which values are secret, mask logs, or store anything
//! but the key file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::Zeroizing;

/// The key file's name inside the data directory.
pub const MASTER_KEY_FILE_NAME: &str = "master.key";

const SEALED_PREFIX: &str = "aes256gcm:v1:";
const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
/// Binds sealed values to their use, so a value sealed for something else will not open here.
const ASSOCIATED_DATA: &[u8] = b"cuttle sensitive value";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the master key must be {KEY_BYTES} bytes, base64- or hex-encoded")]
    InvalidKey,
    #[error("could not read or create the master key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the master key file {path} is readable by other users (mode {mode:o}); make it 0600")]
    KeyFileTooOpen { path: PathBuf, mode: u32 },
    #[error("a stored secret is not a sealed value")]
    NotSealed,
    #[error(
        "a stored secret could not be opened: it is damaged or was sealed with another master key"
    )]
    CannotOpen,
}

/// Where a master key came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    ExistingFile(PathBuf),
    CreatedFile(PathBuf),
}

/// The master key. Its bytes are wiped from memory when dropped and never printed.
pub struct MasterKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// A key from its text form: 32 bytes as base64 or as 64 hex digits.
    pub fn from_text(text: &str) -> Result<MasterKey, SecretError> {
        let text = text.trim();
        let bytes = Zeroizing::new(
            if text.len() == KEY_BYTES * 2 && text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                decode_hex(text).ok_or(SecretError::InvalidKey)?
            } else {
                BASE64.decode(text).map_err(|_| SecretError::InvalidKey)?
            },
        );
        MasterKey::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<MasterKey, SecretError> {
        if bytes.len() != KEY_BYTES {
            return Err(SecretError::InvalidKey);
        }
        Ok(MasterKey {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)),
        })
    }

    /// The key from `environment_value` (`CUTTLE_MASTER_KEY`) when given, else from
    /// `master.key` in `data_directory`, created with mode 0600 when absent.
    pub fn load_or_create(
        environment_value: Option<&str>,
        data_directory: &Path,
    ) -> Result<(MasterKey, KeySource), SecretError> {
        if let Some(text) = environment_value {
            return Ok((MasterKey::from_text(text)?, KeySource::Environment));
        }
        let path = data_directory.join(MASTER_KEY_FILE_NAME);
        let file_error = |source| SecretError::KeyFile {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                check_private(&path)?;
                Ok((MasterKey::from_text(&text)?, KeySource::ExistingFile(path)))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_directory).map_err(file_error)?;
                let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, bytes.as_mut());
                let text = Zeroizing::new(BASE64.encode(bytes.as_ref()));
                // Written whole to a private temporary file, then linked into place: the link
                // fails if another process got there first, and then its key, complete by
                // then, is the one to use.
                let temporary = data_directory.join(format!(
                    ".{MASTER_KEY_FILE_NAME}.{:016x}.tmp",
                    rand::random::<u64>()
                ));
                write_private_file(&temporary, text.as_bytes()).map_err(file_error)?;
                let linked = std::fs::hard_link(&temporary, &path);
                let _removed = std::fs::remove_file(&temporary);
                match linked {
                    Ok(()) => Ok((
                        MasterKey::from_bytes(bytes.as_ref())?,
                        KeySource::CreatedFile(path),
                    )),
                    Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                        let text = std::fs::read_to_string(&path).map_err(file_error)?;
                        check_private(&path)?;
                        Ok((MasterKey::from_text(&text)?, KeySource::ExistingFile(path)))
                    }
                    Err(error) => Err(file_error(error)),
                }
            }
            Err(error) => Err(file_error(error)),
        }
    }

    /// Seals a secret for storage.
    pub fn seal(&self, plaintext: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut rand::rngs::OsRng);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: ASSOCIATED_DATA,
        };
        // Encryption with a valid key and a 96-bit nonce cannot fail for inputs this size
        // (AES-GCM's limit is 64 GiB); fall back to an unopenable value rather than panic.
        let ciphertext = self.cipher.encrypt(&nonce, payload).unwrap_or_default();
        let mut sealed = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}", BASE64.encode(sealed))
    }

    /// Opens a value made by [`MasterKey::seal`] with this key.
    pub fn open(&self, sealed: &str) -> Result<Zeroizing<String>, SecretError> {
        let encoded = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(SecretError::NotSealed)?;
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| SecretError::CannotOpen)?;
        if bytes.len() < NONCE_BYTES {
            return Err(SecretError::CannotOpen);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let payload = Payload {
            msg: ciphertext,
            aad: ASSOCIATED_DATA,
        };
        let plaintext = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| SecretError::CannotOpen)?;
        String::from_utf8(plaintext)
            .map(Zeroizing::new)
            .map_err(|_| SecretError::CannotOpen)
    }

    /// Whether `value` looks like a sealed value (it may still fail to open).
    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(SEALED_PREFIX)
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(text.get(index..index + 2)?, 16).ok())
        .collect()
}

#[cfg(unix)]
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Refuses a key file that group or others can read: a leaked key opens every secret.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), SecretError> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = std::fs::metadata(path).map_err(|source| SecretError::KeyFile {
        path: path.to_owned(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::KeyFileTooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), SecretError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_text(&"11".repeat(32)).unwrap()
    }

    #[test]
    fn sealed_values_open_only_with_their_key() {
        let sealed = key().seal("hunter2");
        assert!(MasterKey::is_sealed(&sealed));
        assert!(!sealed.contains("hunter2"));
        assert_eq!(key().open(&sealed).unwrap().as_str(), "hunter2");
        let other = MasterKey::from_text(&"22".repeat(32)).unwrap();
        assert!(matches!(other.open(&sealed), Err(SecretError::CannotOpen)));
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        assert_ne!(key().seal("same"), key().seal("same"));
    }

    #[test]
    fn damaged_values_do_not_open() {
        let sealed = key().seal("value");
        let mut damaged = sealed.clone();
        damaged.pop();
        damaged.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(key().open(&damaged).is_err());
        assert!(matches!(key().open("plain"), Err(SecretError::NotSealed)));
        assert!(key().open("aes256gcm:v1:!!").is_err());
        assert!(key().open("aes256gcm:v1:").is_err());
    }

    #[test]
    fn keys_must_be_32_bytes() {
        assert!(MasterKey::from_text("short").is_err());
        assert!(MasterKey::from_text(&BASE64.encode([7u8; 32])).is_ok());
        assert!(MasterKey::from_text(&BASE64.encode([7u8; 31])).is_err());
    }

    #[test]
    fn the_key_file_is_created_private_and_reused() {
        let directory = tempfile::tempdir().unwrap();
        let (first, source) = MasterKey::load_or_create(None, directory.path()).unwrap();
        assert!(matches!(source, KeySource::CreatedFile(_)));
        let sealed = first.seal("kept");
        let (second, source) = MasterKey::load_or_create(None, directory.path()).unwrap();
        assert!(matches!(source, KeySource::ExistingFile(_)));
        assert_eq!(second.open(&sealed).unwrap().as_str(), "kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let path = directory.path().join(MASTER_KEY_FILE_NAME);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                MasterKey::load_or_create(None, directory.path()),
                Err(SecretError::KeyFileTooOpen { .. })
            ));
        }
    }

    #[test]
    fn processes_creating_the_key_at_once_agree_on_one() {
        let directory = tempfile::tempdir().unwrap();
        let sealed: Vec<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        let (key, _) = MasterKey::load_or_create(None, directory.path()).unwrap();
                        key.seal("shared")
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join().unwrap())
                .collect()
        });
        let (key, _) = MasterKey::load_or_create(None, directory.path()).unwrap();
        for value in sealed {
            assert_eq!(key.open(&value).unwrap().as_str(), "shared");
        }
        let leftovers = std::fs::read_dir(directory.path()).unwrap().count();
        assert_eq!(leftovers, 1, "only master.key remains");
    }

    #[test]
    fn debug_output_hides_the_key() {
        assert_eq!(format!("{:?}", key()), "MasterKey(…)");
    }
}
