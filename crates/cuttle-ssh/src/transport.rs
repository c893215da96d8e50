//! [`SshTransport`]: the orchestrator's [`Transport`] for SSH targets.
//!
//! ```text
//! start_script ─► binary present? (SFTP, once per pool) ─► channel: `cuttle exec`
//!                  request JSON on stdin ─► {"Start":…} answers the call
//!                  a reader task keeps the channel, filling the ticket's journal
//! script_status ─► the journal (no round trip) while the channel is open or has the result;
//!                  otherwise (server restarted, channel lost) `cuttle exec status` remotely
//! cancel_script ─► `cuttle exec cancel`
//! complete_script ─► `complete` on the foreground channel, whose `cuttle exec` waits for it
//!                    after the result (one session per script); else `cuttle exec complete`
//! ```
//!
//! In memory only: the pools, the journals of tickets started by this instance, the local
//! binary's hash. A new instance knows none of it and re-attaches by ticket through the
//! target, whose executor keeps every ticket on disk until it is completed; the script goes on
//! running there while nobody watches.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use cuttle_exec::{CachedPackage, ScriptRequest, ScriptStatus, StartOutcome, validate_ticket};
use cuttle_orchestrator::{
    HealthReport, PackageFile, PackageSupport, TargetAddress, Transport, TransportError,
};
use russh::ChannelMsg;
use russh::client::Msg;
use russh_sftp::client::SftpSession;
use tokio::task::JoinSet;
use zeroize::Zeroize as _;

use crate::binary::{LocalBinary, ensure_uploaded};
use crate::connection::{self, Connector, Pool, PoolKey, Slot, SshTarget};
use crate::credentials::SshCredentials;
use crate::error::SshError;
use crate::fingerprint::HostKeyFingerprint;
use crate::journal::Journal;
use crate::protocol::{ExecFailure, ExecFailureKind, ExecRecord};
use crate::remote::{self, CommandOutput, RemotePath, quote};

/// The most bytes one line of `cuttle exec` output may have.
const MAX_RECORD_LENGTH: usize = 64 << 20;

/// What the health check runs: the system, then which interpreters are there.
const HEALTH_COMMAND: &str = "uname -sm; for program in bash python3 pwsh tar; do \
     command -v \"$program\" >/dev/null 2>&1 && echo \"has $program\"; done; exit 0";

/// Settings for an [`SshTransport`]; the defaults suit a server.
#[derive(Debug, Clone)]
pub struct SshTransportOptions {
    /// The `cuttle` binary uploaded to targets; `None` means this process's own executable.
    /// It must run on the targets (same OS and architecture).
    pub local_binary: Option<PathBuf>,
    /// Where binaries go on the target: absolute, or relative to the login user's home.
    pub remote_binary_directory: String,
    /// The executor root on the target (`cuttle exec --root`), same rules. The target's
    /// package cache is `packages` beside it.
    pub remote_work_directory: String,
    /// Where package files and deltas are uploaded before `cuttle exec` moves them into the
    /// package cache, same rules.
    pub remote_upload_directory: String,
    /// How long connecting (TCP, handshake, authentication) or opening a channel may take.
    pub connect_timeout: Duration,
    /// How long a short command (`status`, `cancel`, `complete`, the health check, the start
    /// of a script) may take, answer included.
    pub command_timeout: Duration,
    /// Channels open at once on one connection before another connection is made; sshd's
    /// `MaxSessions` (default 10) caps it.
    pub channels_per_connection: usize,
    /// A keepalive is sent after this long without traffic; three unanswered close the
    /// connection.
    pub keepalive_interval: Duration,
}

impl Default for SshTransportOptions {
    fn default() -> SshTransportOptions {
        SshTransportOptions {
            local_binary: None,
            remote_binary_directory: ".cuttle/bin".to_owned(),
            remote_work_directory: ".cuttle/work".to_owned(),
            remote_upload_directory: ".cuttle/uploads".to_owned(),
            connect_timeout: Duration::from_secs(15),
            command_timeout: Duration::from_secs(60),
            channels_per_connection: 10,
            keepalive_interval: Duration::from_secs(30),
        }
    }
}

/// Runs scripts on SSH targets through `cuttle exec`. Cheap to clone; clones share
/// connections and journals. Dropping the last clone closes the connections and stops
/// following running scripts (they keep running on their targets).
#[derive(Clone)]
pub struct SshTransport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SshTransport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SshTransport")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

