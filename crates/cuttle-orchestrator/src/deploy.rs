//! The deployment engine: runs one deployment (a release's process snapshot against one
//! environment) as a durable task.
//!
//! Steps run in order; consecutive `StartWithPrevious` steps run together. A step that runs on
//! targets runs on every matching target at once up to its rolling window
//! (`Octopus.Action.MaxParallelism`, 10 when unset, as in Octopus); a step that runs on the
//! server runs once on the built-in worker. Each (step, target) run is one script ticket, so a
//! resumed task re-attaches to the ticket instead of running the script again, and a step's
//! end (status and output variables) is recorded in the task's progress before the next step
//! starts, so a resumed task skips what already finished.
//!
//! Packages: before the first step group that needs them (a step with an
//! `Octopus.TentaclePackage` action, or one marked `AfterPackageAcquisition`; steps marked
//! `BeforePackageAcquisition` run first), the engine pushes the release's pinned package
//! versions from the built-in feed to every target that will deploy them, in parallel up to
//! `Octopus.Acquire.MaxParallelism` (module `acquire`), in an "Acquire packages" activity.
//! A package action then runs the conventions runner on the target with a `PackageDeployment`
//! naming the cached file.
//!
//! An action that fails runs again by itself first when it asks to
//! (`Octopus.Action.AutoRetry.MaximumCount` more times, `…MinimumBackoff` seconds apart, each
//! run a new ticket); `Octopus.Action.ExecutionTimeout.Minutes` limits each run on its target.
//! Failures then follow guided failure when the deployment asks for it: the task raises an
//! interruption and waits for Retry, Ignore, Exclude machine or Fail. Manual intervention
//! steps raise an interruption and wait for Proceed or Abort. Interruptions are documents; the
//! engine polls its own and records which one it waits for, so a restart waits for the same.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use cuttle_domain::process::{action_type, property};
use cuttle_domain::{
    Deployment, DeploymentAction, DeploymentProcess, DeploymentStep, DeploymentTarget, Environment,
    FormElement, Interruption, InterruptionType, Project, Release, ResourceKind, Space,
    StartTrigger, StepCondition,
};
use cuttle_exec::{Isolation, ScriptRequest, ScriptSyntax, ScriptVariable};
use cuttle_secrets::MasterKey;
use cuttle_store::{DocumentQuery, Store, StoreError};
use cuttle_template::{EvaluationOptions, VariableDictionary};
use cuttle_vars::output::{OutputMachine, OutputVariableCollector};
use cuttle_vars::sensitive::map_sensitive_values;
use cuttle_vars::system::{
    ActionInputs, DeploymentInputs, EnvironmentInputs, IdAndName, MachineInputs, ReleaseInputs,
    StepInputs, SystemVariableInputs, TaskInputs, build_system_variables,
};
use cuttle_vars::{
    ActionScope, DeploymentScope, ScopeContext, TargetScope, VariableSet, VariableSources,
};
use futures::StreamExt;
use serde_json::json;

use crate::acquire::{PackageBlobs, acquire_on_target};
use crate::builtin::BUILT_IN_WORKER_NAME;
use crate::context::{LogCategory, TaskContext};
use crate::runner::{TaskHandler, TaskOutcome};
use crate::scripts::run_script;
use crate::transport::{PackageFile, TargetAddress, Transport, Transports};

/// The task name of a deployment, as Octopus names it.
pub const DEPLOY_TASK: &str = "Deploy";

/// Octopus's default rolling window when a step sets none.
const DEFAULT_MAX_PARALLELISM: usize = 10;

/// Octopus's default number of targets packages are pushed to at once.
const DEFAULT_ACQUIRE_MAX_PARALLELISM: usize = 10;

/// The activity of package acquisition.
const ACQUIRE_ACTIVITY: &str = "acquire-packages";

/// How often a task waiting for a person looks at its interruption.
const INTERRUPTION_POLL: Duration = Duration::from_millis(250);

/// Runs `Deploy` tasks.
pub struct DeploymentHandler {
    transports: Transports,
    master_key: Arc<MasterKey>,
    /// The built-in feed's files; `None` means package steps fail (no feed on this node).
    package_blobs: Option<Arc<dyn PackageBlobs>>,
}

impl DeploymentHandler {
    pub fn new(
        transports: Transports,
        master_key: Arc<MasterKey>,
        package_blobs: Option<Arc<dyn PackageBlobs>>,
    ) -> Arc<DeploymentHandler> {
        Arc::new(DeploymentHandler {
            transports,
            master_key,
            package_blobs,
        })
    }
}

/// Everything a deployment reads once, at its start.
struct Plan {
    space: Space,
    project: Project,
    release: Release,
    deployment: Deployment,
    environment: Environment,
    process: DeploymentProcess,
    targets: Vec<DeploymentTarget>,
    /// Registered workers that may run worker steps, as targets (no roles), by pool.
    workers: Vec<(Vec<String>, DeploymentTarget)>,
    default_worker_pool_id: Option<String>,
    sources: VariableSources,
    scope: DeploymentScope,
    /// Earlier successful installations a target keeps per package step (the lifecycle
    /// phase's `TentacleRetentionPolicy` in items); `None` keeps all.
    retention_keep_count: Option<u32>,
}

impl Plan {
    fn is_worker(&self, target: &DeploymentTarget) -> bool {
        self.workers
            .iter()
            .any(|(_, worker)| worker.id == target.id)
    }

    /// A registered worker for a worker step: one of the action's pool, else of the default
    /// pool, chosen by the step so a deployment's steps spread over the pool. `None` means the
    /// built-in worker (no pool has a usable worker).
    fn choose_worker(
        &self,
        step: &DeploymentStep,
        action: &DeploymentAction,
    ) -> Option<DeploymentTarget> {
        let pool_id = action
            .worker_pool_id
            .clone()
            .filter(|id| !id.is_empty())
            .or_else(|| self.default_worker_pool_id.clone())?;
        let candidates: Vec<&DeploymentTarget> = self
            .workers
            .iter()
            .filter(|(pools, _)| pools.contains(&pool_id))
            .map(|(_, worker)| worker)
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let spread = step.id.bytes().fold(0_usize, |sum, byte| {
            sum.wrapping_mul(31).wrapping_add(usize::from(byte))
        });
        candidates
            .get(spread % candidates.len())
            .map(|worker| (*worker).clone())
    }
}

/// How the deployment has gone so far, shared by steps running side by side.
#[derive(Default)]
struct RunState {
    failed: bool,
    first_error: Option<String>,
    excluded_machine_ids: BTreeSet<String>,
    outputs: OutputVariableCollector,
    output_log: Vec<serde_json::Value>,
}

