//! Lifecycle progression: which environments a release may be deployed to now, why not the
//! others, and which automatic deployments are due. [`Progression::evaluate`] owns it.
//!
//! The rules, as Octopus applies them:
//!
//! - Phases are ordered. A phase's environments are its automatic and optional (manual)
//!   targets. A lifecycle **without phases** has one implicit phase per environment, in the
//!   space's environment order, each with its environment as a manual target (the Default
//!   Lifecycle). A phase **without environments** takes every environment not named in any
//!   other phase of the lifecycle, including environments created later; only the first such
//!   phase does (Octopus refuses a second one).
//! - A phase is **complete** when its promotion rule is met: with
//!   `MinimumEnvironmentsBeforePromotion = 0` every environment of the phase has a successful
//!   deployment of the release; with `N > 0` at least `N` distinct environments do. Queued,
//!   executing, failed, canceled and timed-out deployments do not count.
//! - The release may deploy to every phase up to and including the first phase that is neither
//!   complete nor optional (the current one); earlier phases stay deployable (redeploy,
//!   rollback). An **optional** phase never holds the next one back, and its automatic
//!   environments are not deployed automatically when the release passes through it.
//! - A **defect** (prevent progression) blocks every phase without a successful deployment of
//!   the release, except the first phase; phases already deployed stay deployable.
//!
//! Environments that the lifecycle names but the space no longer has are ignored, and a
//! minimum larger than what is left counts as "all that are left".
//!
//! What it deliberately does not do: tenants (evaluate once per tenant with that tenant's
//! deployments), deployment freezes, permissions, and queueing the automatic deployments.

use std::fmt;
use std::str::FromStr;

use cuttle_domain::Lifecycle;

/// An environment of the space, as progression needs it. Pass them in the space's sort order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvironmentRef {
    pub id: String,
    pub name: String,
}

impl EnvironmentRef {
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> EnvironmentRef {
        EnvironmentRef {
            id: id.into(),
            name: name.into(),
        }
    }
}

/// The state of a deployment's task, spelled as Octopus's `TaskState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeploymentState {
    Queued,
    Executing,
    Cancelling,
    Success,
    Failed,
    Canceled,
    TimedOut,
}

impl DeploymentState {
    pub const ALL: [DeploymentState; 7] = [
        DeploymentState::Queued,
        DeploymentState::Executing,
        DeploymentState::Cancelling,
        DeploymentState::Success,
        DeploymentState::Failed,
        DeploymentState::Canceled,
        DeploymentState::TimedOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentState::Queued => "Queued",
            DeploymentState::Executing => "Executing",
            DeploymentState::Cancelling => "Cancelling",
            DeploymentState::Success => "Success",
            DeploymentState::Failed => "Failed",
            DeploymentState::Canceled => "Canceled",
            DeploymentState::TimedOut => "TimedOut",
        }
    }
}

impl fmt::Display for DeploymentState {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A text that is not one of the [`DeploymentState`] names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a deployment state; expected Queued, Executing, Cancelling, Success, Failed, Canceled or TimedOut"
)]
pub struct UnknownDeploymentState(pub String);

impl FromStr for DeploymentState {
    type Err = UnknownDeploymentState;

    /// Parses Octopus's spelling, ignoring case.
    fn from_str(text: &str) -> Result<DeploymentState, UnknownDeploymentState> {
        DeploymentState::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| UnknownDeploymentState(text.to_owned()))
    }
}

/// One deployment of the release (for the tenant being evaluated, if any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentFact {
    pub environment_id: String,
    pub state: DeploymentState,
}

impl DeploymentFact {
    pub fn new(environment_id: impl Into<String>, state: DeploymentState) -> DeploymentFact {
        DeploymentFact {
            environment_id: environment_id.into(),
            state,
        }
    }
}

/// Where the release is in a phase; Octopus's `PhaseProgress` (`Pending|Current|Complete`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PhaseProgress {
    /// The promotion rule is met and the phase is reachable.
    Complete,
    /// The phase is reachable and its promotion rule is not met yet.
    Current,
    /// An earlier required phase is not complete; the release cannot deploy here yet.
    Pending,
}

impl PhaseProgress {
    /// The name the API shows, as Octopus spells its `PhaseProgress` values.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseProgress::Complete => "Complete",
            PhaseProgress::Current => "Current",
            PhaseProgress::Pending => "Pending",
        }
    }
}

