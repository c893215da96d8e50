//! The task runner against a real SQLite store: outcomes, logs, cancellation and resuming.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use cuttle_orchestrator::{
    LogCategory, RunnerConfig, TaskContext, TaskHandler, TaskOutcome, TaskRunner,
};
use cuttle_store::{Store, TaskRecord, TaskState};
use cuttle_store_sqlite::SqliteStore;
use serde_json::json;
use tokio::sync::watch;

struct Scripted;

#[async_trait]
impl TaskHandler for Scripted {
    async fn run(&self, context: &TaskContext) -> TaskOutcome {
        let arguments = context.arguments();
        let step = context.task().progress["Step"].as_i64().unwrap_or(0);
        context.log(
            LogCategory::Info,
            "task",
            format!("starting at step {step}, resumed: {}", context.resumed()),
        );
        match arguments["Behaviour"].as_str().unwrap_or_default() {
            "fail" => TaskOutcome::Failed("it was told to fail".to_owned()),
            "warn" => {
                context.log(LogCategory::Warning, "task", "careful");
                TaskOutcome::Success
            }
            "wait-for-cancel" => {
                context.cancellation().await;
                TaskOutcome::Canceled
            }
            "two-steps" => {
                if step == 0 {
                    context
                        .save_progress(json!({ "Step": 1 }))
                        .await
                        .expect("save progress");
                    // Hang: the test stops this runner here, as a crash would.
                    std::future::pending::<()>().await;
                }
                context.log(LogCategory::Info, "task", "second step done");
                TaskOutcome::Success
            }
            _ => TaskOutcome::Success,
        }
    }
}

struct Harness {
    store: Arc<dyn Store>,
    _directory: tempfile::TempDir,
}

async fn harness() -> Harness {
    let directory = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(directory.path())
        .await
        .expect("open store");
    Harness {
        store: Arc::new(store),
        _directory: directory,
    }
}

fn start_runner(
    store: &Arc<dyn Store>,
    node: &str,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let mut config = RunnerConfig::new(node);
    config.poll_interval = Duration::from_millis(20);
    config.lease_duration = Duration::from_millis(600);
    let mut runner = TaskRunner::new(Arc::clone(store), config);
    runner.register("Test", Arc::new(Scripted));
    let (shutdown, receiver) = watch::channel(false);
    let handle = tokio::spawn(Arc::new(runner).run(receiver));
    (shutdown, handle)
}

async fn queue(store: &Arc<dyn Store>, id: &str, name: &str, arguments: serde_json::Value) {
    let task = TaskRecord::queued(
        id.to_owned(),
        None,
        name,
        format!("test {id}"),
        arguments,
        Utc::now(),
    );
    store.insert_task(&task).await.expect("insert task");
}

