//! `cuttle quickstart`: the newcomer's first command. It starts a real server (this binary's
//! `cuttle server`, on SQLite in a temporary or given directory) and a real polling agent
//! (`cuttle agent run`, registered with `cuttle-agent`'s registration), creates a sample
//! project "Hello World" with Development, Test and Production, deploys its first release to
//! Development, prints where to go next, and keeps both running until Ctrl-C.
//!
//! Nothing here re-implements the server or the agent: they run as the same processes an
//! operator would start, the admin's credentials are the ones the server's first start
//! prints, and every resource is created through the REST API. The line
//! `Cuttle quickstart is ready` (stdout) tells scripts and tests the deployment succeeded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use cuttle_agent::AgentHome;
use cuttle_agent::registration::{ConnectionMode, MachineRole, RegisterOptions};
use cuttle_client::Client;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};

use crate::cli::output::{print_error, print_line};
use crate::cli::{OutputFormat, Session, list_items, text};

/// The sample's names, in the order the lifecycle deploys to them.
const ENVIRONMENT_NAMES: [&str; 3] = ["Development", "Test", "Production"];
const PROJECT_NAME: &str = "Hello World";
const LIFECYCLE_NAME: &str = "Hello World";
const AGENT_NAME: &str = "quickstart-agent";
const AGENT_ROLE: &str = "hello-world";
/// The line that says the sample deployment succeeded and everything is up.
pub(crate) const READY_LINE: &str = "Cuttle quickstart is ready";
/// How long the server and the agent get to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub(crate) struct QuickstartArguments {
    /// Where the server's data, the agent's home and the admin's credentials go, kept for the
    /// next run. Default: a temporary directory, deleted at exit.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The address the server serves HTTP on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8050")]
    listen: SocketAddr,

    /// The address of the server's agent port, which the local agent dials.
    #[arg(long, default_value = "127.0.0.1:10943")]
    agent_listen: SocketAddr,
}

/// The admin's credentials, kept beside the data: the server shows them only once.
#[derive(Debug, Serialize, Deserialize)]
struct SavedCredentials {
    username: String,
    password: String,
    api_key: String,
}

pub(crate) async fn run(arguments: QuickstartArguments) -> anyhow::Result<()> {
    let mut temporary_directory = None;
    let root = match &arguments.data_dir {
        Some(directory) => {
            std::fs::create_dir_all(directory)
                .with_context(|| format!("create {}", directory.display()))?;
            std::path::absolute(directory)
                .with_context(|| format!("resolve {}", directory.display()))?
        }
        None => {
            let directory = tempfile::Builder::new()
                .prefix("cuttle-quickstart-")
                .tempdir()
                .context("create a temporary directory")?;
            let root = directory.path().to_owned();
            temporary_directory = Some(directory);
            root
        }
    };
    let mut children = Vec::new();
    let result = start_and_deploy(&arguments, &root, &mut children).await;
    let outcome = match result {
        Ok(()) => {
            // Run until Ctrl-C, or until the server stops by itself.
            tokio::select! {
                () = crate::server::shutdown_signal() => Ok(()),
                status = wait_first(&mut children) => Err(anyhow::anyhow!(
                    "{status}; see the logs in {}",
                    root.display()
                )),
            }
        }
        Err(error) => Err(error.context(format!(
            "the quickstart did not finish; the server's and the agent's logs are in {}",
            root.display()
        ))),
    };
    stop_all(&mut children).await;
    // The logs of a failed run are what the user needs next: keep them, even in a temporary
    // directory.
    if outcome.is_err()
        && let Some(directory) = temporary_directory
    {
        let _kept = directory.keep();
    }
    outcome
}

/// A child process the quickstart started, with a name for messages.
struct StartedProcess {
    name: &'static str,
    child: Child,
}

