//! A compiler and evaluator for the part of XPath that structured-variable names use.
//!
//! Calamari compiles names with an XPath 2.0 library; what config files need is location paths:
//! `/a/b`, `//b`, `@attr`, `text()`, `comment()`, `node()`, `processing-instruction()`, `.`, `..`,
//! the common axes (`child::`, `descendant::`, `attribute::`, `parent::`, `self::`, `ancestor::`,
//! `following-sibling::`, `preceding-sibling::` and the `-or-self` forms), name tests with
//! prefixes and the XPath 2 wildcards `*:name` and `prefix:*`, unions with `|`, and predicates with
//! positions, comparisons (`=`, `!=`, `<`, `<=`, `>`, `>=`), `and`/`or`, arithmetic and the usual
//! functions (`position`, `last`, `count`, `not`, `contains`, `starts-with`, `ends-with`,
//! `string`, `concat`, `normalize-space`, `string-length`, `name`, `local-name`,
//! `namespace-uri`, `lower-case`, `upper-case`, `true`, `false`, `number`).
//!
//! Anything else fails to compile, and a name that does not compile is ignored, as in Calamari.
//! Prefixes resolve through the document-wide namespace table; an unknown prefix does not compile.
//! As in XPath, an unprefixed name matches only elements in no namespace.

use std::collections::HashMap;

use super::document::{NodeId, XmlDocument, XmlNodeKind};

