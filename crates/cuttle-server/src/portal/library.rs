//! The library: packages (upload with progress, versions, delete), library variable sets and
//! the lifecycles editor (phases, automatic and optional environments, retention).

use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::Field as _;
use super::layout::{
    Section, check_field, embedded_json, form_errors, heading, page, select_field, tab_bar,
    text_area, text_field, time,
};
use super::projects::variables_editor;
use super::{PageError, PortalState, Viewer};

pub(crate) fn routes() -> axum::Router<PortalState> {
    axum::Router::new()
        .route("/app/{space_id}/library", get(packages))
        .route("/app/{space_id}/library/packages", get(packages))
        .route(
            "/app/{space_id}/library/packages/{package_id}",
            get(package_versions),
        )
        .route("/app/{space_id}/library/variables", get(variable_sets))
        .route(
            "/app/{space_id}/library/variables/{set_id}",
            get(variable_set),
        )
        .route("/app/{space_id}/library/lifecycles", get(lifecycles))
        .route(
            "/app/{space_id}/library/lifecycles/{lifecycle_id}",
            get(lifecycle),
        )
}

fn tabs(space_id: &str, current: &str) -> Markup {
    let base = format!("/app/{space_id}/library");
    let tabs = [
        ("Packages", format!("{base}/packages")),
        ("Variable sets", format!("{base}/variables")),
        ("Lifecycles", format!("{base}/lifecycles")),
    ];
    html! {
        (heading(&[], "Library", html! {}))
        (tab_bar("Library", &tabs, current))
    }
}

/// Bytes as a person reads them.
fn size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

async fn packages(viewer: Viewer, Path(space_id): Path<String>) -> Result<Response, PageError> {
    let latest = viewer
        .api
        .items(&format!("/api/{space_id}/packages?latest=true"))
        .await?;
    let body = html! {
        (tabs(&space_id, "Packages"))
        form.card data-upload={ "/api/" (space_id) "/packages/raw" } {
            h2 { "Upload a package" }
            (form_errors())
            div.field {
                label for="package-file" { "Package file (.zip, .tar.gz, .tgz, .tar, .tar.bz2, .nupkg), named id.version.ext" }
                input #package-file type="file" name="fileToUpload" required;
                p.field-error data-error-for="fileToUpload" hidden {}
            }
            div.field {
                label {
                    span.label-text { "If this version is already in the feed" }
                    select name="overwriteMode" {
                        option value="FailIfExists" { "Refuse the upload" }
                        option value="OverwriteExisting" { "Replace it" }
                        option value="IgnoreIfExists" { "Keep the one in the feed" }
                    }
                }
            }
            progress hidden value="0" max="1" aria-label="Upload progress" {}
            button.primary type="submit" { "Upload" }
        }
        div.filters {
            div.field {
                label for="package-filter" { "Filter packages" }
                input #package-filter type="search" data-filter="#packages tbody tr" placeholder="Package ID";
            }
        }
        table #packages {
            thead { tr { th { "Package" } th { "Latest version" } th { "Size" } th { "Published" } } }
            tbody {
                @for package in &latest {
                    tr {
                        td { a href={ "/app/" (space_id) "/library/packages/" (package.text("PackageId")) } { (package.text("PackageId")) } }
                        td { (package.text("Version")) }
                        td { (size(package.number("PackageSizeBytes"))) }
                        td { (time(package.text("Published"))) }
                    }
                }
            }
        }
        @if latest.is_empty() { p.muted { "No packages yet. Upload one here or push one from CI with " code { "cuttle package push" } "." } }
    };
    Ok(page(&viewer, &space_id, Section::Library, "Packages", body))
}

