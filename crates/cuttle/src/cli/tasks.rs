//! `cuttle deploy` and `cuttle task …`: queueing deployments and following server tasks.
//!
//! Following a task reads its live log (Server-Sent Events) and prints each line as it
//! comes; a dropped connection is resumed after the last line seen, so no line is printed
//! twice or lost. Waiting ends with the task's final state, and a task that did not succeed
//! makes the command exit with code 5.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use cuttle_api::ServerTaskResource;
use cuttle_client::{TaskEvent, TaskLogLine};
use serde_json::{Value, json};

use super::output::{Table, print_error, print_fields, print_json, print_line};
use super::resources::find_project;
use super::{ConnectionOptions, Failure, FailureKind, OutputFormat, Session, find_by_key, text};

/// `cuttle deploy`.
#[derive(Debug, clap::Args)]
pub(crate) struct DeployArguments {
    #[command(flatten)]
    pub(crate) connection: ConnectionOptions,
    /// The project's name, slug or id.
    #[arg(long)]
    project: String,
    /// The release's version.
    #[arg(long)]
    release: String,
    /// An environment to deploy to (name or id); repeat for several.
    #[arg(long = "environment", required = true, value_name = "ENVIRONMENT")]
    environments: Vec<String>,
    /// Deploy only to this target (name or id); repeat for several. Default: every target
    /// in the environment with a role the process uses.
    #[arg(long = "machine", value_name = "TARGET")]
    machines: Vec<String>,
    /// Skip the step with this name; repeat for several.
    #[arg(long = "skip-step", value_name = "STEP")]
    skip_steps: Vec<String>,
    /// A value for a prompted variable, NAME=VALUE; repeat for several.
    #[arg(long = "variable", value_name = "NAME=VALUE")]
    variables: Vec<String>,
    /// Pause for a person's decision (retry, ignore, exclude, fail) when a step fails.
    #[arg(long)]
    guided_failure: bool,
    /// Follow the deployment: print its log as it runs and exit with its outcome (0 on
    /// success, 5 when it failed or was cancelled).
    #[arg(long)]
    wait: bool,
}

pub(crate) async fn deploy(arguments: DeployArguments) -> anyhow::Result<()> {
    let mut variables = serde_json::Map::new();
    for variable in &arguments.variables {
        let (name, value) = variable
            .split_once('=')
            .ok_or_else(|| Failure::usage(format!("--variable {variable}: write NAME=VALUE")))?;
        variables.insert(name.trim().to_owned(), Value::String(value.to_owned()));
    }
    let session = Session::open(&arguments.connection).await?;
    let space = &session.space_id;
    let project = find_project(&session, &arguments.project).await?;
    let project_id = text(&project, "Id");
    // Look the release up first, so a wrong version is "not found" rather than invalid input.
    let release: Value = session
        .client
        .get(&format!(
            "/api/{space}/projects/{project_id}/releases/{}",
            encode_path_segment(&arguments.release)
        ))
        .await
        .map_err(|error| match error.status().map(|status| status.as_u16()) {
            Some(404) => anyhow::Error::new(Failure::not_found(format!(
                "release {} of project '{}' was not found",
                arguments.release,
                text(&project, "Name")
            ))),
            _ => anyhow::Error::new(error).context("read the release"),
        })?;
    let environments = session.list("environments").await?;
    let mut environment_ids = Vec::new();
    for key in &arguments.environments {
        environment_ids.push(text(
            &find_by_key(environments.clone(), "environment", key)?,
            "Id",
        ));
    }
    let machine_ids = if arguments.machines.is_empty() {
        Vec::new()
    } else {
        let machines = session.list("machines").await?;
        arguments
            .machines
            .iter()
            .map(|key| Ok(text(&find_by_key(machines.clone(), "target", key)?, "Id")))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let command = json!({
        "ProjectName": project_id,
        "ReleaseVersion": text(&release, "Version"),
        "EnvironmentNames": environment_ids,
        "SpecificMachineNames": machine_ids,
        "SkipStepNames": arguments.skip_steps,
        "Variables": variables,
        "UseGuidedFailure": arguments.guided_failure,
    });
    let answer: Value = session
        .client
        .post(
            &format!("/api/{space}/deployments/create/untenanted/v1"),
            &command,
        )
        .await
        .context("queue the deployment")?;
    let queued: Vec<(String, String)> = match answer.get("DeploymentServerTasks") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| (text(item, "DeploymentId"), text(item, "ServerTaskId")))
            .collect(),
        _ => Vec::new(),
    };
    if !arguments.wait {
        if session.output == OutputFormat::Json {
            return print_json(&answer);
        }
        let lines: Vec<String> = queued
            .iter()
            .map(|(deployment_id, task_id)| {
                format!(
                    "Queued {deployment_id} of {} {}: task {task_id} (follow it with `cuttle task log {task_id} --follow`).",
                    text(&project, "Name"),
                    text(&release, "Version"),
                )
            })
            .collect();
        return print_line(&lines.join("\n"));
    }
    let print_log = session.output == OutputFormat::Table;
    let mut finished = Vec::new();
    for (_, task_id) in &queued {
        finished.push(follow_task(&session, task_id, print_log).await?);
    }
    report_outcome(&session, &finished)
}

