//! Variables whose values are evaluated as templates before use, as Calamari's
//! `variables.Get(name)` evaluates them with Octostache.

use cuttle_template::{EvaluationOptions, VariableDictionary, evaluate};

use crate::StructuredVariables;

/// Name/value pairs in definition order, offered to the replacer with each value evaluated by
/// `cuttle-template` against all of them. A `None` value is C#'s `null`: the replacer sees
/// `null`, while templates that mention the name see `""`, as Octostache binds it.
pub struct EvaluatedVariables {
    pairs: Vec<(String, Option<String>)>,
    dictionary: VariableDictionary,
    options: EvaluationOptions,
}

impl EvaluatedVariables {
    pub fn new(pairs: Vec<(String, Option<String>)>) -> EvaluatedVariables {
        let mut dictionary = VariableDictionary::new();
        for (name, value) in &pairs {
            dictionary.set(name.clone(), value.as_deref().unwrap_or_default());
        }
        EvaluatedVariables {
            pairs,
            dictionary,
            // Values are substituted leniently, as file substitution is: text that does not
            // parse is kept.
            options: EvaluationOptions {
                halt_on_error: false,
                ..EvaluationOptions::default()
            },
        }
    }
}

impl StructuredVariables for EvaluatedVariables {
    fn variable_names(&self) -> Vec<String> {
        self.pairs.iter().map(|(name, _)| name.clone()).collect()
    }

    fn evaluated_value(&self, name: &str) -> Option<String> {
        // The dictionary keeps the last definition of a name, as a variable dictionary does.
        let defined_as_null = self
            .pairs
            .iter()
            .rev()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))?
            .1
            .is_none();
        if defined_as_null {
            return None;
        }
        let raw = self.dictionary.get_raw(name)?;
        evaluate(raw, &self.dictionary, &self.options).output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_evaluated_against_each_other() {
        let variables = EvaluatedVariables::new(vec![
            ("Host".to_owned(), Some("db01".to_owned())),
            (
                "Connection".to_owned(),
                Some("Server=#{Host | ToUpper}".to_owned()),
            ),
            ("Nothing".to_owned(), None),
        ]);
        assert_eq!(
            variables.evaluated_value("connection").as_deref(),
            Some("Server=DB01")
        );
        assert_eq!(variables.evaluated_value("Nothing"), None);
        assert!(variables.contains_variable("nothing"));
        assert_eq!(variables.evaluated_value("Missing"), None);
    }
}
