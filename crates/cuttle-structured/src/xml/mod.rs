//! XML replacement, reproducing Calamari's `XmlFormatVariableReplacer`.
//!
//! Every variable whose name contains `/` or `:` is compiled as an XPath expression (a name that
//! does not compile is skipped) against a namespace table built from every `xmlns:prefix`
//! declaration in the document, the first declaration of a prefix winning. Each selected node is
//! then changed according to its type:
//!
//! | selected node | effect |
//! | --- | --- |
//! | text, CDATA, significant whitespace, comment, processing instruction | its data is replaced |
//! | attribute | its value is replaced |
//! | element whose only child is CDATA | the CDATA content is replaced |
//! | element with child elements | the value is parsed as an XML fragment (`InnerXml`); an invalid fragment leaves it unchanged with a warning |
//! | any other element | its content becomes one text node (`InnerText`) |
//! | the document root | a warning, nothing changes |
//!
//! The document is then written back with .NET's indenting writer rules (see [`writer`]).

mod document;
mod writer;
mod xpath;

use std::collections::HashMap;

use document::{XmlDocument, XmlNodeKind};
use xpath::{CompiledXPath, XPathNode};

use crate::line_endings::most_common_line_ending;
use crate::variables::StructuredVariables;
use crate::{ReplacementLog, StructuredError, StructuredOptions, StructuredOutput};

pub(crate) fn replace_xml<Variables>(
    input: &str,
    variables: &Variables,
    options: &StructuredOptions,
) -> Result<StructuredOutput, StructuredError>
where
    Variables: StructuredVariables + ?Sized,
{
    let mut document = XmlDocument::parse(input, options.max_nesting_depth)?;
    let line_ending = most_common_line_ending(input);
    let mut log = ReplacementLog::default();
    let namespaces = namespace_table(&document, &mut log);

    for variable_name in variables.variable_names() {
        // Other names ("Octopus.Release.Id") would compile as a relative path selecting nothing
        // useful, or worse; Calamari only treats names that look like paths as XPath.
        if !variable_name.contains('/') && !variable_name.contains(':') {
            continue;
        }
        let Ok(compiled) = CompiledXPath::compile(&variable_name, &namespaces) else {
            continue;
        };
        let selected = compiled.select(&document);
        if selected.is_empty() {
            continue;
        }
        let value = variables
            .evaluated_value(&variable_name)
            .unwrap_or_default();
        for node in selected {
            if apply_value(
                &mut document,
                node,
                &variable_name,
                &value,
                options,
                &mut log,
            ) {
                log.record_replacement(&variable_name);
            }
        }
    }

    Ok(log.finish(writer::write_document(&document, line_ending.as_str())))
}

/// Prefix to namespace URI for every `xmlns:prefix` declaration, in document order; a prefix
/// declared again with another URI keeps its first URI and produces Calamari's warning.
fn namespace_table(document: &XmlDocument, log: &mut ReplacementLog) -> HashMap<String, String> {
    let mut namespaces: HashMap<String, String> = HashMap::new();
    let mut stack: Vec<usize> = document.document_children.iter().rev().copied().collect();
    while let Some(node) = stack.pop() {
        let Some(element) = document.element(node) else {
            continue;
        };
        for attribute in &element.attributes {
            let Some(prefix) = attribute.name.strip_prefix("xmlns:") else {
                continue;
            };
            match namespaces.get(prefix) {
                Some(existing) if *existing != attribute.value => log.warn(
                    None,
                    format!(
                        "The namespace '{}' could not be mapped to the '{prefix}' prefix, as another namespace '{existing}' is already mapped to that prefix. XPath selectors using this prefix may not return the expected nodes. You can avoid this by ensuring all namespaces in your document have unique prefixes.",
                        attribute.value
                    ),
                ),
                Some(_) => {}
                None => {
                    namespaces.insert(prefix.to_owned(), attribute.value.clone());
                }
            }
        }
        stack.extend(element.children.iter().rev().copied());
    }
    namespaces
}

/// Applies `value` to one selected node; returns whether anything was replaced.
fn apply_value(
    document: &mut XmlDocument,
    node: XPathNode,
    variable_name: &str,
    value: &str,
    options: &StructuredOptions,
    log: &mut ReplacementLog,
) -> bool {
    let node_id = match node {
        XPathNode::Root => {
            log.warn(
                Some(variable_name),
                "Node of type Document not supported".to_owned(),
            );
            return false;
        }
        XPathNode::Attribute(element_id, attribute_idx) => {
            return match document
                .element_mut(element_id)
                .and_then(|element| element.attributes.get_mut(attribute_idx))
            {
                Some(attribute) => {
                    attribute.value = value.to_owned();
                    true
                }
                None => false,
            };
        }
        XPathNode::Node(node_id) => node_id,
    };
    match &mut document.nodes[node_id].kind {
        XmlNodeKind::Text(data)
        | XmlNodeKind::CData(data)
        | XmlNodeKind::SignificantWhitespace(data)
        | XmlNodeKind::Comment(data)
        | XmlNodeKind::ProcessingInstruction { data, .. } => {
            *data = value.to_owned();
            return true;
        }
        XmlNodeKind::Declaration(_) | XmlNodeKind::DocumentType(_) => return false,
        XmlNodeKind::Element(_) => {}
    }
    let Some(element) = document.element(node_id) else {
        return false;
    };
    let children = element.children.clone();
    if let [only_child] = children.as_slice()
        && let XmlNodeKind::CData(data) = &mut document.nodes[*only_child].kind
    {
        // Keeping the CDATA wrapper keeps values that need it (scripts, connection strings) valid.
        *data = value.to_owned();
        return true;
    }
    let has_child_elements = children
        .iter()
        .any(|child| matches!(document.nodes[*child].kind, XmlNodeKind::Element(_)));
    if has_child_elements {
        return match document.set_inner_xml(node_id, value, options.max_nesting_depth) {
            Ok(()) => true,
            Err(_) => {
                log.warn(
                    Some(variable_name),
                    format!(
                        "Could not set the value of the XML element at XPath '{variable_name}' to '{value}'. Expected a valid XML fragment. Skipping replacement of this element."
                    ),
                );
                false
            }
        };
    }
    let text_node = document.add_node(XmlNodeKind::Text(value.to_owned()), Some(node_id));
    if let Some(element) = document.element_mut(node_id) {
        element.children = vec![text_node];
        element.is_empty = false;
    }
    true
}
