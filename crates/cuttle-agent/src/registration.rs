//! Registering the agent with a server through its REST API, and deregistering it.
//!
//! Registration, as Tentacle's `register-with` does it: load (or create) the agent's
//! identity; ask the server for its certificate's thumbprint
//! (`GET /api/certificates/certificate-global`) and trust it; resolve the space, environments
//! or worker pools by name (or id); create the machine (`POST /api/{space}/machines` or
//! `/workers`) with a `TentaclePassive` endpoint (`https://host:port/`) or a `TentacleActive`
//! one (`poll://<subscription id>/`) carrying the agent's thumbprint, so the server trusts it
//! in turn; then record everything in `agent.json`. The configuration is written only once
//! the server has accepted the machine, so a failed registration changes nothing locally
//! (except a new identity, which is kept for the next attempt).
//!
//! What this module does not do: check that the server can reach a listening agent, or that
//! a polling agent can reach the server's agent port; `cuttle agent run` and the server's
//! health check tell.

use cuttle_client::{Client, ClientError, ListOptions};
use cuttle_domain::{DeploymentTarget, Endpoint, Environment, Space, Worker, WorkerPool};
use serde::Deserialize;

use crate::config::{
    AgentHome, AgentMode, ConfigError, MachineKind, Registration, machine_hostname,
};
use crate::polling::parse_host_port;
use crate::protocol::DEFAULT_SERVER_AGENT_PORT;

/// The common name of a new agent certificate.
pub const AGENT_CERTIFICATE_NAME: &str = "Cuttle Agent";
/// The length of a generated polling subscription id.
const SUBSCRIPTION_ID_LENGTH: usize = 20;

/// Why registering or deregistering failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The server refused or could not be reached; the source says why.
    #[error("could not {action}")]
    Server {
        action: String,
        #[source]
        source: ClientError,
    },
    #[error(
        "this agent is already registered as {kind} {id} ({name}); hint: run `cuttle agent \
         deregister` first"
    )]
    AlreadyRegistered {
        kind: MachineKind,
        id: String,
        name: String,
    },
    #[error("this agent is not registered")]
    NotRegistered,
    #[error("no {what} named {name:?} on the server{}", list_available(.available))]
    NotFound {
        what: &'static str,
        name: String,
        available: Vec<String>,
    },
    #[error("the server's certificate thumbprint {0:?} is not a SHA-256 thumbprint")]
    InvalidServerThumbprint(String),
    #[error("{0}")]
    InvalidOption(String),
}

fn list_available(available: &[String]) -> String {
    if available.is_empty() {
        String::new()
    } else {
        format!("; it has: {}", available.join(", "))
    }
}

/// What the machine is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MachineRole {
    /// A deployment target in these environments (names or ids) with these roles.
    DeploymentTarget {
        environments: Vec<String>,
        roles: Vec<String>,
    },
    /// A worker in these worker pools (names or ids).
    Worker { worker_pools: Vec<String> },
}

/// How the server will reach the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionMode {
    /// The server dials `https://<public hostname>:<port>/`.
    Listening { port: u16 },
    /// The agent dials the server's agent port: `server_comms_address`, or the host of the
    /// server URL on port 10943.
    Polling {
        server_comms_address: Option<String>,
    },
}

/// What `cuttle agent register` / `register-worker` was asked.
#[derive(Debug, Clone)]
pub struct RegisterOptions {
    /// The server's REST address (`https://cuttle.example.com`).
    pub server_url: String,
    pub api_key: String,
    /// The space's name or id; the default space when `None`.
    pub space: Option<String>,
    /// The machine's name; the host name when `None`.
    pub name: Option<String>,
    pub role: MachineRole,
    pub mode: ConnectionMode,
    /// Listening: the name the server dials; the host name when `None`.
    pub public_hostname: Option<String>,
}

