//! The builder of `Octopus.*` system variables (spec C) from plain inputs.
//!
//! The caller (planner or orchestrator) fills a [`SystemVariableInputs`] with what it knows
//! for one context: the deployment-wide facts, plus the machine, step and action when
//! building for one action on one target. [`build_system_variables`] turns it into
//! `(name, value)` pairs under Octopus's exact names ([`crate::system_names`]), in a stable
//! order. Only what is given is emitted: an absent input leaves its variables undefined,
//! which is what a script sees in Octopus too (an undefined variable echoes as `#{...}`).
//!
//! All values are strings (spec C). Timestamps arrive already formatted, since this crate
//! reads no clock and does not choose a date format; lists (tags, machine ids) are joined
//! with a bare comma, as Octopus writes them.
//!
//! What it deliberately does not emit: action properties such as
//! `Octopus.Action.Script.ScriptBody` or `Octopus.Action.Package[ref].*` (they come from the
//! process model, in the planner), `Octopus.Tentacle.*` and `Octopus.Endpoint.*` (set on the
//! agent side), the loop-only `Octopus.Template.Each.*` (set by the template evaluator) and
//! output variables (see [`crate::output`]).

use std::collections::BTreeMap;

use crate::system_names as names;

/// An id and a name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdAndName {
    /// The resource id.
    pub id: String,
    /// The display name.
    pub name: String,
}

impl IdAndName {
    /// Shorthand constructor.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        IdAndName {
            id: id.into(),
            name: name.into(),
        }
    }
}

/// An id and a release number (`Octopus.Release.Previous.*` and friends).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReleaseReference {
    /// `Releases-1`.
    pub id: String,
    /// The release version, `1.2.0`.
    pub number: String,
}

/// Git details of a release or runbook run from a version-controlled project.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GitReference {
    /// `main`.
    pub branch_name: Option<String>,
    /// The commit hash.
    pub commit_hash: Option<String>,
    /// `refs/heads/main`.
    pub git_ref: Option<String>,
    /// The tag name (runbook runs only).
    pub tag_name: Option<String>,
}

/// The release being deployed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReleaseInputs {
    /// `Releases-1`.
    pub id: String,
    /// The release version.
    pub number: String,
    /// Release notes (may be empty).
    pub notes: Option<String>,
    /// Creation time, already formatted.
    pub created: Option<String>,
    /// The release's channel name.
    pub channel_name: Option<String>,
    /// Custom fields by name.
    pub custom_fields: BTreeMap<String, String>,
    /// The previous release of the project.
    pub previous: Option<ReleaseReference>,
    /// The release previously deployed to this environment.
    pub previous_for_environment: Option<ReleaseReference>,
    /// The release currently deployed to this environment.
    pub current_for_environment: Option<ReleaseReference>,
    /// Git details, for version-controlled projects.
    pub git: Option<GitReference>,
}

/// A user (`Octopus.Deployment.CreatedBy.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInputs {
    /// `Users-1`.
    pub id: String,
    /// The login name.
    pub username: String,
    /// The display name.
    pub display_name: String,
    /// The email address.
    pub email_address: Option<String>,
}

/// The tenant of a tenanted deployment (`Octopus.Deployment.Tenant.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantInputs {
    /// `Tenants-1`.
    pub id: String,
    /// The tenant name.
    pub name: String,
    /// Canonical tag names, `Tag Set/Tag`.
    pub tags: Vec<String>,
}

/// The deployment (or, for runbook runs, only the parts that apply).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentInputs {
    /// `Deployments-1`.
    pub id: String,
    /// `Deploy to Production`.
    pub name: String,
    /// Comments entered at creation.
    pub comments: Option<String>,
    /// Creation time, already formatted.
    pub created: Option<String>,
    /// Who created it.
    pub created_by: Option<UserInputs>,
    /// The last successful deployment of this project to this environment (and tenant).
    pub previous_successful_id: Option<String>,
    /// `True`/`False`.
    pub force_package_download: Option<bool>,
    /// Machine ids deployed to.
    pub machine_ids: Vec<String>,
    /// Machine ids the user restricted the deployment to.
    pub specific_machine_ids: Vec<String>,
    /// Machine ids the user excluded.
    pub excluded_machine_ids: Vec<String>,
    /// Targets of the deployment, for `Octopus.Deployment.Targets[id].*`.
    pub targets: Vec<IdAndName>,
    /// The trigger that created it.
    pub trigger: Option<IdAndName>,
    /// The first error of a failing deployment, for steps that run on failure.
    pub error: Option<String>,
    /// Details of that error.
    pub error_detail: Option<String>,
    /// `Octopus.Deployment.Changes` (JSON, already serialised).
    pub changes_json: Option<String>,
    /// `Octopus.Deployment.ChangesMarkdown`.
    pub changes_markdown: Option<String>,
    /// `Octopus.Deployment.WorkItems` (JSON).
    pub work_items_json: Option<String>,
    /// `Octopus.Deployment.PackageBuildInformation` (JSON).
    pub package_build_information_json: Option<String>,
}

