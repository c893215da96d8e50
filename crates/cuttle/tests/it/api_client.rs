//! The official npm client against the real server: `tests/api-client/compat.test.js` drives a
//! running `cuttle server` and a listening `cuttle agent` (mutual TLS) through
//! `@octopusdeploy/api-client` 3.11.0, pinned by `tests/api-client/package-lock.json`, as the
//! official GitHub actions do. This file starts them, prepares what the client cannot (the
//! environments the agent is registered in, the package files) and runs `node --test`.
//!
//! Node.js and npm are the machine's. Without them the test skips loudly, unless `CI=true`,
//! where it fails: CI must never pass without having run the client.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::io::{Read as _, Write as _};

use cuttle_test_support::{ServerOptions, TEST_API_KEY, TestServer, running_in_ci};

use super::agents::{agent_command, free_port, run_agent};
use super::deployments::create_environments;
use super::packages::zip_with;
use super::server_with;

/// The server's idle-connection timeout in the idle-connection test, in seconds. The client
/// test runs with the default (30 s): its uploads are answered with `Connection: close`, so
/// Node exits as soon as it is done, which that test's run time shows.
const IDLE_TIMEOUT_SECONDS: &str = "2";

fn short_idle_timeout() -> ServerOptions {
    ServerOptions {
        arguments: vec![
            "--http-idle-timeout".to_owned(),
            IDLE_TIMEOUT_SECONDS.to_owned(),
        ],
        ..ServerOptions::default()
    }
}

/// The name the agent's target is registered under.
const TARGET_NAME: &str = "web01";
/// Longest the whole client run may take; it needs a few seconds.
const NODE_TIMEOUT: Duration = Duration::from_secs(180);

fn test_package_directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api-client")
}

/// `node`'s version, or `None` when it cannot be run.
fn tool_version(tool: &str) -> Option<String> {
    let output = Command::new(tool).arg("--version").output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Checks Node.js (18 or later: Debian 12's, which scripts/test.sh installs; the machines
/// here have 20) and npm, and installs the pinned client when `node_modules`
/// is missing. `false` means skip (outside CI only).
#[expect(
    clippy::print_stderr,
    reason = "a skipped test says why, and a slow npm ci says what it is doing"
)]
fn node_is_ready(directory: &Path) -> bool {
    let (Some(node), Some(npm)) = (tool_version("node"), tool_version("npm")) else {
        assert!(
            !running_in_ci(),
            "CI=true but node or npm is missing: the api-client compatibility test must run \
             (scripts/test.sh installs them)"
        );
        // Written to the process's stderr, not through `eprintln!`, which the test harness
        // captures and shows only for failures: a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!! SKIPPED the @octopusdeploy/api-client compatibility test: node and npm are not \
             installed (scripts/test.sh installs them; CI=true makes this a failure) !!!\n"
        );
        return false;
    };
    let major: u32 = node
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|major| major.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 18,
        "the api-client test needs Node.js 18 or later, found {node}"
    );
    if !directory
        .join("node_modules/@octopusdeploy/api-client")
        .is_dir()
    {
        eprintln!("installing the pinned api-client with npm {npm} (npm ci)");
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(directory)
            .output()
            .expect("run npm ci");
        assert!(
            output.status.success(),
            "npm ci failed in {}:\n{}{}",
            directory.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    true
}

/// A `hello-web` 1.0.0 package whose `Deploy.sh` says which build it is.
fn hello_web(build: &str) -> Vec<u8> {
    let deploy =
        format!("echo \"{build} Deploy.sh ran on $(get_octopusvariable Octopus.Machine.Name)\"\n");
    zip_with(&[
        ("Deploy.sh", deploy.as_bytes()),
        ("index.html", format!("<h1>{build}</h1>\n").as_bytes()),
    ])
}

/// Registers a listening agent in Development and Test with role `web`.
fn register_agent(server: &TestServer, home: &Path) {
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
            TARGET_NAME,
            "--environment",
            "Development",
            "--environment",
            "Test",
            "--role",
            "web",
            "--listen-port",
            &port,
            "--public-hostname",
            "127.0.0.1",
        ],
    );
}

