//! The PostgreSQL store, for production and for several server nodes on one database.
//!
//! Same documents, same rules as the SQLite store (the conformance suite pins both); the SQL
//! differs only where the dialects do (`$n` parameters, `ANY($n)`, `strpos`, JSONB bodies).
//! Migrations in `migrations/` are embedded and applied at connect time; sqlx takes an advisory
//! lock so that nodes starting together migrate once.

mod tasks;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cuttle_store::{
    ApiKeyRecord, Change, ChangeCounter, ClaimedTask, Document, DocumentPage, DocumentQuery,
    DocumentSummary, Lease, ResourceKind, SessionRecord, Store, StoreError, TaskLogLine, TaskQuery,
    TaskRecord,
};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Row, Transaction};

const DOCUMENT_COLUMNS: &str = "id, kind, space_id, owner_id, name, sort_order, body, version";

pub struct PostgresStore {
    pool: PgPool,
    changes: Arc<ChangeCounter>,
    listener: tokio::task::JoinHandle<()>,
}

/// The channel nodes announce committed changes on, so each node's caches learn of the others'.
const CHANGES_CHANNEL: &str = "cuttle_changes";

impl PostgresStore {
    /// Connects to `database_url` (`postgres://…`) and migrates the database.
    pub async fn connect(database_url: &str) -> Result<PostgresStore, StoreError> {
        let options: PgConnectOptions = database_url.parse().map_err(StoreError::database)?;
        PostgresStore::connect_with(options).await
    }

    /// Connects with explicit options (tests use them to pick a schema) and migrates.
    pub async fn connect_with(options: PgConnectOptions) -> Result<PostgresStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(StoreError::database)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(StoreError::database)?;
        let changes = Arc::new(ChangeCounter::default());
        let mut listener = PgListener::connect_with(&pool)
            .await
            .map_err(StoreError::database)?;
        listener
            .listen(CHANGES_CHANNEL)
            .await
            .map_err(StoreError::database)?;
        let listener = tokio::spawn(listen_for_changes(listener, Arc::clone(&changes)));
        Ok(PostgresStore {
            pool,
            changes,
            listener,
        })
    }

    /// Stops listening and closes the pool.
    pub async fn close(&self) {
        self.listener.abort();
        self.pool.close().await;
    }

    /// Records a committed change here and tells the other nodes.
    async fn changed(&self) {
        self.changes.bump();
        if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANGES_CHANNEL)
            .execute(&self.pool)
            .await
        {
            // Other nodes may serve a cached answer until their next change; say so.
            tracing::warn!("failed to announce a change to other nodes: {error}");
        }
    }
}

/// Bumps the change generation on every announcement, and after a lost connection, when
/// announcements may have been missed.
async fn listen_for_changes(mut listener: PgListener, changes: Arc<ChangeCounter>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(_notification)) => changes.bump(),
            Ok(None) => {
                tracing::warn!("lost the change-notification connection; reconnecting");
                changes.bump();
            }
            Err(error) => {
                tracing::warn!("failed to receive change notifications: {error}");
                changes.bump();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Appends the WHERE clause of a list query: only the filters that are set, so the
/// database can use its indexes (a `? IS NULL OR …` form would defeat them).
fn push_list_filter(
    builder: &mut QueryBuilder<'_, Postgres>,
    kind: ResourceKind,
    query: &DocumentQuery,
) -> Result<(), StoreError> {
    builder.push(" WHERE kind = ");
    builder.push_bind(kind.storage_name());
    if let Some(space_id) = &query.space_id {
        builder.push(" AND space_id = ");
        builder.push_bind(space_id.clone());
    }
    if let Some(owner_id) = &query.owner_id {
        builder.push(" AND owner_id = ");
        builder.push_bind(owner_id.clone());
    }
    if let Some(ids) = &query.ids {
        builder.push(" AND id = ANY(");
        builder.push_bind(ids.clone());
        builder.push(")");
    }
    if let Some(partial_name_key) = query.partial_name_key() {
        builder.push(" AND strpos(name_key, ");
        builder.push_bind(partial_name_key);
        builder.push(") > 0");
    }
    if let Some(name_key) = query.name_key() {
        builder.push(" AND name_key = ");
        builder.push_bind(name_key);
    }
    if let Some(referencing) = &query.referencing {
        builder.push(
            " AND EXISTS (SELECT 1 FROM document_references r WHERE r.from_id = documents.id AND r.to_id = ",
        );
        builder.push_bind(referencing.clone());
        builder.push(")");
    }
    Ok(())
}

pub(crate) fn database_error(error: sqlx::Error) -> StoreError {
    StoreError::database(error)
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database_error) if database_error.is_unique_violation())
}

fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database_error) if database_error.is_foreign_key_violation())
}

fn document_from_row(row: &PgRow) -> Result<Document, StoreError> {
    let id: String = row.try_get("id").map_err(database_error)?;
    let kind_name: String = row.try_get("kind").map_err(database_error)?;
    let kind = ResourceKind::from_storage_name(&kind_name).ok_or_else(|| StoreError::Corrupt {
        kind: ResourceKind::Space,
        id: id.clone(),
        message: format!("unknown kind '{kind_name}'"),
    })?;
    let Json(body): Json<serde_json::Value> = row.try_get("body").map_err(database_error)?;
    Ok(Document {
        id,
        kind,
        space_id: row.try_get("space_id").map_err(database_error)?,
        owner_id: row.try_get("owner_id").map_err(database_error)?,
        name: row.try_get("name").map_err(database_error)?,
        sort_order: row.try_get("sort_order").map_err(database_error)?,
        references: Vec::new(),
        body,
        version: row.try_get("version").map_err(database_error)?,
    })
}

/// Fills each document's references from the reference table.
async fn load_references(pool: &PgPool, documents: &mut [Document]) -> Result<(), StoreError> {
    if documents.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = documents
        .iter()
        .map(|document| document.id.clone())
        .collect();
    let rows = sqlx::query(
        "SELECT from_id, to_id FROM document_references
         WHERE from_id = ANY($1) ORDER BY from_id, to_id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
    .map_err(database_error)?;
    for row in rows {
        let from_id: String = row.try_get("from_id").map_err(database_error)?;
        let to_id: String = row.try_get("to_id").map_err(database_error)?;
        if let Some(document) = documents.iter_mut().find(|document| document.id == from_id) {
            document.references.push(to_id);
        }
    }
    Ok(())
}

async fn insert_references(
    transaction: &mut Transaction<'_, Postgres>,
    document: &Document,
) -> Result<(), StoreError> {
    for to_id in &document.references {
        sqlx::query("INSERT INTO document_references (from_id, to_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&document.id)
            .bind(to_id)
            .execute(&mut **transaction)
            .await
            .map_err(|error| map_write_error(error, document))?;
    }
    Ok(())
}

/// Maps a failed insert or update of `document` to the store's meaning of it.
fn map_write_error(error: sqlx::Error, document: &Document) -> StoreError {
    if is_unique_violation(&error) {
        StoreError::NameTaken {
            kind: document.kind,
            name: document.name.clone(),
        }
    } else if is_foreign_key_violation(&error) {
        StoreError::BrokenReference {
            kind: document.kind,
            id: document.id.clone(),
        }
    } else {
        database_error(error)
    }
}

/// Replaces a document (and its references); with `expected_version`, only if the stored
/// version is still that one.
async fn update_document(
    transaction: &mut Transaction<'_, Postgres>,
    document: &Document,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let result = sqlx::query(
        "UPDATE documents SET space_id = $3, owner_id = $4, unique_scope = $5, name = $6,
             name_key = $7, sort_order = $8, body = $9, updated_at = $10, version = version + 1
         WHERE id = $1 AND kind = $2 AND ($11::bigint IS NULL OR version = $11::bigint)",
    )
    .bind(&document.id)
    .bind(document.kind.storage_name())
    .bind(&document.space_id)
    .bind(&document.owner_id)
    .bind(document.unique_scope())
    .bind(&document.name)
    .bind(document.name_key())
    .bind(document.sort_order)
    .bind(Json(&document.body))
    .bind(now)
    .bind(expected_version)
    .execute(&mut **transaction)
    .await
    .map_err(|error| map_write_error(error, document))?;
    if result.rows_affected() == 0 {
        let actual: Option<i64> =
            sqlx::query_scalar("SELECT version FROM documents WHERE id = $1 AND kind = $2")
                .bind(&document.id)
                .bind(document.kind.storage_name())
                .fetch_optional(&mut **transaction)
                .await
                .map_err(database_error)?;
        return Err(match (actual, expected_version) {
            (Some(actual), Some(expected)) => StoreError::VersionConflict {
                kind: document.kind,
                id: document.id.clone(),
                expected,
                actual,
            },
            _ => StoreError::NotFound {
                kind: document.kind,
                id: document.id.clone(),
            },
        });
    }
    sqlx::query("DELETE FROM document_references WHERE from_id = $1")
        .bind(&document.id)
        .execute(&mut **transaction)
        .await
        .map_err(database_error)?;
    insert_references(transaction, document).await
}

async fn apply_change(
    transaction: &mut Transaction<'_, Postgres>,
    change: &Change,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match change {
        Change::Insert(document) => {
            sqlx::query(
                "INSERT INTO documents (id, kind, space_id, owner_id, unique_scope, name, name_key,
                     sort_order, body, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            )
            .bind(&document.id)
            .bind(document.kind.storage_name())
            .bind(&document.space_id)
            .bind(&document.owner_id)
            .bind(document.unique_scope())
            .bind(&document.name)
            .bind(document.name_key())
            .bind(document.sort_order)
            .bind(Json(&document.body))
            .bind(now)
            .execute(&mut **transaction)
            .await
            .map_err(|error| map_write_error(error, document))?;
            insert_references(transaction, document).await
        }
        Change::Update(document) => update_document(transaction, document, None, now).await,
        Change::UpdateIfVersion {
            document,
            expected_version,
        } => update_document(transaction, document, Some(*expected_version), now).await,
        Change::DeleteSpace { id } => {
            // References inside the space go first so no check sees a half-deleted space.
            for statement in [
                "DELETE FROM document_references
                 WHERE from_id IN (SELECT id FROM documents WHERE space_id = $1)",
                "DELETE FROM documents WHERE space_id = $1 AND owner_id IS NOT NULL",
                "DELETE FROM documents WHERE space_id = $1",
            ] {
                sqlx::query(statement)
                    .bind(id)
                    .execute(&mut **transaction)
                    .await
                    .map_err(|error| {
                        if is_foreign_key_violation(&error) {
                            StoreError::InUse {
                                kind: ResourceKind::Space,
                                id: id.clone(),
                                used_by: Vec::new(),
                            }
                        } else {
                            database_error(error)
                        }
                    })?;
            }
            let result = sqlx::query("DELETE FROM documents WHERE id = $1 AND kind = $2")
                .bind(id)
                .bind(ResourceKind::Space.storage_name())
                .execute(&mut **transaction)
                .await
                .map_err(database_error)?;
            if result.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    kind: ResourceKind::Space,
                    id: id.clone(),
                });
            }
            Ok(())
        }
        Change::Delete { kind, id } => {
            // Owned documents go first, explicitly: PostgreSQL may check a reference to the
            // owner before a cascade has removed the owned document that holds it.
            let owned_references_deleted = sqlx::query(
                "DELETE FROM document_references
                 WHERE from_id IN (SELECT id FROM documents WHERE owner_id = $1)",
            )
            .bind(id)
            .execute(&mut **transaction)
            .await;
            let owned_deleted = match owned_references_deleted {
                Ok(_) => {
                    sqlx::query("DELETE FROM documents WHERE owner_id = $1")
                        .bind(id)
                        .execute(&mut **transaction)
                        .await
                }
                Err(error) => Err(error),
            };
            let result = match owned_deleted {
                Ok(_) => {
                    sqlx::query("DELETE FROM documents WHERE id = $1 AND kind = $2")
                        .bind(id)
                        .bind(kind.storage_name())
                        .execute(&mut **transaction)
                        .await
                }
                Err(error) => Err(error),
            };
            match result {
                Ok(result) if result.rows_affected() == 0 => Err(StoreError::NotFound {
                    kind: *kind,
                    id: id.clone(),
                }),
                Ok(_) => Ok(()),
                Err(error) if is_foreign_key_violation(&error) => Err(StoreError::InUse {
                    kind: *kind,
                    id: id.clone(),
                    // Filled in by `write` once the transaction is rolled back.
                    used_by: Vec::new(),
                }),
                Err(error) => Err(database_error(error)),
            }
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn allocate_id(&self, kind: ResourceKind) -> Result<String, StoreError> {
        let number: i64 = sqlx::query_scalar(
            "INSERT INTO id_sequences (kind, last_value) VALUES ($1, 1)
             ON CONFLICT (kind) DO UPDATE SET last_value = id_sequences.last_value + 1
             RETURNING last_value",
        )
        .bind(kind.storage_name())
        .fetch_one(&self.pool)
        .await
        .map_err(database_error)?;
        Ok(kind.format_id(number))
    }

    async fn write(&self, changes: &[Change]) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut transaction = self.pool.begin().await.map_err(database_error)?;
        for change in changes {
            if let Err(error) = apply_change(&mut transaction, change, now).await {
                transaction.rollback().await.map_err(database_error)?;
                return Err(match error {
                    StoreError::InUse { kind, id, .. } => {
                        let used_by = self.referrers(&id).await?;
                        StoreError::InUse { kind, id, used_by }
                    }
                    other => other,
                });
            }
        }
        transaction.commit().await.map_err(database_error)?;
        self.changed().await;
        Ok(())
    }

    async fn get_document(
        &self,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<Document>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE id = $1 AND kind = $2"
        ))
        .bind(id)
        .bind(kind.storage_name())
        .fetch_optional(&self.pool)
        .await
        .map_err(database_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut documents = [document_from_row(&row)?];
        load_references(&self.pool, &mut documents).await?;
        let [document] = documents;
        Ok(Some(document))
    }

    async fn list_documents(
        &self,
        kind: ResourceKind,
        query: &DocumentQuery,
    ) -> Result<DocumentPage, StoreError> {
        let (skip, take) = query.bounded_skip_take();
        // The total and the page are two queries on purpose: a window count (`COUNT(*) OVER ()`)
        // would make the database visit every matching row before the LIMIT, while these two
        // walk the listing index.
        let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM documents");
        push_list_filter(&mut count, kind, query)?;
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(database_error)?;
        let mut select =
            QueryBuilder::<Postgres>::new(format!("SELECT {DOCUMENT_COLUMNS} FROM documents"));
        push_list_filter(&mut select, kind, query)?;
        select.push(" ORDER BY sort_order, name_key COLLATE \"C\", id COLLATE \"C\" LIMIT ");
        select.push_bind(take);
        select.push(" OFFSET ");
        select.push_bind(skip);
        let rows = select
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(database_error)?;
        // Listings leave `references` empty: callers read the bodies, and one query less
        // matters on the hottest read path.
        let documents = rows
            .iter()
            .map(document_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DocumentPage { total, documents })
    }

    async fn referrers(&self, id: &str) -> Result<Vec<DocumentSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, id, name FROM documents
             WHERE id IN (SELECT from_id FROM document_references
                          WHERE to_id = $1
                             OR to_id IN (SELECT id FROM documents WHERE owner_id = $1))
               AND (owner_id IS NULL OR owner_id <> $1)
             UNION
             SELECT kind, id, name FROM documents WHERE space_id = $1
             ORDER BY 1, 3
             LIMIT 100",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(database_error)?;
        rows.iter()
            .map(|row| {
                let kind_name: String = row.try_get("kind").map_err(database_error)?;
                Ok(DocumentSummary {
                    kind: ResourceKind::from_storage_name(&kind_name)
                        .unwrap_or(ResourceKind::Space),
                    id: row.try_get("id").map_err(database_error)?,
                    name: row.try_get("name").map_err(database_error)?,
                })
            })
            .collect()
    }

    async fn get_setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(database_error)
    }

    async fn put_setting_if_absent(&self, name: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(database_error)?;
        sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(database_error)
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, purpose, key_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.id)
        .bind(&key.user_id)
        .bind(&key.purpose)
        .bind(&key.key_hash)
        .bind(key.created)
        .bind(key.expires)
        .execute(&self.pool)
        .await
        .map_err(database_error)?;
        self.changed().await;
        Ok(())
    }

    async fn find_api_key_by_hash(
        &self,
        key_hash: &str,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, user_id, purpose, key_hash, created_at, expires_at FROM api_keys
             WHERE key_hash = $1",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(database_error)?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    async fn list_api_keys(&self, user_id: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, user_id, purpose, key_hash, created_at, expires_at FROM api_keys
             WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(database_error)?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn delete_api_key(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(database_error)?;
        self.changed().await;
        Ok(result.rows_affected() > 0)
    }

    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.token_hash)
        .bind(&session.user_id)
        .bind(&session.csrf_token)
        .bind(session.created)
        .bind(session.expires)
        .execute(&self.pool)
        .await
        .map_err(database_error)?;
        self.changed().await;
        Ok(())
    }

    async fn find_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT token_hash, user_id, csrf_token, created_at, expires_at FROM sessions
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(database_error)?;
        row.map(|row| {
            Ok(SessionRecord {
                token_hash: row.try_get("token_hash").map_err(database_error)?,
                user_id: row.try_get("user_id").map_err(database_error)?,
                csrf_token: row.try_get("csrf_token").map_err(database_error)?,
                created: row.try_get("created_at").map_err(database_error)?,
                expires: row.try_get("expires_at").map_err(database_error)?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(database_error)?;
        self.changed().await;
        Ok(())
    }

    async fn delete_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
            .bind(user_id)
            .bind(keep.unwrap_or_default())
            .execute(&self.pool)
            .await
            .map_err(database_error)?;
        self.changed().await;
        Ok(())
    }

    async fn insert_task(&self, task: &TaskRecord) -> Result<(), StoreError> {
        tasks::insert_task(&self.pool, task).await
    }

    async fn get_task(&self, id: &str) -> Result<Option<TaskRecord>, StoreError> {
        tasks::get_task(&self.pool, id).await
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<(i64, Vec<TaskRecord>), StoreError> {
        tasks::list_tasks(&self.pool, query).await
    }

    async fn claim_task(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ClaimedTask>, StoreError> {
        tasks::claim_task(&self.pool, node, now, lease_until).await
    }

    async fn renew_task_lease(
        &self,
        id: &str,
        lease: &Lease,
        lease_until: DateTime<Utc>,
    ) -> Result<TaskRecord, StoreError> {
        tasks::renew_task_lease(&self.pool, id, lease, lease_until).await
    }

    async fn save_task(&self, task: &TaskRecord, lease: &Lease) -> Result<(), StoreError> {
        tasks::save_task(&self.pool, task, lease).await
    }

    async fn save_task_with_log(
        &self,
        task: &TaskRecord,
        lease: &Lease,
        lines: &[TaskLogLine],
    ) -> Result<(), StoreError> {
        tasks::save_task_with_log(&self.pool, task, lease, lines).await
    }

    async fn request_task_cancel(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<TaskRecord>, StoreError> {
        tasks::request_task_cancel(&self.pool, id, now).await
    }

    async fn append_task_log(
        &self,
        id: &str,
        lease: &Lease,
        lines: &[TaskLogLine],
    ) -> Result<(), StoreError> {
        tasks::append_task_log(&self.pool, id, lease, lines).await
    }

    async fn task_log(
        &self,
        id: &str,
        after_sequence: i64,
        limit: i64,
    ) -> Result<Vec<TaskLogLine>, StoreError> {
        tasks::task_log(&self.pool, id, after_sequence, limit).await
    }

    async fn release_task_leases(&self, node: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "UPDATE tasks SET lease_expires = $2
             WHERE claimed_by = $1 AND state IN ('Executing', 'Cancelling')",
        )
        .bind(node)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(database_error)?;
        Ok(result.rows_affected())
    }

    async fn last_task_log_sequence(&self, id: &str) -> Result<i64, StoreError> {
        let last: Option<i64> =
            sqlx::query_scalar("SELECT MAX(sequence) FROM task_log WHERE task_id = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await
                .map_err(database_error)?;
        Ok(last.unwrap_or(0))
    }

    fn change_generation(&self) -> u64 {
        self.changes.current()
    }

    fn backend_name(&self) -> &'static str {
        "PostgreSQL"
    }
}

fn api_key_from_row(row: &PgRow) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: row.try_get("id").map_err(database_error)?,
        user_id: row.try_get("user_id").map_err(database_error)?,
        purpose: row.try_get("purpose").map_err(database_error)?,
        key_hash: row.try_get("key_hash").map_err(database_error)?,
        created: row.try_get("created_at").map_err(database_error)?,
        expires: row.try_get("expires_at").map_err(database_error)?,
    })
}
