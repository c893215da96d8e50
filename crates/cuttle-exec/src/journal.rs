//! A ticket's files on disk: `state.json` (what the ticket is and what the script reported) and
//! `log.jsonl` (its log lines), and how they are written so a restart loses nothing shown.
//!
//! Layout of `<root>/tickets/<ticket>/` (built in `<root>/staging/` and renamed into place, so
//! a ticket directory always has its state):
//! - `state.json`: [`PersistedState`], replaced atomically (write a temporary file, fsync,
//!   rename, fsync the directory) on every state change and every reported fact. Sensitive
//!   output variable values are sealed with the executor's at-rest key (`cuttle-secrets`).
//! - `log.jsonl`: one [`LogLine`] per line, masked, written to the file as each line arrives
//!   (so it survives the executor process dying) and fsynced in batches (every
//!   [`crate::FLUSH_INTERVAL`] while lines arrive, and when the ticket finishes).
//!   A torn last line (power loss mid-write) is skipped when reading.
//! - `variables.enc`: see [`crate::variables`]. `owner.lock`: held (flock) by the executor
//!   process that runs the ticket, so another process can tell a live ticket from one whose
//!   executor died. `workspace/`: the script's working directory; the bootstrap and the script
//!   sit beside it.
//!
//! Only these files survive a restart; everything else (the process handle, the masker, the
//! output parser's levels) is rebuilt or, for a running script, given up (state `Unknown`).

use std::fs::File;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use cuttle_secrets::MasterKey;
use serde::{Deserialize, Serialize};

use crate::error::ExecError;
use crate::request::{Isolation, ScriptSyntax};
use crate::status::{Artifact, LogLine, OutputVariable, Progress, ScriptState};

pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const LOG_FILE: &str = "log.jsonl";
pub(crate) const VARIABLES_FILE: &str = "variables.enc";
pub(crate) const OWNER_LOCK_FILE: &str = "owner.lock";
pub(crate) const WORKSPACE_DIRECTORY: &str = "workspace";
const STATE_FORMAT: u32 = 1;

/// `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PersistedState {
    pub(crate) format: u32,
    pub(crate) ticket: String,
    pub(crate) state: ScriptState,
    pub(crate) syntax: ScriptSyntax,
    pub(crate) isolation: Isolation,
    pub(crate) mutex_name: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) completed_at: Option<DateTime<Utc>>,
    /// The script's process id, which is also its process group id.
    pub(crate) process_id: Option<u32>,
    pub(crate) output_variables: Vec<StoredOutputVariable>,
    pub(crate) artifacts: Vec<Artifact>,
    pub(crate) progress: Option<Progress>,
    pub(crate) failed_step_message: Option<String>,
}

/// An output variable as stored: a sensitive value is sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StoredOutputVariable {
    name: String,
    value: String,
    is_sensitive: bool,
}

impl PersistedState {
    pub(crate) fn new(
        ticket: &str,
        syntax: ScriptSyntax,
        isolation: Isolation,
        mutex_name: &str,
        now: DateTime<Utc>,
    ) -> PersistedState {
        PersistedState {
            format: STATE_FORMAT,
            ticket: ticket.to_owned(),
            state: ScriptState::Pending,
            syntax,
            isolation,
            mutex_name: mutex_name.to_owned(),
            created_at: now,
            started_at: None,
            completed_at: None,
            process_id: None,
            output_variables: Vec::new(),
            artifacts: Vec::new(),
            progress: None,
            failed_step_message: None,
        }
    }

    pub(crate) fn set_output_variables(&mut self, variables: &[OutputVariable], key: &MasterKey) {
        self.output_variables = variables
            .iter()
            .map(|variable| StoredOutputVariable {
                name: variable.name.clone(),
                value: if variable.is_sensitive {
                    key.seal(&variable.value)
                } else {
                    variable.value.clone()
                },
                is_sensitive: variable.is_sensitive,
            })
            .collect();
    }

    pub(crate) fn output_variables(
        &self,
        key: &MasterKey,
    ) -> Result<Vec<OutputVariable>, ExecError> {
        self.output_variables
            .iter()
            .map(|stored| {
                Ok(OutputVariable {
                    name: stored.name.clone(),
                    value: if stored.is_sensitive {
                        key.open(&stored.value)?.to_string()
                    } else {
                        stored.value.clone()
                    },
                    is_sensitive: stored.is_sensitive,
                })
            })
            .collect()
    }
}

/// Creates a new file readable by its owner only.
pub(crate) fn create_private(path: &Path) -> Result<File, ExecError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path).map_err(ExecError::io("create", path))
}

/// Reads `state.json`; `Ok(None)` when the ticket directory has none yet.
pub(crate) fn read_state(directory: &Path) -> Result<Option<PersistedState>, ExecError> {
    let path = directory.join(STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(ExecError::io("read", &path)(error)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|error| ExecError::Damaged {
            path,
            reason: error.to_string(),
        })
}

/// Replaces `state.json` atomically and durably.
pub(crate) fn write_state(directory: &Path, state: &PersistedState) -> Result<(), ExecError> {
    let path = directory.join(STATE_FILE);
    let temporary = directory.join(format!("{STATE_FILE}.tmp"));
    let bytes = serde_json::to_vec_pretty(state).map_err(|error| ExecError::Damaged {
        path: path.clone(),
        reason: error.to_string(),
    })?;
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        sync_directory(directory)
    };
    write().map_err(ExecError::io("write", &path))
}

