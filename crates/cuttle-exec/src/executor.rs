//! The executor: tickets under one root directory, each run at most once.
//!
//! [`Executor::start`] prepares a new ticket in `<root>/staging/` (state, owner lock, workspace,
//! encrypted variables, bootstrap) and renames it to `<root>/tickets/<ticket>/`. The rename
//! fails when the ticket exists, so a ticket is run at most once even across processes and
//! restarts, and it appears complete; a second start answers
//! [`StartOutcome::AlreadyStarted`]. (After [`Executor::complete`] deleted it, the ticket id
//! is free again: callers must not reuse ticket ids.) A runner task (module `runner`) then
//! waits for the isolation mutex (state `Pending`), writes `Running` to `state.json` *before*
//! it spawns the process (so `Pending` on disk proves the script never started), streams
//! output through [`crate::output`] and the masker into the log, and records the outcome.
//!
//! The runner holds an exclusive `flock` on the ticket's `owner.lock` for the ticket's whole
//! life. That is how any executor (this process after a restart, or another process on the
//! same root) tells a live ticket from an abandoned one: a ticket that is `Pending` or
//! `Running` on disk while nobody holds its lock was left by an executor that died, and is
//! marked `Unknown` (it was running: never run again) or `Cancelled` (it never started), with
//! a log line saying so. That repair happens in [`Executor::open`] and whenever such a ticket
//! is looked at.
//!
//! Lines of tickets this executor runs are served from memory until [`Executor::complete`];
//! other tickets (finished before a restart, or run by another process) are read from disk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::Utc;
use cuttle_secrets::MasterKey;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bootstrap::{self, Launch};
use crate::error::ExecError;
use crate::isolation;
use crate::journal::{
    self, LogWriter, OWNER_LOCK_FILE, PersistedState, VARIABLES_FILE, WORKSPACE_DIRECTORY,
};
use crate::masking::Masker;
use crate::request::{Isolation, ScriptRequest, validate_ticket};
use crate::runner::{Recorder, RunContext, run};
use crate::status::{
    Artifact, LogLevel, LogLine, OutputVariable, Progress, ScriptState, ScriptStatus, StartOutcome,
    exit_codes,
};
use crate::variables::{self, PlainVariables, TicketKey};

/// The most log lines one [`Executor::status`] answer carries; ask again for the rest.
pub const MAX_LINES_PER_STATUS: usize = 5_000;

/// Settings for an [`Executor`]; [`ExecutorOptions::default`] suits the agent.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// After SIGTERM (cancel, timeout), how long the process group has before SIGKILL.
    pub kill_grace: Duration,
    /// After the script's own process exits, how long to keep reading output that background
    /// processes it left behind still write to the same pipes. They are not killed.
    pub output_drain: Duration,
    /// Environment variables of the executor whose names start with one of these are not
    /// passed to scripts. The default, `CUTTLE_`, keeps the server's master key and database
    /// URL out of scripts run by the built-in worker.
    pub removed_environment_prefixes: Vec<String>,
    /// Environment variables added to every script's environment.
    pub environment: Vec<(String, String)>,
    /// The program that carries out package deployments; `None` refuses them (the ticket
    /// fails with a log line saying so).
    pub package_runner: Option<PackageRunner>,
}

/// How the executor starts the conventions runner of a package deployment: `program`,
/// `arguments`, then `--executor-root ROOT --ticket-directory DIRECTORY`. The runner reads the
/// deployment and the variables on its standard input (see
/// [`crate::package_deployment::run_conventions_process`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRunner {
    pub program: PathBuf,
    pub arguments: Vec<std::ffi::OsString>,
}

impl PackageRunner {
    /// This process's own executable with the `exec-package` subcommand: what the `cuttle`
    /// binary (agent, server, `cuttle exec`) uses. `None` when the executable cannot be found.
    pub fn this_executable() -> Option<PackageRunner> {
        std::env::current_exe().ok().map(|program| PackageRunner {
            program,
            arguments: vec!["exec-package".into()],
        })
    }
}

impl Default for ExecutorOptions {
    fn default() -> ExecutorOptions {
        ExecutorOptions {
            kill_grace: Duration::from_secs(3),
            output_drain: Duration::from_secs(2),
            removed_environment_prefixes: vec!["CUTTLE_".to_owned()],
            environment: Vec::new(),
            package_runner: PackageRunner::this_executable(),
        }
    }
}

