//! The test's "server side" and agents under test: identities, a listening agent behind a
//! TCP-connection-counting proxy, a polling server accepting agents' connections, and waits.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cuttle_agent::{
    AgentConnection, AgentService, Backoff, ConnectionTask, FileStore, PollingOptions,
};
use cuttle_exec::{Executor, ExecutorOptions, LogLine, ScriptState, ScriptStatus};
use cuttle_pki::{Identity, ThumbprintSet, client_config, server_config};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The largest file the agents under test accept.
pub(crate) const MAX_TEST_FILE: u64 = 1 << 20;
/// The subscription id polling agents under test report.
pub(crate) const SUBSCRIPTION_ID: &str = "testsubscription1";

/// Fails the test instead of hanging it.
pub(crate) async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .expect("the test step finished within 60 s")
}

pub(crate) fn identity(name: &str) -> Identity {
    Identity::generate(name).expect("a new identity")
}

/// An agent service (executor and file store) in `home`.
pub(crate) fn new_service(home: &Path, subscription_id: Option<&str>) -> AgentService {
    let options = ExecutorOptions {
        kill_grace: Duration::from_secs(1),
        output_drain: Duration::from_millis(200),
        ..ExecutorOptions::default()
    };
    let executor = Executor::open_with(&home.join("work"), options).expect("an executor");
    let files = FileStore::open(&home.join("files"), MAX_TEST_FILE).expect("a file store");
    let package_cache =
        cuttle_exec::PackageCache::open(&home.join("packages")).expect("a package cache");
    AgentService::new(
        executor,
        files,
        package_cache,
        subscription_id.map(str::to_owned),
    )
    .expect("an agent service")
}

/// A listening agent served on a loopback port.
pub(crate) struct ListeningAgent {
    pub(crate) address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl ListeningAgent {
    pub(crate) async fn start(
        service: &AgentService,
        agent: &Identity,
        trusted_servers: &[&str],
    ) -> ListeningAgent {
        let trusted = ThumbprintSet::with_thumbprints(trusted_servers).expect("thumbprints");
        let tls = server_config(agent, Arc::new(trusted)).expect("a server configuration");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let address = listener.local_addr().expect("an address");
        let (stop, stopped) = oneshot::channel::<()>();
        let router = service.router();
        let task = tokio::spawn(cuttle_agent::serve_listening(
            listener,
            tls,
            router,
            async {
                let _stopped = stopped.await;
            },
        ));
        ListeningAgent {
            address,
            stop: Some(stop),
            task,
        }
    }

    /// Stops accepting and waits for the connections to close.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _sent = stop.send(());
        }
        within(&mut self.task).await.expect("the agent stopped");
    }
}

/// Forwards TCP connections to `target`, counting them.
pub(crate) async fn counting_proxy(target: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = listener.local_addr().expect("an address");
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _copied = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (address, count)
}

/// The server dialling a listening agent at `address`, expecting `agent_thumbprint`.
pub(crate) async fn connect_listening(
    address: SocketAddr,
    server: &Identity,
    agent_thumbprint: &str,
) -> Result<AgentConnection, cuttle_agent::AgentError> {
    let tls = client_config(server, vec![agent_thumbprint.to_owned()]).expect("a client config");
    AgentConnection::connect_listening(&format!("https://127.0.0.1:{}/", address.port()), tls).await
}

/// The server's agent port, accepting polling agents.
pub(crate) struct PollingServer {
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    pub(crate) address: SocketAddr,
    pub(crate) accepted: AtomicUsize,
}

impl PollingServer {
    pub(crate) async fn bind(server: &Identity, trusted_agents: &[&str]) -> PollingServer {
        let trusted = ThumbprintSet::with_thumbprints(trusted_agents).expect("thumbprints");
        let tls = server_config(server, Arc::new(trusted)).expect("a server configuration");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let address = listener.local_addr().expect("an address");
        PollingServer {
            listener,
            acceptor: tokio_rustls::TlsAcceptor::from(tls),
            address,
            accepted: AtomicUsize::new(0),
        }
    }

    /// Accepts the next agent connection: TLS, then the HTTP/2 client side on it.
    pub(crate) async fn accept(&self) -> std::io::Result<(AgentConnection, ConnectionTask)> {
        let (tcp, _) = self.listener.accept().await?;
        self.accepted.fetch_add(1, Ordering::SeqCst);
        let stream = self.acceptor.accept(tcp).await?;
        AgentConnection::serve_polling(stream)
            .await
            .map_err(std::io::Error::other)
    }
}

/// A polling agent dialling `server_address`.
pub(crate) struct PollingAgent {
    /// One message per established connection.
    pub(crate) connected: mpsc::UnboundedReceiver<String>,
    _stop: oneshot::Sender<()>,
}

