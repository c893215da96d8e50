//! Where variable values come from: the [`VariableLookup`] trait and the simple
//! [`VariableDictionary`] that implements it.
//!
//! Octopus variable names are case-insensitive, and definition order matters (it drives
//! `#{each}` order and which entry `[*]` picks), so the dictionary keeps insertion order and
//! folds case. Scoping, precedence and sensitivity are not this crate's business.

use std::collections::HashMap;

use crate::binding::fold_name;

/// A source of raw (unevaluated) variable values.
///
/// The evaluator needs every variable, in definition order, because it builds the variable
/// tree that `#{each}`, indexers and `[*]` walk.
pub trait VariableLookup {
    /// Calls `visit(name, raw_value)` once per variable, in definition order.
    fn for_each_variable(&self, visit: &mut dyn FnMut(&str, &str));
}

/// An insertion-ordered, case-insensitive map from variable name to raw value.
///
/// Setting a name that already exists (in any case) replaces its value and keeps its position
/// and original spelling, as a .NET `Dictionary` with an ignore-case comparer does.
#[derive(Clone, Debug, Default)]
pub struct VariableDictionary {
    entries: Vec<(String, String)>,
    positions: HashMap<String, usize>,
}

impl VariableDictionary {
    /// An empty dictionary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to the raw `value` (which may itself contain `#{...}`).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        let folded = fold_name(&name);
        match self.positions.get(&folded) {
            Some(&position) => {
                if let Some(entry) = self.entries.get_mut(position) {
                    entry.1 = value;
                }
            }
            None => {
                self.positions.insert(folded, self.entries.len());
                self.entries.push((name, value));
            }
        }
    }

    /// The raw value of `name`, matched case-insensitively.
    pub fn get_raw(&self, name: &str) -> Option<&str> {
        let position = *self.positions.get(&fold_name(name))?;
        self.entries.get(position).map(|(_, value)| value.as_str())
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no variables.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `(name, raw value)` pairs in definition order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

impl VariableLookup for VariableDictionary {
    fn for_each_variable(&self, visit: &mut dyn FnMut(&str, &str)) {
        for (name, value) in &self.entries {
            visit(name, value);
        }
    }
}

impl<Name: Into<String>, Value: Into<String>> FromIterator<(Name, Value)> for VariableDictionary {
    fn from_iter<Pairs: IntoIterator<Item = (Name, Value)>>(pairs: Pairs) -> Self {
        let mut dictionary = VariableDictionary::new();
        for (name, value) in pairs {
            dictionary.set(name, value);
        }
        dictionary
    }
}
