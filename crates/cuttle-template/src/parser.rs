//! Template parser: turns template text into the tree of [`crate::syntax`].
//!
//! It reproduces the Octostache grammar (a Sprache combinator parser) by hand, including its
//! quirks: alternatives are tried in order and a failed `#{if ...}` may still parse as a plain
//! substitution of a variable called `if ...`; whitespace rules around nested options; the
//! "furthest failure" position that decides how much text the continue-on-error mode copies
//! through. It owns nothing about evaluation.
//!
//! Two guards keep hostile input cheap and stack-safe: block results are memoised by position
//! (a run of unterminated `#{if a}` would otherwise re-parse exponentially often), and nesting is
//! capped, which fails the whole parse instead of recursing without bound.

use std::collections::HashMap;

use crate::syntax::{
    CalculationExpression, CalculationOperator, Comparison, ComparisonOperand, Condition,
    Conditional, ContentExpression, FilterCall, Indexer, PathStep, Repetition, SymbolPath, Token,
    TokenKind,
};

/// Why and where a template failed to parse.
#[derive(Clone, Debug)]
pub(crate) struct ParseFailure {
    /// Byte offset of the furthest point the parser reached before failing.
    pub(crate) position: usize,
    pub(crate) message: String,
    /// True when the nesting limit was hit; such a failure is never recovered from.
    pub(crate) is_nesting_limit: bool,
}

/// Parses the whole template, stopping at the first error (Octostache's `haltOnError = true`).
pub(crate) fn parse_template(source: &str, max_nesting: usize) -> Result<Vec<Token>, ParseFailure> {
    let mut parser = Parser::new(source, max_nesting);
    let result = parser.template_tokens(0, false);
    match result {
        Err(failure) => Err(parser.describe(failure)),
        Ok((tokens, end, _)) if end == source.len() => Ok(tokens),
        Ok((_, end, inner_failure)) => {
            let failure = inner_failure.unwrap_or(Failure {
                position: end,
                expected: "end of template",
                fatal: false,
            });
            Err(parser.describe(failure))
        }
    }
}

/// Parses in "continue on errors" mode (Calamari's file substitution): a token that fails to
/// parse is copied through as text up to the point where parsing failed, and parsing resumes.
pub(crate) fn parse_template_continuing(
    source: &str,
    max_nesting: usize,
) -> Result<(Vec<Token>, Vec<ParseFailure>), ParseFailure> {
    let mut parser = Parser::new(source, max_nesting);
    let mut tokens = Vec::new();
    let mut failures = Vec::new();
    let mut position = 0;
    while position < source.len() {
        match parser.token(position) {
            Ok((token, end)) => {
                tokens.push(token);
                position = end;
            }
            Err(failure) if failure.fatal => return Err(parser.describe(failure)),
            Err(failure) => {
                // Always make progress, even where Sprache would have given up on the whole text.
                let minimum = parser.next_char_boundary(position);
                let stop = failure.position.clamp(minimum, source.len());
                let stop = if source.is_char_boundary(stop) {
                    stop
                } else {
                    parser.next_char_boundary(stop)
                };
                tokens.push(Token {
                    kind: TokenKind::Text(source[position..stop].to_string()),
                    span: position..stop,
                });
                failures.push(parser.describe(failure));
                position = stop;
            }
        }
    }
    Ok((tokens, failures))
}

/// Parses the longest symbol-path prefix of a variable name (`Foo!` is stored as `Foo`).
pub(crate) fn parse_symbol_prefix(name: &str, max_nesting: usize) -> Option<SymbolPath> {
    let mut parser = Parser::new(name, max_nesting);
    parser.symbol(0).ok().map(|(path, _)| path)
}

#[derive(Clone, Debug)]
struct Failure {
    position: usize,
    expected: &'static str,
    fatal: bool,
}

type Parsed<T> = Result<(T, usize), Failure>;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum BlockKind {
    Conditional,
    Repetition,
    Calculation,
    Substitution,
}

/// Tried in this order wherever a `#{` may start a token, as Octostache's `Or` chain does.
const BLOCK_KINDS: [BlockKind; 4] = [
    BlockKind::Conditional,
    BlockKind::Repetition,
    BlockKind::Calculation,
    BlockKind::Substitution,
];

struct Parser<'source> {
    source: &'source str,
    bytes: &'source [u8],
    max_nesting: usize,
    nesting: usize,
    block_memo: HashMap<(BlockKind, usize), Parsed<Token>>,
}

