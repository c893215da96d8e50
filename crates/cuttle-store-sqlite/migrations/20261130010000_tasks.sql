-- Server tasks (deployments, runbook runs, health checks) and their logs.
-- A task is claimed by a node with a lease; the generation moves on every claim, so a node
-- whose lease was taken over can no longer write (fencing).

CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    space_id TEXT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    state TEXT NOT NULL,
    arguments TEXT NOT NULL,
    project_id TEXT NULL,
    environment_id TEXT NULL,
    queue_time TEXT NOT NULL,
    queue_time_expiry TEXT NULL,
    start_time TEXT NULL,
    completed_time TEXT NULL,
    last_updated_time TEXT NOT NULL,
    error_message TEXT NULL,
    has_warnings_or_errors BOOLEAN NOT NULL DEFAULT 0,
    has_pending_interruptions BOOLEAN NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT 0,
    claimed_by TEXT NULL,
    lease_expires TEXT NULL,
    lease_generation INTEGER NOT NULL DEFAULT 0,
    progress TEXT NOT NULL
);

CREATE INDEX tasks_queue ON tasks (state, queue_time);
CREATE INDEX tasks_space ON tasks (space_id, queue_time);

CREATE TABLE task_log (
    task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    sequence INTEGER NOT NULL,
    occurred_at TEXT NOT NULL,
    category TEXT NOT NULL,
    activity_id TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (task_id, sequence)
);
