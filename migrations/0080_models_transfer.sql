-- 0080: transfer from related equipment in few-shot training.  A few-shot
-- model also learns from windows humans labeled on related equipment types
-- whose failure modes share a class with its version's (weak labels, in
-- domains of their own; server/models/models_transfer.c), unless the
-- request said "transfer": false.  What was borrowed is in the model's
-- metrics ("transfer"); the borrowed windows are frozen as versions of
-- datasets named "transfer from <type>".
ALTER TABLE models ADD COLUMN transfer boolean NOT NULL DEFAULT false;
