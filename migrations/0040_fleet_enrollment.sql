-- 0040: fleet enrollment.  Admins create enrollment tokens (stored only as
-- their SHA-256, like API tokens) carrying what the devices they enroll get:
-- equipment type, site, tags, and whether they start active or pending.
-- uses_left NULL means reusable until expiry or revocation.  Devices remember
-- the token that enrolled them and when they were approved, revoked or last
-- rotated their key; key_generation counts rotations so a rotation signed by
-- an older key cannot be replayed.

CREATE TABLE enrollment_tokens (
    id              bigserial PRIMARY KEY,
    token_sha256    bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
    equipment_type  text CHECK (length(equipment_type) <= 64),
    site            text CHECK (length(site) <= 64),
    tags            text[] NOT NULL DEFAULT '{}',
    uses_left       integer CHECK (uses_left >= 0),
    expires_at      timestamptz,
    pre_approved    boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);

ALTER TABLE devices
    ADD COLUMN enrollment_token_id bigint REFERENCES enrollment_tokens (id),
    ADD COLUMN approved_at timestamptz,
    ADD COLUMN revoked_at timestamptz,
    ADD COLUMN key_rotated_at timestamptz,
    ADD COLUMN key_generation integer NOT NULL DEFAULT 0;

-- Device views filter by status (the pending list an admin approves from).
CREATE INDEX devices_status ON devices (status, id);
