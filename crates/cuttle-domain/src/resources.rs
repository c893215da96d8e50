//! The configuration resources, in Octopus's JSON shape.
//!
//! Every struct uses `#[serde(default)]` so that a missing field means "the default" and the
//! real requirements are checked by [`Resource::normalize_and_validate`], which names the field.
//! Unknown fields are ignored, as Octopus clients send extra ones.

use serde::{Deserialize, Serialize};

use crate::ids::ResourceKind;
use crate::validation::{
    FieldError, Reference, Resource, normalize_slug, normalize_string_list, require_non_empty,
    validate_description, validate_name,
};

/// Implements the id/name/space accessors that every space-scoped resource shares.
macro_rules! space_scoped_resource_accessors {
    () => {
        fn id(&self) -> &str {
            &self.id
        }
        fn set_id(&mut self, id: String) {
            self.id = id;
        }
        fn name(&self) -> &str {
            &self.name
        }
        fn space_id(&self) -> Option<&str> {
            Some(&self.space_id)
        }
        fn set_space_id(&mut self, space_id: &str) {
            space_id.clone_into(&mut self.space_id);
        }
    };
}

/// Pushes a reference for each id in `ids`, naming the list field with its index.
fn references_from_list(
    references: &mut Vec<Reference>,
    field: &str,
    kind: ResourceKind,
    ids: &[String],
) {
    for (index, id) in ids.iter().enumerate() {
        references.push(Reference::new(
            format!("{field}[{index}]"),
            kind,
            id.clone(),
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Spaces

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Space {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub is_default: bool,
    pub task_queue_stopped: bool,
    pub space_managers_teams: Vec<String>,
    pub space_managers_team_members: Vec<String>,
}

impl Resource for Space {
    const KIND: ResourceKind = ResourceKind::Space;

    fn id(&self) -> &str {
        &self.id
    }
    fn set_id(&mut self, id: String) {
        self.id = id;
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn space_id(&self) -> Option<&str> {
        None
    }
    fn set_space_id(&mut self, _space_id: &str) {}

    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }

    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_name("Name", &mut self.name, &mut errors);
        validate_description(&self.description, &mut errors);
        normalize_slug(&mut self.slug, &self.name);
        errors
    }
}

// ---------------------------------------------------------------------------------------------
// Environments

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Environment {
    pub id: String,
    pub space_id: String,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub sort_order: i64,
    pub use_guided_failure: bool,
    pub allow_dynamic_infrastructure: bool,
}

impl Resource for Environment {
    const KIND: ResourceKind = ResourceKind::Environment;
    space_scoped_resource_accessors!();

    fn sort_order(&self) -> i64 {
        self.sort_order
    }

    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }

    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_name("Name", &mut self.name, &mut errors);
        validate_description(&self.description, &mut errors);
        normalize_slug(&mut self.slug, &self.name);
        if self.sort_order < 0 {
            errors.push(FieldError::new(
                "SortOrder",
                "SortOrder must not be negative",
            ));
        }
        errors
    }
}

// ---------------------------------------------------------------------------------------------
// Lifecycles

/// How long releases (or installed packages on targets) are kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct RetentionPolicy {
    pub unit: RetentionUnit,
    pub quantity_to_keep: i32,
    pub should_keep_forever: bool,
}

impl Default for RetentionPolicy {
    fn default() -> RetentionPolicy {
        RetentionPolicy::keep_forever()
    }
}

impl RetentionPolicy {
    pub fn keep_forever() -> RetentionPolicy {
        RetentionPolicy {
            unit: RetentionUnit::Days,
            quantity_to_keep: 0,
            should_keep_forever: true,
        }
    }

