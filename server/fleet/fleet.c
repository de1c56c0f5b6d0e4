/* fleet.c - the module's settings, and start/stop of the maintenance thread
 * that keeps snapshot partitions ahead of time and applies the retention
 * setting. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/db/db.h"
#include "server/fleet/fleet.h"
#include "server/srv/srv.h"

#define MAINT_PERIOD_S 3600

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
    maint_conninfo = strdup(database_url);
    maint_stop = 0;
    if (!maint_conninfo || pthread_create(&maint_thread, NULL, maint_main, NULL) != 0) {
        free(maint_conninfo);
        maint_conninfo = NULL;
        return SRV_EINTERNAL;
    }
    maint_running = 1;
    srv_log("info", "fleet: device rate %g/s burst %g, retention %u days", settings.device_rate,
            settings.device_burst, settings.retention_days);
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
