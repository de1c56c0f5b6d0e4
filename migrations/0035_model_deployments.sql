-- 0035_model_deployments.sql - which model version runs where, so agents
-- pick up the model assigned to them on their config poll.
--
-- A deployment assigns one trained model to a list of devices or to a group
-- (equipment type and/or site).  A device runs the newest deployment that
-- names it or matches its group, so a group deployment also reaches devices
-- enrolled after it, and a later deployment (to the device or its group)
-- replaces an earlier one.  Device ids are stored, not referenced: devices
-- are never deleted, and a list may name a device that enrolls later.
CREATE TABLE model_deployments (
    id              bigserial PRIMARY KEY,
    model_id        bigint NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    device_ids      text[],
    equipment_type  text,
    site            text,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (device_ids IS NOT NULL OR equipment_type IS NOT NULL OR site IS NOT NULL),
    CHECK (device_ids IS NULL OR (cardinality(device_ids) BETWEEN 1 AND 1000))
);
CREATE INDEX model_deployments_devices ON model_deployments USING gin (device_ids);
CREATE INDEX model_deployments_group ON model_deployments (equipment_type, site);

-- The deployment in force for one device (NULL when none).
CREATE FUNCTION deployment_for_device(dev text, eq text, st text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT md.id FROM model_deployments md
    WHERE md.device_ids @> ARRAY[dev]
       OR (md.device_ids IS NULL
           AND (md.equipment_type IS NULL OR md.equipment_type = eq)
           AND (md.site IS NULL OR md.site = st))
    ORDER BY md.id DESC LIMIT 1
$$;

-- The model in force for one device (NULL when none): the fleet view's column.
CREATE FUNCTION deployed_model(dev text, eq text, st text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT model_id FROM model_deployments WHERE id = deployment_for_device(dev, eq, st)
$$;
