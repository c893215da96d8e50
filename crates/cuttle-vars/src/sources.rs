//! Where values come from and how they are ordered before scoping (spec B4).
//!
//! The server builds a per-deployment "variable manifest" from, in order: project variables,
//! the included library variable sets, tenant variables, step-template parameters, system
//! variables, prompted values and output variables of earlier steps. [`VariableSources`] is
//! that manifest before scoping: every value of every source becomes a candidate tagged with
//! a [`ValueOrigin`], and [`crate::resolve`] then picks one per name for a context.
//!
//! The origin is the deterministic tie-break among values of equal specificity (B3 says ties
//! are otherwise non-deterministic in Octopus): first the kind of source in the B4 order
//! ([`OriginKind`], so a project value beats a library-set value as B3 requires), then the
//! position of the library set in the project's inclusion order, then declaration order
//! within the set.
//!
//! Prompted values are not a separate source: B7 says the supplied value *replaces* the
//! prompted variable's value, so [`crate::prompts`] rewrites the candidate in place and it
//! keeps its scope and origin.
//!
//! Each name is case-folded once, when its value is added, and the candidates are grouped
//! by folded name then and there (groups in definition order, each in tie-break order), so
//! resolving the same sources for many contexts (one per action and target) does not redo
//! that work per context. Every method that adds or removes candidates regroups; answering
//! prompts only replaces values, which the grouping does not depend on.
//!
//! What this module does not do: read any store (the caller hands in the sets, already
//! snapshotted for the release) or decrypt sensitive values.

use std::sync::Arc;

use indexmap::IndexMap;

use crate::model::{
    ScopeField, ScopeSpecification, Variable, VariablePrompt, VariableSet, VariableType,
};
use crate::scope::{FoldedScope, fold_case};

/// The kind of source a value comes from, in the B4 manifest order. Earlier kinds win ties.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OriginKind {
    /// The project's own variables.
    ProjectVariables,
    /// A library variable set included by the project.
    LibraryVariableSet,
    /// A tenant variable (project template per tenant × environment, or common template).
    TenantVariable,
    /// A parameter of the step template an action uses.
    StepTemplateParameter,
    /// An `Octopus.*` system variable.
    SystemVariable,
    /// An output variable of an earlier step.
    OutputVariable,
}

/// Where one candidate value came from; also the tie-break key (field order matters).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueOrigin {
    /// The kind of source.
    pub kind: OriginKind,
    /// For library sets, the position in the project's inclusion order (0 = first
    /// included); 0 for other kinds.
    pub set_position: usize,
    /// The index of the value within its set or list: declaration order.
    pub declaration_index: usize,
    /// The owning set's id (`variableset-Projects-1`), when the value came from a set.
    pub set_id: Option<String>,
    /// The value's own id (`Variable.Id`), when it has one.
    pub variable_id: Option<String>,
}

/// A value that does not come from a stored variable set: tenant variables, step-template
/// parameters and output variables. The scope is what the server gives it (see the
/// constructors) and takes part in B2/B3 like any other scope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopedValue {
    /// The variable name.
    pub name: String,
    /// The raw value.
    pub value: String,
    /// True for secrets; carried through resolution so callers can mask them.
    pub is_sensitive: bool,
    /// Where the value applies.
    pub scope: ScopeSpecification,
}

impl ScopedValue {
    /// An unscoped value.
    pub fn unscoped(name: impl Into<String>, value: impl Into<String>, is_sensitive: bool) -> Self {
        ScopedValue {
            name: name.into(),
            value: value.into(),
            is_sensitive,
            scope: ScopeSpecification::new(),
        }
    }

    /// A tenant variable. Project-template values are per tenant × environment, so pass the
    /// environments they were given for; common-template values (from library sets) are per
    /// tenant only, so pass none. Scoping them to the tenant (and environment) is what makes
    /// them outrank project values scoped only to an environment, as B3 items 5 and 7 imply.
    pub fn tenant_variable(
        tenant_id: &str,
        environment_ids: &[&str],
        name: impl Into<String>,
        value: impl Into<String>,
        is_sensitive: bool,
    ) -> Self {
        let scope = ScopeSpecification::new()
            .with(ScopeField::Tenant, &[tenant_id])
            .with(ScopeField::Environment, environment_ids);
        ScopedValue {
            name: name.into(),
            value: value.into(),
            is_sensitive,
            scope,
        }
    }

