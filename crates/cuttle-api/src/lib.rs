//! Cuttle's wire types: what the REST API sends and receives, in Octopus's JSON shape.
//!
//! **API Boundary:** these are plain serde structs with public fields, shared by the server,
//! the client and the tests. The configuration resources themselves are `cuttle-domain` types;
//! on the wire they carry an extra `Links` object, which [`Resource`] adds.
//!
//! Field names are PascalCase because the official Octopus client reads them that way.

pub mod packages;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use cuttle_domain as domain;

/// The product version reported to clients. The official client refuses servers older than
/// 2022.3.5512 and parses this as strict semver, so it is an Octopus-compatible version; the
/// Cuttle build's own version goes in [`RootDocument::cuttle_version`].
pub const OCTOPUS_COMPATIBLE_VERSION: &str = "2025.1.0";

/// The header API keys travel in.
pub const API_KEY_HEADER: &str = "X-Octopus-ApiKey";

/// The header a browser session repeats its CSRF token in on unsafe requests.
pub const CSRF_HEADER: &str = "X-Octopus-Csrf-Token";

/// Links of a resource or collection, by relation name.
pub type Links = BTreeMap<String, String>;

/// A configuration resource with a collection of its own in the API: `/api/{spaceId}/{COLLECTION}`
/// (or `/api/{COLLECTION}` for global ones such as spaces).
pub trait ApiResource: cuttle_domain::Resource {
    const COLLECTION: &'static str;
}

macro_rules! api_resources {
    ($($resource:ident => $collection:literal),* $(,)?) => {
        $(impl ApiResource for cuttle_domain::$resource {
            const COLLECTION: &'static str = $collection;
        })*
    };
}

api_resources! {
    Space => "spaces",
    Environment => "environments",
    Lifecycle => "lifecycles",
    ProjectGroup => "projectgroups",
    Project => "projects",
    Channel => "channels",
    DeploymentTarget => "machines",
    WorkerPool => "workerpools",
    Worker => "workers",
    LibraryVariableSet => "libraryvariablesets",
    Account => "accounts",
    MachinePolicy => "machinepolicies",
    DeploymentProcess => "deploymentprocesses",
    Release => "releases",
    Deployment => "deployments",
    Interruption => "interruptions",
}

/// Every error answer: `ErrorMessage` says what went wrong, `Errors` lists the details.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorBody {
    pub error_message: String,
    #[serde(default)]
    pub errors: Vec<String>,
}

/// `GET /api`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RootDocument {
    pub application: String,
    pub version: String,
    pub api_version: String,
    pub cuttle_version: String,
    pub installation_id: String,
    #[serde(default)]
    pub links: Links,
}

/// A resource as the API shows it: the resource's own fields plus `Links`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Resource<T> {
    #[serde(flatten)]
    pub resource: T,
    #[serde(rename = "Links", default)]
    pub links: Links,
}

/// A page of a list route.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Collection<T> {
    pub item_type: String,
    pub total_results: i64,
    pub items_per_page: i64,
    pub number_of_pages: i64,
    pub last_page_number: i64,
    pub items: Vec<T>,
    #[serde(default)]
    pub links: Links,
}

/// A user as the API shows it (never with credentials).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct UserResource {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email_address: Option<String>,
    pub is_active: bool,
    pub is_service: bool,
    pub is_administrator: bool,
    pub can_password_be_edited: bool,
    pub is_requestor: bool,
    #[serde(default)]
    pub identities: Vec<serde_json::Value>,
    #[serde(default)]
    pub links: Links,
}

/// `POST /api/users/login`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    pub remember_me: bool,
}

/// `POST /api/users` and `PUT /api/users/{id}`: Octopus's user resource with its write-only
/// `Password`. Fields left out of a `PUT` keep their values. `IsAdministrator` is Cuttle's own
/// (Octopus grants it through the "Octopus Administrators" team).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct UserRequest {
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub email_address: Option<String>,
    pub is_active: Option<bool>,
    pub is_service: Option<bool>,
    pub is_administrator: Option<bool>,
    pub password: Option<String>,
    /// Required when users change their own password.
    pub old_password: Option<String>,
}

/// `POST /api/users/{id}/apikeys`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct CreateApiKeyRequest {
    pub purpose: String,
    /// ISO-8601; `None` never expires.
    pub expires: Option<String>,
}

/// An API key as listed: never the key itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ApiKeyResource {
    pub id: String,
    pub purpose: String,
    pub user_id: String,
    pub created: String,
    pub expires: Option<String>,
    #[serde(default)]
    pub links: Links,
}

/// The answer to creating an API key: the only time the key is shown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ApiKeyCreatedResource {
    pub id: String,
    pub purpose: String,
    pub user_id: String,
    pub created: String,
    pub expires: Option<String>,
    pub api_key: String,
    #[serde(default)]
    pub links: Links,
}

/// An id and a display name, as `ScopeValues` lists them for pickers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ReferenceDataItem {
    pub id: String,
    pub name: String,
}

