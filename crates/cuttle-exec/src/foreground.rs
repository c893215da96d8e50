//! `cuttle exec` in the foreground: run (or re-attach to) one ticket and stream its log to a
//! writer until it finishes. Meant for SSH targets, where the server runs `cuttle exec` over
//! the SSH session and reads its standard output, as Octopus runs Calamari.
//!
//! Output formats:
//! - [`ForegroundFormat::JsonLines`] (for the server): one JSON object per line,
//!   `{"Line": LogLine}` for each log line, then exactly one
//!   `{"Result": ForegroundResult}` with the final state, exit code, output variables
//!   (sensitive values included: the server needs them), artifacts, progress and failure
//!   message.
//! - [`ForegroundFormat::Text`] (for people): `LEVEL text` per line, then a summary with
//!   sensitive output values masked.
//!
//! Starting a ticket that exists re-attaches to it: its whole log is streamed again from disk
//! (or memory), so a server whose SSH session dropped can run the same command to catch up.
//! The ticket directory is kept (artifacts live there) until `complete`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use crate::error::ExecError;
use crate::executor::Executor;
use crate::masking::MASK;
use crate::request::ScriptRequest;
use crate::status::{
    Artifact, LogLine, OutputVariable, Progress, ScriptState, ScriptStatus, exit_codes,
};

/// How often the log is polled while nothing new arrives (lines become readable in batches,
/// every `crate::FLUSH_INTERVAL`; the end is noticed at once).
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What [`run_foreground`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForegroundFormat {
    JsonLines,
    Text,
}

/// The last record of the JSON Lines output.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ForegroundResult {
    pub ticket: String,
    pub state: ScriptState,
    /// The script's exit code, or one of [`exit_codes`] for other outcomes.
    pub exit_code: i32,
    pub output_variables: Vec<OutputVariable>,
    pub artifacts: Vec<Artifact>,
    pub progress: Option<Progress>,
    pub failed_step_message: Option<String>,
}

#[derive(Serialize)]
enum Record<'a> {
    Line(&'a LogLine),
    Result(&'a ForegroundResult),
}

/// Runs `request` with an executor rooted at `root`, writes its log to `output` as it comes,
/// and returns the final outcome. When `cancel` resolves the script is cancelled (and still
/// awaited, so its last lines are written). A process exit code must be 0–255: map negative
/// [`ForegroundResult::exit_code`]s as the caller sees fit.
pub async fn run_foreground<W: AsyncWrite + Unpin>(
    root: &Path,
    request: ScriptRequest,
    format: ForegroundFormat,
    output: &mut W,
    cancel: impl Future<Output = ()>,
) -> Result<ForegroundResult, ExecError> {
    let executor = Executor::open(root)?;
    let ticket = request.ticket.clone();
    executor.start(request).await?;
    let mut cancel = std::pin::pin!(cancel);
    let mut cancel_sent = false;
    let mut after_sequence = 0;
    loop {
        let status = executor.status(&ticket, after_sequence).await?;
        after_sequence = status.next_sequence;
        for line in &status.lines {
            write_line(output, format, line).await?;
        }
        if status.state.is_finished() && status.lines.is_empty() {
            let result = result_of(status);
            write_result(output, format, &result).await?;
            return Ok(result);
        }
        if !status.lines.is_empty() {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            // The end is reported at once rather than at the next poll: for a short script
            // that poll was most of the time `cuttle exec` took.
            waited = executor.wait(&ticket) => {
                if waited.is_err() {
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
            }
            () = &mut cancel, if !cancel_sent => {
                cancel_sent = true;
                executor.cancel(&ticket).await?;
            }
        }
    }
}

fn result_of(status: ScriptStatus) -> ForegroundResult {
    ForegroundResult {
        exit_code: status.state.exit_code().unwrap_or(exit_codes::FATAL),
        ticket: status.ticket,
        state: status.state,
        output_variables: status.output_variables,
        artifacts: status.artifacts,
        progress: status.progress,
        failed_step_message: status.failed_step_message,
    }
}

fn output_error(source: std::io::Error) -> ExecError {
    ExecError::Io {
        action: "write the output to",
        path: PathBuf::from("standard output"),
        source,
    }
}

async fn write_line<W: AsyncWrite + Unpin>(
    output: &mut W,
    format: ForegroundFormat,
    line: &LogLine,
) -> Result<(), ExecError> {
    let mut text = match format {
        ForegroundFormat::JsonLines => json(&Record::Line(line)),
        ForegroundFormat::Text => format!("{:<9} {}", format!("{:?}", line.level), line.text),
    };
    text.push('\n');
    output
        .write_all(text.as_bytes())
        .await
        .map_err(output_error)?;
    output.flush().await.map_err(output_error)
}

async fn write_result<W: AsyncWrite + Unpin>(
    output: &mut W,
    format: ForegroundFormat,
    result: &ForegroundResult,
) -> Result<(), ExecError> {
    let mut text = match format {
        ForegroundFormat::JsonLines => json(&Record::Result(result)),
        ForegroundFormat::Text => {
            let mut summary = format!("{:?} (exit code {})", result.state, result.exit_code);
            for variable in &result.output_variables {
                let value = if variable.is_sensitive {
                    MASK
                } else {
                    variable.value.as_str()
                };
                summary.push_str(&format!("\nOutput variable {} = {value}", variable.name));
            }
            for artifact in &result.artifacts {
                summary.push_str(&format!(
                    "\nArtifact {} at {} ({} bytes)",
                    artifact.name,
                    artifact.path.display(),
                    artifact.length
                ));
            }
            if let Some(message) = &result.failed_step_message {
                summary.push_str(&format!("\nFailed: {message}"));
            }
            summary
        }
    };
    text.push('\n');
    output
        .write_all(text.as_bytes())
        .await
        .map_err(output_error)?;
    output.flush().await.map_err(output_error)
}

fn json(record: &Record<'_>) -> String {
    // These records are plain data; serializing them cannot fail.
    serde_json::to_string(record).unwrap_or_default()
}
