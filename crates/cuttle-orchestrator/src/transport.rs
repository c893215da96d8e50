//! How the orchestrator reaches targets: one [`Transport`] per kind of endpoint (listening
//! agent, polling agent, SSH, the built-in worker), chosen from a [`Transports`] registry, so the
//! engine above never cares which one a target uses.
//!
//! Package acquisition goes through the same trait: a transport says what its targets can do
//! with packages ([`PackageSupport`]) and, when they keep a package cache, lists, uploads,
//! signs and patches packages there. The defaults say "no package support", which is what a
//! transport without a cache (SSH today) answers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use cuttle_domain::Endpoint;
use cuttle_exec::{CachedPackage, ScriptRequest, ScriptStatus, StartOutcome};

/// The kinds of endpoint a transport can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointKind {
    ListeningAgent,
    PollingAgent,
    Ssh,
}

impl EndpointKind {
    /// The kind of `endpoint`, `None` for endpoints nothing can reach directly.
    pub fn of(endpoint: &Endpoint) -> Option<EndpointKind> {
        match endpoint {
            Endpoint::Listening { .. } => Some(EndpointKind::ListeningAgent),
            Endpoint::Polling { .. } => Some(EndpointKind::PollingAgent),
            Endpoint::Ssh { .. } => Some(EndpointKind::Ssh),
            Endpoint::None => None,
        }
    }

    /// Octopus's name for the communication style, for messages.
    pub fn communication_style(self) -> &'static str {
        match self {
            EndpointKind::ListeningAgent => "TentaclePassive",
            EndpointKind::PollingAgent => "TentacleActive",
            EndpointKind::Ssh => "Ssh",
        }
    }
}

/// A machine to reach: its id and name for messages, and its endpoint.
#[derive(Debug, Clone)]
pub struct TargetAddress {
    pub machine_id: String,
    pub name: String,
    pub space_id: String,
    pub endpoint: Endpoint,
}

/// What a health check learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// Warnings that make the target "healthy with warnings" (low disk, old agent).
    pub warnings: Vec<String>,
    /// What the target said about itself (agent version, OS), for the log.
    pub summary: String,
}

/// What a target can do with packages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackageSupport {
    /// It runs `ScriptRequest::package_deployment` (the agent's `PackageDeployment` feature).
    pub deploy: bool,
    /// It keeps a package cache the server can fill (the agent's `PackageCache` feature).
    pub cache: bool,
}

/// A package file on the server, to be put in a target's package cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    pub package: CachedPackage,
    /// The file on the server (the built-in feed's blob).
    pub path: PathBuf,
}

fn no_package_cache(target: &TargetAddress) -> TransportError {
    TransportError::Unusable {
        target: target.name.clone(),
        message: "it has no package cache the server can send packages to".to_owned(),
    }
}

/// Why a transport could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The target could not be reached (refused, timed out, unknown host): "Unavailable".
    #[error("could not reach {target}: {message}")]
    Unreachable { target: String, message: String },
    /// The target answered but is not fit to run work (wrong certificate, broken agent):
    /// "Unhealthy". Retrying will not help until someone fixes it.
    #[error("{target} is not usable: {message}")]
    Unusable { target: String, message: String },
}

/// Reaches targets of one endpoint kind (or the built-in worker) and runs scripts there.
///
/// Script calls are the ticket protocol of `cuttle-exec`: starting a ticket twice runs it once,
/// and status is asked for "after sequence N", so a caller that restarts re-attaches by ticket
/// and gets every line it has not yet seen.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Connects to the target and checks it can run work.
    async fn check_health(&self, target: &TargetAddress) -> Result<HealthReport, TransportError>;

    /// Starts the request's ticket, unless it was started before.
    async fn start_script(
        &self,
        target: &TargetAddress,
        request: &ScriptRequest,
    ) -> Result<StartOutcome, TransportError>;

    /// The ticket's state and the log lines after `after_sequence`.
    async fn script_status(
        &self,
        target: &TargetAddress,
        ticket: &str,
        after_sequence: u64,
    ) -> Result<ScriptStatus, TransportError>;

    /// Stops the ticket's script (its whole process tree).
    async fn cancel_script(
        &self,
        target: &TargetAddress,
        ticket: &str,
    ) -> Result<(), TransportError>;

    /// Forgets a finished ticket and deletes its workspace.
    async fn complete_script(
        &self,
        target: &TargetAddress,
        ticket: &str,
    ) -> Result<(), TransportError>;

    /// What the target can do with packages; none by default.
    async fn package_support(
        &self,
        _target: &TargetAddress,
    ) -> Result<PackageSupport, TransportError> {
        Ok(PackageSupport::default())
    }

    /// The versions of `package_id` in the target's package cache.
    async fn cached_packages(
        &self,
        target: &TargetAddress,
        _package_id: &str,
    ) -> Result<Vec<CachedPackage>, TransportError> {
        Err(no_package_cache(target))
    }

    /// The delta signature of the cached package with this SHA-256.
    async fn package_signature(
        &self,
        target: &TargetAddress,
        _sha256: &str,
    ) -> Result<Vec<u8>, TransportError> {
        Err(no_package_cache(target))
    }

    /// Sends a whole package file into the target's package cache.
    async fn upload_package(
        &self,
        target: &TargetAddress,
        _file: &PackageFile,
    ) -> Result<CachedPackage, TransportError> {
        Err(no_package_cache(target))
    }

    /// Sends `delta` and has the target patch its cached `basis_sha256` with it into its cache
    /// as `package` (verified against `package.sha256`).
    async fn apply_package_delta(
        &self,
        target: &TargetAddress,
        _basis_sha256: &str,
        _delta: Vec<u8>,
        _package: &CachedPackage,
    ) -> Result<CachedPackage, TransportError> {
        Err(no_package_cache(target))
    }
}

/// The transports this server has, by endpoint kind, and its built-in worker.
#[derive(Clone, Default)]
pub struct Transports {
    by_kind: HashMap<EndpointKind, Arc<dyn Transport>>,
    built_in_worker: Option<Arc<dyn Transport>>,
}

impl Transports {
    pub fn new() -> Transports {
        Transports::default()
    }

    pub fn register(&mut self, kind: EndpointKind, transport: Arc<dyn Transport>) {
        self.by_kind.insert(kind, transport);
    }

    /// Sets the server's own executor, for work that runs on no target.
    pub fn set_built_in_worker(&mut self, transport: Arc<dyn Transport>) {
        self.built_in_worker = Some(transport);
    }

    /// The built-in worker, when this server runs one.
    pub fn built_in_worker(&self) -> Option<&dyn Transport> {
        self.built_in_worker.as_deref()
    }

    /// The transport for `endpoint`, or why there is none.
    pub fn for_endpoint(&self, target: &TargetAddress) -> Result<&dyn Transport, TransportError> {
        let kind = EndpointKind::of(&target.endpoint).ok_or_else(|| TransportError::Unusable {
            target: target.name.clone(),
            message: "it has no endpoint to connect to".to_owned(),
        })?;
        self.by_kind
            .get(&kind)
            .map(|transport| &**transport)
            .ok_or_else(|| TransportError::Unusable {
                target: target.name.clone(),
                message: format!(
                    "this server cannot reach {} endpoints yet",
                    kind.communication_style()
                ),
            })
    }
}
