//! The parsed form of a template: tokens, symbol paths, filter chains and blocks.
//!
//! This module owns the tree shape and how a tree is rendered back to text. Rendering matters
//! because Octostache echoes an unevaluable token by re-rendering it from the tree (not by copying
//! the source), so `#{Foo|Fn 6}` comes back as `#{Foo | Fn "6"}`. It does not parse or evaluate.

use std::fmt;
use std::ops::Range;

/// One piece of a template, with the byte range of the source it was parsed from.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) span: Range<usize>,
}

#[derive(Clone, Debug)]
pub(crate) enum TokenKind {
    /// Literal text, already un-escaped (`##{` has become `#{`).
    Text(String),
    /// `#{path | Filter ...}`.
    Substitution(ContentExpression),
    /// `#{if}`/`#{unless}`; `#{elseif}` chains and `#{unless}` are desugared into this.
    Conditional(Box<Conditional>),
    /// `#{each item in Collection}...#{/each}`.
    Repetition(Box<Repetition>),
    /// `#{calc ...}`.
    Calculation(CalculationExpression),
}

/// A path such as `Octopus.Action[Step A].Output.X`.
#[derive(Clone, Debug, Default)]
pub(crate) struct SymbolPath {
    pub(crate) steps: Vec<PathStep>,
}

#[derive(Clone, Debug)]
pub(crate) enum PathStep {
    /// `.Name` (or the first name of the path).
    Identifier(String),
    Indexer(Indexer),
}

#[derive(Clone, Debug)]
pub(crate) enum Indexer {
    /// `[text]`, `[]` (empty text) or `[*]`.
    Text(String),
    /// `[#{Symbol}]`: resolved at lookup time.
    Symbol(SymbolPath),
    /// A symbol indexer whose symbol resolved to a node without a value; it can never match.
    Unresolvable,
}

/// The content of a substitution or a condition operand.
#[derive(Clone, Debug)]
pub(crate) enum ContentExpression {
    Symbol(SymbolPath),
    FilterCall(Box<FilterCall>),
}

#[derive(Clone, Debug)]
pub(crate) struct FilterCall {
    pub(crate) argument: ContentExpression,
    pub(crate) filter_name: String,
    /// Each option is itself a token: literal options are `Text`, nested ones are blocks.
    pub(crate) options: Vec<Token>,
}

#[derive(Clone, Debug)]
pub(crate) struct Conditional {
    pub(crate) condition: Condition,
    pub(crate) truthy_branch: Vec<Token>,
    pub(crate) falsy_branch: Vec<Token>,
}

#[derive(Clone, Debug)]
pub(crate) struct Condition {
    pub(crate) left: ContentExpression,
    pub(crate) comparison: Option<Comparison>,
}

#[derive(Clone, Debug)]
pub(crate) struct Comparison {
    pub(crate) is_equality: bool,
    pub(crate) right: ComparisonOperand,
}

#[derive(Clone, Debug)]
pub(crate) enum ComparisonOperand {
    Literal(String),
    Expression(ContentExpression),
}

#[derive(Clone, Debug)]
pub(crate) struct Repetition {
    pub(crate) enumerator: String,
    pub(crate) collection: SymbolPath,
    pub(crate) body: Vec<Token>,
}

