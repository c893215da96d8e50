//! `GET /api/{spaceId}/dashboard` (the latest deployment of every project to every
//! environment) and `GET /api/{spaceId}/projects/{id}/progression` (a project's releases
//! against its environments, with where each may go next), in Octopus's shapes.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cuttle_domain::{Deployment, Environment, Project, ProjectGroup, Release};
use cuttle_store::{DocumentQuery, TaskRecord};
use serde_json::{Value, json};

use super::crud::{self, require_space};
use super::tasks::format_time;
use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/{space_id}/dashboard", get(dashboard))
        .route(
            "/api/{space_id}/projects/{project_id}/progression",
            get(project_progression),
        )
}

async fn all_in_space<T: cuttle_domain::Resource>(
    state: &AppState,
    space_id: &str,
) -> Result<Vec<T>, ApiError> {
    Ok(state
        .store()
        .list_resources::<T>(&DocumentQuery {
            space_id: Some(space_id.to_owned()),
            ..DocumentQuery::default()
        })
        .await?
        .items)
}

/// One dashboard cell: a deployment, its release and its task's state.
fn dashboard_item(
    deployment: &Deployment,
    release: Option<&Release>,
    task: Option<&TaskRecord>,
) -> Value {
    let state = task.map_or("Queued", |task| task.state.as_str());
    json!({
        "Id": deployment.id,
        "ProjectId": deployment.project_id,
        "EnvironmentId": deployment.environment_id,
        "ReleaseId": deployment.release_id,
        "DeploymentId": deployment.id,
        "TaskId": deployment.task_id,
        "TenantId": deployment.tenant_id,
        "ChannelId": deployment.channel_id,
        "ReleaseVersion": release.map(|release| release.version.clone()).unwrap_or_default(),
        "Created": deployment.created,
        "QueueTime": task.map(|task| format_time(task.queue_time)),
        "StartTime": task.and_then(|task| task.start_time.map(format_time)),
        "CompletedTime": task.and_then(|task| task.completed_time.map(format_time)),
        "State": state,
        "HasPendingInterruptions": task.is_some_and(|task| task.has_pending_interruptions),
        "HasWarningsOrErrors": task.is_some_and(|task| task.has_warnings_or_errors),
        "ErrorMessage": task.and_then(|task| task.error_message.clone()).unwrap_or_default(),
        "IsCompleted": task.is_some_and(|task| task.state.is_completed()),
        "IsCurrent": true,
        "IsPrevious": false,
    })
}

async fn dashboard(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let environments: Vec<Environment> = all_in_space(&state, &space_id).await?;
    let projects: Vec<Project> = all_in_space(&state, &space_id).await?;
    let groups: Vec<ProjectGroup> = all_in_space(&state, &space_id).await?;
    let releases: Vec<Release> = all_in_space(&state, &space_id).await?;
    let deployments: Vec<Deployment> = all_in_space(&state, &space_id).await?;
    // Deployments list newest first, so the first per cell is the latest.
    let mut latest: Vec<&Deployment> = Vec::new();
    for deployment in &deployments {
        if !latest.iter().any(|seen| {
            seen.project_id == deployment.project_id
                && seen.environment_id == deployment.environment_id
        }) {
            latest.push(deployment);
        }
    }
    let tasks = super::deployments::tasks_by_id(&state, latest.iter().copied()).await?;
    let releases_by_id: HashMap<&str, &Release> = releases
        .iter()
        .map(|release| (release.id.as_str(), release))
        .collect();
    let environment_ids: Vec<&str> = environments
        .iter()
        .map(|environment| environment.id.as_str())
        .collect();
    let items: Vec<Value> = latest
        .iter()
        .map(|deployment| {
            dashboard_item(
                deployment,
                releases_by_id.get(deployment.release_id.as_str()).copied(),
                tasks.get(&deployment.task_id),
            )
        })
        .collect();
    Ok(Json(json!({
        "Projects": projects.iter().map(|project| json!({
            "Id": project.id, "Name": project.name, "Slug": project.slug,
            "ProjectGroupId": project.project_group_id, "IsDisabled": project.is_disabled,
            "EnvironmentIds": environment_ids, "CanPerformUntenantedDeployment": true,
        })).collect::<Vec<_>>(),
        "ProjectGroups": groups.iter().map(|group| json!({
            "Id": group.id, "Name": group.name, "EnvironmentIds": environment_ids,
        })).collect::<Vec<_>>(),
        "Environments": environments.iter().map(|environment| json!({
            "Id": environment.id, "Name": environment.name,
        })).collect::<Vec<_>>(),
        "Items": items,
        "PreviousItems": [],
        "Tenants": [],
        "IsFiltered": false,
    }))
    .into_response())
}

async fn project_progression(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, project_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let project = crud::load::<Project>(&state, Some(&space_id), &project_id).await?;
    let environments: Vec<Environment> = all_in_space(&state, &space_id).await?;
    let owned = DocumentQuery {
        owner_id: Some(project.id.clone()),
        ..DocumentQuery::default()
    };
    let releases = state.store().list_resources::<Release>(&owned).await?.items;
    let deployments = state
        .store()
        .list_resources::<Deployment>(&owned)
        .await?
        .items;
    let tasks = super::deployments::tasks_by_id(&state, &deployments).await?;
    let mut rows = Vec::new();
    for release in &releases {
        let mut by_environment: serde_json::Map<String, Value> = serde_json::Map::new();
        for deployment in deployments
            .iter()
            .filter(|deployment| deployment.release_id == release.id)
        {
            let cell = by_environment
                .entry(deployment.environment_id.clone())
                .or_insert_with(|| json!([]));
            if let Some(cell) = cell.as_array_mut() {
                cell.push(dashboard_item(
                    deployment,
                    Some(release),
                    tasks.get(&deployment.task_id),
                ));
            }
        }
        let next = super::deployments::next_environments(&state, &project, release).await?;
        rows.push(json!({
            "Release": crud::with_links(release.clone()),
            "Deployments": by_environment,
            "NextDeployments": next,
            "HasUnresolvedDefect": release.blocking_defect().is_some(),
        }));
    }
    Ok(Json(json!({
        "Environments": environments.iter().map(|environment| json!({
            "Id": environment.id, "Name": environment.name,
        })).collect::<Vec<_>>(),
        "Releases": rows,
    }))
    .into_response())
}