/// Keeps whichever failure got further, as Sprache reports the furthest error of an `Or`.
fn furthest(first: Failure, second: Failure) -> Failure {
    if first.fatal {
        return first;
    }
    if second.fatal || second.position > first.position {
        second
    } else {
        first
    }
}

impl<'source> Parser<'source> {
    fn new(source: &'source str, max_nesting: usize) -> Self {
        Parser {
            source,
            bytes: source.as_bytes(),
            max_nesting,
            nesting: 0,
            block_memo: HashMap::new(),
        }
    }

    fn describe(&self, failure: Failure) -> ParseFailure {
        let position = failure.position.min(self.source.len());
        let message = if failure.fatal {
            format!(
                "template nesting is deeper than {} levels",
                self.max_nesting
            )
        } else {
            match self.char_at(position) {
                Some(found) => format!("unexpected {found:?}; expected {}", failure.expected),
                None => format!("unexpected end of template; expected {}", failure.expected),
            }
        };
        ParseFailure {
            position,
            message,
            is_nesting_limit: failure.fatal,
        }
    }

    fn fail<T>(&self, position: usize, expected: &'static str) -> Parsed<T> {
        Err(Failure {
            position,
            expected,
            fatal: false,
        })
    }

    fn char_at(&self, position: usize) -> Option<char> {
        self.source
            .get(position..)
            .and_then(|rest| rest.chars().next())
    }

    fn byte_at(&self, position: usize) -> Option<u8> {
        self.bytes.get(position).copied()
    }

    fn starts_with(&self, position: usize, text: &str) -> bool {
        self.bytes
            .get(position..)
            .is_some_and(|rest| rest.starts_with(text.as_bytes()))
    }

    fn starts_with_ignoring_case(&self, position: usize, keyword: &str) -> bool {
        self.bytes
            .get(position..position + keyword.len())
            .is_some_and(|candidate| candidate.eq_ignore_ascii_case(keyword.as_bytes()))
    }

    fn next_char_boundary(&self, position: usize) -> usize {
        match self.char_at(position) {
            Some(character) => position + character.len_utf8(),
            None => self.source.len(),
        }
    }

    fn skip_whitespace(&self, mut position: usize) -> usize {
        while let Some(character) = self.char_at(position) {
            if !character.is_whitespace() {
                break;
            }
            position += character.len_utf8();
        }
        position
    }

    fn enter_nesting(&mut self, position: usize) -> Result<(), Failure> {
        if self.nesting >= self.max_nesting {
            return Err(Failure {
                position,
                expected: "shallower nesting",
                fatal: true,
            });
        }
        self.nesting += 1;
        Ok(())
    }

    /// `Token.Many()`: tokens until one fails; the failure is returned for error reporting.
    /// `stop_at_else` is the `if` body, which ends before `#{else}` or `#{elseif `.
    fn template_tokens(
        &mut self,
        mut position: usize,
        stop_at_else: bool,
    ) -> Result<(Vec<Token>, usize, Option<Failure>), Failure> {
        let mut tokens = Vec::new();
        while position < self.source.len() {
            if stop_at_else
                && (self.starts_with(position, "#{else}") || self.is_elseif_start(position))
            {
                break;
            }
            match self.token(position) {
                Ok((token, end)) => {
                    tokens.push(token);
                    position = end;
                }
                Err(failure) if failure.fatal => return Err(failure),
                Err(failure) => return Ok((tokens, position, Some(failure))),
            }
        }
        Ok((tokens, position, None))
    }

    fn is_elseif_start(&self, position: usize) -> bool {
        self.starts_with(position, "#{elseif")
            && self.char_at(position + 8).is_some_and(char::is_whitespace)
    }

    fn token(&mut self, position: usize) -> Parsed<Token> {
        let mut best_failure: Option<Failure> = None;
        if self.starts_with(position, "#{") && !self.starts_with(position, "#{/") {
            for kind in BLOCK_KINDS {
                match self.block(kind, position) {
                    Ok(parsed) => return Ok(parsed),
                    Err(failure) if failure.fatal => return Err(failure),
                    Err(failure) => {
                        best_failure = Some(match best_failure {
                            Some(best) => furthest(best, failure),
                            None => failure,
                        })
                    }
                }
            }
        }
        match self.text(position) {
            Ok(parsed) => Ok(parsed),
            Err(failure) => Err(match best_failure {
                Some(best) => furthest(best, failure),
                None => failure,
            }),
        }
    }