/// What registration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationOutcome {
    pub registration: Registration,
    pub space_name: String,
    pub mode: AgentMode,
    /// `https://host:port/` or `poll://<subscription id>/`.
    pub endpoint_uri: String,
    /// Polling: where the agent will dial.
    pub server_comms_address: Option<String>,
    pub agent_thumbprint: String,
    /// Whether the agent's identity was created by this registration.
    pub identity_created: bool,
}

/// The body of `GET /api/certificates/certificate-global`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServerCertificate {
    thumbprint: String,
}

fn server_error(action: impl Into<String>) -> impl FnOnce(ClientError) -> RegistrationError {
    let action = action.into();
    move |source| RegistrationError::Server { action, source }
}

/// Registers this agent with the server; see the module documentation.
pub async fn register(
    home: &AgentHome,
    options: RegisterOptions,
) -> Result<RegistrationOutcome, RegistrationError> {
    let mut config = home.load_config()?;
    if let Some(existing) = &config.registration {
        return Err(RegistrationError::AlreadyRegistered {
            kind: existing.kind,
            id: existing.id.clone(),
            name: existing.name.clone(),
        });
    }
    let name = options
        .name
        .clone()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(machine_hostname);
    let (identity, identity_created) = home.identity(AGENT_CERTIFICATE_NAME)?;
    let client = Client::new(&options.server_url, Some(options.api_key.clone()))
        .map_err(server_error("use the server URL"))?;

    let certificate: ServerCertificate =
        client
            .get("/api/certificates/certificate-global")
            .await
            .map_err(server_error("read the server's certificate thumbprint"))?;
    let server_thumbprint =
        cuttle_pki::normalize_thumbprint(&certificate.thumbprint).ok_or_else(|| {
            RegistrationError::InvalidServerThumbprint(certificate.thumbprint.clone())
        })?;
    let space = resolve_space(&client, options.space.as_deref()).await?;

    let (mode, endpoint_uri, server_comms_address, subscription_id) = match &options.mode {
        ConnectionMode::Listening { port } => {
            let host = options
                .public_hostname
                .clone()
                .filter(|host| !host.trim().is_empty())
                .unwrap_or_else(machine_hostname);
            let host = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host
            };
            let uri = format!("https://{host}:{port}/");
            (
                AgentMode::Listening,
                uri,
                None,
                config.subscription_id.clone(),
            )
        }
        ConnectionMode::Polling {
            server_comms_address,
        } => {
            let address = match server_comms_address {
                Some(address) => {
                    let (host, port) = parse_host_port(address, DEFAULT_SERVER_AGENT_PORT)
                        .map_err(RegistrationError::InvalidOption)?;
                    join_host_port(&host, port)
                }
                None => default_comms_address(&options.server_url)?,
            };
            let subscription_id = config
                .subscription_id
                .clone()
                .unwrap_or_else(new_subscription_id);
            let uri = format!("poll://{subscription_id}/");
            (
                AgentMode::Polling,
                uri,
                Some(address),
                Some(subscription_id),
            )
        }
    };
    let endpoint = match mode {
        AgentMode::Listening => Endpoint::Listening {
            uri: endpoint_uri.clone(),
            thumbprint: identity.thumbprint().to_owned(),
        },
        AgentMode::Polling => Endpoint::Polling {
            uri: endpoint_uri.clone(),
            thumbprint: identity.thumbprint().to_owned(),
        },
    };

    let (kind, id) = match &options.role {
        MachineRole::DeploymentTarget {
            environments,
            roles,
        } => {
            let environment_ids = resolve_environments(&client, &space.id, environments).await?;
            let target = DeploymentTarget {
                name: name.clone(),
                environment_ids,
                roles: roles.clone(),
                endpoint,
                ..DeploymentTarget::default()
            };
            let created = client
                .create(Some(&space.id), &target)
                .await
                .map_err(server_error(format!(
                    "register the deployment target {name:?}"
                )))?;
            (MachineKind::DeploymentTarget, created.id)
        }
        MachineRole::Worker { worker_pools } => {
            let worker_pool_ids = resolve_worker_pools(&client, &space.id, worker_pools).await?;
            let worker = Worker {
                name: name.clone(),
                worker_pool_ids,
                endpoint,
                ..Worker::default()
            };
            let created = client
                .create(Some(&space.id), &worker)
                .await
                .map_err(server_error(format!("register the worker {name:?}")))?;
            (MachineKind::Worker, created.id)
        }
    };

    let registration = Registration {
        kind,
        id,
        name,
        space_id: space.id.clone(),
        server_thumbprint: server_thumbprint.clone(),
    };
    config.server_url = Some(client.base_url().to_owned());
    config
        .trust(&server_thumbprint)
        .map_err(|_| RegistrationError::InvalidServerThumbprint(server_thumbprint.clone()))?;
    config.mode = mode;
    if let ConnectionMode::Listening { port } = options.mode {
        config.listen_port = port;
    }
    config.public_hostname = options.public_hostname.clone();
    config.server_comms_address = server_comms_address.clone();
    config.subscription_id = subscription_id;
    config.registration = Some(registration.clone());
    home.save_config(&config)?;
    Ok(RegistrationOutcome {
        registration,
        space_name: space.name,
        mode,
        endpoint_uri,
        server_comms_address,
        agent_thumbprint: identity.thumbprint().to_owned(),
        identity_created,
    })
}

