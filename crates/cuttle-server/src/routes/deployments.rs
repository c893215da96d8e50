//! The deployment pipeline's API: deployment processes, releases, deployments and
//! interruptions, including Octopus's command endpoints (`releases/create/v1`,
//! `deployments/create/untenanted/v1`) that the official client and GitHub actions call.
//!
//! A release snapshots the project's process and variables (project and included library
//! sets) as documents owned by the project, so the release never changes when the project
//! does. A deployment is checked against the release's lifecycle progression (every refusal
//! says why) and becomes a `Deploy` task, queued in the same request, with a concurrency tag
//! so one project deploys to one environment one task at a time.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use chrono::{DateTime, Utc};
use cuttle_domain::{
    Channel, Deployment, DeploymentProcess, DeploymentTarget, Environment, Interruption,
    LibraryVariableSet, Lifecycle, Project, Release, Resource, ResourceKind,
};
use cuttle_pipeline::package_selection::{
    PackageReferenceFact, PackageVersionRequest, PinnedPackage, select_package_versions,
};
use cuttle_pipeline::progression::{DeploymentFact, DeploymentState, EnvironmentRef, Progression};
use cuttle_pipeline::versioning::{ReleaseVersionFact, next_release_version};
use cuttle_store::{
    Change, Document, DocumentQuery, TaskQuery, TaskRecord, document_from_resource,
};
use serde::Deserialize;
use serde_json::json;

use super::crud::{self, ManagedResource, collection, new_guid, require_space, with_links};
use super::tasks::format_time;
use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::extract::{ApiJson, ListParameters};
use crate::state::AppState;

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/api/{space_id}/deploymentprocesses/{id}",
            get(get_process).put(modify_process),
        )
        .route(
            "/api/{space_id}/projects/{project_id}/deploymentprocesses",
            get(get_project_process).put(modify_project_process),
        )
        .route(
            "/api/{space_id}/releases",
            get(list_releases).post(create_release_resource),
        )
        .route(
            "/api/{space_id}/releases/create/v1",
            post(create_release_command),
        )
        .route(
            "/api/{space_id}/releases/{id}",
            get(get_release).delete(delete_release),
        )
        .route(
            "/api/{space_id}/releases/{id}/snapshot-variables",
            post(snapshot_variables),
        )
        .route(
            "/api/{space_id}/releases/{id}/progression",
            get(release_progression),
        )
        .route("/api/{space_id}/releases/{id}/defects", post(report_defect))
        .route(
            "/api/{space_id}/releases/{id}/defects/resolve",
            post(resolve_defect),
        )
        .route(
            "/api/{space_id}/releases/{id}/deployments",
            get(list_release_deployments),
        )
        .route(
            "/api/{space_id}/projects/{project_id}/releases",
            get(list_project_releases),
        )
        .route(
            "/api/{space_id}/projects/{project_id}/releases/{version}",
            get(get_project_release_by_version),
        )
        .route(
            "/api/{space_id}/deployments",
            get(list_deployments).post(create_deployment_resource),
        )
        .route(
            "/api/{space_id}/deployments/create/untenanted/v1",
            post(create_deployments_command),
        )
        .route(
            "/api/{space_id}/deployments/create/tenanted/v1",
            post(create_tenanted_deployments_command),
        )
        .route("/api/{space_id}/deployments/{id}", get(get_deployment))
        .route("/api/{space_id}/interruptions", get(list_interruptions))
        .route("/api/{space_id}/interruptions/{id}", get(get_interruption))
        .route(
            "/api/{space_id}/interruptions/{id}/submit",
            post(submit_interruption),
        )
        .route(
            "/api/{space_id}/interruptions/{id}/responsible",
            put(take_responsibility).get(get_responsible),
        )
}

#[async_trait::async_trait]
impl ManagedResource for DeploymentProcess {}
#[async_trait::async_trait]
impl ManagedResource for Release {}
#[async_trait::async_trait]
impl ManagedResource for Deployment {}
#[async_trait::async_trait]
impl ManagedResource for Interruption {}

fn now_text() -> String {
    format_time(Utc::now())
}

// ---------------------------------------------------------------------------------------------
// Deployment processes

/// The project's live process; an empty one when it has never been saved.
async fn live_process(state: &AppState, project: &Project) -> Result<DeploymentProcess, ApiError> {
    let id = DeploymentProcess::id_for_project(&project.id);
    Ok(state
        .store()
        .get_resource::<DeploymentProcess>(&id)
        .await?
        .unwrap_or_else(|| DeploymentProcess::empty_for_project(&project.space_id, &project.id)))
}

async fn load_project(state: &AppState, space_id: &str, key: &str) -> Result<Project, ApiError> {
    if let Ok(project) = crud::load::<Project>(state, Some(space_id), key).await {
        return Ok(project);
    }
    let projects = state
        .store()
        .list_resources::<Project>(&DocumentQuery {
            space_id: Some(space_id.to_owned()),
            ..DocumentQuery::default()
        })
        .await?
        .items;
    projects
        .into_iter()
        .find(|project| {
            project.name.eq_ignore_ascii_case(key) || project.slug.eq_ignore_ascii_case(key)
        })
        .ok_or_else(|| ApiError::NotFound(format!("project '{key}' was not found")))
}

async fn get_process(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    if let Some(process) = state.store().get_resource::<DeploymentProcess>(&id).await?
        && process.space_id == space_id
    {
        return Ok(Json(with_links(process)).into_response());
    }
    let project_id = id
        .strip_prefix("deploymentprocess-")
        .ok_or_else(|| ApiError::NotFound(format!("deployment process {id} was not found")))?;
    let project = crud::load::<Project>(&state, Some(&space_id), project_id).await?;
    Ok(Json(with_links(live_process(&state, &project).await?)).into_response())
}

async fn get_project_process(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, project_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let project = crud::load::<Project>(&state, Some(&space_id), &project_id).await?;
    Ok(Json(with_links(live_process(&state, &project).await?)).into_response())
}

async fn modify_process(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
    ApiJson(process): ApiJson<DeploymentProcess>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let project_id = id
        .strip_prefix("deploymentprocess-")
        .filter(|rest| !rest.contains("-s-"))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{id} is not a project's deployment process; a release's snapshot cannot change"
            ))
        })?;
    let project = crud::load::<Project>(&state, Some(&space_id), project_id).await?;
    save_process(&state, &project, process).await
}

async fn modify_project_process(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, project_id)): Path<(String, String)>,
    ApiJson(process): ApiJson<DeploymentProcess>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let project = crud::load::<Project>(&state, Some(&space_id), &project_id).await?;
    save_process(&state, &project, process).await
}

