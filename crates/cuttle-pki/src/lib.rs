//! TLS identities and mutual TLS pinned by thumbprint, for the link between server and agents.
//!
//! Each side (server node, agent) has an [`Identity`]: a self-signed certificate and its private
//! key, created once in its data directory and reused. Trust is pinning, not a CA: a peer is
//! accepted when the SHA-256 thumbprint of its certificate (64 upper-case hex digits) is one the
//! other side was told to trust, during registration or by configuration. Certificate dates,
//! names and chains are not checked; the handshake signatures are, against the pinned
//! certificate's own key.
//!
//! [`server_config`] and [`client_config`] build rustls configurations for either direction of
//! the link (listening agents accept the server's connections, polling agents dial the server):
//! TLS 1.3 only, client certificate required, ALPN `h2` then `http/1.1`, no session resumption
//! (so every connection is checked against the trust set as it is at that moment).
//!
//! What this crate does not do: decide whom to trust or store the trust list (the server's
//! store and the agent's configuration do), listen or dial (the agent and server do, with
//! tokio-rustls), nor rotate certificates (a new identity is a new thumbprint that peers must be
//! told about; [`client_config`] accepts several expected thumbprints for the overlap).

mod identity;
mod thumbprint;
mod tls;

use std::path::PathBuf;

pub use identity::{CERTIFICATE_FILE_NAME, Identity, PRIVATE_KEY_FILE_NAME};
pub use thumbprint::{normalize_thumbprint, thumbprint_of_der};
pub use tls::{
    ALPN_H2, ALPN_HTTP1, PeerRole, ThumbprintSet, TrustedThumbprints, UntrustedPeer, client_config,
    client_config_trusting, find_untrusted_peer, peer_thumbprint, server_config,
};

/// The rustls this crate builds its configurations with, so callers name the same types.
pub use rustls;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("could not generate a self-signed certificate: {0}")]
    Generate(#[source] rcgen::Error),
    #[error("could not read or write {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the private key file {path} is readable by other users (mode {mode:o}); make it 0600")]
    KeyFileTooOpen { path: PathBuf, mode: u32 },
    #[error(
        "found {present} but not {missing}; hint: restore the missing file, or remove both to \
         create a new identity, whose thumbprint peers must then be told to trust"
    )]
    IncompleteIdentity { present: PathBuf, missing: PathBuf },
    #[error("{origin} does not hold a usable PEM certificate: {reason}")]
    InvalidCertificate { origin: String, reason: String },
    /// Deliberately without detail: the reason could quote the key's text.
    #[error("{origin} does not hold a usable PEM private key (PKCS#8, SEC1 or PKCS#1)")]
    InvalidPrivateKey { origin: String },
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error(
        "{text:?} is not a SHA-256 certificate thumbprint (64 hex digits, optionally separated \
         by colons or spaces)"
    )]
    InvalidThumbprint { text: String },
    #[error("a TLS client configuration needs at least one expected server thumbprint")]
    NoExpectedThumbprints,
    #[error("could not build the TLS configuration: {0}")]
    Tls(#[source] rustls::Error),
}
