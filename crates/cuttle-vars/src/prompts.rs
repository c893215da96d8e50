//! Prompted variables (spec B7): which prompts a deployment must answer, and applying the
//! answers.
//!
//! A value with `Prompt` settings is asked for when the deployment (or runbook run) is
//! created, not when the release is. [`VariableSources::prompts_for_deployment`] lists what
//! to ask, one entry per name, sorted by label falling back to the name. A prompted value is
//! asked for when it could be used somewhere in the deployment: its deployment-level scope
//! (environment, channel, tenant, tenant tags, process owner, ...) must match, while the
//! dimensions that only exist per action or target (Action, Machine, Role, TargetRole) are
//! treated as "may match", since the form is shown before any step runs.
//!
//! [`VariableSources::apply_prompt_answers`] replaces the value of every in-scope prompted
//! value of an answered name, keeping its scope and origin, so whichever of them wins in a
//! given context carries the answer (B7: "the supplied value replaces the prompted
//! variable's value"). A required prompt whose effective value (the answer, or the default
//! when unanswered) is empty or whitespace is an error naming every such prompt. Answers to
//! secret prompts (sensitive variables, or the `Sensitive` control type) stay sensitive.
//!
//! Answers are keyed by variable id (the UI's `FormValues`) or by name (the CLI's
//! `--variable "Name:Value"` and the `Variables` object of `deployments/create/v1`); an id
//! match wins over a name match.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::model::VariablePrompt;
use crate::scope::{
    DeploymentScope, FoldedContext, Specificity, could_match_folded_during_deployment, fold_case,
};
use crate::sources::{Candidate, CandidateScope, OriginKind, VariableSources};

/// One question the deployment form must ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptRequest {
    /// The variable name the answer is stored under.
    pub name: String,
    /// The label to show: the prompt's label, or the name when the label is blank.
    pub label: String,
    /// Help text.
    pub description: Option<String>,
    /// True when any in-scope prompted value of this name is required.
    pub required: bool,
    /// The prompt's display settings (control type, select options, ...).
    pub display_settings: BTreeMap<String, String>,
    /// The default answer: the stored value. `None` when the value is sensitive, so a
    /// secret default is never sent to a form.
    pub default_value: Option<String>,
    /// True when the answer is a secret and must be masked.
    pub is_sensitive: bool,
    /// The ids of the prompted values this answer replaces, in tie-break order; the first
    /// is the one whose label and settings are shown.
    pub variable_ids: Vec<String>,
}

/// Values supplied with the deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PromptAnswers {
    by_variable_id: BTreeMap<String, String>,
    by_folded_name: BTreeMap<String, (String, String)>,
}

impl PromptAnswers {
    /// No answers.
    pub fn new() -> Self {
        Self::default()
    }

    /// An answer keyed by variable name (case-insensitive).
    pub fn answer_by_name(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.by_folded_name
            .insert(fold_case(&name), (name, value.into()));
        self
    }

    /// An answer keyed by the prompted value's id.
    pub fn answer_by_variable_id(
        mut self,
        variable_id: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.by_variable_id.insert(variable_id.into(), value.into());
        self
    }

    /// Answers from a deployment's `FormValues`, whose keys Octopus's portal sends as the
    /// prompted variables' ids and scripts usually send as names: each key is tried as both.
    pub fn from_form_values<'pair, I>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (&'pair str, &'pair str)>,
    {
        pairs
            .into_iter()
            .fold(PromptAnswers::new(), |answers, (key, value)| {
                answers
                    .answer_by_name(key, value)
                    .answer_by_variable_id(key, value)
            })
    }

