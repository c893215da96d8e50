//! Task rows and the task log on PostgreSQL. Several nodes claim from one table: a claim picks
//! its row with `FOR UPDATE SKIP LOCKED` inside the `UPDATE … RETURNING`, so two nodes never
//! take the same task and neither waits for the other.

use chrono::{DateTime, Utc};
use cuttle_store::{ClaimedTask, Lease, StoreError, TaskLogLine, TaskQuery, TaskRecord, TaskState};
use sqlx::postgres::{PgPool, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Row};

use crate::database_error;

/// The columns with the table named, for statements that join another relation.
const TASK_COLUMNS_QUALIFIED: &str = "tasks.id, tasks.space_id, tasks.name, tasks.description, \
     tasks.state, tasks.arguments, tasks.project_id, tasks.environment_id, tasks.queue_time, \
     tasks.queue_time_expiry, tasks.start_time, tasks.completed_time, tasks.last_updated_time, \
     tasks.error_message, tasks.has_warnings_or_errors, tasks.has_pending_interruptions, \
     tasks.cancel_requested, tasks.claimed_by, tasks.lease_expires, tasks.lease_generation, \
     tasks.progress, tasks.concurrency_tag";
const TASK_COLUMNS: &str = "id, space_id, name, description, state, arguments, project_id, environment_id, \
     queue_time, queue_time_expiry, start_time, completed_time, last_updated_time, error_message, \
     has_warnings_or_errors, has_pending_interruptions, cancel_requested, claimed_by, lease_expires, \
     lease_generation, progress, concurrency_tag";

fn json_column(row: &PgRow, column: &str) -> Result<serde_json::Value, StoreError> {
    let Json(value): Json<serde_json::Value> = row.try_get(column).map_err(database_error)?;
    Ok(value)
}

fn task_from_row(row: &PgRow) -> Result<TaskRecord, StoreError> {
    let state_text: String = row.try_get("state").map_err(database_error)?;
    Ok(TaskRecord {
        id: row.try_get("id").map_err(database_error)?,
        space_id: row.try_get("space_id").map_err(database_error)?,
        name: row.try_get("name").map_err(database_error)?,
        description: row.try_get("description").map_err(database_error)?,
        state: TaskState::parse(&state_text).ok_or_else(|| {
            StoreError::Database(format!("unknown task state '{state_text}'").into())
        })?,
        arguments: json_column(row, "arguments")?,
        project_id: row.try_get("project_id").map_err(database_error)?,
        environment_id: row.try_get("environment_id").map_err(database_error)?,
        queue_time: row.try_get("queue_time").map_err(database_error)?,
        queue_time_expiry: row.try_get("queue_time_expiry").map_err(database_error)?,
        start_time: row.try_get("start_time").map_err(database_error)?,
        completed_time: row.try_get("completed_time").map_err(database_error)?,
        last_updated_time: row.try_get("last_updated_time").map_err(database_error)?,
        error_message: row.try_get("error_message").map_err(database_error)?,
        has_warnings_or_errors: row
            .try_get("has_warnings_or_errors")
            .map_err(database_error)?,
        has_pending_interruptions: row
            .try_get("has_pending_interruptions")
            .map_err(database_error)?,
        cancel_requested: row.try_get("cancel_requested").map_err(database_error)?,
        claimed_by: row.try_get("claimed_by").map_err(database_error)?,
        lease_expires: row.try_get("lease_expires").map_err(database_error)?,
        lease_generation: row.try_get("lease_generation").map_err(database_error)?,
        progress: json_column(row, "progress")?,
        concurrency_tag: row.try_get("concurrency_tag").map_err(database_error)?,
    })
}

pub(crate) async fn insert_task(writer: &PgPool, task: &TaskRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tasks (id, space_id, name, description, state, arguments, project_id,
             environment_id, queue_time, queue_time_expiry, start_time, completed_time,
             last_updated_time, error_message, has_warnings_or_errors, has_pending_interruptions,
             cancel_requested, claimed_by, lease_expires, lease_generation, progress,
             concurrency_tag)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
             $19, $20, $21, $22)",
    )
    .bind(&task.id)
    .bind(&task.space_id)
    .bind(&task.name)
    .bind(&task.description)
    .bind(task.state.as_str())
    .bind(Json(&task.arguments))
    .bind(&task.project_id)
    .bind(&task.environment_id)
    .bind(task.queue_time)
    .bind(task.queue_time_expiry)
    .bind(task.start_time)
    .bind(task.completed_time)
    .bind(task.last_updated_time)
    .bind(&task.error_message)
    .bind(task.has_warnings_or_errors)
    .bind(task.has_pending_interruptions)
    .bind(task.cancel_requested)
    .bind(&task.claimed_by)
    .bind(task.lease_expires)
    .bind(task.lease_generation)
    .bind(Json(&task.progress))
    .bind(&task.concurrency_tag)
    .execute(writer)
    .await
    .map_err(database_error)?;
    Ok(())
}

