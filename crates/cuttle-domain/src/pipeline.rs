//! Releases, deployments and interruptions: the records the deployment pipeline keeps, in
//! Octopus's shape (`ReleaseResource`, `DeploymentResource`, `InterruptionResource`).
//!
//! A release is a version of a project with frozen snapshots of its process and variables;
//! a deployment is that release sent to one environment, and its work is one server task;
//! an interruption is a question a running task asks a person (guided failure, manual
//! intervention). Releases and deployments are owned by their project and deleted with it.
//! Times are ISO-8601 text set by the server; this crate reads no clock.

use serde::{Deserialize, Serialize};

use crate::ids::ResourceKind;
use crate::validation::{FieldError, Reference, Resource, normalize_string_list};

/// The longest release version Octopus accepts.
pub const MAX_RELEASE_VERSION_LENGTH: usize = 349;

/// Newest first: lists order by sort order, so a record sorts by its id's number, negated.
fn newest_first(id: &str) -> i64 {
    id.rsplit_once('-')
        .and_then(|(_, number)| number.parse::<i64>().ok())
        .map_or(0, |number| -number)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct SelectedPackage {
    pub action_name: String,
    pub step_name: String,
    pub package_reference_name: String,
    pub version: String,
}

/// A reason the release must not progress further ("prevent progression").
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Defect {
    pub description: String,
    /// `Unresolved` or `Resolved`.
    pub status: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Release {
    pub id: String,
    pub space_id: String,
    pub project_id: String,
    pub channel_id: String,
    pub version: String,
    pub release_notes: Option<String>,
    pub assembled: String,
    pub ignore_channel_rules: bool,
    pub project_deployment_process_snapshot_id: String,
    pub project_variable_set_snapshot_id: String,
    pub library_variable_set_snapshot_ids: Vec<String>,
    pub selected_packages: Vec<SelectedPackage>,
    pub selected_git_resources: Vec<serde_json::Value>,
    pub build_information: Vec<serde_json::Value>,
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    pub version_control_reference: Option<serde_json::Value>,
    pub defects: Vec<Defect>,
}

impl Release {
    /// The unresolved defect blocking progression, if any.
    pub fn blocking_defect(&self) -> Option<&Defect> {
        self.defects
            .iter()
            .rev()
            .find(|defect| defect.status != "Resolved")
    }
}

impl Resource for Release {
    const KIND: ResourceKind = ResourceKind::Release;

    fn sort_order(&self) -> i64 {
        newest_first(&self.id)
    }

    fn id(&self) -> &str {
        &self.id
    }
    fn set_id(&mut self, id: String) {
        self.id = id;
    }
    /// Versions are unique within a project, ignoring case, as names are.
    fn name(&self) -> &str {
        &self.version
    }
    fn space_id(&self) -> Option<&str> {
        Some(&self.space_id)
    }
    fn set_space_id(&mut self, space_id: &str) {
        space_id.clone_into(&mut self.space_id);
    }
    fn owner_id(&self) -> Option<&str> {
        Some(&self.project_id)
    }

    fn references(&self) -> Vec<Reference> {
        vec![Reference::new(
            "ChannelId",
            ResourceKind::Channel,
            &self.channel_id,
        )]
    }

    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        self.version = self.version.trim().to_owned();
        if self.version.is_empty() {
            errors.push(FieldError::new("Version", "Version is required"));
        } else if self.version.chars().count() > MAX_RELEASE_VERSION_LENGTH {
            errors.push(FieldError::new(
                "Version",
                format!("Version must be at most {MAX_RELEASE_VERSION_LENGTH} characters"),
            ));
        } else if self
            .version
            .chars()
            .any(|character| character.is_whitespace() || character.is_control())
        {
            errors.push(FieldError::new(
                "Version",
                format!("Version '{}' must not contain spaces", self.version),
            ));
        }
        if self.project_id.trim().is_empty() {
            errors.push(FieldError::new("ProjectId", "ProjectId is required"));
        }
        if self.custom_fields.len() > 10 {
            errors.push(FieldError::new(
                "CustomFields",
                "A release has at most 10 custom fields",
            ));
        }
        errors
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Deployment {
    pub id: String,
    pub space_id: String,
    pub project_id: String,
    pub release_id: String,
    pub channel_id: String,
    pub environment_id: String,
    pub tenant_id: Option<String>,
    pub task_id: String,
    pub deployment_process_id: String,
    pub manifest_variable_set_id: String,
    pub name: String,
    pub comments: Option<String>,
    pub created: String,
    pub queue_time: Option<String>,
    pub queue_time_expiry: Option<String>,
    pub force_package_download: bool,
    pub force_package_redeployment: bool,
    pub use_guided_failure: bool,
    pub skip_actions: Vec<String>,
    pub specific_machine_ids: Vec<String>,
    pub excluded_machine_ids: Vec<String>,
    pub form_values: serde_json::Map<String, serde_json::Value>,
    pub changes: Vec<serde_json::Value>,
    pub changes_markdown: String,
    pub deployed_by: String,
    pub deployed_by_id: String,
    pub failure_encountered: bool,
}

impl Resource for Deployment {
    const KIND: ResourceKind = ResourceKind::Deployment;

    fn sort_order(&self) -> i64 {
        newest_first(&self.id)
    }

    fn id(&self) -> &str {
        &self.id
    }
    fn set_id(&mut self, id: String) {
        self.id = id;
    }
    /// Deployments have no unique name; the id stands in.
    #[expect(
        clippy::misnamed_getters,
        reason = "the store's unique name of a deployment is its id; `Name` is a display text"
    )]
    fn name(&self) -> &str {
        &self.id
    }
    fn space_id(&self) -> Option<&str> {
        Some(&self.space_id)
    }
    fn set_space_id(&mut self, space_id: &str) {
        space_id.clone_into(&mut self.space_id);
    }
    fn owner_id(&self) -> Option<&str> {
        Some(&self.project_id)
    }

    fn references(&self) -> Vec<Reference> {
        vec![Reference::new(
            "ReleaseId",
            ResourceKind::Release,
            &self.release_id,
        )]
    }

    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (field, value) in [
            ("ReleaseId", &self.release_id),
            ("EnvironmentId", &self.environment_id),
        ] {
            if value.trim().is_empty() {
                errors.push(FieldError::new(field, format!("{field} is required")));
            }
        }
        normalize_string_list(&mut self.skip_actions);
        normalize_string_list(&mut self.specific_machine_ids);
        normalize_string_list(&mut self.excluded_machine_ids);
        errors
    }
}

