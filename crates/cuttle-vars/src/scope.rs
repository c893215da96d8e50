//! The evaluation context and the two scoping rules: which values match it (spec B2) and how
//! specific a matching value is (spec B3).
//!
//! A [`ScopeContext`] says where a value is being used: the deployment or runbook run as a
//! whole ([`DeploymentScope`]), optionally one action of it ([`ActionScope`]) and optionally
//! one deployment target ([`TargetScope`]). Leaving the action and target out gives the
//! deployment-wide view, where machine-, tag- and step-scoped values cannot match.
//!
//! **Matching (B2).** A value is a candidate only if every dimension it is scoped on is
//! satisfied: values within one dimension are OR'd, dimensions are AND'd, an unscoped value
//! always matches, and a dimension the context does not have (a channel during a runbook
//! run, a machine during the deployment-wide view) cannot be satisfied. Tenant tags are a
//! query: a value scoped to a tag matches every tenant carrying it.
//!
//! **Specificity (B3).** Dimensions are ranked, most specific first: Private, User, Action,
//! Machine, target tag targeted by the step, target tag, Tenant, TenantTag, Environment,
//! Channel, ProcessOwner, Trigger, ParentDeployment, Project. The blog formula gives each
//! dimension a decade weight and sums the weights of the dimensions a value is scoped on; a
//! dimension counts once however many values it lists. Because every weight exceeds the sum
//! of all lower ones, that sum orders exactly like a bit set compared as a binary number,
//! which is what [`Specificity`] is: the highest-ranked dimension decides first, and more
//! dimensions beat fewer when the higher ones agree.
//!
//! Ids, tags and names are compared case-insensitively: Octopus compares ids and target tags
//! with ignore-case comparers, and a scope that silently stopped matching because of letter
//! case would be a nasty surprise. Two texts are the same when their Unicode lowercase forms
//! are equal. [`match_scope`] compares without allocating; resolution, which matches the
//! same values against many contexts, folds each scope value once when it is added to the
//! sources and the context once per resolution, so its comparisons are plain equality with
//! the same outcome.
//!
//! What this module does not do: pick a winner among candidates (that is [`crate::resolve`])
//! or know where values come from (that is [`crate::sources`]).

use std::fmt;

use crate::model::{ScopeField, ScopeSpecification};

/// What a deployment or runbook run is, independent of step and target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentScope {
    /// The project being deployed (`Projects-1`).
    pub project_id: Option<String>,
    /// The environment deployed to.
    pub environment_id: Option<String>,
    /// The release's channel; `None` for runbook runs, which have no channel (B2).
    pub channel_id: Option<String>,
    /// The process being run: the project id for the deployment process, the runbook id
    /// (`Runbooks-1`) for a runbook process.
    pub process_owner_id: Option<String>,
    /// The tenant of a tenanted deployment; `None` for untenanted ones.
    pub tenant: Option<TenantScope>,
    /// The trigger that created the deployment, if any.
    pub trigger_id: Option<String>,
    /// For a child of a "Deploy a release" step, the parent deployment.
    pub parent_deployment_id: Option<String>,
    /// The user the deployment runs for, matched by `User`-scoped values.
    pub user_id: Option<String>,
}

/// The tenant of a tenanted deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantScope {
    /// `Tenants-1`.
    pub tenant_id: String,
    /// The tenant's tags as canonical names, `Tag Set/Tag`.
    pub tenant_tags: Vec<String>,
}

/// The action (step) a value is being used by.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionScope {
    /// The action's id, as `Action` scopes name it.
    pub action_id: String,
    /// The enclosing step's id when it differs from the action's (rolling-deployment child
    /// actions). An `Action` scope naming either id matches, so a value scoped to a parent
    /// step reaches its child actions.
    pub step_id: Option<String>,
    /// The target tags the step runs on (`Octopus.Action.TargetRoles`); a tag-scoped value
    /// whose tag is one of these ranks above one whose tag merely is on the machine (B3
    /// items 3 and 4).
    pub targeted_tags: Vec<String>,
}

