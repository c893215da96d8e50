//! The per-user configuration file `cuttle login` writes: the server, the API key and
//! optionally the space, in `$XDG_CONFIG_HOME/cuttle/config.toml` (else
//! `~/.config/cuttle/config.toml`).
//!
//! The file holds an API key, so it is created readable by its owner only (0600, in a 0700
//! directory) and replaced whole by rename, never left half-written.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// What `cuttle login` saved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) server: Option<String>,
    pub(crate) api_key: Option<String>,
    pub(crate) space: Option<String>,
}

/// Where the configuration file is: under `XDG_CONFIG_HOME`, else `~/.config`.
pub(crate) fn config_path() -> anyhow::Result<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    let base = match (non_empty("XDG_CONFIG_HOME"), non_empty("HOME")) {
        (Some(config_home), _) => PathBuf::from(config_home),
        (None, Some(home)) => PathBuf::from(home).join(".config"),
        (None, None) => anyhow::bail!(
            "neither XDG_CONFIG_HOME nor HOME is set, so there is no place for the configuration file"
        ),
    };
    Ok(base.join("cuttle").join("config.toml"))
}

/// The saved configuration; empty when there is no file.
pub(crate) fn load() -> anyhow::Result<Config> {
    let path = config_path()?;
    load_from(&path)
}

fn load_from(path: &Path) -> anyhow::Result<Config> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("read {}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(error) => Err(error).with_context(|| format!("read {}", path.display())),
    }
}

/// Writes the configuration (mode 0600) and returns where.
pub(crate) fn save(config: &Config) -> anyhow::Result<PathBuf> {
    let path = config_path()?;
    save_to(&path, config)?;
    Ok(path)
}

fn save_to(path: &Path, config: &Config) -> anyhow::Result<()> {
    let directory = path
        .parent()
        .context("the configuration file has no directory")?;
    create_private_directory(directory)
        .with_context(|| format!("create {}", directory.display()))?;
    let text = toml::to_string(config).context("write the configuration as TOML")?;
    let temporary = directory.join(format!(".config.toml.{}.tmp", std::process::id()));
    write_private_file(&temporary, text.as_bytes())
        .with_context(|| format!("write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("replace {}", path.display()))?;
    Ok(())
}

#[cfg(unix)]
fn create_private_directory(directory: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(directory)
}

#[cfg(not(unix))]
fn create_private_directory(directory: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(directory)
}

/// Creates `path` readable and writable by its owner only, from the first byte on: the
/// mode is set at creation, so the key is never readable by others even for a moment.
#[cfg(unix)]
pub(crate) fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // A file left by an earlier crash may have had another mode.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(not(unix))]
pub(crate) fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_configuration_reads_back_and_is_private() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("cuttle").join("config.toml");
        assert_eq!(load_from(&path).unwrap(), Config::default());
        let config = Config {
            server: Some("http://127.0.0.1:8050".to_owned()),
            api_key: Some("API-KEY".to_owned()),
            space: None,
        };
        save_to(&path, &config).unwrap();
        assert_eq!(load_from(&path).unwrap(), config);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
