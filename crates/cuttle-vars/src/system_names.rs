//! The exact names of Octopus's `Octopus.*` system variables (spec C), so scripts written for
//! Octopus keep working unchanged.
//!
//! Fixed names are constants; names with an index (`Octopus.Action[Step].Output.Name`,
//! `Octopus.Release.CustomFields[name]`, ...) are built by functions so the bracket syntax is
//! written in one place. Names are case-insensitive when looked up, but we emit Octopus's
//! spelling because some tools print or diff them.
//!
//! Only the names live here; [`crate::system`] decides which to emit and with what values.

// Release.
/// `Octopus.Release.Id`
pub const RELEASE_ID: &str = "Octopus.Release.Id";
/// `Octopus.Release.Number`
pub const RELEASE_NUMBER: &str = "Octopus.Release.Number";
/// `Octopus.Release.Notes`
pub const RELEASE_NOTES: &str = "Octopus.Release.Notes";
/// `Octopus.Release.Created`
pub const RELEASE_CREATED: &str = "Octopus.Release.Created";
/// `Octopus.Release.Channel.Name`
pub const RELEASE_CHANNEL_NAME: &str = "Octopus.Release.Channel.Name";
/// `Octopus.Release.Previous.Id`
pub const RELEASE_PREVIOUS_ID: &str = "Octopus.Release.Previous.Id";
/// `Octopus.Release.Previous.Number`
pub const RELEASE_PREVIOUS_NUMBER: &str = "Octopus.Release.Previous.Number";
/// `Octopus.Release.PreviousForEnvironment.Id`
pub const RELEASE_PREVIOUS_FOR_ENVIRONMENT_ID: &str = "Octopus.Release.PreviousForEnvironment.Id";
/// `Octopus.Release.PreviousForEnvironment.Number`
pub const RELEASE_PREVIOUS_FOR_ENVIRONMENT_NUMBER: &str =
    "Octopus.Release.PreviousForEnvironment.Number";
/// `Octopus.Release.CurrentForEnvironment.Id`
pub const RELEASE_CURRENT_FOR_ENVIRONMENT_ID: &str = "Octopus.Release.CurrentForEnvironment.Id";
/// `Octopus.Release.CurrentForEnvironment.Number`
pub const RELEASE_CURRENT_FOR_ENVIRONMENT_NUMBER: &str =
    "Octopus.Release.CurrentForEnvironment.Number";
/// `Octopus.Release.Git.BranchName`
pub const RELEASE_GIT_BRANCH_NAME: &str = "Octopus.Release.Git.BranchName";
/// `Octopus.Release.Git.CommitHash`
pub const RELEASE_GIT_COMMIT_HASH: &str = "Octopus.Release.Git.CommitHash";
/// `Octopus.Release.Git.Ref`
pub const RELEASE_GIT_REF: &str = "Octopus.Release.Git.Ref";

/// `Octopus.Release.CustomFields[name]`
pub fn release_custom_field(field_name: &str) -> String {
    format!("Octopus.Release.CustomFields[{field_name}]")
}