/// How one step, or one step on one target, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunStatus {
    Success,
    Failed,
    Skipped,
    Canceled,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Success => "Success",
            RunStatus::Failed => "Failed",
            RunStatus::Skipped => "Skipped",
            RunStatus::Canceled => "Canceled",
        }
    }

    fn parse(text: &str) -> Option<RunStatus> {
        [
            RunStatus::Success,
            RunStatus::Failed,
            RunStatus::Skipped,
            RunStatus::Canceled,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// One action on one target (or the worker): everything a run of it needs.
#[derive(Clone, Copy)]
struct ActionSite<'a> {
    context: &'a TaskContext,
    plan: &'a Plan,
    run: &'a Mutex<RunState>,
    step: &'a DeploymentStep,
    action: &'a DeploymentAction,
    target: Option<&'a DeploymentTarget>,
    activity: &'a str,
}

/// What a person answered.
enum Answer {
    Given { answer: String, notes: String },
    Canceled,
}

#[derive(Debug, thiserror::Error)]
enum PlanError {
    #[error("{0}")]
    Missing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a sensitive variable could not be decrypted: {0}")]
    Secret(String),
}

fn missing(what: &str, id: &str) -> PlanError {
    PlanError::Missing(format!("{what} {id} no longer exists"))
}

impl DeploymentHandler {
    async fn load_plan(&self, context: &TaskContext) -> Result<Plan, PlanError> {
        let task = context.task();
        let store = context.store();
        let deployment_id = task.arguments["DeploymentId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let deployment: Deployment = store
            .get_resource(&deployment_id)
            .await?
            .ok_or_else(|| missing("deployment", &deployment_id))?;
        let release: Release = store
            .get_resource(&deployment.release_id)
            .await?
            .ok_or_else(|| missing("release", &deployment.release_id))?;
        let project: Project = store
            .get_resource(&deployment.project_id)
            .await?
            .ok_or_else(|| missing("project", &deployment.project_id))?;
        let space: Space = store
            .get_resource(&deployment.space_id)
            .await?
            .ok_or_else(|| missing("space", &deployment.space_id))?;
        let environment: Environment = store
            .get_resource(&deployment.environment_id)
            .await?
            .ok_or_else(|| missing("environment", &deployment.environment_id))?;
        let process: DeploymentProcess = store
            .get_resource(&release.project_deployment_process_snapshot_id)
            .await?
            .ok_or_else(|| {
                missing(
                    "deployment process snapshot",
                    &release.project_deployment_process_snapshot_id,
                )
            })?;
        let targets = store
            .list_resources::<DeploymentTarget>(&DocumentQuery {
                space_id: Some(deployment.space_id.clone()),
                ..DocumentQuery::default()
            })
            .await?
            .items
            .into_iter()
            .filter(|target| target.environment_ids.contains(&environment.id))
            .collect();

        let workers = store
            .list_resources::<cuttle_domain::Worker>(&DocumentQuery {
                space_id: Some(deployment.space_id.clone()),
                ..DocumentQuery::default()
            })
            .await?
            .items
            .into_iter()
            .filter(|worker| {
                !worker.is_disabled
                    && !matches!(
                        worker.health_status,
                        cuttle_domain::HealthStatus::Unavailable
                            | cuttle_domain::HealthStatus::Unhealthy
                    )
            })
            .map(|worker| {
                let target = DeploymentTarget {
                    id: worker.id.clone(),
                    space_id: worker.space_id.clone(),
                    name: worker.name.clone(),
                    endpoint: worker.endpoint.clone(),
                    ..DeploymentTarget::default()
                };
                (worker.worker_pool_ids, target)
            })
            .collect();
        let default_worker_pool_id = store
            .list_resources::<cuttle_domain::WorkerPool>(&DocumentQuery {
                space_id: Some(deployment.space_id.clone()),
                ..DocumentQuery::default()
            })
            .await?
            .items
            .into_iter()
            .find(|pool| pool.is_default)
            .map(|pool| pool.id);
        let mut sources = VariableSources::new();
        let project_set = self
            .load_variable_set(store, &release.project_variable_set_snapshot_id)
            .await?;
        sources.add_project_variables(&project_set);
        for id in &release.library_variable_set_snapshot_ids {
            let set = self.load_variable_set(store, id).await?;
            sources.add_library_variable_set(&set);
        }
        let scope = DeploymentScope {
            project_id: Some(project.id.clone()),
            environment_id: Some(environment.id.clone()),
            channel_id: Some(release.channel_id.clone()),
            process_owner_id: Some(project.id.clone()),
            ..DeploymentScope::default()
        };
        // Always applied, answers or not: a required prompt without a value must stop the
        // deployment here even if the API's own check was bypassed (a resumed old task).
        let answers = cuttle_vars::prompts::PromptAnswers::from_form_values(
            deployment
                .form_values
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str().unwrap_or_default())),
        );
        if let Err(error) = sources.apply_prompt_answers(&scope, &answers) {
            return Err(PlanError::Missing(format!(
                "the prompted variable values are not usable: {error}"
            )));
        }
        let retention_keep_count =
            tentacle_retention_keep_count(store, &project, &release, &environment).await;
        Ok(Plan {
            space,
            project,
            release,
            deployment,
            environment,
            process,
            targets,
            workers,
            default_worker_pool_id,
            sources,
            scope,
            retention_keep_count,
        })
    }

    /// A snapshot variable set with its sensitive values opened.
    async fn load_variable_set(
        &self,
        store: &dyn Store,
        id: &str,
    ) -> Result<VariableSet, PlanError> {
        let document = store
            .get_document(ResourceKind::VariableSet, id)
            .await?
            .ok_or_else(|| missing("variable set snapshot", id))?;
        let set: VariableSet = serde_json::from_value(document.body).map_err(|error| {
            PlanError::Missing(format!("variable set {id} is unreadable: {error}"))
        })?;
        map_sensitive_values(&set, |_, sealed| {
            if MasterKey::is_sealed(sealed) {
                self.master_key
                    .open(sealed)
                    .map(|plain| plain.to_string())
                    .map_err(|error| PlanError::Secret(error.to_string()))
            } else {
                Ok(sealed.to_owned())
            }
        })
    }
}

/// How many earlier installations targets keep: the lifecycle phase holding the environment
/// (the channel's lifecycle, else the project's) and its `TentacleRetentionPolicy`, else the
/// lifecycle's; counted in items (a policy in days, "keep forever" or 0 keeps all). A lifecycle
/// that cannot be read keeps all: retention deletes, so it must not guess.
async fn tentacle_retention_keep_count(
    store: &dyn Store,
    project: &Project,
    release: &Release,
    environment: &Environment,
) -> Option<u32> {
    let channel_lifecycle = match store
        .get_resource::<cuttle_domain::Channel>(&release.channel_id)
        .await
    {
        Ok(Some(channel)) => channel.lifecycle_id,
        _ => None,
    };
    let lifecycle_id = channel_lifecycle.unwrap_or_else(|| project.lifecycle_id.clone());
    let lifecycle = store
        .get_resource::<cuttle_domain::Lifecycle>(&lifecycle_id)
        .await
        .ok()
        .flatten()?;
    let policy = lifecycle
        .phases
        .iter()
        .find(|phase| phase.environment_ids().any(|id| *id == environment.id))
        .and_then(|phase| phase.tentacle_retention_policy.clone())
        .unwrap_or_else(|| lifecycle.tentacle_retention_policy.clone());
    if policy.should_keep_forever
        || policy.quantity_to_keep <= 0
        || policy.unit != cuttle_domain::RetentionUnit::Items
    {
        return None;
    }
    u32::try_from(policy.quantity_to_keep).ok()
}

/// Whether the step deploys a package (so its packages must be acquired first).
fn step_deploys_packages(step: &DeploymentStep) -> bool {
    step.actions
        .iter()
        .any(|action| action.action_type == action_type::PACKAGE && !action.is_disabled)
}

/// Whether acquisition must happen before this group of steps starts.
fn group_needs_acquisition(steps: &[DeploymentStep], group: &[usize]) -> bool {
    group.iter().any(|index| {
        let step = &steps[*index];
        match step.package_requirement {
            cuttle_domain::PackageRequirement::AfterPackageAcquisition => true,
            // Such a step runs before acquisition even if it has packages (Octopus refuses
            // the combination when saving a process; a package action there fails clearly
            // when its package is not cached).
            cuttle_domain::PackageRequirement::BeforePackageAcquisition => false,
            cuttle_domain::PackageRequirement::LetOctopusDecide => step_deploys_packages(step),
        }
    })
}

/// A property that is a list: Octopus separates package globs by new lines (and accepts
/// commas and semicolons in older processes).
fn property_lines(value: &str) -> Vec<String> {
    value
        .split(['\n', ';'])
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The steps, grouped: each group starts after the previous one ends; the steps of a group
/// run side by side.
fn step_groups(steps: &[DeploymentStep]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        match groups.last_mut() {
            Some(group) if step.start_trigger == StartTrigger::StartWithPrevious => {
                group.push(index);
            }
            _ => groups.push(vec![index]),
        }
    }
    groups
}

fn step_activity(index: usize) -> String {
    format!("step-{}", index + 1)
}

fn syntax_of(action: &DeploymentAction) -> ScriptSyntax {
    match action
        .property(property::SCRIPT_SYNTAX)
        .unwrap_or("Bash")
        .to_ascii_lowercase()
        .as_str()
    {
        "python" => ScriptSyntax::Python,
        "powershell" => ScriptSyntax::PowerShell,
        "sh" => ScriptSyntax::Sh,
        _ => ScriptSyntax::Bash,
    }
}

/// Expands every value against the others, as Octopus does before a script sees them.
fn evaluate_all(raw: &[(String, String, bool)]) -> (VariableDictionary, Vec<ScriptVariable>) {
    let mut dictionary = VariableDictionary::new();
    for (name, value, _) in raw {
        dictionary.set(name.clone(), value.clone());
    }
    let options = EvaluationOptions::default();
    let mut evaluated = Vec::with_capacity(raw.len());
    let mut expanded = VariableDictionary::new();
    for (name, value, is_sensitive) in raw {
        let value = if value.contains("#{") {
            cuttle_template::evaluate(value, &dictionary, &options)
                .output
                .unwrap_or_default()
        } else {
            value.clone()
        };
        expanded.set(name.clone(), value.clone());
        evaluated.push(ScriptVariable {
            name: name.clone(),
            value,
            is_sensitive: *is_sensitive,
        });
    }
    (expanded, evaluated)
}

