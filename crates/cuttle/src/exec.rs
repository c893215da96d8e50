//! `cuttle exec …`: run one ticket's script on this machine in the foreground, for a server
//! that reaches this machine over SSH (Calamari's role in Octopus). The server uploads this
//! binary and runs it over an SSH channel; people can run it too.
//!
//! - `cuttle exec` reads one `ScriptRequest` as JSON from standard input (never from the
//!   command line: it holds sensitive variables in clear) and writes JSON lines on standard
//!   output: `{"Start":…}`, then `{"Line":…}` per log line, then one `{"Result":…}`.
//!   Running it again for the same ticket re-attaches: nothing runs twice, the whole log is
//!   written again. The request is one line (the server's) or everything up to the end of
//!   input (a file). After the result it reads one more line: `complete` deletes the ticket
//!   and answers `{"Done":"complete"}`, so the server needs no second session for that; the
//!   end of input, anything else, or nothing for ten minutes leaves the ticket for `status`
//!   and `complete`.
//! - `cuttle exec status|cancel|complete --ticket T` re-attach and clean up, one JSON record.
//! - `cuttle exec packages|package-add|package-signature|package-apply-delta` keep the
//!   target's package cache (`packages` beside the root), as an agent's cache RPCs do: the
//!   server lists what is cached, uploads a file over SFTP and has it added (checked against
//!   its SHA-256), or asks for a signature and sends a delta. A package deployment's relative
//!   `PackagePath` names a file of that cache.
//!
//! The records are `cuttle_ssh::protocol::ExecRecord`. The exit code is 0 when the command did
//! its work (the script's exit code is in the `Result` record) and 1 after an `Error` record.
//!
//! When standard output goes away (the SSH connection dropped) the script keeps running and
//! this process stays until it ends, so its journal is complete for `status`. SIGTERM and
//! SIGINT cancel the script; SIGHUP is ignored. `cancel` from another process writes a marker
//! file that the foreground process watches for.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use cuttle_exec::{
    CachedPackage, ExecError, Executor, ForegroundFormat, PackageCache, ScriptRequest,
    StartOutcome, run_foreground, validate_ticket,
};
use cuttle_ssh::protocol::{
    ExecFailure, ExecFailureKind, ExecRecord, cancel_request_path, package_cache_directory,
};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// The largest request read from standard input, in bytes.
const MAX_REQUEST_LENGTH: u64 = 256 << 20;
/// How long the foreground process waits, after the result, for the server to ask it to
/// complete the ticket. A server that stopped following the ticket (its task moved to another
/// node) may keep its connection open for days: this bounds how long the process stays.
const COMPLETE_WAIT: Duration = Duration::from_secs(600);
/// How often the foreground process looks for a cancel marker.
const CANCEL_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How often opening the root is tried: processes starting at once on a fresh root race to
/// create its key file.
const OPEN_ATTEMPTS: u32 = 10;

