//! Mutual TLS configurations that trust a peer by its certificate's thumbprint.
//!
//! Both directions pin: the server side asks a [`TrustedThumbprints`] at every handshake (the
//! set grows as agents register), the client side compares with a fixed list of expected
//! thumbprints ([`client_config`]) or asks a [`TrustedThumbprints`] too
//! ([`client_config_trusting`], for an agent whose trust changes while it runs). No CA, no names, no dates: a self-signed certificate is trusted for being the
//! one pinned, and the peer proves it holds the key by signing the handshake, which is checked
//! with the certificate's own public key.
//!
//! A refused peer is logged at WARN with its thumbprint and the handshake fails here with
//! `rustls::Error::InvalidCertificate` holding an [`UntrustedPeer`] ([`find_untrusted_peer`]
//! digs it out, and its `Display` is the message to show: rustls prints it in `Debug` form).
//! The refused peer receives a `certificate_unknown` alert.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, Resumption};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, ServerConfig};
use rustls::{
    CertificateError, CommonState, DigitallySignedStruct, DistinguishedName, OtherError,
    SignatureScheme,
};

use crate::{Identity, PkiError, normalize_thumbprint, thumbprint_of_der};

/// The ALPN protocol id of HTTP/2, offered first.
pub const ALPN_H2: &[u8] = b"h2";
/// The ALPN protocol id of HTTP/1.1, offered second.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Both ends are Cuttle, so there is no older peer to accommodate; TLS 1.3 also encrypts the
/// client certificate, which TLS 1.2 sends in the clear.
static PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// The client certificates a server accepts, asked at every handshake.
///
/// `thumbprint` is always canonical: 64 upper-case hex digits.
pub trait TrustedThumbprints: Send + Sync {
    fn is_trusted(&self, thumbprint: &str) -> bool;
}

/// A set of trusted thumbprints that can change while connections are being accepted.
#[derive(Debug, Default)]
pub struct ThumbprintSet {
    thumbprints: RwLock<HashSet<String>>,
}

impl ThumbprintSet {
    pub fn new() -> ThumbprintSet {
        ThumbprintSet::default()
    }

    /// A set holding `thumbprints`, each in any form [`normalize_thumbprint`] accepts.
    pub fn with_thumbprints<I, S>(thumbprints: I) -> Result<ThumbprintSet, PkiError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let set = ThumbprintSet::new();
        set.replace_all(thumbprints)?;
        Ok(set)
    }

    /// Trusts `thumbprint` from now on; `true` when it was not trusted before.
    pub fn add(&self, thumbprint: &str) -> Result<bool, PkiError> {
        let canonical = canonical(thumbprint)?;
        Ok(self.write().insert(canonical))
    }

    /// Stops trusting `thumbprint` for new connections; `true` when it was trusted. Connections
    /// already open stay open: close them too.
    pub fn remove(&self, thumbprint: &str) -> bool {
        normalize_thumbprint(thumbprint).is_some_and(|canonical| self.write().remove(&canonical))
    }

    pub fn contains(&self, thumbprint: &str) -> bool {
        normalize_thumbprint(thumbprint).is_some_and(|canonical| self.read().contains(&canonical))
    }

    /// Replaces the whole set, as when reloading it from the store. Nothing changes when one of
    /// `thumbprints` is invalid.
    pub fn replace_all<I, S>(&self, thumbprints: I) -> Result<(), PkiError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let replacement = thumbprints
            .into_iter()
            .map(|thumbprint| canonical(thumbprint.as_ref()))
            .collect::<Result<HashSet<_>, _>>()?;
        *self.write() = replacement;
        Ok(())
    }

    /// The trusted thumbprints, sorted.
    pub fn to_vec(&self) -> Vec<String> {
        let mut thumbprints: Vec<String> = self.read().iter().cloned().collect();
        thumbprints.sort_unstable();
        thumbprints
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    // The set stays consistent whatever a panicking holder was doing: each change is one call.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashSet<String>> {
        self.thumbprints
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashSet<String>> {
        self.thumbprints
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl TrustedThumbprints for ThumbprintSet {
    fn is_trusted(&self, thumbprint: &str) -> bool {
        self.read().contains(thumbprint)
    }
}

/// Which end of the TLS connection presented the refused certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// The dialing side, refused by a server configuration.
    Client,
    /// The listening side, refused by a client configuration.
    Server,
}

impl std::fmt::Display for PeerRole {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            PeerRole::Client => "client",
            PeerRole::Server => "server",
        })
    }
}

/// Why a handshake was refused here: the peer's certificate is not pinned. Retrying will not
/// help until someone trusts the thumbprint (or fixes the expected one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the TLS {peer} presented a certificate with thumbprint {thumbprint}, which is not trusted"
)]
pub struct UntrustedPeer {
    pub peer: PeerRole,
    pub thumbprint: String,
}