#[async_trait]
impl TaskHandler for DeploymentHandler {
    async fn run(&self, context: &TaskContext) -> TaskOutcome {
        let plan = match self.load_plan(context).await {
            Ok(plan) => plan,
            Err(error) => return TaskOutcome::Failed(error.to_string()),
        };
        let run = Mutex::new(RunState::default());
        let saved = context.task().progress;
        restore_run_state(&saved, &run, &self.master_key);

        if !context.resumed() || !saved["Activities"].is_array() {
            let activities: Vec<serde_json::Value> = plan
                .process
                .steps
                .iter()
                .enumerate()
                .map(|(index, step)| {
                    json!({"Id": step_activity(index), "Name": format!("Step {}: {}", index + 1, step.name), "Status": "Pending"})
                })
                .collect();
            context.log(
                LogCategory::Info,
                "task",
                format!(
                    "Deploying {} release {} to {}",
                    plan.project.name, plan.release.version, plan.environment.name
                ),
            );
            if let Err(error) = context
                .update_progress(|progress| progress["Activities"] = json!(activities))
                .await
            {
                return TaskOutcome::Failed(format!("could not save progress: {error}"));
            }
        }

        let mut acquired = saved["PackagesAcquired"].as_bool() == Some(true);
        for group in step_groups(&plan.process.steps) {
            if !acquired && group_needs_acquisition(&plan.process.steps, &group) {
                acquired = true;
                let first_activity = group
                    .first()
                    .map_or_else(String::new, |index| step_activity(*index));
                self.acquire_packages(context, &plan, &run, &first_activity)
                    .await;
                if context.is_cancel_requested() {
                    return TaskOutcome::Canceled;
                }
            }
            let runs: Vec<futures::future::BoxFuture<'_, ()>> = group
                .iter()
                .map(|index| {
                    Box::pin(self.run_step(context, &plan, &run, *index))
                        as futures::future::BoxFuture<'_, ()>
                })
                .collect();
            futures::future::join_all(runs).await;
            if context.is_cancel_requested() {
                return TaskOutcome::Canceled;
            }
        }
        let state = run.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.failed {
            TaskOutcome::Failed(
                state
                    .first_error
                    .clone()
                    .unwrap_or_else(|| "a step failed".to_owned()),
            )
        } else {
            TaskOutcome::Success
        }
    }
}

/// Puts back what earlier runs of this task recorded: failures, exclusions and outputs.
fn restore_run_state(progress: &serde_json::Value, run: &Mutex<RunState>, master_key: &MasterKey) {
    let mut state = run.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    state.failed = progress["Failed"].as_bool().unwrap_or(false);
    state.first_error = progress["FirstError"].as_str().map(str::to_owned);
    if let Some(excluded) = progress["ExcludedMachineIds"].as_array() {
        state.excluded_machine_ids = excluded
            .iter()
            .filter_map(|id| id.as_str().map(str::to_owned))
            .collect();
    }
    if let Some(outputs) = progress["Outputs"].as_array() {
        for output in outputs {
            let mut output = output.clone();
            // A sensitive output was saved sealed; a value that no longer opens (the master
            // key changed) is dropped rather than handed to later steps as ciphertext.
            if let Some(sealed) = output["SealedValue"].as_str() {
                match master_key.open(sealed) {
                    Ok(plain) => output["Value"] = json!(plain.as_str()),
                    Err(error) => {
                        tracing::warn!("a sensitive output variable could not be opened: {error}");
                        continue;
                    }
                }
            }
            record_output(&mut state, &output, master_key);
        }
    }
}

/// Records an output variable for later steps, and in the log kept in the task's progress;
/// sensitive values are sealed there, as the progress is stored in the clear.
fn record_output(state: &mut RunState, output: &serde_json::Value, master_key: &MasterKey) {
    let text = |key: &str| output[key].as_str().unwrap_or_default().to_owned();
    let machine = (!text("MachineId").is_empty())
        .then(|| OutputMachine::new(text("MachineId"), text("MachineName")));
    state.outputs.record_output(
        &text("ActionName"),
        machine.as_ref(),
        &text("Name"),
        &text("Value"),
        output["IsSensitive"].as_bool().unwrap_or(false),
    );
    let mut logged = output.clone();
    if output["IsSensitive"].as_bool().unwrap_or(false) {
        logged["SealedValue"] = json!(master_key.seal(&text("Value")));
        if let Some(fields) = logged.as_object_mut() {
            fields.remove("Value");
        }
    }
    state.output_log.push(logged);
}

impl DeploymentHandler {
    /// Runs one step to its end (or skips it) and records how it ended.
    async fn run_step(
        &self,
        context: &TaskContext,
        plan: &Plan,
        run: &Mutex<RunState>,
        index: usize,
    ) {
        let step = &plan.process.steps[index];
        let activity = step_activity(index);
        let recorded = context.task().progress["Steps"][&step.id]["Status"]
            .as_str()
            .and_then(RunStatus::parse);
        if recorded.is_some() {
            return;
        }
        set_activity(context, &activity, "Running", true).await;
        let status = match self.should_run(context, plan, run, step) {
            Err(reason) => {
                context.log(LogCategory::Info, &activity, reason);
                RunStatus::Skipped
            }
            Ok(()) => self.run_step_on_targets(context, plan, run, index).await,
        };
        let (failed, first_error, excluded, outputs) = {
            let mut state = run.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if status == RunStatus::Failed {
                state.failed = true;
                if state.first_error.is_none() {
                    state.first_error = Some(format!("step '{}' failed", step.name));
                }
            }
            (
                state.failed,
                state.first_error.clone(),
                state.excluded_machine_ids.clone(),
                state.output_log.clone(),
            )
        };
        let step_id = step.id.clone();
        let saved = context
            .update_progress(|progress| {
                if !progress["Steps"].is_object() {
                    progress["Steps"] = json!({});
                }
                progress["Steps"][&step_id] = json!({"Status": status.as_str()});
                progress["Failed"] = json!(failed);
                progress["FirstError"] = json!(first_error);
                progress["ExcludedMachineIds"] = json!(excluded);
                progress["Outputs"] = json!(outputs);
                set_activity_in(progress, &activity, status.as_str(), false);
            })
            .await;
        if let Err(error) = saved {
            tracing::warn!("failed to record a step's end: {error}");
        }
    }

    /// Why a step does not run, or `Ok` when it does.
    fn should_run(
        &self,
        context: &TaskContext,
        plan: &Plan,
        run: &Mutex<RunState>,
        step: &DeploymentStep,
    ) -> Result<(), String> {
        let Some(action) = step.actions.first() else {
            return Err("The step has no actions".to_owned());
        };
        if action.is_disabled {
            return Err(format!("Skipping '{}': it is disabled", step.name));
        }
        let skipped = plan.deployment.skip_actions.iter().any(|skip| {
            step.actions.iter().any(|action| &action.id == skip)
                || skip.eq_ignore_ascii_case(&action.name)
        });
        if skipped && !action.is_required {
            return Err(format!("Skipping '{}': the deployment skips it", step.name));
        }
        let environment = &plan.environment.id;
        if !action.environments.is_empty() && !action.environments.contains(environment) {
            return Err(format!(
                "Skipping '{}': it does not run in {}",
                step.name, plan.environment.name
            ));
        }
        if action.excluded_environments.contains(environment) {
            return Err(format!(
                "Skipping '{}': it is excluded from {}",
                step.name, plan.environment.name
            ));
        }
        if !action.channels.is_empty() && !action.channels.contains(&plan.release.channel_id) {
            return Err(format!(
                "Skipping '{}': it does not run for this release's channel",
                step.name
            ));
        }
        let failed = run
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .failed;
        match step.condition {
            StepCondition::Success if failed => {
                Err(format!("Skipping '{}': an earlier step failed", step.name))
            }
            StepCondition::Failure if !failed => Err(format!(
                "Skipping '{}': it runs only when an earlier step fails",
                step.name
            )),
            StepCondition::Variable => {
                let expression = step.condition_expression().unwrap_or_default();
                let (dictionary, _) = self.variables(context, plan, run, step, action, None);
                let value = cuttle_template::evaluate(
                    expression,
                    &dictionary,
                    &EvaluationOptions::default(),
                )
                .output
                .unwrap_or_default();
                if cuttle_template::is_truthy(&value) {
                    Ok(())
                } else {
                    Err(format!(
                        "Skipping '{}': its condition {expression} is false",
                        step.name
                    ))
                }
            }
            _ => Ok(()),
        }
    }