struct Inner {
    connector: Connector,
    options: SshTransportOptions,
    binary_directory: RemotePath,
    work_directory: RemotePath,
    upload_directory: RemotePath,
    binary: tokio::sync::OnceCell<LocalBinary>,
    pools: Mutex<HashMap<PoolKey, Arc<Pool>>>,
    tickets: Mutex<HashMap<(PoolKey, String), Arc<TicketEntry>>>,
    /// The tasks following foreground channels; aborted when the transport is dropped.
    readers: Mutex<JoinSet<()>>,
}

/// A ticket this instance was asked to start.
#[derive(Default)]
struct TicketEntry {
    /// Whether a start succeeded; held during a start so a second one waits for it.
    started: tokio::sync::Mutex<bool>,
    journal: Mutex<Journal>,
    /// Asks the task following the foreground channel to complete the ticket there; it
    /// answers whether the target did. Gone once that task has ended.
    complete_on_channel: Mutex<Option<CompleteRequests>>,
}

/// Where a request to complete a ticket on its foreground channel goes, with where to answer.
type CompleteRequests = tokio::sync::oneshot::Sender<tokio::sync::oneshot::Sender<bool>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Connects to `host:port` and returns the fingerprint of the host key it presents, without
/// authenticating: to show an operator what to pin (compare it out of band).
pub async fn scan_host_key(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<HostKeyFingerprint, SshError> {
    connection::host_key(Arc::new(client_config(None)), host, port, timeout).await
}

fn client_config(keepalive_interval: Option<Duration>) -> russh::client::Config {
    russh::client::Config {
        keepalive_interval,
        keepalive_max: 3,
        nodelay: true,
        ..russh::client::Config::default()
    }
}

impl SshTransport {
    /// A transport that gets each account's credentials from `credentials` when it connects.
    pub fn new(credentials: Arc<dyn SshCredentials>, options: SshTransportOptions) -> SshTransport {
        let config = client_config(Some(options.keepalive_interval));
        SshTransport {
            inner: Arc::new(Inner {
                connector: Connector {
                    config: Arc::new(config),
                    connect_timeout: options.connect_timeout,
                    channels_per_connection: options.channels_per_connection.max(1),
                    credentials,
                },
                binary_directory: RemotePath::new(&options.remote_binary_directory),
                work_directory: RemotePath::new(&options.remote_work_directory),
                upload_directory: RemotePath::new(&options.remote_upload_directory),
                options,
                binary: tokio::sync::OnceCell::new(),
                pools: Mutex::new(HashMap::new()),
                tickets: Mutex::new(HashMap::new()),
                readers: Mutex::new(JoinSet::new()),
            }),
        }
    }

    /// Connects to the target and makes sure the `cuttle` binary is there, uploading it if
    /// needed, so the first script does not wait for it.
    pub async fn prepare(&self, target: &TargetAddress) -> Result<(), TransportError> {
        let inner = &self.inner;
        async {
            let ssh_target = SshTarget::from_address(target)?;
            let pool = inner.pool(&ssh_target.key);
            inner.ensure_binary(&pool, &ssh_target).await.map(|_| ())
        }
        .await
        .map_err(|error| error.into_transport_error(&target.name))
    }

    /// How many SSH connections are open, over all targets.
    pub async fn open_connections(&self) -> usize {
        let pools: Vec<Arc<Pool>> = lock(&self.inner.pools).values().cloned().collect();
        let mut total = 0;
        for pool in pools {
            total += pool.open_connections().await;
        }
        total
    }
}

impl Inner {
    fn pool(&self, key: &PoolKey) -> Arc<Pool> {
        Arc::clone(lock(&self.pools).entry(key.clone()).or_default())
    }

    async fn local_binary(&self) -> Result<&LocalBinary, SshError> {
        self.binary
            .get_or_try_init(|| async {
                let path = match &self.options.local_binary {
                    Some(path) => path.clone(),
                    None => std::env::current_exe().map_err(|error| SshError::LocalBinary {
                        path: "(this process)".to_owned(),
                        reason: error.to_string(),
                    })?,
                };
                LocalBinary::load(path).await
            })
            .await
    }

    /// The path of the binary on the target, uploaded if it was missing.
    async fn ensure_binary(&self, pool: &Pool, target: &SshTarget) -> Result<RemotePath, SshError> {
        let binary = self.local_binary().await?;
        let path = self.binary_directory.join(&binary.remote_name());
        if pool.binary_present.load(Ordering::SeqCst) {
            return Ok(path);
        }
        let _uploading = pool.upload.lock().await;
        if pool.binary_present.load(Ordering::SeqCst) {
            return Ok(path);
        }
        let (sftp, _slot) = self.open_sftp(pool, target, &path).await?;
        let uploaded =
            ensure_uploaded(&sftp, binary, &self.binary_directory, &target.address()).await;
        let _closed = sftp.close().await;
        uploaded?;
        pool.binary_present.store(true, Ordering::SeqCst);
        Ok(path)
    }

    /// An SFTP session on a channel of its own; the slot counts the channel until dropped.
    async fn open_sftp(
        &self,
        pool: &Pool,
        target: &SshTarget,
        path: &RemotePath,
    ) -> Result<(SftpSession, Slot), SshError> {
        let lease = pool.open_channel(&self.connector, target).await?;
        let (channel, slot) = lease.into_parts();
        let lost = |error: &dyn std::fmt::Display| SshError::Upload {
            address: target.address(),
            path: path.to_string(),
            reason: format!("the SFTP subsystem is not available: {error}"),
        };
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|error| lost(&error))?;
        let sftp = SftpSession::new(channel.into_stream())
            .await
            .map_err(|error| lost(&error))?;
        Ok((sftp, slot))
    }

    /// Uploads `source` to a fresh name in the upload directory; returns that path and the
    /// bytes sent. On failure the partial file is removed.
    async fn upload(
        &self,
        target: &SshTarget,
        source: UploadSource<'_>,
        kind: &str,
    ) -> Result<(RemotePath, u64), SshError> {
        let pool = self.pool(&target.key);
        let remote = self
            .upload_directory
            .join(&format!("{kind}-{:016x}", rand::random::<u64>()));
        let (sftp, _slot) = self.open_sftp(&pool, target, &remote).await?;
        let sent = async {
            crate::binary::create_directories(&sftp, &self.upload_directory).await?;
            match source {
                UploadSource::File(local) => crate::binary::send_file(&sftp, local, &remote).await,
                UploadSource::Bytes(bytes) => {
                    crate::binary::send_bytes(&sftp, bytes, &remote).await
                }
            }
        }
        .await;
        if sent.is_err() {
            let _removed = sftp.remove_file(remote.sftp()).await;
        }
        let _closed = sftp.close().await;
        let sent = sent.map_err(|reason| SshError::Upload {
            address: target.address(),
            path: remote.to_string(),
            reason,
        })?;
        Ok((remote, sent))
    }

    /// Runs a package cache command whose answer must be a `Package` record.
    async fn run_package_command(
        &self,
        target: &SshTarget,
        arguments: &[&str],
    ) -> Result<cuttle_exec::CachedPackage, SshError> {
        match self.run_exec(target, arguments).await? {
            ExecRecord::Package(package) => Ok(package),
            other => Err(unexpected_record(target, arguments, &other)),
        }
    }

    /// The command line that runs `cuttle exec` with `arguments` on the target.
    fn exec_command(&self, binary: &RemotePath, arguments: &[&str]) -> String {
        let mut command = format!(
            "{} exec --root {}",
            binary.shell(),
            self.work_directory.shell()
        );
        for argument in arguments {
            command.push(' ');
            command.push_str(&quote(argument));
        }
        command
    }

    /// Runs one short `cuttle exec …` command and returns its (last) record.
    async fn run_exec(
        &self,
        target: &SshTarget,
        arguments: &[&str],
    ) -> Result<ExecRecord, SshError> {
        let pool = self.pool(&target.key);
        let binary = self.ensure_binary(&pool, target).await?;
        let command = self.exec_command(&binary, arguments);
        let described = format!("cuttle exec {}", arguments.join(" "));
        let output = self
            .run_command(&pool, target, &command, &described)
            .await?;
        let record = String::from_utf8_lossy(&output.stdout)
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .and_then(|line| serde_json::from_str::<ExecRecord>(line).ok());
        record.ok_or_else(|| SshError::Remote {
            address: target.address(),
            command: described,
            reason: output.describe_failure(),
        })
    }

    /// Runs a command on a channel of its own and collects its output.
    async fn run_command(
        &self,
        pool: &Pool,
        target: &SshTarget,
        command: &str,
        described: &str,
    ) -> Result<CommandOutput, SshError> {
        let lease = pool.open_channel(&self.connector, target).await?;
        let (mut channel, _slot) = lease.into_parts();
        let lost = |reason: String| SshError::ConnectionLost {
            address: target.address(),
            reason,
        };
        let timeout = self.options.command_timeout;
        let run = async {
            channel.exec(true, command).await?;
            remote::collect(&mut channel, None).await
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(russh::Error::RequestDenied)) => Err(SshError::Remote {
                address: target.address(),
                command: described.to_owned(),
                reason: "the server refused to run it".to_owned(),
            }),
            Ok(Err(error)) => Err(lost(error.to_string())),
            Err(_) => Err(lost(format!(
                "`{described}` did not finish within {} s",
                timeout.as_secs()
            ))),
        }
    }

    fn ticket(&self, key: &PoolKey, ticket: &str) -> Option<Arc<TicketEntry>> {
        lock(&self.tickets)
            .get(&(key.clone(), ticket.to_owned()))
            .cloned()
    }

    /// Starts the foreground `cuttle exec` for `request` and waits for its first record.
    async fn start_foreground(
        &self,
        target: &SshTarget,
        request: &ScriptRequest,
        entry: &Arc<TicketEntry>,
    ) -> Result<StartOutcome, SshError> {
        let pool = self.pool(&target.key);
        let binary = self.ensure_binary(&pool, target).await?;
        let command = self.exec_command(&binary, &[]);
        let lease = pool.open_channel(&self.connector, target).await?;
        let (mut channel, slot) = lease.into_parts();
        let mut reader = RecordReader::default();
        let mut body = serde_json::to_vec(request).unwrap_or_default();
        // One line: `cuttle exec` then waits for the `complete` line after the result.
        body.push(b'\n');
        let opening = async {
            channel.exec(true, command).await?;
            let sent = channel.data(&body[..]).await;
            sent?;
            Ok::<_, russh::Error>(reader.next(&mut channel).await)
        };
        let first = tokio::time::timeout(self.options.command_timeout, opening).await;
        body.zeroize();
        let lost = |reason: String| SshError::ConnectionLost {
            address: target.address(),
            reason,
        };
        let first = match first {
            Err(_) => {
                return Err(lost(format!(
                    "`cuttle exec` did not start within {} s",
                    self.options.command_timeout.as_secs()
                )));
            }
            Ok(Err(error)) => return Err(lost(error.to_string())),
            Ok(Ok(first)) => first,
        };
        match first {
            Some(ExecRecord::Start(outcome)) => {
                *lock(&entry.journal) = Journal::streaming();
                let (requests, complete_requests) = tokio::sync::oneshot::channel();
                *lock(&entry.complete_on_channel) = Some(requests);
                let entry = Arc::clone(entry);
                let timeout = self.options.command_timeout;
                let mut readers = lock(&self.readers);
                while readers.try_join_next().is_some() {}
                readers.spawn(follow(
                    channel,
                    slot,
                    reader,
                    entry,
                    complete_requests,
                    timeout,
                ));
                Ok(outcome)
            }
            Some(ExecRecord::Error(failure)) => Err(failure_error(
                failure,
                target,
                &request.ticket,
                "cuttle exec",
            )),
            Some(other) => Err(SshError::Remote {
                address: target.address(),
                command: "cuttle exec".to_owned(),
                reason: format!("it answered {other:?} instead of starting"),
            }),
            None => Err(SshError::Remote {
                address: target.address(),
                command: "cuttle exec".to_owned(),
                reason: reader.output.describe_failure(),
            }),
        }
    }

    async fn start(
        &self,
        target: &SshTarget,
        request: &ScriptRequest,
    ) -> Result<StartOutcome, SshError> {
        request
            .validate()
            .map_err(|error| SshError::InvalidRequest(error.to_string()))?;
        let entry = Arc::clone(
            lock(&self.tickets)
                .entry((target.key.clone(), request.ticket.clone()))
                .or_default(),
        );
        let mut started = entry.started.lock().await;
        if *started {
            return Ok(StartOutcome::AlreadyStarted);
        }
        let outcome = self.start_foreground(target, request, &entry).await?;
        *started = true;
        Ok(outcome)
    }

    async fn status(
        &self,
        target: &SshTarget,
        ticket: &str,
        after_sequence: u64,
    ) -> Result<ScriptStatus, SshError> {
        validate_ticket(ticket).map_err(|error| SshError::InvalidRequest(error.to_string()))?;
        let known = self
            .ticket(&target.key, ticket)
            .and_then(|entry| lock(&entry.journal).status(ticket, after_sequence));
        if let Some(status) = known {
            return Ok(status);
        }
        let after = after_sequence.to_string();
        let arguments = ["status", "--ticket", ticket, "--after", after.as_str()];
        match self.run_exec(target, &arguments).await? {
            ExecRecord::Status(status) => Ok(status),
            ExecRecord::Error(failure) => {
                Err(failure_error(failure, target, ticket, "cuttle exec status"))
            }
            other => Err(unexpected(target, "cuttle exec status", &other)),
        }
    }

    async fn cancel(&self, target: &SshTarget, ticket: &str) -> Result<(), SshError> {
        validate_ticket(ticket).map_err(|error| SshError::InvalidRequest(error.to_string()))?;
        match self
            .run_exec(target, &["cancel", "--ticket", ticket])
            .await?
        {
            ExecRecord::Done(_) => Ok(()),
            ExecRecord::Error(failure) => {
                Err(failure_error(failure, target, ticket, "cuttle exec cancel"))
            }
            other => Err(unexpected(target, "cuttle exec cancel", &other)),
        }
    }

    async fn complete(&self, target: &SshTarget, ticket: &str) -> Result<(), SshError> {
        validate_ticket(ticket).map_err(|error| SshError::InvalidRequest(error.to_string()))?;
        // On the channel that ran it, when it is still open: no new session.
        let on_channel = self
            .ticket(&target.key, ticket)
            .and_then(|entry| lock(&entry.complete_on_channel).take());
        if let Some(requests) = on_channel {
            let (answer, answered) = tokio::sync::oneshot::channel();
            if requests.send(answer).is_ok() && answered.await == Ok(true) {
                lock(&self.tickets).remove(&(target.key.clone(), ticket.to_owned()));
                return Ok(());
            }
        }
        match self
            .run_exec(target, &["complete", "--ticket", ticket])
            .await?
        {
            ExecRecord::Done(_) => {
                lock(&self.tickets).remove(&(target.key.clone(), ticket.to_owned()));
                Ok(())
            }
            ExecRecord::Error(failure) => Err(failure_error(
                failure,
                target,
                ticket,
                "cuttle exec complete",
            )),
            other => Err(unexpected(target, "cuttle exec complete", &other)),
        }
    }

    async fn check_health(&self, target: &SshTarget) -> Result<HealthReport, SshError> {
        let pool = self.pool(&target.key);
        let output = self
            .run_command(&pool, target, HEALTH_COMMAND, "uname -sm")
            .await?;
        let text = String::from_utf8_lossy(&output.stdout);
        let mut lines = text.lines().map(str::trim);
        let system = lines.next().unwrap_or_default().to_owned();
        if output.exit_status != Some(0) || system.is_empty() {
            return Err(SshError::Remote {
                address: target.address(),
                command: "uname -sm".to_owned(),
                reason: output.describe_failure(),
            });
        }
        let programs: Vec<&str> = lines.filter_map(|line| line.strip_prefix("has ")).collect();
        let mut warnings = Vec::new();
        if !programs.contains(&"bash") {
            warnings.push("bash is not installed: Bash scripts cannot run there".to_owned());
        }
        if let Some(mismatch) = platform_mismatch(&system) {
            warnings.push(mismatch);
        }
        let found = if programs.is_empty() {
            "no script interpreter found".to_owned()
        } else {
            programs.join(", ")
        };
        Ok(HealthReport {
            warnings,
            summary: format!("{system} over SSH at {} ({found})", target.address()),
        })
    }
}