/// Prints the final states (table or JSON) and fails with the task exit code unless every
/// task succeeded.
fn report_outcome(session: &Session, tasks: &[ServerTaskResource]) -> anyhow::Result<()> {
    match session.output {
        OutputFormat::Json => print_json(&serde_json::to_value(tasks)?)?,
        OutputFormat::Table => {
            let lines: Vec<String> = tasks
                .iter()
                .map(|task| {
                    let mut line = format!("{} {}: {}", task.id, task.description, task.state);
                    if let Some(duration) = &task.duration {
                        line.push_str(&format!(" after {duration}"));
                    }
                    if !task.error_message.is_empty() {
                        line.push_str(&format!(" ({})", task.error_message));
                    }
                    line
                })
                .collect();
            print_line(&lines.join("\n"))?;
        }
    }
    let unsuccessful: Vec<String> = tasks
        .iter()
        .filter(|task| task.state != "Success")
        .map(|task| format!("{} ended {}", task.id, task.state))
        .collect();
    if unsuccessful.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(FailureKind::TaskUnsuccessful, unsuccessful.join("; ")).into())
    }
}

/// Reads a task's live log until the task is over, printing its lines when `print_log`;
/// returns the task as it ended.
pub(crate) async fn follow_task(
    session: &Session,
    task_id: &str,
    print_log: bool,
) -> anyhow::Result<ServerTaskResource> {
    const MAX_RECONNECTS: u32 = 10;
    let mut after = 0_i64;
    let mut reconnects = 0_u32;
    let mut told_about_interruption = false;
    'connection: loop {
        let mut events = match session
            .client
            .task_events(Some(&session.space_id), task_id, after)
            .await
        {
            Ok(events) => events,
            // The server answered: the task is unknown, or the key is refused.
            Err(error) if error.status().is_some() => {
                return Err(anyhow::Error::new(error).context(format!("follow {task_id}")));
            }
            Err(error) if reconnects < MAX_RECONNECTS => {
                reconnects += 1;
                tracing::debug!("reconnecting to the log of {task_id}: {error}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue 'connection;
            }
            Err(error) => {
                return Err(anyhow::Error::new(error).context(format!("follow {task_id}")));
            }
        };
        loop {
            match events.next().await {
                Ok(Some(TaskEvent::Line(line))) => {
                    after = after.max(line.sequence);
                    if print_log {
                        print_line(&format_log_line(&line))?;
                    }
                }
                Ok(Some(TaskEvent::State {
                    has_pending_interruptions,
                    ..
                })) => {
                    if has_pending_interruptions && !told_about_interruption {
                        told_about_interruption = true;
                        print_error(&format!(
                            "note: {task_id} waits for a decision (guided failure or manual intervention): answer it in the portal or with POST /api/{}/interruptions/{{id}}/submit",
                            session.space_id
                        ));
                    }
                }
                Ok(Some(TaskEvent::End { .. })) => break 'connection,
                // The stream closed or broke before the end: resume after the last line.
                Ok(None) | Err(_) if reconnects < MAX_RECONNECTS => {
                    reconnects += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue 'connection;
                }
                Ok(None) => anyhow::bail!("the server closed the log of {task_id} before its end"),
                Err(error) => {
                    return Err(anyhow::Error::new(error).context(format!("follow {task_id}")));
                }
            }
        }
    }
    load_task(session, task_id).await
}

