-- 0083: how a device's machine turns, in one place.  An asset's shaft speed
-- wins over its equipment type's; its bearing geometry wins as a whole (an
-- asset that names its bearing's balls names the rest of it too, so its
-- diameters are never mixed with the type's).  The spectrum endpoint and
-- model training read this view rather than each spelling the precedence.
CREATE VIEW device_kinematics AS
SELECT d.id AS device_id, d.equipment_type, d.asset_id,
       coalesce(a.shaft_hz, t.shaft_hz) AS shaft_hz,
       CASE WHEN a.shaft_hz IS NOT NULL THEN 'asset'
            WHEN t.shaft_hz IS NOT NULL THEN 'equipment_type' END AS shaft_from,
       CASE WHEN a.bearing_balls IS NOT NULL THEN 'asset'
            WHEN t.bearing_balls IS NOT NULL THEN 'equipment_type' END AS bearing_from,
       coalesce(a.bearing_balls, t.bearing_balls) AS balls,
       CASE WHEN a.bearing_balls IS NOT NULL THEN a.bearing_ball_mm
            ELSE t.bearing_ball_mm END AS ball_mm,
       CASE WHEN a.bearing_balls IS NOT NULL THEN a.bearing_pitch_mm
            ELSE t.bearing_pitch_mm END AS pitch_mm,
       CASE WHEN a.bearing_balls IS NOT NULL THEN a.bearing_contact_deg
            ELSE t.bearing_contact_deg END AS contact_deg
FROM devices d
LEFT JOIN assets a ON a.id = d.asset_id
LEFT JOIN equipment_types t ON t.name = d.equipment_type;
