//! An agent restarted mid-script reports "unknown result" for the ticket and never runs the
//! script again, whatever the server retries.

use cuttle_exec::{ScriptRequest, ScriptState, ScriptSyntax, StartOutcome, exit_codes};

use crate::helpers::{ListeningAgent, connect_listening, identity, new_service, within};

#[tokio::test]
async fn a_restart_mid_script_reports_unknown_and_never_reruns() {
    let home = tempfile::tempdir().expect("a home");
    let server = identity("server");
    let agent = identity("agent");
    let marker = home.path().join("runs.txt");
    let request = ScriptRequest::new(
        "ticket-restart",
        ScriptSyntax::Bash,
        format!("echo run >> '{}'\necho started\nsleep 5", marker.display()),
    );

    let service = new_service(home.path(), None);
    let listening = ListeningAgent::start(&service, &agent, &[server.thumbprint()]).await;
    let connection = within(connect_listening(
        listening.address,
        &server,
        agent.thumbprint(),
    ))
    .await
    .expect("connected");
    within(connection.start_script(&request))
        .await
        .expect("started");
    // Wait until the server has seen the first line: every line it could have seen survives.
    within(async {
        loop {
            let status = connection
                .script_status("ticket-restart", 0)
                .await
                .expect("a status");
            if status.lines.iter().any(|line| line.text == "started") {
                assert_eq!(status.state, ScriptState::Running);
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    })
    .await;

    // The agent dies: it stops watching its scripts and its connections close.
    service.executor().clone().detach().await;
    listening.stop().await;
    drop(service);

    let service = new_service(home.path(), None);
    let listening = ListeningAgent::start(&service, &agent, &[server.thumbprint()]).await;
    let connection = within(connect_listening(
        listening.address,
        &server,
        agent.thumbprint(),
    ))
    .await
    .expect("connected again");
    let status = within(connection.script_status("ticket-restart", 0))
        .await
        .expect("a status");
    assert_eq!(status.state, ScriptState::Unknown);
    assert_eq!(status.state.exit_code(), Some(exit_codes::UNKNOWN_RESULT));
    assert!(
        status.lines.iter().any(|line| line.text == "started"),
        "the log before the restart survives: {:?}",
        status.lines
    );
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
