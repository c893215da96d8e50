//! Infrastructure: environments (create, order), deployment targets with their health and a
//! one-click check, the commands that install and register an agent, SSH targets and
//! accounts, worker pools and workers, machine policies.

use axum::extract::Path;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde_json::Value;

use super::api::Field as _;
use super::layout::{
    Section, check_field, embedded_json, form_errors, heading, options_of, page, select_field,
    tab_bar, text_area, text_field, time,
};
use super::projects::name_in;
use super::{PageError, PortalState, Viewer};

pub(crate) fn routes() -> axum::Router<PortalState> {
    axum::Router::new()
        .route("/app/{space_id}/infrastructure", get(environments))
        .route(
            "/app/{space_id}/infrastructure/environments",
            get(environments),
        )
        .route("/app/{space_id}/infrastructure/targets", get(targets))
        .route(
            "/app/{space_id}/infrastructure/targets/new",
            get(new_target),
        )
        .route("/app/{space_id}/infrastructure/accounts", get(accounts))
        .route("/app/{space_id}/infrastructure/workers", get(workers))
        .route("/app/{space_id}/infrastructure/policies", get(policies))
        .route("/app/downloads/cuttle", get(download_binary))
}

fn tabs(space_id: &str, current: &str) -> Markup {
    let base = format!("/app/{space_id}/infrastructure");
    let tabs = [
        ("Environments", format!("{base}/environments")),
        ("Deployment targets", format!("{base}/targets")),
        ("Accounts", format!("{base}/accounts")),
        ("Workers", format!("{base}/workers")),
        ("Machine policies", format!("{base}/policies")),
    ];
    html! {
        (heading(&[], "Infrastructure", html! {}))
        (tab_bar("Infrastructure", &tabs, current))
    }
}

async fn environments(viewer: Viewer, Path(space_id): Path<String>) -> Result<Response, PageError> {
    let environments = viewer
        .api
        .items(&format!("/api/{space_id}/environments"))
        .await?;
    let body = html! {
        (tabs(&space_id, "Environments"))
        table data-reorder {
            thead { tr { th { "Order" } th { "Environment" } th { "Guided failure by default" } th { span.sr { "Move or delete" } } } }
            tbody {
                @for (index, environment) in environments.iter().enumerate() {
                    tr data-url={ "/api/" (space_id) "/environments/" (environment.text("Id")) } data-resource=(environment.to_string()) {
                        td { (index + 1) }
                        td {
                            details {
                                summary { (environment.text("Name")) }
                                form data-api={ "PUT /api/" (space_id) "/environments/" (environment.text("Id")) }
                                    data-base={ "#environment-" (environment.text("Id")) } data-then="reload" {
                                    (form_errors())
                                    (text_field("Name", "Name", environment.text("Name"), true))
                                    (text_area("Description", "Description", environment.text("Description"), 2, false))
                                    (check_field("Use guided failure by default", "UseGuidedFailure", environment.flag("UseGuidedFailure")))
                                    button.primary type="submit" { "Save" }
                                }
                                (embedded_json(&format!("environment-{}", environment.text("Id")), environment))
                            }
                            span.muted { (environment.text("Description")) }
                        }
                        td { @if environment.flag("UseGuidedFailure") { "Yes" } @else { "No" } }
                        td {
                            button.secondary type="button" data-move="up" disabled[index == 0] aria-label={ "Move " (environment.text("Name")) " earlier" } { "↑" }
                            " "
                            button.secondary type="button" data-move="down" disabled[index + 1 == environments.len()] aria-label={ "Move " (environment.text("Name")) " later" } { "↓" }
                            " "
                            form.inline data-api={ "DELETE /api/" (space_id) "/environments/" (environment.text("Id")) } data-then="reload"
                                data-confirm={ "Delete the environment " (environment.text("Name")) "?" } {
                                button.danger type="submit" aria-label={ "Delete " (environment.text("Name")) } { "Delete" }
                            }
                        }
                    }
                }
            }
        }
        @if environments.is_empty() { p.muted { "No environments yet. Most teams start with Development, Test and Production." } }
        h2 { "Add an environment" }
        form.card data-api={ "POST /api/" (space_id) "/environments" } data-then="reload" {
            (form_errors())
            (text_field("Name", "Name", "", true))
            (text_area("Description", "Description", "", 2, false))
            (check_field("Use guided failure by default", "UseGuidedFailure", false))
            button.primary type="submit" { "Add environment" }
        }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Infrastructure,
        "Environments",
        body,
    ))
}

