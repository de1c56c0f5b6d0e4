/* db_migrate.c - the forward-only migration runner.
 *
 * Files are migrations/NNNN_name.sql.  Each pending file runs in its own
 * transaction together with its row in schema_migrations, so a failure
 * leaves the database at the previous version.  The whole run holds a
 * session advisory lock: two servers starting at once take turns and the
 * second finds nothing to do.  A database that records a version newer than
 * the newest file is refused: an old binary must not serve a schema it does
 * not know.  The runner's own statements live in the table below (they
 * cannot be prepared with the worker statements, which need the tables the
 * migrations create). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/db/db.h"
#include "server/srv/srv.h"

#define MIGRATE_LOCK_KEY "7310309130653696"     /* fixed key: "precursor" */
#define MIGRATE_MAX_FILES 1000
#define MIGRATE_MAX_BYTES (4u << 20)

enum { M_LOCK, M_UNLOCK, M_TABLE, M_MAX, M_HAS, M_RECORD, M_COUNT };

static const struct { const char *sql; int nparams; } msql[M_COUNT] = {
    [M_LOCK] = { "SELECT pg_advisory_lock($1::bigint)", 1 },
    [M_UNLOCK] = { "SELECT pg_advisory_unlock($1::bigint)", 1 },
    [M_TABLE] = { "CREATE TABLE IF NOT EXISTS schema_migrations ("
                  " version integer PRIMARY KEY,"
                  " name text NOT NULL,"
                  " applied_at timestamptz NOT NULL DEFAULT now())", 0 },
    [M_MAX] = { "SELECT COALESCE(max(version), 0) AS newest FROM schema_migrations", 0 },
    [M_HAS] = { "SELECT 1 FROM schema_migrations WHERE version = $1::int", 1 },
    [M_RECORD] = { "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)", 2 },
};

struct mfile {
    int version;
    char name[256];
};

