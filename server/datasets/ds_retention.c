/* ds_retention.c - how long export files stay and how much of the disk they
 * may take, kept apart from the writer (ds_jobs.c) on purpose.
 *
 * A finished export file was kept forever and DELETE answered 409, so a
 * token that may export could fill the disk.  Now:
 *   - DELETE /api/v1/export-jobs/{id} cancels a queued or running job (as
 *     before) and deletes a finished job's file (status "deleted");
 *   - files of jobs finished longer than the retention ago are deleted the
 *     same way, swept before every new job and when a file is asked for;
 *   - a new job is refused (409) while the kept files and the jobs still
 *     writing already hold the quota.
 * The row stays (status, bytes, sha256), so what was exported stays known. */
#include "server/datasets/ds_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "server/db/db.h"
#include "server/srv/srv.h"

static unsigned retention_hours = DS_EXPORT_RETENTION_H;
static uint64_t quota_bytes = (uint64_t)DS_EXPORT_QUOTA_MB << 20;

enum { RQ_FINISHED, RQ_EXPIRED, RQ_MARK_DELETED, RQ_HELD, RQ_COUNT };

static const struct db_sql retention_sql[RQ_COUNT] = {
    [RQ_FINISHED] = { "ds_retention_finished",
        "SELECT id, format, status FROM export_jobs WHERE id = $1::bigint", 1 },
    /* $1: retention in hours */
    [RQ_EXPIRED] = { "ds_retention_expired",
        "SELECT id, format FROM export_jobs WHERE status = 'done'"
        " AND finished_at < now() - $1::int * interval '1 hour' ORDER BY id LIMIT 1000", 1 },
    [RQ_MARK_DELETED] = { "ds_retention_mark_deleted",
        "UPDATE export_jobs SET status = 'deleted'"
        " WHERE id = $1::bigint AND status IN ('done', 'failed') RETURNING id", 1 },
    /* the bytes kept on disk, and those of jobs still writing */
    [RQ_HELD] = { "ds_retention_held",
        "SELECT coalesce(sum(bytes), 0)::bigint AS bytes FROM export_jobs"
        " WHERE status IN ('done', 'running', 'queued')", 0 },
};

void ds_set_export_limits(unsigned hours, unsigned quota_mb)
{
    if (hours)
        retention_hours = hours;
    if (quota_mb)
        quota_bytes = (uint64_t)quota_mb << 20;
}

/* Unlink a finished job's file and mark its row; the row first, so a
 * concurrent download either sees the file or "deleted". */
static int delete_file(int64_t id, const char *format)
{
    char idb[24], path[600];
    const char *vals[1] = { idb };
    enum ds_format fmt;
    PGresult *r = NULL;
    int err;

    snprintf(idb, sizeof idb, "%lld", (long long)id);
    err = db_exec_own(&retention_sql[RQ_MARK_DELETED], vals, NULL, NULL, 0, &r);
    PQclear(r);
    if (err != SRV_OK || ds__format_parse(format, &fmt) != SRV_OK)
        return err;
    ds__job_file(id, fmt, path, sizeof path);
    if (unlink(path) != 0 && errno != ENOENT)
        srv_log("warn", "datasets: cannot delete export file of job %lld: %s", (long long)id,
                strerror(errno));
    return SRV_OK;
}

int ds_exports_sweep(void)
{
    char hb[16];
    const char *vals[1] = { hb };
    PGresult *r = NULL;
    int err, i, n;

    snprintf(hb, sizeof hb, "%u", retention_hours);
    err = db_exec_own(&retention_sql[RQ_EXPIRED], vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    n = PQntuples(r);
    for (i = 0; i < n && err == SRV_OK; i++)
        err = delete_file(db_int64(r, i, "id"), db_text_or(r, i, "format", ""));
    PQclear(r);
    if (n)
        srv_log("info", "datasets: %d export file(s) past %u h deleted", n, retention_hours);
    return err;
}

int ds_api_job_delete(struct srv_request *rq, struct srv_response *rs)
{
    char idb[24];
    const char *vals[1] = { idb };
    PGresult *r = NULL;
    char status[16], format[16];
    int64_t id;
    int err;

    if ((err = ds__param_id(rq, &id, rs)) != SRV_OK)
        return err;
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    if ((err = db_exec_own(&retention_sql[RQ_FINISHED], vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return srv_fail(rs, SRV_ENOTFOUND, "no such export job");
    }
    snprintf(status, sizeof status, "%s", db_text_or(r, 0, "status", ""));
    snprintf(format, sizeof format, "%s", db_text_or(r, 0, "format", ""));
    PQclear(r);
    if (strcmp(status, "queued") == 0 || strcmp(status, "running") == 0)
        return ds_api_job_cancel(rq, rs);
    if (strcmp(status, "done") == 0 || strcmp(status, "failed") == 0) {
        if ((err = delete_file(id, format)) != SRV_OK)
            return err;
        srv_log("info", "datasets: export job %lld's file deleted on request", (long long)id);
    }
    return srv_respond_json_take(rs, 200, json_pack("{s:I,s:s}", "id", (json_int_t)id,
                                                    "status", strcmp(status, "cancelled") == 0
                                                                  ? "cancelled" : "deleted"));
}

int ds_api_job_create_bounded(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    uint64_t held;
    int err;

    if ((err = ds_exports_sweep()) != SRV_OK)
        return err;
    if ((err = db_exec_own(&retention_sql[RQ_HELD], NULL, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    held = (uint64_t)db_int64(r, 0, "bytes");
    PQclear(r);
    if (held >= quota_bytes)
        return srv_failf(rs, SRV_ECONFLICT, "export files hold %llu MiB of the %llu MiB quota:"
                         " delete finished ones (DELETE /api/v1/export-jobs/{id})",
                         (unsigned long long)(held >> 20),
                         (unsigned long long)(quota_bytes >> 20));
    return ds_api_job_create(rq, rs);
}

int ds_api_job_file_kept(struct srv_request *rq, struct srv_response *rs)
{
    char idb[24];
    const char *vals[1] = { idb };
    PGresult *r = NULL;
    int64_t id;
    int err, deleted;

    if ((err = ds_exports_sweep()) != SRV_OK || (err = ds__param_id(rq, &id, rs)) != SRV_OK)
        return err;
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    if ((err = db_exec_own(&retention_sql[RQ_FINISHED], vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    deleted = PQntuples(r) == 1 && strcmp(db_text_or(r, 0, "status", ""), "deleted") == 0;
    PQclear(r);
    if (deleted)
        return srv_failf(rs, SRV_ENOTFOUND, "the export file was deleted (on request, or %u h"
                         " after the job finished)", retention_hours);
    return ds_api_job_file(rq, rs);
}