/// One phase as evaluated for the release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseProgression {
    pub name: String,
    /// Automatic environments first, then optional ones.
    pub environment_ids: Vec<String>,
    pub automatic_environment_ids: Vec<String>,
    pub optional_environment_ids: Vec<String>,
    pub is_optional: bool,
    /// As configured: 0 means "every environment of the phase".
    pub minimum_environments_before_promotion: usize,
    /// The phase's environments with a successful deployment of the release.
    pub successful_environment_ids: Vec<String>,
    pub progress: PhaseProgress,
    /// A defect keeps the release out of this phase.
    pub blocked: bool,
}

impl PhaseProgression {
    /// How many successful environments complete the phase.
    pub fn n_environments_required(&self) -> usize {
        let n_environments = self.environment_ids.len();
        if self.minimum_environments_before_promotion == 0 {
            n_environments
        } else {
            self.minimum_environments_before_promotion
                .min(n_environments)
        }
    }

    /// Whether the promotion rule is met (regardless of whether the phase is reachable).
    pub fn promotion_rule_met(&self) -> bool {
        self.successful_environment_ids.len() >= self.n_environments_required()
    }

    /// Whether the release may deploy to this phase's environments now.
    pub fn is_deployable(&self) -> bool {
        self.progress != PhaseProgress::Pending && !self.blocked
    }
}

/// Why a release may not be deployed to an environment now.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeploymentRefusal {
    #[error("environment '{environment_id}' is not one of the space's environments")]
    UnknownEnvironment { environment_id: String },
    #[error("environment '{environment_name}' is not part of the lifecycle '{lifecycle_name}'")]
    NotInLifecycle {
        environment_name: String,
        lifecycle_name: String,
    },
    #[error(
        "{environment_name} is in phase '{phase_name}', which the release cannot reach until phase '{blocking_phase_name}' is complete: {blocking_phase_name} needs {requirement} (done: {done})"
    )]
    PhaseNotReached {
        environment_name: String,
        phase_name: String,
        blocking_phase_name: String,
        /// What the blocking phase needs, e.g. "a successful deployment to every environment".
        requirement: String,
        /// The blocking phase's environments already deployed successfully, or "none".
        done: String,
    },
    #[error(
        "{environment_name} is in phase '{phase_name}', which the release may not progress to because it has a defect: {defect_reason}"
    )]
    BlockedByDefect {
        environment_name: String,
        phase_name: String,
        defect_reason: String,
    },
}

/// Whether the release may be deployed to one environment now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvironmentDecision {
    pub environment: EnvironmentRef,
    /// Index into [`Progression::phases`]; `None` when the lifecycle does not include it.
    pub phase_index: Option<usize>,
    pub decision: Result<(), DeploymentRefusal>,
}

/// A release's progression through its lifecycle. Build with [`Progression::evaluate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progression {
    phases: Vec<PhaseProgression>,
    environment_decisions: Vec<EnvironmentDecision>,
    automatic_environments_to_deploy: Vec<String>,
}

