/* db.c - the statement table and the per-thread connection.
 *
 * libmicrohttpd runs handlers on its pool threads; each keeps its own
 * PGconn in a pthread key, so no locking is needed around libpq and the
 * key's destructor closes the connection when the pool shuts down.  All
 * statements are prepared once per connection: the server never builds SQL
 * from strings, and a statement that no longer prepares (schema drift) shows
 * up at connect time rather than mid-request. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/db/db.h"
#include "server/srv/srv.h"

struct db_stmt_def {
    const char *name;
    const char *sql;
    int nparams;
};

/* Snapshot columns as the API shows them; keep in step with api_snapshots.c. */
#define SNAPSHOT_COLS \
    "id, device_id, seq, (extract(epoch FROM trigger_time) * 1000000)::bigint, " \
    "sample_rate, sample_type, channels, pre_samples, post_samples, detector, " \
    "score, bytes"

#define DEVICE_COLS \
    "d.id, d.public_key, d.status, d.equipment_type, d.site, " \
    "(extract(epoch FROM d.created_at) * 1000000)::bigint, " \
    "(extract(epoch FROM d.last_seen) * 1000000)::bigint, d.last_seq, " \
    "h.body, (extract(epoch FROM h.received_at) * 1000000)::bigint, " \
    "deployed_model(d.id, d.equipment_type, d.site)"   /* migration 0035 */

