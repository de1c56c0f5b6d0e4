-- 0077: a model may be asked for a feature set by name (POST /api/v1/models
-- "feature_set"); NULL is the kind's own choice, as before.  "relations"
-- (fewshot only): features in the residual subspace of a map of normal
-- operation the server fits and the blob carries (schema/MODEL.md).
ALTER TABLE models ADD COLUMN feature_set text
    CHECK (feature_set IS NULL OR feature_set IN ('relations'));
