//! `/api/tasks` and `/api/{spaceId}/tasks`: server tasks, their logs, starting and cancelling.
//!
//! Tasks are not documents: they live in their own table and change constantly while they
//! run, so these answers are never taken from the response cache.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use cuttle_api::{
    ActivityElement, ActivityLogElement, CreateTaskRequest, Links, ServerTaskResource,
    TaskDetailsResource, TaskProgress,
};
use cuttle_domain::{DeploymentTarget, Environment, ResourceKind};
use cuttle_store::{TaskLogLine, TaskQuery, TaskRecord, TaskState};

use super::crud::{collection, require_space};
use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::extract::{ApiJson, ListParameters};
use crate::state::AppState;

use cuttle_orchestrator::AD_HOC_SCRIPT_TASK;
pub use cuttle_orchestrator::HEALTH_TASK;

/// The most log lines a details or raw answer carries; older ones are summarized.
const MAX_LOG_LINES: i64 = 100_000;

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/tasks", get(list_all_tasks))
        .route("/api/tasks/{id}", get(get_task))
        .route("/api/tasks/{id}/details", get(get_task_details))
        .route("/api/tasks/{id}/raw", get(get_raw_log))
        .route("/api/tasks/{id}/cancel", post(cancel_task))
        .route(
            "/api/{space_id}/tasks",
            get(list_space_tasks).post(create_task),
        )
        .route("/api/{space_id}/tasks/{id}", get(get_space_task))
        .route(
            "/api/{space_id}/tasks/{id}/details",
            get(get_space_task_details),
        )
        .route("/api/{space_id}/tasks/{id}/raw", get(get_space_raw_log))
        .route("/api/{space_id}/tasks/{id}/cancel", post(cancel_space_task))
        .route("/api/tasks/{id}/events", get(stream_log))
        .route("/api/{space_id}/tasks/{id}/events", get(stream_space_log))
}