    fn block(&mut self, kind: BlockKind, position: usize) -> Parsed<Token> {
        if let Some(memoised) = self.block_memo.get(&(kind, position)) {
            return memoised.clone();
        }
        self.enter_nesting(position)?;
        let result = match kind {
            BlockKind::Conditional => self.conditional(position),
            BlockKind::Repetition => self.repetition(position),
            BlockKind::Calculation => self.calculation(position),
            BlockKind::Substitution => self.substitution(position),
        };
        self.nesting -= 1;
        self.block_memo.insert((kind, position), result.clone());
        result
    }

    /// Literal text with Octostache's hash-pair escaping rules (see the spec, A2).
    fn text(&self, start: usize) -> Parsed<Token> {
        let length = self.source.len();
        let mut text = String::new();
        let mut position = start;
        while let Some(character) = self.char_at(position) {
            if character != '#' {
                text.push(character);
                position += character.len_utf8();
                continue;
            }
            if position + 1 == length {
                text.push('#');
                position += 1;
            } else if self.starts_with(position, "###{") && position + 4 < length {
                // `##` before a token is one literal `#`. Sprache's lookahead never matches a
                // `#{` that ends the input, hence the length check.
                text.push('#');
                position += 2;
            } else if self.starts_with(position, "##{") {
                text.push_str("#{");
                position += 3;
            } else {
                match self.char_at(position + 1) {
                    Some(next) if next != '{' => {
                        text.push('#');
                        text.push(next);
                        position += 1 + next.len_utf8();
                    }
                    _ => break,
                }
            }
        }
        if position == start {
            return self.fail(start + 1, "text");
        }
        Ok((
            Token {
                kind: TokenKind::Text(text),
                span: start..position,
            },
            position,
        ))
    }

    fn is_identifier_character(character: char, allow_whitespace: bool) -> bool {
        character.is_alphanumeric()
            || matches!(character, '_' | '-' | ':' | '/' | '~' | '(' | ')' | '@')
            || (allow_whitespace && character.is_whitespace())
    }

    /// Identifier characters, trimmed. Whitespace ends the identifier when it is followed by
    /// `|`, `}`, or one of the keywords `in`, `==`, `!=` plus whitespace.
    fn identifier(&self, start: usize, allow_whitespace: bool) -> Parsed<String> {
        let length = self.source.len();
        let mut position = start;
        while let Some(character) = self.char_at(position) {
            if !Self::is_identifier_character(character, allow_whitespace) {
                break;
            }
            if character.is_whitespace() {
                let after = position + character.len_utf8();
                // Sprache's FollowedBy fails (so does not exclude) when the lookahead would be
                // the last character of the input.
                if after + 1 < length && matches!(self.bytes[after], b'|' | b'}') {
                    break;
                }
                if self.keyword_follows(after) {
                    break;
                }
            }
            position += character.len_utf8();
        }
        if position == start {
            return self.fail(start, "an identifier");
        }
        Ok((self.source[start..position].trim().to_string(), position))
    }

    fn keyword_follows(&self, position: usize) -> bool {
        ["in", "==", "!="].iter().any(|keyword| {
            let end = position + keyword.len();
            end < self.source.len()
                && self.starts_with(position, keyword)
                && self.char_at(end).is_some_and(char::is_whitespace)
        })
    }

    fn symbol(&mut self, start: usize) -> Parsed<SymbolPath> {
        let (first, mut position) = self.identifier(start, true)?;
        let mut steps = vec![PathStep::Identifier(first)];
        loop {
            match self.byte_at(position) {
                Some(b'.') => match self.identifier(position + 1, true) {
                    Ok((name, end)) => {
                        steps.push(PathStep::Identifier(name));
                        position = end;
                    }
                    Err(_) => break,
                },
                Some(b'[') => match self.indexer(position) {
                    Ok((indexer, end)) => {
                        steps.push(PathStep::Indexer(indexer));
                        position = end;
                    }
                    Err(failure) if failure.fatal => return Err(failure),
                    Err(_) => break,
                },
                _ => break,
            }
        }
        Ok((SymbolPath { steps }, position))
    }