/// Makes a rename or a new entry in `directory` durable.
pub(crate) fn sync_directory(directory: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(directory)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = directory;
        Ok(())
    }
}

/// Appends masked lines to `log.jsonl`; fsync is separate so callers can batch it.
#[derive(Debug)]
pub(crate) struct LogWriter {
    file: File,
    path: PathBuf,
    unsynced: bool,
}

impl LogWriter {
    /// Opens (creating if needed) `log.jsonl` for appending, first ending a torn last line so
    /// the next line starts on its own.
    pub(crate) fn open(directory: &Path) -> Result<LogWriter, ExecError> {
        let path = directory.join(LOG_FILE);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(ExecError::io("open", &path))?;
        let length = file
            .metadata()
            .map_err(ExecError::io("inspect", &path))?
            .len();
        if length > 0 {
            use std::io::{Read as _, Seek as _, SeekFrom};
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(length - 1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(ExecError::io("read", &path))?;
            if last[0] != b'\n' {
                file.write_all(b"\n")
                    .map_err(ExecError::io("repair", &path))?;
            }
        }
        Ok(LogWriter {
            file,
            path,
            unsynced: false,
        })
    }

    /// Writes one line to the file (not yet fsynced).
    pub(crate) fn append(&mut self, line: &LogLine) -> Result<(), ExecError> {
        let mut bytes = serde_json::to_vec(line).map_err(|error| ExecError::Damaged {
            path: self.path.clone(),
            reason: error.to_string(),
        })?;
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .map_err(ExecError::io("append to", &self.path))?;
        self.unsynced = true;
        Ok(())
    }

    /// A handle to fsync when lines were written since the last sync (so the caller can sync
    /// off the async threads), marking them synced.
    pub(crate) fn take_unsynced(&mut self) -> Option<File> {
        if !self.unsynced {
            return None;
        }
        self.unsynced = false;
        self.file.try_clone().ok()
    }

    /// Fsyncs now, on this thread.
    pub(crate) fn sync(&mut self) -> Result<(), ExecError> {
        if self.unsynced {
            self.file
                .sync_data()
                .map_err(ExecError::io("sync", &self.path))?;
            self.unsynced = false;
        }
        Ok(())
    }
}

/// Every readable line of `log.jsonl`, in order; a missing file is an empty log.
pub(crate) fn read_log(directory: &Path) -> Result<Vec<LogLine>, ExecError> {
    let path = directory.join(LOG_FILE);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(ExecError::io("open", &path)(error)),
    };
    let mut lines = Vec::new();
    for raw in std::io::BufReader::new(file).split(b'\n') {
        let raw = raw.map_err(ExecError::io("read", &path))?;
        // A torn line (the executor died mid-write) is skipped rather than failing the log.
        if let Ok(line) = serde_json::from_slice::<LogLine>(&raw) {
            lines.push(line);
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::LogLevel;

    fn line(sequence: u64, text: &str) -> LogLine {
        LogLine {
            sequence,
            occurred_at: Utc::now(),
            level: LogLevel::Info,
            text: text.to_owned(),
        }
    }

    #[test]
    fn log_lines_survive_a_torn_tail() {
        let directory = tempfile::tempdir().expect("tempdir");
        let mut writer = LogWriter::open(directory.path()).expect("open");
        writer.append(&line(1, "one")).expect("append");
        writer.append(&line(2, "two")).expect("append");
        writer.sync().expect("sync");
        drop(writer);
        let path = directory.path().join(LOG_FILE);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("reopen");
        file.write_all(br#"{"Sequence":3,"Occ"#).expect("tear");
        drop(file);
        let mut writer = LogWriter::open(directory.path()).expect("open again");
        writer.append(&line(3, "three")).expect("append");
        let texts: Vec<String> = read_log(directory.path())
            .expect("read")
            .into_iter()
            .map(|line| line.text)
            .collect();
        assert_eq!(texts, ["one", "two", "three"]);
    }

    #[test]
    fn state_round_trips_with_sealed_sensitive_outputs() {
        let directory = tempfile::tempdir().expect("tempdir");
        let key = MasterKey::from_text(&"33".repeat(32)).expect("key");
        let mut state = PersistedState::new(
            "T-1",
            ScriptSyntax::Bash,
            Isolation::Full,
            "RunningScript",
            Utc::now(),
        );
        state.set_output_variables(
            &[
                OutputVariable {
                    name: "Token".into(),
                    value: "very-secret-token".into(),
                    is_sensitive: true,
                },
                OutputVariable {
                    name: "Plain".into(),
                    value: "plain-value".into(),
                    is_sensitive: false,
                },
            ],
            &key,
        );
        write_state(directory.path(), &state).expect("write");
        let text = std::fs::read_to_string(directory.path().join(STATE_FILE)).expect("read");
        assert!(!text.contains("very-secret-token"));
        assert!(text.contains("plain-value"));
        let back = read_state(directory.path())
            .expect("read")
            .expect("present");
        let variables = back.output_variables(&key).expect("open");
        assert_eq!(variables[0].value, "very-secret-token");
        assert_eq!(variables[1].value, "plain-value");
    }
}
