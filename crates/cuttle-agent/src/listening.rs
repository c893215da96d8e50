//! Listening mode: the agent accepts the server's TLS connections (port 10933 by default) and
//! serves the protocol's router over HTTP/2 on each.
//!
//! Each accepted connection gets a TLS handshake (bounded by
//! [`crate::connection::TLS_HANDSHAKE_TIMEOUT`]) with a `cuttle_pki::server_config` that only
//! lets in a client whose certificate thumbprint the agent trusts; a refused peer is logged
//! with its address and thumbprint. The server keeps one connection open and multiplexes its
//! calls over it.
//!
//! What this module does not do: decide whom to trust (the caller's configuration does) or
//! bind the port (the caller passes the listener, so port 0 works in tests).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use cuttle_pki::rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::connection::{Failure, TLS_HANDSHAKE_TIMEOUT, classify, serve_router};

/// How long connections may take to finish their calls once shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` and serves `router` on each over TLS (`tls`, from
/// `cuttle_pki::server_config`) and HTTP/2, until `shutdown` completes; then in-flight calls
/// get a few seconds to finish.
pub async fn serve_listening(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.as_mut() => break,
        };
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((tcp, peer)) => {
                connections.spawn(serve_connection(
                    tcp,
                    peer,
                    acceptor.clone(),
                    router.clone(),
                    stopped.clone(),
                ));
            }
            Err(error) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!("could not accept a connection: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    stop.send_replace(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("closing agent connections whose calls did not finish in time");
        connections.abort_all();
    }
}

/// One accepted connection: TLS, then the router over HTTP/2 until it closes or `stopped`
/// turns true.
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    mut stopped: watch::Receiver<bool>,
) {
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!("could not set TCP_NODELAY: {error}");
    }
    let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            match classify(&error) {
                Failure::Refused { reason, .. } => {
                    tracing::warn!(%peer, "refused a connection: {reason}");
                }
                Failure::Unreachable { reason } => {
                    tracing::debug!(%peer, "a TLS handshake failed: {reason}");
                }
            }
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "a TLS handshake timed out");
            return;
        }
    };
    let thumbprint = cuttle_pki::peer_thumbprint(stream.get_ref().1).unwrap_or_default();
    tracing::debug!(%peer, %thumbprint, "accepted a server connection");
    let shutdown = async move {
        // An error means the sender is gone, which also means stop.
        let _stopped = stopped.wait_for(|stopped| *stopped).await;
    };
    if let Err(error) = serve_router(stream, router, shutdown).await {
        tracing::debug!(%peer, "a server connection ended: {error}");
    }
}