static int mfile_cmp(const void *a, const void *b)
{
    const struct mfile *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* NNNN_[a-z0-9_]+.sql -> version, or -1. */
static int mfile_version(const char *n)
{
    size_t len = strlen(n), i;
    int v = 0;

    if (len < 10 || len > 200 || strcmp(n + len - 4, ".sql") != 0 || n[4] != '_')
        return -1;
    for (i = 0; i < 4; i++) {
        if (n[i] < '0' || n[i] > '9')
            return -1;
        v = v * 10 + (n[i] - '0');
    }
    for (i = 5; i < len - 4; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
            return -1;
    return v > 0 ? v : -1;
}

static int mfile_list(const char *dir, struct mfile **out, size_t *n_out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    struct mfile *v = NULL;
    size_t n = 0, i;

    if (!d) {
        srv_log("error", "migrate: cannot open %s: %s", dir, strerror(errno));
        return SRV_EMIGRATION;
    }
    v = calloc(MIGRATE_MAX_FILES, sizeof *v);
    if (!v) {
        closedir(d);
        return SRV_ENOMEM;
    }
    while ((e = readdir(d)) != NULL) {
        int ver = mfile_version(e->d_name);

        if (ver < 0)
            continue;
        if (n == MIGRATE_MAX_FILES) {
            srv_log("error", "migrate: more than %d files in %s", MIGRATE_MAX_FILES, dir);
            closedir(d);
            free(v);
            return SRV_EMIGRATION;
        }
        v[n].version = ver;
        snprintf(v[n].name, sizeof v[n].name, "%s", e->d_name);
        n++;
    }
    closedir(d);
    qsort(v, n, sizeof *v, mfile_cmp);
    for (i = 1; i < n; i++) {
        if (v[i].version == v[i - 1].version) {
            srv_log("error", "migrate: %s and %s share a version", v[i - 1].name, v[i].name);
            free(v);
            return SRV_EMIGRATION;
        }
    }
    *out = v;
    *n_out = n;
    return SRV_OK;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (!f)
        return NULL;
    buf = malloc(MIGRATE_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, MIGRATE_MAX_BYTES + 1, f);
    fclose(f);
    if (n > MIGRATE_MAX_BYTES) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* Run one runner statement; returns the result on the expected status. */
static PGresult *mexec(PGconn *c, int which, const char *const *vals)
{
    PGresult *r = PQexecParams(c, msql[which].sql, msql[which].nparams, NULL,
                               vals, NULL, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    srv_log("error", "migrate: %s", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    PQclear(r);
    return NULL;
}

static int simple(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;

    if (!ok) {
        const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        srv_log("error", "migrate: %s", m ? m : PQerrorMessage(c));
    }
    PQclear(r);
    return ok ? SRV_OK : SRV_EMIGRATION;
}

static int apply_one(PGconn *c, const char *dir, const struct mfile *m)
{
    char path[4096], ver[16];
    const char *vals[2];
    char *sql;
    PGresult *r;
    int err;

    if (snprintf(path, sizeof path, "%s/%s", dir, m->name) >= (int)sizeof path)
        return SRV_EMIGRATION;
    sql = slurp(path);
    if (!sql) {
        srv_log("error", "migrate: cannot read %s (missing or over %u bytes)", path,
                MIGRATE_MAX_BYTES);
        return SRV_EMIGRATION;
    }
    snprintf(ver, sizeof ver, "%d", m->version);
    vals[0] = ver;
    vals[1] = m->name;
    err = simple(c, "BEGIN");
    if (err == SRV_OK)
        err = simple(c, sql);   /* a file holds several statements */
    if (err == SRV_OK) {
        r = mexec(c, M_RECORD, vals);
        err = r ? SRV_OK : SRV_EMIGRATION;
        PQclear(r);
    }
    if (err == SRV_OK)
        err = simple(c, "COMMIT");
    if (err != SRV_OK) {
        srv_log("error", "migrate: %s failed, rolled back", m->name);
        PQclear(PQexec(c, "ROLLBACK"));
    } else {
        srv_log("info", "migrate: applied %s", m->name);
    }
    free(sql);
    return err;
}

int db_migrate(const char *conninfo, const char *dir, int *applied, int *newest)
{
    const char *lock[1] = { MIGRATE_LOCK_KEY };
    struct mfile *files = NULL;
    size_t n = 0, i;
    PGconn *c = NULL;
    PGresult *r;
    int err, recorded, file_newest, count = 0, locked = 0;

    err = mfile_list(dir, &files, &n);
    if (err != SRV_OK)
        return err;
    file_newest = n ? files[n - 1].version : 0;
    c = db_connect(conninfo);
    if (!c) {
        err = SRV_EUNAVAIL;
        goto out;
    }
    /* Quiet the NOTICE "relation already exists, skipping". */
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    r = mexec(c, M_LOCK, lock);
    if (!r) {
        err = SRV_EUNAVAIL;
        goto out;
    }
    PQclear(r);
    locked = 1;
    r = mexec(c, M_TABLE, NULL);
    if (!r) {
        err = SRV_EMIGRATION;
        goto out;
    }
    PQclear(r);
    r = mexec(c, M_MAX, NULL);
    if (!r) {
        err = SRV_EMIGRATION;
        goto out;
    }
    recorded = (int)db_int64(r, 0, "newest");
    PQclear(r);
    if (recorded > file_newest) {
        srv_log("error", "migrate: database schema is at version %d, newer than the "
                "newest migration this server knows (%d); refusing to run", recorded,
                file_newest);
        err = SRV_ESCHEMA;
        goto out;
    }
    for (i = 0; i < n; i++) {
        char ver[16];
        const char *vals[1] = { ver };
        int have;

        snprintf(ver, sizeof ver, "%d", files[i].version);
        r = mexec(c, M_HAS, vals);
        if (!r) {
            err = SRV_EMIGRATION;
            goto out;
        }
        have = PQntuples(r) > 0;
        PQclear(r);
        if (have)
            continue;
        err = apply_one(c, dir, &files[i]);
        if (err != SRV_OK)
            goto out;
        count++;
    }
    err = SRV_OK;
    if (applied)
        *applied = count;
    if (newest)
        *newest = file_newest;
out:
    if (locked)
        PQclear(mexec(c, M_UNLOCK, lock));
    PQfinish(c);
    free(files);
    return err;
}
