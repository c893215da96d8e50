//! The deployment journal on this machine (Calamari's `DeploymentJournal.xml`, as JSON): one
//! entry per package installation, and the retention that reads it.
//!
//! The journal is `DeploymentJournal.json` beside the executor's root (the agent's home). Every
//! change is a read-modify-write under an exclusive `flock` on `DeploymentJournal.lock`, written
//! to a temporary file, fsynced and renamed over the journal, so readers never see half a
//! file and two deployments never lose each other's entries. A journal that does not parse is
//! an error, never silently replaced (it is what retention trusts).
//!
//! Retention deletes only directories the journal names, and only for the policy set being
//! deployed: anything not in the journal is never touched.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ExecError;

/// The journal's file name.
pub const JOURNAL_FILE_NAME: &str = "DeploymentJournal.json";
const LOCK_FILE_NAME: &str = "DeploymentJournal.lock";

/// Where the journal of the executor rooted at `executor_root` lives: beside the root.
pub fn journal_path_for_executor_root(executor_root: &Path) -> PathBuf {
    executor_root
        .parent()
        .unwrap_or(executor_root)
        .join(JOURNAL_FILE_NAME)
}

/// One installation of a package, successful or not (Octopus's `<Deployment>` element).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JournalEntry {
    pub id: String,
    pub environment_id: String,
    #[serde(default)]
    pub tenant_id: Option<String>,
    pub project_id: String,
    pub package_id: String,
    pub package_version: String,
    pub installed_on: DateTime<Utc>,
    pub extracted_from: PathBuf,
    pub extracted_to: PathBuf,
    pub retention_policy_set: String,
    #[serde(default)]
    pub custom_installation_directory: Option<PathBuf>,
    pub was_successful: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JournalFile {
    deployments: Vec<JournalEntry>,
}

/// The journal file; each operation takes the lock for its own duration.
#[derive(Debug, Clone)]
pub struct DeploymentJournal {
    path: PathBuf,
    lock_path: PathBuf,
}

/// The journal, locked: dropping it releases the lock.
pub(crate) struct LockedJournal {
    journal: DeploymentJournal,
    file: JournalFile,
    _lock: File,
}

impl DeploymentJournal {
    /// The journal at `path` (created on the first write).
    pub fn new(path: PathBuf) -> DeploymentJournal {
        let lock_path = path.with_file_name(LOCK_FILE_NAME);
        DeploymentJournal { path, lock_path }
    }

    /// Every entry, under the lock.
    pub fn entries(&self) -> Result<Vec<JournalEntry>, ExecError> {
        Ok(self.lock()?.file.deployments)
    }

    /// Takes the lock (waiting for it) and reads the journal.
    pub(crate) fn lock(&self) -> Result<LockedJournal, ExecError> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(ExecError::io("create", parent))?;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&self.lock_path)
            .map_err(ExecError::io("open", &self.lock_path))?;
        lock_exclusive(&lock, &self.lock_path)?;
        let file = match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| ExecError::Damaged {
                path: self.path.clone(),
                reason: error.to_string(),
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => JournalFile::default(),
            Err(error) => return Err(ExecError::io("read", &self.path)(error)),
        };
        Ok(LockedJournal {
            journal: self.clone(),
            file,
            _lock: lock,
        })
    }
}

impl LockedJournal {
    #[cfg(test)]
    pub(crate) fn entries(&self) -> &[JournalEntry] {
        &self.file.deployments
    }

    /// The most recent successful entry of this policy set for this package version.
    pub(crate) fn successful_install(
        &self,
        retention_policy_set: &str,
        package_id: &str,
        version: &str,
    ) -> Option<&JournalEntry> {
        self.file
            .deployments
            .iter()
            .filter(|entry| {
                entry.was_successful
                    && entry.retention_policy_set == retention_policy_set
                    && entry.package_id == package_id
                    && entry.package_version == version
            })
            .max_by_key(|entry| entry.installed_on)
    }

    pub(crate) fn add(&mut self, entry: JournalEntry) {
        self.file.deployments.push(entry);
    }