/// A warning when the target's `uname -sm` is not the platform this server's binary is for.
fn platform_mismatch(system: &str) -> Option<String> {
    let mut words = system.split_whitespace();
    let os = words.next()?.to_ascii_lowercase();
    let machine = words.next()?.to_ascii_lowercase();
    let machine = match machine.as_str() {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        other => other,
    };
    let os_matches =
        os == std::env::consts::OS || (os == "darwin" && std::env::consts::OS == "macos");
    if os_matches && machine == std::env::consts::ARCH {
        None
    } else {
        Some(format!(
            "the target is {system} but this server's cuttle binary is for {} {}: scripts cannot run there",
            std::env::consts::OS,
            std::env::consts::ARCH
        ))
    }
}

fn failure_error(
    failure: ExecFailure,
    target: &SshTarget,
    ticket: &str,
    command: &str,
) -> SshError {
    match failure.kind {
        ExecFailureKind::UnknownTicket => SshError::UnknownTicket {
            address: target.address(),
            ticket: ticket.to_owned(),
        },
        ExecFailureKind::InvalidRequest => SshError::InvalidRequest(failure.message),
        ExecFailureKind::StillRunning | ExecFailureKind::Failed => SshError::Remote {
            address: target.address(),
            command: command.to_owned(),
            reason: failure.message,
        },
    }
}

