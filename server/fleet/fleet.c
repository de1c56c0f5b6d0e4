/* fleet.c - the module's settings, and start/stop of the maintenance thread
 * that keeps snapshot partitions ahead of time and applies the retention
 * setting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/db/db.h"
#include "server/fleet/fleet.h"
#include "server/fleet/fleet_int.h"
#include "server/srv/srv.h"
#include "server/srv/srv_worker.h"

#define MAINT_PERIOD_S 3600

const struct db_sql fleet__sql[FLEET_SQL_COUNT] = {
    [FLEET_SQL_DEVICE_KEY] = { "fleet_device_key",
        "SELECT public_key, status, last_seq FROM devices WHERE id = $1", 1 },
    [FLEET_SQL_TOKEN_INSERT] = { "fleet_token_insert",
        "INSERT INTO enrollment_tokens (token_sha256, equipment_type, site, tags,"
        " uses_left, expires_at, pre_approved)"
        " VALUES ($1::bytea, $2, $3, $4::text[], $5::int,"
        "  now() + $6::bigint * interval '1 second', $7::boolean) RETURNING id", 7 },
    [FLEET_SQL_TOKEN_STATE] = { "fleet_token_state",
        "SELECT id, revoked_at IS NOT NULL AS revoked,"
        " expires_at IS NOT NULL AND expires_at <= now() AS expired,"
        " uses_left IS NOT NULL AND uses_left <= 0 AS used_up"
        " FROM enrollment_tokens WHERE token_sha256 = $1::bytea", 1 },
    [FLEET_SQL_TOKEN_REVOKE] = { "fleet_token_revoke",
        "UPDATE enrollment_tokens SET revoked_at = now()"
        " WHERE token_sha256 = $1::bytea AND revoked_at IS NULL RETURNING id", 1 },
    [FLEET_SQL_DEVICE_ENROLL] = { "fleet_device_enroll",
        "WITH t AS (UPDATE enrollment_tokens SET uses_left = uses_left - 1"
        "  WHERE token_sha256 = $1::bytea AND revoked_at IS NULL"
        "  AND (expires_at IS NULL OR expires_at > now())"
        "  AND (uses_left IS NULL OR uses_left > 0)"
        "  AND NOT EXISTS (SELECT 1 FROM devices WHERE id = $2)"
        "  RETURNING id, equipment_type, site, tags, pre_approved)"
        " INSERT INTO devices (id, public_key, status, equipment_type, site, tags,"
        "  enrollment_token_id, approved_at)"
        " SELECT $2, $3::bytea, CASE WHEN t.pre_approved THEN 'active' ELSE 'pending' END,"
        "  t.equipment_type, t.site, t.tags, t.id, CASE WHEN t.pre_approved THEN now() END"
        " FROM t RETURNING id, status", 3 },
    [FLEET_SQL_DEVICE_STATUS] = { "fleet_device_status",
        "UPDATE devices SET"
        " status = CASE WHEN $2 = 'approve' THEN 'active' ELSE 'revoked' END,"
        " approved_at = CASE WHEN $2 = 'approve' THEN now() ELSE approved_at END,"
        " revoked_at = CASE WHEN $2 = 'revoke' THEN now() ELSE revoked_at END"
        " WHERE id = $1 AND status <> 'revoked' RETURNING status", 2 },
    /* $4: the rotation's signed timestamp, which must be newer than the last
     * (a replay matches no row); a used key is refused by 0061's trigger */
    [FLEET_SQL_DEVICE_ROTATE] = { "fleet_device_rotate",
        "UPDATE devices SET public_key = $2::bytea, key_generation = key_generation + 1,"
        " key_rotated_at = now(), rotated_ms = $4::bigint"
        " WHERE id = $1 AND public_key = $3::bytea AND status = 'active'"
        " AND (rotated_ms IS NULL OR rotated_ms < $4::bigint)"
        " RETURNING key_generation", 4 },
    [FLEET_SQL_KEY_USED] = { "fleet_key_used",
        "SELECT device_id FROM device_keys WHERE public_key = $1::bytea", 1 },
};

static struct fleet_settings settings = {
    .agent_binary = NULL,
    .retention_days = 0,
    .device_rate = 20.0,
    .device_burst = 200.0,
};

const struct fleet_settings *fleet_settings(void)
{
    return &settings;
}

void fleet_configure(const struct fleet_settings *s)
{
    settings = *s;
}

static char *maint_conninfo;

/* Its own connection, made for each pass: the pass runs once an hour. */
static int maint_pass(void *arg)
{
    PGconn *c;
    int dropped = 0, err;

    (void)arg;
    c = db_connect(maint_conninfo);
    if (!c)
        return 0;
    err = fleet_maintain(c, settings.retention_days, &dropped);
    if (err != SRV_OK)
        srv_log("warn", "fleet: maintenance failed: %s", srv_err_message(err));
    else if (dropped)
        srv_log("info", "fleet: retention dropped %d partition(s)", dropped);
    PQfinish(c);
    return 0;
}

static struct srv_worker maint = {
    .name = "fleet: maintenance", .period_ms = MAINT_PERIOD_S * 1000u, .pass = maint_pass,
};

int fleet_start(const char *database_url)
{
    maint_conninfo = strdup(database_url);
    if (!maint_conninfo || srv_worker_start(&maint) != 0) {
        free(maint_conninfo);
        maint_conninfo = NULL;
        return SRV_EINTERNAL;
    }
    srv_log("info", "fleet: device rate %g/s burst %g, retention %u days", settings.device_rate,
            settings.device_burst, settings.retention_days);
    return SRV_OK;
}

void fleet_stop(void)
{
    srv_worker_stop(&maint);
    free(maint_conninfo);
    maint_conninfo = NULL;
}

int fleet_maintain(void *conn, unsigned retention_days, int *dropped)
{
    char days[16];
    const char *vals[1] = { days };
    PGresult *r;
    int err = SRV_OK;

    snprintf(days, sizeof days, "%u", retention_days);
    r = PQexecParams(conn, "SELECT snapshots_maintain($1::int) AS dropped", 1, NULL, vals, NULL, NULL, 0);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        srv_log("error", "fleet: snapshots_maintain: %s", PQerrorMessage(conn));
        err = SRV_EDB;
    } else {
        *dropped = (int)db_int64(r, 0, "dropped");
    }
    PQclear(r);
    return err;
}

int64_t fleet_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