#[derive(Debug, clap::Args)]
pub(crate) struct ExecArguments {
    /// The executor's root directory: tickets, their logs and workspaces.
    /// Default: ~/.cuttle/work.
    #[arg(long, global = true)]
    root: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<ExecCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum ExecCommand {
    /// Print a ticket's state and its log lines after a sequence number, as JSON.
    Status {
        #[arg(long)]
        ticket: String,
        /// The sequence of the last line already seen (0 for all).
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
    /// Stop a ticket's script (its process group gets SIGTERM, then SIGKILL). A ticket that
    /// has not started yet is cancelled as soon as it does.
    Cancel {
        #[arg(long)]
        ticket: String,
    },
    /// Delete a finished ticket: its workspace, log and state.
    Complete {
        #[arg(long)]
        ticket: String,
    },
    /// List the cached versions of a package.
    Packages {
        /// The package id, e.g. `Acme.Web`.
        #[arg(long)]
        package_id: String,
    },
    /// Move an uploaded file into the package cache, checked against the record's SHA-256.
    PackageAdd {
        /// The uploaded file; removed once added (or refused).
        #[arg(long)]
        file: PathBuf,
        /// The package's record (`CachedPackage` JSON).
        #[arg(long)]
        package: String,
    },
    /// Print the delta signature of a cached package, base64.
    PackageSignature {
        /// The SHA-256 (hex) of the cached package.
        #[arg(long)]
        sha256: String,
    },
    /// Patch a cached package with an uploaded delta into the cache as `--package`.
    PackageApplyDelta {
        /// The SHA-256 (hex) of the cached package the delta was computed against.
        #[arg(long)]
        basis: String,
        /// The uploaded delta; removed afterwards.
        #[arg(long)]
        delta: PathBuf,
        /// The new package's record (`CachedPackage` JSON).
        #[arg(long)]
        package: String,
    },
}

/// Runs `cuttle exec`; the exit code is 1 when an `Error` record was written.
pub(crate) fn run(arguments: ExecArguments) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(run_async(arguments))
}

async fn run_async(arguments: ExecArguments) -> anyhow::Result<ExitCode> {
    let mut stdout = DetachableOutput::new(tokio::io::stdout());
    let outcome = match root_directory(arguments.root) {
        Ok(root) => match arguments.command {
            None => foreground(&root, &mut stdout).await,
            Some(ExecCommand::Status { ticket, after }) => status(&root, &ticket, after).await,
            Some(ExecCommand::Cancel { ticket }) => cancel(&root, &ticket).await,
            Some(ExecCommand::Complete { ticket }) => complete(&root, &ticket).await,
            Some(package_command) => package_cache_command(&root, package_command).await,
        },
        Err(failure) => Err(failure),
    };
    let (record, exit_code) = match outcome {
        Ok(None) => return Ok(ExitCode::SUCCESS),
        Ok(Some(record)) => (record, ExitCode::SUCCESS),
        Err(failure) => {
            tracing::debug!("cuttle exec failed: {}", failure.message);
            (ExecRecord::Error(failure), ExitCode::FAILURE)
        }
    };
    // Written even when standard output is gone: there is nobody else to tell.
    let _written = stdout.write_all(record.to_line().as_bytes()).await;
    let _flushed = stdout.flush().await;
    Ok(exit_code)
}

/// `--root`, or `~/.cuttle/work`, made absolute.
fn root_directory(root: Option<PathBuf>) -> Result<PathBuf, ExecFailure> {
    let root = match root {
        Some(root) => root,
        None => std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".cuttle").join("work"))
            .ok_or_else(|| {
                failed("HOME is not set; hint: pass --root to choose the work directory")
            })?,
    };
    std::path::absolute(&root)
        .map_err(|error| failed(format!("could not resolve {}: {error}", root.display())))
}

fn failed(message: impl Into<String>) -> ExecFailure {
    ExecFailure::new(ExecFailureKind::Failed, message)
}

fn exec_failure(error: &ExecError) -> ExecFailure {
    ExecFailure::from(error)
}

/// Opens the executor, retrying while another process creates the root's key file.
async fn open_executor(root: &Path) -> Result<Executor, ExecFailure> {
    let mut attempt = 1;
    loop {
        match Executor::open(root) {
            Ok(executor) => return Ok(executor),
            Err(ExecError::Secret(_)) if attempt < OPEN_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => return Err(exec_failure(&error)),
        }
    }
}

/// `cuttle exec`: start (or re-attach to) the request's ticket and stream it to its end.
async fn foreground(
    root: &Path,
    stdout: &mut DetachableOutput<tokio::io::Stdout>,
) -> Result<Option<ExecRecord>, ExecFailure> {
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin().take(MAX_REQUEST_LENGTH));
    let unreadable =
        |error: std::io::Error| failed(format!("could not read standard input: {error}"));
    let mut input = Vec::new();
    stdin
        .read_until(b'\n', &mut input)
        .await
        .map_err(unreadable)?;
    let mut parsed = serde_json::from_slice::<ScriptRequest>(&input);
    if parsed.as_ref().is_err_and(serde_json::Error::is_eof) {
        // A request written over several lines (a file): it ends with the input.
        stdin.read_to_end(&mut input).await.map_err(unreadable)?;
        parsed = serde_json::from_slice::<ScriptRequest>(&input);
    }
    drop(input);
    // The error's position only: its text could quote a variable's value.
    let request = parsed.map_err(|error| {
        ExecFailure::new(
            ExecFailureKind::InvalidRequest,
            format!(
                "standard input is not a script request (JSON {:?} error at line {}, column {})",
                error.classify(),
                error.line(),
                error.column()
            ),
        )
    })?;
    request.validate().map_err(|error| exec_failure(&error))?;
    let mut request = request;
    resolve_package_path(root, &mut request)?;

    // Whether this run starts the ticket. Another process could start it in between; then
    // this run re-attaches and the answer is off by one word, never a second run.
    let executor = open_executor(root).await?;
    let outcome = match executor.status(&request.ticket, u64::MAX).await {
        Ok(_) => StartOutcome::AlreadyStarted,
        Err(ExecError::UnknownTicket(_)) => StartOutcome::Started,
        Err(error) => return Err(exec_failure(&error)),
    };
    drop(executor);
    let start = ExecRecord::Start(outcome).to_line();
    let _written = stdout.write_all(start.as_bytes()).await;
    let _flushed = stdout.flush().await;

    let ticket = request.ticket.clone();
    let marker = cancel_request_path(root, &ticket);
    run_foreground(
        root,
        request,
        ForegroundFormat::JsonLines,
        stdout,
        cancel_requested(marker),
    )
    .await
    .map_err(|error| exec_failure(&error))?;

    // The server saves the result, then may ask on this session to complete the ticket.
    let mut command = String::new();
    match tokio::time::timeout(COMPLETE_WAIT, stdin.read_line(&mut command)).await {
        Ok(Ok(_)) if command.trim() == "complete" => complete(root, &ticket).await,
        // The ticket stays for `cuttle exec status` and `cuttle exec complete`.
        _ => Ok(None),
    }
}

