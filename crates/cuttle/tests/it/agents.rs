//! Agents as separate processes over real mutual TLS: registration with the real `cuttle agent`
//! commands, health checks, scripts through listening and polling agents, a server restart in
//! the middle of a script, and a stopped agent.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cuttle_api::ServerTaskResource;
use cuttle_domain::{DeploymentTarget, Environment, HealthStatus};
use cuttle_test_support::{TEST_API_KEY, TestServer};
use serde_json::json;

use super::{send, server};

const CUTTLE: &str = env!("CARGO_BIN_EXE_cuttle");

/// A running `cuttle agent run`, killed when dropped.
pub(super) struct RunningAgent {
    child: Child,
    _lines: mpsc::Receiver<String>,
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// Runs `cuttle agent <arguments>` to completion; returns stdout, panicking on failure.
fn agent_command(home: &Path, arguments: &[&str]) -> String {
    let output = Command::new(CUTTLE)
        .arg("agent")
        .arg("--home")
        .arg(home)
        .args(arguments)
        .env_remove("CUTTLE_AGENT_HOME")
        .output()
        .expect("run cuttle agent");
    assert!(
        output.status.success(),
        "cuttle agent {arguments:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Starts `cuttle agent run` and waits for the line that says it is ready.
pub(super) fn run_agent(home: &Path, ready_prefix: &str) -> RunningAgent {
    let mut child = Command::new(CUTTLE)
        .arg("agent")
        .arg("--home")
        .arg(home)
        .arg("run")
        .env_remove("CUTTLE_AGENT_HOME")
        .env("CUTTLE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the agent");
    let stdout = child.stdout.take().expect("agent stdout");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        match receiver.recv_timeout(remaining) {
            Ok(line) if line.starts_with(ready_prefix) => break,
            Ok(_) => {}
            Err(_) => panic!("the agent did not print {ready_prefix:?} within 30 s"),
        }
    }
    RunningAgent {
        child,
        _lines: receiver,
    }
}

/// Registers a listening agent in `home` as target `name` (role `web`, in Production) on a
/// free port; returns what `cuttle agent register` printed.
pub(super) fn register_listening(server: &TestServer, home: &Path, name: &str) -> String {
    let port = free_port().to_string();
    agent_command(
        home,
        &[
            "register",
            "--server",
            &server.base_url,
            "--api-key",
            TEST_API_KEY,
            "--name",
            name,
            "--environment",
            "Production",
            "--role",
            "web",
            "--listen-port",
            &port,
            "--public-hostname",
            "127.0.0.1",
        ],
    )
}

async fn production(server: &TestServer) -> Environment {
    server
        .client
        .create(
            Some("Spaces-1"),
            &Environment {
                name: "Production".to_owned(),
                ..Environment::default()
            },
        )
        .await
        .expect("create Production")
}

async fn start_task(server: &TestServer, body: serde_json::Value) -> ServerTaskResource {
    server
        .client
        .post("/api/Spaces-1/tasks", &body)
        .await
        .expect("start a task")
}

async fn wait_for_task(server: &TestServer, id: &str) -> ServerTaskResource {
    for _ in 0..600 {
        let task: ServerTaskResource = server
            .client
            .get(&format!("/api/tasks/{id}"))
            .await
            .expect("poll the task");
        if task.is_completed {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("task {id} did not complete");
}

async fn raw_log(server: &TestServer, id: &str) -> String {
    send(
        server,
        "GET",
        &format!("/api/Spaces-1/tasks/{id}/raw"),
        None,
    )
    .await
    .body
}

async fn target_named(server: &TestServer, name: &str) -> DeploymentTarget {
    server
        .client
        .list_all::<DeploymentTarget>(Some("Spaces-1"))
        .await
        .expect("list targets")
        .into_iter()
        .find(|target| target.name == name)
        .unwrap_or_else(|| panic!("no target named {name}"))
}

#[tokio::test]
async fn a_listening_agent_registers_checks_healthy_and_runs_scripts() {
    let server = server().await;
    production(&server).await;
    let home = tempfile::tempdir().unwrap();
    let registered = register_listening(&server, home.path(), "web01");
    assert!(registered.contains("Machines-"), "{registered}");
    let target = target_named(&server, "web01").await;
    let agent_thumbprint = agent_command(home.path(), &["show-thumbprint"]);
    assert_eq!(target.endpoint.thumbprint(), Some(agent_thumbprint.trim()));
    let _agent = run_agent(home.path(), "Cuttle agent is listening on");

    let health = start_task(
        &server,
        json!({"Name": "Health", "Arguments": {"MachineIds": [target.id]}}),
    )
    .await;
    let health = wait_for_task(&server, &health.id).await;
    assert_eq!(
        health.state,
        "Success",
        "{}",
        raw_log(&server, &health.id).await
    );
    let checked = target_named(&server, "web01").await;
    assert_eq!(checked.health_status, HealthStatus::Healthy);
    assert!(checked.status_summary.unwrap().contains("Cuttle agent"));

    let script = start_task(
        &server,
        json!({"Name": "AdHocScript", "Arguments": {"ScriptBody": "echo \"on $(get_octopusvariable Octopus.Machine.Name)\"; echo line two", "TargetRoles": ["web"]}}),
    )
    .await;
    let script = wait_for_task(&server, &script.id).await;
    let log = raw_log(&server, &script.id).await;
    assert_eq!(script.state, "Success", "{log}");
    assert!(
        log.contains("on web01") && log.contains("line two"),
        "{log}"
    );
}

#[tokio::test]
async fn a_polling_agent_dials_the_server_and_survives_a_server_restart_mid_script() {
    let mut server = server().await;
    production(&server).await;
    let home = tempfile::tempdir().unwrap();
    agent_command(
        home.path(),
        &[
            "register",
            "--server",
            &server.base_url,
            "--api-key",
            TEST_API_KEY,
            "--name",
            "app01",
            "--environment",
            "Production",
            "--role",
            "app",
            "--polling",
            "--server-comms-address",
            &server.agent_address,
        ],
    );
    let target = target_named(&server, "app01").await;
    assert!(matches!(
        target.endpoint,
        cuttle_domain::Endpoint::Polling { .. }
    ));
    let _agent = run_agent(home.path(), "Cuttle agent is connected to");

    let health = start_task(
        &server,
        json!({"Name": "Health", "Arguments": {"MachineIds": [target.id]}}),
    )
    .await;
    let health = wait_for_task(&server, &health.id).await;
    assert_eq!(
        health.state,
        "Success",
        "{}",
        raw_log(&server, &health.id).await
    );

    // A script that outlives a server restart: every line arrives, and it runs once.
    let script = start_task(
        &server,
        json!({"Name": "AdHocScript", "Arguments": {"ScriptBody": "for i in 1 2 3 4 5 6; do echo \"tick $i\"; sleep 0.5; done", "MachineIds": [target.id]}}),
    )
    .await;
    for _ in 0..200 {
        if raw_log(&server, &script.id).await.contains("tick 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    server.restart().expect("restart the server");
    let finished = wait_for_task(&server, &script.id).await;
    let log = raw_log(&server, &script.id).await;
    assert_eq!(finished.state, "Success", "{log}");
    assert!(log.contains("Resuming on node"), "{log}");
    for tick in 1..=6 {
        assert_eq!(
            log.matches(&format!("tick {tick}")).count(),
            1,
            "every line once: {log}"
        );
    }
}

#[tokio::test]
async fn a_stopped_agent_is_unavailable_and_a_wrong_thumbprint_is_refused() {
    let server = server().await;
    production(&server).await;
    let home = tempfile::tempdir().unwrap();
    register_listening(&server, home.path(), "web02");
    let target = target_named(&server, "web02").await;
    // Nothing runs the agent: the target cannot be reached.
    let health = start_task(
        &server,
        json!({"Name": "Health", "Arguments": {"MachineIds": [target.id]}}),
    )
    .await;
    let health = wait_for_task(&server, &health.id).await;
    assert_eq!(
        health.state, "Success",
        "unavailable targets do not fail a health check"
    );
    assert!(health.has_warnings_or_errors);
    assert_eq!(
        target_named(&server, "web02").await.health_status,
        HealthStatus::Unavailable
    );

    // A target registered with another certificate's thumbprint is refused by the server.
    let _agent = run_agent(home.path(), "Cuttle agent is listening on");
    let mut impostor = target_named(&server, "web02").await;
    if let cuttle_domain::Endpoint::Listening { thumbprint, .. } = &mut impostor.endpoint {
        *thumbprint = "AB".repeat(32);
    }
    server
        .client
        .modify(Some("Spaces-1"), &impostor)
        .await
        .expect("change the thumbprint");
    let health = start_task(
        &server,
        json!({"Name": "Health", "Arguments": {"MachineIds": [target.id]}}),
    )
    .await;
    let health = wait_for_task(&server, &health.id).await;
    assert_eq!(
        health.state,
        "Failed",
        "{}",
        raw_log(&server, &health.id).await
    );
    let refused = target_named(&server, "web02").await;
    assert_eq!(refused.health_status, HealthStatus::Unhealthy);
}

#[tokio::test]
async fn machine_policies_schedule_health_checks_and_run_their_scripts() {
    let server = server().await;
    production(&server).await;
    // The default policy: check every five seconds, with a script that warns.
    let policies: serde_json::Value = server
        .client
        .get("/api/Spaces-1/machinepolicies")
        .await
        .unwrap();
    let mut policy = policies["Items"][0].clone();
    assert_eq!(policy["Name"], "Default Machine Policy");
    policy["MachineHealthCheckPolicy"]["HealthCheckInterval"] = json!("00:00:05");
    policy["MachineHealthCheckPolicy"]["BashHealthCheckPolicy"]["ScriptBody"] =
        json!("echo 'disk is fine'; echo '##octopus[stdout-warning]'; echo 'but the moon is full'");
    let policy_id = policy["Id"].as_str().unwrap().to_owned();
    let _: serde_json::Value = server
        .client
        .put(
            &format!("/api/Spaces-1/machinepolicies/{policy_id}"),
            &policy,
        )
        .await
        .unwrap();

    let home = tempfile::tempdir().unwrap();
    register_listening(&server, home.path(), "web03");
    let target = target_named(&server, "web03").await;
    assert_eq!(
        target.machine_policy_id.as_deref(),
        Some(policy_id.as_str())
    );
    let _agent = run_agent(home.path(), "Cuttle agent is listening on");

    // Nobody starts a check: the schedule does.
    let mut checked = target.clone();
    for _ in 0..400 {
        checked = target_named(&server, "web03").await;
        if checked.health_status != HealthStatus::Unknown {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        checked.health_status,
        HealthStatus::HasWarnings,
        "{:?}",
        checked.status_summary
    );
    let tasks: serde_json::Value = server
        .client
        .get("/api/Spaces-1/tasks?name=Health")
        .await
        .unwrap();
    assert_eq!(tasks["Items"][0]["Description"], "Scheduled health check");

    let response = send(
        &server,
        "PUT",
        &format!("/api/Spaces-1/machinepolicies/{policy_id}"),
        Some(&{
            let mut bad = policy.clone();
            bad["MachineHealthCheckPolicy"]["HealthCheckInterval"] = json!("soon");
            bad.to_string()
        }),
    )
    .await;
    assert_eq!(response.status, 400, "{}", response.body);
    let response = send(
        &server,
        "DELETE",
        &format!("/api/Spaces-1/machinepolicies/{policy_id}"),
        None,
    )
    .await;
    assert_eq!(
        response.status, 400,
        "the default policy cannot be deleted: {}",
        response.body
    );
}