/// The deployment target a value is being used on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetScope {
    /// `Machines-1`.
    pub machine_id: String,
    /// The machine's target tags (roles).
    pub tags: Vec<String>,
}

/// Where a value is being used: the input of resolution.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeContext {
    /// The deployment or runbook run.
    pub deployment: DeploymentScope,
    /// The action being run; `None` for the deployment-wide view.
    pub action: Option<ActionScope>,
    /// The target it runs on; `None` for the deployment-wide view and for steps that run on
    /// the server or a worker without a target.
    pub target: Option<TargetScope>,
}

impl ScopeContext {
    /// The deployment as a whole: no action, no target.
    pub fn deployment_wide(deployment: DeploymentScope) -> Self {
        ScopeContext {
            deployment,
            action: None,
            target: None,
        }
    }

    /// One action, on one target or (with `None`) on the server or a worker.
    pub fn for_action(
        deployment: DeploymentScope,
        action: ActionScope,
        target: Option<TargetScope>,
    ) -> Self {
        ScopeContext {
            deployment,
            action: Some(action),
            target,
        }
    }
}

/// How specific a matching value is: a set of ranked dimensions, compared highest rank first.
///
/// Equivalent to the blog's additive decade weights (see the module docs);
/// [`Specificity::decade_weight`] gives that number for display.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Specificity(u32);

/// The ranked dimensions, least specific first; the index is the bit in [`Specificity`].
///
/// `TargetTagTargetedByStep` is not a JSON key of its own: it is the rank a `Role` (or
/// `TargetRole`) scope earns when its matching tag is one the current step targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RankedDimension {
    /// `Project`.
    Project,
    /// `ParentDeployment`; unranked in the spec, placed just above Project (see crate docs).
    ParentDeployment,
    /// `Trigger`; unranked in the spec, placed just above Project (see crate docs).
    Trigger,
    /// `ProcessOwner`: the deployment or runbook process (B3 item 9).
    ProcessOwner,
    /// `Channel` (B3 item 8).
    Channel,
    /// `Environment` (B3 item 7).
    Environment,
    /// `TenantTag` (B3 item 6).
    TenantTag,
    /// `Tenant` (B3 item 5).
    Tenant,
    /// `Role`: a target tag on the current machine (B3 item 4).
    TargetTag,
    /// A target tag on the current machine that the current step targets (B3 item 3).
    TargetTagTargetedByStep,
    /// `Machine` (B3 item 2).
    Machine,
    /// `Action` (B3 item 1).
    Action,
    /// `User`: above Action in the blog formula.
    User,
    /// `Private`: server-internal values that beat user-defined ones; top of the formula.
    Private,
}

impl RankedDimension {
    /// All ranked dimensions, least specific first.
    pub const ALL: [RankedDimension; 14] = [
        RankedDimension::Project,
        RankedDimension::ParentDeployment,
        RankedDimension::Trigger,
        RankedDimension::ProcessOwner,
        RankedDimension::Channel,
        RankedDimension::Environment,
        RankedDimension::TenantTag,
        RankedDimension::Tenant,
        RankedDimension::TargetTag,
        RankedDimension::TargetTagTargetedByStep,
        RankedDimension::Machine,
        RankedDimension::Action,
        RankedDimension::User,
        RankedDimension::Private,
    ];

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl Specificity {
    /// No dimension: an unscoped value.
    pub const UNSCOPED: Specificity = Specificity(0);

    /// The specificity of a value scoped on exactly these dimensions.
    pub fn of(dimensions: &[RankedDimension]) -> Specificity {
        let mut specificity = Specificity::UNSCOPED;
        for dimension in dimensions {
            specificity.insert(*dimension);
        }
        specificity
    }

    fn insert(&mut self, dimension: RankedDimension) {
        self.0 |= dimension.bit();
    }

    /// True when the value was scoped on `dimension`.
    pub fn contains(self, dimension: RankedDimension) -> bool {
        self.0 & dimension.bit() != 0
    }

    /// The dimensions, most specific first.
    pub fn dimensions(self) -> Vec<RankedDimension> {
        RankedDimension::ALL
            .iter()
            .rev()
            .copied()
            .filter(|dimension| self.contains(*dimension))
            .collect()
    }

    /// The blog's additive rank: the sum of `10^rank` over the dimensions. Orders exactly
    /// like `Specificity` itself; useful in logs and previews.
    pub fn decade_weight(self) -> u64 {
        self.dimensions()
            .iter()
            .map(|dimension| 10u64.pow(*dimension as u32))
            .sum()
    }
}

impl fmt::Display for Specificity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dimensions = self.dimensions();
        if dimensions.is_empty() {
            return formatter.write_str("unscoped");
        }
        let names: Vec<String> = dimensions
            .iter()
            .map(|dimension| format!("{dimension:?}"))
            .collect();
        formatter.write_str(&names.join(" + "))
    }
}

