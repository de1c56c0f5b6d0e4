-- 0061: key freshness (docs/FLEET.md).  Every public key a device has held
-- is kept, so none is used twice: a device may not rotate to its current key,
-- back to a retired one or onto another device's, and a new device id may
-- not enroll or register with a key another device holds or held.  The
-- triggers make this hold for every path that writes devices.public_key;
-- handlers check first only to say which rule was broken.  rotated_ms is the
-- signed timestamp of the last accepted rotation: a rotation must be newer,
-- so a captured one cannot be replayed.
CREATE TABLE device_keys (
    public_key  bytea PRIMARY KEY CHECK (octet_length(public_key) = 32),
    device_id   text NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);

INSERT INTO device_keys (public_key, device_id)
    SELECT DISTINCT ON (public_key) public_key, id FROM devices ORDER BY public_key, created_at
    ON CONFLICT DO NOTHING;

ALTER TABLE devices ADD COLUMN rotated_ms bigint;

CREATE FUNCTION devices_key_fresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF EXISTS (SELECT 1 FROM device_keys
                   WHERE public_key = NEW.public_key AND device_id <> NEW.id) THEN
            RAISE unique_violation USING MESSAGE = 'public key held by another device';
        END IF;
    ELSIF NEW.public_key IS DISTINCT FROM OLD.public_key THEN
        IF EXISTS (SELECT 1 FROM device_keys WHERE public_key = NEW.public_key) THEN
            RAISE unique_violation USING MESSAGE = 'public key used before';
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION devices_key_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO device_keys (public_key, device_id) VALUES (NEW.public_key, NEW.id)
        ON CONFLICT (public_key) DO NOTHING;
    IF TG_OP = 'UPDATE' AND NEW.public_key IS DISTINCT FROM OLD.public_key THEN
        UPDATE device_keys SET retired_at = now()
            WHERE public_key = OLD.public_key AND retired_at IS NULL;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER devices_key_fresh BEFORE INSERT OR UPDATE OF public_key ON devices
    FOR EACH ROW EXECUTE FUNCTION devices_key_fresh();
CREATE TRIGGER devices_key_record AFTER INSERT OR UPDATE OF public_key ON devices
    FOR EACH ROW EXECUTE FUNCTION devices_key_record();
