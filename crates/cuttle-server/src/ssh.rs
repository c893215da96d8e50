//! SSH targets' credentials: the accounts they name, with their secrets opened from the store.

use std::sync::Arc;

use async_trait::async_trait;
use cuttle_domain::Account;
use cuttle_orchestrator::TransportError;
use cuttle_secrets::MasterKey;
use cuttle_ssh::{SshAccount, SshAuth, SshCredentials};
use cuttle_store::Store;

/// Resolves an SSH endpoint's `AccountId` to a username and an opened secret.
pub struct AccountCredentials {
    store: Arc<dyn Store>,
    master_key: Arc<MasterKey>,
}

impl AccountCredentials {
    pub fn new(store: Arc<dyn Store>, master_key: Arc<MasterKey>) -> AccountCredentials {
        AccountCredentials { store, master_key }
    }

    fn open(
        &self,
        account: &Account,
        sealed: Option<&String>,
    ) -> Result<Option<String>, TransportError> {
        sealed
            .map(|sealed| {
                self.master_key
                    .open(sealed)
                    .map(|plaintext| plaintext.as_str().to_owned())
                    .map_err(|_| {
                        unusable(
                            account,
                            "its secret cannot be opened with this server's master key",
                        )
                    })
            })
            .transpose()
    }
}

fn unusable(account: &Account, message: &str) -> TransportError {
    TransportError::Unusable {
        target: format!("account '{}'", account.name),
        message: message.to_owned(),
    }
}

#[async_trait]
impl SshCredentials for AccountCredentials {
    async fn credentials(
        &self,
        space_id: &str,
        account_id: &str,
    ) -> Result<SshAccount, TransportError> {
        let missing = || TransportError::Unusable {
            target: format!("account {account_id}"),
            message: format!("there is no such account in space {space_id}"),
        };
        let account = self
            .store
            .get_resource::<Account>(account_id)
            .await
            .map_err(|error| TransportError::Unreachable {
                target: format!("account {account_id}"),
                message: format!("could not read it: {error}"),
            })?
            .filter(|account| account.space_id == space_id)
            .ok_or_else(missing)?;
        let auth = match account.account_type.as_str() {
            "UsernamePassword" => SshAuth::Password(
                self.open(&account, account.password.sealed_value.as_ref())?
                    .ok_or_else(|| unusable(&account, "it has no password"))?,
            ),
            _ => SshAuth::PrivateKey {
                pem: self
                    .open(&account, account.private_key_file.sealed_value.as_ref())?
                    .ok_or_else(|| unusable(&account, "it has no private key"))?,
                passphrase: self.open(
                    &account,
                    account.private_key_passphrase.sealed_value.as_ref(),
                )?,
            },
        };
        Ok(SshAccount {
            username: account.username.clone(),
            auth,
        })
    }
}