// Deployment.
/// `Octopus.Deployment.Id`
pub const DEPLOYMENT_ID: &str = "Octopus.Deployment.Id";
/// `Octopus.Deployment.Name`
pub const DEPLOYMENT_NAME: &str = "Octopus.Deployment.Name";
/// `Octopus.Deployment.Comments`
pub const DEPLOYMENT_COMMENTS: &str = "Octopus.Deployment.Comments";
/// `Octopus.Deployment.Created`
pub const DEPLOYMENT_CREATED: &str = "Octopus.Deployment.Created";
/// `Octopus.Deployment.Error`
pub const DEPLOYMENT_ERROR: &str = "Octopus.Deployment.Error";
/// `Octopus.Deployment.ErrorDetail`
pub const DEPLOYMENT_ERROR_DETAIL: &str = "Octopus.Deployment.ErrorDetail";
/// `Octopus.Deployment.ForcePackageDownload`
pub const DEPLOYMENT_FORCE_PACKAGE_DOWNLOAD: &str = "Octopus.Deployment.ForcePackageDownload";
/// `Octopus.Deployment.CreatedBy.Id`
pub const DEPLOYMENT_CREATED_BY_ID: &str = "Octopus.Deployment.CreatedBy.Id";
/// `Octopus.Deployment.CreatedBy.Username`
pub const DEPLOYMENT_CREATED_BY_USERNAME: &str = "Octopus.Deployment.CreatedBy.Username";
/// `Octopus.Deployment.CreatedBy.DisplayName`
pub const DEPLOYMENT_CREATED_BY_DISPLAY_NAME: &str = "Octopus.Deployment.CreatedBy.DisplayName";
/// `Octopus.Deployment.CreatedBy.EmailAddress`
pub const DEPLOYMENT_CREATED_BY_EMAIL_ADDRESS: &str = "Octopus.Deployment.CreatedBy.EmailAddress";
/// `Octopus.Deployment.PreviousSuccessful.Id`
pub const DEPLOYMENT_PREVIOUS_SUCCESSFUL_ID: &str = "Octopus.Deployment.PreviousSuccessful.Id";
/// `Octopus.Deployment.Machines`: comma list of the machine ids deployed to.
pub const DEPLOYMENT_MACHINES: &str = "Octopus.Deployment.Machines";
/// `Octopus.Deployment.SpecificMachines`
pub const DEPLOYMENT_SPECIFIC_MACHINES: &str = "Octopus.Deployment.SpecificMachines";
/// `Octopus.Deployment.ExcludedMachines`
pub const DEPLOYMENT_EXCLUDED_MACHINES: &str = "Octopus.Deployment.ExcludedMachines";
/// `Octopus.Deployment.Tenant.Id`
pub const DEPLOYMENT_TENANT_ID: &str = "Octopus.Deployment.Tenant.Id";
/// `Octopus.Deployment.Tenant.Name`
pub const DEPLOYMENT_TENANT_NAME: &str = "Octopus.Deployment.Tenant.Name";
/// `Octopus.Deployment.Tenant.Tags`: comma list of canonical tag names.
pub const DEPLOYMENT_TENANT_TAGS: &str = "Octopus.Deployment.Tenant.Tags";
/// `Octopus.Deployment.Trigger.Id`
pub const DEPLOYMENT_TRIGGER_ID: &str = "Octopus.Deployment.Trigger.Id";
/// `Octopus.Deployment.Trigger.Name`
pub const DEPLOYMENT_TRIGGER_NAME: &str = "Octopus.Deployment.Trigger.Name";
/// `Octopus.Deployment.Changes` (JSON)
pub const DEPLOYMENT_CHANGES: &str = "Octopus.Deployment.Changes";
/// `Octopus.Deployment.ChangesMarkdown`
pub const DEPLOYMENT_CHANGES_MARKDOWN: &str = "Octopus.Deployment.ChangesMarkdown";
/// `Octopus.Deployment.WorkItems` (JSON)
pub const DEPLOYMENT_WORK_ITEMS: &str = "Octopus.Deployment.WorkItems";
/// `Octopus.Deployment.PackageBuildInformation` (JSON)
pub const DEPLOYMENT_PACKAGE_BUILD_INFORMATION: &str = "Octopus.Deployment.PackageBuildInformation";

/// `Octopus.Deployment.Targets[id].Id`
pub fn deployment_target_id(machine_id: &str) -> String {
    format!("Octopus.Deployment.Targets[{machine_id}].Id")
}

/// `Octopus.Deployment.Targets[id].Name`
pub fn deployment_target_name(machine_id: &str) -> String {
    format!("Octopus.Deployment.Targets[{machine_id}].Name")
}

// Environment, machine, project, space, task, worker pool, web.
/// `Octopus.Environment.Id`
pub const ENVIRONMENT_ID: &str = "Octopus.Environment.Id";
/// `Octopus.Environment.Name`
pub const ENVIRONMENT_NAME: &str = "Octopus.Environment.Name";
/// `Octopus.Environment.SortOrder`
pub const ENVIRONMENT_SORT_ORDER: &str = "Octopus.Environment.SortOrder";

/// `Octopus.Environment.MachinesInRole[tag]`: comma list of machine ids with the tag.
pub fn environment_machines_in_role(tag: &str) -> String {
    format!("Octopus.Environment.MachinesInRole[{tag}]")
}

