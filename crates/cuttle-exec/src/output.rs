//! What script output means: turns each stdout/stderr line into log lines and reported facts.
//! Pure: no IO, no clock; masking happens after, in the executor.
//!
//! Semantics follow Calamari's `ScriptOutputFilter`:
//! - stdout lines are `Info`, stderr lines `Error`, until a level switch says otherwise:
//!   `stdout-default|verbose|highlight|wait|warning|error|ignore` and
//!   `stderr-default|error|progress|ignore` (`progress` logs stderr as `Verbose`; `ignore` drops).
//! - `setVariable name value [sensitive]` → an output variable (`sensitive` parses as a
//!   boolean, case-insensitive); `createArtifact path [name] [length]`;
//!   `progress percentage [message]`; `resultMessage message` (what `fail_step` sends; the
//!   alias `fail-step` is accepted too); `mask value` adds a secret to mask.
//! - Service messages are not log text. Whitespace around a message on its line is dropped.
//! - A malformed message is logged as a warning, `Could not parse '…'`, as Octopus does.
//! - Messages this executor does not act on (target creation, packages…) are logged as a
//!   verbose note and otherwise ignored.

use crate::service_message::{Segment, ServiceMessage, parse_line};
use crate::status::LogLevel;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One consequence of one line of output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A log line (not yet masked).
    Log {
        level: LogLevel,
        text: String,
    },
    SetVariable {
        name: String,
        value: String,
        is_sensitive: bool,
    },
    /// A value to mask from now on.
    Mask(String),
    Artifact {
        path: String,
        name: Option<String>,
        length: Option<u64>,
    },
    Progress {
        percentage: u8,
        message: String,
    },
    FailStep {
        message: String,
    },
}

/// The per-script state of output interpretation: the current level of each stream.
#[derive(Debug, Clone)]
pub struct OutputInterpreter {
    /// `None` = ignore the stream's text.
    stdout_level: Option<LogLevel>,
    stderr_level: Option<LogLevel>,
}

impl Default for OutputInterpreter {
    fn default() -> OutputInterpreter {
        OutputInterpreter {
            stdout_level: Some(LogLevel::Info),
            stderr_level: Some(LogLevel::Error),
        }
    }
}

impl OutputInterpreter {
    /// The effects of one line (without its line break) from `stream`.
    pub fn interpret(&mut self, stream: Stream, line: &str) -> Vec<Effect> {
        let segments = parse_line(line);
        let has_messages = segments
            .iter()
            .any(|segment| !matches!(segment, Segment::Text(_)));
        let mut effects = Vec::new();
        for segment in segments {
            match segment {
                Segment::Text(text) => {
                    if has_messages && text.trim().is_empty() {
                        continue;
                    }
                    let level = match stream {
                        Stream::Stdout => self.stdout_level,
                        Stream::Stderr => self.stderr_level,
                    };
                    if let Some(level) = level {
                        effects.push(Effect::Log {
                            level,
                            text: text.to_owned(),
                        });
                    }
                }
                Segment::Malformed(text) => effects.push(Effect::Log {
                    level: LogLevel::Warning,
                    text: format!("Could not parse '{text}'"),
                }),
                Segment::Message(message) => self.apply(&message, &mut effects),
            }
        }
        effects
    }

