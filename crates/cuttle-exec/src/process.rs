//! Starting a script's process in its own process group, reading its output as lines, and
//! signalling the whole group.
//!
//! The script's interpreter is started as the leader of a new process group (its pid is the
//! group id), so cancel and timeout reach every process it started (`sleep 1000 &` included)
//! with one `kill(-pgid)`. A process that moves itself to another group or session (`setsid`,
//! a daemon) escapes, as it would from Tentacle.
//!
//! Output is read as lines of at most [`MAX_LINE_BYTES`] (a longer line is split), decoded as
//! UTF-8 with invalid bytes replaced, with a trailing `\r` removed.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::{Child, Command};

use crate::bootstrap::Launch;

/// The longest line kept whole; longer output lines are split at this size.
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024;

/// What the script's environment is made of.
#[derive(Debug, Clone)]
pub(crate) struct Environment {
    /// Variables of the executor's own environment whose names start with one of these are
    /// not passed on.
    pub(crate) removed_prefixes: Vec<String>,
    /// Variables added (after removal).
    pub(crate) added: Vec<(String, String)>,
}

/// Starts the prepared script in `workspace`, stdin/stdout/stderr piped, as a new process group.
pub(crate) fn spawn(
    launch: &Launch,
    workspace: &Path,
    environment: &Environment,
) -> std::io::Result<Child> {
    let mut command = Command::new(&launch.program);
    command
        .args(&launch.arguments)
        .current_dir(workspace)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if environment
            .removed_prefixes
            .iter()
            .any(|prefix| text.starts_with(prefix.as_str()))
        {
            command.env_remove(&name);
        }
    }
    command.envs(environment.added.iter().map(|(name, value)| (name, value)));
    #[cfg(unix)]
    command.process_group(0);
    command.spawn()
}

/// Which signal to send a process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupSignal {
    /// SIGTERM: lets scripts run their traps.
    Terminate,
    /// SIGKILL.
    Kill,
}

/// Signals every process in the group led by `process_id`. A group that no longer exists is
/// not an error.
#[cfg(unix)]
pub(crate) fn signal_group(process_id: u32, signal: GroupSignal) -> std::io::Result<()> {
    use rustix::process::{Pid, Signal, kill_process_group};
    let Some(pid) = i32::try_from(process_id).ok().and_then(Pid::from_raw) else {
        return Ok(());
    };
    let signal = match signal {
        GroupSignal::Terminate => Signal::TERM,
        GroupSignal::Kill => Signal::KILL,
    };
    match kill_process_group(pid, signal) {
        Ok(()) => Ok(()),
        Err(errno) if errno == rustix::io::Errno::SRCH => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}

#[cfg(not(unix))]
pub(crate) fn signal_group(_process_id: u32, _signal: GroupSignal) -> std::io::Result<()> {
    // Without process groups the executor kills only the script's own process (see caller).
    Ok(())
}

/// Splits a byte stream into lines. `next_line` is cancel-safe: a line is never lost when a
/// `select!` drops the future.
#[derive(Debug)]
pub(crate) struct LineReader<R> {
    reader: R,
    buffer: Vec<u8>,
    finished: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(crate) fn new(reader: R) -> LineReader<R> {
        LineReader {
            reader,
            buffer: Vec::new(),
            finished: false,
        }
    }

    /// The next line, or `None` at the end of the stream (or on a read error).
    pub(crate) async fn next_line(&mut self) -> Option<String> {
        loop {
            if let Some(position) = self.buffer.iter().position(|byte| *byte == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=position).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            if self.buffer.len() >= MAX_LINE_BYTES {
                let line: Vec<u8> = self.buffer.drain(..MAX_LINE_BYTES).collect();
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            if self.finished {
                if self.buffer.is_empty() {
                    return None;
                }
                let line = std::mem::take(&mut self.buffer);
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            self.buffer.reserve(8 * 1024);
            match self.reader.read_buf(&mut self.buffer).await {
                Ok(0) | Err(_) => self.finished = true,
                Ok(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_and_trimmed() {
        let input: &[u8] = b"one\r\ntwo\n\nthr\xffee\nlast";
        let mut reader = LineReader::new(input);
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().await {
            lines.push(line);
        }
        assert_eq!(lines, ["one", "two", "", "thr\u{fffd}ee", "last"]);
    }

    #[tokio::test]
    async fn long_lines_are_split() {
        let input = vec![b'x'; MAX_LINE_BYTES + 10];
        let mut reader = LineReader::new(&input[..]);
        assert_eq!(
            reader.next_line().await.map(|line| line.len()),
            Some(MAX_LINE_BYTES)
        );
        assert_eq!(reader.next_line().await.map(|line| line.len()), Some(10));
        assert_eq!(reader.next_line().await, None);
    }
}
