//! YAML replacement, reproducing Calamari's `YamlFormatVariableReplacer`: an event-stream rewrite.
//!
//! The input is parsed into libyaml events (via `libyaml-safer`, a safe port of the libyaml that
//! YamlDotNet's parser and emitter were ported from). Each scalar value, mapping and sequence gets
//! a colon-joined path from the mapping keys and sequence indexes above it (the
//! `YamlEventStreamClassifier` rules, quirks included). A scalar whose path names a variable keeps
//! its anchor, tag and quoting style and takes the new value; a mapping or sequence is replaced
//! whole by the variable's value parsed as a YAML fragment, or by a double-quoted string when the
//! value is not a fragment. The events are then emitted again with the input's most common indent
//! and line ending, which normalises layout but keeps every scalar's style, tags, anchors, flow
//! versus block collections and directives.
//!
//! Not reproduced: comments. YamlDotNet's scanner can report them and Calamari re-emits them;
//! libyaml drops them, so a rewritten file loses its comments.

use libyaml_safer::{
    Break, Emitter, Event, EventData, MappingStyle, Parser, ScalarStyle, SequenceStyle,
};

use crate::line_endings::{LineEnding, most_common_line_ending};
use crate::variables::{PathVariableTable, StructuredVariables};
use crate::{
    ReplacementLog, StructuredError, StructuredFormat, StructuredOptions, StructuredOutput,
};

const NULL_TAG: &str = "tag:yaml.org,2002:null";

pub(crate) fn replace_yaml<Variables>(
    input: &str,
    variables: &Variables,
    options: &StructuredOptions,
) -> Result<StructuredOutput, StructuredError>
where
    Variables: StructuredVariables + ?Sized,
{
    let input_events = parse_events(input, options.max_nesting_depth)?;
    let indent = most_common_indent(&input_events);
    let line_ending = most_common_line_ending(input);
    let table = PathVariableTable::new(variables);
    let mut log = ReplacementLog::default();

    let mut classifier = PathClassifier::default();
    let mut output_events: Vec<Event> = Vec::with_capacity(input_events.len());
    // While a mapping or sequence is being replaced: its path, whether it is a mapping, and the
    // pieces of the start event needed for the string fallback.
    let mut structure_being_replaced: Option<StructureReplacement> = None;
    let mut tag_directives_in_order: Vec<(String, String)> = Vec::new();

    for event in input_events {
        if let EventData::DocumentStart { tag_directives, .. } = &event.data {
            for directive in tag_directives {
                tag_directives_in_order.push((directive.handle.clone(), directive.prefix.clone()));
            }
        }
        let classified = classifier.process(&event.data);

        if let Some(replacement) = &structure_being_replaced {
            // Replacing: drop everything until the end event at the same path.
            let ends_it = matches!(
                (&classified, replacement.is_mapping),
                (Classified::MappingEnd(path), true) | (Classified::SequenceEnd(path), false)
                    if *path == replacement.path
            );
            if ends_it {
                output_events.extend(fragment_events(
                    replacement.value.as_deref(),
                    replacement.anchor.as_deref(),
                    replacement.tag.as_deref(),
                ));
                structure_being_replaced = None;
            }
            continue;
        }

        match classified {
            Classified::ScalarValue(path) => {
                if let Some(variable_name) = table.variable_for_path(&path) {
                    let value = variables.evaluated_value(variable_name);
                    log.record_replacement(variable_name);
                    output_events.push(with_replaced_scalar_value(event, value));
                    continue;
                }
            }
            Classified::MappingStart(path) | Classified::SequenceStart(path) => {
                if let Some(variable_name) = table.variable_for_path(&path) {
                    let value = variables.evaluated_value(variable_name);
                    log.record_replacement(variable_name);
                    let (anchor, tag, is_mapping) = match &event.data {
                        EventData::MappingStart { anchor, tag, .. } => {
                            (anchor.clone(), tag.clone(), true)
                        }
                        EventData::SequenceStart { anchor, tag, .. } => {
                            (anchor.clone(), tag.clone(), false)
                        }
                        _ => (None, None, false),
                    };
                    structure_being_replaced = Some(StructureReplacement {
                        path,
                        is_mapping,
                        value,
                        anchor,
                        tag,
                    });
                    continue;
                }
            }
            _ => {}
        }
        output_events.push(event);
    }

    let text = emit_events(output_events, indent, line_ending)?;
    Ok(log.finish(restore_tag_directive_prefixes(
        text,
        &tag_directives_in_order,
        line_ending,
    )))
}

struct StructureReplacement {
    path: String,
    is_mapping: bool,
    value: Option<String>,
    anchor: Option<String>,
    tag: Option<String>,
}

