//! The ad-hoc script task (`AdHocScript`, Octopus's script console): runs one script on the
//! chosen targets, or on the built-in worker when none are chosen.
//!
//! Arguments, as Octopus takes them: `ScriptBody`, `Syntax` (`Bash` by default, `Sh`,
//! `Python`, `PowerShell`), and the targets as `MachineIds`, `EnvironmentIds` and/or
//! `TargetRoles` (a target must match every list given).

use std::sync::Arc;

use async_trait::async_trait;
use cuttle_domain::DeploymentTarget;
use cuttle_exec::{ScriptRequest, ScriptSyntax, ScriptVariable};
use cuttle_store::DocumentQuery;
use futures::StreamExt as _;
use serde_json::json;

use crate::builtin::BUILT_IN_WORKER_NAME;
use crate::context::{LogCategory, TaskContext};
use crate::runner::{TaskHandler, TaskOutcome};
use crate::scripts::run_script;
use crate::transport::{TargetAddress, Transports};

/// The task name of an ad-hoc script, as Octopus names it.
pub const AD_HOC_SCRIPT_TASK: &str = "AdHocScript";

/// How many targets one script runs on at once. High enough that a fan-out to a fleet is one
/// wave; each target costs the server only a few polls.
const PARALLEL_TARGETS: usize = 256;

pub struct AdHocScriptHandler {
    transports: Transports,
}

impl AdHocScriptHandler {
    pub fn new(transports: Transports) -> Arc<AdHocScriptHandler> {
        Arc::new(AdHocScriptHandler { transports })
    }
}

