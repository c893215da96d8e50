//! The agent's home directory and its configuration file.
//!
//! ```text
//! <home>/agent.json               AgentConfig: server, trusted thumbprints, mode, registration
//! <home>/certificate/             the agent's identity (cuttle_pki::Identity), created once
//! <home>/work/                    the executor's root: tickets, locks, its at-rest key
//! <home>/files/                   the file store (uploads from the server)
//! <home>/packages/                the package cache (`cuttle_exec::PackageCache`)
//! ```
//!
//! `agent.json` is PascalCase JSON written atomically (temporary file, then rename), so a crash
//! never leaves half a configuration. Everything the agent must remember across restarts is
//! here; the rest (capabilities, connections) is derived at start.
//!
//! What this module does not do: read environment variables or pick the home directory (the
//! binary does, see [`AgentHome::default_location`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use cuttle_pki::{Identity, PkiError};
use serde::{Deserialize, Serialize};

use crate::protocol::DEFAULT_LISTEN_PORT;

/// The configuration's file name in the home directory.
pub const CONFIG_FILE_NAME: &str = "agent.json";

/// Why the home directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid agent configuration: {reason}")]
    Damaged { path: PathBuf, reason: String },
    #[error(transparent)]
    Pki(#[from] PkiError),
}

/// How the agent and the server reach each other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentMode {
    /// The server dials the agent (`TentaclePassive`).
    #[default]
    Listening,
    /// The agent dials the server (`TentacleActive`).
    Polling,
}

/// What the agent is registered as on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MachineKind {
    /// A deployment target (`/api/{space}/machines`).
    DeploymentTarget,
    /// A worker (`/api/{space}/workers`).
    Worker,
}

impl MachineKind {
    /// The REST collection the machine lives in.
    pub fn collection(self) -> &'static str {
        match self {
            MachineKind::DeploymentTarget => "machines",
            MachineKind::Worker => "workers",
        }
    }
}

impl std::fmt::Display for MachineKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            MachineKind::DeploymentTarget => "deployment target",
            MachineKind::Worker => "worker",
        })
    }
}

/// The machine this agent was registered as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Registration {
    pub kind: MachineKind,
    /// `Machines-1`, `Workers-1`…
    pub id: String,
    pub name: String,
    pub space_id: String,
    /// The server's thumbprint when it was registered (trusted since).
    pub server_thumbprint: String,
}

/// Everything `agent.json` holds. Missing fields take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AgentConfig {
    /// The server's REST address, as given at registration.
    pub server_url: Option<String>,
    /// The server certificates this agent accepts (64 upper-case hex digits each).
    pub trusted_server_thumbprints: Vec<String>,
    pub mode: AgentMode,
    /// Listening mode: the port to accept the server's connections on.
    pub listen_port: u16,
    /// Listening mode: the host name the server dials, when not the machine's name.
    pub public_hostname: Option<String>,
    /// Polling mode: the server's agent port, `host:port`.
    pub server_comms_address: Option<String>,
    /// Polling mode: the id the server knows this agent by (`poll://<id>/`).
    pub subscription_id: Option<String>,
    pub registration: Option<Registration>,
}

impl Default for AgentConfig {
    fn default() -> AgentConfig {
        AgentConfig {
            server_url: None,
            trusted_server_thumbprints: Vec::new(),
            mode: AgentMode::Listening,
            listen_port: DEFAULT_LISTEN_PORT,
            public_hostname: None,
            server_comms_address: None,
            subscription_id: None,
            registration: None,
        }
    }
}

impl AgentConfig {
    /// Trusts `thumbprint` (any form `cuttle_pki::normalize_thumbprint` accepts). Returns its
    /// canonical form, and `true` when it was not trusted before.
    pub fn trust(&mut self, thumbprint: &str) -> Result<(String, bool), PkiError> {
        let canonical = cuttle_pki::normalize_thumbprint(thumbprint).ok_or_else(|| {
            PkiError::InvalidThumbprint {
                text: thumbprint.to_owned(),
            }
        })?;
        if self.trusted_server_thumbprints.contains(&canonical) {
            return Ok((canonical, false));
        }
        self.trusted_server_thumbprints.push(canonical.clone());
        Ok((canonical, true))
    }

    /// Stops trusting `thumbprint`; `true` when it was trusted.
    pub fn untrust(&mut self, thumbprint: &str) -> bool {
        let Some(canonical) = cuttle_pki::normalize_thumbprint(thumbprint) else {
            return false;
        };
        let before = self.trusted_server_thumbprints.len();
        self.trusted_server_thumbprints
            .retain(|trusted| *trusted != canonical);
        self.trusted_server_thumbprints.len() != before
    }
}