fn unexpected(target: &SshTarget, command: &str, record: &ExecRecord) -> SshError {
    SshError::Remote {
        address: target.address(),
        command: command.to_owned(),
        reason: format!("unexpected answer {record:?}"),
    }
}

/// Splits a channel's standard output into records, keeping standard error and the exit
/// status for error messages.
#[derive(Default)]
struct RecordReader {
    buffer: Vec<u8>,
    output: CommandOutput,
}

impl RecordReader {
    /// The next record, or `None` once the channel has closed.
    async fn next(&mut self, channel: &mut russh::Channel<Msg>) -> Option<ExecRecord> {
        loop {
            while let Some(end) = self.buffer.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<ExecRecord>(&line) {
                    Ok(record) => return Some(record),
                    Err(error) => {
                        tracing::debug!(
                            "skipped a line of `cuttle exec` output that is not a record: {error}"
                        );
                    }
                }
            }
            match channel.wait().await? {
                ChannelMsg::Data { data } => {
                    if self.buffer.len() + data.len() > MAX_RECORD_LENGTH {
                        tracing::debug!("dropped an overlong line of `cuttle exec` output");
                        self.buffer.clear();
                    } else {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                ChannelMsg::ExtendedData { data, .. } => {
                    remote::append_stderr(&mut self.output.stderr, &data);
                }
                ChannelMsg::ExitStatus { exit_status } => {
                    self.output.exit_status = Some(exit_status);
                }
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    self.output.exit_signal = Some(format!("{signal_name:?}"));
                }
                ChannelMsg::Failure => {
                    self.output
                        .stderr
                        .extend_from_slice(b"the server refused to run cuttle exec");
                    return None;
                }
                _ => {}
            }
        }
    }
}

