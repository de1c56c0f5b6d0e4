-- 0064: a role with the rights serving needs and no more: read and write
-- rows, use sequences; no DDL, no superuser.  Migrations keep running as the
-- owner (serve --database-url, or migrate); serve connects for everything
-- else with --app-database-url, a login role granted precursor_app
-- (docs/SECURITY.md).  Tables added by later migrations get the same rights
-- through the default privileges.  The one thing the server does that needs
-- the owner, partition maintenance, runs as the owner (SECURITY DEFINER).
-- A migrating role that may not create roles skips the role (a notice).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'precursor_app') THEN
        BEGIN
            CREATE ROLE precursor_app NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;   -- made meanwhile
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'precursor_app not created: this role may not create roles';
                RETURN;
        END;
    END IF;
    GRANT USAGE ON SCHEMA public TO precursor_app;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO precursor_app;
    GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO precursor_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public
        GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO precursor_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public
        GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO precursor_app;
END $$;

ALTER FUNCTION snapshots_maintain(integer) SECURITY DEFINER SET search_path = public, pg_temp;
REVOKE EXECUTE ON FUNCTION snapshots_maintain(integer) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'precursor_app') THEN
        GRANT EXECUTE ON FUNCTION snapshots_maintain(integer) TO precursor_app;
    END IF;
END $$;
