//! What the caller asks for: one script, its variables, its isolation and its limits.
//!
//! These types travel over the agent protocol, so they are plain serde structs with PascalCase
//! field names, like the rest of the wire. Validation lives here too ([`ScriptRequest::validate`]),
//! because a ticket id becomes a directory name and must never escape the executor's root.
//! Durations travel as whole milliseconds (`TimeoutMilliseconds`), not as serde's default
//! `{secs, nanos}` pair.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ExecError;
use crate::package_deployment::PackageDeployment;

/// The longest ticket id accepted.
pub const MAX_TICKET_LENGTH: usize = 100;

/// The isolation mutex used when a request names none: one per machine, as Tentacle's
/// `RunningScript`.
pub const DEFAULT_MUTEX_NAME: &str = "RunningScript";

/// One script to run for one ticket.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScriptRequest {
    /// The caller-chosen id; starting the same ticket twice runs the script once.
    pub ticket: String,
    pub syntax: ScriptSyntax,
    /// The script's text, run unchanged (CRLF line ends become LF for shells and Python).
    pub body: String,
    /// Positional arguments (`$1`… in shells, `sys.argv[1:]` in Python, `$args` in PowerShell).
    #[serde(default)]
    pub arguments: Vec<String>,
    /// The variables the helpers (`get_octopusvariable`…) read. System variables are plain ones.
    #[serde(default)]
    pub variables: Vec<ScriptVariable>,
    #[serde(default)]
    pub isolation: Isolation,
    /// The isolation mutex's name; `None` means [`DEFAULT_MUTEX_NAME`] (one per machine).
    #[serde(default)]
    pub isolation_mutex_name: Option<String>,
    /// How long to wait for the isolation mutex; `None` waits as long as it takes.
    #[serde(
        default,
        rename = "IsolationMutexTimeoutMilliseconds",
        with = "optional_milliseconds"
    )]
    pub isolation_mutex_timeout: Option<Duration>,
    /// How long the script may run once it has the mutex; `None` means no limit.
    #[serde(
        default,
        rename = "TimeoutMilliseconds",
        with = "optional_milliseconds"
    )]
    pub timeout: Option<Duration>,
    /// Files already on this machine (uploaded earlier) to copy into the script's workspace.
    #[serde(default)]
    pub files: Vec<StagedFile>,
    /// When set, the ticket deploys this package (the conventions runner runs instead of
    /// `body`, which should be empty). Peers that predate it ignore the field and would run
    /// the empty body: send it only to agents listing the `PackageDeployment` feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_deployment: Option<PackageDeployment>,
}

/// Which interpreter runs the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScriptSyntax {
    /// `bash` (4 or later for `octopus_parameters` and `get_octopusvariable`).
    Bash,
    /// POSIX `sh`; the same helpers, without the `octopus_parameters` array.
    Sh,
    /// `python3 -u`; Calamari's helper names (`get_octopusvariable`, `createartifact`…).
    Python,
    /// `pwsh`; Octopus' cmdlet names (`Set-OctopusVariable`, `$OctopusParameters`…).
    PowerShell,
}

/// A variable handed to the script. Its value is never printed by `Debug` when sensitive.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScriptVariable {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_sensitive: bool,
}

impl ScriptVariable {
    /// A variable that is not sensitive.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> ScriptVariable {
        ScriptVariable {
            name: name.into(),
            value: value.into(),
            is_sensitive: false,
        }
    }

    /// A sensitive variable: masked in every log line.
    pub fn sensitive(name: impl Into<String>, value: impl Into<String>) -> ScriptVariable {
        ScriptVariable {
            name: name.into(),
            value: value.into(),
            is_sensitive: true,
        }
    }
}

impl std::fmt::Debug for ScriptVariable {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ScriptVariable")
            .field("name", &self.name)
            .field(
                "value",
                &if self.is_sensitive {
                    "********"
                } else {
                    self.value.as_str()
                },
            )
            .field("is_sensitive", &self.is_sensitive)
            .finish()
    }
}

/// How a script shares the machine with other scripts under the same mutex name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Isolation {
    /// Exclusive: no other script under the same mutex runs at the same time.
    #[default]
    #[serde(alias = "FullIsolation")]
    Full,
    /// Shared: runs alongside other `None` scripts, but never alongside a `Full` one.
    #[serde(alias = "NoIsolation")]
    None,
}

/// A file already on this machine, copied into the workspace as `name` before the script runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StagedFile {
    /// The file's name in the workspace: one path component, no `/`, not `.` or `..`.
    pub name: String,
    /// Where the file is now.
    pub source: PathBuf,
}

impl ScriptRequest {
    /// A request with no arguments, variables or files, full isolation and no timeouts.
    pub fn new(
        ticket: impl Into<String>,
        syntax: ScriptSyntax,
        body: impl Into<String>,
    ) -> ScriptRequest {
        ScriptRequest {
            ticket: ticket.into(),
            syntax,
            body: body.into(),
            arguments: Vec::new(),
            variables: Vec::new(),
            isolation: Isolation::Full,
            isolation_mutex_name: None,
            isolation_mutex_timeout: None,
            timeout: None,
            files: Vec::new(),
            package_deployment: None,
        }
    }