pub(crate) async fn get_task(pool: &PgPool, id: &str) -> Result<Option<TaskRecord>, StoreError> {
    let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(database_error)?;
    row.as_ref().map(task_from_row).transpose()
}

fn push_task_filter(
    builder: &mut QueryBuilder<'_, Postgres>,
    query: &TaskQuery,
) -> Result<(), StoreError> {
    builder.push(" WHERE 1 = 1");
    if let Some(space_id) = &query.space_id {
        builder.push(" AND space_id = ");
        builder.push_bind(space_id.clone());
    }
    if let Some(ids) = &query.ids {
        builder.push(" AND id = ANY(");
        builder.push_bind(ids.clone());
        builder.push(")");
    }
    if let Some(states) = &query.states {
        let names: Vec<String> = states
            .iter()
            .map(|state| state.as_str().to_owned())
            .collect();
        builder.push(" AND state = ANY(");
        builder.push_bind(names);
        builder.push(")");
    }
    if let Some(name) = &query.name {
        builder.push(" AND name = ");
        builder.push_bind(name.clone());
    }
    if let Some(project_id) = &query.project_id {
        builder.push(" AND project_id = ");
        builder.push_bind(project_id.clone());
    }
    if let Some(environment_id) = &query.environment_id {
        builder.push(" AND environment_id = ");
        builder.push_bind(environment_id.clone());
    }
    if let Some(completed_after) = &query.completed_after {
        builder.push(" AND completed_time > ");
        builder.push_bind(*completed_after);
    }
    Ok(())
}