    /// Keeps, for `retention_policy_set`, the entry installed to `current` plus the
    /// `keep_count` most recent other successful entries; removes the others from the
    /// journal and returns the directories to delete (those no kept entry of any policy set
    /// still names).
    pub(crate) fn apply_retention(
        &mut self,
        retention_policy_set: &str,
        current: &Path,
        keep_count: u32,
    ) -> Vec<PathBuf> {
        let mut candidates: Vec<&JournalEntry> = self
            .file
            .deployments
            .iter()
            .filter(|entry| {
                entry.retention_policy_set == retention_policy_set && entry.extracted_to != current
            })
            .collect();
        candidates.sort_by_key(|entry| std::cmp::Reverse(entry.installed_on));
        let kept_paths: Vec<PathBuf> = candidates
            .iter()
            .filter(|entry| entry.was_successful)
            .take(keep_count as usize)
            .map(|entry| entry.extracted_to.clone())
            .collect();
        let removed_ids: Vec<(String, PathBuf)> = candidates
            .iter()
            .filter(|entry| !kept_paths.contains(&entry.extracted_to))
            .map(|entry| (entry.id.clone(), entry.extracted_to.clone()))
            .collect();
        self.file.deployments.retain(|entry| {
            entry.retention_policy_set != retention_policy_set
                || !removed_ids
                    .iter()
                    .any(|(id, path)| *id == entry.id && *path == entry.extracted_to)
        });
        let mut directories: Vec<PathBuf> = Vec::new();
        for (_, path) in removed_ids {
            let still_named = self
                .file
                .deployments
                .iter()
                .any(|entry| entry.extracted_to == path);
            if !still_named && path != current && !directories.contains(&path) {
                directories.push(path);
            }
        }
        directories
    }

    /// Writes the journal (temporary file, fsync, rename) while still holding the lock.
    pub(crate) fn save(&self) -> Result<(), ExecError> {
        let path = &self.journal.path;
        let temporary = path.with_file_name(format!(
            ".{JOURNAL_FILE_NAME}.{:016x}.tmp",
            rand::random::<u64>()
        ));
        let bytes = serde_json::to_vec_pretty(&self.file).map_err(|error| ExecError::Damaged {
            path: path.clone(),
            reason: error.to_string(),
        })?;
        let written = (|| {
            let mut file = File::create_new(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        })();
        if let Err(error) = written {
            let _removed = std::fs::remove_file(&temporary);
            return Err(ExecError::io("write", path)(error));
        }
        if let Some(parent) = path.parent() {
            // The rename is durable once the directory is.
            let _synced = crate::journal::sync_directory(parent);
        }
        Ok(())
    }
}

#[cfg(unix)]
fn lock_exclusive(file: &File, path: &Path) -> Result<(), ExecError> {
    use rustix::fs::{FlockOperation, flock};
    loop {
        match flock(file, FlockOperation::LockExclusive) {
            Ok(()) => return Ok(()),
            Err(errno) if errno == rustix::io::Errno::INTR => {}
            Err(errno) => return Err(ExecError::io("lock", path)(errno.into())),
        }
    }
}

#[cfg(not(unix))]
fn lock_exclusive(_file: &File, _path: &Path) -> Result<(), ExecError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, minute: u32, successful: bool, to: &str) -> JournalEntry {
        JournalEntry {
            id: id.to_owned(),
            environment_id: "Environments-1".into(),
            tenant_id: None,
            project_id: "Projects-1".into(),
            package_id: "App".into(),
            package_version: id.to_owned(),
            installed_on: DateTime::parse_from_rfc3339(&format!("2026-12-05T10:{minute:02}:00Z"))
                .expect("time")
                .with_timezone(&Utc),
            extracted_from: "/files/App.zip".into(),
            extracted_to: to.into(),
            retention_policy_set: "set".into(),
            custom_installation_directory: None,
            was_successful: successful,
        }
    }

    #[test]
    fn retention_keeps_the_current_and_the_most_recent_successful_ones() {
        let directory = tempfile::tempdir().expect("tempdir");
        let journal = DeploymentJournal::new(directory.path().join(JOURNAL_FILE_NAME));
        let mut locked = journal.lock().expect("lock");
        locked.add(entry("1", 1, true, "/apps/1"));
        locked.add(entry("2", 2, true, "/apps/2"));
        locked.add(entry("3", 3, false, "/apps/3"));
        locked.add(entry("4", 4, true, "/apps/4"));
        let mut other = entry("9", 0, true, "/apps/other");
        other.retention_policy_set = "another set".into();
        locked.add(other);
        locked.add(entry("5", 5, true, "/apps/5"));
        let deleted = locked.apply_retention("set", Path::new("/apps/5"), 1);
        assert_eq!(
            deleted,
            [
                PathBuf::from("/apps/3"),
                PathBuf::from("/apps/2"),
                PathBuf::from("/apps/1")
            ]
        );
        let ids: Vec<&str> = locked
            .entries()
            .iter()
            .map(|entry| entry.id.as_str())
            .collect();
        assert_eq!(ids, ["4", "9", "5"]);
        locked.save().expect("save");
        drop(locked);
        assert_eq!(journal.entries().expect("entries").len(), 3);
    }

    #[test]
    fn a_damaged_journal_is_an_error_not_a_fresh_start() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join(JOURNAL_FILE_NAME);
        std::fs::write(&path, "{not json").expect("write");
        assert!(matches!(
            DeploymentJournal::new(path).entries(),
            Err(ExecError::Damaged { .. })
        ));
    }
}