/// Runs scripts for tickets under one root directory. Cheap to clone; every clone is the same
/// executor. Dropping the last clone stops *watching* running scripts (they keep running and
/// are reported `Unknown` by the next executor), as if the process had died.
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    tickets_directory: PathBuf,
    staging_directory: PathBuf,
    locks_directory: PathBuf,
    at_rest_key: Arc<MasterKey>,
    options: ExecutorOptions,
    live: Mutex<HashMap<String, Arc<LiveTicket>>>,
    runners: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for runner in lock(&self.runners).drain(..) {
            runner.abort();
        }
    }
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Executor")
            .field("root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

/// A ticket this executor runs: what `status` reads, and how to cancel or await it.
pub(crate) struct LiveTicket {
    pub(crate) directory: PathBuf,
    pub(crate) data: Mutex<TicketData>,
    pub(crate) cancel: watch::Sender<bool>,
    pub(crate) finished: watch::Sender<bool>,
}

#[derive(Default)]
pub(crate) struct TicketData {
    pub(crate) state: Option<ScriptState>,
    pub(crate) lines: Vec<LogLine>,
    /// Lines up to this sequence are fsynced; only those are served while the ticket runs,
    /// so every line a caller has seen survives even a power loss.
    pub(crate) durable_sequence: u64,
    /// Lines up to this sequence were dropped from `lines` once a caller confirmed it holds
    /// them (by asking for lines after them); a caller asking from further back is answered
    /// from the journal on disk. Keeps a chatty script's log out of memory.
    pub(crate) forgotten_through: u64,
    pub(crate) output_variables: Vec<OutputVariable>,
    pub(crate) artifacts: Vec<Artifact>,
    pub(crate) progress: Option<Progress>,
    pub(crate) failed_step_message: Option<String>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Executor {
    /// Opens (creating) the executor's root with default options.
    pub fn open(root: &Path) -> Result<Executor, ExecError> {
        Executor::open_with(root, ExecutorOptions::default())
    }

    /// Opens (creating) the executor's root: loads or creates the at-rest key (`master.key`,
    /// mode 0600) and marks tickets left `Pending`/`Running` by a dead executor.
    pub fn open_with(root: &Path, options: ExecutorOptions) -> Result<Executor, ExecError> {
        std::fs::create_dir_all(root).map_err(ExecError::io("create", root))?;
        // Scripts run in their own working directories, so every path handed to them must be
        // absolute: a relative root (the default `./cuttle-data/worker`) would not resolve there.
        let root = &std::fs::canonicalize(root).map_err(ExecError::io("resolve", root))?;
        let tickets_directory = root.join("tickets");
        let staging_directory = root.join("staging");
        let locks_directory = root.join("locks");
        for directory in [&tickets_directory, &staging_directory, &locks_directory] {
            std::fs::create_dir_all(directory).map_err(ExecError::io("create", directory))?;
        }
        let (at_rest_key, _) = MasterKey::load_or_create(None, root)?;
        clean_staging(&staging_directory);
        let entries = std::fs::read_dir(&tickets_directory)
            .map_err(ExecError::io("list", &tickets_directory))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                repair_if_abandoned(&path)?;
            }
        }
        Ok(Executor {
            inner: Arc::new(Inner {
                root: root.to_owned(),
                tickets_directory,
                staging_directory,
                locks_directory,
                at_rest_key: Arc::new(at_rest_key),
                options,
                live: Mutex::new(HashMap::new()),
                runners: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    fn ticket_directory(&self, ticket: &str) -> PathBuf {
        self.inner.tickets_directory.join(ticket)
    }

    /// The directory a ticket's script runs in (its files are staged there).
    pub fn workspace(&self, ticket: &str) -> Result<PathBuf, ExecError> {
        validate_ticket(ticket)?;
        Ok(self.ticket_directory(ticket).join(WORKSPACE_DIRECTORY))
    }

    /// Starts the ticket's script unless the ticket exists already. Returns once the script is
    /// pending or running. Request errors are `Err`; a failure while preparing the ticket
    /// (a staged file missing, a disk error) finishes the ticket with exit code
    /// [`exit_codes::FATAL`] and a log line, so every later call sees the same outcome.
    pub async fn start(&self, request: ScriptRequest) -> Result<StartOutcome, ExecError> {
        request.validate()?;
        // In a task of its own, so a caller that stops waiting (an RPC timeout) cannot leave a
        // ticket half-registered: the start always runs to its end.
        let inner = Arc::clone(&self.inner);
        let ticket = request.ticket.clone();
        tokio::spawn(start_ticket(inner, request))
            .await
            .map_err(|error| ExecError::Io {
                action: "start",
                path: self.ticket_directory(&ticket),
                source: std::io::Error::other(error.to_string()),
            })?
    }

    /// The ticket's state and its log lines with a sequence above `after_sequence` (0 for all).
    pub async fn status(
        &self,
        ticket: &str,
        after_sequence: u64,
    ) -> Result<ScriptStatus, ExecError> {
        validate_ticket(ticket)?;
        let live = lock(&self.inner.live).get(ticket).cloned();
        if let Some(live) = live {
            // Answered from memory, or (for a caller re-reading dropped lines) a status
            // without lines to fill from the journal once the lock is released.
            let (status, served_through) = {
                let mut data = lock(&live.data);
                let state = data.state.unwrap_or(ScriptState::Pending);
                let finished = state.is_finished();
                if after_sequence < data.forgotten_through {
                    let status = ScriptStatus {
                        ticket: ticket.to_owned(),
                        state,
                        lines: Vec::new(),
                        next_sequence: after_sequence,
                        output_variables: data.output_variables.clone(),
                        artifacts: data.artifacts.clone(),
                        progress: data.progress.clone(),
                        failed_step_message: data.failed_step_message.clone(),
                    };
                    let served_through = if finished {
                        u64::MAX
                    } else {
                        data.durable_sequence
                    };
                    (status, Some(served_through))
                } else {
                    // The caller holds every line up to `after_sequence` (served lines are
                    // durable), so memory keeps only the rest.
                    let confirmed = if finished {
                        after_sequence
                    } else {
                        after_sequence.min(data.durable_sequence)
                    };
                    if confirmed > data.forgotten_through {
                        let first_kept = data
                            .lines
                            .partition_point(|line| line.sequence <= confirmed);
                        data.lines.drain(..first_kept);
                        data.forgotten_through = confirmed;
                    }
                    let served = if finished {
                        data.lines.len()
                    } else {
                        data.lines
                            .partition_point(|line| line.sequence <= data.durable_sequence)
                    };
                    let status = build_status(
                        ticket,
                        state,
                        &data.lines[..served],
                        after_sequence,
                        data.output_variables.clone(),
                        data.artifacts.clone(),
                        data.progress.clone(),
                        data.failed_step_message.clone(),
                    );
                    (status, None)
                }
            };
            return match served_through {
                None => Ok(status),
                Some(served_through) => {
                    self.status_from_journal(&live.directory, status, served_through)
                        .await
                }
            };
        }
        let directory = self.ticket_directory(ticket);
        let key = Arc::clone(&self.inner.at_rest_key);
        let ticket = ticket.to_owned();
        tokio::task::spawn_blocking(move || load_status(&directory, &ticket, after_sequence, &key))
            .await
            .map_err(|error| ExecError::Io {
                action: "read the status of",
                path: self.inner.tickets_directory.clone(),
                source: std::io::Error::other(error.to_string()),
            })?
    }

    /// Fills `status` with the lines after its `next_sequence` (and at most `served_through`)
    /// read from the ticket's journal: for a caller re-reading lines already dropped from
    /// memory, such as a restarted server.
    async fn status_from_journal(
        &self,
        directory: &Path,
        mut status: ScriptStatus,
        served_through: u64,
    ) -> Result<ScriptStatus, ExecError> {
        let directory = directory.to_owned();
        let after_sequence = status.next_sequence;
        let lines = tokio::task::spawn_blocking(move || journal::read_log(&directory))
            .await
            .map_err(|error| ExecError::Io {
                action: "read the log of",
                path: self.inner.tickets_directory.clone(),
                source: std::io::Error::other(error.to_string()),
            })??;
        let first = lines.partition_point(|line| line.sequence <= after_sequence);
        status.lines = lines[first..]
            .iter()
            .take_while(|line| line.sequence <= served_through)
            .take(MAX_LINES_PER_STATUS)
            .cloned()
            .collect();
        status.next_sequence = status
            .lines
            .last()
            .map_or(after_sequence, |line| line.sequence);
        Ok(status)
    }

    /// Asks the ticket's script to stop: while pending it never starts; while running its whole
    /// process group gets SIGTERM, then SIGKILL after the grace period. Returns at once; the
    /// state becomes `Cancelled` when the processes are gone (see [`Executor::wait`]).
    /// Cancelling a finished ticket does nothing.
    pub async fn cancel(&self, ticket: &str) -> Result<(), ExecError> {
        validate_ticket(ticket)?;
        let live = lock(&self.inner.live).get(ticket).cloned();
        if let Some(live) = live {
            live.cancel.send_replace(true);
            return Ok(());
        }
        let state = self.status(ticket, u64::MAX).await?.state;
        if state.is_finished() {
            Ok(())
        } else {
            Err(ExecError::StillRunning(ticket.to_owned()))
        }
    }

    /// Waits until the ticket is finished and returns its final state (a ticket run by another
    /// process is polled on disk).
    pub async fn wait(&self, ticket: &str) -> Result<ScriptState, ExecError> {
        validate_ticket(ticket)?;
        let live = lock(&self.inner.live).get(ticket).cloned();
        if let Some(live) = live {
            let mut finished = live.finished.subscribe();
            // The sender lives in `live`, which we hold, so this cannot fail.
            let _finished = finished.wait_for(|finished| *finished).await;
            if let Some(state) = lock(&live.data).state.filter(|state| state.is_finished()) {
                return Ok(state);
            }
            // A start that lost the race for this ticket: the ticket is someone else's.
        }
        // Run by another process (or finished before a restart): watch it on disk.
        loop {
            let state = self.status(ticket, u64::MAX).await?.state;
            if state.is_finished() {
                return Ok(state);
            }
            tokio::time::sleep(DISK_POLL_INTERVAL).await;
        }
    }

    /// Deletes the ticket's directory (workspace, log, state). A ticket still running here is
    /// cancelled and awaited first; one running in another process is refused. Completing an
    /// unknown ticket does nothing.
    pub async fn complete(&self, ticket: &str) -> Result<(), ExecError> {
        validate_ticket(ticket)?;
        let live = lock(&self.inner.live).get(ticket).cloned();
        if let Some(live) = &live {
            live.cancel.send_replace(true);
            self.wait(ticket).await?;
        }
        let directory = self.ticket_directory(ticket);
        if live.is_none() {
            match self.status(ticket, u64::MAX).await {
                Ok(status) if !status.state.is_finished() => {
                    return Err(ExecError::StillRunning(ticket.to_owned()));
                }
                Err(ExecError::UnknownTicket(_)) => return Ok(()),
                _ => {}
            }
        }
        lock(&self.inner.live).remove(ticket);
        let remove_directory = directory.clone();
        let removed =
            tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&remove_directory))
                .await
                .map_err(|error| ExecError::Io {
                    action: "remove",
                    path: directory.clone(),
                    source: std::io::Error::other(error.to_string()),
                })?;
        match removed {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(ExecError::io("remove", &directory)(error)),
        }
    }

    /// Stops watching every script this executor runs, without killing them, and returns once
    /// the watchers are gone (their locks released), as if the process had died. A later
    /// executor reports those tickets `Unknown`. Every clone of this executor is affected.
    pub async fn detach(self) {
        let runners: Vec<JoinHandle<()>> = lock(&self.inner.runners).drain(..).collect();
        for runner in runners {
            runner.abort();
            let _aborted = runner.await;
        }
        lock(&self.inner.live).clear();
    }
}

/// [`Executor::start`]'s work.
async fn start_ticket(
    inner: Arc<Inner>,
    request: ScriptRequest,
) -> Result<StartOutcome, ExecError> {
    let ticket = request.ticket.clone();
    let directory = inner.tickets_directory.join(&ticket);
    let live = Arc::new(LiveTicket {
        directory: directory.clone(),
        data: Mutex::new(TicketData {
            state: Some(ScriptState::Pending),
            ..TicketData::default()
        }),
        cancel: watch::channel(false).0,
        finished: watch::channel(false).0,
    });
    {
        // Registered before preparing, so `status` answers `Pending` meanwhile.
        let mut tickets = lock(&inner.live);
        if tickets.contains_key(&ticket) || directory.exists() {
            return Ok(StartOutcome::AlreadyStarted);
        }
        tickets.insert(ticket.clone(), Arc::clone(&live));
    }
    let request = Arc::new(request);
    let prepare_request = Arc::clone(&request);
    let staging_directory = inner.staging_directory.clone();
    let prepare_directory = directory.clone();
    let package_runner = inner.options.package_runner.clone();
    let root = inner.root.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        let launcher = Launcher {
            executor_root: &root,
            package_runner: package_runner.as_ref(),
        };
        prepare(
            &staging_directory,
            &prepare_directory,
            &prepare_request,
            &launcher,
        )
    })
    .await;
    let prepared = match prepared {
        Ok(Ok(Some(prepared))) => prepared,
        other => {
            lock(&inner.live).remove(&ticket);
            live.finished.send_replace(true);
            return match other {
                Ok(Ok(_)) => Ok(StartOutcome::AlreadyStarted),
                Ok(Err(error)) => Err(error),
                Err(error) => Err(ExecError::Io {
                    action: "prepare",
                    path: directory,
                    source: std::io::Error::other(error.to_string()),
                }),
            };
        }
    };

    let mut recorder = Recorder {
        live: Arc::clone(&live),
        persisted: prepared.persisted,
        log: prepared.log,
        masker: Masker::new(
            request
                .variables
                .iter()
                .filter(|variable| variable.is_sensitive)
                .map(|variable| variable.value.as_str()),
        ),
        at_rest_key: Arc::clone(&inner.at_rest_key),
        next_sequence: 1,
        state_dirty: false,
        disk_error_reported: false,
    };

    let runner = match prepared.outcome {
        Err(message) => {
            // Preparing failed after the directory was created: the ticket is finished.
            recorder.note(LogLevel::Error, &message);
            tokio::spawn(async move {
                recorder
                    .finish(ScriptState::Complete {
                        exit_code: exit_codes::FATAL,
                    })
                    .await;
                drop(prepared.owner_lock);
            })
        }
        Ok((launch, key)) => {
            let context = RunContext {
                recorder,
                request,
                launch,
                key,
                workspace: directory.join(WORKSPACE_DIRECTORY),
                variables_path: directory.join(VARIABLES_FILE),
                locks_directory: inner.locks_directory.clone(),
                options: inner.options.clone(),
                owner_lock: prepared.owner_lock,
            };
            tokio::spawn(run(context))
        }
    };
    let mut runners = lock(&inner.runners);
    runners.retain(|runner| !runner.is_finished());
    runners.push(runner);
    Ok(StartOutcome::Started)
}

#[expect(clippy::too_many_arguments, reason = "one field each of ScriptStatus")]
fn build_status(
    ticket: &str,
    state: ScriptState,
    lines: &[LogLine],
    after_sequence: u64,
    output_variables: Vec<OutputVariable>,
    artifacts: Vec<Artifact>,
    progress: Option<Progress>,
    failed_step_message: Option<String>,
) -> ScriptStatus {
    let first = lines.partition_point(|line| line.sequence <= after_sequence);
    let selected: Vec<LogLine> = lines[first..]
        .iter()
        .take(MAX_LINES_PER_STATUS)
        .cloned()
        .collect();
    let next_sequence = selected.last().map_or(after_sequence, |line| line.sequence);
    ScriptStatus {
        ticket: ticket.to_owned(),
        state,
        lines: selected,
        next_sequence,
        output_variables,
        artifacts,
        progress,
        failed_step_message,
    }
}

/// Reads a ticket that this executor does not run, repairing it first if it was abandoned.
fn load_status(
    directory: &Path,
    ticket: &str,
    after_sequence: u64,
    key: &MasterKey,
) -> Result<ScriptStatus, ExecError> {
    if !directory.is_dir() {
        return Err(ExecError::UnknownTicket(ticket.to_owned()));
    }
    repair_if_abandoned(directory)?;
    let lines = journal::read_log(directory)?;
    match journal::read_state(directory)? {
        Some(persisted) => Ok(build_status(
            ticket,
            persisted.state,
            &lines,
            after_sequence,
            persisted.output_variables(key)?,
            persisted.artifacts.clone(),
            persisted.progress.clone(),
            persisted.failed_step_message.clone(),
        )),
        // Tickets appear by rename with their state already written, so this is a ticket
        // whose state.json was removed by hand: nothing is known about it.
        None => Ok(build_status(
            ticket,
            ScriptState::Unknown,
            &lines,
            after_sequence,
            Vec::new(),
            Vec::new(),
            None,
            None,
        )),
    }
}

/// Marks a ticket left `Pending`/`Running` by a dead executor: `Running` becomes `Unknown`,
/// `Pending` becomes `Cancelled`, each with a log line. A ticket whose owner lock is held
/// (its executor is alive) is left alone.
fn repair_if_abandoned(directory: &Path) -> Result<(), ExecError> {
    let Some(mut persisted) = journal::read_state(directory)? else {
        return Ok(());
    };
    if persisted.state.is_finished() {
        return Ok(());
    }
    let lock_path = directory.join(OWNER_LOCK_FILE);
    let owner_lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&lock_path)
        .map_err(ExecError::io("open", &lock_path))?;
    if !isolation::try_lock(&owner_lock, Isolation::Full)? {
        return Ok(());
    }
    // Read again under the lock: the owner may have finished the ticket just before dying.
    let Some(current) = journal::read_state(directory)? else {
        return Ok(());
    };
    persisted = current;
    let (state, level, text) = match persisted.state {
        ScriptState::Running => (
            ScriptState::Unknown,
            LogLevel::Error,
            match persisted.process_id {
                Some(process_id) => format!(
                    "The executor stopped while this script was running (process group {process_id}); its outcome is unknown and it will not be run again"
                ),
                None => "The executor stopped while this script was starting; its outcome is unknown and it will not be run again".to_owned(),
            },
        ),
        ScriptState::Pending => (
            ScriptState::Cancelled,
            LogLevel::Warning,
            "The executor stopped before this script started; it was not run".to_owned(),
        ),
        _ => return Ok(()),
    };
    let last_sequence = journal::read_log(directory)?
        .last()
        .map_or(0, |line| line.sequence);
    let mut log = LogWriter::open(directory)?;
    log.append(&LogLine {
        sequence: last_sequence + 1,
        occurred_at: Utc::now(),
        level,
        text,
    })?;
    log.sync()?;
    persisted.state = state;
    persisted.completed_at = Some(Utc::now());
    journal::write_state(directory, &persisted)?;
    drop(owner_lock);
    Ok(())
}

