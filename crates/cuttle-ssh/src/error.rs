//! What can go wrong reaching an SSH target, one variant per case a caller (or a person
//! reading the task log) handles differently. [`SshError::into_transport_error`] sorts them
//! into the orchestrator's "unreachable, try again" and "unusable, fix something".
//!
//! No variant carries a password, a private key or a script variable.

use cuttle_orchestrator::TransportError;

/// Why an SSH call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SshError {
    /// No TCP connection or no SSH handshake (refused, timed out, unknown host).
    #[error("could not connect to {address}: {reason}")]
    Unreachable { address: String, reason: String },
    /// The host presented a key other than the pinned one. Never proceeds.
    #[error(
        "the host key of {address} changed: expected {expected}, got {actual}; if the change is expected, update the target's fingerprint"
    )]
    HostKeyChanged {
        address: String,
        expected: String,
        actual: String,
    },
    /// The target's configured fingerprint cannot be read, so no key can match it.
    #[error(
        "the fingerprint {configured:?} of {address} cannot be used: {reason}; the host's key is {actual}"
    )]
    BadFingerprint {
        address: String,
        configured: String,
        reason: String,
        actual: String,
    },
    /// The server refused the account's password or key.
    #[error("{address} refused to authenticate {username}{hint}")]
    AuthenticationFailed {
        address: String,
        username: String,
        /// Starts with "; " when there is something to add (the methods the server offers).
        hint: String,
    },
    /// The account's private key cannot be decoded (or its passphrase is wrong).
    #[error("the private key of account {account_id} cannot be used: {reason}")]
    PrivateKey { account_id: String, reason: String },
    /// The credentials resolver failed.
    #[error("{0}")]
    Credentials(TransportError),
    /// An established connection broke, or did not answer in time.
    #[error("the SSH connection to {address} was lost: {reason}")]
    ConnectionLost { address: String, reason: String },
    /// This server's own `cuttle` binary cannot be read.
    #[error("could not read this server's cuttle binary {path}: {reason}")]
    LocalBinary { path: String, reason: String },
    /// Uploading the binary over SFTP failed.
    #[error("could not upload cuttle to {path} on {address}: {reason}")]
    Upload {
        address: String,
        path: String,
        reason: String,
    },
    /// `cuttle exec` (or another command) on the target failed or answered nonsense.
    #[error("`{command}` failed on {address}: {reason}")]
    Remote {
        address: String,
        command: String,
        reason: String,
    },
    /// The target has no such ticket (never started, or completed).
    #[error("{address} has no ticket {ticket:?}")]
    UnknownTicket { address: String, ticket: String },
    /// The request was refused before anything ran.
    #[error("invalid script request: {0}")]
    InvalidRequest(String),
    /// The target's endpoint is not an SSH endpoint one can connect to.
    #[error("{0}")]
    Endpoint(String),
}

impl SshError {
    /// Whether trying again later may succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            SshError::Unreachable { .. } | SshError::ConnectionLost { .. } => true,
            SshError::Credentials(error) => matches!(error, TransportError::Unreachable { .. }),
            _ => false,
        }
    }

    /// The orchestrator's view, naming the target `target`.
    pub fn into_transport_error(self, target: &str) -> TransportError {
        let target = target.to_owned();
        match self {
            SshError::Credentials(TransportError::Unreachable { message, .. }) => {
                TransportError::Unreachable { target, message }
            }
            SshError::Credentials(TransportError::Unusable { message, .. }) => {
                TransportError::Unusable { target, message }
            }
            error if error.is_retryable() => TransportError::Unreachable {
                target,
                message: error.to_string(),
            },
            error => TransportError::Unusable {
                target,
                message: error.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_host_key_is_unusable_and_names_both_fingerprints() {
        let error = SshError::HostKeyChanged {
            address: "web01:22".into(),
            expected: "SHA256:old".into(),
            actual: "SHA256:new".into(),
        }
        .into_transport_error("Web 01");
        let TransportError::Unusable { target, message } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(target, "Web 01");
        assert_eq!(
            message,
            "the host key of web01:22 changed: expected SHA256:old, got SHA256:new; if the change is expected, update the target's fingerprint"
        );
    }

    #[test]
    fn network_trouble_is_unreachable_and_the_rest_unusable() {
        let lost = SshError::ConnectionLost {
            address: "a".into(),
            reason: "reset".into(),
        };
        assert!(matches!(
            lost.into_transport_error("t"),
            TransportError::Unreachable { .. }
        ));
        let refused = SshError::AuthenticationFailed {
            address: "a".into(),
            username: "u".into(),
            hint: String::new(),
        };
        assert!(matches!(
            refused.into_transport_error("t"),
            TransportError::Unusable { .. }
        ));
    }
}