    fn indexer(&mut self, start: usize) -> Parsed<Indexer> {
        let inner = self.skip_whitespace(start + 1);
        if self.starts_with(inner, "#{") {
            match self.block(BlockKind::Substitution, inner) {
                Ok((
                    Token {
                        kind: TokenKind::Substitution(ContentExpression::Symbol(symbol)),
                        ..
                    },
                    end,
                )) => {
                    let close = self.skip_whitespace(end);
                    if self.byte_at(close) == Some(b']') {
                        return Ok((Indexer::Symbol(symbol), close + 1));
                    }
                }
                Err(failure) if failure.fatal => return Err(failure),
                _ => {}
            }
        }
        let (text, end) = self.string_indexer(start)?;
        Ok((Indexer::Text(text), end))
    }

    /// `[text]` where the text may contain balanced brackets; leading whitespace is dropped.
    fn string_indexer(&mut self, start: usize) -> Parsed<String> {
        self.enter_nesting(start)?;
        let result = self.string_indexer_inner(start);
        self.nesting -= 1;
        result
    }

    fn string_indexer_inner(&mut self, start: usize) -> Parsed<String> {
        let mut position = self.skip_whitespace(start + 1);
        let mut text = String::new();
        loop {
            match self.char_at(position) {
                Some('[') => match self.string_indexer(position) {
                    Ok((inner, end)) => {
                        text.push('[');
                        text.push_str(&inner);
                        text.push(']');
                        position = end;
                    }
                    Err(failure) if failure.fatal => return Err(failure),
                    Err(_) => break,
                },
                Some(']') | None => break,
                Some(_) => {
                    let run_start = position;
                    while let Some(character) = self.char_at(position) {
                        if character == '[' || character == ']' {
                            break;
                        }
                        position += character.len_utf8();
                    }
                    text.push_str(&self.source[run_start..position]);
                }
            }
        }
        position = self.skip_whitespace(position);
        if self.byte_at(position) != Some(b']') {
            return self.fail(position, "']'");
        }
        Ok((text, position + 1))
    }

    fn substitution(&mut self, start: usize) -> Parsed<Token> {
        let (expression, end) = self.expression_token(start + 2)?;
        if self.byte_at(end) != Some(b'}') {
            return self.fail(end, "'}' or '|'");
        }
        Ok((
            Token {
                kind: TokenKind::Substitution(expression),
                span: start..end + 1,
            },
            end + 1,
        ))
    }

    /// `Expression.Token()`: a filter chain or a bare symbol, with surrounding whitespace.
    fn expression_token(&mut self, start: usize) -> Parsed<ContentExpression> {
        let start = self.skip_whitespace(start);
        let chain_failure = match self.filter_chain(start) {
            Ok((expression, end)) => return Ok((expression, self.skip_whitespace(end))),
            Err(failure) if failure.fatal => return Err(failure),
            Err(failure) => failure,
        };
        match self.symbol(start) {
            Ok((symbol, end)) => Ok((ContentExpression::Symbol(symbol), self.skip_whitespace(end))),
            Err(failure) => Err(furthest(chain_failure, failure)),
        }
    }

    fn filter_chain(&mut self, start: usize) -> Parsed<ContentExpression> {
        let (mut expression, mut position) = match self.symbol(start) {
            Ok((symbol, end)) => (ContentExpression::Symbol(symbol), self.skip_whitespace(end)),
            Err(failure) if failure.fatal => return Err(failure),
            // The path is optional: `#{ | NowDate}` filters a null input.
            Err(_) => (ContentExpression::Symbol(SymbolPath::default()), start),
        };
        let mut filter_count = 0;
        while self.byte_at(position) == Some(b'|') {
            let name_start = self.skip_whitespace(position + 1);
            let (filter_name, name_end) = match self.identifier(name_start, false) {
                Ok(parsed) => parsed,
                Err(failure) if filter_count == 0 => return Err(failure),
                Err(_) => break,
            };
            let (options, end) = self.options(self.skip_whitespace(name_end))?;
            expression = ContentExpression::FilterCall(Box::new(FilterCall {
                argument: expression,
                filter_name,
                options,
            }));
            filter_count += 1;
            position = end;
        }
        if filter_count == 0 {
            return self.fail(position, "'|'");
        }
        Ok((expression, position))
    }

