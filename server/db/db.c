/* db.c - the per-thread connection and running the modules' statements.
 *
 * libmicrohttpd runs handlers on its pool threads; each keeps its own
 * connection in a pthread key, so no locking is needed around libpq and the
 * key's destructor closes the connection when the pool shuts down.  Every
 * statement is listed once in its module's own table (struct db_sql) and
 * prepared on a connection the first time it runs there: the server never
 * builds SQL from strings, and the connection remembers what it prepared,
 * so a first use inside a transaction prepares rather than fails. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/db/db.h"
#include "server/metrics/metrics.h"
#include "server/srv/srv.h"

#define DB_PREPARED_MAX 512     /* distinct statements one connection prepares */

/* A worker's connection and the statements it has prepared (by the address
 * of their name, which lives in the module's static table). */
struct db_conn {
    PGconn *c;
    const char *prepared[DB_PREPARED_MAX];
    unsigned nprepared;
};

static pthread_key_t g_key;
static char *g_conninfo;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void conn_destroy(void *p)
{
    struct db_conn *dc = p;

    PQfinish(dc->c);
    free(dc);
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
    struct db_conn *dc;

    pthread_once(&g_once, key_create);
    dc = pthread_getspecific(g_key);
    if (dc) {
        conn_destroy(dc);
        pthread_setspecific(g_key, NULL);
    }
}

/* libpq's notices (a server's farewell, warnings) go to the server's log with
 * its timestamp and level rather than raw to stderr. */
static void db_notice(void *arg, const char *message)
{
    size_t n = strlen(message);

    (void)arg;
    if (n && message[n - 1] == '\n')
        n--;
    srv_log("warn", "db: %.*s", (int)n, message);
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
        char *m = PQerrorMessage(c), *r, *w;

        /* libpq's message runs over lines ("...failed: Connection refused\n\tIs
         * the server running..."): one line of the log, the hint after "; ". */
        for (r = w = m; *r; r++) {
            if (*r == '\n' || *r == '\t') {
                while (r[1] == '\n' || r[1] == '\t')
                    r++;
                if (r[1] && w > m) {
                    *w++ = ';';
                    *w++ = ' ';
                }
                continue;
            }
            *w++ = *r;
        }
        *w = '\0';
        metrics_db_connect_failed();
        srv_log("error", "db: connect failed: %s", m);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, db_notice, NULL);
    return c;
}

/* Whether an idle connection still has its server.  A restarted or stopped
 * PostgreSQL ends its sessions while they sit idle in the pool, and libpq
 * learns of it only when it next reads: the first read takes the server's
 * farewell (FATAL 57P01, handed to the notice processor), the second meets
 * the closed socket.  Both reads are non-blocking, so a live connection
 * costs two recv() calls that find nothing; a dead one is replaced before a
 * statement is sent to it, instead of failing that request with 503. */
static int conn_alive(PGconn *c)
{
    if (PQstatus(c) != CONNECTION_OK)
        return 0;
    if (PQtransactionStatus(c) != PQTRANS_IDLE)
        return 1;       /* inside a transaction: its statements must fail */
    if (!PQconsumeInput(c) || !PQconsumeInput(c))
        return 0;
    return PQstatus(c) == CONNECTION_OK;
}

static struct db_conn *conn_get(void)
{
    struct db_conn *dc;

    pthread_once(&g_once, key_create);
    dc = pthread_getspecific(g_key);
    if (dc && conn_alive(dc->c))
        return dc;
    if (dc)
        db_thread_release();
    if (!g_conninfo || !(dc = calloc(1, sizeof *dc)))
        return NULL;
    dc->c = db_connect(g_conninfo);
    if (!dc->c || pthread_setspecific(g_key, dc) != 0) {
        PQfinish(dc->c);
        free(dc);
        return NULL;
    }
    return dc;
}

