//! Configuration: the signed-in user's API keys (a new key is shown once) and account.

use axum::extract::Path;
use axum::response::Response;
use axum::routing::get;
use maud::html;

use super::api::Field as _;
use super::layout::{Section, form_errors, heading, page, text_field, time};
use super::{PageError, PortalState, Viewer};

pub(crate) fn routes() -> axum::Router<PortalState> {
    axum::Router::new()
        .route("/app/{space_id}/configuration", get(api_keys))
        .route("/app/{space_id}/spaces", get(spaces))
}

async fn api_keys(viewer: Viewer, Path(space_id): Path<String>) -> Result<Response, PageError> {
    let user_id = viewer.caller.user.id.clone();
    let keys = viewer
        .api
        .items(&format!("/api/users/{user_id}/apikeys"))
        .await?;
    let user = &viewer.caller.user;
    let body = html! {
        (heading(&[], "Configuration", html! {}))
        div.card {
            h2 { "Your account" }
            dl.summary-grid {
                dt { "Username" } dd { (user.username) }
                dt { "Display name" } dd { (user.display_name) }
                dt { "Administrator" } dd { @if user.is_administrator { "Yes" } @else { "No" } }
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

/// Every space the user can see, to switch between them.
async fn spaces(viewer: Viewer, Path(space_id): Path<String>) -> Result<Response, PageError> {
    let spaces = viewer.api.items("/api/spaces").await?;
    let body = html! {
        (heading(&[], "Spaces", html! {}))
        p.muted { "Each space has its own projects, environments, targets and library." }
        table {
            thead { tr { th { "Space" } th { "Description" } } }
            tbody {
                @for space in &spaces {
                    tr {
                        td {
                            a href={ "/app/" (space.text("Id")) } aria-current=[(space.text("Id") == space_id).then_some("page")] { (space.text("Name")) }
                            @if space.flag("IsDefault") { " " span.badge.queued { "Default" } }
                        }
                        td.muted { (space.text("Description")) }
                    }
                }
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
