//! Polling mode: the agent dials the server's agent port (10943 by default) with mutual TLS
//! and serves the protocol's router over HTTP/2 on the connection it opened.
//!
//! Roles are reversed on purpose: the agent is the TCP and TLS client but the HTTP/2 server,
//! so the server sends its calls over the agent's own connection as soon as it has them.
//! That is this protocol's long poll: no request queue to poll, no polling delay, and only
//! outbound connections from the agent (NAT and firewalls allowing).
//!
//! The connection is kept alive with HTTP/2 pings. When it drops, or cannot be made, the
//! agent dials again after an exponential backoff (capped, with jitter so a restarted server
//! is not hit by every agent at once); a connection that stayed up for a while resets the
//! backoff. A server whose certificate is not trusted is refused and logged, as is a server
//! that refuses this agent's certificate; both are retried with backoff, since trust can be
//! fixed on either side without restarting the agent. When the agent's own trust changes
//! ([`PollingOptions::trust_changed`]), it dials again at once instead of waiting.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use cuttle_pki::rustls::ClientConfig;
use cuttle_pki::rustls::pki_types::ServerName;
use futures::FutureExt as _;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_rustls::client::TlsStream;

use crate::connection::{
    CONNECT_TIMEOUT, Failure, TLS_HANDSHAKE_TIMEOUT, classify, describe_chain, serve_router,
};
use crate::protocol::DEFAULT_SERVER_AGENT_PORT;

/// How long to wait between attempts to reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait; each failed attempt doubles it.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// A connection that stayed up this long resets the wait to `initial`.
    pub stable_after: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            stable_after: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The next wait after `current`: doubled, at most `max`.
    pub fn next(&self, current: Duration) -> Duration {
        current.saturating_mul(2).min(self.max)
    }

    /// A wait between half of `delay` and all of it, so agents do not reconnect in step.
    pub fn jittered(delay: Duration) -> Duration {
        let half = delay / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// Where and how a polling agent dials.
#[derive(Debug, Clone)]
pub struct PollingOptions {
    /// The server's agent port as `host:port` (a bare host means port 10943).
    pub server_address: String,
    /// From `cuttle_pki::client_config`: the agent's identity and the server thumbprints it
    /// trusts.
    pub tls: Arc<ClientConfig>,
    pub backoff: Backoff,
    /// Notified when the trusted server thumbprints change (see `crate::trust`): a wait
    /// between attempts ends early and the backoff starts over.
    pub trust_changed: Option<Arc<Notify>>,
}

/// Splits `host:port`, `host` or `[v6]:port` into a host (without brackets) and a port.
pub fn parse_host_port(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let text = text.trim();
    let invalid = || format!("{text:?} is not HOST:PORT");
    if text.is_empty() || text.contains('/') || text.contains(char::is_whitespace) {
        return Err(invalid());
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(invalid)?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().map_err(|_| invalid())?,
            None if after.is_empty() => default_port,
            None => return Err(invalid()),
        };
        return Ok((host.to_owned(), port));
    }
    match text.rsplit_once(':') {
        // More than one colon without brackets: a bare IPv6 address.
        Some((host, _)) if host.contains(':') => Ok((text.to_owned(), default_port)),
        Some((host, port)) if !host.is_empty() => {
            Ok((host.to_owned(), port.parse().map_err(|_| invalid())?))
        }
        Some(_) => Err(invalid()),
        None => Ok((text.to_owned(), default_port)),
    }
}

