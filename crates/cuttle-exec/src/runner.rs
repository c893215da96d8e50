//! The runner: one task per ticket that takes the isolation mutex, starts the script, turns
//! its output into masked log lines and reported facts, enforces cancel and timeout, and
//! records the outcome.
//!
//! Order matters for the guarantees in [`crate::executor`]: `Running` is written before the
//! process is spawned; a log line is written to the file before it is visible in memory, and
//! served only once fsynced (script output in batches every [`FLUSH_INTERVAL`], the
//! executor's own notes at once); the final state is written before the owner lock is
//! released. Cancel and timeout send SIGTERM to the script's process group, SIGKILL after the
//! grace period, and SIGKILL again once the script's own process has exited, so nothing the
//! script started in its group survives. A script that simply exits leaves its background
//! processes alone, as Octopus does.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use cuttle_secrets::MasterKey;
use tokio::time::Instant;

use crate::bootstrap::Launch;
use crate::error::ExecError;
use crate::executor::{ExecutorOptions, LiveTicket, lock};
use crate::isolation::{self, AcquireError};
use crate::journal::{self, LOG_FILE, LogWriter, PersistedState};
use crate::masking::Masker;
use crate::output::{Effect, OutputInterpreter, Stream};
use crate::package_deployment;
use crate::process::{self, GroupSignal, LineReader};
use crate::request::{ScriptRequest, ScriptSyntax};
use crate::status::{
    Artifact, LogLevel, LogLine, OutputVariable, Progress, ScriptState, exit_codes,
};
use crate::variables::{self, TicketKey};

/// How often a running ticket's new log lines are fsynced. Lines are served once synced, so
/// this is also the most a line waits before `status` returns it.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Writes a running ticket's log and state, to memory and to disk.
pub(crate) struct Recorder {
    pub(crate) live: Arc<LiveTicket>,
    pub(crate) persisted: PersistedState,
    pub(crate) log: LogWriter,
    pub(crate) masker: Masker,
    pub(crate) at_rest_key: Arc<MasterKey>,
    pub(crate) next_sequence: u64,
    /// `state.json` is behind memory (progress is written lazily, at the next flush).
    pub(crate) state_dirty: bool,
    pub(crate) disk_error_reported: bool,
}

impl Recorder {
    fn log(&mut self, level: LogLevel, text: &str) {
        let line = LogLine {
            sequence: self.next_sequence,
            occurred_at: Utc::now(),
            level,
            text: self.masker.mask(text),
        };
        self.next_sequence += 1;
        let written = self.log.append(&line);
        lock(&self.live.data).lines.push(line);
        if let Err(error) = written {
            self.report_disk_error(&error);
        }
    }

    /// Logs a line of the executor's own (rare) and makes it durable at once, so it is served
    /// without waiting for the next batch.
    pub(crate) fn note(&mut self, level: LogLevel, text: &str) {
        self.log(level, text);
        if let Err(error) = self.log.sync() {
            self.report_disk_error(&error);
        }
        self.mark_durable(self.next_sequence - 1);
    }

    fn mark_durable(&self, sequence: u64) {
        let mut data = lock(&self.live.data);
        data.durable_sequence = data.durable_sequence.max(sequence);
    }

    /// Tells the reader (once) that the log on disk is incomplete; memory still has it all.
    fn report_disk_error(&mut self, error: &ExecError) {
        if self.disk_error_reported {
            return;
        }
        self.disk_error_reported = true;
        let line = LogLine {
            sequence: self.next_sequence,
            occurred_at: Utc::now(),
            level: LogLevel::Warning,
            text: format!("The executor could not save this log to disk: {error}"),
        };
        self.next_sequence += 1;
        lock(&self.live.data).lines.push(line);
    }

    fn save_state(&mut self) {
        self.state_dirty = false;
        if let Err(error) = journal::write_state(&self.live.directory, &self.persisted) {
            self.report_disk_error(&error);
        }
    }