impl Progression {
    /// Evaluates the release's progression.
    ///
    /// `environments` are the space's environments in their sort order; `deployments` are the
    /// release's deployments (one tenant's, when tenanted); `defect_reason` is the description
    /// of an unresolved defect (prevent progression), if there is one.
    pub fn evaluate(
        lifecycle: &Lifecycle,
        environments: &[EnvironmentRef],
        deployments: &[DeploymentFact],
        defect_reason: Option<&str>,
    ) -> Progression {
        let successful_environment_ids: Vec<&str> = deployments
            .iter()
            .filter(|deployment| deployment.state == DeploymentState::Success)
            .map(|deployment| deployment.environment_id.as_str())
            .collect();
        let has_succeeded =
            |environment_id: &str| contains_id(&successful_environment_ids, environment_id);

        let mut phases = Vec::new();
        for phase_targets in phase_targets(lifecycle, environments) {
            let environment_ids: Vec<String> = phase_targets
                .automatic_environment_ids
                .iter()
                .chain(&phase_targets.optional_environment_ids)
                .cloned()
                .collect();
            let successful = environment_ids
                .iter()
                .filter(|environment_id| has_succeeded(environment_id))
                .cloned()
                .collect();
            phases.push(PhaseProgression {
                name: phase_targets.name,
                environment_ids,
                automatic_environment_ids: phase_targets.automatic_environment_ids,
                optional_environment_ids: phase_targets.optional_environment_ids,
                is_optional: phase_targets.is_optional,
                minimum_environments_before_promotion: phase_targets
                    .minimum_environments_before_promotion,
                successful_environment_ids: successful,
                progress: PhaseProgress::Pending,
                blocked: false,
            });
        }

        // The gate closes after the first required phase whose rule is not met.
        let mut blocking_phase_index = None;
        for (phase_index, phase) in phases.iter_mut().enumerate() {
            let reachable = blocking_phase_index.is_none();
            let rule_met = phase.promotion_rule_met();
            phase.progress = match (reachable, rule_met) {
                (true, true) => PhaseProgress::Complete,
                (true, false) => PhaseProgress::Current,
                (false, _) => PhaseProgress::Pending,
            };
            phase.blocked = defect_reason.is_some()
                && phase_index > 0
                && phase.successful_environment_ids.is_empty();
            if reachable && !rule_met && !phase.is_optional {
                blocking_phase_index = Some(phase_index);
            }
        }

        let environment_decisions = environments
            .iter()
            .map(|environment| {
                let phase_index = phases.iter().position(|phase| {
                    phase
                        .environment_ids
                        .iter()
                        .any(|id| id.eq_ignore_ascii_case(&environment.id))
                });
                let decision = decide(
                    lifecycle,
                    environments,
                    &phases,
                    environment,
                    phase_index,
                    blocking_phase_index,
                    defect_reason,
                );
                EnvironmentDecision {
                    environment: environment.clone(),
                    phase_index,
                    decision,
                }
            })
            .collect();

        let automatic_environments_to_deploy = phases
            .iter()
            .filter(|phase| phase.is_deployable() && !phase.is_optional)
            .flat_map(|phase| &phase.automatic_environment_ids)
            .filter(|environment_id| {
                !deployments.iter().any(|deployment| {
                    deployment
                        .environment_id
                        .eq_ignore_ascii_case(environment_id)
                })
            })
            .cloned()
            .collect();

        Progression {
            phases,
            environment_decisions,
            automatic_environments_to_deploy,
        }
    }

    /// The phases in order (the implicit ones for a lifecycle without phases).
    pub fn phases(&self) -> &[PhaseProgression] {
        &self.phases
    }

    /// Every environment of the space, in the order given, with its decision.
    pub fn environment_decisions(&self) -> &[EnvironmentDecision] {
        &self.environment_decisions
    }

    /// Whether the release may be deployed to `environment_id` now, and why not.
    pub fn can_deploy_to(&self, environment_id: &str) -> Result<(), DeploymentRefusal> {
        self.environment_decisions
            .iter()
            .find(|decision| decision.environment.id.eq_ignore_ascii_case(environment_id))
            .map_or_else(
                || {
                    Err(DeploymentRefusal::UnknownEnvironment {
                        environment_id: environment_id.to_owned(),
                    })
                },
                |decision| decision.decision.clone(),
            )
    }

    /// The environments the release may be deployed to now, in the space's order.
    pub fn deployable_environment_ids(&self) -> Vec<&str> {
        self.environment_decisions
            .iter()
            .filter(|decision| decision.decision.is_ok())
            .map(|decision| decision.environment.id.as_str())
            .collect()
    }

    /// Automatic environments of open, unblocked, required phases that have no deployment of
    /// the release yet (in any state): the deployments to queue automatically.
    pub fn automatic_environments_to_deploy(&self) -> &[String] {
        &self.automatic_environments_to_deploy
    }
}

fn contains_id(ids: &[&str], id: &str) -> bool {
    ids.iter()
        .any(|candidate| candidate.eq_ignore_ascii_case(id))
}

/// A phase's name, rule and environments, restricted to the space's environments.
pub(crate) struct PhaseTargets {
    pub(crate) name: String,
    pub(crate) automatic_environment_ids: Vec<String>,
    pub(crate) optional_environment_ids: Vec<String>,
    is_optional: bool,
    minimum_environments_before_promotion: usize,
}

