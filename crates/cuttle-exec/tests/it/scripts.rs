//! Running scripts: output order, sequences, exit codes, stderr, arguments, files, timeouts.

use std::time::Duration;

use cuttle_exec::{
    ExecError, Executor, ExecutorOptions, LogLevel, ScriptState, ScriptSyntax, StagedFile,
    exit_codes,
};

use crate::support::{assert_exit, fixture, request, run, texts, texts_at};

#[tokio::test]
async fn output_lines_arrive_in_order_with_sequences() {
    let fixture = fixture();
    let status = run(
        &fixture.executor,
        request(
            "order",
            ScriptSyntax::Bash,
            "for i in 1 2 3 4 5; do echo \"line $i\"; done\necho\necho 'last'",
        ),
    )
    .await;
    assert_exit(&status, 0);
    assert_eq!(
        texts(&status),
        ["line 1", "line 2", "line 3", "line 4", "line 5", "", "last"]
    );
    let sequences: Vec<u64> = status.lines.iter().map(|line| line.sequence).collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5, 6, 7]);
    assert!(status.lines.iter().all(|line| line.level == LogLevel::Info));
    assert_eq!(status.next_sequence, 7);
    assert!(
        status
            .lines
            .windows(2)
            .all(|pair| pair[0].occurred_at <= pair[1].occurred_at)
    );

    let newer = fixture.executor.status("order", 5).await.expect("status");
    assert_eq!(texts(&newer), ["", "last"]);
    assert_eq!(newer.next_sequence, 7);
    let nothing_new = fixture.executor.status("order", 7).await.expect("status");
    assert!(nothing_new.lines.is_empty());
    assert_eq!(nothing_new.next_sequence, 7);
}

#[tokio::test]
async fn long_logs_are_served_in_pages() {
    let fixture = fixture();
    let status = run(
        &fixture.executor,
        request(
            "long-log",
            ScriptSyntax::Bash,
            "for i in $(seq 1 12000); do echo \"line $i\"; done",
        ),
    )
    .await;
    assert_exit(&status, 0);
    assert_eq!(status.lines.len(), cuttle_exec::MAX_LINES_PER_STATUS);
    let mut after = 0;
    let mut all = Vec::new();
    loop {
        let page = fixture
            .executor
            .status("long-log", after)
            .await
            .expect("status");
        if page.lines.is_empty() {
            break;
        }
        after = page.next_sequence;
        all.extend(page.lines);
    }
    assert_eq!(all.len(), 12000);
    assert!(
        all.iter()
            .enumerate()
            .all(|(index, line)| line.sequence == index as u64 + 1
                && line.text == format!("line {}", index + 1))
    );
    // Lines a caller confirmed were dropped from memory, yet a caller starting over (a
    // restarted server) still gets every one, from the journal.
    let again = fixture
        .executor
        .status("long-log", 0)
        .await
        .expect("status");
    assert_eq!(again.lines.len(), cuttle_exec::MAX_LINES_PER_STATUS);
    assert_eq!(again.lines[0].text, "line 1");
    let middle = fixture
        .executor
        .status("long-log", 6_000)
        .await
        .expect("status");
    assert_eq!(middle.lines[0].text, "line 6001");
    assert_eq!(middle.next_sequence, 11_000);
    // The same pages come from disk after a restart.
    let reopened = Executor::open(fixture.root.path()).expect("reopen");
    let page = reopened.status("long-log", 11_998).await.expect("status");
    assert_eq!(texts(&page), ["line 11999", "line 12000"]);
}

#[tokio::test]
async fn exit_codes_are_reported() {
    let fixture = fixture();
    for (ticket, syntax, body, code) in [
        ("bash-3", ScriptSyntax::Bash, "echo before\nexit 3", 3),
        ("bash-0", ScriptSyntax::Bash, "true", 0),
        ("sh-7", ScriptSyntax::Sh, "exit 7", 7),
        (
            "python-5",
            ScriptSyntax::Python,
            "import sys\nsys.exit(5)",
            5,
        ),
        ("python-0", ScriptSyntax::Python, "print('ok')", 0),
        (
            "python-raise",
            ScriptSyntax::Python,
            "raise RuntimeError('boom')",
            1,
        ),
        ("bash-killed", ScriptSyntax::Bash, "kill -9 $$", 137),
    ] {
        let status = run(&fixture.executor, request(ticket, syntax, body)).await;
        assert_exit(&status, code);
    }
}

#[tokio::test]
async fn stderr_lines_are_errors() {
    let fixture = fixture();
    let status = run(
        &fixture.executor,
        request(
            "stderr",
            ScriptSyntax::Bash,
            "echo out\necho 'something failed' >&2\nsleep 0.1\necho after",
        ),
    )
    .await;
    assert_exit(&status, 0);
    assert_eq!(texts_at(&status, LogLevel::Error), ["something failed"]);
    assert_eq!(texts_at(&status, LogLevel::Info), ["out", "after"]);

    let python = run(
        &fixture.executor,
        request(
            "stderr-python",
            ScriptSyntax::Python,
            "import sys\nprint('to stderr', file=sys.stderr)",
        ),
    )
    .await;
    assert_eq!(texts_at(&python, LogLevel::Error), ["to stderr"]);
}

