//! Java `.properties` replacement: edits values in place so untouched bytes stay identical.
//!
//! The file is split into logical lines (a line ending in an odd number of backslashes continues on
//! the next physical line, whose leading whitespace is dropped). Key/value lines are matched on their
//! *logical* key, that is unescaped and continuation-joined, exactly (case-insensitively, as
//! Octopus variable names are) against the variables. Only the value's bytes are rewritten; the key
//! and separator are copied as written. Comment and blank lines are never touched. Any text is a
//! valid properties file, so this replacer never reports a parse error.

use crate::variables::StructuredVariables;
use crate::{ReplacementLog, StructuredError, StructuredOptions, StructuredOutput};

/// Byte ranges of one key/value logical line in the input.
struct KeyValueLine {
    /// Where the key ends (the key starts after the line's leading whitespace).
    key_end: usize,
    /// The separator, including surrounding whitespace; empty when the line is a bare key.
    separator_end: usize,
    /// The value runs from `separator_end` to here (the line break is not part of it).
    value_end: usize,
    logical_key: String,
}

pub(crate) fn replace_properties<Variables>(
    input: &str,
    variables: &Variables,
    _options: &StructuredOptions,
) -> Result<StructuredOutput, StructuredError>
where
    Variables: StructuredVariables + ?Sized,
{
    let mut log = ReplacementLog::default();
    let mut output = String::with_capacity(input.len());
    let mut copied_up_to = 0;
    for line in key_value_lines(input) {
        if line.logical_key.to_lowercase().starts_with("octopus")
            || !variables.contains_variable(&line.logical_key)
        {
            continue;
        }
        let new_value = variables
            .evaluated_value(&line.logical_key)
            .unwrap_or_default();
        log.record_replacement(&line.logical_key);
        output.push_str(&input[copied_up_to..line.key_end]);
        if line.separator_end == line.key_end {
            // A bare key needs a separator, or the new value would become part of the key.
            output.push(':');
        } else {
            output.push_str(&input[line.key_end..line.separator_end]);
        }
        output.push_str(&escape_value(&new_value));
        copied_up_to = line.value_end;
    }
    output.push_str(&input[copied_up_to..]);
    Ok(log.finish(output))
}

/// Escapes a value the way Calamari's `PropertiesValueEscape` does: backslash, CR, LF and TAB as
/// backslash escapes, a leading space as `\ ` (so it is not swallowed as separator whitespace), and
/// characters from U+00FF up as `\uXXXX` UTF-16 units.
fn escape_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for (char_idx, character) in value.chars().enumerate() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            '\r' => escaped.push_str("\\r"),
            '\n' => escaped.push_str("\\n"),
            '\t' => escaped.push_str("\\t"),
            ' ' if char_idx == 0 => escaped.push_str("\\ "),
            _ if u32::from(character) >= 0xFF => {
                let mut utf16_units = [0u16; 2];
                for unit in character.encode_utf16(&mut utf16_units) {
                    escaped.push_str(&format!("\\u{unit:04x}"));
                }
            }
            _ => escaped.push(character),
        }
    }
    escaped
}

fn is_properties_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\x0c')
}

fn is_line_break(byte: u8) -> bool {
    matches!(byte, b'\n' | b'\r')
}

/// Reads the key/value logical lines, skipping blank and comment lines.
fn key_value_lines(input: &str) -> Vec<KeyValueLine> {
    let bytes = input.as_bytes();
    let mut lines = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        // Leading whitespace of a natural line is not part of anything.
        while position < bytes.len() && is_properties_whitespace(bytes[position]) {
            position += 1;
        }
        if position >= bytes.len() {
            break;
        }
        let first = bytes[position];
        if is_line_break(first) {
            position = skip_line_break(bytes, position);
            continue;
        }
        if first == b'#' || first == b'!' {
            // Comments never continue onto the next line, whatever they end with.
            while position < bytes.len() && !is_line_break(bytes[position]) {
                position += 1;
            }
            continue;
        }
        let (line, next_position) = read_key_value_line(input, position);
        lines.push(line);
        position = next_position;
    }
    lines
}

fn skip_line_break(bytes: &[u8], position: usize) -> usize {
    if bytes[position] == b'\r' && bytes.get(position + 1) == Some(&b'\n') {
        position + 2
    } else {
        position + 1
    }
}