/// Deletes this agent's machine from the server (`server_url`, or the one it registered
/// with) and forgets the registration and the server's thumbprint. A machine the server no
/// longer has is not an error.
pub async fn deregister(
    home: &AgentHome,
    server_url: Option<&str>,
    api_key: &str,
) -> Result<Registration, RegistrationError> {
    let mut config = home.load_config()?;
    let registration = config
        .registration
        .clone()
        .ok_or(RegistrationError::NotRegistered)?;
    let server_url = server_url
        .map(str::to_owned)
        .or_else(|| config.server_url.clone())
        .ok_or_else(|| {
            RegistrationError::InvalidOption(
                "the server's URL is not in the configuration; hint: pass --server".to_owned(),
            )
        })?;
    let client = Client::new(&server_url, Some(api_key.to_owned()))
        .map_err(server_error("use the server URL"))?;
    let deleted = match registration.kind {
        MachineKind::DeploymentTarget => {
            client
                .delete_resource::<DeploymentTarget>(Some(&registration.space_id), &registration.id)
                .await
        }
        MachineKind::Worker => {
            client
                .delete_resource::<Worker>(Some(&registration.space_id), &registration.id)
                .await
        }
    };
    match deleted {
        Ok(()) => {}
        Err(error) if error.status().is_some_and(|status| status.as_u16() == 404) => {
            tracing::warn!(id = %registration.id, "the server no longer had this machine");
        }
        Err(error) => {
            return Err(server_error(format!(
                "delete the {} {}",
                registration.kind, registration.id
            ))(error));
        }
    }
    config.untrust(&registration.server_thumbprint);
    config.registration = None;
    home.save_config(&config)?;
    Ok(registration)
}

/// The space named or identified by `wanted`, or the default space.
async fn resolve_space(client: &Client, wanted: Option<&str>) -> Result<Space, RegistrationError> {
    let options = ListOptions {
        take: Some(i64::from(i32::MAX)),
        partial_name: wanted
            .filter(|wanted| !wanted.starts_with("Spaces-"))
            .map(str::to_owned),
        ..ListOptions::default()
    };
    let spaces: Vec<Space> = client
        .list::<Space>(None, &options)
        .await
        .map_err(server_error("list the spaces"))?
        .items
        .into_iter()
        .map(|item| item.resource)
        .collect();
    let found = match wanted {
        Some(wanted) => spaces
            .iter()
            .find(|space| space.id == wanted || space.name.eq_ignore_ascii_case(wanted)),
        None => spaces
            .iter()
            .find(|space| space.is_default)
            .or_else(|| spaces.iter().find(|space| space.name == "Default")),
    };
    found.cloned().ok_or_else(|| RegistrationError::NotFound {
        what: "space",
        name: wanted.unwrap_or("(the default space)").to_owned(),
        available: spaces.iter().map(|space| space.name.clone()).collect(),
    })
}

