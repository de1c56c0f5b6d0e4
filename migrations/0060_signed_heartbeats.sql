-- 0060: heartbeats carry the device's own timestamp, signed with the body
-- (schema/devmsg.h).  The server keeps the last one it accepted per device
-- and takes only later ones, so a captured heartbeat cannot be replayed to
-- show a dead device as healthy.  NULL: none signed this way yet.
ALTER TABLE heartbeats ADD COLUMN signed_ms bigint;