    /// The value of a step-template parameter for one action: scoped to that action, as
    /// action properties are.
    pub fn step_template_parameter(
        action_id: &str,
        name: impl Into<String>,
        value: impl Into<String>,
        is_sensitive: bool,
    ) -> Self {
        ScopedValue {
            name: name.into(),
            value: value.into(),
            is_sensitive,
            scope: ScopeSpecification::new().with(ScopeField::Action, &[action_id]),
        }
    }
}

/// How a candidate is scoped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CandidateScope {
    /// A normal scope, matched with B2 and ranked with B3.
    Specified {
        /// As given; kept so that sources compare equal exactly when their scopes do.
        scope: ScopeSpecification,
        /// The same scope folded once, when added; what resolution matches.
        folded: FoldedScope,
    },
    /// A system variable: always matches and ranks as `Private`, which the blog formula puts
    /// above every user-settable dimension ("allows inbuilt vars to override user ones").
    System,
}

impl CandidateScope {
    fn specified(scope: ScopeSpecification) -> Self {
        CandidateScope::Specified {
            folded: FoldedScope::new(&scope),
            scope,
        }
    }
}

/// One candidate value of a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) name: String,
    /// `name` case-folded ([`fold_case`]) once, when the value was added: the grouping key,
    /// shared with [`VariableSources`]'s groups and with resolved results.
    pub(crate) folded_name: Arc<str>,
    pub(crate) value: Option<String>,
    pub(crate) is_sensitive: bool,
    pub(crate) variable_type: VariableType,
    pub(crate) scope: CandidateScope,
    pub(crate) prompt: Option<VariablePrompt>,
    pub(crate) origin: ValueOrigin,
}

/// Every candidate value for one deployment, before scoping: the B4 manifest.
///
/// Build it once per deployment, then resolve it for the deployment as a whole and for each
/// action and target (see [`crate::resolve`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VariableSources {
    /// Kept sorted by origin, so iteration order is tie-break order and names appear in
    /// definition order. Only the methods of this module may add, remove, reorder or rename
    /// candidates, because `groups` is derived from them.
    candidates: Vec<Candidate>,
    /// Indices into `candidates` by folded name: names in definition order, each list in
    /// tie-break order. Rebuilt by `candidates_changed` after every addition or removal.
    groups: IndexMap<Arc<str>, Vec<usize>>,
    library_sets_added: usize,
    project_sets_added: usize,
}

impl VariableSources {
    /// An empty manifest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the project's variable set. A project has one; adding a second one ranks it after
    /// the first, as if it were declared later.
    pub fn add_project_variables(&mut self, set: &VariableSet) -> &mut Self {
        let set_position = self.project_sets_added;
        self.project_sets_added += 1;
        self.add_set(set, OriginKind::ProjectVariables, set_position);
        self
    }

    /// Adds an included library variable set. Call in the project's inclusion order
    /// (`IncludedLibraryVariableSetIds`): earlier sets win ties.
    pub fn add_library_variable_set(&mut self, set: &VariableSet) -> &mut Self {
        let set_position = self.library_sets_added;
        self.library_sets_added += 1;
        self.add_set(set, OriginKind::LibraryVariableSet, set_position);
        self
    }

    /// Adds tenant variables (see [`ScopedValue::tenant_variable`]).
    pub fn add_tenant_variables(
        &mut self,
        values: impl IntoIterator<Item = ScopedValue>,
    ) -> &mut Self {
        self.add_scoped_values(values, OriginKind::TenantVariable);
        self
    }

    /// Adds step-template parameter values (see [`ScopedValue::step_template_parameter`]).
    pub fn add_step_template_parameters(
        &mut self,
        values: impl IntoIterator<Item = ScopedValue>,
    ) -> &mut Self {
        self.add_scoped_values(values, OriginKind::StepTemplateParameter);
        self
    }

    /// Adds `Octopus.*` system variables (see [`crate::system`]). They beat user-defined
    /// values of the same name in every context, because Octopus ranks its built-in values
    /// `Private`, above every scope a user can set.
    pub fn add_system_variables(
        &mut self,
        variables: impl IntoIterator<Item = (String, String)>,
    ) -> &mut Self {
        let start = self.count_of_kind(OriginKind::SystemVariable);
        for (offset, (name, value)) in variables.into_iter().enumerate() {
            self.candidates.push(Candidate {
                folded_name: fold_case(&name).into(),
                name,
                value: Some(value),
                is_sensitive: false,
                variable_type: VariableType::String,
                scope: CandidateScope::System,
                prompt: None,
                origin: ValueOrigin {
                    kind: OriginKind::SystemVariable,
                    set_position: 0,
                    declaration_index: start + offset,
                    set_id: None,
                    variable_id: None,
                },
            });
        }
        self.candidates_changed();
        self
    }