#[derive(Clone, Debug)]
pub(crate) enum CalculationExpression {
    Constant(f64),
    Variable(SymbolPath),
    Operation(
        Box<CalculationExpression>,
        CalculationOperator,
        Box<CalculationExpression>,
    ),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CalculationOperator {
    Add,
    Subtract,
    Multiply,
    Divide,
}

impl SymbolPath {
    /// Octostache compares paths step by step when it looks for a definition cycle; names and
    /// index texts compare case-insensitively like variable names do.
    pub(crate) fn same_steps_as(&self, other: &SymbolPath) -> bool {
        self.steps.len() == other.steps.len()
            && self.steps.iter().zip(&other.steps).all(|pair| match pair {
                (PathStep::Identifier(left), PathStep::Identifier(right)) => {
                    crate::binding::names_equal(left, right)
                }
                (
                    PathStep::Indexer(Indexer::Text(left)),
                    PathStep::Indexer(Indexer::Text(right)),
                ) => crate::binding::names_equal(left, right),
                (
                    PathStep::Indexer(Indexer::Symbol(left)),
                    PathStep::Indexer(Indexer::Symbol(right)),
                ) => left.same_steps_as(right),
                (
                    PathStep::Indexer(Indexer::Unresolvable),
                    PathStep::Indexer(Indexer::Unresolvable),
                ) => true,
                _ => false,
            })
    }
}

impl fmt::Display for SymbolPath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (step_index, step) in self.steps.iter().enumerate() {
            match step {
                PathStep::Identifier(name) if step_index == 0 => formatter.write_str(name)?,
                PathStep::Identifier(name) => write!(formatter, ".{name}")?,
                PathStep::Indexer(indexer) => write!(formatter, "{indexer}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Indexer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Indexer::Text(text) => write!(formatter, "[{text}]"),
            Indexer::Symbol(symbol) => write!(formatter, "[#{{{symbol}}}]"),
            Indexer::Unresolvable => formatter.write_str("[]"),
        }
    }
}

impl fmt::Display for ContentExpression {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContentExpression::Symbol(symbol) => write!(formatter, "{symbol}"),
            ContentExpression::FilterCall(call) => {
                write!(formatter, "{} | {}", call.argument, call.filter_name)?;
                for option in &call.options {
                    match &option.kind {
                        // Literal options are always quoted in the echo, whatever the source used.
                        TokenKind::Text(text) => write!(formatter, " \"{text}\"")?,
                        _ => write!(formatter, " {option}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Token {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            TokenKind::Text(text) => formatter.write_str(text),
            TokenKind::Substitution(expression) => write!(formatter, "#{{{expression}}}"),
            TokenKind::Conditional(conditional) => write!(formatter, "{conditional}"),
            TokenKind::Repetition(repetition) => {
                write!(
                    formatter,
                    "#{{each {} in {}}}",
                    repetition.enumerator, repetition.collection
                )?;
                write_tokens(formatter, &repetition.body)?;
                formatter.write_str("#{/each}")
            }
            TokenKind::Calculation(expression) => write!(formatter, "#{{{expression}}}"),
        }
    }
}

impl fmt::Display for Conditional {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "#{{if {}", self.condition.left)?;
        if let Some(comparison) = &self.condition.comparison {
            let operator = if comparison.is_equality { "==" } else { "!=" };
            match &comparison.right {
                ComparisonOperand::Literal(text) => write!(formatter, " {operator} \"{text}\" ")?,
                ComparisonOperand::Expression(expression) => {
                    write!(formatter, " {operator} {expression} ")?
                }
            }
        }
        formatter.write_str("}")?;
        write_tokens(formatter, &self.truthy_branch)?;
        if !self.falsy_branch.is_empty() {
            formatter.write_str("#{else}")?;
            write_tokens(formatter, &self.falsy_branch)?;
        }
        formatter.write_str("#{/if}")
    }
}

impl fmt::Display for CalculationExpression {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalculationExpression::Constant(value) => {
                formatter.write_str(&crate::filters::numbers::format_double_round_trip(*value))
            }
            CalculationExpression::Variable(symbol) => write!(formatter, "{symbol}"),
            // Octostache prints operations without parentheses, so `(B*2)-2` echoes as `B*2-2`.
            CalculationExpression::Operation(left, operator, right) => {
                let operator_text = match operator {
                    CalculationOperator::Add => "+",
                    CalculationOperator::Subtract => "-",
                    CalculationOperator::Multiply => "*",
                    CalculationOperator::Divide => "/",
                };
                write!(formatter, "{left}{operator_text}{right}")
            }
        }
    }
}

fn write_tokens(formatter: &mut fmt::Formatter<'_>, tokens: &[Token]) -> fmt::Result {
    for token in tokens {
        write!(formatter, "{token}")?;
    }
    Ok(())
}