/// A package deployment's relative `PackagePath` is a file of the target's package cache.
fn resolve_package_path(root: &Path, request: &mut ScriptRequest) -> Result<(), ExecFailure> {
    let Some(deployment) = &mut request.package_deployment else {
        return Ok(());
    };
    if deployment.package_path.is_absolute() {
        return Ok(());
    }
    let cache = open_package_cache(root)?;
    let name = deployment.package_path.to_string_lossy().into_owned();
    deployment.package_path = cache.resolve_file_name(&name).ok_or_else(|| {
        ExecFailure::new(
            ExecFailureKind::InvalidRequest,
            format!(
                "the package file {name} is not in the package cache {}",
                cache.directory().display()
            ),
        )
    })?;
    Ok(())
}

fn open_package_cache(root: &Path) -> Result<PackageCache, ExecFailure> {
    let directory = package_cache_directory(root);
    PackageCache::open(&directory).map_err(|error| {
        failed(format!(
            "could not open the package cache {}: {error}",
            directory.display()
        ))
    })
}

fn parse_package(text: &str) -> Result<CachedPackage, ExecFailure> {
    serde_json::from_str(text).map_err(|error| {
        ExecFailure::new(
            ExecFailureKind::InvalidRequest,
            format!("--package is not a package record: {error}"),
        )
    })
}

/// The package cache subcommands; each answers one record. File work runs on a blocking
/// thread: hashing and patching a large package takes seconds.
async fn package_cache_command(
    root: &Path,
    command: ExecCommand,
) -> Result<Option<ExecRecord>, ExecFailure> {
    let cache = open_package_cache(root)?;
    let answer = tokio::task::spawn_blocking(move || -> Result<ExecRecord, ExecFailure> {
        let cache_failure = |error: cuttle_exec::PackageCacheError| failed(error.to_string());
        match command {
            ExecCommand::Packages { package_id } => {
                Ok(ExecRecord::Packages(cache.list(&package_id)))
            }
            ExecCommand::PackageAdd { file, package } => {
                let added = parse_package(&package)
                    .and_then(|package| cache.insert_copy(&package, &file).map_err(cache_failure));
                let _removed = std::fs::remove_file(&file);
                added.map(ExecRecord::Package)
            }
            ExecCommand::PackageSignature { sha256 } => {
                let signature = cache.signature(&sha256).map_err(cache_failure)?;
                Ok(ExecRecord::signature(&signature))
            }
            ExecCommand::PackageApplyDelta {
                basis,
                delta,
                package,
            } => {
                let applied = parse_package(&package).and_then(|package| {
                    cache
                        .apply_delta(&basis, &delta, &package)
                        .map_err(cache_failure)
                });
                let _removed = std::fs::remove_file(&delta);
                applied.map(ExecRecord::Package)
            }
            ExecCommand::Status { .. }
            | ExecCommand::Cancel { .. }
            | ExecCommand::Complete { .. } => Err(failed("not a package cache command")),
        }
    })
    .await
    .map_err(|error| failed(format!("the package cache command failed: {error}")))??;
    Ok(Some(answer))
}