/// Saves a process if it was made from the stored version (409 otherwise).
async fn save_process(
    state: &AppState,
    project: &Project,
    mut process: DeploymentProcess,
) -> Result<Response, ApiError> {
    let stored = live_process(state, project).await?;
    if process.version != stored.version {
        return Err(ApiError::Conflict(format!(
            "the deployment process was changed by someone else (version {} is stored, this change was made to version {}); reload it and try again",
            stored.version, process.version
        )));
    }
    process.id.clone_from(&stored.id);
    process.space_id.clone_from(&project.space_id);
    process.project_id.clone_from(&project.id);
    process.last_snapshot_id = stored.last_snapshot_id.clone();
    process.assign_ids(new_guid);
    let errors = process.normalize_and_validate();
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    process.version = stored.version + 1;
    let document = document_from_resource(&process)?;
    let change = if stored.version == 0 {
        Change::Insert(document)
    } else {
        Change::UpdateIfVersion {
            document,
            expected_version: stored.version,
        }
    };
    state.store().write(&[change]).await?;
    Ok(Json(with_links(process)).into_response())
}

// ---------------------------------------------------------------------------------------------
// Releases

/// A copy of a document under a new id, owned by the project, pointing at nothing (a
/// snapshot must not keep environments or pools from being deleted).
fn snapshot_document(mut document: Document, id: &str, project_id: &str) -> Document {
    if let Some(body) = document.body.as_object_mut() {
        body.insert("Id".to_owned(), json!(id));
    }
    document.id = id.to_owned();
    document.name = id.to_owned();
    document.owner_id = Some(project_id.to_owned());
    document.references = Vec::new();
    document.version = 1;
    document
}

/// Snapshots of the project's variables and its library sets' for `release_id`: the changes
/// that write them, the project set's snapshot id and the library snapshots' ids.
async fn variable_snapshots(
    state: &AppState,
    project: &Project,
    release_id: &str,
    generation: &str,
) -> Result<(Vec<Change>, String, Vec<String>), ApiError> {
    let mut changes = Vec::new();
    let project_snapshot_id = format!("{}-s-{release_id}{generation}", project.variable_set_id);
    let project_set = state
        .store()
        .get_document(ResourceKind::VariableSet, &project.variable_set_id)
        .await?
        .ok_or_else(|| ApiError::internal_message("the project's variable set is missing"))?;
    changes.push(Change::Insert(snapshot_document(
        project_set,
        &project_snapshot_id,
        &project.id,
    )));
    let mut library_ids = Vec::new();
    for library_id in &project.included_library_variable_set_ids {
        let Some(library) = state
            .store()
            .get_resource::<LibraryVariableSet>(library_id)
            .await?
        else {
            continue;
        };
        let Some(set) = state
            .store()
            .get_document(ResourceKind::VariableSet, &library.variable_set_id)
            .await?
        else {
            continue;
        };
        let id = format!("{}-s-{release_id}{generation}", library.variable_set_id);
        changes.push(Change::Insert(snapshot_document(set, &id, &project.id)));
        library_ids.push(id);
    }
    Ok((changes, project_snapshot_id, library_ids))
}

async fn project_channels(state: &AppState, project: &Project) -> Result<Vec<Channel>, ApiError> {
    Ok(state
        .store()
        .list_resources::<Channel>(&DocumentQuery {
            owner_id: Some(project.id.clone()),
            ..DocumentQuery::default()
        })
        .await?
        .items)
}

async fn project_releases(state: &AppState, project_id: &str) -> Result<Vec<Release>, ApiError> {
    Ok(state
        .store()
        .list_resources::<Release>(&DocumentQuery {
            owner_id: Some(project_id.to_owned()),
            ..DocumentQuery::default()
        })
        .await?
        .items)
}

/// What a new release asks for.
#[derive(Default)]
struct NewRelease {
    version: Option<String>,
    channel: Option<String>,
    release_notes: Option<String>,
    ignore_if_exists: bool,
    /// Versions given as the release resource's `SelectedPackages`.
    selected_packages: Vec<cuttle_domain::SelectedPackage>,
    /// Versions given as Octopus's command fields (`Packages`, `PackageVersion`…).
    package_request: PackageVersionRequest,
    custom_fields: serde_json::Map<String, serde_json::Value>,
}

/// The package references of the process's enabled actions, with the names specs match.
pub(crate) fn process_package_references(process: &DeploymentProcess) -> Vec<PackageReferenceFact> {
    process
        .steps
        .iter()
        .flat_map(|step| {
            step.actions
                .iter()
                .filter(|action| !action.is_disabled)
                .flat_map(move |action| {
                    action
                        .package_references()
                        .into_iter()
                        .map(move |reference| PackageReferenceFact {
                            step_name: step.name.clone(),
                            action_name: action.name.clone(),
                            package_reference_name: reference.name,
                            package_id: reference.package_id,
                            feed_id: reference.feed_id,
                        })
                })
        })
        .collect()
}

/// The versions each feed holds for the packages `references` use; a feed Cuttle does not
/// host has no entry (its versions are taken on trust). The space's packages are read once.
async fn feed_versions(
    state: &AppState,
    space_id: &str,
    references: &[PackageReferenceFact],
) -> Result<HashMap<(String, String), Vec<String>>, ApiError> {
    let mut versions: HashMap<(String, String), Vec<String>> = HashMap::new();
    if !references
        .iter()
        .any(|reference| reference.feed_id == cuttle_domain::BUILT_IN_FEED_ID)
    {
        return Ok(versions);
    }
    let packages = state
        .store()
        .list_resources::<cuttle_domain::Package>(&DocumentQuery::in_space(space_id))
        .await?
        .items;
    for reference in references
        .iter()
        .filter(|reference| reference.feed_id == cuttle_domain::BUILT_IN_FEED_ID)
    {
        versions
            .entry((reference.feed_id.clone(), reference.package_id.clone()))
            .or_insert_with(|| {
                packages
                    .iter()
                    .filter(|package| {
                        package
                            .package_id
                            .eq_ignore_ascii_case(&reference.package_id)
                    })
                    .map(|package| package.version.clone())
                    .collect()
            });
    }
    Ok(versions)
}

/// The release resource's `SelectedPackages` as specs, so both ways of asking share one path.
fn selected_packages_as_specs(selected: &[cuttle_domain::SelectedPackage]) -> Vec<String> {
    selected
        .iter()
        .filter(|package| !package.version.trim().is_empty())
        .map(|package| {
            let step = [&package.action_name, &package.step_name]
                .into_iter()
                .find(|name| !name.trim().is_empty())
                .map_or("*", String::as_str);
            let reference = if package.package_reference_name.trim().is_empty() {
                ""
            } else {
                package.package_reference_name.as_str()
            };
            // Three parts even for the primary package (an empty reference name), so the
            // spec names exactly that package.
            format!("{step}:{reference}:{}", package.version)
        })
        .collect()
}