fn health_badge(status: &str) -> Markup {
    let class = match status {
        "Healthy" => "success",
        "HealthyWithWarnings" => "cancelled",
        "Unhealthy" | "Unavailable" => "failed",
        _ => "queued",
    };
    let label = match status {
        "HealthyWithWarnings" => "Healthy with warnings",
        "" => "Unknown",
        other => other,
    };
    html! { span class={ "badge " (class) } data-health=(status) { (label) } }
}

fn endpoint_label(endpoint: &Value) -> String {
    match endpoint.text("CommunicationStyle") {
        "TentaclePassive" => format!("Listening agent at {}", endpoint.text("Uri")),
        "TentacleActive" => "Polling agent".to_owned(),
        "Ssh" => format!("SSH {}:{}", endpoint.text("Host"), endpoint.number("Port")),
        "None" => "Cloud region (runs on a worker)".to_owned(),
        other => other.to_owned(),
    }
}

async fn targets(viewer: Viewer, Path(space_id): Path<String>) -> Result<Response, PageError> {
    let [machines, environments] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/machines?take=2147483647"),
            &format!("/api/{space_id}/environments?take=2147483647"),
        ])
        .await?;
    let machines = machines.list("Items");
    let environments = environments.list("Items");
    let all_ids: Vec<&str> = machines.iter().map(|machine| machine.text("Id")).collect();
    let body = html! {
        (tabs(&space_id, "Deployment targets"))
        div.filters {
            a.button href={ "/app/" (space_id) "/infrastructure/targets/new" } { "Add deployment target" }
            @if !machines.is_empty() {
                form.inline data-api={ "POST /api/" (space_id) "/tasks" } data-base="#check-all-json"
                    data-then={ "/app/" (space_id) "/tasks/{Id}" } {
                    button.secondary type="submit" { "Check health of all targets" }
                }
            }
        }
        table {
            thead { tr { th { "Target" } th { "Environments" } th { "Roles" } th { "Connection" } th { "Health" } th { "Last check" } th { span.sr { "Actions" } } } }
            tbody {
                @for machine in machines {
                    tr {
                        td { (machine.text("Name")) @if machine.flag("IsDisabled") { " " span.muted { "(disabled)" } } }
                        td { @for id in machine.strings("EnvironmentIds") { (name_in(environments, id)) br; } }
                        td { (machine.strings("Roles").join(", ")) }
                        td { (endpoint_label(machine.get("Endpoint").unwrap_or(&Value::Null))) }
                        td { (health_badge(machine.text("HealthStatus"))) br; span.muted { (machine.text("StatusSummary")) } }
                        td { (time(machine.text("LastHealthCheck"))) }
                        td {
                            form.inline data-api={ "POST /api/" (space_id) "/tasks" }
                                data-then={ "/app/" (space_id) "/tasks/{Id}" } {
                                input type="hidden" name="Name" value="Health";
                                input type="hidden" name="Arguments/MachineIds" data-type="list" value=(machine.text("Id"));
                                button.secondary type="submit" aria-label={ "Check health of " (machine.text("Name")) } { "Check health" }
                            }
                            " "
                            form.inline data-api={ "DELETE /api/" (space_id) "/machines/" (machine.text("Id")) } data-then="reload"
                                data-confirm={ "Delete the target " (machine.text("Name")) "?" } {
                                button.danger type="submit" aria-label={ "Delete " (machine.text("Name")) } { "Delete" }
                            }
                        }
                    }
                }
            }
        }
        @if machines.is_empty() { p.muted { "No deployment targets yet. Add one to run steps on it." } }
        (embedded_json("check-all-json", &serde_json::json!({"Name": "Health", "Arguments": {"MachineIds": all_ids}})))
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Infrastructure,
        "Deployment targets",
        body,
    ))
}

