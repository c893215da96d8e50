//! Configuration: the signed-in user's account (password) and API keys (a new key is shown
//! once), the users page for administrators, and the spaces.

use axum::extract::Path;
use axum::response::Response;
use axum::routing::get;
use maud::html;

use super::api::Field as _;
use super::layout::{
    Section, check_field, embedded_json, form_errors, heading, page, text_area, text_field, time,
};
use super::{PageError, PortalState, Viewer};

pub(crate) fn routes() -> axum::Router<PortalState> {
    axum::Router::new()
        .route("/app/{space_id}/configuration", get(api_keys))
        .route("/app/{space_id}/spaces", get(spaces))
        .route("/app/{space_id}/users", get(users))
}

async fn api_keys(viewer: Viewer, Path(space_id): Path<String>) -> Result<Response, PageError> {
    let user_id = viewer.caller.user.id.clone();
    let keys = viewer
        .api
        .items(&format!("/api/users/{user_id}/apikeys"))
        .await?;
    let user = &viewer.caller.user;
    let body = html! {
        (heading(&[], "Configuration", html! {
            a.button href={ "/app/" (space_id) "/users" } { "Users" }
        }))
        div.card {
            h2 { "Your account" }
            dl.summary-grid {
                dt { "Username" } dd { (user.username) }
                dt { "Display name" } dd { (user.display_name) }
                dt { "Administrator" } dd { @if user.is_administrator { "Yes" } @else { "No" } }
            }
        }
        @if !user.is_service {
            form.card #change-password data-api="PUT /api/users/me" data-then="reload" {
                h2 { "Change your password" }
                (form_errors())
                (password_field("Current password", "OldPassword", "current-password"))
                (password_field("New password (at least 8 characters)", "Password", "new-password"))
                button.primary type="submit" { "Change password" }
            }
        }
        h2 { "API keys" }
        p.muted { "CI servers and the " code { "cuttle" } " command line sign in with an API key. A key is shown once, when it is created." }
        table #api-keys {
            thead { tr { th { "Purpose" } th { "Created" } th { "Expires" } th { span.sr { "Revoke" } } } }
            tbody {
                @for key in &keys {
                    tr {
                        td { (key.text("Purpose")) }
                        td { (time(key.text("Created"))) }
                        td { @if key.text("Expires").is_empty() { "Never" } @else { (time(key.text("Expires"))) } }
                        td {
                            form.inline data-api={ "DELETE /api/users/" (user_id) "/apikeys/" (key.text("Id")) } data-then="reload"
                                data-confirm={ "Revoke the key for " (key.text("Purpose")) "? Anything using it stops working." } {
                                button.danger type="submit" aria-label={ "Revoke " (key.text("Purpose")) } { "Revoke" }
                            }
                        }
                    }
                }
            }
        }
        @if keys.is_empty() { p.muted { "You have no API keys." } }
        form.card data-api={ "POST /api/users/" (user_id) "/apikeys" } data-show="#new-api-key" {
            h2 { "Create an API key" }
            (form_errors())
            (text_field("Purpose", "Purpose", "", true))
            div.field {
                label for="field-Expires" { "Expires (empty: never)" }
                input #field-Expires type="datetime-local" name="Expires" data-type="datetime" data-omit-empty;
                p.field-error data-error-for="Expires" hidden {}
            }
            button.primary type="submit" { "Create API key" }
        }
        div.card.notice #new-api-key hidden tabindex="-1" data-field="ApiKey" role="status" {
            p { strong { "Your new API key. Copy it now: it will not be shown again." } }
            pre.command data-value {}
            p { a href="" { "Done" } }
        }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Configuration,
        "Configuration",
        body,
    ))
}

/// A labelled password input whose API field is `field`.
fn password_field(label: &str, field: &str, autocomplete: &str) -> maud::Markup {
    html! {
        div.field {
            label {
                span.label-text { (label) }
                input name=(field) type="password" autocomplete=(autocomplete) required;
            }
            p.field-error data-error-for=(field) hidden {}
        }
    }
}

