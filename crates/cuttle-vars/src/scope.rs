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
//! case would be a nasty surprise.
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
    let mut specificity = Specificity::UNSCOPED;
    for (field, scope_values) in scope.scoped_fields() {
        match match_dimension(field, scope_values, context) {
            Some(dimension) => specificity.insert(dimension),
            None => return Err(UnmatchedDimension(field.clone())),
        }
    }
    Ok(specificity)
}

/// Like [`match_scope`], but for the deployment as a whole when we only want to know whether
/// a value *could* be used somewhere in it: dimensions that only exist per action or target
/// (Action, Machine, Role, TargetRole) are treated as satisfied and not ranked. Used to
/// decide which prompts a deployment must answer.
pub fn could_match_during_deployment(
    scope: &ScopeSpecification,
    deployment: &DeploymentScope,
) -> Result<Specificity, UnmatchedDimension> {
    let context = ScopeContext::deployment_wide(deployment.clone());
    let mut specificity = Specificity::UNSCOPED;
    for (field, scope_values) in scope.scoped_fields() {
        if is_per_action_or_target(field) {
            continue;
        }
        match match_dimension(field, scope_values, &context) {
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
) -> Option<RankedDimension> {
    let deployment = &context.deployment;
    let single = |context_value: Option<&String>, dimension: RankedDimension| {
        context_value
            .filter(|context_value| contains_value(scope_values, context_value))
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
                .any(|tag| contains_value(scope_values, tag));
            any_tag_listed.then_some(RankedDimension::TenantTag)
        }
        ScopeField::Machine => single(
            context.target.as_ref().map(|target| &target.machine_id),
            RankedDimension::Machine,
        ),
        ScopeField::Action => {
            let action = context.action.as_ref()?;
            let names_action = contains_value(scope_values, &action.action_id)
                || action
                    .step_id
                    .as_ref()
                    .is_some_and(|step_id| contains_value(scope_values, step_id));
            names_action.then_some(RankedDimension::Action)
        }
        ScopeField::Role => {
            let target = context.target.as_ref()?;
            let matching_tags: Vec<&String> = target
                .tags
                .iter()
                .filter(|tag| contains_value(scope_values, tag))
                .collect();
            if matching_tags.is_empty() {
                return None;
            }
            // B3 items 3 and 4: a matching tag that the step targets ranks higher than
            // one that is merely on the machine.
            let targeted_by_step = context.action.as_ref().is_some_and(|action| {
                matching_tags
                    .iter()
                    .any(|tag| contains_value(&action.targeted_tags, tag))
            });
            Some(if targeted_by_step {
                RankedDimension::TargetTagTargetedByStep
            } else {
                RankedDimension::TargetTag
            })
        }
        ScopeField::TargetRole => {
            // An explicit TargetRole scope only matches tags that are both on the machine
            // and targeted by the step.
            let target = context.target.as_ref()?;
            let action = context.action.as_ref()?;
            let matches = target.tags.iter().any(|tag| {
                contains_value(scope_values, tag) && contains_value(&action.targeted_tags, tag)
            });
            matches.then_some(RankedDimension::TargetTagTargetedByStep)
        }
        // Private values are the server's own (system variables are ranked Private by the
        // resolver directly); a user-written Private or unknown scope never matches.
        ScopeField::Private | ScopeField::Other(_) => None,
    }
}

/// Case-insensitive membership, ignoring empty scope entries.
pub(crate) fn contains_value(scope_values: &[String], context_value: &str) -> bool {
    !context_value.is_empty()
        && scope_values
            .iter()
            .any(|scope_value| same_text_ignoring_case(scope_value, context_value))
}

/// Case-insensitive equality, the same folding the template crate uses for names.
pub(crate) fn same_text_ignoring_case(left: &str, right: &str) -> bool {
    left == right || left.eq_ignore_ascii_case(right) || fold_case(left) == fold_case(right)
}

/// Folds letter case for use as a map key.
pub(crate) fn fold_case(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}
