//! JSON replacement, reproducing Calamari's `JsonFormatVariableReplacer` on top of Newtonsoft.
//!
//! The document is parsed into an order-preserving tree, every node is registered under its
//! colon-joined path (later nodes win when two share a path, as Calamari's dictionary overwrite
//! does), variables are applied in definition order, and the whole tree is re-serialised the way
//! Newtonsoft's indented writer does: two spaces, `"key": value`, no trailing newline, numbers as
//! .NET prints `long`/`double`, and the input's dominant line ending. Parsing is done by
//! `serde_json` (strict JSON) after a small pre-pass that removes what Newtonsoft tolerates and
//! real `appsettings.json` files contain: `//` and `/* */` comments and trailing commas.
//!
//! Not reproduced: Newtonsoft's other leniencies (single-quoted strings, unquoted names), its
//! conversion of ISO-date-looking strings to dates, and integers beyond `u64`, which `serde_json`
//! reads as `f64`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::line_endings::{LineEnding, most_common_line_ending};
use crate::variables::{PathVariableTable, StructuredVariables, case_insensitive_key};
use crate::{
    ReplacementLog, StructuredError, StructuredFormat, StructuredOptions, StructuredOutput,
};

/// An order-preserving JSON value (the JToken tree).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum JsonNode {
    Null,
    Bool(bool),
    Integer(i128),
    Float(f64),
    String(String),
    Array(Vec<JsonNode>),
    Object(Vec<(String, JsonNode)>),
}

impl<'de> Deserialize<'de> for JsonNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonNodeVisitor)
    }
}

struct JsonNodeVisitor;

