-- The automatic-promotion loop asks every second for deployments completed since its last look.
CREATE INDEX tasks_completed_time ON tasks (completed_time);
