//! Releases and deployments: creating a release, the release page with its lifecycle
//! progression (where it may go next, and why not elsewhere), and deploying with options.

use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::api::Field as _;
use super::layout::{
    Section, check_field, form_errors, heading, page, state_badge, text_area, text_field, time,
};
use super::projects::name_in;
use super::{PageError, PortalState, Viewer};

pub(crate) fn routes() -> axum::Router<PortalState> {
    axum::Router::new()
        .route(
            "/app/{space_id}/projects/{project_id}/releases/new",
            get(new_release),
        )
        .route("/app/{space_id}/releases/{release_id}", get(release_page))
        .route(
            "/app/{space_id}/releases/{release_id}/deploy",
            get(deploy_page),
        )
}

/// The package actions of a process: (action name, package id) pairs.
fn package_actions(process: &Value) -> Vec<(String, String)> {
    process
        .list("Steps")
        .iter()
        .flat_map(|step| step.list("Actions"))
        .flat_map(|action| {
            action.list("Packages").iter().map(move |package| {
                (
                    action.text("Name").to_owned(),
                    package.text("PackageId").to_owned(),
                )
            })
        })
        .filter(|(_, package_id)| !package_id.is_empty())
        .collect()
}

async fn new_release(
    viewer: Viewer,
    Path((space_id, project_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let [project, channels] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/projects/{project_id}"),
            &format!("/api/{space_id}/projects/{project_id}/channels?take=2147483647"),
        ])
        .await?;
    let process = viewer
        .api
        .get(&format!(
            "/api/{space_id}/deploymentprocesses/{}",
            project.text("DeploymentProcessId")
        ))
        .await?;
    let packages = package_actions(&process);
    let channels = channels.list("Items");
    let default_channel = channels
        .iter()
        .find(|channel| channel.flag("IsDefault"))
        .map_or("", |channel| channel.text("Id"));
    let project_link = format!("/app/{space_id}/projects/{project_id}");
    let body = html! {
        (heading(&[("Projects", format!("/app/{space_id}/projects")), (project.text("Name"), project_link.clone())],
            "Create release", html! {}))
        form.card data-api={ "POST /api/" (space_id) "/releases" } data-then={ "/app/" (space_id) "/releases/{Id}" } {
            (form_errors())
            input type="hidden" name="ProjectId" value=(project_id);
            div.field {
                label for="field-Version" { "Version" }
                input #field-Version name="Version" type="text" data-omit-empty
                    placeholder="Empty: the next version from the project's template" autofocus;
                p.field-error data-error-for="Version" hidden {}
            }
            @if channels.len() > 1 {
                div.field {
                    label for="field-ChannelId" { "Channel" }
                    select #field-ChannelId name="ChannelId" {
                        @for channel in channels {
                            option value=(channel.text("Id")) selected[channel.text("Id") == default_channel] { (channel.text("Name")) }
                        }
                    }
                    p.field-error data-error-for="ChannelId" hidden {}
                }
            } @else {
                input type="hidden" name="ChannelId" value=(default_channel);
            }
            @if !packages.is_empty() {
                fieldset {
                    legend { "Package versions" }
                    @for (index, (action, package_id)) in packages.iter().enumerate() {
                        input type="hidden" name={ "SelectedPackages/" (index) "/ActionName" } value=(action);
                        input type="hidden" name={ "SelectedPackages/" (index) "/PackageReferenceName" } value="";
                        div.field {
                            label for={ "package-" (index) } { (package_id) " (step " (action) ")" }
                            input id={ "package-" (index) } type="text" name={ "SelectedPackages/" (index) "/Version" }
                                placeholder="Empty: the latest version in the feed";
                        }
                    }
                    p.field-error data-error-for="SelectedPackages" hidden {}
                }
            }
            (text_area("Release notes", "ReleaseNotes", "", 4, false))
            button.primary type="submit" { "Create release" }
        }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Projects,
        "Create release",
        body,
    ))
}

