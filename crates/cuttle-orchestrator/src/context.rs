//! What a running task handler sees: its task, its log, its progress, and cancellation.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use chrono::Utc;
use cuttle_store::{Lease, Store, StoreError, TaskLogLine, TaskRecord};
use tokio::sync::watch;

/// The category of a log line, as Octopus names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogCategory {
    Verbose,
    Info,
    Highlight,
    Wait,
    Warning,
    Error,
    Fatal,
}

impl LogCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            LogCategory::Verbose => "Verbose",
            LogCategory::Info => "Info",
            LogCategory::Highlight => "Highlight",
            LogCategory::Wait => "Wait",
            LogCategory::Warning => "Warning",
            LogCategory::Error => "Error",
            LogCategory::Fatal => "Fatal",
        }
    }
}

/// A handler's view of its running task.
pub struct TaskContext {
    store: std::sync::Arc<dyn Store>,
    task: Mutex<TaskRecord>,
    lease: Lease,
    resumed: bool,
    next_sequence: AtomicI64,
    pending_lines: Mutex<Vec<TaskLogLine>>,
    cancel_requested: watch::Receiver<bool>,
    has_warnings: AtomicBool,
}

impl TaskContext {
    pub(crate) fn new(
        store: std::sync::Arc<dyn Store>,
        task: TaskRecord,
        lease: Lease,
        resumed: bool,
        last_sequence: i64,
        cancel_requested: watch::Receiver<bool>,
    ) -> TaskContext {
        let has_warnings = task.has_warnings_or_errors;
        TaskContext {
            store,
            task: Mutex::new(task),
            lease,
            resumed,
            next_sequence: AtomicI64::new(last_sequence + 1),
            pending_lines: Mutex::new(Vec::new()),
            cancel_requested,
            has_warnings: AtomicBool::new(has_warnings),
        }
    }

    /// The task as last saved.
    pub fn task(&self) -> TaskRecord {
        self.task
            .lock()
            .map(|task| task.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// The task's arguments, as given when it was created.
    pub fn arguments(&self) -> serde_json::Value {
        self.task().arguments
    }

    /// The store, for handlers that read configuration.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// True when this run continues a task that was running when its previous runner stopped.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Adds a line to the log under `activity_id`; written with the next flush (at most a
    /// moment later, and always before progress is saved or the task ends).
    pub fn log(&self, category: LogCategory, activity_id: &str, message: impl Into<String>) {
        if matches!(
            category,
            LogCategory::Warning | LogCategory::Error | LogCategory::Fatal
        ) {
            self.has_warnings.store(true, Ordering::Relaxed);
        }
        let line = TaskLogLine {
            sequence: self.next_sequence.fetch_add(1, Ordering::Relaxed),
            occurred_at: Utc::now(),
            category: category.as_str().to_owned(),
            activity_id: activity_id.to_owned(),
            message: message.into(),
        };
        if let Ok(mut pending) = self.pending_lines.lock() {
            pending.push(line);
        }
    }

    /// Takes the lines logged and not yet written.
    fn take_pending_lines(&self) -> Vec<TaskLogLine> {
        match self.pending_lines.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => Vec::new(),
        }
    }

    /// Puts lines a failed write took back, in front of newer ones, for the next attempt.
    fn restore_pending_lines(&self, lines: Vec<TaskLogLine>) {
        if let Ok(mut pending) = self.pending_lines.lock() {
            let newer = std::mem::take(&mut *pending);
            *pending = lines;
            pending.extend(newer);
        }
    }

    /// Writes the lines logged so far.
    pub async fn flush_log(&self) -> Result<(), StoreError> {
        let lines = self.take_pending_lines();
        if lines.is_empty() {
            return Ok(());
        }
        let id = self.task().id;
        let written = self.store.append_task_log(&id, &self.lease, &lines).await;
        if written.is_err() {
            self.restore_pending_lines(lines);
        }
        written
    }

    /// Saves the handler's durable progress together with the lines logged before it, in one
    /// transaction: progress that records how far a script's log was copied (`AfterSequence`)
    /// then never disagrees with the lines written, so a restart after a crash neither loses
    /// nor repeats a line.
    pub async fn save_progress(&self, progress: serde_json::Value) -> Result<(), StoreError> {
        let lines = self.take_pending_lines();
        let task = {
            let mut task = self
                .task
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            task.progress = progress;
            task.has_warnings_or_errors = self.has_warnings.load(Ordering::Relaxed);
            task.last_updated_time = Utc::now();
            task.clone()
        };
        let saved = self
            .store
            .save_task_with_log(&task, &self.lease, &lines)
            .await;
        if saved.is_err() {
            self.restore_pending_lines(lines);
        }
        saved
    }

    /// Changes the progress document in place and saves it. Unlike [`TaskContext::save_progress`]
    /// with a copy, concurrent updates from parallel targets never overwrite each other: each
    /// applies its change to the current document under the lock.
    pub async fn update_progress(
        &self,
        change: impl FnOnce(&mut serde_json::Value),
    ) -> Result<(), StoreError> {
        {
            let mut task = self
                .task
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if !task.progress.is_object() {
                task.progress = serde_json::Value::Object(serde_json::Map::new());
            }
            change(&mut task.progress);
        }
        let progress = self.task().progress;
        self.save_progress(progress).await
    }

    /// Marks whether the task waits for a person (guided failure, manual intervention).
    pub async fn set_pending_interruptions(&self, pending: bool) -> Result<(), StoreError> {
        {
            let mut task = self
                .task
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            task.has_pending_interruptions = pending;
        }
        let progress = self.task().progress;
        self.save_progress(progress).await
    }

    /// Whether someone asked the task to stop.
    pub fn is_cancel_requested(&self) -> bool {
        *self.cancel_requested.borrow()
    }

    /// Completes when someone asks the task to stop.
    pub async fn cancellation(&self) {
        let mut receiver = self.cancel_requested.clone();
        while !*receiver.borrow_and_update() {
            if receiver.changed().await.is_err() {
                // The runner is gone; nobody will cancel any more.
                std::future::pending::<()>().await;
            }
        }
    }

    pub(crate) fn has_warnings(&self) -> bool {
        self.has_warnings.load(Ordering::Relaxed)
    }

    pub(crate) fn lease(&self) -> &Lease {
        &self.lease
    }

    pub(crate) fn replace_task(&self, task: TaskRecord) {
        if let Ok(mut current) = self.task.lock() {
            *current = task;
        }
    }
}
