//! What the caller learns back: a ticket's state, its new log lines and what the script reported.
//!
//! Like the request, these travel over the agent protocol as PascalCase JSON. Log lines are
//! already masked when they get here; output variables are not (the server needs the values),
//! so their `Debug` hides sensitive ones.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Exit codes for the outcomes that are not a script's own exit, as Tentacle numbers them
/// (`ScriptExitCodes`), so the server can map every state to one number.
pub mod exit_codes {
    /// The executor could not start the script (interpreter missing, workspace unwritable…).
    pub const FATAL: i32 = -41;
    /// The script was cancelled.
    pub const CANCELLED: i32 = -43;
    /// The isolation mutex was not acquired within the request's mutex timeout.
    pub const ISOLATION_MUTEX_TIMEOUT: i32 = -44;
    /// The executor restarted while the script ran: its outcome is unknown.
    pub const UNKNOWN_RESULT: i32 = -46;
    /// The script ran past its timeout and was stopped (Cuttle's own code; Tentacle has none).
    pub const TIMED_OUT: i32 = -48;
}

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "Kind", rename_all_fields = "PascalCase")]
pub enum ScriptState {
    /// Accepted, waiting for the isolation mutex.
    Pending,
    /// The script's process is running.
    Running,
    /// The script exited (a negative code is one of [`exit_codes`], e.g. a failed launch).
    Complete { exit_code: i32 },
    /// Cancelled, while waiting or while running; the process group was killed.
    Cancelled,
    /// The script ran past the request's timeout; the process group was killed.
    TimedOut,
    /// The executor stopped while the script ran. It is never run again.
    Unknown,
}

impl ScriptState {
    /// Whether the ticket will never change state again.
    pub fn is_finished(self) -> bool {
        !matches!(self, ScriptState::Pending | ScriptState::Running)
    }

    /// One exit code per finished state, Tentacle-style; `None` while pending or running.
    pub fn exit_code(self) -> Option<i32> {
        match self {
            ScriptState::Pending | ScriptState::Running => None,
            ScriptState::Complete { exit_code } => Some(exit_code),
            ScriptState::Cancelled => Some(exit_codes::CANCELLED),
            ScriptState::TimedOut => Some(exit_codes::TIMED_OUT),
            ScriptState::Unknown => Some(exit_codes::UNKNOWN_RESULT),
        }
    }
}

/// The category of a log line, as Octopus' task log has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LogLevel {
    Verbose,
    Info,
    Highlight,
    Wait,
    Warning,
    Error,
}

/// One line of a ticket's log, masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogLine {
    /// 1 for the first line of the ticket, then +1 per line.
    pub sequence: u64,
    pub occurred_at: DateTime<Utc>,
    pub level: LogLevel,
    pub text: String,
}

/// A variable the script set with `set_octopusvariable` (a `setVariable` service message).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OutputVariable {
    pub name: String,
    pub value: String,
    pub is_sensitive: bool,
}

impl std::fmt::Debug for OutputVariable {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("OutputVariable")
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

/// A file the script asked to collect (`new_octopusartifact`, a `createArtifact` message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Artifact {
    /// The name to show and download as.
    pub name: String,
    /// Absolute path on this machine (relative paths are resolved against the workspace).
    pub path: PathBuf,
    /// The length the script reported, in bytes (0 when it gave none).
    pub length: u64,
}

/// The script's last `progress` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Progress {
    /// 0–100.
    pub percentage: u8,
    pub message: String,
}

/// A ticket's status and the log lines after the sequence the caller already has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScriptStatus {
    pub ticket: String,
    pub state: ScriptState,
    /// Lines with a sequence above the one asked for, oldest first, at most
    /// [`crate::MAX_LINES_PER_STATUS`].
    pub lines: Vec<LogLine>,
    /// The sequence of the last line returned (or the one asked for when none is new): pass
    /// it back as `after_sequence` next time.
    pub next_sequence: u64,
    pub output_variables: Vec<OutputVariable>,
    pub artifacts: Vec<Artifact>,
    pub progress: Option<Progress>,
    /// The message given to `fail_step` (a `resultMessage` service message), masked.
    pub failed_step_message: Option<String>,
}

/// What [`crate::Executor::start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartOutcome {
    /// The ticket is new: it is now pending or running.
    Started,
    /// The ticket was started before (maybe by an executor that has since restarted); nothing
    /// was run this time.
    AlreadyStarted,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_serialize_with_a_kind_tag() {
        let json = serde_json::to_value(ScriptState::Complete { exit_code: 3 }).expect("json");
        assert_eq!(json, serde_json::json!({"Kind": "Complete", "ExitCode": 3}));
        let json = serde_json::to_value(ScriptState::Unknown).expect("json");
        assert_eq!(json, serde_json::json!({"Kind": "Unknown"}));
        let back: ScriptState =
            serde_json::from_value(serde_json::json!({"Kind": "Complete", "ExitCode": -1}))
                .expect("parse");
        assert_eq!(back, ScriptState::Complete { exit_code: -1 });
    }

    #[test]
    fn every_finished_state_has_an_exit_code() {
        assert_eq!(ScriptState::Running.exit_code(), None);
        assert_eq!(ScriptState::Cancelled.exit_code(), Some(-43));
        assert_eq!(ScriptState::Unknown.exit_code(), Some(-46));
        assert!(ScriptState::TimedOut.is_finished());
        assert!(!ScriptState::Pending.is_finished());
    }

    #[test]
    fn debug_hides_sensitive_output_values() {
        let variable = OutputVariable {
            name: "Token".into(),
            value: "s3cr3t-value".into(),
            is_sensitive: true,
        };
        assert!(!format!("{variable:?}").contains("s3cr3t"));
    }
}