    /// Adds output variables of earlier steps (see
    /// [`crate::output::OutputVariableCollector::scoped_values`]).
    pub fn add_output_variables(
        &mut self,
        values: impl IntoIterator<Item = ScopedValue>,
    ) -> &mut Self {
        self.add_scoped_values(values, OriginKind::OutputVariable);
        self
    }

    /// Replaces all output variables with `values`. Use this when handing a growing
    /// [`crate::output::OutputVariableCollector`] to each later step: appending its values
    /// again would leave stale copies that win ties by being earlier.
    pub fn replace_output_variables(
        &mut self,
        values: impl IntoIterator<Item = ScopedValue>,
    ) -> &mut Self {
        self.candidates
            .retain(|candidate| candidate.origin.kind != OriginKind::OutputVariable);
        // Regroups even when `values` is empty (`add_output_variables` always does).
        self.add_output_variables(values)
    }

    /// Number of candidate values.
    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    /// True when there are no candidates.
    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// Number of distinct names (compared case-insensitively).
    pub(crate) fn name_count(&self) -> usize {
        self.groups.len()
    }

    /// The candidates grouped by folded name: groups in definition order, each group in
    /// tie-break order. Precomputed, so this neither folds nor hashes.
    pub(crate) fn name_groups(
        &self,
    ) -> impl Iterator<Item = (&Arc<str>, impl Iterator<Item = &Candidate> + Clone)> {
        self.groups.iter().map(|(folded_name, indices)| {
            (
                folded_name,
                indices.iter().map(|&index| &self.candidates[index]),
            )
        })
    }

    /// The candidates of `name` (case-insensitively), in tie-break order.
    pub(crate) fn candidates_named(&self, name: &str) -> impl Iterator<Item = &Candidate> {
        self.groups
            .get(fold_case(name).as_str())
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|&index| &self.candidates[index])
    }

    /// Calls `change` on each candidate of `name` (case-insensitively), in tie-break order.
    /// `change` may replace the value and flags, but must not touch the name or origin,
    /// which the grouping depends on.
    pub(crate) fn change_candidates_named(
        &mut self,
        name: &str,
        mut change: impl FnMut(&mut Candidate),
    ) {
        let Some(indices) = self.groups.get(fold_case(name).as_str()) else {
            return;
        };
        for &index in indices {
            change(&mut self.candidates[index]);
        }
    }

    fn add_set(&mut self, set: &VariableSet, kind: OriginKind, set_position: usize) {
        for (declaration_index, variable) in set.variables.iter().enumerate() {
            self.candidates.push(candidate_from_variable(
                variable,
                ValueOrigin {
                    kind,
                    set_position,
                    declaration_index,
                    set_id: non_empty(&set.id),
                    variable_id: non_empty(&variable.id),
                },
            ));
        }
        self.candidates_changed();
    }

    fn add_scoped_values(
        &mut self,
        values: impl IntoIterator<Item = ScopedValue>,
        kind: OriginKind,
    ) {
        let start = self.count_of_kind(kind);
        for (offset, scoped_value) in values.into_iter().enumerate() {
            self.candidates.push(Candidate {
                folded_name: fold_case(&scoped_value.name).into(),
                name: scoped_value.name,
                value: Some(scoped_value.value),
                is_sensitive: scoped_value.is_sensitive,
                variable_type: if scoped_value.is_sensitive {
                    VariableType::Sensitive
                } else {
                    VariableType::String
                },
                scope: CandidateScope::specified(scoped_value.scope),
                prompt: None,
                origin: ValueOrigin {
                    kind,
                    set_position: 0,
                    declaration_index: start + offset,
                    set_id: None,
                    variable_id: None,
                },
            });
        }
        self.candidates_changed();
    }

    fn count_of_kind(&self, kind: OriginKind) -> usize {
        self.candidates
            .iter()
            .filter(|candidate| candidate.origin.kind == kind)
            .count()
    }

    /// Restores the invariants after candidates were added or removed: sorted by origin,
    /// and grouped by folded name.
    fn candidates_changed(&mut self) {
        // Stable, so equal keys (which only happen if a caller adds the same set twice)
        // keep their insertion order.
        self.candidates
            .sort_by(|left, right| left.origin.cmp(&right.origin));
        self.groups = group_by_folded_name(&self.candidates);
    }
}

