//! Projects: the list, creating one, the overview (releases against environments), the
//! deployment process editor, the variables editor, channels and settings.

use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::Field as _;
use super::layout::{
    Section, check_field, embedded_json, form_errors, heading, options_of, page, select_field,
    state_class, tab_bar, text_area, text_field, time,
};
use super::{PageError, PortalState, Viewer};

pub(crate) fn routes() -> axum::Router<PortalState> {
    axum::Router::new()
        .route("/app/{space_id}/projects", get(list))
        .route("/app/{space_id}/projects/new", get(new_project))
        .route("/app/{space_id}/projects/{project_id}", get(overview))
        .route(
            "/app/{space_id}/projects/{project_id}/process",
            get(process),
        )
        .route(
            "/app/{space_id}/projects/{project_id}/process/steps/{index}",
            get(step_editor),
        )
        .route(
            "/app/{space_id}/projects/{project_id}/variables",
            get(variables),
        )
        .route(
            "/app/{space_id}/projects/{project_id}/channels",
            get(channels),
        )
        .route(
            "/app/{space_id}/projects/{project_id}/settings",
            get(settings),
        )
}

async fn list(viewer: Viewer, Path(space_id): Path<String>) -> Result<Response, PageError> {
    let [projects, groups] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/projects?take=2147483647"),
            &format!("/api/{space_id}/projectgroups?take=2147483647"),
        ])
        .await?;
    let projects = projects.list("Items");
    let body = html! {
        (heading(&[], "Projects", html! {
            a.button href={ "/app/" (space_id) "/projects/new" } { "Add project" }
        }))
        div.filters {
            div.field {
                label for="project-filter" { "Filter projects" }
                input #project-filter type="search" data-filter="#projects tbody tr" placeholder="Name";
            }
        }
        table #projects {
            thead { tr { th { "Project" } th { "Group" } th { "Description" } } }
            tbody {
                @for project in projects {
                    tr {
                        td { a href={ "/app/" (space_id) "/projects/" (project.text("Id")) } { (project.text("Name")) } }
                        td { (name_in(groups.list("Items"), project.text("ProjectGroupId"))) }
                        td.muted { (project.text("Description")) }
                    }
                }
            }
        }
        @if projects.is_empty() { p.muted { "No projects yet." } }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Projects,
        "Projects",
        body,
    ))
}

/// The `Name` of the item with `id` in `items`, or the id itself when it is not there.
pub(crate) fn name_in<'a>(items: &'a [Value], id: &'a str) -> &'a str {
    items
        .iter()
        .find(|item| item.text("Id") == id)
        .map_or(id, |item| item.text("Name"))
}

async fn new_project(viewer: Viewer, Path(space_id): Path<String>) -> Result<Response, PageError> {
    let [groups, lifecycles] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/projectgroups?take=2147483647"),
            &format!("/api/{space_id}/lifecycles?take=2147483647"),
        ])
        .await?;
    let groups = options_of(groups.list("Items"));
    let lifecycles = options_of(lifecycles.list("Items"));
    let body = html! {
        (heading(&[("Projects", format!("/app/{space_id}/projects"))], "Add project", html! {}))
        form.card data-api={ "POST /api/" (space_id) "/projects" }
            data-then={ "/app/" (space_id) "/projects/{Id}/process" } {
            (form_errors())
            (text_field("Name", "Name", "", true))
            (text_area("Description", "Description", "", 2, false))
            (select_field("Project group", "ProjectGroupId", &groups, groups.first().map_or("", |group| group.0.as_str())))
            (select_field("Lifecycle", "LifecycleId", &lifecycles, lifecycles.first().map_or("", |lifecycle| lifecycle.0.as_str())))
            button.primary type="submit" { "Create project" }
        }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Projects,
        "Add project",
        body,
    ))
}

/// The tabs every project page shows.
fn project_tabs(space_id: &str, project: &Value, current: &str) -> Markup {
    let base = format!("/app/{space_id}/projects/{}", project.text("Id"));
    let tabs = [
        ("Overview", base.clone()),
        ("Process", format!("{base}/process")),
        ("Variables", format!("{base}/variables")),
        ("Channels", format!("{base}/channels")),
        ("Settings", format!("{base}/settings")),
    ];
    tab_bar("Project", &tabs, current)
}