/// `Octopus.Machine.Id`
pub const MACHINE_ID: &str = "Octopus.Machine.Id";
/// `Octopus.Machine.Name`
pub const MACHINE_NAME: &str = "Octopus.Machine.Name";
/// `Octopus.Machine.Roles`: comma list of the machine's target tags.
pub const MACHINE_ROLES: &str = "Octopus.Machine.Roles";
/// `Octopus.Machine.Hostname`
pub const MACHINE_HOSTNAME: &str = "Octopus.Machine.Hostname";
/// `Octopus.Project.Id`
pub const PROJECT_ID: &str = "Octopus.Project.Id";
/// `Octopus.Project.Name`
pub const PROJECT_NAME: &str = "Octopus.Project.Name";
/// `Octopus.ProjectGroup.Id`
pub const PROJECT_GROUP_ID: &str = "Octopus.ProjectGroup.Id";
/// `Octopus.ProjectGroup.Name`
pub const PROJECT_GROUP_NAME: &str = "Octopus.ProjectGroup.Name";
/// `Octopus.Space.Id`
pub const SPACE_ID: &str = "Octopus.Space.Id";
/// `Octopus.Space.Name`
pub const SPACE_NAME: &str = "Octopus.Space.Name";
/// `Octopus.Task.Id`
pub const TASK_ID: &str = "Octopus.Task.Id";
/// `Octopus.Task.Name`
pub const TASK_NAME: &str = "Octopus.Task.Name";
/// `Octopus.Task.QueueTime`
pub const TASK_QUEUE_TIME: &str = "Octopus.Task.QueueTime";
/// `Octopus.Task.QueueTimeExpiry`
pub const TASK_QUEUE_TIME_EXPIRY: &str = "Octopus.Task.QueueTimeExpiry";

/// `Octopus.Task.Argument[name]`
pub fn task_argument(argument_name: &str) -> String {
    format!("Octopus.Task.Argument[{argument_name}]")
}

/// `Octopus.WorkerPool.Id`
pub const WORKER_POOL_ID: &str = "Octopus.WorkerPool.Id";
/// `Octopus.WorkerPool.Name`
pub const WORKER_POOL_NAME: &str = "Octopus.WorkerPool.Name";
/// `Octopus.Web.BaseUrl`
pub const WEB_BASE_URL: &str = "Octopus.Web.BaseUrl";
/// `Octopus.Web.ServerUri`
pub const WEB_SERVER_URI: &str = "Octopus.Web.ServerUri";
/// `Octopus.Web.ProjectLink`
pub const WEB_PROJECT_LINK: &str = "Octopus.Web.ProjectLink";
/// `Octopus.Web.ReleaseLink`
pub const WEB_RELEASE_LINK: &str = "Octopus.Web.ReleaseLink";
/// `Octopus.Web.DeploymentLink`
pub const WEB_DEPLOYMENT_LINK: &str = "Octopus.Web.DeploymentLink";
/// `Octopus.Web.RunbookSnapshotLink`
pub const WEB_RUNBOOK_SNAPSHOT_LINK: &str = "Octopus.Web.RunbookSnapshotLink";
/// `Octopus.Web.RunbookRunLink`
pub const WEB_RUNBOOK_RUN_LINK: &str = "Octopus.Web.RunbookRunLink";

// Action and step.
/// `Octopus.Action.Id`
pub const ACTION_ID: &str = "Octopus.Action.Id";
/// `Octopus.Action.Name`
pub const ACTION_NAME: &str = "Octopus.Action.Name";
/// `Octopus.Action.Number`
pub const ACTION_NUMBER: &str = "Octopus.Action.Number";
/// `Octopus.Action.IsSkipped`
pub const ACTION_IS_SKIPPED: &str = "Octopus.Action.IsSkipped";
/// `Octopus.Action.TargetRoles`: comma list of the tags the step targets.
pub const ACTION_TARGET_ROLES: &str = "Octopus.Action.TargetRoles";
/// `Octopus.Action.MaxParallelism`
pub const ACTION_MAX_PARALLELISM: &str = "Octopus.Action.MaxParallelism";
/// `Octopus.Action.Template.Id`
pub const ACTION_TEMPLATE_ID: &str = "Octopus.Action.Template.Id";
/// `Octopus.Action.Template.Version`
pub const ACTION_TEMPLATE_VERSION: &str = "Octopus.Action.Template.Version";
/// `Octopus.Action.Status.Error`
pub const ACTION_STATUS_ERROR: &str = "Octopus.Action.Status.Error";
/// `Octopus.Action.Status.ErrorDetail`
pub const ACTION_STATUS_ERROR_DETAIL: &str = "Octopus.Action.Status.ErrorDetail";
/// `Octopus.Step.Id`
pub const STEP_ID: &str = "Octopus.Step.Id";
/// `Octopus.Step.Name`
pub const STEP_NAME: &str = "Octopus.Step.Name";
/// `Octopus.Step.Number`
pub const STEP_NUMBER: &str = "Octopus.Step.Number";
/// `Octopus.Step.Status.Code`: Pending, Skipped, Abandoned, Canceled, Running, Succeeded or
/// Failed.
pub const STEP_STATUS_CODE: &str = "Octopus.Step.Status.Code";
/// `Octopus.Step.Status.Error`
pub const STEP_STATUS_ERROR: &str = "Octopus.Step.Status.Error";
/// `Octopus.Step.Status.ErrorDetail`
pub const STEP_STATUS_ERROR_DETAIL: &str = "Octopus.Step.Status.ErrorDetail";

