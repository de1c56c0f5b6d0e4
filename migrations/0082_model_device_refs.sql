-- 0082: each device its own reference.  A few-shot model centres every
-- machine's windows on the median of that machine's reference windows (its
-- scheduled baseline snapshots and the windows a human labeled normal), so
-- one machine's set-point is not another's fault.  Training records, per
-- device of the version: how many reference windows it had, the blob made
-- for it (the model with that device's center, signed, bound to the device
-- id: schema/MODEL.md v2.5), or NULL when it had none and runs the model's
-- own center, and what the server predicts for its windows (the learner's
-- classes, in version order), which the device must reproduce.
-- Deployments serve a device its own blob when there is one.
CREATE TABLE model_device_refs (
    model_id          bigint NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    device_id         text NOT NULL,
    reference_windows integer NOT NULL CHECK (reference_windows >= 0),
    blob              bytea,
    predictions       jsonb NOT NULL,
    PRIMARY KEY (model_id, device_id),
    CHECK ((blob IS NULL) = (reference_windows = 0))
);
