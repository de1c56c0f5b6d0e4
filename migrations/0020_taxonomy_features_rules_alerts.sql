-- 0020: domain knowledge (taxonomy, features, rules, weak labels) and
-- operational feedback (alerts and their dispositions).
--
--   equipment_types   hierarchy (rotating -> pump -> centrifugal_pump); a
--                     trigger refuses cycles, so the tree stays a tree
--   failure_modes     per type: mode, mechanism, cause (ISO 14224 spirit),
--                     each naming the label class it is recorded as
--   assets            physical machines of a type; devices are assigned to one
--   snapshot_features per snapshot and channel, computed off the ingest path
--   rules, rule_hits  labeling functions and the snapshots each one fires on
--   weak_labels       the vote (or a disposition) per snapshot, with its source;
--                     human labels stay in labels and always win
--   alert_dispositions what happened to each alert (every snapshot is one)
--
-- Snapshots are partitioned by time (0041): nothing here holds a foreign key
-- to snapshots(id); snapshot ids are stored and indexed.

CREATE TABLE equipment_types (
    name            text PRIMARY KEY CHECK (name ~ '^[a-z0-9_]{1,64}$'),
    parent          text REFERENCES equipment_types (name),
    description     text NOT NULL DEFAULT '' CHECK (length(description) <= 2000)
);
CREATE INDEX equipment_types_parent ON equipment_types (parent);

-- A type may not become its own ancestor; the walk is bounded by depth so a
-- corrupted table cannot make the trigger loop.
CREATE FUNCTION equipment_types_no_cycle() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cur text := NEW.parent;
    depth int := 0;
BEGIN
    WHILE cur IS NOT NULL LOOP
        IF cur = NEW.name THEN
            RAISE EXCEPTION 'taxonomy cycle: % would be its own ancestor', NEW.name;
        END IF;
        depth := depth + 1;
        IF depth > 32 THEN
            RAISE EXCEPTION 'taxonomy deeper than 32 levels at %', NEW.name;
        END IF;
        SELECT parent INTO cur FROM equipment_types WHERE name = cur;
    END LOOP;
    RETURN NEW;
END $$;
CREATE TRIGGER equipment_types_no_cycle BEFORE INSERT OR UPDATE ON equipment_types
    FOR EACH ROW EXECUTE FUNCTION equipment_types_no_cycle();

-- Classes come from the taxonomy: a class may belong to a type (NULL: any
-- type).  GET /api/v1/classes reports it as "equipment_type".
ALTER TABLE label_classes ADD COLUMN equipment_type text REFERENCES equipment_types (name);

CREATE TABLE failure_modes (
    id              bigserial PRIMARY KEY,
    equipment_type  text NOT NULL REFERENCES equipment_types (name),
    mode            text NOT NULL CHECK (length(mode) BETWEEN 1 AND 200),
    mechanism       text NOT NULL DEFAULT '' CHECK (length(mechanism) <= 200),
    cause           text NOT NULL DEFAULT '' CHECK (length(cause) <= 200),
    class           text NOT NULL REFERENCES label_classes (name),
    UNIQUE (equipment_type, class)
);

CREATE TABLE assets (
    id              text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._-]{1,64}$'),
    equipment_type  text NOT NULL REFERENCES equipment_types (name),
    site            text,
    description     text NOT NULL DEFAULT ''
);
ALTER TABLE devices ADD COLUMN asset_id text REFERENCES assets (id);

-- Classes usable on a type: those of the type, of its ancestors, and of the
-- descendants of its parent (siblings and their children), so a class
-- labeled on one pump model is there for the pump next to it.
CREATE FUNCTION taxonomy_related_types(t text) RETURNS SETOF text LANGUAGE sql STABLE AS $$
    WITH RECURSIVE up(name, parent, d) AS (
        SELECT name, parent, 0 FROM equipment_types WHERE name = t
        UNION ALL
        SELECT e.name, e.parent, up.d + 1 FROM equipment_types e JOIN up ON e.name = up.parent
        WHERE up.d < 32),
    base AS (SELECT COALESCE((SELECT parent FROM equipment_types WHERE name = t), t) AS root),
    down(name, d) AS (
        SELECT root, 0 FROM base
        UNION ALL
        SELECT e.name, down.d + 1 FROM equipment_types e JOIN down ON e.parent = down.name
        WHERE down.d < 32)
    SELECT name FROM up UNION SELECT name FROM down
$$;

