//! A node's TLS identity: a self-signed certificate and its private key, kept as two PEM files
//! in a data directory.
//!
//! The key is ECDSA P-256, the certificate valid for 100 years from its creation: pinning, not
//! expiry, is the trust model, and a certificate that expired would silently break every agent.
//! The key file is created with mode 0600 and refused when group or others can read it.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;

use crate::{PkiError, thumbprint_of_der};

/// The certificate's file name inside the identity directory.
pub const CERTIFICATE_FILE_NAME: &str = "certificate.pem";
/// The private key's file name inside the identity directory.
pub const PRIVATE_KEY_FILE_NAME: &str = "private-key.pem";

/// 100 years, leap days included.
const VALIDITY_DAYS: i64 = 36_525;

/// A certificate and its private key. `Debug` shows the thumbprint, never the key.
pub struct Identity {
    certificate: CertificateDer<'static>,
    certificate_pem: String,
    private_key: PrivateKeyDer<'static>,
    thumbprint: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Identity")
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl Clone for Identity {
    fn clone(&self) -> Identity {
        Identity {
            certificate: self.certificate.clone(),
            certificate_pem: self.certificate_pem.clone(),
            private_key: self.private_key.clone_key(),
            thumbprint: self.thumbprint.clone(),
        }
    }
}

impl Identity {
    /// The identity stored in `directory` (`certificate.pem` and `private-key.pem`), or a new
    /// one for `common_name` written there when neither file exists. The flag is `true` when
    /// the identity was created by this call.
    ///
    /// One file without the other is an error rather than a reason to start over: a new
    /// identity has a new thumbprint, which every peer would have to be told to trust.
    pub fn load_or_create(
        directory: &Path,
        common_name: &str,
    ) -> Result<(Identity, bool), PkiError> {
        let certificate_path = directory.join(CERTIFICATE_FILE_NAME);
        let key_path = directory.join(PRIVATE_KEY_FILE_NAME);
        match (exists(&certificate_path)?, exists(&key_path)?) {
            (true, true) => {
                check_private(&key_path)?;
                let certificate_pem = read_file(&certificate_path)?;
                let key_pem = zeroize::Zeroizing::new(read_file(&key_path)?);
                let identity = Identity::from_pem_with_origins(
                    &certificate_pem,
                    &key_pem,
                    &certificate_path.display().to_string(),
                    &key_path.display().to_string(),
                )?;
                Ok((identity, false))
            }
            (false, false) => {
                let (identity, key_pem) = Identity::generate_with_key_pem(common_name)?;
                std::fs::create_dir_all(directory).map_err(|source| PkiError::File {
                    path: directory.to_owned(),
                    source,
                })?;
                // The key first: a crash between the two leaves a key without a certificate,
                // which the next start reports instead of silently replacing.
                write_file_atomically(&key_path, key_pem.as_bytes(), 0o600)?;
                write_file_atomically(
                    &certificate_path,
                    identity.certificate_pem.as_bytes(),
                    0o644,
                )?;
                Ok((identity, true))
            }
            (true, false) => Err(PkiError::IncompleteIdentity {
                present: certificate_path,
                missing: key_path,
            }),
            (false, true) => Err(PkiError::IncompleteIdentity {
                present: key_path,
                missing: certificate_path,
            }),
        }
    }

    /// A new identity held only in memory (tests, or a caller that stores it elsewhere).
    pub fn generate(common_name: &str) -> Result<Identity, PkiError> {
        Ok(Identity::generate_with_key_pem(common_name)?.0)
    }

    /// A new identity and its private key as PEM text, for a caller that stores identities
    /// itself (the server keeps its own in the database, sealed, so all nodes share it).
    pub fn generate_with_private_key_pem(
        common_name: &str,
    ) -> Result<(Identity, zeroize::Zeroizing<String>), PkiError> {
        Identity::generate_with_key_pem(common_name)
    }

    /// An identity from PEM text (an imported certificate, say). The key may be PKCS#8, SEC1 or
    /// PKCS#1, of any type rustls signs with; it must belong to the certificate.
    pub fn from_pem(certificate_pem: &str, private_key_pem: &str) -> Result<Identity, PkiError> {
        Identity::from_pem_with_origins(
            certificate_pem,
            private_key_pem,
            "the certificate text",
            "the private key text",
        )
    }

    /// The SHA-256 thumbprint of the certificate: 64 upper-case hex digits.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The certificate, DER-encoded (it dereferences to `[u8]`).
    pub fn certificate_der(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// The private key, DER-encoded; `clone_key()` gives an owned copy for rustls.
    pub fn private_key_der(&self) -> &PrivateKeyDer<'static> {
        &self.private_key
    }

    /// The certificate as PEM text, to show or hand to a peer; it holds nothing secret.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    fn generate_with_key_pem(
        common_name: &str,
    ) -> Result<(Identity, zeroize::Zeroizing<String>), PkiError> {
        let key_pair =
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(PkiError::Generate)?;
        let mut params = CertificateParams::default();
        let mut distinguished_name = DistinguishedName::new();
        distinguished_name.push(DnType::CommonName, common_name);
        params.distinguished_name = distinguished_name;
        params.subject_alt_names = subject_alt_names(common_name);
        let now = time::OffsetDateTime::now_utc();
        // A day's slack for peers whose clocks lag, should anything ever look at the dates.
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(VALIDITY_DAYS);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let certificate = params.self_signed(&key_pair).map_err(PkiError::Generate)?;
        let key_pem = zeroize::Zeroizing::new(key_pair.serialize_pem());
        let identity = Identity {
            thumbprint: thumbprint_of_der(certificate.der()),
            certificate_pem: certificate.pem(),
            certificate: certificate.der().clone(),
            private_key: PrivateKeyDer::Pkcs8(key_pair.serialize_der().into()),
        };
        Ok((identity, key_pem))
    }

