-- Server tasks (deployments, runbook runs, health checks) and their logs.
-- A task is claimed by a node with a lease; the generation moves on every claim, so a node
-- whose lease was taken over can no longer write (fencing).

CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    space_id TEXT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    state TEXT NOT NULL,
    arguments JSONB NOT NULL,
    project_id TEXT NULL,
    environment_id TEXT NULL,
    queue_time TIMESTAMPTZ NOT NULL,
    queue_time_expiry TIMESTAMPTZ NULL,
    start_time TIMESTAMPTZ NULL,
    completed_time TIMESTAMPTZ NULL,
    last_updated_time TIMESTAMPTZ NOT NULL,
    error_message TEXT NULL,
    has_warnings_or_errors BOOLEAN NOT NULL DEFAULT FALSE,
    has_pending_interruptions BOOLEAN NOT NULL DEFAULT FALSE,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    claimed_by TEXT NULL,
    lease_expires TIMESTAMPTZ NULL,
    lease_generation BIGINT NOT NULL DEFAULT 0,
    progress JSONB NOT NULL
);

CREATE INDEX tasks_queue ON tasks (state, queue_time);
CREATE INDEX tasks_space ON tasks (space_id, queue_time);

CREATE TABLE task_log (
    task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    sequence BIGINT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    category TEXT NOT NULL,
    activity_id TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (task_id, sequence)
);
