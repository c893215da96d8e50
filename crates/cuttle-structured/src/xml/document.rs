//! A small mutable XML tree with the shape .NET's `XmlDocument` gives Calamari: whitespace-only
//! text dropped (`PreserveWhitespace = false`) except under `xml:space="preserve"`, prefixes and
//! attribute order kept as written, CDATA, comments and processing instructions kept as nodes.
//!
//! Reading is done with `quick-xml`; this module adds the well-formedness checks `XmlDocument`
//! makes and quick-xml leaves to its callers (one root element, balanced tags, declared namespace
//! prefixes, known entities), and bounds the element depth.

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

use crate::{StructuredError, StructuredFormat};

pub(crate) type NodeId = usize;

pub(crate) const XMLNS_NAMESPACE: &str = "http://www.w3.org/2000/xmlns/";
pub(crate) const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct XmlAttribute {
    /// The qualified name as written, e.g. `id`, `xmlns:db` or `db:flag`.
    pub(crate) name: String,
    pub(crate) value: String,
}

impl XmlAttribute {
    /// Namespace declarations are attributes in the DOM but never XPath attribute nodes.
    pub(crate) fn is_namespace_declaration(&self) -> bool {
        self.name == "xmlns" || self.name.starts_with("xmlns:")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct XmlElement {
    pub(crate) name: String,
    pub(crate) attributes: Vec<XmlAttribute>,
    pub(crate) children: Vec<NodeId>,
    /// Written as `<name />`; becomes false as soon as content is set.
    pub(crate) is_empty: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum XmlNodeKind {
    /// The `<?xml ...?>` declaration, already formatted as .NET writes it.
    Declaration(String),
    /// The `<!DOCTYPE ...>` content between the keyword and the closing `>`.
    DocumentType(String),
    Element(XmlElement),
    Text(String),
    CData(String),
    /// Whitespace kept because of `xml:space="preserve"`.
    SignificantWhitespace(String),
    Comment(String),
    ProcessingInstruction {
        target: String,
        data: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct XmlNode {
    pub(crate) kind: XmlNodeKind,
    /// `None` for nodes at document level.
    pub(crate) parent: Option<NodeId>,
}

/// The whole document: an arena of nodes plus the document-level children in order.
#[derive(Clone, Debug, Default)]
pub(crate) struct XmlDocument {
    pub(crate) nodes: Vec<XmlNode>,
    pub(crate) document_children: Vec<NodeId>,
}

fn xml_error(message: impl Into<String>) -> StructuredError {
    StructuredError::Parse {
        format: StructuredFormat::Xml,
        message: message.into(),
        line: None,
        column: None,
    }
}

/// Line and column (1-based) of a byte offset, for error messages.
fn position_of(input: &str, byte_offset: usize) -> (u64, u64) {
    let mut boundary = byte_offset.min(input.len());
    // The reader's offset can point inside a multi-byte character; step back to its start.
    while !input.is_char_boundary(boundary) {
        boundary -= 1;
    }
    let before = &input[..boundary];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |last_line| last_line.chars().count()) as u64
        + 1;
    (line, column)
}

/// Where parsed nodes go: a new document, or the children of an element (`InnerXml`).
enum ParseTarget {
    Document,
    Fragment { parent: NodeId },
}

impl XmlDocument {
    pub(crate) fn parse(
        input: &str,
        max_nesting_depth: usize,
    ) -> Result<XmlDocument, StructuredError> {
        let mut document = XmlDocument::default();
        let top_level = document.parse_into(input, ParseTarget::Document, max_nesting_depth)?;
        document.document_children = top_level;
        let root_count = document
            .document_children
            .iter()
            .filter(|id| matches!(document.nodes[**id].kind, XmlNodeKind::Element(_)))
            .count();
        if root_count == 0 {
            return Err(xml_error("root element is missing"));
        }
        Ok(document)
    }

    /// Parses `fragment` as the new content of `parent` (`XmlElement.InnerXml`). On error the
    /// document is left exactly as it was.
    pub(crate) fn set_inner_xml(
        &mut self,
        parent: NodeId,
        fragment: &str,
        max_nesting_depth: usize,
    ) -> Result<(), StructuredError> {
        let node_count_before = self.nodes.len();
        let depth_of_parent = self.depth_of(parent);
        let remaining_depth = max_nesting_depth.saturating_sub(depth_of_parent);
        match self.parse_into(fragment, ParseTarget::Fragment { parent }, remaining_depth) {
            Ok(new_children) => {
                if let XmlNodeKind::Element(element) = &mut self.nodes[parent].kind {
                    element.children = new_children;
                    element.is_empty = false;
                }
                Ok(())
            }
            Err(error) => {
                self.nodes.truncate(node_count_before);
                Err(error)
            }
        }
    }

    fn depth_of(&self, node: NodeId) -> usize {
        let mut depth = 0;
        let mut current = self.nodes[node].parent;
        while let Some(parent) = current {
            depth += 1;
            current = self.nodes[parent].parent;
        }
        depth + 1
    }

    pub(crate) fn element(&self, node: NodeId) -> Option<&XmlElement> {
        match &self.nodes[node].kind {
            XmlNodeKind::Element(element) => Some(element),
            _ => None,
        }
    }

    pub(crate) fn element_mut(&mut self, node: NodeId) -> Option<&mut XmlElement> {
        match &mut self.nodes[node].kind {
            XmlNodeKind::Element(element) => Some(element),
            _ => None,
        }
    }

    pub(crate) fn add_node(&mut self, kind: XmlNodeKind, parent: Option<NodeId>) -> NodeId {
        self.nodes.push(XmlNode { kind, parent });
        self.nodes.len() - 1
    }

    /// The namespace URI bound to `prefix` (empty for the default namespace) at `element`, looking
    /// at the element and its ancestors; `Some("")` means "no namespace".
    pub(crate) fn resolve_prefix(&self, element: NodeId, prefix: &str) -> Option<String> {
        match prefix {
            "xml" => return Some(XML_NAMESPACE.to_owned()),
            "xmlns" => return Some(XMLNS_NAMESPACE.to_owned()),
            _ => {}
        }
        let declaration_name = if prefix.is_empty() {
            "xmlns".to_owned()
        } else {
            format!("xmlns:{prefix}")
        };
        let mut current = Some(element);
        while let Some(node) = current {
            if let Some(element_data) = self.element(node)
                && let Some(declaration) = element_data
                    .attributes
                    .iter()
                    .find(|attribute| attribute.name == declaration_name)
            {
                return Some(declaration.value.clone());
            }
            current = self.nodes[node].parent;
        }
        if prefix.is_empty() {
            Some(String::new())
        } else {
            None
        }
    }

    /// Whether `xml:space="preserve"` is in force at `element`.
    fn preserves_space(&self, element: Option<NodeId>) -> bool {
        let mut current = element;
        while let Some(node) = current {
            if let Some(element_data) = self.element(node)
                && let Some(space) = element_data
                    .attributes
                    .iter()
                    .find(|attribute| attribute.name == "xml:space")
            {
                return space.value == "preserve";
            }
            current = self.nodes[node].parent;
        }
        false
    }

    /// Reads `input` and appends its nodes; returns the ids of the top-level nodes read.
    fn parse_into(
        &mut self,
        input: &str,
        target: ParseTarget,
        max_nesting_depth: usize,
    ) -> Result<Vec<NodeId>, StructuredError> {
        let fragment_parent = match target {
            ParseTarget::Document => None,
            ParseTarget::Fragment { parent } => Some(parent),
        };
        let is_fragment = fragment_parent.is_some();
        let mut reader = quick_xml::Reader::from_str(input);
        reader.config_mut().check_end_names = true;
        reader.config_mut().check_comments = true;

        let mut top_level: Vec<NodeId> = Vec::new();
        let mut open_elements: Vec<NodeId> = Vec::new();
        // Text and entity references arrive as separate events; they form one text node.
        let mut pending_text = String::new();
        let mut seen_root = false;
        let mut seen_anything = false;

        loop {
            let event_start = reader.buffer_position() as usize;
            let event = reader.read_event().map_err(|error| {
                let (line, column) = position_of(input, reader.error_position() as usize);
                StructuredError::Parse {
                    format: StructuredFormat::Xml,
                    message: error.to_string(),
                    line: Some(line),
                    column: Some(column),
                }
            })?;
            let located = |message: String| {
                let (line, column) = position_of(input, event_start);
                StructuredError::Parse {
                    format: StructuredFormat::Xml,
                    message,
                    line: Some(line),
                    column: Some(column),
                }
            };
            if !matches!(event, Event::Text(_) | Event::GeneralRef(_)) {
                let parent = open_elements.last().copied().or(fragment_parent);
                self.flush_text(
                    &mut pending_text,
                    parent,
                    open_elements.is_empty(),
                    &mut top_level,
                )
                .map_err(&located)?;
            }
            let parent = open_elements.last().copied().or(fragment_parent);
            let at_top = open_elements.is_empty();
            match event {
                Event::Eof => break,
                Event::Decl(declaration) => {
                    if is_fragment || seen_anything {
                        return Err(located(
                            "unexpected XML declaration; it must be the first node in the document"
                                .to_owned(),
                        ));
                    }
                    let formatted = format_declaration(&declaration).map_err(located)?;
                    let id = self.add_node(XmlNodeKind::Declaration(formatted), None);
                    top_level.push(id);
                }
                Event::DocType(doctype) => {
                    if is_fragment || seen_root {
                        return Err(located("unexpected DTD declaration".to_owned()));
                    }
                    let content = doctype.into_inner().trim().to_owned();
                    let id = self.add_node(XmlNodeKind::DocumentType(content), None);
                    top_level.push(id);
                }
                Event::Start(start) => {
                    if at_top && !is_fragment && seen_root {
                        return Err(located("there are multiple root elements".to_owned()));
                    }
                    if open_elements.len() + 1 > max_nesting_depth {
                        return Err(StructuredError::NestingTooDeep {
                            format: StructuredFormat::Xml,
                            limit: max_nesting_depth,
                        });
                    }
                    let element = read_element(&start, false).map_err(&located)?;
                    let id = self.add_node(XmlNodeKind::Element(element), parent);
                    self.attach(id, parent, at_top, &mut top_level);
                    self.check_prefixes(id).map_err(&located)?;
                    open_elements.push(id);
                    seen_root = true;
                }
                Event::Empty(start) => {
                    if at_top && !is_fragment && seen_root {
                        return Err(located("there are multiple root elements".to_owned()));
                    }
                    if open_elements.len() + 1 > max_nesting_depth {
                        return Err(StructuredError::NestingTooDeep {
                            format: StructuredFormat::Xml,
                            limit: max_nesting_depth,
                        });
                    }
                    let element = read_element(&start, true).map_err(&located)?;
                    let id = self.add_node(XmlNodeKind::Element(element), parent);
                    self.attach(id, parent, at_top, &mut top_level);
                    self.check_prefixes(id).map_err(&located)?;
                    seen_root = true;
                }
                Event::End(_) => {
                    // quick-xml has already checked that the name matches the open tag.
                    if open_elements.pop().is_none() {
                        return Err(located("unexpected end tag".to_owned()));
                    }
                }
                Event::Text(text) => {
                    pending_text.push_str(&text.xml10_content());
                }
                Event::GeneralRef(reference) => {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(character)) => character.to_string(),
                        Ok(None) => {
                            let name = reference.into_inner();
                            match quick_xml::escape::resolve_predefined_entity(&name) {
                                Some(value) => value.to_owned(),
                                None => {
                                    return Err(located(format!(
                                        "reference to undeclared entity '{name}'"
                                    )));
                                }
                            }
                        }
                        Err(error) => return Err(located(error.to_string())),
                    };
                    pending_text.push_str(&resolved);
                }
                Event::CData(cdata) => {
                    if at_top && !is_fragment {
                        return Err(located(
                            "CDATA is not allowed outside the root element".to_owned(),
                        ));
                    }
                    let content = cdata.xml10_content().into_owned();
                    let id = self.add_node(XmlNodeKind::CData(content), parent);
                    self.attach(id, parent, at_top, &mut top_level);
                }
                Event::Comment(comment) => {
                    let id = self.add_node(
                        XmlNodeKind::Comment(comment.xml10_content().into_owned()),
                        parent,
                    );
                    self.attach(id, parent, at_top, &mut top_level);
                }
                Event::PI(instruction) => {
                    let target = instruction.target().to_owned();
                    if target.eq_ignore_ascii_case("xml") {
                        return Err(located("unexpected XML declaration".to_owned()));
                    }
                    let data = instruction.content().trim_start().to_owned();
                    let id =
                        self.add_node(XmlNodeKind::ProcessingInstruction { target, data }, parent);
                    self.attach(id, parent, at_top, &mut top_level);
                }
            }
            seen_anything = true;
        }
        if let Some(unclosed) = open_elements.last() {
            let name = self
                .element(*unclosed)
                .map_or("?", |element| element.name.as_str());
            return Err(xml_error(format!(
                "unexpected end of file; the element '{name}' is not closed"
            )));
        }
        Ok(top_level)
    }

    fn attach(
        &mut self,
        id: NodeId,
        parent: Option<NodeId>,
        at_top: bool,
        top_level: &mut Vec<NodeId>,
    ) {
        if at_top {
            top_level.push(id);
        } else if let Some(parent) = parent
            && let Some(element) = self.element_mut(parent)
        {
            element.children.push(id);
        }
    }

    /// Adds the collected text as a node, or drops it when it is insignificant whitespace.
    fn flush_text(
        &mut self,
        pending_text: &mut String,
        parent: Option<NodeId>,
        at_top: bool,
        top_level: &mut Vec<NodeId>,
    ) -> Result<(), String> {
        if pending_text.is_empty() {
            return Ok(());
        }
        let text = std::mem::take(pending_text);
        let is_whitespace = text.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
        if parent.is_none() {
            // Document level: only whitespace may appear, and it is never kept.
            if is_whitespace {
                return Ok(());
            }
            return Err("data at the root level is invalid".to_owned());
        }
        let kind = if is_whitespace {
            if !self.preserves_space(parent) {
                return Ok(());
            }
            XmlNodeKind::SignificantWhitespace(text)
        } else {
            XmlNodeKind::Text(text)
        };
        let id = self.add_node(kind, parent);
        self.attach(id, parent, at_top, top_level);
        Ok(())
    }

    /// `XmlDocument` refuses an element or attribute whose prefix is not declared in scope.
    fn check_prefixes(&self, element: NodeId) -> Result<(), String> {
        let Some(element_data) = self.element(element) else {
            return Ok(());
        };
        let names = std::iter::once(element_data.name.as_str()).chain(
            element_data
                .attributes
                .iter()
                .filter(|attribute| !attribute.is_namespace_declaration())
                .map(|attribute| attribute.name.as_str()),
        );
        for name in names {
            if let Some((prefix, _)) = name.split_once(':')
                && self.resolve_prefix(element, prefix).is_none()
            {
                return Err(format!("'{prefix}' is an undeclared prefix"));
            }
        }
        Ok(())
    }
}

fn read_element(start: &BytesStart<'_>, is_empty: bool) -> Result<XmlElement, String> {
    let name = start.name().as_ref().to_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes().with_checks(true) {
        let attribute = attribute.map_err(|error| error.to_string())?;
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|error| error.to_string())?
            .into_owned();
        attributes.push(XmlAttribute {
            name: attribute.key.as_ref().to_owned(),
            value,
        });
    }
    Ok(XmlElement {
        name,
        attributes,
        children: Vec::new(),
        is_empty,
    })
}

/// `<?xml version="1.0" encoding="utf-8"?>` as `XmlDeclaration.WriteTo` writes it: double quotes,
/// version, then encoding and standalone when present.
fn format_declaration(declaration: &quick_xml::events::BytesDecl<'_>) -> Result<String, String> {
    let version = declaration.version().map_err(|error| error.to_string())?;
    let mut formatted = format!("version=\"{version}\"");
    if let Some(encoding) = declaration.encoding() {
        let encoding = encoding.map_err(|error| error.to_string())?;
        formatted.push_str(&format!(" encoding=\"{encoding}\""));
    }
    if let Some(standalone) = declaration.standalone() {
        let standalone = standalone.map_err(|error| error.to_string())?;
        formatted.push_str(&format!(" standalone=\"{standalone}\""));
    }
    Ok(formatted)
}