/// The lifecycle's phases with their environments resolved: implicit phases for a lifecycle
/// without phases, "all remaining environments" for a phase without environments.
pub(crate) fn phase_targets(
    lifecycle: &Lifecycle,
    environments: &[EnvironmentRef],
) -> Vec<PhaseTargets> {
    if lifecycle.phases.is_empty() {
        return environments
            .iter()
            .map(|environment| PhaseTargets {
                name: environment.name.clone(),
                automatic_environment_ids: Vec::new(),
                optional_environment_ids: vec![environment.id.clone()],
                is_optional: false,
                minimum_environments_before_promotion: 0,
            })
            .collect();
    }

    let named_in_some_phase = |environment_id: &str| {
        lifecycle.phases.iter().any(|phase| {
            phase
                .environment_ids()
                .any(|id| id.eq_ignore_ascii_case(environment_id))
        })
    };
    // The space's environments in sort order that `ids` names.
    let known = |ids: &[String]| -> Vec<String> {
        environments
            .iter()
            .filter(|environment| {
                ids.iter()
                    .any(|id| id.eq_ignore_ascii_case(&environment.id))
            })
            .map(|environment| environment.id.clone())
            .collect()
    };

    let mut remaining_environments_taken = false;
    lifecycle
        .phases
        .iter()
        .map(|phase| {
            let takes_remaining = phase.automatic_deployment_targets.is_empty()
                && phase.optional_deployment_targets.is_empty()
                && !remaining_environments_taken;
            let optional_environment_ids = if takes_remaining {
                remaining_environments_taken = true;
                environments
                    .iter()
                    .filter(|environment| !named_in_some_phase(&environment.id))
                    .map(|environment| environment.id.clone())
                    .collect()
            } else {
                known(&phase.optional_deployment_targets)
            };
            PhaseTargets {
                name: phase.name.clone(),
                automatic_environment_ids: known(&phase.automatic_deployment_targets),
                optional_environment_ids,
                is_optional: phase.is_optional_phase,
                minimum_environments_before_promotion: usize::try_from(
                    phase.minimum_environments_before_promotion,
                )
                .unwrap_or(0),
            }
        })
        .collect()
}

fn decide(
    lifecycle: &Lifecycle,
    environments: &[EnvironmentRef],
    phases: &[PhaseProgression],
    environment: &EnvironmentRef,
    phase_index: Option<usize>,
    blocking_phase_index: Option<usize>,
    defect_reason: Option<&str>,
) -> Result<(), DeploymentRefusal> {
    let Some(phase) = phase_index.and_then(|index| phases.get(index)) else {
        return Err(DeploymentRefusal::NotInLifecycle {
            environment_name: environment.name.clone(),
            lifecycle_name: lifecycle.name.clone(),
        });
    };
    if phase.progress == PhaseProgress::Pending {
        // A pending phase comes after the blocking one, so there is one.
        let blocking_phase = blocking_phase_index
            .and_then(|index| phases.get(index))
            .unwrap_or(phase);
        return Err(DeploymentRefusal::PhaseNotReached {
            environment_name: environment.name.clone(),
            phase_name: phase.name.clone(),
            blocking_phase_name: blocking_phase.name.clone(),
            requirement: requirement(blocking_phase),
            done: done(blocking_phase, environments),
        });
    }
    if phase.blocked {
        return Err(DeploymentRefusal::BlockedByDefect {
            environment_name: environment.name.clone(),
            phase_name: phase.name.clone(),
            defect_reason: defect_reason.unwrap_or_default().to_owned(),
        });
    }
    Ok(())
}

/// What a phase needs to be complete, in words.
fn requirement(phase: &PhaseProgression) -> String {
    let n_required = phase.n_environments_required();
    if phase.minimum_environments_before_promotion == 0 || n_required == phase.environment_ids.len()
    {
        "a successful deployment to every environment".to_owned()
    } else if n_required == 1 {
        "a successful deployment to at least 1 environment".to_owned()
    } else {
        format!("successful deployments to at least {n_required} environments")
    }
}