/// The address browsers reach the server at, for commands run on other machines.
fn server_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1:8050");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

async fn new_target(
    viewer: Viewer,
    Path(space_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let [environments, accounts, certificate, space] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/environments?take=2147483647"),
            &format!("/api/{space_id}/accounts?take=2147483647"),
            "/api/certificates/certificate-global",
            &format!("/api/spaces/{space_id}"),
        ])
        .await?;
    let environments = environments.list("Items");
    let first_environment = environments
        .first()
        .map_or("Development", |environment| environment.text("Name"));
    let server = server_url(&headers);
    let thumbprint = certificate.text("Thumbprint");
    let space_name = space.text("Name");
    let download = format!(
        "curl -fsSL -H 'X-Octopus-ApiKey: API-YOURKEY' {server}/app/downloads/cuttle -o cuttle && chmod +x cuttle"
    );
    let polling = format!(
        "./cuttle agent register --server {server} --api-key API-YOURKEY --space '{space_name}' \\\n    --environment '{first_environment}' --role web --polling\n# The server's thumbprint, which registration fetches and pins, must be:\n#   {thumbprint}\n./cuttle agent run"
    );
    let listening = format!(
        "./cuttle agent register --server {server} --api-key API-YOURKEY --space '{space_name}' \\\n    --environment '{first_environment}' --role web --listen-port 10933\n# The server's thumbprint, which registration fetches and pins, must be:\n#   {thumbprint}\n./cuttle agent run"
    );
    let trust = format!(
        "./cuttle agent trust {thumbprint}\n./cuttle agent run\n./cuttle agent show-thumbprint   # paste it below"
    );
    let environment_options = options_of(environments);
    let ssh_accounts: Vec<(String, String)> = options_of(accounts.list("Items"));
    let body = html! {
        (tabs(&space_id, "Deployment targets"))
        h2 { "Install an agent" }
        div.card {
            p { "On the target, download the " code { "cuttle" } " binary from this server (an API key is on your "
                a href={ "/app/" (space_id) "/configuration" } { "API keys page" } "):" }
            pre.command data-command="download" { (download) }
            p { "Then register it. A " strong { "polling" } " agent dials this server (no inbound port on the target):" }
            pre.command data-command="polling" { (polling) }
            p { "Or a " strong { "listening" } " agent, which this server dials on port 10933:" }
            pre.command data-command="listening" { (listening) }
            p.muted { "Server thumbprint: " code #server-thumbprint { (thumbprint) } }
        }
        h2 { "Add a listening agent from here" }
        form.card data-api={ "POST /api/" (space_id) "/machines" } data-then={ "/app/" (space_id) "/infrastructure/targets" } {
            (form_errors())
            p { "On the target, trust this server and start the agent, then enter its address and thumbprint:" }
            pre.command { (trust) }
            input type="hidden" name="Endpoint/CommunicationStyle" value="TentaclePassive";
            (text_field("Name", "Name", "", true))
            (text_field("Agent URL", "Endpoint/Uri", "https://target-host:10933/", true))
            (text_field("Agent thumbprint", "Endpoint/Thumbprint", "", true))
            (environments_field("listening-environments", &environment_options))
            (roles_field("listening-roles"))
            button.primary type="submit" { "Add listening target" }
        }
        h2 { "Add an SSH target" }
        form.card data-api={ "POST /api/" (space_id) "/machines" } data-then={ "/app/" (space_id) "/infrastructure/targets" } {
            (form_errors())
            input type="hidden" name="Endpoint/CommunicationStyle" value="Ssh";
            (text_field("Name", "Name", "", true))
            (text_field("Host", "Endpoint/Host", "", true))
            div.field {
                label for="ssh-port" { "Port" }
                input #ssh-port type="number" name="Endpoint/Port" data-type="number" value="22";
                p.field-error data-error-for="Endpoint/Port" hidden {}
            }
            (text_field("Host key fingerprint (SHA256:…)", "Endpoint/Fingerprint", "", true))
            @if ssh_accounts.is_empty() {
                p.notice { "Add an SSH account first, on the " a href={ "/app/" (space_id) "/infrastructure/accounts" } { "Accounts" } " tab." }
            } @else {
                (select_field("Account", "Endpoint/AccountId", &ssh_accounts, ""))
            }
            (environments_field("ssh-environments", &environment_options))
            (roles_field("ssh-roles"))
            button.primary type="submit" { "Add SSH target" }
        }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Infrastructure,
        "Add deployment target",
        body,
    ))
}