async fn package_versions(
    viewer: Viewer,
    Path((space_id, package_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let filter: String = form_urlencoded::byte_serialize(package_id.as_bytes()).collect();
    let versions: Vec<Value> = viewer
        .api
        .items(&format!("/api/{space_id}/packages?filter={filter}"))
        .await?
        .into_iter()
        .filter(|package| package.text("PackageId").eq_ignore_ascii_case(&package_id))
        .collect();
    // Paths are matched case-insensitively (a letters-only id arrives lower-cased): show the
    // id as the feed spells it.
    let package_id = versions.first().map_or(package_id.clone(), |package| {
        package.text("PackageId").to_owned()
    });
    let body = html! {
        (heading(&[("Library", format!("/app/{space_id}/library/packages"))], &package_id, html! {}))
        table {
            thead { tr { th { "Version" } th { "Size" } th { "SHA-256" } th { "Published" } th { span.sr { "Actions" } } } }
            tbody {
                @for package in &versions {
                    tr {
                        td { (package.text("Version")) }
                        td { (size(package.number("PackageSizeBytes"))) }
                        td { code { (package.text("Hash").get(..16).unwrap_or_default()) "…" } }
                        td { (time(package.text("Published"))) }
                        td {
                            a href={ "/api/" (space_id) "/packages/" (package.text("Id")) "/raw" } { "Download" }
                            " "
                            form.inline data-api={ "DELETE /api/" (space_id) "/packages/" (package.text("Id")) } data-then="reload"
                                data-confirm={ "Delete " (package_id) " " (package.text("Version")) "?" } {
                                button.danger type="submit" aria-label={ "Delete version " (package.text("Version")) } { "Delete" }
                            }
                        }
                    }
                }
            }
        }
        @if versions.is_empty() { p.muted { "No versions of this package." } }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Library,
        &package_id,
        body,
    ))
}

async fn variable_sets(
    viewer: Viewer,
    Path(space_id): Path<String>,
) -> Result<Response, PageError> {
    let sets = viewer
        .api
        .items(&format!("/api/{space_id}/libraryvariablesets"))
        .await?;
    let body = html! {
        (tabs(&space_id, "Variable sets"))
        table {
            thead { tr { th { "Variable set" } th { "Description" } } }
            tbody {
                @for set in &sets {
                    tr {
                        td { a href={ "/app/" (space_id) "/library/variables/" (set.text("Id")) } { (set.text("Name")) } }
                        td.muted { (set.text("Description")) }
                    }
                }
            }
        }
        @if sets.is_empty() { p.muted { "No library variable sets yet. Projects include them to share variables." } }
        h2 { "Add a variable set" }
        form.card data-api={ "POST /api/" (space_id) "/libraryvariablesets" } data-then={ "/app/" (space_id) "/library/variables/{Id}" } {
            (form_errors())
            input type="hidden" name="ContentType" value="Variables";
            (text_field("Name", "Name", "", true))
            (text_area("Description", "Description", "", 2, false))
            button.primary type="submit" { "Add variable set" }
        }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Library,
        "Variable sets",
        body,
    ))
}

async fn variable_set(
    viewer: Viewer,
    Path((space_id, set_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let library_set = viewer
        .api
        .get(&format!("/api/{space_id}/libraryvariablesets/{set_id}"))
        .await?;
    let set_url = format!(
        "/api/{space_id}/variables/{}",
        library_set.text("VariableSetId")
    );
    let set = viewer.api.get(&set_url).await?;
    let body = html! {
        (heading(&[("Library", format!("/app/{space_id}/library/variables"))], library_set.text("Name"), html! {}))
        (variables_editor(&set_url, &set))
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Library,
        library_set.text("Name"),
        body,
    ))
}

async fn lifecycles(viewer: Viewer, Path(space_id): Path<String>) -> Result<Response, PageError> {
    let [lifecycles, environments] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/lifecycles?take=2147483647"),
            &format!("/api/{space_id}/environments?take=2147483647"),
        ])
        .await?;
    let environments = environments.list("Items");
    let body = html! {
        (tabs(&space_id, "Lifecycles"))
        table {
            thead { tr { th { "Lifecycle" } th { "Phases" } th { "Keeps releases" } th { span.sr { "Delete" } } } }
            tbody {
                @for lifecycle in lifecycles.list("Items") {
                    tr {
                        td { a href={ "/app/" (space_id) "/library/lifecycles/" (lifecycle.text("Id")) } { (lifecycle.text("Name")) } }
                        td {
                            @if lifecycle.list("Phases").is_empty() {
                                span.muted { "One phase per environment, in order: " }
                                @for environment in environments { (environment.text("Name")) " " }
                            }
                            @for phase in lifecycle.list("Phases") { (phase.text("Name")) br; }
                        }
                        td { (retention_text(lifecycle.get("ReleaseRetentionPolicy").unwrap_or(&Value::Null))) }
                        td {
                            form.inline data-api={ "DELETE /api/" (space_id) "/lifecycles/" (lifecycle.text("Id")) } data-then="reload"
                                data-confirm={ "Delete the lifecycle " (lifecycle.text("Name")) "?" } {
                                button.danger type="submit" aria-label={ "Delete " (lifecycle.text("Name")) } { "Delete" }
                                (form_errors())
                            }
                        }
                    }
                }
            }
        }
        h2 { "Add a lifecycle" }
        form.card data-api={ "POST /api/" (space_id) "/lifecycles" } data-then={ "/app/" (space_id) "/library/lifecycles/{Id}" } {
            (form_errors())
            (text_field("Name", "Name", "", true))
            (text_area("Description", "Description", "", 2, false))
            button.primary type="submit" { "Add lifecycle" }
        }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Library,
        "Lifecycles",
        body,
    ))
}