async fn start_and_deploy(
    arguments: &QuickstartArguments,
    root: &Path,
    children: &mut Vec<StartedProcess>,
) -> anyhow::Result<()> {
    let binary = std::env::current_exe().context("find the cuttle binary")?;
    let data_directory = root.join("server");
    let credentials_path = root.join("quickstart.toml");

    print_line(&format!(
        "Starting a Cuttle server on SQLite in {} …",
        data_directory.display()
    ))?;
    let mut server_command = Command::new(&binary);
    server_command
        .arg("server")
        .arg("--data-dir")
        .arg(&data_directory)
        .arg("--listen")
        .arg(arguments.listen.to_string())
        .arg("--agent-listen")
        .arg(arguments.agent_listen.to_string())
        // The server generates the admin's password and key and prints them: ours to keep.
        .env_remove("CUTTLE_BOOTSTRAP_API_KEY")
        .env_remove("CUTTLE_BOOTSTRAP_ADMIN_PASSWORD")
        .env_remove("CUTTLE_DATABASE_URL");
    let (server, mut server_lines) =
        spawn_with_lines(server_command, &root.join("server.log")).context("start the server")?;
    children.push(StartedProcess {
        name: "the server",
        child: server,
    });
    let started = read_server_start(&mut server_lines).await?;
    // Keep draining the server's stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while server_lines.recv().await.is_some() {} });

    let credentials = match started.credentials {
        Some(credentials) => {
            let text = toml::to_string(&credentials).context("write the credentials as TOML")?;
            crate::cli::config::write_private_file(&credentials_path, text.as_bytes())
                .with_context(|| format!("write {}", credentials_path.display()))?;
            credentials
        }
        None => {
            let text = std::fs::read_to_string(&credentials_path).with_context(|| {
                format!(
                    "read the admin's credentials from {} (the server was set up before, and shows them only at its first start)",
                    credentials_path.display()
                )
            })?;
            toml::from_str(&text).with_context(|| format!("read {}", credentials_path.display()))?
        }
    };
    let client = Client::new(&started.url, Some(credentials.api_key.clone()))?;
    let space_id = crate::cli::resolve_space(&client, None).await?;
    let session = Session {
        client,
        space_id,
        output: OutputFormat::Table,
    };

    let environment_ids = ensure_environments(&session).await?;
    let lifecycle_id = ensure_lifecycle(&session, &environment_ids).await?;

    let agent_home = AgentHome::new(root.join("agent"));
    let agent_config = agent_home
        .load_config()
        .context("read the agent's configuration")?;
    if agent_config.registration.is_none() {
        let outcome = cuttle_agent::registration::register(
            &agent_home,
            RegisterOptions {
                server_url: started.url.clone(),
                api_key: credentials.api_key.clone(),
                space: Some(session.space_id.clone()),
                name: Some(AGENT_NAME.to_owned()),
                role: MachineRole::DeploymentTarget {
                    environments: ENVIRONMENT_NAMES.map(str::to_owned).to_vec(),
                    roles: vec![AGENT_ROLE.to_owned()],
                },
                mode: ConnectionMode::Polling {
                    server_comms_address: Some(started.agent_address.clone()),
                },
                public_hostname: None,
            },
        )
        .await
        .context("register the local agent")?;
        print_line(&format!(
            "Registered the local agent as deployment target {} ({}), role {AGENT_ROLE}.",
            outcome.registration.name, outcome.registration.id
        ))?;
    }
    let mut agent_command = Command::new(&binary);
    agent_command
        .arg("agent")
        .arg("--home")
        .arg(agent_home.root())
        .arg("run");
    let (agent, mut agent_lines) =
        spawn_with_lines(agent_command, &root.join("agent.log")).context("start the agent")?;
    children.push(StartedProcess {
        name: "the agent",
        child: agent,
    });
    wait_for_line(
        &mut agent_lines,
        "Cuttle agent is connected to",
        "the agent",
    )
    .await?;
    tokio::spawn(async move { while agent_lines.recv().await.is_some() {} });
    print_line("The local agent is running and connected to the server.")?;

    let project_id = ensure_project(&session, &lifecycle_id).await?;
    let release: Value = session
        .client
        .post(
            &format!("/api/{}/releases/create/v1", session.space_id),
            &json!({"ProjectName": project_id}),
        )
        .await
        .context("create a release")?;
    let version = text(&release, "ReleaseVersion");
    print_line(&format!(
        "Created release {version} of {PROJECT_NAME}; deploying it to Development:"
    ))?;
    let deployments: Value = session
        .client
        .post(
            &format!("/api/{}/deployments/create/untenanted/v1", session.space_id),
            &json!({
                "ProjectName": project_id,
                "ReleaseVersion": version,
                "EnvironmentNames": [environment_ids[0].clone()],
            }),
        )
        .await
        .context("deploy the release to Development")?;
    let task_id = deployments
        .get("DeploymentServerTasks")
        .and_then(|tasks| tasks.get(0))
        .map(|task| text(task, "ServerTaskId"))
        .unwrap_or_default();
    let task = crate::cli::tasks::follow_task(&session, &task_id, true).await?;
    if task.state != "Success" {
        bail!("the deployment to Development ended {}", task.state);
    }

    let url = &started.url;
    let lines = [
        String::new(),
        format!("{READY_LINE}: {PROJECT_NAME} {version} was deployed to Development ({task_id})."),
        String::new(),
        format!("  Portal:    {url}/app   (sign in with the username and password below)"),
        format!("  API:       {url}/api"),
        format!("  Username:  {}", credentials.username),
        format!("  Password:  {}", credentials.password),
        format!("  API key:   {}", credentials.api_key),
        format!("  Data:      {}", root.display()),
        String::new(),
        "Try next, in another terminal:".to_owned(),
        format!(
            "  cuttle login --server {url} --api-key {}",
            credentials.api_key
        ),
        format!("  cuttle project show \"{PROJECT_NAME}\""),
        format!(
            "  cuttle deploy --project \"{PROJECT_NAME}\" --release {version} --environment Test --wait"
        ),
        "  cuttle task list".to_owned(),
        String::new(),
        "Press Ctrl-C to stop the server and the agent.".to_owned(),
    ];
    print_line(&lines.join("\n"))
}

