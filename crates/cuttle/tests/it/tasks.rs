//! Server tasks over the API: health checks as tasks, polling them as await-task does, details,
//! the raw log, and cancellation.

use std::time::Duration;

use cuttle_api::{ServerTaskResource, TaskDetailsResource};
use cuttle_domain::{DeploymentTarget, Endpoint, Environment, HealthStatus};
use serde_json::json;

use super::{assert_error, send, server};

async fn wait_for_task(server: &cuttle_test_support::TestServer, id: &str) -> ServerTaskResource {
    for _ in 0..300 {
        let page: serde_json::Value = server
            .client
            .get(&format!("/api/Spaces-1/tasks?skip=0&take=300&ids={id}"))
            .await
            .expect("poll the task");
        let task: ServerTaskResource =
            serde_json::from_value(page["Items"][0].clone()).expect("a task resource");
        if task.is_completed {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("task {id} did not complete");
}

#[tokio::test]
async fn a_health_check_runs_as_a_task_and_records_each_targets_status() {
    let server = server().await;
    let client = &server.client;
    let environment = client
        .create(
            Some("Spaces-1"),
            &Environment {
                name: "Production".to_owned(),
                ..Environment::default()
            },
        )
        .await
        .unwrap();
    let target = client
        .create(
            Some("Spaces-1"),
            &DeploymentTarget {
                name: "web01".to_owned(),
                environment_ids: vec![environment.id.clone()],
                roles: vec!["web".to_owned()],
                endpoint: Endpoint::Listening {
                    uri: "https://127.0.0.1:1/".to_owned(),
                    thumbprint: "AB".repeat(32),
                },
                ..DeploymentTarget::default()
            },
        )
        .await
        .unwrap();

    let created: ServerTaskResource = client
        .post(
            "/api/Spaces-1/tasks",
            &json!({"Name": "Health", "Description": "Check web01", "Arguments": {"MachineIds": [target.id]}}),
        )
        .await
        .unwrap();
    assert_eq!(created.name, "Health");
    assert!(created.id.starts_with("ServerTasks-"));
    assert!(!created.is_completed);

    let finished = wait_for_task(&server, &created.id).await;
    // Nothing listens on port 1: the target is unavailable, which does not fail the check.
    assert_eq!(finished.state, "Success");
    assert!(finished.has_warnings_or_errors);
    assert!(finished.completed_time.is_some());

    let checked = client
        .get_resource::<DeploymentTarget>(Some("Spaces-1"), &target.id)
        .await
        .unwrap();
    assert_eq!(checked.health_status, HealthStatus::Unavailable);
    assert!(checked.status_summary.unwrap().contains("could not reach"));
    assert!(checked.last_health_check.is_some());

    let details: TaskDetailsResource = client
        .get(&format!("/api/Spaces-1/tasks/{}/details", created.id))
        .await
        .unwrap();
    assert_eq!(details.task.id, created.id);
    assert_eq!(details.activity_logs[0].children[0].name, "web01");
    assert_eq!(
        details.activity_logs[0].children[0].status,
        "SuccessWithWarning"
    );
    let raw = send(
        &server,
        "GET",
        &format!("/api/Spaces-1/tasks/{}/raw", created.id),
        None,
    )
    .await;
    assert_eq!(raw.status, 200);
    assert!(
        raw.body
            .contains("Checking the health of 1 deployment targets"),
        "{}",
        raw.body
    );

    // The unscoped routes answer too; cancelling a finished task changes nothing.
    let unscoped: ServerTaskResource = client
        .get(&format!("/api/tasks/{}", created.id))
        .await
        .unwrap();
    assert_eq!(unscoped.state, "Success");
    let after_cancel: ServerTaskResource = client
        .post(&format!("/api/tasks/{}/cancel", created.id), &json!({}))
        .await
        .unwrap();
    assert_eq!(after_cancel.state, "Success");
}

#[tokio::test]
async fn a_health_check_of_nothing_succeeds_and_bad_arguments_are_refused() {
    let server = server().await;
    let created: ServerTaskResource = server
        .client
        .post(
            "/api/Spaces-1/tasks",
            &json!({"Name": "Health", "Arguments": {}}),
        )
        .await
        .unwrap();
    let finished = wait_for_task(&server, &created.id).await;
    assert_eq!(finished.state, "Success");
    assert!(finished.finished_successfully);

    let response = send(
        &server,
        "POST",
        "/api/Spaces-1/tasks",
        Some(r#"{"Name": "Health", "Arguments": {"MachineIds": ["Machines-404"]}}"#),
    )
    .await;
    assert_error(&response, 400, "Machines-404");
    let response = send(
        &server,
        "POST",
        "/api/Spaces-1/tasks",
        Some(r#"{"Name": "Health", "Arguments": {"EnvironmentId": "Environments-404"}}"#),
    )
    .await;
    assert_error(&response, 400, "Environments-404");
    let response = send(
        &server,
        "POST",
        "/api/Spaces-1/tasks",
        Some(r#"{"Name": "Backup"}"#),
    )
    .await;
    assert_error(&response, 400, "Backup");

    // Unknown ids are simply absent, as the task waiter needs; an unknown task is a 404.
    let page: serde_json::Value = server
        .client
        .get(&format!(
            "/api/Spaces-1/tasks?ids={},ServerTasks-999&take=300",
            created.id
        ))
        .await
        .unwrap();
    assert_eq!(page["TotalResults"], 1);
    let response = send(&server, "GET", "/api/Spaces-1/tasks/ServerTasks-999", None).await;
    assert_error(&response, 404, "ServerTasks-999");
    let response = send(
        &server,
        "POST",
        "/api/tasks/ServerTasks-999/cancel",
        Some("{}"),
    )
    .await;
    assert_error(&response, 404, "ServerTasks-999");
    let response = send(&server, "GET", "/api/Spaces-1/tasks?states=Sleeping", None).await;
    assert_error(&response, 400, "Sleeping");
    let page: serde_json::Value = server
        .client
        .get("/api/Spaces-1/tasks?states=Success&name=Health")
        .await
        .unwrap();
    assert_eq!(page["TotalResults"], 1);
}

async fn run_ad_hoc(
    server: &cuttle_test_support::TestServer,
    arguments: serde_json::Value,
) -> ServerTaskResource {
    let created: ServerTaskResource = server
        .client
        .post(
            "/api/Spaces-1/tasks",
            &json!({"Name": "AdHocScript", "Arguments": arguments}),
        )
        .await
        .expect("start the script");
    wait_for_task(server, &created.id).await
}

async fn raw_log(server: &cuttle_test_support::TestServer, id: &str) -> String {
    send(
        server,
        "GET",
        &format!("/api/Spaces-1/tasks/{id}/raw"),
        None,
    )
    .await
    .body
}

#[tokio::test]
async fn ad_hoc_scripts_run_on_the_built_in_worker() {
    let server = server().await;
    let finished = run_ad_hoc(
        &server,
        json!({"ScriptBody": "echo \"hello from $(get_octopusvariable Octopus.Machine.Name)\"\necho oops >&2\necho '##octopus[stdout-warning]'\necho careful\n", "Syntax": "Bash"}),
    )
    .await;
    assert_eq!(
        finished.state,
        "Success",
        "{}",
        raw_log(&server, &finished.id).await
    );
    let log = raw_log(&server, &finished.id).await;
    assert!(log.contains("hello from the built-in worker"), "{log}");
    assert!(log.contains("Error      oops"), "{log}");
    assert!(log.contains("Warning    careful"), "{log}");
    assert!(finished.has_warnings_or_errors);

    let python = run_ad_hoc(
        &server,
        json!({"ScriptBody": "print('from python', 6 * 7)", "Syntax": "python"}),
    )
    .await;
    assert_eq!(python.state, "Success");
    assert!(
        raw_log(&server, &python.id)
            .await
            .contains("from python 42")
    );

    let failing = run_ad_hoc(&server, json!({"ScriptBody": "echo before; exit 3"})).await;
    assert_eq!(failing.state, "Failed");
    assert!(
        failing.error_message.contains("exit code 3"),
        "{}",
        failing.error_message
    );

    let response = send(
        &server,
        "POST",
        "/api/Spaces-1/tasks",
        Some(r#"{"Name": "AdHocScript", "Arguments": {"ScriptBody": " "}}"#),
    )
    .await;
    assert_error(&response, 400, "ScriptBody");
    let response = send(
        &server,
        "POST",
        "/api/Spaces-1/tasks",
        Some(r#"{"Name": "AdHocScript", "Arguments": {"ScriptBody": "true", "Syntax": "Cobol"}}"#),
    )
    .await;
    assert_error(&response, 400, "Cobol");
}

#[tokio::test]
async fn a_running_script_is_cancelled_with_its_task() {
    let server = server().await;
    let created: ServerTaskResource = server
        .client
        .post(
            "/api/Spaces-1/tasks",
            &json!({"Name": "AdHocScript", "Arguments": {"ScriptBody": "echo started; sleep 600 & wait"}}),
        )
        .await
        .unwrap();
    for _ in 0..200 {
        if raw_log(&server, &created.id).await.contains("started") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = std::time::Instant::now();
    let cancelling: ServerTaskResource = server
        .client
        .post(&format!("/api/tasks/{}/cancel", created.id), &json!({}))
        .await
        .unwrap();
    assert!(
        cancelling.state == "Cancelling" || cancelling.state == "Canceled",
        "{}",
        cancelling.state
    );
    let finished = wait_for_task(&server, &created.id).await;
    assert_eq!(finished.state, "Canceled");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cancelling took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_server_restart_never_leaves_a_task_executing() {
    let mut server = server().await;
    let created: ServerTaskResource = server
        .client
        .post(
            "/api/Spaces-1/tasks",
            &json!({"Name": "AdHocScript", "Arguments": {"ScriptBody": "echo first; sleep 3; echo second"}}),
        )
        .await
        .unwrap();
    for _ in 0..200 {
        if raw_log(&server, &created.id).await.contains("first") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.restart().unwrap();
    let finished = wait_for_task(&server, &created.id).await;
    let log = raw_log(&server, &created.id).await;
    // The script's process died with the server: the task ends Failed, and says why.
    assert_eq!(finished.state, "Failed", "{log}");
    assert!(!finished.error_message.is_empty(), "{log}");
    assert!(
        log.contains("first"),
        "a line shown before the restart was lost: {log}"
    );
    assert!(log.contains("Resuming on node"), "{log}");
    // The built-in worker ran inside the stopped server: its script's result is unknown, and
    // it is never run a second time.
    assert_eq!(log.matches("first").count(), 1, "{log}");
}
