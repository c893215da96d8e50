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
    /// What it prints on standard output, line by line.
    lines: mpsc::Receiver<String>,
}

impl RunningAgent {
    /// Waits for a line of standard output starting with `prefix`.
    fn wait_for_line(&self, prefix: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(remaining) {
                Ok(line) if line.starts_with(prefix) => return,
                Ok(_) => {}
                Err(_) => panic!("the agent did not print {prefix:?} within 30 s"),
            }
        }
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// Runs `cuttle agent <arguments>` to completion; returns stdout, panicking on failure.
pub(super) fn agent_command(home: &Path, arguments: &[&str]) -> String {
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

/// Where [`run_agent`] writes the agent's log (its standard error).
fn agent_log_path(home: &Path) -> std::path::PathBuf {
    home.join("agent.log")
}

/// Starts `cuttle agent run` and waits for the line that says it is ready; its log goes to
/// [`agent_log_path`].
pub(super) fn run_agent(home: &Path, ready_prefix: &str) -> RunningAgent {
    let agent = spawn_agent(home);
    agent.wait_for_line(ready_prefix);
    agent
}

/// Starts `cuttle agent run`; its log goes to [`agent_log_path`].
fn spawn_agent(home: &Path) -> RunningAgent {
    let log = std::fs::File::create(agent_log_path(home)).expect("create the agent's log");
    let mut child = Command::new(CUTTLE)
        .arg("agent")
        .arg("--home")
        .arg(home)
        .arg("run")
        .env_remove("CUTTLE_AGENT_HOME")
        .env("CUTTLE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start the agent");
    let stdout = child.stdout.take().expect("agent stdout");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    RunningAgent {
        child,
        lines: receiver,
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

/// Waits until `read()` contains `text`; panics with what it read after 30 s.
async fn wait_for_text(what: &str, text: &str, read: impl Fn() -> String) {
    wait_for_occurrences(what, text, 1, read).await;
}

/// Waits until `read()` contains `text` `count` times; panics with what it read after 30 s.
async fn wait_for_occurrences(what: &str, text: &str, count: usize, read: impl Fn() -> String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let current = read();
        if current.matches(text).count() >= count {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not say {text:?} {count} times within 30 s:\n{current}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Registers a polling agent in `home` as target `name` (role `app`, in Production).
fn register_polling(server: &TestServer, home: &Path, name: &str) {
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
            "app",
            "--polling",
            "--server-comms-address",
            &server.agent_address,
        ],
    );
}

#[tokio::test]
async fn deleting_or_deregistering_a_polling_agent_closes_its_connection() {
    let server = server().await;
    production(&server).await;
    let deleted_home = tempfile::tempdir().unwrap();
    register_polling(&server, deleted_home.path(), "app03");
    let deleted = target_named(&server, "app03").await;
    let _deleted_agent = run_agent(deleted_home.path(), "Cuttle agent is connected to");
    let deregistered_home = tempfile::tempdir().unwrap();
    register_polling(&server, deregistered_home.path(), "app06");
    let _deregistered_agent = run_agent(deregistered_home.path(), "Cuttle agent is connected to");
    let health = start_task(
        &server,
        json!({"Name": "Health", "Arguments": {"MachineIds": [deleted.id]}}),
    )
    .await;
    assert_eq!(wait_for_task(&server, &health.id).await.state, "Success");
    let agent_log = |home: &Path| std::fs::read_to_string(agent_log_path(home)).unwrap_or_default();

    // Deleted through the API: the agent does not know, the server drops its connection by
    // itself and refuses the next.
    server
        .client
        .delete_resource::<DeploymentTarget>(Some("Spaces-1"), &deleted.id)
        .await
        .expect("delete the target");
    wait_for_text(
        "the server's log",
        "closed the connection of a polling agent that is no longer registered",
        || server.log(),
    )
    .await;
    wait_for_text(
        "the server's log",
        "refused an agent whose certificate no target or worker is registered with",
        || server.log(),
    )
    .await;
    // (The agent's log says so too, unless the server's alert lost the race with its closing
    // the connection and the agent saw only the connection drop.)

    // `cuttle agent deregister`: the server drops the connection as well, and the running
    // agent, which no longer trusts the server, refuses it from then on.
    let printed = agent_command(
        deregistered_home.path(),
        &["deregister", "--api-key", TEST_API_KEY],
    );
    assert!(printed.contains("Deregistered"), "{printed}");
    wait_for_occurrences(
        "the server's log",
        "closed the connection of a polling agent that is no longer registered",
        2,
        || server.log(),
    )
    .await;
    wait_for_text("the agent's log", "refused the server", || {
        agent_log(deregistered_home.path())
    })
    .await;
}

/// Makes the agent in `home` trust only a thumbprint that is not the server's, as if it had been
/// registered before the server's certificate was replaced; returns the server's thumbprint.
fn distrust_the_server(home: &Path) -> String {
    let path = home.join("agent.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read agent.json"))
            .expect("agent.json is JSON");
    let server_thumbprint = config["Registration"]["ServerThumbprint"]
        .as_str()
        .expect("the registration names the server's thumbprint")
        .to_owned();
    config["TrustedServerThumbprints"] = json!(["AB".repeat(32)]);
    std::fs::write(&path, config.to_string()).expect("write agent.json");
    server_thumbprint
}

async fn health_check(server: &TestServer, target: &DeploymentTarget) -> ServerTaskResource {
    let health = start_task(
        server,
        json!({"Name": "Health", "Arguments": {"MachineIds": [target.id]}}),
    )
    .await;
    wait_for_task(server, &health.id).await
}

#[tokio::test]
async fn a_listening_agent_trusts_a_new_server_thumbprint_without_a_restart() {
    let server = server().await;
    production(&server).await;
    let home = tempfile::tempdir().unwrap();
    register_listening(&server, home.path(), "web05");
    let target = target_named(&server, "web05").await;
    let server_thumbprint = distrust_the_server(home.path());
    let _agent = run_agent(home.path(), "Cuttle agent is listening on");
    let refused = health_check(&server, &target).await;
    // The agent refuses the server's certificate. The server sees the refusal (Unhealthy) or,
    // when the agent's alert loses the race with its closing the connection, only the
    // connection drop (Unavailable).
    let refused_status = target_named(&server, "web05").await.health_status;
    assert!(
        matches!(
            refused_status,
            HealthStatus::Unhealthy | HealthStatus::Unavailable
        ),
        "{refused_status:?}: {}",
        raw_log(&server, &refused.id).await
    );
    wait_for_text("the agent's log", "refused a connection", || {
        std::fs::read_to_string(agent_log_path(home.path())).unwrap_or_default()
    })
    .await;

    let printed = agent_command(home.path(), &["trust", "--thumbprint", &server_thumbprint]);
    assert!(
        printed.contains("Trusted the server thumbprint"),
        "{printed}"
    );
    // The running agent takes it from agent.json by itself.
    wait_for_text(
        "the agent's log",
        "now trusting these server thumbprints",
        || std::fs::read_to_string(agent_log_path(home.path())).unwrap_or_default(),
    )
    .await;
    let health = health_check(&server, &target).await;
    assert_eq!(
        health.state,
        "Success",
        "{}",
        raw_log(&server, &health.id).await
    );
    assert_eq!(
        target_named(&server, "web05").await.health_status,
        HealthStatus::Healthy
    );
}

#[tokio::test]
async fn a_polling_agent_trusts_a_new_server_thumbprint_without_a_restart() {
    let server = server().await;
    production(&server).await;
    let home = tempfile::tempdir().unwrap();
    register_polling(&server, home.path(), "app04");
    let target = target_named(&server, "app04").await;
    let server_thumbprint = distrust_the_server(home.path());
    let agent = spawn_agent(home.path());
    wait_for_text("the agent's log", "refused the server", || {
        std::fs::read_to_string(agent_log_path(home.path())).unwrap_or_default()
    })
    .await;

    agent_command(home.path(), &["trust", "--thumbprint", &server_thumbprint]);
    // It dials again as soon as it sees the change, whatever its backoff had reached.
    agent.wait_for_line("Cuttle agent is connected to");
    let health = health_check(&server, &target).await;
    assert_eq!(
        health.state,
        "Success",
        "{}",
        raw_log(&server, &health.id).await
    );
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
        json!("echo 'disk is fine'; echo_warning 'but the moon is full'");
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

    // `fail_healthcheck`, as Octopus's bash health scripts call it, makes the target unhealthy
    // with its message.
    let mut failing = policy.clone();
    failing["MachineHealthCheckPolicy"]["HealthCheckInterval"] = json!("01:00:00");
    failing["MachineHealthCheckPolicy"]["BashHealthCheckPolicy"]["ScriptBody"] =
        json!("fail_healthcheck 'the disk is full'");
    let _: serde_json::Value = server
        .client
        .put(
            &format!("/api/Spaces-1/machinepolicies/{policy_id}"),
            &failing,
        )
        .await
        .unwrap();
    let failed = health_check(&server, &target).await;
    assert_eq!(
        failed.state,
        "Failed",
        "{}",
        raw_log(&server, &failed.id).await
    );
    let unhealthy = target_named(&server, "web03").await;
    assert_eq!(unhealthy.health_status, HealthStatus::Unhealthy);
    assert!(
        unhealthy
            .status_summary
            .as_deref()
            .unwrap_or_default()
            .contains("the disk is full"),
        "{:?}",
        unhealthy.status_summary
    );

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