fn yaml_parse_error(error: &libyaml_safer::Error) -> StructuredError {
    let mark = error.problem_mark();
    StructuredError::Parse {
        format: StructuredFormat::Yaml,
        message: error.to_string(),
        line: mark.map(|mark| mark.line + 1),
        column: mark.map(|mark| mark.column + 1),
    }
}

/// Runs `work` and turns a panic inside `libyaml-safer` into `on_panic`.
///
/// libyaml-safer 0.3 still has `panic!` paths for some valid or invalid inputs (for instance a tag
/// followed directly by `,` in a flow collection, `[!x,]`). A hostile file must not take the
/// server down, so those panics become ordinary errors here. Nothing is reused after a panic: the
/// parser or emitter that panicked is dropped with the closure.
fn without_library_panics<Output>(
    work: impl FnOnce() -> Output,
    on_panic: impl FnOnce() -> Output,
) -> Output {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|_| on_panic())
}

/// Parses the whole stream, refusing collections nested deeper than the limit.
fn parse_events(input: &str, max_nesting_depth: usize) -> Result<Vec<Event>, StructuredError> {
    without_library_panics(
        || parse_events_unguarded(input, max_nesting_depth),
        || {
            Err(StructuredError::Parse {
                format: StructuredFormat::Yaml,
                message: "the YAML parser could not read this input".to_owned(),
                line: None,
                column: None,
            })
        },
    )
}