/// The environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvironmentInputs {
    /// `Environments-1`.
    pub id: String,
    /// `Production`.
    pub name: String,
    /// Position in the environment list.
    pub sort_order: Option<i64>,
    /// Machine ids per target tag, for `Octopus.Environment.MachinesInRole[tag]`.
    pub machines_in_role: BTreeMap<String, Vec<String>>,
}

/// The server task running the deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskInputs {
    /// `ServerTasks-1`.
    pub id: String,
    /// The task description.
    pub name: String,
    /// When it was queued to start, already formatted.
    pub queue_time: Option<String>,
    /// After when it must not start, already formatted.
    pub queue_time_expiry: Option<String>,
    /// Task arguments, for `Octopus.Task.Argument[name]`.
    pub arguments: BTreeMap<String, String>,
}

/// The deployment target the action runs on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MachineInputs {
    /// `Machines-1`.
    pub id: String,
    /// `Web01`.
    pub name: String,
    /// Target tags.
    pub roles: Vec<String>,
    /// Host name, when known.
    pub hostname: Option<String>,
}

/// How a step ended, for steps that run after it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepStatusInputs {
    /// Pending, Skipped, Abandoned, Canceled, Running, Succeeded or Failed.
    pub code: String,
    /// The error message, if it failed.
    pub error: Option<String>,
    /// The error detail.
    pub error_detail: Option<String>,
}

/// The step being run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepInputs {
    /// The step id.
    pub id: String,
    /// The step name.
    pub name: String,
    /// `1`, `2`, ...
    pub number: String,
    /// Status, when known.
    pub status: Option<StepStatusInputs>,
}

/// The action being run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionInputs {
    /// The action id.
    pub id: String,
    /// The action name (the step name for single-action steps).
    pub name: String,
    /// `1`, or `2.1` for a child action.
    pub number: String,
    /// Tags the step targets.
    pub target_roles: Vec<String>,
    /// Rolling window size, when set.
    pub max_parallelism: Option<u32>,
    /// `True` when the action is skipped.
    pub is_skipped: Option<bool>,
    /// The step template it uses: id and version.
    pub template: Option<(String, String)>,
    /// The action's error, for steps that run after it.
    pub status_error: Option<String>,
    /// The action's error detail.
    pub status_error_detail: Option<String>,
}

/// A runbook run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunbookRunInputs {
    /// `RunbookRuns-1`.
    pub id: String,
    /// The run's name.
    pub name: String,
    /// Creation time in server local time, already formatted.
    pub created: Option<String>,
    /// Creation time in UTC, already formatted.
    pub created_utc: Option<String>,
    /// Git details for version-controlled runbooks.
    pub git: Option<GitReference>,
}

/// A runbook snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunbookSnapshotInputs {
    /// `RunbookSnapshots-1`.
    pub id: String,
    /// The snapshot name.
    pub name: String,
    /// Snapshot notes.
    pub notes: Option<String>,
}

/// Links into the web UI; computed by the server, which knows its own URLs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebLinks {
    /// `https://cuttle.example.com`.
    pub base_url: Option<String>,
    /// The server URI agents and scripts should use.
    pub server_uri: Option<String>,
    /// Link to the project.
    pub project_link: Option<String>,
    /// Link to the release.
    pub release_link: Option<String>,
    /// Link to the deployment.
    pub deployment_link: Option<String>,
    /// Link to the runbook snapshot.
    pub runbook_snapshot_link: Option<String>,
    /// Link to the runbook run.
    pub runbook_run_link: Option<String>,
}

