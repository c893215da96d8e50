//! The in-memory journal of a ticket this transport runs: the log lines and final result a
//! foreground `cuttle exec` streams back, so status calls are answered without a round trip.
//!
//! Kept until the ticket is completed. Nothing here survives a restart of the server: after
//! one, status comes from the target (`cuttle exec status`), whose journal is on disk.

use cuttle_exec::{LogLine, MAX_LINES_PER_STATUS, ScriptState, ScriptStatus};

use crate::protocol::ExecResult;

/// What a foreground channel reported so far.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    lines: Vec<LogLine>,
    result: Option<ExecResult>,
    /// Whether the foreground channel is still open (so more may come).
    streaming: bool,
}

impl Journal {
    pub(crate) fn streaming() -> Journal {
        Journal {
            streaming: true,
            ..Journal::default()
        }
    }

    /// Adds a line unless it was seen (a re-attaching run replays from the first line).
    pub(crate) fn add_line(&mut self, line: LogLine) {
        if self
            .lines
            .last()
            .is_none_or(|last| line.sequence > last.sequence)
        {
            self.lines.push(line);
        }
    }

    pub(crate) fn finish(&mut self, result: ExecResult) {
        self.result = Some(result);
    }

    /// The channel closed; only a result (if one came) remains to answer from.
    pub(crate) fn close(&mut self) {
        self.streaming = false;
    }

    /// The ticket's status after `after_sequence`, or `None` when this journal cannot tell
    /// (the channel closed before the result: ask the target).
    pub(crate) fn status(&self, ticket: &str, after_sequence: u64) -> Option<ScriptStatus> {
        let first = self
            .lines
            .partition_point(|line| line.sequence <= after_sequence);
        let lines: Vec<LogLine> = self.lines[first..]
            .iter()
            .take(MAX_LINES_PER_STATUS)
            .cloned()
            .collect();
        let next_sequence = lines.last().map_or(after_sequence, |line| line.sequence);
        if let Some(result) = &self.result {
            return Some(ScriptStatus {
                ticket: ticket.to_owned(),
                state: result.state,
                lines,
                next_sequence,
                output_variables: result.output_variables.clone(),
                artifacts: result.artifacts.clone(),
                progress: result.progress.clone(),
                failed_step_message: result.failed_step_message.clone(),
            });
        }
        self.streaming.then(|| ScriptStatus {
            ticket: ticket.to_owned(),
            // The foreground run does not say "waiting for the mutex"; it is under way.
            state: ScriptState::Running,
            lines,
            next_sequence,
            output_variables: Vec::new(),
            artifacts: Vec::new(),
            progress: None,
            failed_step_message: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use cuttle_exec::LogLevel;

    use super::*;

    fn line(sequence: u64) -> LogLine {
        LogLine {
            sequence,
            occurred_at: Utc::now(),
            level: LogLevel::Info,
            text: format!("line {sequence}"),
        }
    }

    #[test]
    fn status_serves_lines_after_the_sequence_then_the_result() {
        let mut journal = Journal::streaming();
        for sequence in 1..=3 {
            journal.add_line(line(sequence));
        }
        journal.add_line(line(2));
        let status = journal.status("t", 1).expect("streaming");
        assert_eq!(status.state, ScriptState::Running);
        assert_eq!(
            status
                .lines
                .iter()
                .map(|line| line.sequence)
                .collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(status.next_sequence, 3);
        assert_eq!(journal.status("t", 3).expect("streaming").next_sequence, 3);

        journal.finish(ExecResult {
            ticket: "t".into(),
            state: ScriptState::Complete { exit_code: 4 },
            exit_code: 4,
            output_variables: Vec::new(),
            artifacts: Vec::new(),
            progress: None,
            failed_step_message: None,
        });
        journal.close();
        let status = journal.status("t", 3).expect("finished");
        assert_eq!(status.state, ScriptState::Complete { exit_code: 4 });
        assert!(status.lines.is_empty());
    }

    #[test]
    fn a_closed_journal_without_a_result_cannot_answer() {
        let mut journal = Journal::streaming();
        journal.add_line(line(1));
        journal.close();
        assert_eq!(journal.status("t", 0), None);
    }
}
