//! Structured configuration variable replacement for Cuttle, compatible with Calamari's
//! "Structured Configuration Variables" feature: JSON, YAML, XML and Java properties files.
//!
//! This crate owns the pure text-to-text transformation: given a file's text, its format and the
//! deployment's variables, it returns the rewritten text plus the names of the variables that were
//! applied and any warnings Calamari would have logged. It also owns format detection (which formats
//! to try, in which order, for a file name) so callers reproduce Calamari's "first format that
//! parses wins" rule.
//!
//! It deliberately does no IO, no async and no clock reads: finding files by glob, reading them with
//! their encoding and BOM, writing them back and logging are the caller's job. It also does not
//! evaluate templates itself: values come through [`StructuredVariables`], evaluated by the
//! implementation (Calamari's `variables.Get(name)`); [`EvaluatedVariables`] is the usual one,
//! evaluating with `cuttle-template`.
//!
//! The rules per format follow `shared/spec/variables.md` section D2 and the vectors in
//! `tests/data/structured/public.json`.

#![forbid(unsafe_code)]

mod evaluated;
mod json;
mod line_endings;
mod properties;
mod variables;
mod xml;
mod yaml;

use std::fmt;

pub use evaluated::EvaluatedVariables;
pub use variables::{StructuredVariables, is_octopus_reserved_variable_name};

/// One of the file formats the replacer understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StructuredFormat {
    Json,
    Yaml,
    Xml,
    Properties,
}

impl StructuredFormat {
    /// The name Calamari uses in its log lines ("JSON", "YAML", "XML", "Properties").
    pub fn display_name(self) -> &'static str {
        match self {
            StructuredFormat::Json => "JSON",
            StructuredFormat::Yaml => "YAML",
            StructuredFormat::Xml => "XML",
            StructuredFormat::Properties => "Properties",
        }
    }
}

impl fmt::Display for StructuredFormat {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.display_name())
    }
}

/// Limits that protect the replacer from hostile or accidental huge inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StructuredOptions {
    /// Inputs longer than this many bytes are refused with [`StructuredError::InputTooLarge`].
    pub max_input_bytes: usize,
    /// Objects, arrays, mappings, sequences or elements nested deeper than this are refused with
    /// [`StructuredError::NestingTooDeep`]. JSON is additionally capped at 127 by `serde_json`.
    pub max_nesting_depth: usize,
}

impl Default for StructuredOptions {
    fn default() -> Self {
        StructuredOptions {
            max_input_bytes: 64 * 1024 * 1024,
            max_nesting_depth: 100,
        }
    }
}

/// Something Calamari would have logged as a warning while replacing; the file is still written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructuredWarning {
    /// The variable being applied when the problem happened, when there was one.
    pub variable_name: Option<String>,
    pub message: String,
}

/// The result of a successful replacement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructuredOutput {
    /// The new file text. Calamari rewrites JSON, YAML and XML files even when nothing matched, so
    /// this can differ from the input even when `replaced_variable_names` is empty.
    pub text: String,
    /// Names of the variables that replaced something, each once, in the order first applied.
    pub replaced_variable_names: Vec<String>,
    pub warnings: Vec<StructuredWarning>,
}

/// Why a file could not be processed.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum StructuredError {
    /// The text is not valid in the requested format. When detecting the format, the caller moves
    /// on to the next candidate format on this error.
    #[error("the file could not be parsed as {format}: {message}")]
    Parse {
        format: StructuredFormat,
        message: String,
        /// 1-based line of the problem, when the parser reports one.
        line: Option<u64>,
        /// 1-based column of the problem, when the parser reports one.
        column: Option<u64>,
    },
    #[error("the file is {size_bytes} bytes, more than the limit of {limit_bytes} bytes")]
    InputTooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error("the {format} file nests deeper than the limit of {limit} levels")]
    NestingTooDeep {
        format: StructuredFormat,
        limit: usize,
    },
    /// The rewritten document could not be serialised (for YAML, the emitter refused the event
    /// stream). Seeing this is a bug in this crate, not in the input file.
    #[error("the {format} output could not be written: {message}")]
    Write {
        format: StructuredFormat,
        message: String,
    },
}

impl StructuredError {
    /// Whether the error means "this is not a file of that format", the error on which Calamari
    /// moves on to the next candidate format.
    pub fn is_parse_error(&self) -> bool {
        matches!(
            self,
            StructuredError::Parse { .. } | StructuredError::NestingTooDeep { .. }
        )
    }
}