/// What preparing a ticket produced.
struct Prepared {
    persisted: PersistedState,
    log: LogWriter,
    owner_lock: std::fs::File,
    /// How to run the script and the key to its variables, or why it cannot run.
    outcome: Result<(Launch, TicketKey), String>,
}

/// Builds a new ticket's directory under `staging_directory`, then renames it into place, so
/// the ticket appears at once with its state written and its owner lock held. `Ok(None)`
/// when the ticket exists already (someone else's rename won). `Err` only when not even the
/// state could be written; other failures (a staged file missing…) are kept in `outcome`,
/// to be recorded in the ticket.
fn prepare(
    staging_directory: &Path,
    directory: &Path,
    request: &ScriptRequest,
    launcher: &Launcher<'_>,
) -> Result<Option<Prepared>, ExecError> {
    let staging =
        staging_directory.join(format!("{}-{:016x}", request.ticket, rand::random::<u64>()));
    std::fs::create_dir(&staging).map_err(ExecError::io("create", &staging))?;
    let prepared = prepare_in(&staging, directory, request, launcher).and_then(
        |(persisted, owner_lock, outcome)| {
            match std::fs::rename(&staging, directory) {
                Ok(()) => {}
                Err(_) if directory.exists() => return Ok(None),
                Err(error) => return Err(ExecError::io("move into place", directory)(error)),
            }
            if let Some(tickets) = directory.parent() {
                journal::sync_directory(tickets).map_err(ExecError::io("sync", tickets))?;
            }
            Ok(Some(Prepared {
                persisted,
                log: LogWriter::open(directory)?,
                owner_lock,
                outcome,
            }))
        },
    );
    if !matches!(prepared, Ok(Some(_))) {
        // Best effort: a leftover staging directory is removed by the next `open`.
        let _removed = std::fs::remove_dir_all(&staging);
    }
    prepared
}