/// Dials the server and serves `router` on each connection, reconnecting with backoff, until
/// `shutdown` completes (calls in flight then finish). `on_connected` is told the server's
/// address each time a connection is established.
pub async fn run_polling(
    options: PollingOptions,
    router: Router,
    mut on_connected: impl FnMut(&str),
    shutdown: impl Future<Output = ()>,
) {
    let shutdown = shutdown.shared();
    let backoff = options.backoff;
    let mut delay = backoff.initial;
    loop {
        let attempt = tokio::select! {
            attempt = connect(&options) => attempt,
            () = shutdown.clone() => break,
        };
        match attempt {
            Ok(stream) => {
                let thumbprint =
                    cuttle_pki::peer_thumbprint(stream.get_ref().1).unwrap_or_default();
                tracing::info!(server = %options.server_address, %thumbprint, "connected to the server");
                on_connected(&options.server_address);
                let connected_at = Instant::now();
                let served = serve_router(stream, router.clone(), shutdown.clone()).await;
                if shutdown.peek().is_some() {
                    break;
                }
                match served {
                    Ok(()) => tracing::info!(
                        server = %options.server_address,
                        "the server closed the connection"
                    ),
                    Err(error) => log_failure(&options.server_address, &classify(&error)),
                }
                if connected_at.elapsed() >= backoff.stable_after {
                    delay = backoff.initial;
                }
            }
            Err(failure) => log_failure(&options.server_address, &failure),
        }
        let wait = Backoff::jittered(delay);
        tracing::info!(server = %options.server_address, "connecting again in {wait:?}");
        let trust_changed = async {
            match &options.trust_changed {
                Some(changed) => changed.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => delay = backoff.next(delay),
            () = trust_changed => {
                tracing::info!(server = %options.server_address, "the trusted server thumbprints changed: connecting again now");
                delay = backoff.initial;
            }
            () = shutdown.clone() => break,
        }
    }
    tracing::info!(server = %options.server_address, "stopped polling the server");
}

fn log_failure(server: &str, failure: &Failure) {
    match failure {
        Failure::Refused {
            untrusted: Some(untrusted),
            ..
        } => tracing::warn!(
            %server,
            thumbprint = %untrusted.thumbprint,
            "refused the server: {untrusted}; hint: `cuttle agent trust --thumbprint` it if it is yours"
        ),
        Failure::Refused { reason, .. } => tracing::warn!(
            %server,
            "the server refused this agent: {reason}"
        ),
        Failure::Unreachable { reason } => tracing::warn!(
            %server,
            "lost or could not make the connection to the server: {reason}"
        ),
    }
}

/// One attempt: TCP, then TLS pinned to the server's thumbprints.
async fn connect(options: &PollingOptions) -> Result<TlsStream<TcpStream>, Failure> {
    let (host, port) = parse_host_port(&options.server_address, DEFAULT_SERVER_AGENT_PORT)
        .map_err(|reason| Failure::Unreachable { reason })?;
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| Failure::Unreachable {
            reason: format!("no TCP connection within {CONNECT_TIMEOUT:?}"),
        })?
        .map_err(|error| Failure::Unreachable {
            reason: describe_chain(&error),
        })?;
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!("could not set TCP_NODELAY: {error}");
    }
    let server_name = ServerName::try_from(host.clone()).map_err(|_| Failure::Unreachable {
        reason: format!("{host:?} is neither a DNS name nor an IP address"),
    })?;
    tokio::time::timeout(
        TLS_HANDSHAKE_TIMEOUT,
        tokio_rustls::TlsConnector::from(Arc::clone(&options.tls)).connect(server_name, tcp),
    )
    .await
    .map_err(|_| Failure::Unreachable {
        reason: format!("no TLS handshake within {TLS_HANDSHAKE_TIMEOUT:?}"),
    })?
    .map_err(|error| classify(&error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_split() {
        let parse = |text| parse_host_port(text, 10943);
        assert_eq!(parse("server:443"), Ok(("server".to_owned(), 443)));
        assert_eq!(parse("server"), Ok(("server".to_owned(), 10943)));
        assert_eq!(parse("[::1]:5"), Ok(("::1".to_owned(), 5)));
        assert_eq!(parse("[::1]"), Ok(("::1".to_owned(), 10943)));
        assert_eq!(parse("::1"), Ok(("::1".to_owned(), 10943)));
        for bad in [
            "",
            ":5",
            "server:x",
            "server:70000",
            "https://server",
            "[::1]x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter_below_the_delay() {
        let backoff = Backoff::default();
        let mut delay = backoff.initial;
        for _ in 0..20 {
            delay = backoff.next(delay);
        }
        assert_eq!(delay, backoff.max);
        for _ in 0..100 {
            let wait = Backoff::jittered(Duration::from_secs(10));
            assert!(wait >= Duration::from_secs(5) && wait <= Duration::from_secs(10));
        }
    }
}