    /// The variables of one action, on one target (or the worker), evaluated.
    fn variables(
        &self,
        context: &TaskContext,
        plan: &Plan,
        run: &Mutex<RunState>,
        step: &DeploymentStep,
        action: &DeploymentAction,
        target: Option<&DeploymentTarget>,
    ) -> (VariableDictionary, Vec<ScriptVariable>) {
        let task = context.task();
        let step_number = plan
            .process
            .steps
            .iter()
            .position(|candidate| candidate.id == step.id)
            .map_or_else(String::new, |index| (index + 1).to_string());
        let (failed, first_error, outputs) = {
            let state = run.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            (
                state.failed,
                state.first_error.clone(),
                state.outputs.scoped_values(),
            )
        };
        let inputs = SystemVariableInputs {
            space: Some(IdAndName::new(&plan.space.id, &plan.space.name)),
            project: Some(IdAndName::new(&plan.project.id, &plan.project.name)),
            environment: Some(EnvironmentInputs {
                id: plan.environment.id.clone(),
                name: plan.environment.name.clone(),
                sort_order: Some(plan.environment.sort_order),
                ..EnvironmentInputs::default()
            }),
            release: Some(ReleaseInputs {
                id: plan.release.id.clone(),
                number: plan.release.version.clone(),
                notes: plan.release.release_notes.clone(),
                ..ReleaseInputs::default()
            }),
            deployment: Some(DeploymentInputs {
                id: plan.deployment.id.clone(),
                name: plan.deployment.name.clone(),
                comments: plan.deployment.comments.clone(),
                created: Some(plan.deployment.created.clone()),
                specific_machine_ids: plan.deployment.specific_machine_ids.clone(),
                excluded_machine_ids: plan.deployment.excluded_machine_ids.clone(),
                error: failed.then(|| first_error.clone().unwrap_or_default()),
                ..DeploymentInputs::default()
            }),
            task: Some(TaskInputs {
                id: task.id.clone(),
                name: task.description.clone(),
                ..TaskInputs::default()
            }),
            machine: target.map(|target| MachineInputs {
                id: target.id.clone(),
                name: target.name.clone(),
                roles: target.roles.clone(),
                hostname: None,
            }),
            step: Some(StepInputs {
                id: step.id.clone(),
                name: step.name.clone(),
                number: step_number.clone(),
                status: None,
            }),
            action: Some(ActionInputs {
                id: action.id.clone(),
                name: action.name.clone(),
                number: step_number,
                target_roles: step.target_roles(),
                max_parallelism: step
                    .max_parallelism()
                    .and_then(|window| u32::try_from(window).ok()),
                ..ActionInputs::default()
            }),
            ..SystemVariableInputs::default()
        };
        let mut sources = plan.sources.clone();
        sources.add_system_variables(build_system_variables(&inputs));
        sources.replace_output_variables(outputs);
        let scope = ScopeContext::for_action(
            plan.scope.clone(),
            ActionScope {
                action_id: action.id.clone(),
                step_id: Some(step.id.clone()),
                targeted_tags: step.target_roles(),
            },
            target.map(|target| TargetScope {
                machine_id: target.id.clone(),
                tags: target.roles.clone(),
            }),
        );
        let resolution = sources.resolve(&scope);
        let raw: Vec<(String, String, bool)> = resolution
            .variables
            .iter()
            .map(|variable| {
                (
                    variable.name.clone(),
                    variable.value.clone(),
                    variable.is_sensitive,
                )
            })
            .collect();
        evaluate_all(&raw)
    }

    /// The targets a step runs on: in the environment, enabled, in one of its roles, chosen
    /// by the deployment and not excluded. `None` means "on the built-in worker".
    fn step_targets(
        &self,
        plan: &Plan,
        run: &Mutex<RunState>,
        step: &DeploymentStep,
    ) -> Vec<Option<DeploymentTarget>> {
        let Some(action) = step.actions.first() else {
            return Vec::new();
        };
        if action.action_type == action_type::MANUAL {
            return vec![None];
        }
        if action.runs_on_worker() {
            return vec![plan.choose_worker(step, action)];
        }
        let roles = step.target_roles();
        let excluded = run
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .excluded_machine_ids
            .clone();
        plan.targets
            .iter()
            .filter(|target| !target.is_disabled)
            .filter(|target| {
                target
                    .roles
                    .iter()
                    .any(|role| roles.iter().any(|wanted| wanted.eq_ignore_ascii_case(role)))
            })
            .filter(|target| {
                plan.deployment.specific_machine_ids.is_empty()
                    || plan.deployment.specific_machine_ids.contains(&target.id)
            })
            .filter(|target| !plan.deployment.excluded_machine_ids.contains(&target.id))
            .filter(|target| !excluded.contains(&target.id))
            .cloned()
            .map(Some)
            .collect()
    }

    async fn run_step_on_targets(
        &self,
        context: &TaskContext,
        plan: &Plan,
        run: &Mutex<RunState>,
        index: usize,
    ) -> RunStatus {
        let step = &plan.process.steps[index];
        let activity = step_activity(index);
        let targets = self.step_targets(plan, run, step);
        if targets.is_empty() {
            context.log(
                LogCategory::Warning,
                &activity,
                format!(
                    "Skipping this step as no deployment targets in {} have the roles: {}",
                    plan.environment.name,
                    step.target_roles().join(", ")
                ),
            );
            return RunStatus::Skipped;
        }
        let window = step.max_parallelism().unwrap_or(DEFAULT_MAX_PARALLELISM);
        let activity = &activity;
        let runs: Vec<futures::future::BoxFuture<'_, RunStatus>> = targets
            .iter()
            .map(|target| {
                Box::pin(async move {
                    let target_activity = match target {
                        Some(target) => format!("{activity}/{}", target.id),
                        None => format!("{activity}/worker"),
                    };
                    let name = target
                        .as_ref()
                        .map_or(BUILT_IN_WORKER_NAME, |target| target.name.as_str());
                    declare_activity(context, &target_activity, activity, name).await;
                    let mut status = RunStatus::Success;
                    for action in &step.actions {
                        status = self
                            .run_action_with_guidance(ActionSite {
                                context,
                                plan,
                                run,
                                step,
                                action,
                                target: target.as_ref(),
                                activity: &target_activity,
                            })
                            .await;
                        if status != RunStatus::Success {
                            break;
                        }
                    }
                    set_activity(context, &target_activity, status.as_str(), false).await;
                    status
                }) as futures::future::BoxFuture<'_, RunStatus>
            })
            .collect();
        let statuses: Vec<RunStatus> = futures::stream::iter(runs)
            .buffer_unordered(window)
            .collect()
            .await;
        if statuses.contains(&RunStatus::Canceled) {
            RunStatus::Canceled
        } else if statuses.contains(&RunStatus::Failed) {
            RunStatus::Failed
        } else if statuses.iter().all(|status| *status == RunStatus::Skipped) {
            RunStatus::Skipped
        } else {
            RunStatus::Success
        }
    }

