//! Retention on the server: deletes the releases a lifecycle's `ReleaseRetentionPolicy` lets
//! go, then the built-in feed's packages that only those releases used.
//!
//! The rules are the pure [`cuttle_pipeline::retention`]; this module loads the facts, acts on
//! the decisions and reports them. It runs on a timer in the server (`--retention-interval`)
//! and on demand at `POST /api/retention/apply`.
//!
//! **Invariant:** a package any remaining release pins is never deleted, and neither is a
//! package no release ever pinned (it may be the next release's). Only packages that deleted
//! releases pinned, and that no remaining release pins, go.

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use cuttle_domain::{
    BUILT_IN_FEED_ID, Channel, Deployment, DeploymentProcess, Environment, Lifecycle, Package,
    Project, Release, Resource, Space,
};
use cuttle_pipeline::progression::{DeploymentState, EnvironmentRef};
use cuttle_pipeline::retention::{RetainedDeployment, RetainedRelease, releases_to_delete};
use cuttle_store::{Change, DocumentQuery};
use serde::Serialize;

use super::deployments::{delete_release_with_history, process_package_references, tasks_by_id};
use super::packages::remove_blobs_if_unreferenced;
use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/api/retention/apply", post(apply_now))
}

/// What one retention pass deleted.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetentionReport {
    pub deleted_releases: Vec<DeletedRelease>,
    /// Octopus ids of the deleted packages (`packages-Acme.Web.1.0.0`).
    pub deleted_packages: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeletedRelease {
    pub space_id: String,
    pub project_id: String,
    pub release_id: String,
    pub version: String,
    pub reason: String,
}

async fn apply_now(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Permission::ManageSpaces)?;
    let report = apply_retention(&state, Utc::now()).await?;
    Ok(Json(report).into_response())
}

/// One retention pass over every space, as of `now`.
pub async fn apply_retention(
    state: &AppState,
    now: DateTime<Utc>,
) -> Result<RetentionReport, ApiError> {
    let spaces = state
        .store()
        .list_resources::<Space>(&DocumentQuery::default())
        .await?
        .items;
    let mut report = RetentionReport::default();
    for space in spaces {
        apply_in_space(state, &space.id, now, &mut report).await?;
    }
    for release in &report.deleted_releases {
        tracing::info!(
            space = %release.space_id,
            project = %release.project_id,
            release = %release.version,
            "retention deleted a release: {}",
            release.reason
        );
    }
    for package in &report.deleted_packages {
        tracing::info!(%package, "retention deleted a package no kept release uses");
    }
    Ok(report)
}

