//! A task's live log as the server sends it: Server-Sent Events read from the response body
//! chunk by chunk and turned into [`TaskEvent`]s.
//!
//! The server sends `line` events (one log line each, the event id being the line's
//! sequence), `state` when the task's state changes, and `end` once the task has completed
//! and every line was sent. Comments (keep-alives) and unknown events are skipped, so a newer
//! server may add events without breaking older clients.

use std::collections::VecDeque;

use serde::Deserialize;

use crate::ClientError;

/// One line of a task's log.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskLogLine {
    /// The line's position in the task's log, from 1; resume after it with `?after=`.
    pub sequence: i64,
    pub occurred_at: String,
    /// `Info`, `Verbose`, `Warning`, `Error`, `Fatal`, `Highlight`…
    pub category: String,
    #[serde(default)]
    pub activity_id: Option<String>,
    pub message_text: String,
}

/// What the live log says next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEvent {
    Line(TaskLogLine),
    /// The task's state changed (`Queued`, `Executing`, `Success`…).
    State {
        state: String,
        has_pending_interruptions: bool,
    },
    /// The task is over and every line was sent; `state` is its final state.
    End {
        state: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StateData {
    state: String,
    #[serde(default)]
    has_pending_interruptions: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EndData {
    #[serde(default)]
    state: Option<String>,
}

/// An open live log; [`TaskEvents::next`] reads it event by event.
#[derive(Debug)]
pub struct TaskEvents {
    response: reqwest::Response,
    /// Bytes received but not yet part of a complete event.
    buffer: Vec<u8>,
    parsed: VecDeque<TaskEvent>,
}

impl TaskEvents {
    pub(crate) fn new(response: reqwest::Response) -> TaskEvents {
        TaskEvents {
            response,
            buffer: Vec::new(),
            parsed: VecDeque::new(),
        }
    }

    /// The next event, or `None` when the server closed the stream.
    pub async fn next(&mut self) -> Result<Option<TaskEvent>, ClientError> {
        loop {
            if let Some(event) = self.parsed.pop_front() {
                return Ok(Some(event));
            }
            if let Some(block) = take_event_block(&mut self.buffer) {
                if let Some(event) = parse_event_block(&block)? {
                    self.parsed.push_back(event);
                }
                continue;
            }
            match self.response.chunk().await? {
                Some(bytes) => self.buffer.extend_from_slice(&bytes),
                None => return Ok(None),
            }
        }
    }
}

/// Removes the first complete event (text up to a blank line) from `buffer`.
fn take_event_block(buffer: &mut Vec<u8>) -> Option<String> {
    // Servers may end lines with \n or \r\n; normalise before looking for the blank line.
    if buffer.contains(&b'\r') {
        let text = String::from_utf8_lossy(buffer).replace("\r\n", "\n");
        *buffer = text.into_bytes();
    }
    let end = buffer.windows(2).position(|pair| pair == b"\n\n")?;
    let block: Vec<u8> = buffer.drain(..end + 2).collect();
    Some(String::from_utf8_lossy(&block[..end]).into_owned())
}

/// One event block's fields, as the Server-Sent Events format defines them.
fn parse_event_block(block: &str) -> Result<Option<TaskEvent>, ClientError> {
    let mut event_name = "message";
    let mut data = Vec::new();
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event_name = value,
            "data" => data.push(value),
            _ => {}
        }
    }
    if data.is_empty() {
        return Ok(None);
    }
    let data = data.join("\n");
    let malformed =
        |error: serde_json::Error| ClientError::EventStream(format!("{event_name} event: {error}"));
    Ok(match event_name {
        "line" => Some(TaskEvent::Line(
            serde_json::from_str(&data).map_err(malformed)?,
        )),
        "state" => {
            let state: StateData = serde_json::from_str(&data).map_err(malformed)?;
            Some(TaskEvent::State {
                state: state.state,
                has_pending_interruptions: state.has_pending_interruptions,
            })
        }
        "end" => {
            let end: EndData = serde_json::from_str(&data).map_err(malformed)?;
            Some(TaskEvent::End { state: end.state })
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_split_on_blank_lines_whatever_the_line_ends() {
        let mut buffer = b": keep-alive\r\n\r\nevent: end\r\ndata: {}\r\n\r\nevent: li".to_vec();
        assert_eq!(
            take_event_block(&mut buffer).as_deref(),
            Some(": keep-alive")
        );
        assert_eq!(
            take_event_block(&mut buffer).as_deref(),
            Some("event: end\ndata: {}")
        );
        assert_eq!(take_event_block(&mut buffer), None);
        assert_eq!(buffer, b"event: li");
    }

    #[test]
    fn events_are_parsed_and_unknown_ones_skipped() {
        let line = parse_event_block(
            "event: line\nid: 3\ndata: {\"Sequence\":3,\"OccurredAt\":\"t\",\"Category\":\"Info\",\"ActivityId\":\"a\",\"MessageText\":\"hi\"}",
        )
        .unwrap();
        assert!(
            matches!(line, Some(TaskEvent::Line(TaskLogLine { sequence: 3, ref message_text, .. })) if message_text == "hi")
        );
        assert_eq!(
            parse_event_block("event: state\ndata: {\"State\":\"Executing\"}").unwrap(),
            Some(TaskEvent::State {
                state: "Executing".to_owned(),
                has_pending_interruptions: false
            })
        );
        assert_eq!(
            parse_event_block("event: end\ndata: {}").unwrap(),
            Some(TaskEvent::End { state: None })
        );
        assert_eq!(parse_event_block("event: later\ndata: {}").unwrap(), None);
        assert!(parse_event_block("event: line\ndata: nope").is_err());
    }
}