    /// Answers keyed by name, from a `{"Name": "Value"}` object as the API receives it.
    pub fn from_names<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        pairs
            .into_iter()
            .fold(PromptAnswers::new(), |answers, (name, value)| {
                answers.answer_by_name(name, value)
            })
    }

    fn find(&self, request: &PromptRequest) -> Option<(&str, AnswerKey)> {
        let by_id = request.variable_ids.iter().find_map(|variable_id| {
            self.by_variable_id
                .get(variable_id)
                .map(|value| (value.as_str(), AnswerKey::VariableId(variable_id.clone())))
        });
        by_id.or_else(|| {
            let folded_name = fold_case(&request.name);
            self.by_folded_name
                .get(&folded_name)
                .map(|(_, value)| (value.as_str(), AnswerKey::Name(folded_name)))
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum AnswerKey {
    VariableId(String),
    Name(String),
}

/// A required prompt that has no usable value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingPrompt {
    /// The variable name.
    pub name: String,
    /// The label shown to the user.
    pub label: String,
}

/// Why prompt answers were refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PromptError {
    /// Required prompts answered with nothing, or only whitespace, and without a default.
    #[error("required prompted variables have no value: {}", describe_missing(.missing))]
    MissingRequiredValues {
        /// The offending prompts, in prompt order.
        missing: Vec<MissingPrompt>,
    },
}

fn describe_missing(missing: &[MissingPrompt]) -> String {
    missing
        .iter()
        .map(|prompt| {
            if prompt.label == prompt.name {
                format!("'{}'", prompt.name)
            } else {
                format!("'{}' ({})", prompt.label, prompt.name)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What applying answers did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppliedPrompts {
    /// Names whose values were replaced by an answer.
    pub answered_names: Vec<String>,
    /// Answer keys (names or variable ids) that matched no prompt of this deployment, so the
    /// server can reject or report them.
    pub unused_answer_keys: Vec<String>,
}

impl VariableSources {
    /// The prompts a deployment described by `deployment` must show, sorted by label
    /// (case-insensitively), then by name.
    pub fn prompts_for_deployment(&self, deployment: &DeploymentScope) -> Vec<PromptRequest> {
        let deployment = FoldedContext::deployment_wide(deployment);
        let mut requests: Vec<PromptRequest> = self
            .name_groups()
            .filter_map(|(_, group)| prompt_request_for_group(group, &deployment))
            .collect();
        requests.sort_by(|left, right| {
            fold_case(&left.label)
                .cmp(&fold_case(&right.label))
                .then_with(|| left.label.cmp(&right.label))
                .then_with(|| fold_case(&left.name).cmp(&fold_case(&right.name)))
        });
        requests
    }

    /// Replaces the prompted values of `deployment` with the supplied answers.
    ///
    /// Nothing is changed when a required prompt is missing: the error lists all of them.
    pub fn apply_prompt_answers(
        &mut self,
        deployment: &DeploymentScope,
        answers: &PromptAnswers,
    ) -> Result<AppliedPrompts, PromptError> {
        let requests = self.prompts_for_deployment(deployment);
        let deployment = FoldedContext::deployment_wide(deployment);
        let mut missing = Vec::new();
        let mut replacements: Vec<(String, String, bool)> = Vec::new();
        let mut used_keys: Vec<AnswerKey> = Vec::new();
        for request in &requests {
            let answer = match answers.find(request) {
                Some((value, key)) => {
                    used_keys.push(key);
                    Some(value)
                }
                None => None,
            };
            let effective_value = answer
                .map(str::to_string)
                .or_else(|| request.default_value.clone())
                .unwrap_or_default();
            // A sensitive default is hidden from the request but still a usable value.
            let has_hidden_default = answer.is_none()
                && request.is_sensitive
                && self.has_non_blank_prompted_value(&deployment, &request.name);
            if request.required && effective_value.trim().is_empty() && !has_hidden_default {
                missing.push(MissingPrompt {
                    name: request.name.clone(),
                    label: request.label.clone(),
                });
            }
            if let Some(value) = answer {
                replacements.push((
                    request.name.clone(),
                    value.to_string(),
                    request.is_sensitive,
                ));
            }
        }
        if !missing.is_empty() {
            return Err(PromptError::MissingRequiredValues { missing });
        }

        let mut applied = AppliedPrompts::default();
        for (name, value, is_sensitive) in replacements {
            // Only values change, so the sources' name grouping stays valid.
            self.change_candidates_named(&name, |candidate| {
                if is_prompted_in_scope(candidate, &deployment).is_some() {
                    candidate.value = Some(value.clone());
                    candidate.is_sensitive |= is_sensitive;
                }
            });
            applied.answered_names.push(name);
        }
        applied.unused_answer_keys = answers
            .by_variable_id
            .keys()
            .filter(|variable_id| {
                !used_keys.contains(&AnswerKey::VariableId((*variable_id).clone()))
            })
            .cloned()
            .chain(
                answers
                    .by_folded_name
                    .iter()
                    .filter(|(folded_name, _)| {
                        !used_keys.contains(&AnswerKey::Name((*folded_name).clone()))
                    })
                    .map(|(_, (name, _))| name.clone()),
            )
            .collect();
        Ok(applied)
    }

    fn has_non_blank_prompted_value(&self, deployment: &FoldedContext, name: &str) -> bool {
        self.candidates_named(name).any(|candidate| {
            is_prompted_in_scope(candidate, deployment).is_some()
                && candidate
                    .value
                    .as_deref()
                    .is_some_and(|value| !value.trim().is_empty())
        })
    }
}

/// The prompt settings and deployment-level specificity of a user-defined prompted value
/// that could be used in `deployment`.
fn is_prompted_in_scope<'a>(
    candidate: &'a Candidate,
    deployment: &FoldedContext,
) -> Option<(&'a VariablePrompt, Specificity)> {
    // Only user-defined values can be prompted; the server's own sources never are.
    if !matches!(
        candidate.origin.kind,
        OriginKind::ProjectVariables | OriginKind::LibraryVariableSet
    ) {
        return None;
    }
    let prompt = candidate.prompt.as_ref()?;
    let CandidateScope::Specified { folded, .. } = &candidate.scope else {
        return None;
    };
    let specificity = could_match_folded_during_deployment(folded, deployment).ok()?;
    Some((prompt, specificity))
}

fn prompt_request_for_group<'a>(
    group: impl Iterator<Item = &'a Candidate>,
    deployment: &FoldedContext,
) -> Option<PromptRequest> {
    let prompted: Vec<(&Candidate, &VariablePrompt, Specificity)> = group
        .filter_map(|candidate| {
            is_prompted_in_scope(candidate, deployment)
                .map(|(prompt, specificity)| (candidate, prompt, specificity))
        })
        .collect();
    // The most specific prompted value (first in tie-break order among equals) supplies the
    // label, help text and settings shown.
    let best_specificity = prompted
        .iter()
        .map(|(_, _, specificity)| *specificity)
        .max()?;
    let (shown, shown_prompt, _) = prompted
        .iter()
        .find(|(_, _, specificity)| *specificity == best_specificity)?;
    let is_sensitive = prompted
        .iter()
        .any(|(candidate, prompt, _)| candidate.is_sensitive || prompt.collects_secret());
    let label = shown_prompt
        .label
        .as_deref()
        .filter(|label| !label.trim().is_empty())
        .unwrap_or(&shown.name)
        .to_string();
    Some(PromptRequest {
        name: shown.name.clone(),
        label,
        description: shown_prompt.description.clone(),
        required: prompted.iter().any(|(_, prompt, _)| prompt.required),
        display_settings: shown_prompt.display_settings.clone(),
        default_value: if is_sensitive {
            None
        } else {
            Some(shown.value.clone().unwrap_or_default())
        },
        is_sensitive,
        variable_ids: prompted
            .iter()
            .filter_map(|(candidate, _, _)| candidate.origin.variable_id.clone())
            .collect(),
    })
}
