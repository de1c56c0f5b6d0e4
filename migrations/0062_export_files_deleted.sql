-- 0062: an export job's file may be deleted (on request, or once past the
-- retention: server/datasets/ds_retention.c); the row stays, with status
-- 'deleted', so what was exported, its size and its digest stay known.
ALTER TABLE export_jobs DROP CONSTRAINT IF EXISTS export_jobs_status_check;
ALTER TABLE export_jobs ADD CONSTRAINT export_jobs_status_check
    CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled', 'deleted'));