/// The channel (given, or the best match) and the package versions the release pins.
///
/// Without a named channel, explicit versions may pick a channel: the first whose rules
/// govern one of the packages and accept the versions, else the default channel — as
/// Octopus's tools do. Without explicit versions the default channel is used, so "newest"
/// never silently moves a release into a pre-release channel.
fn choose_channel_and_packages<'channel>(
    project: &Project,
    channels: &'channel [Channel],
    named_channel: Option<&str>,
    references: &[PackageReferenceFact],
    request: &PackageVersionRequest,
    versions: &HashMap<(String, String), Vec<String>>,
) -> Result<(&'channel Channel, Vec<PinnedPackage>), ApiError> {
    let lookup = |feed_id: &str, package_id: &str| {
        if feed_id == cuttle_domain::BUILT_IN_FEED_ID {
            Some(
                versions
                    .get(&(feed_id.to_owned(), package_id.to_owned()))
                    .cloned()
                    .unwrap_or_default(),
            )
        } else {
            None
        }
    };
    let select = |channel: &Channel| {
        select_package_versions(references, request, channel, lookup).map_err(|error| {
            ApiError::BadRequest {
                message: format!(
                    "The release's package versions could not be chosen in channel '{}'.",
                    channel.name
                ),
                errors: error.problems,
            }
        })
    };
    if let Some(key) = named_channel {
        let channel = channels
            .iter()
            .find(|channel| channel.id == key || channel.name.eq_ignore_ascii_case(key))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "channel '{key}' was not found in project '{}'",
                    project.name
                ))
            })?;
        return Ok((channel, select(channel)?));
    }
    let default_channel = channels
        .iter()
        .find(|channel| channel.is_default)
        .or_else(|| channels.first())
        .ok_or_else(|| {
            ApiError::bad_request(format!("project '{}' has no channel", project.name))
        })?;
    let explicit = !request.specs.is_empty() || request.default_version.is_some();
    if explicit {
        let governs_a_package = |channel: &Channel| {
            channel.rules.iter().any(|rule| {
                references.iter().any(|reference| {
                    cuttle_pipeline::channel_rules::rule_applies_to(
                        rule,
                        &reference.action_name,
                        &reference.package_reference_name,
                    )
                })
            })
        };
        for channel in channels
            .iter()
            .filter(|channel| !channel.is_default && governs_a_package(channel))
        {
            if let Ok(pinned) = select(channel) {
                return Ok((channel, pinned));
            }
        }
    }
    Ok((default_channel, select(default_channel)?))
}

/// Creates a release: its version (given or from the project's template), its channel, its
/// package versions, and snapshots of the process and the variables, all in one write.
async fn create_release(
    state: &AppState,
    project: &Project,
    request: NewRelease,
) -> Result<(Release, bool), ApiError> {
    let channels = project_channels(state, project).await?;
    let process = live_process(state, project).await?;
    let references = process_package_references(&process);
    let mut package_request = request.package_request.clone();
    package_request
        .specs
        .extend(selected_packages_as_specs(&request.selected_packages));
    let versions = feed_versions(state, &project.space_id, &references).await?;
    let named_channel = request
        .channel
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty());
    let (channel, pinned_packages) = choose_channel_and_packages(
        project,
        &channels,
        named_channel,
        &references,
        &package_request,
        &versions,
    )?;
    let existing = project_releases(state, &project.id).await?;
    let version = match request
        .version
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
    {
        Some(version) => version.to_owned(),
        None => {
            let facts: Vec<ReleaseVersionFact> = existing
                .iter()
                .map(|release| ReleaseVersionFact {
                    version: release.version.clone(),
                    channel_name: channels
                        .iter()
                        .find(|channel| channel.id == release.channel_id)
                        .map(|channel| channel.name.clone())
                        .unwrap_or_default(),
                })
                .collect();
            let template = project
                .versioning_strategy
                .template
                .clone()
                .unwrap_or_else(|| cuttle_domain::DEFAULT_VERSION_TEMPLATE.to_owned());
            next_release_version(&template, &facts, &channel.name, Utc::now()).map_err(|error| {
                ApiError::bad_request(format!(
                    "the release version could not be made from the project's version template '{template}': {error}"
                ))
            })?
        }
    };
    if let Some(found) = existing
        .iter()
        .find(|release| release.version.eq_ignore_ascii_case(&version))
    {
        if request.ignore_if_exists {
            return Ok((found.clone(), false));
        }
        return Err(ApiError::bad_request(format!(
            "a release with version {version} already exists in project '{}'",
            project.name
        )));
    }
    let release_id = state.store().allocate_id(ResourceKind::Release).await?;
    let process_snapshot_id = format!("{}-s-{release_id}", process.id);
    let process_document = snapshot_document(
        document_from_resource(&process)?,
        &process_snapshot_id,
        &project.id,
    );
    let (variable_changes, variable_snapshot_id, library_snapshot_ids) =
        variable_snapshots(state, project, &release_id, "").await?;
    let mut release = Release {
        id: release_id,
        space_id: project.space_id.clone(),
        project_id: project.id.clone(),
        channel_id: channel.id.clone(),
        version,
        release_notes: request.release_notes,
        assembled: now_text(),
        project_deployment_process_snapshot_id: process_snapshot_id,
        project_variable_set_snapshot_id: variable_snapshot_id,
        library_variable_set_snapshot_ids: library_snapshot_ids,
        ignore_channel_rules: package_request.ignore_channel_rules,
        selected_packages: pinned_packages
            .iter()
            .map(PinnedPackage::to_selected_package)
            .collect(),
        custom_fields: request.custom_fields,
        ..Release::default()
    };
    let errors = release.normalize_and_validate();
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut changes = vec![Change::Insert(process_document)];
    changes.extend(variable_changes);
    changes.push(Change::Insert(document_from_resource(&release)?));
    state.store().write(&changes).await?;
    Ok((release, true))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct ReleaseBody {
    project_id: String,
    channel_id: Option<String>,
    version: Option<String>,
    release_notes: Option<String>,
    selected_packages: Vec<cuttle_domain::SelectedPackage>,
    ignore_channel_rules: bool,
    custom_fields: serde_json::Map<String, serde_json::Value>,
}

async fn create_release_resource(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    ApiJson(body): ApiJson<ReleaseBody>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    if body.project_id.trim().is_empty() {
        return Err(ApiError::bad_request("ProjectId is required"));
    }
    let project = load_project(&state, &space_id, &body.project_id).await?;
    let (release, _) = create_release(
        &state,
        &project,
        NewRelease {
            version: body.version,
            channel: body.channel_id,
            release_notes: body.release_notes,
            selected_packages: body.selected_packages,
            package_request: PackageVersionRequest {
                ignore_channel_rules: body.ignore_channel_rules,
                ..PackageVersionRequest::default()
            },
            custom_fields: body.custom_fields,
            ..NewRelease::default()
        },
    )
    .await?;
    queue_automatic_deployments(&state, &project, &release).await?;
    Ok((StatusCode::CREATED, Json(with_links(release))).into_response())
}

/// Octopus's command bodies mix PascalCase fields with camelCase plumbing; names are
/// matched ignoring case, so `ProjectName` and `projectName` both work.
fn field<'a>(body: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    body.as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
        .filter(|value| !value.is_null())
}

