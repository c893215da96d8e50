//! Shared helpers: a fresh executor per test, running a script to the end, reading lines.

use std::path::Path;
use std::time::Duration;

use cuttle_exec::{
    Executor, LogLevel, ScriptRequest, ScriptState, ScriptStatus, ScriptSyntax, StartOutcome,
};

pub(crate) struct Fixture {
    pub(crate) root: tempfile::TempDir,
    pub(crate) executor: Executor,
}

pub(crate) fn fixture() -> Fixture {
    let root = tempfile::tempdir().expect("temporary root");
    let executor = Executor::open(root.path()).expect("open the executor");
    Fixture { root, executor }
}

pub(crate) fn request(ticket: &str, syntax: ScriptSyntax, body: &str) -> ScriptRequest {
    ScriptRequest::new(ticket, syntax, body)
}

/// Starts the request, waits for the end, returns the full status.
pub(crate) async fn run(executor: &Executor, request: ScriptRequest) -> ScriptStatus {
    let ticket = request.ticket.clone();
    let outcome = executor.start(request).await.expect("start");
    assert_eq!(outcome, StartOutcome::Started);
    tokio::time::timeout(Duration::from_secs(60), executor.wait(&ticket))
        .await
        .expect("the script finishes within a minute")
        .expect("wait");
    executor.status(&ticket, 0).await.expect("status")
}

pub(crate) fn texts(status: &ScriptStatus) -> Vec<&str> {
    status.lines.iter().map(|line| line.text.as_str()).collect()
}

pub(crate) fn texts_at(status: &ScriptStatus, level: LogLevel) -> Vec<&str> {
    status
        .lines
        .iter()
        .filter(|line| line.level == level)
        .map(|line| line.text.as_str())
        .collect()
}

pub(crate) fn assert_exit(status: &ScriptStatus, exit_code: i32) {
    assert_eq!(
        status.state,
        ScriptState::Complete { exit_code },
        "lines: {:#?}",
        status.lines
    );
}

/// Polls until a line containing `needle` has been logged.
pub(crate) async fn wait_for_line(executor: &Executor, ticket: &str, needle: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = executor.status(ticket, 0).await.expect("status");
        if status.lines.iter().any(|line| line.text.contains(needle)) {
            return;
        }
        assert!(
            !status.state.is_finished(),
            "finished without {needle:?}: {:#?}",
            status.lines
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "no line with {needle:?} in time: {:#?}",
            status.lines
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until the ticket reaches `state`.
pub(crate) async fn wait_for_state(executor: &Executor, ticket: &str, state: ScriptState) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = executor.status(ticket, 0).await.expect("status");
        if status.state == state {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{ticket} never reached {state:?}: {status:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a process is alive (a zombie, waiting for its new parent to reap it, is not).
pub(crate) fn process_alive(process_id: u32) -> bool {
    let exists = std::process::Command::new("kill")
        .args(["-0", &process_id.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run kill")
        .success();
    if !exists {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{process_id}/stat")).unwrap_or_default();
    // The state is the first field after the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("");
    state != "Z" && state != "X"
}

pub(crate) fn read_pids(path: &Path) -> Vec<u32> {
    std::fs::read_to_string(path)
        .expect("read the pid file")
        .split_whitespace()
        .map(|pid| pid.parse().expect("a pid"))
        .collect()
}

/// Whether `needle` occurs anywhere in the file's bytes.
pub(crate) fn file_contains(path: &Path, needle: &str) -> bool {
    let bytes = std::fs::read(path).expect("read file");
    bytes
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// All regular files under `directory`.
pub(crate) fn files_under(directory: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![directory.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

pub(crate) fn command_exists(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}
