//! Running one script on one target from a task, durably: start the ticket, copy its log into
//! the task log as it comes, and remember how far the copy got in the task's progress, so a
//! runner that resumes after a restart re-attaches to the same ticket and carries on from the
//! next line. The ticket protocol guarantees the script itself runs once.

use std::time::{Duration, Instant};

use cuttle_exec::{LogLevel, ScriptRequest, ScriptState, ScriptStatus};
use serde_json::json;

use crate::context::{LogCategory, TaskContext};
use crate::transport::{TargetAddress, Transport, TransportError};

/// How long a script's target may stay out of reach before the step fails.
const UNREACHABLE_LIMIT: Duration = Duration::from_secs(300);
/// The slowest status polling gets while a script is quiet.
const SLOWEST_POLL: Duration = Duration::from_millis(500);

/// How long to wait before the next status poll of a script quiet for `quiet_for`.
///
/// Most deployment scripts finish within a few milliseconds of their last line, so the first
/// 100 ms are polled every 2 ms (a status call is cheap: in-process for the built-in worker,
/// one multiplexed round trip for an agent); then every 10 ms up to a second, then backing off
/// to [`SLOWEST_POLL`] for scripts that stay quiet.
fn poll_delay_after(quiet_for: Duration) -> Duration {
    if quiet_for < Duration::from_millis(100) {
        Duration::from_millis(2)
    } else if quiet_for < Duration::from_secs(1) {
        Duration::from_millis(10)
    } else {
        (quiet_for / 4).min(SLOWEST_POLL)
    }
}

/// How a script run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOutcome {
    pub state: ScriptState,
    /// `fail_step` messages and the like.
    pub failure_message: Option<String>,
    /// How many warning and error lines the script wrote (in this run of the copy).
    pub warnings: usize,
    /// `set_octopusvariable` outputs. Sensitive ones are not kept in the task's progress, so
    /// a run resumed after the script finished has only the others.
    pub output_variables: Vec<cuttle_exec::OutputVariable>,
}

impl ScriptOutcome {
    pub fn succeeded(&self) -> bool {
        self.state == ScriptState::Complete { exit_code: 0 } && self.failure_message.is_none()
    }
}

fn category(level: LogLevel) -> LogCategory {
    match level {
        LogLevel::Verbose => LogCategory::Verbose,
        LogLevel::Info => LogCategory::Info,
        LogLevel::Highlight => LogCategory::Highlight,
        LogLevel::Wait => LogCategory::Wait,
        LogLevel::Warning => LogCategory::Warning,
        LogLevel::Error => LogCategory::Error,
    }
}

/// The progress entry of a ticket: `Scripts.<ticket>`.
fn script_progress(context: &TaskContext, ticket: &str) -> serde_json::Value {
    context.task().progress["Scripts"][ticket].clone()
}

async fn save_script_progress(context: &TaskContext, ticket: &str, entry: serde_json::Value) {
    let saved = context
        .update_progress(|progress| {
            if !progress["Scripts"].is_object() {
                progress["Scripts"] = json!({});
            }
            progress["Scripts"][ticket] = entry;
        })
        .await;
    if let Err(error) = saved {
        tracing::warn!(ticket, "failed to save script progress: {error}");
    }
}

