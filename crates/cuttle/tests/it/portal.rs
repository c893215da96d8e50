//! The web portal in a real headless Chromium (Debian's `chromium`, driven by `chromedriver`
//! over WebDriver), against the real server and a real listening agent: sign in, create
//! environments and an API key, register the agent with the command the portal shows, build a
//! project with a script step and a sensitive variable, create a release, deploy it and watch
//! the live log reach Success, promote it, and see the dashboard turn green. A validation
//! error from the API shows beside its field. Screenshots of the main pages are saved in
//! `target/browser-screenshots/` (or `CUTTLE_SCREENSHOT_DIR`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cuttle_test_support::{TEST_ADMIN_PASSWORD, TestServer, running_in_ci};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

use super::agents::{free_port, run_agent};
use serde_json::json;

use super::{send, server};

const CUTTLE: &str = env!("CARGO_BIN_EXE_cuttle");
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a page may take to show what the test waits for (deployments included).
const WAIT: Duration = Duration::from_secs(60);

/// A headless Chromium session; the driver process is stopped when dropped.
struct Browser {
    client: Client,
    driver: Child,
    base_url: String,
    screenshots: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Starts chromedriver and a browser session, or `None` (outside CI only) when Chromium or
/// chromedriver is not installed; under `CI=true` a missing browser fails the test.
async fn start_browser(server: &TestServer) -> Option<Browser> {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        assert!(
            !running_in_ci(),
            "CI=true but {CHROMIUM} or {CHROMEDRIVER} is missing: install Debian's chromium and chromium-driver (scripts/test.sh does)"
        );
        #[allow(clippy::print_stderr)] // the one way a skipped test can say so
        {
            eprintln!(
                "note: the browser test did not run: install chromium and chromium-driver to run it"
            );
        }
        return None;
    }
    let port = free_port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1366,900", "--lang=en-GB"],
        }),
    );
    let webdriver_url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&webdriver_url)
            .await
        {
            Ok(client) => break client,
            Err(error) if std::time::Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("could not start a Chromium session: {error}"),
        }
    };
    let screenshots = std::env::var_os("CUTTLE_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots")
        });
    std::fs::create_dir_all(&screenshots).expect("create the screenshot directory");
    Some(Browser {
        client,
        driver,
        base_url: server.base_url.clone(),
        screenshots,
    })
}

impl Browser {
    async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base_url))
            .await
            .unwrap_or_else(|error| panic!("open {path}: {error}"));
    }

    async fn wait_for(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("{css} did not appear within {WAIT:?}: {error}"))
    }

    async fn wait_for_text(&self, text: &str) {
        let xpath = format!("//*[contains(normalize-space(.), {text:?})]");
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|error| panic!("{text:?} did not appear within {WAIT:?}: {error}"));
    }

    async fn wait_for_path(&self, suffix: &str) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let url = self.client.current_url().await.expect("current URL");
            if url.path().ends_with(suffix) || url.as_str().ends_with(suffix) {
                return url.path().to_owned();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the browser stayed on {url} instead of reaching …{suffix}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn fill(&self, css: &str, value: &str) {
        let element = self.wait_for(css).await;
        element.clear().await.expect("clear a field");
        element
            .send_keys(value)
            .await
            .unwrap_or_else(|error| panic!("type into {css}: {error}"));
    }

    async fn click(&self, css: &str) {
        self.wait_for(css)
            .await
            .click()
            .await
            .unwrap_or_else(|error| panic!("click {css}: {error}"));
    }

    /// Clicks the "Delete {label}" button and accepts its confirmation.
    async fn delete_confirmed(&self, label: &str) {
        self.click(&format!(r#"button[aria-label="Delete {label}"]"#))
            .await;
        self.client
            .accept_alert()
            .await
            .unwrap_or_else(|error| panic!("confirm deleting {label}: {error}"));
    }

    async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.expect("element text")
    }

    async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("take a screenshot");
        std::fs::write(self.screenshots.join(format!("{name}.png")), png)
            .expect("save a screenshot");
    }

    /// Waits for the task page's live log to end, then answers the task's final state.
    async fn wait_for_task_end(&self) -> String {
        self.wait_for("[data-live-log][data-ended]").await;
        self.wait_for("[data-task-state]")
            .await
            .attr("data-state")
            .await
            .expect("task state")
            .unwrap_or_default()
    }
}

