//! Cuttle's HTTP server: the Octopus-shaped REST API under `/api`, authentication, and the
//! first-start bootstrap.
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
mod routes;
pub mod ssh;
mod state;

use std::future::Future;

use axum::ServiceExt as _;
use axum::extract::Request;
use tokio::net::TcpListener;
use tower::Layer as _;
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
pub use state::{AppState, DEFAULT_JSON_BODY_LIMIT, DEFAULT_MAX_PACKAGE_SIZE};

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
    let router = routes::api_router(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state,
            cache::cache_get_responses,
        ))
        .layer(TraceLayer::new_for_http());
    tower::util::MapRequestLayer::new(paths::normalize_request_path).layer(router)
}

/// Serves [`app`] on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = app(state);
    axum::serve(listener, service.into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
}