/// Why a value is not a candidate: the first dimension it is scoped on that the context
/// does not satisfy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnmatchedDimension(pub ScopeField);

/// Matches `scope` against `context` (B2) and, when every scoped dimension is satisfied,
/// says how specific the match is (B3).
pub fn match_scope(
    scope: &ScopeSpecification,
    context: &ScopeContext,
) -> Result<Specificity, UnmatchedDimension> {
    match_fields(
        scope.scoped_fields(),
        context,
        Dimensions::All,
        same_text_ignoring_case,
    )
}

/// Like [`match_scope`], but for the deployment as a whole when we only want to know whether
/// a value *could* be used somewhere in it: dimensions that only exist per action or target
/// (Action, Machine, Role, TargetRole) are treated as satisfied and not ranked. Used to
/// decide which prompts a deployment must answer.
pub fn could_match_during_deployment(
    scope: &ScopeSpecification,
    deployment: &DeploymentScope,
) -> Result<Specificity, UnmatchedDimension> {
    match_fields(
        scope.scoped_fields(),
        &ScopeContext::deployment_wide(deployment.clone()),
        Dimensions::DeploymentLevel,
        same_text_ignoring_case,
    )
}

/// A scope with its values case-folded ([`fold_case`]) once, when a candidate is added, so
/// that matching it against many contexts compares folded texts byte for byte instead of
/// ignoring case on every comparison. Keeps only the dimensions that constrain, in
/// [`ScopeSpecification::scoped_fields`] order, so the first unmatched dimension reported is
/// the same as [`match_scope`]'s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FoldedScope {
    fields: Vec<(ScopeField, Vec<String>)>,
}

impl FoldedScope {
    pub(crate) fn new(scope: &ScopeSpecification) -> Self {
        FoldedScope {
            fields: scope
                .scoped_fields()
                .map(|(field, values)| (field.clone(), fold_all(values)))
                .collect(),
        }
    }

    fn scoped_fields(&self) -> impl Iterator<Item = (&ScopeField, &[String])> {
        self.fields
            .iter()
            .map(|(field, values)| (field, values.as_slice()))
    }
}

/// A context with every id and tag case-folded, built once per resolution and matched
/// against [`FoldedScope`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FoldedContext(ScopeContext);

impl FoldedContext {
    pub(crate) fn new(context: &ScopeContext) -> Self {
        // Destructured without `..`, so a new context field cannot be left unfolded.
        let ScopeContext {
            deployment,
            action,
            target,
        } = context;
        FoldedContext(ScopeContext {
            deployment: fold_deployment(deployment),
            action: action.as_ref().map(
                |ActionScope {
                     action_id,
                     step_id,
                     targeted_tags,
                 }| ActionScope {
                    action_id: fold_case(action_id),
                    step_id: fold_option(step_id),
                    targeted_tags: fold_all(targeted_tags),
                },
            ),
            target: target
                .as_ref()
                .map(|TargetScope { machine_id, tags }| TargetScope {
                    machine_id: fold_case(machine_id),
                    tags: fold_all(tags),
                }),
        })
    }

