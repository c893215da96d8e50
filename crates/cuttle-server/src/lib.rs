//! Cuttle's HTTP server: the Octopus-shaped REST API under `/api`, the web portal under `/app`,
//! authentication, and the first-start bootstrap.
//!
//! [`app`] builds the whole HTTP service from an [`AppState`] (tests drive it without a socket);
//! [`serve`] runs it on a listener until a shutdown signal. Requests are rewritten to one
//! canonical path spelling before routing ([`paths`]), so routes match in any letter case.
//!
//! **Architecture Invariant:** this is the only crate that knows HTTP on the server side.
//! Handlers turn requests into store calls and domain checks; they hold no state of their own.

pub mod agents;
mod auth;
pub mod blobs;
pub mod bootstrap;
mod cache;
mod error;
mod extract;
mod paths;
mod portal;
mod routes;
pub mod ssh;
mod state;
mod throttle;

use std::future::Future;
use std::time::Duration;

use axum::extract::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::Layer as _;
use tower::ServiceExt as _;
use tower_http::trace::TraceLayer;

pub use auth::{generate_api_key, hash_api_key, hash_password, is_well_formed_api_key};
pub use blobs::BlobStore;
pub use bootstrap::{
    BootstrapError, BootstrapOptions, BootstrapOutcome, FirstStartCredentials, bootstrap,
    check_master_key, load_or_create_server_identity,
};
pub use cuttle_pki::Identity;
pub use cuttle_secrets::{KeySource, MasterKey};
pub use error::ApiError;
pub use routes::{
    DeletedRelease, HEALTH_TASK, RetentionReport, apply_retention, promote_automatically,
};
pub use state::{
    AppState, DEFAULT_HTTP_IDLE_TIMEOUT, DEFAULT_JSON_BODY_LIMIT, DEFAULT_MAX_PACKAGE_SIZE,
};

/// The HTTP service: path normalization in front of the router.
pub fn app(
    state: AppState,
) -> impl tower::Service<
    Request,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    let api = routes::api_router(state.clone()).layer(axum::middleware::from_fn_with_state(
        state.clone(),
        cache::cache_get_responses,
    ));
    // The portal answers `/` and `/app…`; everything else is the API's.
    let router = portal::router(state, api).layer(TraceLayer::new_for_http());
    tower::util::MapRequestLayer::new(paths::normalize_request_path).layer(router)
}

/// Serves [`app`] on `listener` until `shutdown` completes, then finishes in-flight requests.
///
/// HTTP/1 connections left idle for the state's idle timeout (before a request's headers
/// arrive, including between requests) are closed. `axum::serve` keeps them forever, and a
/// client that never releases its socket then never exits: the official npm client's package
/// upload leaves its socket referenced until the server closes it, so `push-package` hung.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(state.http_idle_timeout);
    let idle_timeout = state.http_idle_timeout;
    let service = app(state);
    // Each connection task holds a receiver; `closed()` on the sender resolves once all are gone.
    let (shutdown_sender, shutdown_receiver) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(%error, "could not accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let hyper_service = TowerToHyperService::new(service.clone().map_request(
            |request: Request<hyper::body::Incoming>| request.map(axum::body::Body::new),
        ));
        let builder = builder.clone();
        let mut shutdown_receiver = shutdown_receiver.clone();
        tokio::spawn(async move {
            // The header timeout starts only once hyper knows the protocol, which takes a
            // first byte: a connection that never sends one is closed here.
            let mut first_byte = [0_u8; 1];
            tokio::select! {
                peeked = tokio::time::timeout(idle_timeout, stream.peek(&mut first_byte)) => {
                    if !matches!(peeked, Ok(Ok(1))) {
                        return;
                    }
                }
                // Shutting down: nothing was asked yet, so nothing is lost.
                _ = shutdown_receiver.changed() => return,
            }
            let connection =
                builder.serve_connection_with_upgrades(TokioIo::new(stream), hyper_service);
            let mut connection = std::pin::pin!(connection);
            let mut draining = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            // Resets, idle timeouts and bad requests: the client's business.
                            tracing::trace!(%error, "HTTP connection ended with an error");
                        }
                        break;
                    }
                    _ = shutdown_receiver.changed(), if !draining => {
                        // Finish the request in flight, then close.
                        draining = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(shutdown_receiver);
        });
    }
    drop(listener);
    drop(shutdown_receiver);
    let _ = shutdown_sender.send(true);
    shutdown_sender.closed().await;
    Ok(())
}