    fn validate(&mut self, field: &str, errors: &mut Vec<FieldError>) {
        if self.quantity_to_keep < 0 {
            errors.push(FieldError::new(
                format!("{field}.QuantityToKeep"),
                "QuantityToKeep must not be negative",
            ));
        }
        // Octopus treats "keep 0" as "keep forever"; make the flag agree so readers need one rule.
        if self.quantity_to_keep == 0 {
            self.should_keep_forever = true;
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum RetentionUnit {
    #[default]
    Days,
    Items,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Phase {
    pub id: String,
    pub name: String,
    pub automatic_deployment_targets: Vec<String>,
    pub optional_deployment_targets: Vec<String>,
    /// 0 means "all environments of the phase".
    pub minimum_environments_before_promotion: i32,
    pub is_optional_phase: bool,
    pub is_priority_phase: bool,
    pub release_retention_policy: Option<RetentionPolicy>,
    pub tentacle_retention_policy: Option<RetentionPolicy>,
}

impl Phase {
    /// Every environment of the phase, automatic ones first.
    pub fn environment_ids(&self) -> impl Iterator<Item = &String> {
        self.automatic_deployment_targets
            .iter()
            .chain(&self.optional_deployment_targets)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Lifecycle {
    pub id: String,
    pub space_id: String,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub phases: Vec<Phase>,
    pub release_retention_policy: RetentionPolicy,
    pub tentacle_retention_policy: RetentionPolicy,
}

impl Lifecycle {
    /// Gives each phase without an id one from `new_phase_id` (the caller supplies GUIDs).
    pub fn assign_phase_ids(&mut self, mut new_phase_id: impl FnMut() -> String) {
        for phase in &mut self.phases {
            if phase.id.trim().is_empty() {
                phase.id = new_phase_id();
            }
        }
    }
}

impl Resource for Lifecycle {
    const KIND: ResourceKind = ResourceKind::Lifecycle;
    space_scoped_resource_accessors!();

    fn references(&self) -> Vec<Reference> {
        let mut references = Vec::new();
        for (phase_index, phase) in self.phases.iter().enumerate() {
            references_from_list(
                &mut references,
                &format!("Phases[{phase_index}].AutomaticDeploymentTargets"),
                ResourceKind::Environment,
                &phase.automatic_deployment_targets,
            );
            references_from_list(
                &mut references,
                &format!("Phases[{phase_index}].OptionalDeploymentTargets"),
                ResourceKind::Environment,
                &phase.optional_deployment_targets,
            );
        }
        references
    }

    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_name("Name", &mut self.name, &mut errors);
        validate_description(&self.description, &mut errors);
        normalize_slug(&mut self.slug, &self.name);
        self.release_retention_policy
            .validate("ReleaseRetentionPolicy", &mut errors);
        self.tentacle_retention_policy
            .validate("TentacleRetentionPolicy", &mut errors);

        let mut phase_names = std::collections::HashSet::new();
        let mut environment_phase = std::collections::HashMap::new();
        for (phase_index, phase) in self.phases.iter_mut().enumerate() {
            let field = format!("Phases[{phase_index}]");
            validate_name(&format!("{field}.Name"), &mut phase.name, &mut errors);
            if !phase.name.is_empty() && !phase_names.insert(phase.name.to_lowercase()) {
                errors.push(FieldError::new(
                    format!("{field}.Name"),
                    format!("the phase name '{}' is used twice", phase.name),
                ));
            }
            normalize_string_list(&mut phase.automatic_deployment_targets);
            normalize_string_list(&mut phase.optional_deployment_targets);
            for environment_id in phase.environment_ids() {
                if let Some(first_phase) =
                    environment_phase.insert(environment_id.to_lowercase(), phase.name.clone())
                {
                    errors.push(FieldError::new(
                        field.clone(),
                        format!(
                            "environment {environment_id} appears in phase '{first_phase}' and again in phase '{}'; an environment may be in one phase only",
                            phase.name
                        ),
                    ));
                }
            }
            let n_environments = phase.environment_ids().count();
            if phase.minimum_environments_before_promotion < 0 {
                errors.push(FieldError::new(
                    format!("{field}.MinimumEnvironmentsBeforePromotion"),
                    "MinimumEnvironmentsBeforePromotion must not be negative",
                ));
            } else if phase.minimum_environments_before_promotion as usize > n_environments {
                errors.push(FieldError::new(
                    format!("{field}.MinimumEnvironmentsBeforePromotion"),
                    format!(
                        "MinimumEnvironmentsBeforePromotion is {} but the phase has {n_environments} environments",
                        phase.minimum_environments_before_promotion
                    ),
                ));
            }
            if let Some(policy) = &mut phase.release_retention_policy {
                policy.validate(&format!("{field}.ReleaseRetentionPolicy"), &mut errors);
            }
            if let Some(policy) = &mut phase.tentacle_retention_policy {
                policy.validate(&format!("{field}.TentacleRetentionPolicy"), &mut errors);
            }
        }
        errors
    }
}

// ---------------------------------------------------------------------------------------------
// Project groups and projects

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct ProjectGroup {
    pub id: String,
    pub space_id: String,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub environment_ids: Vec<String>,
    pub retention_policy_id: Option<String>,
}

impl Resource for ProjectGroup {
    const KIND: ResourceKind = ResourceKind::ProjectGroup;
    space_scoped_resource_accessors!();

    fn references(&self) -> Vec<Reference> {
        let mut references = Vec::new();
        references_from_list(
            &mut references,
            "EnvironmentIds",
            ResourceKind::Environment,
            &self.environment_ids,
        );
        references
    }

    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_name("Name", &mut self.name, &mut errors);
        validate_description(&self.description, &mut errors);
        normalize_slug(&mut self.slug, &self.name);
        normalize_string_list(&mut self.environment_ids);
        errors
    }
}

/// How release versions are chosen when a release is created without one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct VersioningStrategy {
    pub template: Option<String>,
    pub donor_package_step_id: Option<String>,
    pub donor_package: Option<serde_json::Value>,
}

/// Octopus's default version template: the first release is `0.0.1`.
pub const DEFAULT_VERSION_TEMPLATE: &str =
    "#{Octopus.Version.LastMajor}.#{Octopus.Version.LastMinor}.#{Octopus.Version.NextPatch}";

impl Default for VersioningStrategy {
    fn default() -> VersioningStrategy {
        VersioningStrategy {
            template: Some(DEFAULT_VERSION_TEMPLATE.to_owned()),
            donor_package_step_id: None,
            donor_package: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct ProjectConnectivityPolicy {
    pub skip_machine_behavior: String,
    pub target_roles: Vec<String>,
    pub allow_deployments_to_no_targets: bool,
    pub exclude_unhealthy_targets: bool,
}

impl Default for ProjectConnectivityPolicy {
    fn default() -> ProjectConnectivityPolicy {
        ProjectConnectivityPolicy {
            skip_machine_behavior: "None".to_owned(),
            target_roles: Vec::new(),
            allow_deployments_to_no_targets: false,
            exclude_unhealthy_targets: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Project {
    pub id: String,
    pub space_id: String,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub lifecycle_id: String,
    pub project_group_id: String,
    pub is_disabled: bool,
    pub deployment_process_id: String,
    pub variable_set_id: String,
    pub included_library_variable_set_ids: Vec<String>,
    pub default_guided_failure_mode: String,
    pub tenanted_deployment_mode: String,
    pub discrete_channel_release: bool,
    pub default_to_skip_if_already_installed: bool,
    pub versioning_strategy: VersioningStrategy,
    pub project_connectivity_policy: ProjectConnectivityPolicy,
    pub is_version_controlled: bool,
    pub auto_create_release: bool,
}

impl Default for Project {
    fn default() -> Project {
        Project {
            id: String::new(),
            space_id: String::new(),
            name: String::new(),
            slug: String::new(),
            description: None,
            lifecycle_id: String::new(),
            project_group_id: String::new(),
            is_disabled: false,
            deployment_process_id: String::new(),
            variable_set_id: String::new(),
            included_library_variable_set_ids: Vec::new(),
            default_guided_failure_mode: "EnvironmentDefault".to_owned(),
            tenanted_deployment_mode: "Untenanted".to_owned(),
            discrete_channel_release: false,
            default_to_skip_if_already_installed: false,
            versioning_strategy: VersioningStrategy::default(),
            project_connectivity_policy: ProjectConnectivityPolicy::default(),
            is_version_controlled: false,
            auto_create_release: false,
        }
    }
}

impl Project {
    /// The ids Octopus derives from the project id for its process and variable set.
    pub fn fill_derived_ids(&mut self) {
        self.deployment_process_id = format!("deploymentprocess-{}", self.id);
        self.variable_set_id = format!("variableset-{}", self.id);
    }
}

const GUIDED_FAILURE_MODES: [&str; 3] = ["EnvironmentDefault", "Off", "On"];
const TENANTED_DEPLOYMENT_MODES: [&str; 3] = ["Untenanted", "TenantedOrUntenanted", "Tenanted"];

/// Checks a string field against a closed set, reporting the allowed values.
fn validate_one_of(field: &str, value: &str, allowed: &[&str], errors: &mut Vec<FieldError>) {
    if !allowed.contains(&value) {
        errors.push(FieldError::new(
            field,
            format!(
                "{field} must be one of {}, not '{value}'",
                allowed.join(", ")
            ),
        ));
    }
}

impl Resource for Project {
    const KIND: ResourceKind = ResourceKind::Project;
    space_scoped_resource_accessors!();

    fn references(&self) -> Vec<Reference> {
        let mut references = vec![
            Reference::new("LifecycleId", ResourceKind::Lifecycle, &self.lifecycle_id),
            Reference::new(
                "ProjectGroupId",
                ResourceKind::ProjectGroup,
                &self.project_group_id,
            ),
        ];
        references_from_list(
            &mut references,
            "IncludedLibraryVariableSetIds",
            ResourceKind::LibraryVariableSet,
            &self.included_library_variable_set_ids,
        );
        references
    }

    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_name("Name", &mut self.name, &mut errors);
        validate_description(&self.description, &mut errors);
        normalize_slug(&mut self.slug, &self.name);
        normalize_string_list(&mut self.included_library_variable_set_ids);
        if self.lifecycle_id.trim().is_empty() {
            errors.push(FieldError::new("LifecycleId", "LifecycleId is required"));
        }
        if self.project_group_id.trim().is_empty() {
            errors.push(FieldError::new(
                "ProjectGroupId",
                "ProjectGroupId is required",
            ));
        }
        validate_one_of(
            "DefaultGuidedFailureMode",
            &self.default_guided_failure_mode,
            &GUIDED_FAILURE_MODES,
            &mut errors,
        );
        validate_one_of(
            "TenantedDeploymentMode",
            &self.tenanted_deployment_mode,
            &TENANTED_DEPLOYMENT_MODES,
            &mut errors,
        );
        errors
    }
}

// ---------------------------------------------------------------------------------------------
// Channels

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct ChannelRuleActionPackage {
    pub deployment_action: String,
    pub package_reference: Option<String>,
}

/// A channel version rule: which package versions a release in the channel may use.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct ChannelVersionRule {
    pub id: String,
    /// A NuGet-style version range such as `[1.0,2.0)`.
    pub version_range: Option<String>,
    /// A regular expression the pre-release tag must match (`^$` for none).
    pub tag: Option<String>,
    pub action_packages: Vec<ChannelRuleActionPackage>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Channel {
    pub id: String,
    pub space_id: String,
    pub project_id: String,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    /// `None` means the project's lifecycle.
    pub lifecycle_id: Option<String>,
    pub is_default: bool,
    pub rules: Vec<ChannelVersionRule>,
    pub tenant_tags: Vec<String>,
}

impl Channel {
    /// Gives each rule without an id one from `new_rule_id` (the caller supplies GUIDs).
    pub fn assign_rule_ids(&mut self, mut new_rule_id: impl FnMut() -> String) {
        for rule in &mut self.rules {
            if rule.id.trim().is_empty() {
                rule.id = new_rule_id();
            }
        }
    }
}

impl Resource for Channel {
    const KIND: ResourceKind = ResourceKind::Channel;
    space_scoped_resource_accessors!();

    fn owner_id(&self) -> Option<&str> {
        Some(&self.project_id)
    }

    fn references(&self) -> Vec<Reference> {
        let mut references = vec![Reference::new(
            "ProjectId",
            ResourceKind::Project,
            &self.project_id,
        )];
        if let Some(lifecycle_id) = &self.lifecycle_id {
            references.push(Reference::new(
                "LifecycleId",
                ResourceKind::Lifecycle,
                lifecycle_id,
            ));
        }
        references
    }

    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_name("Name", &mut self.name, &mut errors);
        validate_description(&self.description, &mut errors);
        normalize_slug(&mut self.slug, &self.name);
        if self.project_id.trim().is_empty() {
            errors.push(FieldError::new("ProjectId", "ProjectId is required"));
        }
        if self
            .lifecycle_id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            self.lifecycle_id = None;
        }
        normalize_string_list(&mut self.tenant_tags);
        for (rule_index, rule) in self.rules.iter().enumerate() {
            let has_range = rule
                .version_range
                .as_deref()
                .is_some_and(|range| !range.trim().is_empty());
            let has_tag = rule.tag.as_deref().is_some_and(|tag| !tag.is_empty());
            if !has_range && !has_tag {
                errors.push(FieldError::new(
                    format!("Rules[{rule_index}]"),
                    "a version rule needs a VersionRange, a Tag, or both",
                ));
            }
        }
        errors
    }
}

// ---------------------------------------------------------------------------------------------
// Deployment targets and workers

/// How the server reaches a machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(tag = "CommunicationStyle")]
pub enum Endpoint {
    /// A listening agent: the server dials `Uri` and pins `Thumbprint`.
    #[serde(rename = "TentaclePassive", rename_all = "PascalCase")]
    Listening {
        #[serde(default)]
        uri: String,
        #[serde(default)]
        thumbprint: String,
    },
    /// A polling agent: it dials the server and is known by its subscription `Uri`
    /// (`poll://<subscription id>/`) and `Thumbprint`.
    #[serde(rename = "TentacleActive", rename_all = "PascalCase")]
    Polling {
        #[serde(default)]
        uri: String,
        #[serde(default)]
        thumbprint: String,
    },
    /// An SSH target: the server connects with the account's credentials and checks the host key.
    #[serde(rename = "Ssh", rename_all = "PascalCase")]
    Ssh {
        #[serde(default)]
        host: String,
        #[serde(default = "default_ssh_port")]
        port: i64,
        #[serde(default)]
        account_id: String,
        #[serde(default)]
        fingerprint: String,
    },
    /// No endpoint: steps run on a worker on the target's behalf (Octopus's cloud region).
    #[serde(rename = "None")]
    #[default]
    None,
}

fn default_ssh_port() -> i64 {
    22
}

impl Endpoint {
    /// The thumbprint of an agent endpoint, if it has one.
    pub fn thumbprint(&self) -> Option<&str> {
        match self {
            Endpoint::Listening { thumbprint, .. } | Endpoint::Polling { thumbprint, .. } => {
                Some(thumbprint)
            }
            Endpoint::Ssh { .. } | Endpoint::None => None,
        }
    }

    /// The URI of an agent endpoint, if it has one.
    pub fn uri(&self) -> Option<&str> {
        match self {
            Endpoint::Listening { uri, .. } | Endpoint::Polling { uri, .. } => Some(uri),
            Endpoint::Ssh { .. } | Endpoint::None => None,
        }
    }

    /// The account an SSH endpoint signs in with, as a reference.
    fn account_reference(&self) -> Option<Reference> {
        match self {
            Endpoint::Ssh { account_id, .. } if !account_id.trim().is_empty() => {
                Some(Reference::new(
                    "Endpoint.AccountId",
                    ResourceKind::Account,
                    account_id.clone(),
                ))
            }
            _ => None,
        }
    }

    fn normalize_and_validate(&mut self, errors: &mut Vec<FieldError>) {
        match self {
            Endpoint::Listening { uri, thumbprint } => {
                *uri = uri.trim().to_owned();
                if !(uri.starts_with("https://") && uri.len() > "https://".len()) {
                    errors.push(FieldError::new(
                        "Endpoint.Uri",
                        "a listening agent's Uri must be an https:// address such as https://web01:10933/",
                    ));
                }
                normalize_thumbprint(thumbprint, errors);
            }
            Endpoint::Polling { uri, thumbprint } => {
                *uri = uri.trim().to_owned();
                let subscription = uri
                    .strip_prefix("poll://")
                    .map(|rest| rest.trim_end_matches('/'))
                    .unwrap_or_default();
                if subscription.is_empty()
                    || !subscription
                        .chars()
                        .all(|character| character.is_ascii_alphanumeric() || character == '-')
                {
                    errors.push(FieldError::new(
                        "Endpoint.Uri",
                        "a polling agent's Uri must be poll://<subscription id>/",
                    ));
                }
                normalize_thumbprint(thumbprint, errors);
            }
            Endpoint::Ssh {
                host,
                port,
                account_id,
                fingerprint,
            } => {
                *host = host.trim().to_owned();
                if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    errors.push(FieldError::new(
                        "Endpoint.Host",
                        "an SSH target needs a Host name or address",
                    ));
                }
                if !(1..=65_535).contains(port) {
                    errors.push(FieldError::new(
                        "Endpoint.Port",
                        format!("Port must be between 1 and 65535, not {port}"),
                    ));
                }
                if account_id.trim().is_empty() {
                    errors.push(FieldError::new(
                        "Endpoint.AccountId",
                        "an SSH target needs an AccountId",
                    ));
                }
                *fingerprint = fingerprint.trim().to_owned();
                if fingerprint.is_empty() {
                    errors.push(FieldError::new(
                        "Endpoint.Fingerprint",
                        "an SSH target needs the host key Fingerprint",
                    ));
                }
            }
            Endpoint::None => {}
        }
    }
}

/// Thumbprints are SHA-256 (ours) or SHA-1 (Octopus's Tentacle) in hex; kept upper-case.
fn normalize_thumbprint(thumbprint: &mut String, errors: &mut Vec<FieldError>) {
    let cleaned: String = thumbprint
        .chars()
        .filter(|character| *character != ':' && !character.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if !(cleaned.len() == 64 || cleaned.len() == 40)
        || !cleaned
            .chars()
            .all(|character| character.is_ascii_hexdigit())
    {
        errors.push(FieldError::new(
            "Endpoint.Thumbprint",
            "Thumbprint must be the agent certificate's SHA-256 fingerprint in hex (64 characters)",
        ));
    }
    *thumbprint = cleaned;
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum HealthStatus {
    Healthy,
    Unhealthy,
    HasWarnings,
    Unavailable,
    #[default]
    Unknown,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct DeploymentTarget {
    pub id: String,
    pub space_id: String,
    pub name: String,
    pub environment_ids: Vec<String>,
    pub roles: Vec<String>,
    pub endpoint: Endpoint,
    pub is_disabled: bool,
    pub health_status: HealthStatus,
    pub status_summary: Option<String>,
    /// The last time a health check finished, ISO-8601.
    pub last_health_check: Option<String>,
    pub machine_policy_id: Option<String>,
    pub tenanted_deployment_participation: String,
    pub tenant_ids: Vec<String>,
    pub tenant_tags: Vec<String>,
}

impl Default for DeploymentTarget {
    fn default() -> DeploymentTarget {
        DeploymentTarget {
            id: String::new(),
            space_id: String::new(),
            name: String::new(),
            environment_ids: Vec::new(),
            roles: Vec::new(),
            endpoint: Endpoint::None,
            is_disabled: false,
            health_status: HealthStatus::Unknown,
            status_summary: None,
            last_health_check: None,
            machine_policy_id: None,
            tenanted_deployment_participation: "Untenanted".to_owned(),
            tenant_ids: Vec::new(),
            tenant_tags: Vec::new(),
        }
    }
}

impl Resource for DeploymentTarget {
    const KIND: ResourceKind = ResourceKind::DeploymentTarget;
    space_scoped_resource_accessors!();

    fn references(&self) -> Vec<Reference> {
        let mut references = Vec::new();
        references_from_list(
            &mut references,
            "EnvironmentIds",
            ResourceKind::Environment,
            &self.environment_ids,
        );
        references.extend(self.endpoint.account_reference());
        if let Some(policy_id) = self
            .machine_policy_id
            .as_deref()
            .filter(|id| !id.is_empty())
        {
            references.push(Reference::new(
                "MachinePolicyId",
                ResourceKind::MachinePolicy,
                policy_id,
            ));
        }
        references
    }

    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_name("Name", &mut self.name, &mut errors);
        normalize_string_list(&mut self.environment_ids);
        normalize_string_list(&mut self.roles);
        normalize_string_list(&mut self.tenant_tags);
        require_non_empty("EnvironmentIds", &self.environment_ids, &mut errors);
        require_non_empty("Roles", &self.roles, &mut errors);
        for role in &self.roles {
            if role.chars().count() > 200 || role.chars().any(char::is_control) {
                errors.push(FieldError::new(
                    "Roles",
                    "a role is at most 200 characters with no control characters",
                ));
            }
        }
        validate_one_of(
            "TenantedDeploymentParticipation",
            &self.tenanted_deployment_participation,
            &TENANTED_DEPLOYMENT_MODES,
            &mut errors,
        );
        if self.endpoint == Endpoint::None {
            errors.push(FieldError::new(
                "Endpoint",
                "Endpoint is required: CommunicationStyle TentaclePassive, TentacleActive or Ssh",
            ));
        }
        self.endpoint.normalize_and_validate(&mut errors);
        errors
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct WorkerPool {
    pub id: String,
    pub space_id: String,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub is_default: bool,
    pub sort_order: i64,
    pub worker_pool_type: String,
    pub can_add_workers: bool,
}

impl Default for WorkerPool {
    fn default() -> WorkerPool {
        WorkerPool {
            id: String::new(),
            space_id: String::new(),
            name: String::new(),
            slug: String::new(),
            description: None,
            is_default: false,
            sort_order: 0,
            worker_pool_type: "StaticWorkerPool".to_owned(),
            can_add_workers: true,
        }
    }
}

impl Resource for WorkerPool {
    const KIND: ResourceKind = ResourceKind::WorkerPool;
    space_scoped_resource_accessors!();

    fn sort_order(&self) -> i64 {
        self.sort_order
    }

    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }

    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_name("Name", &mut self.name, &mut errors);
        validate_description(&self.description, &mut errors);
        normalize_slug(&mut self.slug, &self.name);
        validate_one_of(
            "WorkerPoolType",
            &self.worker_pool_type,
            &["StaticWorkerPool"],
            &mut errors,
        );
        self.can_add_workers = true;
        errors
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Worker {
    pub id: String,
    pub space_id: String,
    pub name: String,
    pub worker_pool_ids: Vec<String>,
    pub endpoint: Endpoint,
    pub is_disabled: bool,
    pub health_status: HealthStatus,
    pub status_summary: Option<String>,
    pub last_health_check: Option<String>,
    pub machine_policy_id: Option<String>,
}

impl Resource for Worker {
    const KIND: ResourceKind = ResourceKind::Worker;
    space_scoped_resource_accessors!();

    fn references(&self) -> Vec<Reference> {
        let mut references = Vec::new();
        references_from_list(
            &mut references,
            "WorkerPoolIds",
            ResourceKind::WorkerPool,
            &self.worker_pool_ids,
        );
        references.extend(self.endpoint.account_reference());
        references
    }

    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_name("Name", &mut self.name, &mut errors);
        normalize_string_list(&mut self.worker_pool_ids);
        require_non_empty("WorkerPoolIds", &self.worker_pool_ids, &mut errors);
        if self.endpoint == Endpoint::None {
            errors.push(FieldError::new(
                "Endpoint",
                "Endpoint is required: CommunicationStyle TentaclePassive, TentacleActive or Ssh",
            ));
        }
        self.endpoint.normalize_and_validate(&mut errors);
        errors
    }
}

// ---------------------------------------------------------------------------------------------
// Library variable sets

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct LibraryVariableSet {
    pub id: String,
    pub space_id: String,
    pub name: String,
    pub description: Option<String>,
    pub variable_set_id: String,
    pub content_type: String,
    pub templates: Vec<serde_json::Value>,
}

impl Default for LibraryVariableSet {
    fn default() -> LibraryVariableSet {
        LibraryVariableSet {
            id: String::new(),
            space_id: String::new(),
            name: String::new(),
            description: None,
            variable_set_id: String::new(),
            content_type: "Variables".to_owned(),
            templates: Vec::new(),
        }
    }
}

impl LibraryVariableSet {
    /// The id Octopus derives from the set's id for its variables.
    pub fn fill_derived_ids(&mut self) {
        self.variable_set_id = format!("variableset-{}", self.id);
    }
}

impl Resource for LibraryVariableSet {
    const KIND: ResourceKind = ResourceKind::LibraryVariableSet;
    space_scoped_resource_accessors!();

    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }

    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_name("Name", &mut self.name, &mut errors);
        validate_description(&self.description, &mut errors);
        validate_one_of(
            "ContentType",
            &self.content_type,
            &["Variables", "ScriptModule"],
            &mut errors,
        );
        errors
    }
}

// ---------------------------------------------------------------------------------------------
// Machine policies

/// A health-check script for one shell.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub struct HealthCheckScript {
    /// `Inline` (the only kind Cuttle runs).
    pub run_type: String,
    /// Empty: no script, only the connection is checked.
    pub script_body: Option<String>,
}

/// How a target's health is checked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub struct MachineHealthCheckPolicy {
    /// How often, as a .NET TimeSpan: `01:00:00`, `00:10:00`, `1.00:00:00`.
    pub health_check_interval: String,
    /// `RunScript` (connect, then run the script for the target's shell) or `OnlyConnectivity`.
    pub health_check_type: String,
    pub bash_health_check_policy: HealthCheckScript,
    pub power_shell_health_check_policy: HealthCheckScript,
}

impl Default for MachineHealthCheckPolicy {
    fn default() -> MachineHealthCheckPolicy {
        MachineHealthCheckPolicy {
            health_check_interval: "01:00:00".to_owned(),
            health_check_type: "RunScript".to_owned(),
            bash_health_check_policy: HealthCheckScript {
                run_type: "Inline".to_owned(),
                script_body: None,
            },
            power_shell_health_check_policy: HealthCheckScript {
                run_type: "Inline".to_owned(),
                script_body: None,
            },
        }
    }
}

/// The shortest interval between scheduled health checks, in seconds.
pub const MIN_HEALTH_CHECK_INTERVAL_SECONDS: u64 = 5;

/// Parses a .NET TimeSpan (`[d.]hh:mm:ss`) into seconds.
pub fn parse_time_span(text: &str) -> Option<u64> {
    let text = text.trim();
    let (days, clock) = match text.split_once('.') {
        Some((days, clock)) if clock.contains(':') => (days.parse::<u64>().ok()?, clock),
        _ => (0, text),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let [hours, minutes, seconds] = parts.as_slice() else {
        return None;
    };
    let hours: u64 = hours.parse().ok()?;
    let minutes: u64 = minutes.parse().ok()?;
    let seconds: u64 = seconds.split('.').next()?.parse().ok()?;
    if minutes > 59 || seconds > 59 {
        return None;
    }
    days.checked_mul(86_400)?
        .checked_add(hours.checked_mul(3_600)?)?
        .checked_add(minutes * 60 + seconds)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct MachinePolicy {
    pub id: String,
    pub space_id: String,
    pub name: String,
    pub description: Option<String>,
    pub is_default: bool,
    pub machine_health_check_policy: MachineHealthCheckPolicy,
}

impl MachinePolicy {
    /// Seconds between scheduled checks.
    pub fn interval_seconds(&self) -> u64 {
        parse_time_span(&self.machine_health_check_policy.health_check_interval)
            .unwrap_or(3_600)
            .max(MIN_HEALTH_CHECK_INTERVAL_SECONDS)
    }

    /// The bash health script, when the policy runs one.
    pub fn bash_script(&self) -> Option<&str> {
        let policy = &self.machine_health_check_policy;
        if policy.health_check_type != "RunScript" {
            return None;
        }
        policy
            .bash_health_check_policy
            .script_body
            .as_deref()
            .filter(|body| !body.trim().is_empty())
    }
}

impl Resource for MachinePolicy {
    const KIND: ResourceKind = ResourceKind::MachinePolicy;
    space_scoped_resource_accessors!();

    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }

    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_name("Name", &mut self.name, &mut errors);
        validate_description(&self.description, &mut errors);
        let policy = &self.machine_health_check_policy;
        match parse_time_span(&policy.health_check_interval) {
            None => errors.push(FieldError::new(
                "MachineHealthCheckPolicy.HealthCheckInterval",
                format!(
                    "HealthCheckInterval must be a time span such as 01:00:00 or 1.00:00:00, not '{}'",
                    policy.health_check_interval
                ),
            )),
            Some(seconds) if seconds < MIN_HEALTH_CHECK_INTERVAL_SECONDS => errors.push(FieldError::new(
                "MachineHealthCheckPolicy.HealthCheckInterval",
                format!("HealthCheckInterval must be at least {MIN_HEALTH_CHECK_INTERVAL_SECONDS} seconds"),
            )),
            Some(_) => {}
        }
        validate_one_of(
            "MachineHealthCheckPolicy.HealthCheckType",
            &policy.health_check_type,
            &["RunScript", "OnlyConnectivity"],
            &mut errors,
        );
        errors
    }
}

// ---------------------------------------------------------------------------------------------
// Accounts

/// A secret in a resource, in Octopus's shape: clients send `NewValue` to set it and see only
/// `HasValue`. The server keeps the value sealed (`SealedValue`) and never shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub struct SensitiveValue {
    pub has_value: bool,
    /// Write-only: the new value a client sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_value: Option<String>,
    /// Stored only: the value sealed by the server; removed from every answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed_value: Option<String>,
}

impl SensitiveValue {
    /// Whether a value is set or being set.
    pub fn is_set(&self) -> bool {
        self.new_value
            .as_deref()
            .is_some_and(|value| !value.is_empty())
            || self.sealed_value.is_some()
    }

    /// Keeps the stored value unless the client sent a new one or cleared it
    /// (`HasValue: false` without a `NewValue`).
    pub fn keep_stored(&mut self, stored: &SensitiveValue) {
        if self.new_value.is_none() && self.has_value {
            self.sealed_value.clone_from(&stored.sealed_value);
        }
        // A client never sets the sealed form itself.
        if self.new_value.is_some() {
            self.sealed_value = None;
        }
    }

    /// The form answers carry: whether there is a value, nothing more.
    pub fn redact(&mut self) {
        self.has_value = self.sealed_value.is_some();
        self.new_value = None;
        self.sealed_value = None;
    }
}

/// Credentials targets sign in with: an SSH key pair or a username and password.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Account {
    pub id: String,
    pub space_id: String,
    pub name: String,
    pub description: Option<String>,
    /// `SshKeyPair` or `UsernamePassword`.
    pub account_type: String,
    pub environment_ids: Vec<String>,
    pub tenanted_deployment_participation: String,
    pub username: String,
    pub password: SensitiveValue,
    pub private_key_file: SensitiveValue,
    pub private_key_passphrase: SensitiveValue,
}

impl Default for Account {
    fn default() -> Account {
        Account {
            id: String::new(),
            space_id: String::new(),
            name: String::new(),
            description: None,
            account_type: "SshKeyPair".to_owned(),
            environment_ids: Vec::new(),
            tenanted_deployment_participation: "Untenanted".to_owned(),
            username: String::new(),
            password: SensitiveValue::default(),
            private_key_file: SensitiveValue::default(),
            private_key_passphrase: SensitiveValue::default(),
        }
    }
}

impl Account {
    /// Every secret of the account, to seal or redact.
    pub fn secrets_mut(&mut self) -> [&mut SensitiveValue; 3] {
        [
            &mut self.password,
            &mut self.private_key_file,
            &mut self.private_key_passphrase,
        ]
    }
}

impl Resource for Account {
    const KIND: ResourceKind = ResourceKind::Account;
    space_scoped_resource_accessors!();

    fn references(&self) -> Vec<Reference> {
        let mut references = Vec::new();
        references_from_list(
            &mut references,
            "EnvironmentIds",
            ResourceKind::Environment,
            &self.environment_ids,
        );
        references
    }

    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_name("Name", &mut self.name, &mut errors);
        validate_description(&self.description, &mut errors);
        normalize_string_list(&mut self.environment_ids);
        validate_one_of(
            "AccountType",
            &self.account_type,
            &["SshKeyPair", "UsernamePassword"],
            &mut errors,
        );
        self.username = self.username.trim().to_owned();
        if self.username.is_empty() {
            errors.push(FieldError::new("Username", "Username is required"));
        }
        match self.account_type.as_str() {
            "SshKeyPair" if !self.private_key_file.is_set() => errors.push(FieldError::new(
                "PrivateKeyFile",
                "PrivateKeyFile is required for an SSH key pair: send the private key (PEM or OpenSSH format) as PrivateKeyFile.NewValue",
            )),
            "UsernamePassword" if !self.password.is_set() => errors.push(FieldError::new(
                "Password",
                "Password is required: send it as Password.NewValue",
            )),
            _ => {}
        }
        errors
    }
}

// ---------------------------------------------------------------------------------------------
// Users

/// A person or service account. The password hash never leaves the server: the API has its
/// own user shape without it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email_address: Option<String>,
    pub is_active: bool,
    pub is_service: bool,
    pub is_administrator: bool,
    /// An argon2 PHC string; `None` for service accounts, which sign in with API keys only.
    pub password_hash: Option<String>,
}

