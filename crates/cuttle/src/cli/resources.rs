//! `cuttle login`, `space`, `environment`, `project`, `target` and `release`: the commands
//! that read and create configuration, each a thin call of the REST API through
//! `cuttle-client`, printed as a table or as the server's JSON.

use anyhow::Context as _;
use serde_json::{Value, json};

use super::output::{Table, print_fields, print_json, print_line};
use super::{
    ConnectionOptions, Failure, OutputFormat, Session, config, connect, list_items, resolve_space,
    text, text_list,
};

/// `cuttle login`.
#[derive(Debug, clap::Args)]
pub(crate) struct LoginArguments {
    #[command(flatten)]
    pub(crate) connection: ConnectionOptions,
}

/// Checks the server and key, then saves them for the next commands.
pub(crate) async fn login(arguments: LoginArguments) -> anyhow::Result<()> {
    let connection = arguments.connection;
    let server = connection.server.clone().ok_or_else(|| {
        Failure::usage("cuttle login needs --server URL (or CUTTLE_SERVER) and --api-key KEY")
    })?;
    let api_key = connection
        .api_key
        .clone()
        .ok_or_else(|| Failure::usage("cuttle login needs --api-key KEY (or CUTTLE_API_KEY)"))?;
    let (client, _) = connect(&connection)?;
    let user = client
        .current_user()
        .await
        .with_context(|| format!("sign in to {server}"))?;
    // A space given at login must exist: better to fail now than on every later command.
    let space_id = match &connection.space {
        Some(space) => Some(resolve_space(&client, Some(space)).await?),
        None => None,
    };
    let path = config::save(&config::Config {
        server: Some(client.base_url().to_owned()),
        api_key: Some(api_key),
        space: space_id.clone(),
    })?;
    match connection.output {
        OutputFormat::Json => print_json(&json!({
            "Server": client.base_url(),
            "Username": user.username,
            "SpaceId": space_id,
            "ConfigurationFile": path.display().to_string(),
        })),
        OutputFormat::Table => print_line(&format!(
            "Logged in to {} as {}. Saved to {} (readable only by you).",
            client.base_url(),
            user.username,
            path.display()
        )),
    }
}

