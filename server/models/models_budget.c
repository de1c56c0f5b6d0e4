/* models_budget.c - the fleet's alarm budget: how many alerts a model may
 * raise, which the anomaly threshold is calibrated to at training and which
 * promotion and automatic rollback hold deployed models to (server/deploy).
 * One row (alarm_budget, migrations/0050); its SQL is listed here. */
#include "server/models/models.h"

#include <stdio.h>
#include <stdlib.h>

#include "server/db/db.h"
#include "server/srv/srv.h"

enum { B_GET, B_SET, B_COUNT };
static const struct db_sql budget_sql[B_COUNT] = {
    [B_GET] = { "models_budget_get",
        "SELECT b.per_operator_hour, b.devices_per_operator, b.rollback_after_s,"
        " (SELECT count(*) FROM devices WHERE status = 'active' AND NOT demo) AS active_devices,"
        " b.updated_by, (extract(epoch FROM b.updated_at) * 1000000)::bigint AS updated_us"
        " FROM alarm_budget b WHERE b.id = 1", 0 },
    [B_SET] = { "models_budget_set",
        "UPDATE alarm_budget SET per_operator_hour = $1::float8, devices_per_operator = $2::int,"
        " rollback_after_s = $3::float8, updated_by = $4, updated_at = now() WHERE id = 1", 4 },
};

int models_budget_get(struct models_budget *out)
{
    PGresult *r = NULL;
    struct models_budget b;
    int err;

    if ((err = db_exec_own(&budget_sql[B_GET], NULL, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return SRV_EINTERNAL;   /* the migration inserts the row */
    }
    b.per_operator_hour = db_double(r, 0, "per_operator_hour");
    b.devices_per_operator = (int)db_int64(r, 0, "devices_per_operator");
    b.rollback_after_s = db_double(r, 0, "rollback_after_s");
    b.active_devices = (long)db_int64(r, 0, "active_devices");
    snprintf(b.updated_by, sizeof b.updated_by, "%s", db_text_or(r, 0, "updated_by", ""));
    b.updated_us = db_int64(r, 0, "updated_us");
    PQclear(r);
    *out = b;
    return SRV_OK;
}

int models_budget_set(double per_operator_hour, int devices_per_operator, double rollback_after_s,
                      const char *by)
{
    char a[32], d[16], p[32];
    const char *vals[4] = { a, d, p, by };

    if (!(per_operator_hour > 0) || per_operator_hour > 1e6 || devices_per_operator < 0 ||
        devices_per_operator > 1000000 || !(rollback_after_s > 0) || rollback_after_s > 1e7)
        return SRV_EBADREQ;
    snprintf(a, sizeof a, "%.17g", per_operator_hour);
    snprintf(d, sizeof d, "%d", devices_per_operator);
    snprintf(p, sizeof p, "%.17g", rollback_after_s);
    return db_exec_own(&budget_sql[B_SET], vals, NULL, NULL, 0, NULL);
}

double models_budget_device_per_hour(const struct models_budget *b, double hold_off_s)
{
    long n = b->devices_per_operator > 0 ? b->devices_per_operator : b->active_devices;
    double share = b->per_operator_hour / (double)(n > 0 ? n : 1);

    /* A device alarms at most once per hold-off, whatever its model says. */
    if (hold_off_s > 0 && 3600.0 / hold_off_s < share)
        share = 3600.0 / hold_off_s;
    return share;
}