/// Candidate indices by folded name, names in order of first appearance.
fn group_by_folded_name(candidates: &[Candidate]) -> IndexMap<Arc<str>, Vec<usize>> {
    let mut groups: IndexMap<Arc<str>, Vec<usize>> = IndexMap::new();
    for (index, candidate) in candidates.iter().enumerate() {
        groups
            .entry(Arc::clone(&candidate.folded_name))
            .or_default()
            .push(index);
    }
    groups
}

fn candidate_from_variable(variable: &Variable, origin: ValueOrigin) -> Candidate {
    Candidate {
        name: variable.name.clone(),
        folded_name: fold_case(&variable.name).into(),
        value: variable.value.clone(),
        is_sensitive: variable.is_secret(),
        variable_type: variable.variable_type.clone(),
        scope: CandidateScope::specified(variable.scope.clone()),
        prompt: variable.prompt.clone(),
        origin,
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The grouping as it would be computed from scratch, by folding every name again.
    fn regrouped(sources: &VariableSources) -> Vec<(String, Vec<ValueOrigin>)> {
        let mut groups: IndexMap<String, Vec<ValueOrigin>> = IndexMap::new();
        for candidate in &sources.candidates {
            groups
                .entry(fold_case(&candidate.name))
                .or_default()
                .push(candidate.origin.clone());
        }
        groups.into_iter().collect()
    }

    fn cached(sources: &VariableSources) -> Vec<(String, Vec<ValueOrigin>)> {
        sources
            .name_groups()
            .map(|(folded_name, group)| {
                (
                    folded_name.to_string(),
                    group.map(|candidate| candidate.origin.clone()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn grouping_follows_every_change_to_the_candidates() {
        let library = VariableSet {
            variables: vec![
                Variable::new("Shared", "library"),
                Variable::new("ÄRGER", "library"),
            ],
            ..VariableSet::default()
        };
        let project = VariableSet {
            variables: vec![
                Variable::new("shared", "project"),
                Variable::new("Ärger", "project"),
                Variable::new("Own", "project"),
            ],
            ..VariableSet::default()
        };
        let mut sources = VariableSources::new();
        assert_eq!(cached(&sources), regrouped(&sources));

        // Library before project: sorting moves the project values first.
        sources.add_library_variable_set(&library);
        assert_eq!(cached(&sources), regrouped(&sources));
        sources.add_project_variables(&project);
        assert_eq!(cached(&sources), regrouped(&sources));
        assert_eq!(sources.name_count(), 3);

        sources.add_output_variables([ScopedValue::unscoped("OWN", "output", false)]);
        sources.add_system_variables([("Octopus.Environment.Name".to_string(), "Dev".to_string())]);
        sources.add_tenant_variables([ScopedValue::tenant_variable(
            "Tenants-1",
            &[],
            "shared",
            "tenant",
            false,
        )]);
        assert_eq!(cached(&sources), regrouped(&sources));
        assert_eq!(sources.name_count(), 4);

        sources.replace_output_variables([ScopedValue::unscoped("Later", "output", false)]);
        assert_eq!(cached(&sources), regrouped(&sources));
        sources.replace_output_variables([]);
        assert_eq!(cached(&sources), regrouped(&sources));
        assert_eq!(sources.name_count(), 4);

        let named: Vec<&str> = sources
            .candidates_named("äRGER")
            .filter_map(|candidate| candidate.value.as_deref())
            .collect();
        assert_eq!(named, ["project", "library"]);
    }

    #[test]
    fn sources_compare_by_their_scopes_as_given() {
        let with_environment = |environment: &str| {
            let mut sources = VariableSources::new();
            sources.add_project_variables(&VariableSet {
                variables: vec![
                    Variable::new("Name", "value").scoped(ScopeField::Environment, &[environment]),
                ],
                ..VariableSet::default()
            });
            sources
        };
        assert_eq!(
            with_environment("Environments-1"),
            with_environment("Environments-1")
        );
        // Folding is for matching only: differently spelled scopes are different sources.
        assert_ne!(
            with_environment("Environments-1"),
            with_environment("ENVIRONMENTS-1")
        );
    }
}