pub(crate) fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// "3 seconds", "2 minutes", "1 hour".
fn human_duration(duration: chrono::Duration) -> String {
    let seconds = duration.num_seconds().max(0);
    let (amount, unit) = match seconds {
        0..60 => (seconds, "second"),
        60..3_600 => (seconds / 60, "minute"),
        3_600..86_400 => (seconds / 3_600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    if amount == 1 {
        format!("1 {unit}")
    } else {
        format!("{amount} {unit}s")
    }
}

pub(crate) fn task_resource(task: &TaskRecord) -> ServerTaskResource {
    let now = Utc::now();
    let is_completed = task.state.is_completed();
    let duration = task.start_time.map(|start| {
        let end = task.completed_time.unwrap_or(now);
        human_duration(end - start)
    });
    let self_link = match &task.space_id {
        Some(space_id) => format!("/api/{space_id}/tasks/{}", task.id),
        None => format!("/api/tasks/{}", task.id),
    };
    ServerTaskResource {
        id: task.id.clone(),
        name: task.name.clone(),
        description: task.description.clone(),
        state: task.state.as_str().to_owned(),
        is_completed,
        finished_successfully: task.state == TaskState::Success,
        has_pending_interruptions: task.has_pending_interruptions,
        has_warnings_or_errors: task.has_warnings_or_errors,
        error_message: task.error_message.clone().unwrap_or_default(),
        queue_time: format_time(task.queue_time),
        queue_time_expiry: task.queue_time_expiry.map(format_time),
        start_time: task.start_time.map(format_time),
        completed_time: task.completed_time.map(format_time),
        last_updated_time: format_time(task.last_updated_time),
        completed: task
            .completed_time
            .map(|completed| format!("{} ago", human_duration(now - completed))),
        duration,
        space_id: task.space_id.clone(),
        project_id: task.project_id.clone(),
        environment_id: task.environment_id.clone(),
        arguments: task.arguments.clone(),
        can_rerun: false,
        has_been_picked_up_by_processor: task.start_time.is_some(),
        server_node: task.claimed_by.clone(),
        links: Links::from([
            ("Self".to_owned(), self_link.clone()),
            ("Details".to_owned(), format!("{self_link}/details")),
            ("Raw".to_owned(), format!("{self_link}/raw")),
            (
                "Cancel".to_owned(),
                format!("/api/tasks/{}/cancel", task.id),
            ),
        ]),
    }
}

/// Task filters: the usual paging plus `states`, `name`, `project` and `environment`.
fn task_query(parameters: &ListParameters, query: Option<&str>) -> Result<TaskQuery, ApiError> {
    let extra: HashMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .map(|(name, value)| (name.to_lowercase(), value.trim().to_owned()))
            .filter(|(_, value)| !value.is_empty())
            .collect();
    let states = match extra.get("states").or_else(|| extra.get("taskstate")) {
        None => None,
        Some(text) => Some(
            text.split(',')
                .map(str::trim)
                .filter(|state| !state.is_empty())
                .map(|state| {
                    TaskState::parse(state).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "states: '{state}' is not a task state (Queued, Executing, Cancelling, Success, Failed, Canceled, TimedOut)"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(TaskQuery {
        ids: parameters.ids.clone(),
        states,
        name: extra.get("name").cloned(),
        project_id: extra.get("project").cloned(),
        environment_id: extra.get("environment").cloned(),
        skip: parameters.skip,
        take: parameters.take,
        ..TaskQuery::default()
    })
}

async fn list_tasks(
    state: &AppState,
    space_id: Option<&str>,
    parameters: &ListParameters,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let mut task_query = task_query(parameters, query)?;
    task_query.space_id = space_id.map(str::to_owned);
    let (total, tasks) = state.store().list_tasks(&task_query).await?;
    let items: Vec<ServerTaskResource> = tasks.iter().map(task_resource).collect();
    let base_path = match space_id {
        Some(space_id) => format!("/api/{space_id}/tasks"),
        None => "/api/tasks".to_owned(),
    };
    Ok(Json(collection("Task", total, items, parameters, &base_path)).into_response())
}

async fn list_all_tasks(
    State(state): State<AppState>,
    caller: Caller,
    parameters: ListParameters,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    list_tasks(&state, None, &parameters, query.as_deref()).await
}

async fn list_space_tasks(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    parameters: ListParameters,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    list_tasks(&state, Some(&space_id), &parameters, query.as_deref()).await
}

/// The task, 404 when unknown or (for a space route) in another space.
async fn load_task(
    state: &AppState,
    space_id: Option<&str>,
    id: &str,
) -> Result<TaskRecord, ApiError> {
    let not_found = || ApiError::NotFound(format!("task {id} was not found"));
    let task = state.store().get_task(id).await?.ok_or_else(not_found)?;
    if space_id.is_some_and(|space_id| task.space_id.as_deref() != Some(space_id)) {
        return Err(not_found());
    }
    Ok(task)
}

async fn get_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    Ok(Json(task_resource(&load_task(&state, None, &id).await?)).into_response())
}

async fn get_space_task(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    Ok(Json(task_resource(
        &load_task(&state, Some(&space_id), &id).await?,
    ))
    .into_response())
}

async fn get_task_details(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    details(&state, None, &id).await
}

async fn get_space_task_details(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    details(&state, Some(&space_id), &id).await
}

async fn details(state: &AppState, space_id: Option<&str>, id: &str) -> Result<Response, ApiError> {
    let task = load_task(state, space_id, id).await?;
    let lines = state.store().task_log(id, 0, MAX_LOG_LINES).await?;
    let physical_log_size = lines
        .iter()
        .map(|line| i64::try_from(line.message.len()).unwrap_or(0))
        .sum();
    let progress_percentage = task.progress["ProgressPercentage"]
        .as_i64()
        .unwrap_or(if task.state.is_completed() { 100 } else { 0 });
    Ok(Json(TaskDetailsResource {
        activity_logs: vec![activity_tree(&task, &lines)],
        task: task_resource(&task),
        progress: TaskProgress {
            progress_percentage,
            estimated_time_remaining: String::new(),
        },
        physical_log_size,
    })
    .into_response())
}

/// The task's log as a tree of activities. Handlers describe their activities in the task's
/// progress (`Activities: [{Id, Name, ParentId, Status, Started, Ended}]`); lines name their
/// activity; the root is the task itself.
fn activity_tree(task: &TaskRecord, lines: &[TaskLogLine]) -> ActivityElement {
    let root_status = match task.state {
        TaskState::Queued => "Pending",
        TaskState::Executing | TaskState::Cancelling => "Running",
        TaskState::Success if task.has_warnings_or_errors => "SuccessWithWarning",
        TaskState::Success => "Success",
        TaskState::Failed | TaskState::TimedOut => "Failed",
        TaskState::Canceled => "Canceled",
    };
    let declared = task.progress["Activities"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let text = |value: &serde_json::Value, key: &str| value[key].as_str().map(str::to_owned);
    let mut elements: Vec<(Option<String>, ActivityElement)> = declared
        .iter()
        .filter_map(|activity| {
            let id = text(activity, "Id")?;
            Some((
                text(activity, "ParentId"),
                ActivityElement {
                    name: text(activity, "Name").unwrap_or_else(|| id.clone()),
                    id,
                    started: text(activity, "Started"),
                    ended: text(activity, "Ended"),
                    status: text(activity, "Status").unwrap_or_else(|| "Pending".to_owned()),
                    children: Vec::new(),
                    show_at_summary_level: true,
                    log_elements: Vec::new(),
                    progress_percentage: activity["ProgressPercentage"].as_i64().unwrap_or(0),
                    progress_message: text(activity, "ProgressMessage"),
                },
            ))
        })
        .collect();
    let mut root = ActivityElement {
        id: "task".to_owned(),
        name: task.description.clone(),
        started: task.start_time.map(format_time),
        ended: task.completed_time.map(format_time),
        status: root_status.to_owned(),
        children: Vec::new(),
        show_at_summary_level: true,
        log_elements: Vec::new(),
        progress_percentage: if task.state.is_completed() { 100 } else { 0 },
        progress_message: None,
    };
    for line in lines {
        let element = ActivityLogElement {
            category: line.category.clone(),
            occurred_at: format_time(line.occurred_at),
            message_text: line.message.clone(),
        };
        match elements
            .iter_mut()
            .find(|(_, activity)| activity.id == line.activity_id)
        {
            Some((_, activity)) => activity.log_elements.push(element),
            None => root.log_elements.push(element),
        }
    }
    // Attach children to parents, deepest first, so each subtree is complete when moved.
    while let Some(index) = elements.iter().rposition(|(_, candidate)| {
        !elements
            .iter()
            .any(|(parent, _)| parent.as_deref() == Some(&candidate.id))
    }) {
        let (parent_id, element) = elements.remove(index);
        match parent_id.and_then(|parent_id| {
            elements
                .iter_mut()
                .find(|(_, activity)| activity.id == parent_id)
        }) {
            Some((_, parent)) => parent.children.insert(0, element),
            None => root.children.insert(0, element),
        }
    }
    root
}

async fn get_raw_log(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    raw_log(&state, None, &id).await
}

async fn get_space_raw_log(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    raw_log(&state, Some(&space_id), &id).await
}

/// The whole log as plain text, one line per entry: `time  category  message`.
async fn raw_log(state: &AppState, space_id: Option<&str>, id: &str) -> Result<Response, ApiError> {
    let task = load_task(state, space_id, id).await?;
    let lines = state.store().task_log(id, 0, MAX_LOG_LINES).await?;
    let mut text = format!(
        "Task ID:        {}\nTask status:    {}\nTask name:      {}\nDescription:    {}\n\n",
        task.id,
        task.state.as_str(),
        task.name,
        task.description
    );
    for line in &lines {
        text.push_str(&format!(
            "{:<31} {:<10} {}\n",
            format_time(line.occurred_at),
            line.category,
            line.message
        ));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// How often a live log looks for new lines.
const STREAM_POLL: std::time::Duration = std::time::Duration::from_millis(200);
/// The most lines one poll of a live log sends at once.
const STREAM_BATCH: i64 = 2_000;

async fn stream_log(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    live_log(state, None, id, &headers, query.as_deref()).await
}

async fn stream_space_log(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    live_log(state, Some(space_id), id, &headers, query.as_deref()).await
}

/// The task's log as Server-Sent Events: one `line` event per log line (its id is the line's
/// sequence, so a reconnecting browser resumes after `Last-Event-ID`), a `state` event when
/// the task's state changes or an interruption starts or stops waiting, and a final `end` event once it has completed and every line
/// was sent. `?after=N` starts after line N.
async fn live_log(
    state: AppState,
    space_id: Option<String>,
    id: String,
    headers: &axum::http::HeaderMap,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};

    load_task(&state, space_id.as_deref(), &id).await?;
    let resume_after = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<i64>().ok())
        .or_else(|| {
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .find(|(name, _)| name.eq_ignore_ascii_case("after"))
                .and_then(|(_, value)| value.trim().parse::<i64>().ok())
        })
        .unwrap_or(0);
    struct Cursor {
        state: AppState,
        id: String,
        after: i64,
        /// The state and pending-interruption flag last sent: a change in either is news.
        last_state: Option<(TaskState, bool)>,
        pending: std::collections::VecDeque<Event>,
        ended: bool,
    }
    let cursor = Cursor {
        state,
        id,
        after: resume_after,
        last_state: None,
        pending: std::collections::VecDeque::new(),
        ended: false,
    };
    let stream = futures::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(event) = cursor.pending.pop_front() {
                return Some((Ok::<Event, std::convert::Infallible>(event), cursor));
            }
            if cursor.ended {
                return None;
            }
            let task = cursor
                .state
                .store()
                .get_task(&cursor.id)
                .await
                .ok()
                .flatten();
            let lines = cursor
                .state
                .store()
                .task_log(&cursor.id, cursor.after, STREAM_BATCH)
                .await
                .unwrap_or_default();
            for line in &lines {
                cursor.after = cursor.after.max(line.sequence);
                let data = serde_json::json!({
                    "Sequence": line.sequence,
                    "OccurredAt": format_time(line.occurred_at),
                    "Category": line.category,
                    "ActivityId": line.activity_id,
                    "MessageText": line.message,
                });
                cursor.pending.push_back(
                    Event::default()
                        .event("line")
                        .id(line.sequence.to_string())
                        .data(data.to_string()),
                );
            }
            match task {
                None => {
                    cursor
                        .pending
                        .push_back(Event::default().event("end").data("{}"));
                    cursor.ended = true;
                }
                Some(task) => {
                    let seen = (task.state, task.has_pending_interruptions);
                    if cursor.last_state != Some(seen) {
                        cursor.last_state = Some(seen);
                        cursor.pending.push_back(
                            Event::default()
                                .event("state")
                                .data(serde_json::json!({"State": task.state.as_str(), "HasPendingInterruptions": task.has_pending_interruptions}).to_string()),
                        );
                    }
                    // Only end once a completed task has no more lines to send.
                    if task.state.is_completed()
                        && i64::try_from(lines.len()).unwrap_or(0) < STREAM_BATCH
                    {
                        cursor.pending.push_back(
                            Event::default().event("end").data(
                                serde_json::json!({"State": task.state.as_str()}).to_string(),
                            ),
                        );
                        cursor.ended = true;
                    }
                }
            }
            if cursor.pending.is_empty() {
                tokio::time::sleep(STREAM_POLL).await;
            }
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

async fn cancel_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    cancel(&state, None, &id).await
}

async fn cancel_space_task(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    cancel(&state, Some(&space_id), &id).await
}

async fn cancel(state: &AppState, space_id: Option<&str>, id: &str) -> Result<Response, ApiError> {
    load_task(state, space_id, id).await?;
    let task = state
        .store()
        .request_task_cancel(id, Utc::now())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("task {id} was not found")))?;
    state.wake_task_runner();
    Ok(Json(task_resource(&task)).into_response())
}

/// `POST /api/{spaceId}/tasks`: queue a task. Health checks take `MachineIds` or
/// `EnvironmentId` in `Arguments` (all targets of the space when neither is given).
async fn create_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    ApiJson(request): ApiJson<CreateTaskRequest>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let (name, arguments, default_description) = match request.name.as_str() {
        HEALTH_TASK => (
            HEALTH_TASK,
            validate_health_arguments(&state, &space_id, &request.arguments).await?,
            "Check deployment target health",
        ),
        AD_HOC_SCRIPT_TASK => (
            AD_HOC_SCRIPT_TASK,
            validate_script_arguments(&state, &space_id, &request.arguments).await?,
            "Run a script",
        ),
        other => {
            return Err(ApiError::bad_request(format!(
                "Name: Cuttle can start '{HEALTH_TASK}' and '{AD_HOC_SCRIPT_TASK}' tasks here, not '{other}' (deployments and runbook runs have commands of their own)"
            )));
        }
    };
    let description = request
        .description
        .filter(|description| !description.trim().is_empty())
        .unwrap_or_else(|| default_description.to_owned());
    let id = state.store().allocate_id(ResourceKind::Task).await?;
    let mut task = TaskRecord::queued(id, Some(space_id), name, description, arguments, Utc::now());
    task.environment_id = task.arguments["EnvironmentId"].as_str().map(str::to_owned);
    state.store().insert_task(&task).await?;
    state.wake_task_runner();
    Ok((StatusCode::CREATED, Json(task_resource(&task))).into_response())
}

/// Checks an ad-hoc script's arguments: a script, a known syntax, known targets.
async fn validate_script_arguments(
    state: &AppState,
    space_id: &str,
    arguments: &serde_json::Value,
) -> Result<serde_json::Value, ApiError> {
    let mut arguments = validate_health_arguments(state, space_id, arguments).await?;
    let body = arguments["ScriptBody"].as_str().unwrap_or_default();
    if body.trim().is_empty() {
        return Err(ApiError::bad_request(
            "Arguments.ScriptBody: the script to run is required",
        ));
    }
    match arguments.get("Syntax").and_then(|syntax| syntax.as_str()) {
        None => arguments["Syntax"] = serde_json::json!("Bash"),
        Some(syntax) => {
            let known = ["Bash", "Sh", "Python", "PowerShell"];
            let canonical = known
                .iter()
                .find(|known| known.eq_ignore_ascii_case(syntax))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Arguments.Syntax must be one of {}, not '{syntax}'",
                        known.join(", ")
                    ))
                })?;
            arguments["Syntax"] = serde_json::json!(canonical);
        }
    }
    for key in ["EnvironmentIds", "TargetRoles"] {
        if let Some(values) = arguments.get(key).filter(|value| !value.is_null()) {
            let values = values
                .as_array()
                .filter(|values| values.iter().all(serde_json::Value::is_string))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("Arguments.{key} must be a list of strings"))
                })?;
            if key == "EnvironmentIds" {
                for (index, id) in values.iter().enumerate() {
                    let id = id.as_str().unwrap_or_default();
                    let environment = state.store().get_resource::<Environment>(id).await?;
                    if environment.is_none_or(|environment| environment.space_id != space_id) {
                        return Err(ApiError::bad_request(format!(
                            "Arguments.EnvironmentIds[{index}]: '{id}' is not an environment in space {space_id}"
                        )));
                    }
                }
            }
        }
    }
    Ok(arguments)
}