impl Resource for User {
    const KIND: ResourceKind = ResourceKind::User;

    fn id(&self) -> &str {
        &self.id
    }
    fn set_id(&mut self, id: String) {
        self.id = id;
    }
    fn name(&self) -> &str {
        &self.username
    }
    fn space_id(&self) -> Option<&str> {
        None
    }
    fn set_space_id(&mut self, _space_id: &str) {}

    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }

    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_name("Username", &mut self.username, &mut errors);
        if self.display_name.trim().is_empty() {
            self.display_name.clone_from(&self.username);
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_spans_parse_like_dotnet() {
        assert_eq!(parse_time_span("01:00:00"), Some(3_600));
        assert_eq!(parse_time_span("00:00:30"), Some(30));
        assert_eq!(parse_time_span("1.00:10:00"), Some(87_000));
        assert_eq!(parse_time_span("00:00:10.5000000"), Some(10));
        for bad in ["", "10", "00:60:00", "a:b:c", "1:2"] {
            assert_eq!(parse_time_span(bad), None, "{bad}");
        }
    }

    #[test]
    fn endpoints_use_octopus_communication_styles() {
        let endpoint: Endpoint = serde_json::from_value(serde_json::json!({
            "CommunicationStyle": "TentaclePassive",
            "Uri": "https://web01:10933/",
            "Thumbprint": "ab".repeat(32),
            "Id": null,
        }))
        .unwrap();
        assert!(matches!(endpoint, Endpoint::Listening { .. }));
        let json = serde_json::to_value(&endpoint).unwrap();
        assert_eq!(json["CommunicationStyle"], "TentaclePassive");
        assert_eq!(json["Uri"], "https://web01:10933/");
    }

    #[test]
    fn targets_need_environments_roles_and_an_endpoint() {
        let mut target = DeploymentTarget {
            name: "web01".to_owned(),
            ..DeploymentTarget::default()
        };
        let fields: Vec<String> = target
            .normalize_and_validate()
            .into_iter()
            .map(|error| error.field)
            .collect();
        assert_eq!(fields, vec!["EnvironmentIds", "Roles", "Endpoint"]);
    }

    #[test]
    fn thumbprints_are_normalized_to_upper_case_hex() {
        let mut target = DeploymentTarget {
            name: "web01".to_owned(),
            environment_ids: vec!["Environments-1".to_owned()],
            roles: vec!["web".to_owned()],
            endpoint: Endpoint::Polling {
                uri: "poll://abc123/".to_owned(),
                thumbprint: "ab:".repeat(32),
            },
            ..DeploymentTarget::default()
        };
        assert_eq!(target.normalize_and_validate(), Vec::new());
        assert_eq!(target.endpoint.thumbprint(), Some("AB".repeat(32).as_str()));
    }

    #[test]
    fn ssh_endpoints_check_port_and_fingerprint() {
        let mut endpoint = Endpoint::Ssh {
            host: "db01".to_owned(),
            port: 70_000,
            account_id: "Accounts-1".to_owned(),
            fingerprint: String::new(),
        };
        let mut errors = Vec::new();
        endpoint.normalize_and_validate(&mut errors);
        let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
        assert_eq!(fields, vec!["Endpoint.Port", "Endpoint.Fingerprint"]);
    }

    #[test]
    fn an_environment_may_be_in_one_phase_only() {
        let mut lifecycle = Lifecycle {
            name: "Standard".to_owned(),
            phases: vec![
                Phase {
                    name: "Dev".to_owned(),
                    automatic_deployment_targets: vec!["Environments-1".to_owned()],
                    ..Phase::default()
                },
                Phase {
                    name: "Test".to_owned(),
                    optional_deployment_targets: vec!["Environments-1".to_owned()],
                    minimum_environments_before_promotion: 3,
                    ..Phase::default()
                },
            ],
            ..Lifecycle::default()
        };
        let errors = lifecycle.normalize_and_validate();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].field, "Phases[1]");
        assert_eq!(
            errors[1].field,
            "Phases[1].MinimumEnvironmentsBeforePromotion"
        );
    }

    #[test]
    fn lifecycle_references_name_their_phase_field() {
        let lifecycle = Lifecycle {
            phases: vec![Phase {
                optional_deployment_targets: vec!["Environments-4".to_owned()],
                ..Phase::default()
            }],
            ..Lifecycle::default()
        };
        assert_eq!(
            lifecycle.references(),
            vec![Reference::new(
                "Phases[0].OptionalDeploymentTargets[0]",
                ResourceKind::Environment,
                "Environments-4"
            )]
        );
    }

    #[test]
    fn projects_default_to_octopus_modes() {
        let project: Project = serde_json::from_str(r#"{"Name":"Web"}"#).unwrap();
        assert_eq!(project.default_guided_failure_mode, "EnvironmentDefault");
        assert_eq!(
            project.versioning_strategy.template.as_deref(),
            Some(DEFAULT_VERSION_TEMPLATE)
        );
    }
}
