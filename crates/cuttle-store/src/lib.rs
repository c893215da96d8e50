//! The store: what Cuttle keeps, behind one trait that each database backend implements.
//!
//! Configuration resources are **documents in SQL**, as Octopus keeps them: one row per resource
//! with a few indexed columns (kind, space, owner, name, sort order) and the JSON document. The
//! database, not the caller, enforces the two rules that races would otherwise break:
//! names are unique per kind within a space (or owner) ignoring case, and a resource that others
//! still point at cannot be deleted. References are rows of their own for that reason.
//!
//! Credentials (API keys, sessions) live in their own tables because they are looked up by hash
//! and must never be served as documents.
//!
//! **Architecture Invariant:** backends differ only in SQL. Every behaviour a caller relies on
//! is pinned by [`conformance`], which runs against SQLite always and PostgreSQL in CI.
//!
//! This crate does not know HTTP; it knows nothing of how ids look on the wire beyond
//! [`ResourceKind::format_id`].

mod changes;
#[cfg(feature = "conformance")]
pub mod conformance;
mod document;
mod error;
mod records;
mod tasks;
pub mod typed;

pub use changes::ChangeCounter;
pub use cuttle_domain::ResourceKind;
pub use document::{Change, Document, DocumentPage, DocumentQuery, DocumentSummary};
pub use error::StoreError;
pub use records::{ApiKeyRecord, SessionRecord};
pub use tasks::{ClaimedTask, Lease, TaskLogLine, TaskQuery, TaskRecord, TaskState};
pub use typed::{ResourcePage, document_from_resource, resource_from_document};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Everything the server persists. Implemented by `cuttle-store-sqlite` and
/// `cuttle-store-postgres`; used as `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The next id of `kind` (`Environments-7`); never handed out twice, even across restarts.
    async fn allocate_id(&self, kind: ResourceKind) -> Result<String, StoreError>;

    /// Applies all changes in one transaction: all of them happen or none does.
    ///
    /// Fails with [`StoreError::NameTaken`] when an inserted or renamed document collides with
    /// another's name, [`StoreError::InUse`] when a deleted document is still referenced,
    /// [`StoreError::BrokenReference`] when a document points at one that does not exist, and
    /// [`StoreError::NotFound`] when an updated or deleted document does not exist.
    async fn write(&self, changes: &[Change]) -> Result<(), StoreError>;

    async fn get_document(
        &self,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<Document>, StoreError>;

    /// Lists documents of one kind, filtered, ordered by sort order then name, then paged.
    async fn list_documents(
        &self,
        kind: ResourceKind,
        query: &DocumentQuery,
    ) -> Result<DocumentPage, StoreError>;

    /// The documents that point at `id`, for "still in use by" messages.
    async fn referrers(&self, id: &str) -> Result<Vec<DocumentSummary>, StoreError>;

    async fn get_setting(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Stores `value` unless the setting exists; returns what is stored afterwards.
    async fn put_setting_if_absent(&self, name: &str, value: &str) -> Result<String, StoreError>;

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    async fn find_api_key_by_hash(
        &self,
        key_hash: &str,
    ) -> Result<Option<ApiKeyRecord>, StoreError>;
    async fn list_api_keys(&self, user_id: &str) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Revokes a key; `false` when the user has no such key.
    async fn delete_api_key(&self, user_id: &str, id: &str) -> Result<bool, StoreError>;

    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    async fn find_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;
    /// Ends every session of a user except `keep` (a token hash), as a password change does.
    async fn delete_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Stores a new task (normally `Queued`).
    async fn insert_task(&self, task: &TaskRecord) -> Result<(), StoreError>;

    async fn get_task(&self, id: &str) -> Result<Option<TaskRecord>, StoreError>;

    /// Tasks matching the query, newest first, and how many matched in all.
    async fn list_tasks(&self, query: &TaskQuery) -> Result<(i64, Vec<TaskRecord>), StoreError>;

    /// Claims the next task for `node`: the oldest queued task whose time has come, else a
    /// running task whose lease expired before `now` (a resume). Queued tasks past their
    /// expiry become `TimedOut` instead. `None` when there is nothing to do.
    async fn claim_task(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ClaimedTask>, StoreError>;

    /// Extends a lease; [`StoreError::LeaseLost`] when another claim superseded it.
    async fn renew_task_lease(
        &self,
        id: &str,
        lease: &Lease,
        lease_until: DateTime<Utc>,
    ) -> Result<TaskRecord, StoreError>;

    /// Saves a running task's state, progress and outcome under its lease. A task saved in a
    /// completed state is released.
    async fn save_task(&self, task: &TaskRecord, lease: &Lease) -> Result<(), StoreError>;
    /// Appends log lines and saves the task in one transaction (progress that says how far
    /// a copy of lines got must never disagree with the lines written); `LeaseLost` writes
    /// nothing.
    async fn save_task_with_log(
        &self,
        task: &TaskRecord,
        lease: &Lease,
        lines: &[TaskLogLine],
    ) -> Result<(), StoreError>;

    /// Asks a task to stop: a queued one is `Canceled` at once, a running one becomes
    /// `Cancelling` for its runner to act on; a completed one is left alone.
    async fn request_task_cancel(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<TaskRecord>, StoreError>;

    /// Appends log lines under a lease. Lines whose sequence is already stored are skipped,
    /// so appending again after a crash is harmless.
    async fn append_task_log(
        &self,
        id: &str,
        lease: &Lease,
        lines: &[TaskLogLine],
    ) -> Result<(), StoreError>;

    /// Log lines after `after_sequence`, at most `limit`, in order.
    async fn task_log(
        &self,
        id: &str,
        after_sequence: i64,
        limit: i64,
    ) -> Result<Vec<TaskLogLine>, StoreError>;

    /// Ends `node`'s leases now, so its running tasks can be claimed again at once (when the
    /// node shuts down or starts again). Returns how many tasks it released.
    async fn release_task_leases(&self, node: &str, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// The highest sequence in a task's log; 0 when it has none.
    async fn last_task_log_sequence(&self, id: &str) -> Result<i64, StoreError>;

    /// Which backend this is, for logs and the root document ("SQLite", "PostgreSQL").
    fn backend_name(&self) -> &'static str;

    /// A number that changes after every committed change to documents or credentials,
    /// made by this process or (PostgreSQL) by another node. Equal numbers mean an answer
    /// computed from the store is still current, so callers may cache on it.
    fn change_generation(&self) -> u64;
}
