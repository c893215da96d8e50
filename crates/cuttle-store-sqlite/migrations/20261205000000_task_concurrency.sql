-- Deployments of one project to one environment run one at a time: a queued task waits while
-- another task with the same concurrency tag is running.
ALTER TABLE tasks ADD COLUMN concurrency_tag TEXT NULL;
CREATE INDEX tasks_concurrency ON tasks (concurrency_tag, state);