// Runbooks.
/// `Octopus.Runbook.Id`
pub const RUNBOOK_ID: &str = "Octopus.Runbook.Id";
/// `Octopus.Runbook.Name`
pub const RUNBOOK_NAME: &str = "Octopus.Runbook.Name";
/// `Octopus.RunbookRun.Id`
pub const RUNBOOK_RUN_ID: &str = "Octopus.RunbookRun.Id";
/// `Octopus.RunbookRun.Name`
pub const RUNBOOK_RUN_NAME: &str = "Octopus.RunbookRun.Name";
/// `Octopus.RunbookRun.Created`
pub const RUNBOOK_RUN_CREATED: &str = "Octopus.RunbookRun.Created";
/// `Octopus.RunbookRun.CreatedUtc`
pub const RUNBOOK_RUN_CREATED_UTC: &str = "Octopus.RunbookRun.CreatedUtc";
/// `Octopus.RunbookRun.Git.BranchName`
pub const RUNBOOK_RUN_GIT_BRANCH_NAME: &str = "Octopus.RunbookRun.Git.BranchName";
/// `Octopus.RunbookRun.Git.CommitHash`
pub const RUNBOOK_RUN_GIT_COMMIT_HASH: &str = "Octopus.RunbookRun.Git.CommitHash";
/// `Octopus.RunbookRun.Git.Ref`
pub const RUNBOOK_RUN_GIT_REF: &str = "Octopus.RunbookRun.Git.Ref";
/// `Octopus.RunbookRun.Git.TagName`
pub const RUNBOOK_RUN_GIT_TAG_NAME: &str = "Octopus.RunbookRun.Git.TagName";
/// `Octopus.RunbookSnapshot.Id`
pub const RUNBOOK_SNAPSHOT_ID: &str = "Octopus.RunbookSnapshot.Id";
/// `Octopus.RunbookSnapshot.Name`
pub const RUNBOOK_SNAPSHOT_NAME: &str = "Octopus.RunbookSnapshot.Name";
/// `Octopus.RunbookSnapshot.Notes`
pub const RUNBOOK_SNAPSHOT_NOTES: &str = "Octopus.RunbookSnapshot.Notes";

// Output variables (B6).
/// `Octopus.Action[action].Output.name`: what later steps read; per target it is scoped to
/// the machine that set it.
pub fn action_output(action_name: &str, output_name: &str) -> String {
    format!("Octopus.Action[{action_name}].Output.{output_name}")
}

/// `Octopus.Action[action].Output[machine].name`: one target's value, by machine *name*.
pub fn action_machine_output(action_name: &str, machine_name: &str, output_name: &str) -> String {
    format!("Octopus.Action[{action_name}].Output[{machine_name}].{output_name}")
}

/// `Octopus.Action[parent].Output.Deployment[child step].name`: an output of a child
/// deployment's step, exposed by a "Deploy a release" step.
pub fn child_deployment_output(
    parent_action_name: &str,
    child_step_name: &str,
    output_name: &str,
) -> String {
    format!(
        "Octopus.Action[{parent_action_name}].Output.Deployment[{child_step_name}].{output_name}"
    )
}

