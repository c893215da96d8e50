//! System variables (spec C): the builder emits Octopus's exact names.
//!
//! The expected names below are copied from spec section C by hand, not built with the
//! crate's own constants, so a typo in `system_names` fails here.

use std::collections::BTreeMap;

use cuttle_vars::system::{
    ActionInputs, DeploymentInputs, EnvironmentInputs, GitReference, IdAndName, MachineInputs,
    ReleaseInputs, ReleaseReference, RunbookRunInputs, RunbookSnapshotInputs, StepInputs,
    StepStatusInputs, TaskInputs, TenantInputs, UserInputs, WebLinks,
};
use cuttle_vars::{
    ActionScope, DeploymentScope, ScopeContext, ScopeField, SystemVariableInputs, TargetScope,
    Variable, VariableSet, VariableSources, build_system_variables, system_names,
};

fn full_inputs() -> SystemVariableInputs {
    SystemVariableInputs {
        space: Some(IdAndName::new("Spaces-1", "Default")),
        project: Some(IdAndName::new("Projects-1", "Web App")),
        project_group: Some(IdAndName::new("ProjectGroups-1", "All")),
        environment: Some(EnvironmentInputs {
            id: "Environments-3".to_string(),
            name: "Production".to_string(),
            sort_order: Some(2),
            machines_in_role: BTreeMap::from([(
                "web".to_string(),
                vec!["Machines-1".to_string(), "Machines-2".to_string()],
            )]),
        }),
        release: Some(ReleaseInputs {
            id: "Releases-9".to_string(),
            number: "1.2.0".to_string(),
            notes: Some("Fixes".to_string()),
            created: Some("2026-01-02T03:04:05Z".to_string()),
            channel_name: Some("Default".to_string()),
            custom_fields: BTreeMap::from([("Ticket".to_string(), "CHG-1".to_string())]),
            previous: Some(ReleaseReference {
                id: "Releases-8".to_string(),
                number: "1.1.0".to_string(),
            }),
            previous_for_environment: Some(ReleaseReference {
                id: "Releases-7".to_string(),
                number: "1.0.0".to_string(),
            }),
            current_for_environment: Some(ReleaseReference {
                id: "Releases-7".to_string(),
                number: "1.0.0".to_string(),
            }),
            git: Some(GitReference {
                branch_name: Some("main".to_string()),
                commit_hash: Some("abc123".to_string()),
                git_ref: Some("refs/heads/main".to_string()),
                tag_name: None,
            }),
        }),
        deployment: Some(DeploymentInputs {
            id: "Deployments-5".to_string(),
            name: "Deploy to Production".to_string(),
            comments: Some("go".to_string()),
            created: Some("2026-01-02T04:00:00Z".to_string()),
            created_by: Some(UserInputs {
                id: "Users-1".to_string(),
                username: "admin".to_string(),
                display_name: "Admin".to_string(),
                email_address: Some("admin@example.com".to_string()),
            }),
            previous_successful_id: Some("Deployments-4".to_string()),
            force_package_download: Some(false),
            machine_ids: vec!["Machines-1".to_string(), "Machines-2".to_string()],
            specific_machine_ids: vec![],
            excluded_machine_ids: vec!["Machines-3".to_string()],
            targets: vec![IdAndName::new("Machines-1", "Web01")],
            trigger: Some(IdAndName::new("ProjectTriggers-1", "Nightly")),
            error: Some("boom".to_string()),
            error_detail: Some("stack".to_string()),
            changes_json: Some("[]".to_string()),
            changes_markdown: Some("".to_string()),
            work_items_json: Some("[]".to_string()),
            package_build_information_json: Some("[]".to_string()),
        }),
        tenant: Some(TenantInputs {
            id: "Tenants-1".to_string(),
            name: "Acme".to_string(),
            tags: vec!["Tier/Gold".to_string(), "Region/EU".to_string()],
        }),
        task: Some(TaskInputs {
            id: "ServerTasks-11".to_string(),
            name: "Deploy Web App release 1.2.0 to Production".to_string(),
            queue_time: Some("2026-01-02T04:00:00Z".to_string()),
            queue_time_expiry: Some("2026-01-02T05:00:00Z".to_string()),
            arguments: BTreeMap::from([("DeploymentId".to_string(), "Deployments-5".to_string())]),
        }),
        machine: Some(MachineInputs {
            id: "Machines-1".to_string(),
            name: "Web01".to_string(),
            roles: vec!["web".to_string(), "app".to_string()],
            hostname: Some("web01.internal".to_string()),
        }),
        step: Some(StepInputs {
            id: "DeploymentSteps-1".to_string(),
            name: "Deploy".to_string(),
            number: "1".to_string(),
            status: Some(StepStatusInputs {
                code: "Running".to_string(),
                error: None,
                error_detail: None,
            }),
        }),
        action: Some(ActionInputs {
            id: "DeploymentActions-1".to_string(),
            name: "Deploy".to_string(),
            number: "1".to_string(),
            target_roles: vec!["web".to_string()],
            max_parallelism: Some(2),
            is_skipped: Some(false),
            template: Some(("ActionTemplates-1".to_string(), "3".to_string())),
            status_error: None,
            status_error_detail: None,
        }),
        worker_pool: Some(IdAndName::new("WorkerPools-1", "Default Worker Pool")),
        runbook: Some(IdAndName::new("Runbooks-1", "Restart")),
        runbook_run: Some(RunbookRunInputs {
            id: "RunbookRuns-1".to_string(),
            name: "Restart run".to_string(),
            created: Some("c".to_string()),
            created_utc: Some("cu".to_string()),
            git: Some(GitReference {
                branch_name: Some("main".to_string()),
                commit_hash: Some("def".to_string()),
                git_ref: Some("refs/heads/main".to_string()),
                tag_name: Some("v1".to_string()),
            }),
        }),
        runbook_snapshot: Some(RunbookSnapshotInputs {
            id: "RunbookSnapshots-1".to_string(),
            name: "Snapshot 1".to_string(),
            notes: Some("n".to_string()),
        }),
        web: Some(WebLinks {
            base_url: Some("https://cuttle.example.com".to_string()),
            server_uri: Some("https://cuttle.example.com".to_string()),
            project_link: Some("/app#/Spaces-1/projects/Projects-1".to_string()),
            release_link: Some("/app#/Spaces-1/releases/Releases-9".to_string()),
            deployment_link: Some("/app#/Spaces-1/deployments/Deployments-5".to_string()),
            runbook_snapshot_link: Some("/s".to_string()),
            runbook_run_link: Some("/r".to_string()),
        }),
    }
}

