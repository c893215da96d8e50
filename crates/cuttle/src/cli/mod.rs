//! The client commands (`cuttle login`, `space`, `environment`, `project`, `target`,
//! `package`, `release`, `deploy`, `task`): what they share. The connection options every one
//! of them takes, the session they open (a `cuttle-client` plus the space they work in),
//! finding resources by name or id, and the exit codes their failures map to.
//!
//! The commands talk to the server only through its REST API (`cuttle-client`), as any script
//! would; they keep resources as JSON values so `--output json` prints exactly what the server
//! answered.

pub(crate) mod config;
pub(crate) mod output;
pub(crate) mod packages;
pub(crate) mod resources;
pub(crate) mod tasks;

use std::process::ExitCode;

use anyhow::Context as _;
use cuttle_client::{Client, ClientError};
use serde_json::Value;

use crate::env_vars;

/// Exit codes of the client commands, documented in `docs/cli.md`.
pub(crate) mod exit_codes {
    /// Anything not listed below (the server unreachable, a conflict, invalid input…).
    pub(crate) const OTHER: u8 = 1;
    /// The command line is wrong (clap uses 2 for its own errors too).
    pub(crate) const USAGE: u8 = 2;
    /// No API key, or the server refused it (401) or refused the action (403).
    pub(crate) const AUTH: u8 = 3;
    /// A named resource (space, project, release, environment, task…) does not exist.
    pub(crate) const NOT_FOUND: u8 = 4;
    /// A task waited for ended other than in success (failed, cancelled, timed out).
    pub(crate) const TASK_UNSUCCESSFUL: u8 = 5;
}

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// Human-readable tables and messages.
    Table,
    /// The server's JSON, for scripts.
    Json,
}

/// The options every client command takes, before or after its subcommand.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConnectionOptions {
    /// The server's address, e.g. http://127.0.0.1:8050. Default: the one `cuttle login` saved.
    #[arg(long, global = true, env = env_vars::CUTTLE_SERVER, hide_env_values = true, value_name = "URL")]
    pub(crate) server: Option<String>,

    /// The API key to call the server with. Default: the one `cuttle login` saved.
    #[arg(
        long,
        global = true,
        env = env_vars::CUTTLE_API_KEY,
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub(crate) api_key: Option<String>,

    /// The space to work in, by name or id. Default: the one `cuttle login` saved, else the
    /// server's default space.
    #[arg(long, global = true, env = env_vars::CUTTLE_SPACE, hide_env_values = true, value_name = "SPACE")]
    pub(crate) space: Option<String>,

    /// How to print results: tables for people, JSON for scripts.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub(crate) output: OutputFormat,
}

/// Why a client command failed, when the exit code must say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    Usage,
    Auth,
    NotFound,
    TaskUnsuccessful,
}

/// A failure whose kind decides the exit code; its message is shown as it is.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure::new(FailureKind::Usage, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(FailureKind::NotFound, message)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit code an error means: the first [`Failure`] or server status in its chain decides.
pub(crate) fn exit_code_for(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            return match failure.kind {
                FailureKind::Usage => exit_codes::USAGE,
                FailureKind::Auth => exit_codes::AUTH,
                FailureKind::NotFound => exit_codes::NOT_FOUND,
                FailureKind::TaskUnsuccessful => exit_codes::TASK_UNSUCCESSFUL,
            };
        }
        if let Some(client_error) = cause.downcast_ref::<ClientError>() {
            return match client_error.status().map(|status| status.as_u16()) {
                Some(401 | 403) => exit_codes::AUTH,
                Some(404) => exit_codes::NOT_FOUND,
                _ => exit_codes::OTHER,
            };
        }
    }
    exit_codes::OTHER
}

/// Runs a client command to its exit code, printing a failure as `error: …` on stderr.
pub(crate) fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = exit_code_for(&error);
            let hint = match code {
                exit_codes::AUTH => {
                    "\nhint: check the API key (`cuttle login --server URL --api-key KEY`, or CUTTLE_API_KEY)"
                }
                _ => "",
            };
            output::print_error(&format!("error: {error:#}{hint}"));
            ExitCode::from(code)
        }
    }
}

/// A connection to the server and the space commands work in.
pub(crate) struct Session {
    pub(crate) client: Client,
    pub(crate) space_id: String,
    pub(crate) output: OutputFormat,
}

/// The server's address and key: the command line and environment first, then the file
/// `cuttle login` wrote.
pub(crate) fn connect(options: &ConnectionOptions) -> anyhow::Result<(Client, Option<String>)> {
    let saved = config::load()?;
    let server = options.server.clone().or(saved.server).ok_or_else(|| {
        Failure::usage(format!(
            "no server given: run `cuttle login --server URL --api-key KEY`, or pass --server or set {}",
            env_vars::CUTTLE_SERVER
        ))
    })?;
    let api_key = options.api_key.clone().or(saved.api_key).ok_or_else(|| {
        Failure::new(
            FailureKind::Auth,
            format!(
                "no API key given: run `cuttle login`, or pass --api-key or set {}",
                env_vars::CUTTLE_API_KEY
            ),
        )
    })?;
    let client =
        Client::new(&server, Some(api_key)).map_err(|error| Failure::usage(format!("{error}")))?;
    Ok((client, options.space.clone().or(saved.space)))
}