impl<'de> Visitor<'de> for JsonNodeVisitor {
    type Value = JsonNode;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<JsonNode, E> {
        Ok(JsonNode::Null)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<JsonNode, E> {
        Ok(JsonNode::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<JsonNode, E> {
        Ok(JsonNode::Integer(i128::from(value)))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<JsonNode, E> {
        Ok(JsonNode::Integer(i128::from(value)))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<JsonNode, E> {
        Ok(JsonNode::Float(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<JsonNode, E> {
        Ok(JsonNode::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<JsonNode, E> {
        Ok(JsonNode::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<JsonNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element::<JsonNode>()? {
            items.push(item);
        }
        Ok(JsonNode::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<JsonNode, A::Error> {
        let mut properties: Vec<(String, JsonNode)> = Vec::new();
        while let Some((name, value)) = access.next_entry::<String, JsonNode>()? {
            // Newtonsoft's default duplicate handling replaces the earlier property's value.
            match properties
                .iter_mut()
                .find(|(existing, _)| *existing == name)
            {
                Some(existing) => existing.1 = value,
                None => properties.push((name, value)),
            }
        }
        Ok(JsonNode::Object(properties))
    }
}

/// Parses JSON text the way this replacer reads files and object/array variable values.
pub(crate) fn parse_json(
    text: &str,
    max_nesting_depth: usize,
) -> Result<JsonNode, StructuredError> {
    let cleaned = strip_comments_and_trailing_commas(text, max_nesting_depth)?;
    serde_json::from_str::<JsonNode>(&cleaned).map_err(|error| StructuredError::Parse {
        format: StructuredFormat::Json,
        message: error.to_string(),
        line: Some(error.line() as u64),
        column: Some(error.column() as u64),
    })
}

/// Blanks out comments and trailing commas (keeping every line break, so error positions still
/// point into the original text) and checks the nesting depth before `serde_json` recurses.
fn strip_comments_and_trailing_commas(
    text: &str,
    max_nesting_depth: usize,
) -> Result<String, StructuredError> {
    let bytes = text.as_bytes();
    let mut cleaned: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut position = 0;
    let mut depth = 0usize;
    // Where in `cleaned` the last comma outside strings is, while only whitespace has followed it.
    let mut pending_comma: Option<usize> = None;
    while position < bytes.len() {
        let byte = bytes[position];
        match byte {
            b'"' => {
                pending_comma = None;
                let string_start = position;
                position += 1;
                while position < bytes.len() && bytes[position] != b'"' {
                    position += if bytes[position] == b'\\' { 2 } else { 1 };
                }
                position = (position + 1).min(bytes.len());
                cleaned.extend_from_slice(&bytes[string_start..position]);
                continue;
            }
            b'/' if bytes.get(position + 1) == Some(&b'/') => {
                while position < bytes.len() && bytes[position] != b'\n' {
                    cleaned.push(if bytes[position] == b'\r' {
                        b'\r'
                    } else {
                        b' '
                    });
                    position += 1;
                }
                continue;
            }
            b'/' if bytes.get(position + 1) == Some(&b'*') => {
                let comment_end = text[position + 2..]
                    .find("*/")
                    .map(|offset| position + 2 + offset + 2)
                    .ok_or_else(|| StructuredError::Parse {
                        format: StructuredFormat::Json,
                        message: "unterminated /* comment".to_owned(),
                        line: None,
                        column: None,
                    })?;
                for comment_byte in &bytes[position..comment_end] {
                    cleaned.push(if matches!(comment_byte, b'\n' | b'\r') {
                        *comment_byte
                    } else {
                        b' '
                    });
                }
                position = comment_end;
                continue;
            }
            b'{' | b'[' => {
                pending_comma = None;
                depth += 1;
                if depth > max_nesting_depth.min(127) {
                    return Err(StructuredError::NestingTooDeep {
                        format: StructuredFormat::Json,
                        limit: max_nesting_depth.min(127),
                    });
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if let Some(comma_position) = pending_comma.take() {
                    cleaned[comma_position] = b' ';
                }
            }
            b',' => pending_comma = Some(cleaned.len()),
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => pending_comma = None,
        }
        cleaned.push(byte);
        position += 1;
    }
    // Only ASCII bytes were replaced by ASCII bytes, so the text is still valid UTF-8.
    String::from_utf8(cleaned).map_err(|error| StructuredError::Parse {
        format: StructuredFormat::Json,
        message: error.to_string(),
        line: None,
        column: None,
    })
}

/// Where a node sits: child indexes from the root.
type NodeLocation = Vec<usize>;

/// What kind of token a path addressed when the map was built; decides how a value is converted.
#[derive(Clone, Copy)]
enum TargetKind {
    Structure,
    Number,
    Bool,
    Other,
}

pub(crate) fn replace_json<Variables>(
    input: &str,
    variables: &Variables,
    options: &StructuredOptions,
) -> Result<StructuredOutput, StructuredError>
where
    Variables: StructuredVariables + ?Sized,
{
    let (mut root, line_ending) = if input.is_empty() {
        // Calamari treats an empty file as an empty object; the line ending then defaults to DOS.
        (JsonNode::Object(Vec::new()), LineEnding::Dos)
    } else {
        (
            parse_json(input, options.max_nesting_depth)?,
            most_common_line_ending(input),
        )
    };

    let mut targets_by_path: std::collections::HashMap<String, (NodeLocation, TargetKind)> =
        std::collections::HashMap::new();
    register_paths(
        &root,
        &mut Vec::new(),
        &mut Vec::new(),
        &mut targets_by_path,
    );

    let table = PathVariableTable::new(variables);
    let mut log = ReplacementLog::default();
    let mut replaced_locations: Vec<NodeLocation> = Vec::new();
    for variable_name in table.names_in_order() {
        let Some((location, kind)) = targets_by_path.get(&case_insensitive_key(variable_name))
        else {
            continue;
        };
        if replaced_locations
            .iter()
            .any(|replaced| location.starts_with(replaced))
        {
            // Calamari's closure still points at a token that an earlier replacement detached
            // from the document; Newtonsoft throws "the parent is missing" and Calamari warns.
            log.warn(
                Some(variable_name),
                format!(
                    "Unable to set value for {variable_name}. The node was already replaced by another variable."
                ),
            );
            continue;
        }
        let value = variables.evaluated_value(variable_name);
        let new_node = match kind {
            TargetKind::Structure => {
                let parsed = value
                    .as_deref()
                    .ok_or_else(|| "the value is null".to_owned())
                    .and_then(|text| {
                        parse_json(text, options.max_nesting_depth)
                            .map_err(|error| error.to_string())
                    });
                match parsed {
                    Ok(node) => node,
                    Err(message) => {
                        log.warn(
                            Some(variable_name),
                            format!("Unable to set value for {variable_name}. The following error occurred: {message}"),
                        );
                        continue;
                    }
                }
            }
            TargetKind::Number => match value {
                None => JsonNode::Null,
                Some(text) => parse_dotnet_long(&text)
                    .map(|number| JsonNode::Integer(i128::from(number)))
                    .or_else(|| parse_dotnet_double(&text).map(JsonNode::Float))
                    .unwrap_or(JsonNode::String(text)),
            },
            TargetKind::Bool => match value {
                None => JsonNode::Null,
                Some(text) => match text.trim().to_ascii_lowercase().as_str() {
                    "true" => JsonNode::Bool(true),
                    "false" => JsonNode::Bool(false),
                    _ => JsonNode::String(text),
                },
            },
            TargetKind::Other => value.map_or(JsonNode::Null, JsonNode::String),
        };
        if let Some(node) = node_at_mut(&mut root, location) {
            *node = new_node;
            log.record_replacement(variable_name);
            replaced_locations.push(location.clone());
        }
    }

    let mut text = String::with_capacity(input.len() + 64);
    write_indented(&root, 0, line_ending.as_str(), &mut text);
    Ok(log.finish(text))
}

/// Registers every node except the root under its path, mirroring `JsonUpdateMap.Load`.
fn register_paths(
    node: &JsonNode,
    location: &mut NodeLocation,
    path_segments: &mut Vec<String>,
    targets_by_path: &mut std::collections::HashMap<String, (NodeLocation, TargetKind)>,
) {
    if !location.is_empty() {
        let kind = match node {
            JsonNode::Object(_) | JsonNode::Array(_) => TargetKind::Structure,
            JsonNode::Integer(_) | JsonNode::Float(_) => TargetKind::Number,
            JsonNode::Bool(_) => TargetKind::Bool,
            JsonNode::Null | JsonNode::String(_) => TargetKind::Other,
        };
        targets_by_path.insert(
            case_insensitive_key(&path_segments.join(":")),
            (location.clone(), kind),
        );
    }
    match node {
        JsonNode::Object(properties) => {
            for (child_idx, (name, child)) in properties.iter().enumerate() {
                location.push(child_idx);
                path_segments.push(name.clone());
                register_paths(child, location, path_segments, targets_by_path);
                path_segments.pop();
                location.pop();
            }
        }
        JsonNode::Array(items) => {
            for (child_idx, child) in items.iter().enumerate() {
                location.push(child_idx);
                path_segments.push(child_idx.to_string());
                register_paths(child, location, path_segments, targets_by_path);
                path_segments.pop();
                location.pop();
            }
        }
        _ => {}
    }
}

fn node_at_mut<'tree>(
    root: &'tree mut JsonNode,
    location: &[usize],
) -> Option<&'tree mut JsonNode> {
    let mut node = root;
    for child_idx in location {
        node = match node {
            JsonNode::Object(properties) => &mut properties.get_mut(*child_idx)?.1,
            JsonNode::Array(items) => items.get_mut(*child_idx)?,
            _ => return None,
        };
    }
    Some(node)
}

/// `long.TryParse` with the invariant culture: optional surrounding whitespace and sign, digits.
fn parse_dotnet_long(text: &str) -> Option<i64> {
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if digits.is_empty() {
        return None;
    }
    digits.parse::<i64>().ok()
}

/// `double.TryParse` with the invariant culture (`Float | AllowThousands`): whitespace, sign,
/// thousands separators before the decimal point, a fraction, an exponent, and the named values.
fn parse_dotnet_double(text: &str) -> Option<f64> {
    let trimmed = text.trim();
    match trimmed.to_ascii_lowercase().as_str() {
        "nan" => return Some(f64::NAN),
        "infinity" | "+infinity" | "∞" => return Some(f64::INFINITY),
        "-infinity" | "-∞" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let integer_part_end = trimmed.find(['.', 'e', 'E']).unwrap_or(trimmed.len());
    let (integer_part, rest) = trimmed.split_at(integer_part_end);
    let without_thousands: String = integer_part.chars().filter(|c| *c != ',').collect();
    let candidate = format!("{without_thousands}{rest}");
    let is_plain_number = !candidate.is_empty()
        && candidate
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'))
        && candidate.chars().any(|c| c.is_ascii_digit());
    if !is_plain_number {
        return None;
    }
    candidate.parse::<f64>().ok()
}

/// Prints a double as .NET Core's `double.ToString("R")` does, plus Newtonsoft's `.0` suffix for
/// integral values: the shortest round-trip digits, in scientific notation when the decimal
/// exponent is above `max(digits, 15)` or below -4.
fn format_dotnet_double(value: f64) -> String {
    if value.is_nan() {
        return "\"NaN\"".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 {
            "\"Infinity\"".to_owned()
        } else {
            "\"-Infinity\"".to_owned()
        };
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, like .NET Core 3.0 and later.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent_text) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent_text.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digit_count = digits.len() as i32;
    let scale = exponent + 1;
    let max_digits = digit_count.max(15);
    let mut text = String::new();
    if value.is_sign_negative() {
        text.push('-');
    }
    if scale > max_digits || scale < -3 {
        text.push_str(&digits[..1]);
        if digits.len() > 1 {
            text.push('.');
            text.push_str(&digits[1..]);
        }
        text.push('E');
        text.push(if exponent < 0 { '-' } else { '+' });
        text.push_str(&format!("{:02}", exponent.abs()));
        return text;
    }
    if scale <= 0 {
        text.push_str("0.");
        for _ in 0..(-scale) {
            text.push('0');
        }
        text.push_str(&digits);
    } else {
        let scale = scale as usize;
        if digits.len() <= scale {
            text.push_str(&digits);
            for _ in digits.len()..scale {
                text.push('0');
            }
            text.push_str(".0");
        } else {
            text.push_str(&digits[..scale]);
            text.push('.');
            text.push_str(&digits[scale..]);
        }
    }
    text
}

/// Writes a string literal with Newtonsoft's default escaping.
fn write_string_literal(value: &str, output: &mut String) {
    output.push('"');
    for character in value.chars() {
        match character {
            '"' => output.push_str("\\\""),
            '\\' => output.push_str("\\\\"),
            '\u{8}' => output.push_str("\\b"),
            '\t' => output.push_str("\\t"),
            '\n' => output.push_str("\\n"),
            '\u{c}' => output.push_str("\\f"),
            '\r' => output.push_str("\\r"),
            '\u{0}'..='\u{1f}' | '\u{85}' | '\u{2028}' | '\u{2029}' => {
                output.push_str(&format!("\\u{:04x}", u32::from(character)));
            }
            _ => output.push(character),
        }
    }
    output.push('"');
}

fn write_newline_and_indent(depth: usize, newline: &str, output: &mut String) {
    output.push_str(newline);
    for _ in 0..depth {
        output.push_str("  ");
    }
}

/// Newtonsoft `Formatting.Indented` output.
fn write_indented(node: &JsonNode, depth: usize, newline: &str, output: &mut String) {
    match node {
        JsonNode::Null => output.push_str("null"),
        JsonNode::Bool(value) => output.push_str(if *value { "true" } else { "false" }),
        JsonNode::Integer(value) => output.push_str(&value.to_string()),
        JsonNode::Float(value) => output.push_str(&format_dotnet_double(*value)),
        JsonNode::String(value) => write_string_literal(value, output),
        JsonNode::Array(items) => {
            if items.is_empty() {
                output.push_str("[]");
                return;
            }
            output.push('[');
            for (item_idx, item) in items.iter().enumerate() {
                if item_idx > 0 {
                    output.push(',');
                }
                write_newline_and_indent(depth + 1, newline, output);
                write_indented(item, depth + 1, newline, output);
            }
            write_newline_and_indent(depth, newline, output);
            output.push(']');
        }
        JsonNode::Object(properties) => {
            if properties.is_empty() {
                output.push_str("{}");
                return;
            }
            output.push('{');
            for (property_idx, (name, value)) in properties.iter().enumerate() {
                if property_idx > 0 {
                    output.push(',');
                }
                write_newline_and_indent(depth + 1, newline, output);
                write_string_literal(name, output);
                output.push_str(": ");
                write_indented(value, depth + 1, newline, output);
            }
            write_newline_and_indent(depth, newline, output);
            output.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_like_dotnet() {
        assert_eq!(format_dotnet_double(50.0), "50.0");
        assert_eq!(format_dotnet_double(456e-5), "0.00456");
        assert_eq!(format_dotnet_double(0.0001), "0.0001");
        assert_eq!(format_dotnet_double(0.00001), "1E-05");
        assert_eq!(format_dotnet_double(1e15), "1E+15");
        assert_eq!(format_dotnet_double(123456789012345.0), "123456789012345.0");
        assert_eq!(format_dotnet_double(-1.5), "-1.5");
        assert_eq!(
            format_dotnet_double(1.2345678901234568e20),
            "1.2345678901234568E+20"
        );
    }

    #[test]
    fn numbers_parse_like_dotnet() {
        assert_eq!(parse_dotnet_long(" 42 "), Some(42));
        assert_eq!(parse_dotnet_long("4.2"), None);
        assert_eq!(parse_dotnet_double("1,000.5"), Some(1000.5));
        assert_eq!(parse_dotnet_double("456e-5"), Some(456e-5));
        assert_eq!(parse_dotnet_double("null"), None);
        assert_eq!(parse_dotnet_double("[1]"), None);
    }

    #[test]
    fn comments_and_trailing_commas_are_tolerated() {
        let node = parse_json(
            "{\n // note\n \"a\": [1, 2,], /* x */ \"b\": \"//not a comment\",\n}",
            100,
        )
        .expect("lenient JSON parses");
        assert_eq!(
            node,
            JsonNode::Object(vec![
                (
                    "a".to_owned(),
                    JsonNode::Array(vec![JsonNode::Integer(1), JsonNode::Integer(2)])
                ),
                (
                    "b".to_owned(),
                    JsonNode::String("//not a comment".to_owned())
                ),
            ])
        );
    }
}