fn text_field(body: &serde_json::Value, name: &str) -> Option<String> {
    field(body, name)
        .and_then(|value| value.as_str())
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

fn list_field(body: &serde_json::Value, name: &str) -> Vec<String> {
    field(body, name)
        .and_then(|value| value.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str())
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The project a command names in `ProjectName` (a name, slug or id); 400 when unknown.
async fn command_project(
    state: &AppState,
    space_id: &str,
    body: &serde_json::Value,
) -> Result<Project, ApiError> {
    let project_key = text_field(body, "ProjectName")
        .or_else(|| text_field(body, "ProjectIdOrName"))
        .ok_or_else(|| ApiError::bad_request("ProjectName is required"))?;
    load_project(state, space_id, &project_key)
        .await
        .map_err(|_| ApiError::bad_request(format!("project '{project_key}' was not found")))
}

fn bool_field(body: &serde_json::Value, name: &str) -> bool {
    field(body, name).and_then(serde_json::Value::as_bool) == Some(true)
}

async fn create_release_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let project = command_project(&state, &space_id, &body).await?;
    let custom_fields = field(&body, "CustomFields")
        .and_then(|value| value.as_object())
        .cloned()
        .unwrap_or_default();
    let (release, created) = create_release(
        &state,
        &project,
        NewRelease {
            version: text_field(&body, "ReleaseVersion"),
            channel: text_field(&body, "ChannelName")
                .or_else(|| text_field(&body, "ChannelIdOrName")),
            release_notes: text_field(&body, "ReleaseNotes"),
            ignore_if_exists: bool_field(&body, "IgnoreIfAlreadyExists"),
            package_request: PackageVersionRequest {
                specs: list_field(&body, "Packages"),
                default_version: text_field(&body, "PackageVersion"),
                prerelease_tag: text_field(&body, "PackagePrerelease"),
                ignore_channel_rules: bool_field(&body, "IgnoreChannelRules"),
            },
            custom_fields,
            ..NewRelease::default()
        },
    )
    .await?;
    if created {
        queue_automatic_deployments(&state, &project, &release).await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"ReleaseId": release.id, "ReleaseVersion": release.version})),
    )
        .into_response())
}

async fn load_release(state: &AppState, space_id: &str, id: &str) -> Result<Release, ApiError> {
    crud::load::<Release>(state, Some(space_id), id).await
}

async fn get_release(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    Ok(Json(with_links(load_release(&state, &space_id, &id).await?)).into_response())
}

async fn get_project_release_by_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, project_id, version)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let project = crud::load::<Project>(&state, Some(&space_id), &project_id).await?;
    let release = project_releases(&state, &project.id)
        .await?
        .into_iter()
        .find(|release| release.version.eq_ignore_ascii_case(&version))
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "release {version} of project '{}' was not found",
                project.name
            ))
        })?;
    Ok(Json(with_links(release)).into_response())
}

async fn list_releases(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    parameters: ListParameters,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let query = DocumentQuery {
        space_id: Some(space_id.clone()),
        ..crud::document_query(&parameters)
    };
    crud::list_page::<Release>(
        &state,
        &query,
        &parameters,
        &format!("/api/{space_id}/releases"),
    )
    .await
}

async fn list_project_releases(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, project_id)): Path<(String, String)>,
    parameters: ListParameters,
    axum::extract::RawQuery(raw_query): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let project = crud::load::<Project>(&state, Some(&space_id), &project_id).await?;
    let search = query_value(raw_query.as_deref(), "searchbyversion");
    let query = DocumentQuery {
        space_id: Some(space_id.clone()),
        owner_id: Some(project.id.clone()),
        partial_name: search.or_else(|| parameters.partial_name.clone()),
        ..crud::document_query(&parameters)
    };
    crud::list_page::<Release>(
        &state,
        &query,
        &parameters,
        &format!("/api/{space_id}/projects/{}/releases", project.id),
    )
    .await
}

