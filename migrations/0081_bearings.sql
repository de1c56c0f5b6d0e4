-- 0081: a table of common rolling bearings, so that an asset's bearing is
-- set by its designation instead of four figures looked up by hand.  Only
-- bearings whose geometry is published with the test rigs and data sets
-- that made them familiar to vibration analysts are seeded; a plant adds
-- its own (source says where the figures come from).  Setting an asset's
-- or a type's bearing_designation copies the geometry into its bearing
-- columns (server/taxonomy/taxonomy_kin.c); explicit geometry is still
-- accepted and clears the designation.
CREATE TABLE bearings (
    designation     text PRIMARY KEY CHECK (length(designation) BETWEEN 1 AND 64),
    manufacturer    text NOT NULL DEFAULT '' CHECK (length(manufacturer) <= 64),
    kind            text NOT NULL CHECK (kind IN ('deep groove ball', 'angular contact ball',
                                                  'cylindrical roller', 'tapered roller',
                                                  'spherical roller', 'other')),
    rolling_elements integer NOT NULL CHECK (rolling_elements BETWEEN 3 AND 100),
    ball_mm         double precision NOT NULL CHECK (ball_mm > 0),
    pitch_mm        double precision NOT NULL CHECK (pitch_mm > ball_mm),
    contact_deg     double precision NOT NULL CHECK (contact_deg BETWEEN 0 AND 60),
    source          text NOT NULL CHECK (length(source) BETWEEN 1 AND 300)
);
CREATE INDEX bearings_designation_lower ON bearings (lower(designation));

ALTER TABLE equipment_types ADD COLUMN bearing_designation text REFERENCES bearings (designation);
ALTER TABLE assets ADD COLUMN bearing_designation text REFERENCES bearings (designation);

-- Figures as published with each rig or data set (inches converted at
-- 25.4 mm), each checked against the defect frequencies published with it
-- (e.g. BPFO 3.585 x shaft for the 6205, 236.4 Hz at 2000 rpm for the
-- ZA-2115); where a figure was not certain (catalogue 6204, 6206, 6305,
-- 7205 internals are not published by their makers) the bearing is left out.
INSERT INTO bearings (designation, manufacturer, kind, rolling_elements, ball_mm, pitch_mm,
                      contact_deg, source) VALUES
    ('SKF 6205-2RS JEM', 'SKF', 'deep groove ball', 9, 7.94, 39.04, 0,
     'SKF deep groove ball bearing as documented by the Case Western Reserve University bearing data centre (drive end): 0.3126 in balls, 1.537 in pitch'),
    ('SKF 6203-2RS JEM', 'SKF', 'deep groove ball', 8, 6.746, 28.50, 0,
     'SKF deep groove ball bearing as documented by the Case Western Reserve University bearing data centre (fan end): 0.2656 in balls, 1.122 in pitch'),
    ('FAG 6203', 'FAG', 'deep groove ball', 8, 6.75, 28.55, 0,
     'deep groove ball bearing of the Paderborn University bearing data set (KAt): 6.75 mm balls, 28.55 mm pitch'),
    ('Rexnord ZA-2115', 'Rexnord', 'other', 16, 8.407, 71.50, 15.17,
     'double-row bearing of the IMS / NASA prognostics bearing data set: 16 rollers per row, 0.331 in rollers, 2.815 in pitch, 15.17 deg contact'),
    ('LDK UER204', 'LDK', 'deep groove ball', 8, 7.92, 34.55, 0,
     'rolling element bearing of the XJTU-SY run-to-failure data set: 7.92 mm balls, 34.55 mm pitch'),
    ('NICE (MFPT rig)', 'NICE', 'deep groove ball', 8, 5.969, 31.62, 0,
     'bearing of the MFPT (Society for Machinery Failure Prevention Technology) fault data set: 0.235 in rollers, 1.245 in pitch');

-- The simulated fan of make run (0056) turns on the CWRU drive-end 6205.
UPDATE equipment_types SET bearing_designation = 'SKF 6205-2RS JEM'
    WHERE name = 'fan' AND bearing_balls = 9 AND bearing_ball_mm = 7.94 AND bearing_pitch_mm = 39.04;
