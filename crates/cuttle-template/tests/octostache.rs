//! Runs every Octostache test vector in `tests/data/octostache/public.json` (converted from
//! Octostache's own unit tests; `README.md` beside it describes the format) and reports each
//! failing case by name.

use std::collections::BTreeSet;

use cuttle_template::chrono::{DateTime, FixedOffset, Utc};
use cuttle_template::{DiagnosticKind, EvaluationOptions, VariableDictionary, evaluate};
use serde_json::Value;

/// Cases believed to be wrong, with the reason. The test asserts they still fail, so an entry
/// cannot silently go stale once the implementation (or the vector) changes.
const KNOWN_WRONG: &[(&str, &str)] = &[];

/// Every `*.json` vector file in `tests/data/octostache/`: `public.json` and any further set
/// of the same format dropped beside it (the held-out acceptance set is one).
fn vector_files() -> Vec<(String, Vec<Value>)> {
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/octostache");
    let mut paths: Vec<_> = std::fs::read_dir(&directory)
        .expect("read the vector directory")
        .map(|entry| entry.expect("read a directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read a vector file");
            let mut cases: Vec<Value> = serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("{} is not valid JSON: {error}", path.display()));
            // `serde_json`'s map sorts keys; variables are defined in file order, so read them
            // again in that order and keep them as a list of pairs.
            let ordered: Vec<OrderedVariablesOnly> = serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("{} is not valid: {error}", path.display()));
            for (case, ordered) in cases.iter_mut().zip(ordered) {
                case["variables"] = Value::Array(
                    ordered
                        .variables
                        .0
                        .into_iter()
                        .map(|(name, value)| Value::Array(vec![Value::String(name), value]))
                        .collect(),
                );
            }
            (path.display().to_string(), cases)
        })
        .collect()
}

/// A fixed clock for the `NowDate` filters, as the crate never reads the real one.
fn fixed_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-05-22T09:05:00Z")
        .expect("a valid fixed instant")
        .with_timezone(&Utc)
}

/// A case's `variables`, in file order.
#[derive(serde::Deserialize)]
struct OrderedVariablesOnly {
    #[serde(default)]
    variables: OrderedPairs,
}

#[derive(Default)]
struct OrderedPairs(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for OrderedPairs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> serde::de::Visitor<'de> for PairsVisitor {
            type Value = OrderedPairs;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("an object of variable names to values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<OrderedPairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = access.next_entry::<String, Value>()? {
                    pairs.push(pair);
                }
                Ok(OrderedPairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

/// Checks one case; `Err` describes the mismatch.
fn check_case(case: &Value) -> Result<(), String> {
    let mut variables = VariableDictionary::new();
    for pair in case["variables"]
        .as_array()
        .ok_or("variables is not a list of pairs")?
    {
        let name = pair[0].as_str().ok_or("a variable name is not a string")?;
        variables.set(
            name.to_owned(),
            pair[1].as_str().ok_or("a variable value is not a string")?,
        );
    }
    let template = case["template"]
        .as_str()
        .ok_or("template is not a string")?;
    let options = EvaluationOptions {
        halt_on_error: case["haltOnError"].as_bool().unwrap_or(true),
        now_utc: Some(fixed_now()),
        local_offset: FixedOffset::east_opt(0).expect("zero offset"),
        ..EvaluationOptions::default()
    };
    let evaluation = evaluate(template, &variables, &options);
    let expects_error = case["error"].as_bool().unwrap_or(false);
    let expected = case["expected"].as_str();

    match (expected, &evaluation.output) {
        (None, Some(actual)) => return Err(format!("expected a null result, got {actual:?}")),
        (Some(expected), None) => {
            return Err(format!(
                "expected {expected:?}, got a null result ({:?})",
                evaluation.diagnostics
            ));
        }
        (Some(expected), Some(actual)) => {
            let (expected, actual) = if case["match"].as_str() == Some("trim") {
                (expected.trim(), actual.trim())
            } else {
                (expected, actual.as_str())
            };
            if expected != actual {
                return Err(format!(
                    "expected {expected:?}\n      got {actual:?}\n      diagnostics {:?}",
                    evaluation.diagnostics
                ));
            }
        }
        (None, None) => {}
    }

    let error_kinds: Vec<DiagnosticKind> = evaluation
        .diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.kind.is_error())
        .map(|diagnostic| diagnostic.kind)
        .collect();
    let halting = case["haltOnError"].as_bool().unwrap_or(true);
    match (expects_error, expected.is_none()) {
        (true, true) if !error_kinds.contains(&DiagnosticKind::RecursiveDefinition) => {
            Err(format!(
                "expected a recursive-definition error, got {:?}",
                evaluation.diagnostics
            ))
        }
        (true, false) if !error_kinds.contains(&DiagnosticKind::ParseError) => Err(format!(
            "expected a parse error, got {:?}",
            evaluation.diagnostics
        )),
        // Without an error expectation, a halting evaluation must not report errors.
        (false, _) if halting && !error_kinds.is_empty() => {
            Err(format!("unexpected errors {:?}", evaluation.diagnostics))
        }
        _ => Ok(()),
    }
}

#[test]
fn every_octostache_vector_passes() {
    let files = vector_files();
    let public = files
        .iter()
        .find(|(path, _)| path.ends_with("public.json"))
        .expect("public.json is present");
    assert_eq!(public.1.len(), 454, "the public vector set has 454 cases");
    let cases: Vec<Value> = files.into_iter().flat_map(|(_, cases)| cases).collect();

    let known_wrong: BTreeSet<&str> = KNOWN_WRONG.iter().map(|(name, _)| *name).collect();
    let mut failures = Vec::new();
    let mut stale_known_wrong = Vec::new();
    let mut passed = 0;
    for case in &cases {
        let name = case["name"].as_str().unwrap_or("<unnamed>");
        let result = check_case(case);
        match (result, known_wrong.contains(name)) {
            (Ok(()), false) => passed += 1,
            (Ok(()), true) => stale_known_wrong.push(name.to_string()),
            (Err(_), true) => {}
            (Err(reason), false) => failures.push(format!("{name}\n      {reason}")),
        }
    }
    assert!(
        stale_known_wrong.is_empty(),
        "KNOWN_WRONG cases now pass; remove them: {stale_known_wrong:#?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed ({passed} passed):\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
}
