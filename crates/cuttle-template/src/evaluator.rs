//! Evaluation: walks the parsed template against the variable tree and produces text.
//!
//! This owns Octostache's lookup semantics (spec A1, A3-A11): scopes for loops and for lazily
//! evaluated values, the step-by-step walk with its JSON fallback and retry in the parent
//! scope, recursive evaluation of values, cycle detection, echoing of what cannot be evaluated,
//! conditionals, loops and `calc`. Filters themselves live in [`crate::filters`].
//!
//! Hard errors (a definition cycle, a filter that throws upstream, the nesting limit) travel
//! as [`Fatal`] through `Result`s and end up as one diagnostic with a null output; nothing here
//! panics.

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::rc::Rc;

use crate::binding::Binding;
use crate::filters::{self, FilterContext};
use crate::json;
use crate::parser::{self, ParseFailure};
use crate::syntax::{
    CalculationExpression, CalculationOperator, ComparisonOperand, Conditional, ContentExpression,
    Indexer, PathStep, Repetition, SymbolPath, Token, TokenKind,
};
use crate::variables::VariableLookup;
use crate::{Diagnostic, DiagnosticKind, Evaluation, EvaluationOptions};

pub(crate) fn evaluate_template(
    template: &str,
    variables: &dyn VariableLookup,
    options: &EvaluationOptions,
) -> Evaluation {
    let max_nesting = options.max_nesting_depth.max(1);
    let mut diagnostics = Vec::new();
    let parsed = if options.halt_on_error {
        parser::parse_template(template, max_nesting).map(|tokens| (tokens, Vec::new()))
    } else {
        parser::parse_template_continuing(template, max_nesting)
    };
    let tokens = match parsed {
        Ok((tokens, recovered_failures)) => {
            diagnostics.extend(
                recovered_failures
                    .into_iter()
                    .map(|failure| parse_diagnostic(template, failure)),
            );
            tokens
        }
        // As Octostache does: a template that does not parse comes back unchanged.
        Err(failure) => {
            return Evaluation {
                output: Some(template.to_string()),
                diagnostics: vec![parse_diagnostic(template, failure)],
            };
        }
    };

    let evaluator = Evaluator {
        max_nesting,
        depth: Cell::new(0),
        filter_context: FilterContext {
            now_utc: options.now_utc,
            local_offset: options.local_offset,
        },
    };
    let root = Scope {
        binding: Rc::new(build_variable_tree(variables, max_nesting)),
        parent: None,
        resolving: RefCell::default(),
    };
    let mut output = String::new();
    let mut missing_tokens: Vec<(String, Range<usize>)> = Vec::new();
    let mut null_filter_used = false;
    for token in &tokens {
        let mut collector = Collector::default();
        if let Err(fatal) = evaluator.evaluate_token(token, &root, &mut output, &mut collector) {
            diagnostics.push(Diagnostic {
                kind: fatal.kind,
                message: fatal.message,
                span: token.span.clone(),
            });
            return Evaluation {
                output: None,
                diagnostics,
            };
        }
        null_filter_used |= collector.null_filter_used;
        for missing in collector.missing_tokens {
            if !missing_tokens
                .iter()
                .any(|(existing, _)| *existing == missing)
            {
                missing_tokens.push((missing, token.span.clone()));
            }
        }
    }
    diagnostics.extend(
        missing_tokens
            .into_iter()
            .map(|(missing, span)| Diagnostic {
                kind: DiagnosticKind::MissingToken,
                message: format!("unable to evaluate '{missing}'"),
                span,
            }),
    );
    Evaluation {
        output: if null_filter_used { None } else { Some(output) },
        diagnostics,
    }
}

fn parse_diagnostic(template: &str, failure: ParseFailure) -> Diagnostic {
    let start = failure.position.min(template.len());
    let end = template
        .get(start..)
        .and_then(|rest| rest.chars().next())
        .map_or(start, |character| start + character.len_utf8());
    let kind = if failure.is_nesting_limit {
        DiagnosticKind::NestingLimit
    } else {
        DiagnosticKind::ParseError
    };
    Diagnostic {
        kind,
        message: failure.message,
        span: start..end,
    }
}