async fn resolve_environments(
    client: &Client,
    space_id: &str,
    wanted: &[String],
) -> Result<Vec<String>, RegistrationError> {
    let environments: Vec<Environment> = client
        .list_all(Some(space_id))
        .await
        .map_err(server_error("list the environments"))?;
    let pairs: Vec<(String, String)> = environments
        .into_iter()
        .map(|environment| (environment.id, environment.name))
        .collect();
    resolve_names("environment", &pairs, wanted)
}

async fn resolve_worker_pools(
    client: &Client,
    space_id: &str,
    wanted: &[String],
) -> Result<Vec<String>, RegistrationError> {
    let pools: Vec<WorkerPool> = client
        .list_all(Some(space_id))
        .await
        .map_err(server_error("list the worker pools"))?;
    let pairs: Vec<(String, String)> = pools.into_iter().map(|pool| (pool.id, pool.name)).collect();
    resolve_names("worker pool", &pairs, wanted)
}

/// The ids of `wanted`, each an id or a name (case-insensitive) among `(id, name)` pairs.
fn resolve_names(
    what: &'static str,
    pairs: &[(String, String)],
    wanted: &[String],
) -> Result<Vec<String>, RegistrationError> {
    wanted
        .iter()
        .map(|wanted| {
            let wanted = wanted.trim();
            pairs
                .iter()
                .find(|(id, name)| id == wanted || name.eq_ignore_ascii_case(wanted))
                .map(|(id, _)| id.clone())
                .ok_or_else(|| RegistrationError::NotFound {
                    what,
                    name: wanted.to_owned(),
                    available: pairs.iter().map(|(_, name)| name.clone()).collect(),
                })
        })
        .collect()
}

/// The host of `server_url` on the default agent port.
fn default_comms_address(server_url: &str) -> Result<String, RegistrationError> {
    let uri: axum::http::Uri = server_url.trim().parse().map_err(|_| {
        RegistrationError::InvalidOption(format!("{server_url:?} is not a server URL"))
    })?;
    let host = uri.host().filter(|host| !host.is_empty()).ok_or_else(|| {
        RegistrationError::InvalidOption(format!("the server URL {server_url:?} has no host"))
    })?;
    Ok(format!("{host}:{DEFAULT_SERVER_AGENT_PORT}"))
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A new subscription id: random lower-case letters and digits.
fn new_subscription_id() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut random = rand::thread_rng();
    (0..SUBSCRIPTION_ID_LENGTH)
        .map(|_| char::from(ALPHABET[random.gen_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_by_id_or_case_insensitive_name() {
        let pairs = vec![
            ("Environments-1".to_owned(), "Development".to_owned()),
            ("Environments-2".to_owned(), "Production".to_owned()),
        ];
        let wanted = vec!["production".to_owned(), "Environments-1".to_owned()];
        assert_eq!(
            resolve_names("environment", &pairs, &wanted).expect("both exist"),
            vec!["Environments-2", "Environments-1"]
        );
        let error = resolve_names("environment", &pairs, &["Test".to_owned()])
            .expect_err("no such environment");
        assert_eq!(
            error.to_string(),
            "no environment named \"Test\" on the server; it has: Development, Production"
        );
    }

    #[test]
    fn the_polling_address_defaults_to_the_server_host_on_the_agent_port() {
        assert_eq!(
            default_comms_address("https://cuttle.example.com:8050/").expect("a URL"),
            "cuttle.example.com:10943"
        );
        assert_eq!(
            default_comms_address("http://[::1]:8050").expect("a URL"),
            "[::1]:10943"
        );
        assert_eq!(join_host_port("::1", 5), "[::1]:5");
    }

    #[test]
    fn subscription_ids_are_lower_case_alphanumeric() {
        let id = new_subscription_id();
        assert_eq!(id.len(), SUBSCRIPTION_ID_LENGTH);
        assert!(
            id.bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
        );
        assert_ne!(id, new_subscription_id());
    }
}