/// Every name spec C lists that the builder is responsible for, written out literally.
const SPEC_C_NAMES: &[&str] = &[
    "Octopus.Release.Id",
    "Octopus.Release.Number",
    "Octopus.Release.Notes",
    "Octopus.Release.Created",
    "Octopus.Release.Channel.Name",
    "Octopus.Release.CustomFields[Ticket]",
    "Octopus.Release.Previous.Id",
    "Octopus.Release.Previous.Number",
    "Octopus.Release.PreviousForEnvironment.Id",
    "Octopus.Release.PreviousForEnvironment.Number",
    "Octopus.Release.CurrentForEnvironment.Id",
    "Octopus.Release.CurrentForEnvironment.Number",
    "Octopus.Release.Git.BranchName",
    "Octopus.Release.Git.CommitHash",
    "Octopus.Release.Git.Ref",
    "Octopus.Deployment.Id",
    "Octopus.Deployment.Name",
    "Octopus.Deployment.Comments",
    "Octopus.Deployment.Created",
    "Octopus.Deployment.Error",
    "Octopus.Deployment.ErrorDetail",
    "Octopus.Deployment.ForcePackageDownload",
    "Octopus.Deployment.CreatedBy.Id",
    "Octopus.Deployment.CreatedBy.Username",
    "Octopus.Deployment.CreatedBy.DisplayName",
    "Octopus.Deployment.CreatedBy.EmailAddress",
    "Octopus.Deployment.PreviousSuccessful.Id",
    "Octopus.Deployment.Machines",
    "Octopus.Deployment.SpecificMachines",
    "Octopus.Deployment.ExcludedMachines",
    "Octopus.Deployment.Tenant.Id",
    "Octopus.Deployment.Tenant.Name",
    "Octopus.Deployment.Tenant.Tags",
    "Octopus.Deployment.Trigger.Id",
    "Octopus.Deployment.Trigger.Name",
    "Octopus.Deployment.Targets[Machines-1].Id",
    "Octopus.Deployment.Targets[Machines-1].Name",
    "Octopus.Deployment.Changes",
    "Octopus.Deployment.WorkItems",
    "Octopus.Deployment.PackageBuildInformation",
    "Octopus.Deployment.ChangesMarkdown",
    "Octopus.Environment.Id",
    "Octopus.Environment.Name",
    "Octopus.Environment.SortOrder",
    "Octopus.Environment.MachinesInRole[web]",
    "Octopus.Machine.Id",
    "Octopus.Machine.Name",
    "Octopus.Machine.Roles",
    "Octopus.Machine.Hostname",
    "Octopus.Project.Id",
    "Octopus.Project.Name",
    "Octopus.ProjectGroup.Id",
    "Octopus.ProjectGroup.Name",
    "Octopus.Space.Id",
    "Octopus.Space.Name",
    "Octopus.Task.Id",
    "Octopus.Task.Name",
    "Octopus.Task.QueueTime",
    "Octopus.Task.QueueTimeExpiry",
    "Octopus.Task.Argument[DeploymentId]",
    "Octopus.WorkerPool.Id",
    "Octopus.WorkerPool.Name",
    "Octopus.Web.BaseUrl",
    "Octopus.Web.ServerUri",
    "Octopus.Web.ProjectLink",
    "Octopus.Web.ReleaseLink",
    "Octopus.Web.DeploymentLink",
    "Octopus.Action.Id",
    "Octopus.Action.Name",
    "Octopus.Action.Number",
    "Octopus.Action.IsSkipped",
    "Octopus.Action.TargetRoles",
    "Octopus.Action.MaxParallelism",
    "Octopus.Action.Template.Id",
    "Octopus.Action.Template.Version",
    "Octopus.Step.Id",
    "Octopus.Step.Name",
    "Octopus.Step.Number",
    "Octopus.Step.Status.Code",
    "Octopus.Runbook.Id",
    "Octopus.Runbook.Name",
    "Octopus.RunbookRun.Id",
    "Octopus.RunbookRun.Name",
    "Octopus.RunbookRun.Created",
    "Octopus.RunbookRun.CreatedUtc",
    "Octopus.RunbookRun.Git.BranchName",
    "Octopus.RunbookRun.Git.CommitHash",
    "Octopus.RunbookRun.Git.Ref",
    "Octopus.RunbookRun.Git.TagName",
    "Octopus.RunbookSnapshot.Id",
    "Octopus.RunbookSnapshot.Name",
    "Octopus.RunbookSnapshot.Notes",
    "Octopus.Web.RunbookSnapshotLink",
    "Octopus.Web.RunbookRunLink",
];