fn project_heading(space_id: &str, project: &Value, current: &str, actions: Markup) -> Markup {
    html! {
        (heading(&[("Projects", format!("/app/{space_id}/projects"))], project.text("Name"), actions))
        (project_tabs(space_id, project, current))
    }
}

async fn overview(
    viewer: Viewer,
    Path((space_id, project_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let [project, progression] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/projects/{project_id}"),
            &format!("/api/{space_id}/projects/{project_id}/progression"),
        ])
        .await?;
    let environments = progression.list("Environments");
    let releases = progression.list("Releases");
    let actions = html! {
        a.button href={ "/app/" (space_id) "/projects/" (project_id) "/releases/new" } { "Create release" }
    };
    let body = html! {
        (project_heading(&space_id, &project, "Overview", actions))
        @if !project.text("Description").is_empty() { p { (project.text("Description")) } }
        @if releases.is_empty() {
            div.card {
                p { "No releases yet. Define the deployment process, then create a release to deploy it." }
                p { a href={ "/app/" (space_id) "/projects/" (project_id) "/process" } { "Edit the deployment process" } }
            }
        } @else {
            div #progression data-refresh="5" {
                table.grid {
                    caption.muted { "Releases and where each was deployed" }
                    thead { tr {
                        th scope="col" { "Release" }
                        @for environment in environments { th scope="col" { (environment.text("Name")) } }
                    } }
                    tbody {
                        @for row in releases {
                            @let release = row.get("Release").cloned().unwrap_or(Value::Null);
                            tr {
                                th scope="row" {
                                    a href={ "/app/" (space_id) "/releases/" (release.text("Id")) } { (release.text("Version")) }
                                    @if row.flag("HasUnresolvedDefect") { " " span.badge.failed { "Blocked" } }
                                }
                                @for environment in environments {
                                    @let cell = row.get("Deployments").and_then(|cells| cells.get(environment.text("Id")))
                                        .and_then(|deployments| deployments.as_array()).and_then(|deployments| deployments.first());
                                    @match cell {
                                        Some(deployment) => {
                                            td { a class={ "cell " (state_class(deployment.text("State"))) } data-state=(deployment.text("State"))
                                                href={ "/app/" (space_id) "/tasks/" (deployment.text("TaskId")) } {
                                                span.state { (deployment.text("State")) }
                                                span.when { (time(deployment.text("CompletedTime"))) }
                                            } }
                                        }
                                        None => { td.empty { span.muted { "—" } } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Projects,
        project.text("Name"),
        body,
    ))
}

const SCRIPT: &str = "Octopus.Script";
const MANUAL: &str = "Octopus.Manual";
const PACKAGE: &str = "Octopus.TentaclePackage";
const HEALTH_CHECK: &str = "Octopus.HealthCheck";

fn action_type_label(action_type: &str) -> &str {
    match action_type {
        SCRIPT => "Run a script",
        MANUAL => "Manual intervention",
        PACKAGE => "Deploy a package",
        HEALTH_CHECK => "Health check",
        other => other,
    }
}

async fn process(
    viewer: Viewer,
    Path((space_id, project_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let project = viewer
        .api
        .get(&format!("/api/{space_id}/projects/{project_id}"))
        .await?;
    let process_url = format!(
        "/api/{space_id}/deploymentprocesses/{}",
        project.text("DeploymentProcessId")
    );
    let process = viewer.api.get(&process_url).await?;
    let steps = process.list("Steps");
    let step_link =
        |index: usize| format!("/app/{space_id}/projects/{project_id}/process/steps/{index}");
    let new_link = |action_type: &str| {
        format!("/app/{space_id}/projects/{project_id}/process/steps/new?type={action_type}")
    };
    let body = html! {
        (project_heading(&space_id, &project, "Process", html! {}))
        div data-process="#process-json" data-url=(process_url) {
            (form_errors())
            @if steps.is_empty() { p.muted { "This process has no steps yet. Add one below." } }
            ol.steps aria-label="Steps" {
                @for (index, step) in steps.iter().enumerate() {
                    @let action = step.list("Actions").first().cloned().unwrap_or(Value::Null);
                    @let disabled = action.flag("IsDisabled");
                    li class=[disabled.then_some("disabled")] {
                        span.number { (index + 1) "." }
                        " "
                        span.grow {
                            a href=(step_link(index)) { (step.text("Name")) }
                            br;
                            span.muted {
                                (action_type_label(action.text("ActionType")))
                                @let roles = step.get("Properties").map_or("", |properties| properties.text("Octopus.Action.TargetRoles"));
                                @if !roles.is_empty() { " · on targets in roles " (roles) }
                                @if action.get("Properties").is_some_and(|properties| properties.text("Octopus.Action.RunOnServer").eq_ignore_ascii_case("true")) { " · on a worker" }
                                @if step.text("StartTrigger") == "StartWithPrevious" { " · in parallel with the previous step" }
                                @if step.text("Condition") != "Success" && !step.text("Condition").is_empty() { " · runs on " (step.text("Condition")) }
                                @if disabled { " · disabled" }
                            }
                        }
                        button.secondary type="button" data-process-op="up" data-index=(index) disabled[index == 0] aria-label={ "Move " (step.text("Name")) " up" } { "↑" }
                        button.secondary type="button" data-process-op="down" data-index=(index) disabled[index + 1 == steps.len()] aria-label={ "Move " (step.text("Name")) " down" } { "↓" }
                        button.secondary type="button" data-process-op="toggle" data-index=(index) { @if disabled { "Enable" } @else { "Disable" } }
                        button.danger type="button" data-process-op="delete" data-index=(index) { "Delete" }
                    }
                }
            }
            p {
                "Add a step: "
                a.button.secondary href=(new_link(SCRIPT)) { "Run a script" } " "
                a.button.secondary href=(new_link(PACKAGE)) { "Deploy a package" } " "
                a.button.secondary href=(new_link(MANUAL)) { "Manual intervention" } " "
                a.button.secondary href=(new_link(HEALTH_CHECK)) { "Health check" }
            }
        }
        (embedded_json("process-json", &process))
    };
    Ok(page(&viewer, &space_id, Section::Projects, "Process", body))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NewStepQuery {
    r#type: String,
}

/// A new step of `action_type`, in the shape the process stores.
fn new_step(action_type: &str, number: usize) -> Value {
    let name = format!("{} {number}", action_type_label(action_type));
    let mut action_properties = serde_json::Map::new();
    let mut step_properties = serde_json::Map::new();
    let mut packages = Vec::new();
    match action_type {
        SCRIPT => {
            action_properties.insert("Octopus.Action.Script.ScriptSource".into(), json!("Inline"));
            action_properties.insert("Octopus.Action.Script.Syntax".into(), json!("Bash"));
            action_properties.insert("Octopus.Action.Script.ScriptBody".into(), json!(""));
            action_properties.insert("Octopus.Action.RunOnServer".into(), json!("false"));
            step_properties.insert("Octopus.Action.TargetRoles".into(), json!(""));
        }
        PACKAGE => {
            step_properties.insert("Octopus.Action.TargetRoles".into(), json!(""));
            packages.push(json!({"Name": "", "PackageId": "", "FeedId": "Feeds-builtin", "AcquisitionLocation": "Server"}));
        }
        MANUAL => {
            action_properties.insert("Octopus.Action.Manual.Instructions".into(), json!(""));
            action_properties.insert("Octopus.Action.RunOnServer".into(), json!("true"));
        }
        _ => {}
    }
    json!({
        "Name": name,
        "Condition": "Success",
        "StartTrigger": "StartAfterPrevious",
        "PackageRequirement": "LetOctopusDecide",
        "Properties": step_properties,
        "Actions": [{
            "Name": name,
            "ActionType": action_type,
            "IsDisabled": false,
            "IsRequired": false,
            "Environments": [],
            "ExcludedEnvironments": [],
            "Channels": [],
            "TenantTags": [],
            "Properties": action_properties,
            "Packages": packages,
        }],
    })
}

async fn step_editor(
    viewer: Viewer,
    Path((space_id, project_id, index)): Path<(String, String, String)>,
    Query(query): Query<NewStepQuery>,
) -> Result<Response, PageError> {
    let [project, environments, pools] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/projects/{project_id}"),
            &format!("/api/{space_id}/environments?take=2147483647"),
            &format!("/api/{space_id}/workerpools?take=2147483647"),
        ])
        .await?;
    let process_url = format!(
        "/api/{space_id}/deploymentprocesses/{}",
        project.text("DeploymentProcessId")
    );
    let mut process = viewer.api.get(&process_url).await?;
    let step_count = process.list("Steps").len();
    let (index, is_new) = if index == "new" {
        let action_type = if query.r#type.is_empty() {
            SCRIPT
        } else {
            query.r#type.as_str()
        };
        if let Some(steps) = process.get_mut("Steps").and_then(Value::as_array_mut) {
            steps.push(new_step(action_type, step_count + 1));
        }
        (step_count, true)
    } else {
        let index: usize = index
            .parse()
            .ok()
            .filter(|index| *index < step_count)
            .ok_or_else(|| PageError::not_found("This process has no such step."))?;
        (index, false)
    };
    let step = process.list("Steps")[index].clone();
    let action = step.list("Actions").first().cloned().unwrap_or(Value::Null);
    let action_type = action.text("ActionType").to_owned();
    let step_properties = step.get("Properties").cloned().unwrap_or(Value::Null);
    let properties = action.get("Properties").cloned().unwrap_or(Value::Null);
    let on_worker = properties
        .text("Octopus.Action.RunOnServer")
        .eq_ignore_ascii_case("true");
    let environment_ids: Vec<&str> = action.strings("Environments");
    let title = if is_new {
        format!("Add step: {}", action_type_label(&action_type))
    } else {
        format!("Step: {}", step.text("Name"))
    };
    let body = html! {
        (project_heading(&space_id, &project, "Process", html! {}))
        h2 { (title) }
        form.card data-api={ "PUT " (process_url) } data-base="#process-json" data-path={ "Steps/" (index) }
            data-transform="step" data-then={ "/app/" (space_id) "/projects/" (project_id) "/process" } {
            (form_errors())
            (text_field("Step name", "Name", step.text("Name"), true))
            @if action_type == SCRIPT || action_type == MANUAL || action_type == HEALTH_CHECK {
                (select_field("Runs", "Actions/0/Properties/Octopus.Action.RunOnServer",
                    &[("false".to_owned(), "On deployment targets, by role".to_owned()), ("true".to_owned(), "Once, on a worker".to_owned())],
                    if on_worker { "true" } else { "false" }))
            }
            @if action_type == SCRIPT {
                div.field {
                    label {
                        span.label-text { "Worker pool (for steps that run on a worker)" }
                        select name="Actions/0/WorkerPoolId" data-type="optional" {
                            option value="" { "The default pool" }
                            @for pool in pools.list("Items") {
                                option value=(pool.text("Id")) selected[action.text("WorkerPoolId") == pool.text("Id")] { (pool.text("Name")) }
                            }
                        }
                    }
                    p.field-error data-error-for="Actions/0/WorkerPoolId" hidden {}
                }
            }
            @if action_type != MANUAL {
                (text_field("Target roles (comma-separated)", "Properties/Octopus.Action.TargetRoles",
                    step_properties.text("Octopus.Action.TargetRoles"), false))
            }
            @if action_type == SCRIPT {
                (select_field("Script language", "Actions/0/Properties/Octopus.Action.Script.Syntax",
                    &[("Bash".to_owned(), "Bash".to_owned()), ("Python".to_owned(), "Python".to_owned()), ("PowerShell".to_owned(), "PowerShell".to_owned())],
                    properties.text("Octopus.Action.Script.Syntax")))
                (text_area("Script", "Actions/0/Properties/Octopus.Action.Script.ScriptBody",
                    properties.text("Octopus.Action.Script.ScriptBody"), 14, true))
            }
            @if action_type == PACKAGE {
                @let package = action.list("Packages").first().cloned().unwrap_or(Value::Null);
                (text_field("Package ID", "Actions/0/Packages/0/PackageId", package.text("PackageId"), true))
                input type="hidden" name="Actions/0/Packages/0/FeedId" value=(if package.text("FeedId").is_empty() { "Feeds-builtin" } else { package.text("FeedId") });
            }
            @if action_type == MANUAL {
                (text_area("Instructions", "Actions/0/Properties/Octopus.Action.Manual.Instructions",
                    properties.text("Octopus.Action.Manual.Instructions"), 4, false))
                (text_field("Responsible teams (comma-separated ids)", "Actions/0/Properties/Octopus.Action.Manual.ResponsibleTeamIds",
                    properties.text("Octopus.Action.Manual.ResponsibleTeamIds"), false))
            }
            @if action_type != MANUAL {
                details #step-retries {
                    summary { "Retries and time limit" }
                    @if action_type != HEALTH_CHECK {
                        (text_field("Automatic retries after a failure (empty or 0: none)", "Actions/0/Properties/Octopus.Action.AutoRetry.MaximumCount",
                            properties.text("Octopus.Action.AutoRetry.MaximumCount"), false))
                        (text_field("Seconds to wait before each retry (empty: 15)", "Actions/0/Properties/Octopus.Action.AutoRetry.MinimumBackoff",
                            properties.text("Octopus.Action.AutoRetry.MinimumBackoff"), false))
                    }
                    (text_field("Execution timeout, minutes per run (empty or 0: no limit)", "Actions/0/Properties/Octopus.Action.ExecutionTimeout.Minutes",
                        properties.text("Octopus.Action.ExecutionTimeout.Minutes"), false))
                }
            }
            details {
                summary { "Conditions, parallelism and environments" }
                (select_field("Run condition", "Condition", &[
                    ("Success".to_owned(), "Only when every earlier step succeeded".to_owned()),
                    ("Failure".to_owned(), "Only when an earlier step failed".to_owned()),
                    ("Always".to_owned(), "Always".to_owned()),
                    ("Variable".to_owned(), "When a variable expression is true".to_owned()),
                ], step.text("Condition")))
                (text_field("Condition expression (for a variable condition)", "Properties/Octopus.Step.ConditionVariableExpression",
                    step_properties.text("Octopus.Step.ConditionVariableExpression"), false))
                (select_field("Start", "StartTrigger", &[
                    ("StartAfterPrevious".to_owned(), "After the previous step".to_owned()),
                    ("StartWithPrevious".to_owned(), "In parallel with the previous step".to_owned()),
                ], step.text("StartTrigger")))
                (text_field("Rolling window: targets at a time (empty for all)", "Properties/Octopus.Action.MaxParallelism",
                    step_properties.text("Octopus.Action.MaxParallelism"), false))
                div.field {
                    label for="step-environments" { "Only in environments (none selected: all)" }
                    select #step-environments name="Actions/0/Environments" multiple {
                        @for environment in environments.list("Items") {
                            option value=(environment.text("Id")) selected[environment_ids.contains(&environment.text("Id"))] { (environment.text("Name")) }
                        }
                    }
                    p.field-error data-error-for="Actions/0/Environments" hidden {}
                }
                (check_field("Required (cannot be skipped)", "Actions/0/IsRequired", action.flag("IsRequired")))
                (check_field("Disabled", "Actions/0/IsDisabled", action.flag("IsDisabled")))
            }
            button.primary type="submit" { @if is_new { "Add step" } @else { "Save step" } }
            " "
            a href={ "/app/" (space_id) "/projects/" (project_id) "/process" } { "Cancel" }
        }
        (embedded_json("process-json", &process))
    };
    Ok(page(&viewer, &space_id, Section::Projects, &title, body))
}

async fn variables(
    viewer: Viewer,
    Path((space_id, project_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let [project, library_sets] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/projects/{project_id}"),
            &format!("/api/{space_id}/libraryvariablesets?take=2147483647"),
        ])
        .await?;
    let set_url = format!(
        "/api/{space_id}/variables/{}",
        project.text("VariableSetId")
    );
    let set = viewer.api.get(&set_url).await?;
    let included: Vec<&str> = project.strings("IncludedLibraryVariableSetIds");
    let body = html! {
        (project_heading(&space_id, &project, "Variables", html! {}))
        (variables_editor(&set_url, &set))
        h2 { "Included library variable sets" }
        @if included.is_empty() { p.muted { "None. Choose them in the project's settings." } }
        ul {
            @for id in &included {
                li { a href={ "/app/" (space_id) "/library/variables/" (id) } { (name_in(library_sets.list("Items"), id)) } }
            }
        }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Projects,
        "Variables",
        body,
    ))
}

/// The variables table of the variable set at `set_url` (a project's or a library set's),
/// saved whole with `PUT`; `portal.js`'s `variables` transform turns the rows back into
/// `Variables`, keeping what the columns do not show.
pub(crate) fn variables_editor(set_url: &str, set: &Value) -> Markup {
    let scope_values = set.get("ScopeValues").cloned().unwrap_or(Value::Null);
    html! {
        form data-api={ "PUT " (set_url) } data-base="#variables-json" data-transform="variables" data-then="reload" data-variables {
            (form_errors())
            table {
                thead { tr {
                    th { "Name" } th { "Value" } th { "Sensitive" } th { "Environments" } th { "Roles" } th { "Prompt label" } th { span.sr { "Remove" } }
                } }
                tbody {
                    @for variable in set.list("Variables") { (variable_row(Some(variable), &scope_values)) }
                }
            }
            template { (variable_row(None, &scope_values)) }
            p {
                button.secondary type="button" data-add-variable { "Add variable" }
                " "
                button.primary type="submit" { "Save variables" }
            }
            p.muted { "Sensitive values are never shown again once saved; leave one empty to keep it." }
        }
        (embedded_json("variables-json", set))
    }
}

fn variable_row(variable: Option<&Value>, scope_values: &Value) -> Markup {
    let empty = Value::Null;
    let variable = variable.unwrap_or(&empty);
    let sensitive = variable.flag("IsSensitive");
    let scope = variable.get("Scope").cloned().unwrap_or(Value::Null);
    let environments: Vec<&str> = scope.strings("Environment");
    let roles = scope.strings("Role").join(", ");
    let prompt = variable.get("Prompt").cloned().unwrap_or(Value::Null);
    let original = if variable.is_null() {
        String::new()
    } else {
        variable.to_string()
    };
    html! {
        tr data-original=(original) {
            td { input type="text" data-column="Name" aria-label="Variable name" value=(variable.text("Name")); }
            td {
                @if sensitive {
                    input type="password" data-column="Value" aria-label="Sensitive value" placeholder="•••••••• (unchanged)" autocomplete="new-password";
                } @else {
                    input type="text" data-column="Value" aria-label="Value" value=(variable.text("Value"));
                }
            }
            td { input type="checkbox" data-column="IsSensitive" aria-label="Sensitive" checked[sensitive]; }
            td {
                select multiple data-column="Environment" aria-label="Environments" {
                    @for environment in scope_values.list("Environments") {
                        option value=(environment.text("Id")) selected[environments.contains(&environment.text("Id"))] { (environment.text("Name")) }
                    }
                }
            }
            td { input type="text" data-column="Role" data-type="list" aria-label="Roles" value=(roles); }
            td { input type="text" data-column="Prompt" aria-label="Prompt label" value=(prompt.text("Label")); }
            td { button.danger type="button" data-remove-variable aria-label="Remove variable" { "×" } }
        }
    }
}

async fn channels(
    viewer: Viewer,
    Path((space_id, project_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let [project, channels, lifecycles] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/projects/{project_id}"),
            &format!("/api/{space_id}/projects/{project_id}/channels?take=2147483647"),
            &format!("/api/{space_id}/lifecycles?take=2147483647"),
        ])
        .await?;
    let mut lifecycle_options = vec![(String::new(), "The project's lifecycle".to_owned())];
    lifecycle_options.extend(options_of(lifecycles.list("Items")));
    let body = html! {
        (project_heading(&space_id, &project, "Channels", html! {}))
        table {
            thead { tr { th { "Channel" } th { "Lifecycle" } th { "Version rules" } th { "Default" } } }
            tbody {
                @for channel in channels.list("Items") {
                    tr {
                        td { (channel.text("Name")) }
                        td { @if channel.text("LifecycleId").is_empty() { span.muted { "the project's" } } @else { (name_in(lifecycles.list("Items"), channel.text("LifecycleId"))) } }
                        td {
                            @for rule in channel.list("Rules") {
                                code { (rule.text("VersionRange")) } " " code { (rule.text("Tag")) } br;
                            }
                        }
                        td { @if channel.flag("IsDefault") { "Default" } }
                    }
                }
            }
        }
        h2 { "Add a channel" }
        form.card data-api={ "POST /api/" (space_id) "/channels" } data-then="reload" {
            (form_errors())
            input type="hidden" name="ProjectId" value=(project_id);
            (text_field("Name", "Name", "", true))
            div.field {
                label {
                    span.label-text { "Lifecycle" }
                    select name="LifecycleId" data-type="optional" {
                        @for (value, text) in &lifecycle_options { option value=(value) { (text) } }
                    }
                }
                p.field-error data-error-for="LifecycleId" hidden {}
            }
            button.primary type="submit" { "Add channel" }
        }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Projects,
        "Channels",
        body,
    ))
}

async fn settings(
    viewer: Viewer,
    Path((space_id, project_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let [project, groups, lifecycles, library_sets] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/projects/{project_id}"),
            &format!("/api/{space_id}/projectgroups?take=2147483647"),
            &format!("/api/{space_id}/lifecycles?take=2147483647"),
            &format!("/api/{space_id}/libraryvariablesets?take=2147483647"),
        ])
        .await?;
    let included: Vec<&str> = project.strings("IncludedLibraryVariableSetIds");
    let project_url = format!("/api/{space_id}/projects/{project_id}");
    let body = html! {
        (project_heading(&space_id, &project, "Settings", html! {}))
        form.card data-api={ "PUT " (project_url) } data-base="#project-json" data-then="reload" {
            (form_errors())
            (text_field("Name", "Name", project.text("Name"), true))
            (text_area("Description", "Description", project.text("Description"), 2, false))
            (select_field("Project group", "ProjectGroupId", &options_of(groups.list("Items")), project.text("ProjectGroupId")))
            (select_field("Lifecycle", "LifecycleId", &options_of(lifecycles.list("Items")), project.text("LifecycleId")))
            (text_field("Release version template", "VersioningStrategy/Template",
                project.get("VersioningStrategy").map_or("", |strategy| strategy.text("Template")), false))
            (select_field("Guided failure", "DefaultGuidedFailureMode", &[
                ("EnvironmentDefault".to_owned(), "Use the environment's default".to_owned()),
                ("Off".to_owned(), "Off".to_owned()),
                ("On".to_owned(), "On: pause on failures and ask".to_owned()),
            ], project.text("DefaultGuidedFailureMode")))
            div.field {
                label for="library-sets" { "Included library variable sets" }
                select #library-sets name="IncludedLibraryVariableSetIds" multiple {
                    @for set in library_sets.list("Items") {
                        option value=(set.text("Id")) selected[included.contains(&set.text("Id"))] { (set.text("Name")) }
                    }
                }
                p.field-error data-error-for="IncludedLibraryVariableSetIds" hidden {}
            }
            (check_field("Disabled (no new releases or deployments)", "IsDisabled", project.flag("IsDisabled")))
            button.primary type="submit" { "Save settings" }
        }
        form.card data-api={ "DELETE " (project_url) } data-confirm="Delete this project, its releases and deployments?"
            data-then={ "/app/" (space_id) "/projects" } {
            (form_errors())
            p { "Deleting a project deletes its releases and deployments." }
            button.danger type="submit" { "Delete project" }
        }
        (embedded_json("project-json", &project))
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Projects,
        "Settings",
        body,
    ))
}
