//! Release retention: which of a project's releases a lifecycle's `ReleaseRetentionPolicy`
//! lets the server delete.
//!
//! The rules follow Octopus's lifecycle retention:
//!
//! - Each phase has a policy: its own, else the latest earlier phase's custom one, else the
//!   lifecycle's. A policy keeps forever, keeps the newest N releases that reached the phase
//!   (`Items`), or keeps the releases deployed to the phase within the last N days (`Days`).
//! - A release is deleted only when it falls outside the policy of **every** phase it reached.
//!   Releases never deployed anywhere are counted on their own, under the first phase's policy.
//! - Some releases are always kept, whatever the counts say: any release with a deployment
//!   that has not finished, and for each environment and tenant the release of the newest
//!   deployment (what the dashboard shows) and of the two newest successful ones (the current
//!   release and the one to roll back to).
//!
//! Deleting is irreversible, so every doubt keeps: a deployment in an environment no phase
//! names keeps its release, and a policy the planner cannot read keeps everything.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use cuttle_domain::{Lifecycle, RetentionPolicy, RetentionUnit};

use crate::progression::{DeploymentState, EnvironmentRef, phase_targets};

/// A release of the project, as retention needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetainedRelease {
    pub release_id: String,
    pub version: String,
    pub created: DateTime<Utc>,
}

/// One deployment of one of the releases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetainedDeployment {
    pub release_id: String,
    pub environment_id: String,
    pub tenant_id: Option<String>,
    pub created: DateTime<Utc>,
    pub state: DeploymentState,
}

/// A release the policy lets go, with the reason to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseToDelete {
    pub release_id: String,
    pub version: String,
    pub reason: String,
}

/// The releases of one lifecycle's releases (a project's, or one channel's when its channel
/// has its own lifecycle) that `lifecycle`'s release retention deletes at `now`.
pub fn releases_to_delete(
    lifecycle: &Lifecycle,
    environments: &[EnvironmentRef],
    releases: &[RetainedRelease],
    deployments: &[RetainedDeployment],
    now: DateTime<Utc>,
) -> Vec<ReleaseToDelete> {
    let protected = protected_release_ids(deployments);
    let phases = phase_targets(lifecycle, environments);
    let policies = phase_policies(lifecycle, phases.len());
    // Which phase each environment belongs to; an environment no phase names keeps its
    // releases (the lifecycle changed after they were deployed).
    let mut phase_of_environment: HashMap<&str, usize> = HashMap::new();
    for (index, phase) in phases.iter().enumerate() {
        for environment_id in phase
            .automatic_environment_ids
            .iter()
            .chain(&phase.optional_environment_ids)
        {
            phase_of_environment
                .entry(environment_id.as_str())
                .or_insert(index);
        }
    }

    // For each phase, the newest deployment time of every release that reached it.
    let mut reached: Vec<HashMap<&str, DateTime<Utc>>> = vec![HashMap::new(); phases.len()];
    let mut in_unknown_environment: HashSet<&str> = HashSet::new();
    let mut deployed: HashSet<&str> = HashSet::new();
    for deployment in deployments {
        let release_id = deployment.release_id.as_str();
        deployed.insert(release_id);
        match phase_of_environment.get(deployment.environment_id.as_str()) {
            Some(&index) => {
                let newest = reached[index]
                    .entry(release_id)
                    .or_insert(deployment.created);
                *newest = (*newest).max(deployment.created);
            }
            None => {
                in_unknown_environment.insert(release_id);
            }
        }
    }

    // Per phase: the releases its policy keeps.
    let kept_in_phase: Vec<HashSet<&str>> = reached
        .iter()
        .zip(&policies)
        .map(|(releases_in_phase, policy)| kept_by_policy(releases_in_phase, policy, now))
        .collect();
    let undeployed: HashMap<&str, DateTime<Utc>> = releases
        .iter()
        .filter(|release| !deployed.contains(release.release_id.as_str()))
        .map(|release| (release.release_id.as_str(), release.created))
        .collect();
    let undeployed_policy = policies
        .first()
        .cloned()
        .unwrap_or_else(|| lifecycle.release_retention_policy.clone());
    let kept_undeployed = kept_by_policy(&undeployed, &undeployed_policy, now);

    let mut doomed = Vec::new();
    for release in releases {
        let id = release.release_id.as_str();
        if protected.contains(id) || in_unknown_environment.contains(id) {
            continue;
        }
        let reason = if undeployed.contains_key(id) {
            if kept_undeployed.contains(id) {
                continue;
            }
            format!(
                "never deployed, and newer undeployed releases fill the policy ({})",
                describe(&undeployed_policy)
            )
        } else {
            let phases_reached: Vec<usize> = (0..phases.len())
                .filter(|&index| reached[index].contains_key(id))
                .collect();
            if phases_reached
                .iter()
                .any(|&index| kept_in_phase[index].contains(id))
            {
                continue;
            }
            let names: Vec<String> = phases_reached
                .iter()
                .map(|&index| format!("'{}' ({})", phases[index].name, describe(&policies[index])))
                .collect();
            format!(
                "outside the retention policy of every phase it reached: {}",
                names.join(", ")
            )
        };
        doomed.push(ReleaseToDelete {
            release_id: release.release_id.clone(),
            version: release.version.clone(),
            reason,
        });
    }
    doomed
}

