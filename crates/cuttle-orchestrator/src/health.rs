//! The health check task (`Health`): asks each target's transport whether the target answers
//! and can run work, and records the outcome on the target.
//!
//! Arguments, as Octopus takes them: `MachineIds` (these targets), or `EnvironmentId` (the
//! targets in it), or neither (every target of the space). Unavailable targets (unreachable)
//! do not fail the task; unhealthy ones (reachable but unusable) do, naming them.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{SecondsFormat, Utc};
use cuttle_domain::{DeploymentTarget, HealthStatus, MachinePolicy};
use cuttle_exec::{ScriptRequest, ScriptSyntax};
use cuttle_store::{Change, DocumentQuery, StoreError, document_from_resource};
use futures::StreamExt as _;

use crate::context::{LogCategory, TaskContext};
use crate::runner::{TaskHandler, TaskOutcome};
use crate::scripts::run_script;
use crate::transport::{HealthReport, TargetAddress, TransportError, Transports};

/// How many targets are checked at once.
const PARALLEL_CHECKS: usize = 16;

pub struct HealthCheckHandler {
    transports: Transports,
}

impl HealthCheckHandler {
    pub fn new(transports: Transports) -> Arc<HealthCheckHandler> {
        Arc::new(HealthCheckHandler { transports })
    }
}

/// One target's result.
struct Checked {
    target: DeploymentTarget,
    status: HealthStatus,
    summary: String,
}

#[async_trait]
impl TaskHandler for HealthCheckHandler {
    async fn run(&self, context: &TaskContext) -> TaskOutcome {
        let targets = match targets_to_check(context).await {
            Ok(targets) => targets,
            Err(error) => {
                return TaskOutcome::Failed(format!("could not load the targets: {error}"));
            }
        };
        if targets.is_empty() {
            context.log(
                LogCategory::Info,
                "task",
                "There are no deployment targets to check",
            );
            return TaskOutcome::Success;
        }
        context.log(
            LogCategory::Info,
            "task",
            format!(
                "Checking the health of {} deployment targets",
                targets.len()
            ),
        );
        let activities: Vec<serde_json::Value> = targets
            .iter()
            .map(|target| serde_json::json!({"Id": target.id, "Name": target.name, "Status": "Running"}))
            .collect();
        if let Err(error) = context
            .save_progress(serde_json::json!({ "Activities": activities }))
            .await
        {
            return TaskOutcome::Failed(format!("could not save progress: {error}"));
        }

        let checks = futures::stream::iter(
            targets
                .into_iter()
                .map(|target| self.check(context, target)),
        )
        .buffer_unordered(PARALLEL_CHECKS);
        let results: Vec<Checked> = tokio::select! {
            results = checks.collect::<Vec<_>>() => results,
            () = context.cancellation() => return TaskOutcome::Canceled,
        };

        let mut activities = Vec::new();
        let mut unhealthy = Vec::new();
        for checked in &results {
            if let Err(error) = record_status(context, checked).await {
                context.log(
                    LogCategory::Warning,
                    &checked.target.id,
                    format!(
                        "Could not record the status of {}: {error}",
                        checked.target.name
                    ),
                );
            }
            if checked.status == HealthStatus::Unhealthy {
                unhealthy.push(checked.target.name.clone());
            }
            let activity_status = match checked.status {
                HealthStatus::Healthy => "Success",
                HealthStatus::HasWarnings | HealthStatus::Unavailable => "SuccessWithWarning",
                HealthStatus::Unhealthy | HealthStatus::Unknown => "Failed",
            };
            activities.push(serde_json::json!({
                "Id": checked.target.id, "Name": checked.target.name, "Status": activity_status
            }));
        }
        if let Err(error) = context
            .save_progress(
                serde_json::json!({ "Activities": activities, "ProgressPercentage": 100 }),
            )
            .await
        {
            return TaskOutcome::Failed(format!("could not save progress: {error}"));
        }
        if unhealthy.is_empty() {
            TaskOutcome::Success
        } else {
            TaskOutcome::Failed(format!("unhealthy: {}", unhealthy.join(", ")))
        }
    }
}

