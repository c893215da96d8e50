//! Validation of a variable set before it is saved, with errors that name the field
//! (`Variables[3].Name is required`), and the references the server must check itself.
//!
//! This module checks what can be known from the document alone: names present, scope keys
//! known, scope values non-empty, the scopes a library variable set may use (B1), types
//! known, no two values with the same name and the same scope. Whether `Environments-7`
//! exists and is an environment is the server's job: [`scope_references`] lists every id the
//! document points at, with the kind of resource expected, for the server to look up.

use std::collections::BTreeSet;

use thiserror::Error;

use crate::model::{ReferencedResource, ScopeField, ScopeSpecification, VariableSet, VariableType};
use crate::scope::fold_case;

/// Which kind of owner a set belongs to; library sets may use fewer scopes (B1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariableSetKind {
    /// A project's own variables: every scope.
    Project,
    /// A library variable set: no step, channel, process or trigger scopes, because those
    /// are per-project ids that mean nothing across projects.
    LibraryVariableSet,
}

/// One problem, with the JSON path of the field at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// `Variables[3].Name`, `Variables[0].Scope.Channel`, ...
    pub field: String,
    /// The complete message, starting with the field: `Variables[3].Name is required`.
    pub message: String,
}

/// Every problem found in a set, in document order.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{}", describe(.errors))]
pub struct ValidationErrors {
    /// The problems; never empty.
    pub errors: Vec<ValidationError>,
}

fn describe(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(|error| error.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The scopes a library variable set may not use.
const SCOPES_NOT_ALLOWED_IN_LIBRARY_SETS: [ScopeField; 4] = [
    ScopeField::Action,
    ScopeField::Channel,
    ScopeField::ProcessOwner,
    ScopeField::Trigger,
];

/// Makes the two ways of marking a secret agree: `Type: Sensitive` implies
/// `IsSensitive: true`, and `IsSensitive: true` on a `String` makes it `Type: Sensitive`.
/// Octopus does the same on save; different client generations set only one of the two.
pub fn normalize_variable_set(set: &VariableSet) -> VariableSet {
    let mut normalized = set.clone();
    for variable in normalized.variables.iter_mut() {
        if variable.variable_type == VariableType::Sensitive {
            variable.is_sensitive = true;
        }
        if variable.is_sensitive && variable.variable_type == VariableType::String {
            variable.variable_type = VariableType::Sensitive;
        }
    }
    normalized
}

/// Checks `set` as a set of kind `kind`.
pub fn validate_variable_set(
    set: &VariableSet,
    kind: VariableSetKind,
) -> Result<(), ValidationErrors> {
    let mut errors = Vec::new();
    let mut push = |field: String, problem: &str| {
        errors.push(ValidationError {
            message: format!("{field} {problem}"),
            field,
        });
    };
    let mut seen_ids = BTreeSet::new();
    let mut seen_name_and_scope = BTreeSet::new();
    for (index, variable) in set.variables.iter().enumerate() {
        let path = format!("Variables[{index}]");
        if variable.name.trim().is_empty() {
            push(format!("{path}.Name"), "is required");
        }
        if !variable.id.is_empty() && !seen_ids.insert(variable.id.as_str()) {
            push(
                format!("{path}.Id"),
                &format!("'{}' is used by more than one variable", variable.id),
            );
        }
        if let VariableType::Other(type_name) = &variable.variable_type {
            push(
                format!("{path}.Type"),
                &format!("'{type_name}' is not a known variable type"),
            );
        }
        for (field, values) in &variable.scope.values_by_field {
            let field_path = format!("{path}.Scope.{field}");
            if let ScopeField::Other(_) = field {
                push(field_path.clone(), "is not a known scope");
                continue;
            }
            if *field == ScopeField::Private {
                push(field_path.clone(), "is reserved for the server");
                continue;
            }
            if kind == VariableSetKind::LibraryVariableSet
                && SCOPES_NOT_ALLOWED_IN_LIBRARY_SETS.contains(field)
            {
                push(
                    field_path.clone(),
                    "cannot be used in a library variable set",
                );
            }
            for (value_index, value) in values.iter().enumerate() {
                if value.trim().is_empty() {
                    push(format!("{field_path}[{value_index}]"), "must not be empty");
                }
            }
        }
        if !variable.name.trim().is_empty() {
            let key = (fold_case(&variable.name), canonical_scope(&variable.scope));
            if !seen_name_and_scope.insert(key) {
                push(
                    format!("{path}.Scope"),
                    &format!(
                        "duplicates the scope of another value of '{}'",
                        variable.name
                    ),
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors { errors })
    }
}

/// A scope as a sorted, case-folded list, so equal scopes compare equal whatever the order
/// and letter case of their values.
fn canonical_scope(scope: &ScopeSpecification) -> Vec<(String, Vec<String>)> {
    scope
        .scoped_fields()
        .map(|(field, values)| {
            let mut folded: Vec<String> = values.iter().map(|value| fold_case(value)).collect();
            folded.sort();
            folded.dedup();
            (field.as_str().to_string(), folded)
        })
        .collect()
}

/// An id (or tag name) a set points at, for the server to check.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScopeReference {
    /// The JSON path: `Variables[2].Scope.Environment[0]` or `Variables[4].Value`.
    pub field: String,
    /// What kind of resource the id must be.
    pub resource: ReferencedResource,
    /// The id or name as written.
    pub reference: String,
}

/// Every id the set refers to: scope values, and the values of account, certificate and
/// worker-pool typed variables. Unknown scope keys and `Private` are skipped (validation
/// reports them).
pub fn scope_references(set: &VariableSet) -> Vec<ScopeReference> {
    let mut references = Vec::new();
    for (index, variable) in set.variables.iter().enumerate() {
        for (field, values) in &variable.scope.values_by_field {
            let Some(resource) = field.referenced_resource() else {
                continue;
            };
            for (value_index, value) in values.iter().enumerate() {
                references.push(ScopeReference {
                    field: format!("Variables[{index}].Scope.{field}[{value_index}]"),
                    resource,
                    reference: value.clone(),
                });
            }
        }
        if let (Some(resource), Some(value)) = (
            variable.variable_type.referenced_resource(),
            variable.value.as_ref(),
        ) && !value.is_empty()
        {
            references.push(ScopeReference {
                field: format!("Variables[{index}].Value"),
                resource,
                reference: value.clone(),
            });
        }
    }
    references
}