fn as_map(pairs: &[(String, String)]) -> BTreeMap<&str, &str> {
    pairs
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

#[test]
fn the_builder_emits_exactly_the_spec_c_names() {
    let pairs = build_system_variables(&full_inputs());
    let emitted = as_map(&pairs);
    let missing: Vec<&&str> = SPEC_C_NAMES
        .iter()
        .filter(|name| !emitted.contains_key(**name))
        .collect();
    assert!(missing.is_empty(), "not emitted: {missing:?}");
    let unexpected: Vec<&&str> = emitted
        .keys()
        .filter(|name| !SPEC_C_NAMES.contains(name))
        .collect();
    assert!(unexpected.is_empty(), "not in spec C: {unexpected:?}");
    assert_eq!(pairs.len(), emitted.len(), "no name is emitted twice");
}

#[test]
fn values_follow_octopus_formats() {
    let pairs = build_system_variables(&full_inputs());
    let emitted = as_map(&pairs);
    assert_eq!(emitted["Octopus.Machine.Roles"], "web,app");
    assert_eq!(emitted["Octopus.Action.TargetRoles"], "web");
    assert_eq!(
        emitted["Octopus.Deployment.Tenant.Tags"],
        "Tier/Gold,Region/EU"
    );
    assert_eq!(
        emitted["Octopus.Deployment.Machines"],
        "Machines-1,Machines-2"
    );
    assert_eq!(emitted["Octopus.Deployment.SpecificMachines"], "");
    assert_eq!(
        emitted["Octopus.Environment.MachinesInRole[web]"],
        "Machines-1,Machines-2"
    );
    assert_eq!(emitted["Octopus.Deployment.ForcePackageDownload"], "False");
    assert_eq!(emitted["Octopus.Action.IsSkipped"], "False");
    assert_eq!(emitted["Octopus.Environment.SortOrder"], "2");
    assert_eq!(emitted["Octopus.Action.MaxParallelism"], "2");
    assert_eq!(emitted["Octopus.Release.Number"], "1.2.0");
}

#[test]
fn the_minimum_set_needs_only_the_minimum_inputs_and_absent_inputs_emit_nothing() {
    let inputs = SystemVariableInputs {
        project: Some(IdAndName::new("Projects-1", "Web App")),
        environment: Some(EnvironmentInputs {
            id: "Environments-1".to_string(),
            name: "Dev".to_string(),
            ..EnvironmentInputs::default()
        }),
        ..SystemVariableInputs::default()
    };
    let pairs = build_system_variables(&inputs);
    assert_eq!(
        pairs,
        [
            ("Octopus.Project.Id".to_string(), "Projects-1".to_string()),
            ("Octopus.Project.Name".to_string(), "Web App".to_string()),
            (
                "Octopus.Environment.Id".to_string(),
                "Environments-1".to_string()
            ),
            ("Octopus.Environment.Name".to_string(), "Dev".to_string()),
        ]
    );
    assert!(build_system_variables(&SystemVariableInputs::default()).is_empty());
}

#[test]
fn indexed_name_helpers_match_spec_c_and_b6() {
    assert_eq!(
        system_names::action_output("StepA", "TestResult"),
        "Octopus.Action[StepA].Output.TestResult"
    );
    assert_eq!(
        system_names::action_machine_output("StepA", "Web01", "TestResult"),
        "Octopus.Action[StepA].Output[Web01].TestResult"
    );
    assert_eq!(
        system_names::child_deployment_output("Parent", "Child Step", "Var"),
        "Octopus.Action[Parent].Output.Deployment[Child Step].Var"
    );
    assert_eq!(
        system_names::action_output(
            "X",
            system_names::OUTPUT_PACKAGE_INSTALLATION_DIRECTORY_PATH
        ),
        "Octopus.Action[X].Output.Package.InstallationDirectoryPath"
    );
    assert_eq!(
        system_names::action_output(
            "X",
            system_names::OUTPUT_MANUAL_RESPONSIBLE_USER_EMAIL_ADDRESS
        ),
        "Octopus.Action[X].Output.Manual.ResponsibleUser.EmailAddress"
    );
    assert_eq!(
        system_names::SKIP_REMAINING_CONVENTIONS,
        "Octopus.Action.SkipRemainingConventions"
    );
}

#[test]
fn system_variables_override_same_named_user_values_everywhere() {
    let user_set = VariableSet {
        variables: vec![
            Variable::new("Octopus.Machine.Name", "spoofed")
                .scoped(ScopeField::Machine, &["Machines-1"])
                .scoped(ScopeField::Action, &["DeploymentActions-1"]),
            Variable::new("Custom", "mine"),
        ],
        ..VariableSet::default()
    };
    let mut sources = VariableSources::new();
    sources
        .add_project_variables(&user_set)
        .add_system_variables(build_system_variables(&full_inputs()));
    let context = ScopeContext::for_action(
        DeploymentScope::default(),
        ActionScope {
            action_id: "DeploymentActions-1".to_string(),
            ..ActionScope::default()
        },
        Some(TargetScope {
            machine_id: "Machines-1".to_string(),
            tags: vec![],
        }),
    );
    let resolution = sources.resolve(&context);
    assert_eq!(
        resolution.variables.value("Octopus.Machine.Name"),
        Some("Web01")
    );
    assert_eq!(resolution.variables.value("Custom"), Some("mine"));
    assert!(resolution.warnings.is_empty());
}
