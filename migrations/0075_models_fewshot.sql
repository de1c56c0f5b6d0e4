-- 0075: a third model kind, "fewshot": a nearest-prototype classifier
-- learned from a few labeled windows and the unlabeled rest
-- (server/models/models_fewshot.c; blob kind 3, schema/MODEL.md).
ALTER TABLE models DROP CONSTRAINT models_kind_check;
ALTER TABLE models ADD CONSTRAINT models_kind_check
    CHECK (kind IN ('anomaly', 'classifier', 'fewshot'));