async fn wait_until_completed(store: &Arc<dyn Store>, id: &str) -> TaskRecord {
    for _ in 0..500 {
        let task = store
            .get_task(id)
            .await
            .expect("read task")
            .expect("task exists");
        if task.state.is_completed() {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {id} did not complete");
}

async fn messages(store: &Arc<dyn Store>, id: &str) -> Vec<String> {
    store
        .task_log(id, 0, 1000)
        .await
        .expect("read log")
        .into_iter()
        .map(|line| line.message)
        .collect()
}

#[tokio::test]
async fn outcomes_are_recorded_with_their_logs() {
    let harness = harness().await;
    let store = &harness.store;
    queue(store, "ServerTasks-1", "Test", json!({})).await;
    queue(
        store,
        "ServerTasks-2",
        "Test",
        json!({ "Behaviour": "fail" }),
    )
    .await;
    queue(
        store,
        "ServerTasks-3",
        "Test",
        json!({ "Behaviour": "warn" }),
    )
    .await;
    queue(store, "ServerTasks-4", "Nobody", json!({})).await;
    let (shutdown, handle) = start_runner(store, "node-a");

    let success = wait_until_completed(store, "ServerTasks-1").await;
    assert_eq!(success.state, TaskState::Success);
    assert!(success.completed_time.is_some());
    assert_eq!(
        messages(store, "ServerTasks-1").await,
        ["starting at step 0, resumed: false"]
    );

    let failed = wait_until_completed(store, "ServerTasks-2").await;
    assert_eq!(failed.state, TaskState::Failed);
    assert_eq!(failed.error_message.as_deref(), Some("it was told to fail"));
    assert!(
        messages(store, "ServerTasks-2")
            .await
            .last()
            .unwrap()
            .contains("told to fail")
    );

    let warned = wait_until_completed(store, "ServerTasks-3").await;
    assert_eq!(warned.state, TaskState::Success);
    assert!(warned.has_warnings_or_errors);

    let unknown = wait_until_completed(store, "ServerTasks-4").await;
    assert_eq!(unknown.state, TaskState::Failed);
    assert!(unknown.error_message.unwrap().contains("'Nobody'"));

    shutdown.send_replace(true);
    handle.await.expect("runner stops");
}

#[tokio::test]
async fn a_running_task_is_canceled_on_request() {
    let harness = harness().await;
    let store = &harness.store;
    queue(
        store,
        "ServerTasks-1",
        "Test",
        json!({ "Behaviour": "wait-for-cancel" }),
    )
    .await;
    let (shutdown, handle) = start_runner(store, "node-a");
    for _ in 0..200 {
        if store
            .get_task("ServerTasks-1")
            .await
            .unwrap()
            .unwrap()
            .state
            == TaskState::Executing
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    store
        .request_task_cancel("ServerTasks-1", Utc::now())
        .await
        .unwrap();
    let canceled = wait_until_completed(store, "ServerTasks-1").await;
    assert_eq!(canceled.state, TaskState::Canceled);
    shutdown.send_replace(true);
    handle.await.expect("runner stops");
}

#[tokio::test]
async fn a_task_interrupted_by_a_stop_resumes_from_its_progress() {
    let harness = harness().await;
    let store = &harness.store;
    queue(
        store,
        "ServerTasks-1",
        "Test",
        json!({ "Behaviour": "two-steps" }),
    )
    .await;
    let (shutdown, handle) = start_runner(store, "node-a");
    for _ in 0..300 {
        if store
            .get_task("ServerTasks-1")
            .await
            .unwrap()
            .unwrap()
            .progress["Step"]
            == 1
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Stop the node mid-task, as a restart would, then start it again.
    shutdown.send_replace(true);
    handle.await.expect("runner stops");
    let interrupted = store.get_task("ServerTasks-1").await.unwrap().unwrap();
    assert_eq!(
        interrupted.state,
        TaskState::Executing,
        "nothing completes a task on the way down"
    );

    let (shutdown, handle) = start_runner(store, "node-a");
    let resumed = wait_until_completed(store, "ServerTasks-1").await;
    assert_eq!(resumed.state, TaskState::Success);
    let log = messages(store, "ServerTasks-1").await;
    assert_eq!(log[0], "starting at step 0, resumed: false");
    assert!(log[1].starts_with("Resuming on node node-a"), "{log:?}");
    assert_eq!(log[2], "starting at step 1, resumed: true");
    assert_eq!(log[3], "second step done");
    shutdown.send_replace(true);
    handle.await.expect("runner stops");
}

#[tokio::test]
async fn a_crashed_nodes_task_is_taken_over_when_its_lease_lapses() {
    let harness = harness().await;
    let store = &harness.store;
    queue(
        store,
        "ServerTasks-1",
        "Test",
        json!({ "Behaviour": "two-steps" }),
    )
    .await;
    let (_shutdown, handle) = start_runner(store, "node-a");
    for _ in 0..300 {
        if store
            .get_task("ServerTasks-1")
            .await
            .unwrap()
            .unwrap()
            .progress["Step"]
            == 1
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A crash: the runner vanishes without releasing anything.
    handle.abort();
    let _ = handle.await;
    let (shutdown, handle) = start_runner(store, "node-b");
    let resumed = wait_until_completed(store, "ServerTasks-1").await;
    assert_eq!(resumed.state, TaskState::Success);
    assert!(
        messages(store, "ServerTasks-1")
            .await
            .iter()
            .any(|line| line.contains("Resuming on node node-b"))
    );
    shutdown.send_replace(true);
    handle.await.expect("runner stops");
}
