//! Resolution: the effective value of every name for one context.
//!
//! For each name (compared case-insensitively, B4) the resolver keeps the candidates whose
//! scope matches the context (B2), takes those of the highest [`Specificity`] (B3), and breaks
//! a remaining tie by [`ValueOrigin`]: project before library set, library sets in inclusion
//! order, then declaration order (the B3 "suggested deterministic implementation"). When the
//! tied values differ, a [`ResolutionWarning::AmbiguousValue`] is returned alongside, so the
//! server can log it as B3 asks; a tie between equal values is no ambiguity and is not
//! reported.
//!
//! Resolution never fails: every problem is data in [`Resolution::warnings`].
//!
//! What it deliberately does not do: expand `#{...}` (composite values are resolved *after*
//! scoping, per context, by `cuttle-template`), or mask anything (it only carries the
//! sensitive flag; see [`crate::sensitive`]).

use std::sync::Arc;

use indexmap::IndexMap;

use crate::model::VariableType;
use crate::scope::{
    DeploymentScope, FoldedContext, RankedDimension, ScopeContext, Specificity, UnmatchedDimension,
    fold_case, match_folded_scope,
};
use crate::sources::{Candidate, CandidateScope, ValueOrigin, VariableSources};

/// The winning value of one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedVariable {
    /// The name as the winning value spells it.
    pub name: String,
    /// The raw value, unexpanded. A stored `null` value resolves to the empty string,
    /// because Octopus variable values are always strings.
    pub value: String,
    /// True for secrets; callers mask these in logs and never return them from the API.
    pub is_sensitive: bool,
    /// The declared type (account, certificate and worker-pool values are ids).
    pub variable_type: VariableType,
    /// Where the value came from.
    pub origin: ValueOrigin,
    /// How specifically it was scoped for this context.
    pub specificity: Specificity,
}

/// Effective values by name: case-insensitive, in definition order (the order names first
/// appear in the B4 source order), which `#{each}` and `[*]` depend on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedVariables {
    /// Keyed by the folded name, shared with the sources' grouping rather than folded again.
    by_folded_name: IndexMap<Arc<str>, ResolvedVariable>,
}

impl ResolvedVariables {
    /// The resolved variable called `name`, case-insensitively.
    pub fn get(&self, name: &str) -> Option<&ResolvedVariable> {
        self.by_folded_name.get(fold_case(name).as_str())
    }

    /// The raw value of `name`, case-insensitively.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).map(|variable| variable.value.as_str())
    }

    /// All resolved variables in definition order.
    pub fn iter(&self) -> impl Iterator<Item = &ResolvedVariable> {
        self.by_folded_name.values()
    }

    /// `(name, raw value)` pairs in definition order; what a template dictionary needs.
    pub fn name_value_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter()
            .map(|variable| (variable.name.as_str(), variable.value.as_str()))
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.by_folded_name.len()
    }

    /// True when nothing resolved.
    pub fn is_empty(&self) -> bool {
        self.by_folded_name.is_empty()
    }

    fn with_capacity(capacity: usize) -> Self {
        ResolvedVariables {
            by_folded_name: IndexMap::with_capacity(capacity),
        }
    }

    /// Inserts `variable`, whose name folds to `folded_name`.
    fn insert(&mut self, folded_name: Arc<str>, variable: ResolvedVariable) {
        self.by_folded_name.insert(folded_name, variable);
    }
}

/// Something the server should log about a resolution; never a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolutionWarning {
    /// Several values of `name` matched with the same, highest specificity and differ; the
    /// deterministic tie-break chose `chosen`. Octopus would pick any of them (B3 "Ties").
    AmbiguousValue {
        /// The variable name.
        name: String,
        /// The specificity they share.
        specificity: Specificity,
        /// The winner.
        chosen: ValueOrigin,
        /// The other tied values, in tie-break order.
        tied_with: Vec<ValueOrigin>,
    },
}

/// The outcome of resolving a manifest for one context.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// The effective values.
    pub variables: ResolvedVariables,
    /// Ties to log.
    pub warnings: Vec<ResolutionWarning>,
}

/// Why one candidate did or did not win; the data behind a "variable preview" page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandidateExplanation {
    /// Where the candidate came from.
    pub origin: ValueOrigin,
    /// Its raw value, or `None` when it is sensitive (explanations are meant for people).
    pub visible_value: Option<String>,
    /// Its specificity, or the first dimension it failed on.
    pub outcome: Result<Specificity, UnmatchedDimension>,
    /// True for the candidate [`VariableSources::resolve`] picks.
    pub is_winner: bool,
}