/// What the server printed while starting.
struct ServerStart {
    url: String,
    agent_address: String,
    /// Only on the start that set the store up.
    credentials: Option<SavedCredentials>,
}

/// Reads the server's stdout up to its "listening" line, picking up the first-start
/// credentials block it prints before (see `server::print_first_start_credentials`).
async fn read_server_start(
    lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
) -> anyhow::Result<ServerStart> {
    let mut username = None;
    let mut password = None;
    let mut api_key = None;
    let mut agent_address = None;
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        let line = tokio::time::timeout_at(deadline, lines.recv())
            .await
            .context("the server did not start within 60 s")?
            .context("the server stopped while starting")?;
        let field = |prefix: &str| {
            line.trim()
                .strip_prefix(prefix)
                .map(str::trim)
                .map(str::to_owned)
        };
        if let Some(value) = field("Username:") {
            username = Some(value);
        } else if let Some(value) = field("Password:") {
            password = Some(value);
        } else if let Some(value) = field("API key:") {
            api_key = Some(value);
        } else if let Some(value) = field("Cuttle agent port is listening on") {
            agent_address = Some(value);
        } else if let Some(url) = field("Cuttle is listening on") {
            let credentials = match (username, password, api_key) {
                (Some(username), Some(password), Some(api_key)) => Some(SavedCredentials {
                    username,
                    password,
                    api_key,
                }),
                _ => None,
            };
            return Ok(ServerStart {
                url,
                agent_address: agent_address
                    .context("the server did not say where its agent port is")?,
                credentials,
            });
        }
    }
}

/// Starts `command` with stdout read line by line into a channel and stderr (its log)
/// appended to `log_path`.
fn spawn_with_lines(
    mut command: Command,
    log_path: &Path,
) -> anyhow::Result<(Child, tokio::sync::mpsc::UnboundedReceiver<String>)> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("open {}", log_path.display()))?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        // If the quickstart dies without stopping them, they must not live on.
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("take the child's stdout")?;
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    Ok((child, receiver))
}

async fn wait_for_line(
    lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    prefix: &str,
    who: &str,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        let line = tokio::time::timeout_at(deadline, lines.recv())
            .await
            .with_context(|| format!("{who} did not print {prefix:?} within 60 s"))?
            .with_context(|| format!("{who} stopped while starting"))?;
        if line.starts_with(prefix) {
            return Ok(());
        }
    }
}

