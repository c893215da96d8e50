//! JSON-valued variables: a lenient parser in the spirit of Newtonsoft.Json plus the compact
//! serialiser Octostache uses when a lookup lands on an object or array.
//!
//! Newtonsoft accepts unquoted property names, single-quoted strings, comments and trailing
//! commas, keeps property order, prints booleans as `True`/`False` when they become variable
//! values, and rejects trailing content. This module owns only that text ⇄ tree mapping; the
//! lookup rules that use it live in the evaluator.

use std::rc::Rc;

use crate::binding::Binding;
use crate::filters::numbers::format_double_round_trip;

/// Deep enough for any real document; stops hostile input from exhausting the stack.
const MAX_JSON_DEPTH: usize = 128;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum JsonValue {
    Null,
    Undefined,
    Bool(bool),
    /// Integers keep their literal digits so big values print exactly as written.
    Integer(String),
    Float(f64),
    String(String),
    Array(Vec<JsonValue>),
    Object(Vec<(String, JsonValue)>),
}

/// Parses text the way `JsonConvert.DeserializeObject` would; `None` when it is not JSON or is
/// a top-level `null` (which Octostache treats the same as "not JSON").
pub(crate) fn parse(text: &str) -> Option<JsonValue> {
    let mut reader = Reader {
        characters: text.chars().collect(),
        position: 0,
    };
    reader.skip_insignificant()?;
    if reader.position >= reader.characters.len() {
        return None;
    }
    let value = reader.value(0)?;
    reader.skip_insignificant()?;
    if reader.position != reader.characters.len()
        || matches!(value, JsonValue::Null | JsonValue::Undefined)
    {
        return None;
    }
    Some(value)
}

impl JsonValue {
    /// The string a JSON token becomes when it is bound as a variable value: scalars as .NET
    /// prints them, null as empty, objects and arrays as compact JSON.
    pub(crate) fn to_variable_text(&self) -> String {
        match self {
            JsonValue::Null | JsonValue::Undefined => String::new(),
            JsonValue::Bool(true) => "True".to_string(),
            JsonValue::Bool(false) => "False".to_string(),
            JsonValue::Integer(digits) => digits.clone(),
            JsonValue::Float(value) => format_double_round_trip(*value),
            JsonValue::String(text) => text.clone(),
            JsonValue::Array(_) | JsonValue::Object(_) => {
                let mut output = String::new();
                self.write_compact(&mut output);
                output
            }
        }
    }

    fn write_compact(&self, output: &mut String) {
        match self {
            JsonValue::Null => output.push_str("null"),
            JsonValue::Undefined => output.push_str("undefined"),
            JsonValue::Bool(value) => output.push_str(if *value { "true" } else { "false" }),
            JsonValue::Integer(digits) => output.push_str(digits),
            JsonValue::Float(value) => output.push_str(&newtonsoft_double(*value)),
            JsonValue::String(text) => write_json_string(text, output),
            JsonValue::Array(items) => {
                output.push('[');
                for (item_index, item) in items.iter().enumerate() {
                    if item_index > 0 {
                        output.push(',');
                    }
                    item.write_compact(output);
                }
                output.push(']');
            }
            JsonValue::Object(properties) => {
                output.push('{');
                for (property_index, (name, value)) in properties.iter().enumerate() {
                    if property_index > 0 {
                        output.push(',');
                    }
                    write_json_string(name, output);
                    output.push(':');
                    value.write_compact(output);
                }
                output.push('}');
            }
        }
    }

    /// One path step into the JSON (Octostache's `JsonParser.TryParse(binding, property)`).
    /// A missing property or out-of-range index is `""`; a non-numeric array index fails; a
    /// scalar answers any step with itself.
    pub(crate) fn step_text(&self, property: &str) -> Option<String> {
        match self {
            JsonValue::Object(properties) => Some(
                properties
                    .iter()
                    .find(|(name, _)| name == property)
                    .map(|(_, value)| value.to_variable_text())
                    .unwrap_or_default(),
            ),
            JsonValue::Array(items) => {
                let index = property.trim().parse::<i32>().ok()?;
                Some(
                    usize::try_from(index)
                        .ok()
                        .and_then(|index| items.get(index))
                        .map(JsonValue::to_variable_text)
                        .unwrap_or_default(),
                )
            }
            JsonValue::Null | JsonValue::Undefined => None,
            scalar => Some(scalar.to_variable_text()),
        }
    }

