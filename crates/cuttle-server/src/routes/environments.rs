//! Routes beyond the generic ones: environment order, `environments/v2`, a project's channels,
//! a pool's workers.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use cuttle_api::{EnvironmentV2, Links};
use cuttle_domain::{Channel, Environment, Project, Worker, WorkerPool};
use cuttle_store::{Change, DocumentQuery, document_from_resource};

use super::crud::{self, collection, document_query, list_page, require_space};
use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::extract::{ApiJson, ListParameters};
use crate::state::AppState;

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/api/{space_id}/environments/sortorder",
            put(set_environment_order),
        )
        .route("/api/{space_id}/environments/v2", get(list_environments_v2))
        .route(
            "/api/{space_id}/projects/{project_id}/channels",
            get(list_project_channels),
        )
        .route(
            "/api/{space_id}/workerpools/{pool_id}/workers",
            get(list_pool_workers),
        )
}

/// `PUT environments/sortorder` with the ids in their new order; unnamed ones keep their
/// relative order after the named ones.
async fn set_environment_order(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    ApiJson(ordered_ids): ApiJson<Vec<String>>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let environments = state
        .store()
        .list_resources::<Environment>(&DocumentQuery::in_space(&space_id))
        .await?
        .items;
    let mut unknown = Vec::new();
    let mut ordered: Vec<Environment> = Vec::new();
    for id in &ordered_ids {
        match environments
            .iter()
            .find(|environment| &environment.id == id)
        {
            Some(environment) if !ordered.iter().any(|seen| &seen.id == id) => {
                ordered.push(environment.clone());
            }
            Some(_) => {}
            None => unknown.push(id.clone()),
        }
    }
    if !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "these environments are not in space {space_id}: {}",
            unknown.join(", ")
        )));
    }
    for environment in &environments {
        if !ordered.iter().any(|seen| seen.id == environment.id) {
            ordered.push(environment.clone());
        }
    }
    let mut changes = Vec::new();
    for (position, environment) in ordered.iter_mut().enumerate() {
        let sort_order = i64::try_from(position)
            .unwrap_or(i64::MAX)
            .saturating_add(1);
        if environment.sort_order != sort_order {
            environment.sort_order = sort_order;
            changes.push(Change::Update(document_from_resource(&*environment)?));
        }
    }
    state.store().write(&changes).await?;
    let items: Vec<_> = ordered.into_iter().map(crud::with_links).collect();
    Ok(Json(items).into_response())
}

/// `GET environments/v2`: the newer environment listing the deploy action tries first.
async fn list_environments_v2(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    parameters: ListParameters,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let query = DocumentQuery {
        space_id: Some(space_id.clone()),
        ..document_query(&parameters)
    };
    let page = state.store().list_resources::<Environment>(&query).await?;
    let items = page
        .items
        .into_iter()
        .map(|environment| EnvironmentV2 {
            links: Links::from([(
                "Self".to_owned(),
                format!("/api/{space_id}/environments/{}", environment.id),
            )]),
            id: environment.id,
            space_id: environment.space_id,
            name: environment.name,
            slug: environment.slug,
            description: environment.description,
            sort_order: environment.sort_order,
            environment_type: "Static".to_owned(),
        })
        .collect();
    let base_path = format!("/api/{space_id}/environments/v2");
    Ok(Json(collection(
        "Environment",
        page.total,
        items,
        &parameters,
        &base_path,
    ))
    .into_response())
}

async fn list_project_channels(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, project_id)): Path<(String, String)>,
    parameters: ListParameters,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    crud::load::<Project>(&state, Some(&space_id), &project_id).await?;
    let query = DocumentQuery {
        space_id: Some(space_id.clone()),
        owner_id: Some(project_id.clone()),
        ..document_query(&parameters)
    };
    let base_path = format!("/api/{space_id}/projects/{project_id}/channels");
    list_page::<Channel>(&state, &query, &parameters, &base_path).await
}

async fn list_pool_workers(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, pool_id)): Path<(String, String)>,
    parameters: ListParameters,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    crud::load::<WorkerPool>(&state, Some(&space_id), &pool_id).await?;
    let query = DocumentQuery {
        space_id: Some(space_id.clone()),
        referencing: Some(pool_id.clone()),
        ..document_query(&parameters)
    };
    let base_path = format!("/api/{space_id}/workerpools/{pool_id}/workers");
    list_page::<Worker>(&state, &query, &parameters, &base_path).await
}
