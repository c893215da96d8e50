//! SSH connections: made, checked and authenticated here, then pooled and shared.
//!
//! One [`Pool`] per (host, port, space, account, fingerprint) holds the authenticated
//! connections to that target as that user. A call borrows a *channel* ([`Lease`]), not a
//! connection: any number of calls share one connection, up to `channels_per_connection` at
//! a time (sshd's `MaxSessions`, 10 by default, counts them); past that the pool opens
//! another connection. When sshd refuses a channel anyway (a lower `MaxSessions`) the
//! connection's capacity drops to the channels it has open and the call moves on. Closed
//! connections are dropped from the pool and replaced on the next call.
//!
//! The host key is checked during the handshake, before any credential is sent: it must
//! match the pinned fingerprint exactly. A mismatch ends the connection with
//! [`SshError::HostKeyChanged`] naming both fingerprints; nothing is ever learned or
//! updated from the host's answer.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cuttle_domain::Endpoint;
use cuttle_orchestrator::TargetAddress;
use russh::Channel;
use russh::client::{AuthResult, Handle, Msg};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey};

use crate::credentials::{SshAccount, SshAuth, SshCredentials};
use crate::error::SshError;
use crate::fingerprint::HostKeyFingerprint;

/// An SSH target, read from its [`TargetAddress`].
#[derive(Debug, Clone)]
pub(crate) struct SshTarget {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) space_id: String,
    pub(crate) account_id: String,
    /// The fingerprint as configured, for messages.
    pub(crate) fingerprint_text: String,
    pub(crate) key: PoolKey,
}

/// What makes two targets share connections.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    host: String,
    port: u16,
    space_id: String,
    account_id: String,
    /// Normalized when it parses, as configured otherwise.
    fingerprint: String,
}

impl SshTarget {
    pub(crate) fn from_address(target: &TargetAddress) -> Result<SshTarget, SshError> {
        let Endpoint::Ssh {
            host,
            port,
            account_id,
            fingerprint,
        } = &target.endpoint
        else {
            return Err(SshError::Endpoint(
                "its endpoint is not an SSH endpoint".to_owned(),
            ));
        };
        let port = u16::try_from(*port)
            .ok()
            .filter(|port| *port > 0)
            .ok_or_else(|| SshError::Endpoint(format!("its SSH port {port} is not valid")))?;
        let host = host.trim().to_owned();
        if host.is_empty() {
            return Err(SshError::Endpoint(
                "its SSH endpoint has no host".to_owned(),
            ));
        }
        let normalized = HostKeyFingerprint::parse(fingerprint).map_or_else(
            |_| fingerprint.trim().to_owned(),
            |parsed| parsed.to_string(),
        );
        Ok(SshTarget {
            key: PoolKey {
                host: host.clone(),
                port,
                space_id: target.space_id.clone(),
                account_id: account_id.clone(),
                fingerprint: normalized,
            },
            host,
            port,
            space_id: target.space_id.clone(),
            account_id: account_id.clone(),
            fingerprint_text: fingerprint.clone(),
        })
    }

    /// `host:port` (IPv6 hosts in brackets), for messages.
    pub(crate) fn address(&self) -> String {
        address(&self.host, self.port)
    }
}

pub(crate) fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The russh client callbacks: only the host key check matters.
pub(crate) struct Client {
    /// `None` when the configured fingerprint does not parse: every key is refused.
    expected: Option<HostKeyFingerprint>,
    /// The key the host presented, to say what it was when refused.
    seen: Arc<Mutex<Option<HostKeyFingerprint>>>,
}

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKey) -> Result<bool, russh::Error> {
        let actual = HostKeyFingerprint::of_key(key);
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(actual);
        Ok(self.expected == Some(actual))
    }
}

/// How connections are made; shared by every pool of a transport.
pub(crate) struct Connector {
    pub(crate) config: Arc<russh::client::Config>,
    pub(crate) connect_timeout: Duration,
    pub(crate) channels_per_connection: usize,
    pub(crate) credentials: Arc<dyn SshCredentials>,
}

