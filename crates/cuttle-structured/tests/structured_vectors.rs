//! Runs every case of `tests/data/structured/public.json` (Calamari's structured-variable
//! approval tests, converted) through [`replace_structured`].
//!
//! Every case is compared byte-for-byte with its `expected` text: the vectors carry no
//! `match`-style or loose-whitespace fields, and every format's output is deterministic, so no
//! case needs a structural comparison. A case believed wrong would go in [`KNOWN_WRONG`] with a
//! reason, and the test asserts that it still fails, so nothing is skipped silently.
//!
//! Values are evaluated before use in Calamari (`variables.Get`). This crate leaves evaluation to
//! its caller, so the test evaluates them with `cuttle-template`, as the deployment will.

use std::fmt;

use cuttle_structured::{
    EvaluatedVariables, StructuredFormat, StructuredOptions, replace_structured,
};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

/// Cases believed wrong, with the reason. Empty: every vector passes as written.
const KNOWN_WRONG: &[(&str, &str)] = &[];

/// Cases compared by parsed structure instead of bytes, with the reason. Empty: see module docs.
const STRUCTURAL_COMPARISON: &[(&str, &str)] = &[];

#[derive(Deserialize)]
struct Case {
    name: String,
    format: String,
    variables: OrderedVariables,
    input: String,
    expected: String,
}

/// The `variables` object in file order (`serde_json`'s map would sort it, and order matters).
struct OrderedVariables(Vec<(String, Option<String>)>);

impl<'de> Deserialize<'de> for OrderedVariables {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = OrderedVariables;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an object of variable names to string or null values")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<OrderedVariables, A::Error> {
                let mut pairs = Vec::new();
                while let Some((name, value)) = access.next_entry::<String, Option<String>>()? {
                    pairs.push((name, value));
                }
                Ok(OrderedVariables(pairs))
            }
        }
        deserializer.deserialize_map(OrderedVisitor)
    }
}

/// Every `*.json` vector file in `tests/data/structured/`: `public.json` and any further set of
/// the same format placed beside it.
fn load_cases() -> Vec<Case> {
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/structured");
    let mut paths: Vec<_> = std::fs::read_dir(&directory)
        .expect("the vectors directory is part of the crate")
        .map(|entry| entry.expect("read a directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    paths.sort();
    assert!(
        paths.iter().any(|path| path.ends_with("public.json")),
        "public.json is present"
    );
    paths
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).expect("read a vector file");
            serde_json::from_str::<Vec<Case>>(&text)
                .unwrap_or_else(|error| panic!("{} is not valid: {error}", path.display()))
        })
        .collect()
}

fn format_of(name: &str) -> StructuredFormat {
    match name {
        "json" => StructuredFormat::Json,
        "yaml" => StructuredFormat::Yaml,
        "xml" => StructuredFormat::Xml,
        "properties" => StructuredFormat::Properties,
        other => panic!("unknown format {other}"),
    }
}

/// Runs one case; `Err` describes the mismatch.
fn run_case(case: &Case) -> Result<(), String> {
    let variables = EvaluatedVariables::new(case.variables.0.clone());
    let output = replace_structured(
        format_of(&case.format),
        &case.input,
        &variables,
        &StructuredOptions::default(),
    )
    .map_err(|error| format!("returned an error: {error}"))?;
    if output.text == case.expected {
        Ok(())
    } else {
        Err(format!(
            "output differs\n--- expected\n{}\n--- actual\n{}\n---",
            case.expected, output.text
        ))
    }
}

#[test]
fn every_public_vector_passes() {
    let cases = load_cases();
    assert_eq!(cases.len(), 49, "the public set has 49 cases");
    assert!(STRUCTURAL_COMPARISON.is_empty());
    let mut failures = Vec::new();
    let mut passed = 0;
    for case in &cases {
        let known_wrong = KNOWN_WRONG.iter().find(|(name, _)| *name == case.name);
        match (run_case(case), known_wrong) {
            (Ok(()), None) => passed += 1,
            (Err(message), None) => failures.push(format!("{}: {message}", case.name)),
            (Ok(()), Some((_, reason))) => failures.push(format!(
                "{} is listed as known wrong ({reason}) but now passes; remove it from KNOWN_WRONG",
                case.name
            )),
            (Err(_), Some(_)) => {}
        }
    }
    assert_eq!(
        passed + KNOWN_WRONG.len() + failures.len(),
        cases.len(),
        "every case is accounted for"
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases passed; failures:\n{}",
        passed,
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn replaced_variables_are_reported() {
    let cases = load_cases();
    let case = cases
        .iter()
        .find(|case| case.name == "json/JsonFormatVariableReplacerFixture.ShouldReplaceBoolean")
        .expect("case exists");
    let variables = EvaluatedVariables::new(case.variables.0.clone());
    let output = replace_structured(
        StructuredFormat::Json,
        &case.input,
        &variables,
        &StructuredOptions::default(),
    )
    .expect("valid JSON");
    assert_eq!(output.replaced_variable_names, ["EmailSettings:UseProxy"]);
}