    fn apply(&mut self, message: &ServiceMessage, effects: &mut Vec<Effect>) {
        let name = message.name.to_ascii_lowercase();
        match name.as_str() {
            "stdout-default" => self.stdout_level = Some(LogLevel::Info),
            "stdout-verbose" => self.stdout_level = Some(LogLevel::Verbose),
            "stdout-highlight" => self.stdout_level = Some(LogLevel::Highlight),
            "stdout-wait" => self.stdout_level = Some(LogLevel::Wait),
            "stdout-warning" => self.stdout_level = Some(LogLevel::Warning),
            "stdout-error" => self.stdout_level = Some(LogLevel::Error),
            "stdout-ignore" => self.stdout_level = None,
            "stderr-default" | "stderr-error" => self.stderr_level = Some(LogLevel::Error),
            "stderr-progress" => self.stderr_level = Some(LogLevel::Verbose),
            "stderr-ignore" => self.stderr_level = None,
            "setvariable" => {
                if let Some(variable_name) = message.attribute("name").filter(|n| !n.is_empty()) {
                    let value = message.attribute("value").unwrap_or_default().to_owned();
                    let is_sensitive = message
                        .attribute("sensitive")
                        .is_some_and(|flag| flag.trim().eq_ignore_ascii_case("true"));
                    if is_sensitive {
                        effects.push(Effect::Mask(value.clone()));
                    }
                    effects.push(Effect::SetVariable {
                        name: variable_name.to_owned(),
                        value,
                        is_sensitive,
                    });
                } else {
                    effects.push(Effect::Log {
                        level: LogLevel::Warning,
                        text: "A setVariable service message had no name; it was ignored".into(),
                    });
                }
            }
            "createartifact" => {
                if let Some(path) = message.attribute("path").filter(|p| !p.is_empty()) {
                    effects.push(Effect::Artifact {
                        path: path.to_owned(),
                        name: message
                            .attribute("name")
                            .filter(|n| !n.is_empty())
                            .map(str::to_owned),
                        length: message
                            .attribute("length")
                            .and_then(|length| length.trim().parse().ok()),
                    });
                } else {
                    effects.push(Effect::Log {
                        level: LogLevel::Warning,
                        text: "A createArtifact service message had no path; it was ignored".into(),
                    });
                }
            }
            "progress" => {
                if let Some(percentage) = message
                    .attribute("percentage")
                    .and_then(|value| value.trim().parse::<i64>().ok())
                {
                    effects.push(Effect::Progress {
                        percentage: u8::try_from(percentage.clamp(0, 100)).unwrap_or(100),
                        message: message.attribute("message").unwrap_or_default().to_owned(),
                    });
                }
            }
            "resultmessage" | "fail-step" | "failstep" => effects.push(Effect::FailStep {
                message: message.attribute("message").unwrap_or_default().to_owned(),
            }),
            "mask" => {
                if let Some(value) = message.attribute("value") {
                    effects.push(Effect::Mask(value.to_owned()));
                }
            }
            _ => effects.push(Effect::Log {
                level: LogLevel::Verbose,
                text: format!(
                    "The service message '{}' is not handled by this executor; it was ignored",
                    message.name
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service_message::encode_value;

    fn log(level: LogLevel, text: &str) -> Effect {
        Effect::Log {
            level,
            text: text.to_owned(),
        }
    }

    #[test]
    fn streams_have_their_default_levels() {
        let mut interpreter = OutputInterpreter::default();
        assert_eq!(
            interpreter.interpret(Stream::Stdout, "out"),
            vec![log(LogLevel::Info, "out")]
        );
        assert_eq!(
            interpreter.interpret(Stream::Stderr, "err"),
            vec![log(LogLevel::Error, "err")]
        );
        assert_eq!(
            interpreter.interpret(Stream::Stdout, ""),
            vec![log(LogLevel::Info, "")]
        );
    }

    #[test]
    fn level_switches_apply_to_following_lines_of_their_stream() {
        let mut interpreter = OutputInterpreter::default();
        let cases = [
            ("stdout-verbose", LogLevel::Verbose),
            ("stdout-highlight", LogLevel::Highlight),
            ("stdout-wait", LogLevel::Wait),
            ("stdout-warning", LogLevel::Warning),
            ("stdout-error", LogLevel::Error),
            ("stdout-default", LogLevel::Info),
        ];
        for (switch, level) in cases {
            assert_eq!(
                interpreter.interpret(Stream::Stdout, &format!("##octopus[{switch}]")),
                vec![]
            );
            assert_eq!(
                interpreter.interpret(Stream::Stdout, "text"),
                vec![log(level, "text")]
            );
            assert_eq!(
                interpreter.interpret(Stream::Stderr, "problem"),
                vec![log(LogLevel::Error, "problem")]
            );
        }
        interpreter.interpret(Stream::Stdout, "##octopus[stdout-ignore]");
        assert_eq!(interpreter.interpret(Stream::Stdout, "hidden"), vec![]);

        interpreter.interpret(Stream::Stdout, "##octopus[stderr-progress]");
        assert_eq!(
            interpreter.interpret(Stream::Stderr, "50%"),
            vec![log(LogLevel::Verbose, "50%")]
        );
        interpreter.interpret(Stream::Stderr, "##octopus[stderr-ignore]");
        assert_eq!(interpreter.interpret(Stream::Stderr, "noise"), vec![]);
        interpreter.interpret(Stream::Stderr, "##octopus[stderr-default]");
        assert_eq!(
            interpreter.interpret(Stream::Stderr, "bad"),
            vec![log(LogLevel::Error, "bad")]
        );
    }

    #[test]
    fn switch_in_the_middle_of_a_line() {
        let mut interpreter = OutputInterpreter::default();
        assert_eq!(
            interpreter.interpret(Stream::Stdout, "a ##octopus[stdout-warning] b"),
            vec![log(LogLevel::Info, "a "), log(LogLevel::Warning, " b")]
        );
    }

    #[test]
    fn set_variable_sensitive_and_not() {
        let mut interpreter = OutputInterpreter::default();
        let line = format!(
            "##octopus[setVariable name='{}' value='{}' sensitive='{}']",
            encode_value("Token"),
            encode_value("abc-123-xyz"),
            encode_value("True")
        );
        assert_eq!(
            interpreter.interpret(Stream::Stdout, &line),
            vec![
                Effect::Mask("abc-123-xyz".into()),
                Effect::SetVariable {
                    name: "Token".into(),
                    value: "abc-123-xyz".into(),
                    is_sensitive: true
                }
            ]
        );
        assert_eq!(
            interpreter.interpret(Stream::Stdout, "##octopus[setVariable name='A' value='B']"),
            vec![Effect::SetVariable {
                name: "A".into(),
                value: "B".into(),
                is_sensitive: false
            }]
        );
        assert_eq!(
            interpreter.interpret(
                Stream::Stdout,
                "##octopus[setVariable name='A' value='B' sensitive='False']"
            ),
            vec![Effect::SetVariable {
                name: "A".into(),
                value: "B".into(),
                is_sensitive: false
            }]
        );
        assert!(matches!(
            interpreter.interpret(Stream::Stdout, "##octopus[setVariable value='B']")[..],
            [Effect::Log {
                level: LogLevel::Warning,
                ..
            }]
        ));
    }

    #[test]
    fn artifacts_progress_failure_and_mask() {
        let mut interpreter = OutputInterpreter::default();
        let line = format!(
            "##octopus[createArtifact path='{}' name='{}' length='{}']",
            encode_value("/tmp/report.txt"),
            encode_value("report.txt"),
            encode_value("42")
        );
        assert_eq!(
            interpreter.interpret(Stream::Stdout, &line),
            vec![Effect::Artifact {
                path: "/tmp/report.txt".into(),
                name: Some("report.txt".into()),
                length: Some(42)
            }]
        );
        let line = format!(
            "##octopus[progress percentage='{}' message='{}']",
            encode_value("150"),
            encode_value("almost")
        );
        assert_eq!(
            interpreter.interpret(Stream::Stdout, &line),
            vec![Effect::Progress {
                percentage: 100,
                message: "almost".into()
            }]
        );
        let line = format!(
            "##octopus[resultMessage message='{}']",
            encode_value("it broke")
        );
        assert_eq!(
            interpreter.interpret(Stream::Stdout, &line),
            vec![Effect::FailStep {
                message: "it broke".into()
            }]
        );
        assert_eq!(
            interpreter.interpret(Stream::Stdout, "##octopus[fail-step message='plain words']"),
            vec![Effect::FailStep {
                message: "plain words".into()
            }]
        );
        let line = format!("##octopus[mask value='{}']", encode_value("s3cret!"));
        assert_eq!(
            interpreter.interpret(Stream::Stderr, &line),
            vec![Effect::Mask("s3cret!".into())]
        );
    }

    #[test]
    fn malformed_and_unknown_messages_are_reported() {
        let mut interpreter = OutputInterpreter::default();
        assert_eq!(
            interpreter.interpret(Stream::Stdout, "##octopus[bad name=x]"),
            vec![log(
                LogLevel::Warning,
                "Could not parse '##octopus[bad name=x]'"
            )]
        );
        assert!(matches!(
            interpreter.interpret(Stream::Stdout, "##octopus[delete-target machine='x']")[..],
            [Effect::Log {
                level: LogLevel::Verbose,
                ..
            }]
        ));
    }
}