    /// Filter options. Nested `#{...}` options are not followed by a whitespace skip, which is
    /// why `Replace #{a} #{b}` does not parse upstream; literal options swallow whitespace.
    fn options(&mut self, mut position: usize) -> Result<(Vec<Token>, usize), Failure> {
        let mut options = Vec::new();
        'options: loop {
            if self.starts_with(position, "#{") && !self.starts_with(position, "#{/") {
                for kind in BLOCK_KINDS {
                    match self.block(kind, position) {
                        Ok((token, end)) => {
                            options.push(token);
                            position = end;
                            continue 'options;
                        }
                        Err(failure) if failure.fatal => return Err(failure),
                        Err(_) => {}
                    }
                }
                break;
            }
            let option_start = self.skip_whitespace(position);
            let literal = if let Ok((word, end)) = self.identifier(option_start, false) {
                Some((word, end))
            } else {
                self.quoted_text(option_start)
                    .or_else(|| self.escaped_quoted_text(option_start))
            };
            match literal {
                Some((text, end)) => {
                    options.push(Token {
                        kind: TokenKind::Text(text),
                        span: option_start..end,
                    });
                    position = self.skip_whitespace(end);
                }
                None => break,
            }
        }
        Ok((options, position))
    }

    /// `"text"`: may not contain `"` or `#`; no escape sequences.
    fn quoted_text(&self, start: usize) -> Option<(String, usize)> {
        if self.byte_at(start) != Some(b'"') {
            return None;
        }
        let mut position = start + 1;
        loop {
            match self.char_at(position)? {
                '"' => return Some((self.source[start + 1..position].to_string(), position + 1)),
                '#' => return None,
                character => position += character.len_utf8(),
            }
        }
    }

    /// `\"text\"`: anything up to the next `\"`.
    fn escaped_quoted_text(&self, start: usize) -> Option<(String, usize)> {
        if !self.starts_with(start, "\\\"") {
            return None;
        }
        let content_start = start + 2;
        let relative_end = self.source.get(content_start..)?.find("\\\"")?;
        let content_end = content_start + relative_end;
        Some((
            self.source[content_start..content_end].to_string(),
            content_end + 2,
        ))
    }

    fn quoted_or_escaped(&self, start: usize) -> Option<(String, usize)> {
        self.quoted_text(start)
            .or_else(|| self.escaped_quoted_text(start))
    }

    fn comparison_operator(&self, position: usize) -> Option<(bool, usize)> {
        if self.starts_with(position, "==") {
            Some((true, position + 2))
        } else if self.starts_with(position, "!=") {
            Some((false, position + 2))
        } else {
            None
        }
    }

    fn condition(&mut self, start: usize) -> Parsed<Condition> {
        // `"literal" == Expression`: equality is symmetric, so it is stored literal-right.
        if let Some((literal, end)) = self.quoted_or_escaped(start) {
            let operator_start = self.skip_whitespace(end);
            if let Some((is_equality, operator_end)) = self.comparison_operator(operator_start) {
                let (left, end) = self.expression_token(operator_end)?;
                let comparison = Comparison {
                    is_equality,
                    right: ComparisonOperand::Literal(literal),
                };
                return Ok((
                    Condition {
                        left,
                        comparison: Some(comparison),
                    },
                    end,
                ));
            }
        }
        let (left, end) = self.expression_token(start)?;
        let Some((is_equality, operator_end)) = self.comparison_operator(end) else {
            return Ok((
                Condition {
                    left,
                    comparison: None,
                },
                end,
            ));
        };
        let right_start = self.skip_whitespace(operator_end);
        let (right, end) = match self.quoted_or_escaped(right_start) {
            Some((literal, end)) => (
                ComparisonOperand::Literal(literal),
                self.skip_whitespace(end),
            ),
            None => {
                let (expression, end) = self.expression_token(right_start)?;
                (ComparisonOperand::Expression(expression), end)
            }
        };
        Ok((
            Condition {
                left,
                comparison: Some(Comparison { is_equality, right }),
            },
            end,
        ))
    }

    fn conditional(&mut self, start: usize) -> Parsed<Token> {
        let keyword_start = self.skip_whitespace(start + 2);
        let (is_unless, keyword_end) = if self.starts_with_ignoring_case(keyword_start, "if") {
            (false, keyword_start + 2)
        } else if self.starts_with_ignoring_case(keyword_start, "unless") {
            (true, keyword_start + 6)
        } else {
            return self.fail(keyword_start, "'if' or 'unless'");
        };
        let condition_start = self.skip_whitespace(keyword_end);
        if condition_start == keyword_end {
            return self.fail(keyword_end, "whitespace");
        }
        let (condition, condition_end) = self.condition(condition_start)?;
        let close = self.skip_whitespace(condition_end);
        if self.byte_at(close) != Some(b'}') {
            return self.fail(close, "'}'");
        }
        let (first_branch, mut position, mut body_failure) =
            self.template_tokens(close + 1, true)?;

        let mut elseif_branches = Vec::new();
        while !is_unless && self.is_elseif_start(position) {
            let elseif_start = position;
            let (elseif_condition, condition_end) =
                self.condition(self.skip_whitespace(position + 8))?;
            let close = self.skip_whitespace(condition_end);
            if self.byte_at(close) != Some(b'}') {
                return self.fail(close, "'}'");
            }
            let (branch, end, failure) = self.template_tokens(close + 1, true)?;
            elseif_branches.push((elseif_start, elseif_condition, branch));
            position = end;
            body_failure = failure;
        }

        let mut else_branch = Vec::new();
        if self.starts_with(position, "#{else}") {
            let (branch, end, failure) = self.template_tokens(position + 7, false)?;
            else_branch = branch;
            position = end;
            body_failure = failure;
        }

        let closer = if is_unless { "#{/unless}" } else { "#{/if}" };
        if !self.starts_with(position, closer) {
            let missing_closer = Failure {
                position,
                expected: if is_unless {
                    "'#{/unless}'"
                } else {
                    "'#{/if}'"
                },
                fatal: false,
            };
            return Err(match body_failure {
                Some(failure) => furthest(missing_closer, failure),
                None => missing_closer,
            });
        }
        let end = position + closer.len();

        // `#{elseif}` chains become nested conditionals in the else branch.
        let mut falsy_branch = else_branch;
        for (elseif_start, elseif_condition, branch) in elseif_branches.into_iter().rev() {
            let nested = Conditional {
                condition: elseif_condition,
                truthy_branch: branch,
                falsy_branch,
            };
            falsy_branch = vec![Token {
                kind: TokenKind::Conditional(Box::new(nested)),
                span: elseif_start..end,
            }];
        }
        let conditional = if is_unless {
            Conditional {
                condition,
                truthy_branch: falsy_branch,
                falsy_branch: first_branch,
            }
        } else {
            Conditional {
                condition,
                truthy_branch: first_branch,
                falsy_branch,
            }
        };
        Ok((
            Token {
                kind: TokenKind::Conditional(Box::new(conditional)),
                span: start..end,
            },
            end,
        ))
    }

    fn repetition(&mut self, start: usize) -> Parsed<Token> {
        let keyword_start = self.skip_whitespace(start + 2);
        if !self.starts_with_ignoring_case(keyword_start, "each") {
            return self.fail(keyword_start, "'each'");
        }
        let enumerator_start = self.skip_whitespace(keyword_start + 4);
        if enumerator_start == keyword_start + 4 {
            return self.fail(enumerator_start, "whitespace");
        }
        let (enumerator, enumerator_end) = self.identifier(enumerator_start, true)?;
        let in_start = self.skip_whitespace(enumerator_end);
        if !self.starts_with_ignoring_case(in_start, "in") {
            return self.fail(in_start, "'in'");
        }
        let (collection, collection_end) = self.symbol(self.skip_whitespace(in_start + 2))?;
        let close = self.skip_whitespace(collection_end);
        if self.byte_at(close) != Some(b'}') {
            return self.fail(close, "'}'");
        }
        let (body, position, body_failure) = self.template_tokens(close + 1, false)?;
        if !self.starts_with(position, "#{/each}") {
            let missing_closer = Failure {
                position,
                expected: "'#{/each}'",
                fatal: false,
            };
            return Err(match body_failure {
                Some(failure) => furthest(missing_closer, failure),
                None => missing_closer,
            });
        }
        let end = position + "#{/each}".len();
        let repetition = Repetition {
            enumerator,
            collection,
            body,
        };
        Ok((
            Token {
                kind: TokenKind::Repetition(Box::new(repetition)),
                span: start..end,
            },
            end,
        ))
    }

    fn calculation(&mut self, start: usize) -> Parsed<Token> {
        let keyword_start = self.skip_whitespace(start + 2);
        if !self.starts_with_ignoring_case(keyword_start, "calc") {
            return self.fail(keyword_start, "'calc'");
        }
        let expression_start = self.skip_whitespace(keyword_start + 4);
        if expression_start == keyword_start + 4 {
            return self.fail(expression_start, "whitespace");
        }
        let (expression, end) = self.calculation_sum(expression_start)?;
        let close = self.skip_whitespace(end);
        if self.byte_at(close) != Some(b'}') {
            return self.fail(close, "'}' or an operator");
        }
        Ok((
            Token {
                kind: TokenKind::Calculation(expression),
                span: start..close + 1,
            },
            close + 1,
        ))
    }

    fn calculation_sum(&mut self, start: usize) -> Parsed<CalculationExpression> {
        let (mut left, mut position) = self.calculation_product(start)?;
        loop {
            let operator_position = self.skip_whitespace(position);
            let operator = match self.byte_at(operator_position) {
                Some(b'+') => CalculationOperator::Add,
                Some(b'-') => CalculationOperator::Subtract,
                _ => return Ok((left, position)),
            };
            let (right, end) = self.calculation_product(operator_position + 1)?;
            left = CalculationExpression::Operation(Box::new(left), operator, Box::new(right));
            position = end;
        }
    }

    fn calculation_product(&mut self, start: usize) -> Parsed<CalculationExpression> {
        let (mut left, mut position) = self.calculation_factor(start)?;
        loop {
            let operator_position = self.skip_whitespace(position);
            let operator = match self.byte_at(operator_position) {
                Some(b'*') => CalculationOperator::Multiply,
                Some(b'/') => CalculationOperator::Divide,
                _ => return Ok((left, position)),
            };
            let (right, end) = self.calculation_factor(operator_position + 1)?;
            left = CalculationExpression::Operation(Box::new(left), operator, Box::new(right));
            position = end;
        }
    }

    /// A constant is tried before a variable, so `3-2` is arithmetic while `B-2` is one name.
    fn calculation_factor(&mut self, start: usize) -> Parsed<CalculationExpression> {
        let position = self.skip_whitespace(start);
        match self.byte_at(position) {
            Some(digit) if digit.is_ascii_digit() => {
                let mut end = position;
                while self.byte_at(end).is_some_and(|byte| byte.is_ascii_digit()) {
                    end += 1;
                }
                if self.byte_at(end) == Some(b'.')
                    && self
                        .byte_at(end + 1)
                        .is_some_and(|byte| byte.is_ascii_digit())
                {
                    end += 1;
                    while self.byte_at(end).is_some_and(|byte| byte.is_ascii_digit()) {
                        end += 1;
                    }
                }
                match self.source[position..end].parse::<f64>() {
                    Ok(value) => Ok((CalculationExpression::Constant(value), end)),
                    Err(_) => self.fail(position, "a number"),
                }
            }
            Some(b'(') => {
                self.enter_nesting(position)?;
                let inner = self.calculation_sum(position + 1);
                self.nesting -= 1;
                let (expression, end) = inner?;
                let close = self.skip_whitespace(end);
                if self.byte_at(close) != Some(b')') {
                    return self.fail(close, "')'");
                }
                Ok((expression, close + 1))
            }
            Some(b'{') => {
                let (symbol, end) = self.symbol(self.skip_whitespace(position + 1))?;
                let close = self.skip_whitespace(end);
                if self.byte_at(close) != Some(b'}') {
                    return self.fail(close, "'}'");
                }
                Ok((CalculationExpression::Variable(symbol), close + 1))
            }
            _ => {
                let (symbol, end) = self.symbol(position)?;
                Ok((CalculationExpression::Variable(symbol), end))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 64;

    /// Parses and renders back, which shows the tree shape through the echo format.
    fn rendered(template: &str) -> String {
        match parse_template(template, LIMIT) {
            Ok(tokens) => tokens.iter().map(ToString::to_string).collect(),
            Err(failure) => format!("error at {}: {}", failure.position, failure.message),
        }
    }

    #[test]
    fn whitespace_is_normalised_and_literal_options_are_quoted() {
        assert_eq!(
            rendered("#{  Foo|Fn 6 \"a b\" \\\"c#d\\\" }"),
            "#{Foo | Fn \"6\" \"a b\" \"c#d\"}"
        );
        assert_eq!(rendered("#{ | NowDate}"), "#{ | NowDate}");
        assert_eq!(rendered("#{Foo Bar Jazz}"), "#{Foo Bar Jazz}");
    }

    #[test]
    fn indexers_keep_balanced_brackets_and_trailing_whitespace() {
        assert_eq!(rendered("#{A[ x[0].y ].B}"), "#{A[x[0].y ].B}");
        assert_eq!(rendered("#{A[#{B}][]}"), "#{A[#{B}][]}");
        // A filter chain is not a symbol indexer, so it becomes index text.
        assert_eq!(rendered("#{A[#{B | ToUpper}]}"), "#{A[#{B | ToUpper}]}");
    }

    #[test]
    fn names_containing_keywords_do_not_parse() {
        assert!(rendered("#{Sign in Page}").starts_with("error at"));
        assert_eq!(rendered("#{Signin Page}"), "#{Signin Page}");
    }

    #[test]
    fn nested_options_must_not_be_followed_by_whitespace_before_a_token_or_filter() {
        assert_eq!(
            rendered("#{a | Replace #{b}#{c}}"),
            "#{a | Replace #{b} #{c}}"
        );
        assert!(rendered("#{a | Replace #{b} #{c}}").starts_with("error at"));
        assert!(rendered("#{a | Match #{b} | ToUpper}").starts_with("error at"));
        assert_eq!(
            rendered("#{a | Prepend #{b} \" \"}"),
            "#{a | Prepend #{b} \" \"}"
        );
    }

    #[test]
    fn calculations_parse_constants_before_names() {
        assert_eq!(rendered("#{calc (B*2)-2}"), "#{B*2-2}");
        assert_eq!(rendered("#{calc {The/Var}-0.5}"), "#{The/Var-0.5}");
        let Ok(tokens) = parse_template("#{calc B-2}", LIMIT) else {
            panic!("calc parses")
        };
        assert!(matches!(
            &tokens[0].kind,
            TokenKind::Calculation(CalculationExpression::Variable(_))
        ));
    }

    #[test]
    fn elseif_desugars_into_nested_conditionals_and_unless_swaps_branches() {
        assert_eq!(
            rendered("#{if A}a#{elseif B}b#{else}c#{/if}"),
            "#{if A}a#{else}#{if B}b#{else}c#{/if}#{/if}"
        );
        assert_eq!(
            rendered("#{unless A}a#{else}b#{/unless}"),
            "#{if A}b#{else}a#{/if}"
        );
        assert_eq!(
            rendered("#{if \"x\" == A | ToLower}y#{/if}"),
            "#{if A | ToLower == \"x\" }y#{/if}"
        );
    }

    #[test]
    fn closers_must_be_exact() {
        assert!(rendered("#{if A}a#{/IF}").contains("error"));
        // `#{ else }` is not the else tag: it is a substitution of a variable named `else`.
        let Ok(tokens) = parse_template("#{if A}a#{ else }b#{/if}", LIMIT) else {
            panic!("parses")
        };
        let TokenKind::Conditional(conditional) = &tokens[0].kind else {
            panic!("a conditional")
        };
        assert_eq!(conditional.truthy_branch.len(), 3);
        assert!(conditional.falsy_branch.is_empty());
        assert_eq!(rendered("#{ IF A }a#{/if}"), "#{if A}a#{/if}");
    }

    #[test]
    fn hash_pairs_and_lone_hashes_are_text() {
        assert_eq!(rendered("a # b ## c #"), "a # b ## c #");
        assert_eq!(rendered("##{x}"), "#{x}");
    }

    #[test]
    fn continue_mode_copies_the_failed_span_and_resumes() {
        let Ok((tokens, failures)) = parse_template_continuing("x #{dog\ny #{a} #{", LIMIT) else {
            panic!("continue mode only fails on the nesting limit")
        };
        let text: String = tokens.iter().map(ToString::to_string).collect();
        assert_eq!(text, "x #{dog\ny #{a} #{");
        assert_eq!(failures.len(), 2);
        assert!(
            tokens
                .iter()
                .any(|token| matches!(token.kind, TokenKind::Substitution(_)))
        );
    }

    #[test]
    fn variable_names_parse_as_a_path_prefix() {
        let path = parse_symbol_prefix("Foo.Bar[x]!ignored", LIMIT).map(|path| path.to_string());
        assert_eq!(path.as_deref(), Some("Foo.Bar[x]"));
        assert!(parse_symbol_prefix("", LIMIT).is_none());
        assert!(parse_symbol_prefix("!", LIMIT).is_none());
    }
}
