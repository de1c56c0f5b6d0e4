-- 0055: the demo history (`precursor-server demo-history`, run by `make run`)
-- is marked as such on its devices and snapshots, so the queue, the default
-- snapshot listing and the operational metrics can leave it out unless asked
-- (`demo=include|only`): a newcomer sees the live fleet first.  The snapshot
-- carries its own mark so that those scans need no join.
ALTER TABLE devices ADD COLUMN demo boolean NOT NULL DEFAULT false;
ALTER TABLE snapshots ADD COLUMN demo boolean NOT NULL DEFAULT false;

-- What demo-history wrote before this migration: devices "demo-*" tagged demo.
UPDATE devices SET demo = true WHERE id LIKE 'demo-%' AND tags @> '{demo}';
UPDATE snapshots s SET demo = true FROM devices d WHERE d.id = s.device_id AND d.demo;

-- Labels the demo history inserted directly left labeled_at unset, so the
-- queue called labeled snapshots "to do" while the rules page counted them
-- as labeled: a snapshot with a label is labeled, whoever wrote it.
UPDATE snapshots s SET labeled_at = l.first
  FROM (SELECT snapshot_id, min(created_at) AS first FROM labels GROUP BY 1) l
 WHERE l.snapshot_id = s.id AND s.labeled_at IS NULL;
