//! Escaping filters for the formats templates get substituted into: HTML, XML, JSON, YAML,
//! Java properties, URIs, plus Markdown rendering.

fn escape_with(
    input: Option<&str>,
    options: &[String],
    escape: impl Fn(char, usize, &mut String),
) -> Option<String> {
    let input = input?;
    if !options.is_empty() {
        return None;
    }
    let mut output = String::with_capacity(input.len());
    for (character_index, character) in input.chars().enumerate() {
        escape(character, character_index, &mut output);
    }
    Some(output)
}

pub(super) fn html_escape(input: Option<&str>, options: &[String]) -> Option<String> {
    escape_with(input, options, |character, _, output| match character {
        '/' => output.push_str("&#x2F;"),
        other => push_xml_escaped(other, output),
    })
}

pub(super) fn xml_escape(input: Option<&str>, options: &[String]) -> Option<String> {
    escape_with(input, options, |character, _, output| {
        push_xml_escaped(character, output)
    })
}

fn push_xml_escaped(character: char, output: &mut String) {
    match character {
        '&' => output.push_str("&amp;"),
        '<' => output.push_str("&lt;"),
        '>' => output.push_str("&gt;"),
        '"' => output.push_str("&quot;"),
        '\'' => output.push_str("&apos;"),
        other => output.push(other),
    }
}

/// Only quotes, backslashes and CR/LF/TAB are escaped, as upstream; no `\uXXXX`.
pub(super) fn json_escape(input: Option<&str>, options: &[String]) -> Option<String> {
    escape_with(input, options, |character, _, output| match character {
        '"' => output.push_str("\\\""),
        '\\' => output.push_str("\\\\"),
        '\r' => output.push_str("\\r"),
        '\n' => output.push_str("\\n"),
        '\t' => output.push_str("\\t"),
        other => output.push(other),
    })
}

/// `'` doubles; each run of line breaks gets one extra break in front of it, because a single
/// line break inside a single-quoted YAML scalar folds into a space.
pub(super) fn yaml_single_quote_escape(input: Option<&str>, options: &[String]) -> Option<String> {
    let input = input?;
    if !options.is_empty() {
        return None;
    }
    let mut output = String::with_capacity(input.len());
    let mut in_line_break_run = false;
    for character in input.chars() {
        let is_line_break = matches!(character, '\r' | '\n');
        if is_line_break && !in_line_break_run {
            output.push_str(if character == '\r' { "\r\n" } else { "\n" });
        }
        in_line_break_run = is_line_break;
        if character == '\'' {
            output.push_str("''");
        } else {
            output.push(character);
        }
    }
    Some(output)
}

fn push_utf16_escapes(character: char, output: &mut String) {
    let mut units = [0u16; 2];
    for unit in character.encode_utf16(&mut units) {
        output.push_str(&format!("\\u{unit:04x}"));
    }
}

pub(super) fn yaml_double_quote_escape(input: Option<&str>, options: &[String]) -> Option<String> {
    escape_with(input, options, |character, _, output| match character {
        '\r' => output.push_str("\\r"),
        '\n' => output.push_str("\\n"),
        '\t' => output.push_str("\\t"),
        '\\' => output.push_str("\\\\"),
        '"' => output.push_str("\\\""),
        printable if (' '..='~').contains(&printable) => output.push(printable),
        other => push_utf16_escapes(other, output),
    })
}

fn push_properties_escaped(character: char, output: &mut String) {
    match character {
        '\\' => output.push_str("\\\\"),
        '\r' => output.push_str("\\r"),
        '\n' => output.push_str("\\n"),
        '\t' => output.push_str("\\t"),
        // Characters up to U+00FE pass through; Java reads properties files as Latin-1.
        wide if u32::from(wide) > 0xFE => push_utf16_escapes(wide, output),
        other => output.push(other),
    }
}

pub(super) fn properties_key_escape(input: Option<&str>, options: &[String]) -> Option<String> {
    escape_with(input, options, |character, _, output| match character {
        ' ' => output.push_str("\\ "),
        ':' => output.push_str("\\:"),
        '=' => output.push_str("\\="),
        other => push_properties_escaped(other, output),
    })
}

/// Only a leading space needs escaping in a value; `:` and `=` are fine there.
pub(super) fn properties_value_escape(input: Option<&str>, options: &[String]) -> Option<String> {
    escape_with(
        input,
        options,
        |character, character_index, output| match character {
            ' ' if character_index == 0 => output.push_str("\\ "),
            other => push_properties_escaped(other, output),
        },
    )
}

fn percent_encode(input: &str, keep: impl Fn(char) -> bool) -> String {
    let mut output = String::with_capacity(input.len());
    for character in input.chars() {
        if keep(character) {
            output.push(character);
        } else {
            let mut buffer = [0u8; 4];
            for byte in character.encode_utf8(&mut buffer).bytes() {
                output.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    output
}

fn is_uri_unreserved(character: char) -> bool {
    character.is_ascii_alphanumeric() || matches!(character, '-' | '.' | '_' | '~')
}

/// .NET `Uri.EscapeUriString`: reserved URI characters are kept.
pub(super) fn uri_escape(input: Option<&str>, options: &[String]) -> Option<String> {
    let input = input?;
    if !options.is_empty() {
        return None;
    }
    Some(percent_encode(input, |character| {
        is_uri_unreserved(character) || ":/?#[]@!$&'()*+,;=".contains(character)
    }))
}

/// .NET `Uri.EscapeDataString`: everything but unreserved characters.
pub(super) fn uri_data_escape(input: Option<&str>, options: &[String]) -> Option<String> {
    let input = input?;
    if !options.is_empty() {
        return None;
    }
    Some(percent_encode(input, is_uri_unreserved))
}

/// Markdig with pipe tables, emphasis extras and autolinks, on the trimmed input, plus a
/// trailing newline as upstream appends one.
pub(super) fn markdown_to_html(input: Option<&str>, options: &[String]) -> Option<String> {
    let input = input?;
    if !options.is_empty() {
        return None;
    }
    let mut markdown_options = comrak::Options::default();
    markdown_options.extension.table = true;
    markdown_options.extension.strikethrough = true;
    markdown_options.extension.superscript = true;
    // Markdig's emphasis extras read `~x~` as subscript and `~~x~~` as strikethrough.
    markdown_options.extension.subscript = true;
    markdown_options.extension.autolink = true;
    let html = comrak::markdown_to_html(input.trim(), &markdown_options);
    Some(format!("{html}\n"))
}
