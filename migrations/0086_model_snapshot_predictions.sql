-- 0086: what a trained classifier thinks of each snapshot of its version
-- and of its devices' snapshots no label reached (received up to the
-- version's freeze, capped: schema/MODEL.md).
-- With a handful of labels per class, the snapshot worth a person's time
-- next is the one the model is least sure of (active learning).  When a
-- centroid or few-shot model becomes done, training records per snapshot
-- the class the device would predict (model_classify on
-- the blob that device runs, its windows' softmax probabilities averaged),
-- that class's probability and the margin to the runner-up (top minus
-- second).  The queue sorts by margin, least certain first
-- (GET /api/v1/queue?sort=uncertain&model=ID).  Written in the statement
-- that marks the model done: a done model has all its rows or none (an
-- anomaly model, or one trained before this table).
CREATE TABLE model_snapshot_predictions (
    model_id    bigint NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    snapshot_id bigint NOT NULL,
    class       text NOT NULL,
    probability real NOT NULL,
    margin      real NOT NULL,
    PRIMARY KEY (model_id, snapshot_id)
);
CREATE INDEX model_snapshot_predictions_margin
    ON model_snapshot_predictions (model_id, margin, snapshot_id);