fn query_value(raw_query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

fn query_list(raw_query: Option<&str>, name: &str) -> Vec<String> {
    query_value(raw_query, name)
        .map(|value| {
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

async fn release_deployments(
    state: &AppState,
    release: &Release,
) -> Result<Vec<Deployment>, ApiError> {
    Ok(state
        .store()
        .list_resources::<Deployment>(&DocumentQuery {
            owner_id: Some(release.project_id.clone()),
            ..DocumentQuery::default()
        })
        .await?
        .items
        .into_iter()
        .filter(|deployment| deployment.release_id == release.id)
        .collect())
}

async fn delete_release(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let release = load_release(&state, &space_id, &id).await?;
    delete_release_with_history(&state, &release).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Deletes `release` with its deployments and its process and variable snapshots, in one
/// write; refuses (400) while one of its deployments is still running. The tasks and their
/// logs stay: they are the audit trail.
pub(crate) async fn delete_release_with_history(
    state: &AppState,
    release: &Release,
) -> Result<(), ApiError> {
    let deployments = release_deployments(state, release).await?;
    let tasks = tasks_by_id(state, &deployments).await?;
    if let Some(running) = deployments.iter().find(|deployment| {
        tasks
            .get(&deployment.task_id)
            .is_some_and(|task| !task.state.is_completed())
    }) {
        return Err(ApiError::bad_request(format!(
            "release {} is being deployed ({}); cancel or wait for it before deleting the release",
            release.version, running.task_id
        )));
    }
    let mut changes: Vec<Change> = deployments
        .iter()
        .map(|deployment| Change::Delete {
            kind: ResourceKind::Deployment,
            id: deployment.id.clone(),
        })
        .collect();
    changes.push(Change::Delete {
        kind: ResourceKind::Release,
        id: release.id.clone(),
    });
    changes.push(Change::Delete {
        kind: ResourceKind::DeploymentProcess,
        id: release.project_deployment_process_snapshot_id.clone(),
    });
    for id in std::iter::once(&release.project_variable_set_snapshot_id)
        .chain(&release.library_variable_set_snapshot_ids)
    {
        changes.push(Change::Delete {
            kind: ResourceKind::VariableSet,
            id: id.clone(),
        });
    }
    state.store().write(&changes).await?;
    Ok(())
}

/// "Update variables": the release takes a fresh snapshot of the project's variables.
async fn snapshot_variables(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let mut release = load_release(&state, &space_id, &id).await?;
    let project = crud::load::<Project>(&state, Some(&space_id), &release.project_id).await?;
    let generation = format!("-{}", &new_guid()[..8]);
    let (mut changes, project_snapshot, library_snapshots) =
        variable_snapshots(&state, &project, &release.id, &generation).await?;
    for old in std::iter::once(&release.project_variable_set_snapshot_id)
        .chain(&release.library_variable_set_snapshot_ids)
    {
        changes.push(Change::Delete {
            kind: ResourceKind::VariableSet,
            id: old.clone(),
        });
    }
    release.project_variable_set_snapshot_id = project_snapshot;
    release.library_variable_set_snapshot_ids = library_snapshots;
    changes.push(Change::Update(document_from_resource(&release)?));
    state.store().write(&changes).await?;
    Ok(Json(with_links(release)).into_response())
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct DefectBody {
    description: String,
}

async fn report_defect(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<DefectBody>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let mut release = load_release(&state, &space_id, &id).await?;
    if body.description.trim().is_empty() {
        return Err(ApiError::bad_request(
            "Description: say why the release must not progress",
        ));
    }
    release.defects.push(cuttle_domain::Defect {
        description: body.description.trim().to_owned(),
        status: "Unresolved".to_owned(),
    });
    state
        .store()
        .write(&[Change::Update(document_from_resource(&release)?)])
        .await?;
    Ok(
        Json(json!({"Description": body.description.trim(), "Status": "Unresolved"}))
            .into_response(),
    )
}

async fn resolve_defect(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let mut release = load_release(&state, &space_id, &id).await?;
    for defect in &mut release.defects {
        defect.status = "Resolved".to_owned();
    }
    state
        .store()
        .write(&[Change::Update(document_from_resource(&release)?)])
        .await?;
    Ok(Json(with_links(release)).into_response())
}

// ---------------------------------------------------------------------------------------------
// Lifecycle progression

/// The tasks of `deployments`, by id.
pub(crate) async fn tasks_by_id<'a>(
    state: &AppState,
    deployments: impl IntoIterator<Item = &'a Deployment>,
) -> Result<HashMap<String, TaskRecord>, ApiError> {
    let ids: Vec<String> = deployments
        .into_iter()
        .map(|deployment| deployment.task_id.clone())
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let query = TaskQuery {
        ids: Some(ids),
        ..TaskQuery::default()
    };
    let (_, tasks) = state.store().list_tasks(&query).await?;
    Ok(tasks
        .into_iter()
        .map(|task| (task.id.clone(), task))
        .collect())
}

/// The release's progression through its channel's (or project's) lifecycle.
async fn progression_of(
    state: &AppState,
    project: &Project,
    release: &Release,
) -> Result<(Progression, Vec<Environment>, Lifecycle), ApiError> {
    let channel = state
        .store()
        .get_resource::<Channel>(&release.channel_id)
        .await?;
    let lifecycle_id = channel
        .and_then(|channel| channel.lifecycle_id)
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| project.lifecycle_id.clone());
    let lifecycle = state
        .store()
        .get_resource::<Lifecycle>(&lifecycle_id)
        .await?
        .ok_or_else(|| ApiError::internal_message("the release's lifecycle is missing"))?;
    let environments = state
        .store()
        .list_resources::<Environment>(&DocumentQuery {
            space_id: Some(project.space_id.clone()),
            ..DocumentQuery::default()
        })
        .await?
        .items;
    let references: Vec<EnvironmentRef> = environments
        .iter()
        .map(|environment| EnvironmentRef::new(&environment.id, &environment.name))
        .collect();
    let deployments = release_deployments(state, release).await?;
    let tasks = tasks_by_id(state, &deployments).await?;
    let facts: Vec<DeploymentFact> = deployments
        .iter()
        .filter_map(|deployment| {
            let task = tasks.get(&deployment.task_id)?;
            let state: DeploymentState = task.state.as_str().parse().ok()?;
            Some(DeploymentFact {
                environment_id: deployment.environment_id.clone(),
                state,
            })
        })
        .collect();
    let defect = release
        .blocking_defect()
        .map(|defect| defect.description.clone());
    let progression = Progression::evaluate(&lifecycle, &references, &facts, defect.as_deref());
    Ok((progression, environments, lifecycle))
}

/// The environments `release` may be deployed to now.
pub(crate) async fn next_environments(
    state: &AppState,
    project: &Project,
    release: &Release,
) -> Result<Vec<String>, ApiError> {
    let (progression, _, _) = progression_of(state, project, release).await?;
    Ok(progression
        .deployable_environment_ids()
        .into_iter()
        .map(str::to_owned)
        .collect())
}

async fn release_progression(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let release = load_release(&state, &space_id, &id).await?;
    let project = crud::load::<Project>(&state, Some(&space_id), &release.project_id).await?;
    let (progression, environments, lifecycle) = progression_of(&state, &project, &release).await?;
    let phases: Vec<serde_json::Value> = progression
        .phases()
        .iter()
        .map(|phase| {
            json!({
                "Name": phase.name,
                "Progress": phase.progress.as_str(),
                "EnvironmentIds": phase.environment_ids,
                "AutomaticDeploymentTargets": phase.automatic_environment_ids,
                "OptionalDeploymentTargets": phase.optional_environment_ids,
                "IsOptionalPhase": phase.is_optional,
                "MinimumEnvironmentsBeforePromotion": phase.minimum_environments_before_promotion,
                "Blocked": phase.blocked,
            })
        })
        .collect();
    let decisions: Vec<serde_json::Value> = environments
        .iter()
        .map(|environment| match progression.can_deploy_to(&environment.id) {
            Ok(()) => json!({"EnvironmentId": environment.id, "Name": environment.name, "CanDeploy": true}),
            Err(reason) => json!({"EnvironmentId": environment.id, "Name": environment.name, "CanDeploy": false, "Reason": reason.to_string()}),
        })
        .collect();
    Ok(Json(json!({
        "ReleaseId": release.id,
        "LifecycleId": lifecycle.id,
        "Phases": phases,
        "Environments": decisions,
        "NextDeployments": progression.deployable_environment_ids(),
        "HasUnresolvedDefect": release.blocking_defect().is_some(),
    }))
    .into_response())
}

// ---------------------------------------------------------------------------------------------
// Deployments

/// Who asked for a deployment: a user, or the lifecycle's automatic promotion.
pub(crate) struct DeployedBy {
    id: String,
    name: String,
}

impl DeployedBy {
    fn caller(caller: &Caller) -> DeployedBy {
        DeployedBy {
            id: caller.user.id.clone(),
            name: caller.user.username.clone(),
        }
    }

    fn lifecycle() -> DeployedBy {
        DeployedBy {
            id: String::new(),
            name: "Lifecycle (automatic deployment)".to_owned(),
        }
    }
}

/// Queues a deployment to every automatic environment whose phase the release has reached and
/// that has no deployment of it yet (Octopus's automatic lifecycle deployments). Safe to call
/// again: an environment with a deployment in any state is left alone.
pub(crate) async fn queue_automatic_deployments(
    state: &AppState,
    project: &Project,
    release: &Release,
) -> Result<Vec<Deployment>, ApiError> {
    let (progression, environments, _) = progression_of(state, project, release).await?;
    let mut queued = Vec::new();
    for environment_id in progression.automatic_environments_to_deploy() {
        let Some(environment) = environments
            .iter()
            .find(|environment| &environment.id == environment_id)
        else {
            continue;
        };
        let request = NewDeployment {
            environment: environment.clone(),
            comments: Some("Deployed automatically when the lifecycle's phase opened".to_owned()),
            use_guided_failure: None,
            force_package_download: false,
            force_package_redeployment: false,
            skip_actions: Vec::new(),
            specific_machine_ids: Vec::new(),
            excluded_machine_ids: Vec::new(),
            form_values: serde_json::Map::new(),
            queue_time: None,
            queue_time_expiry: None,
        };
        queued.push(
            create_deployment(state, &DeployedBy::lifecycle(), project, release, request).await?,
        );
    }
    Ok(queued)
}

/// After deployments succeed, queues the automatic deployments their releases have reached.
/// Looks at `Deploy` tasks that succeeded since `since`; returns the newest completion seen.
pub async fn promote_automatically(
    state: &AppState,
    since: DateTime<Utc>,
) -> Result<DateTime<Utc>, ApiError> {
    let query = TaskQuery {
        name: Some(cuttle_orchestrator::DEPLOY_TASK.to_owned()),
        states: Some(vec![cuttle_store::TaskState::Success]),
        completed_after: Some(since),
        take: 200,
        ..TaskQuery::default()
    };
    let (_, tasks) = state.store().list_tasks(&query).await?;
    let mut newest = since;
    let mut seen_releases: Vec<String> = Vec::new();
    for task in tasks {
        let Some(completed) = task.completed_time else {
            continue;
        };
        if completed <= since {
            continue;
        }
        newest = newest.max(completed);
        let Some(release_id) = task.arguments["ReleaseId"].as_str() else {
            continue;
        };
        if seen_releases.iter().any(|seen| seen == release_id) {
            continue;
        }
        seen_releases.push(release_id.to_owned());
        let Some(release) = state.store().get_resource::<Release>(release_id).await? else {
            continue;
        };
        let Some(project) = state
            .store()
            .get_resource::<Project>(&release.project_id)
            .await?
        else {
            continue;
        };
        let queued = queue_automatic_deployments(state, &project, &release).await?;
        for deployment in queued {
            tracing::info!(
                deployment = %deployment.id,
                release = %release.version,
                "queued an automatic deployment"
            );
        }
    }
    Ok(newest)
}

/// What one deployment request asks for, after names were resolved.
struct NewDeployment {
    environment: Environment,
    comments: Option<String>,
    use_guided_failure: Option<bool>,
    force_package_download: bool,
    force_package_redeployment: bool,
    skip_actions: Vec<String>,
    specific_machine_ids: Vec<String>,
    excluded_machine_ids: Vec<String>,
    form_values: serde_json::Map<String, serde_json::Value>,
    queue_time: Option<DateTime<Utc>>,
    queue_time_expiry: Option<DateTime<Utc>>,
}

/// Refuses a deployment whose required prompted variables (in the release's variable
/// snapshots, scoped to this environment) have no value, naming every one: the task would
/// only fail later with the same reason.
async fn check_prompted_values(
    state: &AppState,
    project: &Project,
    release: &Release,
    environment: &Environment,
    form_values: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), ApiError> {
    let mut sources = cuttle_vars::VariableSources::new();
    let project_set = super::variables::load_variable_set(
        state,
        &project.space_id,
        &release.project_variable_set_snapshot_id,
    )
    .await?;
    sources.add_project_variables(&project_set);
    for id in &release.library_variable_set_snapshot_ids {
        let set = super::variables::load_variable_set(state, &project.space_id, id).await?;
        sources.add_library_variable_set(&set);
    }
    let scope = cuttle_vars::DeploymentScope {
        project_id: Some(project.id.clone()),
        environment_id: Some(environment.id.clone()),
        channel_id: Some(release.channel_id.clone()),
        process_owner_id: Some(project.id.clone()),
        ..cuttle_vars::DeploymentScope::default()
    };
    let answers = cuttle_vars::prompts::PromptAnswers::from_form_values(
        form_values
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str().unwrap_or_default())),
    );
    sources
        .apply_prompt_answers(&scope, &answers)
        .map(|_| ())
        .map_err(|error| {
            ApiError::bad_request(format!(
                "release {} cannot be deployed to {}: {error}",
                release.version, environment.name
            ))
        })
}

/// Checks a deployment against the lifecycle and queues it with its task.
async fn create_deployment(
    state: &AppState,
    deployed_by: &DeployedBy,
    project: &Project,
    release: &Release,
    request: NewDeployment,
) -> Result<Deployment, ApiError> {
    let environment = &request.environment;
    if project.is_disabled {
        return Err(ApiError::bad_request(format!(
            "project '{}' is disabled",
            project.name
        )));
    }
    let (progression, _, _) = progression_of(state, project, release).await?;
    if let Err(refusal) = progression.can_deploy_to(&environment.id) {
        return Err(ApiError::bad_request(format!(
            "release {} cannot be deployed to {}: {refusal}",
            release.version, environment.name
        )));
    }
    let process = state
        .store()
        .get_resource::<DeploymentProcess>(&release.project_deployment_process_snapshot_id)
        .await?
        .unwrap_or_default();
    for skip in &request.skip_actions {
        match process.find_action(skip) {
            None => {
                return Err(ApiError::bad_request(format!(
                    "SkipActions: release {} has no step '{skip}'",
                    release.version
                )));
            }
            Some(action) if action.is_required => {
                return Err(ApiError::bad_request(format!(
                    "SkipActions: step '{}' is required and cannot be skipped",
                    action.name
                )));
            }
            Some(_) => {}
        }
    }
    check_prompted_values(state, project, release, environment, &request.form_values).await?;
    let now = Utc::now();
    if let Some(queue_time) = request.queue_time
        && queue_time > now + chrono::Duration::days(30)
    {
        return Err(ApiError::bad_request(
            "QueueTime: a deployment can be scheduled at most 30 days ahead",
        ));
    }
    let guided_failure =
        request
            .use_guided_failure
            .unwrap_or(match project.default_guided_failure_mode.as_str() {
                "On" => true,
                "Off" => false,
                _ => environment.use_guided_failure,
            });
    let deployment_id = state.store().allocate_id(ResourceKind::Deployment).await?;
    let task_id = state.store().allocate_id(ResourceKind::Task).await?;
    let skip_ids: Vec<String> = request
        .skip_actions
        .iter()
        .filter_map(|skip| process.find_action(skip).map(|action| action.id.clone()))
        .collect();
    let mut deployment = Deployment {
        id: deployment_id.clone(),
        space_id: project.space_id.clone(),
        project_id: project.id.clone(),
        release_id: release.id.clone(),
        channel_id: release.channel_id.clone(),
        environment_id: environment.id.clone(),
        tenant_id: None,
        task_id: task_id.clone(),
        deployment_process_id: release.project_deployment_process_snapshot_id.clone(),
        manifest_variable_set_id: release.project_variable_set_snapshot_id.clone(),
        name: format!("Deploy to {}", environment.name),
        comments: request.comments,
        created: format_time(now),
        queue_time: request.queue_time.map(format_time),
        queue_time_expiry: request.queue_time_expiry.map(format_time),
        force_package_download: request.force_package_download,
        force_package_redeployment: request.force_package_redeployment,
        use_guided_failure: guided_failure,
        skip_actions: skip_ids,
        specific_machine_ids: request.specific_machine_ids,
        excluded_machine_ids: request.excluded_machine_ids,
        form_values: request.form_values,
        deployed_by: deployed_by.name.clone(),
        deployed_by_id: deployed_by.id.clone(),
        ..Deployment::default()
    };
    let errors = deployment.normalize_and_validate();
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    state
        .store()
        .write(&[Change::Insert(document_from_resource(&deployment)?)])
        .await?;
    let mut task = TaskRecord::queued(
        task_id,
        Some(project.space_id.clone()),
        cuttle_orchestrator::DEPLOY_TASK,
        format!(
            "Deploy {} release {} to {}",
            project.name, release.version, environment.name
        ),
        json!({"DeploymentId": deployment.id, "ProjectId": project.id, "EnvironmentId": environment.id, "ReleaseId": release.id}),
        now,
    );
    task.project_id = Some(project.id.clone());
    task.environment_id = Some(environment.id.clone());
    task.concurrency_tag = Some(format!("{}/{}", project.id, environment.id));
    if let Some(queue_time) = request.queue_time {
        task.queue_time = queue_time;
    }
    task.queue_time_expiry = request.queue_time_expiry;
    if let Err(error) = state.store().insert_task(&task).await {
        // Without its task the deployment would never run; take it back.
        let removed = state
            .store()
            .write(&[Change::Delete {
                kind: ResourceKind::Deployment,
                id: deployment.id.clone(),
            }])
            .await;
        if let Err(removal) = removed {
            tracing::warn!(deployment = %deployment.id, "failed to remove a deployment whose task could not be queued: {removal}");
        }
        return Err(error.into());
    }
    state.wake_task_runner();
    Ok(deployment)
}

async fn space_environments(
    state: &AppState,
    space_id: &str,
) -> Result<Vec<Environment>, ApiError> {
    Ok(state
        .store()
        .list_resources::<Environment>(&DocumentQuery {
            space_id: Some(space_id.to_owned()),
            ..DocumentQuery::default()
        })
        .await?
        .items)
}

fn find_environment<'a>(environments: &'a [Environment], key: &str) -> Option<&'a Environment> {
    environments.iter().find(|environment| {
        environment.id.eq_ignore_ascii_case(key) || environment.name.eq_ignore_ascii_case(key)
    })
}

