-- 0063: the account life cycle holds whatever path changes a user: a new
-- password or a disabled account ends every session of that user at once,
-- also when the change is made in SQL; a disabled user's API tokens are
-- revoked with it.
CREATE FUNCTION users_end_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash
       OR (NEW.disabled_at IS NOT NULL AND OLD.disabled_at IS NULL) THEN
        DELETE FROM sessions WHERE user_id = NEW.id;
    END IF;
    IF NEW.disabled_at IS NOT NULL AND OLD.disabled_at IS NULL THEN
        UPDATE api_tokens SET revoked_at = now() WHERE user_id = NEW.id AND revoked_at IS NULL;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER users_end_sessions AFTER UPDATE OF password_hash, disabled_at ON users
    FOR EACH ROW EXECUTE FUNCTION users_end_sessions();
