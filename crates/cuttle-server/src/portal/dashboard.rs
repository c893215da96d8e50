//! The dashboard: every project against every environment, the latest deployment in each
//! cell, grouped by project group; it refreshes itself every few seconds.

use std::collections::HashMap;

use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde_json::Value;

use super::api::Field as _;
use super::layout::{Section, page, state_class, state_label, time};
use super::{PageError, PortalState, Viewer};

pub(crate) fn routes() -> axum::Router<PortalState> {
    axum::Router::new().route("/app/{space_id}", get(dashboard))
}

/// `/app`: the default space's dashboard.
pub(crate) async fn default_space(viewer: Viewer) -> Result<Response, PageError> {
    let spaces = viewer.api.items("/api/spaces").await?;
    let space = spaces
        .iter()
        .find(|space| space.flag("IsDefault"))
        .or_else(|| spaces.first())
        .ok_or_else(|| PageError::not_found("There is no space to show."))?;
    Ok(Redirect::to(&format!("/app/{}", space.text("Id"))).into_response())
}

async fn dashboard(viewer: Viewer, Path(space_id): Path<String>) -> Result<Response, PageError> {
    let dashboard = viewer
        .api
        .get(&format!("/api/{space_id}/dashboard"))
        .await?;
    let body = html! {
        div.heading {
            h1 { "Dashboard" }
            div.actions {
                a.button href={ "/app/" (space_id) "/projects/new" } { "Add project" }
            }
        }
        @if dashboard.list("Projects").is_empty() {
            div.card {
                p { "No projects yet. A project holds a deployment process and its variables; its releases are deployed to environments." }
                p { a href={ "/app/" (space_id) "/projects/new" } { "Create the first project" } }
            }
        } @else {
            div.filters {
                div.field {
                    label for="dashboard-filter" { "Filter projects" }
                    input #dashboard-filter type="search" data-filter="#dashboard tbody tr.project-row"
                        placeholder="Project name";
                }
            }
            div #dashboard data-refresh="5" { (grid(&space_id, &dashboard)) }
        }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Dashboard,
        "Dashboard",
        body,
    ))
}

fn grid(space_id: &str, dashboard: &Value) -> Markup {
    let environments = dashboard.list("Environments");
    let cells: HashMap<(&str, &str), &Value> = dashboard
        .list("Items")
        .iter()
        .map(|item| ((item.text("ProjectId"), item.text("EnvironmentId")), item))
        .collect();
    let projects = dashboard.list("Projects");
    let groups = dashboard.list("ProjectGroups");
    html! {
        table.grid {
            caption.muted { "Latest deployment of each project to each environment" }
            thead {
                tr {
                    th scope="col" { "Project" }
                    @for environment in environments { th scope="col" { (environment.text("Name")) } }
                }
            }
            @for group in groups {
                @let members: Vec<&Value> = projects.iter()
                    .filter(|project| project.text("ProjectGroupId") == group.text("Id")).collect();
                @if !members.is_empty() {
                    tbody {
                        tr.group-row { th colspan=(environments.len() + 1) scope="rowgroup" { (group.text("Name")) } }
                        @for project in members {
                            tr.project-row data-project=(project.text("Name")) {
                                th scope="row" {
                                    a href={ "/app/" (space_id) "/projects/" (project.text("Id")) } { (project.text("Name")) }
                                    @if project.flag("IsDisabled") { " " span.muted { "(disabled)" } }
                                }
                                @for environment in environments {
                                    (cell(space_id, cells.get(&(project.text("Id"), environment.text("Id"))).copied()))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn cell(space_id: &str, item: Option<&Value>) -> Markup {
    match item {
        None => html! { td.empty { span.muted { "—" } } },
        Some(item) => {
            let state = item.text("State");
            let when = if item.text("CompletedTime").is_empty() {
                item.text("QueueTime")
            } else {
                item.text("CompletedTime")
            };
            html! {
                td {
                    a class={ "cell " (state_class(state)) } data-state=(state)
                        href={ "/app/" (space_id) "/tasks/" (item.text("TaskId")) } {
                        span.version { (item.text("ReleaseVersion")) }
                        " "
                        span.state { (state_label(state)) }
                        @if item.flag("HasPendingInterruptions") { " · " strong { "needs you" } }
                        span.when { (time(when)) }
                    }
                }
            }
        }
    }
}