/// The names of a phase's successfully deployed environments, or "none".
fn done(phase: &PhaseProgression, environments: &[EnvironmentRef]) -> String {
    if phase.successful_environment_ids.is_empty() {
        return "none".to_owned();
    }
    phase
        .successful_environment_ids
        .iter()
        .map(|environment_id| {
            environments
                .iter()
                .find(|environment| environment.id.eq_ignore_ascii_case(environment_id))
                .map_or(environment_id.as_str(), |environment| {
                    environment.name.as_str()
                })
        })
        .collect::<Vec<&str>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use cuttle_domain::Phase;

    use super::*;
    use DeploymentState::{Executing, Failed, Queued, Success};

    fn environments() -> Vec<EnvironmentRef> {
        vec![
            EnvironmentRef::new("Environments-1", "Dev"),
            EnvironmentRef::new("Environments-2", "Test A"),
            EnvironmentRef::new("Environments-3", "Test B"),
            EnvironmentRef::new("Environments-4", "Production"),
            EnvironmentRef::new("Environments-5", "Sandbox"),
        ]
    }

    const DEV: &str = "Environments-1";
    const TEST_A: &str = "Environments-2";
    const TEST_B: &str = "Environments-3";
    const PRODUCTION: &str = "Environments-4";
    const SANDBOX: &str = "Environments-5";

    fn phase(name: &str, automatic: &[&str], optional: &[&str]) -> Phase {
        Phase {
            name: name.to_owned(),
            automatic_deployment_targets: automatic.iter().map(|id| (*id).to_owned()).collect(),
            optional_deployment_targets: optional.iter().map(|id| (*id).to_owned()).collect(),
            ..Phase::default()
        }
    }

    fn lifecycle(phases: Vec<Phase>) -> Lifecycle {
        Lifecycle {
            name: "Standard".to_owned(),
            phases,
            ..Lifecycle::default()
        }
    }

    /// Dev (automatic) → Test (Test A automatic, Test B manual, all required) → Production
    /// (manual); Sandbox is in no phase.
    fn dev_test_production() -> Lifecycle {
        lifecycle(vec![
            phase("Dev", &[DEV], &[]),
            phase("Test", &[TEST_A], &[TEST_B]),
            phase("Production", &[], &[PRODUCTION]),
        ])
    }

    fn facts(deployments: &[(&str, DeploymentState)]) -> Vec<DeploymentFact> {
        deployments
            .iter()
            .map(|(environment_id, state)| DeploymentFact::new(*environment_id, *state))
            .collect()
    }

    fn refusal(progression: &Progression, environment_id: &str) -> String {
        progression
            .can_deploy_to(environment_id)
            .expect_err("expected a refusal")
            .to_string()
    }

    fn progress(progression: &Progression) -> Vec<(&str, PhaseProgress, bool)> {
        progression
            .phases()
            .iter()
            .map(|phase| (phase.name.as_str(), phase.progress, phase.blocked))
            .collect()
    }

    #[test]
    fn default_lifecycle_has_one_manual_phase_per_environment_in_order() {
        let progression = Progression::evaluate(&lifecycle(Vec::new()), &environments(), &[], None);
        let names: Vec<&str> = progression
            .phases()
            .iter()
            .map(|phase| phase.name.as_str())
            .collect();
        assert_eq!(names, ["Dev", "Test A", "Test B", "Production", "Sandbox"]);
        assert!(
            progression
                .phases()
                .iter()
                .all(|phase| phase.automatic_environment_ids.is_empty())
        );
        assert_eq!(progression.deployable_environment_ids(), [DEV]);
        assert_eq!(
            refusal(&progression, TEST_A),
            "Test A is in phase 'Test A', which the release cannot reach until phase 'Dev' is complete: Dev needs a successful deployment to every environment (done: none)"
        );
        assert!(progression.automatic_environments_to_deploy().is_empty());
    }

    #[test]
    fn default_lifecycle_opens_the_next_environment_after_a_success() {
        let progression = Progression::evaluate(
            &lifecycle(Vec::new()),
            &environments(),
            &facts(&[(DEV, Success)]),
            None,
        );
        assert_eq!(progression.deployable_environment_ids(), [DEV, TEST_A]);
        assert_eq!(
            progress(&progression)[..3],
            [
                ("Dev", PhaseProgress::Complete, false),
                ("Test A", PhaseProgress::Current, false),
                ("Test B", PhaseProgress::Pending, false),
            ]
        );
    }

    #[test]
    fn all_required_phase_needs_every_environment() {
        let progression = Progression::evaluate(
            &dev_test_production(),
            &environments(),
            &facts(&[(DEV, Success), (TEST_A, Success)]),
            None,
        );
        assert_eq!(
            progression.deployable_environment_ids(),
            [DEV, TEST_A, TEST_B]
        );
        assert_eq!(
            refusal(&progression, PRODUCTION),
            "Production is in phase 'Production', which the release cannot reach until phase 'Test' is complete: Test needs a successful deployment to every environment (done: Test A)"
        );

        let progression = Progression::evaluate(
            &dev_test_production(),
            &environments(),
            &facts(&[(DEV, Success), (TEST_A, Success), (TEST_B, Success)]),
            None,
        );
        assert!(progression.can_deploy_to(PRODUCTION).is_ok());
        assert_eq!(
            progress(&progression),
            [
                ("Dev", PhaseProgress::Complete, false),
                ("Test", PhaseProgress::Complete, false),
                ("Production", PhaseProgress::Current, false),
            ]
        );
    }

    #[test]
    fn the_refusal_names_the_first_incomplete_phase_even_two_phases_back() {
        let progression = Progression::evaluate(&dev_test_production(), &environments(), &[], None);
        assert_eq!(
            refusal(&progression, PRODUCTION),
            "Production is in phase 'Production', which the release cannot reach until phase 'Dev' is complete: Dev needs a successful deployment to every environment (done: none)"
        );
        assert_eq!(
            progression.can_deploy_to(PRODUCTION),
            Err(DeploymentRefusal::PhaseNotReached {
                environment_name: "Production".to_owned(),
                phase_name: "Production".to_owned(),
                blocking_phase_name: "Dev".to_owned(),
                requirement: "a successful deployment to every environment".to_owned(),
                done: "none".to_owned(),
            })
        );
    }

    #[test]
    fn minimum_environments_before_promotion() {
        let mut lifecycle = dev_test_production();
        lifecycle.phases[1].minimum_environments_before_promotion = 1;
        let before =
            Progression::evaluate(&lifecycle, &environments(), &facts(&[(DEV, Success)]), None);
        assert_eq!(
            refusal(&before, PRODUCTION),
            "Production is in phase 'Production', which the release cannot reach until phase 'Test' is complete: Test needs a successful deployment to at least 1 environment (done: none)"
        );
        let after = Progression::evaluate(
            &lifecycle,
            &environments(),
            &facts(&[(DEV, Success), (TEST_B, Success)]),
            None,
        );
        assert!(after.can_deploy_to(PRODUCTION).is_ok());
        assert_eq!(after.phases()[1].progress, PhaseProgress::Complete);
        // Test A is automatic and was never deployed: it is still queued automatically.
        assert_eq!(after.automatic_environments_to_deploy(), [TEST_A]);
    }

    #[test]
    fn minimum_of_two_counts_distinct_environments() {
        let mut lifecycle = lifecycle(vec![
            phase("Test", &[], &[DEV, TEST_A, TEST_B]),
            phase("Production", &[], &[PRODUCTION]),
        ]);
        lifecycle.phases[0].minimum_environments_before_promotion = 2;
        let progression = Progression::evaluate(
            &lifecycle,
            &environments(),
            &facts(&[(DEV, Success), (DEV, Success), (TEST_A, Failed)]),
            None,
        );
        assert_eq!(
            refusal(&progression, PRODUCTION),
            "Production is in phase 'Production', which the release cannot reach until phase 'Test' is complete: Test needs successful deployments to at least 2 environments (done: Dev)"
        );
    }

    #[test]
    fn a_minimum_above_the_remaining_environments_means_all_of_them() {
        let mut lifecycle = lifecycle(vec![
            // Environments-99 was deleted from the space.
            phase("Test", &[], &[TEST_A, "Environments-99"]),
            phase("Production", &[], &[PRODUCTION]),
        ]);
        lifecycle.phases[0].minimum_environments_before_promotion = 2;
        let progression = Progression::evaluate(
            &lifecycle,
            &environments(),
            &facts(&[(TEST_A, Success)]),
            None,
        );
        assert_eq!(progression.phases()[0].environment_ids, [TEST_A]);
        assert!(progression.can_deploy_to(PRODUCTION).is_ok());
    }

    #[test]
    fn optional_phase_does_not_hold_back_the_next_and_is_not_auto_deployed() {
        let mut lifecycle = lifecycle(vec![
            phase("Dev", &[DEV], &[]),
            phase("Sandbox", &[SANDBOX], &[]),
            phase("Production", &[PRODUCTION], &[]),
        ]);
        lifecycle.phases[1].is_optional_phase = true;
        let progression =
            Progression::evaluate(&lifecycle, &environments(), &facts(&[(DEV, Success)]), None);
        assert!(progression.can_deploy_to(SANDBOX).is_ok());
        assert!(progression.can_deploy_to(PRODUCTION).is_ok());
        assert_eq!(
            progress(&progression),
            [
                ("Dev", PhaseProgress::Complete, false),
                ("Sandbox", PhaseProgress::Current, false),
                ("Production", PhaseProgress::Current, false),
            ]
        );
        assert_eq!(progression.automatic_environments_to_deploy(), [PRODUCTION]);
        assert!(progression.phases()[1].is_optional);
    }

    #[test]
    fn phase_without_environments_takes_every_environment_named_nowhere_else() {
        let lifecycle = lifecycle(vec![
            phase("Dev", &[DEV], &[]),
            phase("Everything else", &[], &[]),
            phase("Production", &[], &[PRODUCTION]),
        ]);
        let progression =
            Progression::evaluate(&lifecycle, &environments(), &facts(&[(DEV, Success)]), None);
        assert_eq!(
            progression.phases()[1].environment_ids,
            [TEST_A, TEST_B, SANDBOX]
        );
        assert_eq!(
            progression.phases()[1].optional_environment_ids,
            [TEST_A, TEST_B, SANDBOX]
        );
        assert_eq!(
            progression.deployable_environment_ids(),
            [DEV, TEST_A, TEST_B, SANDBOX]
        );
        assert_eq!(
            refusal(&progression, PRODUCTION),
            "Production is in phase 'Production', which the release cannot reach until phase 'Everything else' is complete: Everything else needs a successful deployment to every environment (done: none)"
        );
    }

    #[test]
    fn a_new_environment_joins_the_phase_without_environments() {
        let lifecycle = lifecycle(vec![phase("Dev", &[DEV], &[]), phase("Rest", &[], &[])]);
        let mut environments = environments();
        environments.push(EnvironmentRef::new("Environments-6", "QA"));
        let progression = Progression::evaluate(&lifecycle, &environments, &[], None);
        assert!(
            progression.phases()[1]
                .environment_ids
                .contains(&"Environments-6".to_owned())
        );
    }

    #[test]
    fn only_the_first_phase_without_environments_takes_the_rest() {
        let lifecycle = lifecycle(vec![
            phase("Dev", &[DEV], &[]),
            phase("Rest", &[], &[]),
            phase("Also rest", &[], &[]),
        ]);
        let progression = Progression::evaluate(&lifecycle, &environments(), &[], None);
        assert_eq!(progression.phases()[1].environment_ids.len(), 4);
        assert!(progression.phases()[2].environment_ids.is_empty());
    }

    #[test]
    fn defect_blocks_phases_without_a_success_but_not_deployed_ones() {
        let progression = Progression::evaluate(
            &dev_test_production(),
            &environments(),
            &facts(&[(DEV, Success), (TEST_A, Success), (TEST_B, Success)]),
            Some("the login page is broken"),
        );
        assert_eq!(
            progression.deployable_environment_ids(),
            [DEV, TEST_A, TEST_B]
        );
        assert_eq!(
            refusal(&progression, PRODUCTION),
            "Production is in phase 'Production', which the release may not progress to because it has a defect: the login page is broken"
        );
        assert_eq!(
            progress(&progression),
            [
                ("Dev", PhaseProgress::Complete, false),
                ("Test", PhaseProgress::Complete, false),
                ("Production", PhaseProgress::Current, true),
            ]
        );
    }

    #[test]
    fn defect_keeps_a_partly_deployed_phase_open() {
        let progression = Progression::evaluate(
            &dev_test_production(),
            &environments(),
            &facts(&[(DEV, Success), (TEST_A, Success)]),
            Some("bad build"),
        );
        // Test has one success, so all of it stays deployable, Test B included.
        assert!(progression.can_deploy_to(TEST_B).is_ok());
        assert!(!progression.phases()[1].blocked);
        assert!(progression.phases()[2].blocked);
    }

    #[test]
    fn defect_never_blocks_the_first_phase() {
        let progression = Progression::evaluate(
            &dev_test_production(),
            &environments(),
            &facts(&[(DEV, Failed)]),
            Some("bad build"),
        );
        assert!(progression.can_deploy_to(DEV).is_ok());
        assert!(!progression.phases()[0].blocked);
        assert_eq!(
            progress(&progression),
            [
                ("Dev", PhaseProgress::Current, false),
                ("Test", PhaseProgress::Pending, true),
                ("Production", PhaseProgress::Pending, true),
            ]
        );
    }

    #[test]
    fn defect_refuses_a_reached_phase_and_stops_automatic_deployments() {
        let progression = Progression::evaluate(
            &dev_test_production(),
            &environments(),
            &facts(&[(DEV, Success)]),
            Some("bad build"),
        );
        assert_eq!(
            refusal(&progression, TEST_B),
            "Test B is in phase 'Test', which the release may not progress to because it has a defect: bad build"
        );
        assert!(progression.automatic_environments_to_deploy().is_empty());
    }

    #[test]
    fn earlier_phases_stay_deployable_for_redeploys_and_rollbacks() {
        let progression = Progression::evaluate(
            &dev_test_production(),
            &environments(),
            &facts(&[
                (DEV, Success),
                (TEST_A, Success),
                (TEST_B, Success),
                (PRODUCTION, Success),
            ]),
            None,
        );
        assert_eq!(
            progression.deployable_environment_ids(),
            [DEV, TEST_A, TEST_B, PRODUCTION]
        );
        assert!(
            progression
                .phases()
                .iter()
                .all(|phase| phase.progress == PhaseProgress::Complete)
        );
    }

    #[test]
    fn environment_outside_the_lifecycle_is_refused() {
        let progression = Progression::evaluate(&dev_test_production(), &environments(), &[], None);
        assert_eq!(
            refusal(&progression, SANDBOX),
            "environment 'Sandbox' is not part of the lifecycle 'Standard'"
        );
        assert_eq!(progression.environment_decisions()[4].phase_index, None);
        assert_eq!(
            refusal(&progression, "Environments-42"),
            "environment 'Environments-42' is not one of the space's environments"
        );
    }

    #[test]
    fn deployments_in_progress_or_failed_do_not_count() {
        for state in [
            Queued,
            Executing,
            DeploymentState::Cancelling,
            Failed,
            DeploymentState::Canceled,
            DeploymentState::TimedOut,
        ] {
            let progression = Progression::evaluate(
                &dev_test_production(),
                &environments(),
                &facts(&[(DEV, state)]),
                None,
            );
            assert!(
                progression.can_deploy_to(TEST_A).is_err(),
                "{state} should not open Test"
            );
            assert!(
                progression.phases()[0]
                    .successful_environment_ids
                    .is_empty(),
                "{state}"
            );
        }
    }

    #[test]
    fn automatic_deployments_follow_the_release_through_the_phases() {
        let lifecycle = dev_test_production();
        let new_release = Progression::evaluate(&lifecycle, &environments(), &[], None);
        assert_eq!(new_release.automatic_environments_to_deploy(), [DEV]);

        let dev_running = Progression::evaluate(
            &lifecycle,
            &environments(),
            &facts(&[(DEV, Executing)]),
            None,
        );
        assert!(dev_running.automatic_environments_to_deploy().is_empty());

        let dev_done =
            Progression::evaluate(&lifecycle, &environments(), &facts(&[(DEV, Success)]), None);
        // Test B is manual; Production's phase is not open.
        assert_eq!(dev_done.automatic_environments_to_deploy(), [TEST_A]);

        let test_a_failed = Progression::evaluate(
            &lifecycle,
            &environments(),
            &facts(&[(DEV, Success), (TEST_A, Failed)]),
            None,
        );
        assert!(test_a_failed.automatic_environments_to_deploy().is_empty());
    }

    #[test]
    fn environment_ids_match_without_regard_to_case() {
        let progression = Progression::evaluate(
            &dev_test_production(),
            &environments(),
            &facts(&[("environments-1", Success)]),
            None,
        );
        assert!(progression.can_deploy_to("ENVIRONMENTS-2").is_ok());
    }

    #[test]
    fn deployment_states_parse_octopus_spellings() {
        for state in DeploymentState::ALL {
            assert_eq!(state.as_str().parse::<DeploymentState>(), Ok(state));
        }
        assert_eq!(
            "timedout".parse::<DeploymentState>(),
            Ok(DeploymentState::TimedOut)
        );
        assert_eq!(
            "Done"
                .parse::<DeploymentState>()
                .expect_err("unknown")
                .to_string(),
            "'Done' is not a deployment state; expected Queued, Executing, Cancelling, Success, Failed, Canceled or TimedOut"
        );
    }
}
