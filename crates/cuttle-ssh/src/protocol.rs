//! What `cuttle exec` prints: one JSON record per line on standard output. The binary
//! writes these and [`crate::SshTransport`] reads them, so both use these types.
//!
//! ```text
//! cuttle exec            (request JSON on stdin)  {"Start":"Started"|"AlreadyStarted"}
//!                                                 {"Line":{…}}…   then {"Result":{…}}
//! cuttle exec status --ticket T --after N         {"Status":{…ScriptStatus…}}
//! cuttle exec cancel --ticket T                   {"Done":"cancel"}
//! cuttle exec complete --ticket T                 {"Done":"complete"}
//! cuttle exec packages --package-id ID            {"Packages":[{…CachedPackage…}…]}
//! cuttle exec package-add --file F --package J    {"Package":{…CachedPackage…}}
//! cuttle exec package-signature --sha256 H        {"Signature":"<base64>"}
//! cuttle exec package-apply-delta --basis H --delta F --package J   {"Package":{…}}
//! any of them, when it fails                      {"Error":{"Kind":…,"Message":…}}
//! ```
//!
//! The package commands work on the target's package cache, `packages` beside the executor
//! root (`~/.cuttle/packages` for the default root); see [`package_cache_directory`]. A
//! package deployment's relative `PackagePath` is a file name in that cache.
//!
//! `Line` and `Result` are written by [`cuttle_exec::run_foreground`] itself
//! ([`ExecResult`] reads its `ForegroundResult`). The process exits 0 when it wrote what it
//! was asked for (the script's own exit code travels in `Result`), non-zero after `Error`.
//!
//! Cancelling works across processes through a marker file ([`cancel_request_path`]): the
//! foreground `cuttle exec` that owns the ticket watches for it. A marker written before the
//! ticket starts cancels it as soon as it does; `complete` removes it.

use std::path::{Path, PathBuf};

use cuttle_exec::{
    Artifact, CachedPackage, ExecError, LogLine, OutputVariable, Progress, ScriptState,
    ScriptStatus, StartOutcome,
};
use serde::{Deserialize, Serialize};

/// The directory under an executor root that holds cancel markers, one file per ticket.
pub const CANCEL_REQUESTS_DIRECTORY: &str = "cancel-requests";

/// The marker file that asks the foreground `cuttle exec` running `ticket` to cancel it.
/// `ticket` must be valid ([`cuttle_exec::validate_ticket`]), so the path stays under `root`.
pub fn cancel_request_path(root: &Path, ticket: &str) -> PathBuf {
    root.join(CANCEL_REQUESTS_DIRECTORY).join(ticket)
}

/// The directory name, beside the executor root, of the target's package cache.
pub const PACKAGE_CACHE_DIRECTORY: &str = "packages";

/// The package cache of the executor rooted at `root`: `packages` beside it.
pub fn package_cache_directory(root: &Path) -> PathBuf {
    root.parent().unwrap_or(root).join(PACKAGE_CACHE_DIRECTORY)
}

/// One line of `cuttle exec` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecRecord {
    /// First record of a foreground run: whether this run started the ticket.
    Start(StartOutcome),
    /// A log line of the ticket, masked, in sequence order.
    Line(LogLine),
    /// Last record of a foreground run.
    Result(ExecResult),
    /// The answer of `cuttle exec status`.
    Status(ScriptStatus),
    /// `cancel` or `complete` did its work; names the subcommand.
    Done(String),
    /// The answer of `cuttle exec packages`: the cached versions of one package.
    Packages(Vec<CachedPackage>),
    /// A package now in the cache (`package-add`, `package-apply-delta`).
    Package(CachedPackage),
    /// The delta signature of a cached package, base64.
    Signature(String),
    /// The command failed; nothing else follows.
    Error(ExecFailure),
}

impl ExecRecord {
    /// The `Signature` record of a delta signature.
    pub fn signature(signature: &[u8]) -> ExecRecord {
        use base64::Engine as _;
        ExecRecord::Signature(base64::engine::general_purpose::STANDARD.encode(signature))
    }

