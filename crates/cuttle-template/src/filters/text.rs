//! Text filters: case, trimming, cutting, regex replace and match, concatenation, indenting,
//! comparisons and base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{FilterError, FilterResult};

pub(super) fn to_lower(input: Option<&str>, options: &[String]) -> Option<String> {
    input.filter(|_| options.is_empty()).map(str::to_lowercase)
}

pub(super) fn to_upper(input: Option<&str>, options: &[String]) -> Option<String> {
    input.filter(|_| options.is_empty()).map(str::to_uppercase)
}

/// .NET `int.TryParse`: optional surrounding whitespace and sign, decimal digits only.
pub(super) fn parse_int(text: &str) -> Option<i64> {
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let value = digits.parse::<i64>().ok()?;
    i32::try_from(value).ok().map(i64::from)
}

/// The text encodings options may name; `unicode` is UTF-16LE as in .NET.
enum TextEncoding {
    Utf8,
    Utf16LittleEndian,
}

fn text_encoding(option: Option<&String>) -> Option<TextEncoding> {
    match option.map(|option| option.to_lowercase()).as_deref() {
        None | Some("utf8" | "utf-8") => Some(TextEncoding::Utf8),
        Some("unicode") => Some(TextEncoding::Utf16LittleEndian),
        Some(_) => None,
    }
}

pub(super) fn encode_text(text: &str, utf16: bool) -> Vec<u8> {
    if utf16 {
        text.encode_utf16().flat_map(u16::to_le_bytes).collect()
    } else {
        text.as_bytes().to_vec()
    }
}

/// .NET `Convert.FromBase64String` ignores whitespace inside the text.
pub(super) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text
        .chars()
        .filter(|character| !character.is_whitespace())
        .collect();
    BASE64.decode(compact).ok()
}

pub(super) fn to_base64(input: Option<&str>, options: &[String]) -> Option<String> {
    let input = input?;
    if options.len() > 1 {
        return None;
    }
    let bytes = match text_encoding(options.first())? {
        TextEncoding::Utf8 => encode_text(input, false),
        TextEncoding::Utf16LittleEndian => encode_text(input, true),
    };
    Some(BASE64.encode(bytes))
}

pub(super) fn from_base64(input: Option<&str>, options: &[String]) -> FilterResult {
    let Some(input) = input else { return Ok(None) };
    if options.len() > 1 {
        return Ok(None);
    }
    // Upstream decodes before looking at the encoding, and invalid base64 throws.
    let Some(bytes) = decode_base64(input) else {
        return Err(FilterError {
            message: format!("FromBase64 failed: '{input}' is not valid base64"),
        });
    };
    Ok(match text_encoding(options.first()) {
        Some(TextEncoding::Utf8) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Some(TextEncoding::Utf16LittleEndian) => {
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|pair| u16::from_le_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]))
                .collect();
            let mut decoded = String::from_utf16_lossy(&units);
            if bytes.len() % 2 == 1 {
                // A dangling byte decodes to a replacement character, as .NET does.
                decoded.pop();
                decoded.push('\u{FFFD}');
            }
            Some(decoded)
        }
        None => None,
    })
}

pub(super) fn trim(input: Option<&str>, options: &[String]) -> Option<String> {
    let input = input?;
    match options
        .first()
        .map(|option| option.to_lowercase())
        .as_deref()
    {
        None => Some(input.trim().to_string()),
        Some("start") => Some(input.trim_start().to_string()),
        Some("end") => Some(input.trim_end().to_string()),
        Some(_) => None,
    }
}

pub(super) fn truncate(input: Option<&str>, options: &[String]) -> Option<String> {
    let input = input?;
    if options.is_empty() || options.len() > 2 {
        return None;
    }
    let length = usize::try_from(parse_int(&options[0])?).ok()?;
    let suffix = options.get(1).map_or("...", String::as_str);
    if length < input.chars().count() {
        Some(format!(
            "{}{suffix}",
            input.chars().take(length).collect::<String>()
        ))
    } else {
        Some(input.to_string())
    }
}

/// `Substring len` or `Substring start len`: the second number is a length, not an end.
pub(super) fn substring(input: Option<&str>, options: &[String]) -> Option<String> {
    let input = input?;
    let numbers: Vec<usize> = options
        .iter()
        .map(|option| parse_int(option).and_then(|value| usize::try_from(value).ok()))
        .collect::<Option<_>>()?;
    let character_count = input.chars().count();
    let (start, length) = match numbers.as_slice() {
        [length] => (0, *length),
        [start, length] => (*start, *length),
        _ => return None,
    };
    if start > character_count {
        return None;
    }
    Some(input.chars().skip(start).take(length).collect())
}

/// Builds a regex from .NET pattern syntax; an invalid pattern cannot evaluate.
fn dotnet_regex(pattern: &str) -> Option<fancy_regex::Regex> {
    fancy_regex::RegexBuilder::new(pattern)
        .backtrack_limit(1_000_000)
        .build()
        .ok()
}

pub(super) fn replace(input: Option<&str>, options: &[String]) -> Option<String> {
    let input = input?;
    let pattern = options.first()?;
    let replacement = options.get(1).map_or("", String::as_str);
    let regex = dotnet_regex(pattern)?;
    let mut output = String::new();
    let mut last_end = 0;
    for captures in regex.captures_iter(input) {
        let captures = captures.ok()?;
        let whole = captures.get(0)?;
        output.push_str(&input[last_end..whole.start()]);
        expand_dotnet_replacement(replacement, &captures, &regex, input, &mut output);
        last_end = whole.end();
    }
    output.push_str(&input[last_end..]);
    Some(output)
}