/// `cuttle space …`.
#[derive(Debug, clap::Args)]
pub(crate) struct SpaceArguments {
    #[command(flatten)]
    pub(crate) connection: ConnectionOptions,
    #[command(subcommand)]
    pub(crate) command: SpaceCommand,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum SpaceCommand {
    /// List the spaces.
    List,
}

pub(crate) async fn space(arguments: SpaceArguments) -> anyhow::Result<()> {
    let (client, _) = connect(&arguments.connection)?;
    match arguments.command {
        SpaceCommand::List => {
            let spaces = list_items(&client, "/api/spaces").await?;
            if arguments.connection.output == OutputFormat::Json {
                return print_json(&Value::Array(spaces));
            }
            let mut table = Table::new(&["Id", "Name", "Default", "Description"]);
            for space in &spaces {
                let is_default = space.get("IsDefault").and_then(Value::as_bool) == Some(true);
                table.row(vec![
                    text(space, "Id"),
                    text(space, "Name"),
                    if is_default { "yes" } else { "" }.to_owned(),
                    text(space, "Description"),
                ]);
            }
            table.print()
        }
    }
}

/// `cuttle environment …`.
#[derive(Debug, clap::Args)]
pub(crate) struct EnvironmentArguments {
    #[command(flatten)]
    pub(crate) connection: ConnectionOptions,
    #[command(subcommand)]
    pub(crate) command: EnvironmentCommand,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum EnvironmentCommand {
    /// List the space's environments, in their deployment order.
    List,
    /// Create an environment (it goes last in the order).
    Create {
        /// The new environment's name.
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
}

pub(crate) async fn environment(arguments: EnvironmentArguments) -> anyhow::Result<()> {
    let session = Session::open(&arguments.connection).await?;
    match arguments.command {
        EnvironmentCommand::List => {
            let environments = session.list("environments").await?;
            if session.output == OutputFormat::Json {
                return print_json(&Value::Array(environments));
            }
            let mut table = Table::new(&["Id", "Name", "Description"]);
            for environment in &environments {
                table.row(vec![
                    text(environment, "Id"),
                    text(environment, "Name"),
                    text(environment, "Description"),
                ]);
            }
            table.print()
        }
        EnvironmentCommand::Create { name, description } => {
            let created: Value = session
                .client
                .post(
                    &format!("/api/{}/environments", session.space_id),
                    &json!({"Name": name, "Description": description}),
                )
                .await
                .with_context(|| format!("create the environment '{name}'"))?;
            print_created(&session, "environment", &created)
        }
    }
}

/// The answer to a create: the resource as JSON, or one line for people.
fn print_created(session: &Session, kind: &str, created: &Value) -> anyhow::Result<()> {
    match session.output {
        OutputFormat::Json => print_json(created),
        OutputFormat::Table => print_line(&format!(
            "Created {kind} {} ({}).",
            text(created, "Name"),
            text(created, "Id")
        )),
    }
}

/// `cuttle project …`.
#[derive(Debug, clap::Args)]
pub(crate) struct ProjectArguments {
    #[command(flatten)]
    pub(crate) connection: ConnectionOptions,
    #[command(subcommand)]
    pub(crate) command: ProjectCommand,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ProjectCommand {
    /// List the space's projects.
    List,
    /// Create a project.
    Create {
        /// The new project's name.
        name: String,
        /// Its lifecycle (name or id); default: the space's default lifecycle.
        #[arg(long)]
        lifecycle: Option<String>,
        /// Its project group (name or id); default: the default project group.
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Show a project: its lifecycle, group, deployment process and latest releases.
    Show {
        /// The project's name, slug or id.
        project: String,
    },
}

pub(crate) async fn project(arguments: ProjectArguments) -> anyhow::Result<()> {
    let session = Session::open(&arguments.connection).await?;
    match arguments.command {
        ProjectCommand::List => {
            let projects = session.list("projects").await?;
            if session.output == OutputFormat::Json {
                return print_json(&Value::Array(projects));
            }
            let lifecycles = session.list("lifecycles").await?;
            let groups = session.list("projectgroups").await?;
            let mut table = Table::new(&["Id", "Name", "Lifecycle", "Group", "Description"]);
            for project in &projects {
                table.row(vec![
                    text(project, "Id"),
                    text(project, "Name"),
                    name_of(&lifecycles, &text(project, "LifecycleId")),
                    name_of(&groups, &text(project, "ProjectGroupId")),
                    text(project, "Description"),
                ]);
            }
            table.print()
        }
        ProjectCommand::Create {
            name,
            lifecycle,
            group,
            description,
        } => {
            let mut body = json!({"Name": name, "Description": description});
            if let Some(lifecycle) = lifecycle {
                let lifecycle = session.find("lifecycles", "lifecycle", &lifecycle).await?;
                body["LifecycleId"] = lifecycle["Id"].clone();
            }
            if let Some(group) = group {
                let group = session
                    .find("projectgroups", "project group", &group)
                    .await?;
                body["ProjectGroupId"] = group["Id"].clone();
            }
            let created: Value = session
                .client
                .post(&format!("/api/{}/projects", session.space_id), &body)
                .await
                .with_context(|| format!("create the project '{name}'"))?;
            print_created(&session, "project", &created)
        }
        ProjectCommand::Show { project } => show_project(&session, &project).await,
    }
}

async fn show_project(session: &Session, key: &str) -> anyhow::Result<()> {
    let project = session.find("projects", "project", key).await?;
    if session.output == OutputFormat::Json {
        return print_json(&project);
    }
    let space = &session.space_id;
    let project_id = text(&project, "Id");
    let lifecycles = session.list("lifecycles").await?;
    let groups = session.list("projectgroups").await?;
    let process: Value = session
        .client
        .get(&format!(
            "/api/{space}/projects/{project_id}/deploymentprocesses"
        ))
        .await
        .context("read the project's deployment process")?;
    let steps: Vec<String> = match process.get("Steps") {
        Some(Value::Array(steps)) => steps.iter().map(|step| text(step, "Name")).collect(),
        _ => Vec::new(),
    };
    let releases = list_items(
        &session.client,
        &format!("/api/{space}/projects/{project_id}/releases"),
    )
    .await?;
    let latest: Vec<String> = releases
        .iter()
        .take(5)
        .map(|release| text(release, "Version"))
        .collect();
    print_fields(&[
        ("Id", project_id.clone()),
        ("Name", text(&project, "Name")),
        ("Slug", text(&project, "Slug")),
        ("Description", text(&project, "Description")),
        (
            "Lifecycle",
            name_of(&lifecycles, &text(&project, "LifecycleId")),
        ),
        ("Group", name_of(&groups, &text(&project, "ProjectGroupId"))),
        ("Disabled", text(&project, "IsDisabled")),
        ("Steps", steps.join(", ")),
        (
            "Releases",
            format!("{} (latest: {})", releases.len(), latest.join(", ")),
        ),
    ])
}

/// The name of the item with `id`, or the id itself when it is not in the list.
fn name_of(items: &[Value], id: &str) -> String {
    items
        .iter()
        .find(|item| text(item, "Id") == id)
        .map(|item| text(item, "Name"))
        .unwrap_or_else(|| id.to_owned())
}

/// `cuttle target …`.
#[derive(Debug, clap::Args)]
pub(crate) struct TargetArguments {
    #[command(flatten)]
    pub(crate) connection: ConnectionOptions,
    #[command(subcommand)]
    pub(crate) command: TargetCommand,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TargetCommand {
    /// List the deployment targets (agents, SSH hosts).
    List {
        /// Only targets in this environment (name or id).
        #[arg(long)]
        environment: Option<String>,
        /// Only targets with this role.
        #[arg(long)]
        role: Option<String>,
    },
}

pub(crate) async fn target(arguments: TargetArguments) -> anyhow::Result<()> {
    let session = Session::open(&arguments.connection).await?;
    let TargetCommand::List { environment, role } = arguments.command;
    let environments = session.list("environments").await?;
    let environment_id = match environment {
        Some(key) => Some(text(
            &super::find_by_key(environments.clone(), "environment", &key)?,
            "Id",
        )),
        None => None,
    };
    let targets: Vec<Value> = session
        .list("machines")
        .await?
        .into_iter()
        .filter(|target| {
            environment_id
                .as_ref()
                .is_none_or(|id| list_contains(target, "EnvironmentIds", id))
                && role
                    .as_ref()
                    .is_none_or(|role| list_contains(target, "Roles", role))
        })
        .collect();
    if session.output == OutputFormat::Json {
        return print_json(&Value::Array(targets));
    }
    let mut table = Table::new(&["Id", "Name", "Environments", "Roles", "Endpoint", "Health"]);
    for target in &targets {
        let environment_names: Vec<String> = match target.get("EnvironmentIds") {
            Some(Value::Array(ids)) => ids
                .iter()
                .filter_map(Value::as_str)
                .map(|id| name_of(&environments, id))
                .collect(),
            _ => Vec::new(),
        };
        let endpoint = target.get("Endpoint").cloned().unwrap_or_default();
        let mut health = text(target, "HealthStatus");
        if target.get("IsDisabled").and_then(Value::as_bool) == Some(true) {
            health.push_str(" (disabled)");
        }
        table.row(vec![
            text(target, "Id"),
            text(target, "Name"),
            environment_names.join(", "),
            text_list(target, "Roles"),
            text(&endpoint, "CommunicationStyle"),
            health,
        ]);
    }
    table.print()
}

/// Whether a list-of-strings field holds `wanted`, ignoring case.
fn list_contains(value: &Value, field: &str, wanted: &str) -> bool {
    match value.get(field) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .any(|item| item.eq_ignore_ascii_case(wanted)),
        _ => false,
    }
}

/// `cuttle release …`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReleaseArguments {
    #[command(flatten)]
    pub(crate) connection: ConnectionOptions,
    #[command(subcommand)]
    pub(crate) command: ReleaseCommand,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ReleaseCommand {
    /// Create a release: a version of the project with its process, variables and package
    /// versions fixed.
    // `--version` is the release's version here, not the program's.
    #[command(disable_version_flag = true)]
    Create(CreateReleaseArguments),
    /// List a project's releases, newest first.
    List {
        /// The project's name, slug or id.
        #[arg(long)]
        project: String,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct CreateReleaseArguments {
    /// The project's name, slug or id.
    #[arg(long)]
    project: String,
    /// The release's version; default: the project's versioning template.
    #[arg(long)]
    version: Option<String>,
    /// The channel (name or id); default: the project's default channel.
    #[arg(long)]
    channel: Option<String>,
    /// A package version to pin, as PACKAGE_ID:VERSION or STEP_NAME:VERSION (Octopus's
    /// syntax, `*:VERSION` for every package); repeat for several. Packages not named get
    /// the newest version the channel's rules accept.
    #[arg(long = "package", value_name = "ID:VERSION")]
    packages: Vec<String>,
    /// The release notes (Markdown).
    #[arg(long, conflicts_with = "release_notes_file")]
    release_notes: Option<String>,
    /// A file holding the release notes.
    #[arg(long, value_name = "FILE")]
    release_notes_file: Option<std::path::PathBuf>,
}

pub(crate) async fn release(arguments: ReleaseArguments) -> anyhow::Result<()> {
    let session = Session::open(&arguments.connection).await?;
    match arguments.command {
        ReleaseCommand::Create(create) => create_release(&session, create).await,
        ReleaseCommand::List { project } => list_releases(&session, &project).await,
    }
}

async fn create_release(
    session: &Session,
    arguments: CreateReleaseArguments,
) -> anyhow::Result<()> {
    for package in &arguments.packages {
        if !package.contains(':') {
            return Err(Failure::usage(format!(
                "--package {package}: write PACKAGE_ID:VERSION (or STEP_NAME:VERSION)"
            ))
            .into());
        }
    }
    let release_notes = match (&arguments.release_notes, &arguments.release_notes_file) {
        (Some(notes), _) => Some(notes.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("read the release notes from {}", path.display()))?,
        ),
        (None, None) => None,
    };
    let project = session
        .find("projects", "project", &arguments.project)
        .await?;
    let space = &session.space_id;
    let channel_id = match &arguments.channel {
        Some(channel) => {
            let channels = list_items(
                &session.client,
                &format!("/api/{space}/projects/{}/channels", text(&project, "Id")),
            )
            .await?;
            Some(text(
                &super::find_by_key(channels, "channel", channel)?,
                "Id",
            ))
        }
        None => None,
    };
    let command = json!({
        "ProjectName": text(&project, "Id"),
        "ReleaseVersion": arguments.version,
        "ChannelName": channel_id,
        "Packages": arguments.packages,
        "ReleaseNotes": release_notes,
    });
    let created: Value = session
        .client
        .post(&format!("/api/{space}/releases/create/v1"), &command)
        .await
        .with_context(|| format!("create a release of '{}'", text(&project, "Name")))?;
    let release: Value = session
        .client
        .get(&format!(
            "/api/{space}/releases/{}",
            text(&created, "ReleaseId")
        ))
        .await
        .context("read the new release")?;
    if session.output == OutputFormat::Json {
        return print_json(&release);
    }
    let packages: Vec<String> = match release.get("SelectedPackages") {
        Some(Value::Array(packages)) => packages
            .iter()
            .map(|package| {
                format!(
                    "{} {}",
                    text(package, "ActionName"),
                    text(package, "Version")
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut lines = vec![format!(
        "Created release {} of {} ({}).",
        text(&release, "Version"),
        text(&project, "Name"),
        text(&release, "Id")
    )];
    if !packages.is_empty() {
        lines.push(format!("Packages: {}", packages.join(", ")));
    }
    print_line(&lines.join("\n"))
}

async fn list_releases(session: &Session, project_key: &str) -> anyhow::Result<()> {
    let project = session.find("projects", "project", project_key).await?;
    let space = &session.space_id;
    let project_id = text(&project, "Id");
    let releases = list_items(
        &session.client,
        &format!("/api/{space}/projects/{project_id}/releases"),
    )
    .await?;
    if session.output == OutputFormat::Json {
        return print_json(&Value::Array(releases));
    }
    let channels = list_items(
        &session.client,
        &format!("/api/{space}/projects/{project_id}/channels"),
    )
    .await?;
    let mut table = Table::new(&["Version", "Id", "Channel", "Created", "Notes"]);
    for release in &releases {
        table.row(vec![
            text(release, "Version"),
            text(release, "Id"),
            name_of(&channels, &text(release, "ChannelId")),
            text(release, "Assembled"),
            text(release, "ReleaseNotes"),
        ]);
    }
    table.print()
}

/// A project found by name, slug or id; the kind of failure `deploy` and `task` share.
pub(crate) async fn find_project(session: &Session, key: &str) -> anyhow::Result<Value> {
    session.find("projects", "project", key).await
}