#[tokio::test]
async fn arguments_and_working_directory() {
    let fixture = fixture();
    let mut bash = request(
        "arguments",
        ScriptSyntax::Bash,
        "echo \"$#:$1:$2\"\nbasename \"$(pwd)\"",
    );
    bash.arguments = vec!["first arg".into(), "it's".into()];
    let status = run(&fixture.executor, bash).await;
    assert_eq!(texts(&status), ["2:first arg:it's", "workspace"]);

    let mut python = request(
        "arguments-python",
        ScriptSyntax::Python,
        "import sys\nprint(sys.argv[1:])\nprint(__name__)",
    );
    python.arguments = vec!["a".into(), "b c".into()];
    let status = run(&fixture.executor, python).await;
    assert_eq!(texts(&status), ["['a', 'b c']", "__main__"]);
}

#[tokio::test]
async fn staged_files_are_copied_into_the_workspace() {
    let fixture = fixture();
    let staging = tempfile::tempdir().expect("staging");
    let source = staging.path().join("uploaded.bin");
    std::fs::write(&source, "package contents").expect("stage");
    let mut with_file = request("files", ScriptSyntax::Sh, "cat app.txt");
    with_file.files.push(StagedFile {
        name: "app.txt".into(),
        source,
    });
    let status = run(&fixture.executor, with_file).await;
    assert_exit(&status, 0);
    assert_eq!(texts(&status), ["package contents"]);

    let mut missing = request("files-missing", ScriptSyntax::Sh, "echo never");
    missing.files.push(StagedFile {
        name: "gone.txt".into(),
        source: staging.path().join("gone.txt"),
    });
    let status = run(&fixture.executor, missing).await;
    assert_exit(&status, exit_codes::FATAL);
    assert!(
        texts_at(&status, LogLevel::Error)[0].contains("could not be prepared"),
        "{status:#?}"
    );
}

#[tokio::test]
async fn a_script_past_its_timeout_is_stopped() {
    let fixture = fixture();
    let mut slow = request(
        "timeout",
        ScriptSyntax::Bash,
        "echo started\nsleep 30\necho never",
    );
    slow.timeout = Some(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let status = run(&fixture.executor, slow).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(status.state, ScriptState::TimedOut);
    assert_eq!(status.state.exit_code(), Some(exit_codes::TIMED_OUT));
    assert!(!texts(&status).contains(&"never"));
    assert!(
        texts_at(&status, LogLevel::Error)
            .iter()
            .any(|text| text.contains("did not finish within 300 ms")),
        "{status:#?}"
    );

    let mut quick = request("timeout-not-reached", ScriptSyntax::Bash, "echo quick");
    quick.timeout = Some(Duration::from_secs(30));
    assert_exit(&run(&fixture.executor, quick).await, 0);
}

#[tokio::test]
async fn a_missing_interpreter_fails_the_ticket() {
    if crate::support::command_exists("pwsh") {
        println!("note: pwsh is installed; the missing-interpreter test is skipped");
        return;
    }
    let fixture = fixture();
    let status = run(
        &fixture.executor,
        request("no-pwsh", ScriptSyntax::PowerShell, "Write-Host hi"),
    )
    .await;
    assert_exit(&status, exit_codes::FATAL);
    assert!(
        texts_at(&status, LogLevel::Error)[0].contains("Could not start pwsh"),
        "{status:#?}"
    );
}

#[tokio::test]
async fn the_executors_environment_is_filtered() {
    let root = tempfile::tempdir().expect("root");
    let options = ExecutorOptions {
        removed_environment_prefixes: vec!["HOME".into()],
        environment: vec![("CUTTLE_ADDED".into(), "added value".into())],
        ..ExecutorOptions::default()
    };
    let executor = Executor::open_with(root.path(), options).expect("open");
    let status = run(
        &executor,
        request(
            "environment",
            ScriptSyntax::Sh,
            "echo \"${HOME:-no home}\"\necho \"$CUTTLE_ADDED\"",
        ),
    )
    .await;
    assert_eq!(texts(&status), ["no home", "added value"]);
}

#[tokio::test]
async fn invalid_requests_are_refused_before_anything_is_created() {
    let fixture = fixture();
    for ticket in ["", "..", "a/b", "has space"] {
        let result = fixture
            .executor
            .start(request(ticket, ScriptSyntax::Sh, "true"))
            .await;
        assert!(
            matches!(result, Err(ExecError::InvalidTicket { .. })),
            "{ticket:?}: {result:?}"
        );
    }
    assert!(matches!(
        fixture.executor.status("nope", 0).await,
        Err(ExecError::UnknownTicket(_))
    ));
    let tickets = std::fs::read_dir(fixture.root.path().join("tickets"))
        .expect("tickets dir")
        .count();
    assert_eq!(tickets, 0);
}

#[tokio::test]
async fn powershell_scripts_run_when_pwsh_is_installed() {
    if !crate::support::command_exists("pwsh") {
        println!("note: pwsh is not installed; the PowerShell bootstrap test is skipped");
        return;
    }
    let fixture = fixture();
    let mut script = request(
        "powershell",
        ScriptSyntax::PowerShell,
        "Write-Host \"Hello $($OctopusParameters['Name'])\"\nSet-OctopusVariable -name 'Out' -value 'done'\nexit 4",
    );
    script
        .variables
        .push(cuttle_exec::ScriptVariable::new("Name", "World"));
    let status = run(&fixture.executor, script).await;
    assert_exit(&status, 4);
    assert_eq!(texts(&status), ["Hello World"]);
    assert_eq!(status.output_variables[0].value, "done");
}