    fn set_state(&mut self, state: ScriptState) {
        self.persisted.state = state;
        match state {
            ScriptState::Running => self.persisted.started_at = Some(Utc::now()),
            state if state.is_finished() => self.persisted.completed_at = Some(Utc::now()),
            _ => {}
        }
        lock(&self.live.data).state = Some(state);
        self.save_state();
    }

    fn apply(&mut self, effect: Effect, workspace: &Path) {
        match effect {
            Effect::Log { level, text } => self.log(level, &text),
            Effect::Mask(value) => self.masker.add(&value),
            Effect::SetVariable {
                name,
                value,
                is_sensitive,
            } => {
                let variables = {
                    let mut data = lock(&self.live.data);
                    data.output_variables
                        .retain(|variable| !variable.name.eq_ignore_ascii_case(&name));
                    data.output_variables.push(OutputVariable {
                        name,
                        value,
                        is_sensitive,
                    });
                    data.output_variables.clone()
                };
                self.persisted
                    .set_output_variables(&variables, &self.at_rest_key);
                self.save_state();
            }
            Effect::Artifact { path, name, length } => {
                let path = workspace.join(path);
                let name = name.unwrap_or_else(|| {
                    path.file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default()
                });
                let artifact = Artifact {
                    name,
                    path,
                    length: length.unwrap_or(0),
                };
                lock(&self.live.data).artifacts.push(artifact.clone());
                self.persisted.artifacts.push(artifact);
                self.save_state();
            }
            Effect::Progress {
                percentage,
                message,
            } => {
                let progress = Progress {
                    percentage,
                    message: self.masker.mask(&message),
                };
                lock(&self.live.data).progress = Some(progress.clone());
                self.persisted.progress = Some(progress);
                self.state_dirty = true;
            }
            Effect::FailStep { message } => {
                let message = self.masker.mask(&message);
                lock(&self.live.data).failed_step_message = Some(message.clone());
                self.persisted.failed_step_message = Some(message);
                self.save_state();
            }
        }
    }

    /// Fsyncs new log lines (off the async threads) and writes a lazily updated state.
    async fn flush(&mut self) {
        let written = self.next_sequence - 1;
        if let Some(file) = self.log.take_unsynced() {
            let synced = tokio::task::spawn_blocking(move || file.sync_data()).await;
            if let Ok(Err(error)) = synced {
                self.report_disk_error(&ExecError::Io {
                    action: "sync",
                    path: self.live.directory.join(LOG_FILE),
                    source: error,
                });
            }
        }
        // After a failed sync the lines are served anyway: memory is all there is.
        self.mark_durable(written);
        if self.state_dirty {
            self.save_state();
        }
    }

    /// Records the final state durably and wakes everyone waiting for it.
    pub(crate) async fn finish(mut self, state: ScriptState) {
        self.flush().await;
        if let Err(error) = self.log.sync() {
            self.report_disk_error(&error);
        }
        self.mark_durable(self.next_sequence - 1);
        self.set_state(state);
        self.live.finished.send_replace(true);
    }
}

/// Everything the runner task owns.
pub(crate) struct RunContext {
    pub(crate) recorder: Recorder,
    pub(crate) request: Arc<ScriptRequest>,
    pub(crate) launch: Launch,
    pub(crate) key: TicketKey,
    pub(crate) workspace: PathBuf,
    pub(crate) variables_path: PathBuf,
    pub(crate) locks_directory: PathBuf,
    pub(crate) options: ExecutorOptions,
    /// Held until the runner ends: tells other executors this ticket is alive.
    pub(crate) owner_lock: std::fs::File,
}

