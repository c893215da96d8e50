//! Running a configured agent: opens its home (identity, executor, file store), then listens
//! or polls as `agent.json` says, until shutdown.
//!
//! What this module does not do: handle signals or print (the binary passes a shutdown
//! future and is told what happened through [`RunEvent`]).

use std::future::Future;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;

use cuttle_exec::{ExecError, Executor, ExecutorOptions, PackageCache, PackageCacheError};
use cuttle_pki::{PkiError, ThumbprintSet};

use crate::config::{AgentHome, AgentMode, ConfigError};
use crate::files::{FileError, FileStore};
use crate::polling::{Backoff, PollingOptions, run_polling};
use crate::protocol::DEFAULT_MAX_FILE_LENGTH;
use crate::registration::AGENT_CERTIFICATE_NAME;
use crate::service::AgentService;
use crate::trust::TrustedServers;

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not open the executor")]
    Executor(#[from] ExecError),
    #[error("could not open the file store")]
    Files(#[from] FileError),
    #[error("could not open the package cache")]
    PackageCache(#[from] PackageCacheError),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(
        "this agent trusts no server yet; hint: run `cuttle agent register`, or `cuttle agent \
         trust --thumbprint` with the server's thumbprint"
    )]
    NoTrustedServer,
    #[error(
        "a polling agent needs the server's agent address; hint: run `cuttle agent register \
         --polling`"
    )]
    NoServerAddress,
    #[error("could not listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What [`run`] may be told besides `agent.json`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Listening mode: the address to bind instead of all interfaces on the configured port
    /// (port 0 picks a free one, reported by [`RunEvent::Listening`]).
    pub listen_address: Option<SocketAddr>,
    /// Polling mode: the reconnection backoff.
    pub backoff: Backoff,
    /// The largest file the agent accepts; [`DEFAULT_MAX_FILE_LENGTH`] when `None`.
    pub max_file_length: Option<u64>,
}

/// What a running agent reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// Listening mode: accepting connections on this address.
    Listening(SocketAddr),
    /// Polling mode: connected to the server at this address (each time it connects).
    Connected(String),
}

/// Runs the agent configured in `home` until `shutdown` completes.
pub async fn run(
    home: &AgentHome,
    options: RunOptions,
    mut on_event: impl FnMut(RunEvent),
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let config = home.load_config()?;
    let (identity, created) = home.identity(AGENT_CERTIFICATE_NAME)?;
    if created {
        tracing::info!(
            thumbprint = identity.thumbprint(),
            "created the agent's certificate"
        );
    }
    if config.trusted_server_thumbprints.is_empty() {
        return Err(RunError::NoTrustedServer);
    }
    let executor_options = ExecutorOptions {
        environment: vec![
            (
                "CuttleAgentHome".to_owned(),
                home.root().display().to_string(),
            ),
            ("TentacleHome".to_owned(), home.root().display().to_string()),
        ],
        ..ExecutorOptions::default()
    };
    let executor = Executor::open_with(&home.work_directory(), executor_options)?;
    let files = FileStore::open(
        &home.files_directory(),
        options.max_file_length.unwrap_or(DEFAULT_MAX_FILE_LENGTH),
    )?;
    let subscription_id = match config.mode {
        AgentMode::Listening => None,
        AgentMode::Polling => config.subscription_id.clone(),
    };
    let package_cache = PackageCache::open(&home.packages_directory())?;
    let service = AgentService::new(executor, files, package_cache, subscription_id)?;
    // `cuttle agent trust` edits agent.json; the running agent follows it.
    let trusted = TrustedServers::new(ThumbprintSet::with_thumbprints(
        &config.trusted_server_thumbprints,
    )?);
    // In a set so that it stops when this function returns, however it returns.
    let mut follower = tokio::task::JoinSet::new();
    follower.spawn(trusted.clone().follow(home.clone()));
    tracing::info!(
        thumbprint = identity.thumbprint(),
        mode = ?config.mode,
        shells = ?service.capabilities().shells,
        "starting the agent"
    );
    match config.mode {
        AgentMode::Listening => {
            let tls = cuttle_pki::server_config(&identity, Arc::clone(&trusted.thumbprints) as _)?;
            let address = options.listen_address.unwrap_or(SocketAddr::from((
                Ipv6Addr::UNSPECIFIED,
                config.listen_port,
            )));
            let listener = bind(address).await?;
            let bound = listener
                .local_addr()
                .map_err(|source| RunError::Bind { address, source })?;
            on_event(RunEvent::Listening(bound));
            crate::listening::serve_listening(listener, tls, service.router(), shutdown).await;
        }
        AgentMode::Polling => {
            let server_address = config
                .server_comms_address
                .clone()
                .ok_or(RunError::NoServerAddress)?;
            let tls = cuttle_pki::client_config_trusting(
                &identity,
                Arc::clone(&trusted.thumbprints) as _,
            )?;
            let polling = PollingOptions {
                server_address,
                tls,
                backoff: options.backoff,
                trust_changed: Some(Arc::clone(&trusted.changed)),
            };
            run_polling(
                polling,
                service.router(),
                |address| on_event(RunEvent::Connected(address.to_owned())),
                shutdown,
            )
            .await;
        }
    }
    follower.abort_all();
    Ok(())
}

/// Binds `address`; the unspecified IPv6 address falls back to IPv4 where IPv6 is missing.
async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, RunError> {
    match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => Ok(listener),
        Err(error) if address.ip() == Ipv6Addr::UNSPECIFIED => {
            let fallback = SocketAddr::from(([0, 0, 0, 0], address.port()));
            tracing::debug!("could not bind {address} ({error}); trying {fallback}");
            tokio::net::TcpListener::bind(fallback)
                .await
                .map_err(|source| RunError::Bind {
                    address: fallback,
                    source,
                })
        }
        Err(source) => Err(RunError::Bind { address, source }),
    }
}
