//! The page shell (header, navigation, the signed-in user) and the small pieces every page
//! shares: state badges, times, breadcrumbs.

use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

use super::Viewer;
use super::api::Field as _;
use super::assets;

/// The portal's top-level sections; the current one is marked in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Dashboard,
    Projects,
    Infrastructure,
    Library,
    Tasks,
    Configuration,
}

impl Section {
    const ALL: [Section; 6] = [
        Section::Dashboard,
        Section::Projects,
        Section::Infrastructure,
        Section::Library,
        Section::Tasks,
        Section::Configuration,
    ];

    fn label(self) -> &'static str {
        match self {
            Section::Dashboard => "Dashboard",
            Section::Projects => "Projects",
            Section::Infrastructure => "Infrastructure",
            Section::Library => "Library",
            Section::Tasks => "Tasks",
            Section::Configuration => "Configuration",
        }
    }

    fn path(self, space_id: &str) -> String {
        match self {
            Section::Dashboard => format!("/app/{space_id}"),
            Section::Projects => format!("/app/{space_id}/projects"),
            Section::Infrastructure => format!("/app/{space_id}/infrastructure"),
            Section::Library => format!("/app/{space_id}/library"),
            Section::Tasks => format!("/app/{space_id}/tasks"),
            Section::Configuration => format!("/app/{space_id}/configuration"),
        }
    }
}

/// A whole page for a signed-in user, inside `space_id`.
pub(crate) fn page(
    viewer: &Viewer,
    space_id: &str,
    section: Section,
    title: &str,
    body: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href={ "/app/" (space_id) } { "Cuttle" }
                    nav aria-label="Main" {
                        ul {
                            @for candidate in Section::ALL {
                                li {
                                    a href=(candidate.path(space_id))
                                        aria-current=[(candidate == section).then_some("page")]
                                    { (candidate.label()) }
                                }
                            }
                        }
                    }
                    div.user {
                        a href={ "/app/" (space_id) "/spaces" } { "Spaces" }
                        span { (display_name(viewer)) }
                        form data-api="POST /api/users/logout" data-then="/app/sign-in" {
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    };
    (
        super::page_headers(),
        axum::response::Html(markup.into_string()),
    )
        .into_response()
}

fn display_name(viewer: &Viewer) -> &str {
    let user = &viewer.caller.user;
    if user.display_name.trim().is_empty() {
        &user.username
    } else {
        &user.display_name
    }
}

/// A page without the navigation (sign-in, errors).
pub(crate) fn bare_page(title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare { (body) }
        }
    };
    (
        super::page_headers(),
        axum::response::Html(markup.into_string()),
    )
        .into_response()
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Cuttle" }
            link rel="stylesheet" href=(assets::STYLESHEET_PATH);
            script src=(assets::SCRIPT_PATH) defer {}
        }
    }
}

/// A page heading with a trail of links above it.
pub(crate) fn heading(trail: &[(&str, String)], title: &str, actions: Markup) -> Markup {
    html! {
        div.heading {
            @if !trail.is_empty() {
                nav.trail aria-label="Breadcrumb" {
                    @for (label, href) in trail {
                        a href=(href) { (label) } " / "
                    }
                }
            }
            h1 { (title) }
            div.actions { (actions) }
        }
    }
}

/// A row of tabs, `current` marked as the page shown.
pub(crate) fn tab_bar(label: &str, tabs: &[(&str, String)], current: &str) -> Markup {
    html! {
        nav.tabs aria-label=(label) {
            @for (tab, href) in tabs {
                a href=(href) aria-current=[(*tab == current).then_some("page")] { (tab) }
            }
        }
    }
}

/// A task state as a coloured badge, with text so colour is never the only signal.
pub(crate) fn state_badge(state: &str) -> Markup {
    html! { span class={ "badge " (state_class(state)) } data-state=(state) { (state_label(state)) } }
}

/// The CSS class of a task state: success, failed, running, queued, cancelled.
pub(crate) fn state_class(state: &str) -> &'static str {
    match state {
        "Success" => "success",
        "Failed" | "TimedOut" => "failed",
        "Executing" | "Cancelling" => "running",
        "Canceled" => "cancelled",
        _ => "queued",
    }
}

/// A state as people read it (`Cancelled`, `Timed out`).
pub(crate) fn state_label(state: &str) -> &str {
    match state {
        "TimedOut" => "Timed out",
        "Canceled" => "Cancelled",
        other => other,
    }
}

/// An API time (`2026-12-06T00:25:01.123+00:00`) as a `<time>` the script shows in local time.
pub(crate) fn time(value: &str) -> Markup {
    if value.is_empty() {
        return html! { span.muted { "—" } };
    }
    let shown = value.get(..19).unwrap_or(value).replace('T', " ");
    html! { time datetime=(value) { (shown) " UTC" } }
}

/// A JSON document embedded for the page's script (`<script type="application/json">`).
pub(crate) fn embedded_json(id: &str, value: &Value) -> Markup {
    // `</` inside a string would end the script element early.
    let text = value.to_string().replace("</", "<\\/");
    html! { script type="application/json" id=(id) { (PreEscaped(text)) } }
}

/// The errors box every form shows its API errors in (and the field errors beside fields).
pub(crate) fn form_errors() -> Markup {
    html! { div.form-errors role="alert" aria-live="polite" hidden {} }
}

// Inputs sit inside their labels, so the association needs no element id and a page may
// hold several forms with the same field names.

/// A labelled text input whose API field is `field`.
pub(crate) fn text_field(label: &str, field: &str, value: &str, required: bool) -> Markup {
    html! {
        div.field {
            label {
                span.label-text { (label) }
                input name=(field) type="text" value=(value) required[required];
            }
            p.field-error data-error-for=(field) hidden {}
        }
    }
}

/// A labelled textarea whose API field is `field`.
pub(crate) fn text_area(label: &str, field: &str, value: &str, rows: u32, code: bool) -> Markup {
    html! {
        div.field {
            label {
                span.label-text { (label) }
                textarea name=(field) rows=(rows) class=[code.then_some("code")]
                    spellcheck=[code.then_some("false")] { (value) }
            }
            p.field-error data-error-for=(field) hidden {}
        }
    }
}

/// A labelled select of `(value, label)` options whose API field is `field`.
pub(crate) fn select_field(
    label: &str,
    field: &str,
    options: &[(String, String)],
    selected: &str,
) -> Markup {
    html! {
        div.field {
            label {
                span.label-text { (label) }
                select name=(field) {
                    @for (value, text) in options {
                        option value=(value) selected[value == selected] { (text) }
                    }
                }
            }
            p.field-error data-error-for=(field) hidden {}
        }
    }
}

/// A checkbox whose API field is `field` (sent as true or false).
pub(crate) fn check_field(label: &str, field: &str, checked: bool) -> Markup {
    html! {
        div.field.check {
            label {
                input name=(field) type="checkbox" checked[checked];
                " " (label)
            }
            p.field-error data-error-for=(field) hidden {}
        }
    }
}

/// An element id for a field name (`Steps[0].Name` → `field-Steps-0--Name`).
pub(crate) fn field_id(field: &str) -> String {
    let mut id = String::from("field-");
    id.extend(field.chars().map(|character| {
        if character.is_ascii_alphanumeric() {
            character
        } else {
            '-'
        }
    }));
    id
}

/// `(Id, Name)` pairs of API resources, for selects.
pub(crate) fn options_of(resources: &[Value]) -> Vec<(String, String)> {
    resources
        .iter()
        .map(|resource| {
            (
                resource.text("Id").to_owned(),
                resource.text("Name").to_owned(),
            )
        })
        .collect()
}