/// Resolves when SIGTERM or SIGINT arrives or the ticket's cancel marker appears.
async fn cancel_requested(marker: PathBuf) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).ok();
        let mut interrupt = signal(SignalKind::interrupt()).ok();
        // Handled (so it does not kill us) and ignored: a dropped connection must not stop
        // the script.
        let mut hangup = signal(SignalKind::hangup()).ok();
        loop {
            if marker.exists() {
                return;
            }
            tokio::select! {
                Some(()) = recv(&mut terminate) => return,
                Some(()) = recv(&mut interrupt) => return,
                Some(()) = recv(&mut hangup) => {}
                () = tokio::time::sleep(CANCEL_POLL_INTERVAL) => {}
            }
        }
    }
    #[cfg(not(unix))]
    loop {
        if marker.exists() {
            return;
        }
        tokio::time::sleep(CANCEL_POLL_INTERVAL).await;
    }
}

#[cfg(unix)]
async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

async fn status(root: &Path, ticket: &str, after: u64) -> Result<Option<ExecRecord>, ExecFailure> {
    validate_ticket(ticket).map_err(|error| exec_failure(&error))?;
    let executor = open_executor(root).await?;
    let status = executor
        .status(ticket, after)
        .await
        .map_err(|error| exec_failure(&error))?;
    Ok(Some(ExecRecord::Status(status)))
}

async fn cancel(root: &Path, ticket: &str) -> Result<Option<ExecRecord>, ExecFailure> {
    validate_ticket(ticket).map_err(|error| exec_failure(&error))?;
    let marker = cancel_request_path(root, ticket);
    if let Some(directory) = marker.parent() {
        tokio::fs::create_dir_all(directory)
            .await
            .map_err(|error| {
                failed(format!("could not create {}: {error}", directory.display()))
            })?;
    }
    tokio::fs::write(&marker, b"")
        .await
        .map_err(|error| failed(format!("could not write {}: {error}", marker.display())))?;
    let executor = open_executor(root).await?;
    match executor.cancel(ticket).await {
        // Finished already, or running in the foreground process that watches the marker,
        // or not started yet (the marker cancels it when it starts).
        Ok(()) | Err(ExecError::StillRunning(_) | ExecError::UnknownTicket(_)) => {
            Ok(Some(ExecRecord::Done("cancel".to_owned())))
        }
        Err(error) => Err(exec_failure(&error)),
    }
}

async fn complete(root: &Path, ticket: &str) -> Result<Option<ExecRecord>, ExecFailure> {
    validate_ticket(ticket).map_err(|error| exec_failure(&error))?;
    let executor = open_executor(root).await?;
    executor
        .complete(ticket)
        .await
        .map_err(|error| exec_failure(&error))?;
    match tokio::fs::remove_file(cancel_request_path(root, ticket)).await {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(failed(format!(
                "could not remove the cancel marker: {error}"
            )));
        }
    }
    Ok(Some(ExecRecord::Done("complete".to_owned())))
}

/// Standard output that, once writing fails (the reader went away), silently discards the
/// rest, so the script is still followed to its end.
struct DetachableOutput<W> {
    inner: W,
    gone: bool,
}

impl<W> DetachableOutput<W> {
    fn new(inner: W) -> DetachableOutput<W> {
        DetachableOutput { inner, gone: false }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for DetachableOutput<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.gone {
            return Poll::Ready(Ok(buffer.len()));
        }
        match Pin::new(&mut self.inner).poll_write(context, buffer) {
            Poll::Ready(Err(_)) => {
                self.gone = true;
                Poll::Ready(Ok(buffer.len()))
            }
            other => other,
        }
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.gone {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut self.inner).poll_flush(context) {
            Poll::Ready(Err(_)) => {
                self.gone = true;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.gone {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut self.inner).poll_shutdown(context) {
            Poll::Ready(Err(_)) => {
                self.gone = true;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader has gone away.
    struct Broken;

    impl AsyncWrite for Broken {
        fn poll_write(
            self: Pin<&mut Self>,
            _context: &mut Context<'_>,
            _buffer: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()))
        }

        fn poll_flush(
            self: Pin<&mut Self>,
            _context: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()))
        }

        fn poll_shutdown(
            self: Pin<&mut Self>,
            _context: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_vanished_reader_does_not_stop_the_writer() {
        let mut output = DetachableOutput::new(Broken);
        output.write_all(b"line\n").await.expect("discarded");
        output.flush().await.expect("discarded");
        assert!(output.gone);
    }
}
