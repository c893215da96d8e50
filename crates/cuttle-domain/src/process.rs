//! The deployment process: a project's ordered steps and the actions they run, in Octopus's
//! shape (`DeploymentStepResource`, `DeploymentActionResource`), so processes written for
//! Octopus load unchanged.
//!
//! A step says *where and when* (target roles, run condition, start trigger, rolling window);
//! its actions say *what* (`ActionType` and properties). Properties keep Octopus's names
//! (`Octopus.Action.Script.ScriptBody`, `Octopus.Action.TargetRoles`…) and are kept as given,
//! including ones Cuttle does not know yet, so nothing a user wrote is lost on a round trip.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::ResourceKind;
use crate::packages::BUILT_IN_FEED_ID;
use crate::validation::{
    FieldError, Reference, Resource, normalize_slug, normalize_string_list, slugify, validate_name,
};

/// One package an action uses (an entry of Octopus's `Packages`): `name` is empty for the
/// action's primary package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageReference {
    pub name: String,
    pub package_id: String,
    pub feed_id: String,
    /// `Server` (pushed from the server), `ExecutionTarget` or `NotAcquired`; empty means
    /// `Server`.
    pub acquisition_location: String,
}

/// Property names Cuttle reads, spelled as Octopus spells them.
pub mod property {
    pub const TARGET_ROLES: &str = "Octopus.Action.TargetRoles";
    pub const MAX_PARALLELISM: &str = "Octopus.Action.MaxParallelism";
    pub const CONDITION_VARIABLE_EXPRESSION: &str = "Octopus.Step.ConditionVariableExpression";
    pub const RUN_ON_SERVER: &str = "Octopus.Action.RunOnServer";
    pub const SCRIPT_SOURCE: &str = "Octopus.Action.Script.ScriptSource";
    pub const SCRIPT_SYNTAX: &str = "Octopus.Action.Script.Syntax";
    pub const SCRIPT_BODY: &str = "Octopus.Action.Script.ScriptBody";
    pub const MANUAL_INSTRUCTIONS: &str = "Octopus.Action.Manual.Instructions";
    pub const MANUAL_RESPONSIBLE_TEAMS: &str = "Octopus.Action.Manual.ResponsibleTeamIds";
    pub const MANUAL_BLOCK_CONCURRENT: &str = "Octopus.Action.Manual.BlockConcurrentDeployments";
    /// The primary package of older processes, written as properties instead of `Packages`.
    pub const PACKAGE_ID: &str = "Octopus.Action.Package.PackageId";
    pub const PACKAGE_FEED_ID: &str = "Octopus.Action.Package.FeedId";
    /// How many times a failed action runs again by itself (so up to this + 1 runs).
    pub const AUTO_RETRY_MAXIMUM_COUNT: &str = "Octopus.Action.AutoRetry.MaximumCount";
    /// Seconds to wait before each automatic retry.
    pub const AUTO_RETRY_MINIMUM_BACKOFF: &str = "Octopus.Action.AutoRetry.MinimumBackoff";
    /// How long one run of the action may take, in minutes.
    pub const EXECUTION_TIMEOUT_MINUTES: &str = "Octopus.Action.ExecutionTimeout.Minutes";
}

/// The most automatic retries an action may ask for.
pub const MAXIMUM_AUTO_RETRIES: u32 = 100;
/// The wait before an automatic retry when the action names none, as Octopus's step editor
/// proposes.
pub const DEFAULT_AUTO_RETRY_BACKOFF: Duration = Duration::from_secs(15);
/// The longest wait before an automatic retry, in seconds (a day).
pub const MAXIMUM_AUTO_RETRY_BACKOFF_SECONDS: u64 = 86_400;
/// The longest execution timeout, in minutes (a week).
pub const MAXIMUM_EXECUTION_TIMEOUT_MINUTES: f64 = 10_080.0;

/// How a failed action is run again by itself before the deployment fails (or asks for
/// guidance): `Octopus.Action.AutoRetry.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoRetry {
    /// Runs after the first one, at most.
    pub retries: u32,
    /// The wait before each.
    pub backoff: Duration,
}

