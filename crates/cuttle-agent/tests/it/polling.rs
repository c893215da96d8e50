//! Polling mode's own behaviour: the agent dials again after the server drops its connection,
//! and after the server was down for a while.

use std::time::Duration;

use cuttle_agent::AgentError;
use cuttle_exec::{ScriptRequest, ScriptState, ScriptSyntax};

use crate::helpers::{
    PollingAgent, PollingServer, identity, new_service, wait_until_finished, within,
};

#[tokio::test]
async fn the_agent_reconnects_after_the_server_drops_the_connection() {
    let home = tempfile::tempdir().expect("a home");
    let server = identity("server");
    let agent = identity("agent");
    let service = new_service(home.path(), Some("reconnecting"));
    let polling_server = PollingServer::bind(&server, &[agent.thumbprint()]).await;
    let mut polling_agent = PollingAgent::start(
        &service,
        &agent,
        polling_server.address,
        &[server.thumbprint()],
    );

    let (first, first_task) = within(polling_server.accept()).await.expect("connected");
    let announced = within(polling_agent.connected.recv())
        .await
        .expect("announced");
    assert_eq!(announced, polling_server.address.to_string());
    let request = ScriptRequest::new(
        "ticket-across",
        ScriptSyntax::Sh,
        "sleep 0.3\necho survived",
    );
    within(first.start_script(&request)).await.expect("started");

    // The server drops the connection (a restart, a network blip).
    first_task.abort();
    let error = within(first_task).await.expect_err("aborted");
    assert!(matches!(error, AgentError::Unreachable { .. }), "{error}");
    assert!(within(first.capabilities()).await.is_err());

    let (second, _second_task) = within(polling_server.accept()).await.expect("reconnected");
    within(polling_agent.connected.recv())
        .await
        .expect("announced again");
    let capabilities = within(second.capabilities()).await.expect("capabilities");
    assert_eq!(
        capabilities.subscription_id.as_deref(),
        Some("reconnecting")
    );
    // The script kept running meanwhile; its status is read over the new connection.
    let (status, lines) = wait_until_finished(&second, "ticket-across").await;
    assert_eq!(status.state, ScriptState::Complete { exit_code: 0 });
    assert!(
        lines.iter().any(|line| line.text == "survived"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn the_agent_keeps_dialling_until_the_server_is_up() {
    let home = tempfile::tempdir().expect("a home");
    let server = identity("server");
    let agent = identity("agent");
    let service = new_service(home.path(), None);
    // Reserve a port, then leave it closed for a while.
    let placeholder = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = placeholder.local_addr().expect("an address");
    drop(placeholder);
    let mut polling_agent = PollingAgent::start(&service, &agent, address, &[server.thumbprint()]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(polling_agent.connected.try_recv().is_err());

    let trusted =
        cuttle_pki::ThumbprintSet::with_thumbprints([agent.thumbprint()]).expect("thumbprints");
    let tls = cuttle_pki::server_config(&server, std::sync::Arc::new(trusted)).expect("a config");
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .expect("the same port");
    let (tcp, _) = within(listener.accept()).await.expect("the agent dialled");
    let stream = within(tokio_rustls::TlsAcceptor::from(tls).accept(tcp))
        .await
        .expect("TLS");
    let (connection, _task) = cuttle_agent::AgentConnection::serve_polling(stream)
        .await
        .expect("HTTP/2");
    within(connection.capabilities())
        .await
        .expect("capabilities");
    within(polling_agent.connected.recv())
        .await
        .expect("announced");
}
