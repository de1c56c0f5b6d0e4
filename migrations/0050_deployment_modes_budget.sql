-- 0050_deployment_modes_budget.sql - shadow before active, an alarm budget,
-- and automatic per-device rollback (schema/MODEL.md, docs/DATASETS.md).
--
-- A deployment runs in shadow (the device scores and reports, never acts) or
-- active.  Deployments made before this migration were acted on: 'active'.
ALTER TABLE model_deployments
    ADD COLUMN mode text NOT NULL DEFAULT 'active' CHECK (mode IN ('shadow', 'active')),
    ADD COLUMN forced boolean NOT NULL DEFAULT false;
ALTER TABLE model_deployments ALTER COLUMN mode SET DEFAULT 'shadow';

-- The fleet's alarm budget (one row).  ISA-18.2 / EEMUA 191: about 6 alarms
-- per operator-hour is acceptable; one operator watches devices_per_operator
-- devices (0: every active device).  A device's share is per_operator_hour /
-- that many devices, and never more than one alarm per its hold-off.  An
-- active model over its device's share for rollback_after_s of the device's
-- running time is rolled back on that device.
CREATE TABLE alarm_budget (
    id                   int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    per_operator_hour    double precision NOT NULL DEFAULT 6 CHECK (per_operator_hour > 0),
    devices_per_operator int NOT NULL DEFAULT 0 CHECK (devices_per_operator >= 0),
    rollback_after_s     double precision NOT NULL DEFAULT 600 CHECK (rollback_after_s > 0),
    updated_by           text,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
INSERT INTO alarm_budget DEFAULT VALUES;

-- A deployment taken back on one device, with the numbers that made it so.
CREATE TABLE model_rollbacks (
    id                bigserial PRIMARY KEY,
    device_id         text NOT NULL,
    deployment_id     bigint NOT NULL REFERENCES model_deployments(id) ON DELETE CASCADE,
    model_id          bigint NOT NULL,
    observed_per_hour double precision NOT NULL,
    budget_per_hour   double precision NOT NULL,
    run_s             double precision NOT NULL,
    windows           bigint NOT NULL,
    above_threshold   bigint NOT NULL,
    reason            text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, deployment_id)
);
CREATE INDEX model_rollbacks_model ON model_rollbacks (model_id, id DESC);

-- The deployment in force for one device: the newest that names it or
-- matches its group, and that was not rolled back on it (so a rollback
-- returns the device to the deployment before).
CREATE OR REPLACE FUNCTION deployment_for_device(dev text, eq text, st text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT md.id FROM model_deployments md
    WHERE (md.device_ids @> ARRAY[dev]
           OR (md.device_ids IS NULL
               AND (md.equipment_type IS NULL OR md.equipment_type = eq)
               AND (md.site IS NULL OR md.site = st)))
      AND NOT EXISTS (SELECT 1 FROM model_rollbacks rb
                      WHERE rb.device_id = dev AND rb.deployment_id = md.id)
    ORDER BY md.id DESC LIMIT 1
$$;
