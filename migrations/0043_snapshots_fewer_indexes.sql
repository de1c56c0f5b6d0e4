-- 0043: two fewer indexes to maintain per stored snapshot (the ingest hot
-- path writes every index of snapshots on every row).  snapshots_id (id)
-- duplicates the leading column of the primary key (id, received_at), which
-- serves lookups and ORDER BY id on its own; snapshots_device_received
-- (device_id, received_at) is read by no query: the device views order by
-- trigger_time and use snapshots_device_time.  Kept: the primary key, the
-- labeling queue (snapshots_queue), the device views (snapshots_device_time)
-- and the time scans (snapshots_trigger_time).

DROP INDEX IF EXISTS snapshots_id;
DROP INDEX IF EXISTS snapshots_device_received;
