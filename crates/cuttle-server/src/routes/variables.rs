//! `/api/{spaceId}/variables`: project and library variable sets, and the variable preview.
//!
//! A variable set is a document owned by its project or library set (deleted with it), with
//! the ids its scopes name as references, so an environment or target still used in a scope
//! cannot be deleted. Sensitive values are sealed with the master key before they are stored
//! and never leave the server: reads show `Value: null, IsSensitive: true`, and a `null` sent
//! back means "unchanged". Saves name the `Version` they were made to; a stale one gets 409.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cuttle_api::{
    Links, PreviewCandidate, PreviewVariable, ReferenceDataItem, ScopeValues, VariablePreview,
    VariableSetResource,
};
use cuttle_domain::{
    Channel, DeploymentTarget, Environment, LibraryVariableSet, Project, ResourceKind,
    parse_resource_id,
};
use cuttle_store::{Change, Document, DocumentQuery};
use cuttle_vars::model::ReferencedResource;
use cuttle_vars::sensitive::{
    api_projection_of_set, map_sensitive_values, restore_unchanged_sensitive_values,
};
use cuttle_vars::validation::{
    VariableSetKind, normalize_variable_set, scope_references, validate_variable_set,
};
use cuttle_vars::{
    ActionScope, DeploymentScope, ScopeContext, TargetScope, VariableSet, VariableSources,
};

use super::crud::{self, new_guid, require_space};
use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/{space_id}/variables/preview", get(preview))
        .route(
            "/api/{space_id}/variables/{id}",
            get(get_variable_set).put(modify_variable_set),
        )
        .route(
            "/api/{space_id}/projects/{project_id}/variables",
            get(get_project_variables),
        )
}

/// The change that creates an owner's empty variable set, written with the owner.
pub(crate) fn new_variable_set_change(
    id: &str,
    space_id: &str,
    owner_id: &str,
) -> Result<Change, ApiError> {
    let set = VariableSet {
        id: id.to_owned(),
        owner_id: owner_id.to_owned(),
        space_id: Some(space_id.to_owned()),
        version: 1,
        variables: Vec::new(),
    };
    Ok(Change::Insert(variable_set_document(&set, Vec::new())?))
}

fn variable_set_document(set: &VariableSet, references: Vec<String>) -> Result<Document, ApiError> {
    Ok(Document {
        id: set.id.clone(),
        kind: ResourceKind::VariableSet,
        space_id: set.space_id.clone(),
        owner_id: Some(set.owner_id.clone()),
        name: set.id.clone(),
        sort_order: 0,
        references,
        body: serde_json::to_value(set).map_err(ApiError::internal)?,
        version: i64::try_from(set.version).unwrap_or(i64::MAX),
    })
}

/// The stored set, with sensitive values still sealed, and its version from the store.
pub(crate) async fn load_variable_set(
    state: &AppState,
    space_id: &str,
    id: &str,
) -> Result<VariableSet, ApiError> {
    let not_found = || ApiError::NotFound(format!("variable set {id} was not found"));
    let document = state
        .store()
        .get_document(ResourceKind::VariableSet, id)
        .await?
        .ok_or_else(not_found)?;
    if document.space_id.as_deref() != Some(space_id) {
        return Err(not_found());
    }
    let mut set: VariableSet = serde_json::from_value(document.body).map_err(ApiError::internal)?;
    set.version = u64::try_from(document.version).unwrap_or_default();
    Ok(set)
}

/// Is the owner a project (every scope) or a library variable set (fewer scopes)?
fn owner_kind(set: &VariableSet) -> VariableSetKind {
    match parse_resource_id(&set.owner_id) {
        Some((ResourceKind::LibraryVariableSet, _)) => VariableSetKind::LibraryVariableSet,
        _ => VariableSetKind::Project,
    }
}

async fn get_variable_set(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let set = load_variable_set(&state, &space_id, &id).await?;
    Ok(Json(resource(&state, &space_id, &set).await?).into_response())
}

async fn get_project_variables(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, project_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let project = crud::load::<Project>(&state, Some(&space_id), &project_id).await?;
    let set = load_variable_set(&state, &space_id, &project.variable_set_id).await?;
    Ok(Json(resource(&state, &space_id, &set).await?).into_response())
}

/// The API shape: secrets hidden, with the scope values an editor offers.
async fn resource(
    state: &AppState,
    space_id: &str,
    set: &VariableSet,
) -> Result<VariableSetResource, ApiError> {
    Ok(VariableSetResource {
        set: api_projection_of_set(set),
        scope_values: scope_values(state, space_id, set).await?,
        links: Links::from([(
            "Self".to_owned(),
            format!("/api/{space_id}/variables/{}", set.id),
        )]),
    })
}

