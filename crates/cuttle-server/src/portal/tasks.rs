//! The tasks list (filtered by state, project and environment) and the task page: the live
//! log as nested blocks, interruptions answered inline, cancel, and the raw log.

use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::api::Field as _;
use super::layout::{
    Section, form_errors, heading, options_of, page, state_badge, state_class, time,
};
use super::{PageError, PortalState, Viewer};

pub(crate) fn routes() -> axum::Router<PortalState> {
    axum::Router::new()
        .route("/app/{space_id}/tasks", get(list))
        .route("/app/{space_id}/tasks/{task_id}", get(task_page))
}

const STATES: [&str; 7] = [
    "Queued",
    "Executing",
    "Cancelling",
    "Success",
    "Failed",
    "Canceled",
    "TimedOut",
];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TaskFilters {
    state: String,
    project: String,
    environment: String,
}

async fn list(
    viewer: Viewer,
    Path(space_id): Path<String>,
    Query(filters): Query<TaskFilters>,
) -> Result<Response, PageError> {
    let mut query = vec![("take", "100".to_owned())];
    if !filters.state.is_empty() {
        query.push(("states", filters.state.clone()));
    }
    if !filters.project.is_empty() {
        query.push(("project", filters.project.clone()));
    }
    if !filters.environment.is_empty() {
        query.push(("environment", filters.environment.clone()));
    }
    let query_text = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query.iter().map(|(name, value)| (*name, value.as_str())))
        .finish();
    let [tasks, projects, environments] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/tasks?{query_text}"),
            &format!("/api/{space_id}/projects?take=2147483647"),
            &format!("/api/{space_id}/environments?take=2147483647"),
        ])
        .await?;
    let projects = projects.list("Items");
    let environments = environments.list("Items");
    let name_of = |list: &[Value], id: &str| {
        list.iter()
            .find(|item| item.text("Id") == id)
            .map(|item| item.text("Name").to_owned())
            .unwrap_or_default()
    };
    let mut project_options = vec![(String::new(), "All projects".to_owned())];
    project_options.extend(options_of(projects));
    let mut environment_options = vec![(String::new(), "All environments".to_owned())];
    environment_options.extend(options_of(environments));
    let body = html! {
        (heading(&[], "Tasks", html! {}))
        form.filters method="get" {
            div.field {
                label for="filter-state" { "State" }
                select #filter-state name="state" {
                    option value="" { "Any state" }
                    @for state in STATES {
                        option value=(state) selected[filters.state == state] { (state) }
                    }
                }
            }
            div.field {
                label for="filter-project" { "Project" }
                select #filter-project name="project" {
                    @for (value, text) in &project_options {
                        option value=(value) selected[*value == filters.project] { (text) }
                    }
                }
            }
            div.field {
                label for="filter-environment" { "Environment" }
                select #filter-environment name="environment" {
                    @for (value, text) in &environment_options {
                        option value=(value) selected[*value == filters.environment] { (text) }
                    }
                }
            }
            button.secondary type="submit" { "Filter" }
        }
        table {
            thead { tr { th { "Task" } th { "Project" } th { "Environment" } th { "State" } th { "Queued" } th { "Duration" } } }
            tbody {
                @for task in tasks.list("Items") {
                    tr {
                        td { a href={ "/app/" (space_id) "/tasks/" (task.text("Id")) } { (task.text("Description")) } }
                        td { (name_of(projects, task.text("ProjectId"))) }
                        td { (name_of(environments, task.text("EnvironmentId"))) }
                        td {
                            (state_badge(task.text("State")))
                            @if task.flag("HasPendingInterruptions") { " " span.badge.cancelled { "Needs you" } }
                        }
                        td { (time(task.text("QueueTime"))) }
                        td { (task.text("Duration")) }
                    }
                }
            }
        }
        @if tasks.list("Items").is_empty() { p.muted { "No tasks match." } }
        p.muted { "Showing the latest " (tasks.list("Items").len()) " of " (tasks.number("TotalResults")) " tasks." }
    };
    Ok(page(&viewer, &space_id, Section::Tasks, "Tasks", body))
}