fn environments_field(id: &str, options: &[(String, String)]) -> Markup {
    html! {
        div.field {
            label for=(id) { "Environments" }
            select id=(id) name="EnvironmentIds" multiple required {
                @for (value, text) in options { option value=(value) { (text) } }
            }
            p.field-error data-error-for="EnvironmentIds" hidden {}
        }
    }
}

fn roles_field(id: &str) -> Markup {
    html! {
        div.field {
            label for=(id) { "Roles (comma-separated)" }
            input id=(id) type="text" name="Roles" data-type="list" required;
            p.field-error data-error-for="Roles" hidden {}
        }
    }
}

async fn accounts(viewer: Viewer, Path(space_id): Path<String>) -> Result<Response, PageError> {
    let accounts = viewer
        .api
        .items(&format!("/api/{space_id}/accounts"))
        .await?;
    let body = html! {
        (tabs(&space_id, "Accounts"))
        table {
            thead { tr { th { "Account" } th { "Type" } th { "Username" } th { span.sr { "Delete" } } } }
            tbody {
                @for account in &accounts {
                    @let id = account.text("Id");
                    @let is_key = account.text("AccountType") == "SshKeyPair";
                    tr data-account=(account.text("Name")) {
                        td {
                            details {
                                summary { (account.text("Name")) }
                                // The stored secrets stay unless a new one is typed: the base
                                // document carries them redacted, and empty fields are left out.
                                form data-api={ "PUT /api/" (space_id) "/accounts/" (id) } data-base={ "#account-" (id) } data-then="reload" {
                                    (form_errors())
                                    (text_field("Name", "Name", account.text("Name"), true))
                                    (text_field("Username", "Username", account.text("Username"), true))
                                    @if is_key {
                                        div.field {
                                            label { span.label-text { "New private key (empty: keep the current one)" }
                                                textarea name="PrivateKeyFile/NewValue" rows="4" class="code" autocomplete="off" spellcheck="false" data-omit-empty {} }
                                        }
                                        div.field {
                                            label { span.label-text { "New passphrase (empty: keep the current one)" }
                                                input type="password" name="PrivateKeyPassphrase/NewValue" autocomplete="new-password" data-omit-empty; }
                                        }
                                    } @else {
                                        div.field {
                                            label { span.label-text { "New password (empty: keep the current one)" }
                                                input type="password" name="Password/NewValue" autocomplete="new-password" data-omit-empty; }
                                            p.field-error data-error-for="Password" hidden {}
                                        }
                                    }
                                    button.primary type="submit" { "Save" }
                                }
                                (embedded_json(&format!("account-{id}"), account))
                            }
                        }
                        td { (account.text("AccountType")) } td { (account.text("Username")) }
                        td {
                            form.inline data-api={ "DELETE /api/" (space_id) "/accounts/" (account.text("Id")) } data-then="reload"
                                data-confirm={ "Delete the account " (account.text("Name")) "?" } {
                                (form_errors())
                                button.danger type="submit" aria-label={ "Delete " (account.text("Name")) } { "Delete" }
                            }
                        }
                    }
                }
            }
        }
        @if accounts.is_empty() { p.muted { "No accounts yet. SSH targets sign in with one." } }
        div.columns {
            form.card data-api={ "POST /api/" (space_id) "/accounts" } data-then="reload" {
                h2 { "Add an SSH key pair" }
                (form_errors())
                input type="hidden" name="AccountType" value="SshKeyPair";
                (text_field("Name", "Name", "", true))
                (text_field("Username", "Username", "", true))
                div.field {
                    label for="private-key" { "Private key (PEM or OpenSSH)" }
                    textarea #private-key name="PrivateKeyFile/NewValue" rows="6" class="code" autocomplete="off" spellcheck="false" required {}
                    p.field-error data-error-for="PrivateKeyFile" hidden {}
                }
                div.field {
                    label for="passphrase" { "Passphrase (if any)" }
                    input #passphrase type="password" name="PrivateKeyPassphrase/NewValue" autocomplete="new-password" data-omit-empty;
                }
                button.primary type="submit" { "Add account" }
            }
            form.card data-api={ "POST /api/" (space_id) "/accounts" } data-then="reload" {
                h2 { "Add a username and password" }
                (form_errors())
                input type="hidden" name="AccountType" value="UsernamePassword";
                (text_field("Name", "Name", "", true))
                (text_field("Username", "Username", "", true))
                div.field {
                    label for="account-password" { "Password" }
                    input #account-password type="password" name="Password/NewValue" autocomplete="new-password" required;
                    p.field-error data-error-for="Password" hidden {}
                }
                button.primary type="submit" { "Add account" }
            }
        }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Infrastructure,
        "Accounts",
        body,
    ))
}