    /// The deployment as a whole, as [`could_match_folded_during_deployment`] needs it.
    pub(crate) fn deployment_wide(deployment: &DeploymentScope) -> Self {
        FoldedContext(ScopeContext::deployment_wide(fold_deployment(deployment)))
    }
}

fn fold_deployment(deployment: &DeploymentScope) -> DeploymentScope {
    let DeploymentScope {
        project_id,
        environment_id,
        channel_id,
        process_owner_id,
        tenant,
        trigger_id,
        parent_deployment_id,
        user_id,
    } = deployment;
    DeploymentScope {
        project_id: fold_option(project_id),
        environment_id: fold_option(environment_id),
        channel_id: fold_option(channel_id),
        process_owner_id: fold_option(process_owner_id),
        tenant: tenant.as_ref().map(
            |TenantScope {
                 tenant_id,
                 tenant_tags,
             }| TenantScope {
                tenant_id: fold_case(tenant_id),
                tenant_tags: fold_all(tenant_tags),
            },
        ),
        trigger_id: fold_option(trigger_id),
        parent_deployment_id: fold_option(parent_deployment_id),
        user_id: fold_option(user_id),
    }
}

fn fold_option(text: &Option<String>) -> Option<String> {
    text.as_deref().map(fold_case)
}

fn fold_all(texts: &[String]) -> Vec<String> {
    texts.iter().map(|text| fold_case(text)).collect()
}

/// [`match_scope`] over folded forms: the same result, because two texts are the same
/// ignoring case exactly when their folded forms are equal.
pub(crate) fn match_folded_scope(
    scope: &FoldedScope,
    context: &FoldedContext,
) -> Result<Specificity, UnmatchedDimension> {
    match_fields(
        scope.scoped_fields(),
        &context.0,
        Dimensions::All,
        folded_texts_equal,
    )
}

/// [`could_match_during_deployment`] over folded forms; `deployment` comes from
/// [`FoldedContext::deployment_wide`].
pub(crate) fn could_match_folded_during_deployment(
    scope: &FoldedScope,
    deployment: &FoldedContext,
) -> Result<Specificity, UnmatchedDimension> {
    match_fields(
        scope.scoped_fields(),
        &deployment.0,
        Dimensions::DeploymentLevel,
        folded_texts_equal,
    )
}

fn folded_texts_equal(left: &str, right: &str) -> bool {
    left == right
}

/// Which dimensions [`match_fields`] checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dimensions {
    /// Every scoped dimension must match.
    All,
    /// Per-action and per-target dimensions are skipped (see
    /// [`could_match_during_deployment`]).
    DeploymentLevel,
}

/// B2 and B3 over `fields`, comparing scope values with context values by `same`.
fn match_fields<'a>(
    fields: impl Iterator<Item = (&'a ScopeField, &'a [String])>,
    context: &ScopeContext,
    dimensions: Dimensions,
    same: impl Fn(&str, &str) -> bool + Copy,
) -> Result<Specificity, UnmatchedDimension> {
    let mut specificity = Specificity::UNSCOPED;
    for (field, scope_values) in fields {
        if dimensions == Dimensions::DeploymentLevel && is_per_action_or_target(field) {
            continue;
        }
        match match_dimension(field, scope_values, context, same) {
            Some(dimension) => specificity.insert(dimension),
            None => return Err(UnmatchedDimension(field.clone())),
        }
    }
    Ok(specificity)
}

fn is_per_action_or_target(field: &ScopeField) -> bool {
    matches!(
        field,
        ScopeField::Action | ScopeField::Machine | ScopeField::Role | ScopeField::TargetRole
    )
}

