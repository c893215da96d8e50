//! The server's side of its agents: the agent port that polling agents dial, and the
//! transports that reach listening and polling agents for the orchestrator.
//!
//! Trust is pinned both ways by thumbprint. The agent port accepts a client certificate only if
//! some polling target or worker is registered with its thumbprint (the set is reloaded when
//! the store changes, looked at every second and at each new connection); the server dials a
//! listening agent only if its certificate has the thumbprint the target was registered with.
//! A polling agent whose target or worker is deleted (`cuttle agent deregister`) loses its
//! connection within about a second, and its next one is refused at the handshake. Each agent has one HTTP/2 connection, kept
//! alive and shared by every call: a polling agent's is the one it opened, on which the server
//! sends its requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cuttle_agent::{AgentConnection, AgentError};
use cuttle_domain::{DeploymentTarget, Endpoint, Worker};
use cuttle_exec::{CachedPackage, ScriptRequest, ScriptStatus, StartOutcome};
use cuttle_orchestrator::{
    HealthReport, PackageFile, PackageSupport, TargetAddress, Transport, TransportError,
};
use cuttle_pki::{Identity, ThumbprintSet};
use cuttle_store::{DocumentQuery, Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// How long a call waits for a polling agent that is not connected right now.
const POLLING_CONNECT_WAIT: Duration = Duration::from_secs(5);

/// How often the agent port looks whether the store changed, to reload the trusted
/// thumbprints and close the connections of agents no longer registered. Reading the
/// generation is free; the reload (every target and worker) happens only when it moved.
const TRUST_RECHECK_INTERVAL: Duration = Duration::from_secs(1);

fn transport_error(target: &TargetAddress, error: AgentError) -> TransportError {
    match error {
        AgentError::Unreachable { .. } => TransportError::Unreachable {
            target: target.name.clone(),
            message: error.to_string(),
        },
        AgentError::Agent { status, .. } if status.is_server_error() => {
            TransportError::Unreachable {
                target: target.name.clone(),
                message: error.to_string(),
            }
        }
        other => TransportError::Unusable {
            target: target.name.clone(),
            message: other.to_string(),
        },
    }
}

fn endpoint_thumbprint(target: &TargetAddress) -> Result<&str, TransportError> {
    target
        .endpoint
        .thumbprint()
        .ok_or_else(|| TransportError::Unusable {
            target: target.name.clone(),
            message: "it is not an agent".to_owned(),
        })
}

/// Calls made on an agent connection, shared by both agent transports.
#[async_trait]
pub trait AgentCalls: Send + Sync + 'static {
    async fn connection(&self, target: &TargetAddress) -> Result<AgentConnection, TransportError>;
}

/// A [`Transport`] over agent connections, listening or polling.
pub struct AgentTransport<C>(pub C);

#[async_trait]
impl<C: AgentCalls> Transport for AgentTransport<C> {
    async fn check_health(&self, target: &TargetAddress) -> Result<HealthReport, TransportError> {
        let connection = self.0.connection(target).await?;
        let capabilities = connection
            .capabilities()
            .await
            .map_err(|error| transport_error(target, error))?;
        Ok(HealthReport {
            warnings: Vec::new(),
            summary: format!(
                "Cuttle agent {} on {} {}",
                capabilities.agent_version, capabilities.os, capabilities.architecture
            ),
        })
    }

    async fn start_script(
        &self,
        target: &TargetAddress,
        request: &ScriptRequest,
    ) -> Result<StartOutcome, TransportError> {
        let connection = self.0.connection(target).await?;
        connection
            .start_script(request)
            .await
            .map_err(|error| transport_error(target, error))
    }

    async fn script_status(
        &self,
        target: &TargetAddress,
        ticket: &str,
        after_sequence: u64,
    ) -> Result<ScriptStatus, TransportError> {
        let connection = self.0.connection(target).await?;
        connection
            .script_status(ticket, after_sequence)
            .await
            .map_err(|error| transport_error(target, error))
    }

