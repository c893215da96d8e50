//! How the replacers see the deployment's variables, and the naming rules shared by the formats:
//! the `Octopus` reserved-name rule and Calamari's case-insensitive (`OrdinalIgnoreCase`) matching.

use std::collections::HashMap;

/// The variables offered to a structured replacement.
///
/// The caller decides what "evaluated" means: in Cuttle the implementation runs the Octostache
/// evaluator, as Calamari's `IVariables.Get(name)` does, so a value such as `#{Smtp.Host}` arrives
/// already expanded. Values are only requested for names that match something in the file.
pub trait StructuredVariables {
    /// Every variable name, in definition order. Order matters: when two variables touch the same
    /// node, or one replaces a structure that contains the other's node, the first applied wins
    /// where Calamari's does.
    fn variable_names(&self) -> Vec<String>;

    /// The evaluated value of `name` (matched case-insensitively); `None` for a variable whose
    /// value is null (C# `null`) or that does not exist.
    fn evaluated_value(&self, name: &str) -> Option<String>;

    /// Whether a variable named `name` (case-insensitive) exists, even with a null value.
    fn contains_variable(&self, name: &str) -> bool {
        let wanted = case_insensitive_key(name);
        self.variable_names()
            .iter()
            .any(|candidate| case_insensitive_key(candidate) == wanted)
    }
}

/// Finds a pair by case-insensitive name; the first definition wins, as a dictionary built with
/// `DistinctBy` would keep it.
fn find_pair<'pairs, Value>(
    pairs: &'pairs [(String, Value)],
    name: &str,
) -> Option<&'pairs (String, Value)> {
    let wanted = case_insensitive_key(name);
    pairs
        .iter()
        .find(|(candidate, _)| case_insensitive_key(candidate) == wanted)
}

/// Raw (unevaluated) values; null values are `None`.
impl StructuredVariables for [(String, Option<String>)] {
    fn variable_names(&self) -> Vec<String> {
        self.iter().map(|(name, _)| name.clone()).collect()
    }

    fn evaluated_value(&self, name: &str) -> Option<String> {
        find_pair(self, name).and_then(|(_, value)| value.clone())
    }
}

/// Raw (unevaluated) values, none of them null.
impl StructuredVariables for [(String, String)] {
    fn variable_names(&self) -> Vec<String> {
        self.iter().map(|(name, _)| name.clone()).collect()
    }

    fn evaluated_value(&self, name: &str) -> Option<String> {
        find_pair(self, name).map(|(_, value)| value.clone())
    }
}

impl<Pair> StructuredVariables for Vec<Pair>
where
    [Pair]: StructuredVariables,
{
    fn variable_names(&self) -> Vec<String> {
        self.as_slice().variable_names()
    }

    fn evaluated_value(&self, name: &str) -> Option<String> {
        self.as_slice().evaluated_value(name)
    }

    fn contains_variable(&self, name: &str) -> bool {
        self.as_slice().contains_variable(name)
    }
}

/// `^Octopus([^:]|$)`, case-insensitive: system variables such as `Octopus.Release.Id` must never
/// rewrite a config file, while `Octopus:Section` is an ordinary path whose first key happens to be
/// "Octopus".
pub fn is_octopus_reserved_variable_name(name: &str) -> bool {
    let Some(prefix) = name.get(..7) else {
        return false;
    };
    if !prefix.eq_ignore_ascii_case("octopus") {
        return false;
    }
    !name[7..].starts_with(':')
}

/// A key for `OrdinalIgnoreCase` comparisons: each character upper-cased when its upper case is a
/// single character (so `ß` stays `ß`, as .NET's invariant upper-casing leaves it).
pub(crate) fn case_insensitive_key(text: &str) -> String {
    text.chars()
        .map(|character| {
            let mut upper = character.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(single), None) => single,
                _ => character,
            }
        })
        .collect()
}

/// The variables a path-keyed replacer (JSON, YAML) may use: reserved names dropped, the first
/// definition kept for names that differ only by case, looked up case-insensitively.
pub(crate) struct PathVariableTable {
    /// Normalised name to the name as the caller spelled it.
    names_by_key: HashMap<String, String>,
    /// Names in definition order (after de-duplication), for replacers that apply in that order.
    names_in_order: Vec<String>,
}

impl PathVariableTable {
    pub(crate) fn new<Variables>(variables: &Variables) -> Self
    where
        Variables: StructuredVariables + ?Sized,
    {
        let mut names_by_key = HashMap::new();
        let mut names_in_order = Vec::new();
        for name in variables.variable_names() {
            if is_octopus_reserved_variable_name(&name) {
                continue;
            }
            let key = case_insensitive_key(&name);
            if names_by_key.contains_key(&key) {
                continue;
            }
            names_by_key.insert(key, name.clone());
            names_in_order.push(name);
        }
        PathVariableTable {
            names_by_key,
            names_in_order,
        }
    }

    /// The caller's spelling of the variable matching `path`, if any.
    pub(crate) fn variable_for_path(&self, path: &str) -> Option<&str> {
        self.names_by_key
            .get(&case_insensitive_key(path))
            .map(String::as_str)
    }

    pub(crate) fn names_in_order(&self) -> &[String] {
        &self.names_in_order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_follow_the_octopus_prefix_rule() {
        assert!(is_octopus_reserved_variable_name("Octopus"));
        assert!(is_octopus_reserved_variable_name("octopus.release.id"));
        assert!(is_octopus_reserved_variable_name("OctopusRocks"));
        assert!(is_octopus_reserved_variable_name("OctopusServer:WebPort"));
        assert!(!is_octopus_reserved_variable_name("Octopus:Section"));
        assert!(!is_octopus_reserved_variable_name("IThinkOctopusIsGreat"));
        assert!(!is_octopus_reserved_variable_name("Octo"));
        assert!(!is_octopus_reserved_variable_name("Octöpus"));
    }

    #[test]
    fn lookups_ignore_case_and_keep_the_first_definition() {
        let variables = vec![
            ("Foo:Bar".to_owned(), "first".to_owned()),
            ("foo:bar".to_owned(), "second".to_owned()),
        ];
        let table = PathVariableTable::new(&variables);
        assert_eq!(table.variable_for_path("FOO:BAR"), Some("Foo:Bar"));
        assert_eq!(table.names_in_order(), ["Foo:Bar".to_owned()]);
        assert_eq!(
            variables.evaluated_value("FOO:bar"),
            Some("first".to_owned())
        );
    }
}