/// Runs `request` on `target` through `transport` to its end, logging under `activity_id`.
pub async fn run_script(
    context: &TaskContext,
    transport: &dyn Transport,
    target: &TargetAddress,
    request: &ScriptRequest,
    activity_id: &str,
) -> Result<ScriptOutcome, TransportError> {
    let ticket = request.ticket.as_str();
    let saved = script_progress(context, ticket);
    if saved["Finished"].as_bool() == Some(true) {
        let state: ScriptState =
            serde_json::from_value(saved["State"].clone()).unwrap_or(ScriptState::Unknown);
        return Ok(ScriptOutcome {
            state,
            failure_message: saved["FailureMessage"].as_str().map(str::to_owned),
            warnings: usize::try_from(saved["Warnings"].as_u64().unwrap_or(0)).unwrap_or(0),
            output_variables: serde_json::from_value(saved["Outputs"].clone()).unwrap_or_default(),
        });
    }
    let mut after_sequence = saved["AfterSequence"].as_u64().unwrap_or(0);
    // Nothing is saved for the start itself: starting a ticket is idempotent, and a ticket
    // is completed (deleted) only after its end was saved, so a resumed task that finds no
    // entry may start it again without running the script twice.
    if !context.resumed() || saved.is_null() {
        transport.start_script(target, request).await?;
    }

    let mut warnings = usize::try_from(saved["Warnings"].as_u64().unwrap_or(0)).unwrap_or(0);
    let mut quiet_since = Instant::now();
    let mut unreachable_since: Option<Instant> = None;
    let mut cancel_sent = false;
    loop {
        if context.is_cancel_requested() && !cancel_sent {
            context.log(LogCategory::Info, activity_id, "Cancelling the script");
            if let Err(error) = transport.cancel_script(target, ticket).await {
                context.log(
                    LogCategory::Warning,
                    activity_id,
                    format!("Could not cancel the script: {error}"),
                );
            }
            cancel_sent = true;
        }
        let status = match transport
            .script_status(target, ticket, after_sequence)
            .await
        {
            Ok(status) => {
                if unreachable_since.take().is_some() {
                    context.log(
                        LogCategory::Info,
                        activity_id,
                        format!("Reconnected to {}", target.name),
                    );
                }
                status
            }
            Err(error @ TransportError::Unreachable { .. }) => {
                let since = *unreachable_since.get_or_insert_with(|| {
                    context.log(
                        LogCategory::Warning,
                        activity_id,
                        format!(
                            "Lost contact with {}; the script keeps running there: {error}",
                            target.name
                        ),
                    );
                    Instant::now()
                });
                if since.elapsed() > UNREACHABLE_LIMIT {
                    return Err(error);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        let ScriptStatus {
            state,
            lines,
            failed_step_message,
            output_variables,
            ..
        } = status;
        let had_lines = !lines.is_empty();
        // Every transport answers a finished ticket with all its remaining lines, a page of
        // at most MAX_LINES_PER_STATUS at a time: a short page means nothing is left.
        let drained = lines.len() < cuttle_exec::MAX_LINES_PER_STATUS;
        for line in lines {
            after_sequence = after_sequence.max(line.sequence);
            if matches!(line.level, LogLevel::Warning | LogLevel::Error) {
                warnings += 1;
            }
            context.log(category(line.level), activity_id, line.text);
        }
        // A finished ticket may still hold lines beyond one status's worth: keep copying until
        // a page comes back short, so the end of a chatty script's log is never dropped.
        if state.is_finished() && drained {
            context.log(
                LogCategory::Verbose,
                activity_id,
                match state.exit_code() {
                    Some(code) => format!("The script finished with exit code {code}"),
                    None => "The script finished".to_owned(),
                },
            );
            save_script_progress(
                context,
                ticket,
                json!({
                    "AfterSequence": after_sequence,
                    "Finished": true,
                    "State": state,
                    "FailureMessage": failed_step_message,
                    "Warnings": warnings,
                    "Outputs": output_variables
                        .iter()
                        .filter(|output| !output.is_sensitive)
                        .collect::<Vec<_>>(),
                }),
            )
            .await;
            if let Err(error) = transport.complete_script(target, ticket).await {
                tracing::debug!(ticket, "failed to clean up a finished ticket: {error}");
            }
            return Ok(ScriptOutcome {
                state,
                failure_message: failed_step_message,
                warnings,
                output_variables,
            });
        }
        if had_lines {
            // Keep the copy position durable, after the lines themselves.
            save_script_progress(
                context,
                ticket,
                json!({ "AfterSequence": after_sequence, "Warnings": warnings }),
            )
            .await;
            quiet_since = Instant::now();
        }
        tokio::select! {
            () = tokio::time::sleep(poll_delay_after(quiet_since.elapsed())) => {}
            () = context.cancellation(), if !cancel_sent => {}
        }
    }
}