/// Builds the variable tree; a name with no parsable path prefix is left out, as upstream.
fn build_variable_tree(variables: &dyn VariableLookup, max_nesting: usize) -> Binding {
    let mut root = Binding::default();
    variables.for_each_variable(&mut |name, value| {
        if let Some(path) = parser::parse_symbol_prefix(name, max_nesting) {
            root.add_path(&path.steps, value);
        }
    });
    root
}

/// A hard error that aborts the whole evaluation.
#[derive(Debug)]
struct Fatal {
    kind: DiagnosticKind,
    message: String,
}

/// What one evaluation pass collects besides text.
#[derive(Default)]
struct Collector {
    missing_tokens: Vec<String>,
    null_filter_used: bool,
}

impl Collector {
    fn add_missing(&mut self, tokens: impl IntoIterator<Item = String>) {
        for token in tokens {
            if !self.missing_tokens.contains(&token) {
                self.missing_tokens.push(token);
            }
        }
    }
}

/// A lookup scope: the root variables, a loop's locals, or the empty scope a value is
/// evaluated in. `resolving` is the stack of paths being resolved here, for cycle detection.
struct Scope<'parent> {
    binding: Rc<Binding>,
    parent: Option<&'parent Scope<'parent>>,
    resolving: RefCell<Vec<SymbolPath>>,
}

impl<'parent> Scope<'parent> {
    fn child(parent: &'parent Scope<'parent>, binding: Rc<Binding>) -> Scope<'parent> {
        Scope {
            binding,
            parent: Some(parent),
            resolving: RefCell::default(),
        }
    }
}

/// A path that resolved: the node it landed on and that node's evaluated value.
struct Resolved {
    node: Rc<Binding>,
    value: Option<String>,
}

struct Evaluator {
    max_nesting: usize,
    depth: Cell<usize>,
    filter_context: FilterContext,
}

/// Decrements the nesting depth when a nested evaluation ends, however it ends.
struct DepthGuard<'evaluator> {
    depth: &'evaluator Cell<usize>,
}

impl Drop for DepthGuard<'_> {
    fn drop(&mut self) {
        self.depth.set(self.depth.get().saturating_sub(1));
    }
}

