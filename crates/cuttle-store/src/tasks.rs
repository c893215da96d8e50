//! Server tasks: the durable record of every deployment, runbook run and health check, the
//! lease a node holds while running one, and the task log.
//!
//! A node claims a task with a lease (an expiry time and a generation). It renews the lease
//! while it works; if it dies, the lease expires and another node (or the same one after a
//! restart) claims the task again with a higher generation and resumes it. Every write a
//! runner makes names its lease, and the store refuses writes from a superseded generation, so
//! two nodes never both drive one task.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A task's state, spelled as Octopus spells it (`Canceled` with one l).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskState {
    Queued,
    Executing,
    Cancelling,
    Success,
    Failed,
    Canceled,
    TimedOut,
}

impl TaskState {
    pub const ALL: [TaskState; 7] = [
        TaskState::Queued,
        TaskState::Executing,
        TaskState::Cancelling,
        TaskState::Success,
        TaskState::Failed,
        TaskState::Canceled,
        TaskState::TimedOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "Queued",
            TaskState::Executing => "Executing",
            TaskState::Cancelling => "Cancelling",
            TaskState::Success => "Success",
            TaskState::Failed => "Failed",
            TaskState::Canceled => "Canceled",
            TaskState::TimedOut => "TimedOut",
        }
    }

    /// Parses a state name in any letter case.
    pub fn parse(text: &str) -> Option<TaskState> {
        TaskState::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(text))
    }

    /// Whether the task has ended (Octopus's `IsCompleted`).
    pub fn is_completed(self) -> bool {
        matches!(
            self,
            TaskState::Success | TaskState::Failed | TaskState::Canceled | TaskState::TimedOut
        )
    }
}

/// One task, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    pub id: String,
    pub space_id: Option<String>,
    /// What kind of task: `Deploy`, `Health`, `RunbookRun`…; picks the handler.
    pub name: String,
    pub description: String,
    pub state: TaskState,
    /// The handler's input, as given when the task was created.
    pub arguments: serde_json::Value,
    pub project_id: Option<String>,
    pub environment_id: Option<String>,
    /// When the task was queued, or when it may start (a scheduled deployment).
    pub queue_time: DateTime<Utc>,
    /// A queued task not started by then times out.
    pub queue_time_expiry: Option<DateTime<Utc>>,
    pub start_time: Option<DateTime<Utc>>,
    pub completed_time: Option<DateTime<Utc>>,
    pub last_updated_time: DateTime<Utc>,
    pub error_message: Option<String>,
    pub has_warnings_or_errors: bool,
    pub has_pending_interruptions: bool,
    pub cancel_requested: bool,
    /// The node running it, while it runs.
    pub claimed_by: Option<String>,
    pub lease_expires: Option<DateTime<Utc>>,
    /// Moves on every claim; writes must name the current one.
    pub lease_generation: i64,
    /// The handler's own durable state (activity tree, per-target progress, ticket ids…).
    pub progress: serde_json::Value,
    /// Tasks with the same tag run one at a time (one deployment per project and
    /// environment); a queued task waits while another with its tag is running, and the
    /// runner takes the next eligible task meanwhile.
    pub concurrency_tag: Option<String>,
}

impl TaskRecord {
    /// A new queued task.
    pub fn queued(
        id: String,
        space_id: Option<String>,
        name: &str,
        description: String,
        arguments: serde_json::Value,
        now: DateTime<Utc>,
    ) -> TaskRecord {
        TaskRecord {
            id,
            space_id,
            name: name.to_owned(),
            description,
            state: TaskState::Queued,
            arguments,
            project_id: None,
            environment_id: None,
            queue_time: now,
            queue_time_expiry: None,
            start_time: None,
            completed_time: None,
            last_updated_time: now,
            error_message: None,
            has_warnings_or_errors: false,
            has_pending_interruptions: false,
            cancel_requested: false,
            claimed_by: None,
            lease_expires: None,
            lease_generation: 0,
            progress: serde_json::Value::Object(serde_json::Map::new()),
            concurrency_tag: None,
        }
    }
}

/// The right to write a task, held by one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub node: String,
    pub generation: i64,
}

/// A claimed task: the record after the claim, and whether it had run before (a resume).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedTask {
    pub task: TaskRecord,
    pub lease: Lease,
    /// True when the task was already running under an expired lease: its handler must
    /// re-attach to what it started instead of starting again.
    pub resumed: bool,
}

/// Filters for listing tasks; newest first.
#[derive(Debug, Clone)]
pub struct TaskQuery {
    pub space_id: Option<String>,
    pub ids: Option<Vec<String>>,
    pub states: Option<Vec<TaskState>>,
    pub name: Option<String>,
    pub project_id: Option<String>,
    pub environment_id: Option<String>,
    /// Only tasks completed after this moment (so never tasks still running).
    pub completed_after: Option<DateTime<Utc>>,
    pub skip: i64,
    pub take: i64,
}

impl Default for TaskQuery {
    fn default() -> TaskQuery {
        TaskQuery {
            space_id: None,
            ids: None,
            states: None,
            name: None,
            project_id: None,
            environment_id: None,
            completed_after: None,
            skip: 0,
            take: i64::from(i32::MAX),
        }
    }
}

/// One line of a task log, under an activity (a block of the log: the task, a step, a target).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLogLine {
    /// 1, 2, 3… per task; assigned by the runner, so a resumed runner continues the count.
    pub sequence: i64,
    pub occurred_at: DateTime<Utc>,
    /// Octopus's log category: Verbose, Info, Highlight, Warning, Error, Fatal…
    pub category: String,
    /// The activity the line belongs to (`task`, `step-1`, `step-1/Machines-3`).
    pub activity_id: String,
    pub message: String,
}