/// Why a running script is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Cancelled,
    TimedOut,
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The runner: mutex, launch, output, outcome.
pub(crate) async fn run(context: RunContext) {
    let RunContext {
        mut recorder,
        request,
        launch,
        key,
        workspace,
        variables_path,
        locks_directory,
        options,
        owner_lock,
    } = context;
    let mut cancel = recorder.live.cancel.subscribe();

    let acquired = isolation::acquire(
        &locks_directory,
        request.mutex_name(),
        request.isolation,
        request.isolation_mutex_timeout,
        &mut cancel,
        |message| recorder.note(LogLevel::Info, &message),
    )
    .await;
    let mutex_guard = match acquired {
        Ok(guard) => guard,
        Err(AcquireError::Cancelled) => {
            recorder.note(
                LogLevel::Info,
                "The script was cancelled before it started; it was not run",
            );
            recorder.finish(ScriptState::Cancelled).await;
            return;
        }
        Err(AcquireError::TimedOut) => {
            recorder.note(
                LogLevel::Error,
                &format!(
                    "The script isolation mutex '{}' was not acquired within {}; the script was not run",
                    request.mutex_name(),
                    describe(request.isolation_mutex_timeout.unwrap_or_default())
                ),
            );
            recorder
                .finish(ScriptState::Complete {
                    exit_code: exit_codes::ISOLATION_MUTEX_TIMEOUT,
                })
                .await;
            return;
        }
        Err(AcquireError::Failed(error)) => {
            recorder.note(
                LogLevel::Error,
                &format!("The script isolation mutex could not be used: {error}"),
            );
            recorder
                .finish(ScriptState::Complete {
                    exit_code: exit_codes::FATAL,
                })
                .await;
            return;
        }
    };

    let preamble = match variables::read_file(&variables_path, &request.ticket, &key) {
        Ok(plain) => match &request.package_deployment {
            Some(deployment) => package_deployment::runner_input(deployment, &plain),
            None => plain.preamble(request.syntax),
        },
        Err(error) => {
            recorder.note(
                LogLevel::Error,
                &format!("The script's variables could not be read: {error}"),
            );
            recorder
                .finish(ScriptState::Complete {
                    exit_code: exit_codes::FATAL,
                })
                .await;
            return;
        }
    };
    drop(key);

    // `Running` is on disk before the process exists: `Pending` on disk proves it never ran.
    recorder.set_state(ScriptState::Running);
    let environment = process::Environment {
        removed_prefixes: options.removed_environment_prefixes.clone(),
        added: options.environment.clone(),
    };
    let mut child = match process::spawn(&launch, &workspace, &environment) {
        Ok(child) => child,
        Err(error) => {
            recorder.note(
                LogLevel::Error,
                &format!(
                    "Could not start {} for this {} script: {error}",
                    launch.program.to_string_lossy(),
                    syntax_name(request.syntax)
                ),
            );
            recorder
                .finish(ScriptState::Complete {
                    exit_code: exit_codes::FATAL,
                })
                .await;
            return;
        }
    };
    let process_id = child.id().unwrap_or_default();
    recorder.persisted.process_id = Some(process_id);
    recorder.save_state();

    if let Some(mut stdin) = child.stdin.take() {
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            // A script that exits before reading its variables closes the pipe: not an error.
            let _written = stdin.write_all(preamble.as_bytes()).await;
            drop(preamble);
        });
    }
    let mut stdout = child.stdout.take().map(LineReader::new);
    let mut stderr = child.stderr.take().map(LineReader::new);
    let mut interpreter = OutputInterpreter::default();
    let mut flush = tokio::time::interval(FLUSH_INTERVAL);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let deadline = request.timeout.map(|timeout| Instant::now() + timeout);
    let mut stop_reason: Option<StopReason> = None;
    let mut kill_at: Option<Instant> = None;
    let mut exit: Option<std::io::Result<ExitStatus>> = None;
    let mut drain_until: Option<Instant> = None;

    loop {
        if exit.is_some() && stdout.is_none() && stderr.is_none() {
            break;
        }
        tokio::select! {
            line = next_line(&mut stdout), if stdout.is_some() => match line {
                Some(line) => {
                    for effect in interpreter.interpret(Stream::Stdout, &line) {
                        recorder.apply(effect, &workspace);
                    }
                }
                None => stdout = None,
            },
            line = next_line(&mut stderr), if stderr.is_some() => match line {
                Some(line) => {
                    for effect in interpreter.interpret(Stream::Stderr, &line) {
                        recorder.apply(effect, &workspace);
                    }
                }
                None => stderr = None,
            },
            status = child.wait(), if exit.is_none() => {
                exit = Some(status);
                drain_until = Some(Instant::now() + options.output_drain);
                if stop_reason.is_some() {
                    // Whatever the script left behind goes too.
                    stop_group(&mut child, process_id, GroupSignal::Kill);
                    kill_at = None;
                }
            },
            () = isolation::cancelled(&mut cancel), if stop_reason.is_none() => {
                stop_reason = Some(StopReason::Cancelled);
                recorder.note(LogLevel::Info, "Cancelling the script: stopping its processes");
                stop_group(&mut child, process_id, GroupSignal::Terminate);
                kill_at = Some(Instant::now() + options.kill_grace);
            },
            () = sleep_until(deadline), if deadline.is_some() && stop_reason.is_none() && exit.is_none() => {
                stop_reason = Some(StopReason::TimedOut);
                recorder.note(
                    LogLevel::Error,
                    &format!(
                        "The script did not finish within {}: stopping its processes",
                        describe(request.timeout.unwrap_or_default())
                    ),
                );
                stop_group(&mut child, process_id, GroupSignal::Terminate);
                kill_at = Some(Instant::now() + options.kill_grace);
            },
            () = sleep_until(kill_at), if kill_at.is_some() => {
                stop_group(&mut child, process_id, GroupSignal::Kill);
                kill_at = None;
            },
            () = sleep_until(drain_until), if drain_until.is_some() => {
                recorder.note(
                    LogLevel::Verbose,
                    "The script exited but processes it started still hold its output open; they were left running and their output is no longer collected",
                );
                break;
            },
            _ = flush.tick() => recorder.flush().await,
        }
    }
    drop(mutex_guard);

    let state = match (stop_reason, exit) {
        (Some(StopReason::Cancelled), _) => ScriptState::Cancelled,
        (Some(StopReason::TimedOut), _) => ScriptState::TimedOut,
        (None, Some(Ok(status))) => ScriptState::Complete {
            exit_code: exit_code(status),
        },
        (None, Some(Err(error))) => {
            recorder.note(
                LogLevel::Error,
                &format!("The script's exit status could not be read: {error}"),
            );
            ScriptState::Complete {
                exit_code: exit_codes::FATAL,
            }
        }
        (None, None) => ScriptState::Complete {
            exit_code: exit_codes::FATAL,
        },
    };
    match state {
        ScriptState::Cancelled => recorder.note(LogLevel::Info, "The script was cancelled"),
        ScriptState::TimedOut => recorder.note(LogLevel::Error, "The script timed out"),
        _ => {}
    }
    recorder.finish(state).await;
    drop(owner_lock);
}

async fn next_line<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut Option<LineReader<R>>,
) -> Option<String> {
    match reader {
        Some(reader) => reader.next_line().await,
        None => std::future::pending().await,
    }
}

/// Signals the script's process group; where there are no groups, kills the process itself.
fn stop_group(child: &mut tokio::process::Child, process_id: u32, signal: GroupSignal) {
    if cfg!(unix) && process_id != 0 {
        // Nothing useful to do if signalling fails: the group is gone or not ours.
        let _signalled = process::signal_group(process_id, signal);
    } else {
        let _killed = child.start_kill();
    }
}

/// The exit code of a finished process; a process killed by signal N gives 128 + N, as shells
/// report it.
fn exit_code(status: ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    exit_codes::FATAL
}

fn describe(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

fn syntax_name(syntax: ScriptSyntax) -> &'static str {
    match syntax {
        ScriptSyntax::Bash => "bash",
        ScriptSyntax::Sh => "sh",
        ScriptSyntax::Python => "Python",
        ScriptSyntax::PowerShell => "PowerShell",
    }
}