CREATE TABLE snapshot_features (
    snapshot_id     bigint NOT NULL,            -- snapshots(id), no FK (partitioning)
    channel         text NOT NULL,
    mean            double precision NOT NULL,
    std             double precision NOT NULL,
    rms             double precision NOT NULL,
    peak            double precision NOT NULL,
    crest           double precision NOT NULL,
    kurtosis        double precision NOT NULL,
    dominant_hz     double precision NOT NULL,
    bin_hz          double precision NOT NULL,
    spectrum        real[] NOT NULL,            -- fraction of power per bin, 0..Nyquist
    PRIMARY KEY (snapshot_id, channel)
);

-- One row per snapshot the worker has looked at (error set when the
-- envelope could not be decoded), so nothing is retried forever.
CREATE TABLE feature_jobs (
    snapshot_id     bigint PRIMARY KEY,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    error           text
);

CREATE TABLE rules (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    expr            text NOT NULL CHECK (length(expr) BETWEEN 1 AND 1024),
    class           text NOT NULL REFERENCES label_classes (name),
    weight          real NOT NULL DEFAULT 1 CHECK (weight > 0 AND weight <= 100),
    enabled         boolean NOT NULL DEFAULT true,
    created_by      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rule_hits (
    rule_id         bigint NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
    snapshot_id     bigint NOT NULL,            -- snapshots(id), no FK
    PRIMARY KEY (rule_id, snapshot_id)
);
CREATE INDEX rule_hits_snapshot ON rule_hits (snapshot_id);

CREATE TABLE weak_labels (
    snapshot_id     bigint PRIMARY KEY,         -- snapshots(id), no FK
    class           text NOT NULL,
    source          text NOT NULL CHECK (source IN ('rule', 'vote', 'disposition')),
    confidence      real NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    votes           jsonb NOT NULL DEFAULT '[]',    -- [{"rule_id","class","weight"}]
    computed_at     timestamptz NOT NULL DEFAULT now()
);

-- What a consumer should use per snapshot: human labels first (never
-- replaced), else the weak label with its source.
CREATE VIEW effective_labels AS
    SELECT DISTINCT l.snapshot_id, l.class, 'human'::text AS source, 1::real AS confidence
    FROM labels l
    UNION ALL
    SELECT w.snapshot_id, w.class, w.source, w.confidence
    FROM weak_labels w
    WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE l.snapshot_id = w.snapshot_id);

CREATE TABLE alert_dispositions (
    snapshot_id     bigint PRIMARY KEY,         -- snapshots(id), no FK
    acknowledged_at timestamptz NOT NULL DEFAULT now(),
    acknowledged_by text NOT NULL,
    disposition     text CHECK (disposition IN
                        ('action_taken', 'no_fault_found', 'not_actionable', 'duplicate')),
    work_order      text CHECK (length(work_order) <= 100),
    outcome         text CHECK (length(outcome) <= 2000),
    class           text REFERENCES label_classes (name),
    disposed_at     timestamptz,
    disposed_by     text
);
CREATE INDEX alert_dispositions_disposed ON alert_dispositions (disposed_at);

-- Operational settings: one row.  An alert with no disposition this long
-- after its trigger counts as ignored.
CREATE TABLE ops_settings (
    id              integer PRIMARY KEY CHECK (id = 1),
    ack_window_s    integer NOT NULL DEFAULT 28800 CHECK (ack_window_s > 0)
);
INSERT INTO ops_settings (id) VALUES (1);

-- A small starting taxonomy; the API adds to it.
INSERT INTO equipment_types (name, parent, description) VALUES
    ('rotating', NULL, 'rotating machinery'),
    ('pump', 'rotating', 'pumps'),
    ('centrifugal_pump', 'pump', 'centrifugal pumps'),
    ('positive_displacement_pump', 'pump', 'positive displacement pumps'),
    ('motor', 'rotating', 'electric motors'),
    ('fan', 'rotating', 'fans and blowers');
UPDATE label_classes SET equipment_type = 'rotating'
    WHERE name IN ('bearing_outer_race', 'bearing_inner_race', 'imbalance', 'misalignment');
UPDATE label_classes SET equipment_type = 'motor' WHERE name = 'rotor_bar';
UPDATE label_classes SET equipment_type = 'pump' WHERE name = 'cavitation';
INSERT INTO failure_modes (equipment_type, mode, mechanism, cause, class) VALUES
    ('rotating', 'vibration', 'fatigue', 'bearing outer race spall', 'bearing_outer_race'),
    ('rotating', 'vibration', 'fatigue', 'bearing inner race spall', 'bearing_inner_race'),
    ('rotating', 'vibration', 'mechanical', 'mass imbalance', 'imbalance'),
    ('rotating', 'vibration', 'mechanical', 'shaft misalignment', 'misalignment'),
    ('motor', 'vibration', 'electrical', 'broken rotor bar', 'rotor_bar'),
    ('pump', 'low output', 'erosion', 'cavitation at the impeller', 'cavitation');
