//! Scheduled health checks: each target is checked as often as its machine policy says.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use cuttle_domain::{DeploymentTarget, MachinePolicy, ResourceKind};
use cuttle_store::{DocumentQuery, Store, StoreError, TaskQuery, TaskRecord, TaskState};
use serde_json::json;

use crate::HEALTH_TASK;

/// Queues one health check per space for the targets whose last check is older than their
/// policy's interval (or that were never checked), skipping targets a queued or running
/// health check already covers. Returns the ids of the tasks it queued.
pub async fn queue_due_health_checks(
    store: &dyn Store,
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let everything = DocumentQuery::default();
    let intervals: HashMap<String, u64> = store
        .list_resources::<MachinePolicy>(&everything)
        .await?
        .items
        .into_iter()
        .map(|policy| (policy.id.clone(), policy.interval_seconds()))
        .collect();
    let (_, pending) = store
        .list_tasks(&TaskQuery {
            name: Some(HEALTH_TASK.to_owned()),
            states: Some(vec![
                TaskState::Queued,
                TaskState::Executing,
                TaskState::Cancelling,
            ]),
            ..TaskQuery::default()
        })
        .await?;
    let mut covered: HashSet<String> = HashSet::new();
    let mut covered_spaces: HashSet<String> = HashSet::new();
    for task in &pending {
        match task.arguments["MachineIds"].as_array() {
            Some(ids) => covered.extend(ids.iter().filter_map(|id| id.as_str().map(str::to_owned))),
            None => covered_spaces.extend(task.space_id.clone()),
        }
    }
    let mut due_by_space: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for target in store
        .list_resources::<DeploymentTarget>(&everything)
        .await?
        .items
    {
        if target.is_disabled
            || covered.contains(&target.id)
            || covered_spaces.contains(&target.space_id)
        {
            continue;
        }
        let Some(interval) = target
            .machine_policy_id
            .as_ref()
            .and_then(|policy_id| intervals.get(policy_id))
        else {
            continue;
        };
        let last_check = target
            .last_health_check
            .as_deref()
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|time| time.with_timezone(&Utc));
        let is_due = last_check.is_none_or(|last| {
            (now - last).num_seconds() >= i64::try_from(*interval).unwrap_or(i64::MAX)
        });
        if is_due {
            due_by_space
                .entry(target.space_id.clone())
                .or_default()
                .push(target.id);
        }
    }
    let mut queued = Vec::new();
    for (space_id, machine_ids) in due_by_space {
        let id = store.allocate_id(ResourceKind::Task).await?;
        let task = TaskRecord::queued(
            id.clone(),
            Some(space_id),
            HEALTH_TASK,
            "Scheduled health check".to_owned(),
            json!({ "MachineIds": machine_ids }),
            now,
        );
        store.insert_task(&task).await?;
        queued.push(id);
    }
    Ok(queued)
}