/// Follows a foreground `cuttle exec` to its result, filling the ticket's journal; then, while
/// `cuttle exec` waits for it, passes on a request to complete the ticket (answering whether
/// the target did) until the channel closes.
async fn follow(
    mut channel: russh::Channel<Msg>,
    slot: Slot,
    mut reader: RecordReader,
    entry: Arc<TicketEntry>,
    complete_requests: tokio::sync::oneshot::Receiver<tokio::sync::oneshot::Sender<bool>>,
    timeout: Duration,
) {
    let mut finished = false;
    while let Some(record) = reader.next(&mut channel).await {
        match record {
            ExecRecord::Line(line) => lock(&entry.journal).add_line(line),
            ExecRecord::Result(result) => {
                lock(&entry.journal).finish(result);
                finished = true;
                break;
            }
            ExecRecord::Error(failure) => {
                tracing::warn!(kind = ?failure.kind, "cuttle exec failed on the target: {}", failure.message);
            }
            _ => {}
        }
    }
    if finished {
        let request = tokio::select! {
            request = complete_requests => request.ok(),
            // The channel closed (the target's `cuttle exec` went away) before anyone asked.
            () = async { while reader.next(&mut channel).await.is_some() {} } => None,
        };
        if let Some(answer) = request {
            let completing = async {
                channel.data(&b"complete\n"[..]).await?;
                channel.eof().await?;
                Ok::<_, russh::Error>(reader.next(&mut channel).await)
            };
            let done = matches!(
                tokio::time::timeout(timeout, completing).await,
                Ok(Ok(Some(ExecRecord::Done(_))))
            );
            let _answered = answer.send(done);
        }
    }
    lock(&entry.journal).close();
    lock(&entry.complete_on_channel).take();
    drop(slot);
}

