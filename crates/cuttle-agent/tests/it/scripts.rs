//! The script calls, in both modes: capabilities, start → status lines → exit code, an
//! idempotent start, cancel, complete, and a staged file from the store.

use cuttle_agent::protocol::features;
use cuttle_exec::{ScriptRequest, ScriptState, ScriptSyntax, StagedFile, StartOutcome};

use crate::helpers::{
    Fixture, Mode, SUBSCRIPTION_ID, texts, wait_for_state, wait_until_finished, within,
};

in_both_modes!(capabilities_describe_the_agent);
async fn capabilities_describe_the_agent(mode: Mode) {
    let fixture = Fixture::start(mode).await;
    let capabilities = within(fixture.connection.capabilities())
        .await
        .expect("capabilities");
    assert_eq!(capabilities.agent_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(capabilities.os, std::env::consts::OS);
    assert_eq!(capabilities.architecture, std::env::consts::ARCH);
    assert!(
        capabilities.shells.contains(&ScriptSyntax::Sh),
        "{capabilities:?}"
    );
    assert!(
        capabilities.shells.contains(&ScriptSyntax::Bash),
        "{capabilities:?}"
    );
    for feature in [features::SCRIPTS, features::FILE_TRANSFER] {
        assert!(
            capabilities.features.iter().any(|f| f == feature),
            "{capabilities:?}"
        );
    }
    let expected_subscription = (mode == Mode::Polling).then(|| SUBSCRIPTION_ID.to_owned());
    assert_eq!(capabilities.subscription_id, expected_subscription);
}

in_both_modes!(a_script_streams_numbered_lines_and_ends_with_its_exit_code);
async fn a_script_streams_numbered_lines_and_ends_with_its_exit_code(mode: Mode) {
    let fixture = Fixture::start(mode).await;
    let connection = &fixture.connection;
    let request = ScriptRequest::new(
        "ticket-lines",
        ScriptSyntax::Bash,
        "echo one\necho two\necho three\nexit 3\n",
    );
    let outcome = within(connection.start_script(&request))
        .await
        .expect("started");
    assert_eq!(outcome, StartOutcome::Started);
    let (status, lines) = wait_until_finished(connection, "ticket-lines").await;
    assert_eq!(status.state, ScriptState::Complete { exit_code: 3 });
    let output: Vec<&str> = texts(&lines)
        .into_iter()
        .filter(|text| ["one", "two", "three"].contains(text))
        .collect();
    assert_eq!(output, ["one", "two", "three"]);
    let sequences: Vec<u64> = lines.iter().map(|line| line.sequence).collect();
    assert!(
        sequences.windows(2).all(|pair| pair[1] == pair[0] + 1) && sequences[0] == 1,
        "{sequences:?}"
    );
    // Asking after a sequence returns only the lines after it.
    let first = &lines[0];
    let rest = connection
        .script_status("ticket-lines", first.sequence)
        .await
        .expect("a status");
    assert_eq!(rest.lines, lines[1..]);
    assert_eq!(rest.next_sequence, lines.last().expect("lines").sequence);
    let none = connection
        .script_status("ticket-lines", rest.next_sequence)
        .await
        .expect("a status");
    assert!(none.lines.is_empty());
    assert_eq!(none.next_sequence, rest.next_sequence);
}

in_both_modes!(starting_a_ticket_twice_runs_it_once);
async fn starting_a_ticket_twice_runs_it_once(mode: Mode) {
    let fixture = Fixture::start(mode).await;
    let connection = &fixture.connection;
    let marker = fixture.home.path().join("runs.txt");
    let body = format!("echo run >> '{}'\necho first", marker.display());
    let request = ScriptRequest::new("ticket-once", ScriptSyntax::Bash, body);
    assert_eq!(
        within(connection.start_script(&request))
            .await
            .expect("started"),
        StartOutcome::Started
    );
    // A retry (even with another body) runs nothing.
    let retry = ScriptRequest::new("ticket-once", ScriptSyntax::Bash, "echo second");
    assert_eq!(
        within(connection.start_script(&retry))
            .await
            .expect("answered"),
        StartOutcome::AlreadyStarted
    );
    let (status, lines) = wait_until_finished(connection, "ticket-once").await;
    assert_eq!(status.state, ScriptState::Complete { exit_code: 0 });
    assert!(texts(&lines).contains(&"first"), "{lines:?}");
    assert!(!texts(&lines).contains(&"second"), "{lines:?}");
    assert_eq!(
        within(connection.start_script(&request))
            .await
            .expect("answered"),
        StartOutcome::AlreadyStarted
    );
    assert_eq!(
        std::fs::read_to_string(&marker).expect("the marker"),
        "run\n"
    );
}

in_both_modes!(cancel_stops_a_running_script);
async fn cancel_stops_a_running_script(mode: Mode) {
    let fixture = Fixture::start(mode).await;
    let connection = &fixture.connection;
    let request = ScriptRequest::new(
        "ticket-cancel",
        ScriptSyntax::Bash,
        "echo started\nsleep 30\necho never",
    );
    within(connection.start_script(&request))
        .await
        .expect("started");
    wait_for_state(connection, "ticket-cancel", |state| {
        state == ScriptState::Running
    })
    .await;
    let status = within(connection.cancel_script("ticket-cancel", 0))
        .await
        .expect("cancel answers the status");
    assert_eq!(status.ticket, "ticket-cancel");
    let (status, lines) = wait_until_finished(connection, "ticket-cancel").await;
    assert_eq!(status.state, ScriptState::Cancelled);
    assert_eq!(status.state.exit_code(), Some(-43));
    assert!(!texts(&lines).contains(&"never"), "{lines:?}");
}

in_both_modes!(complete_forgets_the_ticket);
async fn complete_forgets_the_ticket(mode: Mode) {
    let fixture = Fixture::start(mode).await;
    let connection = &fixture.connection;
    let request = ScriptRequest::new("ticket-complete", ScriptSyntax::Sh, "echo done");
    within(connection.start_script(&request))
        .await
        .expect("started");
    wait_until_finished(connection, "ticket-complete").await;
    within(connection.complete_script("ticket-complete"))
        .await
        .expect("completed");
    let error = within(connection.script_status("ticket-complete", 0))
        .await
        .expect_err("the ticket is gone");
    assert_eq!(
        error.status().map(|status| status.as_u16()),
        Some(404),
        "{error}"
    );
    assert!(!error.is_retryable());
    // Completing again is harmless.
    within(connection.complete_script("ticket-complete"))
        .await
        .expect("completed again");
    // A bad ticket id is the caller's mistake.
    let error = within(connection.script_status("../x", 0))
        .await
        .expect_err("an invalid ticket");
    assert_eq!(
        error.status().map(|status| status.as_u16()),
        Some(400),
        "{error}"
    );
}

in_both_modes!(a_script_reads_a_staged_file_from_the_store);
async fn a_script_reads_a_staged_file_from_the_store(mode: Mode) {
    let fixture = Fixture::start(mode).await;
    let connection = &fixture.connection;
    within(connection.upload("input-1.0.txt", "staged content\n".into()))
        .await
        .expect("uploaded");
    let mut request = ScriptRequest::new("ticket-staged", ScriptSyntax::Bash, "cat data.txt");
    request.files.push(StagedFile {
        name: "data.txt".into(),
        source: "input-1.0.txt".into(),
    });
    within(connection.start_script(&request))
        .await
        .expect("started");
    let (status, lines) = wait_until_finished(connection, "ticket-staged").await;
    assert_eq!(status.state, ScriptState::Complete { exit_code: 0 });
    assert!(texts(&lines).contains(&"staged content"), "{lines:?}");

    let mut escaping = ScriptRequest::new("ticket-escape", ScriptSyntax::Bash, "true");
    escaping.files.push(StagedFile {
        name: "data.txt".into(),
        source: "../agent.json".into(),
    });
    let error = within(connection.start_script(&escaping))
        .await
        .expect_err("a relative source outside the store");
    assert_eq!(
        error.status().map(|status| status.as_u16()),
        Some(400),
        "{error}"
    );
}
