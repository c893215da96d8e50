//! Cuttle's executor: runs one script for one *ticket* on this machine, the way Tentacle's
//! script service and Calamari's bootstraps do together. The agent, the server's built-in
//! worker and SSH targets (through `cuttle exec`, see [`run_foreground`]) all use it.
//!
//! ```text
//! start(request) ─► tickets/<ticket>/ created once ─► Pending (isolation mutex) ─► Running
//!     ─► Complete{exit code} | Cancelled | TimedOut      (Unknown: the executor died meanwhile)
//! status(ticket, after_sequence) ─► state + new masked log lines + output variables, artifacts
//! cancel(ticket) ─► process group SIGTERM, then SIGKILL      complete(ticket) ─► directory gone
//! ```
//!
//! Guarantees: a ticket's script runs at most once, even across restarts and processes
//! ([`executor`]); every log line the caller could have seen survives a restart (module
//! `journal`); sensitive values never reach a log line, a file in the clear, an argument or
//! an environment variable ([`masking`], module `variables`); scripts under one mutex name
//! respect their isolation across processes (module `isolation`); Octopus scripts run
//! unchanged (module `bootstrap`, [`output`], [`service_message`]).
//!
//! Package deployments (module [`package_deployment`]) are tickets too: the conventions runner
//! runs in place of a script, extracts the package and runs the deployment's conventions and
//! scripts; that is where this crate substitutes `#{…}` in files and applies structured
//! configuration variables, and keeps the deployment journal.
//!
//! The target's package cache ([`package_cache`]) keeps the package files the server pushed,
//! by SHA-256, and patches new versions from deltas; the agent and the built-in worker serve
//! it, the conventions runner reads packages from it.
//!
//! What this crate does not do: substitute `#{…}` in scripts (the server sends final text),
//! transfer files, or speak the agent protocol; it is Unix-first
//! (process groups and `flock`; elsewhere only the script's own process is killed and
//! isolation is not enforced).

#![forbid(unsafe_code)]

mod bootstrap;
pub mod error;
pub mod executor;
pub mod foreground;
mod isolation;
mod journal;
pub mod masking;
pub mod output;
pub mod package_cache;
pub mod package_deployment;
mod process;
pub mod request;
mod runner;
pub mod service_message;
pub mod status;
mod variables;

pub use error::ExecError;
pub use executor::{Executor, ExecutorOptions, MAX_LINES_PER_STATUS, PackageRunner};
pub use foreground::{ForegroundFormat, ForegroundResult, run_foreground};
pub use package_cache::{CachedPackage, PackageCache, PackageCacheError};
pub use request::{
    DEFAULT_MUTEX_NAME, Isolation, ScriptRequest, ScriptSyntax, ScriptVariable, StagedFile,
    validate_ticket,
};
pub use runner::FLUSH_INTERVAL;
pub use status::{
    Artifact, LogLevel, LogLine, OutputVariable, Progress, ScriptState, ScriptStatus, StartOutcome,
    exit_codes,
};
