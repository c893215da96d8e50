//! The server thumbprints a running agent trusts, kept in step with `agent.json`.
//!
//! `cuttle agent trust` (and `register`) only edit `agent.json`; the running agent looks at the
//! file every [`TRUST_RECHECK_INTERVAL`] and, when its trusted thumbprints changed, replaces
//! the set its TLS configurations ask at every handshake. So a server whose certificate was
//! replaced is trusted without restarting the agent: a listening agent accepts the server's
//! next connection, a polling agent dials again at once instead of waiting out its backoff.
//!
//! Only a change of the file (its modification time or length) makes it read again; a file
//! that cannot be read or parsed leaves the trust as it was, with a warning.
//!
//! What this module does not do: close connections already open (trusting more never needs
//! that; a server removed from the list keeps its open connection until it closes).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cuttle_pki::ThumbprintSet;
use tokio::sync::Notify;

use crate::config::AgentHome;

/// How often `agent.json` is looked at (a `stat`; it is read only when it changed).
pub const TRUST_RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The trusted server thumbprints of a running agent.
#[derive(Debug, Clone)]
pub struct TrustedServers {
    /// What the TLS configurations ask at each handshake.
    pub thumbprints: Arc<ThumbprintSet>,
    /// Notified (one stored permit) each time the set changes.
    pub changed: Arc<Notify>,
}

impl TrustedServers {
    pub fn new(thumbprints: ThumbprintSet) -> TrustedServers {
        TrustedServers {
            thumbprints: Arc::new(thumbprints),
            changed: Arc::new(Notify::new()),
        }
    }

    /// Follows `home`'s `agent.json` until dropped (run it as a task beside the agent).
    pub async fn follow(self, home: AgentHome) {
        let path = home.config_path();
        let mut seen = stamp(&path);
        let mut interval = tokio::time::interval(TRUST_RECHECK_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let now = stamp(&path);
            if now == seen {
                continue;
            }
            seen = now;
            self.reload(&home);
        }
    }

    /// Reads `agent.json` and takes its trusted thumbprints if they differ; `true` when the
    /// set changed.
    pub fn reload(&self, home: &AgentHome) -> bool {
        let config = match home.load_config() {
            Ok(config) => config,
            Err(error) => {
                tracing::warn!("kept the trusted server thumbprints: {error}");
                return false;
            }
        };
        let mut wanted = config.trusted_server_thumbprints;
        wanted.sort_unstable();
        wanted.dedup();
        if wanted == self.thumbprints.to_vec() {
            return false;
        }
        if let Err(error) = self.thumbprints.replace_all(&wanted) {
            tracing::warn!("kept the trusted server thumbprints: {error}");
            return false;
        }
        if wanted.is_empty() {
            tracing::warn!("agent.json trusts no server any more: every server will be refused");
        } else {
            tracing::info!(
                thumbprints = ?wanted,
                "agent.json changed: now trusting these server thumbprints"
            );
        }
        self.changed.notify_one();
        true
    }
}

/// What tells one version of the file from another without reading it.
fn stamp(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentConfig;

    const FIRST: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const SECOND: &str = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

    #[test]
    fn a_reload_takes_the_files_thumbprints_and_says_when_they_changed() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let home = AgentHome::new(directory.path());
        let mut config = AgentConfig::default();
        config.trust(FIRST).expect("trust");
        home.save_config(&config).expect("save");
        let trusted = TrustedServers::new(
            ThumbprintSet::with_thumbprints([FIRST]).expect("a valid thumbprint"),
        );
        assert!(!trusted.reload(&home), "nothing changed");

        config.trust(&SECOND.to_lowercase()).expect("trust");
        home.save_config(&config).expect("save");
        assert!(trusted.reload(&home));
        assert_eq!(trusted.thumbprints.to_vec(), [FIRST, SECOND]);

        std::fs::write(home.config_path(), "{ not json").expect("damage the file");
        assert!(!trusted.reload(&home), "a damaged file changes nothing");
        assert_eq!(trusted.thumbprints.len(), 2);
    }
}
