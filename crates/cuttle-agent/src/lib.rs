//! Cuttle's agent (Octopus' Tentacle): runs scripts and keeps files for the server, over
//! mutual TLS pinned by thumbprint and HTTP/2, and the client the server calls it with.
//!
//! ```text
//! server ── AgentConnection (client) ══ HTTP/2 over mTLS ══ router (service) ── Executor, FileStore
//!   listening: server dials agent:10933          polling: agent dials server:10943 and
//!                                                 serves the router on its own connection
//! ```
//!
//! - [`protocol`]: the wire (paths, PascalCase bodies, limits), one RPC set for both modes.
//! - [`service`]: the agent's axum router over a `cuttle_exec::Executor` and a [`files`] store.
//! - [`listening`] / [`polling`]: how the router is reached; [`run`] picks one from the
//!   configuration ([`config`]) and runs it.
//! - [`client`]: [`AgentConnection`], what the server uses: typed calls, many at once over one
//!   connection, errors that tell unreachable from refused from the agent's own answer.
//! - [`registration`]: `register` / `deregister` through the server's REST API.
//! - [`trust`]: the trusted server thumbprints of a running agent, kept in step with
//!   `agent.json` so `cuttle agent trust` needs no restart.
//!
//! Guarantees: a ticket's script runs at most once, even when the server retries a start or
//! the agent restarts mid-script (the executor's guarantee, answered as `AlreadyStarted` and
//! `Unknown`); a file is stored only when its bytes match the SHA-256 the server sent, and a
//! download is checked the same way; a peer whose certificate is not pinned is refused on
//! either side, and the refusal is logged.
//!
//! What this crate does not do: know deployments or tasks (the server's orchestrator drives
//! the calls), store anything but its home directory, or read environment variables (the
//! binary does).

pub mod client;
pub mod config;
mod connection;
pub mod files;
pub mod listening;
pub mod polling;
pub mod protocol;
pub mod registration;
pub mod run;
pub mod service;
pub mod trust;

pub use client::{AgentConnection, AgentError, ConnectionTask, DownloadedFile};
pub use config::{AgentConfig, AgentHome, AgentMode, MachineKind, Registration};
pub use connection::{
    CONNECT_TIMEOUT, KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT, TLS_HANDSHAKE_TIMEOUT,
};
pub use files::FileStore;
pub use listening::serve_listening;
pub use polling::{Backoff, PollingOptions, run_polling};
pub use service::AgentService;