/// What kind of question an interruption asks.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum InterruptionType {
    /// A step failed with guided failure on: Retry, Ignore, Exclude machine or Fail.
    #[default]
    GuidedFailure,
    /// A manual intervention step: Proceed or Abort.
    ManualIntervention,
}

/// One field of an interruption's form.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct FormElement {
    pub name: String,
    pub control: serde_json::Value,
    pub is_value_required: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct InterruptionForm {
    pub values: serde_json::Map<String, serde_json::Value>,
    pub elements: Vec<FormElement>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Interruption {
    pub id: String,
    pub space_id: String,
    pub title: String,
    pub created: String,
    pub is_pending: bool,
    pub form: InterruptionForm,
    pub related_document_ids: Vec<String>,
    pub responsible_team_ids: Vec<String>,
    pub responsible_user_id: Option<String>,
    pub can_take_responsibility: bool,
    pub has_responsibility: bool,
    pub task_id: String,
    /// Which activity of the task asked (`step-2/Machines-3`).
    pub correlation_id: String,
    pub is_linked_to_other_interruption: bool,
    #[serde(rename = "Type")]
    pub interruption_type: InterruptionType,
    /// Who answered and when, once answered.
    pub submitted_by: Option<String>,
    pub submitted: Option<String>,
}

/// The guided-failure answers, as Octopus spells them.
pub mod guidance {
    pub const FAIL: &str = "Fail";
    pub const RETRY: &str = "Retry";
    pub const IGNORE: &str = "Ignore";
    pub const EXCLUDE: &str = "Exclude";
    pub const PROCEED: &str = "Proceed";
    pub const ABORT: &str = "Abort";
}

impl InterruptionType {
    /// The form field that carries the answer: `Guidance` for failures, `Result` for manual steps.
    pub fn answer_field(self) -> &'static str {
        match self {
            InterruptionType::ManualIntervention => "Result",
            InterruptionType::GuidedFailure => "Guidance",
        }
    }
}