    /// The record as one line of JSON, newline included.
    pub fn to_line(&self) -> String {
        // Plain data with string keys: serializing cannot fail.
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }
}

/// The outcome of a foreground run (`cuttle_exec::ForegroundResult` as it reads back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecResult {
    pub ticket: String,
    pub state: ScriptState,
    pub exit_code: i32,
    #[serde(default)]
    pub output_variables: Vec<OutputVariable>,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    #[serde(default)]
    pub progress: Option<Progress>,
    #[serde(default)]
    pub failed_step_message: Option<String>,
}

/// Why a `cuttle exec` command failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecFailure {
    pub kind: ExecFailureKind,
    /// For people; never holds a variable's value.
    pub message: String,
}

/// The cases a caller of `cuttle exec` handles differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecFailureKind {
    /// The request (or a ticket id) is invalid: sending it again will not help.
    InvalidRequest,
    /// No such ticket under the root.
    UnknownTicket,
    /// The ticket still runs in another process, so it cannot be completed yet.
    StillRunning,
    /// Anything else: the executor's files, the root directory, standard input.
    Failed,
}

impl ExecFailure {
    pub fn new(kind: ExecFailureKind, message: impl Into<String>) -> ExecFailure {
        ExecFailure {
            kind,
            message: message.into(),
        }
    }
}

impl From<&ExecError> for ExecFailure {
    fn from(error: &ExecError) -> ExecFailure {
        let kind = match error {
            ExecError::InvalidTicket { .. } | ExecError::InvalidRequest(_) => {
                ExecFailureKind::InvalidRequest
            }
            ExecError::UnknownTicket(_) => ExecFailureKind::UnknownTicket,
            ExecError::StillRunning(_) => ExecFailureKind::StillRunning,
            _ => ExecFailureKind::Failed,
        };
        ExecFailure::new(kind, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use cuttle_exec::{ForegroundResult, LogLevel};

    use super::*;

    #[test]
    fn records_read_what_run_foreground_writes() {
        let result = ForegroundResult {
            ticket: "t-1".into(),
            state: ScriptState::Complete { exit_code: 3 },
            exit_code: 3,
            output_variables: vec![OutputVariable {
                name: "Out".into(),
                value: "v".into(),
                is_sensitive: false,
            }],
            artifacts: Vec::new(),
            progress: None,
            failed_step_message: Some("failed".into()),
        };
        // run_foreground writes {"Result": ForegroundResult}.
        let written = serde_json::json!({ "Result": result }).to_string();
        let ExecRecord::Result(read) = serde_json::from_str(&written).expect("parse") else {
            panic!("not a result: {written}");
        };
        assert_eq!(read.exit_code, 3);
        assert_eq!(read.state, ScriptState::Complete { exit_code: 3 });
        assert_eq!(read.output_variables[0].name, "Out");
        assert_eq!(read.failed_step_message.as_deref(), Some("failed"));

        let line = LogLine {
            sequence: 1,
            occurred_at: Utc::now(),
            level: LogLevel::Info,
            text: "hello".into(),
        };
        let written = serde_json::json!({ "Line": line }).to_string();
        assert_eq!(
            serde_json::from_str::<ExecRecord>(&written).expect("parse"),
            ExecRecord::Line(line)
        );
    }

    #[test]
    fn records_are_one_line_each() {
        let start = ExecRecord::Start(StartOutcome::AlreadyStarted).to_line();
        assert_eq!(start, "{\"Start\":\"AlreadyStarted\"}\n");
        let failure = ExecRecord::Error(ExecFailure::new(
            ExecFailureKind::UnknownTicket,
            "unknown\nticket",
        ))
        .to_line();
        assert_eq!(failure.matches('\n').count(), 1, "{failure}");
        assert_eq!(
            serde_json::from_str::<ExecRecord>(&failure).expect("parse"),
            ExecRecord::Error(ExecFailure::new(
                ExecFailureKind::UnknownTicket,
                "unknown\nticket"
            ))
        );
    }
}