    async fn cancel_script(
        &self,
        target: &TargetAddress,
        ticket: &str,
    ) -> Result<(), TransportError> {
        let connection = self.0.connection(target).await?;
        connection
            .cancel_script(ticket, 0)
            .await
            .map(drop)
            .map_err(|error| transport_error(target, error))
    }

    async fn complete_script(
        &self,
        target: &TargetAddress,
        ticket: &str,
    ) -> Result<(), TransportError> {
        let connection = self.0.connection(target).await?;
        connection
            .complete_script(ticket)
            .await
            .map_err(|error| transport_error(target, error))
    }

    async fn package_support(
        &self,
        target: &TargetAddress,
    ) -> Result<PackageSupport, TransportError> {
        let connection = self.0.connection(target).await?;
        let capabilities = connection
            .capabilities()
            .await
            .map_err(|error| transport_error(target, error))?;
        let has = |feature: &str| capabilities.features.iter().any(|listed| listed == feature);
        Ok(PackageSupport {
            deploy: has(cuttle_agent::protocol::features::PACKAGE_DEPLOYMENT),
            cache: has(cuttle_agent::protocol::features::PACKAGE_CACHE),
        })
    }

    async fn cached_packages(
        &self,
        target: &TargetAddress,
        package_id: &str,
    ) -> Result<Vec<CachedPackage>, TransportError> {
        let connection = self.0.connection(target).await?;
        connection
            .cached_packages(package_id)
            .await
            .map_err(|error| transport_error(target, error))
    }

    async fn package_signature(
        &self,
        target: &TargetAddress,
        sha256: &str,
    ) -> Result<Vec<u8>, TransportError> {
        let connection = self.0.connection(target).await?;
        connection
            .package_signature(sha256)
            .await
            .map(|bytes| bytes.to_vec())
            .map_err(|error| transport_error(target, error))
    }

    async fn upload_package(
        &self,
        target: &TargetAddress,
        file: &PackageFile,
    ) -> Result<CachedPackage, TransportError> {
        let connection = self.0.connection(target).await?;
        connection
            .upload_package(&file.package, &file.path)
            .await
            .map_err(|error| transport_error(target, error))
    }

    async fn apply_package_delta(
        &self,
        target: &TargetAddress,
        basis_sha256: &str,
        delta: Vec<u8>,
        package: &CachedPackage,
    ) -> Result<CachedPackage, TransportError> {
        let connection = self.0.connection(target).await?;
        connection
            .apply_package_delta(basis_sha256, bytes::Bytes::from(delta), package)
            .await
            .map_err(|error| transport_error(target, error))
    }
}

/// One listening agent's connection, dialled at most once at a time.
type ConnectionSlot = Arc<tokio::sync::Mutex<Option<AgentConnection>>>;

/// Reaches listening agents: dials each once and keeps the connection.
pub struct ListeningAgents {
    identity: Identity,
    /// One slot per agent (address and pinned thumbprint). Each slot has its own lock, so
    /// concurrent calls to one agent share one dial while different agents are dialled at once.
    slots: Mutex<HashMap<(String, String), ConnectionSlot>>,
}