    /// Runs an action on a target; on failure with guided failure on, asks what to do.
    async fn run_action_with_guidance(&self, site: ActionSite<'_>) -> RunStatus {
        let ActionSite {
            context,
            plan,
            run,
            step,
            action,
            target,
            activity,
        } = site;
        // As in Octopus, manual interventions (an "Abort" is a person's answer) and health
        // checks never retry by themselves.
        let auto_retry = action.auto_retry().filter(|_| {
            action.action_type != action_type::MANUAL
                && action.action_type != action_type::HEALTH_CHECK
        });
        let mut automatic_retries_used = 0;
        let mut attempt: u32 = 1;
        loop {
            let result = self.run_action(site, attempt).await;
            let reason = match result {
                Ok(status) => return status,
                Err(reason) => reason,
            };
            context.log(LogCategory::Error, activity, reason.clone());
            if context.is_cancel_requested() {
                return RunStatus::Canceled;
            }
            if let Some(policy) = auto_retry
                && automatic_retries_used < policy.retries
            {
                automatic_retries_used += 1;
                context.log(
                    LogCategory::Warning,
                    activity,
                    format!(
                        "Retrying automatically in {} s (retry {automatic_retries_used} of {})",
                        policy.backoff.as_secs(),
                        policy.retries
                    ),
                );
                tokio::select! {
                    () = tokio::time::sleep(policy.backoff) => {}
                    () = context.cancellation() => return RunStatus::Canceled,
                }
                attempt += 1;
                continue;
            }
            if !plan.deployment.use_guided_failure {
                let mut state = run.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if state.first_error.is_none() {
                    state.first_error = Some(reason);
                }
                return RunStatus::Failed;
            }
            let where_ = target.map_or(BUILT_IN_WORKER_NAME, |target| target.name.as_str());
            let title = format!(
                "Deploy {} release {} to {}: '{}' failed on {where_}",
                plan.project.name, plan.release.version, plan.environment.name, step.name
            );
            let allowed = cuttle_domain::guided_failure_answers(action.is_required);
            let answer = self
                .ask(
                    context,
                    plan,
                    &format!("{activity}#{attempt}"),
                    activity,
                    InterruptionType::GuidedFailure,
                    &title,
                    &reason,
                    &allowed,
                    action.is_required,
                )
                .await;
            match answer {
                Answer::Canceled => return RunStatus::Canceled,
                Answer::Given { answer, notes } => {
                    let notes = if notes.is_empty() {
                        String::new()
                    } else {
                        format!(": {notes}")
                    };
                    match answer.as_str() {
                        "Retry" => {
                            context.log(LogCategory::Info, activity, format!("Retrying{notes}"));
                            attempt += 1;
                            // A person chose to retry: the action gets its automatic retries again.
                            automatic_retries_used = 0;
                        }
                        "Ignore" => {
                            context.log(
                                LogCategory::Warning,
                                activity,
                                format!("The failure was ignored{notes}"),
                            );
                            return RunStatus::Success;
                        }
                        "Exclude" => {
                            if let Some(target) = target {
                                run.lock()
                                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                                    .excluded_machine_ids
                                    .insert(target.id.clone());
                            }
                            context.log(
                                LogCategory::Warning,
                                activity,
                                format!(
                                    "{where_} is excluded from the rest of the deployment{notes}"
                                ),
                            );
                            return RunStatus::Skipped;
                        }
                        _ => {
                            let mut state =
                                run.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                            if state.first_error.is_none() {
                                state.first_error = Some(reason);
                            }
                            return RunStatus::Failed;
                        }
                    }
                }
            }
        }
    }

    /// Runs an action once. `Err` carries why it failed.
    async fn run_action(&self, site: ActionSite<'_>, attempt: u32) -> Result<RunStatus, String> {
        let ActionSite {
            context,
            plan,
            step,
            action,
            target,
            activity,
            ..
        } = site;
        match action.action_type.as_str() {
            action_type::SCRIPT => self.run_script_action(site, attempt).await,
            action_type::PACKAGE => self.run_package_action(site, attempt).await,
            action_type::MANUAL => self.run_manual_action(site).await,
            action_type::HEALTH_CHECK => {
                let Some(target) = target else {
                    return Ok(RunStatus::Skipped);
                };
                let address = address_of(target, &plan.space.id);
                let transport = self
                    .transports
                    .for_endpoint(&address)
                    .map_err(|error| error.to_string())?;
                let report = transport
                    .check_health(&address)
                    .await
                    .map_err(|error| error.to_string())?;
                context.log(
                    LogCategory::Info,
                    activity,
                    format!("{} is healthy: {}", target.name, report.summary),
                );
                Ok(RunStatus::Success)
            }
            other => Err(format!(
                "step '{}' uses the action type {other}, which this server cannot run yet",
                step.name
            )),
        }
    }