async fn workers(viewer: Viewer, Path(space_id): Path<String>) -> Result<Response, PageError> {
    let [pools, workers] = viewer
        .api
        .get_all([
            &format!("/api/{space_id}/workerpools?take=2147483647"),
            &format!("/api/{space_id}/workers?take=2147483647"),
        ])
        .await?;
    let pools = pools.list("Items");
    let workers = workers.list("Items");
    let body = html! {
        (tabs(&space_id, "Workers"))
        p.muted { "Steps that run on a worker use a registered worker of their pool; when the default pool has none, the server's built-in worker runs them." }
        @for pool in pools {
            h2 { (pool.text("Name")) @if pool.flag("IsDefault") { " " span.badge.queued { "Default pool" } } }
            @if !pool.flag("IsDefault") {
                form.inline data-api={ "DELETE /api/" (space_id) "/workerpools/" (pool.text("Id")) } data-then="reload"
                    data-confirm={ "Delete the worker pool " (pool.text("Name")) "?" } {
                    button.danger type="submit" aria-label={ "Delete " (pool.text("Name")) } { "Delete pool" }
                    (form_errors())
                }
            }
            @let members: Vec<&Value> = workers.iter().filter(|worker| worker.strings("WorkerPoolIds").contains(&pool.text("Id"))).collect();
            @if members.is_empty() {
                p.muted { "No workers: " @if pool.flag("IsDefault") { "the built-in worker runs this pool's steps." } @else { "register one with " code { "cuttle agent register-worker --worker-pool '" (pool.text("Name")) "'" } "." } }
            } @else {
                table {
                    thead { tr { th { "Worker" } th { "Connection" } th { "Health" } th { "Last check" } } }
                    tbody {
                        @for worker in members {
                            tr {
                                td { (worker.text("Name")) }
                                td { (endpoint_label(worker.get("Endpoint").unwrap_or(&Value::Null))) }
                                td { (health_badge(worker.text("HealthStatus"))) }
                                td { (time(worker.text("LastHealthCheck"))) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Add a worker pool" }
        form.card data-api={ "POST /api/" (space_id) "/workerpools" } data-then="reload" {
            (form_errors())
            (text_field("Name", "Name", "", true))
            (text_area("Description", "Description", "", 2, false))
            button.primary type="submit" { "Add worker pool" }
        }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Infrastructure,
        "Workers",
        body,
    ))
}

async fn policies(viewer: Viewer, Path(space_id): Path<String>) -> Result<Response, PageError> {
    let policies = viewer
        .api
        .items(&format!("/api/{space_id}/machinepolicies"))
        .await?;
    let body = html! {
        (tabs(&space_id, "Machine policies"))
        @for policy in &policies {
            @let health = policy.get("MachineHealthCheckPolicy").cloned().unwrap_or(Value::Null);
            form.card data-api={ "PUT /api/" (space_id) "/machinepolicies/" (policy.text("Id")) }
                data-base={ "#policy-" (policy.text("Id")) } data-then="reload" {
                h2 { (policy.text("Name")) @if policy.flag("IsDefault") { " " span.badge.queued { "Default" } } }
                (form_errors())
                (text_field("Health check interval (hh:mm:ss or d.hh:mm:ss)", "MachineHealthCheckPolicy/HealthCheckInterval",
                    health.text("HealthCheckInterval"), true))
                (select_field("Health check", "MachineHealthCheckPolicy/HealthCheckType", &[
                    ("RunScript".to_owned(), "Connect and run the health script".to_owned()),
                    ("OnlyConnectivity".to_owned(), "Only check the connection".to_owned()),
                ], health.text("HealthCheckType")))
                (text_area("Bash health script", "MachineHealthCheckPolicy/BashHealthCheckPolicy/ScriptBody",
                    health.get("BashHealthCheckPolicy").map_or("", |script| script.text("ScriptBody")), 4, true))
                button.primary type="submit" { "Save policy" }
                (embedded_json(&format!("policy-{}", policy.text("Id")), policy))
            }
            @if !policy.flag("IsDefault") {
                form.inline data-api={ "DELETE /api/" (space_id) "/machinepolicies/" (policy.text("Id")) } data-then="reload"
                    data-confirm={ "Delete the machine policy " (policy.text("Name")) "?" } {
                    button.danger type="submit" aria-label={ "Delete " (policy.text("Name")) } { "Delete policy" }
                    (form_errors())
                }
            }
        }
        form.card #new-policy data-api={ "POST /api/" (space_id) "/machinepolicies" } data-then="reload" {
            h2 { "Add a machine policy" }
            (form_errors())
            (text_field("Name", "Name", "", true))
            (text_field("Health check interval (hh:mm:ss or d.hh:mm:ss)", "MachineHealthCheckPolicy/HealthCheckInterval", "01:00:00", true))
            (select_field("Health check", "MachineHealthCheckPolicy/HealthCheckType", &[
                ("OnlyConnectivity".to_owned(), "Only check the connection".to_owned()),
                ("RunScript".to_owned(), "Connect and run the health script".to_owned()),
            ], "OnlyConnectivity"))
            (text_area("Bash health script", "MachineHealthCheckPolicy/BashHealthCheckPolicy/ScriptBody", "", 4, false))
            button.primary type="submit" { "Add machine policy" }
        }
    };
    Ok(page(
        &viewer,
        &space_id,
        Section::Infrastructure,
        "Machine policies",
        body,
    ))
}

/// The server's own binary, for installing an agent on a machine like this one.
///
/// Answers 401 rather than the sign-in page without credentials, so `curl -f` fails clearly.
async fn download_binary(
    axum::extract::State(state): axum::extract::State<PortalState>,
    request: axum::extract::Request,
) -> Result<Response, Response> {
    let (parts, _) = request.into_parts();
    crate::auth::authenticate(&state.app, &parts)
        .await
        .map_err(IntoResponse::into_response)?;
    let path = std::env::current_exe().map_err(|_| {
        PageError::not_found("The server cannot find its own binary.").into_response()
    })?;
    let file = tokio::fs::File::open(&path).await.map_err(|_| {
        PageError::not_found("The server cannot read its own binary.").into_response()
    })?;
    let length = file.metadata().await.map(|metadata| metadata.len()).ok();
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"cuttle\"".to_owned(),
            ),
        ],
        body,
    )
        .into_response();
    if let Some(length) = length
        && let Ok(value) = header::HeaderValue::from_str(&length.to_string())
    {
        response.headers_mut().insert(header::CONTENT_LENGTH, value);
    }
    Ok(response)
}