/// Action types Cuttle runs now; others are kept but refused at deployment time.
pub mod action_type {
    pub const SCRIPT: &str = "Octopus.Script";
    pub const MANUAL: &str = "Octopus.Manual";
    pub const HEALTH_CHECK: &str = "Octopus.HealthCheck";
    pub const PACKAGE: &str = "Octopus.TentaclePackage";
    /// The types the engine can run today.
    pub const SUPPORTED: [&str; 4] = [SCRIPT, MANUAL, HEALTH_CHECK, PACKAGE];
}

/// Octopus's property bag: names to (normally string) values.
pub type Properties = serde_json::Map<String, serde_json::Value>;

/// The text of a property, when it is a string (Octopus also sends numbers and booleans as
/// strings; a sensitive property arrives as an object and is not text).
pub fn property_text<'a>(properties: &'a Properties, name: &str) -> Option<&'a str> {
    properties.get(name).and_then(serde_json::Value::as_str)
}

/// A property as a list: Octopus stores lists (target roles) as comma-separated text.
pub fn property_list(properties: &Properties, name: &str) -> Vec<String> {
    match properties.get(name) {
        Some(serde_json::Value::String(text)) => text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// When a step runs, given how the deployment has gone so far.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum StepCondition {
    /// Only when every earlier step succeeded (the default).
    #[default]
    Success,
    /// Only when an earlier step failed.
    Failure,
    Always,
    /// When `Octopus.Step.ConditionVariableExpression` evaluates to true.
    Variable,
}

/// Whether a step waits for the previous one or runs beside it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum StartTrigger {
    #[default]
    StartAfterPrevious,
    StartWithPrevious,
}

/// When a step's packages must be on the targets.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum PackageRequirement {
    #[default]
    LetOctopusDecide,
    BeforePackageAcquisition,
    AfterPackageAcquisition,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct DeploymentAction {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub action_type: String,
    pub notes: Option<String>,
    pub is_disabled: bool,
    pub is_required: bool,
    pub worker_pool_id: Option<String>,
    pub worker_pool_variable: Option<String>,
    pub can_be_used_for_project_versioning: bool,
    pub environments: Vec<String>,
    pub excluded_environments: Vec<String>,
    pub channels: Vec<String>,
    pub tenant_tags: Vec<String>,
    pub packages: Vec<serde_json::Value>,
    pub condition: Option<String>,
    pub container: Option<serde_json::Value>,
    pub properties: Properties,
}

impl DeploymentAction {
    pub fn property(&self, name: &str) -> Option<&str> {
        property_text(&self.properties, name)
    }

    /// The packages the action uses, read from `Packages` (entries without a `PackageId` are
    /// skipped: a release cannot pin them), else from the legacy primary-package properties.
    pub fn package_references(&self) -> Vec<PackageReference> {
        let text = |value: &serde_json::Value, name: &str| {
            value
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        let mut references: Vec<PackageReference> = self
            .packages
            .iter()
            .map(|package| PackageReference {
                name: text(package, "Name"),
                package_id: text(package, "PackageId"),
                feed_id: text(package, "FeedId"),
                acquisition_location: text(package, "AcquisitionLocation"),
            })
            .filter(|reference| !reference.package_id.is_empty())
            .collect();
        if references.is_empty()
            && let Some(package_id) = self
                .property(property::PACKAGE_ID)
                .map(str::trim)
                .filter(|id| !id.is_empty())
        {
            references.push(PackageReference {
                name: String::new(),
                package_id: package_id.to_owned(),
                feed_id: self
                    .property(property::PACKAGE_FEED_ID)
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                acquisition_location: String::new(),
            });
        }
        for reference in &mut references {
            if reference.feed_id.is_empty() {
                reference.feed_id = BUILT_IN_FEED_ID.to_owned();
            }
        }
        references
    }

    /// `Octopus.Action.AutoRetry.*`; `None` when the action does not retry (no count, or 0).
    /// Saving a process checks the values, so text that is not a number here is ignored.
    pub fn auto_retry(&self) -> Option<AutoRetry> {
        let retries = self
            .property(property::AUTO_RETRY_MAXIMUM_COUNT)?
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|retries| *retries > 0)?
            .min(MAXIMUM_AUTO_RETRIES);
        let backoff = self
            .property(property::AUTO_RETRY_MINIMUM_BACKOFF)
            .and_then(|text| text.trim().parse::<u64>().ok())
            .map_or(DEFAULT_AUTO_RETRY_BACKOFF, |seconds| {
                Duration::from_secs(seconds.min(MAXIMUM_AUTO_RETRY_BACKOFF_SECONDS))
            });
        Some(AutoRetry { retries, backoff })
    }

