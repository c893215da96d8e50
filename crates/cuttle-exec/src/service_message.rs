//! Parsing `##octopus[...]` service messages out of one line of script output. Pure: no IO.
//!
//! Grammar, as Calamari's helpers write it and Octopus reads it:
//! `##octopus[name key='value' key="value" …]`. The name and keys are letters, digits, `_`, `.`
//! and `-`; values are quoted with `'` or `"`. Values are base64 of UTF-8 (Calamari decodes them
//! strictly); as a tolerance for hand-written messages, a value that is not padded base64 of
//! printable UTF-8 is taken literally (`sensitive='True'` works). A `]` inside a quoted value
//! does not end the message. Text around a message on the same line is kept as text; a
//! message with no closing `]` on its line is not a message.
//!
//! This module only parses. What each message means is decided in [`crate::output`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

const PREFIX: &str = "##octopus[";

/// A parsed message: its name and its decoded attributes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceMessage {
    pub name: String,
    pub attributes: Vec<(String, String)>,
}

impl ServiceMessage {
    /// An attribute's decoded value; keys compare case-insensitively, as in Calamari.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value.as_str())
    }
}

/// One piece of a line, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'line> {
    /// Plain output text.
    Text(&'line str),
    /// A well-formed service message.
    Message(ServiceMessage),
    /// `##octopus[...]` that does not follow the grammar; the whole bracketed text.
    Malformed(&'line str),
}

/// Splits one line (without its line break) into text and service messages. A line without
/// messages gives exactly one `Text` segment, even when empty.
pub fn parse_line(line: &str) -> Vec<Segment<'_>> {
    let mut segments = Vec::new();
    let mut rest = line;
    loop {
        let Some(start) = rest.find(PREFIX) else {
            if !rest.is_empty() || segments.is_empty() {
                segments.push(Segment::Text(rest));
            }
            return segments;
        };
        let body_start = start + PREFIX.len();
        let Some(body_length) = message_end(&rest[body_start..]) else {
            // No closing bracket on this line: all of it is text.
            segments.push(Segment::Text(rest));
            return segments;
        };
        if start > 0 {
            segments.push(Segment::Text(&rest[..start]));
        }
        let body = &rest[body_start..body_start + body_length];
        let whole = &rest[start..=body_start + body_length];
        segments.push(match parse_body(body) {
            Some(message) => Segment::Message(message),
            None => Segment::Malformed(whole),
        });
        rest = &rest[body_start + body_length + 1..];
    }
}

/// The index of the `]` that closes a message body, skipping quoted values.
fn message_end(body: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (index, character) in body.char_indices() {
        match quote {
            Some(open) if character == open => quote = None,
            Some(_) => {}
            None if character == '\'' || character == '"' => quote = Some(character),
            None if character == ']' => return Some(index),
            None => {}
        }
    }
    None
}

fn is_name_character(character: char) -> bool {
    character.is_ascii_alphanumeric() || matches!(character, '_' | '.' | '-')
}

fn parse_body(body: &str) -> Option<ServiceMessage> {
    let body = body.trim();
    let name_length = body
        .find(|character: char| !is_name_character(character))
        .unwrap_or(body.len());
    if name_length == 0 {
        return None;
    }
    let name = body[..name_length].to_owned();
    let mut rest = &body[name_length..];
    let mut attributes = Vec::new();
    loop {
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            return Some(ServiceMessage { name, attributes });
        }
        if trimmed.len() == rest.len() {
            // Attributes must be separated from the name and from each other by whitespace.
            return None;
        }
        let key_length = trimmed
            .find(|character: char| !is_name_character(character))
            .unwrap_or(trimmed.len());
        if key_length == 0 {
            return None;
        }
        let key = &trimmed[..key_length];
        let after_key = trimmed[key_length..].trim_start().strip_prefix('=')?;
        let after_equals = after_key.trim_start();
        let quote = after_equals
            .chars()
            .next()
            .filter(|c| *c == '\'' || *c == '"')?;
        let value_and_rest = &after_equals[1..];
        let value_length = value_and_rest.find(quote)?;
        attributes.push((
            key.to_owned(),
            decode_value(&value_and_rest[..value_length]),
        ));
        rest = &value_and_rest[value_length + 1..];
    }
}

/// Base64 of UTF-8 when it is that, else the literal text (see the module docs).
pub fn decode_value(raw: &str) -> String {
    let decoded = BASE64
        .decode(raw.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|text| {
            !text
                .chars()
                .any(|character| character.is_control() && !matches!(character, '\t' | '\n' | '\r'))
        });
    decoded.unwrap_or_else(|| raw.to_owned())
}