/// A node as XPath sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum XPathNode {
    Root,
    Node(NodeId),
    Attribute(NodeId, usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Axis {
    Child,
    Descendant,
    DescendantOrSelf,
    /// The `self` axis (`self` is a keyword).
    Itself,
    Parent,
    Attribute,
    Ancestor,
    AncestorOrSelf,
    FollowingSibling,
    PrecedingSibling,
}

#[derive(Clone, Debug, PartialEq)]
enum NameTest {
    /// `*`
    Any,
    /// `prefix:*`, resolved.
    Namespace(String),
    /// `*:local`
    Local(String),
    /// `name` or `prefix:name`, resolved; the namespace is empty for no namespace.
    Qualified { namespace: String, local: String },
}

#[derive(Clone, Debug, PartialEq)]
enum NodeTest {
    Name(NameTest),
    Text,
    Comment,
    Node,
    ProcessingInstruction(Option<String>),
}

#[derive(Clone, Debug, PartialEq)]
struct Step {
    axis: Axis,
    test: NodeTest,
    predicates: Vec<Expression>,
}

#[derive(Clone, Debug, PartialEq)]
enum Expression {
    /// A location path; `absolute` starts from the root.
    Path {
        absolute: bool,
        steps: Vec<Step>,
    },
    /// A filter expression followed by more steps, e.g. `(//a)[1]/b`.
    Filtered {
        primary: Box<Expression>,
        predicates: Vec<Expression>,
        steps: Vec<Step>,
    },
    Literal(String),
    Number(f64),
    Function(String, Vec<Expression>),
    Binary(Box<Expression>, BinaryOperator, Box<Expression>),
    Negate(Box<Expression>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum BinaryOperator {
    Or,
    And,
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
    Union,
}

/// A compiled expression, ready to select nodes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CompiledXPath {
    expression: Expression,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Slash,
    DoubleSlash,
    OpenBracket,
    CloseBracket,
    OpenParen,
    CloseParen,
    At,
    Comma,
    Dot,
    DotDot,
    Pipe,
    Operator(BinaryOperator),
    Minus,
    Star,
    /// An NCName, or `prefix:local`, or `prefix:*`, or `*:local`.
    Name(String),
    AxisName(String),
    Literal(String),
    Number(f64),
}

const MAX_EXPRESSION_DEPTH: usize = 64;

fn is_name_start(character: char) -> bool {
    character.is_alphabetic() || character == '_'
}

fn is_name_char(character: char) -> bool {
    character.is_alphanumeric() || matches!(character, '_' | '-' | '.' | '\u{b7}')
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let characters: Vec<char> = text.chars().collect();
    let mut tokens: Vec<Token> = Vec::new();
    let mut position = 0;
    while position < characters.len() {
        let character = characters[position];
        let next = characters.get(position + 1).copied();
        // XPath's rule: after these tokens, `*` and names are name tests, not operators.
        let operator_allowed = matches!(
            tokens.last(),
            Some(
                Token::CloseBracket
                    | Token::CloseParen
                    | Token::Dot
                    | Token::DotDot
                    | Token::Name(_)
                    | Token::Literal(_)
                    | Token::Number(_)
                    | Token::Star
            )
        );
        match character {
            ' ' | '\t' | '\r' | '\n' => position += 1,
            '/' if next == Some('/') => {
                tokens.push(Token::DoubleSlash);
                position += 2;
            }
            '/' => {
                tokens.push(Token::Slash);
                position += 1;
            }
            '[' => {
                tokens.push(Token::OpenBracket);
                position += 1;
            }
            ']' => {
                tokens.push(Token::CloseBracket);
                position += 1;
            }
            '(' => {
                tokens.push(Token::OpenParen);
                position += 1;
            }
            ')' => {
                tokens.push(Token::CloseParen);
                position += 1;
            }
            '@' => {
                tokens.push(Token::At);
                position += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                position += 1;
            }
            '|' => {
                tokens.push(Token::Pipe);
                position += 1;
            }
            '=' => {
                tokens.push(Token::Operator(BinaryOperator::Equal));
                position += 1;
            }
            '!' if next == Some('=') => {
                tokens.push(Token::Operator(BinaryOperator::NotEqual));
                position += 2;
            }
            '<' if next == Some('=') => {
                tokens.push(Token::Operator(BinaryOperator::LessOrEqual));
                position += 2;
            }
            '<' => {
                tokens.push(Token::Operator(BinaryOperator::Less));
                position += 1;
            }
            '>' if next == Some('=') => {
                tokens.push(Token::Operator(BinaryOperator::GreaterOrEqual));
                position += 2;
            }
            '>' => {
                tokens.push(Token::Operator(BinaryOperator::Greater));
                position += 1;
            }
            '+' => {
                tokens.push(Token::Operator(BinaryOperator::Add));
                position += 1;
            }
            '-' => {
                tokens.push(Token::Minus);
                position += 1;
            }
            '"' | '\'' => {
                let closing = characters[position + 1..]
                    .iter()
                    .position(|candidate| *candidate == character)
                    .ok_or("unterminated string literal")?;
                let literal: String = characters[position + 1..position + 1 + closing]
                    .iter()
                    .collect();
                tokens.push(Token::Literal(literal));
                position += closing + 2;
            }
            '.' if next == Some('.') => {
                tokens.push(Token::DotDot);
                position += 2;
            }
            '.' if !next.is_some_and(|c| c.is_ascii_digit()) => {
                tokens.push(Token::Dot);
                position += 1;
            }
            '0'..='9' | '.' => {
                let start = position;
                while position < characters.len()
                    && (characters[position].is_ascii_digit() || characters[position] == '.')
                {
                    position += 1;
                }
                let number: String = characters[start..position].iter().collect();
                tokens.push(Token::Number(number.parse().map_err(|_| "invalid number")?));
            }
            '*' if operator_allowed => {
                tokens.push(Token::Operator(BinaryOperator::Multiply));
                position += 1;
            }
            '*' if next == Some(':')
                && characters
                    .get(position + 2)
                    .is_some_and(|c| is_name_start(*c)) =>
            {
                position += 2;
                let start = position;
                while position < characters.len() && is_name_char(characters[position]) {
                    position += 1;
                }
                let local: String = characters[start..position].iter().collect();
                tokens.push(Token::Name(format!("*:{local}")));
            }
            '*' => {
                tokens.push(Token::Star);
                position += 1;
            }
            _ if is_name_start(character) => {
                let start = position;
                while position < characters.len() && is_name_char(characters[position]) {
                    position += 1;
                }
                let mut name: String = characters[start..position].iter().collect();
                if characters.get(position) == Some(&':')
                    && characters.get(position + 1) == Some(&':')
                {
                    tokens.push(Token::AxisName(name));
                    position += 2;
                    continue;
                }
                if characters.get(position) == Some(&':') {
                    match characters.get(position + 1) {
                        Some('*') => {
                            name.push_str(":*");
                            position += 2;
                        }
                        Some(next_character) if is_name_start(*next_character) => {
                            position += 1;
                            let local_start = position;
                            while position < characters.len() && is_name_char(characters[position])
                            {
                                position += 1;
                            }
                            let local: String = characters[local_start..position].iter().collect();
                            name = format!("{name}:{local}");
                        }
                        _ => return Err(format!("unexpected ':' after '{name}'")),
                    }
                }
                let operator = if operator_allowed {
                    match name.as_str() {
                        "and" => Some(BinaryOperator::And),
                        "or" => Some(BinaryOperator::Or),
                        "div" => Some(BinaryOperator::Divide),
                        "mod" => Some(BinaryOperator::Modulo),
                        _ => None,
                    }
                } else {
                    None
                };
                match operator {
                    Some(operator) => tokens.push(Token::Operator(operator)),
                    None => tokens.push(Token::Name(name)),
                }
            }
            _ => return Err(format!("unexpected character '{character}'")),
        }
    }
    Ok(tokens)
}

struct Compiler<'table> {
    tokens: Vec<Token>,
    position: usize,
    namespaces: &'table HashMap<String, String>,
    depth: usize,
}

impl Compiler<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn advance(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn expect(&mut self, expected: &Token) -> Result<(), String> {
        match self.advance() {
            Some(token) if token == *expected => Ok(()),
            other => Err(format!("expected {expected:?}, found {other:?}")),
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_EXPRESSION_DEPTH {
            return Err("expression nests too deeply".to_owned());
        }
        Ok(())
    }

    fn expression(&mut self) -> Result<Expression, String> {
        self.enter()?;
        let result = self.binary(0);
        self.depth -= 1;
        result
    }

    /// Precedence climbing over the binary operators, loosest first.
    fn binary(&mut self, level: usize) -> Result<Expression, String> {
        const LEVELS: [&[BinaryOperator]; 6] = [
            &[BinaryOperator::Or],
            &[BinaryOperator::And],
            &[BinaryOperator::Equal, BinaryOperator::NotEqual],
            &[
                BinaryOperator::Less,
                BinaryOperator::LessOrEqual,
                BinaryOperator::Greater,
                BinaryOperator::GreaterOrEqual,
            ],
            &[BinaryOperator::Add, BinaryOperator::Subtract],
            &[
                BinaryOperator::Multiply,
                BinaryOperator::Divide,
                BinaryOperator::Modulo,
            ],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        loop {
            let operator = match self.peek() {
                Some(Token::Operator(operator)) if LEVELS[level].contains(operator) => *operator,
                Some(Token::Minus) if level == 4 => BinaryOperator::Subtract,
                _ => break,
            };
            self.advance();
            let right = self.binary(level + 1)?;
            left = Expression::Binary(Box::new(left), operator, Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expression, String> {
        if self.peek() == Some(&Token::Minus) {
            self.advance();
            self.enter()?;
            let operand = self.unary();
            self.depth -= 1;
            return Ok(Expression::Negate(Box::new(operand?)));
        }
        let mut left = self.path_expression()?;
        while self.peek() == Some(&Token::Pipe) {
            self.advance();
            let right = self.path_expression()?;
            left = Expression::Binary(Box::new(left), BinaryOperator::Union, Box::new(right));
        }
        Ok(left)
    }

    fn path_expression(&mut self) -> Result<Expression, String> {
        match self.peek() {
            Some(Token::Slash) => {
                self.advance();
                let starts_step = matches!(
                    self.peek(),
                    Some(
                        Token::Name(_)
                            | Token::AxisName(_)
                            | Token::Star
                            | Token::At
                            | Token::Dot
                            | Token::DotDot
                    )
                );
                let steps = if starts_step {
                    self.relative_steps()?
                } else {
                    Vec::new()
                };
                Ok(Expression::Path {
                    absolute: true,
                    steps,
                })
            }
            Some(Token::DoubleSlash) => {
                self.advance();
                let mut steps = vec![descendant_or_self_step()];
                steps.extend(self.relative_steps()?);
                Ok(Expression::Path {
                    absolute: true,
                    steps,
                })
            }
            Some(Token::Literal(_) | Token::Number(_) | Token::OpenParen) => {
                self.filter_expression()
            }
            Some(Token::Name(name))
                if self.tokens.get(self.position + 1) == Some(&Token::OpenParen)
                    && !matches!(
                        name.as_str(),
                        "text" | "comment" | "node" | "processing-instruction"
                    ) =>
            {
                self.filter_expression()
            }
            _ => Ok(Expression::Path {
                absolute: false,
                steps: self.relative_steps()?,
            }),
        }
    }

    fn filter_expression(&mut self) -> Result<Expression, String> {
        let primary = match self.advance() {
            Some(Token::Literal(text)) => Expression::Literal(text),
            Some(Token::Number(number)) => Expression::Number(number),
            Some(Token::OpenParen) => {
                let inner = self.expression()?;
                self.expect(&Token::CloseParen)?;
                inner
            }
            Some(Token::Name(name)) => {
                self.expect(&Token::OpenParen)?;
                let mut arguments = Vec::new();
                if self.peek() != Some(&Token::CloseParen) {
                    arguments.push(self.expression()?);
                    while self.peek() == Some(&Token::Comma) {
                        self.advance();
                        arguments.push(self.expression()?);
                    }
                }
                self.expect(&Token::CloseParen)?;
                check_function(&name, arguments.len())?;
                Expression::Function(name, arguments)
            }
            other => return Err(format!("unexpected {other:?}")),
        };
        let predicates = self.predicates()?;
        let steps = match self.peek() {
            Some(Token::Slash) => {
                self.advance();
                self.relative_steps()?
            }
            Some(Token::DoubleSlash) => {
                self.advance();
                let mut steps = vec![descendant_or_self_step()];
                steps.extend(self.relative_steps()?);
                steps
            }
            _ => Vec::new(),
        };
        if predicates.is_empty() && steps.is_empty() {
            return Ok(primary);
        }
        Ok(Expression::Filtered {
            primary: Box::new(primary),
            predicates,
            steps,
        })
    }

    fn relative_steps(&mut self) -> Result<Vec<Step>, String> {
        let mut steps = vec![self.step()?];
        loop {
            match self.peek() {
                Some(Token::Slash) => {
                    self.advance();
                    steps.push(self.step()?);
                }
                Some(Token::DoubleSlash) => {
                    self.advance();
                    steps.push(descendant_or_self_step());
                    steps.push(self.step()?);
                }
                _ => return Ok(steps),
            }
        }
    }

    fn predicates(&mut self) -> Result<Vec<Expression>, String> {
        let mut predicates = Vec::new();
        while self.peek() == Some(&Token::OpenBracket) {
            self.advance();
            predicates.push(self.expression()?);
            self.expect(&Token::CloseBracket)?;
        }
        Ok(predicates)
    }

    fn step(&mut self) -> Result<Step, String> {
        match self.peek() {
            Some(Token::Dot) => {
                self.advance();
                return Ok(Step {
                    axis: Axis::Itself,
                    test: NodeTest::Node,
                    predicates: Vec::new(),
                });
            }
            Some(Token::DotDot) => {
                self.advance();
                return Ok(Step {
                    axis: Axis::Parent,
                    test: NodeTest::Node,
                    predicates: Vec::new(),
                });
            }
            _ => {}
        }
        let axis = match self.peek() {
            Some(Token::At) => {
                self.advance();
                Axis::Attribute
            }
            Some(Token::AxisName(_)) => {
                let Some(Token::AxisName(name)) = self.advance() else {
                    return Err("expected an axis".to_owned());
                };
                match name.as_str() {
                    "child" => Axis::Child,
                    "descendant" => Axis::Descendant,
                    "descendant-or-self" => Axis::DescendantOrSelf,
                    "self" => Axis::Itself,
                    "parent" => Axis::Parent,
                    "attribute" => Axis::Attribute,
                    "ancestor" => Axis::Ancestor,
                    "ancestor-or-self" => Axis::AncestorOrSelf,
                    "following-sibling" => Axis::FollowingSibling,
                    "preceding-sibling" => Axis::PrecedingSibling,
                    other => return Err(format!("unsupported axis '{other}'")),
                }
            }
            _ => Axis::Child,
        };
        let test = match self.advance() {
            Some(Token::Star) => NodeTest::Name(NameTest::Any),
            Some(Token::Name(name)) => {
                if self.peek() == Some(&Token::OpenParen) {
                    self.advance();
                    let test = match name.as_str() {
                        "text" => NodeTest::Text,
                        "comment" => NodeTest::Comment,
                        "node" => NodeTest::Node,
                        "processing-instruction" => match self.peek() {
                            Some(Token::Literal(_)) => {
                                let Some(Token::Literal(target)) = self.advance() else {
                                    return Err("expected a literal".to_owned());
                                };
                                NodeTest::ProcessingInstruction(Some(target))
                            }
                            _ => NodeTest::ProcessingInstruction(None),
                        },
                        other => return Err(format!("'{other}()' is not a node test")),
                    };
                    self.expect(&Token::CloseParen)?;
                    test
                } else {
                    NodeTest::Name(self.name_test(&name)?)
                }
            }
            other => return Err(format!("expected a node test, found {other:?}")),
        };
        let predicates = self.predicates()?;
        Ok(Step {
            axis,
            test,
            predicates,
        })
    }

    fn name_test(&self, name: &str) -> Result<NameTest, String> {
        if let Some(local) = name.strip_prefix("*:") {
            return Ok(NameTest::Local(local.to_owned()));
        }
        match name.split_once(':') {
            Some((prefix, "*")) => Ok(NameTest::Namespace(self.resolve(prefix)?)),
            Some((prefix, local)) => Ok(NameTest::Qualified {
                namespace: self.resolve(prefix)?,
                local: local.to_owned(),
            }),
            None => Ok(NameTest::Qualified {
                namespace: String::new(),
                local: name.to_owned(),
            }),
        }
    }

    fn resolve(&self, prefix: &str) -> Result<String, String> {
        self.namespaces
            .get(prefix)
            .cloned()
            .ok_or_else(|| format!("namespace prefix '{prefix}' is not defined"))
    }
}

fn descendant_or_self_step() -> Step {
    Step {
        axis: Axis::DescendantOrSelf,
        test: NodeTest::Node,
        predicates: Vec::new(),
    }
}

fn check_function(name: &str, argument_count: usize) -> Result<(), String> {
    let accepted = match name {
        "position" | "last" | "true" | "false" => argument_count == 0,
        "count" | "not" | "lower-case" | "upper-case" => argument_count == 1,
        "contains" | "starts-with" | "ends-with" => argument_count == 2,
        "string" | "normalize-space" | "string-length" | "name" | "local-name"
        | "namespace-uri" | "number" => argument_count <= 1,
        "concat" => argument_count >= 2,
        _ => return Err(format!("unknown function '{name}'")),
    };
    if accepted {
        Ok(())
    } else {
        Err(format!("wrong number of arguments for '{name}'"))
    }
}

impl CompiledXPath {
    /// Compiles `text`; `namespaces` maps prefixes to URIs.
    pub(crate) fn compile(
        text: &str,
        namespaces: &HashMap<String, String>,
    ) -> Result<CompiledXPath, String> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err("empty expression".to_owned());
        }
        let mut compiler = Compiler {
            tokens,
            position: 0,
            namespaces,
            depth: 0,
        };
        let expression = compiler.expression()?;
        if compiler.position != compiler.tokens.len() {
            return Err(format!("unexpected {:?}", compiler.peek()));
        }
        Ok(CompiledXPath { expression })
    }

    /// The nodes selected from the document root, in document order. An expression that is not a
    /// node set selects nothing.
    pub(crate) fn select(&self, document: &XmlDocument) -> Vec<XPathNode> {
        let evaluator = Evaluator::new(document);
        let context = Context {
            node: XPathNode::Root,
            position: 1,
            size: 1,
        };
        match evaluator.evaluate(&self.expression, &context) {
            Value::Nodes(nodes) => evaluator.in_document_order(nodes),
            _ => Vec::new(),
        }
    }
}

#[derive(Clone, Debug)]
enum Value {
    Nodes(Vec<XPathNode>),
    Text(String),
    Number(f64),
    Boolean(bool),
}

struct Context {
    node: XPathNode,
    position: usize,
    size: usize,
}

struct Evaluator<'document> {
    document: &'document XmlDocument,
    /// Pre-order position of every node, for document order.
    order: Vec<usize>,
}

impl<'document> Evaluator<'document> {
    fn new(document: &'document XmlDocument) -> Self {
        let mut order = vec![usize::MAX; document.nodes.len()];
        let mut counter = 0;
        let mut stack: Vec<NodeId> = document.document_children.iter().rev().copied().collect();
        while let Some(node) = stack.pop() {
            order[node] = counter;
            counter += 1;
            if let Some(element) = document.element(node) {
                stack.extend(element.children.iter().rev().copied());
            }
        }
        Evaluator { document, order }
    }

    fn order_key(&self, node: XPathNode) -> (usize, usize) {
        match node {
            XPathNode::Root => (0, 0),
            XPathNode::Node(id) => (self.order[id].saturating_add(1), 0),
            XPathNode::Attribute(id, attribute_idx) => {
                (self.order[id].saturating_add(1), attribute_idx + 1)
            }
        }
    }

    fn in_document_order(&self, mut nodes: Vec<XPathNode>) -> Vec<XPathNode> {
        nodes.sort_by_key(|node| self.order_key(*node));
        nodes.dedup();
        nodes
    }

    /// XPath children: document-level declarations and DTDs are not nodes in the data model.
    fn children(&self, node: XPathNode) -> Vec<XPathNode> {
        let ids: &[NodeId] = match node {
            XPathNode::Root => &self.document.document_children,
            XPathNode::Node(id) => match self.document.element(id) {
                Some(element) => &element.children,
                None => &[],
            },
            XPathNode::Attribute(..) => &[],
        };
        ids.iter()
            .copied()
            .filter(|id| {
                !matches!(
                    self.document.nodes[*id].kind,
                    XmlNodeKind::Declaration(_) | XmlNodeKind::DocumentType(_)
                )
            })
            .map(XPathNode::Node)
            .collect()
    }

    fn parent(&self, node: XPathNode) -> Option<XPathNode> {
        match node {
            XPathNode::Root => None,
            XPathNode::Node(id) => Some(
                self.document.nodes[id]
                    .parent
                    .map_or(XPathNode::Root, XPathNode::Node),
            ),
            XPathNode::Attribute(id, _) => Some(XPathNode::Node(id)),
        }
    }

    fn descendants(&self, node: XPathNode, include_self: bool) -> Vec<XPathNode> {
        let mut result = Vec::new();
        if include_self {
            result.push(node);
        }
        let mut stack: Vec<XPathNode> = self.children(node).into_iter().rev().collect();
        while let Some(current) = stack.pop() {
            result.push(current);
            stack.extend(self.children(current).into_iter().rev());
        }
        result
    }

    fn axis_nodes(&self, node: XPathNode, axis: Axis) -> Vec<XPathNode> {
        match axis {
            Axis::Child => self.children(node),
            Axis::Descendant => self.descendants(node, false),
            Axis::DescendantOrSelf => self.descendants(node, true),
            Axis::Itself => vec![node],
            Axis::Parent => self.parent(node).into_iter().collect(),
            Axis::Attribute => match node {
                XPathNode::Node(id) => match self.document.element(id) {
                    Some(element) => element
                        .attributes
                        .iter()
                        .enumerate()
                        .filter(|(_, attribute)| !attribute.is_namespace_declaration())
                        .map(|(attribute_idx, _)| XPathNode::Attribute(id, attribute_idx))
                        .collect(),
                    None => Vec::new(),
                },
                _ => Vec::new(),
            },
            Axis::Ancestor | Axis::AncestorOrSelf => {
                let mut result = Vec::new();
                if axis == Axis::AncestorOrSelf {
                    result.push(node);
                }
                let mut current = self.parent(node);
                while let Some(ancestor) = current {
                    result.push(ancestor);
                    current = self.parent(ancestor);
                }
                result
            }
            Axis::FollowingSibling | Axis::PrecedingSibling => {
                if matches!(node, XPathNode::Attribute(..) | XPathNode::Root) {
                    return Vec::new();
                }
                let Some(parent) = self.parent(node) else {
                    return Vec::new();
                };
                let siblings = self.children(parent);
                let Some(own_idx) = siblings.iter().position(|sibling| *sibling == node) else {
                    return Vec::new();
                };
                if axis == Axis::FollowingSibling {
                    siblings[own_idx + 1..].to_vec()
                } else {
                    // Reverse axis: nearest first, so positions in predicates count backwards.
                    siblings[..own_idx].iter().rev().copied().collect()
                }
            }
        }
    }

    /// Namespace URI and local name of an element or attribute node.
    fn expanded_name(&self, node: XPathNode) -> Option<(String, String)> {
        let (qualified_name, element_id, is_attribute) = match node {
            XPathNode::Node(id) => (self.document.element(id)?.name.clone(), id, false),
            XPathNode::Attribute(id, attribute_idx) => (
                self.document
                    .element(id)?
                    .attributes
                    .get(attribute_idx)?
                    .name
                    .clone(),
                id,
                true,
            ),
            XPathNode::Root => return None,
        };
        match qualified_name.split_once(':') {
            Some((prefix, local)) => Some((
                self.document
                    .resolve_prefix(element_id, prefix)
                    .unwrap_or_default(),
                local.to_owned(),
            )),
            // Unprefixed attributes are in no namespace; unprefixed elements take the default one.
            None if is_attribute => Some((String::new(), qualified_name)),
            None => Some((
                self.document
                    .resolve_prefix(element_id, "")
                    .unwrap_or_default(),
                qualified_name,
            )),
        }
    }

    fn matches_test(&self, node: XPathNode, axis: Axis, test: &NodeTest) -> bool {
        let kind = match node {
            XPathNode::Node(id) => Some(&self.document.nodes[id].kind),
            _ => None,
        };
        match test {
            NodeTest::Node => true,
            NodeTest::Text => matches!(
                kind,
                Some(
                    XmlNodeKind::Text(_)
                        | XmlNodeKind::CData(_)
                        | XmlNodeKind::SignificantWhitespace(_)
                )
            ),
            NodeTest::Comment => matches!(kind, Some(XmlNodeKind::Comment(_))),
            NodeTest::ProcessingInstruction(wanted) => match kind {
                Some(XmlNodeKind::ProcessingInstruction { target, .. }) => {
                    wanted.as_ref().is_none_or(|wanted| wanted == target)
                }
                _ => false,
            },
            NodeTest::Name(name_test) => {
                // The principal node type: attributes on the attribute axis, elements elsewhere.
                let is_principal = if axis == Axis::Attribute {
                    matches!(node, XPathNode::Attribute(..))
                } else {
                    matches!(kind, Some(XmlNodeKind::Element(_)))
                };
                if !is_principal {
                    return false;
                }
                let Some((namespace, local)) = self.expanded_name(node) else {
                    return false;
                };
                match name_test {
                    NameTest::Any => true,
                    NameTest::Namespace(wanted) => namespace == *wanted,
                    NameTest::Local(wanted) => local == *wanted,
                    NameTest::Qualified {
                        namespace: wanted_namespace,
                        local: wanted_local,
                    } => namespace == *wanted_namespace && local == *wanted_local,
                }
            }
        }
    }

    fn apply_steps(&self, mut nodes: Vec<XPathNode>, steps: &[Step]) -> Vec<XPathNode> {
        for step in steps {
            let mut next = Vec::new();
            for node in &nodes {
                let candidates: Vec<XPathNode> = self
                    .axis_nodes(*node, step.axis)
                    .into_iter()
                    .filter(|candidate| self.matches_test(*candidate, step.axis, &step.test))
                    .collect();
                next.extend(self.filter(candidates, &step.predicates));
            }
            nodes = self.in_document_order(next);
        }
        nodes
    }

    fn filter(&self, mut nodes: Vec<XPathNode>, predicates: &[Expression]) -> Vec<XPathNode> {
        for predicate in predicates {
            let size = nodes.len();
            nodes = nodes
                .into_iter()
                .enumerate()
                .filter(|(node_idx, node)| {
                    let context = Context {
                        node: *node,
                        position: node_idx + 1,
                        size,
                    };
                    match self.evaluate(predicate, &context) {
                        Value::Number(number) => number == (node_idx + 1) as f64,
                        other => self.boolean(&other),
                    }
                })
                .map(|(_, node)| node)
                .collect();
        }
        nodes
    }

    fn string_value(&self, node: XPathNode) -> String {
        match node {
            XPathNode::Attribute(id, attribute_idx) => self
                .document
                .element(id)
                .and_then(|element| element.attributes.get(attribute_idx))
                .map(|attribute| attribute.value.clone())
                .unwrap_or_default(),
            XPathNode::Node(id) => match &self.document.nodes[id].kind {
                XmlNodeKind::Text(text)
                | XmlNodeKind::CData(text)
                | XmlNodeKind::SignificantWhitespace(text) => text.clone(),
                XmlNodeKind::Comment(data) | XmlNodeKind::ProcessingInstruction { data, .. } => {
                    data.clone()
                }
                _ => self.descendant_text(node),
            },
            XPathNode::Root => self.descendant_text(node),
        }
    }

    fn descendant_text(&self, node: XPathNode) -> String {
        self.descendants(node, false)
            .into_iter()
            .filter_map(|descendant| match descendant {
                XPathNode::Node(id) => match &self.document.nodes[id].kind {
                    XmlNodeKind::Text(text)
                    | XmlNodeKind::CData(text)
                    | XmlNodeKind::SignificantWhitespace(text) => Some(text.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    fn string(&self, value: &Value) -> String {
        match value {
            Value::Nodes(nodes) => self
                .in_document_order(nodes.clone())
                .first()
                .map(|node| self.string_value(*node))
                .unwrap_or_default(),
            Value::Text(text) => text.clone(),
            Value::Number(number) => format_number(*number),
            Value::Boolean(value) => value.to_string(),
        }
    }

    fn number(&self, value: &Value) -> f64 {
        match value {
            Value::Number(number) => *number,
            Value::Boolean(value) => f64::from(u8::from(*value)),
            other => self.string(other).trim().parse().unwrap_or(f64::NAN),
        }
    }

    fn boolean(&self, value: &Value) -> bool {
        match value {
            Value::Nodes(nodes) => !nodes.is_empty(),
            Value::Text(text) => !text.is_empty(),
            Value::Number(number) => *number != 0.0 && !number.is_nan(),
            Value::Boolean(value) => *value,
        }
    }

    fn compare(&self, left: &Value, operator: BinaryOperator, right: &Value) -> bool {
        // A node set compares true if any of its nodes does.
        if let Value::Nodes(nodes) = left {
            return nodes
                .iter()
                .any(|node| self.compare(&Value::Text(self.string_value(*node)), operator, right));
        }
        if let Value::Nodes(nodes) = right {
            return nodes
                .iter()
                .any(|node| self.compare(left, operator, &Value::Text(self.string_value(*node))));
        }
        match operator {
            BinaryOperator::Equal | BinaryOperator::NotEqual => {
                let equal = match (left, right) {
                    (Value::Boolean(_), _) | (_, Value::Boolean(_)) => {
                        self.boolean(left) == self.boolean(right)
                    }
                    (Value::Number(_), _) | (_, Value::Number(_)) => {
                        self.number(left) == self.number(right)
                    }
                    _ => self.string(left) == self.string(right),
                };
                equal == (operator == BinaryOperator::Equal)
            }
            _ => {
                let (left_number, right_number) = (self.number(left), self.number(right));
                match operator {
                    BinaryOperator::Less => left_number < right_number,
                    BinaryOperator::LessOrEqual => left_number <= right_number,
                    BinaryOperator::Greater => left_number > right_number,
                    _ => left_number >= right_number,
                }
            }
        }
    }

    fn evaluate(&self, expression: &Expression, context: &Context) -> Value {
        match expression {
            Expression::Literal(text) => Value::Text(text.clone()),
            Expression::Number(number) => Value::Number(*number),
            Expression::Negate(operand) => {
                Value::Number(-self.number(&self.evaluate(operand, context)))
            }
            Expression::Path { absolute, steps } => {
                let start = if *absolute {
                    XPathNode::Root
                } else {
                    context.node
                };
                Value::Nodes(self.apply_steps(vec![start], steps))
            }
            Expression::Filtered {
                primary,
                predicates,
                steps,
            } => match self.evaluate(primary, context) {
                Value::Nodes(nodes) => {
                    let ordered = self.in_document_order(nodes);
                    let filtered = self.filter(ordered, predicates);
                    Value::Nodes(self.apply_steps(filtered, steps))
                }
                _ => Value::Nodes(Vec::new()),
            },
            Expression::Binary(left, operator, right) => {
                let left_value = self.evaluate(left, context);
                match operator {
                    BinaryOperator::Or => Value::Boolean(
                        self.boolean(&left_value) || self.boolean(&self.evaluate(right, context)),
                    ),
                    BinaryOperator::And => Value::Boolean(
                        self.boolean(&left_value) && self.boolean(&self.evaluate(right, context)),
                    ),
                    BinaryOperator::Union => {
                        let right_value = self.evaluate(right, context);
                        match (left_value, right_value) {
                            (Value::Nodes(mut left_nodes), Value::Nodes(right_nodes)) => {
                                left_nodes.extend(right_nodes);
                                Value::Nodes(self.in_document_order(left_nodes))
                            }
                            _ => Value::Nodes(Vec::new()),
                        }
                    }
                    BinaryOperator::Add
                    | BinaryOperator::Subtract
                    | BinaryOperator::Multiply
                    | BinaryOperator::Divide
                    | BinaryOperator::Modulo => {
                        let left_number = self.number(&left_value);
                        let right_number = self.number(&self.evaluate(right, context));
                        Value::Number(match operator {
                            BinaryOperator::Add => left_number + right_number,
                            BinaryOperator::Subtract => left_number - right_number,
                            BinaryOperator::Multiply => left_number * right_number,
                            BinaryOperator::Divide => left_number / right_number,
                            _ => left_number % right_number,
                        })
                    }
                    _ => {
                        let right_value = self.evaluate(right, context);
                        Value::Boolean(self.compare(&left_value, *operator, &right_value))
                    }
                }
            }
            Expression::Function(name, arguments) => self.call(name, arguments, context),
        }
    }

    fn call(&self, name: &str, arguments: &[Expression], context: &Context) -> Value {
        let argument = |argument_idx: usize| {
            arguments
                .get(argument_idx)
                .map(|expression| self.evaluate(expression, context))
        };
        let string_argument = |argument_idx: usize| match argument(argument_idx) {
            Some(value) => self.string(&value),
            None => self.string_value(context.node),
        };
        let node_argument = || match argument(0) {
            Some(Value::Nodes(nodes)) => self.in_document_order(nodes).first().copied(),
            Some(_) => None,
            None => Some(context.node),
        };
        match name {
            "position" => Value::Number(context.position as f64),
            "last" => Value::Number(context.size as f64),
            "true" => Value::Boolean(true),
            "false" => Value::Boolean(false),
            "count" => match argument(0) {
                Some(Value::Nodes(nodes)) => Value::Number(nodes.len() as f64),
                _ => Value::Number(f64::NAN),
            },
            "not" => Value::Boolean(!argument(0).is_some_and(|value| self.boolean(&value))),
            "contains" => Value::Boolean(string_argument(0).contains(&string_argument(1))),
            "starts-with" => Value::Boolean(string_argument(0).starts_with(&string_argument(1))),
            "ends-with" => Value::Boolean(string_argument(0).ends_with(&string_argument(1))),
            "string" => Value::Text(string_argument(0)),
            "concat" => Value::Text((0..arguments.len()).map(string_argument).collect()),
            "normalize-space" => Value::Text(
                string_argument(0)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            "string-length" => Value::Number(string_argument(0).chars().count() as f64),
            "lower-case" => Value::Text(string_argument(0).to_lowercase()),
            "upper-case" => Value::Text(string_argument(0).to_uppercase()),
            "number" => match argument(0) {
                Some(value) => Value::Number(self.number(&value)),
                None => Value::Number(self.number(&Value::Text(self.string_value(context.node)))),
            },
            "name" | "local-name" | "namespace-uri" => {
                let Some(node) = node_argument() else {
                    return Value::Text(String::new());
                };
                let qualified_name = match node {
                    XPathNode::Node(id) => match &self.document.nodes[id].kind {
                        XmlNodeKind::Element(element) => element.name.clone(),
                        XmlNodeKind::ProcessingInstruction { target, .. } => target.clone(),
                        _ => String::new(),
                    },
                    XPathNode::Attribute(id, attribute_idx) => self
                        .document
                        .element(id)
                        .and_then(|element| element.attributes.get(attribute_idx))
                        .map(|attribute| attribute.name.clone())
                        .unwrap_or_default(),
                    XPathNode::Root => String::new(),
                };
                match name {
                    "name" => Value::Text(qualified_name),
                    "local-name" => Value::Text(
                        qualified_name
                            .rsplit_once(':')
                            .map_or(qualified_name.clone(), |(_, local)| local.to_owned()),
                    ),
                    _ => Value::Text(
                        self.expanded_name(node)
                            .map(|(namespace, _)| namespace)
                            .unwrap_or_default(),
                    ),
                }
            }
            _ => Value::Nodes(Vec::new()),
        }
    }
}

fn format_number(number: f64) -> String {
    if number.fract() == 0.0 && number.is_finite() {
        format!("{number:.0}")
    } else {
        number.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select_names(xml: &str, xpath: &str) -> Vec<String> {
        let document = XmlDocument::parse(xml, 100).expect("valid XML");
        let mut namespaces = HashMap::new();
        namespaces.insert("p".to_owned(), "urn:p".to_owned());
        let compiled = CompiledXPath::compile(xpath, &namespaces).expect("valid XPath");
        let evaluator = Evaluator::new(&document);
        compiled
            .select(&document)
            .into_iter()
            .map(|node| evaluator.string_value(node))
            .collect()
    }

    #[test]
    fn selects_with_predicates_and_axes() {
        let xml =
            "<r xmlns:p='urn:p'><a id='1'>x</a><a id='2'>y</a><p:a>z</p:a><b><a>w</a></b></r>";
        assert_eq!(select_names(xml, "/r/a[@id='2']"), ["y"]);
        assert_eq!(select_names(xml, "//a"), ["x", "y", "w"]);
        assert_eq!(select_names(xml, "//*:a"), ["x", "y", "z", "w"]);
        assert_eq!(select_names(xml, "/r/p:a"), ["z"]);
        assert_eq!(select_names(xml, "/r/a[2]"), ["y"]);
        assert_eq!(select_names(xml, "/r/a[last()]/@id"), ["2"]);
        assert_eq!(select_names(xml, "/r/a[1]/following-sibling::a"), ["y"]);
        assert_eq!(select_names(xml, "//a[text()='w']/.."), ["w"]);
        assert_eq!(
            select_names(xml, "/r/a[@id='1' or @id='2']/text()"),
            ["x", "y"]
        );
        assert_eq!(select_names(xml, "(//a)[3]"), ["w"]);
    }

    #[test]
    fn rejects_what_it_does_not_understand() {
        let namespaces = HashMap::new();
        assert!(CompiledXPath::compile("//env:something", &namespaces).is_err());
        assert!(CompiledXPath::compile("/a[", &namespaces).is_err());
        assert!(CompiledXPath::compile("/a/unknown-function()", &namespaces).is_err());
        assert!(CompiledXPath::compile("for $x in /a return $x", &namespaces).is_err());
    }
}
