-- 0030: dataset definitions, immutable versions (frozen members, labels and
-- windows, identified by a content hash), export jobs and trained models.
--
-- Snapshots are partitioned by time, so nothing here declares a foreign key
-- to snapshots(id): the ids are stored and indexed.

CREATE TABLE datasets (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    definition      jsonb NOT NULL,             -- {"filter","window","split"} as posted, normalised
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- A version never changes once written.  summary holds what the manifest
-- needs (classes, groups, counts, channels, rate); manifest is the
-- manifest.json of the npz, cached the first time it is computed (the same
-- version always gives the same bytes, so the cache is never stale).
CREATE TABLE dataset_versions (
    dataset_id      bigint NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    version         integer NOT NULL CHECK (version >= 1),
    content_sha256  bytea NOT NULL CHECK (octet_length(content_sha256) = 32),
    n_windows       bigint NOT NULL CHECK (n_windows >= 0),
    summary         jsonb NOT NULL,
    manifest        text,                       -- exact bytes, not jsonb (key order, floats)
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset_id, version)
);

-- The labels as they were when the version was made (human, rule, vote,
-- disposition), so later edits never change a version.
CREATE TABLE dataset_version_labels (
    dataset_id      bigint NOT NULL,
    version         integer NOT NULL,
    snapshot_id     bigint NOT NULL,            -- snapshots(id), no FK
    start_s         double precision NOT NULL,
    end_s           double precision NOT NULL,
    class           text NOT NULL,
    source          text NOT NULL,
    confidence      real NOT NULL,
    FOREIGN KEY (dataset_id, version) REFERENCES dataset_versions ON DELETE CASCADE
);
CREATE INDEX dataset_version_labels_v ON dataset_version_labels (dataset_id, version, snapshot_id);

-- One row per window, in export order (row 0..n-1).  cls and grp index the
-- classes and groups arrays of the version's summary.
CREATE TABLE dataset_windows (
    dataset_id      bigint NOT NULL,
    version         integer NOT NULL,
    row             bigint NOT NULL,
    snapshot_id     bigint NOT NULL,            -- snapshots(id), no FK
    start_sample    integer NOT NULL CHECK (start_sample >= 0),
    start_us        bigint NOT NULL,
    cls             smallint NOT NULL,
    source          text NOT NULL,
    grp             integer NOT NULL,
    split           smallint NOT NULL CHECK (split BETWEEN 0 AND 2),
    PRIMARY KEY (dataset_id, version, row),
    FOREIGN KEY (dataset_id, version) REFERENCES dataset_versions ON DELETE CASCADE
);
CREATE INDEX dataset_windows_snapshot ON dataset_windows (snapshot_id);

CREATE TABLE export_jobs (
    id              bigserial PRIMARY KEY,
    dataset_id      bigint NOT NULL,
    version         integer NOT NULL,
    format          text NOT NULL CHECK (format IN ('npz', 'jsonl', 'csv')),
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    rows_total      bigint NOT NULL DEFAULT 0,
    rows_done       bigint NOT NULL DEFAULT 0,
    bytes           bigint NOT NULL DEFAULT 0,
    sha256          bytea,
    error           text,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    FOREIGN KEY (dataset_id, version) REFERENCES dataset_versions ON DELETE CASCADE
);

CREATE TABLE models (
    id              bigserial PRIMARY KEY,
    dataset_id      bigint NOT NULL,
    version         integer NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('anomaly', 'classifier')),
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'training', 'done', 'failed')),
    metrics         jsonb,
    test_vector     jsonb,
    blob            bytea,
    header          text,
    error           text,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    FOREIGN KEY (dataset_id, version) REFERENCES dataset_versions ON DELETE CASCADE
);