/// Each phase's effective policy: its own, else the latest earlier custom one, else the
/// lifecycle's.
fn phase_policies(lifecycle: &Lifecycle, n_phases: usize) -> Vec<RetentionPolicy> {
    let mut inherited = lifecycle.release_retention_policy.clone();
    (0..n_phases)
        .map(|index| {
            // Implicit phases (a lifecycle without phases) have no policy of their own.
            if let Some(policy) = lifecycle
                .phases
                .get(index)
                .and_then(|phase| phase.release_retention_policy.clone())
            {
                inherited = policy;
            }
            inherited.clone()
        })
        .collect()
}

/// The releases of `candidates` (release id → the time that counts) that `policy` keeps.
fn kept_by_policy<'a>(
    candidates: &HashMap<&'a str, DateTime<Utc>>,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> HashSet<&'a str> {
    if keeps_forever(policy) {
        return candidates.keys().copied().collect();
    }
    let quantity = i64::from(policy.quantity_to_keep);
    match policy.unit {
        RetentionUnit::Items => {
            let mut newest_first: Vec<(&str, DateTime<Utc>)> =
                candidates.iter().map(|(id, time)| (*id, *time)).collect();
            // Ties (same second) fall back to the id so the choice does not depend on
            // hash order.
            newest_first.sort_by(|left, right| right.1.cmp(&left.1).then(right.0.cmp(left.0)));
            newest_first
                .into_iter()
                .take(usize::try_from(quantity).unwrap_or(usize::MAX))
                .map(|(id, _)| id)
                .collect()
        }
        RetentionUnit::Days => {
            let cutoff = now - Duration::days(quantity);
            candidates
                .iter()
                .filter(|(_, time)| **time >= cutoff)
                .map(|(id, _)| *id)
                .collect()
        }
    }
}

fn keeps_forever(policy: &RetentionPolicy) -> bool {
    policy.should_keep_forever || policy.quantity_to_keep <= 0
}

fn describe(policy: &RetentionPolicy) -> String {
    if keeps_forever(policy) {
        return "keep forever".to_owned();
    }
    match policy.unit {
        RetentionUnit::Items => format!("keep the newest {}", policy.quantity_to_keep),
        RetentionUnit::Days => format!("keep {} days", policy.quantity_to_keep),
    }
}

/// Releases no policy may delete: those with an unfinished deployment, and per environment and
/// tenant the newest deployment's release and the two newest successful ones.
fn protected_release_ids(deployments: &[RetainedDeployment]) -> HashSet<&str> {
    let mut protected: HashSet<&str> = HashSet::new();
    let mut by_destination: BTreeMap<(&str, Option<&str>), Vec<&RetainedDeployment>> =
        BTreeMap::new();
    for deployment in deployments {
        if !is_finished(deployment.state) {
            protected.insert(deployment.release_id.as_str());
        }
        by_destination
            .entry((
                deployment.environment_id.as_str(),
                deployment.tenant_id.as_deref(),
            ))
            .or_default()
            .push(deployment);
    }
    for deployments_here in by_destination.values_mut() {
        deployments_here.sort_by_key(|deployment| std::cmp::Reverse(deployment.created));
        if let Some(newest) = deployments_here.first() {
            protected.insert(newest.release_id.as_str());
        }
        let mut successful_releases: Vec<&str> = Vec::new();
        for deployment in deployments_here.iter() {
            if deployment.state == DeploymentState::Success
                && !successful_releases.contains(&deployment.release_id.as_str())
            {
                successful_releases.push(deployment.release_id.as_str());
                if successful_releases.len() == 2 {
                    break;
                }
            }
        }
        protected.extend(successful_releases);
    }
    protected
}