static const struct db_stmt_def stmts[DB_STMT_COUNT] = {
    [DB_PING] = { "ping", "SELECT 1", 0 },
    [DB_DEVICE_KEY] = { "device_key",
        "SELECT public_key, status, last_seq FROM devices WHERE id = $1", 1 },
    [DB_DEVICE_INSERT] = { "device_insert",
        "INSERT INTO devices (id, public_key) VALUES ($1, $2::bytea) "
        "ON CONFLICT (id) DO NOTHING RETURNING id", 2 },
    [DB_SNAPSHOT_BY_SEQ] = { "snapshot_by_seq",
        "SELECT snapshot_id, sha256 = $3::bytea FROM snapshot_seqs "
        "WHERE device_id = $1 AND seq = $2::bigint", 3 },
    [DB_SNAPSHOT_INSERT] = { "snapshot_insert",
        /* snapshots is partitioned (0041): snapshot_seqs holds the
         * (device, seq) uniqueness, claimed first in the same statement. */
        "WITH nid AS (SELECT nextval('snapshots_id_seq') AS id),"
        " s AS (INSERT INTO snapshot_seqs (device_id, seq, snapshot_id, sha256)"
        "  SELECT $1, $2::bigint, nid.id, $13::bytea FROM nid"
        "  ON CONFLICT (device_id, seq) DO NOTHING RETURNING snapshot_id),"
        " ins AS ("
        " INSERT INTO snapshots (id, device_id, seq, trigger_time, sample_rate,"
        "  sample_type, channel_count, channels, pre_samples, post_samples,"
        "  detector, score, envelope, bytes, sha256)"
        " SELECT s.snapshot_id, $1, $2::bigint,"
        "  timestamptz 'epoch' + $3::bigint * interval '1 microsecond',"
        "  $4::float8, $5::smallint, $6::smallint, $7::jsonb, $8::int, $9::int,"
        "  $10, $11::real, $12::bytea, octet_length($12::bytea), $13::bytea"
        " FROM s RETURNING id, device_id, seq),"
        " upd AS (UPDATE devices SET last_seen = now(),"
        "  last_seq = GREATEST(devices.last_seq, ins.seq)"
        "  FROM ins WHERE devices.id = ins.device_id)"
        " SELECT id FROM ins", 13 },
    [DB_SNAPSHOTS_LIST] = { "snapshots_list",
        "SELECT " SNAPSHOT_COLS " FROM snapshots WHERE id > $1::bigint "
        "ORDER BY id LIMIT $2::int", 2 },
    [DB_SNAPSHOT_GET] = { "snapshot_get",
        "SELECT " SNAPSHOT_COLS " FROM snapshots WHERE id = $1::bigint", 1 },
    [DB_SNAPSHOT_RAW] = { "snapshot_raw",
        "SELECT envelope FROM snapshots WHERE id = $1::bigint", 1 },
    [DB_DEVICES_LIST] = { "devices_list",
        "SELECT " DEVICE_COLS " FROM devices d "
        "LEFT JOIN heartbeats h ON h.device_id = d.id "
        "WHERE d.id > $1 ORDER BY d.id LIMIT $2::int", 2 },
    [DB_DEVICE_GET] = { "device_get",
        "SELECT " DEVICE_COLS " FROM devices d "
        "LEFT JOIN heartbeats h ON h.device_id = d.id WHERE d.id = $1", 1 },
    [DB_HEARTBEAT_UPSERT] = { "heartbeat_upsert",
        "WITH hb AS (INSERT INTO heartbeats (device_id, body, received_at)"
        " VALUES ($1, $2::jsonb, now()) ON CONFLICT (device_id) DO UPDATE"
        " SET body = EXCLUDED.body, received_at = EXCLUDED.received_at"
        " RETURNING device_id)"
        " UPDATE devices SET last_seen = now() FROM hb WHERE devices.id = hb.device_id"
        " RETURNING devices.id", 2 },
    [DB_TOKEN_LOOKUP] = { "token_lookup",
        "SELECT id, role FROM api_tokens "
        "WHERE token_sha256 = $1::bytea AND revoked_at IS NULL", 1 },
    [DB_TOKEN_INSERT] = { "token_insert",
        "INSERT INTO api_tokens (name, role, token_sha256) "
        "VALUES ($1, $2, $3::bytea) RETURNING id", 3 },
    [DB_USER_INSERT] = { "user_insert",
        "INSERT INTO users (username, role, password_hash) VALUES ($1, $2, $3) "
        "ON CONFLICT (username) DO NOTHING RETURNING id", 3 },
    /* Fleet (server/fleet/): enrollment tokens and device life cycle. */
    [DB_FLEET_TOKEN_INSERT] = { "fleet_token_insert",
        "INSERT INTO enrollment_tokens (token_sha256, equipment_type, site, tags,"
        " uses_left, expires_at, pre_approved)"
        " VALUES ($1::bytea, $2, $3, $4::text[], $5::int,"
        "  now() + $6::bigint * interval '1 second', $7::boolean) RETURNING id", 7 },
    [DB_FLEET_TOKEN_STATE] = { "fleet_token_state",
        "SELECT id, revoked_at IS NOT NULL, expires_at IS NOT NULL AND expires_at <= now(),"
        " uses_left IS NOT NULL AND uses_left <= 0"
        " FROM enrollment_tokens WHERE token_sha256 = $1::bytea", 1 },
    [DB_FLEET_DEVICE_ENROLL] = { "fleet_device_enroll",
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
    [DB_FLEET_DEVICE_STATUS] = { "fleet_device_status",
        "UPDATE devices SET"
        " status = CASE WHEN $2 = 'approve' THEN 'active' ELSE 'revoked' END,"
        " approved_at = CASE WHEN $2 = 'approve' THEN now() ELSE approved_at END,"
        " revoked_at = CASE WHEN $2 = 'revoke' THEN now() ELSE revoked_at END"
        " WHERE id = $1 AND status <> 'revoked' RETURNING status", 2 },
    [DB_FLEET_DEVICE_ROTATE] = { "fleet_device_rotate",
        "UPDATE devices SET public_key = $2::bytea, key_generation = key_generation + 1,"
        " key_rotated_at = now()"
        " WHERE id = $1 AND public_key = $3::bytea AND status = 'active'"
        " RETURNING key_generation", 3 },
#define DB_STMT_DEF(id, name, sql, n) [id] = { name, sql, n },
#include "server/labels/labels_stmts.def"
#undef DB_STMT_DEF
};

const char *db_stmt_name(enum db_stmt s)
{
    return (unsigned)s < DB_STMT_COUNT ? stmts[s].name : NULL;
}

const char *db_stmt_sql(enum db_stmt s)
{
    return (unsigned)s < DB_STMT_COUNT ? stmts[s].sql : NULL;
}

int db_stmt_nparams(enum db_stmt s)
{
    return (unsigned)s < DB_STMT_COUNT ? stmts[s].nparams : -1;
}

static char *g_conninfo;
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void conn_destroy(void *p)
{
    PQfinish(p);
}

static void key_create(void)
{
    if (pthread_key_create(&g_key, conn_destroy) != 0)
        abort();    /* only fails when the process is out of keys: a bug */
}

int db_init(const char *conninfo)
{
    char *c = strdup(conninfo);

    if (!c)
        return SRV_ENOMEM;
    pthread_once(&g_once, key_create);
    free(g_conninfo);
    g_conninfo = c;
    return SRV_OK;
}

void db_shutdown(void)
{
    db_thread_release();
    free(g_conninfo);
    g_conninfo = NULL;
}

void db_thread_release(void)
{
    PGconn *c;

    pthread_once(&g_once, key_create);
    c = pthread_getspecific(g_key);
    if (c) {
        PQfinish(c);
        pthread_setspecific(g_key, NULL);
    }
}

PGconn *db_connect(const char *conninfo)
{
    /* dbname is expanded (URI or key=value); application_name labels us in
     * pg_stat_activity. */
    const char *keys[] = { "dbname", "application_name", NULL };
    const char *vals[] = { conninfo, "precursor-server", NULL };
    PGconn *c = PQconnectdbParams(keys, vals, 1);

    if (!c) {
        srv_log("error", "db: out of memory connecting");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        char *m = PQerrorMessage(c), *nl;

        if ((nl = strchr(m, '\n')) && nl[1] == '\0')
            *nl = '\0';
        srv_log("error", "db: connect failed: %s", m);
        PQfinish(c);
        return NULL;
    }
    return c;
}

static PGconn *conn_get(void)
{
    PGconn *c;
    int i;

    pthread_once(&g_once, key_create);
    c = pthread_getspecific(g_key);
    if (c && PQstatus(c) == CONNECTION_OK)
        return c;
    if (c) {
        PQfinish(c);
        pthread_setspecific(g_key, NULL);
    }
    if (!g_conninfo)
        return NULL;
    c = db_connect(g_conninfo);
    if (!c)
        return NULL;
    for (i = 0; i < DB_STMT_COUNT; i++) {
        PGresult *r = PQprepare(c, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL);
        int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;

        if (!ok)
            srv_log("error", "db: prepare %s failed: %s", stmts[i].name,
                    r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : "no result");
        PQclear(r);
        if (!ok) {
            PQfinish(c);
            return NULL;
        }
    }
    if (pthread_setspecific(g_key, c) != 0) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

int db_exec(enum db_stmt s, const char *const *values, const int *lengths,
            const int *formats, int binary_result, PGresult **out)
{
    PGconn *c;
    PGresult *r;
    ExecStatusType st;
    const char *state;
    int err;

    if ((unsigned)s >= DB_STMT_COUNT)
        return SRV_EINTERNAL;
    c = conn_get();
    if (!c)
        return SRV_EUNAVAIL;
    r = PQexecPrepared(c, stmts[s].name, stmts[s].nparams, values, lengths,
                       formats, binary_result ? 1 : 0);
    st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        *out = r;
        return SRV_OK;
    }
    state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (PQstatus(c) != CONNECTION_OK) {
        srv_log("error", "db: %s: connection lost", stmts[s].name);
        err = SRV_EUNAVAIL;
        db_thread_release();
    } else if (state && strcmp(state, "23505") == 0) {
        err = SRV_ECONFLICT;
    } else {
        srv_log("error", "db: %s failed: %s (%s)", stmts[s].name,
                r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : "no result",
                state ? state : "-");
        err = SRV_EDB;
    }
    PQclear(r);
    return err;
}

/* Statements of other modules: try the prepared name, and prepare it when
 * this connection has not seen it yet (SQLSTATE 26000), then run it again. */
int db_exec_sql(const char *name, const char *sql, int nparams,
                const char *const *values, const int *lengths, const int *formats,
                int binary_result, PGresult **out)
{
    PGconn *c = conn_get();
    PGresult *r;
    ExecStatusType st;
    const char *state;
    int err;

    if (!c)
        return SRV_EUNAVAIL;
    r = PQexecPrepared(c, name, nparams, values, lengths, formats, binary_result ? 1 : 0);
    state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "26000") == 0) {
        PQclear(r);
        r = PQprepare(c, name, sql, nparams, NULL);
        st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        if (st != PGRES_COMMAND_OK) {
            srv_log("error", "db: prepare %s failed: %s", name,
                    r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : "no result");
            PQclear(r);
            return SRV_EDB;
        }
        PQclear(r);
        r = PQexecPrepared(c, name, nparams, values, lengths, formats, binary_result ? 1 : 0);
    }
    st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        *out = r;
        return SRV_OK;
    }
    state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (PQstatus(c) != CONNECTION_OK) {
        srv_log("error", "db: %s: connection lost", name);
        err = SRV_EUNAVAIL;
        db_thread_release();
    } else if (state && strcmp(state, "23505") == 0) {
        err = SRV_ECONFLICT;
    } else if (state && strcmp(state, "P0001") == 0) {
        /* RAISE EXCEPTION from our own triggers: a refused input */
        srv_log("info", "db: %s refused: %s", name,
                PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
        err = SRV_EBADREQ;
    } else {
        srv_log("error", "db: %s failed: %s (%s)", name,
                r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : "no result",
                state ? state : "-");
        err = SRV_EDB;
    }
    PQclear(r);
    return err;
}