pub(crate) async fn list_tasks(
    pool: &PgPool,
    query: &TaskQuery,
) -> Result<(i64, Vec<TaskRecord>), StoreError> {
    let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM tasks");
    push_task_filter(&mut count, query)?;
    let total: i64 = count
        .build_query_scalar()
        .fetch_one(pool)
        .await
        .map_err(database_error)?;
    let mut select = QueryBuilder::<Postgres>::new(format!("SELECT {TASK_COLUMNS} FROM tasks"));
    push_task_filter(&mut select, query)?;
    select.push(" ORDER BY queue_time DESC, id DESC LIMIT ");
    select.push_bind(query.take.max(0));
    select.push(" OFFSET ");
    select.push_bind(query.skip.max(0));
    let rows = select
        .build()
        .fetch_all(pool)
        .await
        .map_err(database_error)?;
    let tasks = rows
        .iter()
        .map(task_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((total, tasks))
}

/// The advisory lock claims take in turn (any constant unique to Cuttle).
const CLAIM_LOCK_KEY: i64 = 0x4375_7474_6c65;

pub(crate) async fn claim_task(
    writer: &PgPool,
    node: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<ClaimedTask>, StoreError> {
    let mut transaction = writer.begin().await.map_err(database_error)?;
    // Claims take turns across nodes: under READ COMMITTED two claims could otherwise both
    // see no running task with a concurrency tag and start two at once. A claim is a few
    // milliseconds, so the turn costs little.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CLAIM_LOCK_KEY)
        .execute(&mut *transaction)
        .await
        .map_err(database_error)?;
    sqlx::query(
        "UPDATE tasks SET state = 'TimedOut', completed_time = $1, last_updated_time = $1,
             error_message = 'The task was not started before its queue time expired.'
         WHERE state = 'Queued' AND queue_time_expiry IS NOT NULL AND queue_time_expiry < $1",
    )
    .bind(now)
    .execute(&mut *transaction)
    .await
    .map_err(database_error)?;
    let row = sqlx::query(&format!(
        "WITH candidate AS (
             SELECT id FROM tasks
             WHERE (state = 'Queued' AND queue_time <= $3
                    AND (concurrency_tag IS NULL OR NOT EXISTS (
                        SELECT 1 FROM tasks AS running
                        WHERE running.concurrency_tag = tasks.concurrency_tag
                          AND running.state IN ('Executing', 'Cancelling'))))
                OR (state IN ('Executing', 'Cancelling') AND (lease_expires IS NULL OR lease_expires < $3))
             ORDER BY queue_time, id
             LIMIT 1
             FOR UPDATE SKIP LOCKED)
         UPDATE tasks SET claimed_by = $1, lease_expires = $2,
             lease_generation = tasks.lease_generation + 1,
             state = CASE tasks.state WHEN 'Queued' THEN 'Executing' ELSE tasks.state END,
             start_time = COALESCE(tasks.start_time, $3), last_updated_time = $3
         FROM candidate WHERE tasks.id = candidate.id
         RETURNING {TASK_COLUMNS_QUALIFIED}"
    ))
    .bind(node)
    .bind(lease_until)
    .bind(now)
    .fetch_optional(&mut *transaction)
    .await
    .map_err(database_error)?;
    let Some(row) = row else {
        transaction.commit().await.map_err(database_error)?;
        return Ok(None);
    };
    let task = task_from_row(&row)?;
    transaction.commit().await.map_err(database_error)?;
    Ok(Some(ClaimedTask {
        lease: Lease {
            node: node.to_owned(),
            generation: task.lease_generation,
        },
        resumed: task.lease_generation > 1,
        task,
    }))
}

pub(crate) async fn renew_task_lease(
    writer: &PgPool,
    id: &str,
    lease: &Lease,
    lease_until: DateTime<Utc>,
) -> Result<TaskRecord, StoreError> {
    let row = sqlx::query(&format!(
        "UPDATE tasks SET lease_expires = $4
         WHERE id = $1 AND claimed_by = $2 AND lease_generation = $3
         RETURNING {TASK_COLUMNS}"
    ))
    .bind(id)
    .bind(&lease.node)
    .bind(lease.generation)
    .bind(lease_until)
    .fetch_optional(writer)
    .await
    .map_err(database_error)?;
    match row {
        Some(row) => task_from_row(&row),
        None => Err(StoreError::LeaseLost { id: id.to_owned() }),
    }
}

pub(crate) async fn save_task(
    writer: &PgPool,
    task: &TaskRecord,
    lease: &Lease,
) -> Result<(), StoreError> {
    let mut connection = writer.acquire().await.map_err(database_error)?;
    update_task(&mut connection, task, lease).await
}

/// Appends `lines` and saves `task` in one transaction, so progress that records how far a
/// copy of lines got never disagrees with the lines written (a crash between two writes
/// would copy them again after a restart).
pub(crate) async fn save_task_with_log(
    writer: &PgPool,
    task: &TaskRecord,
    lease: &Lease,
    lines: &[TaskLogLine],
) -> Result<(), StoreError> {
    let mut transaction = writer.begin().await.map_err(database_error)?;
    // The update checks the lease; without it the transaction is dropped, undoing the lines.
    update_task(&mut transaction, task, lease).await?;
    insert_log_lines(&mut transaction, &task.id, lines).await?;
    transaction.commit().await.map_err(database_error)
}

async fn update_task(
    connection: &mut sqlx::PgConnection,
    task: &TaskRecord,
    lease: &Lease,
) -> Result<(), StoreError> {
    let completed = task.state.is_completed();
    let result = sqlx::query(
        "UPDATE tasks SET
             state = CASE WHEN state = 'Cancelling' AND $4::text = 'Executing' THEN state ELSE $4::text END,
             description = $5, project_id = $6, environment_id = $7, start_time = $8,
             completed_time = $9, last_updated_time = $10, error_message = $11,
             has_warnings_or_errors = $12, has_pending_interruptions = $13, progress = $14,
             claimed_by = CASE WHEN $15::boolean THEN NULL ELSE claimed_by END,
             lease_expires = CASE WHEN $15::boolean THEN NULL ELSE lease_expires END
         WHERE id = $1 AND claimed_by = $2 AND lease_generation = $3",
    )
    .bind(&task.id)
    .bind(&lease.node)
    .bind(lease.generation)
    .bind(task.state.as_str())
    .bind(&task.description)
    .bind(&task.project_id)
    .bind(&task.environment_id)
    .bind(task.start_time)
    .bind(task.completed_time)
    .bind(task.last_updated_time)
    .bind(&task.error_message)
    .bind(task.has_warnings_or_errors)
    .bind(task.has_pending_interruptions)
    .bind(Json(&task.progress))
    .bind(completed)
    .execute(&mut *connection)
    .await
    .map_err(database_error)?;
    if result.rows_affected() == 0 {
        return Err(StoreError::LeaseLost {
            id: task.id.clone(),
        });
    }
    Ok(())
}

pub(crate) async fn request_task_cancel(
    writer: &PgPool,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<TaskRecord>, StoreError> {
    let row = sqlx::query(&format!(
        "UPDATE tasks SET
             state = CASE state WHEN 'Queued' THEN 'Canceled' WHEN 'Executing' THEN 'Cancelling' ELSE state END,
             completed_time = CASE state WHEN 'Queued' THEN $2 ELSE completed_time END,
             cancel_requested = CASE WHEN state IN ('Queued', 'Executing', 'Cancelling') THEN TRUE ELSE cancel_requested END,
             last_updated_time = $2
         WHERE id = $1
         RETURNING {TASK_COLUMNS}"
    ))
    .bind(id)
    .bind(now)
    .fetch_optional(writer)
    .await
    .map_err(database_error)?;
    row.as_ref().map(task_from_row).transpose()
}

/// Log lines written by one `INSERT` statement.
const LOG_ROWS_PER_STATEMENT: usize = 5_000;

pub(crate) async fn append_task_log(
    writer: &PgPool,
    id: &str,
    lease: &Lease,
    lines: &[TaskLogLine],
) -> Result<(), StoreError> {
    let mut transaction = writer.begin().await.map_err(database_error)?;
    let holds_lease: Option<i64> = sqlx::query_scalar(
        "SELECT 1::bigint FROM tasks WHERE id = $1 AND claimed_by = $2 AND lease_generation = $3
         FOR SHARE",
    )
    .bind(id)
    .bind(&lease.node)
    .bind(lease.generation)
    .fetch_optional(&mut *transaction)
    .await
    .map_err(database_error)?;
    if holds_lease.is_none() {
        return Err(StoreError::LeaseLost { id: id.to_owned() });
    }
    insert_log_lines(&mut transaction, id, lines).await?;
    transaction.commit().await.map_err(database_error)
}

async fn insert_log_lines(
    connection: &mut sqlx::PgConnection,
    id: &str,
    lines: &[TaskLogLine],
) -> Result<(), StoreError> {
    // One statement per batch, with the columns as arrays: a chatty script sends thousands
    // of lines per flush, and a round trip per line would cap the log's rate.
    for chunk in lines.chunks(LOG_ROWS_PER_STATEMENT) {
        let sequences: Vec<i64> = chunk.iter().map(|line| line.sequence).collect();
        let times: Vec<DateTime<Utc>> = chunk.iter().map(|line| line.occurred_at).collect();
        let categories: Vec<&str> = chunk.iter().map(|line| line.category.as_str()).collect();
        let activities: Vec<&str> = chunk.iter().map(|line| line.activity_id.as_str()).collect();
        let messages: Vec<&str> = chunk.iter().map(|line| line.message.as_str()).collect();
        sqlx::query(
            "INSERT INTO task_log (task_id, sequence, occurred_at, category, activity_id, message)
             SELECT $1, * FROM UNNEST($2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[])
             ON CONFLICT (task_id, sequence) DO NOTHING",
        )
        .bind(id)
        .bind(&sequences)
        .bind(&times)
        .bind(&categories)
        .bind(&activities)
        .bind(&messages)
        .execute(&mut *connection)
        .await
        .map_err(database_error)?;
    }
    Ok(())
}

pub(crate) async fn task_log(
    pool: &PgPool,
    id: &str,
    after_sequence: i64,
    limit: i64,
) -> Result<Vec<TaskLogLine>, StoreError> {
    let rows = sqlx::query(
        "SELECT sequence, occurred_at, category, activity_id, message FROM task_log
         WHERE task_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
    )
    .bind(id)
    .bind(after_sequence)
    .bind(limit.max(0))
    .fetch_all(pool)
    .await
    .map_err(database_error)?;
    rows.iter()
        .map(|row| {
            Ok(TaskLogLine {
                sequence: row.try_get("sequence").map_err(database_error)?,
                occurred_at: row.try_get("occurred_at").map_err(database_error)?,
                category: row.try_get("category").map_err(database_error)?,
                activity_id: row.try_get("activity_id").map_err(database_error)?,
                message: row.try_get("message").map_err(database_error)?,
            })
        })
        .collect()
}