/// The agent's home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentHome {
    root: PathBuf,
}

impl AgentHome {
    pub fn new(root: impl Into<PathBuf>) -> AgentHome {
        AgentHome { root: root.into() }
    }

    /// Where the home is when none is given: `<user home>/.cuttle-agent`, or `./cuttle-agent`
    /// without a user home.
    pub fn default_location(user_home: Option<&Path>) -> PathBuf {
        match user_home {
            Some(home) if !home.as_os_str().is_empty() => home.join(".cuttle-agent"),
            _ => PathBuf::from("cuttle-agent"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join(CONFIG_FILE_NAME)
    }

    /// Where the identity's `certificate.pem` and `private-key.pem` are.
    pub fn certificate_directory(&self) -> PathBuf {
        self.root.join("certificate")
    }

    /// The executor's root.
    pub fn work_directory(&self) -> PathBuf {
        self.root.join("work")
    }

    /// The file store's directory.
    pub fn files_directory(&self) -> PathBuf {
        self.root.join("files")
    }

    /// The package cache's directory.
    pub fn packages_directory(&self) -> PathBuf {
        self.root.join("packages")
    }

    /// The configuration, or the default one when there is no `agent.json` yet.
    pub fn load_config(&self) -> Result<AgentConfig, ConfigError> {
        let path = self.config_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(AgentConfig::default());
            }
            Err(source) => {
                return Err(ConfigError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        serde_json::from_str(&text).map_err(|error| ConfigError::Damaged {
            path,
            reason: error.to_string(),
        })
    }

    /// Writes `config` to `agent.json`, atomically.
    pub fn save_config(&self, config: &AgentConfig) -> Result<(), ConfigError> {
        let path = self.config_path();
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| ConfigError::Io {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(&self.root).map_err(io("create", &self.root))?;
        let mut text =
            serde_json::to_string_pretty(config).map_err(|error| ConfigError::Damaged {
                path: path.clone(),
                reason: error.to_string(),
            })?;
        text.push('\n');
        let temporary = self.root.join(format!("{CONFIG_FILE_NAME}.partial"));
        let mut file = std::fs::File::create(&temporary).map_err(io("create", &temporary))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io("write", &temporary))?;
        drop(file);
        std::fs::rename(&temporary, &path).map_err(io("rename into place", &path))
    }

    /// The agent's identity, created on first use (`common_name` names a new certificate).
    /// The flag is `true` when it was created now.
    pub fn identity(&self, common_name: &str) -> Result<(Identity, bool), ConfigError> {
        Ok(Identity::load_or_create(
            &self.certificate_directory(),
            common_name,
        )?)
    }
}

/// This machine's host name, or `localhost` when it cannot be read.
pub fn machine_hostname() -> String {
    #[cfg(unix)]
    {
        let name = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        if !name.is_empty() {
            return name;
        }
    }
    "localhost".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_round_trips_and_defaults_when_missing() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let home = AgentHome::new(directory.path().join("home"));
        let mut config = home.load_config().expect("the default");
        assert_eq!(config, AgentConfig::default());
        assert_eq!(config.listen_port, 10933);
        let thumbprint = "ab".repeat(32);
        assert_eq!(
            config.trust(&thumbprint).expect("a thumbprint"),
            ("AB".repeat(32), true)
        );
        assert!(
            !config
                .trust(&thumbprint.to_uppercase())
                .expect("a thumbprint")
                .1
        );
        assert!(config.trust("not a thumbprint").is_err());
        config.mode = AgentMode::Polling;
        home.save_config(&config).expect("saved");
        let loaded = home.load_config().expect("loaded");
        assert_eq!(loaded, config);
        assert_eq!(loaded.trusted_server_thumbprints, vec!["AB".repeat(32)]);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(home.config_path()).expect("read"))
                .expect("json");
        assert_eq!(json["Mode"], "Polling");
        std::fs::write(home.config_path(), "{").expect("write");
        assert!(matches!(
            home.load_config(),
            Err(ConfigError::Damaged { .. })
        ));
    }

    #[test]
    fn the_default_home_is_under_the_user_home() {
        assert_eq!(
            AgentHome::default_location(Some(Path::new("/home/me"))),
            PathBuf::from("/home/me/.cuttle-agent")
        );
        assert_eq!(
            AgentHome::default_location(None),
            PathBuf::from("cuttle-agent")
        );
        assert!(!machine_hostname().is_empty());
    }
}