/// Sends `body` to the API as the test administrator; the answer's JSON.
async fn api(
    server: &TestServer,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let response = send(server, method, path, Some(&body.to_string())).await;
    assert!(
        response.status.is_success(),
        "{method} {path}: {} {}",
        response.status,
        response.body
    );
    serde_json::from_str(&response.body).unwrap_or(serde_json::Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interruptions_are_answered_and_steps_reordered_in_the_browser() {
    let server = server().await;
    let Some(browser) = start_browser(&server).await else {
        return;
    };
    let marker = tempfile::tempdir().expect("a directory for the fix");
    let fixed = marker.path().join("fixed");
    api(
        &server,
        "POST",
        "/api/Spaces-1/environments",
        json!({"Name": "Development"}),
    )
    .await;
    let project = api(
        &server,
        "POST",
        "/api/Spaces-1/projects",
        json!({"Name": "Guided", "DefaultGuidedFailureMode": "On"}),
    )
    .await;
    let process_path = format!(
        "/api/Spaces-1/projects/{}/deploymentprocesses",
        project["Id"].as_str().expect("project id")
    );
    let mut process = api(&server, "GET", &process_path, json!(null)).await;
    process["Steps"] = json!([
        {"Name": "Approve", "Actions": [{"Name": "Approve", "ActionType": "Octopus.Manual",
            "Properties": {"Octopus.Action.Manual.Instructions": "Check the weather first",
                           "Octopus.Action.RunOnServer": "true"}}]},
        {"Name": "Needs a fix", "Actions": [{"Name": "Needs a fix", "ActionType": "Octopus.Script",
            "Properties": {"Octopus.Action.RunOnServer": "true", "Octopus.Action.Script.Syntax": "Bash",
                "Octopus.Action.Script.ScriptBody": format!("test -f '{}' || {{ echo 'not fixed yet'; exit 1; }}\necho fixed", fixed.display())}}]},
    ]);
    api(&server, "PUT", &process_path, process).await;
    api(
        &server,
        "POST",
        "/api/Spaces-1/releases/create/v1",
        json!({"ProjectName": "Guided", "ReleaseVersion": "1.0.0"}),
    )
    .await;
    let created = api(
        &server,
        "POST",
        "/api/Spaces-1/deployments/create/untenanted/v1",
        json!({"ProjectName": "Guided", "ReleaseVersion": "1.0.0", "EnvironmentNames": ["Development"]}),
    )
    .await;
    let task_id = created["DeploymentServerTasks"][0]["ServerTaskId"]
        .as_str()
        .expect("task id")
        .to_owned();

    browser
        .open(&format!("/app/Spaces-1/tasks/{task_id}"))
        .await;
    browser.wait_for_path("/app/sign-in").await;
    sign_in_to(&browser, &format!("/app/Spaces-1/tasks/{task_id}")).await;

    // The manual intervention, answered inline.
    browser.wait_for_text("Check the weather first").await;
    browser.screenshot("manual-intervention").await;
    browser
        .click(r#"section.interruption button[value="Proceed"]"#)
        .await;

    // The failing step pauses for guidance; the cause is fixed and Retry succeeds.
    browser
        .wait_for(r#"section.interruption button[value="Retry"]"#)
        .await;
    browser.wait_for_text("not fixed yet").await;
    browser.screenshot("guided-failure").await;
    std::fs::write(&fixed, "yes").expect("fix the cause");
    browser
        .click(r#"section.interruption button[value="Retry"]"#)
        .await;
    assert_eq!(browser.wait_for_task_end().await, "Success");
    browser.wait_for_text("fixed").await;

    // Reordering steps in the process editor saves the process.
    browser
        .open(&format!(
            "/app/Spaces-1/projects/{}/process",
            project["Id"].as_str().unwrap_or_default()
        ))
        .await;
    browser
        .click(r#"button[data-process-op="down"][data-index="0"]"#)
        .await;
    api_until(
        &server,
        &process_path,
        "the steps were not reordered",
        |process| process["Steps"][0]["Name"] == "Needs a fix",
    )
    .await;
    browser.wait_for_text("1. Needs a fix").await;
    browser.screenshot("process-reordered").await;

    // Saving the variables page keeps what its columns do not show: a channel scope, and
    // whether a prompt is required.
    let project_id = project["Id"].as_str().unwrap_or_default().to_owned();
    let variables_path = format!(
        "/api/Spaces-1/variables/{}",
        project["VariableSetId"].as_str().unwrap_or_default()
    );
    let channels = api(
        &server,
        "GET",
        &format!("/api/Spaces-1/projects/{project_id}/channels"),
        json!(null),
    )
    .await;
    let channel_id = channels["Items"][0]["Id"].clone();
    let mut variables = api(&server, "GET", &variables_path, json!(null)).await;
    variables["Variables"] = json!([{
        "Name": "Region", "Value": "eu",
        "Scope": {"Channel": [channel_id.clone()], "Environment": [created_environment_id(&server).await]},
        "Prompt": {"Label": "Which region?", "Description": "Where to deploy", "Required": true},
    }]);
    api(&server, "PUT", &variables_path, variables).await;
    browser
        .open(&format!("/app/Spaces-1/projects/{project_id}/variables"))
        .await;
    browser
        .fill("tbody tr:first-child [data-column=Value]", "us")
        .await;
    browser
        .click("form[data-variables] button[type=submit]")
        .await;
    let variables = api_until(
        &server,
        &variables_path,
        "the variable was not saved",
        |set| set["Variables"][0]["Value"] == "us",
    )
    .await;
    let variable = &variables["Variables"][0];
    assert_eq!(
        variable["Scope"]["Channel"],
        json!([channel_id]),
        "{variable}"
    );
    assert_eq!(variable["Prompt"]["Required"], json!(true), "{variable}");
    assert_eq!(
        variable["Prompt"]["Description"],
        json!("Where to deploy"),
        "{variable}"
    );

    // A package uploaded through the library page, with its progress bar, then deleted.
    let package = marker.path().join("Portal.App.1.2.3.zip");
    std::fs::write(
        &package,
        super::packages::zip_with(&[("index.html", b"hello")]),
    )
    .expect("write a package");
    browser.open("/app/Spaces-1/library/packages").await;
    browser
        .wait_for("#package-file")
        .await
        .send_keys(&package.display().to_string())
        .await
        .expect("choose the package file");
    browser.click("form[data-upload] button[type=submit]").await;
    browser
        .wait_for(r#"a[href$="/library/packages/Portal.App"]"#)
        .await;
    browser.wait_for_text("1.2.3").await;
    browser.screenshot("packages").await;
    browser
        .click(r#"a[href$="/library/packages/Portal.App"]"#)
        .await;
    browser.wait_for_text("Download").await;
    browser.delete_confirmed("version 1.2.3").await;
    browser.wait_for_text("No versions of this package.").await;

    // A lifecycle edited in the library: a phase added and saved.
    browser
        .open("/app/Spaces-1/library/lifecycles/Lifecycles-1?add_phase=true")
        .await;
    browser.fill(r#"[name="Phases/0/Name"]"#, "Early").await;
    browser
        .click("form[data-transform=lifecycle] button.primary[type=submit]")
        .await;
    api_until(
        &server,
        "/api/Spaces-1/lifecycles/Lifecycles-1",
        "the phase was not saved",
        |lifecycle| lifecycle["Phases"][0]["Name"] == "Early",
    )
    .await;

    // An environment renamed in place, and the spaces page.
    browser
        .open("/app/Spaces-1/infrastructure/environments")
        .await;
    browser.click("tr[data-url] details summary").await;
    browser
        .fill("tr[data-url] details [name=Name]", "Dev")
        .await;
    browser.click("tr[data-url] details button.primary").await;
    api_until(
        &server,
        "/api/Spaces-1/environments",
        "the environment was not renamed",
        |environments| environments["Items"][0]["Name"] == "Dev",
    )
    .await;
    browser
        .click(r#"header a[href="/app/Spaces-1/spaces"]"#)
        .await;
    browser
        .wait_for(r#"a[href="/app/Spaces-1"][aria-current="page"]"#)
        .await;

    // Users: an administrator adds one, makes her an administrator, deactivates and deletes her.
    browser.open("/app/Spaces-1/configuration").await;
    browser.click(r#"a[href="/app/Spaces-1/users"]"#).await;
    browser.fill("#new-user [name=Username]", "vera").await;
    browser.fill("#new-user [name=Password]", "short").await;
    browser.click("#new-user button[type=submit]").await;
    browser
        .wait_for_text("Password must be 8 to 256 characters long")
        .await;
    browser
        .fill("#new-user [name=Password]", "a long password")
        .await;
    browser.click("#new-user button[type=submit]").await;
    browser.wait_for(r#"tr[data-user="vera"]"#).await;
    browser.screenshot("users").await;
    let vera_is = |field: &'static str, value: bool| {
        move |users: &serde_json::Value| {
            users["Items"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|user| user["Username"] == "vera" && user[field] == value)
        }
    };
    browser
        .click(r#"tr[data-user="vera"] form:nth-of-type(1) button"#)
        .await;
    api_until(
        &server,
        "/api/users",
        "vera was not made an administrator",
        vera_is("IsAdministrator", true),
    )
    .await;
    browser.wait_for(r#"tr[data-user="vera"]"#).await;
    browser
        .click(r#"tr[data-user="vera"] form:nth-of-type(2) button"#)
        .await;
    api_until(
        &server,
        "/api/users",
        "vera was not deactivated",
        vera_is("IsActive", false),
    )
    .await;
    browser.wait_for_text("Deactivated").await;
    browser.delete_confirmed("vera").await;
    api_until(&server, "/api/users", "vera was not deleted", |users| {
        !lists(users, "Username", "vera")
    })
    .await;

    // A machine policy, a worker pool and a lifecycle added and deleted.
    browser.open("/app/Spaces-1/infrastructure/policies").await;
    browser.fill("#new-policy [name=Name]", "Nightly").await;
    browser.click("#new-policy button[type=submit]").await;
    api_until(
        &server,
        "/api/Spaces-1/machinepolicies",
        "the policy was not added",
        |page| lists(page, "Name", "Nightly"),
    )
    .await;
    browser.open("/app/Spaces-1/infrastructure/policies").await;
    browser.delete_confirmed("Nightly").await;
    api_until(
        &server,
        "/api/Spaces-1/machinepolicies",
        "the policy was not deleted",
        |page| !lists(page, "Name", "Nightly"),
    )
    .await;

    browser.open("/app/Spaces-1/infrastructure/workers").await;
    browser.fill("main form.card [name=Name]", "Builders").await;
    browser.click("main form.card button[type=submit]").await;
    browser
        .wait_for(r#"button[aria-label="Delete Builders"]"#)
        .await;
    browser.delete_confirmed("Builders").await;
    api_until(
        &server,
        "/api/Spaces-1/workerpools",
        "the pool was not deleted",
        |page| !lists(page, "Name", "Builders"),
    )
    .await;

    api(
        &server,
        "POST",
        "/api/Spaces-1/lifecycles",
        json!({"Name": "Short-lived"}),
    )
    .await;
    browser.open("/app/Spaces-1/library/lifecycles").await;
    browser.delete_confirmed("Short-lived").await;
    api_until(
        &server,
        "/api/Spaces-1/lifecycles",
        "the lifecycle was not deleted",
        |page| !lists(page, "Name", "Short-lived"),
    )
    .await;

    // A space added, renamed and deleted.
    browser.open("/app/Spaces-1/spaces").await;
    browser.fill("#new-space [name=Name]", "Team B").await;
    browser.click("#new-space button[type=submit]").await;
    browser.wait_for(r#"tr[data-space="Team B"]"#).await;
    browser
        .click(r#"tr[data-space="Team B"] details summary"#)
        .await;
    browser
        .fill(r#"tr[data-space="Team B"] details [name=Name]"#, "Team Bee")
        .await;
    browser
        .click(r#"tr[data-space="Team B"] details [name=TaskQueueStopped]"#)
        .await;
    browser
        .click(r#"tr[data-space="Team B"] details button.primary"#)
        .await;
    api_until(
        &server,
        "/api/spaces",
        "the space was not renamed",
        |page| lists(page, "Name", "Team Bee"),
    )
    .await;
    browser.wait_for(r#"tr[data-space="Team Bee"]"#).await;
    browser.screenshot("spaces").await;
    browser.delete_confirmed("Team Bee").await;
    api_until(
        &server,
        "/api/spaces",
        "the space was not deleted",
        |page| !lists(page, "Name", "Team Bee"),
    )
    .await;

    // An account edited in place: a new username keeps the password; a new password replaces it,
    // and no page shows it.
    api(
        &server,
        "POST",
        "/api/Spaces-1/accounts",
        json!({"AccountType": "UsernamePassword", "Name": "Deployer", "Username": "deploy", "Password": {"NewValue": "first-secret-value"}}),
    )
    .await;
    let account_is = |username: &'static str| {
        move |page: &serde_json::Value| {
            page["Items"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|account| {
                    account["Name"] == "Deployer"
                        && account["Username"] == username
                        && account["Password"]["HasValue"] == true
                })
        }
    };
    browser.open("/app/Spaces-1/infrastructure/accounts").await;
    browser
        .click(r#"tr[data-account="Deployer"] details summary"#)
        .await;
    browser
        .fill(
            r#"tr[data-account="Deployer"] details [name=Username]"#,
            "deploy2",
        )
        .await;
    browser
        .click(r#"tr[data-account="Deployer"] details button.primary"#)
        .await;
    api_until(
        &server,
        "/api/Spaces-1/accounts",
        "the username was not changed",
        account_is("deploy2"),
    )
    .await;
    browser.open("/app/Spaces-1/infrastructure/accounts").await;
    browser
        .click(r#"tr[data-account="Deployer"] details summary"#)
        .await;
    browser
        .fill(
            r#"tr[data-account="Deployer"] details [name="Password/NewValue"]"#,
            "second-secret-value",
        )
        .await;
    browser
        .click(r#"tr[data-account="Deployer"] details button.primary"#)
        .await;
    browser.wait_for(r#"tr[data-account="Deployer"]"#).await;
    api_until(
        &server,
        "/api/Spaces-1/accounts",
        "the account was not saved",
        account_is("deploy2"),
    )
    .await;
    let source = browser.source().await;
    assert!(
        !source.contains("first-secret-value") && !source.contains("second-secret-value"),
        "a secret reached the page"
    );
}

/// Reads `path` from the API until `done` holds of the answer (the browser's save finishes
/// after its click returns); fails saying `what` after [`WAIT`].
async fn api_until(
    server: &TestServer,
    path: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let answer = api(server, "GET", path, json!(null)).await;
        if done(&answer) {
            return answer;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether an API collection page has an item whose `field` is `value`.
fn lists(page: &serde_json::Value, field: &str, value: &str) -> bool {
    page["Items"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|item| item[field] == value)
}

/// The id of the space's first environment.
async fn created_environment_id(server: &TestServer) -> String {
    let environments = api(server, "GET", "/api/Spaces-1/environments", json!(null)).await;
    environments["Items"][0]["Id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Signs in as the test administrator from the sign-in page and expects to land on `path`.
async fn sign_in_to(browser: &Browser, path: &str) {
    browser.fill("#username", "admin").await;
    browser.fill("#password", TEST_ADMIN_PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_path(path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_deploys_and_promotes_a_release_in_the_browser() {
    let server = server().await;
    let Some(browser) = start_browser(&server).await else {
        return;
    };

    // Signing in: an unknown session is sent to the sign-in page and back.
    browser.open("/app").await;
    browser.wait_for_path("/app/sign-in").await;
    browser.screenshot("sign-in").await;
    browser.fill("#username", "admin").await;
    browser.fill("#password", "not the password").await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text("Invalid username or password.").await;
    sign_in_to(&browser, "/app/Spaces-1").await;

    // Environments, created in order.
    browser
        .open("/app/Spaces-1/infrastructure/environments")
        .await;
    for name in ["Development", "Test", "Production"] {
        let form = r#"form[data-api="POST /api/Spaces-1/environments"]"#;
        browser.fill(&format!("{form} [name=Name]"), name).await;
        browser.click(&format!("{form} button[type=submit]")).await;
        // The empty page names them too ("start with Development, Test…"): wait for the row.
        browser
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::XPath(&format!(
                "//tr[@data-url]/td[contains(., {name:?})]"
            )))
            .await
            .unwrap_or_else(|error| panic!("{name} was not listed: {error}"));
    }
    browser.wait_for_text("Production").await;
    browser.screenshot("environments").await;

    // An API key, shown once, for the agent's registration.
    browser.open("/app/Spaces-1/configuration").await;
    browser.fill("[name=Purpose]", "browser test agent").await;
    browser
        .click(r#"form[data-show] button[type=submit]"#)
        .await;
    browser.wait_for("#new-api-key:not([hidden])").await;
    let api_key = browser.text("#new-api-key pre").await;
    assert!(
        api_key.starts_with("API-"),
        "no API key was shown: {api_key:?}"
    );
    browser.screenshot("api-keys").await;

    // The agent registers with the command the portal shows, thumbprint and all.
    browser
        .open("/app/Spaces-1/infrastructure/targets/new")
        .await;
    let shown = browser.text(r#"pre[data-command="listening"]"#).await;
    let thumbprint = browser.text("#server-thumbprint").await;
    assert!(
        shown.contains(&thumbprint),
        "the command lacks the thumbprint: {shown}"
    );
    browser.screenshot("add-target").await;
    let register = shown
        .split("\n#")
        .next()
        .expect("a register command")
        .replace("\\\n", " ");
    let home = tempfile::tempdir().expect("agent home");
    let port = free_port();
    let command = format!(
        "{} --environment Test --home '{}' --name web01",
        register
            .replace("./cuttle", CUTTLE)
            .replace("API-YOURKEY", &api_key)
            .replace("--listen-port 10933", &format!("--listen-port {port}")),
        home.path().display()
    );
    let registered = Command::new("bash")
        .arg("-c")
        .arg(&command)
        .env_remove("CUTTLE_AGENT_HOME")
        .output()
        .expect("run the registration command");
    assert!(
        registered.status.success(),
        "the portal's registration command failed: {command}\n{}{}",
        String::from_utf8_lossy(&registered.stdout),
        String::from_utf8_lossy(&registered.stderr)
    );
    let _agent = run_agent(home.path(), "Cuttle agent is listening on");

    // A one-click health check: a task that ends Healthy.
    browser.open("/app/Spaces-1/infrastructure/targets").await;
    browser
        .click(r#"button[aria-label="Check health of web01"]"#)
        .await;
    assert_eq!(browser.wait_for_task_end().await, "Success");
    browser.open("/app/Spaces-1/infrastructure/targets").await;
    browser.wait_for(r#"[data-health="Healthy"]"#).await;
    browser.screenshot("targets").await;

    // A project with a script step that reads a sensitive variable.
    browser.open("/app/Spaces-1/projects/new").await;
    browser.fill("main [name=Name]", "Hello").await;
    browser.click("main form button[type=submit]").await;
    let process_path = browser.wait_for_path("/process").await;
    let project_path = process_path.trim_end_matches("/process").to_owned();
    browser.click(r#"a[href$="type=Octopus.Script"]"#).await;
    browser.fill("main form [name=Name]", "Say hello").await;
    browser
        .fill(r#"[name="Properties/Octopus.Action.TargetRoles"]"#, "web")
        .await;
    browser
        .fill(
            r#"[name="Actions/0/Properties/Octopus.Action.Script.ScriptBody"]"#,
            "echo \"Hello from #{Octopus.Environment.Name}\"\necho \"the secret is #{Secret}\"",
        )
        .await;
    browser.click("#step-retries summary").await;
    browser
        .fill(
            r#"[name="Actions/0/Properties/Octopus.Action.AutoRetry.MaximumCount"]"#,
            "2",
        )
        .await;
    browser
        .fill(
            r#"[name="Actions/0/Properties/Octopus.Action.ExecutionTimeout.Minutes"]"#,
            "30",
        )
        .await;
    browser.screenshot("step-editor").await;
    browser
        .click("form[data-transform=step] button[type=submit]")
        .await;
    browser.wait_for_path("/process").await;
    browser.wait_for_text("Say hello").await;
    browser.wait_for_text("on targets in roles web").await;
    browser.screenshot("process").await;
    let project_id = project_path.rsplit('/').next().expect("a project id");
    let project = api(
        &server,
        "GET",
        &format!("/api/Spaces-1/projects/{project_id}"),
        json!(null),
    )
    .await;
    let process_id = project["DeploymentProcessId"]
        .as_str()
        .expect("a process id");
    let process = api(
        &server,
        "GET",
        &format!("/api/Spaces-1/deploymentprocesses/{process_id}"),
        json!(null),
    )
    .await;
    let properties = &process["Steps"][0]["Actions"][0]["Properties"];
    assert_eq!(
        properties["Octopus.Action.AutoRetry.MaximumCount"], "2",
        "{process}"
    );
    assert_eq!(
        properties["Octopus.Action.ExecutionTimeout.Minutes"], "30",
        "{process}"
    );

    browser.open(&format!("{project_path}/variables")).await;
    browser.click("[data-add-variable]").await;
    browser
        .fill("tbody tr:last-child [data-column=Name]", "Secret")
        .await;
    browser
        .fill(
            "tbody tr:last-child [data-column=Value]",
            "hunter2-very-secret",
        )
        .await;
    browser
        .click("tbody tr:last-child [data-column=IsSensitive]")
        .await;
    browser
        .click("form[data-variables] button[type=submit]")
        .await;
    browser
        .wait_for(r#"tbody tr input[type=password][data-column=Value]"#)
        .await;
    assert!(
        !browser.source().await.contains("hunter2"),
        "a sensitive value reached the variables page"
    );
    browser.screenshot("variables").await;

    // A validation error from the API is shown beside its field.
    browser.open(&format!("{project_path}/releases/new")).await;
    browser.fill("[name=Version]", "not a version!").await;
    browser.click("main form button[type=submit]").await;
    let version_error = browser
        .wait_for(r#"p.field-error[data-error-for="Version"]:not([hidden])"#)
        .await;
    let message = version_error.text().await.expect("error text");
    assert!(message.contains("must not contain spaces"), "{message}");
    browser
        .wait_for(r#"[name=Version][aria-invalid="true"]"#)
        .await;
    browser.screenshot("validation-error").await;

    // The release, then a deployment to Development with the live log.
    browser.fill("[name=Version]", "").await;
    browser.click("main form button[type=submit]").await;
    browser.wait_for_text("Release 0.0.1").await;
    browser.screenshot("release").await;
    let production_reason = browser.text(r#"[data-cannot-deploy="Production"]"#).await;
    assert!(
        production_reason.contains("cannot reach until phase 'Development' is complete"),
        "Production's reason: {production_reason}"
    );
    browser.click(r#"a[data-deploy-to="Development"]"#).await;
    browser.wait_for_text("Deploy Hello 0.0.1").await;
    browser.screenshot("deploy").await;
    browser.click("main form button.primary[type=submit]").await;
    browser.wait_for("[data-live-log]").await;
    assert_eq!(browser.wait_for_task_end().await, "Success");
    browser.wait_for_text("Hello from Development").await;
    browser.wait_for_text("the secret is ********").await;
    assert!(
        !browser.source().await.contains("hunter2"),
        "a sensitive value reached the task page"
    );
    browser.screenshot("task-log").await;

    // Promote to Test, as the lifecycle now allows.
    browser.client.back().await.expect("go back");
    browser.client.back().await.expect("go back");
    browser
        .client
        .refresh()
        .await
        .expect("reload the release page");
    browser.click(r#"a[data-deploy-to="Test"]"#).await;
    browser.click("main form button.primary[type=submit]").await;
    browser.wait_for("[data-live-log]").await;
    assert_eq!(browser.wait_for_task_end().await, "Success");
    browser.wait_for_text("Hello from Test").await;

    // The dashboard shows both cells green.
    browser.open("/app/Spaces-1").await;
    browser
        .wait_for(r#"a.cell.success[data-state="Success"]"#)
        .await;
    let green = browser
        .client
        .find_all(Locator::Css("a.cell.success"))
        .await
        .expect("dashboard cells");
    assert_eq!(green.len(), 2, "both deployments show green");
    browser.screenshot("dashboard").await;

    browser.open("/app/Spaces-1/tasks").await;
    browser
        .wait_for_text("Deploy Hello release 0.0.1 to Test")
        .await;
    browser.screenshot("tasks").await;
    browser
        .open("/app/Spaces-1/library/lifecycles/Lifecycles-1")
        .await;
    browser.screenshot("lifecycle").await;

    // An environment deleted from the environments page.
    browser
        .open("/app/Spaces-1/infrastructure/environments")
        .await;
    browser.delete_confirmed("Production").await;
    let deadline = std::time::Instant::now() + WAIT;
    while browser
        .source()
        .await
        .contains(r#"aria-label="Delete Production""#)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "Production was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Signing out ends the session: the portal asks to sign in again.
    browser.open("/app/Spaces-1").await;
    browser
        .click(r#"form[data-api="POST /api/users/logout"] button"#)
        .await;
    browser.wait_for_path("/app/sign-in").await;
    browser.open("/app/Spaces-1/projects").await;
    browser.wait_for_path("/app/sign-in").await;
}
