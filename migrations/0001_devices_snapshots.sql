-- 0001: devices, the snapshots they upload, and their latest heartbeat.
-- The envelope is stored exactly as received (it is what the signature
-- covers); the metadata columns are copies for querying.  Columns for the
-- fleet issue (status, equipment type, site, tags) and the labeling queue
-- (labeled_at) exist from the start so later migrations only add.

CREATE TABLE devices (
    id              text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._-]{1,64}$'),
    public_key      bytea NOT NULL CHECK (octet_length(public_key) = 32),
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('pending', 'active', 'revoked')),
    equipment_type  text,
    site            text,
    tags            text[] NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz,
    last_seq        bigint NOT NULL DEFAULT 0
);

CREATE INDEX devices_equipment_site ON devices (equipment_type, site);

CREATE TABLE snapshots (
    id              bigserial PRIMARY KEY,
    device_id       text NOT NULL REFERENCES devices (id),
    seq             bigint NOT NULL CHECK (seq >= 1),
    trigger_time    timestamptz NOT NULL,
    sample_rate     double precision NOT NULL CHECK (sample_rate > 0),
    sample_type     smallint NOT NULL,
    channel_count   smallint NOT NULL CHECK (channel_count BETWEEN 1 AND 64),
    channels        jsonb NOT NULL,             -- [{"name","unit"}, ...]
    pre_samples     integer NOT NULL CHECK (pre_samples >= 0),
    post_samples    integer NOT NULL CHECK (post_samples >= 0),
    detector        text NOT NULL,
    score           real NOT NULL,
    envelope        bytea NOT NULL,             -- wire format v1, as received
    bytes           integer NOT NULL,
    sha256          bytea NOT NULL CHECK (octet_length(sha256) = 32),
    received_at     timestamptz NOT NULL DEFAULT now(),
    labeled_at      timestamptz,                -- set by the labeling issue
    UNIQUE (device_id, seq)
);

-- The envelope is zstd-compressed already: do not let TOAST try again.
ALTER TABLE snapshots ALTER COLUMN envelope SET STORAGE EXTERNAL;

-- Labeling queue: unlabeled first, highest score first.
CREATE INDEX snapshots_queue ON snapshots (score DESC, id) WHERE labeled_at IS NULL;
CREATE INDEX snapshots_device_time ON snapshots (device_id, trigger_time DESC);
CREATE INDEX snapshots_trigger_time ON snapshots (trigger_time);

CREATE TABLE heartbeats (
    device_id       text PRIMARY KEY REFERENCES devices (id),
    body            jsonb NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