impl Evaluator {
    fn enter(&self) -> Result<DepthGuard<'_>, Fatal> {
        // Recursive values and nested blocks each cost several stack frames; the evaluation
        // limit is a multiple of the parse limit because one parsed level may evaluate a few
        // nested calls (a substitution, its filter chain, an option).
        if self.depth.get() >= self.max_nesting.saturating_mul(4) {
            return Err(Fatal {
                kind: DiagnosticKind::NestingLimit,
                message: format!(
                    "evaluation nests deeper than the limit of {} levels",
                    self.max_nesting
                ),
            });
        }
        self.depth.set(self.depth.get() + 1);
        Ok(DepthGuard { depth: &self.depth })
    }

    fn evaluate_tokens(
        &self,
        tokens: &[Token],
        scope: &Scope<'_>,
        output: &mut String,
        collector: &mut Collector,
    ) -> Result<(), Fatal> {
        let _guard = self.enter()?;
        for token in tokens {
            self.evaluate_token(token, scope, output, collector)?;
        }
        Ok(())
    }

    fn evaluate_token(
        &self,
        token: &Token,
        scope: &Scope<'_>,
        output: &mut String,
        collector: &mut Collector,
    ) -> Result<(), Fatal> {
        match &token.kind {
            TokenKind::Text(text) => output.push_str(text),
            TokenKind::Substitution(expression) => {
                match self.calculate(expression, scope, collector)? {
                    Some(value) => output.push_str(&value),
                    None => {
                        let echo = token.to_string();
                        if matches!(expression, ContentExpression::FilterCall(call) if call.filter_name.eq_ignore_ascii_case("null"))
                        {
                            collector.null_filter_used = true;
                        } else {
                            collector.add_missing([echo.clone()]);
                        }
                        output.push_str(&echo);
                    }
                }
            }
            TokenKind::Conditional(conditional) => {
                self.evaluate_conditional(token, conditional, scope, output, collector)?
            }
            TokenKind::Repetition(repetition) => {
                self.evaluate_repetition(repetition, scope, output, collector)?
            }
            // Upstream echoes a failed calculation without recording it as missing.
            TokenKind::Calculation(expression) => match self
                .calculate_number(expression, scope, collector)?
            {
                Some(value) => output.push_str(&filters::numbers::format_double_round_trip(value)),
                None => output.push_str(&token.to_string()),
            },
        }
        Ok(())
    }

    fn evaluate_conditional(
        &self,
        token: &Token,
        conditional: &Conditional,
        scope: &Scope<'_>,
        output: &mut String,
        collector: &mut Collector,
    ) -> Result<(), Fatal> {
        // A bare path is resolved as "" when missing; a filter chain that cannot be evaluated
        // echoes the whole block with its body unevaluated.
        let Some(left) = self.condition_operand(&conditional.condition.left, scope, collector)?
        else {
            output.push_str(&token.to_string());
            collector.add_missing([conditional.condition.left.to_string()]);
            return Ok(());
        };
        let is_true = match &conditional.condition.comparison {
            None => crate::is_truthy(&left),
            Some(comparison) => {
                let right = match &comparison.right {
                    ComparisonOperand::Literal(literal) => literal.clone(),
                    ComparisonOperand::Expression(expression) => {
                        match self.condition_operand(expression, scope, collector)? {
                            Some(right) => right,
                            None => {
                                output.push_str(&token.to_string());
                                collector.add_missing([expression.to_string()]);
                                return Ok(());
                            }
                        }
                    }
                };
                (left == right) == comparison.is_equality
            }
        };
        let branch = if is_true {
            &conditional.truthy_branch
        } else {
            &conditional.falsy_branch
        };
        self.evaluate_tokens(branch, scope, output, collector)
    }

    fn condition_operand(
        &self,
        expression: &ContentExpression,
        scope: &Scope<'_>,
        collector: &mut Collector,
    ) -> Result<Option<String>, Fatal> {
        match expression {
            ContentExpression::Symbol(path) => {
                let resolved = self.walk_to(scope, path)?;
                Ok(Some(match resolved {
                    Some((resolved, missing)) => {
                        collector.add_missing(missing);
                        resolved.value.unwrap_or_default()
                    }
                    None => String::new(),
                }))
            }
            ContentExpression::FilterCall(_) => self.calculate(expression, scope, collector),
        }
    }

    fn evaluate_repetition(
        &self,
        repetition: &Repetition,
        scope: &Scope<'_>,
        output: &mut String,
        collector: &mut Collector,
    ) -> Result<(), Fatal> {
        let items = self.resolve_all(scope, &repetition.collection, collector)?;
        let item_count = items.len();
        for (item_index, item) in items.into_iter().enumerate() {
            let mut locals = Binding::default();
            let flag = |value: bool| if value { "True" } else { "False" };
            for (name, value) in [
                ("Index", item_index.to_string()),
                ("First", flag(item_index == 0).to_string()),
                ("Last", flag(item_index + 1 == item_count).to_string()),
            ] {
                let steps = ["Octopus", "Template", "Each", name]
                    .map(|step| PathStep::Identifier(step.to_string()));
                locals.add_path(&steps, &value);
            }
            locals.children.insert(&repetition.enumerator, item);
            let loop_scope = Scope::child(scope, Rc::new(locals));
            self.evaluate_tokens(&repetition.body, &loop_scope, output, collector)?;
        }
        Ok(())
    }

    /// The value of a substitution expression; `None` means "cannot evaluate" (echo).
    fn calculate(
        &self,
        expression: &ContentExpression,
        scope: &Scope<'_>,
        collector: &mut Collector,
    ) -> Result<Option<String>, Fatal> {
        let _guard = self.enter()?;
        match expression {
            ContentExpression::Symbol(path) => Ok(match self.walk_to(scope, path)? {
                Some((resolved, missing)) => {
                    collector.add_missing(missing);
                    resolved.value
                }
                None => None,
            }),
            ContentExpression::FilterCall(call) => {
                let argument = self.calculate(&call.argument, scope, collector)?;
                let mut options = Vec::with_capacity(call.options.len());
                for option in &call.options {
                    let option_scope = Scope::child(scope, Rc::new(Binding::default()));
                    let mut option_text = String::new();
                    self.evaluate_token(option, &option_scope, &mut option_text, collector)?;
                    options.push(option_text);
                }
                filters::invoke(
                    &call.filter_name,
                    argument.as_deref(),
                    &options,
                    &self.filter_context,
                )
                .map_err(|error| Fatal {
                    kind: DiagnosticKind::FilterError,
                    message: error.message,
                })
            }
        }
    }

    fn calculate_number(
        &self,
        expression: &CalculationExpression,
        scope: &Scope<'_>,
        collector: &mut Collector,
    ) -> Result<Option<f64>, Fatal> {
        let _guard = self.enter()?;
        Ok(match expression {
            CalculationExpression::Constant(value) => Some(*value),
            CalculationExpression::Variable(path) => match self.walk_to(scope, path)? {
                Some((resolved, missing)) => {
                    collector.add_missing(missing);
                    resolved
                        .value
                        .and_then(|value| filters::numbers::parse_double(&value))
                }
                None => None,
            },
            CalculationExpression::Operation(left, operator, right) => {
                let Some(left) = self.calculate_number(left, scope, collector)? else {
                    return Ok(None);
                };
                let Some(right) = self.calculate_number(right, scope, collector)? else {
                    return Ok(None);
                };
                Some(match operator {
                    CalculationOperator::Add => left + right,
                    CalculationOperator::Subtract => left - right,
                    CalculationOperator::Multiply => left * right,
                    CalculationOperator::Divide => left / right,
                })
            }
        })
    }

    /// Items of an `#{each}` collection: indexable children, else the value as a JSON array or
    /// object, else the value split on commas (untrimmed).
    fn resolve_all(
        &self,
        scope: &Scope<'_>,
        path: &SymbolPath,
        collector: &mut Collector,
    ) -> Result<Vec<Rc<Binding>>, Fatal> {
        let Some((resolved, missing)) = self.walk_to(scope, path)? else {
            return Ok(Vec::new());
        };
        collector.add_missing(missing);
        if !resolved.node.indexable.is_empty() {
            return Ok(resolved.node.indexable.values().cloned().collect());
        }
        let Some(value) = resolved.value else {
            return Ok(Vec::new());
        };
        if let Some(items) = json::parse(&value).and_then(|parsed| parsed.iteration_items()) {
            return Ok(items);
        }
        Ok(value
            .split(',')
            .map(|part| Rc::new(Binding::with_item(part)))
            .collect())
    }

    /// Resolves a path in `scope` (Octostache's `WalkTo`). Returns the node and the missing
    /// tokens met while evaluating its value, or `None` when the path does not resolve.
    fn walk_to(
        &self,
        scope: &Scope<'_>,
        path: &SymbolPath,
    ) -> Result<Option<(Resolved, Vec<String>)>, Fatal> {
        let _guard = self.enter()?;
        ensure_not_recursive(scope, path)?;
        scope.resolving.borrow_mut().push(path.clone());
        let result = self.walk_steps(scope, path);
        scope.resolving.borrow_mut().pop();
        result
    }

    fn walk_steps(
        &self,
        scope: &Scope<'_>,
        path: &SymbolPath,
    ) -> Result<Option<(Resolved, Vec<String>)>, Fatal> {
        // Symbol indexers are resolved here, in the scope the lookup started in, so
        // `Octopus.Step[#{action.StepName}]` works inside a loop even when the rest of the path
        // is only found in an enclosing scope.
        let path = self.resolve_symbol_indexers(scope, path)?;
        let mut node = Rc::clone(&scope.binding);
        for step in &path.steps {
            let next = match step {
                PathStep::Identifier(name) => match node.children.get(name) {
                    Some(child) => Some(Rc::clone(child)),
                    None => self.json_step(scope, &node, name)?,
                },
                PathStep::Indexer(Indexer::Text(index)) => {
                    let wildcard = if index == "*" {
                        node.indexable.first()
                    } else {
                        None
                    };
                    match wildcard.or_else(|| node.indexable.get(index)) {
                        Some(child) => Some(Rc::clone(child)),
                        None => self.json_step(scope, &node, index)?,
                    }
                }
                // The index symbol did not resolve, so neither does the path.
                PathStep::Indexer(Indexer::Symbol(_) | Indexer::Unresolvable) => return Ok(None),
            };
            match next {
                Some(next_node) => node = next_node,
                None => {
                    return match scope.parent {
                        Some(parent) => self.walk_to(parent, &path),
                        None => Ok(None),
                    };
                }
            }
        }
        self.evaluate_node(scope, node).map(Some)
    }

    fn resolve_symbol_indexers(
        &self,
        scope: &Scope<'_>,
        path: &SymbolPath,
    ) -> Result<SymbolPath, Fatal> {
        let mut steps = Vec::with_capacity(path.steps.len());
        for step in &path.steps {
            steps.push(match step {
                PathStep::Indexer(Indexer::Symbol(symbol)) => {
                    PathStep::Indexer(match self.walk_to(scope, symbol)? {
                        Some((resolved, _)) => match resolved.value {
                            Some(index) => Indexer::Text(index),
                            None => Indexer::Unresolvable,
                        },
                        None => Indexer::Symbol(self.resolve_symbol_indexers(scope, symbol)?),
                    })
                }
                other => other.clone(),
            });
        }
        Ok(SymbolPath { steps })
    }

    /// Evaluates a node's raw value as a template in a fresh child of `scope` (the scope where
    /// the node was found). The result is not re-scanned.
    fn evaluate_node(
        &self,
        scope: &Scope<'_>,
        node: Rc<Binding>,
    ) -> Result<(Resolved, Vec<String>), Fatal> {
        let Some(item) = node.item.as_deref().filter(|item| item.contains("#{")) else {
            let value = node.item.clone();
            return Ok((Resolved { node, value }, Vec::new()));
        };
        let Ok(tokens) = parser::parse_template(item, self.max_nesting) else {
            // A value that does not parse is used raw.
            let value = node.item.clone();
            return Ok((Resolved { node, value }, Vec::new()));
        };
        let value_scope = Scope::child(scope, Rc::new(Binding::default()));
        let mut value = String::new();
        // Nested evaluations report missing tokens upwards but not their null-filter use.
        let mut collector = Collector::default();
        self.evaluate_tokens(&tokens, &value_scope, &mut value, &mut collector)?;
        Ok((
            Resolved {
                node,
                value: Some(value),
            },
            collector.missing_tokens,
        ))
    }

    /// The JSON fallback for a failed step: read the node's (evaluated) value as JSON and take
    /// `property` from it. A cycle met while evaluating the value is swallowed and the raw value
    /// is tried instead, as upstream does.
    fn json_step(
        &self,
        scope: &Scope<'_>,
        node: &Rc<Binding>,
        property: &str,
    ) -> Result<Option<Rc<Binding>>, Fatal> {
        let Some(item) = node.item.as_deref() else {
            return Ok(None);
        };
        if item.is_empty() || property.is_empty() {
            return Ok(None);
        }
        let text = if item.contains("#{") {
            match self.evaluate_node(scope, Rc::clone(node)) {
                Ok((resolved, _)) => resolved.value.unwrap_or_else(|| item.to_string()),
                Err(fatal) if fatal.kind == DiagnosticKind::RecursiveDefinition => item.to_string(),
                Err(fatal) => return Err(fatal),
            }
        } else {
            item.to_string()
        };
        Ok(json::parse(&text)
            .and_then(|parsed| parsed.step_text(property))
            .map(|value| Rc::new(Binding::with_item(value))))
    }
}

/// Fails when `path` is already being resolved in `scope` or any enclosing scope. The message
/// is Octostache's, naming the whole chain, so people searching for it find the upstream docs.
fn ensure_not_recursive(scope: &Scope<'_>, path: &SymbolPath) -> Result<(), Fatal> {
    let mut ancestor = Some(scope);
    while let Some(current) = ancestor {
        let resolving = current.resolving.borrow();
        if resolving
            .iter()
            .any(|candidate| candidate.same_steps_as(path))
        {
            let chain: Vec<String> = resolving
                .iter()
                .map(ToString::to_string)
                .chain([path.to_string()])
                .collect();
            return Err(Fatal {
                kind: DiagnosticKind::RecursiveDefinition,
                message: format!(
                    "An attempt to parse the variable symbol \"{path}\" appears to have resulted in a self referencing loop ({}). Ensure that recursive loops do not exist in the variable values.",
                    chain.join(" -> ")
                ),
            });
        }
        ancestor = current.parent;
    }
    Ok(())
}