    /// `Octopus.Action.ExecutionTimeout.Minutes`: how long one run may take before it is
    /// stopped and fails; `None` (unset or 0) means no limit. Fractions of a minute are allowed.
    pub fn execution_timeout(&self) -> Option<Duration> {
        let minutes = self
            .property(property::EXECUTION_TIMEOUT_MINUTES)?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|minutes| minutes.is_finite() && *minutes > 0.0)?;
        Some(Duration::from_secs_f64(
            minutes.min(MAXIMUM_EXECUTION_TIMEOUT_MINUTES) * 60.0,
        ))
    }

    /// Whether the action runs on the server or a worker rather than on each target.
    pub fn runs_on_worker(&self) -> bool {
        self.action_type == action_type::MANUAL
            || self
                .property(property::RUN_ON_SERVER)
                .is_some_and(|value| value.eq_ignore_ascii_case("true"))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct DeploymentStep {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub package_requirement: PackageRequirement,
    pub properties: Properties,
    pub condition: StepCondition,
    pub start_trigger: StartTrigger,
    pub actions: Vec<DeploymentAction>,
}

impl DeploymentStep {
    /// The target roles (Octopus 2024+: target tags) the step runs on.
    pub fn target_roles(&self) -> Vec<String> {
        property_list(&self.properties, property::TARGET_ROLES)
    }

    /// The rolling window: at most this many targets at once; `None` when unset.
    pub fn max_parallelism(&self) -> Option<usize> {
        property_text(&self.properties, property::MAX_PARALLELISM)
            .and_then(|text| text.trim().parse::<usize>().ok())
            .filter(|window| *window > 0)
    }

    pub fn condition_expression(&self) -> Option<&str> {
        property_text(&self.properties, property::CONDITION_VARIABLE_EXPRESSION)
    }
}

/// A project's deployment process, or (with `owner` a release) a release's frozen snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct DeploymentProcess {
    pub id: String,
    pub space_id: String,
    pub project_id: String,
    /// Moves on every save; a save naming an older version is refused (optimistic concurrency).
    pub version: i64,
    pub last_snapshot_id: Option<String>,
    pub steps: Vec<DeploymentStep>,
}

impl DeploymentProcess {
    /// The id of a project's live process.
    pub fn id_for_project(project_id: &str) -> String {
        format!("deploymentprocess-{project_id}")
    }

    /// A new empty process for a project.
    pub fn empty_for_project(space_id: &str, project_id: &str) -> DeploymentProcess {
        DeploymentProcess {
            id: DeploymentProcess::id_for_project(project_id),
            space_id: space_id.to_owned(),
            project_id: project_id.to_owned(),
            version: 0,
            last_snapshot_id: None,
            steps: Vec::new(),
        }
    }

    /// Gives every step and action without an id a fresh one from `new_id`, and fills slugs.
    pub fn assign_ids(&mut self, mut new_id: impl FnMut() -> String) {
        for step in &mut self.steps {
            if step.id.trim().is_empty() {
                step.id = new_id();
            }
            if step.slug.trim().is_empty() {
                step.slug = slugify(&step.name);
            }
            for action in &mut step.actions {
                if action.id.trim().is_empty() {
                    action.id = new_id();
                }
                if action.slug.trim().is_empty() {
                    action.slug = slugify(&action.name);
                }
            }
        }
    }

    /// Every action, with the step it belongs to.
    pub fn actions(&self) -> impl Iterator<Item = (&DeploymentStep, &DeploymentAction)> {
        self.steps
            .iter()
            .flat_map(|step| step.actions.iter().map(move |action| (step, action)))
    }