/// The [`UntrustedPeer`] behind a failed handshake, if that is why it failed here. Looks
/// through `std::io::Error` (as tokio-rustls returns), `rustls::Error` and error sources.
///
/// Only the side that refused sees this; its peer gets a TLS alert
/// (`rustls::Error::AlertReceived`).
pub fn find_untrusted_peer<'error>(
    error: &'error (dyn std::error::Error + 'static),
) -> Option<&'error UntrustedPeer> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(untrusted) = error.downcast_ref::<UntrustedPeer>() {
            return Some(untrusted);
        }
        if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) =
            error.downcast_ref::<rustls::Error>()
        {
            return other.0.downcast_ref::<UntrustedPeer>();
        }
        // `io::Error::source` skips the error it wraps, so step into it by hand.
        current = match error.downcast_ref::<std::io::Error>() {
            Some(io_error) => io_error
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}

/// The thumbprint of the certificate the peer presented on an established connection: for
/// tokio-rustls, `peer_thumbprint(stream.get_ref().1)` on either a server or a client stream.
pub fn peer_thumbprint(connection: &CommonState) -> Option<String> {
    connection
        .peer_certificates()?
        .first()
        .map(|certificate| thumbprint_of_der(certificate))
}

/// A server configuration presenting `identity` and requiring a client certificate whose
/// thumbprint `trusted_clients` trusts at the moment of the handshake.
pub fn server_config(
    identity: &Identity,
    trusted_clients: Arc<dyn TrustedThumbprints>,
) -> Result<Arc<ServerConfig>, PkiError> {
    let provider = provider();
    let verifier = Arc::new(PinnedClientVerifier {
        trusted_clients,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(PkiError::Tls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![identity.certificate_der().clone()],
            identity.private_key_der().clone_key(),
        )
        .map_err(PkiError::Tls)?;
    config.alpn_protocols = alpn_protocols();
    // A resumed session skips the client certificate check, so a thumbprint removed from the
    // set would still get in: every connection does a full handshake instead.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// A client configuration presenting `identity` and accepting only a server whose certificate
/// has one of `expected_server_thumbprints` (several during a certificate rotation).
///
/// The server name given to the connector is not checked; any name, or an IP address (which
/// sends no SNI), will do.
pub fn client_config(
    identity: &Identity,
    expected_server_thumbprints: Vec<String>,
) -> Result<Arc<ClientConfig>, PkiError> {
    if expected_server_thumbprints.is_empty() {
        return Err(PkiError::NoExpectedThumbprints);
    }
    let expected = ThumbprintSet::with_thumbprints(expected_server_thumbprints)?;
    client_config_trusting(identity, Arc::new(expected))
}

/// A client configuration presenting `identity` and accepting only a server whose certificate
/// `trusted_servers` trusts at the moment of the handshake (a [`ThumbprintSet`] that is
/// reloaded while connections are made).
pub fn client_config_trusting(
    identity: &Identity,
    trusted_servers: Arc<dyn TrustedThumbprints>,
) -> Result<Arc<ClientConfig>, PkiError> {
    let provider = provider();
    let verifier = Arc::new(PinnedServerVerifier {
        trusted_servers,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(PkiError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(
            vec![identity.certificate_der().clone()],
            identity.private_key_der().clone_key(),
        )
        .map_err(PkiError::Tls)?;
    config.alpn_protocols = alpn_protocols();
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn alpn_protocols() -> Vec<Vec<u8>> {
    vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()]
}

fn canonical(thumbprint: &str) -> Result<String, PkiError> {
    normalize_thumbprint(thumbprint).ok_or_else(|| PkiError::InvalidThumbprint {
        text: thumbprint.to_owned(),
    })
}

fn refusal(peer: PeerRole, thumbprint: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
        UntrustedPeer { peer, thumbprint },
    ))))
}

struct PinnedClientVerifier {
    trusted_clients: Arc<dyn TrustedThumbprints>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl std::fmt::Debug for PinnedClientVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PinnedClientVerifier")
    }
}

impl ClientCertVerifier for PinnedClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let thumbprint = thumbprint_of_der(end_entity);
        if self.trusted_clients.is_trusted(&thumbprint) {
            tracing::debug!(%thumbprint, "accepted a trusted TLS client certificate");
            Ok(ClientCertVerified::assertion())
        } else {
            tracing::warn!(
                %thumbprint,
                "refused a TLS client: its certificate's thumbprint is not trusted"
            );
            Err(refusal(PeerRole::Client, thumbprint))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The certificate is self-signed and pinned: its own key is the one to check with.
        rustls::crypto::verify_tls12_signature(message, certificate, signature, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The certificate is self-signed and pinned: its own key is the one to check with.
        rustls::crypto::verify_tls13_signature(message, certificate, signature, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

struct PinnedServerVerifier {
    trusted_servers: Arc<dyn TrustedThumbprints>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl std::fmt::Debug for PinnedServerVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PinnedServerVerifier")
    }
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let thumbprint = thumbprint_of_der(end_entity);
        if self.trusted_servers.is_trusted(&thumbprint) {
            Ok(ServerCertVerified::assertion())
        } else {
            tracing::warn!(
                %thumbprint,
                "refused a TLS server: its certificate's thumbprint is not the one expected"
            );
            Err(refusal(PeerRole::Server, thumbprint))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The certificate is self-signed and pinned: its own key is the one to check with.
        rustls::crypto::verify_tls12_signature(message, certificate, signature, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The certificate is self-signed and pinned: its own key is the one to check with.
        rustls::crypto::verify_tls13_signature(message, certificate, signature, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