fn retention_text(policy: &Value) -> String {
    if policy.is_null() || policy.flag("ShouldKeepForever") {
        "Forever".to_owned()
    } else {
        format!(
            "{} {}",
            policy.number("QuantityToKeep"),
            policy.text("Unit").to_lowercase()
        )
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LifecycleQuery {
    add_phase: bool,
}

async fn lifecycle(
    viewer: Viewer,
    Path((space_id, lifecycle_id)): Path<(String, String)>,
    Query(query): Query<LifecycleQuery>,
) -> Result<Response, PageError> {
    let [mut lifecycle, environments] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/lifecycles/{lifecycle_id}"),
            &format!("/api/{space_id}/environments?take=2147483647"),
        ])
        .await?;
    if query.add_phase
        && let Some(phases) = lifecycle.get_mut("Phases").and_then(Value::as_array_mut)
    {
        let number = phases.len() + 1;
        phases.push(json!({
            "Name": format!("Phase {number}"),
            "AutomaticDeploymentTargets": [],
            "OptionalDeploymentTargets": [],
            "MinimumEnvironmentsBeforePromotion": 0,
            "IsOptionalPhase": false,
        }));
    }
    let environments = environments.list("Items");
    let retention = lifecycle
        .get("ReleaseRetentionPolicy")
        .cloned()
        .unwrap_or(Value::Null);
    let units = [
        ("Items".to_owned(), "releases".to_owned()),
        ("Days".to_owned(), "days".to_owned()),
    ];
    let body = html! {
        (heading(&[("Library", format!("/app/{space_id}/library/lifecycles"))], lifecycle.text("Name"), html! {
            a.button.secondary href={ "?add_phase=true" } { "Add phase" }
        }))
        form data-api={ "PUT /api/" (space_id) "/lifecycles/" (lifecycle_id) } data-base="#lifecycle-json"
            data-transform="lifecycle" data-then={ "/app/" (space_id) "/library/lifecycles/" (lifecycle_id) } {
            (form_errors())
            div.card {
                (text_field("Name", "Name", lifecycle.text("Name"), true))
                (text_area("Description", "Description", lifecycle.text("Description"), 2, false))
            }
            @if lifecycle.list("Phases").is_empty() {
                p.notice { "No phases: releases go through every environment, one phase each, in order. Add a phase to choose." }
            }
            @for (index, phase) in lifecycle.list("Phases").iter().enumerate() {
                fieldset.card {
                    legend { "Phase " (index + 1) }
                    (text_field("Phase name", &format!("Phases/{index}/Name"), phase.text("Name"), true))
                    (environment_select("Deploy automatically to", &format!("Phases/{index}/AutomaticDeploymentTargets"),
                        environments, &phase.strings("AutomaticDeploymentTargets")))
                    (environment_select("Deploy manually to", &format!("Phases/{index}/OptionalDeploymentTargets"),
                        environments, &phase.strings("OptionalDeploymentTargets")))
                    div.field {
                        label for={ "minimum-" (index) } { "Environments to complete before the next phase (0: all)" }
                        input id={ "minimum-" (index) } type="number" min="0" data-type="number"
                            name={ "Phases/" (index) "/MinimumEnvironmentsBeforePromotion" } value=(phase.number("MinimumEnvironmentsBeforePromotion"));
                        p.field-error data-error-for={ "Phases/" (index) "/MinimumEnvironmentsBeforePromotion" } hidden {}
                    }
                    (check_field("Optional phase (may be skipped)", &format!("Phases/{index}/IsOptionalPhase"), phase.flag("IsOptionalPhase")))
                    (check_field("Remove this phase", &format!("Phases/{index}/RemovePhase"), false))
                }
            }
            fieldset.card {
                legend { "Retention" }
                (check_field("Keep releases forever", "ReleaseRetentionPolicy/ShouldKeepForever", retention.flag("ShouldKeepForever")))
                div.field {
                    label for="retention-quantity" { "Keep the last" }
                    input #retention-quantity type="number" min="0" data-type="number"
                        name="ReleaseRetentionPolicy/QuantityToKeep" value=(retention.number("QuantityToKeep"));
                }
                (select_field("of", "ReleaseRetentionPolicy/Unit", &units, retention.text("Unit")))
            }
            button.primary type="submit" { "Save lifecycle" }
        }
        (embedded_json("lifecycle-json", &lifecycle))
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Library,
        lifecycle.text("Name"),
        body,
    ))
}

fn environment_select(
    label: &str,
    field: &str,
    environments: &[Value],
    selected: &[&str],
) -> Markup {
    let id = super::layout::field_id(field);
    html! {
        div.field {
            label for=(id) { (label) }
            select id=(id) name=(field) multiple {
                @for environment in environments {
                    option value=(environment.text("Id")) selected[selected.contains(&environment.text("Id"))] { (environment.text("Name")) }
                }
            }
            p.field-error data-error-for=(field) hidden {}
        }
    }
}