async fn task_page(
    viewer: Viewer,
    Path((space_id, task_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let task_url = format!("/api/{space_id}/tasks/{task_id}");
    let [details, interruptions] = viewer
        .api
        .get_all([
            &format!("{task_url}/details"),
            &format!("/api/{space_id}/interruptions?regarding={task_id}&pendingOnly=true"),
        ])
        .await?;
    let task = details.get("Task").cloned().unwrap_or(Value::Null);
    let state = task.text("State");
    let running = !task.flag("IsCompleted");
    let last_sequence = highest_sequence(&details);
    let progress = details
        .get("Progress")
        .map_or(0, |progress| progress.number("ProgressPercentage"));
    let title = task.text("Description").to_owned();
    let body = html! {
        (heading(
            &[("Tasks", format!("/app/{space_id}/tasks"))],
            &title,
            html! {
                a.button.secondary href={ (task_url) "/raw" } download={ (task_id) ".log" } { "Raw log" }
                @if running {
                    form.inline data-api={ "POST /api/tasks/" (task_id) "/cancel" } data-body="none"
                        data-then="reload" data-confirm="Cancel this task? Running scripts are stopped." {
                        button.danger type="submit" { "Cancel" }
                    }
                }
            },
        ))
        div.card {
            dl.summary-grid {
                dt { "State" } dd { span class={ "badge " (state_class(state)) } data-task-state data-state=(state) { (state) } }
                dt { "Queued" } dd { (time(task.text("QueueTime"))) }
                dt { "Started" } dd { (time(task.text("StartTime"))) }
                dt { "Completed" } dd { (time(task.text("CompletedTime"))) }
                dt { "Duration" } dd { (task.text("Duration")) }
                @if running {
                    dt { "Progress" }
                    dd { div.progress role="progressbar" aria-valuenow=(progress) aria-valuemin="0" aria-valuemax="100" { span style={ "width:" (progress) "%" } {} } }
                }
                @if !task.text("ErrorMessage").is_empty() {
                    dt { "Error" } dd.error { (task.text("ErrorMessage")) }
                }
            }
        }
        div data-interruptions {
            @for interruption in interruptions.list("Items") {
                (interruption_form(&space_id, interruption))
            }
        }
        h2 { "Task log" }
        div.log data-live-log=(task_url) data-after=(last_sequence) data-ended=[(!running).then_some(state)] aria-live="off" {
            @for activity in details.list("ActivityLogs") {
                (activity_block(activity))
            }
        }
    };
    Ok(page(&viewer, &space_id, Section::Tasks, &title, body))
}

/// The number of log lines the details hold: the live stream continues after them.
fn highest_sequence(details: &Value) -> usize {
    fn count(activity: &Value) -> usize {
        activity.list("LogElements").len()
            + activity.list("Children").iter().map(count).sum::<usize>()
    }
    details.list("ActivityLogs").iter().map(count).sum()
}

fn activity_block(activity: &Value) -> Markup {
    let status = activity.text("Status");
    let badge_class = match status {
        "Success" | "SuccessWithWarning" => "success",
        "Failed" => "failed",
        "Running" => "running",
        "Canceled" => "cancelled",
        _ => "queued",
    };
    html! {
        details open data-activity=(activity.text("Id")) {
            summary {
                span { (activity.text("Name")) }
                span class={ "badge " (badge_class) } { (status) }
            }
            ol.lines {
                @for line in activity.list("LogElements") {
                    li class={ "line " (line.text("Category")) } {
                        (time(line.text("OccurredAt")))
                        (line.text("MessageText"))
                    }
                }
            }
            @for child in activity.list("Children") { (activity_block(child)) }
        }
    }
}

fn interruption_form(space_id: &str, interruption: &Value) -> Markup {
    let id = interruption.text("Id");
    let values = interruption.get("Form").and_then(|form| form.get("Values"));
    let instructions = values.map_or("", |values| values.text("Instructions"));
    let elements = interruption
        .get("Form")
        .map_or(&[][..], |form| form.list("Elements"));
    html! {
        section.interruption aria-labelledby={ "interruption-" (id) } {
            h2 id={ "interruption-" (id) } { (interruption.text("Title")) }
            @if !instructions.is_empty() { p { (instructions) } }
            @if !interruption.text("ResponsibleUserId").is_empty() && !interruption.flag("HasResponsibility") {
                p.muted { "Someone else has taken responsibility for this." }
                form.inline data-api={ "PUT /api/" (space_id) "/interruptions/" (id) "/responsible" } data-body="none" data-then="reload" {
                    button.secondary type="submit" { "Take responsibility" }
                }
            }
            form data-api={ "POST /api/" (space_id) "/interruptions/" (id) "/submit" } data-then="reload" {
                (form_errors())
                @for element in elements {
                    @let control = element.get("Control").cloned().unwrap_or(Value::Null);
                    @if control.text("Type") == "TextArea" {
                        div.field {
                            label for={ "notes-" (id) } { (control.text("Label")) }
                            textarea id={ "notes-" (id) } name=(element.text("Name")) rows="2" {}
                        }
                    }
                }
                div.actions {
                    @for element in elements {
                        @let control = element.get("Control").cloned().unwrap_or(Value::Null);
                        @if control.text("Type") == "SubmitButtonGroup" {
                            @for button in control.list("Buttons") {
                                button.primary type="submit" name=(element.text("Name")) value=(button.text("Value")) { (button.text("Text")) }
                                " "
                            }
                        }
                    }
                }
            }
        }
    }
}