/// The strings of a list argument.
fn string_list(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the arguments name any target at all.
pub fn names_targets(arguments: &serde_json::Value) -> bool {
    ["MachineIds", "EnvironmentIds", "TargetRoles"]
        .iter()
        .any(|key| !string_list(&arguments[*key]).is_empty())
}

async fn chosen_targets(
    context: &TaskContext,
) -> Result<Vec<DeploymentTarget>, cuttle_store::StoreError> {
    let task = context.task();
    let arguments = &task.arguments;
    let machine_ids = string_list(&arguments["MachineIds"]);
    let environment_ids = string_list(&arguments["EnvironmentIds"]);
    let roles = string_list(&arguments["TargetRoles"]);
    let query = DocumentQuery {
        space_id: task.space_id.clone(),
        ids: (!machine_ids.is_empty()).then_some(machine_ids),
        ..DocumentQuery::default()
    };
    let targets = context
        .store()
        .list_resources::<DeploymentTarget>(&query)
        .await?
        .items;
    Ok(targets
        .into_iter()
        .filter(|target| !target.is_disabled)
        .filter(|target| {
            environment_ids.is_empty()
                || target
                    .environment_ids
                    .iter()
                    .any(|id| environment_ids.contains(id))
        })
        .filter(|target| {
            roles.is_empty()
                || target
                    .roles
                    .iter()
                    .any(|role| roles.iter().any(|wanted| wanted.eq_ignore_ascii_case(role)))
        })
        .collect())
}

#[async_trait]
impl TaskHandler for AdHocScriptHandler {
    async fn run(&self, context: &TaskContext) -> TaskOutcome {
        let task = context.task();
        let arguments = task.arguments.clone();
        let body = arguments["ScriptBody"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let syntax: ScriptSyntax = serde_json::from_value(
            arguments
                .get("Syntax")
                .cloned()
                .unwrap_or_else(|| json!("Bash")),
        )
        .unwrap_or(ScriptSyntax::Bash);

        let targets: Vec<Option<DeploymentTarget>> = if names_targets(&arguments) {
            match chosen_targets(context).await {
                Ok(targets) if targets.is_empty() => {
                    return TaskOutcome::Failed(
                        "no enabled deployment target matches the script's targets".to_owned(),
                    );
                }
                Ok(targets) => targets.into_iter().map(Some).collect(),
                Err(error) => {
                    return TaskOutcome::Failed(format!("could not load the targets: {error}"));
                }
            }
        } else if self.transports.built_in_worker().is_some() {
            vec![None]
        } else {
            return TaskOutcome::Failed(
                "no targets were chosen and the built-in worker is disabled".to_owned(),
            );
        };

        if !context.resumed() {
            let activities: Vec<serde_json::Value> = targets
                .iter()
                .enumerate()
                .map(|(index, target)| {
                    let name = target
                        .as_ref()
                        .map_or(BUILT_IN_WORKER_NAME, |target| target.name.as_str());
                    json!({"Id": format!("target-{index}"), "Name": name, "Status": "Running"})
                })
                .collect();
            let mut progress = task.progress.clone();
            progress["Activities"] = json!(activities);
            if let Err(error) = context.save_progress(progress).await {
                return TaskOutcome::Failed(format!("could not save progress: {error}"));
            }
        }

        let runs: Vec<_> = targets
            .clone()
            .into_iter()
            .enumerate()
            .map(|(index, target)| {
                let body = body.clone();
                let task_id = task.id.clone();
                let space_id = task.space_id.clone().unwrap_or_default();
                async move {
                    let activity_id = format!("target-{index}");
                    let (transport, address) = match &target {
                        Some(target) => {
                            let address = TargetAddress {
                                machine_id: target.id.clone(),
                                name: target.name.clone(),
                                space_id: space_id.clone(),
                                endpoint: target.endpoint.clone(),
                            };
                            match self.transports.for_endpoint(&address) {
                                Ok(transport) => (transport, address),
                                Err(error) => return (index, Err(error.to_string())),
                            }
                        }
                        None => match self.transports.built_in_worker() {
                            Some(transport) => (
                                transport,
                                TargetAddress {
                                    machine_id: String::new(),
                                    name: BUILT_IN_WORKER_NAME.to_owned(),
                                    space_id: space_id.clone(),
                                    endpoint: cuttle_domain::Endpoint::None,
                                },
                            ),
                            None => {
                                return (index, Err("the built-in worker is disabled".to_owned()));
                            }
                        },
                    };
                    let mut request =
                        ScriptRequest::new(format!("{task_id}-{index}"), syntax, body);
                    request.variables = vec![
                        ScriptVariable::new("Octopus.Task.Id", &task_id),
                        ScriptVariable::new("Octopus.Space.Id", &space_id),
                        ScriptVariable::new("Octopus.Machine.Id", &address.machine_id),
                        ScriptVariable::new("Octopus.Machine.Name", &address.name),
                    ];
                    context.log(
                        LogCategory::Info,
                        &activity_id,
                        format!("Running the script on {}", address.name),
                    );
                    let result =
                        run_script(context, transport, &address, &request, &activity_id).await;
                    (index, result.map_err(|error| error.to_string()))
                }
            })
            .collect();
        let results: Vec<_> = futures::stream::iter(runs)
            .buffer_unordered(PARALLEL_TARGETS)
            .collect()
            .await;

        let mut progress = context.task().progress;
        let mut failures = Vec::new();
        for (index, result) in results {
            let name = targets[index]
                .as_ref()
                .map_or(BUILT_IN_WORKER_NAME.to_owned(), |target| {
                    target.name.clone()
                });
            let status = match &result {
                Ok(outcome) if outcome.succeeded() => "Success",
                Ok(outcome) => {
                    failures.push(match &outcome.failure_message {
                        Some(message) => format!("{name}: {message}"),
                        None => format!(
                            "{name}: exit code {}",
                            outcome.state.exit_code().unwrap_or(-1)
                        ),
                    });
                    "Failed"
                }
                Err(error) => {
                    context.log(
                        LogCategory::Error,
                        &format!("target-{index}"),
                        error.clone(),
                    );
                    failures.push(format!("{name}: {error}"));
                    "Failed"
                }
            };
            if let Some(activity) = progress["Activities"]
                .as_array_mut()
                .and_then(|activities| activities.get_mut(index))
            {
                activity["Status"] = json!(status);
            }
        }
        if let Err(error) = context.save_progress(progress).await {
            return TaskOutcome::Failed(format!("could not save progress: {error}"));
        }
        if context.is_cancel_requested() {
            TaskOutcome::Canceled
        } else if failures.is_empty() {
            TaskOutcome::Success
        } else {
            TaskOutcome::Failed(failures.join("; "))
        }
    }
}
