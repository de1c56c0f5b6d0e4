-- 0010: browser sessions, login attempts (for rate limiting), the label
-- classes operators may use, labels on snapshot spans and their audit trail.
--
-- Snapshots are partitioned by time in a later migration, so label rows keep
-- the snapshot id without a foreign key (indexed instead).

CREATE TABLE sessions (
    token_sha256    bytea PRIMARY KEY CHECK (octet_length(token_sha256) = 32),
    user_id         bigint NOT NULL REFERENCES users (id),
    csrf            text NOT NULL CHECK (length(csrf) = 64),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- One row per login attempt; failed ones within a window are counted per
-- username and per client address to refuse guessing.
CREATE TABLE login_attempts (
    id              bigserial PRIMARY KEY,
    username        text NOT NULL,
    client          text NOT NULL,
    ok              boolean NOT NULL,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_user_at ON login_attempts (username, at);
CREATE INDEX login_attempts_client_at ON login_attempts (client, at);

-- The flat class list (the taxonomy issue may add structure later).
-- position orders the list: keys 1-9 in the UI pick the first nine.
CREATE TABLE label_classes (
    name            text PRIMARY KEY CHECK (name ~ '^[a-z0-9_]{1,64}$'),
    position        integer NOT NULL,
    description     text NOT NULL DEFAULT '',
    active          boolean NOT NULL DEFAULT true
);
INSERT INTO label_classes (name, position, description) VALUES
    ('normal',             1, 'nothing wrong: a false alarm or normal operation'),
    ('bearing_outer_race', 2, 'bearing outer race defect'),
    ('bearing_inner_race', 3, 'bearing inner race defect'),
    ('imbalance',          4, 'rotor mass imbalance'),
    ('misalignment',       5, 'shaft misalignment'),
    ('rotor_bar',          6, 'broken or cracked rotor bar'),
    ('cavitation',         7, 'pump cavitation'),
    ('sensor_fault',       8, 'the sensor or its wiring, not the machine'),
    ('other',              9, 'anything else: say what in the notes');

CREATE TABLE labels (
    id              bigserial PRIMARY KEY,
    snapshot_id     bigint NOT NULL,            -- snapshots(id), no FK (partitioning)
    start_s         double precision NOT NULL CHECK (start_s >= 0),
    end_s           double precision NOT NULL CHECK (end_s > start_s),
    channels        integer[] NOT NULL CHECK (cardinality(channels) BETWEEN 1 AND 64),
    class           text NOT NULL REFERENCES label_classes (name),
    confidence      real NOT NULL DEFAULT 1 CHECK (confidence >= 0 AND confidence <= 1),
    notes           text NOT NULL DEFAULT '' CHECK (length(notes) <= 4000),
    failure_mode    text NOT NULL DEFAULT '' CHECK (length(failure_mode) <= 200),
    mechanism       text NOT NULL DEFAULT '' CHECK (length(mechanism) <= 200),
    cause           text NOT NULL DEFAULT '' CHECK (length(cause) <= 200),
    created_by      text NOT NULL,              -- "alice" or "token:<name>"
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      text,
    updated_at      timestamptz
);
CREATE INDEX labels_snapshot ON labels (snapshot_id);

-- Every create, edit and delete, with the row as it was after (or before,
-- for a delete), so nothing an operator wrote is ever lost.
CREATE TABLE label_audit (
    id              bigserial PRIMARY KEY,
    label_id        bigint NOT NULL,
    snapshot_id     bigint NOT NULL,
    action          text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    actor           text NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    row             jsonb NOT NULL
);
CREATE INDEX label_audit_label ON label_audit (label_id);
