//! Drives `cuttle template render` and `cuttle template replace` with every test vector, so
//! the command line behaves exactly as the engine's own data-driven tests require: output on
//! stdout byte for byte, exit 1 on a parse error (input printed unchanged), exit 2 on a
//! recursive definition, nothing printed for a null result.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const CUTTLE: &str = env!("CARGO_BIN_EXE_cuttle");

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the workspace root")
        .to_owned()
}

/// Every `*.json` file of a vector directory, parsed, with each case's `variables` as an
/// ordered list of pairs (`serde_json`'s map would sort them).
fn load_vectors(directory: &Path) -> Vec<(Value, Vec<(String, Value)>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(directory)
        .expect("read the vector directory")
        .map(|entry| entry.expect("read an entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    paths.sort();
    let mut cases = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("read a vector file");
        let values: Vec<Value> = serde_json::from_str(&text).expect("valid vectors");
        let ordered: Vec<OrderedCase> = serde_json::from_str(&text).expect("valid vectors");
        for (value, ordered) in values.into_iter().zip(ordered) {
            cases.push((value, ordered.variables.0));
        }
    }
    cases
}

#[derive(serde::Deserialize)]
struct OrderedCase {
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
                formatter.write_str("an object")
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

/// The variables as a JSON object text in the given order.
fn ordered_object(pairs: &[(String, Value)]) -> String {
    let members: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{}:{value}", Value::String(name.clone())))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// Runs `check` on every case on a few threads and collects the failures.
fn check_all<Case: Sync>(
    cases: &[Case],
    check: impl Fn(&Case) -> Result<(), String> + Sync,
) -> Vec<String> {
    let failures = std::sync::Mutex::new(Vec::new());
    let threads = 4;
    std::thread::scope(|scope| {
        for chunk in cases.chunks(cases.len().div_ceil(threads).max(1)) {
            let failures = &failures;
            let check = &check;
            scope.spawn(move || {
                for case in chunk {
                    if let Err(failure) = check(case) {
                        failures.lock().expect("failures lock").push(failure);
                    }
                }
            });
        }
    });
    failures.into_inner().expect("failures lock")
}

#[test]
fn render_passes_every_octostache_vector() {
    let cases =
        load_vectors(&workspace_root().join("crates/cuttle-template/tests/data/octostache"));
    assert!(cases.len() >= 454);
    let failures = check_all(&cases, |(case, variables)| {
        let name = case["name"].as_str().unwrap_or("<unnamed>");
        let directory = tempfile::tempdir().map_err(|error| error.to_string())?;
        let variables_path = directory.path().join("vars.json");
        let template_path = directory.path().join("template.txt");
        std::fs::write(&variables_path, ordered_object(variables))
            .map_err(|error| error.to_string())?;
        std::fs::write(
            &template_path,
            case["template"].as_str().unwrap_or_default(),
        )
        .map_err(|error| error.to_string())?;
        let mut command = Command::new(CUTTLE);
        command
            .args(["template", "render", "--variables"])
            .arg(&variables_path);
        if case["haltOnError"] == Value::Bool(false) {
            command.arg("--continue-on-error");
        }
        let output = command
            .arg(&template_path)
            .output()
            .map_err(|error| error.to_string())?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let code = output.status.code();
        let is_error = case["error"] == Value::Bool(true);
        let (expected_stdout, expected_code) = match case["expected"].as_str() {
            Some(expected) => (expected.to_owned(), if is_error { 1 } else { 0 }),
            None => (String::new(), if is_error { 2 } else { 0 }),
        };
        let matches = if case["match"] == "trim" {
            stdout.trim() == expected_stdout.trim()
        } else {
            stdout == expected_stdout
        };
        if matches && code == Some(expected_code) {
            Ok(())
        } else {
            Err(format!(
                "{name}: expected exit {expected_code} and {expected_stdout:?}, got exit {code:?} and {stdout:?} (stderr {})",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    });
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn replace_passes_every_structured_vector() {
    let cases =
        load_vectors(&workspace_root().join("crates/cuttle-structured/tests/data/structured"));
    assert!(cases.len() >= 49);
    let failures = check_all(&cases, |(case, variables)| {
        let name = case["name"].as_str().unwrap_or("<unnamed>");
        let format = case["format"].as_str().unwrap_or_default();
        let directory = tempfile::tempdir().map_err(|error| error.to_string())?;
        let variables_path = directory.path().join("vars.json");
        let input_path = directory.path().join(format!("input.{format}"));
        std::fs::write(&variables_path, ordered_object(variables))
            .map_err(|error| error.to_string())?;
        std::fs::write(&input_path, case["input"].as_str().unwrap_or_default())
            .map_err(|error| error.to_string())?;
        let output = Command::new(CUTTLE)
            .args(["template", "replace", "--format", format, "--variables"])
            .arg(&variables_path)
            .arg(&input_path)
            .output()
            .map_err(|error| error.to_string())?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let expected = case["expected"].as_str().unwrap_or_default();
        if output.status.success() && stdout == expected {
            Ok(())
        } else {
            Err(format!(
                "{name}: expected {expected:?}, got exit {:?} and {stdout:?} (stderr {})",
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    });
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn render_reads_stdin_and_reports_bad_variables() {
    let directory = tempfile::tempdir().unwrap();
    let variables_path = directory.path().join("vars.json");
    std::fs::write(&variables_path, r#"{"Name": "World", "Empty": null}"#).unwrap();
    let mut child = Command::new(CUTTLE)
        .args(["template", "render", "--variables"])
        .arg(&variables_path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Hello #{Name}[#{Empty}]")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "Hello World[]");
    assert!(output.status.success());

    std::fs::write(&variables_path, r#"["not", "an", "object"]"#).unwrap();
    let output = Command::new(CUTTLE)
        .args(["template", "render", "--variables"])
        .arg(&variables_path)
        .arg(&variables_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("JSON object"));
}
