-- 0042: partition upkeep and retention for snapshots, as one function the
-- server's maintenance thread calls (any server may; an advisory lock keeps
-- two from doing it at once).  Creates the monthly partitions up to three
-- months ahead; with retention_days > 0 drops every monthly partition whose
-- whole range is older than the retention and deletes the older rows left in
-- the partition the cut falls into (and the default partition).  Their
-- snapshot_seqs rows are kept: they are small, and keeping them means a replay
-- of a deleted snapshot still answers 200 instead of being stored again.
-- Returns the number of partitions dropped.

CREATE FUNCTION snapshots_maintain(retention_days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', now())::date;
    cut timestamptz := now() - make_interval(days => retention_days);
    p record;
    dropped integer := 0;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7340041) THEN
        RETURN 0;
    END IF;
    FOR i IN 0..3 LOOP
        IF to_regclass('snapshots_' || to_char(m, 'YYYYMM')) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF snapshots FOR VALUES FROM (%L) TO (%L)',
                           'snapshots_' || to_char(m, 'YYYYMM'), m, (m + interval '1 month')::date);
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    IF retention_days IS NULL OR retention_days <= 0 THEN
        RETURN 0;
    END IF;
    FOR p IN SELECT c.relname
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'snapshots'::regclass
               AND c.relname ~ '^snapshots_[0-9]{6}$'
               AND (to_date(substr(c.relname, 11), 'YYYYMM') + interval '1 month') <= cut
    LOOP
        EXECUTE format('DROP TABLE %I', p.relname);
        dropped := dropped + 1;
    END LOOP;
    DELETE FROM snapshots WHERE received_at < cut;
    RETURN dropped;
END $$;
