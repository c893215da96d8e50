//! Tickets over time: idempotent start, cancel (also of a whole process tree), restarts,
//! completion, and the foreground runner.

use std::time::Duration;

use cuttle_exec::{
    ExecError, Executor, ForegroundFormat, LogLevel, ScriptState, ScriptSyntax, StartOutcome,
    run_foreground,
};

use crate::support::{
    assert_exit, fixture, process_alive, read_pids, request, run, texts, texts_at, wait_for_line,
    wait_for_state,
};

#[tokio::test]
async fn starting_a_ticket_twice_runs_it_once() {
    let fixture = fixture();
    let marks = tempfile::tempdir().expect("marks");
    let counter = marks.path().join("runs");
    let body = format!("echo run >> '{}'\necho done", counter.display());
    let first = fixture
        .executor
        .start(request("once", ScriptSyntax::Bash, &body))
        .await
        .expect("start");
    let second = fixture
        .executor
        .start(request("once", ScriptSyntax::Bash, &body))
        .await
        .expect("start again");
    assert_eq!(first, StartOutcome::Started);
    assert_eq!(second, StartOutcome::AlreadyStarted);
    fixture.executor.wait("once").await.expect("wait");
    let third = fixture
        .executor
        .start(request("once", ScriptSyntax::Bash, &body))
        .await
        .expect("start after the end");
    assert_eq!(third, StartOutcome::AlreadyStarted);

    // A new executor over the same root (a restart) does not run it again either.
    let restarted = Executor::open(fixture.root.path()).expect("reopen");
    let fourth = restarted
        .start(request("once", ScriptSyntax::Bash, &body))
        .await
        .expect("start after a restart");
    assert_eq!(fourth, StartOutcome::AlreadyStarted);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(std::fs::read_to_string(&counter).expect("counter"), "run\n");
    let status = restarted.status("once", 0).await.expect("status");
    assert_exit(&status, 0);
    assert_eq!(texts(&status), ["done"]);
}

#[tokio::test]
async fn two_executors_racing_for_one_ticket_run_it_once() {
    let root = tempfile::tempdir().expect("root");
    let marks = tempfile::tempdir().expect("marks");
    let counter = marks.path().join("runs");
    let script = request(
        "contested",
        ScriptSyntax::Sh,
        &format!("echo run >> '{}'", counter.display()),
    );
    for _ in 0..5 {
        // Each round uses a fresh ticket id.
        let round = format!("contested-{}", rand_suffix());
        let mut script = script.clone();
        script.ticket = round.clone();
        let first = Executor::open(root.path()).expect("open");
        let second = Executor::open(root.path()).expect("open");
        let (a, b) = tokio::join!(first.start(script.clone()), second.start(script));
        let outcomes = [a.expect("start"), b.expect("start")];
        assert_eq!(
            outcomes
                .iter()
                .filter(|outcome| **outcome == StartOutcome::Started)
                .count(),
            1,
            "{outcomes:?}"
        );
        let winner = if outcomes[0] == StartOutcome::Started {
            &first
        } else {
            &second
        };
        let seen_by_loser = if outcomes[0] == StartOutcome::Started {
            &second
        } else {
            &first
        };
        // The loser watches the winner's ticket on disk until it ends.
        assert_eq!(
            seen_by_loser.wait(&round).await.expect("wait"),
            ScriptState::Complete { exit_code: 0 }
        );
        winner.wait(&round).await.expect("wait");
    }
    assert_eq!(
        std::fs::read_to_string(&counter).expect("counter"),
        "run\n".repeat(5)
    );
    assert_eq!(
        std::fs::read_dir(root.path().join("staging"))
            .expect("staging")
            .count(),
        0,
        "no staging directory is left behind"
    );
}

#[test]
fn opening_removes_only_staging_directories_a_dead_executor_left_long_ago() {
    let root = tempfile::tempdir().expect("root");
    let staging = root.path().join("staging");
    // One being prepared right now: its lock file exists but is not locked yet.
    let fresh = staging.join("fresh-0000000000000001");
    // One left by an executor that died an hour ago.
    let abandoned = staging.join("abandoned-0000000000000002");
    for directory in [&fresh, &abandoned] {
        std::fs::create_dir_all(directory).expect("create a staging directory");
        std::fs::write(directory.join("owner.lock"), b"").expect("create its lock");
    }
    std::fs::File::options()
        .write(true)
        .open(abandoned.join("owner.lock"))
        .and_then(|lock| {
            lock.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        })
        .expect("age the lock");

    Executor::open(root.path()).expect("open");
    assert!(fresh.exists(), "a young directory may still be in use");
    assert!(
        !abandoned.exists(),
        "an old one with a free lock is removed"
    );
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish()
}

