//! The executor's error type: one variant per case a caller handles differently.
//!
//! A script that fails is not an error here: it is a finished ticket with an exit code. These
//! errors are about the request (invalid, unknown ticket) and about the executor's own files.

use std::path::PathBuf;

/// What went wrong while accepting, inspecting or cleaning up a ticket.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The ticket id is not 1–100 characters of `[A-Za-z0-9._-]` (or is only dots).
    #[error("invalid ticket {ticket:?}: {reason}")]
    InvalidTicket {
        ticket: String,
        reason: &'static str,
    },
    /// Some other part of the request cannot be run (a bad file name, a bad mutex name…).
    #[error("invalid script request: {0}")]
    InvalidRequest(String),
    /// No ticket with this id exists under the executor's root.
    #[error("unknown ticket {0:?}")]
    UnknownTicket(String),
    /// The ticket is still running in another process, so it cannot be completed from here.
    #[error("ticket {0:?} is still running in another process")]
    StillRunning(String),
    /// Reading or writing one of the executor's files failed.
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file the executor wrote earlier no longer parses.
    #[error("{path} is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },
    /// The key that seals sensitive output variables at rest could not be loaded or used.
    #[error(transparent)]
    Secret(#[from] cuttle_secrets::SecretError),
}

impl ExecError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ExecError {
        let path = path.into();
        move |source| ExecError::Io {
            action,
            path,
            source,
        }
    }
}
