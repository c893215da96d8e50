//! Host key fingerprints: what a target's `Fingerprint` says its SSH host key is.
//!
//! Accepted spellings of the SHA-256 fingerprint (all normalize to OpenSSH's
//! `SHA256:<base64 without padding>`, as `ssh-keygen -lf` prints it):
//! `SHA256:…` (any case of the prefix), the bare base64 (with or without `=` padding), and
//! 64 hex digits (with or without colons). MD5 fingerprints (`aa:bb:…`, Octopus's old
//! default) are refused with a hint: MD5 is too weak to pin a key with.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use russh::keys::{HashAlg, PublicKey};

/// The SHA-256 fingerprint of an SSH host key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostKeyFingerprint([u8; 32]);

/// Why a configured fingerprint cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    #[error("it is empty")]
    Empty,
    #[error(
        "it is an MD5 fingerprint; hint: use the SHA256 one, as `ssh-keygen -lf <host key>.pub` prints it"
    )]
    Md5,
    #[error(
        "it is neither SHA256:<base64> nor 64 hex digits; hint: `ssh-keygen -lf <host key>.pub` prints it"
    )]
    Malformed,
}

impl HostKeyFingerprint {
    /// Parses any accepted spelling (see the module docs).
    pub fn parse(text: &str) -> Result<HostKeyFingerprint, FingerprintError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(FingerprintError::Empty);
        }
        let body = strip_prefix_ignoring_case(text, "SHA256:").unwrap_or(text);
        if strip_prefix_ignoring_case(text, "MD5:").is_some() {
            return Err(FingerprintError::Md5);
        }
        let hex_digits: String = body.chars().filter(|character| *character != ':').collect();
        if hex_digits.len() == 32 && body.contains(':') && hex::decode(&hex_digits).is_ok() {
            return Err(FingerprintError::Md5);
        }
        let hex_bytes = (hex_digits.len() == 64)
            .then(|| hex::decode(&hex_digits).ok())
            .flatten();
        if let Some(bytes) = hex_bytes {
            return HostKeyFingerprint::from_slice(&bytes);
        }
        let bytes = STANDARD_NO_PAD
            .decode(body.trim_end_matches('='))
            .or_else(|_| STANDARD.decode(body))
            .map_err(|_| FingerprintError::Malformed)?;
        HostKeyFingerprint::from_slice(&bytes)
    }

    /// The fingerprint of `key`.
    pub fn of_key(key: &PublicKey) -> HostKeyFingerprint {
        let fingerprint = key.fingerprint(HashAlg::Sha256);
        let mut bytes = [0u8; 32];
        let digest = fingerprint.as_bytes();
        if digest.len() == bytes.len() {
            bytes.copy_from_slice(digest);
        }
        HostKeyFingerprint(bytes)
    }

    /// The raw SHA-256 digest of the key's wire encoding.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn from_slice(bytes: &[u8]) -> Result<HostKeyFingerprint, FingerprintError> {
        <[u8; 32]>::try_from(bytes)
            .map(HostKeyFingerprint)
            .map_err(|_| FingerprintError::Malformed)
    }
}

fn strip_prefix_ignoring_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

impl std::fmt::Display for HostKeyFingerprint {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "SHA256:{}", STANDARD_NO_PAD.encode(self.0))
    }
}

impl std::fmt::Debug for HostKeyFingerprint {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, formatter)
    }
}

impl std::str::FromStr for HostKeyFingerprint {
    type Err = FingerprintError;

    fn from_str(text: &str) -> Result<HostKeyFingerprint, FingerprintError> {
        HostKeyFingerprint::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `ssh-keygen -lf` of the key in `the_fingerprint_of_a_key_matches_ssh_keygen`, and the
    // same digest in hex.
    const OPENSSH: &str = "SHA256:u7zKTGdZbGJB8wLYjS9TNPRqkXILDi0NG3l6J1nMJ+A";
    const HEX: &str = "bbbcca4c67596c6241f302d88d2f5334f46a91720b0e2d0d1b797a2759cc27e0";

    #[test]
    fn every_accepted_spelling_normalizes_to_the_openssh_form() {
        let bare = OPENSSH.trim_start_matches("SHA256:");
        let colon_hex = HEX
            .as_bytes()
            .chunks(2)
            .map(|pair| std::str::from_utf8(pair).expect("ascii"))
            .collect::<Vec<_>>()
            .join(":");
        for spelling in [
            OPENSSH.to_owned(),
            format!("  sha256:{bare}  "),
            bare.to_owned(),
            format!("{bare}="),
            HEX.to_owned(),
            HEX.to_uppercase(),
            colon_hex,
        ] {
            let parsed = HostKeyFingerprint::parse(&spelling)
                .unwrap_or_else(|error| panic!("{spelling:?}: {error}"));
            assert_eq!(parsed.to_string(), OPENSSH, "{spelling:?}");
        }
    }

    #[test]
    fn md5_and_garbage_are_refused_with_a_hint() {
        assert_eq!(
            HostKeyFingerprint::parse("MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48"),
            Err(FingerprintError::Md5)
        );
        assert_eq!(
            HostKeyFingerprint::parse("16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48"),
            Err(FingerprintError::Md5)
        );
        assert_eq!(HostKeyFingerprint::parse(" "), Err(FingerprintError::Empty));
        assert_eq!(
            HostKeyFingerprint::parse("SHA256:tooshort"),
            Err(FingerprintError::Malformed)
        );
        assert!(FingerprintError::Md5.to_string().contains("ssh-keygen -lf"));
    }

    #[test]
    fn the_fingerprint_of_a_key_matches_ssh_keygen() {
        let key = PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDoo8Mmlvn86bfq6KNvcvteV2KPDPMFw9jnT9om1ZDV/ test",
        )
        .expect("a valid key");
        assert_eq!(HostKeyFingerprint::of_key(&key).to_string(), OPENSSH);
    }
}