impl ListeningAgents {
    pub fn new(identity: Identity) -> ListeningAgents {
        ListeningAgents {
            identity,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, key: (String, String)) -> ConnectionSlot {
        match self.slots.lock() {
            Ok(mut slots) => Arc::clone(slots.entry(key).or_default()),
            // A poisoned map only loses sharing: dial without it.
            Err(_) => Arc::default(),
        }
    }
}

#[async_trait]
impl AgentCalls for ListeningAgents {
    async fn connection(&self, target: &TargetAddress) -> Result<AgentConnection, TransportError> {
        let Endpoint::Listening { uri, thumbprint } = &target.endpoint else {
            return Err(TransportError::Unusable {
                target: target.name.clone(),
                message: "it is not a listening agent".to_owned(),
            });
        };
        let slot = self.slot((uri.clone(), thumbprint.clone()));
        let mut connection = slot.lock().await;
        if let Some(open) = connection.as_ref().filter(|open| !open.is_closed()) {
            return Ok(open.clone());
        }
        let tls = cuttle_pki::client_config(&self.identity, vec![thumbprint.clone()]).map_err(
            |error| TransportError::Unusable {
                target: target.name.clone(),
                message: error.to_string(),
            },
        )?;
        let dialled = AgentConnection::connect_listening(uri, tls)
            .await
            .map_err(|error| transport_error(target, error))?
            .with_label(&target.name);
        *connection = Some(dialled.clone());
        Ok(dialled)
    }
}

/// A polling agent's connection, and the signal that closes it.
struct PolledAgent {
    connection: AgentConnection,
    close: Arc<Notify>,
}

/// The polling agents connected right now, by thumbprint.
#[derive(Default)]
pub struct PollingAgents {
    connections: Mutex<HashMap<String, PolledAgent>>,
    connected: Notify,
}

impl PollingAgents {
    /// Records the agent's connection; the returned signal is notified when the server wants it
    /// closed.
    fn insert(&self, thumbprint: &str, connection: AgentConnection) -> Arc<Notify> {
        let close = Arc::new(Notify::new());
        if let Ok(mut connections) = self.connections.lock() {
            connections.insert(
                thumbprint.to_owned(),
                PolledAgent {
                    connection,
                    close: Arc::clone(&close),
                },
            );
        }
        self.connected.notify_waiters();
        close
    }

    fn current(&self, thumbprint: &str) -> Option<AgentConnection> {
        self.connections
            .lock()
            .ok()?
            .get(thumbprint)
            .map(|agent| &agent.connection)
            .filter(|connection| !connection.is_closed())
            .cloned()
    }

    /// Forgets the agents `trusted` no longer has and tells their connections to close;
    /// returns their thumbprints. Closed connections are forgotten too.
    fn close_untrusted(&self, trusted: &ThumbprintSet) -> Vec<String> {
        let Ok(mut connections) = self.connections.lock() else {
            return Vec::new();
        };
        connections.retain(|_, agent| !agent.connection.is_closed());
        let untrusted: Vec<String> = connections
            .keys()
            .filter(|thumbprint| !trusted.contains(thumbprint))
            .cloned()
            .collect();
        for thumbprint in &untrusted {
            if let Some(agent) = connections.remove(thumbprint) {
                // A stored permit: the connection's task sees it even if not waiting yet.
                agent.close.notify_one();
            }
        }
        untrusted
    }