fn parse_events_unguarded(
    input: &str,
    max_nesting_depth: usize,
) -> Result<Vec<Event>, StructuredError> {
    let mut parser = Parser::new();
    parser.set_input(input.as_bytes());
    let mut events = Vec::new();
    let mut depth = 0usize;
    for event in parser {
        let event = event.map_err(|error| yaml_parse_error(&error))?;
        match event.data {
            EventData::MappingStart { .. } | EventData::SequenceStart { .. } => {
                depth += 1;
                if depth > max_nesting_depth {
                    return Err(StructuredError::NestingTooDeep {
                        format: StructuredFormat::Yaml,
                        limit: max_nesting_depth,
                    });
                }
            }
            EventData::MappingEnd | EventData::SequenceEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
        events.push(event);
    }
    Ok(events)
}

/// Parses a variable value as a YAML fragment to stand in for a whole mapping or sequence.
///
/// Like Calamari, a value that does not parse, or holds no node, becomes a double-quoted string
/// carrying the replaced structure's anchor and tag; a null value becomes plain `null`. A value
/// holding several documents is also treated as a string: splicing several nodes where one stood
/// would make an invalid stream (YamlDotNet's emitter throws on it).
fn fragment_events(value: Option<&str>, anchor: Option<&str>, tag: Option<&str>) -> Vec<Event> {
    let string_fallback = || {
        vec![Event::scalar(
            anchor,
            tag,
            value.unwrap_or("null"),
            true,
            true,
            ScalarStyle::DoubleQuoted,
        )]
    };
    without_library_panics(
        || fragment_events_unguarded(value, anchor, tag),
        string_fallback,
    )
}

fn fragment_events_unguarded(
    value: Option<&str>,
    anchor: Option<&str>,
    tag: Option<&str>,
) -> Vec<Event> {
    let Some(text) = value else {
        return vec![Event::scalar(
            anchor,
            None,
            "null",
            true,
            true,
            ScalarStyle::Plain,
        )];
    };
    let string_fallback = || {
        vec![Event::scalar(
            anchor,
            tag,
            text,
            true,
            true,
            ScalarStyle::DoubleQuoted,
        )]
    };
    let mut parser = Parser::new();
    parser.set_input(text.as_bytes());
    let mut events = Vec::new();
    let mut document_count = 0;
    for event in parser {
        let Ok(event) = event else {
            return string_fallback();
        };
        match event.data {
            EventData::StreamStart { .. }
            | EventData::StreamEnd
            | EventData::DocumentEnd { .. } => {}
            EventData::DocumentStart { .. } => document_count += 1,
            _ => events.push(event),
        }
    }
    if events.is_empty() || document_count > 1 {
        return string_fallback();
    }
    events
}

/// A scalar with a new value and its old anchor, tag and style (`ParsingEventExtensions.ReplaceValue`);
/// a null value becomes a plain `null`.
fn with_replaced_scalar_value(mut event: Event, new_value: Option<String>) -> Event {
    if let EventData::Scalar {
        tag,
        value,
        plain_implicit,
        quoted_implicit,
        style,
        ..
    } = &mut event.data
    {
        match new_value {
            Some(new_value) => *value = new_value,
            None => {
                *tag = None;
                *value = "null".to_owned();
                *style = ScalarStyle::Plain;
                *plain_implicit = true;
                *quoted_implicit = true;
            }
        }
    }
    event
}

/// What a parsing event is, for path purposes (the `YamlEventStreamClassifier`).
#[derive(Debug, PartialEq)]
enum Classified {
    ScalarValue(String),
    MappingStart(String),
    MappingEnd(String),
    SequenceStart(String),
    SequenceEnd(String),
    /// Keys, aliases, stream and document events.
    Other,
}

struct PathLevel {
    is_sequence: bool,
    mapping_key: Option<String>,
    /// -1 until the first item, as in Calamari.
    sequence_index: i64,
}

/// Tracks the path of the current node through the event stream.
#[derive(Default)]
struct PathClassifier {
    levels: Vec<PathLevel>,
}

impl PathClassifier {
    fn path(&self) -> String {
        let mut segments: Vec<String> = Vec::with_capacity(self.levels.len());
        for level in &self.levels {
            if let Some(key) = &level.mapping_key {
                segments.push(key.clone());
            } else if level.is_sequence && level.sequence_index != -1 {
                segments.push(level.sequence_index.to_string());
            }
        }
        segments.join(":")
    }

    fn top_expects_mapping_key(&self) -> bool {
        self.levels
            .last()
            .is_some_and(|level| !level.is_sequence && level.mapping_key.is_none())
    }

    fn end_top_mapping_key(&mut self) {
        if let Some(level) = self.levels.last_mut() {
            level.mapping_key = None;
        }
    }

    fn process(&mut self, event: &EventData) -> Classified {
        // Aliases are deliberately not counted as sequence items and do not end a mapping value,
        // exactly as in Calamari: an alias shifts later indexes and keys in its collection.
        if let Some(level) = self.levels.last_mut() {
            let is_item = matches!(
                event,
                EventData::MappingStart { .. }
                    | EventData::SequenceStart { .. }
                    | EventData::Scalar { .. }
            );
            if level.is_sequence && is_item {
                level.sequence_index += 1;
            }
        }
        match event {
            EventData::MappingStart { .. } | EventData::SequenceStart { .. } => {
                let path = self.path();
                let is_sequence = matches!(event, EventData::SequenceStart { .. });
                self.levels.push(PathLevel {
                    is_sequence,
                    mapping_key: None,
                    sequence_index: -1,
                });
                if is_sequence {
                    Classified::SequenceStart(path)
                } else {
                    Classified::MappingStart(path)
                }
            }
            EventData::MappingEnd | EventData::SequenceEnd => {
                self.levels.pop();
                let path = self.path();
                self.end_top_mapping_key();
                if matches!(event, EventData::MappingEnd) {
                    Classified::MappingEnd(path)
                } else {
                    Classified::SequenceEnd(path)
                }
            }
            EventData::Scalar { value, .. } => {
                if self.top_expects_mapping_key() {
                    if let Some(level) = self.levels.last_mut() {
                        level.mapping_key = Some(value.clone());
                    }
                    Classified::Other
                } else {
                    let path = self.path();
                    self.end_top_mapping_key();
                    Classified::ScalarValue(path)
                }
            }
            _ => Classified::Other,
        }
    }
}

/// The most common step in start column between a block collection and the block collection it
/// nests in (Calamari's `YamlIndentDetector`); only steps from 2 to 9 count, and 2 is the default.
fn most_common_indent(events: &[Event]) -> i32 {
    let mut indent_counts: Vec<(i64, usize)> = Vec::new();
    let mut last_nesting_change_column: i64 = 0;
    for event in events {
        let column = event.start_mark.column as i64;
        let is_block_collection_start = match &event.data {
            EventData::MappingStart { style, .. } => *style != MappingStyle::Flow,
            EventData::SequenceStart { style, .. } => *style != SequenceStyle::Flow,
            _ => false,
        };
        let increases_nesting = matches!(
            event.data,
            EventData::MappingStart { .. }
                | EventData::SequenceStart { .. }
                | EventData::StreamStart { .. }
                | EventData::DocumentStart { .. }
        );
        if is_block_collection_start {
            let step = column - last_nesting_change_column;
            if (2..=9).contains(&step) {
                match indent_counts.iter_mut().find(|(indent, _)| *indent == step) {
                    Some((_, count)) => *count += 1,
                    None => indent_counts.push((step, 1)),
                }
            }
            last_nesting_change_column = column;
        }
        if !increases_nesting && column < last_nesting_change_column {
            last_nesting_change_column = column;
        }
    }
    // The first indent seen wins a tie, as LINQ's stable OrderByDescending does.
    let mut best: Option<(i64, usize)> = None;
    for (indent, count) in indent_counts {
        if best.is_none_or(|(_, best_count)| count > best_count) {
            best = Some((indent, count));
        }
    }
    best.map_or(2, |(indent, _)| indent as i32)
}

/// Adjusts what YamlDotNet's emitter does differently from libyaml's before emitting.
fn adjust_for_yamldotnet(event: &mut Event) {
    if let EventData::Scalar {
        tag,
        value,
        plain_implicit,
        quoted_implicit,
        style,
        ..
    } = &mut event.data
    {
        // YamlDotNet never writes an empty plain scalar unless it is tagged null: `key: ''`.
        if value.is_empty()
            && matches!(style, ScalarStyle::Plain | ScalarStyle::Any)
            && tag.as_deref() != Some(NULL_TAG)
        {
            *style = ScalarStyle::SingleQuoted;
        }
        // An untagged scalar that must be quoted is written without libyaml's `!` marker.
        if tag.is_none() {
            *plain_implicit = true;
            *quoted_implicit = true;
        }
    }
}

fn emit_events(
    events: Vec<Event>,
    indent: i32,
    line_ending: LineEnding,
) -> Result<String, StructuredError> {
    without_library_panics(
        || emit_events_unguarded(events, indent, line_ending),
        || {
            Err(StructuredError::Write {
                format: StructuredFormat::Yaml,
                message: "the YAML emitter failed".to_owned(),
            })
        },
    )
}

fn emit_events_unguarded(
    mut events: Vec<Event>,
    indent: i32,
    line_ending: LineEnding,
) -> Result<String, StructuredError> {
    let mut output: Vec<u8> = Vec::new();
    {
        let mut emitter = Emitter::new();
        emitter.set_output(&mut output);
        emitter.set_indent(indent);
        // YamlDotNet's emitter is built with an unlimited line width, so long scalars never fold.
        emitter.set_width(-1);
        emitter.set_unicode(true);
        emitter.set_break(match line_ending {
            LineEnding::Dos => Break::CrLn,
            LineEnding::Unix => Break::Ln,
        });
        for mut event in events.drain(..) {
            adjust_for_yamldotnet(&mut event);
            emitter
                .emit(event)
                .map_err(|error| StructuredError::Write {
                    format: StructuredFormat::Yaml,
                    message: error.to_string(),
                })?;
        }
        emitter.flush().map_err(|error| StructuredError::Write {
            format: StructuredFormat::Yaml,
            message: error.to_string(),
        })?;
    }
    String::from_utf8(output).map_err(|error| StructuredError::Write {
        format: StructuredFormat::Yaml,
        message: error.to_string(),
    })
}

/// libyaml percent-escapes `!` inside `%TAG` prefixes (`%TAG ! %21`); YamlDotNet writes the prefix
/// as given. Rewrites each emitted `%TAG` line, in order, with the directive as parsed.
fn restore_tag_directive_prefixes(
    text: String,
    tag_directives_in_order: &[(String, String)],
    line_ending: LineEnding,
) -> String {
    if tag_directives_in_order.is_empty() {
        return text;
    }
    let newline = line_ending.as_str();
    let mut directives = tag_directives_in_order.iter();
    let mut next_directive = directives.next();
    let mut rewritten = String::with_capacity(text.len());
    for (line_idx, line) in text.split(newline).enumerate() {
        if line_idx > 0 {
            rewritten.push_str(newline);
        }
        match next_directive {
            Some((handle, prefix)) if line.starts_with(&format!("%TAG {handle} ")) => {
                rewritten.push_str(&format!("%TAG {handle} {prefix}"));
                next_directive = directives.next();
            }
            _ => rewritten.push_str(line),
        }
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(input: &str) -> Vec<Classified> {
        let events = parse_events(input, 100).expect("valid YAML");
        let mut classifier = PathClassifier::default();
        events
            .iter()
            .map(|event| classifier.process(&event.data))
            .filter(|classified| *classified != Classified::Other)
            .collect()
    }

    #[test]
    fn paths_join_keys_and_indexes() {
        assert_eq!(
            paths("a:\n  b: [x, {c: d}]\n"),
            vec![
                Classified::MappingStart(String::new()),
                Classified::MappingStart("a".to_owned()),
                Classified::SequenceStart("a:b".to_owned()),
                Classified::ScalarValue("a:b:0".to_owned()),
                Classified::MappingStart("a:b:1".to_owned()),
                Classified::ScalarValue("a:b:1:c".to_owned()),
                Classified::MappingEnd("a:b:1".to_owned()),
                Classified::SequenceEnd("a:b".to_owned()),
                Classified::MappingEnd("a".to_owned()),
                Classified::MappingEnd(String::new()),
            ]
        );
    }

    #[test]
    fn indent_is_the_most_common_step() {
        let events =
            parse_events("a:\n    b:\n        c: 1\nd:\n  e: 2\n", 100).expect("valid YAML");
        assert_eq!(most_common_indent(&events), 4);
        let events = parse_events("plain: scalar\n", 100).expect("valid YAML");
        assert_eq!(most_common_indent(&events), 2);
    }
}