/// Everything the builder can turn into system variables; leave out what does not apply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SystemVariableInputs {
    /// The space.
    pub space: Option<IdAndName>,
    /// The project.
    pub project: Option<IdAndName>,
    /// The project's group.
    pub project_group: Option<IdAndName>,
    /// The environment.
    pub environment: Option<EnvironmentInputs>,
    /// The release (deployments only).
    pub release: Option<ReleaseInputs>,
    /// The deployment.
    pub deployment: Option<DeploymentInputs>,
    /// The tenant of a tenanted deployment.
    pub tenant: Option<TenantInputs>,
    /// The server task.
    pub task: Option<TaskInputs>,
    /// The target, when building for one target.
    pub machine: Option<MachineInputs>,
    /// The step, when building for one step.
    pub step: Option<StepInputs>,
    /// The action, when building for one action.
    pub action: Option<ActionInputs>,
    /// The worker pool the action runs on.
    pub worker_pool: Option<IdAndName>,
    /// The runbook (runbook runs only).
    pub runbook: Option<IdAndName>,
    /// The runbook run.
    pub runbook_run: Option<RunbookRunInputs>,
    /// The runbook snapshot.
    pub runbook_snapshot: Option<RunbookSnapshotInputs>,
    /// Web UI links.
    pub web: Option<WebLinks>,
}

/// Accumulates `(name, value)` pairs in emission order.
#[derive(Default)]
struct Emitter {
    pairs: Vec<(String, String)>,
}

impl Emitter {
    fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.pairs.push((name.into(), value.into()));
    }

    fn set_optional(&mut self, name: impl Into<String>, value: Option<&String>) {
        if let Some(value) = value {
            self.set(name, value.clone());
        }
    }

    fn set_list(&mut self, name: impl Into<String>, values: &[String]) {
        self.set(name, values.join(","));
    }
}