    /// How many polling agents are connected.
    pub fn len(&self) -> usize {
        self.connections
            .lock()
            .map(|connections| {
                connections
                    .values()
                    .filter(|agent| !agent.connection.is_closed())
                    .count()
            })
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl AgentCalls for Arc<PollingAgents> {
    async fn connection(&self, target: &TargetAddress) -> Result<AgentConnection, TransportError> {
        let thumbprint = endpoint_thumbprint(target)?.to_owned();
        let deadline = tokio::time::Instant::now() + POLLING_CONNECT_WAIT;
        loop {
            let connected = self.connected.notified();
            if let Some(connection) = self.current(&thumbprint) {
                return Ok(connection);
            }
            if tokio::time::timeout_at(deadline, connected).await.is_err() {
                return Err(TransportError::Unreachable {
                    target: target.name.clone(),
                    message: "the polling agent is not connected to this server".to_owned(),
                });
            }
        }
    }
}

/// The agent port: accepts polling agents' connections over mutual TLS.
pub struct AgentPort {
    identity: Identity,
    store: Arc<dyn Store>,
    trusted: Arc<ThumbprintSet>,
    agents: Arc<PollingAgents>,
    loaded_generation: Mutex<Option<u64>>,
}

impl AgentPort {
    pub fn new(identity: Identity, store: Arc<dyn Store>, agents: Arc<PollingAgents>) -> AgentPort {
        AgentPort {
            identity,
            store,
            trusted: Arc::new(ThumbprintSet::new()),
            agents,
            loaded_generation: Mutex::new(None),
        }
    }

    /// Reloads the trusted thumbprints when the store has changed since the last load;
    /// `true` when it reloaded them.
    async fn refresh_trust(&self) -> Result<bool, StoreError> {
        let generation = self.store.change_generation();
        if self
            .loaded_generation
            .lock()
            .ok()
            .and_then(|loaded| *loaded)
            == Some(generation)
        {
            return Ok(false);
        }
        let mut thumbprints = Vec::new();
        let all = DocumentQuery::default();
        for target in self
            .store
            .list_resources::<DeploymentTarget>(&all)
            .await?
            .items
        {
            if let Endpoint::Polling { thumbprint, .. } = target.endpoint {
                thumbprints.push(thumbprint);
            }
        }
        for worker in self.store.list_resources::<Worker>(&all).await?.items {
            if let Endpoint::Polling { thumbprint, .. } = worker.endpoint {
                thumbprints.push(thumbprint);
            }
        }
        if let Err(error) = self.trusted.replace_all(thumbprints) {
            tracing::warn!("a stored agent thumbprint is not valid: {error}");
        }
        if let Ok(mut loaded) = self.loaded_generation.lock() {
            *loaded = Some(generation);
        }
        Ok(true)
    }

    /// Every [`TRUST_RECHECK_INTERVAL`] until `shutdown`: reloads the trusted thumbprints when
    /// the store changed and closes the connections of the polling agents that lost their
    /// target or worker, so a deregistered agent stops being served at once rather than at
    /// its next reconnection.
    async fn close_deregistered(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(TRUST_RECHECK_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => break,
            }
            self.refresh_trust_and_close().await;
        }
    }

    /// [`AgentPort::refresh_trust`], then closes the connections of agents no longer trusted.
    async fn refresh_trust_and_close(&self) {
        match self.refresh_trust().await {
            Ok(true) => {
                for thumbprint in self.agents.close_untrusted(&self.trusted) {
                    tracing::info!(%thumbprint, "closing the connection of a polling agent that no target or worker is registered with any more");
                }
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!("failed to load the trusted agent thumbprints: {error}");
            }
        }
    }

    /// Accepts agents on `listener` until `shutdown` becomes true.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let config = match cuttle_pki::server_config(&self.identity, Arc::clone(&self.trusted) as _)
        {
            Ok(config) => config,
            Err(error) => {
                tracing::error!("failed to prepare the agent port's TLS: {error}");
                return;
            }
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        tokio::spawn(Arc::clone(&self).close_deregistered(shutdown.clone()));
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.changed() => break,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("failed to accept an agent connection: {error}");
                    continue;
                }
            };
            self.refresh_trust_and_close().await;
            let acceptor = acceptor.clone();
            let port = Arc::clone(&self);
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(error)) => {
                        match cuttle_pki::find_untrusted_peer(&error) {
                            Some(untrusted) => {
                                tracing::warn!(%peer, thumbprint = %untrusted.thumbprint, "refused an agent whose certificate no target or worker is registered with")
                            }
                            None => {
                                tracing::info!(%peer, "an agent connection failed its TLS handshake: {error}")
                            }
                        }
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%peer, "an agent connection did not finish its TLS handshake in time");
                        return;
                    }
                };
                let Some(thumbprint) = cuttle_pki::peer_thumbprint(tls.get_ref().1) else {
                    return;
                };
                match AgentConnection::serve_polling(tls).await {
                    Ok((connection, mut task)) => {
                        tracing::info!(%peer, %thumbprint, "a polling agent connected");
                        let close = port.agents.insert(&thumbprint, connection);
                        tokio::select! {
                            // Closing drops the connection's last request sender, which ends
                            // the connection too; the signal, sent first, is looked at first.
                            biased;
                            () = close.notified() => {
                                task.abort();
                                tracing::info!(%peer, %thumbprint, "closed the connection of a polling agent that is no longer registered");
                            }
                            ended = &mut task => {
                                tracing::info!(%peer, %thumbprint, "a polling agent disconnected: {ended:?}");
                            }
                        }
                    }
                    Err(error) => {
                        tracing::info!(%peer, "a polling agent's connection failed: {error}")
                    }
                }
            });
        }
    }
}
