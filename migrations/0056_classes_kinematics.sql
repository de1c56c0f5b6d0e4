-- 0056: every fault the simulator injects has a class, and equipment types
-- and assets may say how they turn: shaft speed and rolling-bearing
-- geometry, from which the snapshot view marks shaft harmonics and bearing
-- defect frequencies on the spectra (GET /api/v1/snapshots/{id}/spectrum).
-- An asset's values win over its type's.

INSERT INTO label_classes (name, position, description, equipment_type) VALUES
    ('phase_imbalance', 10, 'motor supply phase imbalance', 'motor'),
    ('blockage', 11, 'pump blockage: suction or discharge restricted', 'pump')
ON CONFLICT (name) DO NOTHING;
INSERT INTO failure_modes (equipment_type, mode, mechanism, cause, class) VALUES
    ('motor', 'overheating', 'electrical', 'supply phase imbalance', 'phase_imbalance'),
    ('pump', 'low output', 'blockage', 'restricted suction or discharge', 'blockage');

-- Shaft speed in Hz; bearing: number of rolling elements, element and pitch
-- diameters (mm) and contact angle (degrees), all four or none.
ALTER TABLE equipment_types
    ADD COLUMN shaft_hz double precision CHECK (shaft_hz > 0 AND shaft_hz <= 2000),
    ADD COLUMN bearing_balls integer CHECK (bearing_balls BETWEEN 3 AND 100),
    ADD COLUMN bearing_ball_mm double precision CHECK (bearing_ball_mm > 0),
    ADD COLUMN bearing_pitch_mm double precision CHECK (bearing_pitch_mm > 0),
    ADD COLUMN bearing_contact_deg double precision CHECK (bearing_contact_deg BETWEEN 0 AND 60),
    ADD CONSTRAINT equipment_types_bearing_whole CHECK (
        (bearing_balls IS NULL) = (bearing_ball_mm IS NULL) AND
        (bearing_balls IS NULL) = (bearing_pitch_mm IS NULL) AND
        (bearing_balls IS NULL) = (bearing_contact_deg IS NULL) AND
        (bearing_balls IS NULL OR bearing_ball_mm < bearing_pitch_mm));
ALTER TABLE assets
    ADD COLUMN shaft_hz double precision CHECK (shaft_hz > 0 AND shaft_hz <= 2000),
    ADD COLUMN bearing_balls integer CHECK (bearing_balls BETWEEN 3 AND 100),
    ADD COLUMN bearing_ball_mm double precision CHECK (bearing_ball_mm > 0),
    ADD COLUMN bearing_pitch_mm double precision CHECK (bearing_pitch_mm > 0),
    ADD COLUMN bearing_contact_deg double precision CHECK (bearing_contact_deg BETWEEN 0 AND 60),
    ADD CONSTRAINT assets_bearing_whole CHECK (
        (bearing_balls IS NULL) = (bearing_ball_mm IS NULL) AND
        (bearing_balls IS NULL) = (bearing_pitch_mm IS NULL) AND
        (bearing_balls IS NULL) = (bearing_contact_deg IS NULL) AND
        (bearing_balls IS NULL OR bearing_ball_mm < bearing_pitch_mm));

-- What make run's simulated fleet runs (agent/source/sim.c): the fan's 25 Hz
-- shaft on a 6205 bearing, the centrifugal pump's 29.5 Hz shaft, the
-- two-pole motor at 3 % slip on 50 Hz.  Plants set their own.
UPDATE equipment_types SET shaft_hz = 25, bearing_balls = 9, bearing_ball_mm = 7.94,
       bearing_pitch_mm = 39.04, bearing_contact_deg = 0 WHERE name = 'fan';
UPDATE equipment_types SET shaft_hz = 29.5 WHERE name = 'centrifugal_pump';
UPDATE equipment_types SET shaft_hz = 48.5 WHERE name = 'motor';