impl PollingAgent {
    pub(crate) fn start(
        service: &AgentService,
        agent: &Identity,
        server_address: SocketAddr,
        trusted_servers: &[&str],
    ) -> PollingAgent {
        let tls = client_config(
            agent,
            trusted_servers
                .iter()
                .map(|&thumbprint| thumbprint.to_owned())
                .collect(),
        )
        .expect("a client configuration");
        let options = PollingOptions {
            server_address: server_address.to_string(),
            tls,
            backoff: Backoff {
                initial: Duration::from_millis(20),
                max: Duration::from_millis(200),
                stable_after: Duration::from_secs(10),
            },
            trust_changed: None,
        };
        let (connected_sender, connected) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(cuttle_agent::run_polling(
            options,
            service.router(),
            move |address| {
                let _sent = connected_sender.send(address.to_owned());
            },
            async {
                let _stopped = stopped.await;
            },
        ));
        PollingAgent {
            connected,
            _stop: stop,
        }
    }
}

/// How the test reaches its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Listening,
    Polling,
}

/// An agent under test and the server's connection to it, in either mode.
pub(crate) struct Fixture {
    pub(crate) home: tempfile::TempDir,
    pub(crate) service: AgentService,
    pub(crate) connection: AgentConnection,
    /// TCP connections made between server and agent so far.
    pub(crate) tcp_connections: Arc<AtomicUsize>,
    _listening: Option<ListeningAgent>,
    _polling: Option<(PollingAgent, Arc<PollingServer>, ConnectionTask)>,
}

impl Fixture {
    pub(crate) async fn start(mode: Mode) -> Fixture {
        let home = tempfile::tempdir().expect("a home directory");
        let server = identity("server");
        let agent = identity("agent");
        match mode {
            Mode::Listening => {
                let service = new_service(home.path(), None);
                let listening =
                    ListeningAgent::start(&service, &agent, &[server.thumbprint()]).await;
                let (proxy, tcp_connections) = counting_proxy(listening.address).await;
                let connection = connect_listening(proxy, &server, agent.thumbprint())
                    .await
                    .expect("connected to the listening agent");
                Fixture {
                    home,
                    service,
                    connection,
                    tcp_connections,
                    _listening: Some(listening),
                    _polling: None,
                }
            }
            Mode::Polling => {
                let service = new_service(home.path(), Some(SUBSCRIPTION_ID));
                let polling_server =
                    Arc::new(PollingServer::bind(&server, &[agent.thumbprint()]).await);
                let polling_agent = PollingAgent::start(
                    &service,
                    &agent,
                    polling_server.address,
                    &[server.thumbprint()],
                );
                let (connection, task) = within(polling_server.accept())
                    .await
                    .expect("the polling agent connected");
                // Count every further connection the agent would make.
                let tcp_connections = Arc::new(AtomicUsize::new(1));
                let counter = Arc::clone(&tcp_connections);
                let accepting = Arc::clone(&polling_server);
                tokio::spawn(async move {
                    while accepting.accept().await.is_ok() {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                });
                Fixture {
                    home,
                    service,
                    connection,
                    tcp_connections,
                    _listening: None,
                    _polling: Some((polling_agent, polling_server, task)),
                }
            }
        }
    }
}

/// Polls the ticket's status until it is finished; returns the last status and every line.
pub(crate) async fn wait_until_finished(
    connection: &AgentConnection,
    ticket: &str,
) -> (ScriptStatus, Vec<LogLine>) {
    within(async {
        let mut lines = Vec::new();
        let mut after = 0;
        loop {
            let status = connection
                .script_status(ticket, after)
                .await
                .expect("a status");
            let finished = status.state.is_finished() && status.lines.is_empty();
            after = status.next_sequence;
            lines.extend(status.lines.iter().cloned());
            if finished {
                return (status, lines);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await
}

/// Polls the ticket's status until its state satisfies `wanted`.
pub(crate) async fn wait_for_state(
    connection: &AgentConnection,
    ticket: &str,
    wanted: impl Fn(ScriptState) -> bool,
) -> ScriptStatus {
    within(async {
        loop {
            let status = connection.script_status(ticket, 0).await.expect("a status");
            if wanted(status.state) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await
}

pub(crate) fn texts(lines: &[LogLine]) -> Vec<&str> {
    lines.iter().map(|line| line.text.as_str()).collect()
}

/// Log output captured on this thread (tests using it run on a current-thread runtime, so the
/// agent's tasks log here too).
#[derive(Clone, Default)]
pub(crate) struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub(crate) fn start() -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (logs, guard)
    }

    pub(crate) fn text(&self) -> String {
        let bytes = self.0.lock().expect("the log buffer").clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits until a WARN line containing `needle` was logged.
    pub(crate) async fn wait_for_warning(&self, needle: &str) -> String {
        within(async {
            loop {
                let text = self.text();
                if let Some(line) = text
                    .lines()
                    .find(|line| line.contains("WARN") && line.contains(needle))
                {
                    return line.to_owned();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("the log buffer")
            .extend_from_slice(buffer);
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
