//! The task runner: claims tasks, runs their handlers under a renewed lease, records outcomes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use cuttle_store::{ClaimedTask, Store, StoreError, TaskState};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::context::{LogCategory, TaskContext};

/// How a handler's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    Success,
    /// Failed, with the reason shown as the task's error.
    Failed(String),
    /// Stopped because cancellation was requested.
    Canceled,
}

/// Runs one kind of task (`Health`, `Deploy`, …).
#[async_trait]
pub trait TaskHandler: Send + Sync + 'static {
    /// Runs the task to its end, or, when [`TaskContext::resumed`], carries on from the
    /// progress it saved. Should watch [`TaskContext::cancellation`].
    async fn run(&self, context: &TaskContext) -> TaskOutcome;
}

/// How a runner behaves.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// This node's stable name (it survives restarts, so a restarted node takes its own tasks
    /// back at once instead of waiting for their leases to lapse).
    pub node: String,
    /// The most tasks run at once on this node (Octopus's task cap; 5 by default).
    pub max_concurrent_tasks: usize,
    /// How long a claim lasts without renewal; renewed every third of it.
    pub lease_duration: Duration,
    /// How often to look for work when nothing wakes the runner.
    pub poll_interval: Duration,
}

impl RunnerConfig {
    pub fn new(node: impl Into<String>) -> RunnerConfig {
        RunnerConfig {
            node: node.into(),
            max_concurrent_tasks: 5,
            lease_duration: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Wakes a runner: it looks for new tasks and for cancel requests at once, instead of at its
/// next poll. Cheap to clone; waking a runner that is not running does nothing.
#[derive(Clone, Debug)]
pub struct TaskWaker {
    sender: watch::Sender<u64>,
}

impl TaskWaker {
    pub fn wake(&self) {
        self.sender
            .send_modify(|count| *count = count.wrapping_add(1));
    }
}

/// Claims and runs tasks until shut down.
pub struct TaskRunner {
    store: Arc<dyn Store>,
    config: RunnerConfig,
    handlers: HashMap<String, Arc<dyn TaskHandler>>,
    wake: watch::Sender<u64>,
}

impl TaskRunner {
    pub fn new(store: Arc<dyn Store>, config: RunnerConfig) -> TaskRunner {
        TaskRunner {
            store,
            config,
            handlers: HashMap::new(),
            wake: watch::channel(0).0,
        }
    }

    /// Runs tasks named `name` (`Health`, `Deploy`, …) with `handler`.
    pub fn register(&mut self, name: &str, handler: Arc<dyn TaskHandler>) {
        self.handlers.insert(name.to_owned(), handler);
    }

    /// A handle that wakes the runner at once, e.g. after queueing or cancelling a task.
    pub fn waker(&self) -> TaskWaker {
        TaskWaker {
            sender: self.wake.clone(),
        }
    }

    /// Runs until `shutdown` becomes true. Tasks still running then are left to be resumed by
    /// the next start (their leases are released, so that start takes them back at once).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        // Tasks this node was running when it last stopped are taken back at once.
        self.release_leases().await;
        let mut running = JoinSet::new();
        let mut woken = self.wake.subscribe();
        loop {
            if *shutdown.borrow() {
                break;
            }
            while running.len() < self.config.max_concurrent_tasks {
                match self.claim().await {
                    Ok(Some(claimed)) => {
                        let runner = Arc::clone(&self);
                        running.spawn(async move { runner.run_claimed(claimed).await });
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!("failed to claim a task: {error}");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = woken.changed() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        let n_interrupted = running.len();
        running.abort_all();
        while running.join_next().await.is_some() {}
        if n_interrupted > 0 {
            self.release_leases().await;
            tracing::info!(
                n_interrupted,
                "tasks left running will resume at the next start"
            );
        }
    }

    async fn release_leases(&self) {
        match self
            .store
            .release_task_leases(&self.config.node, Utc::now())
            .await
        {
            Ok(0) => {}
            Ok(n_released) => {
                tracing::info!(n_released, node = %self.config.node, "released task leases")
            }
            Err(error) => tracing::warn!("failed to release task leases: {error}"),
        }
    }

    async fn claim(&self) -> Result<Option<ClaimedTask>, StoreError> {
        let now = Utc::now();
        let lease_until = now + lease_as_chrono(self.config.lease_duration);
        self.store
            .claim_task(&self.config.node, now, lease_until)
            .await
    }

    /// Runs one claimed task to its recorded end (unless the lease is lost on the way).
    async fn run_claimed(&self, claimed: ClaimedTask) {
        let task_id = claimed.task.id.clone();
        let last_sequence = match self.store.last_task_log_sequence(&task_id).await {
            Ok(sequence) => sequence,
            Err(error) => {
                tracing::warn!(task_id, "failed to read the task log position: {error}");
                return;
            }
        };
        let (cancel_sender, cancel_receiver) = watch::channel(claimed.task.cancel_requested);
        let context = TaskContext::new(
            Arc::clone(&self.store),
            claimed.task.clone(),
            claimed.lease.clone(),
            claimed.resumed,
            last_sequence,
            cancel_receiver,
        );
        if claimed.resumed {
            context.log(
                LogCategory::Info,
                "task",
                format!(
                    "Resuming on node {} after the previous run was interrupted",
                    self.config.node
                ),
            );
        }
        let handler = self.handlers.get(&claimed.task.name).cloned();
        let outcome = match handler {
            None => TaskOutcome::Failed(format!(
                "this server does not know how to run a '{}' task",
                claimed.task.name
            )),
            Some(handler) => {
                let keep_lease = self.keep_lease(&context, &cancel_sender);
                let flush_log = periodic_flush(&context);
                tokio::select! {
                    outcome = handler.run(&context) => outcome,
                    lost = keep_lease => {
                        tracing::warn!(task_id, "stopped running the task: {lost}");
                        return;
                    }
                    never = flush_log => match never {},
                }
            }
        };
        if let Err(error) = self.finish(&context, outcome).await {
            tracing::warn!(task_id, "failed to record the task's end: {error}");
        }
    }

    /// Renews the lease until it is lost; passes cancel requests on (looking at once when the
    /// runner is woken, else every second). Returns why it stopped.
    async fn keep_lease(&self, context: &TaskContext, cancel: &watch::Sender<bool>) -> StoreError {
        let renew_every = self.config.lease_duration / 3;
        let mut woken = self.wake.subscribe();
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = woken.changed() => {}
                () = tokio::time::sleep(CANCEL_CHECK_INTERVAL) => {}
            }
            let task_id = context.task().id;
            if last_renewal.elapsed() < renew_every {
                match self.store.get_task(&task_id).await {
                    Ok(Some(task)) if task.cancel_requested => {
                        cancel.send_replace(true);
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!(task_id, "failed to look for a cancel request: {error}")
                    }
                }
                continue;
            }
            last_renewal = tokio::time::Instant::now();
            let lease_until = Utc::now() + lease_as_chrono(self.config.lease_duration);
            match self
                .store
                .renew_task_lease(&task_id, context.lease(), lease_until)
                .await
            {
                Ok(task) => {
                    if task.cancel_requested {
                        cancel.send_replace(true);
                    }
                    context.replace_task(task);
                }
                Err(error @ StoreError::LeaseLost { .. }) => return error,
                // A passing database hiccup: try again at the next interval, well before
                // the lease runs out.
                Err(error) => tracing::warn!(task_id, "failed to renew a task lease: {error}"),
            }
        }
    }

    async fn finish(&self, context: &TaskContext, outcome: TaskOutcome) -> Result<(), StoreError> {
        let cancel_requested = context.is_cancel_requested()
            || self
                .store
                .get_task(&context.task().id)
                .await?
                .is_some_and(|task| task.cancel_requested);
        let (state, error_message) = match outcome {
            TaskOutcome::Success if cancel_requested => (TaskState::Canceled, None),
            TaskOutcome::Success => (TaskState::Success, None),
            TaskOutcome::Canceled => (TaskState::Canceled, None),
            TaskOutcome::Failed(_) if cancel_requested => (TaskState::Canceled, None),
            TaskOutcome::Failed(reason) => (TaskState::Failed, Some(reason)),
        };
        match (&state, &error_message) {
            (TaskState::Failed, Some(reason)) => {
                context.log(
                    LogCategory::Fatal,
                    "task",
                    format!("The task failed: {reason}"),
                );
            }
            (TaskState::Canceled, _) => {
                context.log(LogCategory::Info, "task", "The task was canceled")
            }
            _ => {}
        }
        context.flush_log().await?;
        let mut task = context.task();
        let now = Utc::now();
        task.state = state;
        task.error_message = error_message;
        task.completed_time = Some(now);
        task.last_updated_time = now;
        task.has_warnings_or_errors = context.has_warnings();
        self.store.save_task(&task, context.lease()).await
    }
}

/// How often a running task looks for a cancel request made on another node.
const CANCEL_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Flushes the context's log every few hundred milliseconds, forever.
async fn periodic_flush(context: &TaskContext) -> std::convert::Infallible {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Err(error) = context.flush_log().await {
            tracing::warn!("failed to write task log lines: {error}");
        }
    }
}

fn lease_as_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::seconds(30))
}