/// Completes when the first child exits, saying which and how.
async fn wait_first(children: &mut [StartedProcess]) -> String {
    loop {
        for process in children.iter_mut() {
            if let Ok(Some(status)) = process.child.try_wait() {
                return format!("{} stopped unexpectedly ({status})", process.name);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Stops the children, last started first: SIGTERM, then SIGKILL after 10 s.
async fn stop_all(children: &mut Vec<StartedProcess>) {
    while let Some(mut process) = children.pop() {
        if let Ok(Some(_)) = process.child.try_wait() {
            continue;
        }
        if let Some(pid) = process.child.id() {
            // `kill` the command: the binary has no signal-sending dependency of its own.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        match tokio::time::timeout(Duration::from_secs(10), process.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                print_error(&format!(
                    "{} did not stop within 10 s; killing it",
                    process.name
                ));
                let _ = process.child.kill().await;
            }
        }
    }
}

/// Development, Test and Production, created when missing; their ids in that order.
async fn ensure_environments(session: &Session) -> anyhow::Result<Vec<String>> {
    let existing = session.list("environments").await?;
    let mut ids = Vec::new();
    for name in ENVIRONMENT_NAMES {
        let found = existing
            .iter()
            .find(|environment| text(environment, "Name").eq_ignore_ascii_case(name));
        let id = match found {
            Some(environment) => text(environment, "Id"),
            None => {
                let created: Value = session
                    .client
                    .post(
                        &format!("/api/{}/environments", session.space_id),
                        &json!({"Name": name}),
                    )
                    .await
                    .with_context(|| format!("create the environment {name}"))?;
                text(&created, "Id")
            }
        };
        ids.push(id);
    }
    Ok(ids)
}

/// A lifecycle with one phase per environment, in order; created when missing.
async fn ensure_lifecycle(session: &Session, environment_ids: &[String]) -> anyhow::Result<String> {
    let lifecycles = session.list("lifecycles").await?;
    if let Some(lifecycle) = lifecycles
        .iter()
        .find(|lifecycle| text(lifecycle, "Name").eq_ignore_ascii_case(LIFECYCLE_NAME))
    {
        return Ok(text(lifecycle, "Id"));
    }
    let phases: Vec<Value> = ENVIRONMENT_NAMES
        .iter()
        .zip(environment_ids)
        .map(|(name, id)| json!({"Name": name, "OptionalDeploymentTargets": [id]}))
        .collect();
    let created: Value = session
        .client
        .post(
            &format!("/api/{}/lifecycles", session.space_id),
            &json!({
                "Name": LIFECYCLE_NAME,
                "Description": "Development, then Test, then Production.",
                "Phases": phases,
            }),
        )
        .await
        .context("create the Hello World lifecycle")?;
    Ok(text(&created, "Id"))
}

/// The sample project with its one script step on the agent's role; created when missing.
async fn ensure_project(session: &Session, lifecycle_id: &str) -> anyhow::Result<String> {
    let space = &session.space_id;
    let projects = list_items(&session.client, &format!("/api/{space}/projects")).await?;
    let project_id = match projects
        .iter()
        .find(|project| text(project, "Name").eq_ignore_ascii_case(PROJECT_NAME))
    {
        Some(project) => return Ok(text(project, "Id")),
        None => {
            let created: Value = session
                .client
                .post(
                    &format!("/api/{space}/projects"),
                    &json!({
                        "Name": PROJECT_NAME,
                        "Description": "The quickstart's sample: one script step on the local agent.",
                        "LifecycleId": lifecycle_id,
                    }),
                )
                .await
                .context("create the Hello World project")?;
            text(&created, "Id")
        }
    };
    let process_path = format!("/api/{space}/projects/{project_id}/deploymentprocesses");
    let mut process: Value = session
        .client
        .get(&process_path)
        .await
        .context("read the project's deployment process")?;
    process["Steps"] = json!([{
        "Name": "Say hello",
        "Properties": {"Octopus.Action.TargetRoles": AGENT_ROLE},
        "Actions": [{
            "Name": "Say hello",
            "ActionType": "Octopus.Script",
            "Properties": {
                "Octopus.Action.Script.Syntax": "Bash",
                "Octopus.Action.Script.ScriptBody":
                    "echo \"Hello from #{Octopus.Machine.Name} in #{Octopus.Environment.Name}: #{Octopus.Project.Name} #{Octopus.Release.Number}\"",
            },
        }],
    }]);
    let _: Value = session
        .client
        .put(&process_path, &process)
        .await
        .context("save the project's deployment process")?;
    Ok(project_id)
}