    /// Items for `#{each}`: array elements, or one item per object property with `.Key` and
    /// `.Value` children. Scalars are not iterable as JSON.
    pub(crate) fn iteration_items(&self) -> Option<Vec<Rc<Binding>>> {
        match self {
            JsonValue::Array(items) => Some(
                items
                    .iter()
                    .map(|item| Rc::new(Binding::with_item(item.to_variable_text())))
                    .collect(),
            ),
            JsonValue::Object(properties) => Some(
                properties
                    .iter()
                    .map(|(name, value)| {
                        let mut item = Binding::with_item(name.clone());
                        item.children
                            .insert("Key", Rc::new(Binding::with_item(name.clone())));
                        item.children.insert(
                            "Value",
                            Rc::new(Binding::with_item(value.to_variable_text())),
                        );
                        Rc::new(item)
                    })
                    .collect(),
            ),
            _ => None,
        }
    }
}

/// Newtonsoft writes doubles in round-trip form but always with a decimal point or exponent.
fn newtonsoft_double(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 {
            "Infinity".to_string()
        } else {
            "-Infinity".to_string()
        };
    }
    let text = format_double_round_trip(value);
    if text.contains(['.', 'E']) {
        text
    } else {
        format!("{text}.0")
    }
}

fn write_json_string(text: &str, output: &mut String) {
    output.push('"');
    for character in text.chars() {
        match character {
            '"' => output.push_str("\\\""),
            '\\' => output.push_str("\\\\"),
            '\n' => output.push_str("\\n"),
            '\r' => output.push_str("\\r"),
            '\t' => output.push_str("\\t"),
            '\u{8}' => output.push_str("\\b"),
            '\u{c}' => output.push_str("\\f"),
            control
                if (control as u32) < 0x20
                    || matches!(control, '\u{85}' | '\u{2028}' | '\u{2029}') =>
            {
                output.push_str(&format!("\\u{:04x}", control as u32));
            }
            other => output.push(other),
        }
    }
    output.push('"');
}

struct Reader {
    characters: Vec<char>,
    position: usize,
}

impl Reader {
    fn peek(&self) -> Option<char> {
        self.characters.get(self.position).copied()
    }