/// What [`Inner::upload`] sends.
enum UploadSource<'a> {
    File(&'a std::path::Path),
    Bytes(&'a [u8]),
}

fn unexpected_record(target: &SshTarget, arguments: &[&str], record: &ExecRecord) -> SshError {
    let reason = match record {
        ExecRecord::Error(failure) => failure.message.clone(),
        other => format!("it answered {other:?}"),
    };
    SshError::Remote {
        address: target.address(),
        command: format!("cuttle exec {}", arguments.first().copied().unwrap_or("")),
        reason,
    }
}

#[async_trait]
impl Transport for SshTransport {
    async fn check_health(&self, target: &TargetAddress) -> Result<HealthReport, TransportError> {
        let result = match SshTarget::from_address(target) {
            Ok(ssh_target) => self.inner.check_health(&ssh_target).await,
            Err(error) => Err(error),
        };
        result.map_err(|error| error.into_transport_error(&target.name))
    }

    async fn start_script(
        &self,
        target: &TargetAddress,
        request: &ScriptRequest,
    ) -> Result<StartOutcome, TransportError> {
        let keyed = request_isolated_per_target(request, target);
        let request = keyed.as_ref().unwrap_or(request);
        let result = match SshTarget::from_address(target) {
            Ok(ssh_target) => self.inner.start(&ssh_target, request).await,
            Err(error) => Err(error),
        };
        result.map_err(|error| error.into_transport_error(&target.name))
    }

    async fn script_status(
        &self,
        target: &TargetAddress,
        ticket: &str,
        after_sequence: u64,
    ) -> Result<ScriptStatus, TransportError> {
        let result = match SshTarget::from_address(target) {
            Ok(ssh_target) => self.inner.status(&ssh_target, ticket, after_sequence).await,
            Err(error) => Err(error),
        };
        result.map_err(|error| error.into_transport_error(&target.name))
    }

    async fn cancel_script(
        &self,
        target: &TargetAddress,
        ticket: &str,
    ) -> Result<(), TransportError> {
        let result = match SshTarget::from_address(target) {
            Ok(ssh_target) => self.inner.cancel(&ssh_target, ticket).await,
            Err(error) => Err(error),
        };
        result.map_err(|error| error.into_transport_error(&target.name))
    }

    async fn complete_script(
        &self,
        target: &TargetAddress,
        ticket: &str,
    ) -> Result<(), TransportError> {
        let result = match SshTarget::from_address(target) {
            Ok(ssh_target) => self.inner.complete(&ssh_target, ticket).await,
            Err(error) => Err(error),
        };
        result.map_err(|error| error.into_transport_error(&target.name))
    }

    /// `cuttle exec` deploys packages and keeps a package cache, like an agent.
    async fn package_support(
        &self,
        _target: &TargetAddress,
    ) -> Result<PackageSupport, TransportError> {
        Ok(PackageSupport {
            deploy: true,
            cache: true,
        })
    }

    async fn cached_packages(
        &self,
        target: &TargetAddress,
        package_id: &str,
    ) -> Result<Vec<CachedPackage>, TransportError> {
        let result = async {
            let ssh_target = SshTarget::from_address(target)?;
            let arguments = ["packages", "--package-id", package_id];
            match self.inner.run_exec(&ssh_target, &arguments).await? {
                ExecRecord::Packages(packages) => Ok(packages),
                other => Err(unexpected_record(&ssh_target, &arguments, &other)),
            }
        }
        .await;
        result.map_err(|error| error.into_transport_error(&target.name))
    }

    async fn package_signature(
        &self,
        target: &TargetAddress,
        sha256: &str,
    ) -> Result<Vec<u8>, TransportError> {
        let result = async {
            let ssh_target = SshTarget::from_address(target)?;
            let arguments = ["package-signature", "--sha256", sha256];
            match self.inner.run_exec(&ssh_target, &arguments).await? {
                ExecRecord::Signature(text) => {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .map_err(|error| SshError::Remote {
                            address: ssh_target.address(),
                            command: "cuttle exec package-signature".to_owned(),
                            reason: format!("the signature is not base64: {error}"),
                        })
                }
                other => Err(unexpected_record(&ssh_target, &arguments, &other)),
            }
        }
        .await;
        result.map_err(|error| error.into_transport_error(&target.name))
    }

    async fn upload_package(
        &self,
        target: &TargetAddress,
        file: &PackageFile,
    ) -> Result<CachedPackage, TransportError> {
        let result = async {
            let ssh_target = SshTarget::from_address(target)?;
            let record = package_record(&file.package);
            let (remote, _sent) = self
                .inner
                .upload(&ssh_target, UploadSource::File(&file.path), "package")
                .await?;
            self.inner
                .run_package_command(
                    &ssh_target,
                    &["package-add", "--file", remote.sftp(), "--package", &record],
                )
                .await
        }
        .await;
        result.map_err(|error| error.into_transport_error(&target.name))
    }

    async fn apply_package_delta(
        &self,
        target: &TargetAddress,
        basis_sha256: &str,
        delta: Vec<u8>,
        package: &CachedPackage,
    ) -> Result<CachedPackage, TransportError> {
        let result = async {
            let ssh_target = SshTarget::from_address(target)?;
            let (remote, _sent) = self
                .inner
                .upload(&ssh_target, UploadSource::Bytes(&delta), "delta")
                .await?;
            let record = package_record(package);
            self.inner
                .run_package_command(
                    &ssh_target,
                    &[
                        "package-apply-delta",
                        "--basis",
                        basis_sha256,
                        "--delta",
                        remote.sftp(),
                        "--package",
                        &record,
                    ],
                )
                .await
        }
        .await;
        result.map_err(|error| error.into_transport_error(&target.name))
    }
}

/// A package record as `cuttle exec --package` takes it.
fn package_record(package: &CachedPackage) -> String {
    // Plain data with string keys: serializing cannot fail.
    serde_json::to_string(package).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_check_reads_uname() {
        let here = format!("{} {}", std::env::consts::OS, std::env::consts::ARCH);
        if std::env::consts::OS == "linux" {
            assert_eq!(
                platform_mismatch(&format!("Linux {}", std::env::consts::ARCH)),
                None
            );
        }
        assert_eq!(platform_mismatch(&here), None);
        let mismatch = platform_mismatch("SunOS sparc64").expect("a mismatch");
        assert!(mismatch.contains("SunOS sparc64"), "{mismatch}");
    }

    #[test]
    fn exec_commands_quote_every_argument() {
        let transport = SshTransport::new(
            Arc::new(crate::StaticCredentials::new()),
            SshTransportOptions {
                remote_work_directory: "/srv/cuttle work".to_owned(),
                ..SshTransportOptions::default()
            },
        );
        let command = transport.inner.exec_command(
            &RemotePath::new(".cuttle/bin/cuttle-0123"),
            &["status", "--ticket", "t-1"],
        );
        assert_eq!(
            command,
            "\"$HOME\"/'.cuttle/bin/cuttle-0123' exec --root '/srv/cuttle work' 'status' '--ticket' 't-1'"
        );
    }
}

/// The request with its isolation mutex named after the target, when it names none.
///
/// `cuttle exec`'s default mutex is one per exec root, that is per SSH login: right for an
/// agent, which is one target, but several SSH targets may share a host and account, and
/// Octopus keeps "one script at a time" per *target*. Keyed by the machine id, targets that
/// share a login run side by side while each still runs one script at a time.
fn request_isolated_per_target(
    request: &ScriptRequest,
    target: &TargetAddress,
) -> Option<ScriptRequest> {
    if request.isolation_mutex_name.is_some() || target.machine_id.is_empty() {
        return None;
    }
    let mut keyed = request.clone();
    keyed.isolation_mutex_name = Some(format!("target-{}", target.machine_id));
    Some(keyed)
}

#[cfg(test)]
mod isolation_tests {
    use cuttle_exec::{ScriptRequest, ScriptSyntax};
    use cuttle_orchestrator::TargetAddress;

    use super::request_isolated_per_target;

    fn address(machine_id: &str) -> TargetAddress {
        TargetAddress {
            machine_id: machine_id.to_owned(),
            name: "web01".to_owned(),
            space_id: "Spaces-1".to_owned(),
            endpoint: cuttle_domain::Endpoint::None,
        }
    }

    #[test]
    fn ssh_targets_sharing_a_login_get_a_mutex_each() {
        let request = ScriptRequest::new(
            "ticket-1".to_owned(),
            ScriptSyntax::Bash,
            "echo hi".to_owned(),
        );
        let keyed = request_isolated_per_target(&request, &address("Machines-3"))
            .expect("a request naming no mutex is keyed by its target");
        assert_eq!(keyed.mutex_name(), "target-Machines-3");
        assert!(keyed.validate().is_ok(), "the name is a valid mutex name");

        let mut named = request.clone();
        named.isolation_mutex_name = Some("Deployments".to_owned());
        assert!(request_isolated_per_target(&named, &address("Machines-3")).is_none());
        assert!(request_isolated_per_target(&request, &address("")).is_none());
    }
}
