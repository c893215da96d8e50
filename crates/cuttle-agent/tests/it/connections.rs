//! Connections: many calls at once over one TCP connection in both modes, and what the server
//! sees when a listening agent cannot be reached or goes away.

use std::sync::atomic::Ordering;
use std::time::Duration;

use cuttle_agent::AgentError;
use cuttle_exec::{Isolation, ScriptRequest, ScriptState, ScriptSyntax, StartOutcome};

use crate::helpers::{
    Fixture, ListeningAgent, Mode, connect_listening, identity, new_service, wait_until_finished,
    within,
};

in_both_modes!(twenty_concurrent_calls_share_one_connection);
async fn twenty_concurrent_calls_share_one_connection(mode: Mode) {
    let fixture = Fixture::start(mode).await;
    let connection = &fixture.connection;
    // Twenty scripts that each wait for a file the test writes only once all twenty run:
    // they can only all finish if the calls and scripts really ran side by side.
    let gate = fixture.home.path().join("gate");
    let starts = (0..20).map(|index| {
        let connection = connection.clone();
        let mut request = ScriptRequest::new(
            format!("ticket-{index}"),
            ScriptSyntax::Sh,
            format!(
                "while [ ! -e '{}' ]; do sleep 0.05; done\necho done-{index}",
                gate.display()
            ),
        );
        request.isolation = Isolation::None;
        async move { connection.start_script(&request).await }
    });
    let outcomes = within(futures::future::join_all(starts)).await;
    for outcome in outcomes {
        assert_eq!(outcome.expect("started"), StartOutcome::Started);
    }
    let capabilities = (0..20).map(|_| connection.capabilities());
    for capabilities in within(futures::future::join_all(capabilities)).await {
        capabilities.expect("capabilities");
    }
    let running = (0..20).map(|index| {
        let connection = connection.clone();
        async move {
            loop {
                let status = connection
                    .script_status(&format!("ticket-{index}"), 0)
                    .await
                    .expect("a status");
                if status.state == ScriptState::Running {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    within(futures::future::join_all(running)).await;
    std::fs::write(&gate, "open").expect("the gate");
    let finished = (0..20).map(|index| {
        let connection = connection.clone();
        async move { wait_until_finished(&connection, &format!("ticket-{index}")).await }
    });
    for (index, (status, lines)) in within(futures::future::join_all(finished))
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(status.state, ScriptState::Complete { exit_code: 0 });
        assert!(
            lines
                .iter()
                .any(|line| line.text == format!("done-{index}")),
            "{lines:?}"
        );
    }
    assert_eq!(fixture.tcp_connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_agent_that_is_not_there_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = listener.local_addr().expect("an address");
    drop(listener);
    let server = identity("server");
    let error = within(connect_listening(address, &server, &"AB".repeat(32)))
        .await
        .expect_err("nobody listens");
    assert!(matches!(error, AgentError::Unreachable { .. }), "{error}");
    assert!(error.is_retryable());

    let tls = cuttle_pki::client_config(&server, vec!["AB".repeat(32)]).expect("a config");
    for bad in ["http://127.0.0.1:1/", "not a uri", "https:///"] {
        let error = cuttle_agent::AgentConnection::connect_listening(bad, tls.clone())
            .await
            .expect_err("a bad address");
        assert!(
            matches!(error, AgentError::InvalidAddress { .. }),
            "{bad}: {error}"
        );
    }
}

#[tokio::test]
async fn a_connection_notices_when_the_agent_goes_away() {
    let home = tempfile::tempdir().expect("a home");
    let server = identity("server");
    let agent = identity("agent");
    let service = new_service(home.path(), None);
    let listening = ListeningAgent::start(&service, &agent, &[server.thumbprint()]).await;
    let connection = within(connect_listening(
        listening.address,
        &server,
        agent.thumbprint(),
    ))
    .await
    .expect("connected");
    within(connection.capabilities())
        .await
        .expect("capabilities");
    assert!(!connection.is_closed());
    listening.stop().await;
    let closed = within(connection.closed()).await;
    assert!(matches!(closed, AgentError::Unreachable { .. }), "{closed}");
    assert!(connection.is_closed());
    let error = within(connection.capabilities())
        .await
        .expect_err("the connection is closed");
    assert!(matches!(error, AgentError::Unreachable { .. }), "{error}");
}