    /// Skips whitespace and comments; `None` for an unterminated block comment.
    fn skip_insignificant(&mut self) -> Option<()> {
        loop {
            match self.peek() {
                Some(character) if character.is_whitespace() => self.position += 1,
                Some('/') if self.characters.get(self.position + 1) == Some(&'*') => {
                    self.position += 2;
                    loop {
                        if self.position + 1 >= self.characters.len() {
                            return None;
                        }
                        if self.characters[self.position] == '*'
                            && self.characters[self.position + 1] == '/'
                        {
                            self.position += 2;
                            break;
                        }
                        self.position += 1;
                    }
                }
                Some('/') if self.characters.get(self.position + 1) == Some(&'/') => {
                    while self.peek().is_some_and(|character| character != '\n') {
                        self.position += 1;
                    }
                }
                _ => return Some(()),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<JsonValue> {
        if depth > MAX_JSON_DEPTH {
            return None;
        }
        self.skip_insignificant()?;
        match self.peek()? {
            '{' => self.object(depth),
            '[' => self.array(depth),
            quote @ ('"' | '\'') => self.string(quote).map(JsonValue::String),
            '-' | '0'..='9' | '.' => self.number(),
            _ => self.constant(),
        }
    }

    fn object(&mut self, depth: usize) -> Option<JsonValue> {
        self.position += 1;
        let mut properties: Vec<(String, JsonValue)> = Vec::new();
        loop {
            self.skip_insignificant()?;
            match self.peek()? {
                '}' => {
                    self.position += 1;
                    return Some(JsonValue::Object(properties));
                }
                quote @ ('"' | '\'') => {
                    let name = self.string(quote)?;
                    self.property_value(depth, name, &mut properties)?;
                }
                _ => {
                    let start = self.position;
                    while self.peek().is_some_and(|character| {
                        character.is_alphanumeric() || character == '_' || character == '$'
                    }) {
                        self.position += 1;
                    }
                    if self.position == start {
                        return None;
                    }
                    let name: String = self.characters[start..self.position].iter().collect();
                    self.property_value(depth, name, &mut properties)?;
                }
            }
            self.skip_insignificant()?;
            match self.peek()? {
                ',' => self.position += 1,
                '}' => {}
                _ => return None,
            }
        }
    }

    fn property_value(
        &mut self,
        depth: usize,
        name: String,
        properties: &mut Vec<(String, JsonValue)>,
    ) -> Option<()> {
        self.skip_insignificant()?;
        if self.peek()? != ':' {
            return None;
        }
        self.position += 1;
        let value = self.value(depth + 1)?;
        // A repeated property replaces the earlier value, as JObject loading does.
        match properties
            .iter_mut()
            .find(|(existing, _)| *existing == name)
        {
            Some(existing) => existing.1 = value,
            None => properties.push((name, value)),
        }
        Some(())
    }

    fn array(&mut self, depth: usize) -> Option<JsonValue> {
        self.position += 1;
        let mut items = Vec::new();
        loop {
            self.skip_insignificant()?;
            if self.peek()? == ']' {
                self.position += 1;
                return Some(JsonValue::Array(items));
            }
            items.push(self.value(depth + 1)?);
            self.skip_insignificant()?;
            match self.peek()? {
                ',' => self.position += 1,
                ']' => {}
                _ => return None,
            }
        }
    }

    fn string(&mut self, quote: char) -> Option<String> {
        self.position += 1;
        let mut text = String::new();
        loop {
            let character = self.peek()?;
            self.position += 1;
            if character == quote {
                return Some(text);
            }
            if character != '\\' {
                text.push(character);
                continue;
            }
            let escaped = self.peek()?;
            self.position += 1;
            match escaped {
                'b' => text.push('\u{8}'),
                'f' => text.push('\u{c}'),
                'n' => text.push('\n'),
                'r' => text.push('\r'),
                't' => text.push('\t'),
                'u' => {
                    let first = self.hex_unit()?;
                    let decoded = if (0xD800..0xDC00).contains(&first)
                        && self.peek() == Some('\\')
                        && self.characters.get(self.position + 1) == Some(&'u')
                    {
                        self.position += 2;
                        let second = self.hex_unit()?;
                        char::decode_utf16([first, second])
                            .map(|unit| unit.unwrap_or('\u{FFFD}'))
                            .collect::<String>()
                    } else {
                        char::from_u32(u32::from(first))
                            .unwrap_or('\u{FFFD}')
                            .to_string()
                    };
                    text.push_str(&decoded);
                }
                other => text.push(other),
            }
        }
    }

    fn hex_unit(&mut self) -> Option<u16> {
        let digits: String = self
            .characters
            .get(self.position..self.position + 4)?
            .iter()
            .collect();
        self.position += 4;
        u16::from_str_radix(&digits, 16).ok()
    }

    fn number(&mut self) -> Option<JsonValue> {
        let start = self.position;
        while self.peek().is_some_and(|character| {
            character.is_ascii_alphanumeric() || matches!(character, '-' | '+' | '.')
        }) {
            self.position += 1;
        }
        let text: String = self.characters[start..self.position].iter().collect();
        match text.as_str() {
            "-Infinity" => return Some(JsonValue::Float(f64::NEG_INFINITY)),
            "-NaN" => return Some(JsonValue::Float(f64::NAN)),
            _ => {}
        }
        let is_integer = text
            .strip_prefix('-')
            .unwrap_or(&text)
            .chars()
            .all(|character| character.is_ascii_digit());
        if is_integer && !text.trim_start_matches('-').is_empty() {
            let negative = text.starts_with('-');
            let digits = text.trim_start_matches('-').trim_start_matches('0');
            let digits = if digits.is_empty() { "0" } else { digits };
            let sign = if negative && digits != "0" { "-" } else { "" };
            return Some(JsonValue::Integer(format!("{sign}{digits}")));
        }
        let valid_float = text.chars().all(|character| {
            character.is_ascii_digit() || matches!(character, '-' | '+' | '.' | 'e' | 'E')
        });
        if !valid_float {
            return None;
        }
        text.parse::<f64>().ok().map(JsonValue::Float)
    }

    fn constant(&mut self) -> Option<JsonValue> {
        let start = self.position;
        while self.peek().is_some_and(char::is_alphanumeric) {
            self.position += 1;
        }
        let word: String = self.characters[start..self.position].iter().collect();
        match word.as_str() {
            "true" => Some(JsonValue::Bool(true)),
            "false" => Some(JsonValue::Bool(false)),
            "null" => Some(JsonValue::Null),
            "undefined" => Some(JsonValue::Undefined),
            "NaN" => Some(JsonValue::Float(f64::NAN)),
            "Infinity" => Some(JsonValue::Float(f64::INFINITY)),
            _ => None,
        }
    }
}