/// Output name set by package deployments: `Package.InstallationDirectoryPath`, read as
/// `Octopus.Action[X].Output.Package.InstallationDirectoryPath`.
pub const OUTPUT_PACKAGE_INSTALLATION_DIRECTORY_PATH: &str = "Package.InstallationDirectoryPath";
/// Output name set by a manual intervention: `Manual.Notes`.
pub const OUTPUT_MANUAL_NOTES: &str = "Manual.Notes";
/// Output name set by a manual intervention: `Manual.Approved`.
pub const OUTPUT_MANUAL_APPROVED: &str = "Manual.Approved";
/// Output name set by a manual intervention: `Manual.ResponsibleUser.Id`.
pub const OUTPUT_MANUAL_RESPONSIBLE_USER_ID: &str = "Manual.ResponsibleUser.Id";
/// Output name set by a manual intervention: `Manual.ResponsibleUser.Username`.
pub const OUTPUT_MANUAL_RESPONSIBLE_USER_USERNAME: &str = "Manual.ResponsibleUser.Username";
/// Output name set by a manual intervention: `Manual.ResponsibleUser.DisplayName`.
pub const OUTPUT_MANUAL_RESPONSIBLE_USER_DISPLAY_NAME: &str = "Manual.ResponsibleUser.DisplayName";
/// Output name set by a manual intervention: `Manual.ResponsibleUser.EmailAddress`.
pub const OUTPUT_MANUAL_RESPONSIBLE_USER_EMAIL_ADDRESS: &str =
    "Manual.ResponsibleUser.EmailAddress";
/// Setting this output to `True` ends the action early.
pub const SKIP_REMAINING_CONVENTIONS: &str = "Octopus.Action.SkipRemainingConventions";

// Loop-only and user-set switches: never emitted by the builder, named here so other crates
// read them under the right name.
/// `Octopus.Template.Each.Index` (set by `#{each}` inside `cuttle-template`).
pub const TEMPLATE_EACH_INDEX: &str = "Octopus.Template.Each.Index";
/// `Octopus.Template.Each.First`
pub const TEMPLATE_EACH_FIRST: &str = "Octopus.Template.Each.First";
/// `Octopus.Template.Each.Last`
pub const TEMPLATE_EACH_LAST: &str = "Octopus.Template.Each.Last";
/// `OctopusPrintVariables`
pub const PRINT_VARIABLES: &str = "OctopusPrintVariables";
/// `OctopusPrintEvaluatedVariables`
pub const PRINT_EVALUATED_VARIABLES: &str = "OctopusPrintEvaluatedVariables";
/// `OctopusShouldFailDeploymentOnSubstitutionFails`
pub const SHOULD_FAIL_DEPLOYMENT_ON_SUBSTITUTION_FAILS: &str =
    "OctopusShouldFailDeploymentOnSubstitutionFails";
/// `OctopusBypassDeploymentMutex`
pub const BYPASS_DEPLOYMENT_MUTEX: &str = "OctopusBypassDeploymentMutex";
/// `Octopus.Action.Package.IgnoreVariableReplacementErrors`
pub const PACKAGE_IGNORE_VARIABLE_REPLACEMENT_ERRORS: &str =
    "Octopus.Action.Package.IgnoreVariableReplacementErrors";
/// `Octopus.Action.SubstituteInFiles.TargetFiles`
pub const SUBSTITUTE_IN_FILES_TARGET_FILES: &str = "Octopus.Action.SubstituteInFiles.TargetFiles";
/// `Octopus.Action.SubstituteInFiles.OutputEncoding`
pub const SUBSTITUTE_IN_FILES_OUTPUT_ENCODING: &str =
    "Octopus.Action.SubstituteInFiles.OutputEncoding";
/// `Octopus.Action.SubstituteInFiles.EnableNoMatchWarning`
pub const SUBSTITUTE_IN_FILES_ENABLE_NO_MATCH_WARNING: &str =
    "Octopus.Action.SubstituteInFiles.EnableNoMatchWarning";
/// `Octopus.Action.Package.JsonConfigurationVariablesTargets`
pub const PACKAGE_JSON_CONFIGURATION_VARIABLES_TARGETS: &str =
    "Octopus.Action.Package.JsonConfigurationVariablesTargets";
/// `Octopus.Action.StructuredConfigurationFallbackFlag`
pub const STRUCTURED_CONFIGURATION_FALLBACK_FLAG: &str =
    "Octopus.Action.StructuredConfigurationFallbackFlag";
/// `Octopus.Action.EnabledFeatures`: comma list of `Octopus.Features.*`.
pub const ACTION_ENABLED_FEATURES: &str = "Octopus.Action.EnabledFeatures";
/// `Octopus.Task.ConcurrencyTag`
pub const TASK_CONCURRENCY_TAG: &str = "Octopus.Task.ConcurrencyTag";
/// `Octopus.Acquire.MaxParallelism`
pub const ACQUIRE_MAX_PARALLELISM: &str = "Octopus.Acquire.MaxParallelism";