async fn release_page(
    viewer: Viewer,
    Path((space_id, release_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let [release, progression, deployments] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/releases/{release_id}"),
            &format!("/api/{space_id}/releases/{release_id}/progression"),
            &format!("/api/{space_id}/releases/{release_id}/deployments?take=2147483647"),
        ])
        .await?;
    let [project, environments] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/projects/{}", release.text("ProjectId")),
            &format!("/api/{space_id}/environments?take=2147483647"),
        ])
        .await?;
    let environments = environments.list("Items");
    let task_ids: Vec<&str> = deployments
        .list("Items")
        .iter()
        .map(|deployment| deployment.text("TaskId"))
        .collect();
    let tasks = if task_ids.is_empty() {
        Vec::new()
    } else {
        viewer
            .api
            .items(&format!("/api/{space_id}/tasks?ids={}", task_ids.join(",")))
            .await?
    };
    let task_state = |task_id: &str| {
        tasks
            .iter()
            .find(|task| task.text("Id") == task_id)
            .map_or("Queued", |task| task.text("State"))
            .to_owned()
    };
    let project_link = format!("/app/{space_id}/projects/{}", project.text("Id"));
    let deploy_link = |environment_id: &str| {
        format!("/app/{space_id}/releases/{release_id}/deploy?environment={environment_id}")
    };
    let title = format!("Release {}", release.text("Version"));
    let body = html! {
        (heading(&[("Projects", format!("/app/{space_id}/projects")), (project.text("Name"), project_link)],
            &title,
            html! { a.button href=(deploy_link("")) { "Deploy…" } }))
        div.columns {
            div.card {
                h2 { "Lifecycle progression" }
                @if progression.flag("HasUnresolvedDefect") {
                    p.error { "This release has an unresolved defect and cannot progress." }
                }
                @for phase in progression.list("Phases") {
                    h3 { (phase.text("Name")) " " span.muted { "(" (phase.text("Progress")) ")" } }
                    @if phase.flag("IsOptionalPhase") { p.muted { "Optional phase" } }
                    ul {
                        @for environment_id in phase.strings("EnvironmentIds") {
                            li { (environment_decision(&progression, environment_id, &deploy_link(environment_id), environments)) }
                        }
                    }
                }
            }
            div.card {
                h2 { "Details" }
                dl.summary-grid {
                    dt { "Version" } dd { (release.text("Version")) }
                    dt { "Created" } dd { (time(release.text("Assembled"))) }
                    @for package in release.list("SelectedPackages") {
                        dt { "Package" } dd { (package.text("ActionName")) ": " (package.text("Version")) }
                    }
                }
                @if !release.text("ReleaseNotes").is_empty() {
                    h3 { "Release notes" }
                    p style="white-space: pre-wrap" { (release.text("ReleaseNotes")) }
                }
            }
        }
        h2 { "Deployments" }
        table {
            thead { tr { th { "Environment" } th { "State" } th { "Created" } th { "Task" } } }
            tbody {
                @for deployment in deployments.list("Items") {
                    tr {
                        td { (name_in(environments, deployment.text("EnvironmentId"))) }
                        td { (state_badge(&task_state(deployment.text("TaskId")))) }
                        td { (time(deployment.text("Created"))) }
                        td { a href={ "/app/" (space_id) "/tasks/" (deployment.text("TaskId")) } { "Task log" } }
                    }
                }
            }
        }
        @if deployments.list("Items").is_empty() { p.muted { "Not deployed yet." } }
    };
    Ok(page(&viewer, &space_id, Section::Projects, &title, body))
}