async fn scope_values(
    state: &AppState,
    space_id: &str,
    set: &VariableSet,
) -> Result<ScopeValues, ApiError> {
    let in_space = DocumentQuery::in_space(space_id);
    let environments = state
        .store()
        .list_resources::<Environment>(&in_space)
        .await?
        .items;
    let machines = state
        .store()
        .list_resources::<DeploymentTarget>(&in_space)
        .await?
        .items;
    let roles: BTreeSet<String> = machines
        .iter()
        .flat_map(|machine| machine.roles.iter().cloned())
        .collect();
    let mut scope_values = ScopeValues {
        environments: environments
            .iter()
            .map(|environment| item(&environment.id, &environment.name))
            .collect(),
        machines: machines
            .iter()
            .map(|machine| item(&machine.id, &machine.name))
            .collect(),
        roles: roles.iter().map(|role| item(role, role)).collect(),
        ..ScopeValues::default()
    };
    if owner_kind(set) == VariableSetKind::Project {
        let channels = state
            .store()
            .list_resources::<Channel>(&DocumentQuery {
                owner_id: Some(set.owner_id.clone()),
                ..DocumentQuery::default()
            })
            .await?
            .items;
        scope_values.channels = channels
            .iter()
            .map(|channel| item(&channel.id, &channel.name))
            .collect();
        if let Some(project) = state.store().get_resource::<Project>(&set.owner_id).await? {
            scope_values.processes = vec![item(&project.id, &project.name)];
        }
    }
    Ok(scope_values)
}

fn item(id: &str, name: &str) -> ReferenceDataItem {
    ReferenceDataItem {
        id: id.to_owned(),
        name: name.to_owned(),
    }
}

async fn modify_variable_set(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
    ApiJson(submitted): ApiJson<VariableSet>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let stored = load_variable_set(&state, &space_id, &id).await?;
    let expected_version = submitted.version;
    if expected_version != stored.version {
        return Err(ApiError::Conflict(format!(
            "variable set {id} is at version {}, but the change was made to version {expected_version}; load it again and repeat the change",
            stored.version
        )));
    }

    // Seal what was sent in clear, then put back the sealed values sent as null (unchanged).
    let key = &state.master_key;
    let sealed = map_sensitive_values(&submitted, |_, plaintext| {
        Ok::<_, std::convert::Infallible>(key.seal(plaintext))
    })
    .unwrap_or_else(|never| match never {});
    let mut set = normalize_variable_set(&restore_unchanged_sensitive_values(&sealed, &stored));
    set.id.clone_from(&stored.id);
    set.owner_id.clone_from(&stored.owner_id);
    set.space_id = Some(space_id.clone());
    for variable in &mut set.variables {
        if variable.id.trim().is_empty() {
            variable.id = new_guid();
        }
    }
    if let Err(errors) = validate_variable_set(&set, owner_kind(&stored)) {
        return Err(ApiError::BadRequest {
            message: crate::error::PROBLEM_WITH_REQUEST.to_owned(),
            errors: errors
                .errors
                .into_iter()
                .map(|error| error.message)
                .collect(),
        });
    }
    let references = check_scope_references(&state, &space_id, &set).await?;
    set.version = stored.version + 1;
    let document = variable_set_document(&set, references)?;
    state
        .store()
        .write(&[Change::UpdateIfVersion {
            document,
            expected_version: i64::try_from(stored.version).unwrap_or(i64::MAX),
        }])
        .await?;
    Ok(Json(resource(&state, &space_id, &set).await?).into_response())
}

/// Checks that every id a scope names exists in the space, and returns those that are
/// documents (they become references, protecting them from deletion).
async fn check_scope_references(
    state: &AppState,
    space_id: &str,
    set: &VariableSet,
) -> Result<Vec<String>, ApiError> {
    let mut references = BTreeSet::new();
    let mut errors = Vec::new();
    for reference in scope_references(set) {
        let kinds: &[ResourceKind] = match reference.resource {
            ReferencedResource::Environment => &[ResourceKind::Environment],
            ReferencedResource::Machine => &[ResourceKind::DeploymentTarget],
            ReferencedResource::Channel => &[ResourceKind::Channel],
            ReferencedResource::Project => &[ResourceKind::Project],
            ReferencedResource::WorkerPool => &[ResourceKind::WorkerPool],
            // Runbooks arrive later; until then a process is a project.
            ReferencedResource::ProcessOwner => &[ResourceKind::Project],
            // Tags are free text; actions, tenants, accounts, certificates, users and
            // triggers are checked when those resources exist.
            _ => continue,
        };
        let document = match parse_resource_id(&reference.reference) {
            Some((kind, canonical)) if kinds.contains(&kind) => {
                state.store().get_document(kind, &canonical).await?
            }
            _ => None,
        };
        match document {
            Some(document) if document.space_id.as_deref() == Some(space_id) => {
                let belongs = document.kind != ResourceKind::Channel
                    || document.owner_id.as_deref() == Some(set.owner_id.as_str());
                if belongs {
                    references.insert(document.id);
                } else {
                    errors.push(format!(
                        "{}: channel {} belongs to another project",
                        reference.field, reference.reference
                    ));
                }
            }
            _ => errors.push(format!(
                "{}: '{}' is not a {} in space {space_id}",
                reference.field,
                reference.reference,
                kinds[0].human_name()
            )),
        }
    }
    if errors.is_empty() {
        Ok(references.into_iter().collect())
    } else {
        Err(ApiError::BadRequest {
            message: crate::error::PROBLEM_WITH_REQUEST.to_owned(),
            errors,
        })
    }
}