/// The answers a guided failure offers; a required step cannot be ignored or skipped.
pub fn guided_failure_answers(is_required: bool) -> Vec<&'static str> {
    if is_required {
        vec![guidance::FAIL, guidance::RETRY]
    } else {
        vec![
            guidance::FAIL,
            guidance::RETRY,
            guidance::IGNORE,
            guidance::EXCLUDE,
        ]
    }
}

impl Interruption {
    /// The answers this interruption accepts, in the form field named by [`Interruption::answer_field`].
    pub fn allowed_answers(&self) -> Vec<&'static str> {
        match self.interruption_type {
            InterruptionType::ManualIntervention => vec![guidance::PROCEED, guidance::ABORT],
            InterruptionType::GuidedFailure => guided_failure_answers(
                self.form.values.get("IsRequired").and_then(|v| v.as_bool()) == Some(true),
            ),
        }
    }

    pub fn answer_field(&self) -> &'static str {
        self.interruption_type.answer_field()
    }

    /// The submitted answer, once there is one.
    pub fn answer(&self) -> Option<&str> {
        if self.is_pending {
            return None;
        }
        self.form
            .values
            .get(self.answer_field())
            .and_then(serde_json::Value::as_str)
    }
}

impl Resource for Interruption {
    const KIND: ResourceKind = ResourceKind::Interruption;

    fn sort_order(&self) -> i64 {
        newest_first(&self.id)
    }

    fn id(&self) -> &str {
        &self.id
    }
    fn set_id(&mut self, id: String) {
        self.id = id;
    }
    fn name(&self) -> &str {
        &self.id
    }
    fn space_id(&self) -> Option<&str> {
        Some(&self.space_id)
    }
    fn set_space_id(&mut self, space_id: &str) {
        space_id.clone_into(&mut self.space_id);
    }
    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }
    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_versions_are_checked() {
        let mut release = Release {
            project_id: "Projects-1".to_owned(),
            version: " 1.0.0 ".to_owned(),
            ..Release::default()
        };
        assert!(release.normalize_and_validate().is_empty());
        assert_eq!(release.version, "1.0.0");
        release.version = "1.0 beta".to_owned();
        assert_eq!(release.normalize_and_validate()[0].field, "Version");
        release.version = "1".repeat(350);
        assert_eq!(release.normalize_and_validate()[0].field, "Version");
    }

    #[test]
    fn the_latest_unresolved_defect_blocks() {
        let mut release = Release::default();
        assert!(release.blocking_defect().is_none());
        release.defects.push(Defect {
            description: "bad build".to_owned(),
            status: "Unresolved".to_owned(),
        });
        assert_eq!(
            release
                .blocking_defect()
                .map(|defect| defect.description.as_str()),
            Some("bad build")
        );
        release.defects[0].status = "Resolved".to_owned();
        assert!(release.blocking_defect().is_none());
    }

    #[test]
    fn required_steps_cannot_be_ignored() {
        let mut interruption = Interruption {
            is_pending: true,
            ..Interruption::default()
        };
        assert!(interruption.allowed_answers().contains(&guidance::IGNORE));
        interruption
            .form
            .values
            .insert("IsRequired".to_owned(), true.into());
        assert_eq!(
            interruption.allowed_answers(),
            [guidance::FAIL, guidance::RETRY]
        );
        interruption
            .form
            .values
            .insert("Guidance".to_owned(), "Retry".into());
        assert_eq!(interruption.answer(), None, "still pending");
        interruption.is_pending = false;
        assert_eq!(interruption.answer(), Some("Retry"));
    }
}