/// .NET replacement syntax: `$1`, `${name}`, `$$`, `$&`, `` $` ``, `$'`, `$+`, `$_`. A
/// reference to a group that does not exist is copied literally.
fn expand_dotnet_replacement(
    replacement: &str,
    captures: &fancy_regex::Captures<'_>,
    regex: &fancy_regex::Regex,
    input: &str,
    output: &mut String,
) {
    let characters: Vec<char> = replacement.chars().collect();
    let mut position = 0;
    let whole = captures.get(0);
    while position < characters.len() {
        let character = characters[position];
        if character != '$' || position + 1 >= characters.len() {
            output.push(character);
            position += 1;
            continue;
        }
        let next = characters[position + 1];
        match next {
            '$' => {
                output.push('$');
                position += 2;
            }
            '&' => {
                output.push_str(whole.map_or("", |matched| matched.as_str()));
                position += 2;
            }
            '`' => {
                output.push_str(&input[..whole.map_or(0, |matched| matched.start())]);
                position += 2;
            }
            '\'' => {
                output.push_str(&input[whole.map_or(input.len(), |matched| matched.end())..]);
                position += 2;
            }
            '_' => {
                output.push_str(input);
                position += 2;
            }
            '+' => {
                let last_group = (1..captures.len())
                    .rev()
                    .find_map(|group| captures.get(group));
                output.push_str(last_group.map_or("", |matched| matched.as_str()));
                position += 2;
            }
            '{' => {
                let closing = characters[position + 2..]
                    .iter()
                    .position(|&candidate| candidate == '}');
                let name: Option<String> = closing.map(|offset| {
                    characters[position + 2..position + 2 + offset]
                        .iter()
                        .collect()
                });
                let group = name.as_deref().and_then(|name| {
                    if let Ok(number) = name.parse::<usize>() {
                        (number < captures.len())
                            .then(|| captures.get(number).map_or("", |matched| matched.as_str()))
                    } else {
                        regex
                            .capture_names()
                            .flatten()
                            .any(|known| known == name)
                            .then(|| captures.name(name).map_or("", |matched| matched.as_str()))
                    }
                });
                match (group, closing) {
                    (Some(text), Some(offset)) => {
                        output.push_str(text);
                        position += 3 + offset;
                    }
                    _ => {
                        output.push('$');
                        position += 1;
                    }
                }
            }
            digit if digit.is_ascii_digit() => {
                // .NET takes the longest run of digits that still names an existing group.
                let mut end = position + 1;
                while end < characters.len() && characters[end].is_ascii_digit() {
                    end += 1;
                }
                let mut matched_group = None;
                for candidate_end in (position + 2..=end).rev() {
                    let digits: String = characters[position + 1..candidate_end].iter().collect();
                    if let Ok(number) = digits.parse::<usize>()
                        && number < captures.len()
                    {
                        matched_group = Some((number, candidate_end));
                        break;
                    }
                }
                match matched_group {
                    Some((number, candidate_end)) => {
                        output
                            .push_str(captures.get(number).map_or("", |matched| matched.as_str()));
                        position = candidate_end;
                    }
                    None => {
                        output.push('$');
                        position += 1;
                    }
                }
            }
            _ => {
                output.push('$');
                position += 1;
            }
        }
    }
}

pub(super) fn regex_match(input: Option<&str>, options: &[String]) -> Option<String> {
    let input = input?;
    let [pattern] = options else { return None };
    let regex = dotnet_regex(pattern)?;
    regex
        .is_match(input)
        .ok()
        .map(|matched| matched.to_string())
}

pub(super) fn compare(
    input: Option<&str>,
    options: &[String],
    test: impl Fn(&str, &str) -> bool,
) -> Option<String> {
    let input = input?;
    let [option] = options else { return None };
    Some(test(input, option).to_string())
}

/// With a null input, `Append`/`Prepend` return just the options.
pub(super) fn append(input: Option<&str>, options: &[String]) -> Option<String> {
    if options.is_empty() {
        return None;
    }
    Some(format!("{}{}", input.unwrap_or_default(), options.concat()))
}

pub(super) fn prepend(input: Option<&str>, options: &[String]) -> Option<String> {
    if options.is_empty() {
        return None;
    }
    Some(format!("{}{}", options.concat(), input.unwrap_or_default()))
}

/// `Indent`, `Indent N`, `Indent /N`, `Indent I/N`, `Indent text`, `Indent first subsequent`.
pub(super) fn indent(input: Option<&str>, options: &[String]) -> Option<String> {
    let input = input?;
    if input.is_empty() {
        return Some(String::new());
    }
    let (initial, subsequent) = match options {
        [] => ("    ".to_string(), "    ".to_string()),
        [single] => single_indent_option(single),
        [initial, subsequent] => (initial.clone(), subsequent.clone()),
        _ => return None,
    };
    Some(format!(
        "{initial}{}",
        input.replace('\n', &format!("\n{subsequent}"))
    ))
}

/// Sizes must fit in a byte and have at most three digits; anything else is literal text.
fn single_indent_option(option: &str) -> (String, String) {
    let literal = (option.to_string(), option.to_string());
    let size = |digits: &str| -> Option<String> {
        if digits.is_empty()
            || digits.len() > 3
            || !digits.chars().all(|character| character.is_ascii_digit())
        {
            return None;
        }
        digits
            .parse::<u8>()
            .ok()
            .map(|width| " ".repeat(usize::from(width)))
    };
    match option.split_once('/') {
        None => size(option).map_or(literal, |spaces| (spaces.clone(), spaces)),
        Some(("", subsequent)) => {
            size(subsequent).map_or(literal, |spaces| (String::new(), spaces))
        }
        Some((initial, subsequent)) => match (size(initial), size(subsequent)) {
            (Some(initial), Some(subsequent)) => (initial, subsequent),
            _ => literal,
        },
    }
}