/// One dimension: `Some(rank)` when any scope value is satisfied by the context.
fn match_dimension(
    field: &ScopeField,
    scope_values: &[String],
    context: &ScopeContext,
    same: impl Fn(&str, &str) -> bool + Copy,
) -> Option<RankedDimension> {
    let deployment = &context.deployment;
    let contains =
        |values: &[String], context_value: &str| contains_by(values, context_value, same);
    let single = |context_value: Option<&String>, dimension: RankedDimension| {
        context_value
            .filter(|context_value| contains(scope_values, context_value))
            .map(|_| dimension)
    };
    match field {
        ScopeField::Project => single(deployment.project_id.as_ref(), RankedDimension::Project),
        ScopeField::Environment => single(
            deployment.environment_id.as_ref(),
            RankedDimension::Environment,
        ),
        ScopeField::Channel => single(deployment.channel_id.as_ref(), RankedDimension::Channel),
        ScopeField::ProcessOwner => single(
            deployment.process_owner_id.as_ref(),
            RankedDimension::ProcessOwner,
        ),
        ScopeField::Trigger => single(deployment.trigger_id.as_ref(), RankedDimension::Trigger),
        ScopeField::ParentDeployment => single(
            deployment.parent_deployment_id.as_ref(),
            RankedDimension::ParentDeployment,
        ),
        ScopeField::User => single(deployment.user_id.as_ref(), RankedDimension::User),
        ScopeField::Tenant => single(
            deployment.tenant.as_ref().map(|tenant| &tenant.tenant_id),
            RankedDimension::Tenant,
        ),
        ScopeField::TenantTag => {
            // Tags are a query: any tag of the tenant that the scope lists is enough.
            let tenant = deployment.tenant.as_ref()?;
            let any_tag_listed = tenant
                .tenant_tags
                .iter()
                .any(|tag| contains(scope_values, tag));
            any_tag_listed.then_some(RankedDimension::TenantTag)
        }
        ScopeField::Machine => single(
            context.target.as_ref().map(|target| &target.machine_id),
            RankedDimension::Machine,
        ),
        ScopeField::Action => {
            let action = context.action.as_ref()?;
            let names_action = contains(scope_values, &action.action_id)
                || action
                    .step_id
                    .as_ref()
                    .is_some_and(|step_id| contains(scope_values, step_id));
            names_action.then_some(RankedDimension::Action)
        }
        ScopeField::Role => {
            // B3 items 3 and 4: a matching tag that the step targets ranks higher than
            // one that is merely on the machine.
            let target = context.target.as_ref()?;
            let mut any_tag_matches = false;
            for tag in target.tags.iter().filter(|tag| contains(scope_values, tag)) {
                let targeted_by_step = context
                    .action
                    .as_ref()
                    .is_some_and(|action| contains(&action.targeted_tags, tag));
                if targeted_by_step {
                    return Some(RankedDimension::TargetTagTargetedByStep);
                }
                any_tag_matches = true;
            }
            any_tag_matches.then_some(RankedDimension::TargetTag)
        }
        ScopeField::TargetRole => {
            // An explicit TargetRole scope only matches tags that are both on the machine
            // and targeted by the step.
            let target = context.target.as_ref()?;
            let action = context.action.as_ref()?;
            let matches = target
                .tags
                .iter()
                .any(|tag| contains(scope_values, tag) && contains(&action.targeted_tags, tag));
            matches.then_some(RankedDimension::TargetTagTargetedByStep)
        }
        // Private values are the server's own (system variables are ranked Private by the
        // resolver directly); a user-written Private or unknown scope never matches.
        ScopeField::Private | ScopeField::Other(_) => None,
    }
}

/// Membership by `same`, ignoring empty context values (so an empty scope entry never
/// matches).
fn contains_by(
    scope_values: &[String],
    context_value: &str,
    same: impl Fn(&str, &str) -> bool,
) -> bool {
    !context_value.is_empty()
        && scope_values
            .iter()
            .any(|scope_value| same(scope_value, context_value))
}

