//! Cuttle's variable template language: an Octostache-compatible parser and evaluator.
//!
//! Templates look like `Server=#{Octopus.Machine.Name | ToLower};` and support substitution
//! with filters, `#{if}`/`#{elseif}`/`#{else}`/`#{unless}`, `#{each}` loops, indexers
//! (`#{Octopus.Action[Step A].Output.X}`, `[#{Var}]`, `[*]`), JSON-valued variables, `#{calc}`,
//! `##{` escaping and recursive evaluation of variable values with cycle detection.
//!
//! **Architecture Invariant:** evaluation never fails and never panics. [`evaluate`] always
//! returns an [`Evaluation`]: output plus [`Diagnostic`]s that carry byte spans. Parse problems,
//! undefined variables, definition cycles and filter failures are data, not `Err`.
//!
//! **Architecture Invariant:** the crate is pure. It does no IO, never reads the clock (the
//! `NowDate` filters use [`EvaluationOptions::now_utc`]) and uses no randomness.
//!
//! What it deliberately does not do: variable scoping and precedence, sensitive values, file
//! substitution and structured configuration replacement. Those belong to the crates that
//! decide *which* variables apply; this one only evaluates text against a given set.
//!
//! Culture-dependent behaviour (number and date formatting, month names, currency) follows
//! .NET's en-US culture, which is what Octopus servers normally run with.

#![forbid(unsafe_code)]

mod binding;
mod evaluator;
mod filters;
mod json;
mod parser;
mod syntax;
mod variables;

use std::ops::Range;

pub use chrono;
pub use variables::{VariableDictionary, VariableLookup};

/// How to evaluate a template.
#[derive(Clone, Debug)]
pub struct EvaluationOptions {
    /// `true` (Octostache's default): a template that does not parse is returned unchanged
    /// with a [`DiagnosticKind::ParseError`]. `false` (Calamari's file substitution): text
    /// that fails to parse is copied through and parsing resumes after it.
    pub halt_on_error: bool,
    /// The current instant for `NowDate`/`NowDateUtc`. `None` makes those filters
    /// unevaluable (the token is echoed), since this crate never reads the clock itself.
    pub now_utc: Option<chrono::DateTime<chrono::Utc>>,
    /// The server's local UTC offset: what `NowDate` reports and what zone-less dates are
    /// assumed to be in when an offset is needed (`Format ... zz`).
    pub local_offset: chrono::FixedOffset,
    /// Maximum nesting of blocks, substitutions and recursive variable evaluation. Deeper
    /// input is rejected with a diagnostic instead of exhausting the stack.
    pub max_nesting_depth: usize,
}

impl Default for EvaluationOptions {
    fn default() -> Self {
        EvaluationOptions {
            halt_on_error: true,
            now_utc: None,
            local_offset: chrono::FixedOffset::east_opt(0).expect("a zero offset is always valid"),
            max_nesting_depth: 64,
        }
    }
}

/// The result of evaluating a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// The evaluated text. `None` is Octostache's null result: the template used the `null`
    /// filter (`#{ | null}`), or evaluation hit a hard error (a definition cycle or a filter
    /// that throws upstream), which is then among the diagnostics.
    pub output: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Evaluation {
    /// True when any diagnostic is an error (anything but an echoed missing token).
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|diagnostic| diagnostic.kind.is_error())
    }
}

/// Something worth telling the caller about an evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub kind: DiagnosticKind,
    pub message: String,
    /// Byte range in the evaluated template: the failing position for parse errors, the
    /// top-level token being evaluated for everything else.
    pub span: Range<usize>,
}

/// What kind of problem a [`Diagnostic`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// The template (or part of it, when not halting on errors) does not parse.
    ParseError,
    /// A token could not be evaluated (undefined variable, unknown filter, unusable filter
    /// options) and was echoed back into the output.
    MissingToken,
    /// A variable's value refers back to itself; the message names the chain (`A -> B -> A`).
    RecursiveDefinition,
    /// A filter failed hard (invalid base64 for `FromBase64`, an unparsable version).
    FilterError,
    /// Nesting went deeper than [`EvaluationOptions::max_nesting_depth`].
    NestingLimit,
}

impl DiagnosticKind {
    /// Everything except [`DiagnosticKind::MissingToken`] is an error; a missing token is
    /// echoed and Octopus only fails a deployment on it when asked to.
    pub fn is_error(self) -> bool {
        !matches!(self, DiagnosticKind::MissingToken)
    }
}

/// Evaluates `template` against `variables`.
pub fn evaluate(
    template: &str,
    variables: &dyn VariableLookup,
    options: &EvaluationOptions,
) -> Evaluation {
    evaluator::evaluate_template(template, variables, options)
}

/// Octostache truthiness: falsy is `""`, exactly `"0"`, or `no`/`false` (case-insensitive,
/// after trimming). Everything else, including `" 0"`, is truthy.
pub fn is_truthy(value: &str) -> bool {
    let trimmed = value.trim();
    value != "0"
        && !value.is_empty()
        && !trimmed.eq_ignore_ascii_case("no")
        && !trimmed.eq_ignore_ascii_case("false")
}
