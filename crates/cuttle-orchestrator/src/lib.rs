//! The orchestrator: runs server tasks (deployments, runbook runs, health checks) durably.
//!
//! [`TaskRunner`] claims tasks from the store under a lease, renews the lease while a
//! [`TaskHandler`] works, and records the outcome. Everything a handler must not lose goes
//! through its [`TaskContext`]: log lines (persisted in small batches, in sequence) and its
//! own progress document. When a node dies or restarts, the lease lapses, a runner claims the
//! task again and calls the handler with [`TaskContext::resumed`] set, so it re-attaches to
//! what it started (agent script tickets) instead of starting over. The store fences writes by
//! lease generation, so a runner that lost its lease cannot write any more.
//!
//! This crate knows the store and nothing of HTTP; handlers for each kind of task and the
//! transports they use are plugged in by the server.

mod acquire;
mod adhoc;
mod builtin;
mod context;
mod deploy;
mod health;
mod runner;
mod schedule;
mod scripts;
mod transport;

pub use acquire::PackageBlobs;
pub use adhoc::{AD_HOC_SCRIPT_TASK, AdHocScriptHandler, names_targets};
pub use builtin::{BUILT_IN_WORKER_NAME, BuiltInWorker};
pub use context::{LogCategory, TaskContext};
pub use deploy::{DEPLOY_TASK, DeploymentHandler};
pub use health::HealthCheckHandler;
pub use runner::{RunnerConfig, TaskHandler, TaskOutcome, TaskRunner, TaskWaker};
pub use schedule::queue_due_health_checks;
pub use scripts::{ScriptOutcome, run_script};
pub use transport::{
    EndpointKind, HealthReport, PackageFile, PackageSupport, TargetAddress, Transport,
    TransportError, Transports,
};

/// The task name of a health check, as Octopus names it.
pub const HEALTH_TASK: &str = "Health";