#[tokio::test]
async fn cancel_kills_the_whole_process_tree() {
    let fixture = fixture();
    let marks = tempfile::tempdir().expect("marks");
    let pid_file = marks.path().join("pids");
    let body = format!(
        "sleep 1000 &\necho $! >> '{pids}'\n(sleep 1000; echo never) &\necho $! >> '{pids}'\nbash -c 'sleep 1000' &\necho $! >> '{pids}'\necho $$ >> '{pids}'\necho ready\nwait",
        pids = pid_file.display()
    );
    fixture
        .executor
        .start(request("tree", ScriptSyntax::Bash, &body))
        .await
        .expect("start");
    wait_for_line(&fixture.executor, "tree", "ready").await;
    let pids = read_pids(&pid_file);
    assert_eq!(pids.len(), 4);
    assert!(pids.iter().all(|pid| process_alive(*pid)));

    let started = std::time::Instant::now();
    fixture.executor.cancel("tree").await.expect("cancel");
    let state = fixture.executor.wait("tree").await.expect("wait");
    assert_eq!(state, ScriptState::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(10));
    // Orphans may take a moment to be reaped by init; a zombie is not alive.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|pid| process_alive(*pid)) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alive: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|pid| process_alive(*pid))
        .collect();
    assert!(alive.is_empty(), "still alive after cancel: {alive:?}");
    let status = fixture.executor.status("tree", 0).await.expect("status");
    assert_eq!(status.state.exit_code(), Some(-43));
    assert!(texts(&status).contains(&"The script was cancelled"));
    assert!(!texts(&status).contains(&"never"));
}

#[tokio::test]
async fn cancel_while_pending_never_runs_the_script() {
    let fixture = fixture();
    let marks = tempfile::tempdir().expect("marks");
    let marker = marks.path().join("ran");
    fixture
        .executor
        .start(request(
            "holder",
            ScriptSyntax::Bash,
            "echo holding\nsleep 1000",
        ))
        .await
        .expect("start holder");
    wait_for_line(&fixture.executor, "holder", "holding").await;
    let waiting_body = format!("touch '{}'", marker.display());
    fixture
        .executor
        .start(request("waiter", ScriptSyntax::Bash, &waiting_body))
        .await
        .expect("start waiter");
    wait_for_line(
        &fixture.executor,
        "waiter",
        "Waiting for the script isolation mutex",
    )
    .await;
    let status = fixture.executor.status("waiter", 0).await.expect("status");
    assert_eq!(status.state, ScriptState::Pending);
    assert_eq!(
        texts(&status),
        [
            "Waiting for the script isolation mutex 'RunningScript' (full isolation): another script holds it"
        ]
    );

    fixture
        .executor
        .cancel("waiter")
        .await
        .expect("cancel waiter");
    assert_eq!(
        fixture.executor.wait("waiter").await.expect("wait"),
        ScriptState::Cancelled
    );
    fixture
        .executor
        .cancel("holder")
        .await
        .expect("cancel holder");
    assert_eq!(
        fixture.executor.wait("holder").await.expect("wait"),
        ScriptState::Cancelled
    );
    assert!(!marker.exists(), "the cancelled script ran");
}

