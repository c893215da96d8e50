//! The deployment pipeline end to end, through the API of a real server running scripts on its
//! built-in worker: process, release (with snapshots), lifecycle gating, deployment with
//! parallel steps and output variables, masking of sensitive values, guided failure and
//! cancellation.

use std::time::Duration;

use cuttle_api::ServerTaskResource;
use cuttle_domain::Environment;
use cuttle_test_support::TestServer;
use serde_json::{Value, json};

use super::{assert_error, send, server};

pub(super) async fn wait_for_task(server: &TestServer, id: &str) -> ServerTaskResource {
    for _ in 0..1200 {
        let task: ServerTaskResource = server
            .client
            .get(&format!("/api/Spaces-1/tasks/{id}"))
            .await
            .expect("read the task");
        if task.is_completed {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("task {id} did not complete");
}

pub(super) async fn raw_log(server: &TestServer, id: &str) -> String {
    send(
        server,
        "GET",
        &format!("/api/Spaces-1/tasks/{id}/raw"),
        None,
    )
    .await
    .body
}

pub(super) async fn create_environments(server: &TestServer, names: &[&str]) {
    for name in names {
        server
            .client
            .create(
                Some("Spaces-1"),
                &Environment {
                    name: (*name).to_owned(),
                    ..Environment::default()
                },
            )
            .await
            .expect("create an environment");
    }
}

pub(super) async fn create_project(server: &TestServer, name: &str) -> Value {
    server
        .client
        .post("/api/Spaces-1/projects", &json!({"Name": name}))
        .await
        .expect("create a project")
}

pub(super) fn server_step(name: &str, body: &str, start_with_previous: bool) -> Value {
    json!({
        "Name": name,
        "StartTrigger": if start_with_previous { "StartWithPrevious" } else { "StartAfterPrevious" },
        "Condition": "Success",
        "Properties": {},
        "Actions": [{
            "Name": name,
            "ActionType": "Octopus.Script",
            "Properties": {
                "Octopus.Action.RunOnServer": "true",
                "Octopus.Action.Script.ScriptSource": "Inline",
                "Octopus.Action.Script.Syntax": "Bash",
                "Octopus.Action.Script.ScriptBody": body,
            }
        }]
    })
}

pub(super) async fn save_process(server: &TestServer, project: &Value, steps: Vec<Value>) -> Value {
    let process_id = project["DeploymentProcessId"].as_str().expect("process id");
    let mut process: Value = server
        .client
        .get(&format!("/api/Spaces-1/deploymentprocesses/{process_id}"))
        .await
        .expect("read the process");
    process["Steps"] = json!(steps);
    server
        .client
        .put(
            &format!("/api/Spaces-1/deploymentprocesses/{process_id}"),
            &process,
        )
        .await
        .expect("save the process")
}

pub(super) async fn deploy(
    server: &TestServer,
    project: &str,
    version: &str,
    environment: &str,
) -> String {
    let answer: Value = server
        .client
        .post(
            "/api/Spaces-1/deployments/create/untenanted/v1",
            &json!({
                "spaceId": "Spaces-1", "spaceIdOrName": "Default", "spaceName": "Default",
                "ProjectName": project, "ReleaseVersion": version,
                "EnvironmentNames": [environment], "Variables": {}
            }),
        )
        .await
        .expect("deploy");
    let task_id = answer["DeploymentServerTasks"][0]["ServerTaskId"]
        .as_str()
        .expect("a task id")
        .to_owned();
    let deployment_id = answer["DeploymentServerTasks"][0]["DeploymentId"]
        .as_str()
        .expect("a deployment id");
    // Read-after-write, as the official action does right away.
    let deployments: Value = server
        .client
        .get(&format!(
            "/api/Spaces-1/deployments?take=1&ids={deployment_id}"
        ))
        .await
        .expect("list the deployment");
    assert_eq!(deployments["Items"][0]["TaskId"], json!(task_id));
    task_id
}

#[tokio::test]
async fn a_release_is_deployed_step_by_step_and_promoted_through_the_lifecycle() {
    let server = server().await;
    create_environments(&server, &["Development", "Test", "Production"]).await;
    let project = create_project(&server, "Hello World").await;
    let project_id = project["Id"].as_str().expect("project id");

    // A sensitive variable, echoed by a script, must never reach the log.
    let variables_path = format!(
        "/api/Spaces-1/variables/{}",
        project["VariableSetId"].as_str().expect("variable set id")
    );
    let mut variables: Value = server.client.get(&variables_path).await.expect("variables");
    variables["Variables"] = json!([
        {"Name": "Greeting", "Value": "Hello from #{Octopus.Environment.Name}"},
        {"Name": "DatabasePassword", "Value": "correct-horse-battery", "IsSensitive": true},
    ]);
    let _: Value = server
        .client
        .put(&variables_path, &variables)
        .await
        .expect("save variables");

    let saved = save_process(
        &server,
        &project,
        vec![
            server_step(
                "Set Color",
                "echo \"#{Greeting}\"\nset_octopusvariable Color blue\necho \"password is $(get_octopusvariable DatabasePassword)\"",
                false,
            ),
            server_step("Left", "sleep 0.3; echo left done", false),
            server_step("Right", "sleep 0.3; echo right done", true),
            server_step(
                "Use Color",
                "echo \"the color is #{Octopus.Action[Set Color].Output.Color}\"",
                false,
            ),
        ],
    )
    .await;
    assert_eq!(saved["Version"], json!(1));
    assert!(
        saved["Steps"][0]["Id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );

    // A stale save is refused.
    let mut stale = saved.clone();
    stale["Version"] = json!(0);
    let response = send(
        &server,
        "PUT",
        &format!("/api/Spaces-1/projects/{project_id}/deploymentprocesses"),
        Some(&stale.to_string()),
    )
    .await;
    assert_error(&response, 409, "changed by someone else");

    let created: Value = server
        .client
        .post(
            "/api/Spaces-1/releases/create/v1",
            &json!({"spaceId": "Spaces-1", "spaceIdOrName": "Default", "spaceName": "Default",
                    "ProjectName": "Hello World", "Packages": [], "GitResources": [],
                    "CustomFields": {}, "IgnoreChannelRules": false}),
        )
        .await
        .expect("create a release");
    assert_eq!(created["ReleaseVersion"], json!("0.0.1"));
    let release_id = created["ReleaseId"].as_str().expect("release id");

    // Changing the process afterwards does not change the release.
    let mut changed = saved.clone();
    changed["Steps"][1]["Actions"][0]["Properties"]["Octopus.Action.Script.ScriptBody"] =
        json!("exit 1");
    let _: Value = server
        .client
        .put(
            &format!("/api/Spaces-1/projects/{project_id}/deploymentprocesses"),
            &changed,
        )
        .await
        .expect("change the live process");

    let task_id = deploy(&server, "Hello World", "0.0.1", "Development").await;
    let task = wait_for_task(&server, &task_id).await;
    let log = raw_log(&server, &task_id).await;
    assert_eq!(task.state, "Success", "{log}");
    assert!(log.contains("Hello from Development"), "{log}");
    assert!(log.contains("the color is blue"), "{log}");
    assert!(
        log.contains("left done") && log.contains("right done"),
        "{log}"
    );
    assert!(log.contains("password is ********"), "{log}");
    assert!(!log.contains("correct-horse-battery"), "{log}");

    // Production is two phases away.
    let response = send(
        &server,
        "POST",
        "/api/Spaces-1/deployments/create/untenanted/v1",
        Some(
            &json!({"ProjectName": "Hello World", "ReleaseVersion": "0.0.1",
                    "EnvironmentNames": ["Production"]})
            .to_string(),
        ),
    )
    .await;
    assert_error(&response, 400, "cannot be deployed to Production");

    let progression: Value = server
        .client
        .get(&format!("/api/Spaces-1/releases/{release_id}/progression"))
        .await
        .expect("progression");
    let test_environment = progression["Environments"]
        .as_array()
        .and_then(|environments| environments.iter().find(|item| item["Name"] == "Test"))
        .cloned()
        .expect("Test in the progression");
    assert_eq!(test_environment["CanDeploy"], json!(true), "{progression}");

    let task_id = deploy(&server, "Hello World", "0.0.1", "Test").await;
    let task = wait_for_task(&server, &task_id).await;
    assert_eq!(
        task.state,
        "Success",
        "{}",
        raw_log(&server, &task_id).await
    );

    // The dashboard shows the latest deployment per environment; the progression says
    // Production is next.
    let dashboard: Value = server
        .client
        .get("/api/Spaces-1/dashboard")
        .await
        .expect("dashboard");
    let cells = dashboard["Items"].as_array().expect("dashboard items");
    assert_eq!(cells.len(), 2, "{dashboard}");
    assert!(
        cells
            .iter()
            .all(|cell| cell["State"] == "Success" && cell["ReleaseVersion"] == "0.0.1"),
        "{dashboard}"
    );
    let progression: Value = server
        .client
        .get(&format!("/api/Spaces-1/projects/{project_id}/progression"))
        .await
        .expect("project progression");
    let production_id = progression["Environments"]
        .as_array()
        .and_then(|environments| {
            environments
                .iter()
                .find(|item| item["Name"] == "Production")
        })
        .map(|environment| environment["Id"].clone())
        .expect("Production");
    assert!(
        progression["Releases"][0]["NextDeployments"]
            .as_array()
            .is_some_and(|next| next.contains(&production_id)),
        "{progression}"
    );

    // The finished task's log replays as Server-Sent Events and the stream ends.
    let events = send(
        &server,
        "GET",
        &format!("/api/tasks/{task_id}/events"),
        None,
    )
    .await;
    assert_eq!(events.status.as_u16(), 200);
    assert!(events.body.contains("event: line"), "{}", events.body);
    assert!(events.body.contains("event: end"), "{}", events.body);
    assert!(!events.body.contains("correct-horse-battery"));

    let releases: Value = server
        .client
        .get(&format!("/api/Spaces-1/projects/{project_id}/releases"))
        .await
        .expect("list releases");
    assert_eq!(releases["TotalResults"], json!(1));
    assert_eq!(releases["Items"][0]["Version"], json!("0.0.1"));
    server.cleanup().await.expect("clean up");
}

#[tokio::test]
async fn guided_failure_waits_for_a_person_and_retry_succeeds() {
    let server = server().await;
    create_environments(&server, &["Development"]).await;
    let project = create_project(&server, "Guided").await;
    let marker = tempfile::tempdir().expect("temporary directory");
    let marker_path = marker.path().join("fixed");
    save_process(
        &server,
        &project,
        vec![server_step(
            "Needs Fix",
            &format!(
                "if [ -f '{}' ]; then echo fixed; else echo 'not fixed yet' >&2; exit 3; fi",
                marker_path.display()
            ),
            false,
        )],
    )
    .await;
    let _: Value = server
        .client
        .post(
            "/api/Spaces-1/releases/create/v1",
            &json!({"ProjectName": "Guided", "ReleaseVersion": "1.0.0"}),
        )
        .await
        .expect("create a release");
    let answer: Value = server
        .client
        .post(
            "/api/Spaces-1/deployments/create/untenanted/v1",
            &json!({"ProjectName": "Guided", "ReleaseVersion": "1.0.0",
                    "EnvironmentNames": ["Development"], "UseGuidedFailure": true}),
        )
        .await
        .expect("deploy");
    let task_id = answer["DeploymentServerTasks"][0]["ServerTaskId"]
        .as_str()
        .expect("task id")
        .to_owned();

    let interruption = pending_interruption(&server, &task_id).await;
    let interruption_id = interruption["Id"].as_str().expect("an interruption");
    let task: ServerTaskResource = server
        .client
        .get(&format!("/api/Spaces-1/tasks/{task_id}"))
        .await
        .expect("task");
    assert_eq!(task.state, "Executing");
    assert!(task.has_pending_interruptions);

    let response = send(
        &server,
        "POST",
        &format!("/api/Spaces-1/interruptions/{interruption_id}/submit"),
        Some(&json!({"Guidance": "Shrug"}).to_string()),
    )
    .await;
    assert_error(&response, 400, "is not one of Fail, Retry, Ignore, Exclude");

    std::fs::write(&marker_path, b"yes").expect("fix the cause");
    let _: Value = server
        .client
        .post(
            &format!("/api/Spaces-1/interruptions/{interruption_id}/submit"),
            &json!({"Guidance": "Retry", "Notes": "fixed the file"}),
        )
        .await
        .expect("answer Retry");
    let task = wait_for_task(&server, &task_id).await;
    let log = raw_log(&server, &task_id).await;
    assert_eq!(task.state, "Success", "{log}");
    assert!(
        log.contains("not fixed yet") && log.contains("fixed"),
        "{log}"
    );
    assert!(log.contains("Retrying: fixed the file"), "{log}");
    server.cleanup().await.expect("clean up");
}

#[tokio::test]
async fn cancelling_a_deployment_stops_its_running_script() {
    let server = server().await;
    create_environments(&server, &["Development"]).await;
    let project = create_project(&server, "Sleepy").await;
    save_process(
        &server,
        &project,
        // An unusual duration, so the test can look for exactly this process afterwards.
        vec![server_step(
            "Sleep",
            "echo \"sleeping in $$\"; sleep 600.4242",
            false,
        )],
    )
    .await;
    let _: Value = server
        .client
        .post(
            "/api/Spaces-1/releases/create/v1",
            &json!({"ProjectName": "Sleepy", "ReleaseVersion": "1.0.0"}),
        )
        .await
        .expect("create a release");
    let task_id = deploy(&server, "Sleepy", "1.0.0", "Development").await;
    for _ in 0..400 {
        if raw_log(&server, &task_id).await.contains("sleeping") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _: Value = server
        .client
        .post(&format!("/api/tasks/{task_id}/cancel"), &json!({}))
        .await
        .expect("cancel");
    let task = wait_for_task(&server, &task_id).await;
    let log = raw_log(&server, &task_id).await;
    assert_eq!(task.state, "Canceled", "{log}");
    // The whole process tree is gone, not just the task's state.
    let shell_pid = log
        .split("sleeping in ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the script printed its pid");
    assert!(
        !std::path::Path::new(&format!("/proc/{shell_pid}")).exists(),
        "the script's shell {shell_pid} is still running"
    );
    let sleepers = std::process::Command::new("pgrep")
        .args(["-f", "sleep 600.4242"])
        .output()
        .expect("run pgrep");
    assert!(
        sleepers.stdout.is_empty(),
        "the script's sleep is still running: {}",
        String::from_utf8_lossy(&sleepers.stdout)
    );
    server.cleanup().await.expect("clean up");
}

#[tokio::test]
async fn a_deployment_survives_kill_9_of_the_server_and_ends_with_every_line_kept() {
    let mut server = server().await;
    create_environments(&server, &["Development"]).await;
    let project = create_project(&server, "Crashy").await;
    save_process(
        &server,
        &project,
        vec![
            server_step("First", "echo first step ran", false),
            server_step(
                "Second",
                "echo before the crash; sleep 2; echo after the crash",
                false,
            ),
            server_step("Third", "echo third step ran", false),
        ],
    )
    .await;
    let _: Value = server
        .client
        .post(
            "/api/Spaces-1/releases/create/v1",
            &json!({"ProjectName": "Crashy", "ReleaseVersion": "1.0.0"}),
        )
        .await
        .expect("create a release");
    let task_id = deploy(&server, "Crashy", "1.0.0", "Development").await;
    let mut shown = String::new();
    for _ in 0..400 {
        shown = raw_log(&server, &task_id).await;
        if shown.contains("before the crash") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(shown.contains("before the crash"), "{shown}");
    server.kill().expect("kill -9 the server");
    server.restart().expect("start the server again");

    let task = wait_for_task(&server, &task_id).await;
    let log = raw_log(&server, &task_id).await;
    // Every line shown before the crash is still there, once.
    for line in shown.lines().skip_while(|line| !line.is_empty()).skip(1) {
        assert_eq!(log.matches(line).count(), 1, "{line:?} in {log}");
    }
    assert_eq!(log.matches("first step ran").count(), 1, "{log}");
    // The built-in worker died with the server: the running step's result is unknown, and
    // the task says so rather than running the script again or staying Executing.
    assert_eq!(task.state, "Failed", "{log}");
    assert!(task.error_message.contains("is unknown"), "{log}");
    assert_eq!(log.matches("before the crash").count(), 1, "{log}");
    assert!(!log.contains("third step ran"), "{log}");
    assert!(log.contains("Resuming on node"), "{log}");
    server.cleanup().await.expect("clean up");
}

fn target_step(name: &str, body: &str, roles: &str, window: Option<u32>) -> Value {
    let mut properties = json!({"Octopus.Action.TargetRoles": roles});
    if let Some(window) = window {
        properties["Octopus.Action.MaxParallelism"] = json!(window.to_string());
    }
    json!({
        "Name": name,
        "Properties": properties,
        "Actions": [{
            "Name": name,
            "ActionType": "Octopus.Script",
            "Properties": {
                "Octopus.Action.Script.Syntax": "Bash",
                "Octopus.Action.Script.ScriptBody": body,
            }
        }]
    })
}

#[tokio::test]
async fn a_rolling_step_over_four_agents_keeps_its_window_and_outputs_reach_later_steps() {
    let server = server().await;
    create_environments(&server, &["Production"]).await;
    let homes: Vec<tempfile::TempDir> = (0..4)
        .map(|_| tempfile::tempdir().expect("agent home"))
        .collect();
    for (index, home) in homes.iter().enumerate() {
        super::agents::register_listening(&server, home.path(), &format!("web0{}", index + 1));
    }
    let _agents: Vec<_> = homes
        .iter()
        .map(|home| super::agents::run_agent(home.path(), "Cuttle agent is listening on"))
        .collect();
    let project = create_project(&server, "Rolling").await;
    let journal = tempfile::tempdir().expect("journal directory");
    let journal_file = journal.path().join("rolling.log");
    let journal_path = journal_file.display().to_string();
    save_process(
        &server,
        &project,
        vec![
            target_step(
                "Roll",
                &format!(
                    "echo \"start #{{Octopus.Machine.Name}}\" >> '{journal_path}'\nsleep 0.4\necho \"end #{{Octopus.Machine.Name}}\" >> '{journal_path}'\nset_octopusvariable Ready \"yes-#{{Octopus.Machine.Name}}\""
                ),
                "web",
                Some(2),
            ),
            server_step("Pair A", "echo pair a", false),
            server_step("Pair B", "echo pair b", true),
            server_step(
                "Read Output",
                "echo \"web01 said #{Octopus.Action[Roll].Output[web01].Ready}\"",
                false,
            ),
        ],
    )
    .await;
    let _: Value = server
        .client
        .post(
            "/api/Spaces-1/releases/create/v1",
            &json!({"ProjectName": "Rolling", "ReleaseVersion": "1.0.0"}),
        )
        .await
        .expect("create a release");
    let task_id = deploy(&server, "Rolling", "1.0.0", "Production").await;
    let task = wait_for_task(&server, &task_id).await;
    let log = raw_log(&server, &task_id).await;
    assert_eq!(task.state, "Success", "{log}");
    assert!(log.contains("web01 said yes-web01"), "{log}");
    assert!(log.contains("pair a") && log.contains("pair b"), "{log}");

    // Never more than two targets inside the step at once, and all four ran it.
    let journal_text = std::fs::read_to_string(&journal_file).expect("read the journal");
    let mut inside = 0_i32;
    let mut most_inside = 0_i32;
    for line in journal_text.lines() {
        if line.starts_with("start ") {
            inside += 1;
        } else {
            inside -= 1;
        }
        most_inside = most_inside.max(inside);
    }
    assert_eq!(journal_text.matches("start ").count(), 4, "{journal_text}");
    assert_eq!(
        most_inside, 2,
        "a window of two runs two at once: {journal_text}"
    );

    // The task's details nest the targets under the step.
    let details: Value = server
        .client
        .get(&format!("/api/Spaces-1/tasks/{task_id}/details"))
        .await
        .expect("task details");
    let step = &details["ActivityLogs"][0]["Children"][0];
    assert_eq!(
        step["Children"].as_array().map(Vec::len),
        Some(4),
        "{details}"
    );
    server.cleanup().await.expect("clean up");
}

#[tokio::test]
async fn automatic_environments_deploy_when_their_phase_opens() {
    let server = server().await;
    create_environments(&server, &["Development", "Test", "Production"]).await;
    let environments: Value = server
        .client
        .get("/api/Spaces-1/environments")
        .await
        .expect("environments");
    let id_of = |name: &str| {
        environments["Items"]
            .as_array()
            .and_then(|items| items.iter().find(|item| item["Name"] == name))
            .map(|item| item["Id"].clone())
            .expect("environment")
    };
    let lifecycle: Value = server
        .client
        .post(
            "/api/Spaces-1/lifecycles",
            &json!({"Name": "Auto", "Phases": [
                {"Name": "Development", "AutomaticDeploymentTargets": [id_of("Development")]},
                {"Name": "Test", "AutomaticDeploymentTargets": [id_of("Test")]},
                {"Name": "Production", "OptionalDeploymentTargets": [id_of("Production")]},
            ]}),
        )
        .await
        .expect("create a lifecycle");
    let project: Value = server
        .client
        .post(
            "/api/Spaces-1/projects",
            &json!({"Name": "Auto", "LifecycleId": lifecycle["Id"]}),
        )
        .await
        .expect("create a project");
    save_process(
        &server,
        &project,
        vec![server_step(
            "Hello",
            "echo hello #{Octopus.Environment.Name}",
            false,
        )],
    )
    .await;
    let created: Value = server
        .client
        .post(
            "/api/Spaces-1/releases/create/v1",
            &json!({"ProjectName": "Auto", "ReleaseVersion": "2.0.0"}),
        )
        .await
        .expect("create a release");
    let release_id = created["ReleaseId"].as_str().expect("release id");
    // Development deploys at once; when it succeeds, Test follows; Production waits for a person.
    let mut deployments = Value::Null;
    for _ in 0..600 {
        deployments = server
            .client
            .get(&format!("/api/Spaces-1/releases/{release_id}/deployments"))
            .await
            .expect("list deployments");
        if deployments["TotalResults"] == json!(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let items = deployments["Items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2, "{deployments}");
    for item in &items {
        let task = wait_for_task(&server, item["TaskId"].as_str().expect("task id")).await;
        assert_eq!(task.state, "Success");
        assert_ne!(item["EnvironmentId"], id_of("Production"));
    }
    server.cleanup().await.expect("clean up");
}

async fn pending_interruption(server: &TestServer, task_id: &str) -> Value {
    for _ in 0..400 {
        let page: Value = server
            .client
            .get(&format!(
                "/api/Spaces-1/interruptions?regarding={task_id}&pendingOnly=true"
            ))
            .await
            .expect("list interruptions");
        if page["TotalResults"] == json!(1) {
            return page["Items"][0].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("task {task_id} raised no interruption");
}

#[tokio::test]
async fn manual_intervention_waits_for_a_person_to_proceed_or_abort() {
    let server = server().await;
    create_environments(&server, &["Development"]).await;
    let project = create_project(&server, "Approved").await;
    save_process(
        &server,
        &project,
        vec![
            json!({
                "Name": "Approve",
                "Actions": [{
                    "Name": "Approve",
                    "ActionType": "Octopus.Manual",
                    "Properties": {"Octopus.Action.Manual.Instructions": "Check the change window"}
                }]
            }),
            server_step(
                "After",
                "echo \"approved: #{Octopus.Action[Approve].Output.Manual.Notes}\"",
                false,
            ),
        ],
    )
    .await;
    let _: Value = server
        .client
        .post(
            "/api/Spaces-1/releases/create/v1",
            &json!({"ProjectName": "Approved", "ReleaseVersion": "1.0.0"}),
        )
        .await
        .expect("create a release");

    let task_id = deploy(&server, "Approved", "1.0.0", "Development").await;
    let interruption = pending_interruption(&server, &task_id).await;
    let id = interruption["Id"].as_str().expect("interruption id");
    assert_eq!(
        interruption["Form"]["Values"]["Instructions"],
        json!("Check the change window")
    );
    let taken: Value = server
        .client
        .put(
            &format!("/api/Spaces-1/interruptions/{id}/responsible"),
            &json!({}),
        )
        .await
        .expect("take responsibility");
    assert_eq!(taken["HasResponsibility"], json!(true));
    let _: Value = server
        .client
        .post(
            &format!("/api/Spaces-1/interruptions/{id}/submit"),
            &json!({"Result": "Proceed", "Notes": "window is open"}),
        )
        .await
        .expect("proceed");
    let task = wait_for_task(&server, &task_id).await;
    let log = raw_log(&server, &task_id).await;
    assert_eq!(task.state, "Success", "{log}");
    assert!(log.contains("approved: window is open"), "{log}");

    let task_id = deploy(&server, "Approved", "1.0.0", "Development").await;
    let interruption = pending_interruption(&server, &task_id).await;
    let id = interruption["Id"].as_str().expect("interruption id");
    let _: Value = server
        .client
        .post(
            &format!("/api/Spaces-1/interruptions/{id}/submit"),
            &json!({"Result": "Abort", "Notes": "not today"}),
        )
        .await
        .expect("abort");
    let task = wait_for_task(&server, &task_id).await;
    assert_eq!(task.state, "Failed");
    assert!(
        task.error_message.contains("not today"),
        "{}",
        task.error_message
    );
    server.cleanup().await.expect("clean up");
}

#[tokio::test]
async fn a_chatty_script_keeps_every_line_to_the_last() {
    let server = server().await;
    create_environments(&server, &["Development"]).await;
    let project = create_project(&server, "Chatty").await;
    // More lines than one status call carries (5,000), ending as fast as it can.
    save_process(
        &server,
        &project,
        vec![server_step("Count", "seq 1 12000", false)],
    )
    .await;
    let _: Value = server
        .client
        .post(
            "/api/Spaces-1/releases/create/v1",
            &json!({"ProjectName": "Chatty", "ReleaseVersion": "1.0.0"}),
        )
        .await
        .expect("create a release");
    let task_id = deploy(&server, "Chatty", "1.0.0", "Development").await;
    let task = wait_for_task(&server, &task_id).await;
    let log = raw_log(&server, &task_id).await;
    assert_eq!(task.state, "Success");
    let numbers: Vec<&str> = log
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2))
        .filter(|word| word.chars().all(|character| character.is_ascii_digit()))
        .collect();
    assert_eq!(
        numbers.len(),
        12000,
        "every line of the script is in the log"
    );
    assert_eq!(numbers.last(), Some(&"12000"));
    server.cleanup().await.expect("clean up");
}

#[tokio::test]
async fn worker_steps_run_on_a_registered_worker_of_the_default_pool() {
    let server = server().await;
    create_environments(&server, &["Development"]).await;
    let home = tempfile::tempdir().expect("worker home");
    let port = super::agents::free_port().to_string();
    super::agents::agent_command(
        home.path(),
        &[
            "register-worker",
            "--server",
            &server.base_url,
            "--api-key",
            cuttle_test_support::TEST_API_KEY,
            "--name",
            "pool-worker-1",
            "--worker-pool",
            "Default Worker Pool",
            "--listen-port",
            &port,
            "--public-hostname",
            "127.0.0.1",
        ],
    );
    let _worker = super::agents::run_agent(home.path(), "Cuttle agent is listening on");
    let project = create_project(&server, "On Workers").await;
    save_process(
        &server,
        &project,
        vec![server_step(
            "Where",
            "echo \"ran on #{Octopus.Machine.Name}\"",
            false,
        )],
    )
    .await;
    let _: Value = server
        .client
        .post(
            "/api/Spaces-1/releases/create/v1",
            &json!({"ProjectName": "On Workers", "ReleaseVersion": "1.0.0"}),
        )
        .await
        .expect("create a release");
    let task_id = deploy(&server, "On Workers", "1.0.0", "Development").await;
    let task = wait_for_task(&server, &task_id).await;
    let log = raw_log(&server, &task_id).await;
    assert_eq!(task.state, "Success", "{log}");
    assert!(log.contains("ran on pool-worker-1"), "{log}");
    server.cleanup().await.expect("clean up");
}

pub(super) fn package_step(name: &str, package_id: &str, feed_id: &str) -> Value {
    let mut step = server_step(name, "echo using a package", false);
    step["Actions"][0]["Packages"] = json!([{
        "Name": "", "PackageId": package_id, "FeedId": feed_id, "AcquisitionLocation": "Server"
    }]);
    step
}

#[tokio::test]
async fn releases_pin_package_versions_within_their_channel_rules() {
    let server = server().await;
    create_environments(&server, &["Development"]).await;
    let project = create_project(&server, "Channelled").await;
    let project_id = project["Id"].as_str().expect("project id");
    save_process(
        &server,
        &project,
        vec![package_step("Deploy web", "web", "feeds-external")],
    )
    .await;
    let _: Value = server
        .client
        .post(
            "/api/Spaces-1/channels",
            &json!({
                "ProjectId": project_id, "Name": "Stable",
                "Rules": [{"VersionRange": "[1.0,2.0)", "Tag": "^$",
                           "ActionPackages": [{"DeploymentAction": "Deploy web"}]}]
            }),
        )
        .await
        .expect("create a channel");
    let create = |body: Value| {
        let server = &server;
        async move {
            send(
                server,
                "POST",
                "/api/Spaces-1/releases/create/v1",
                Some(&body.to_string()),
            )
            .await
        }
    };

    // Outside the named channel's range: refused, naming the rule.
    let refused = create(json!({
        "ProjectName": "Channelled", "ChannelName": "Stable", "ReleaseVersion": "1.0.0",
        "Packages": ["Deploy web:2.1.0"], "IgnoreChannelRules": false
    }))
    .await;
    assert_error(
        &refused,
        400,
        "version 2.1.0 of package 'web' is outside the channel 'Stable' range [1.0,2.0)",
    );
    // A pre-release is refused by the tag pattern.
    let refused = create(json!({
        "ProjectName": "Channelled", "ChannelName": "Stable", "ReleaseVersion": "1.0.0",
        "PackageVersion": "1.5.0-beta.2"
    }))
    .await;
    assert_error(&refused, 400, "has the tag 'beta.2'");
    // Nothing to choose from in a feed Cuttle cannot search.
    let refused = create(json!({"ProjectName": "Channelled", "ReleaseVersion": "1.0.0"})).await;
    assert_error(
        &refused,
        400,
        "give its version in Packages or PackageVersion",
    );

    // An accepted version, with no channel named: the channel whose rule governs the package
    // and accepts it is chosen.
    let accepted = create(json!({
        "ProjectName": "Channelled", "ReleaseVersion": "1.0.0", "Packages": ["web:1.4.0"]
    }))
    .await;
    assert_eq!(accepted.status.as_u16(), 201, "{}", accepted.body);
    let release_id = serde_json::from_str::<Value>(&accepted.body).expect("JSON")["ReleaseId"]
        .as_str()
        .expect("release id")
        .to_owned();
    let release: Value = server
        .client
        .get(&format!("/api/Spaces-1/releases/{release_id}"))
        .await
        .expect("read the release");
    let channel: Value = server
        .client
        .get(&format!(
            "/api/Spaces-1/channels/{}",
            release["ChannelId"].as_str().expect("channel id")
        ))
        .await
        .expect("read the channel");
    assert_eq!(channel["Name"], "Stable");
    assert_eq!(
        release["SelectedPackages"],
        json!([{"ActionName": "Deploy web", "StepName": "Deploy web",
                "PackageReferenceName": "", "Version": "1.4.0"}])
    );

    // IgnoreChannelRules pins what the rules would refuse, and says so on the release.
    let ignored = create(json!({
        "ProjectName": "Channelled", "ChannelName": "Stable", "ReleaseVersion": "2.0.0",
        "Packages": ["*:3.0.0"], "IgnoreChannelRules": true
    }))
    .await;
    assert_eq!(ignored.status.as_u16(), 201, "{}", ignored.body);
    let release: Value = server
        .client
        .get(&format!(
            "/api/Spaces-1/projects/{project_id}/releases/2.0.0"
        ))
        .await
        .expect("read the release by version");
    assert_eq!(release["IgnoreChannelRules"], json!(true));
    assert_eq!(release["SelectedPackages"][0]["Version"], "3.0.0");
    server.cleanup().await.expect("clean up");
}

#[tokio::test]
async fn a_required_prompted_variable_must_be_answered_when_deploying() {
    let server = server().await;
    create_environments(&server, &["Development"]).await;
    let project = create_project(&server, "Prompted").await;
    let variables_path = format!(
        "/api/Spaces-1/variables/{}",
        project["VariableSetId"].as_str().expect("variable set id")
    );
    let mut variables: Value = server.client.get(&variables_path).await.expect("variables");
    variables["Variables"] = json!([
        {"Name": "Approver", "Value": "", "Prompt": {"Label": "Who approved?", "Required": true}},
    ]);
    let saved: Value = server
        .client
        .put(&variables_path, &variables)
        .await
        .expect("save variables");
    let approver_id = saved["Variables"][0]["Id"]
        .as_str()
        .expect("variable id")
        .to_owned();
    save_process(
        &server,
        &project,
        vec![server_step(
            "Greet",
            "echo \"approved by #{Approver}\"",
            false,
        )],
    )
    .await;
    let _: Value = server
        .client
        .post(
            "/api/Spaces-1/releases/create/v1",
            &json!({"ProjectName": "Prompted", "ReleaseVersion": "1.0.0"}),
        )
        .await
        .expect("create a release");
    let deploy_with = |form: Value| {
        let server = &server;
        async move {
            send(
                server,
                "POST",
                "/api/Spaces-1/deployments/create/untenanted/v1",
                Some(
                    &json!({"ProjectName": "Prompted", "ReleaseVersion": "1.0.0",
                            "EnvironmentNames": ["Development"], "Variables": form})
                    .to_string(),
                ),
            )
            .await
        }
    };
    let refused = deploy_with(json!({})).await;
    assert_error(
        &refused,
        400,
        "required prompted variables have no value: 'Who approved?' (Approver)",
    );
    let refused = deploy_with(json!({"Approver": "  "})).await;
    assert_error(&refused, 400, "'Who approved?' (Approver)");

    // Answered by the variable's id, as the portal does.
    let accepted = deploy_with(json!({ approver_id: "Ada" })).await;
    assert_eq!(accepted.status.as_u16(), 200, "{}", accepted.body);
    let task_id = serde_json::from_str::<Value>(&accepted.body).expect("JSON")
        ["DeploymentServerTasks"][0]["ServerTaskId"]
        .as_str()
        .expect("task id")
        .to_owned();
    let task = wait_for_task(&server, &task_id).await;
    let log = raw_log(&server, &task_id).await;
    assert_eq!(task.state, "Success", "{log}");
    assert!(log.contains("approved by Ada"), "{log}");
    server.cleanup().await.expect("clean up");
}

#[tokio::test]
async fn a_failing_action_retries_by_itself_and_a_slow_one_stops_at_its_timeout() {
    let server = server().await;
    create_environments(&server, &["Development"]).await;
    let project = create_project(&server, "Flaky").await;
    let process_path = format!(
        "/api/Spaces-1/deploymentprocesses/{}",
        project["DeploymentProcessId"].as_str().expect("process id")
    );
    let runs = tempfile::tempdir().expect("temporary directory");
    let runs_file = runs.path().join("runs");
    let release = |version: &str| json!({"ProjectName": "Flaky", "ReleaseVersion": version});

    // Fails on its first two runs, works on the third: two automatic retries are enough.
    let mut flaky = server_step(
        "Flaky",
        &format!(
            "echo run >> '{file}'; runs=$(wc -l < '{file}'); \
             if [ \"$runs\" -lt 3 ]; then echo \"run $runs fails\" >&2; exit 4; fi; echo \"run $runs works\"",
            file = runs_file.display()
        ),
        false,
    );
    flaky["Actions"][0]["Properties"]["Octopus.Action.AutoRetry.MaximumCount"] = json!("2");
    flaky["Actions"][0]["Properties"]["Octopus.Action.AutoRetry.MinimumBackoff"] = json!("0");
    save_process(&server, &project, vec![flaky]).await;
    let _: Value = server
        .client
        .post("/api/Spaces-1/releases/create/v1", &release("1.0.0"))
        .await
        .expect("create a release");
    let task_id = deploy(&server, "Flaky", "1.0.0", "Development").await;
    let task = wait_for_task(&server, &task_id).await;
    let log = raw_log(&server, &task_id).await;
    assert_eq!(task.state, "Success", "{log}");
    for expected in [
        "run 1 fails",
        "Retrying automatically in 0 s (retry 1 of 2)",
        "run 2 fails",
        "Retrying automatically in 0 s (retry 2 of 2)",
        "run 3 works",
    ] {
        assert!(log.contains(expected), "{expected:?} is missing:\n{log}");
    }

    // Runs longer than its execution timeout (0.02 minutes) each time: stopped, retried once,
    // stopped again, and the deployment fails saying why.
    let mut slow = server_step("Slow", "echo started; sleep 60; echo never", false);
    slow["Actions"][0]["Properties"]["Octopus.Action.ExecutionTimeout.Minutes"] = json!("0.02");
    slow["Actions"][0]["Properties"]["Octopus.Action.AutoRetry.MaximumCount"] = json!("1");
    slow["Actions"][0]["Properties"]["Octopus.Action.AutoRetry.MinimumBackoff"] = json!("0");
    save_process(&server, &project, vec![slow]).await;
    let _: Value = server
        .client
        .post("/api/Spaces-1/releases/create/v1", &release("2.0.0"))
        .await
        .expect("create a release");
    let started = std::time::Instant::now();
    let task_id = deploy(&server, "Flaky", "2.0.0", "Development").await;
    let task = wait_for_task(&server, &task_id).await;
    let log = raw_log(&server, &task_id).await;
    assert_eq!(task.state, "Failed", "{log}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the timeout did not stop the script: {log}"
    );
    // Once per run, and once more in the task's fatal line.
    assert_eq!(
        log.matches("'Slow' ran past its execution timeout (1.2 s)")
            .count(),
        3,
        "{log}"
    );
    assert!(
        log.contains("retry 1 of 1") && !log.contains("never"),
        "{log}"
    );

    // A value that is not a number is refused when saving, naming the property.
    let mut process: Value = server
        .client
        .get(&process_path)
        .await
        .expect("read the process");
    process["Steps"][0]["Actions"][0]["Properties"]["Octopus.Action.AutoRetry.MaximumCount"] =
        json!("lots");
    let response = send(&server, "PUT", &process_path, Some(&process.to_string())).await;
    assert_error(
        &response,
        400,
        "Octopus.Action.AutoRetry.MaximumCount must be a whole number from 0 to 100, not 'lots'",
    );
    server.cleanup().await.expect("clean up");
}