/// Checks a health check's arguments: known targets, or a known environment.
async fn validate_health_arguments(
    state: &AppState,
    space_id: &str,
    arguments: &serde_json::Value,
) -> Result<serde_json::Value, ApiError> {
    let arguments = if arguments.is_null() {
        serde_json::json!({})
    } else {
        arguments.clone()
    };
    if !arguments.is_object() {
        return Err(ApiError::bad_request("Arguments must be an object"));
    }
    if let Some(machine_ids) = arguments.get("MachineIds").filter(|value| !value.is_null()) {
        let ids = machine_ids.as_array().ok_or_else(|| {
            ApiError::bad_request("Arguments.MachineIds must be a list of target ids")
        })?;
        for (index, id) in ids.iter().enumerate() {
            let id = id.as_str().unwrap_or_default();
            let target = state.store().get_resource::<DeploymentTarget>(id).await?;
            if target.is_none_or(|target| target.space_id != space_id) {
                return Err(ApiError::bad_request(format!(
                    "Arguments.MachineIds[{index}]: '{id}' is not a deployment target in space {space_id}"
                )));
            }
        }
    }
    if let Some(environment_id) = arguments
        .get("EnvironmentId")
        .filter(|value| !value.is_null())
    {
        let id = environment_id.as_str().unwrap_or_default();
        let environment = state.store().get_resource::<Environment>(id).await?;
        if environment.is_none_or(|environment| environment.space_id != space_id) {
            return Err(ApiError::bad_request(format!(
                "Arguments.EnvironmentId: '{id}' is not an environment in space {space_id}"
            )));
        }
    }
    Ok(arguments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_octopus() {
        assert_eq!(human_duration(chrono::Duration::seconds(1)), "1 second");
        assert_eq!(human_duration(chrono::Duration::seconds(59)), "59 seconds");
        assert_eq!(human_duration(chrono::Duration::seconds(150)), "2 minutes");
        assert_eq!(human_duration(chrono::Duration::hours(3)), "3 hours");
    }

    #[test]
    fn activities_nest_and_lines_find_their_activity() {
        let mut task = TaskRecord::queued(
            "ServerTasks-1".to_owned(),
            None,
            "Health",
            "Check".to_owned(),
            serde_json::json!({}),
            Utc::now(),
        );
        task.progress = serde_json::json!({"Activities": [
            {"Id": "step-1", "Name": "Step 1", "Status": "Success"},
            {"Id": "step-1/web01", "Name": "web01", "ParentId": "step-1", "Status": "Success"},
            {"Id": "step-2", "Name": "Step 2"}
        ]});
        let line = |activity: &str, message: &str| TaskLogLine {
            sequence: 1,
            occurred_at: Utc::now(),
            category: "Info".to_owned(),
            activity_id: activity.to_owned(),
            message: message.to_owned(),
        };
        let tree = activity_tree(
            &task,
            &[
                line("task", "top"),
                line("step-1/web01", "deep"),
                line("gone", "orphan"),
            ],
        );
        assert_eq!(tree.children.len(), 2);
        assert_eq!(tree.children[0].id, "step-1");
        assert_eq!(
            tree.children[0].children[0].log_elements[0].message_text,
            "deep"
        );
        assert_eq!(tree.children[1].status, "Pending");
        let root_messages: Vec<&str> = tree
            .log_elements
            .iter()
            .map(|element| element.message_text.as_str())
            .collect();
        assert_eq!(root_messages, ["top", "orphan"]);
    }
}