int db_exec_own(const struct db_sql *st, const char *const *values, const int *lengths,
                const int *formats, int binary_result, PGresult **out)
{
    PGresult *r = NULL;
    int err = db_exec_sql(st->name, st->sql, st->n, values, lengths, formats, binary_result, &r);

    if (err == SRV_OK && out)
        *out = r;
    else
        PQclear(r);
    return err;
}

int db_conninfo_with_dbname(const char *conninfo, const char *dbname,
                            char *out, size_t cap)
{
    PQconninfoOption *opts, *o;
    size_t used = 0;
    int err = SRV_OK, have_db = 0;

    opts = PQconninfoParse(conninfo, NULL);
    if (!opts)
        return SRV_EBADREQ;
    if (cap == 0) {
        PQconninfoFree(opts);
        return SRV_ETOOBIG;
    }
    out[0] = '\0';
    for (o = opts; o->keyword && err == SRV_OK; o++) {
        const char *v = o->val;
        const char *p;

        if (strcmp(o->keyword, "dbname") == 0) {
            v = dbname;
            have_db = 1;
        }
        if (!v)
            continue;
        /* key='value' with ' and \ escaped, as libpq documents. */
        if (used + strlen(o->keyword) + 3 >= cap) {
            err = SRV_ETOOBIG;
            break;
        }
        used += (size_t)snprintf(out + used, cap - used, "%s%s='", used ? " " : "", o->keyword);
        for (p = v; *p; p++) {
            if (used + 3 >= cap) {
                err = SRV_ETOOBIG;
                break;
            }
            if (*p == '\'' || *p == '\\')
                out[used++] = '\\';
            out[used++] = *p;
        }
        if (err == SRV_OK && used + 2 < cap) {
            out[used++] = '\'';
            out[used] = '\0';
        } else {
            err = SRV_ETOOBIG;
        }
    }
    PQconninfoFree(opts);
    if (err == SRV_OK && !have_db)
        err = SRV_EBADREQ;
    return err;
}