    /// Finds an action by id, name or slug (in any case), as skip lists name them.
    pub fn find_action(&self, key: &str) -> Option<&DeploymentAction> {
        self.actions()
            .map(|(_, action)| action)
            .find(|action| {
                action.id == key
                    || action.name.eq_ignore_ascii_case(key)
                    || action.slug.eq_ignore_ascii_case(key)
            })
            .or_else(|| {
                // A step's name also names its only action (what most users see).
                self.steps
                    .iter()
                    .find(|step| step.name.eq_ignore_ascii_case(key) || step.id == key)
                    .and_then(|step| step.actions.first())
            })
    }
}

const SCRIPT_SYNTAXES: [&str; 4] = ["Bash", "Python", "PowerShell", "Sh"];

impl Resource for DeploymentProcess {
    const KIND: ResourceKind = ResourceKind::DeploymentProcess;

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
    fn owner_id(&self) -> Option<&str> {
        Some(&self.project_id)
    }

    fn references(&self) -> Vec<Reference> {
        let mut references = Vec::new();
        for (step_index, step) in self.steps.iter().enumerate() {
            for (action_index, action) in step.actions.iter().enumerate() {
                let field = format!("Steps[{step_index}].Actions[{action_index}]");
                if let Some(pool) = action.worker_pool_id.as_deref().filter(|id| !id.is_empty()) {
                    references.push(Reference::new(
                        format!("{field}.WorkerPoolId"),
                        ResourceKind::WorkerPool,
                        pool,
                    ));
                }
                for (list, kind, ids) in [
                    (
                        "Environments",
                        ResourceKind::Environment,
                        &action.environments,
                    ),
                    (
                        "ExcludedEnvironments",
                        ResourceKind::Environment,
                        &action.excluded_environments,
                    ),
                    ("Channels", ResourceKind::Channel, &action.channels),
                ] {
                    for (index, id) in ids.iter().enumerate() {
                        references.push(Reference::new(
                            format!("{field}.{list}[{index}]"),
                            kind,
                            id.clone(),
                        ));
                    }
                }
            }
        }
        references
    }

    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut step_names: Vec<String> = Vec::new();
        let mut action_names: Vec<String> = Vec::new();
        for (step_index, step) in self.steps.iter_mut().enumerate() {
            let step_field = format!("Steps[{step_index}]");
            validate_name(&format!("{step_field}.Name"), &mut step.name, &mut errors);
            normalize_slug(&mut step.slug, &step.name);
            let key = step.name.to_lowercase();
            if step_names.contains(&key) {
                errors.push(FieldError::new(
                    format!("{step_field}.Name"),
                    format!("Step names must be unique; '{}' is used twice", step.name),
                ));
            }
            step_names.push(key);
            if step.actions.is_empty() {
                errors.push(FieldError::new(
                    format!("{step_field}.Actions"),
                    format!("Step '{}' needs at least one action", step.name),
                ));
            }
            if step.condition == StepCondition::Variable
                && step
                    .condition_expression()
                    .is_none_or(|text| text.trim().is_empty())
            {
                errors.push(FieldError::new(
                    format!("{step_field}.Properties"),
                    format!(
                        "Step '{}' runs on a variable condition, so it needs {}",
                        step.name,
                        property::CONDITION_VARIABLE_EXPRESSION
                    ),
                ));
            }
            if let Some(text) = property_text(&step.properties, property::MAX_PARALLELISM)
                && !text.trim().is_empty()
                && !text.contains("#{")
                && text
                    .trim()
                    .parse::<usize>()
                    .map_or(true, |window| window == 0)
            {
                errors.push(FieldError::new(
                    format!("{step_field}.Properties"),
                    format!(
                        "{} must be a positive whole number, not '{text}'",
                        property::MAX_PARALLELISM
                    ),
                ));
            }
            let target_roles = step.target_roles();
            for (action_index, action) in step.actions.iter_mut().enumerate() {
                let field = format!("{step_field}.Actions[{action_index}]");
                validate_name(&format!("{field}.Name"), &mut action.name, &mut errors);
                normalize_slug(&mut action.slug, &action.name);
                let key = action.name.to_lowercase();
                if action_names.contains(&key) {
                    errors.push(FieldError::new(
                        format!("{field}.Name"),
                        format!(
                            "Action names must be unique; '{}' is used twice",
                            action.name
                        ),
                    ));
                }
                action_names.push(key);
                if action.action_type.trim().is_empty() {
                    errors.push(FieldError::new(
                        format!("{field}.ActionType"),
                        "ActionType is required",
                    ));
                }
                if action.action_type == action_type::SCRIPT {
                    let source = action.property(property::SCRIPT_SOURCE).unwrap_or("Inline");
                    if source.eq_ignore_ascii_case("Inline")
                        && action
                            .property(property::SCRIPT_BODY)
                            .is_none_or(|body| body.trim().is_empty())
                    {
                        errors.push(FieldError::new(
                            format!("{field}.Properties"),
                            format!(
                                "Script step '{}' needs a script: {} is empty",
                                action.name,
                                property::SCRIPT_BODY
                            ),
                        ));
                    }
                    if let Some(syntax) = action.property(property::SCRIPT_SYNTAX)
                        && !SCRIPT_SYNTAXES
                            .iter()
                            .any(|known| known.eq_ignore_ascii_case(syntax))
                    {
                        errors.push(FieldError::new(
                            format!("{field}.Properties"),
                            format!(
                                "{} must be one of {}, not '{syntax}'",
                                property::SCRIPT_SYNTAX,
                                SCRIPT_SYNTAXES.join(", ")
                            ),
                        ));
                    }
                }
                validate_run_limits(&field, action, &mut errors);
                let needs_targets = match action.action_type.as_str() {
                    action_type::MANUAL => false,
                    action_type::HEALTH_CHECK => true,
                    _ => !action.runs_on_worker(),
                };
                if needs_targets && target_roles.is_empty() && action_index == 0 {
                    errors.push(FieldError::new(
                        format!("{step_field}.Properties"),
                        format!(
                            "Step '{}' runs on deployment targets, so it needs target roles in {} (or set {} to run it on a worker)",
                            step.name,
                            property::TARGET_ROLES,
                            property::RUN_ON_SERVER
                        ),
                    ));
                }
                normalize_string_list(&mut action.environments);
                normalize_string_list(&mut action.excluded_environments);
                normalize_string_list(&mut action.channels);
            }
        }
        errors
    }
}

