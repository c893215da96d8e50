//! What is special about each configuration resource, as [`ManagedResource`] hooks.

use async_trait::async_trait;
use cuttle_domain::{
    Account, Channel, DeploymentTarget, Environment, HealthStatus, LibraryVariableSet, Lifecycle,
    MachinePolicy, Project, ProjectGroup, Resource, Space, Worker, WorkerPool,
};
use cuttle_store::{Change, DocumentQuery, document_from_resource};

use super::crud::{ManagedResource, new_guid};
use super::variables::new_variable_set_change;
use crate::bootstrap::default_space_contents;
use crate::error::ApiError;
use crate::state::AppState;

/// The next sort order after every resource of `T` in the space.
async fn next_sort_order<T: ManagedResource>(
    state: &AppState,
    space_id: &str,
) -> Result<i64, ApiError> {
    let page = state
        .store()
        .list_resources::<T>(&DocumentQuery::in_space(space_id))
        .await?;
    Ok(page
        .items
        .iter()
        .map(Resource::sort_order)
        .max()
        .map_or(1, |highest| highest + 1))
}

/// Resolves an empty id field to the space's resource of `T` with `default_name`.
async fn default_by_name<T: ManagedResource>(
    state: &AppState,
    space_id: &str,
    field: &mut String,
    default_name: &str,
) -> Result<(), ApiError> {
    if field.trim().is_empty()
        && let Some(default) = state
            .store()
            .find_resource_by_name::<T>(Some(space_id), default_name)
            .await?
    {
        *field = default.id().to_owned();
    }
    Ok(())
}

/// What a "default" flag is unique within: `what` (channel) within `owner` (project).
struct DefaultScope {
    what: &'static str,
    owner: &'static str,
    query: DocumentQuery,
}

/// Keeps exactly one default per scope: setting the flag clears it on the others (in the same
/// write); clearing it on the default is refused, since there would be none.
async fn keep_one_default<T: ManagedResource>(
    state: &AppState,
    resource_id: &str,
    is_default: bool,
    was_default: bool,
    scope: DefaultScope,
    flag: impl Fn(&mut T) -> &mut bool,
) -> Result<Vec<Change>, ApiError> {
    if is_default {
        clear_other_defaults::<T>(state, Some(scope.query), resource_id, flag).await
    } else if was_default {
        Err(ApiError::bad_request(format!(
            "IsDefault: a {} must have a default {what}; make another {what} the default instead",
            scope.owner,
            what = scope.what
        )))
    } else {
        Ok(Vec::new())
    }
}

/// Refuses to delete the default of its scope.
fn refuse_deleting_default(
    is_default: bool,
    what: &str,
    owner: &str,
    name: &str,
) -> Result<(), ApiError> {
    if is_default {
        return Err(ApiError::bad_request(format!(
            "{what} '{name}' is the default {what} of its {owner} and cannot be deleted; make another {what} the default first"
        )));
    }
    Ok(())
}

#[async_trait]
impl ManagedResource for Space {
    async fn complete_write(
        &mut self,
        state: &AppState,
        stored: Option<&Self>,
    ) -> Result<Vec<Change>, ApiError> {
        let mut changes = keep_one_default::<Space>(
            state,
            &self.id,
            self.is_default,
            stored.is_some_and(|stored| stored.is_default),
            DefaultScope {
                what: "space",
                owner: "installation",
                query: DocumentQuery::default(),
            },
            |space| &mut space.is_default,
        )
        .await?;
        if stored.is_none() {
            // A new space starts with the same defaults as the first one.
            changes.extend(default_space_contents(state.store(), &self.id).await?);
        }
        Ok(changes)
    }

    fn check_delete(&self) -> Result<(), ApiError> {
        refuse_deleting_default(self.is_default, "space", "installation", &self.name)?;
        if !self.task_queue_stopped {
            return Err(ApiError::bad_request(
                "stop the space's task queue (set TaskQueueStopped to true) before deleting it; deleting a space deletes everything in it",
            ));
        }
        Ok(())
    }

    fn delete_change(&self) -> Change {
        Change::DeleteSpace {
            id: self.id.clone(),
        }
    }
}

