//! Validation messages name the field; references are listed for the server to check.

use cuttle_vars::{
    ReferencedResource, ScopeField, ScopeReference, Variable, VariableSet, VariableSetKind,
    VariableType, normalize_variable_set, scope_references, validate_variable_set,
};

fn messages(set: &VariableSet, kind: VariableSetKind) -> Vec<String> {
    match validate_variable_set(set, kind) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .errors
            .into_iter()
            .map(|error| error.message)
            .collect(),
    }
}

#[test]
fn a_valid_set_passes() {
    let set = VariableSet {
        variables: vec![
            Variable::new("A", "1").with_id("a"),
            Variable::new("A", "2")
                .with_id("b")
                .scoped(ScopeField::Environment, &["Environments-1"]),
            Variable::new("A", "3")
                .with_id("c")
                .scoped(ScopeField::Environment, &["Environments-2"]),
        ],
        ..VariableSet::default()
    };
    assert_eq!(
        messages(&set, VariableSetKind::Project),
        Vec::<String>::new()
    );
}

#[test]
fn problems_are_reported_with_their_field_paths() {
    let set = VariableSet {
        variables: vec![
            Variable::new("Fine", "1").with_id("same"),
            Variable::new("   ", "x"),
            Variable::new("B", "1").with_id("same"),
            Variable {
                variable_type: VariableType::Other("Mystery".to_string()),
                ..Variable::new("C", "1")
            }
            .scoped(ScopeField::Environment, &["Environments-1", " "])
            .scoped(ScopeField::Other("Space".to_string()), &["Spaces-1"])
            .scoped(ScopeField::Private, &["x"]),
        ],
        ..VariableSet::default()
    };
    assert_eq!(
        messages(&set, VariableSetKind::Project),
        [
            "Variables[1].Name is required",
            "Variables[2].Id 'same' is used by more than one variable",
            "Variables[3].Type 'Mystery' is not a known variable type",
            "Variables[3].Scope.Environment[1] must not be empty",
            "Variables[3].Scope.Private is reserved for the server",
            "Variables[3].Scope.Space is not a known scope",
        ]
    );
    let error = validate_variable_set(&set, VariableSetKind::Project).expect_err("invalid");
    assert!(
        error
            .to_string()
            .starts_with("Variables[1].Name is required; Variables[2].Id")
    );
    assert_eq!(error.errors[0].field, "Variables[1].Name");
}

#[test]
fn library_sets_cannot_use_step_channel_process_or_trigger_scopes() {
    let set = VariableSet {
        variables: vec![
            Variable::new("A", "1")
                .scoped(ScopeField::Environment, &["Environments-1"])
                .scoped(ScopeField::Role, &["web"])
                .scoped(ScopeField::Machine, &["Machines-1"])
                .scoped(ScopeField::TenantTag, &["Tier/Gold"]),
            Variable::new("B", "1")
                .scoped(ScopeField::Action, &["DeploymentActions-1"])
                .scoped(ScopeField::Channel, &["Channels-1"]),
        ],
        ..VariableSet::default()
    };
    assert_eq!(
        messages(&set, VariableSetKind::LibraryVariableSet),
        [
            "Variables[1].Scope.Action cannot be used in a library variable set",
            "Variables[1].Scope.Channel cannot be used in a library variable set",
        ]
    );
    assert!(messages(&set, VariableSetKind::Project).is_empty());
}

#[test]
fn two_values_with_the_same_name_and_scope_are_refused() {
    let set = VariableSet {
        variables: vec![
            Variable::new("Db", "one").scoped(
                ScopeField::Environment,
                &["Environments-1", "Environments-2"],
            ),
            Variable::new("DB", "two").scoped(
                ScopeField::Environment,
                &["environments-2", "Environments-1"],
            ),
            // An empty list is no scope, so this duplicates neither of the above but...
            Variable::new("Db", "three").scoped(ScopeField::Role, &[]),
            // ...this one duplicates it.
            Variable::new("Db", "four"),
        ],
        ..VariableSet::default()
    };
    assert_eq!(
        messages(&set, VariableSetKind::Project),
        [
            "Variables[1].Scope duplicates the scope of another value of 'DB'",
            "Variables[3].Scope duplicates the scope of another value of 'Db'",
        ]
    );
}

#[test]
fn normalising_makes_both_secret_markers_agree() {
    let set = VariableSet {
        variables: vec![
            Variable {
                variable_type: VariableType::Sensitive,
                ..Variable::new("A", "1")
            },
            Variable {
                is_sensitive: true,
                ..Variable::new("B", "1")
            },
            Variable {
                is_sensitive: true,
                variable_type: VariableType::Certificate,
                ..Variable::new("C", "Certificates-1")
            },
        ],
        ..VariableSet::default()
    };
    let normalized = normalize_variable_set(&set);
    assert!(normalized.variables[0].is_sensitive);
    assert_eq!(
        normalized.variables[1].variable_type,
        VariableType::Sensitive
    );
    assert_eq!(
        normalized.variables[2].variable_type,
        VariableType::Certificate
    );
}

#[test]
fn references_list_every_scope_id_and_typed_value() {
    let set = VariableSet {
        variables: vec![
            Variable::new("A", "1")
                .scoped(
                    ScopeField::Environment,
                    &["Environments-1", "Environments-2"],
                )
                .scoped(ScopeField::Role, &["web"]),
            Variable {
                variable_type: VariableType::Certificate,
                ..Variable::new("Cert", "Certificates-3")
            }
            .scoped(ScopeField::Tenant, &["Tenants-1"]),
            Variable {
                variable_type: VariableType::AmazonWebServicesAccount,
                ..Variable::new("Aws", "Accounts-1")
            },
            Variable {
                variable_type: VariableType::WorkerPool,
                ..Variable::new("Pool", "WorkerPools-2")
            }
            .scoped(ScopeField::Other("Space".to_string()), &["Spaces-1"]),
        ],
        ..VariableSet::default()
    };
    let reference = |field: &str, resource, id: &str| ScopeReference {
        field: field.to_string(),
        resource,
        reference: id.to_string(),
    };
    assert_eq!(
        scope_references(&set),
        [
            reference(
                "Variables[0].Scope.Environment[0]",
                ReferencedResource::Environment,
                "Environments-1"
            ),
            reference(
                "Variables[0].Scope.Environment[1]",
                ReferencedResource::Environment,
                "Environments-2"
            ),
            reference(
                "Variables[0].Scope.Role[0]",
                ReferencedResource::TargetTag,
                "web"
            ),
            reference(
                "Variables[1].Scope.Tenant[0]",
                ReferencedResource::Tenant,
                "Tenants-1"
            ),
            reference(
                "Variables[1].Value",
                ReferencedResource::Certificate,
                "Certificates-3"
            ),
            reference(
                "Variables[2].Value",
                ReferencedResource::Account,
                "Accounts-1"
            ),
            reference(
                "Variables[3].Value",
                ReferencedResource::WorkerPool,
                "WorkerPools-2"
            ),
        ]
    );
}