/// Runs `node --test compat.test.js` with the server's coordinates; returns its exit status
/// and everything it printed. Output goes to files, so a chatty run cannot fill a pipe.
fn run_node(directory: &Path, environment: &[(&str, String)]) -> (Option<i32>, String) {
    let output_directory = tempfile::tempdir().expect("a directory for node's output");
    let stdout_path = output_directory.path().join("stdout");
    let stderr_path = output_directory.path().join("stderr");
    let mut command = Command::new("node");
    command
        .args(["--test", "--test-reporter=spec", "compat.test.js"])
        .current_dir(directory)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("node's stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("node's stderr file"));
    for (name, value) in environment {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start node");
    let deadline = Instant::now() + NODE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = format!(
        "{}{}",
        std::fs::read_to_string(&stdout_path).unwrap_or_default(),
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    (status, output)
}

/// The last `count` lines of `text`: the server's debug log of a whole run is long.
fn tail(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

#[tokio::test]
async fn the_official_npm_client_pushes_releases_deploys_awaits_and_cancels() {
    let directory = test_package_directory();
    if !node_is_ready(&directory) {
        return;
    }
    let server = server_with(ServerOptions::default()).await;
    create_environments(&server, &["Development", "Test"]).await;
    let agent_home = tempfile::tempdir().expect("agent home");
    register_agent(&server, agent_home.path());
    let _agent = run_agent(agent_home.path(), "Cuttle agent is listening on");

    let packages = tempfile::tempdir().expect("package directory");
    for build in ["first", "rebuilt"] {
        let build_directory = packages.path().join(build);
        std::fs::create_dir(&build_directory).expect("create a build directory");
        std::fs::write(
            build_directory.join("hello-web.1.0.0.zip"),
            hello_web(build),
        )
        .expect("write a package");
    }

    let (status, output) = run_node(
        &directory,
        &[
            ("CUTTLE_URL", server.base_url.clone()),
            ("CUTTLE_API_KEY", TEST_API_KEY.to_owned()),
            ("CUTTLE_SPACE", "Default".to_owned()),
            ("CUTTLE_PACKAGES", packages.path().display().to_string()),
            ("CUTTLE_TARGET", TARGET_NAME.to_owned()),
        ],
    );
    let agent_log =
        std::fs::read_to_string(agent_home.path().join("agent.log")).unwrap_or_default();
    assert_eq!(
        status,
        Some(0),
        "the api-client compatibility test failed (status {status:?}; None is a timeout after \
         {NODE_TIMEOUT:?}):\n{output}\n--- server log ---\n{}\n--- agent log ---\n{agent_log}",
        tail(&server.log(), 300)
    );
    // The spec reporter ends with counts: every top-level test in the file must have passed,
    // none skipped.
    let source = std::fs::read_to_string(directory.join("compat.test.js")).expect("the JS test");
    let n_tests = source
        .lines()
        .filter(|line| line.starts_with("test("))
        .count();
    assert!(
        n_tests >= 10,
        "found only {n_tests} tests in compat.test.js"
    );
    for expected in [
        format!("ℹ pass {n_tests}\n"),
        "ℹ fail 0\n".to_owned(),
        "ℹ skipped 0\n".to_owned(),
        "ℹ todo 0\n".to_owned(),
    ] {
        assert!(
            output.contains(&expected),
            "expected {expected:?} in:\n{output}"
        );
    }
    server.cleanup().await.expect("clean up");
}

/// Idle connections cost a socket and a task each: the server closes them after its idle
/// timeout, both between requests and before the first.
#[tokio::test]
async fn idle_http_connections_are_closed_after_the_idle_timeout() {
    let server = server_with(short_idle_timeout()).await;
    let address = server
        .base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let timeout: u64 = IDLE_TIMEOUT_SECONDS.parse().expect("seconds");
    let closes_within = |mut stream: std::net::TcpStream| {
        stream
            .set_read_timeout(Some(Duration::from_secs(timeout + 10)))
            .expect("set a read timeout");
        let started = Instant::now();
        let mut rest = Vec::new();
        // EOF (Ok) means the server closed; a read timeout (Err) means it kept the connection.
        stream
            .read_to_end(&mut rest)
            .expect("the server closes the idle connection");
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_secs(timeout + 5),
            "closed only after {waited:?}"
        );
        rest
    };

    // A keep-alive request, answered; then nothing more is sent.
    let mut stream = std::net::TcpStream::connect(&address).expect("connect");
    stream
        .write_all(b"GET /api HTTP/1.1\r\nHost: cuttle\r\nConnection: keep-alive\r\n\r\n")
        .expect("send a request");
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head).expect("read the answer");
    assert_eq!(&head, b"HTTP/1.1 200");
    let started = Instant::now();
    closes_within(stream);
    assert!(
        started.elapsed() >= Duration::from_secs(timeout - 1),
        "closed before the idle timeout"
    );

    // A connection that never sends a request.
    closes_within(std::net::TcpStream::connect(&address).expect("connect"));
    server.cleanup().await.expect("clean up");
}

/// `checkForCapability` reads `GET /api/capabilities`; only signed-in callers see it, and it
/// lists only the commands this server implements.
#[tokio::test]
async fn capabilities_list_the_implemented_commands() {
    let server = server_with(ServerOptions::default()).await;
    let anonymous = server
        .client
        .with_api_key(None)
        .raw(reqwest::Method::GET, "/api/capabilities", None)
        .await
        .expect("ask anonymously");
    super::assert_error(&anonymous, 401, "");
    let capabilities: serde_json::Value = server
        .client
        .get("/api/capabilities")
        .await
        .expect("read the capabilities");
    assert_eq!(
        capabilities,
        serde_json::json!({"Capabilities": [
            "CreateReleaseCommandV1",
            "CreateDeploymentUntenantedCommandV1"
        ]})
    );
    server.cleanup().await.expect("clean up");
}