/// Updates that unset a "default" flag on every other resource of `T` that has it.
async fn clear_other_defaults<T: ManagedResource>(
    state: &AppState,
    query: Option<DocumentQuery>,
    keep_id: &str,
    flag: impl Fn(&mut T) -> &mut bool,
) -> Result<Vec<Change>, ApiError> {
    let query = query.unwrap_or_default();
    let page = state.store().list_resources::<T>(&query).await?;
    let mut changes = Vec::new();
    for mut other in page.items {
        if other.id() != keep_id && *flag(&mut other) {
            *flag(&mut other) = false;
            changes.push(Change::Update(document_from_resource(&other)?));
        }
    }
    Ok(changes)
}

#[async_trait]
impl ManagedResource for Environment {
    async fn prepare_new(&mut self, state: &AppState) -> Result<(), ApiError> {
        if self.sort_order == 0 {
            self.sort_order = next_sort_order::<Environment>(state, &self.space_id).await?;
        }
        Ok(())
    }

    fn keep_server_fields(&mut self, stored: &Self) {
        if self.sort_order == 0 {
            self.sort_order = stored.sort_order;
        }
    }
}

#[async_trait]
impl ManagedResource for Lifecycle {
    async fn complete_write(
        &mut self,
        _state: &AppState,
        _stored: Option<&Self>,
    ) -> Result<Vec<Change>, ApiError> {
        self.assign_phase_ids(new_guid);
        Ok(Vec::new())
    }
}

#[async_trait]
impl ManagedResource for ProjectGroup {}

#[async_trait]
impl ManagedResource for Project {
    async fn prepare_new(&mut self, state: &AppState) -> Result<(), ApiError> {
        let space_id = self.space_id.clone();
        default_by_name::<Lifecycle>(
            state,
            &space_id,
            &mut self.lifecycle_id,
            crate::bootstrap::DEFAULT_LIFECYCLE_NAME,
        )
        .await?;
        default_by_name::<ProjectGroup>(
            state,
            &space_id,
            &mut self.project_group_id,
            crate::bootstrap::DEFAULT_PROJECT_GROUP_NAME,
        )
        .await?;
        Ok(())
    }

    async fn complete_write(
        &mut self,
        state: &AppState,
        stored: Option<&Self>,
    ) -> Result<Vec<Change>, ApiError> {
        self.fill_derived_ids();
        if stored.is_some() {
            return Ok(Vec::new());
        }
        let variables = new_variable_set_change(&self.variable_set_id, &self.space_id, &self.id)?;
        // Every project has a default channel from the start, as in Octopus.
        let channel = Channel {
            id: state.store().allocate_id(Channel::KIND).await?,
            space_id: self.space_id.clone(),
            project_id: self.id.clone(),
            name: "Default".to_owned(),
            slug: "default".to_owned(),
            is_default: true,
            ..Channel::default()
        };
        Ok(vec![
            variables,
            Change::Insert(document_from_resource(&channel)?),
        ])
    }
}

#[async_trait]
impl ManagedResource for Channel {
    fn keep_server_fields(&mut self, stored: &Self) {
        // A channel cannot move to another project.
        self.project_id.clone_from(&stored.project_id);
    }

    async fn complete_write(
        &mut self,
        state: &AppState,
        stored: Option<&Self>,
    ) -> Result<Vec<Change>, ApiError> {
        self.assign_rule_ids(new_guid);
        let scope = DefaultScope {
            what: "channel",
            owner: "project",
            query: DocumentQuery {
                owner_id: Some(self.project_id.clone()),
                ..DocumentQuery::default()
            },
        };
        let was_default = stored.is_some_and(|stored| stored.is_default);
        keep_one_default::<Channel>(
            state,
            &self.id,
            self.is_default,
            was_default,
            scope,
            |channel| &mut channel.is_default,
        )
        .await
    }

    fn check_delete(&self) -> Result<(), ApiError> {
        refuse_deleting_default(self.is_default, "channel", "project", &self.name)
    }
}

#[async_trait]
impl ManagedResource for DeploymentTarget {
    async fn prepare_new(&mut self, state: &AppState) -> Result<(), ApiError> {
        // Health is observed by the server, never declared by a client.
        self.health_status = HealthStatus::Unknown;
        self.status_summary = None;
        self.last_health_check = None;
        if self.machine_policy_id.as_deref().is_none_or(str::is_empty) {
            let space_id = self.space_id.clone();
            let mut policy_id = String::new();
            default_by_name::<MachinePolicy>(
                state,
                &space_id,
                &mut policy_id,
                crate::bootstrap::DEFAULT_MACHINE_POLICY_NAME,
            )
            .await?;
            self.machine_policy_id = (!policy_id.is_empty()).then_some(policy_id);
        }
        Ok(())
    }