/// What a variable set's values may be scoped to, with names, for editors.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub struct ScopeValues {
    pub environments: Vec<ReferenceDataItem>,
    pub machines: Vec<ReferenceDataItem>,
    pub actions: Vec<ReferenceDataItem>,
    pub roles: Vec<ReferenceDataItem>,
    pub channels: Vec<ReferenceDataItem>,
    pub tenant_tags: Vec<ReferenceDataItem>,
    pub processes: Vec<ReferenceDataItem>,
}

/// `GET/PUT /api/{spaceId}/variables/{id}`: Octopus's VariableSetResource. Sensitive values
/// are always `Value: null, IsSensitive: true` here; sending `null` back keeps them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VariableSetResource {
    #[serde(flatten)]
    pub set: cuttle_vars::VariableSet,
    #[serde(rename = "ScopeValues", default)]
    pub scope_values: ScopeValues,
    #[serde(rename = "Links", default)]
    pub links: Links,
}

/// One candidate value in a variable preview, and what became of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PreviewCandidate {
    pub variable_id: Option<String>,
    /// `null` for sensitive values.
    pub value: Option<String>,
    pub source: String,
    pub is_winner: bool,
    /// "Applies: Environment, Role" or "Not in scope: Machine".
    pub outcome: String,
}

/// One effective variable in a preview, with every candidate that competed for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PreviewVariable {
    pub name: String,
    /// `null` for sensitive values.
    pub value: Option<String>,
    pub is_sensitive: bool,
    pub source: String,
    pub candidates: Vec<PreviewCandidate>,
}

/// `GET /api/{spaceId}/variables/preview`: the effective values for one context.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct VariablePreview {
    pub variables: Vec<PreviewVariable>,
    pub warnings: Vec<String>,
}

/// A server task: a deployment, runbook run or health check, as Octopus shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ServerTaskResource {
    pub id: String,
    pub name: String,
    pub description: String,
    /// `Queued`, `Executing`, `Cancelling`, `Success`, `Failed`, `Canceled` or `TimedOut`.
    pub state: String,
    pub is_completed: bool,
    pub finished_successfully: bool,
    pub has_pending_interruptions: bool,
    pub has_warnings_or_errors: bool,
    /// Empty when there is no error.
    pub error_message: String,
    pub queue_time: String,
    pub queue_time_expiry: Option<String>,
    pub start_time: Option<String>,
    pub completed_time: Option<String>,
    pub last_updated_time: String,
    /// Human text: "5 minutes ago".
    pub completed: Option<String>,
    /// Human text: "12 seconds".
    pub duration: Option<String>,
    pub space_id: Option<String>,
    pub project_id: Option<String>,
    pub environment_id: Option<String>,
    pub arguments: serde_json::Value,
    pub can_rerun: bool,
    pub has_been_picked_up_by_processor: bool,
    pub server_node: Option<String>,
    #[serde(default)]
    pub links: Links,
}

/// `POST /api/{spaceId}/tasks`: start a task such as a health check.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct CreateTaskRequest {
    pub name: String,
    pub description: Option<String>,
    pub arguments: serde_json::Value,
}

/// One line of an activity's log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ActivityLogElement {
    pub category: String,
    pub occurred_at: String,
    pub message_text: String,
}

/// A block of a task log (the task, a step, a target), with its lines and its children.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ActivityElement {
    pub id: String,
    pub name: String,
    pub started: Option<String>,
    pub ended: Option<String>,
    /// `Pending`, `Running`, `Success`, `Failed`, `Skipped`, `SuccessWithWarning` or `Canceled`.
    pub status: String,
    pub children: Vec<ActivityElement>,
    pub show_at_summary_level: bool,
    pub log_elements: Vec<ActivityLogElement>,
    pub progress_percentage: i64,
    pub progress_message: Option<String>,
}

/// How far a task has come.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TaskProgress {
    pub progress_percentage: i64,
    /// Octopus's words ("1 minute"); empty when unknown, which is always, for now. A string,
    /// never `null`: the official client's type declares it one.
    #[serde(default)]
    pub estimated_time_remaining: String,
}

/// `GET /api/{spaceId}/tasks/{id}/details`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TaskDetailsResource {
    pub task: ServerTaskResource,
    pub progress: TaskProgress,
    pub physical_log_size: i64,
    pub activity_logs: Vec<ActivityElement>,
}

/// An item of `GET /api/{spaceId}/environments/v2`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentV2 {
    pub id: String,
    pub space_id: String,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub sort_order: i64,
    #[serde(rename = "Type")]
    pub environment_type: String,
    #[serde(default)]
    pub links: Links,
}

#[cfg(test)]
mod tests {
    use super::*;
    use cuttle_domain::Environment;

    #[test]
    fn resources_flatten_their_fields_beside_links() {
        let resource = Resource {
            resource: Environment {
                id: "Environments-1".to_owned(),
                name: "Dev".to_owned(),
                ..Environment::default()
            },
            links: Links::from([(
                "Self".to_owned(),
                "/api/Spaces-1/environments/Environments-1".to_owned(),
            )]),
        };
        let json = serde_json::to_value(&resource).unwrap();
        assert_eq!(json["Id"], "Environments-1");
        assert_eq!(
            json["Links"]["Self"],
            "/api/Spaces-1/environments/Environments-1"
        );
        let back: Resource<Environment> = serde_json::from_value(json).unwrap();
        assert_eq!(back, resource);
    }
}