/// The retry and timeout properties must be numbers in range: a typo would otherwise turn
/// retries or the time limit off without a word.
fn validate_run_limits(field: &str, action: &DeploymentAction, errors: &mut Vec<FieldError>) {
    let present = |name: &str| {
        action
            .property(name)
            .map(str::trim)
            .filter(|text| !text.is_empty())
    };
    let mut refuse = |name: &str, text: &str, what: String| {
        errors.push(FieldError::new(
            format!("{field}.Properties"),
            format!("{name} must be {what}, not '{text}' (in '{}')", action.name),
        ));
    };
    if let Some(text) = present(property::AUTO_RETRY_MAXIMUM_COUNT)
        && text
            .parse::<u32>()
            .map_or(true, |count| count > MAXIMUM_AUTO_RETRIES)
    {
        refuse(
            property::AUTO_RETRY_MAXIMUM_COUNT,
            text,
            format!("a whole number from 0 to {MAXIMUM_AUTO_RETRIES}"),
        );
    }
    if let Some(text) = present(property::AUTO_RETRY_MINIMUM_BACKOFF)
        && text
            .parse::<u64>()
            .map_or(true, |seconds| seconds > MAXIMUM_AUTO_RETRY_BACKOFF_SECONDS)
    {
        refuse(
            property::AUTO_RETRY_MINIMUM_BACKOFF,
            text,
            format!("a whole number of seconds from 0 to {MAXIMUM_AUTO_RETRY_BACKOFF_SECONDS}"),
        );
    }
    if let Some(text) = present(property::EXECUTION_TIMEOUT_MINUTES)
        && text.parse::<f64>().map_or(true, |minutes| {
            !minutes.is_finite() || !(0.0..=MAXIMUM_EXECUTION_TIMEOUT_MINUTES).contains(&minutes)
        })
    {
        refuse(
            property::EXECUTION_TIMEOUT_MINUTES,
            text,
            format!("a number of minutes from 0 (no limit) to {MAXIMUM_EXECUTION_TIMEOUT_MINUTES}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script_step(name: &str, roles: &str) -> DeploymentStep {
        let mut properties = Properties::new();
        properties.insert(property::TARGET_ROLES.to_owned(), roles.into());
        let mut action_properties = Properties::new();
        action_properties.insert(property::SCRIPT_BODY.to_owned(), "echo hi".into());
        action_properties.insert(property::SCRIPT_SYNTAX.to_owned(), "Bash".into());
        DeploymentStep {
            name: name.to_owned(),
            properties,
            actions: vec![DeploymentAction {
                name: name.to_owned(),
                action_type: action_type::SCRIPT.to_owned(),
                properties: action_properties,
                ..DeploymentAction::default()
            }],
            ..DeploymentStep::default()
        }
    }

    #[test]
    fn octopus_process_json_loads_and_round_trips() {
        let json = serde_json::json!({
            "Id": "deploymentprocess-Projects-1",
            "ProjectId": "Projects-1",
            "Version": 3,
            "Steps": [{
                "Id": "5f8c", "Name": "Hello", "Condition": "Variable", "StartTrigger": "StartWithPrevious",
                "PackageRequirement": "LetOctopusDecide",
                "Properties": {"Octopus.Action.TargetRoles": "web, api", "Octopus.Action.MaxParallelism": "2",
                               "Octopus.Step.ConditionVariableExpression": "#{Run}"},
                "Actions": [{"Id": "a1", "Name": "Hello", "ActionType": "Octopus.Script",
                             "Properties": {"Octopus.Action.Script.ScriptBody": "echo hi",
                                            "Octopus.Action.Script.Syntax": "Bash",
                                            "Some.Unknown.Property": "kept"},
                             "Environments": ["Environments-1"], "Packages": [], "SomethingNew": 1}]
            }]
        });
        let mut process: DeploymentProcess = serde_json::from_value(json).expect("loads");
        assert!(process.normalize_and_validate().is_empty());
        let step = &process.steps[0];
        assert_eq!(step.target_roles(), ["web", "api"]);
        assert_eq!(step.max_parallelism(), Some(2));
        assert_eq!(step.condition, StepCondition::Variable);
        assert_eq!(step.start_trigger, StartTrigger::StartWithPrevious);
        let back = serde_json::to_value(&process).expect("serializes");
        assert_eq!(
            back["Steps"][0]["Actions"][0]["Properties"]["Some.Unknown.Property"],
            "kept"
        );
    }

    #[test]
    fn validation_names_the_field_and_the_step() {
        let mut process = DeploymentProcess {
            steps: vec![script_step("A", "web"), script_step("a", "")],
            ..DeploymentProcess::default()
        };
        process.steps[1].actions[0].properties.insert(
            property::SCRIPT_BODY.to_owned(),
            serde_json::Value::String(String::new()),
        );
        let errors = process.normalize_and_validate();
        let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
        assert!(fields.contains(&"Steps[1].Name"), "{errors:?}");
        assert!(
            fields.contains(&"Steps[1].Actions[0].Properties"),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|error| error.message.contains("needs target roles")),
            "{errors:?}"
        );
    }

    #[test]
    fn run_on_server_and_manual_steps_need_no_roles() {
        let mut on_server = script_step("Server", "");
        on_server.actions[0]
            .properties
            .insert(property::RUN_ON_SERVER.to_owned(), "true".into());
        let manual = DeploymentStep {
            name: "Approve".to_owned(),
            actions: vec![DeploymentAction {
                name: "Approve".to_owned(),
                action_type: action_type::MANUAL.to_owned(),
                ..DeploymentAction::default()
            }],
            ..DeploymentStep::default()
        };
        let mut process = DeploymentProcess {
            steps: vec![on_server, manual],
            ..DeploymentProcess::default()
        };
        assert_eq!(process.normalize_and_validate(), Vec::new());
    }

    #[test]
    fn ids_and_slugs_are_filled_and_actions_found_by_any_name() {
        let mut process = DeploymentProcess {
            steps: vec![script_step("Say Hello", "web")],
            ..DeploymentProcess::default()
        };
        let mut counter = 0;
        process.assign_ids(|| {
            counter += 1;
            format!("id-{counter}")
        });
        assert_eq!(process.steps[0].id, "id-1");
        assert_eq!(process.steps[0].actions[0].id, "id-2");
        assert_eq!(process.steps[0].slug, "say-hello");
        assert!(process.find_action("say hello").is_some());
        assert!(process.find_action("id-2").is_some());
        assert!(process.find_action("nope").is_none());
    }

    fn with_properties(pairs: &[(&str, &str)]) -> DeploymentAction {
        let mut action = script_step("Flaky", "web").actions.remove(0);
        for (name, value) in pairs {
            action
                .properties
                .insert((*name).to_owned(), (*value).into());
        }
        action
    }

    #[test]
    fn retries_and_time_limits_are_read_as_octopus_writes_them() {
        let none = with_properties(&[]);
        assert_eq!(none.auto_retry(), None);
        assert_eq!(none.execution_timeout(), None);

        let retrying = with_properties(&[
            (property::AUTO_RETRY_MAXIMUM_COUNT, "3"),
            (property::AUTO_RETRY_MINIMUM_BACKOFF, "2"),
            (property::EXECUTION_TIMEOUT_MINUTES, "10"),
        ]);
        assert_eq!(
            retrying.auto_retry(),
            Some(AutoRetry {
                retries: 3,
                backoff: Duration::from_secs(2)
            })
        );
        assert_eq!(retrying.execution_timeout(), Some(Duration::from_secs(600)));

        let defaults = with_properties(&[
            (property::AUTO_RETRY_MAXIMUM_COUNT, " 1 "),
            (property::EXECUTION_TIMEOUT_MINUTES, "0.05"),
        ]);
        assert_eq!(
            defaults.auto_retry().map(|retry| retry.backoff),
            Some(DEFAULT_AUTO_RETRY_BACKOFF)
        );
        assert_eq!(defaults.execution_timeout(), Some(Duration::from_secs(3)));

        let off = with_properties(&[
            (property::AUTO_RETRY_MAXIMUM_COUNT, "0"),
            (property::EXECUTION_TIMEOUT_MINUTES, "0"),
        ]);
        assert_eq!(off.auto_retry(), None);
        assert_eq!(off.execution_timeout(), None);
    }

    #[test]
    fn retry_and_timeout_values_out_of_range_are_refused_when_saving() {
        for (name, value) in [
            (property::AUTO_RETRY_MAXIMUM_COUNT, "three"),
            (property::AUTO_RETRY_MAXIMUM_COUNT, "101"),
            (property::AUTO_RETRY_MAXIMUM_COUNT, "-1"),
            (property::AUTO_RETRY_MAXIMUM_COUNT, "#{Retries}"),
            (property::AUTO_RETRY_MINIMUM_BACKOFF, "1.5"),
            (property::AUTO_RETRY_MINIMUM_BACKOFF, "86401"),
            (property::EXECUTION_TIMEOUT_MINUTES, "NaN"),
            (property::EXECUTION_TIMEOUT_MINUTES, "inf"),
            (property::EXECUTION_TIMEOUT_MINUTES, "-5"),
            (property::EXECUTION_TIMEOUT_MINUTES, "10081"),
        ] {
            let mut step = script_step("Flaky", "web");
            step.actions[0]
                .properties
                .insert(name.to_owned(), value.into());
            let mut process = DeploymentProcess {
                steps: vec![step],
                ..DeploymentProcess::default()
            };
            let errors = process.normalize_and_validate();
            assert!(
                errors
                    .iter()
                    .any(|error| error.field == "Steps[0].Actions[0].Properties"
                        && error.message.contains(name)
                        && error.message.contains(value)),
                "{name} = {value}: {errors:?}"
            );
        }
        let mut step = script_step("Flaky", "web");
        for (name, value) in [
            (property::AUTO_RETRY_MAXIMUM_COUNT, "100"),
            (property::AUTO_RETRY_MINIMUM_BACKOFF, "0"),
            (property::EXECUTION_TIMEOUT_MINUTES, "0.5"),
        ] {
            step.actions[0]
                .properties
                .insert(name.to_owned(), value.into());
        }
        let mut process = DeploymentProcess {
            steps: vec![step],
            ..DeploymentProcess::default()
        };
        assert_eq!(process.normalize_and_validate(), Vec::new());
    }
}