/// Replaces variables in `input`, read as `format`.
///
/// Variable names address nodes as the spec describes: colon-separated paths for JSON and YAML
/// (`Logging:LogLevel:Default`, `Items:0:Name`, case-insensitive), XPath for XML (only names
/// containing `/` or `:`), exact logical keys for properties. Names matching
/// `^Octopus([^:]|$)` are never used for JSON, YAML and properties.
pub fn replace_structured<Variables>(
    format: StructuredFormat,
    input: &str,
    variables: &Variables,
    options: &StructuredOptions,
) -> Result<StructuredOutput, StructuredError>
where
    Variables: StructuredVariables + ?Sized,
{
    if input.len() > options.max_input_bytes {
        return Err(StructuredError::InputTooLarge {
            size_bytes: input.len(),
            limit_bytes: options.max_input_bytes,
        });
    }
    match format {
        StructuredFormat::Json => json::replace_json(input, variables, options),
        StructuredFormat::Yaml => yaml::replace_yaml(input, variables, options),
        StructuredFormat::Xml => xml::replace_xml(input, variables, options),
        StructuredFormat::Properties => properties::replace_properties(input, variables, options),
    }
}

/// The formats Calamari tries for a file, in order.
///
/// With `json_only` (the `Octopus.Action.StructuredConfigurationFallbackFlag` variable) only JSON
/// is tried. Otherwise a `.json` file is JSON only; `.yml`/`.yaml`, `.xml` and `.properties` files
/// are tried as JSON first (for backwards compatibility) and then as their own format; any other
/// file is tried as JSON, XML, YAML and properties, in that order. Extensions match
/// case-insensitively.
pub fn candidate_formats_for_file_name(file_name: &str, json_only: bool) -> Vec<StructuredFormat> {
    if json_only {
        return vec![StructuredFormat::Json];
    }
    let lower_case_name = file_name.to_lowercase();
    let guessed_format = if lower_case_name.ends_with(".json") {
        return vec![StructuredFormat::Json];
    } else if lower_case_name.ends_with(".yml") || lower_case_name.ends_with(".yaml") {
        Some(StructuredFormat::Yaml)
    } else if lower_case_name.ends_with(".xml") {
        Some(StructuredFormat::Xml)
    } else if lower_case_name.ends_with(".properties") {
        Some(StructuredFormat::Properties)
    } else {
        None
    };
    match guessed_format {
        Some(format) => vec![StructuredFormat::Json, format],
        None => vec![
            StructuredFormat::Json,
            StructuredFormat::Xml,
            StructuredFormat::Yaml,
            StructuredFormat::Properties,
        ],
    }
}

/// The outcome of [`replace_structured_detecting_format`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectedOutput {
    /// The first format that parsed.
    pub format: StructuredFormat,
    pub output: StructuredOutput,
    /// For each format tried before `format`, why it did not parse (Calamari logs these verbosely).
    pub rejected_formats: Vec<StructuredError>,
}

/// Tries the [`candidate_formats_for_file_name`] in order; the first format that parses wins.
///
/// When every candidate fails to parse, the last candidate's error is returned (Calamari fails the
/// step with that message). Errors that are not parse errors, such as an oversized input, are
/// returned at once.
pub fn replace_structured_detecting_format<Variables>(
    file_name: &str,
    json_only: bool,
    input: &str,
    variables: &Variables,
    options: &StructuredOptions,
) -> Result<DetectedOutput, StructuredError>
where
    Variables: StructuredVariables + ?Sized,
{
    let candidates = candidate_formats_for_file_name(file_name, json_only);
    let mut rejected_formats = Vec::new();
    let candidate_count = candidates.len();
    for (candidate_idx, format) in candidates.into_iter().enumerate() {
        match replace_structured(format, input, variables, options) {
            Ok(output) => {
                return Ok(DetectedOutput {
                    format,
                    output,
                    rejected_formats,
                });
            }
            Err(error) if error.is_parse_error() && candidate_idx + 1 < candidate_count => {
                rejected_formats.push(error);
            }
            Err(error) => return Err(error),
        }
    }
    // Unreachable in practice because there is always at least one candidate, but an error is a
    // better answer than a panic.
    Err(StructuredError::Parse {
        format: StructuredFormat::Json,
        message: "no format was tried".to_owned(),
        line: None,
        column: None,
    })
}

/// Collects applied variable names (once each, in order) and warnings while a replacer runs.
#[derive(Default)]
pub(crate) struct ReplacementLog {
    replaced_variable_names: Vec<String>,
    warnings: Vec<StructuredWarning>,
}

impl ReplacementLog {
    pub(crate) fn record_replacement(&mut self, variable_name: &str) {
        if !self
            .replaced_variable_names
            .iter()
            .any(|existing| existing == variable_name)
        {
            self.replaced_variable_names.push(variable_name.to_owned());
        }
    }

    pub(crate) fn warn(&mut self, variable_name: Option<&str>, message: String) {
        self.warnings.push(StructuredWarning {
            variable_name: variable_name.map(str::to_owned),
            message,
        });
    }

    pub(crate) fn finish(self, text: String) -> StructuredOutput {
        StructuredOutput {
            text,
            replaced_variable_names: self.replaced_variable_names,
            warnings: self.warnings,
        }
    }
}
