//! The target's side, as seen from here: paths on it (absolute, or under the login user's
//! home), shell quoting for the commands sent there, and running one short command on a
//! channel to collect what it prints.
//!
//! Commands go through the login user's shell (`sh -c` semantics, as sshd runs them), so
//! every argument is single-quoted and a home-relative path is spelled `"$HOME"/'…'`.

use russh::ChannelMsg;
use russh::client::Msg;

/// The most bytes of standard output kept from one short command.
const MAX_STDOUT: usize = 64 << 20;
/// The most bytes of standard error kept, for error messages.
const MAX_STDERR: usize = 4 << 10;

/// A path on the target: absolute, or relative to the login user's home directory (which is
/// where sshd starts commands and the SFTP server resolves relative names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemotePath(String);

impl RemotePath {
    /// `~/x` and `x` both mean `x` under the home directory; `/x` is absolute. Trailing
    /// slashes are dropped.
    pub(crate) fn new(path: &str) -> RemotePath {
        let path = path.strip_prefix("~/").unwrap_or(path);
        let trimmed = path.trim_end_matches('/');
        RemotePath(if trimmed.is_empty() && path.starts_with('/') {
            "/".to_owned()
        } else {
            trimmed.to_owned()
        })
    }

    pub(crate) fn join(&self, name: &str) -> RemotePath {
        if self.0.is_empty() {
            RemotePath(name.to_owned())
        } else if self.0.ends_with('/') {
            RemotePath(format!("{}{name}", self.0))
        } else {
            RemotePath(format!("{}/{name}", self.0))
        }
    }

    /// The path as the SFTP server takes it.
    pub(crate) fn sftp(&self) -> &str {
        if self.0.is_empty() { "." } else { &self.0 }
    }

    /// The path as one shell word.
    pub(crate) fn shell(&self) -> String {
        if self.0.starts_with('/') {
            quote(&self.0)
        } else if self.0.is_empty() {
            "\"$HOME\"".to_owned()
        } else {
            format!("\"$HOME\"/{}", quote(&self.0))
        }
    }

    /// Every directory from the first component down to this path, for `mkdir -p`.
    pub(crate) fn ancestors_and_self(&self) -> Vec<RemotePath> {
        let mut paths = Vec::new();
        let mut current = String::new();
        for (index, component) in self.0.split('/').enumerate() {
            if component.is_empty() {
                if index == 0 {
                    current.push('/');
                }
                continue;
            }
            if !(current.is_empty() || current.ends_with('/')) {
                current.push('/');
            }
            current.push_str(component);
            paths.push(RemotePath(current.clone()));
        }
        paths
    }
}

impl std::fmt::Display for RemotePath {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.starts_with('/') {
            formatter.write_str(&self.0)
        } else {
            write!(formatter, "~/{}", self.0)
        }
    }
}

/// `text` as one single-quoted shell word.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// What one command printed, and how it ended.
#[derive(Debug, Default)]
pub(crate) struct CommandOutput {
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    pub(crate) exit_status: Option<u32>,
    pub(crate) exit_signal: Option<String>,
}

impl CommandOutput {
    /// How the command ended, with the end of its standard error, for error messages.
    pub(crate) fn describe_failure(&self) -> String {
        let ending = match (&self.exit_status, &self.exit_signal) {
            (Some(code), _) => format!("it exited with code {code}"),
            (None, Some(signal)) => format!("it was killed by SIG{signal}"),
            (None, None) => "the channel closed without an exit status".to_owned(),
        };
        let stderr = String::from_utf8_lossy(&self.stderr);
        let stderr = stderr.trim();
        if stderr.is_empty() {
            ending
        } else {
            format!("{ending}: {stderr}")
        }
    }
}

/// Sends `stdin` (then end of file) to a channel on which a command was started, and reads
/// until the channel closes.
pub(crate) async fn collect(
    channel: &mut russh::Channel<Msg>,
    stdin: Option<&[u8]>,
) -> Result<CommandOutput, russh::Error> {
    if let Some(stdin) = stdin {
        channel.data(stdin).await?;
    }
    channel.eof().await?;
    let mut output = CommandOutput::default();
    while let Some(message) = channel.wait().await {
        match message {
            ChannelMsg::Data { data } => append_capped(&mut output.stdout, &data, MAX_STDOUT),
            ChannelMsg::ExtendedData { data, .. } => {
                append_stderr(&mut output.stderr, &data);
            }
            ChannelMsg::ExitStatus { exit_status } => output.exit_status = Some(exit_status),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                output.exit_signal = Some(format!("{signal_name:?}"));
            }
            ChannelMsg::Failure => {
                return Err(russh::Error::RequestDenied);
            }
            _ => {}
        }
    }
    Ok(output)
}

fn append_capped(buffer: &mut Vec<u8>, data: &[u8], limit: usize) {
    let room = limit.saturating_sub(buffer.len());
    buffer.extend_from_slice(&data[..data.len().min(room)]);
}

/// Keeps the last [`MAX_STDERR`] bytes: the end of standard error says what went wrong.
pub(crate) fn append_stderr(buffer: &mut Vec<u8>, data: &[u8]) {
    buffer.extend_from_slice(data);
    if buffer.len() > MAX_STDERR {
        let excess = buffer.len() - MAX_STDERR;
        buffer.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_absolute_or_under_home() {
        assert_eq!(
            RemotePath::new("~/.cuttle/bin").shell(),
            "\"$HOME\"/'.cuttle/bin'"
        );
        assert_eq!(RemotePath::new(".cuttle/bin/").sftp(), ".cuttle/bin");
        assert_eq!(RemotePath::new("/opt/it's").shell(), "'/opt/it'\\''s'");
        assert_eq!(
            RemotePath::new(".cuttle").join("bin").to_string(),
            "~/.cuttle/bin"
        );
        assert_eq!(RemotePath::new("/").join("x").sftp(), "/x");
    }

    #[test]
    fn ancestors_build_down_to_the_path() {
        let names = |path: &str| {
            RemotePath::new(path)
                .ancestors_and_self()
                .iter()
                .map(|path| path.sftp().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(".cuttle/bin"), [".cuttle", ".cuttle/bin"]);
        assert_eq!(names("/tmp/a/b"), ["/tmp", "/tmp/a", "/tmp/a/b"]);
    }

    #[test]
    fn stderr_keeps_its_end() {
        let mut buffer = Vec::new();
        append_stderr(&mut buffer, &vec![b'a'; MAX_STDERR]);
        append_stderr(&mut buffer, b"the end");
        assert_eq!(buffer.len(), MAX_STDERR);
        assert!(buffer.ends_with(b"the end"));
    }
}