#[tokio::test]
async fn a_restart_mid_script_reports_unknown_and_never_reruns() {
    let root = tempfile::tempdir().expect("root");
    let marks = tempfile::tempdir().expect("marks");
    let runs = marks.path().join("runs");
    let pid_file = marks.path().join("pid");
    let body = format!(
        "echo $$ > '{pid}'\necho run >> '{runs}'\necho started\nsleep 1000",
        pid = pid_file.display(),
        runs = runs.display()
    );
    let first = Executor::open(root.path()).expect("open");
    first
        .start(request("interrupted", ScriptSyntax::Bash, &body))
        .await
        .expect("start");
    first
        .start(request("never-started", ScriptSyntax::Bash, "echo ran"))
        .await
        .expect("start the pending one");
    wait_for_line(&first, "interrupted", "started").await;
    wait_for_state(&first, "never-started", ScriptState::Pending).await;
    first.detach().await;

    let second = Executor::open(root.path()).expect("reopen after the 'crash'");
    let status = second.status("interrupted", 0).await.expect("status");
    assert_eq!(status.state, ScriptState::Unknown);
    assert_eq!(status.state.exit_code(), Some(-46));
    assert_eq!(texts(&status)[0], "started");
    let explanation = status.lines.last().expect("an explanation");
    assert_eq!(explanation.level, LogLevel::Error);
    assert!(
        explanation
            .text
            .starts_with("The executor stopped while this script was running"),
        "{explanation:?}"
    );
    assert_eq!(explanation.sequence, 2);
    let pending = second.status("never-started", 0).await.expect("status");
    assert_eq!(pending.state, ScriptState::Cancelled);
    assert_eq!(
        texts(&pending).last(),
        Some(&"The executor stopped before this script started; it was not run")
    );

    assert_eq!(
        second
            .start(request("interrupted", ScriptSyntax::Bash, &body))
            .await
            .expect("start again"),
        StartOutcome::AlreadyStarted
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(std::fs::read_to_string(&runs).expect("runs"), "run\n");
    // Reopening again changes nothing and adds no second explanation.
    let third = Executor::open(root.path()).expect("reopen again");
    let again = third.status("interrupted", 0).await.expect("status");
    assert_eq!(again.lines, status.lines);

    // Clean up the orphaned script, as an operator would.
    let process_group = read_pids(&pid_file)[0];
    let _killed = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{process_group}")])
        .status();
}

#[tokio::test]
async fn complete_deletes_the_ticket() {
    let fixture = fixture();
    let status = run(
        &fixture.executor,
        request("to-complete", ScriptSyntax::Sh, "echo bye > file.txt"),
    )
    .await;
    assert_exit(&status, 0);
    let directory = fixture.root.path().join("tickets/to-complete");
    assert!(directory.join("workspace/file.txt").exists());
    fixture
        .executor
        .complete("to-complete")
        .await
        .expect("complete");
    assert!(!directory.exists());
    assert!(matches!(
        fixture.executor.status("to-complete", 0).await,
        Err(ExecError::UnknownTicket(_))
    ));
    fixture
        .executor
        .complete("to-complete")
        .await
        .expect("completing twice is fine");

    // Completing a running ticket cancels it first.
    fixture
        .executor
        .start(request("running", ScriptSyntax::Sh, "echo up\nsleep 1000"))
        .await
        .expect("start");
    wait_for_line(&fixture.executor, "running", "up").await;
    fixture
        .executor
        .complete("running")
        .await
        .expect("complete");
    assert!(!fixture.root.path().join("tickets/running").exists());
}

#[tokio::test]
async fn the_foreground_runner_streams_json_lines() {
    let root = tempfile::tempdir().expect("root");
    let mut script = request(
        "foreground",
        ScriptSyntax::Bash,
        "echo hello\necho oops >&2\nset_octopusvariable Out 'value'\nexit 2",
    );
    script
        .variables
        .push(cuttle_exec::ScriptVariable::sensitive(
            "Pw",
            "unused-secret",
        ));
    let mut output = Vec::new();
    let result = run_foreground(
        root.path(),
        script.clone(),
        ForegroundFormat::JsonLines,
        &mut output,
        std::future::pending(),
    )
    .await
    .expect("run");
    assert_eq!(result.exit_code, 2);
    let records: Vec<serde_json::Value> = String::from_utf8(output)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    let mut texts: Vec<&str> = records
        .iter()
        .filter_map(|record| record["Line"]["Text"].as_str())
        .collect();
    texts.sort_unstable();
    assert_eq!(texts, ["hello", "oops"]);
    let last = records.last().expect("a result record");
    assert_eq!(last["Result"]["ExitCode"], 2);
    assert_eq!(last["Result"]["OutputVariables"][0]["Value"], "value");

    // Running it again re-attaches: the same log, no second run.
    let mut again = Vec::new();
    let result = run_foreground(
        root.path(),
        script,
        ForegroundFormat::Text,
        &mut again,
        std::future::pending(),
    )
    .await
    .expect("re-attach");
    assert_eq!(result.exit_code, 2);
    let text = String::from_utf8(again).expect("utf-8");
    assert!(text.contains("Info      hello"), "{text}");
    assert!(text.contains("Output variable Out = value"), "{text}");

    // A cancel future stops the script.
    let mut cancelled_output = Vec::new();
    let result = run_foreground(
        root.path(),
        request("foreground-cancel", ScriptSyntax::Sh, "echo up\nsleep 1000"),
        ForegroundFormat::JsonLines,
        &mut cancelled_output,
        tokio::time::sleep(Duration::from_millis(300)),
    )
    .await
    .expect("run");
    assert_eq!(result.state, ScriptState::Cancelled);
    assert_eq!(result.exit_code, -43);
    let status = Executor::open(root.path())
        .expect("open")
        .status("foreground-cancel", 0)
        .await
        .expect("status");
    assert!(texts_at(&status, LogLevel::Info).contains(&"up"));
}