fn is_finished(state: DeploymentState) -> bool {
    matches!(
        state,
        DeploymentState::Success
            | DeploymentState::Failed
            | DeploymentState::Canceled
            | DeploymentState::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cuttle_domain::Phase;

    use super::*;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, minute, 0)
            .single()
            .expect("a valid time")
    }

    fn environments() -> Vec<EnvironmentRef> {
        vec![
            EnvironmentRef::new("Environments-1", "Development"),
            EnvironmentRef::new("Environments-2", "Test"),
            EnvironmentRef::new("Environments-3", "Production"),
        ]
    }

    fn keep(unit: RetentionUnit, quantity: i32) -> RetentionPolicy {
        RetentionPolicy {
            unit,
            quantity_to_keep: quantity,
            should_keep_forever: false,
        }
    }

    fn lifecycle(policy: RetentionPolicy, phases: Vec<Phase>) -> Lifecycle {
        Lifecycle {
            id: "Lifecycles-1".to_owned(),
            name: "Lifecycle".to_owned(),
            phases,
            release_retention_policy: policy,
            ..Lifecycle::default()
        }
    }

    fn phase(name: &str, environment_ids: &[&str], policy: Option<RetentionPolicy>) -> Phase {
        Phase {
            name: name.to_owned(),
            optional_deployment_targets: environment_ids
                .iter()
                .map(|id| (*id).to_owned())
                .collect(),
            release_retention_policy: policy,
            ..Phase::default()
        }
    }

    fn releases(n: u32) -> Vec<RetainedRelease> {
        (1..=n)
            .map(|index| RetainedRelease {
                release_id: format!("Releases-{index}"),
                version: format!("1.0.{index}"),
                created: at(index),
            })
            .collect()
    }

    fn deployment(
        release: u32,
        environment: u32,
        minute: u32,
        state: DeploymentState,
    ) -> RetainedDeployment {
        RetainedDeployment {
            release_id: format!("Releases-{release}"),
            environment_id: format!("Environments-{environment}"),
            tenant_id: None,
            created: at(minute),
            state,
        }
    }

    fn deleted(doomed: &[ReleaseToDelete]) -> Vec<&str> {
        let mut ids: Vec<&str> = doomed
            .iter()
            .map(|release| release.version.as_str())
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn keep_forever_deletes_nothing() {
        let lifecycle = lifecycle(RetentionPolicy::keep_forever(), Vec::new());
        let deployments: Vec<RetainedDeployment> = (1..=5)
            .map(|index| deployment(index, 1, 10 + index, DeploymentState::Success))
            .collect();
        let doomed = releases_to_delete(
            &lifecycle,
            &environments(),
            &releases(5),
            &deployments,
            at(59),
        );
        assert!(doomed.is_empty(), "{doomed:?}");
    }

    #[test]
    fn items_keep_the_newest_and_the_current_and_rollback_releases() {
        let lifecycle = lifecycle(keep(RetentionUnit::Items, 1), Vec::new());
        let deployments: Vec<RetainedDeployment> = (1..=5)
            .map(|index| deployment(index, 1, 10 + index, DeploymentState::Success))
            .collect();
        let doomed = releases_to_delete(
            &lifecycle,
            &environments(),
            &releases(5),
            &deployments,
            at(59),
        );
        // 1.0.5 is the newest (and current), 1.0.4 the one to roll back to.
        assert_eq!(deleted(&doomed), ["1.0.1", "1.0.2", "1.0.3"]);
        assert!(
            doomed[0]
                .reason
                .contains("'Development' (keep the newest 1)"),
            "{}",
            doomed[0].reason
        );
    }

    #[test]
    fn a_release_kept_by_any_phase_it_reached_stays() {
        // Development keeps 1, Production keeps 3: 1.0.1 and 1.0.2 reached Production.
        let lifecycle = lifecycle(
            keep(RetentionUnit::Items, 1),
            vec![
                phase("Dev", &["Environments-1"], None),
                phase(
                    "Prod",
                    &["Environments-3"],
                    Some(keep(RetentionUnit::Items, 3)),
                ),
            ],
        );
        let mut deployments: Vec<RetainedDeployment> = (1..=6)
            .map(|index| deployment(index, 1, 10 + index, DeploymentState::Success))
            .collect();
        deployments.push(deployment(1, 3, 30, DeploymentState::Success));
        deployments.push(deployment(2, 3, 31, DeploymentState::Success));
        let doomed = releases_to_delete(
            &lifecycle,
            &environments(),
            &releases(6),
            &deployments,
            at(59),
        );
        assert_eq!(deleted(&doomed), ["1.0.3", "1.0.4"]);
    }

    #[test]
    fn a_phase_inherits_the_latest_earlier_custom_policy() {
        let lifecycle = lifecycle(
            RetentionPolicy::keep_forever(),
            vec![
                phase(
                    "Dev",
                    &["Environments-1"],
                    Some(keep(RetentionUnit::Items, 1)),
                ),
                phase("Test", &["Environments-2"], None),
            ],
        );
        let deployments: Vec<RetainedDeployment> = (1..=4)
            .map(|index| deployment(index, 2, 10 + index, DeploymentState::Success))
            .collect();
        let doomed = releases_to_delete(
            &lifecycle,
            &environments(),
            &releases(4),
            &deployments,
            at(59),
        );
        assert_eq!(deleted(&doomed), ["1.0.1", "1.0.2"]);
    }

    #[test]
    fn unfinished_and_newest_failed_deployments_keep_their_releases() {
        let lifecycle = lifecycle(keep(RetentionUnit::Items, 1), Vec::new());
        let deployments = vec![
            deployment(1, 1, 11, DeploymentState::Success),
            deployment(2, 1, 12, DeploymentState::Success),
            deployment(3, 1, 13, DeploymentState::Success),
            deployment(4, 2, 14, DeploymentState::Executing),
            deployment(5, 1, 15, DeploymentState::Failed),
        ];
        let doomed = releases_to_delete(
            &lifecycle,
            &environments(),
            &releases(5),
            &deployments,
            at(59),
        );
        // 1.0.5 is the newest in Development, 1.0.3 and 1.0.2 its two newest successes,
        // 1.0.4 is still deploying.
        assert_eq!(deleted(&doomed), ["1.0.1"]);
    }

    #[test]
    fn undeployed_releases_are_counted_on_their_own() {
        let lifecycle = lifecycle(keep(RetentionUnit::Items, 2), Vec::new());
        let deployments = vec![deployment(1, 1, 11, DeploymentState::Success)];
        let doomed = releases_to_delete(
            &lifecycle,
            &environments(),
            &releases(5),
            &deployments,
            at(59),
        );
        // Undeployed 1.0.2 to 1.0.5: the newest two stay.
        assert_eq!(deleted(&doomed), ["1.0.2", "1.0.3"]);
        assert!(
            doomed[0].reason.contains("never deployed"),
            "{}",
            doomed[0].reason
        );
    }

    #[test]
    fn days_keep_what_was_deployed_recently() {
        let lifecycle = lifecycle(keep(RetentionUnit::Days, 2), Vec::new());
        let now = at(0) + Duration::days(10);
        let mut deployments = vec![
            deployment(1, 1, 0, DeploymentState::Success),
            deployment(2, 1, 1, DeploymentState::Success),
            deployment(3, 1, 2, DeploymentState::Success),
        ];
        let mut recent = deployment(4, 1, 0, DeploymentState::Success);
        recent.created = now - Duration::days(1);
        deployments.push(recent);
        let doomed =
            releases_to_delete(&lifecycle, &environments(), &releases(4), &deployments, now);
        // 1.0.4 is recent and current; 1.0.3 is Development's release to roll back to.
        assert_eq!(deleted(&doomed), ["1.0.1", "1.0.2"]);
    }

    #[test]
    fn deployments_to_environments_no_phase_names_keep_their_release() {
        let lifecycle = lifecycle(
            keep(RetentionUnit::Items, 1),
            vec![
                phase("Dev", &["Environments-1"], None),
                phase("Test", &["Environments-2"], None),
            ],
        );
        let deployments: Vec<RetainedDeployment> = (1..=4)
            .map(|index| deployment(index, 1, 10 + index, DeploymentState::Success))
            .chain([deployment(1, 9, 30, DeploymentState::Success)])
            .collect();
        let doomed = releases_to_delete(
            &lifecycle,
            &environments(),
            &releases(4),
            &deployments,
            at(59),
        );
        assert_eq!(deleted(&doomed), ["1.0.2"]);
    }

    #[test]
    fn tenants_each_keep_their_current_and_rollback_releases() {
        let lifecycle = lifecycle(keep(RetentionUnit::Items, 1), Vec::new());
        let mut deployments: Vec<RetainedDeployment> = (1..=5)
            .map(|index| deployment(index, 1, 10 + index, DeploymentState::Success))
            .collect();
        for (release, minute) in [(1, 40), (2, 41)] {
            let mut tenanted = deployment(release, 1, minute, DeploymentState::Success);
            tenanted.tenant_id = Some("Tenants-1".to_owned());
            deployments.push(tenanted);
        }
        let doomed = releases_to_delete(
            &lifecycle,
            &environments(),
            &releases(5),
            &deployments,
            at(59),
        );
        assert_eq!(deleted(&doomed), ["1.0.3"]);
    }
}
