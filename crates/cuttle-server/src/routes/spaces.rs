//! `/api/spaces`: spaces are global, so they have routes of their own over the generic flow.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cuttle_domain::Space;

use super::crud::{self, document_query, list_page, with_links};
use super::packages;
use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::extract::{ApiJson, ListParameters};
use crate::state::AppState;

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/spaces", get(list_spaces).post(create_space))
        .route(
            "/api/spaces/{id}",
            get(get_space).put(modify_space).delete(delete_space),
        )
}

async fn list_spaces(
    State(state): State<AppState>,
    caller: Caller,
    parameters: ListParameters,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    list_page::<Space>(
        &state,
        &document_query(&parameters),
        &parameters,
        "/api/spaces",
    )
    .await
}

async fn get_space(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    let space = crud::load::<Space>(&state, None, &id).await?;
    Ok(Json(with_links(space)).into_response())
}

async fn create_space(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(space): ApiJson<Space>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ManageSpaces)?;
    let created = crud::create(&state, None, space).await?;
    Ok((StatusCode::CREATED, Json(with_links(created))).into_response())
}

async fn modify_space(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(space): ApiJson<Space>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ManageSpaces)?;
    let modified = crud::modify(&state, None, &id, space).await?;
    Ok(Json(with_links(modified)).into_response())
}

async fn delete_space(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ManageSpaces)?;
    // The space's packages go with it; their files go too unless another space has the same.
    let _package_guard = state.package_lock.lock().await;
    let package_hashes = packages::package_hashes_in_space(&state, &id).await?;
    crud::delete::<Space>(&state, None, &id).await?;
    packages::remove_blobs_if_unreferenced(&state, &package_hashes).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
