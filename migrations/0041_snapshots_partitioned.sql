-- 0041: snapshots partitioned by month of received_at, so retention drops
-- whole partitions instead of deleting millions of rows.
--
-- A unique constraint on a partitioned table must contain the partition key,
-- so (device_id, seq) can no longer be unique on snapshots itself: the small
-- table snapshot_seqs carries that promise (one row per accepted upload, the
-- id and SHA-256 of the stored envelope) and ingest inserts there first in
-- the same transaction.  The primary key becomes (id, received_at); ids keep
-- coming from the same sequence, so every id handed out so far stays valid.
--
-- The new table is created LIKE the old one, so columns other migrations
-- added to snapshots come along; their non-unique indexes are recreated
-- from their definitions.  Nothing may hold a foreign key to snapshots(id)
-- (the DROP below fails loudly if something does).

ALTER TABLE snapshots RENAME TO snapshots_v1;
ALTER SEQUENCE snapshots_id_seq OWNED BY NONE;

CREATE TABLE snapshots (LIKE snapshots_v1 INCLUDING DEFAULTS INCLUDING CONSTRAINTS
                        INCLUDING STORAGE INCLUDING GENERATED INCLUDING COMMENTS)
    PARTITION BY RANGE (received_at);
ALTER TABLE snapshots ALTER COLUMN id SET DEFAULT nextval('snapshots_id_seq');
ALTER TABLE snapshots ADD PRIMARY KEY (id, received_at);
ALTER TABLE snapshots ADD FOREIGN KEY (device_id) REFERENCES devices (id);

-- Anything outside the monthly partitions (clock skew, a maintenance thread
-- that has not run yet) lands here instead of failing the upload.
CREATE TABLE snapshots_default PARTITION OF snapshots DEFAULT;

-- Months from the oldest stored row (or this one) to three months ahead;
-- the server's maintenance thread keeps creating them ahead of time.
DO $$
DECLARE
    m date := date_trunc('month', LEAST(now(), COALESCE((SELECT min(received_at) FROM snapshots_v1), now())))::date;
    last date := (date_trunc('month', now()) + interval '3 months')::date;
BEGIN
    WHILE m <= last LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF snapshots FOR VALUES FROM (%L) TO (%L)',
                       'snapshots_' || to_char(m, 'YYYYMM'), m, (m + interval '1 month')::date);
        m := (m + interval '1 month')::date;
    END LOOP;
END $$;

CREATE TABLE snapshot_seqs (
    device_id       text NOT NULL,
    seq             bigint NOT NULL CHECK (seq >= 1),
    snapshot_id     bigint NOT NULL,            -- snapshots(id), no FK (partitioned)
    sha256          bytea NOT NULL CHECK (octet_length(sha256) = 32),
    PRIMARY KEY (device_id, seq)
);

INSERT INTO snapshots SELECT * FROM snapshots_v1;
INSERT INTO snapshot_seqs (device_id, seq, snapshot_id, sha256)
    SELECT device_id, seq, id, sha256 FROM snapshots_v1;

-- Recreate every non-unique index of the old table (0001's queue and device
-- views, and whatever later migrations added), under the same names.
DO $$
DECLARE
    ix record;
    def text;
BEGIN
    FOR ix IN SELECT i.indexrelid, c.relname
              FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = 'snapshots_v1'::regclass AND NOT i.indisunique
    LOOP
        def := pg_get_indexdef(ix.indexrelid);
        EXECUTE format('ALTER INDEX %I RENAME TO %I', ix.relname, ix.relname || '_v1');
        def := regexp_replace(def, ' ON (ONLY )?(public\.)?snapshots_v1 ', ' ON snapshots ');
        EXECUTE def;
    END LOOP;
END $$;

DROP TABLE snapshots_v1;

-- The device view reads a device's newest snapshots; received_at lets the
-- planner prune partitions for "recent" queries.
CREATE INDEX IF NOT EXISTS snapshots_id ON snapshots (id);
CREATE INDEX IF NOT EXISTS snapshots_device_received ON snapshots (device_id, received_at DESC);