impl HealthCheckHandler {
    async fn check(&self, context: &TaskContext, target: DeploymentTarget) -> Checked {
        let activity = target.id.clone();
        if target.is_disabled {
            context.log(
                LogCategory::Info,
                &activity,
                format!("{} is disabled; skipped", target.name),
            );
            return Checked {
                summary: "Disabled".to_owned(),
                status: target.health_status,
                target,
            };
        }
        let address = TargetAddress {
            machine_id: target.id.clone(),
            name: target.name.clone(),
            space_id: target.space_id.clone(),
            endpoint: target.endpoint.clone(),
        };
        let result = match self.transports.for_endpoint(&address) {
            Ok(transport) => match transport.check_health(&address).await {
                Ok(report) => {
                    self.run_health_script(context, transport, &address, &target, report)
                        .await
                }
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        let (status, summary) = match result {
            Ok(report) if report.warnings.is_empty() => {
                context.log(
                    LogCategory::Info,
                    &activity,
                    format!("{} is healthy: {}", target.name, report.summary),
                );
                (HealthStatus::Healthy, report.summary)
            }
            Ok(report) => {
                for warning in &report.warnings {
                    context.log(LogCategory::Warning, &activity, warning.clone());
                }
                (HealthStatus::HasWarnings, report.warnings.join("; "))
            }
            Err(error @ TransportError::Unreachable { .. }) => {
                context.log(LogCategory::Warning, &activity, format!("{error}"));
                (HealthStatus::Unavailable, error.to_string())
            }
            Err(error @ TransportError::Unusable { .. }) => {
                context.log(LogCategory::Error, &activity, format!("{error}"));
                (HealthStatus::Unhealthy, error.to_string())
            }
        };
        Checked {
            target,
            status,
            summary,
        }
    }
}

impl HealthCheckHandler {
    /// Runs the target's machine-policy health script, when it has one, after the connection
    /// check: a failing script makes the target unhealthy, warnings make it "has warnings".
    async fn run_health_script(
        &self,
        context: &TaskContext,
        transport: &dyn crate::transport::Transport,
        address: &TargetAddress,
        target: &DeploymentTarget,
        mut report: HealthReport,
    ) -> Result<HealthReport, TransportError> {
        let Some(policy_id) = target.machine_policy_id.as_deref() else {
            return Ok(report);
        };
        let policy = match context
            .store()
            .get_resource::<MachinePolicy>(policy_id)
            .await
        {
            Ok(Some(policy)) => policy,
            _ => return Ok(report),
        };
        let Some(body) = policy.bash_script() else {
            return Ok(report);
        };
        let ticket = format!("{}-health-{}", context.task().id, target.id);
        let request = ScriptRequest::new(ticket, ScriptSyntax::Bash, body);
        let outcome = run_script(context, transport, address, &request, &target.id).await?;
        if !outcome.succeeded() {
            return Err(TransportError::Unusable {
                target: target.name.clone(),
                message: match outcome.failure_message {
                    Some(message) => format!("the health script failed: {message}"),
                    None => format!(
                        "the health script failed with exit code {}",
                        outcome.state.exit_code().unwrap_or(-1)
                    ),
                },
            });
        }
        if outcome.warnings > 0 {
            report.warnings.push(format!(
                "the health script wrote {} warnings",
                outcome.warnings
            ));
        }
        Ok(report)
    }
}

async fn targets_to_check(context: &TaskContext) -> Result<Vec<DeploymentTarget>, StoreError> {
    let task = context.task();
    let arguments = &task.arguments;
    let space_id = task.space_id.clone();
    let mut query = DocumentQuery {
        space_id,
        ..DocumentQuery::default()
    };
    if let Some(machine_ids) = arguments["MachineIds"].as_array() {
        query.ids = Some(
            machine_ids
                .iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect(),
        );
    } else if let Some(environment_id) = arguments["EnvironmentId"].as_str() {
        query.referencing = Some(environment_id.to_owned());
    }
    Ok(context
        .store()
        .list_resources::<DeploymentTarget>(&query)
        .await?
        .items)
}

/// Writes the status onto the target, without overwriting a change made meanwhile.
async fn record_status(context: &TaskContext, checked: &Checked) -> Result<(), StoreError> {
    for _ in 0..5 {
        let Some(document) = context
            .store()
            .get_document(
                <DeploymentTarget as cuttle_domain::Resource>::KIND,
                &checked.target.id,
            )
            .await?
        else {
            return Ok(()); // Deleted meanwhile: nothing to record.
        };
        let mut target: DeploymentTarget = cuttle_store::resource_from_document(&document)?;
        target.health_status = checked.status;
        target.status_summary = Some(checked.summary.clone());
        target.last_health_check = Some(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true));
        let change = Change::UpdateIfVersion {
            document: document_from_resource(&target)?,
            expected_version: document.version,
        };
        match context.store().write(&[change]).await {
            Err(StoreError::VersionConflict { .. }) => continue,
            other => return other,
        }
    }
    Ok(())
}