/// The users (administrators only): add, activate or deactivate, make or stop being an
/// administrator, delete.
async fn users(viewer: Viewer, Path(space_id): Path<String>) -> Result<Response, PageError> {
    if !viewer.caller.user.is_administrator {
        let body = html! {
            (heading(&[], "Users", html! {}))
            p { "Only administrators manage users. Ask one to add or change an account." }
        };
        return Ok(page(
            &viewer,
            &space_id,
            Section::Configuration,
            "Users",
            body,
        ));
    }
    let users = viewer.api.items("/api/users?take=2147483647").await?;
    let body = html! {
        (heading(&[("Configuration", format!("/app/{space_id}/configuration"))], "Users", html! {}))
        p.muted { "Administrators change everything; other users see configuration and deployments but change only their own account." }
        table #users {
            thead { tr { th { "Username" } th { "Name" } th { "Email" } th { "Role" } th { "State" } th { span.sr { "Actions" } } } }
            tbody {
                @for user in &users {
                    @let id = user.text("Id");
                    @let name = user.text("Username");
                    tr data-user=(name) {
                        td { (name) @if user.flag("IsService") { " " span.badge.queued { "Service" } } }
                        td { (user.text("DisplayName")) }
                        td { (user.text("EmailAddress")) }
                        td { @if user.flag("IsAdministrator") { "Administrator" } @else { "Viewer" } }
                        td { @if user.flag("IsActive") { "Active" } @else { span.badge.failed { "Deactivated" } } }
                        td.actions {
                            form.inline data-api={ "PUT /api/users/" (id) } data-then="reload" {
                                input type="hidden" name="IsAdministrator" data-type="json" value=(if user.flag("IsAdministrator") { "false" } else { "true" });
                                button type="submit" { @if user.flag("IsAdministrator") { "Make viewer" } @else { "Make administrator" } }
                            }
                            " "
                            form.inline data-api={ "PUT /api/users/" (id) } data-then="reload" {
                                input type="hidden" name="IsActive" data-type="json" value=(if user.flag("IsActive") { "false" } else { "true" });
                                button type="submit" { @if user.flag("IsActive") { "Deactivate" } @else { "Activate" } }
                            }
                            " "
                            form.inline data-api={ "DELETE /api/users/" (id) } data-then="reload"
                                data-confirm={ "Delete " (name) "? Their API keys stop working." } {
                                button.danger type="submit" aria-label={ "Delete " (name) } { "Delete" }
                            }
                        }
                    }
                }
            }
        }
        form.card #new-user data-api="POST /api/users" data-then="reload" {
            h2 { "Add a user" }
            (form_errors())
            (text_field("Username", "Username", "", true))
            (text_field("Display name", "DisplayName", "", false))
            (text_field("Email address", "EmailAddress", "", false))
            (password_field("Password (at least 8 characters)", "Password", "new-password"))
            (check_field("Administrator", "IsAdministrator", false))
            button.primary type="submit" { "Add user" }
        }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Configuration,
        "Users",
        body,
    ))
}

/// Every space the user can see, to switch between them; administrators add, rename and
/// delete spaces here.
async fn spaces(viewer: Viewer, Path(space_id): Path<String>) -> Result<Response, PageError> {
    let spaces = viewer.api.items("/api/spaces").await?;
    let administrator = viewer.caller.user.is_administrator;
    let body = html! {
        (heading(&[], "Spaces", html! {}))
        p.muted { "Each space has its own projects, environments, targets and library." }
        table #spaces {
            thead { tr { th { "Space" } th { "Description" } @if administrator { th { span.sr { "Delete" } } } } }
            tbody {
                @for space in &spaces {
                    @let id = space.text("Id");
                    tr data-space=(space.text("Name")) {
                        td {
                            a href={ "/app/" (id) } aria-current=[(id == space_id).then_some("page")] { (space.text("Name")) }
                            @if space.flag("IsDefault") { " " span.badge.queued { "Default" } }
                            @if administrator {
                                details {
                                    summary { "Edit" }
                                    form data-api={ "PUT /api/spaces/" (id) } data-base={ "#space-" (id) } data-then="reload" {
                                        (form_errors())
                                        (text_field("Name", "Name", space.text("Name"), true))
                                        (text_area("Description", "Description", space.text("Description"), 2, false))
                                        (check_field("Task queue stopped: no new tasks start (needed before the space can be deleted)",
                                            "TaskQueueStopped", space.flag("TaskQueueStopped")))
                                        button.primary type="submit" { "Save" }
                                    }
                                    (embedded_json(&format!("space-{id}"), space))
                                }
                            }
                        }
                        td.muted { (space.text("Description")) }
                        @if administrator {
                            td {
                                @if !space.flag("IsDefault") {
                                    form.inline data-api={ "DELETE /api/spaces/" (id) } data-then="reload"
                                        data-confirm={ "Delete the space " (space.text("Name")) " and everything in it: projects, releases, deployments, targets, packages?" } {
                                        button.danger type="submit" aria-label={ "Delete " (space.text("Name")) } { "Delete" }
                                        (form_errors())
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if administrator {
            form.card #new-space data-api="POST /api/spaces" data-then="reload" {
                h2 { "Add a space" }
                (form_errors())
                (text_field("Name", "Name", "", true))
                (text_area("Description", "Description", "", 2, false))
                button.primary type="submit" { "Add space" }
            }
        }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Configuration,
        "Spaces",
        body,
    ))
}