impl VariableSources {
    /// Effective values for one context: an action on a target, an action on the server or
    /// a worker, or the deployment as a whole (see [`ScopeContext`]).
    pub fn resolve(&self, context: &ScopeContext) -> Resolution {
        // Folded once here, so each comparison with a (pre-folded) scope value is plain
        // equality.
        let context = FoldedContext::new(context);
        let mut resolution = Resolution {
            variables: ResolvedVariables::with_capacity(self.name_count()),
            warnings: Vec::new(),
        };
        for (folded_name, group) in self.name_groups() {
            if let Some((winner, warning)) = pick_winner(group, &context) {
                resolution.variables.insert(
                    Arc::clone(folded_name),
                    resolved_from(winner.candidate, winner.specificity),
                );
                resolution.warnings.extend(warning);
            }
        }
        resolution
    }

    /// Effective values for the deployment as a whole: no action and no target, so values
    /// scoped to a step, machine or target tag do not apply.
    pub fn resolve_for_deployment(&self, deployment: &DeploymentScope) -> Resolution {
        self.resolve(&ScopeContext::deployment_wide(deployment.clone()))
    }

    /// Every candidate of `name` with its outcome for `context`, in tie-break order.
    pub fn explain(&self, name: &str, context: &ScopeContext) -> Vec<CandidateExplanation> {
        let context = FoldedContext::new(context);
        let group: Vec<&Candidate> = self.candidates_named(name).collect();
        let winner_origin = pick_winner(group.iter().copied(), &context)
            .map(|(winner, _)| winner.candidate.origin.clone());
        group
            .iter()
            .map(|candidate| CandidateExplanation {
                origin: candidate.origin.clone(),
                visible_value: if candidate.is_sensitive {
                    None
                } else {
                    Some(candidate.value.clone().unwrap_or_default())
                },
                outcome: candidate_specificity(candidate, &context),
                is_winner: winner_origin.as_ref() == Some(&candidate.origin),
            })
            .collect()
    }
}

struct ScoredCandidate<'a> {
    candidate: &'a Candidate,
    specificity: Specificity,
}

/// B2 then B3 then the origin tie-break, over one name's candidates in tie-break order.
///
/// One pass: the group is in tie-break order, so the winner is the first candidate of the
/// highest specificity seen, and the values tied with it are the later ones of the same
/// specificity that differ from it (collected only when there are any).
fn pick_winner<'a>(
    group: impl IntoIterator<Item = &'a Candidate>,
    context: &FoldedContext,
) -> Option<(ScoredCandidate<'a>, Option<ResolutionWarning>)> {
    let mut winner: Option<ScoredCandidate<'a>> = None;
    let mut tied_with: Vec<ValueOrigin> = Vec::new();
    for candidate in group {
        let Ok(specificity) = candidate_specificity(candidate, context) else {
            continue;
        };
        match &winner {
            Some(best) if specificity < best.specificity => {}
            Some(best) if specificity == best.specificity => {
                if candidate.value != best.candidate.value
                    || candidate.is_sensitive != best.candidate.is_sensitive
                {
                    tied_with.push(candidate.origin.clone());
                }
            }
            _ => {
                winner = Some(ScoredCandidate {
                    candidate,
                    specificity,
                });
                tied_with.clear();
            }
        }
    }
    let winner = winner?;
    let warning = (!tied_with.is_empty()).then(|| ResolutionWarning::AmbiguousValue {
        name: winner.candidate.name.clone(),
        specificity: winner.specificity,
        chosen: winner.candidate.origin.clone(),
        tied_with,
    });
    Some((winner, warning))
}

fn candidate_specificity(
    candidate: &Candidate,
    context: &FoldedContext,
) -> Result<Specificity, UnmatchedDimension> {
    match &candidate.scope {
        CandidateScope::Specified { folded, .. } => match_folded_scope(folded, context),
        CandidateScope::System => Ok(Specificity::of(&[RankedDimension::Private])),
    }
}

fn resolved_from(candidate: &Candidate, specificity: Specificity) -> ResolvedVariable {
    ResolvedVariable {
        name: candidate.name.clone(),
        value: candidate.value.clone().unwrap_or_default(),
        is_sensitive: candidate.is_sensitive,
        variable_type: candidate.variable_type.clone(),
        origin: candidate.origin.clone(),
        specificity,
    }
}