    fn from_pem_with_origins(
        certificate_pem: &str,
        private_key_pem: &str,
        certificate_origin: &str,
        key_origin: &str,
    ) -> Result<Identity, PkiError> {
        let invalid_certificate = |reason: String| PkiError::InvalidCertificate {
            origin: certificate_origin.to_owned(),
            reason,
        };
        let invalid_key = || PkiError::InvalidPrivateKey {
            origin: key_origin.to_owned(),
        };
        let certificate = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
            .map_err(|error| invalid_certificate(error.to_string()))?;
        ParsedCertificate::try_from(&certificate)
            .map_err(|error| invalid_certificate(error.to_string()))?;
        let private_key =
            PrivateKeyDer::from_pem_slice(private_key_pem.as_bytes()).map_err(|_| invalid_key())?;
        let provider = rustls::crypto::ring::default_provider();
        check_key_matches(&provider, &certificate, &private_key, invalid_key)?;
        Ok(Identity {
            thumbprint: thumbprint_of_der(&certificate),
            certificate_pem: certificate_pem.trim().to_owned() + "\n",
            certificate,
            private_key,
        })
    }
}

/// The names the certificate is issued for. Nothing checks them (peers pin the thumbprint),
/// but tools that show a certificate, or a browser on the agent's port, find them reasonable.
fn subject_alt_names(common_name: &str) -> Vec<SanType> {
    let mut names = Vec::new();
    if let Ok(address) = common_name.parse::<IpAddr>() {
        names.push(SanType::IpAddress(address));
    } else if looks_like_host_name(common_name)
        && let Ok(name) = common_name.try_into()
    {
        names.push(SanType::DnsName(name));
    }
    if !common_name.eq_ignore_ascii_case("localhost")
        && let Ok(name) = "localhost".try_into()
    {
        names.push(SanType::DnsName(name));
    }
    for address in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        if !names.contains(&SanType::IpAddress(address)) {
            names.push(SanType::IpAddress(address));
        }
    }
    names
}

fn looks_like_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        })
}

fn check_key_matches(
    provider: &CryptoProvider,
    certificate: &CertificateDer<'static>,
    private_key: &PrivateKeyDer<'static>,
    invalid_key: impl Fn() -> PkiError,
) -> Result<(), PkiError> {
    let signing_key = provider
        .key_provider
        .load_private_key(private_key.clone_key())
        .map_err(|_| invalid_key())?;
    match CertifiedKey::new(vec![certificate.clone()], signing_key).keys_match() {
        // Some key types cannot tell their public key; the handshake will fail if they differ.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(_) => Err(PkiError::KeyMismatch),
    }
}

fn exists(path: &Path) -> Result<bool, PkiError> {
    path.try_exists().map_err(|source| PkiError::File {
        path: path.to_owned(),
        source,
    })
}

fn read_file(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::File {
        path: path.to_owned(),
        source,
    })
}

/// Writes `contents` to a fresh temporary file with `mode` beside `path`, then renames it into
/// place, so `path` never holds half a file.
fn write_file_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let mut temporary_name = path.file_name().unwrap_or_default().to_owned();
    temporary_name.push(".partial");
    let temporary_path: PathBuf = path.with_file_name(temporary_name);
    let file_error = |source| PkiError::File {
        path: path.to_owned(),
        source,
    };
    // A leftover from a crash may have other permissions; `mode` applies only to new files.
    match std::fs::remove_file(&temporary_path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(file_error(error));
        }
        _ => {}
    }
    let mut file = open_new(&temporary_path, mode).map_err(file_error)?;
    file.write_all(contents).map_err(file_error)?;
    file.sync_all().map_err(file_error)?;
    drop(file);
    std::fs::rename(&temporary_path, path).map_err(file_error)
}

#[cfg(unix)]
fn open_new(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

#[cfg(not(unix))]
fn open_new(path: &Path, _mode: u32) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// Refuses a key file that group or others can read: whoever reads it can pose as this node.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), PkiError> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = std::fs::metadata(path).map_err(|source| PkiError::File {
        path: path.to_owned(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PkiError::KeyFileTooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), PkiError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_become_dns_names_and_others_are_left_out() {
        let names = subject_alt_names("agent-1.example.com");
        assert_eq!(names.len(), 4);
        assert!(
            matches!(&names[0], SanType::DnsName(name) if name.as_str() == "agent-1.example.com")
        );
        let names = subject_alt_names("Cuttle Agent");
        assert_eq!(names.len(), 3, "{names:?}");
        let names = subject_alt_names("127.0.0.1");
        assert_eq!(names.len(), 3, "{names:?}");
        let names = subject_alt_names("localhost");
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn debug_output_hides_the_key() {
        let identity = Identity::generate("test").unwrap();
        let debug = format!("{identity:?}");
        assert_eq!(
            debug,
            format!("Identity {{ thumbprint: {:?}, .. }}", identity.thumbprint())
        );
    }
}
