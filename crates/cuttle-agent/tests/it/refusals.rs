//! A peer whose certificate is not pinned is refused, on both sides and in both modes, and
//! the refusal is logged where it happened. These tests run on the current thread, so the
//! agent's tasks log into the test's captured output.

use cuttle_agent::AgentError;
use cuttle_pki::PeerRole;

use crate::helpers::{
    CapturedLogs, ListeningAgent, PollingAgent, PollingServer, connect_listening, identity,
    new_service, within,
};

#[tokio::test]
async fn the_server_refuses_a_listening_agent_with_another_thumbprint() {
    let (logs, _guard) = CapturedLogs::start();
    let home = tempfile::tempdir().expect("a home");
    let server = identity("server");
    let agent = identity("agent");
    let impostor = identity("impostor");
    let service = new_service(home.path(), None);
    let listening = ListeningAgent::start(&service, &impostor, &[server.thumbprint()]).await;
    let error = within(connect_listening(
        listening.address,
        &server,
        agent.thumbprint(),
    ))
    .await
    .expect_err("the agent is not the one pinned");
    let AgentError::Refused {
        untrusted: Some(untrusted),
        ..
    } = &error
    else {
        panic!("expected a refusal naming the thumbprint, got {error}");
    };
    assert_eq!(untrusted.peer, PeerRole::Server);
    assert_eq!(untrusted.thumbprint, impostor.thumbprint());
    assert!(!error.is_retryable());
    let line = logs.wait_for_warning("refused a TLS server").await;
    assert!(line.contains(impostor.thumbprint()), "{line}");
}

#[tokio::test]
async fn a_listening_agent_refuses_a_server_it_does_not_trust() {
    let (logs, _guard) = CapturedLogs::start();
    let home = tempfile::tempdir().expect("a home");
    let server = identity("server");
    let other_server = identity("other-server");
    let agent = identity("agent");
    let service = new_service(home.path(), None);
    let listening = ListeningAgent::start(&service, &agent, &[other_server.thumbprint()]).await;
    // TLS 1.3: the client may think the handshake done before the agent checks its
    // certificate, so the refusal shows at the latest on the first call.
    let result = async {
        let connection = connect_listening(listening.address, &server, agent.thumbprint()).await?;
        connection.capabilities().await
    };
    let error = within(result)
        .await
        .expect_err("the agent does not trust this server");
    assert!(matches!(error, AgentError::Refused { .. }), "{error}");
    assert!(!error.is_retryable());
    let line = logs.wait_for_warning("refused a connection").await;
    assert!(line.contains(server.thumbprint()), "{line}");
    assert!(line.contains("127.0.0.1"), "{line}");
}

#[tokio::test]
async fn a_polling_agent_refuses_a_server_it_does_not_trust() {
    let (logs, _guard) = CapturedLogs::start();
    let home = tempfile::tempdir().expect("a home");
    let server = identity("server");
    let other_server = identity("other-server");
    let agent = identity("agent");
    let service = new_service(home.path(), None);
    let polling_server = PollingServer::bind(&server, &[agent.thumbprint()]).await;
    let mut polling_agent = PollingAgent::start(
        &service,
        &agent,
        polling_server.address,
        &[other_server.thumbprint()],
    );
    let error = within(polling_server.accept())
        .await
        .expect_err("the agent refuses the server");
    assert!(
        error.to_string().to_lowercase().contains("alert"),
        "the server sees a TLS alert: {error}"
    );
    let line = logs.wait_for_warning("refused the server").await;
    assert!(line.contains(server.thumbprint()), "{line}");
    assert!(polling_agent.connected.try_recv().is_err());
}

#[tokio::test]
async fn the_server_refuses_a_polling_agent_it_does_not_trust() {
    let (logs, _guard) = CapturedLogs::start();
    let home = tempfile::tempdir().expect("a home");
    let server = identity("server");
    let agent = identity("agent");
    let other_agent = identity("other-agent");
    let service = new_service(home.path(), None);
    let polling_server = PollingServer::bind(&server, &[other_agent.thumbprint()]).await;
    let _polling_agent = PollingAgent::start(
        &service,
        &agent,
        polling_server.address,
        &[server.thumbprint()],
    );
    let error = within(polling_server.accept())
        .await
        .expect_err("the server refuses the agent");
    let untrusted = cuttle_pki::find_untrusted_peer(&error).expect("a refusal");
    assert_eq!(untrusted.peer, PeerRole::Client);
    assert_eq!(untrusted.thumbprint, agent.thumbprint());
    logs.wait_for_warning("refused a TLS client").await;
    logs.wait_for_warning("the server refused this agent").await;
}