    fn keep_server_fields(&mut self, stored: &Self) {
        self.health_status = stored.health_status;
        self.status_summary.clone_from(&stored.status_summary);
        self.last_health_check.clone_from(&stored.last_health_check);
    }
}

#[async_trait]
impl ManagedResource for WorkerPool {
    async fn prepare_new(&mut self, state: &AppState) -> Result<(), ApiError> {
        if self.sort_order == 0 {
            self.sort_order = next_sort_order::<WorkerPool>(state, &self.space_id).await?;
        }
        Ok(())
    }

    fn keep_server_fields(&mut self, stored: &Self) {
        if self.sort_order == 0 {
            self.sort_order = stored.sort_order;
        }
    }

    async fn complete_write(
        &mut self,
        state: &AppState,
        stored: Option<&Self>,
    ) -> Result<Vec<Change>, ApiError> {
        let scope = DefaultScope {
            what: "worker pool",
            owner: "space",
            query: DocumentQuery::in_space(&self.space_id),
        };
        let was_default = stored.is_some_and(|stored| stored.is_default);
        keep_one_default::<WorkerPool>(
            state,
            &self.id,
            self.is_default,
            was_default,
            scope,
            |pool| &mut pool.is_default,
        )
        .await
    }

    fn check_delete(&self) -> Result<(), ApiError> {
        refuse_deleting_default(self.is_default, "worker pool", "space", &self.name)
    }
}

#[async_trait]
impl ManagedResource for Worker {
    async fn prepare_new(&mut self, _state: &AppState) -> Result<(), ApiError> {
        self.health_status = HealthStatus::Unknown;
        self.status_summary = None;
        self.last_health_check = None;
        Ok(())
    }

    fn keep_server_fields(&mut self, stored: &Self) {
        self.health_status = stored.health_status;
        self.status_summary.clone_from(&stored.status_summary);
        self.last_health_check.clone_from(&stored.last_health_check);
    }
}

#[async_trait]
impl ManagedResource for LibraryVariableSet {
    async fn complete_write(
        &mut self,
        _state: &AppState,
        stored: Option<&Self>,
    ) -> Result<Vec<Change>, ApiError> {
        self.fill_derived_ids();
        if stored.is_some() {
            return Ok(Vec::new());
        }
        Ok(vec![new_variable_set_change(
            &self.variable_set_id,
            &self.space_id,
            &self.id,
        )?])
    }
}

#[async_trait]
impl ManagedResource for Account {
    fn keep_server_fields(&mut self, stored: &Self) {
        self.password.keep_stored(&stored.password);
        self.private_key_file.keep_stored(&stored.private_key_file);
        self.private_key_passphrase
            .keep_stored(&stored.private_key_passphrase);
    }

    async fn complete_write(
        &mut self,
        state: &AppState,
        stored: Option<&Self>,
    ) -> Result<Vec<Change>, ApiError> {
        let is_new = stored.is_none();
        // Seal what was sent; only the sealed form is stored, and never one a client made up.
        for secret in self.secrets_mut() {
            if is_new && secret.new_value.is_none() {
                secret.sealed_value = None;
            }
            if let Some(new_value) = secret.new_value.take() {
                secret.sealed_value =
                    (!new_value.is_empty()).then(|| state.master_key.seal(&new_value));
            }
            secret.has_value = secret.sealed_value.is_some();
        }
        Ok(Vec::new())
    }

    fn redact(&mut self) {
        for secret in self.secrets_mut() {
            secret.redact();
        }
    }
}

#[async_trait]
impl ManagedResource for MachinePolicy {
    async fn complete_write(
        &mut self,
        state: &AppState,
        stored: Option<&Self>,
    ) -> Result<Vec<Change>, ApiError> {
        let scope = DefaultScope {
            what: "machine policy",
            owner: "space",
            query: DocumentQuery::in_space(&self.space_id),
        };
        let was_default = stored.is_some_and(|stored| stored.is_default);
        keep_one_default::<MachinePolicy>(
            state,
            &self.id,
            self.is_default,
            was_default,
            scope,
            |policy| &mut policy.is_default,
        )
        .await
    }

    fn check_delete(&self) -> Result<(), ApiError> {
        refuse_deleting_default(self.is_default, "machine policy", "space", &self.name)
    }
}