async fn apply_in_space(
    state: &AppState,
    space_id: &str,
    now: DateTime<Utc>,
    report: &mut RetentionReport,
) -> Result<(), ApiError> {
    let in_space = DocumentQuery::in_space(space_id);
    let store = state.store();
    let releases = store.list_resources::<Release>(&in_space).await?.items;
    if releases.is_empty() {
        return Ok(());
    }
    let projects: HashMap<String, Project> = store
        .list_resources::<Project>(&in_space)
        .await?
        .items
        .into_iter()
        .map(|project| (project.id.clone(), project))
        .collect();
    let channels: HashMap<String, Channel> = store
        .list_resources::<Channel>(&in_space)
        .await?
        .items
        .into_iter()
        .map(|channel| (channel.id.clone(), channel))
        .collect();
    let lifecycles: HashMap<String, Lifecycle> = store
        .list_resources::<Lifecycle>(&in_space)
        .await?
        .items
        .into_iter()
        .map(|lifecycle| (lifecycle.id.clone(), lifecycle))
        .collect();
    let environments: Vec<EnvironmentRef> = store
        .list_resources::<Environment>(&in_space)
        .await?
        .items
        .iter()
        .map(|environment| EnvironmentRef::new(&environment.id, &environment.name))
        .collect();
    let deployments = store.list_resources::<Deployment>(&in_space).await?.items;
    let tasks = tasks_by_id(state, &deployments).await?;

    // Releases are counted per project and lifecycle: a channel with its own lifecycle keeps
    // its releases under that lifecycle's policy.
    let mut groups: HashMap<(String, String), Vec<&Release>> = HashMap::new();
    for release in &releases {
        let Some(project) = projects.get(&release.project_id) else {
            continue;
        };
        let lifecycle_id = channels
            .get(&release.channel_id)
            .and_then(|channel| channel.lifecycle_id.clone())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| project.lifecycle_id.clone());
        groups
            .entry((project.id.clone(), lifecycle_id))
            .or_default()
            .push(release);
    }

    let mut deleted: Vec<&Release> = Vec::new();
    let mut pinned_by_deleted: HashSet<(String, String)> = HashSet::new();
    for ((project_id, lifecycle_id), group) in &groups {
        // A lifecycle that cannot be read keeps everything: retention must not guess.
        let Some(lifecycle) = lifecycles.get(lifecycle_id) else {
            continue;
        };
        let Some(facts) = release_facts(group) else {
            tracing::warn!(project = %project_id, "retention skipped a project: a release has an unreadable creation time");
            continue;
        };
        let group_ids: HashSet<&str> = group.iter().map(|release| release.id.as_str()).collect();
        let Some(deployment_facts) = deployment_facts(&deployments, &tasks, &group_ids) else {
            tracing::warn!(project = %project_id, "retention skipped a project: a deployment has an unreadable time or state");
            continue;
        };
        for doomed in releases_to_delete(lifecycle, &environments, &facts, &deployment_facts, now) {
            let Some(release) = group.iter().find(|release| release.id == doomed.release_id) else {
                continue;
            };
            // Read before the delete takes the process snapshot with it.
            let pinned = built_in_packages_of(state, release).await?;
            // The release may have started deploying since it was read; that refusal keeps it.
            match delete_release_with_history(state, release).await {
                Ok(()) => {
                    deleted.push(release);
                    pinned_by_deleted.extend(pinned.unwrap_or_default());
                    report.deleted_releases.push(DeletedRelease {
                        space_id: space_id.to_owned(),
                        project_id: project_id.clone(),
                        release_id: release.id.clone(),
                        version: release.version.clone(),
                        reason: doomed.reason,
                    });
                }
                Err(error) => tracing::info!(
                    release = %release.version,
                    "retention kept a release it could not delete: {error}"
                ),
            }
        }
    }
    if deleted.is_empty() {
        return Ok(());
    }

    let deleted_ids: HashSet<&str> = deleted.iter().map(|release| release.id.as_str()).collect();
    // Every remaining release of the space counts, whichever project it belongs to. One whose
    // pins cannot be read keeps every package.
    let mut pinned_by_kept: HashSet<(String, String)> = HashSet::new();
    for release in releases
        .iter()
        .filter(|release| !deleted_ids.contains(release.id.as_str()))
    {
        let Some(pinned) = built_in_packages_of(state, release).await? else {
            tracing::warn!(release = %release.id, "retention deletes no packages: a kept release's process snapshot is missing");
            return Ok(());
        };
        pinned_by_kept.extend(pinned);
    }
    let unused: HashSet<(String, String)> = pinned_by_deleted
        .difference(&pinned_by_kept)
        .cloned()
        .collect();
    if unused.is_empty() {
        return Ok(());
    }

    // Uploads and deletes change records and blobs together under this lock.
    let _guard = state.package_lock.lock().await;
    let packages = store.list_resources::<Package>(&in_space).await?.items;
    let doomed_packages: Vec<&Package> = packages
        .iter()
        .filter(|package| {
            unused.contains(&(package.package_id.to_lowercase(), package.version.clone()))
        })
        .collect();
    if doomed_packages.is_empty() {
        return Ok(());
    }
    let changes: Vec<Change> = doomed_packages
        .iter()
        .map(|package| Change::Delete {
            kind: Package::KIND,
            id: package.document_id.clone(),
        })
        .collect();
    store.write(&changes).await?;
    let mut hashes: Vec<String> = doomed_packages
        .iter()
        .map(|package| package.hash.clone())
        .collect();
    hashes.sort();
    hashes.dedup();
    remove_blobs_if_unreferenced(state, &hashes).await?;
    report
        .deleted_packages
        .extend(doomed_packages.iter().map(|package| package.id.clone()));
    Ok(())
}

/// The releases as the planner sees them; `None` when a creation time cannot be read.
fn release_facts(releases: &[&Release]) -> Option<Vec<RetainedRelease>> {
    releases
        .iter()
        .map(|release| {
            Some(RetainedRelease {
                release_id: release.id.clone(),
                version: release.version.clone(),
                created: parse_time(&release.assembled)?,
            })
        })
        .collect()
}

/// The deployments of the releases in `release_ids`, with their tasks' states. A deployment
/// whose task is gone counts as finished (it can never run again).
fn deployment_facts(
    deployments: &[Deployment],
    tasks: &HashMap<String, cuttle_store::TaskRecord>,
    release_ids: &HashSet<&str>,
) -> Option<Vec<RetainedDeployment>> {
    deployments
        .iter()
        .filter(|deployment| release_ids.contains(deployment.release_id.as_str()))
        .map(|deployment| {
            let state = match tasks.get(&deployment.task_id) {
                Some(task) => task.state.as_str().parse::<DeploymentState>().ok()?,
                None => DeploymentState::Canceled,
            };
            Some(RetainedDeployment {
                release_id: deployment.release_id.clone(),
                environment_id: deployment.environment_id.clone(),
                tenant_id: deployment.tenant_id.clone(),
                created: parse_time(&deployment.created)?,
                state,
            })
        })
        .collect()
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// The built-in feed packages `release` pins, as (lower-case package id, version): its
/// selected versions matched to its process snapshot's package references; `None` when the
/// snapshot is missing.
async fn built_in_packages_of(
    state: &AppState,
    release: &Release,
) -> Result<Option<HashSet<(String, String)>>, ApiError> {
    if release.selected_packages.is_empty() {
        return Ok(Some(HashSet::new()));
    }
    let Some(process) = state
        .store()
        .get_resource::<DeploymentProcess>(&release.project_deployment_process_snapshot_id)
        .await?
    else {
        return Ok(None);
    };
    let references = process_package_references(&process);
    Ok(Some(
        release
            .selected_packages
            .iter()
            .filter_map(|selected| {
                let reference = references.iter().find(|reference| {
                    reference.action_name == selected.action_name
                        && reference.package_reference_name == selected.package_reference_name
                })?;
                (reference.feed_id.eq_ignore_ascii_case(BUILT_IN_FEED_ID)).then(|| {
                    (
                        reference.package_id.to_lowercase(),
                        selected.version.clone(),
                    )
                })
            })
            .collect(),
    ))
}