/// A log line for the terminal: time of day, category, message.
fn format_log_line(line: &TaskLogLine) -> String {
    // `OccurredAt` is RFC 3339; the time of day is what a person follows.
    let time = line.occurred_at.get(11..19).unwrap_or(&line.occurred_at);
    format!("{time}  {:<9} {}", line.category, line.message_text)
}

async fn load_task(session: &Session, task_id: &str) -> anyhow::Result<ServerTaskResource> {
    session
        .client
        .get::<ServerTaskResource>(&format!("/api/{}/tasks/{task_id}", session.space_id))
        .await
        .map_err(|error| match error.status().map(|status| status.as_u16()) {
            Some(404) => anyhow::Error::new(Failure::not_found(format!(
                "task '{task_id}' was not found"
            ))),
            _ => anyhow::Error::new(error).context(format!("read {task_id}")),
        })
}

/// Percent-encodes one path segment (a release version may hold `+`).
fn encode_path_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `cuttle task …`.
#[derive(Debug, clap::Args)]
pub(crate) struct TaskArguments {
    #[command(flatten)]
    pub(crate) connection: ConnectionOptions,
    #[command(subcommand)]
    pub(crate) command: TaskCommand,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TaskCommand {
    /// List server tasks (deployments, health checks, scripts), newest first.
    List {
        /// Only tasks of this project (name or id).
        #[arg(long)]
        project: Option<String>,
        /// Only tasks in this environment (name or id).
        #[arg(long)]
        environment: Option<String>,
        /// Only tasks in this state (Queued, Executing, Cancelling, Success, Failed,
        /// Canceled, TimedOut); repeat for several.
        #[arg(long = "state", value_name = "STATE")]
        states: Vec<String>,
        /// How many tasks to show.
        #[arg(long, default_value_t = 30)]
        take: u32,
    },
    /// Show a task's state and times.
    Show {
        /// The task's id (ServerTasks-N).
        task: String,
    },
    /// Print a task's log; with --follow, until the task ends (exit 5 if it did not succeed).
    Log {
        /// The task's id (ServerTasks-N).
        task: String,
        /// Keep printing lines as they come until the task ends.
        #[arg(long)]
        follow: bool,
    },
    /// Wait until tasks end; exit 5 if any did not succeed.
    Wait {
        /// The tasks' ids.
        #[arg(required = true, value_name = "TASK")]
        tasks: Vec<String>,
        /// Give up (exit 1) after this many seconds.
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<u64>,
    },
    /// Ask a queued or running task to stop.
    Cancel {
        /// The task's id (ServerTasks-N).
        task: String,
    },
}

pub(crate) async fn task(arguments: TaskArguments) -> anyhow::Result<()> {
    let session = Session::open(&arguments.connection).await?;
    match arguments.command {
        TaskCommand::List {
            project,
            environment,
            states,
            take,
        } => list_tasks(&session, project, environment, states, take).await,
        TaskCommand::Show { task } => {
            let task = load_task(&session, &task).await?;
            match session.output {
                OutputFormat::Json => print_json(&serde_json::to_value(&task)?),
                OutputFormat::Table => print_fields(&[
                    ("Id", task.id.clone()),
                    ("Name", task.name.clone()),
                    ("Description", task.description.clone()),
                    ("State", task.state.clone()),
                    ("Error", task.error_message.clone()),
                    ("Queued", task.queue_time.clone()),
                    ("Started", task.start_time.clone().unwrap_or_default()),
                    ("Completed", task.completed_time.clone().unwrap_or_default()),
                    ("Duration", task.duration.clone().unwrap_or_default()),
                    (
                        "Interruptions",
                        if task.has_pending_interruptions {
                            "pending".to_owned()
                        } else {
                            String::new()
                        },
                    ),
                ]),
            }
        }
        TaskCommand::Log { task, follow } => {
            if follow {
                let finished = follow_task(&session, &task, true).await?;
                // The log is the output; the outcome is the exit code and one line on stderr.
                print_error(&format!("{} ended {}", finished.id, finished.state));
                return task_outcome(&finished);
            }
            let task_id = load_task(&session, &task).await?.id;
            match session.output {
                OutputFormat::Json => {
                    let details: Value = session
                        .client
                        .get(&format!(
                            "/api/{}/tasks/{task_id}/details",
                            session.space_id
                        ))
                        .await
                        .context("read the task's log")?;
                    print_json(&details)
                }
                OutputFormat::Table => {
                    let raw = session
                        .client
                        .get_text(&format!("/api/{}/tasks/{task_id}/raw", session.space_id))
                        .await
                        .context("read the task's log")?;
                    print_line(raw.trim_end())
                }
            }
        }
        TaskCommand::Wait { tasks, timeout } => {
            let deadline = timeout.map(|seconds| Instant::now() + Duration::from_secs(seconds));
            let mut finished = Vec::new();
            for task_id in &tasks {
                finished.push(wait_for_task(&session, task_id, deadline).await?);
            }
            report_outcome(&session, &finished)
        }
        TaskCommand::Cancel { task } => {
            let task_id = load_task(&session, &task).await?.id;
            let _: Value = session
                .client
                .post(
                    &format!("/api/{}/tasks/{task_id}/cancel", session.space_id),
                    &json!({}),
                )
                .await
                .with_context(|| format!("cancel {task_id}"))?;
            let task = load_task(&session, &task_id).await?;
            match session.output {
                OutputFormat::Json => print_json(&serde_json::to_value(&task)?),
                OutputFormat::Table => {
                    print_line(&format!("Asked {} to stop; it is {}.", task.id, task.state))
                }
            }
        }
    }
}

fn task_outcome(task: &ServerTaskResource) -> anyhow::Result<()> {
    if task.state == "Success" {
        Ok(())
    } else {
        Err(Failure::new(
            FailureKind::TaskUnsuccessful,
            format!("{} ended {}", task.id, task.state),
        )
        .into())
    }
}

/// Polls a task until it is completed or the deadline passes.
async fn wait_for_task(
    session: &Session,
    task_id: &str,
    deadline: Option<Instant>,
) -> anyhow::Result<ServerTaskResource> {
    let mut delay = Duration::from_millis(200);
    loop {
        let task = load_task(session, task_id).await?;
        if task.is_completed {
            return Ok(task);
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            anyhow::bail!("{task_id} is still {} after the timeout", task.state);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

async fn list_tasks(
    session: &Session,
    project: Option<String>,
    environment: Option<String>,
    states: Vec<String>,
    take: u32,
) -> anyhow::Result<()> {
    let mut query = vec![format!("take={take}")];
    if let Some(project) = project {
        query.push(format!(
            "project={}",
            text(&find_project(session, &project).await?, "Id")
        ));
    }
    if let Some(environment) = environment {
        let found = session
            .find("environments", "environment", &environment)
            .await?;
        query.push(format!("environment={}", text(&found, "Id")));
    }
    if !states.is_empty() {
        query.push(format!("states={}", states.join(",")));
    }
    let path = format!("/api/{}/tasks?{}", session.space_id, query.join("&"));
    let page: Value = session.client.get(&path).await.context("list tasks")?;
    let tasks = match page.get("Items") {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    if session.output == OutputFormat::Json {
        return print_json(&Value::Array(tasks));
    }
    let mut table = Table::new(&["Id", "Name", "Description", "State", "Queued", "Duration"]);
    for task in &tasks {
        table.row(vec![
            text(task, "Id"),
            text(task, "Name"),
            text(task, "Description"),
            text(task, "State"),
            text(task, "QueueTime"),
            text(task, "Duration"),
        ]);
    }
    table.print()
}
