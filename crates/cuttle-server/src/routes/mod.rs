//! The REST API's routes, assembled into one router.

mod crud;
mod dashboard;
mod deployments;
mod environments;
mod packages;
mod resources;
mod retention;
mod root;
mod spaces;
mod tasks;
mod users;
mod variables;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::get;
use cuttle_domain::{
    Account, Channel, DeploymentTarget, Environment, LibraryVariableSet, Lifecycle, MachinePolicy,
    Project, ProjectGroup, Worker, WorkerPool,
};

use crate::error::ApiError;
use crate::state::AppState;

/// Every `/api` route.
pub use deployments::promote_automatically;
pub use retention::{DeletedRelease, RetentionReport, apply_retention};
pub use tasks::HEALTH_TASK;

pub(crate) fn api_router(state: AppState) -> Router {
    let json_body_limit = state.json_body_limit;
    Router::new()
        .route("/api", get(root::root_document))
        .route("/api/capabilities", get(root::capabilities))
        .route(
            "/api/certificates/certificate-global",
            get(root::server_certificate),
        )
        .merge(spaces::routes())
        .merge(users::routes())
        .merge(environments::routes())
        .merge(variables::routes())
        .merge(tasks::routes())
        .merge(deployments::routes())
        .merge(dashboard::routes())
        .merge(packages::routes(state.max_package_size))
        .merge(retention::routes())
        .merge(crud::space_scoped_routes::<Environment>())
        .merge(crud::space_scoped_routes::<Lifecycle>())
        .merge(crud::space_scoped_routes::<ProjectGroup>())
        .merge(crud::space_scoped_routes::<Project>())
        .merge(crud::space_scoped_routes::<Channel>())
        .merge(crud::space_scoped_routes::<DeploymentTarget>())
        .merge(crud::space_scoped_routes::<WorkerPool>())
        .merge(crud::space_scoped_routes::<Worker>())
        .merge(crud::space_scoped_routes::<LibraryVariableSet>())
        .merge(crud::space_scoped_routes::<Account>())
        .merge(crud::space_scoped_routes::<MachinePolicy>())
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(json_body_limit))
        .with_state(state)
}

async fn unknown_route(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("there is no resource at {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
