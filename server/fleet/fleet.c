/* fleet.c - the module's settings (flags of `serve` it owns), start/stop of
 * the group committer and of the maintenance thread that keeps snapshot
 * partitions ahead of time and applies the retention setting. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/db/db.h"
#include "server/fleet/fleet.h"
#include "server/ingest/ingest.h"
#include "server/srv/srv.h"

#define MAINT_PERIOD_S 3600

static struct fleet_settings settings = {
    .agent_binary = NULL,
    .retention_days = 0,
    .device_rate = 20.0,
    .device_burst = 200.0,
    .queue_max = 4096,
    .committers = 2,
    .batch_max = 256,
};

const struct fleet_settings *fleet_settings(void)
{
    return &settings;
}

static int parse_num(const char *flag, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "precursor-server: %s must be a number in %g..%g\n", flag, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int fleet_opts_take(int argc, char **argv)
{
    static const char *const flags[] = { "--agent-binary", "--retention-days", "--device-rate",
                                         "--device-burst", "--ingest-queue", "--committers",
                                         "--batch-max", "--conn-timeout" };
    int i, j = 0;

    for (i = 0; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '='), *val = NULL;
        size_t flen = eq ? (size_t)(eq - a) : strlen(a), k;
        double v;
        int which = -1;

        for (k = 0; k < sizeof flags / sizeof flags[0]; k++)
            if (strlen(flags[k]) == flen && strncmp(flags[k], a, flen) == 0)
                which = (int)k;
        if (which < 0) {
            argv[j++] = argv[i];
            continue;
        }
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "precursor-server: %s needs a value\n", flags[which]);
            return -1;
        }
        switch (which) {
        case 0: settings.agent_binary = val; break;
        case 1:
            if (parse_num(flags[which], val, 0, 36500, &v) != 0)
                return -1;
            settings.retention_days = (unsigned)v;
            break;
        case 2:
            if (parse_num(flags[which], val, 0, 1e6, &v) != 0)
                return -1;
            settings.device_rate = v;
            break;
        case 3:
            if (parse_num(flags[which], val, 1, 1e6, &v) != 0)
                return -1;
            settings.device_burst = v;
            break;
        case 4:
            if (parse_num(flags[which], val, 1, 1e6, &v) != 0)
                return -1;
            settings.queue_max = (unsigned)v;
            break;
        case 5:
            if (parse_num(flags[which], val, 1, 16, &v) != 0)
                return -1;
            settings.committers = (unsigned)v;
            break;
        case 6:
            if (parse_num(flags[which], val, 1, 512, &v) != 0)
                return -1;
            settings.batch_max = (unsigned)v;
            break;
        default:
            if (parse_num(flags[which], val, 1, 3600, &v) != 0)
                return -1;
            settings.conn_timeout_s = (unsigned)v;
            break;
        }
    }
    if (j < argc)
        argv[j] = NULL;
    return j;
}

void fleet_opts_help(void *file)
{
    fprintf((FILE *)file,
        "Fleet and ingest:\n"
        "  --agent-binary FILE    served as /downloads/precursor-agent-<arch> for install.sh\n"
        "  --retention-days N     drop snapshots older than N days (default 0: keep)\n"
        "  --device-rate R        uploads/s per device, token bucket refill (default 20; 0 off)\n"
        "  --device-burst B       token bucket size (default 200)\n"
        "  --ingest-queue N       snapshots waiting for commit before 503 (default 4096)\n"
        "  --committers N         group-commit threads/connections (default 2)\n"
        "  --batch-max N          snapshots per commit transaction (default 256)\n"
        "  --conn-timeout S       idle connection timeout; also a body still under 1 KB/s\n"
        "                         after S seconds is cut (slow clients; default 30)\n");
}

static pthread_t maint_thread;
static pthread_mutex_t maint_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t maint_cv = PTHREAD_COND_INITIALIZER;
static int maint_running, maint_stop;
static char *maint_conninfo;

static void *maint_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&maint_mu);
    while (!maint_stop) {
        struct timespec until;
        PGconn *c;
        int dropped = 0, err;

        pthread_mutex_unlock(&maint_mu);
        c = db_connect(maint_conninfo);
        if (c) {
            err = fleet_maintain(c, settings.retention_days, &dropped);
            if (err != SRV_OK)
                srv_log("warn", "fleet: maintenance failed: %s", srv_err_message(err));
            else if (dropped)
                srv_log("info", "fleet: retention dropped %d partition(s)", dropped);
            PQfinish(c);
        }
        pthread_mutex_lock(&maint_mu);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += MAINT_PERIOD_S;
        while (!maint_stop && pthread_cond_timedwait(&maint_cv, &maint_mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&maint_mu);
    return NULL;
}

int fleet_start(const char *database_url)
{
    int err = ingest_commit_start(database_url, settings.committers, settings.queue_max,
                                  settings.batch_max);

    if (err != SRV_OK)
        return err;
    maint_conninfo = strdup(database_url);
    maint_stop = 0;
    if (!maint_conninfo || pthread_create(&maint_thread, NULL, maint_main, NULL) != 0) {
        free(maint_conninfo);
        maint_conninfo = NULL;
        ingest_commit_stop();
        return SRV_EINTERNAL;
    }
    maint_running = 1;
    srv_log("info", "fleet: %u committer(s), batch %u, queue %u, device rate %g/s burst %g, "
            "retention %u days", settings.committers, settings.batch_max, settings.queue_max,
            settings.device_rate, settings.device_burst, settings.retention_days);
    return SRV_OK;
}

void fleet_stop(void)
{
    if (maint_running) {
        pthread_mutex_lock(&maint_mu);
        maint_stop = 1;
        pthread_cond_broadcast(&maint_cv);
        pthread_mutex_unlock(&maint_mu);
        pthread_join(maint_thread, NULL);
        maint_running = 0;
        free(maint_conninfo);
        maint_conninfo = NULL;
    }
    ingest_commit_stop();
}

int fleet_maintain(void *conn, unsigned retention_days, int *dropped)
{
    char days[16];
    const char *vals[1] = { days };
    PGresult *r;
    int err = SRV_OK;

    snprintf(days, sizeof days, "%u", retention_days);
    r = PQexecParams(conn, "SELECT snapshots_maintain($1::int)", 1, NULL, vals, NULL, NULL, 0);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        srv_log("error", "fleet: snapshots_maintain: %s", PQerrorMessage(conn));
        err = SRV_EDB;
    } else {
        *dropped = atoi(PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    return err;
}