/// Machine names or ids to ids; unknown ones are an error naming them.
async fn machine_ids(
    state: &AppState,
    space_id: &str,
    field_name: &str,
    keys: &[String],
) -> Result<Vec<String>, ApiError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let machines = state
        .store()
        .list_resources::<DeploymentTarget>(&DocumentQuery {
            space_id: Some(space_id.to_owned()),
            ..DocumentQuery::default()
        })
        .await?
        .items;
    keys.iter()
        .map(|key| {
            machines
                .iter()
                .find(|machine| {
                    machine.id.eq_ignore_ascii_case(key) || machine.name.eq_ignore_ascii_case(key)
                })
                .map(|machine| machine.id.clone())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "{field_name}: deployment target '{key}' was not found"
                    ))
                })
        })
        .collect()
}

fn parse_time(body: &serde_json::Value, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match text_field(body, name) {
        None => Ok(None),
        Some(text) => DateTime::parse_from_rfc3339(&text)
            .map(|time| Some(time.with_timezone(&Utc)))
            .map_err(|error| {
                ApiError::bad_request(format!("{name}: '{text}' is not a date and time: {error}"))
            }),
    }
}

fn form_values(body: &serde_json::Value, name: &str) -> serde_json::Map<String, serde_json::Value> {
    field(body, name)
        .and_then(|value| value.as_object())
        .cloned()
        .unwrap_or_default()
}

