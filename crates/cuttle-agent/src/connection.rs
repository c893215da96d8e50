//! What both ends of an agent connection share: HTTP/2 settings (keep-alive pings, timeouts),
//! serving the agent's router on one connection, and telling a refused TLS peer from a
//! network failure.
//!
//! The h2 keep-alive ping runs on both sides, so a dead peer (a dropped NAT entry, a pulled
//! cable) is noticed within [`KEEP_ALIVE_INTERVAL`] + [`KEEP_ALIVE_TIMEOUT`] even while no call
//! is in flight, and the connection is closed and (for a polling agent) dialled again.

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use axum::Router;
use cuttle_pki::rustls;
use cuttle_pki::{UntrustedPeer, find_untrusted_peer};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};

/// How often an idle connection is pinged.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// How long a ping may go unanswered before the connection is closed.
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a TCP connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a TLS handshake may take.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a connection could not be used, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// A certificate was not trusted, by this side (`untrusted` says whose) or by the peer
    /// (a TLS alert). Retrying will not help until the trust is fixed.
    Refused {
        reason: String,
        untrusted: Option<UntrustedPeer>,
    },
    /// The network: connect refused or timed out, the connection dropped. Retrying may help.
    Unreachable { reason: String },
}

impl Failure {
    pub(crate) fn reason(&self) -> &str {
        match self {
            Failure::Refused { reason, .. } | Failure::Unreachable { reason } => reason,
        }
    }
}

/// Classifies an error from connecting, a TLS handshake or an HTTP/2 connection.
pub(crate) fn classify(error: &(dyn StdError + 'static)) -> Failure {
    if let Some(untrusted) = find_untrusted_peer(error) {
        return Failure::Refused {
            reason: untrusted.to_string(),
            untrusted: Some(untrusted.clone()),
        };
    }
    if let Some(description) = refusal_alert(error) {
        return Failure::Refused {
            reason: format!(
                "the peer refused this side's certificate (TLS alert {description:?}); \
                 hint: check that it trusts this side's thumbprint"
            ),
            untrusted: None,
        };
    }
    Failure::Unreachable {
        reason: describe_chain(error),
    }
}

/// The TLS alert a peer sent to refuse our certificate, if that is what ended the connection.
fn refusal_alert(error: &(dyn StdError + 'static)) -> Option<rustls::AlertDescription> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(rustls::Error::AlertReceived(description)) =
            error.downcast_ref::<rustls::Error>()
        {
            return REFUSAL_ALERTS.contains(description).then_some(*description);
        }
        // h2 keeps only the kind and text of an I/O error, so the rustls error behind a
        // failed connection may survive only as its message.
        let message = error.to_string();
        if let Some(description) = REFUSAL_ALERTS
            .iter()
            .find(|alert| message.contains(&format!("received fatal alert: {alert:?}")))
        {
            return Some(*description);
        }
        current = next_error(error);
    }
    None
}

/// The alerts a TLS peer sends when it does not accept our certificate.
const REFUSAL_ALERTS: [rustls::AlertDescription; 7] = [
    rustls::AlertDescription::CertificateUnknown,
    rustls::AlertDescription::BadCertificate,
    rustls::AlertDescription::UnsupportedCertificate,
    rustls::AlertDescription::CertificateRequired,
    rustls::AlertDescription::UnknownCA,
    rustls::AlertDescription::AccessDenied,
    rustls::AlertDescription::DecryptError,
];

/// The next error in a chain, looking inside `io::Error` and `h2::Error`, whose `source`
/// skips the error they wrap.
fn next_error<'error>(
    error: &'error (dyn StdError + 'static),
) -> Option<&'error (dyn StdError + 'static)> {
    if let Some(io_error) = error.downcast_ref::<std::io::Error>() {
        return io_error
            .get_ref()
            .map(|inner| inner as &(dyn StdError + 'static));
    }
    if let Some(io_error) = error
        .downcast_ref::<h2::Error>()
        .and_then(h2::Error::get_io)
    {
        return Some(io_error as &(dyn StdError + 'static));
    }
    error.source()
}

/// An error and its causes, `outer: inner: innermost`, without repeating a message.
pub(crate) fn describe_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = next_error(error);
    while let Some(cause) = current {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        current = next_error(cause);
    }
    text
}

/// Serves `router` as an HTTP/2 server on `io` (a TLS stream, whichever side dialled) until
/// the peer closes the connection, keep-alive fails, or `shutdown` completes (then in-flight
/// calls finish first).
pub(crate) async fn serve_router<S>(
    io: S,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> Result<(), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    // An adaptive window lets a large upload use the link's bandwidth-delay product instead
    // of HTTP/2's 64 KiB default.
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .adaptive_window(true);
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(router));
    let mut connection = std::pin::pin!(connection);
    let mut shutdown = std::pin::pin!(shutdown);
    tokio::select! {
        result = connection.as_mut() => return result,
        () = shutdown.as_mut() => {}
    }
    connection.as_mut().graceful_shutdown();
    connection.await
}

/// The HTTP/2 client settings of the server's side of a connection.
pub(crate) fn client_builder() -> hyper::client::conn::http2::Builder<TokioExecutor> {
    let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .adaptive_window(true);
    builder
}