impl Session {
    /// Connects and finds the space to work in.
    pub(crate) async fn open(options: &ConnectionOptions) -> anyhow::Result<Session> {
        let (client, space) = connect(options)?;
        let space_id = resolve_space(&client, space.as_deref()).await?;
        Ok(Session {
            client,
            space_id,
            output: options.output,
        })
    }

    /// Every item of a space's collection (`environments`, `projects`…).
    pub(crate) async fn list(&self, collection: &str) -> anyhow::Result<Vec<Value>> {
        list_items(
            &self.client,
            &format!("/api/{}/{collection}", self.space_id),
        )
        .await
    }

    /// The item of a space's collection whose id, name or slug is `key` (ignoring case).
    pub(crate) async fn find(
        &self,
        collection: &str,
        kind: &str,
        key: &str,
    ) -> anyhow::Result<Value> {
        let items = self.list(collection).await?;
        find_by_key(items, kind, key)
    }
}

/// Every item of a collection route, in one page.
pub(crate) async fn list_items(client: &Client, path: &str) -> anyhow::Result<Vec<Value>> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let page: Value = client
        .get(&format!("{path}{separator}take={}", i32::MAX))
        .await
        .with_context(|| format!("list {path}"))?;
    Ok(match page.get("Items") {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    })
}

/// The item whose `Id`, `Name` or `Slug` is `key`, ignoring case; a not-found failure naming
/// the choices otherwise.
pub(crate) fn find_by_key(items: Vec<Value>, kind: &str, key: &str) -> anyhow::Result<Value> {
    let matches = |item: &Value, field: &str| {
        item.get(field)
            .and_then(Value::as_str)
            .is_some_and(|value| value.eq_ignore_ascii_case(key.trim()))
    };
    let names: Vec<String> = items.iter().map(|item| text(item, "Name")).collect();
    // An id or an exact name wins over a slug, which another resource's name could equal.
    let position = items
        .iter()
        .position(|item| matches(item, "Id") || matches(item, "Name"))
        .or_else(|| items.iter().position(|item| matches(item, "Slug")));
    match position {
        Some(position) => Ok(items.into_iter().nth(position).unwrap_or_default()),
        None if names.is_empty() => {
            Err(Failure::not_found(format!("{kind} '{key}' was not found (there are none)")).into())
        }
        None => Err(Failure::not_found(format!(
            "{kind} '{key}' was not found; there are: {}",
            names.join(", ")
        ))
        .into()),
    }
}

/// The id of the space named `key` (name or id), or of the default space.
pub(crate) async fn resolve_space(client: &Client, key: Option<&str>) -> anyhow::Result<String> {
    let spaces = list_items(client, "/api/spaces").await?;
    let space = match key {
        Some(key) => find_by_key(spaces, "space", key)?,
        None => {
            let default = spaces
                .iter()
                .position(|space| space.get("IsDefault").and_then(Value::as_bool) == Some(true))
                .or_else(|| {
                    spaces
                        .iter()
                        .position(|space| text(space, "Name").eq_ignore_ascii_case("Default"))
                });
            match default {
                Some(position) => spaces.into_iter().nth(position).unwrap_or_default(),
                None => {
                    return Err(Failure::not_found(
                        "the server has no default space: name one with --space",
                    )
                    .into());
                }
            }
        }
    };
    Ok(text(&space, "Id"))
}

/// A field of a JSON resource as text: strings as they are, numbers and booleans printed,
/// anything else (absent, null) empty.
pub(crate) fn text(value: &Value, field: &str) -> String {
    match value.get(field) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        Some(Value::Bool(flag)) => flag.to_string(),
        _ => String::new(),
    }
}

/// A field holding a list of strings, joined with ", ".
pub(crate) fn text_list(value: &Value, field: &str) -> String {
    match value.get(field) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_are_found_by_id_name_or_slug_ignoring_case() {
        let items = vec![
            json!({"Id": "Projects-1", "Name": "Hello World", "Slug": "hello-world"}),
            json!({"Id": "Projects-2", "Name": "hello-world", "Slug": "other"}),
        ];
        let found = |key| text(&find_by_key(items.clone(), "project", key).unwrap(), "Id");
        assert_eq!(found("projects-1"), "Projects-1");
        assert_eq!(found("HELLO WORLD"), "Projects-1");
        // A name beats another project's slug.
        assert_eq!(found("hello-world"), "Projects-2");
        let error = find_by_key(items, "project", "nope").unwrap_err();
        assert_eq!(exit_code_for(&error), exit_codes::NOT_FOUND);
        assert!(error.to_string().contains("Hello World, hello-world"));
    }
}