async fn create_deployment_resource(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let release_id = text_field(&body, "ReleaseId")
        .ok_or_else(|| ApiError::bad_request("ReleaseId is required"))?;
    let environment_id = text_field(&body, "EnvironmentId")
        .ok_or_else(|| ApiError::bad_request("EnvironmentId is required"))?;
    let release = load_release(&state, &space_id, &release_id)
        .await
        .map_err(|_| {
            ApiError::bad_request(format!("ReleaseId: release {release_id} was not found"))
        })?;
    let project = crud::load::<Project>(&state, Some(&space_id), &release.project_id).await?;
    let environments = space_environments(&state, &space_id).await?;
    let environment = find_environment(&environments, &environment_id)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "EnvironmentId: environment {environment_id} was not found"
            ))
        })?
        .clone();
    let request = NewDeployment {
        environment,
        comments: text_field(&body, "Comments"),
        use_guided_failure: field(&body, "UseGuidedFailure").and_then(serde_json::Value::as_bool),
        force_package_download: bool_field(&body, "ForcePackageDownload"),
        force_package_redeployment: bool_field(&body, "ForcePackageRedeployment"),
        skip_actions: list_field(&body, "SkipActions"),
        specific_machine_ids: machine_ids(
            &state,
            &space_id,
            "SpecificMachineIds",
            &list_field(&body, "SpecificMachineIds"),
        )
        .await?,
        excluded_machine_ids: machine_ids(
            &state,
            &space_id,
            "ExcludedMachineIds",
            &list_field(&body, "ExcludedMachineIds"),
        )
        .await?,
        form_values: form_values(&body, "FormValues"),
        queue_time: parse_time(&body, "QueueTime")?,
        queue_time_expiry: parse_time(&body, "QueueTimeExpiry")?,
    };
    let deployment = create_deployment(
        &state,
        &DeployedBy::caller(&caller),
        &project,
        &release,
        request,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(with_links(deployment))).into_response())
}

async fn create_deployments_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let project = command_project(&state, &space_id, &body).await?;
    let version = text_field(&body, "ReleaseVersion")
        .ok_or_else(|| ApiError::bad_request("ReleaseVersion is required"))?;
    let release = project_releases(&state, &project.id)
        .await?
        .into_iter()
        .find(|release| release.version.eq_ignore_ascii_case(&version))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "release {version} of project '{}' was not found",
                project.name
            ))
        })?;
    let names = list_field(&body, "EnvironmentNames");
    if names.is_empty() {
        return Err(ApiError::bad_request(
            "EnvironmentNames: name at least one environment to deploy to",
        ));
    }
    let environments = space_environments(&state, &space_id).await?;
    let mut chosen = Vec::new();
    let mut unknown = Vec::new();
    for name in &names {
        match find_environment(&environments, name) {
            Some(environment) => chosen.push(environment.clone()),
            None => unknown.push(format!("environment '{name}' was not found")),
        }
    }
    if !unknown.is_empty() {
        return Err(ApiError::BadRequest {
            message: "There was a problem with your request.".to_owned(),
            errors: unknown,
        });
    }
    let specific = machine_ids(
        &state,
        &space_id,
        "SpecificMachineNames",
        &list_field(&body, "SpecificMachineNames"),
    )
    .await?;
    let excluded = machine_ids(
        &state,
        &space_id,
        "ExcludedMachineNames",
        &list_field(&body, "ExcludedMachineNames"),
    )
    .await?;
    let variables = form_values(&body, "Variables");
    let mut created = Vec::new();
    for environment in chosen {
        let request = NewDeployment {
            environment,
            comments: None,
            use_guided_failure: field(&body, "UseGuidedFailure")
                .and_then(serde_json::Value::as_bool),
            force_package_download: bool_field(&body, "ForcePackageDownload"),
            force_package_redeployment: bool_field(&body, "ForcePackageRedeployment"),
            skip_actions: list_field(&body, "SkipStepNames"),
            specific_machine_ids: specific.clone(),
            excluded_machine_ids: excluded.clone(),
            form_values: variables.clone(),
            queue_time: parse_time(&body, "RunAt")?,
            queue_time_expiry: parse_time(&body, "NoRunAfter")?,
        };
        let deployment = create_deployment(
            &state,
            &DeployedBy::caller(&caller),
            &project,
            &release,
            request,
        )
        .await?;
        created.push(json!({"DeploymentId": deployment.id, "ServerTaskId": deployment.task_id}));
    }
    Ok(Json(json!({ "DeploymentServerTasks": created })).into_response())
}