/// One environment of the progression: deployable (with a link), or why not.
fn environment_decision(
    progression: &Value,
    environment_id: &str,
    deploy_link: &str,
    environments: &[Value],
) -> Markup {
    let decision = progression
        .list("Environments")
        .iter()
        .find(|decision| decision.text("EnvironmentId") == environment_id)
        .cloned()
        .unwrap_or(Value::Null);
    let name = name_in(environments, environment_id).to_owned();
    html! {
        @if decision.flag("CanDeploy") {
            a href=(deploy_link) data-deploy-to=(name) { "Deploy to " (name) }
        } @else {
            span { (name) } " — " span.muted data-cannot-deploy=(name) { (decision.text("Reason")) }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DeployQuery {
    environment: String,
}

async fn deploy_page(
    viewer: Viewer,
    Path((space_id, release_id)): Path<(String, String)>,
    Query(query): Query<DeployQuery>,
) -> Result<Response, PageError> {
    let [release, progression, environments, machines] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/releases/{release_id}"),
            &format!("/api/{space_id}/releases/{release_id}/progression"),
            &format!("/api/{space_id}/environments?take=2147483647"),
            &format!("/api/{space_id}/machines?take=2147483647"),
        ])
        .await?;
    let project = viewer
        .api
        .get(&format!(
            "/api/{space_id}/projects/{}",
            release.text("ProjectId")
        ))
        .await?;
    let process = viewer
        .api
        .get(&format!(
            "/api/{space_id}/deploymentprocesses/{}",
            project.text("DeploymentProcessId")
        ))
        .await?;
    let snapshot_id = release.text("ProjectVariableSetSnapshotId");
    let variables_id = if snapshot_id.is_empty() {
        project.text("VariableSetId")
    } else {
        snapshot_id
    };
    let variables = viewer
        .api
        .get(&format!("/api/{space_id}/variables/{variables_id}"))
        .await
        .unwrap_or(Value::Null);
    let prompted: Vec<&Value> = variables
        .list("Variables")
        .iter()
        .filter(|variable| {
            variable
                .get("Prompt")
                .is_some_and(|prompt| !prompt.is_null())
        })
        .collect();
    let environments = environments.list("Items");
    let deployable: Vec<&str> = progression
        .list("Environments")
        .iter()
        .filter(|decision| decision.flag("CanDeploy"))
        .map(|decision| decision.text("EnvironmentId"))
        .collect();
    let title = format!(
        "Deploy {} {}",
        project.text("Name"),
        release.text("Version")
    );
    let body = html! {
        (heading(&[("Projects", format!("/app/{space_id}/projects")),
                   (project.text("Name"), format!("/app/{space_id}/projects/{}", project.text("Id"))),
                   (release.text("Version"), format!("/app/{space_id}/releases/{release_id}"))],
            &title, html! {}))
        form.card data-api={ "POST /api/" (space_id) "/deployments/create/untenanted/v1" }
            data-then={ "/app/" (space_id) "/tasks/{DeploymentServerTasks/0/ServerTaskId}" } {
            (form_errors())
            input type="hidden" name="ProjectName" value=(project.text("Id"));
            input type="hidden" name="ReleaseVersion" value=(release.text("Version"));
            fieldset {
                legend { "Environments" }
                @for environment in environments {
                    @let id = environment.text("Id");
                    @let allowed = deployable.contains(&id);
                    div.field.check {
                        input id={ "env-" (id) } type="checkbox" name="EnvironmentNames" data-type="checklist"
                            value=(environment.text("Name")) checked[allowed && (query.environment == id || (query.environment.is_empty() && deployable.first() == Some(&id)))]
                            disabled[!allowed];
                        label for={ "env-" (id) } { (environment.text("Name")) }
                        @if !allowed {
                            @let reason = progression.list("Environments").iter().find(|decision| decision.text("EnvironmentId") == id)
                                .map(|decision| decision.text("Reason").to_owned()).unwrap_or_default();
                            span.muted { " — " (reason) }
                        }
                    }
                }
                p.field-error data-error-for="EnvironmentNames" hidden {}
            }
            @if !prompted.is_empty() {
                fieldset {
                    legend { "Prompted variables" }
                    @for variable in &prompted {
                        @let prompt = variable.get("Prompt").cloned().unwrap_or(Value::Null);
                        @let label = if prompt.text("Label").is_empty() { variable.text("Name") } else { prompt.text("Label") };
                        (text_field(label, &format!("Variables/{}", variable.text("Name")), variable.text("Value"), prompt.flag("Required")))
                    }
                }
            }
            details {
                summary { "Advanced: targets, steps, schedule, guided failure" }
                (machine_checklist("Deploy only to these targets (none: all)", "SpecificMachineNames", machines.list("Items")))
                (machine_checklist("Exclude these targets", "ExcludedMachineNames", machines.list("Items")))
                fieldset {
                    legend { "Skip these steps" }
                    @for step in process.list("Steps") {
                        @for action in step.list("Actions") {
                            div.field.check {
                                input id={ "skip-" (action.text("Id")) } type="checkbox" name="SkipStepNames" data-type="checklist"
                                    value=(action.text("Name")) disabled[action.flag("IsRequired")];
                                label for={ "skip-" (action.text("Id")) } { (action.text("Name")) @if action.flag("IsRequired") { " (required)" } }
                            }
                        }
                    }
                }
                div.field {
                    label for="field-RunAt" { "Start at (empty: now)" }
                    input #field-RunAt type="datetime-local" name="RunAt" data-type="datetime" data-omit-empty;
                    p.field-error data-error-for="RunAt" hidden {}
                }
                div.field {
                    label for="field-NoRunAfter" { "Do not start after" }
                    input #field-NoRunAfter type="datetime-local" name="NoRunAfter" data-type="datetime" data-omit-empty;
                    p.field-error data-error-for="NoRunAfter" hidden {}
                }
                div.field {
                    label for="field-UseGuidedFailure" { "Guided failure" }
                    select #field-UseGuidedFailure name="UseGuidedFailure" data-type="json" {
                        option value="" { "The project's and environment's default" }
                        option value="true" { "On: pause on failures and ask" }
                        option value="false" { "Off" }
                    }
                }
                (check_field("Redeploy packages already installed", "ForcePackageRedeployment", false))
            }
            button.primary type="submit" { "Deploy" }
        }
    };
    Ok(page(&viewer, &space_id, Section::Projects, &title, body))
}

/// Checkboxes of every target's name, sent as the list `field` (`data-type="checklist"`).
fn machine_checklist(legend: &str, field: &str, machines: &[Value]) -> Markup {
    html! {
        fieldset {
            legend { (legend) }
            @for machine in machines {
                div.field.check {
                    label {
                        input type="checkbox" name=(field) data-type="checklist" value=(machine.text("Name"));
                        " " (machine.text("Name"))
                    }
                }
            }
        }
    }
}