/// `GET variables/preview?project=…&environment=…&channel=…&machine=…&action=…`: the
/// effective values for that context, each with the candidates it beat (secrets hidden).
async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let parameters: std::collections::HashMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .map(|(name, value)| (name.to_lowercase(), value.trim().to_owned()))
            .filter(|(_, value)| !value.is_empty())
            .collect();
    let project_id = parameters.get("project").ok_or_else(|| {
        ApiError::bad_request("project is required: the project whose variables to preview")
    })?;
    let project = crud::load::<Project>(&state, Some(&space_id), project_id)
        .await
        .map_err(|_| {
            ApiError::bad_request(format!(
                "project: '{project_id}' is not a project in space {space_id}"
            ))
        })?;

    let mut sources = VariableSources::new();
    let project_set = load_variable_set(&state, &space_id, &project.variable_set_id).await?;
    sources.add_project_variables(&api_projection_of_set(&project_set));
    for library_id in &project.included_library_variable_set_ids {
        if let Some(library) = state
            .store()
            .get_resource::<LibraryVariableSet>(library_id)
            .await?
        {
            let library_set =
                load_variable_set(&state, &space_id, &library.variable_set_id).await?;
            sources.add_library_variable_set(&api_projection_of_set(&library_set));
        }
    }

    let deployment = DeploymentScope {
        project_id: Some(project.id.clone()),
        environment_id: parameters.get("environment").cloned(),
        channel_id: parameters.get("channel").cloned(),
        process_owner_id: Some(
            parameters
                .get("runbook")
                .cloned()
                .unwrap_or_else(|| project.id.clone()),
        ),
        ..DeploymentScope::default()
    };
    let target = match parameters.get("machine") {
        Some(machine_id) => {
            let machine = crud::load::<DeploymentTarget>(&state, Some(&space_id), machine_id)
                .await
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "machine: '{machine_id}' is not a deployment target in space {space_id}"
                    ))
                })?;
            Some(TargetScope {
                machine_id: machine.id,
                tags: machine.roles,
            })
        }
        None => parameters.get("role").map(|role| TargetScope {
            machine_id: String::new(),
            tags: vec![role.clone()],
        }),
    };
    let context = ScopeContext {
        deployment,
        action: parameters.get("action").map(|action_id| ActionScope {
            action_id: action_id.clone(),
            ..ActionScope::default()
        }),
        target,
    };
    let resolution = sources.resolve(&context);
    let variables = resolution
        .variables
        .iter()
        .map(|resolved| PreviewVariable {
            name: resolved.name.clone(),
            value: (!resolved.is_sensitive).then(|| resolved.value.clone()),
            is_sensitive: resolved.is_sensitive,
            source: describe_origin(&resolved.origin),
            candidates: sources
                .explain(&resolved.name, &context)
                .into_iter()
                .map(|candidate| PreviewCandidate {
                    variable_id: candidate.origin.variable_id.clone(),
                    value: candidate.visible_value,
                    source: describe_origin(&candidate.origin),
                    is_winner: candidate.is_winner,
                    outcome: match candidate.outcome {
                        Ok(specificity) if specificity.dimensions().is_empty() => {
                            "Applies: unscoped".to_owned()
                        }
                        Ok(specificity) => format!(
                            "Applies: {}",
                            specificity
                                .dimensions()
                                .iter()
                                .map(|dimension| format!("{dimension:?}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        Err(unmatched) => format!("Not in scope: {}", unmatched.0),
                    },
                })
                .collect(),
        })
        .collect();
    let warnings = resolution
        .warnings
        .iter()
        .map(|warning| format!("{warning:?}"))
        .collect();
    Ok(Json(VariablePreview {
        variables,
        warnings,
    })
    .into_response())
}

fn describe_origin(origin: &cuttle_vars::ValueOrigin) -> String {
    let set = origin.set_id.as_deref().unwrap_or("");
    match origin.kind {
        cuttle_vars::OriginKind::ProjectVariables => format!("Project variables ({set})"),
        cuttle_vars::OriginKind::LibraryVariableSet => format!("Library variable set ({set})"),
        other => format!("{other:?}"),
    }
}