/// Connects to `host:port` and returns the host key's fingerprint without authenticating.
pub(crate) async fn host_key(
    config: Arc<russh::client::Config>,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<HostKeyFingerprint, SshError> {
    let seen = Arc::new(Mutex::new(None));
    let client = Client {
        expected: None,
        seen: Arc::clone(&seen),
    };
    let connected = tokio::time::timeout(
        timeout,
        russh::client::connect(config, (host, port), client),
    )
    .await;
    let actual = *seen.lock().unwrap_or_else(PoisonError::into_inner);
    match (connected, actual) {
        (_, Some(fingerprint)) => Ok(fingerprint),
        (Err(_), None) => Err(unreachable_timeout(host, port, timeout)),
        (Ok(Err(error)), None) => Err(handshake_error(host, port, &error)),
        (Ok(Ok(_)), None) => Err(SshError::Unreachable {
            address: address(host, port),
            reason: "the host presented no key".to_owned(),
        }),
    }
}

fn unreachable_timeout(host: &str, port: u16, timeout: Duration) -> SshError {
    SshError::Unreachable {
        address: address(host, port),
        reason: format!("no SSH handshake within {} s", timeout.as_secs()),
    }
}

fn handshake_error(host: &str, port: u16, error: &russh::Error) -> SshError {
    let reason = match error {
        russh::Error::IO(error) => error.to_string(),
        error => format!("the SSH handshake failed: {error}"),
    };
    SshError::Unreachable {
        address: address(host, port),
        reason,
    }
}

impl Connector {
    /// Connects, checks the host key and authenticates.
    async fn connect(&self, target: &SshTarget) -> Result<Connection, SshError> {
        let account = self
            .credentials
            .credentials(&target.space_id, &target.account_id)
            .await
            .map_err(SshError::Credentials)?;
        let expected = HostKeyFingerprint::parse(&target.fingerprint_text);
        let seen = Arc::new(Mutex::new(None));
        let client = Client {
            expected: expected.as_ref().ok().copied(),
            seen: Arc::clone(&seen),
        };
        let connecting = russh::client::connect(
            Arc::clone(&self.config),
            (target.host.as_str(), target.port),
            client,
        );
        let connected = tokio::time::timeout(self.connect_timeout, connecting).await;
        let mut handle = match connected {
            Err(_) => {
                return Err(unreachable_timeout(
                    &target.host,
                    target.port,
                    self.connect_timeout,
                ));
            }
            Ok(Err(russh::Error::UnknownKey)) => {
                let actual = (*seen.lock().unwrap_or_else(PoisonError::into_inner))
                    .map_or_else(|| "unknown".to_owned(), |actual| actual.to_string());
                return Err(match expected {
                    Ok(expected) => SshError::HostKeyChanged {
                        address: target.address(),
                        expected: expected.to_string(),
                        actual,
                    },
                    Err(error) => SshError::BadFingerprint {
                        address: target.address(),
                        configured: target.fingerprint_text.clone(),
                        reason: error.to_string(),
                        actual,
                    },
                });
            }
            Ok(Err(error)) => return Err(handshake_error(&target.host, target.port, &error)),
            Ok(Ok(handle)) => handle,
        };
        let authenticated = tokio::time::timeout(
            self.connect_timeout,
            authenticate(&mut handle, &account, target),
        )
        .await
        .unwrap_or_else(|_| {
            Err(SshError::ConnectionLost {
                address: target.address(),
                reason: format!(
                    "authentication took more than {} s",
                    self.connect_timeout.as_secs()
                ),
            })
        });
        authenticated?;
        tracing::debug!(address = %target.address(), user = %account.username, "connected over SSH");
        Ok(Connection {
            handle,
            reserved: AtomicUsize::new(0),
            opened: AtomicUsize::new(0),
            limit: AtomicUsize::new(self.channels_per_connection),
        })
    }
}

async fn authenticate(
    handle: &mut Handle<Client>,
    account: &SshAccount,
    target: &SshTarget,
) -> Result<(), SshError> {
    let lost = |error: russh::Error| SshError::ConnectionLost {
        address: target.address(),
        reason: error.to_string(),
    };
    let result = match &account.auth {
        SshAuth::Password(password) => handle
            .authenticate_password(account.username.as_str(), password.as_str())
            .await
            .map_err(lost)?,
        SshAuth::PrivateKey { pem, passphrase } => {
            let key =
                russh::keys::decode_secret_key(pem, passphrase.as_deref()).map_err(|error| {
                    SshError::PrivateKey {
                        account_id: target.account_id.clone(),
                        reason: error.to_string(),
                    }
                })?;
            let hash = if key.algorithm().is_rsa() {
                // Servers that do not say which RSA signatures they take get SHA-256.
                handle
                    .best_supported_rsa_hash()
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(Some(HashAlg::Sha256))
            } else {
                None
            };
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            handle
                .authenticate_publickey(account.username.as_str(), key)
                .await
                .map_err(lost)?
        }
    };
    match result {
        AuthResult::Success => Ok(()),
        AuthResult::Failure {
            remaining_methods, ..
        } => {
            let methods: Vec<&str> = remaining_methods.iter().map(<&str>::from).collect();
            Err(SshError::AuthenticationFailed {
                address: target.address(),
                username: account.username.clone(),
                hint: if methods.is_empty() {
                    String::new()
                } else {
                    format!("; it accepts {}", methods.join(", "))
                },
            })
        }
    }
}

/// One authenticated connection.
pub(crate) struct Connection {
    handle: Handle<Client>,
    /// Channels reserved on this connection (being opened or open). Only raised under the
    /// pool's lock, so it never passes `limit`.
    reserved: AtomicUsize,
    /// Channels open now.
    opened: AtomicUsize,
    /// How many channels may be reserved at once; lowered when sshd refuses one.
    limit: AtomicUsize,
}

impl Connection {
    fn try_reserve(self: &Arc<Connection>) -> Option<Slot> {
        let reserved = self.reserved.load(Ordering::SeqCst);
        (reserved < self.limit.load(Ordering::SeqCst)).then(|| {
            self.reserved.fetch_add(1, Ordering::SeqCst);
            Slot {
                connection: Arc::clone(self),
                opened: false,
            }
        })
    }
}

/// A channel borrowed from a pool; its slot is given back when dropped.
pub(crate) struct Lease {
    pub(crate) channel: Channel<Msg>,
    slot: Slot,
}

/// A channel slot on a connection, held for as long as the channel is in use.
pub(crate) struct Slot {
    connection: Arc<Connection>,
    opened: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connection.reserved.fetch_sub(1, Ordering::SeqCst);
        if self.opened {
            self.connection.opened.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Lease {
    /// The channel, and the slot to keep until the channel is done with.
    pub(crate) fn into_parts(self) -> (Channel<Msg>, Slot) {
        (self.channel, self.slot)
    }
}

/// The connections to one target as one user.
#[derive(Default)]
pub(crate) struct Pool {
    connections: tokio::sync::Mutex<Vec<Arc<Connection>>>,
    /// Whether the binary is known to be on the target (reset with the connections).
    pub(crate) binary_present: AtomicBool,
    /// Held while checking for (and uploading) the binary.
    pub(crate) upload: tokio::sync::Mutex<()>,
}

/// How often opening a channel is tried (new connections, sshd refusing channels).
const CHANNEL_ATTEMPTS: usize = 8;

impl Pool {
    /// Opens a channel on a connection with room for one, connecting when none has.
    pub(crate) async fn open_channel(
        &self,
        connector: &Connector,
        target: &SshTarget,
    ) -> Result<Lease, SshError> {
        let mut last_failure = String::new();
        for _attempt in 0..CHANNEL_ATTEMPTS {
            let mut slot = self.reserve(connector, target).await?;
            let connection = Arc::clone(&slot.connection);
            let opened = tokio::time::timeout(
                connector.connect_timeout,
                connection.handle.channel_open_session(),
            )
            .await;
            match opened {
                Ok(Ok(channel)) => {
                    connection.opened.fetch_add(1, Ordering::SeqCst);
                    slot.opened = true;
                    return Ok(Lease { channel, slot });
                }
                Ok(Err(russh::Error::ChannelOpenFailure(reason))) => {
                    // sshd allows fewer sessions than we thought (its MaxSessions): this
                    // connection holds no more than it has open now.
                    let open_now = connection.opened.load(Ordering::SeqCst).max(1);
                    connection.limit.fetch_min(open_now, Ordering::SeqCst);
                    last_failure = format!("the server refused a channel ({reason:?})");
                }
                Ok(Err(error)) => {
                    self.forget(&connection).await;
                    last_failure = error.to_string();
                }
                Err(_) => {
                    self.forget(&connection).await;
                    last_failure = format!(
                        "no channel within {} s",
                        connector.connect_timeout.as_secs()
                    );
                }
            }
        }
        Err(SshError::ConnectionLost {
            address: target.address(),
            reason: last_failure,
        })
    }

    /// A slot on a live connection with room, connecting when none has room.
    async fn reserve(&self, connector: &Connector, target: &SshTarget) -> Result<Slot, SshError> {
        let mut connections = self.connections.lock().await;
        connections.retain(|connection| !connection.handle.is_closed());
        if let Some(slot) = connections.iter().find_map(Connection::try_reserve) {
            return Ok(slot);
        }
        if connections.is_empty() {
            // A new first connection may reach a reinstalled host: check the binary again.
            self.binary_present.store(false, Ordering::SeqCst);
        }
        // Connecting under the lock: callers that find no room wait for this connection
        // instead of each opening their own.
        let connection = Arc::new(connector.connect(target).await?);
        let slot = connection
            .try_reserve()
            .ok_or_else(|| SshError::ConnectionLost {
                address: target.address(),
                reason: "a new connection has no room for a channel".to_owned(),
            })?;
        connections.push(connection);
        Ok(slot)
    }

    async fn forget(&self, connection: &Arc<Connection>) {
        self.connections
            .lock()
            .await
            .retain(|kept| !Arc::ptr_eq(kept, connection));
    }

    /// How many connections are open.
    pub(crate) async fn open_connections(&self) -> usize {
        self.connections
            .lock()
            .await
            .iter()
            .filter(|connection| !connection.handle.is_closed())
            .count()
    }
}