/* Prepare name on this connection unless it has been already.  0 or SRV_EDB. */
static int conn_prepare(struct db_conn *dc, const char *name, const char *sql, int nparams)
{
    PGresult *r;
    unsigned i;
    int ok;

    /* Names live in the modules' static tables: the same pointer first. */
    for (i = 0; i < dc->nprepared; i++)
        if (dc->prepared[i] == name)
            return SRV_OK;
    for (i = 0; i < dc->nprepared; i++)
        if (strcmp(dc->prepared[i], name) == 0)
            return SRV_OK;
    r = PQprepare(dc->c, name, sql, nparams, NULL);
    ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        srv_log("error", "db: prepare %s failed: %s", name,
                r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : PQerrorMessage(dc->c));
    PQclear(r);
    if (!ok)
        return SRV_EDB;
    if (dc->nprepared < DB_PREPARED_MAX)
        dc->prepared[dc->nprepared++] = name;
    else
        srv_log("warn", "db: over %d statements on one connection", DB_PREPARED_MAX);
    return SRV_OK;
}

/* The answer r (NULL: none) to statement name: SRV_OK with *out = r, or
 * the error it stands for (r cleared, a lost connection released). */
static int result_take(const char *name, PGresult *r, PGresult **out)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    struct db_conn *dc = pthread_getspecific(g_key);
    const char *state;
    int err;

    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        *out = r;
        return SRV_OK;
    }
    state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (!dc || PQstatus(dc->c) != CONNECTION_OK) {
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

/* This thread's connection with name prepared on it, or NULL and *err. */
static struct db_conn *conn_for(const char *name, const char *sql, int nparams, int *err)
{
    struct db_conn *dc = conn_get();

    if (!dc) {
        *err = SRV_EUNAVAIL;
        return NULL;
    }
    *err = conn_prepare(dc, name, sql, nparams);
    if (*err != SRV_OK) {
        if (PQstatus(dc->c) != CONNECTION_OK) {
            db_thread_release();
            *err = SRV_EUNAVAIL;
        }
        return NULL;
    }
    return dc;
}

int db_exec_sql(const char *name, const char *sql, int nparams,
                const char *const *values, const int *lengths, const int *formats,
                int binary_result, PGresult **out)
{
    int err;
    struct db_conn *dc = conn_for(name, sql, nparams, &err);

    if (!dc)
        return err;
    return result_take(name, PQexecPrepared(dc->c, name, nparams, values, lengths, formats,
                                            binary_result ? 1 : 0), out);
}

int db_send_own(const struct db_sql *st, const char *const *values, const int *lengths,
                const int *formats, int binary_result)
{
    int err;
    struct db_conn *dc = conn_for(st->name, st->sql, st->n, &err);

    if (!dc)
        return err;
    if (!PQsendQueryPrepared(dc->c, st->name, st->n, values, lengths, formats,
                             binary_result ? 1 : 0)) {
        /* nothing was sent; drain whatever the failed attempt left */
        PGresult *r;

        while ((r = PQgetResult(dc->c)))
            PQclear(r);
        return result_take(st->name, NULL, &r);
    }
    return SRV_OK;
}

void db_poll_own(void)
{
    struct db_conn *dc;

    pthread_once(&g_once, key_create);
    dc = pthread_getspecific(g_key);
    /* read what has come and parse it into the result being built: read
     * alone, it piles up in libpq's input buffer, which grows to hold it
     * all and never shrinks */
    if (dc && PQconsumeInput(dc->c))
        (void)PQisBusy(dc->c);
}

int db_wait_own(const struct db_sql *st, PGresult **out)
{
    struct db_conn *dc;
    PGresult *r, *first = NULL;

    pthread_once(&g_once, key_create);
    dc = pthread_getspecific(g_key);
    if (!dc)
        return result_take(st->name, NULL, out);
    /* one statement, one result; PQgetResult ends with NULL when it is in */
    while ((r = PQgetResult(dc->c))) {
        if (!first)
            first = r;
        else
            PQclear(r);
    }
    return result_take(st->name, first, out);
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