async fn create_tenanted_deployments_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    Err(ApiError::bad_request(
        "tenanted deployments are not available yet: this server has no tenants, so deploy untenanted with deployments/create/untenanted/v1",
    ))
}

async fn get_deployment(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let deployment = crud::load::<Deployment>(&state, Some(&space_id), &id).await?;
    Ok(Json(with_links(deployment)).into_response())
}

async fn list_deployments(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    parameters: ListParameters,
    axum::extract::RawQuery(raw_query): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let projects = query_list(raw_query.as_deref(), "projects");
    let environments = query_list(raw_query.as_deref(), "environments");
    let channels = query_list(raw_query.as_deref(), "channels");
    let task_state = query_value(raw_query.as_deref(), "taskState");
    let all = state
        .store()
        .list_resources::<Deployment>(&DocumentQuery {
            space_id: Some(space_id.clone()),
            ids: parameters.ids.clone(),
            ..DocumentQuery::default()
        })
        .await?
        .items;
    let mut matching: Vec<Deployment> = all
        .into_iter()
        .filter(|deployment| projects.is_empty() || projects.contains(&deployment.project_id))
        .filter(|deployment| {
            environments.is_empty() || environments.contains(&deployment.environment_id)
        })
        .filter(|deployment| channels.is_empty() || channels.contains(&deployment.channel_id))
        .collect();
    if let Some(wanted) = task_state {
        let tasks = tasks_by_id(&state, &matching).await?;
        matching.retain(|deployment| {
            tasks
                .get(&deployment.task_id)
                .is_some_and(|task| task.state.as_str().eq_ignore_ascii_case(&wanted))
        });
    }
    page_of(
        matching,
        &parameters,
        &format!("/api/{space_id}/deployments"),
    )
}

async fn list_release_deployments(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
    parameters: ListParameters,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let release = load_release(&state, &space_id, &id).await?;
    let deployments = release_deployments(&state, &release).await?;
    page_of(
        deployments,
        &parameters,
        &format!("/api/{space_id}/releases/{id}/deployments"),
    )
}

/// Pages an already-filtered list in Octopus's envelope.
fn page_of<T: ManagedResource>(
    items: Vec<T>,
    parameters: &ListParameters,
    base_path: &str,
) -> Result<Response, ApiError> {
    let total = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let skip = usize::try_from(parameters.skip.max(0)).unwrap_or(usize::MAX);
    let take = usize::try_from(parameters.take.max(0)).unwrap_or(usize::MAX);
    let page: Vec<_> = items
        .into_iter()
        .skip(skip)
        .take(take)
        .map(with_links)
        .collect();
    Ok(Json(collection(
        T::KIND.type_name(),
        total,
        page,
        parameters,
        base_path,
    ))
    .into_response())
}

// ---------------------------------------------------------------------------------------------
// Interruptions

async fn list_interruptions(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    parameters: ListParameters,
    axum::extract::RawQuery(raw_query): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let regarding = query_value(raw_query.as_deref(), "regarding");
    let pending_only = query_value(raw_query.as_deref(), "pendingOnly")
        .is_some_and(|value| value.eq_ignore_ascii_case("true"));
    let all = state
        .store()
        .list_resources::<Interruption>(&DocumentQuery {
            space_id: Some(space_id.clone()),
            ids: parameters.ids.clone(),
            ..DocumentQuery::default()
        })
        .await?
        .items;
    let matching: Vec<Interruption> = all
        .into_iter()
        .filter(|interruption| !pending_only || interruption.is_pending)
        .filter(|interruption| {
            regarding.as_ref().is_none_or(|id| {
                &interruption.task_id == id || interruption.related_document_ids.contains(id)
            })
        })
        .map(|interruption| with_caller_view(interruption, &caller))
        .collect();
    page_of(
        matching,
        &parameters,
        &format!("/api/{space_id}/interruptions"),
    )
}

/// Fills the fields that depend on who asks.
fn with_caller_view(mut interruption: Interruption, caller: &Caller) -> Interruption {
    interruption.has_responsibility =
        interruption.responsible_user_id.as_deref() == Some(caller.user.id.as_str());
    interruption.can_take_responsibility = interruption.is_pending;
    interruption
}

async fn get_interruption(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let interruption = crud::load::<Interruption>(&state, Some(&space_id), &id).await?;
    Ok(Json(with_links(with_caller_view(interruption, &caller))).into_response())
}

async fn take_responsibility(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let mut interruption = crud::load::<Interruption>(&state, Some(&space_id), &id).await?;
    if !interruption.is_pending {
        return Err(ApiError::bad_request(format!(
            "interruption {id} was already answered"
        )));
    }
    interruption.responsible_user_id = Some(caller.user.id.clone());
    state.store().update_resource(&interruption).await?;
    Ok(Json(with_links(with_caller_view(interruption, &caller))).into_response())
}

async fn get_responsible(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let interruption = crud::load::<Interruption>(&state, Some(&space_id), &id).await?;
    Ok(Json(json!({"ResponsibleUserId": interruption.responsible_user_id})).into_response())
}

async fn submit_interruption(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let mut interruption = crud::load::<Interruption>(&state, Some(&space_id), &id).await?;
    if !interruption.is_pending {
        return Err(ApiError::bad_request(format!(
            "interruption {id} was already answered"
        )));
    }
    if let Some(responsible) = &interruption.responsible_user_id
        && responsible != &caller.user.id
    {
        return Err(ApiError::bad_request(format!(
            "interruption {id} is assigned to someone else; take responsibility for it first"
        )));
    }
    let answer_field = interruption.answer_field();
    let allowed = interruption.allowed_answers();
    let answer = text_field(&body, answer_field).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{answer_field}: choose one of {}",
            allowed.join(", ")
        ))
    })?;
    let Some(answer) = allowed
        .iter()
        .find(|allowed| allowed.eq_ignore_ascii_case(&answer))
    else {
        return Err(ApiError::bad_request(format!(
            "{answer_field}: '{answer}' is not one of {}",
            allowed.join(", ")
        )));
    };
    interruption
        .form
        .values
        .insert(answer_field.to_owned(), json!(answer));
    interruption.form.values.insert(
        "Notes".to_owned(),
        json!(text_field(&body, "Notes").unwrap_or_default()),
    );
    interruption.is_pending = false;
    interruption.responsible_user_id = Some(caller.user.id.clone());
    interruption.submitted_by = Some(caller.user.username.clone());
    interruption.submitted = Some(now_text());
    state.store().update_resource(&interruption).await?;
    state.wake_task_runner();
    Ok(Json(with_links(with_caller_view(interruption, &caller))).into_response())
}
