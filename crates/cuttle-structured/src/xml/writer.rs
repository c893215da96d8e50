//! Serialises an [`XmlDocument`] the way .NET's `XmlWriter` with `Indent = true` does, which is
//! what Calamari writes with.
//!
//! The rules that matter (from `XmlEncodedRawTextWriterIndent`): every element, comment and
//! processing instruction starts on a new line indented two spaces per level, except inside
//! *mixed content*: once an element has had text, CDATA or significant whitespace written into it,
//! nothing more inside it is indented, and its children inherit that. An end tag goes on its own
//! line only if something other than text was written since its start tag, so `<a></a>` and
//! `<a>text</a>` stay on one line. Empty elements are written `<a />`. There is no line break at
//! the end of the output.

use super::document::{NodeId, XmlDocument, XmlNodeKind};

pub(crate) fn write_document(document: &XmlDocument, newline: &str) -> String {
    let mut writer = IndentingWriter {
        output: String::new(),
        newline,
        indent_level: 0,
        mixed_content: false,
        mixed_content_stack: Vec::new(),
        text_end: 0,
        content_start: 0,
    };
    for node in &document.document_children {
        writer.write_node(document, *node);
    }
    writer.output
}

struct IndentingWriter<'newline> {
    output: String,
    newline: &'newline str,
    indent_level: usize,
    mixed_content: bool,
    mixed_content_stack: Vec<bool>,
    /// Output length right after the last text write (`_textPos`).
    text_end: usize,
    /// Output length right after the last start tag was closed with `>` (`_contentPos`).
    content_start: usize,
}

impl IndentingWriter<'_> {
    fn write_indent(&mut self) {
        self.output.push_str(self.newline);
        for _ in 0..self.indent_level {
            self.output.push_str("  ");
        }
    }

    /// Indents before a markup node unless in mixed content or right at the start.
    fn indent_before_markup(&mut self) {
        if !self.mixed_content && self.text_end != self.output.len() {
            self.write_indent();
        }
    }

    fn mark_text_written(&mut self) {
        self.mixed_content = true;
        self.text_end = self.output.len();
    }

    fn write_node(&mut self, document: &XmlDocument, node: NodeId) {
        match &document.nodes[node].kind {
            XmlNodeKind::Declaration(declaration) => {
                self.output.push_str("<?xml ");
                self.output.push_str(declaration);
                self.output.push_str("?>");
            }
            XmlNodeKind::DocumentType(content) => {
                self.indent_before_markup();
                self.output.push_str("<!DOCTYPE ");
                self.output.push_str(content);
                self.output.push('>');
            }
            XmlNodeKind::Comment(data) => {
                self.indent_before_markup();
                self.output.push_str("<!--");
                self.output.push_str(data);
                self.output.push_str("-->");
            }
            XmlNodeKind::ProcessingInstruction { target, data } => {
                self.indent_before_markup();
                self.output.push_str("<?");
                self.output.push_str(target);
                if !data.is_empty() {
                    self.output.push(' ');
                    self.output.push_str(data);
                }
                self.output.push_str("?>");
            }
            XmlNodeKind::Text(text) => {
                self.mixed_content = true;
                escape_text(text, self.newline, &mut self.output);
                self.text_end = self.output.len();
            }
            XmlNodeKind::SignificantWhitespace(text) => {
                self.mixed_content = true;
                escape_text(text, self.newline, &mut self.output);
                self.text_end = self.output.len();
            }
            XmlNodeKind::CData(text) => {
                self.output.push_str("<![CDATA[");
                // "]]>" cannot appear inside a CDATA section, so it is split across two.
                self.output
                    .push_str(&text.replace("]]>", "]]]]><![CDATA[>"));
                self.output.push_str("]]>");
                self.mark_text_written();
            }
            XmlNodeKind::Element(element) => {
                self.indent_before_markup();
                self.indent_level += 1;
                self.mixed_content_stack.push(self.mixed_content);
                self.output.push('<');
                self.output.push_str(&element.name);
                for attribute in &element.attributes {
                    self.output.push(' ');
                    self.output.push_str(&attribute.name);
                    self.output.push_str("=\"");
                    escape_attribute(&attribute.value, &mut self.output);
                    self.output.push('"');
                }
                if element.is_empty && element.children.is_empty() {
                    self.indent_level -= 1;
                    self.output.push_str(" />");
                    self.mixed_content = self.mixed_content_stack.pop().unwrap_or(false);
                    return;
                }
                self.output.push('>');
                self.content_start = self.output.len();
                // The root element does not inherit mixed content from the document level.
                self.mixed_content = if self.indent_level == 1 {
                    false
                } else {
                    self.mixed_content_stack.last().copied().unwrap_or(false)
                };
                for child in &element.children {
                    self.write_node(document, *child);
                }
                self.indent_level -= 1;
                if !self.mixed_content
                    && self.content_start != self.output.len()
                    && self.text_end != self.output.len()
                {
                    self.write_indent();
                }
                self.mixed_content = self.mixed_content_stack.pop().unwrap_or(false);
                self.output.push_str("</");
                self.output.push_str(&element.name);
                self.output.push('>');
            }
        }
    }
}

/// Text content: `&`, `<`, `>` escaped; line breaks written as the output's newline
/// (`NewLineHandling.Replace`); other control characters as character references.
fn escape_text(text: &str, newline: &str, output: &mut String) {
    let mut characters = text.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '&' => output.push_str("&amp;"),
            '<' => output.push_str("&lt;"),
            '>' => output.push_str("&gt;"),
            '\r' => {
                if characters.peek() == Some(&'\n') {
                    characters.next();
                }
                output.push_str(newline);
            }
            '\n' => output.push_str(newline),
            '\t' => output.push('\t'),
            '\u{0}'..='\u{1f}' => output.push_str(&format!("&#x{:X};", u32::from(character))),
            _ => output.push(character),
        }
    }
}

/// Attribute values: `&`, `<`, `>`, `"` escaped, and tab and line breaks as character references
/// so they survive attribute-value normalisation when read back.
fn escape_attribute(value: &str, output: &mut String) {
    for character in value.chars() {
        match character {
            '&' => output.push_str("&amp;"),
            '<' => output.push_str("&lt;"),
            '>' => output.push_str("&gt;"),
            '"' => output.push_str("&quot;"),
            '\u{0}'..='\u{1f}' => output.push_str(&format!("&#x{:X};", u32::from(character))),
            _ => output.push(character),
        }
    }
}