    /// The transport and address of the action's target, or of the built-in worker.
    fn transport_for<'a>(
        &'a self,
        plan: &Plan,
        target: Option<&DeploymentTarget>,
    ) -> Result<(&'a dyn Transport, TargetAddress), String> {
        match target {
            Some(target) => {
                let address = address_of(target, &plan.space.id);
                let transport = self
                    .transports
                    .for_endpoint(&address)
                    .map_err(|error| error.to_string())?;
                Ok((transport, address))
            }
            None => {
                let transport = self.transports.built_in_worker().ok_or_else(|| {
                    "the step runs on the server, but the built-in worker is disabled".to_owned()
                })?;
                Ok((
                    transport,
                    TargetAddress {
                        machine_id: String::new(),
                        name: BUILT_IN_WORKER_NAME.to_owned(),
                        space_id: plan.space.id.clone(),
                        endpoint: cuttle_domain::Endpoint::None,
                    },
                ))
            }
        }
    }

    async fn run_script_action(
        &self,
        site: ActionSite<'_>,
        attempt: u32,
    ) -> Result<RunStatus, String> {
        let ActionSite {
            context,
            plan,
            run,
            step,
            action,
            target,
            activity,
        } = site;
        let (transport, address) = self.transport_for(plan, target)?;
        let (dictionary, variables) = self.variables(context, plan, run, step, action, target);
        let body_template = action.property(property::SCRIPT_BODY).unwrap_or_default();
        let body =
            cuttle_template::evaluate(body_template, &dictionary, &EvaluationOptions::default())
                .output
                .unwrap_or_else(|| body_template.to_owned());
        let task_id = context.task().id;
        let target_key = target.map_or("worker", |target| target.id.as_str());
        let mut request = ScriptRequest::new(
            format!("{task_id}-{}-{target_key}-{attempt}", action.id),
            syntax_of(action),
            body,
        );
        request.variables = variables;
        request.timeout = action.execution_timeout();
        // One script per target at a time, as Octopus does; workers run scripts side by side.
        request.isolation = if target.is_some_and(|target| !plan.is_worker(target)) {
            Isolation::Full
        } else {
            Isolation::None
        };
        context.log(
            LogCategory::Verbose,
            activity,
            format!("Running '{}' on {}", action.name, address.name),
        );
        self.run_request(site, transport, &address, &request).await
    }

    /// Runs a ticket to its end and records its output variables; `Err` says why it failed.
    async fn run_request(
        &self,
        site: ActionSite<'_>,
        transport: &dyn Transport,
        address: &TargetAddress,
        request: &ScriptRequest,
    ) -> Result<RunStatus, String> {
        let ActionSite {
            context,
            run,
            action,
            target,
            activity,
            ..
        } = site;
        let outcome = run_script(context, transport, address, request, activity)
            .await
            .map_err(|error| error.to_string())?;
        {
            let mut state = run.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for output in &outcome.output_variables {
                let record = json!({
                    "ActionName": action.name,
                    "MachineId": target.map(|target| target.id.clone()).unwrap_or_default(),
                    "MachineName": target.map(|target| target.name.clone()).unwrap_or_default(),
                    "Name": output.name,
                    "Value": output.value,
                    "IsSensitive": output.is_sensitive,
                });
                record_output(&mut state, &record, &self.master_key);
            }
        }
        if context.is_cancel_requested() {
            return Ok(RunStatus::Canceled);
        }
        if outcome.succeeded() {
            Ok(RunStatus::Success)
        } else {
            Err(match outcome.failure_message {
                Some(message) => format!("'{}' failed on {}: {message}", action.name, address.name),
                None if outcome.state == cuttle_exec::ScriptState::Unknown => format!(
                    "the result of '{}' on {} is unknown: the script was running when {} stopped, and a script is never run twice",
                    action.name, address.name, address.name
                ),
                None if outcome.state == cuttle_exec::ScriptState::TimedOut => format!(
                    "'{}' ran past its execution timeout ({}) on {} and was stopped",
                    action.name,
                    seconds_text(request.timeout.unwrap_or_default()),
                    address.name
                ),
                None => format!(
                    "'{}' failed on {} with exit code {}",
                    action.name,
                    address.name,
                    outcome.state.exit_code().unwrap_or(-1)
                ),
            })
        }
    }

    /// The package file an action deploys: the version the release pinned for its (first)
    /// package reference, from the built-in feed. `Err` says clearly what is missing.
    async fn resolve_package(
        &self,
        context: &TaskContext,
        plan: &Plan,
        action: &DeploymentAction,
    ) -> Result<PackageFile, String> {
        let reference = action
            .package_references()
            .into_iter()
            .next()
            .ok_or_else(|| format!("'{}' names no package to deploy", action.name))?;
        let location = reference.acquisition_location.trim();
        if !location.is_empty() && !location.eq_ignore_ascii_case("Server") {
            return Err(format!(
                "'{}' acquires {} at {location}; this server only pushes packages from the server",
                action.name, reference.package_id
            ));
        }
        let feed_id = reference.feed_id.trim();
        if !feed_id.is_empty() && !feed_id.eq_ignore_ascii_case(cuttle_domain::BUILT_IN_FEED_ID) {
            return Err(format!(
                "'{}' takes {} from the feed {feed_id}; this server has only the built-in feed",
                action.name, reference.package_id
            ));
        }
        let version = plan
            .release
            .selected_packages
            .iter()
            .find(|selected| {
                selected.action_name.eq_ignore_ascii_case(&action.name)
                    && selected.package_reference_name == reference.name
            })
            .map(|selected| selected.version.clone())
            .ok_or_else(|| {
                format!(
                    "release {} pins no version of {} for '{}'",
                    plan.release.version, reference.package_id, action.name
                )
            })?;
        let name = format!("{}.{version}", reference.package_id);
        let record = context
            .store()
            .find_resource_by_name::<cuttle_domain::Package>(Some(&plan.space.id), &name)
            .await
            .map_err(|error| format!("could not read the package {name}: {error}"))?
            .ok_or_else(|| {
                format!(
                    "the package {} version {version}, which release {} deploys, is no longer in the built-in feed; upload it again or create a release with another version",
                    reference.package_id, plan.release.version
                )
            })?;
        let path = self
            .package_blobs
            .as_ref()
            .and_then(|blobs| blobs.blob_path(&record.hash))
            .filter(|path| path.is_file())
            .ok_or_else(|| {
                format!(
                    "the file of the package {} version {version} is missing from the built-in feed's blob store",
                    record.package_id
                )
            })?;
        Ok(PackageFile {
            package: cuttle_exec::CachedPackage {
                package_id: record.package_id,
                version: record.version,
                file_extension: record.file_extension,
                sha256: record.hash,
                length: record.package_size_bytes,
            },
            path,
        })
    }

    /// Pushes the release's packages to the targets that deploy them, in an "Acquire packages"
    /// activity placed before `before_activity`. A failure fails the deployment (later steps
    /// that run only on success are skipped).
    async fn acquire_packages(
        &self,
        context: &TaskContext,
        plan: &Plan,
        run: &Mutex<RunState>,
        before_activity: &str,
    ) {
        let declared = context
            .update_progress(|progress| {
                if !progress["Activities"].is_array() {
                    progress["Activities"] = json!([]);
                }
                if let Some(activities) = progress["Activities"].as_array_mut()
                    && !activities.iter().any(|activity| activity["Id"] == ACQUIRE_ACTIVITY)
                {
                    let position = activities
                        .iter()
                        .position(|activity| activity["Id"] == before_activity)
                        .unwrap_or(activities.len());
                    activities.insert(
                        position,
                        json!({"Id": ACQUIRE_ACTIVITY, "Name": "Acquire packages", "Status": "Running", "Started": Utc::now().to_rfc3339()}),
                    );
                }
            })
            .await;
        if let Err(error) = declared {
            tracing::warn!("failed to record an activity: {error}");
        }
        let result = self.acquire_packages_on_targets(context, plan, run).await;
        let status = match &result {
            Ok(()) => "Success",
            Err(reason) => {
                context.log(LogCategory::Error, ACQUIRE_ACTIVITY, reason.clone());
                "Failed"
            }
        };
        let (failed, first_error) = {
            let mut state = run.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Err(reason) = result {
                state.failed = true;
                if state.first_error.is_none() {
                    state.first_error = Some(reason);
                }
            }
            (state.failed, state.first_error.clone())
        };
        let saved = context
            .update_progress(|progress| {
                progress["PackagesAcquired"] = json!(true);
                progress["Failed"] = json!(failed);
                progress["FirstError"] = json!(first_error);
                set_activity_in(progress, ACQUIRE_ACTIVITY, status, false);
            })
            .await;
        if let Err(error) = saved {
            tracing::warn!("failed to record the end of package acquisition: {error}");
        }
    }

    async fn acquire_packages_on_targets(
        &self,
        context: &TaskContext,
        plan: &Plan,
        run: &Mutex<RunState>,
    ) -> Result<(), String> {
        // One delivery per target and package content, whichever steps share it.
        let mut deliveries: Vec<(Option<DeploymentTarget>, PackageFile)> = Vec::new();
        let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
        let mut settings_site: Option<(&DeploymentStep, &DeploymentAction)> = None;
        for step in &plan.process.steps {
            for action in &step.actions {
                if action.action_type != action_type::PACKAGE
                    || action.is_disabled
                    || (!action.environments.is_empty()
                        && !action.environments.contains(&plan.environment.id))
                    || action.excluded_environments.contains(&plan.environment.id)
                {
                    continue;
                }
                settings_site.get_or_insert((step, action));
                let file = self.resolve_package(context, plan, action).await?;
                for target in self.step_targets(plan, run, step) {
                    let key = target
                        .as_ref()
                        .map_or_else(|| "worker".to_owned(), |target| target.id.clone());
                    if seen.insert((key, file.package.sha256.clone())) {
                        deliveries.push((target, file.clone()));
                    }
                }
            }
        }
        let Some((step, action)) = settings_site else {
            context.log(
                LogCategory::Info,
                ACQUIRE_ACTIVITY,
                "No packages to acquire",
            );
            return Ok(());
        };
        let (dictionary, _) = self.variables(context, plan, run, step, action, None);
        let max_parallelism = dictionary
            .get_raw("Octopus.Acquire.MaxParallelism")
            .and_then(|value| value.trim().parse::<usize>().ok())
            .filter(|value| *value > 0)
            .unwrap_or(DEFAULT_ACQUIRE_MAX_PARALLELISM);
        let delta_enabled = dictionary
            .get_raw("Octopus.Acquire.DeltaCompressionEnabled")
            .is_none_or(|value| !value.trim().eq_ignore_ascii_case("false"));
        context.log(
            LogCategory::Info,
            ACQUIRE_ACTIVITY,
            format!(
                "Acquiring {} package deliveries, {max_parallelism} at a time; delta compression is {}",
                deliveries.len(),
                if delta_enabled { "on" } else { "off" }
            ),
        );
        let failures: Vec<String> = futures::stream::iter(deliveries)
            .map(|(target, file)| async move {
                let result = self
                    .deliver_package(plan, target.as_ref(), &file, delta_enabled)
                    .await;
                let who = target
                    .as_ref()
                    .map_or(BUILT_IN_WORKER_NAME, |target| target.name.as_str());
                let package = format!("{} {}", file.package.package_id, file.package.version);
                match result {
                    Ok(acquisition) => {
                        context.log(
                            LogCategory::Info,
                            ACQUIRE_ACTIVITY,
                            format!("{who}: {package}: {}", acquisition.describe()),
                        );
                        tracing::debug!(
                            target = who,
                            bytes = acquisition.bytes_sent(),
                            "acquired a package"
                        );
                        None
                    }
                    Err(reason) => Some(format!("{who}: could not acquire {package}: {reason}")),
                }
            })
            .buffer_unordered(max_parallelism)
            .filter_map(std::future::ready)
            .collect()
            .await;
        for failure in &failures {
            context.log(LogCategory::Error, ACQUIRE_ACTIVITY, failure.clone());
        }
        match failures.first() {
            None => Ok(()),
            Some(first) => Err(format!("package acquisition failed: {first}")),
        }
    }

    /// Puts one package in one target's cache.
    async fn deliver_package(
        &self,
        plan: &Plan,
        target: Option<&DeploymentTarget>,
        file: &PackageFile,
        delta_enabled: bool,
    ) -> Result<crate::acquire::Acquisition, String> {
        let (transport, address) = self.transport_for(plan, target)?;
        let support = transport
            .package_support(&address)
            .await
            .map_err(|error| error.to_string())?;
        if !support.cache {
            return Err("its agent has no package cache (it does not list the PackageCache feature); upgrade the agent".to_owned());
        }
        acquire_on_target(transport, &address, file, delta_enabled)
            .await
            .map_err(|error| error.to_string())
    }

    /// Deploys the action's package on its target with the conventions runner.
    async fn run_package_action(
        &self,
        site: ActionSite<'_>,
        attempt: u32,
    ) -> Result<RunStatus, String> {
        let ActionSite {
            context,
            plan,
            run,
            step,
            action,
            target,
            activity,
        } = site;
        let (transport, address) = self.transport_for(plan, target)?;
        let support = transport
            .package_support(&address)
            .await
            .map_err(|error| error.to_string())?;
        if !support.deploy {
            return Err(format!(
                "{} cannot deploy packages: it does not list the PackageDeployment feature",
                address.name
            ));
        }
        let file = self.resolve_package(context, plan, action).await?;
        let (dictionary, variables) = self.variables(context, plan, run, step, action, target);
        let deployment = package_deployment(plan, step, action, target, &file, &dictionary);
        let task_id = context.task().id;
        let target_key = target.map_or("worker", |target| target.id.as_str());
        let mut request = ScriptRequest::new(
            format!("{task_id}-{}-{target_key}-{attempt}", action.id),
            ScriptSyntax::Bash,
            String::new(),
        );
        request.package_deployment = Some(deployment);
        request.variables = variables;
        request.timeout = action.execution_timeout();
        request.isolation = if target.is_some_and(|target| !plan.is_worker(target)) {
            Isolation::Full
        } else {
            Isolation::None
        };
        context.log(
            LogCategory::Verbose,
            activity,
            format!(
                "Deploying {} {} on {}",
                file.package.package_id, file.package.version, address.name
            ),
        );
        self.run_request(site, transport, &address, &request).await
    }

    async fn run_manual_action(&self, site: ActionSite<'_>) -> Result<RunStatus, String> {
        let ActionSite {
            context,
            plan,
            run,
            action,
            activity,
            ..
        } = site;
        let instructions = action
            .property(property::MANUAL_INSTRUCTIONS)
            .unwrap_or_default()
            .to_owned();
        let title = format!("{}: {}", action.name, plan.environment.name);
        let answer = self
            .ask(
                context,
                plan,
                activity,
                activity,
                InterruptionType::ManualIntervention,
                &title,
                &instructions,
                &["Proceed", "Abort"],
                true,
            )
            .await;
        match answer {
            Answer::Canceled => Ok(RunStatus::Canceled),
            Answer::Given { answer, notes } => {
                let approved = answer == "Proceed";
                let mut state = run.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                for (name, value) in [
                    ("Manual.Notes", notes.clone()),
                    (
                        "Manual.Approved",
                        if approved { "True" } else { "False" }.to_owned(),
                    ),
                ] {
                    record_output(
                        &mut state,
                        &json!({"ActionName": action.name, "Name": name, "Value": value, "IsSensitive": false}),
                        &self.master_key,
                    );
                }
                drop(state);
                if approved {
                    context.log(LogCategory::Info, activity, format!("Proceeding: {notes}"));
                    Ok(RunStatus::Success)
                } else {
                    Err(format!(
                        "the deployment was aborted at '{}': {notes}",
                        action.name
                    ))
                }
            }
        }
    }

    /// Raises an interruption (or finds the one raised before a restart) and waits for its
    /// answer.
    #[expect(clippy::too_many_arguments, reason = "the parts of an interruption")]
    async fn ask(
        &self,
        context: &TaskContext,
        plan: &Plan,
        correlation_id: &str,
        activity: &str,
        kind: InterruptionType,
        title: &str,
        instructions: &str,
        allowed: &[&str],
        is_required: bool,
    ) -> Answer {
        let store = context.store();
        let task = context.task();
        let existing = task.progress["Interruptions"][correlation_id]
            .as_str()
            .map(str::to_owned);
        let id = match existing {
            Some(id) => id,
            None => {
                let id = match store.allocate_id(ResourceKind::Interruption).await {
                    Ok(id) => id,
                    Err(error) => {
                        context.log(
                            LogCategory::Error,
                            activity,
                            format!("could not ask for guidance: {error}"),
                        );
                        return Answer::Given {
                            answer: "Fail".to_owned(),
                            notes: String::new(),
                        };
                    }
                };
                let answer_field = kind.answer_field();
                let mut values = serde_json::Map::new();
                values.insert("Instructions".to_owned(), json!(instructions));
                values.insert("IsRequired".to_owned(), json!(is_required));
                values.insert(answer_field.to_owned(), serde_json::Value::Null);
                values.insert("Notes".to_owned(), serde_json::Value::Null);
                let interruption = Interruption {
                    id: id.clone(),
                    space_id: plan.space.id.clone(),
                    title: title.to_owned(),
                    created: Utc::now().to_rfc3339(),
                    is_pending: true,
                    form: cuttle_domain::InterruptionForm {
                        values,
                        elements: vec![
                            FormElement {
                                name: answer_field.to_owned(),
                                control: json!({"Type": "SubmitButtonGroup", "Buttons": allowed.iter().map(|value| json!({"Text": value, "Value": value})).collect::<Vec<_>>()}),
                                is_value_required: true,
                            },
                            FormElement {
                                name: "Notes".to_owned(),
                                control: json!({"Type": "TextArea", "Label": "Notes"}),
                                is_value_required: false,
                            },
                        ],
                    },
                    related_document_ids: vec![
                        plan.deployment.id.clone(),
                        plan.project.id.clone(),
                        plan.environment.id.clone(),
                        plan.release.id.clone(),
                    ],
                    can_take_responsibility: true,
                    task_id: task.id.clone(),
                    correlation_id: correlation_id.to_owned(),
                    interruption_type: kind,
                    ..Interruption::default()
                };
                if let Err(error) = store.insert_resource(&interruption).await {
                    context.log(
                        LogCategory::Error,
                        activity,
                        format!("could not ask for guidance: {error}"),
                    );
                    return Answer::Given {
                        answer: "Fail".to_owned(),
                        notes: String::new(),
                    };
                }
                let key = correlation_id.to_owned();
                let id_value = id.clone();
                if let Err(error) = context
                    .update_progress(|progress| {
                        if !progress["Interruptions"].is_object() {
                            progress["Interruptions"] = json!({});
                        }
                        progress["Interruptions"][&key] = json!(id_value);
                    })
                    .await
                {
                    tracing::warn!("failed to record an interruption: {error}");
                }
                context.log(
                    LogCategory::Wait,
                    activity,
                    match kind {
                        InterruptionType::ManualIntervention => {
                            format!("Waiting for manual intervention ({id}): {instructions}")
                        }
                        InterruptionType::GuidedFailure => format!(
                            "Guided failure: waiting for someone to choose {} ({id})",
                            allowed.join(", ")
                        ),
                    },
                );
                id
            }
        };
        if let Err(error) = context.set_pending_interruptions(true).await {
            tracing::warn!("failed to mark the task as waiting: {error}");
        }
        let answer = loop {
            match store.get_resource::<Interruption>(&id).await {
                Ok(Some(interruption)) if !interruption.is_pending => {
                    let field = interruption.answer_field();
                    let text = |name: &str| {
                        interruption
                            .form
                            .values
                            .get(name)
                            .and_then(|value| value.as_str())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let who = interruption.submitted_by.clone().unwrap_or_default();
                    let answer = text(field);
                    context.log(LogCategory::Info, activity, format!("{who} chose {answer}"));
                    break Answer::Given {
                        answer,
                        notes: text("Notes"),
                    };
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    break Answer::Given {
                        answer: "Fail".to_owned(),
                        notes: "the interruption was deleted".to_owned(),
                    };
                }
                Err(error) => tracing::debug!("failed to read an interruption: {error}"),
            }
            tokio::select! {
                () = tokio::time::sleep(INTERRUPTION_POLL) => {}
                () = context.cancellation() => break Answer::Canceled,
            }
        };
        if matches!(answer, Answer::Canceled) {
            // Nobody needs to answer a canceled task's question.
            if let Ok(Some(mut interruption)) = store.get_resource::<Interruption>(&id).await {
                interruption.is_pending = false;
                if let Err(error) = store.update_resource(&interruption).await {
                    tracing::debug!("failed to close an interruption: {error}");
                }
            }
        }
        if let Err(error) = context.set_pending_interruptions(false).await {
            tracing::warn!("failed to mark the task as running: {error}");
        }
        answer
    }
}