/// Reads one key/value logical line starting at its first key character. Returns the line and the
/// position just after its value (at the line break, if any).
fn read_key_value_line(input: &str, key_start: usize) -> (KeyValueLine, usize) {
    let bytes = input.as_bytes();
    let mut logical_key = String::new();
    let mut position = key_start;

    // The key ends at the first unescaped '=', ':' or whitespace, or at the end of the logical line.
    while position < bytes.len() {
        let byte = bytes[position];
        if byte == b'=' || byte == b':' || is_properties_whitespace(byte) || is_line_break(byte) {
            break;
        }
        if byte == b'\\' {
            position = read_escape(input, position, &mut logical_key);
            continue;
        }
        let character = next_char(input, position);
        logical_key.push(character);
        position += character.len_utf8();
    }
    let key_end = position;

    // Separator: whitespace, at most one '=' or ':', then whitespace; continuations are allowed.
    let mut seen_separator_character = false;
    while position < bytes.len() {
        let byte = bytes[position];
        if is_properties_whitespace(byte) {
            position += 1;
        } else if (byte == b'=' || byte == b':') && !seen_separator_character {
            seen_separator_character = true;
            position += 1;
        } else if byte == b'\\' && continues_line(bytes, position) {
            position = skip_continuation(bytes, position);
        } else {
            break;
        }
    }
    let separator_end = position;

    // Value: everything to the end of the logical line.
    while position < bytes.len() && !is_line_break(bytes[position]) {
        if bytes[position] == b'\\' {
            if continues_line(bytes, position) {
                position = skip_continuation(bytes, position);
            } else {
                // An escape pair; skipping both keeps an escaped backslash from looking like a
                // continuation.
                position += 1;
                if position < bytes.len() && !is_line_break(bytes[position]) {
                    position += next_char(input, position).len_utf8();
                }
            }
        } else {
            position += next_char(input, position).len_utf8();
        }
    }
    (
        KeyValueLine {
            key_end,
            separator_end,
            value_end: position,
            logical_key,
        },
        position,
    )
}

fn next_char(input: &str, position: usize) -> char {
    input[position..].chars().next().unwrap_or('\u{FFFD}')
}

/// Whether the backslash at `position` is followed directly by a line break (a continuation).
fn continues_line(bytes: &[u8], position: usize) -> bool {
    bytes
        .get(position + 1)
        .is_some_and(|byte| is_line_break(*byte))
}

/// Skips a backslash, its line break and the next line's leading whitespace.
fn skip_continuation(bytes: &[u8], position: usize) -> usize {
    let mut next = skip_line_break(bytes, position + 1);
    while next < bytes.len() && is_properties_whitespace(bytes[next]) {
        next += 1;
    }
    next
}

/// Decodes the escape at `position` (a backslash) into `logical_key`; returns the next position.
fn read_escape(input: &str, position: usize, logical_key: &mut String) -> usize {
    let bytes = input.as_bytes();
    let Some(&escaped) = bytes.get(position + 1) else {
        // A trailing lone backslash means nothing.
        return position + 1;
    };
    match escaped {
        b'\n' | b'\r' => skip_continuation(bytes, position),
        b't' => {
            logical_key.push('\t');
            position + 2
        }
        b'n' => {
            logical_key.push('\n');
            position + 2
        }
        b'r' => {
            logical_key.push('\r');
            position + 2
        }
        b'f' => {
            logical_key.push('\x0c');
            position + 2
        }
        b'u' => {
            let hex_digits = input.get(position + 2..position + 6);
            match hex_digits.and_then(|digits| u32::from_str_radix(digits, 16).ok()) {
                Some(code_unit) => {
                    logical_key.push(char::from_u32(code_unit).unwrap_or('\u{FFFD}'));
                    position + 6
                }
                None => {
                    // Java rejects a malformed \u escape; being lenient keeps the file editable.
                    logical_key.push('u');
                    position + 2
                }
            }
        }
        _ => {
            let character = next_char(input, position + 1);
            logical_key.push(character);
            position + 1 + character.len_utf8()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(input: &str) -> Vec<String> {
        key_value_lines(input)
            .into_iter()
            .map(|line| line.logical_key)
            .collect()
    }

    #[test]
    fn logical_keys_are_unescaped_and_joined() {
        assert_eq!(
            keys("key1:v\nke\\\n  y3 v\nkey\\n4:v\n# c\n! c\nkey\\ 5 = v\nk\\u1e1by=v"),
            ["key1", "key3", "key\n4", "key 5", "k\u{1e1b}y"]
        );
    }

    #[test]
    fn values_are_escaped() {
        assert_eq!(escape_value(" a\\b\r\n\t c"), "\\ a\\\\b\\r\\n\\t c");
        assert_eq!(escape_value("ÿ😀"), "\\u00ff\\ud83d\\ude00");
        assert_eq!(escape_value("é"), "é");
    }

    #[test]
    fn continued_values_are_replaced_whole() {
        let variables = vec![("key".to_owned(), "new".to_owned())];
        let output = replace_properties(
            "key = one \\\n   two\nother=x\r\n",
            &variables,
            &StructuredOptions::default(),
        )
        .expect("properties never fail");
        assert_eq!(output.text, "key = new\nother=x\r\n");
    }
}