type PreparedParts = (
    PersistedState,
    std::fs::File,
    Result<(Launch, TicketKey), String>,
);

/// Writes the ticket's files into `staging`; paths handed to the script name `directory`.
/// What a package deployment's launch needs beyond the request.
struct Launcher<'a> {
    executor_root: &'a Path,
    package_runner: Option<&'a PackageRunner>,
}

impl Launcher<'_> {
    /// The conventions runner's command line for the ticket in `directory`.
    fn package_launch(&self, directory: &Path) -> Result<Launch, ExecError> {
        let runner = self.package_runner.ok_or_else(|| {
            ExecError::InvalidRequest(
                "this executor has no conventions runner for package deployments".into(),
            )
        })?;
        let mut arguments = runner.arguments.clone();
        arguments.extend([
            "--executor-root".into(),
            self.executor_root.as_os_str().to_owned(),
            "--ticket-directory".into(),
            directory.as_os_str().to_owned(),
        ]);
        Ok(Launch {
            program: runner.program.clone().into_os_string(),
            arguments,
        })
    }
}

fn prepare_in(
    staging: &Path,
    directory: &Path,
    request: &ScriptRequest,
    launcher: &Launcher<'_>,
) -> Result<PreparedParts, ExecError> {
    let owner_lock = journal::create_private(&staging.join(OWNER_LOCK_FILE))?;
    // A fresh directory: nobody else can hold this lock.
    isolation::try_lock(&owner_lock, Isolation::Full)?;
    let persisted = PersistedState::new(
        &request.ticket,
        request.syntax,
        request.isolation,
        request.mutex_name(),
        Utc::now(),
    );
    journal::write_state(staging, &persisted)?;

    let outcome = (|| -> Result<(Launch, TicketKey), ExecError> {
        let workspace = staging.join(WORKSPACE_DIRECTORY);
        std::fs::create_dir(&workspace).map_err(ExecError::io("create", &workspace))?;
        for file in &request.files {
            std::fs::copy(&file.source, workspace.join(&file.name))
                .map_err(ExecError::io("copy the staged file", &file.source))?;
        }
        let key = TicketKey::generate();
        variables::write_file(
            &staging.join(VARIABLES_FILE),
            &request.ticket,
            &key,
            &PlainVariables::from_request(&request.variables),
        )?;
        let launch = match &request.package_deployment {
            Some(_) => launcher.package_launch(directory)?,
            None => bootstrap::prepare(
                staging,
                directory,
                request.syntax,
                &request.body,
                &request.arguments,
            )?,
        };
        Ok((launch, key))
    })()
    .map_err(|error| format!("The script could not be prepared: {error}"));
    Ok((persisted, owner_lock, outcome))
}

/// How often [`Executor::wait`] reads the state of a ticket another process runs.
const DISK_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How old a staging directory's owner lock must be before an executor that finds it free
/// removes the directory. A preparing executor creates the lock file and then locks it: in
/// between, the lock is free although its directory is in use (many `cuttle exec` processes
/// opening one root at once hit that window). Seconds after its creation a free lock can only
/// be a dead executor's.
const STAGING_GRACE: Duration = Duration::from_secs(30);

/// Removes staging directories left by executors that died while preparing a ticket.
fn clean_staging(staging_directory: &Path) {
    let Ok(entries) = std::fs::read_dir(staging_directory) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // Only where the lock file exists and is free: a missing one may be being created.
        let Ok(owner_lock) = std::fs::File::open(path.join(OWNER_LOCK_FILE)) else {
            continue;
        };
        // A young lock may be one its executor has created but not locked yet. A clock that
        // went backwards (an age that cannot be computed) keeps the directory too.
        let old_enough = owner_lock
            .metadata()
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age >= STAGING_GRACE);
        if old_enough && isolation::try_lock(&owner_lock, Isolation::Full).unwrap_or(false) {
            let _removed = std::fs::remove_dir_all(&path);
        }
    }
}