/// The conventions runner's request for a package action, from the action's properties
/// (Octopus's names), evaluated against the action's variables.
fn package_deployment(
    plan: &Plan,
    step: &DeploymentStep,
    action: &DeploymentAction,
    target: Option<&DeploymentTarget>,
    file: &PackageFile,
    dictionary: &VariableDictionary,
) -> cuttle_exec::package_deployment::PackageDeployment {
    use cuttle_exec::package_deployment::{
        ConfiguredScript, CustomInstallationDirectory, DeploymentStage, JournalIdentity,
        PackageDeployment,
    };
    let options = EvaluationOptions::default();
    let evaluated = |name: &str| -> Option<String> {
        let raw = action.property(name)?;
        let value = cuttle_template::evaluate(raw, dictionary, &options)
            .output
            .unwrap_or_else(|| raw.to_owned());
        Some(value)
    };
    let is_true =
        |name: &str| evaluated(name).is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
    let enabled_features = action
        .property("Octopus.Action.EnabledFeatures")
        .unwrap_or_default()
        .to_owned();
    let mut configured_scripts = Vec::new();
    for stage in [
        DeploymentStage::PreDeploy,
        DeploymentStage::Deploy,
        DeploymentStage::PostDeploy,
        DeploymentStage::DeployFailed,
    ] {
        for (extension, syntax) in [
            ("sh", ScriptSyntax::Bash),
            ("py", ScriptSyntax::Python),
            ("ps1", ScriptSyntax::PowerShell),
        ] {
            if let Some(body) = evaluated(&format!(
                "Octopus.Action.CustomScripts.{}.{extension}",
                stage.name()
            ))
            .filter(|body| !body.trim().is_empty())
            {
                configured_scripts.push(ConfiguredScript {
                    stage,
                    syntax,
                    body,
                });
            }
        }
    }
    let substitute_in_files = if is_true("Octopus.Action.SubstituteInFiles.Enabled")
        || enabled_features.contains("Octopus.Features.SubstituteInFiles")
    {
        property_lines(
            &evaluated("Octopus.Action.SubstituteInFiles.TargetFiles").unwrap_or_default(),
        )
    } else {
        Vec::new()
    };
    let structured_variable_files =
        if is_true("Octopus.Action.StructuredConfigurationVariables.Enabled")
            || enabled_features.contains("Octopus.Features.JsonConfigurationVariables")
        {
            let mut files = property_lines(
                &evaluated("Octopus.Action.StructuredConfigurationVariables.Targets")
                    .unwrap_or_default(),
            );
            files.extend(property_lines(
                &evaluated("Octopus.Action.Package.JsonConfigurationVariablesTargets")
                    .unwrap_or_default(),
            ));
            files
        } else {
            Vec::new()
        };
    let custom_installation_directory = evaluated(
        "Octopus.Action.Package.CustomInstallationDirectory",
    )
    .map(|path| path.trim().to_owned())
    .filter(|path| !path.is_empty())
    .map(|path| CustomInstallationDirectory {
        path: path.into(),
        purge_before_deployment: is_true(
            "Octopus.Action.Package.CustomInstallationDirectoryShouldBePurgedBeforeDeployment",
        ),
        purge_exclusions: property_lines(
            &evaluated("Octopus.Action.Package.CustomInstallationDirectoryPurgeExclusions")
                .unwrap_or_default(),
        ),
    });
    PackageDeployment {
        package_id: file.package.package_id.clone(),
        version: file.package.version.clone(),
        package_path: file.package.file_name().into(),
        package_sha256: Some(file.package.sha256.clone()),
        applications_directory: None,
        environment_name: plan.environment.name.clone(),
        tenant_name: None,
        configured_scripts,
        run_packaged_scripts: evaluated("Octopus.Action.Package.RunScripts")
            .is_none_or(|value| !value.trim().eq_ignore_ascii_case("false")),
        substitute_in_files,
        structured_variable_files,
        custom_installation_directory,
        // A forced redeployment installs again even when the journal has this version.
        skip_if_already_installed: is_true("Octopus.Action.Package.SkipIfAlreadyInstalled")
            && !plan.deployment.force_package_redeployment,
        retention_keep_count: plan.retention_keep_count,
        journal: JournalIdentity {
            deployment_id: plan.deployment.id.clone(),
            environment_id: plan.environment.id.clone(),
            project_id: plan.project.id.clone(),
            step_name: step.name.clone(),
            machine_id: target.map_or_else(|| "worker".to_owned(), |target| target.id.clone()),
            tenant_id: plan.deployment.tenant_id.clone(),
        },
    }
}