    /// The mutex name this request uses.
    pub fn mutex_name(&self) -> &str {
        self.isolation_mutex_name
            .as_deref()
            .unwrap_or(DEFAULT_MUTEX_NAME)
    }

    /// Checks everything that becomes a path or a lock name.
    pub fn validate(&self) -> Result<(), ExecError> {
        validate_ticket(&self.ticket)?;
        if let Some(name) = self
            .isolation_mutex_name
            .as_ref()
            .filter(|name| validate_ticket(name).is_err())
        {
            return Err(ExecError::InvalidRequest(format!(
                "the isolation mutex name {name:?} must be 1–{MAX_TICKET_LENGTH} characters of [A-Za-z0-9._-]"
            )));
        }
        for file in &self.files {
            let name = file.name.as_str();
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
                return Err(ExecError::InvalidRequest(format!(
                    "the staged file name {name:?} must be a single file name"
                )));
            }
        }
        if let Some(deployment) = &self.package_deployment {
            deployment.validate()?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for ScriptRequest {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body may embed secrets the server substituted; show only its size.
        formatter
            .debug_struct("ScriptRequest")
            .field("ticket", &self.ticket)
            .field("syntax", &self.syntax)
            .field("body_bytes", &self.body.len())
            .field("arguments", &self.arguments.len())
            .field("variables", &self.variables)
            .field("isolation", &self.isolation)
            .field("isolation_mutex_name", &self.isolation_mutex_name)
            .field("isolation_mutex_timeout", &self.isolation_mutex_timeout)
            .field("timeout", &self.timeout)
            .field("files", &self.files)
            .field("package_deployment", &self.package_deployment)
            .finish()
    }
}

/// Checks a ticket id: 1–100 characters of `[A-Za-z0-9._-]`, not made of dots only (so it is
/// always a plain directory name).
pub fn validate_ticket(ticket: &str) -> Result<(), ExecError> {
    let invalid = |reason| ExecError::InvalidTicket {
        ticket: ticket.chars().take(MAX_TICKET_LENGTH + 10).collect(),
        reason,
    };
    if ticket.is_empty() {
        return Err(invalid("it is empty"));
    }
    if ticket.len() > MAX_TICKET_LENGTH {
        return Err(invalid("it is longer than 100 characters"));
    }
    if !ticket
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
    {
        return Err(invalid(
            "only letters, digits, '.', '_' and '-' are allowed",
        ));
    }
    if ticket.bytes().all(|byte| byte == b'.') {
        return Err(invalid("it cannot be made of dots only"));
    }
    Ok(())
}

/// `Option<Duration>` as whole milliseconds.
mod optional_milliseconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => {
                serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
            }
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(deserializer)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_plain_directory_names() {
        for good in ["a", "Tickets-1", "x.y_z-9", &"a".repeat(100), ".a", "a.."] {
            assert!(validate_ticket(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "...",
            "a/b",
            "a b",
            "é",
            "a\0",
            &"a".repeat(101),
        ] {
            assert!(validate_ticket(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn requests_round_trip_in_pascal_case() {
        let mut request = ScriptRequest::new("T-1", ScriptSyntax::Bash, "echo hi");
        request
            .variables
            .push(ScriptVariable::sensitive("Password", "hunter22"));
        request.timeout = Some(Duration::from_millis(1500));
        let json = serde_json::to_value(&request).expect("serialize");
        assert_eq!(json["Ticket"], "T-1");
        assert_eq!(json["Syntax"], "Bash");
        assert_eq!(json["TimeoutMilliseconds"], 1500);
        assert_eq!(json["Isolation"], "Full");
        assert_eq!(json["Variables"][0]["IsSensitive"], true);
        let back: ScriptRequest = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, request);

        let minimal: ScriptRequest = serde_json::from_str(
            r#"{"Ticket":"t","Syntax":"Python","Body":"print(1)","Isolation":"NoIsolation"}"#,
        )
        .expect("minimal request");
        assert_eq!(minimal.isolation, Isolation::None);
        assert_eq!(minimal.timeout, None);
        assert_eq!(minimal.mutex_name(), DEFAULT_MUTEX_NAME);
    }

    #[test]
    fn debug_hides_sensitive_values_and_the_body() {
        let mut request = ScriptRequest::new("T-1", ScriptSyntax::Bash, "echo hunter22");
        request
            .variables
            .push(ScriptVariable::sensitive("Password", "hunter22"));
        request
            .variables
            .push(ScriptVariable::new("Plain", "visible"));
        let text = format!("{request:?}");
        assert!(!text.contains("hunter22"), "{text}");
        assert!(text.contains("visible"), "{text}");
    }

    #[test]
    fn file_names_and_mutex_names_are_checked() {
        let mut request = ScriptRequest::new("T-1", ScriptSyntax::Sh, "true");
        request.files.push(StagedFile {
            name: "../escape".into(),
            source: "/tmp/x".into(),
        });
        assert!(matches!(
            request.validate(),
            Err(ExecError::InvalidRequest(_))
        ));
        request.files.clear();
        request.isolation_mutex_name = Some("bad name".into());
        assert!(request.validate().is_err());
        request.isolation_mutex_name = Some("Deploy.Web-1".into());
        assert!(request.validate().is_ok());
    }
}
