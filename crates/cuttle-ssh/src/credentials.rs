//! Where SSH credentials come from: the server resolves an account (a key pair or a username
//! and password) when a connection is made, so this crate never reads the account store.
//!
//! Secrets are wiped from memory when dropped, and `Debug` never prints them.

use std::collections::HashMap;

use async_trait::async_trait;
use cuttle_orchestrator::TransportError;
use zeroize::Zeroize as _;

/// Resolves the account an SSH endpoint names into credentials.
///
/// Called once per new connection, not per call: connections are pooled and stay
/// authenticated. An error is passed to the caller with the target's name in it.
#[async_trait]
pub trait SshCredentials: Send + Sync {
    async fn credentials(
        &self,
        space_id: &str,
        account_id: &str,
    ) -> Result<SshAccount, TransportError>;
}

/// A user to log in as, and how.
#[derive(Clone, Debug)]
pub struct SshAccount {
    pub username: String,
    pub auth: SshAuth,
}

/// How an [`SshAccount`] proves who it is.
#[derive(Clone)]
pub enum SshAuth {
    /// Password authentication.
    Password(String),
    /// Public key authentication with a private key in OpenSSH, PEM (PKCS#1/PKCS#8) or PuTTY
    /// format, possibly encrypted with `passphrase`.
    PrivateKey {
        pem: String,
        passphrase: Option<String>,
    },
}

impl std::fmt::Debug for SshAuth {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SshAuth::Password(_) => formatter.write_str("Password(********)"),
            SshAuth::PrivateKey { passphrase, .. } => formatter
                .debug_struct("PrivateKey")
                .field("pem", &"********")
                .field("passphrase", &passphrase.as_ref().map(|_| "********"))
                .finish(),
        }
    }
}

impl Drop for SshAuth {
    fn drop(&mut self) {
        match self {
            SshAuth::Password(password) => password.zeroize(),
            SshAuth::PrivateKey { pem, passphrase } => {
                pem.zeroize();
                passphrase.zeroize();
            }
        }
    }
}

/// Credentials held in memory, by space and account id: for tests and tools that have the
/// account at hand.
#[derive(Debug, Default, Clone)]
pub struct StaticCredentials {
    accounts: HashMap<(String, String), SshAccount>,
}

impl StaticCredentials {
    pub fn new() -> StaticCredentials {
        StaticCredentials::default()
    }

    /// Adds (or replaces) the account `account_id` of space `space_id`.
    pub fn with_account(
        mut self,
        space_id: &str,
        account_id: &str,
        account: SshAccount,
    ) -> StaticCredentials {
        self.accounts
            .insert((space_id.to_owned(), account_id.to_owned()), account);
        self
    }
}

#[async_trait]
impl SshCredentials for StaticCredentials {
    async fn credentials(
        &self,
        space_id: &str,
        account_id: &str,
    ) -> Result<SshAccount, TransportError> {
        self.accounts
            .get(&(space_id.to_owned(), account_id.to_owned()))
            .cloned()
            .ok_or_else(|| TransportError::Unusable {
                target: account_id.to_owned(),
                message: format!("the account {account_id} does not exist in {space_id}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_secrets() {
        let password = SshAccount {
            username: "deploy".into(),
            auth: SshAuth::Password("hunter2-secret".into()),
        };
        let key = SshAccount {
            username: "deploy".into(),
            auth: SshAuth::PrivateKey {
                pem: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAsecret".into(),
                passphrase: Some("open-sesame".into()),
            },
        };
        let printed = format!("{password:?} {key:?}");
        assert!(printed.contains("deploy"), "{printed}");
        for secret in ["hunter2", "AAAAsecret", "BEGIN", "open-sesame"] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }

    #[tokio::test]
    async fn static_credentials_answer_by_space_and_account() {
        let credentials = StaticCredentials::new().with_account(
            "Spaces-1",
            "Accounts-1",
            SshAccount {
                username: "deploy".into(),
                auth: SshAuth::Password("p".into()),
            },
        );
        let account = credentials
            .credentials("Spaces-1", "Accounts-1")
            .await
            .expect("the account is there");
        assert_eq!(account.username, "deploy");
        assert!(
            credentials
                .credentials("Spaces-2", "Accounts-1")
                .await
                .is_err()
        );
    }
}
