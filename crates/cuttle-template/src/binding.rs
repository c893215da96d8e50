//! The variable tree that lookups walk: a flat name → value map turned into nodes.
//!
//! `Octopus.Action[Step A].Output.X` becomes `Octopus` → `.Action` → `[Step A]` → `.Output` →
//! `.X`. Each node has an optional value, `.Name` children and `[index]` children, both
//! case-insensitive and kept in definition order (which drives `#{each}` order and `[*]`).
//! This module owns that shape; it does not evaluate values.

use std::collections::HashMap;
use std::rc::Rc;

use crate::syntax::{Indexer, PathStep};

/// Octopus variable names compare like .NET `OrdinalIgnoreCase`.
pub(crate) fn fold_name(name: &str) -> String {
    name.chars().flat_map(char::to_lowercase).collect()
}

pub(crate) fn names_equal(left: &str, right: &str) -> bool {
    left == right || fold_name(left) == fold_name(right)
}

/// A case-insensitive map that remembers insertion order, like a .NET `Dictionary` that is
/// only ever added to.
#[derive(Clone, Debug, Default)]
pub(crate) struct OrderedNameMap {
    entries: Vec<(String, Rc<Binding>)>,
    positions: HashMap<String, usize>,
}

impl OrderedNameMap {
    pub(crate) fn get(&self, name: &str) -> Option<&Rc<Binding>> {
        self.positions
            .get(&fold_name(name))
            .and_then(|&position| self.entries.get(position))
            .map(|(_, node)| node)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn first(&self) -> Option<&Rc<Binding>> {
        self.entries.first().map(|(_, node)| node)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Rc<Binding>> {
        self.entries.iter().map(|(_, node)| node)
    }

    /// Replaces the value of an existing name in place, so its position is kept.
    pub(crate) fn insert(&mut self, name: &str, node: Rc<Binding>) {
        let folded = fold_name(name);
        match self.positions.get(&folded) {
            Some(&position) => {
                if let Some(entry) = self.entries.get_mut(position) {
                    entry.1 = node;
                }
            }
            None => {
                self.positions.insert(folded, self.entries.len());
                self.entries.push((name.to_string(), node));
            }
        }
    }

    fn get_or_insert_with(
        &mut self,
        name: &str,
        create: impl FnOnce() -> Binding,
    ) -> &mut Rc<Binding> {
        let folded = fold_name(name);
        let position = match self.positions.get(&folded) {
            Some(&position) => position,
            None => {
                self.positions.insert(folded, self.entries.len());
                self.entries.push((name.to_string(), Rc::new(create())));
                self.entries.len() - 1
            }
        };
        &mut self.entries[position].1
    }
}

/// One node of the variable tree.
#[derive(Clone, Debug, Default)]
pub(crate) struct Binding {
    /// The raw (unevaluated) value, if any.
    pub(crate) item: Option<String>,
    pub(crate) children: OrderedNameMap,
    pub(crate) indexable: OrderedNameMap,
}

impl Binding {
    pub(crate) fn with_item(item: impl Into<String>) -> Self {
        Binding {
            item: Some(item.into()),
            ..Binding::default()
        }
    }

    /// Adds a value under a parsed path. The node for `Foo[Bar]` starts out with the index text
    /// `Bar` as its value; a variable named exactly `Foo[Bar]` overwrites it.
    pub(crate) fn add_path(&mut self, steps: &[PathStep], value: &str) {
        let Some((first, rest)) = steps.split_first() else {
            self.item = Some(value.to_string());
            return;
        };
        let next = match first {
            PathStep::Identifier(name) => self.children.get_or_insert_with(name, Binding::default),
            PathStep::Indexer(indexer) => {
                let index = match indexer {
                    Indexer::Text(text) => text.clone(),
                    // A symbol indexer cannot be resolved while building; keep its text.
                    other => other
                        .to_string()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_string(),
                };
                let index_for_item = index.clone();
                self.indexable
                    .get_or_insert_with(&index, move || Binding::with_item(index_for_item))
            }
        };
        Rc::make_mut(next).add_path(rest, value);
    }
}