/// Encodes a value as service messages carry it.
pub fn encode_value(value: &str) -> String {
    BASE64.encode(value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(name: &str, attributes: &[(&str, &str)]) -> Segment<'static> {
        Segment::Message(ServiceMessage {
            name: name.to_owned(),
            attributes: attributes
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        })
    }

    #[test]
    fn plain_lines_are_one_text_segment() {
        assert_eq!(parse_line("hello"), vec![Segment::Text("hello")]);
        assert_eq!(parse_line(""), vec![Segment::Text("")]);
        assert_eq!(
            parse_line("# comment ##oct"),
            vec![Segment::Text("# comment ##oct")]
        );
    }

    #[test]
    fn base64_attributes_are_decoded() {
        let line = format!(
            "##octopus[setVariable name='{}' value='{}' sensitive='{}']",
            encode_value("Foo"),
            encode_value("bar baz"),
            encode_value("True")
        );
        assert_eq!(
            parse_line(&line),
            vec![message(
                "setVariable",
                &[("name", "Foo"), ("value", "bar baz"), ("sensitive", "True")]
            )]
        );
    }

    #[test]
    fn plain_attribute_values_are_taken_literally() {
        assert_eq!(
            parse_line("##octopus[setVariable name='MyVar' value=\"Hello\" sensitive='True']"),
            vec![message(
                "setVariable",
                &[("name", "MyVar"), ("value", "Hello"), ("sensitive", "True")]
            )]
        );
        assert_eq!(
            parse_line("##octopus[progress percentage='50' message='half way']"),
            vec![message(
                "progress",
                &[("percentage", "50"), ("message", "half way")]
            )]
        );
    }

    #[test]
    fn level_switches_have_no_attributes() {
        for name in [
            "stdout-warning",
            "stdout-verbose",
            "stdout-error",
            "stdout-highlight",
            "stdout-wait",
            "stdout-default",
            "stdout-ignore",
            "stderr-progress",
            "stderr-error",
            "stderr-default",
            "stderr-ignore",
        ] {
            assert_eq!(
                parse_line(&format!("##octopus[{name}]")),
                vec![message(name, &[])]
            );
            assert_eq!(
                parse_line(&format!("  ##octopus[ {name} ]  ")),
                vec![Segment::Text("  "), message(name, &[]), Segment::Text("  ")]
            );
        }
    }

    #[test]
    fn text_around_messages_is_kept_in_order() {
        assert_eq!(
            parse_line("before ##octopus[stdout-verbose]after##octopus[stdout-default]"),
            vec![
                Segment::Text("before "),
                message("stdout-verbose", &[]),
                Segment::Text("after"),
                message("stdout-default", &[]),
            ]
        );
    }

    #[test]
    fn brackets_inside_quoted_values_do_not_end_the_message() {
        assert_eq!(
            parse_line("##octopus[resultMessage message='a]b'] tail"),
            vec![
                message("resultMessage", &[("message", "a]b")]),
                Segment::Text(" tail")
            ]
        );
    }

    #[test]
    fn unterminated_and_malformed_messages() {
        assert_eq!(
            parse_line("##octopus[setVariable name='x'"),
            vec![Segment::Text("##octopus[setVariable name='x'")]
        );
        assert_eq!(
            parse_line("##octopus[]"),
            vec![Segment::Malformed("##octopus[]")]
        );
        assert_eq!(
            parse_line("x ##octopus[setVariable name=unquoted] y"),
            vec![
                Segment::Text("x "),
                Segment::Malformed("##octopus[setVariable name=unquoted]"),
                Segment::Text(" y")
            ]
        );
        assert_eq!(
            parse_line("##octopus[setVariable name='a'value='b']"),
            vec![Segment::Malformed(
                "##octopus[setVariable name='a'value='b']"
            )]
        );
    }

    #[test]
    fn attribute_lookup_ignores_case() {
        let Segment::Message(parsed) =
            &parse_line("##octopus[createArtifact Path='/x' NAME='y']")[0]
        else {
            panic!("not a message");
        };
        assert_eq!(parsed.attribute("path"), Some("/x"));
        assert_eq!(parsed.attribute("name"), Some("y"));
        assert_eq!(parsed.attribute("length"), None);
    }

    #[test]
    fn decoding_falls_back_to_the_literal_text() {
        assert_eq!(decode_value(&encode_value("héllo\nworld")), "héllo\nworld");
        assert_eq!(decode_value(&encode_value("")), "");
        for literal in [
            "True",
            "False",
            "50",
            "Test",
            "AAAA",
            "MyVar",
            "a b",
            "/tmp/x.txt",
        ] {
            assert_eq!(decode_value(literal), literal);
        }
    }
}