/// "600 s", "1.2 s": a duration as a person reads it in the log.
fn seconds_text(duration: Duration) -> String {
    let milliseconds = duration.as_millis();
    if milliseconds.is_multiple_of(1000) {
        format!("{} s", milliseconds / 1000)
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

fn address_of(target: &DeploymentTarget, space_id: &str) -> TargetAddress {
    TargetAddress {
        machine_id: target.id.clone(),
        name: target.name.clone(),
        space_id: space_id.to_owned(),
        endpoint: target.endpoint.clone(),
    }
}

/// Sets an activity's status (and its start or end time) in the progress document.
fn set_activity_in(progress: &mut serde_json::Value, id: &str, status: &str, starting: bool) {
    let now = Utc::now().to_rfc3339();
    if let Some(activities) = progress["Activities"].as_array_mut()
        && let Some(activity) = activities.iter_mut().find(|activity| activity["Id"] == id)
    {
        activity["Status"] = json!(status);
        if starting {
            activity["Started"] = json!(now);
        } else {
            activity["Ended"] = json!(now);
        }
    }
}

async fn set_activity(context: &TaskContext, id: &str, status: &str, starting: bool) {
    if let Err(error) = context
        .update_progress(|progress| set_activity_in(progress, id, status, starting))
        .await
    {
        tracing::warn!("failed to record an activity's status: {error}");
    }
}

async fn declare_activity(context: &TaskContext, id: &str, parent: &str, name: &str) {
    let declared = context
        .update_progress(|progress| {
            if !progress["Activities"].is_array() {
                progress["Activities"] = json!([]);
            }
            if let Some(activities) = progress["Activities"].as_array_mut()
                && !activities.iter().any(|activity| activity["Id"] == id)
            {
                activities.push(json!({"Id": id, "ParentId": parent, "Name": name, "Status": "Running", "Started": Utc::now().to_rfc3339()}));
            }
        })
        .await;
    if let Err(error) = declared {
        tracing::warn!("failed to record an activity: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_outputs_are_sealed_in_progress_and_restored_after_a_restart() {
        let master_key = MasterKey::from_text(&"42".repeat(32)).expect("key");
        let mut state = RunState::default();
        for (name, value, is_sensitive) in
            [("Token", "s3cret-token", true), ("Color", "blue", false)]
        {
            record_output(
                &mut state,
                &json!({"ActionName": "Make", "Name": name, "Value": value, "IsSensitive": is_sensitive}),
                &master_key,
            );
        }
        let progress = json!({"Outputs": state.output_log});
        let saved = progress.to_string();
        assert!(!saved.contains("s3cret-token"), "{saved}");
        assert!(saved.contains("blue"), "{saved}");

        let restored = Mutex::new(RunState::default());
        restore_run_state(&progress, &restored, &master_key);
        let restored = restored.into_inner().expect("not poisoned");
        let values: Vec<(String, String, bool)> = restored
            .outputs
            .scoped_values()
            .into_iter()
            .filter(|value| value.name.ends_with(".Output.Token"))
            .map(|value| (value.name, value.value, value.is_sensitive))
            .collect();
        assert!(
            values
                .iter()
                .any(|(_, value, is_sensitive)| value == "s3cret-token" && *is_sensitive),
            "{values:?}"
        );
        // Saved again after the restart, still sealed.
        assert!(
            !json!(restored.output_log)
                .to_string()
                .contains("s3cret-token")
        );
    }

    fn step(name: &str, trigger: StartTrigger) -> DeploymentStep {
        DeploymentStep {
            name: name.to_owned(),
            start_trigger: trigger,
            ..DeploymentStep::default()
        }
    }

    #[test]
    fn steps_starting_with_the_previous_one_share_its_group() {
        let steps = [
            step("A", StartTrigger::StartAfterPrevious),
            step("B", StartTrigger::StartAfterPrevious),
            step("C", StartTrigger::StartWithPrevious),
            step("D", StartTrigger::StartAfterPrevious),
            step("E", StartTrigger::StartWithPrevious),
            step("F", StartTrigger::StartWithPrevious),
        ];
        assert_eq!(
            step_groups(&steps),
            vec![vec![0], vec![1, 2], vec![3, 4, 5]]
        );
        // A first step that "starts with the previous" has nothing to start with.
        assert_eq!(
            step_groups(&[step("A", StartTrigger::StartWithPrevious)]),
            vec![vec![0]]
        );
    }

    #[test]
    fn values_are_expanded_against_each_other() {
        let raw = vec![
            ("Greeting".to_owned(), "Hello #{Name}".to_owned(), false),
            ("Name".to_owned(), "World".to_owned(), false),
            ("Password".to_owned(), "s3cret".to_owned(), true),
        ];
        let (dictionary, variables) = evaluate_all(&raw);
        assert_eq!(dictionary.get_raw("greeting"), Some("Hello World"));
        assert_eq!(variables[0].value, "Hello World");
        assert!(variables[2].is_sensitive);
    }
}