/// Case-insensitive equality, the same folding the template crate uses for names:
/// `fold_case(left) == fold_case(right)`, without allocating.
///
/// This is the inner loop of scope matching (every scope value against every context id),
/// so the common cases are cheap: texts equal up to ASCII case are equal whatever else
/// they contain, and two differing all-ASCII texts cannot fold to the same text because
/// ASCII characters lowercase to ASCII. Only a non-ASCII text that differs byte-wise takes
/// the Unicode lowercase walk, still without building `String`s.
pub(crate) fn same_text_ignoring_case(left: &str, right: &str) -> bool {
    if left.eq_ignore_ascii_case(right) {
        return true;
    }
    if left.is_ascii() && right.is_ascii() {
        return false;
    }
    left.chars()
        .flat_map(char::to_lowercase)
        .eq(right.chars().flat_map(char::to_lowercase))
}

/// Folds letter case for use as a map key: the Unicode lowercase of every character.
pub(crate) fn fold_case(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    text.chars().flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXTS: [&str; 16] = [
        "",
        "k",
        "K",
        "\u{212A}", // KELVIN SIGN, folds to "k"
        "Machines-1",
        "MACHINES-1",
        "Machines-12",
        "Straße",
        "STRASSE",
        "straße",
        "İstanbul", // folds to "i\u{307}stanbul", longer than the original
        "i\u{307}stanbul",
        "istanbul",
        "ΣΊΣΥΦΟΣ",
        "σίσυφοσ",
        "web-\u{212A}",
    ];

    #[test]
    fn ignoring_case_is_equality_of_folded_texts() {
        for left in TEXTS {
            assert_eq!(
                fold_case(left),
                left.chars()
                    .flat_map(char::to_lowercase)
                    .collect::<String>()
            );
            for right in TEXTS {
                assert_eq!(
                    same_text_ignoring_case(left, right),
                    fold_case(left) == fold_case(right),
                    "{left:?} vs {right:?}"
                );
            }
        }
    }

    #[test]
    fn folded_matching_agrees_with_matching() {
        let fields = [
            ScopeField::Environment,
            ScopeField::Machine,
            ScopeField::Role,
            ScopeField::TargetRole,
            ScopeField::Action,
            ScopeField::TenantTag,
            ScopeField::Tenant,
        ];
        let contexts: Vec<ScopeContext> = TEXTS
            .iter()
            .zip(TEXTS.iter().rev())
            .map(|(one, other)| {
                let deployment = DeploymentScope {
                    environment_id: Some(one.to_string()),
                    tenant: Some(TenantScope {
                        tenant_id: other.to_string(),
                        tenant_tags: vec![one.to_string(), "Tier/Gold".to_string()],
                    }),
                    ..DeploymentScope::default()
                };
                ScopeContext::for_action(
                    deployment,
                    ActionScope {
                        action_id: other.to_string(),
                        step_id: Some(one.to_string()),
                        targeted_tags: vec![one.to_string()],
                    },
                    Some(TargetScope {
                        machine_id: one.to_string(),
                        tags: vec![other.to_string(), one.to_string()],
                    }),
                )
            })
            .collect();
        let mut matched = 0;
        for (field_index, field) in fields.iter().enumerate() {
            for (text_index, text) in TEXTS.iter().enumerate() {
                let other_field = &fields[(field_index + 1) % fields.len()];
                let other_text = TEXTS[(text_index + 3) % TEXTS.len()];
                let scope = ScopeSpecification::new()
                    .with(field.clone(), &[text])
                    .with(other_field.clone(), &[other_text, "tier/GOLD"]);
                let folded_scope = FoldedScope::new(&scope);
                for context in &contexts {
                    let folded_context = FoldedContext::new(context);
                    let outcome = match_scope(&scope, context);
                    matched += usize::from(outcome.is_ok());
                    assert_eq!(
                        match_folded_scope(&folded_scope, &folded_context),
                        outcome,
                        "{scope:?} in {context:?}"
                    );
                    assert_eq!(
                        could_match_folded_during_deployment(
                            &folded_scope,
                            &FoldedContext::deployment_wide(&context.deployment)
                        ),
                        could_match_during_deployment(&scope, &context.deployment),
                        "{scope:?} in {context:?}"
                    );
                }
            }
        }
        // The comparison is not vacuous: plenty of cases match, across case differences.
        assert!(matched > 50, "{matched} matches");
    }
}
