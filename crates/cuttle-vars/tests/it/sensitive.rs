//! Sensitive values (spec B5): API projection, the encryption hook and masking.

use cuttle_vars::sensitive::{
    api_projection_of_set, api_projection_of_variable, map_sensitive_values,
    restore_unchanged_sensitive_values,
};
use cuttle_vars::{DeploymentScope, Variable, VariableSet, VariableSources, VariableType};
use serde_json::json;

fn set_with_secrets() -> VariableSet {
    VariableSet {
        id: "variableset-Projects-1".to_string(),
        variables: vec![
            Variable::new("Plain", "visible").with_id("p"),
            Variable::new_sensitive("Password", "correct horse").with_id("s1"),
            // Older clients mark secrets with the flag only.
            Variable {
                is_sensitive: true,
                ..Variable::new("LegacySecret", "legacy-value").with_id("s2")
            },
            Variable::new_sensitive("Pin", "123").with_id("s3"),
        ],
        ..VariableSet::default()
    }
}

#[test]
fn the_api_projection_nulls_sensitive_values() {
    let projected = api_projection_of_set(&set_with_secrets());
    let written = serde_json::to_value(&projected).expect("serialises");
    assert_eq!(written["Variables"][0]["Value"], "visible");
    for index in 1..=3 {
        assert_eq!(written["Variables"][index]["Value"], json!(null));
        assert_eq!(written["Variables"][index]["IsSensitive"], json!(true));
    }
    assert_eq!(written["Variables"][1]["Type"], "Sensitive");
    let single = api_projection_of_variable(&Variable::new_sensitive("A", "b"));
    assert_eq!(single.value, None);
}

#[test]
fn map_sensitive_values_touches_only_secrets() {
    let encrypted = map_sensitive_values(&set_with_secrets(), |_, value| {
        Ok::<_, String>(format!("enc({value})"))
    })
    .expect("mapping succeeds");
    let values: Vec<Option<&str>> = encrypted
        .variables
        .iter()
        .map(|variable| variable.value.as_deref())
        .collect();
    assert_eq!(
        values,
        [
            Some("visible"),
            Some("enc(correct horse)"),
            Some("enc(legacy-value)"),
            Some("enc(123)")
        ]
    );
    let failure = map_sensitive_values(&set_with_secrets(), |variable, _| {
        Err::<String, _>(format!("cannot decrypt {}", variable.name))
    });
    assert_eq!(failure, Err("cannot decrypt Password".to_string()));
}

#[test]
fn nulls_sent_back_by_a_client_keep_the_stored_secret() {
    let stored = set_with_secrets();
    let mut submitted = api_projection_of_set(&stored);
    submitted.variables[2].value = Some("new-legacy".to_string());
    submitted.variables.push(Variable {
        value: None,
        ..Variable::new_sensitive("Fresh", "").with_id("s9")
    });
    let restored = restore_unchanged_sensitive_values(&submitted, &stored);
    assert_eq!(
        restored.variables[1].value.as_deref(),
        Some("correct horse")
    );
    assert_eq!(restored.variables[2].value.as_deref(), Some("new-legacy"));
    assert_eq!(
        restored.variables[4].value, None,
        "unknown ids are left as sent"
    );
}

#[test]
fn sensitivity_is_carried_through_resolution_and_short_values_are_not_masked() {
    let mut sources = VariableSources::new();
    sources.add_project_variables(&set_with_secrets());
    let resolution = sources.resolve_for_deployment(&DeploymentScope::default());
    let variables = &resolution.variables;
    assert!(!variables.get("Plain").expect("resolved").is_sensitive);
    assert!(variables.get("Password").expect("resolved").is_sensitive);
    let legacy = variables.get("LegacySecret").expect("resolved");
    assert!(legacy.is_sensitive);
    assert_eq!(legacy.variable_type, VariableType::String);
    // "123" is 3 characters: B5 masks only longer values.
    assert_eq!(
        variables.values_to_mask(),
        ["correct horse", "legacy-value"]
    );
}

#[test]
fn a_composite_referencing_a_secret_is_not_itself_sensitive() {
    let set = VariableSet {
        variables: vec![
            Variable::new_sensitive("Password", "p4ssw0rd"),
            Variable::new("ConnectionString", "User=sa;Password=#{Password}"),
        ],
        ..VariableSet::default()
    };
    let mut sources = VariableSources::new();
    sources.add_project_variables(&set);
    let resolution = sources.resolve_for_deployment(&DeploymentScope::default());
    assert!(
        !resolution
            .variables
            .get("ConnectionString")
            .expect("resolved")
            .is_sensitive
    );
    assert_eq!(resolution.variables.values_to_mask(), ["p4ssw0rd"]);
}
