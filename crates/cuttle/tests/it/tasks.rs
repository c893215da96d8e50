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
    assert_eq!(
        finished.state, "Failed",
        "no transport reaches listening agents in this build"
    );
    assert!(!finished.finished_successfully);
    assert!(
        finished.error_message.contains("web01"),
        "{}",
        finished.error_message
    );
    assert!(finished.completed_time.is_some());

    let checked = client
        .get_resource::<DeploymentTarget>(Some("Spaces-1"), &target.id)
        .await
        .unwrap();
    assert_eq!(checked.health_status, HealthStatus::Unhealthy);
    assert!(checked.status_summary.unwrap().contains("TentaclePassive"));
    assert!(checked.last_health_check.is_some());

    let details: TaskDetailsResource = client
        .get(&format!("/api/Spaces-1/tasks/{}/details", created.id))
        .await
        .unwrap();
    assert_eq!(details.task.id, created.id);
    assert_eq!(details.activity_logs[0].children[0].name, "web01");
    assert_eq!(details.activity_logs[0].children[0].status, "Failed");
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
    assert_eq!(unscoped.state, "Failed");
    let after_cancel: ServerTaskResource = client
        .post(&format!("/api/tasks/{}/cancel", created.id), &json!({}))
        .await
        .unwrap();
    assert_eq!(after_cancel.state, "Failed");
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