/// `True`/`False`, as .NET prints booleans and as Octopus scripts compare them.
fn dotnet_bool(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

/// Builds the system variables for `inputs`, in a stable order: space, project, environment,
/// release, deployment, tenant, task, runbook, machine, step, action, worker pool, web.
pub fn build_system_variables(inputs: &SystemVariableInputs) -> Vec<(String, String)> {
    let mut emitter = Emitter::default();
    if let Some(space) = &inputs.space {
        emitter.set(names::SPACE_ID, &space.id);
        emitter.set(names::SPACE_NAME, &space.name);
    }
    if let Some(project) = &inputs.project {
        emitter.set(names::PROJECT_ID, &project.id);
        emitter.set(names::PROJECT_NAME, &project.name);
    }
    if let Some(project_group) = &inputs.project_group {
        emitter.set(names::PROJECT_GROUP_ID, &project_group.id);
        emitter.set(names::PROJECT_GROUP_NAME, &project_group.name);
    }
    if let Some(environment) = &inputs.environment {
        emit_environment(&mut emitter, environment);
    }
    if let Some(release) = &inputs.release {
        emit_release(&mut emitter, release);
    }
    if let Some(deployment) = &inputs.deployment {
        emit_deployment(&mut emitter, deployment);
    }
    if let Some(tenant) = &inputs.tenant {
        emitter.set(names::DEPLOYMENT_TENANT_ID, &tenant.id);
        emitter.set(names::DEPLOYMENT_TENANT_NAME, &tenant.name);
        emitter.set_list(names::DEPLOYMENT_TENANT_TAGS, &tenant.tags);
    }
    if let Some(task) = &inputs.task {
        emitter.set(names::TASK_ID, &task.id);
        emitter.set(names::TASK_NAME, &task.name);
        emitter.set_optional(names::TASK_QUEUE_TIME, task.queue_time.as_ref());
        emitter.set_optional(
            names::TASK_QUEUE_TIME_EXPIRY,
            task.queue_time_expiry.as_ref(),
        );
        for (argument_name, value) in &task.arguments {
            emitter.set(names::task_argument(argument_name), value);
        }
    }
    emit_runbook(&mut emitter, inputs);
    if let Some(machine) = &inputs.machine {
        emitter.set(names::MACHINE_ID, &machine.id);
        emitter.set(names::MACHINE_NAME, &machine.name);
        emitter.set_list(names::MACHINE_ROLES, &machine.roles);
        emitter.set_optional(names::MACHINE_HOSTNAME, machine.hostname.as_ref());
    }
    if let Some(step) = &inputs.step {
        emit_step(&mut emitter, step);
    }
    if let Some(action) = &inputs.action {
        emit_action(&mut emitter, action);
    }
    if let Some(worker_pool) = &inputs.worker_pool {
        emitter.set(names::WORKER_POOL_ID, &worker_pool.id);
        emitter.set(names::WORKER_POOL_NAME, &worker_pool.name);
    }
    if let Some(web) = &inputs.web {
        emitter.set_optional(names::WEB_BASE_URL, web.base_url.as_ref());
        emitter.set_optional(names::WEB_SERVER_URI, web.server_uri.as_ref());
        emitter.set_optional(names::WEB_PROJECT_LINK, web.project_link.as_ref());
        emitter.set_optional(names::WEB_RELEASE_LINK, web.release_link.as_ref());
        emitter.set_optional(names::WEB_DEPLOYMENT_LINK, web.deployment_link.as_ref());
        emitter.set_optional(
            names::WEB_RUNBOOK_SNAPSHOT_LINK,
            web.runbook_snapshot_link.as_ref(),
        );
        emitter.set_optional(names::WEB_RUNBOOK_RUN_LINK, web.runbook_run_link.as_ref());
    }
    emitter.pairs
}

fn emit_environment(emitter: &mut Emitter, environment: &EnvironmentInputs) {
    emitter.set(names::ENVIRONMENT_ID, &environment.id);
    emitter.set(names::ENVIRONMENT_NAME, &environment.name);
    if let Some(sort_order) = environment.sort_order {
        emitter.set(names::ENVIRONMENT_SORT_ORDER, sort_order.to_string());
    }
    for (tag, machine_ids) in &environment.machines_in_role {
        emitter.set_list(names::environment_machines_in_role(tag), machine_ids);
    }
}

fn emit_release(emitter: &mut Emitter, release: &ReleaseInputs) {
    emitter.set(names::RELEASE_ID, &release.id);
    emitter.set(names::RELEASE_NUMBER, &release.number);
    emitter.set_optional(names::RELEASE_NOTES, release.notes.as_ref());
    emitter.set_optional(names::RELEASE_CREATED, release.created.as_ref());
    emitter.set_optional(names::RELEASE_CHANNEL_NAME, release.channel_name.as_ref());
    for (field_name, value) in &release.custom_fields {
        emitter.set(names::release_custom_field(field_name), value);
    }
    let references = [
        (
            &release.previous,
            names::RELEASE_PREVIOUS_ID,
            names::RELEASE_PREVIOUS_NUMBER,
        ),
        (
            &release.previous_for_environment,
            names::RELEASE_PREVIOUS_FOR_ENVIRONMENT_ID,
            names::RELEASE_PREVIOUS_FOR_ENVIRONMENT_NUMBER,
        ),
        (
            &release.current_for_environment,
            names::RELEASE_CURRENT_FOR_ENVIRONMENT_ID,
            names::RELEASE_CURRENT_FOR_ENVIRONMENT_NUMBER,
        ),
    ];
    for (reference, id_name, number_name) in references {
        if let Some(reference) = reference {
            emitter.set(id_name, &reference.id);
            emitter.set(number_name, &reference.number);
        }
    }
    if let Some(git) = &release.git {
        emitter.set_optional(names::RELEASE_GIT_BRANCH_NAME, git.branch_name.as_ref());
        emitter.set_optional(names::RELEASE_GIT_COMMIT_HASH, git.commit_hash.as_ref());
        emitter.set_optional(names::RELEASE_GIT_REF, git.git_ref.as_ref());
    }
}

fn emit_deployment(emitter: &mut Emitter, deployment: &DeploymentInputs) {
    emitter.set(names::DEPLOYMENT_ID, &deployment.id);
    emitter.set(names::DEPLOYMENT_NAME, &deployment.name);
    emitter.set_optional(names::DEPLOYMENT_COMMENTS, deployment.comments.as_ref());
    emitter.set_optional(names::DEPLOYMENT_CREATED, deployment.created.as_ref());
    if let Some(created_by) = &deployment.created_by {
        emitter.set(names::DEPLOYMENT_CREATED_BY_ID, &created_by.id);
        emitter.set(names::DEPLOYMENT_CREATED_BY_USERNAME, &created_by.username);
        emitter.set(
            names::DEPLOYMENT_CREATED_BY_DISPLAY_NAME,
            &created_by.display_name,
        );
        emitter.set_optional(
            names::DEPLOYMENT_CREATED_BY_EMAIL_ADDRESS,
            created_by.email_address.as_ref(),
        );
    }
    emitter.set_optional(
        names::DEPLOYMENT_PREVIOUS_SUCCESSFUL_ID,
        deployment.previous_successful_id.as_ref(),
    );
    if let Some(force_package_download) = deployment.force_package_download {
        emitter.set(
            names::DEPLOYMENT_FORCE_PACKAGE_DOWNLOAD,
            dotnet_bool(force_package_download),
        );
    }
    emitter.set_list(names::DEPLOYMENT_MACHINES, &deployment.machine_ids);
    emitter.set_list(
        names::DEPLOYMENT_SPECIFIC_MACHINES,
        &deployment.specific_machine_ids,
    );
    emitter.set_list(
        names::DEPLOYMENT_EXCLUDED_MACHINES,
        &deployment.excluded_machine_ids,
    );
    for target in &deployment.targets {
        emitter.set(names::deployment_target_id(&target.id), &target.id);
        emitter.set(names::deployment_target_name(&target.id), &target.name);
    }
    if let Some(trigger) = &deployment.trigger {
        emitter.set(names::DEPLOYMENT_TRIGGER_ID, &trigger.id);
        emitter.set(names::DEPLOYMENT_TRIGGER_NAME, &trigger.name);
    }
    emitter.set_optional(names::DEPLOYMENT_ERROR, deployment.error.as_ref());
    emitter.set_optional(
        names::DEPLOYMENT_ERROR_DETAIL,
        deployment.error_detail.as_ref(),
    );
    emitter.set_optional(names::DEPLOYMENT_CHANGES, deployment.changes_json.as_ref());
    emitter.set_optional(
        names::DEPLOYMENT_CHANGES_MARKDOWN,
        deployment.changes_markdown.as_ref(),
    );
    emitter.set_optional(
        names::DEPLOYMENT_WORK_ITEMS,
        deployment.work_items_json.as_ref(),
    );
    emitter.set_optional(
        names::DEPLOYMENT_PACKAGE_BUILD_INFORMATION,
        deployment.package_build_information_json.as_ref(),
    );
}

fn emit_runbook(emitter: &mut Emitter, inputs: &SystemVariableInputs) {
    if let Some(runbook) = &inputs.runbook {
        emitter.set(names::RUNBOOK_ID, &runbook.id);
        emitter.set(names::RUNBOOK_NAME, &runbook.name);
    }
    if let Some(run) = &inputs.runbook_run {
        emitter.set(names::RUNBOOK_RUN_ID, &run.id);
        emitter.set(names::RUNBOOK_RUN_NAME, &run.name);
        emitter.set_optional(names::RUNBOOK_RUN_CREATED, run.created.as_ref());
        emitter.set_optional(names::RUNBOOK_RUN_CREATED_UTC, run.created_utc.as_ref());
        if let Some(git) = &run.git {
            emitter.set_optional(names::RUNBOOK_RUN_GIT_BRANCH_NAME, git.branch_name.as_ref());
            emitter.set_optional(names::RUNBOOK_RUN_GIT_COMMIT_HASH, git.commit_hash.as_ref());
            emitter.set_optional(names::RUNBOOK_RUN_GIT_REF, git.git_ref.as_ref());
            emitter.set_optional(names::RUNBOOK_RUN_GIT_TAG_NAME, git.tag_name.as_ref());
        }
    }
    if let Some(snapshot) = &inputs.runbook_snapshot {
        emitter.set(names::RUNBOOK_SNAPSHOT_ID, &snapshot.id);
        emitter.set(names::RUNBOOK_SNAPSHOT_NAME, &snapshot.name);
        emitter.set_optional(names::RUNBOOK_SNAPSHOT_NOTES, snapshot.notes.as_ref());
    }
}

fn emit_step(emitter: &mut Emitter, step: &StepInputs) {
    emitter.set(names::STEP_ID, &step.id);
    emitter.set(names::STEP_NAME, &step.name);
    emitter.set(names::STEP_NUMBER, &step.number);
    if let Some(status) = &step.status {
        emitter.set(names::STEP_STATUS_CODE, &status.code);
        emitter.set_optional(names::STEP_STATUS_ERROR, status.error.as_ref());
        emitter.set_optional(
            names::STEP_STATUS_ERROR_DETAIL,
            status.error_detail.as_ref(),
        );
    }
}

fn emit_action(emitter: &mut Emitter, action: &ActionInputs) {
    emitter.set(names::ACTION_ID, &action.id);
    emitter.set(names::ACTION_NAME, &action.name);
    emitter.set(names::ACTION_NUMBER, &action.number);
    emitter.set_list(names::ACTION_TARGET_ROLES, &action.target_roles);
    if let Some(max_parallelism) = action.max_parallelism {
        emitter.set(names::ACTION_MAX_PARALLELISM, max_parallelism.to_string());
    }
    if let Some(is_skipped) = action.is_skipped {
        emitter.set(names::ACTION_IS_SKIPPED, dotnet_bool(is_skipped));
    }
    if let Some((template_id, template_version)) = &action.template {
        emitter.set(names::ACTION_TEMPLATE_ID, template_id);
        emitter.set(names::ACTION_TEMPLATE_VERSION, template_version);
    }
    emitter.set_optional(names::ACTION_STATUS_ERROR, action.status_error.as_ref());
    emitter.set_optional(
        names::ACTION_STATUS_ERROR_DETAIL,
        action.status_error_detail.as_ref(),
    );
}
