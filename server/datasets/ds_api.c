/* ds_api.c - the datasets REST routes: definitions, versions, streamed
 * exports, the manifest and export jobs.
 *
 * Creating datasets, versions and jobs needs the ml or admin role; reading
 * needs any role.  Exports stream through srv_response.stream, so the
 * server holds one window and one page of rows per download.  Export jobs
 * run in a detached thread each (bounded), write <dir>/job-<id>.<ext>.part
 * and rename it when complete; a cancelled or failed job unlinks its file,
 * so nothing is left behind. */
#include "server/datasets/ds_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/db/db.h"
#include "server/text/text.h"
#include "server/srv/srv.h"

#define DS_JOBS_MAX 4           /* export jobs running at once */

static char export_dir[512] = "var/exports";
static atomic_int jobs_running;

void ds_set_export_dir(const char *dir)
{
    snprintf(export_dir, sizeof export_dir, "%s", dir);
}

static int fail(struct srv_response *rs, int err, const char *msg)
{
    rs->err_message = msg;
    return err;
}

static int fail_owned(struct srv_response *rs, int err, char *msg)
{
    rs->err_message_owned = msg;
    return err;
}

static int need_writer(const struct srv_request *rq, struct srv_response *rs)
{
    if (rq->role != SRV_ROLE_ML && rq->role != SRV_ROLE_ADMIN)
        return fail(rs, SRV_EFORBIDDEN, "needs the ml or admin role");
    return SRV_OK;
}

static int need_reader(const struct srv_request *rq, struct srv_response *rs)
{
    return rq->role == SRV_ROLE_NONE ? fail(rs, SRV_EFORBIDDEN, "no role") : SRV_OK;
}

static void actor(const struct srv_request *rq, char *out, size_t cap)
{
    if (rq->user_id > 0)
        snprintf(out, cap, "%s", rq->user_name);
    else
        snprintf(out, cap, "token:%lld", (long long)rq->token_id);
}

static int param_id(const struct srv_request *rq, int i, int64_t *out, struct srv_response *rs)
{
    if (!rq->params[i] || text_parse_id(rq->params[i], out) != 0)
        return fail(rs, SRV_ENOTFOUND, "no such dataset, version or job");
    return SRV_OK;
}

static int param_version(const struct srv_request *rq, int *out, struct srv_response *rs)
{
    int64_t v;

    if (!rq->params[1] || text_parse_id(rq->params[1], &v) != 0 || v > 1000000000)
        return fail(rs, SRV_ENOTFOUND, "no such version");
    *out = (int)v;
    return SRV_OK;
}

static json_t *parse_body(const struct srv_request *rq)
{
    return rq->body && rq->body_len ? json_loadb((const char *)rq->body, rq->body_len, 0, NULL) : NULL;
}

/* ---- datasets ------------------------------------------------------------ */

int ds_api_create(struct srv_request *rq, struct srv_response *rs)
{
    json_t *body = NULL, *def = NULL;
    const char *why = "body must be a JSON object", *vals[3];
    char by[80], *defs = NULL;
    PGresult *r = NULL;
    int err;

    if ((err = need_writer(rq, rs)) != SRV_OK)
        return err;
    if (!(body = parse_body(rq)) || !(def = ds__definition(body, &why))) {
        json_decref(body);
        return fail(rs, SRV_EBADREQ, why);
    }
    actor(rq, by, sizeof by);
    defs = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
    vals[0] = json_string_value(json_object_get(def, "name"));
    vals[1] = defs;
    vals[2] = by;
    err = defs ? ds__exec(DS_SQL_CREATE, vals, 0, &r) : SRV_ENOMEM;
    if (err == SRV_OK)
        err = srv_respond_json_take(rs, 201, json_pack("{s:I}", "id",
                                                       (json_int_t)strtoll(PQgetvalue(r, 0, 0), NULL, 10)));
    PQclear(r);
    free(defs);
    json_decref(def);
    json_decref(body);
    return err;
}

static json_t *dataset_json(PGresult *r, int i)
{
    char ts[64];

    snprintf(ts, sizeof ts, "%s", PQgetvalue(r, i, 3));
    return json_pack("{s:I,s:s,s:o,s:s}", "id", (json_int_t)strtoll(PQgetvalue(r, i, 0), NULL, 10),
                     "name", PQgetvalue(r, i, 1),
                     "definition", json_loads(PQgetvalue(r, i, 2), 0, NULL), "created_at", ts);
}

int ds_api_list(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    json_t *items;
    int err, i;

    if ((err = need_reader(rq, rs)) != SRV_OK)
        return err;
    if ((err = ds__exec(DS_SQL_LIST, NULL, 0, &r)) != SRV_OK)
        return err;
    items = json_array();
    for (i = 0; items && i < PQntuples(r); i++) {
        json_t *d = dataset_json(r, i);

        json_object_set_new(d, "versions", json_integer(strtoll(PQgetvalue(r, i, 4), NULL, 10)));
        json_array_append_new(items, d);
    }
    PQclear(r);
    return srv_respond_json_take(rs, 200, items ? json_pack("{s:o}", "items", items) : NULL);
}

int ds_api_get(struct srv_request *rq, struct srv_response *rs)
{
    char idb[24];
    const char *vals[1] = { idb };
    PGresult *r = NULL, *v = NULL;
    json_t *d, *vs;
    int64_t id;
    int err, i;

    if ((err = need_reader(rq, rs)) != SRV_OK || (err = param_id(rq, 0, &id, rs)) != SRV_OK)
        return err;
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    if ((err = ds__exec(DS_SQL_GET, vals, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return fail(rs, SRV_ENOTFOUND, "no such dataset");
    }
    if ((err = ds__exec(DS_SQL_VERSIONS, vals, 0, &v)) != SRV_OK) {
        PQclear(r);
        return err;
    }
    d = dataset_json(r, 0);
    vs = json_array();
    for (i = 0; i < PQntuples(v); i++)
        json_array_append_new(vs, json_pack("{s:i,s:s,s:I,s:s}", "version", atoi(PQgetvalue(v, i, 0)),
                                            "content_sha256", PQgetvalue(v, i, 1),
                                            "n_windows", (json_int_t)strtoll(PQgetvalue(v, i, 2), NULL, 10),
                                            "created_at", PQgetvalue(v, i, 3)));
    json_object_set_new(d, "versions", vs);
    PQclear(r);
    PQclear(v);
    return srv_respond_json_take(rs, 200, d);
}

int ds_api_version_create(struct srv_request *rq, struct srv_response *rs)
{
    char by[80], *why = NULL;
    int64_t id;
    int err, version = 0;

    if ((err = need_writer(rq, rs)) != SRV_OK || (err = param_id(rq, 0, &id, rs)) != SRV_OK)
        return err;
    actor(rq, by, sizeof by);
    err = ds__version_create(id, by, &version, &why);
    if (err == SRV_ENOTFOUND) {
        free(why);
        return fail(rs, err, "no such dataset");
    }
    if (err != SRV_OK)
        return why ? fail_owned(rs, err, why) : err;
    free(why);
    return srv_respond_json_take(rs, 201, json_pack("{s:i}", "version", version));
}

int ds_api_version_get(struct srv_request *rq, struct srv_response *rs)
{
    char idb[24], vb[16];
    const char *vals[2] = { idb, vb };
    PGresult *r = NULL;
    int64_t id;
    int err, v;
    json_t *j;

    if ((err = need_reader(rq, rs)) != SRV_OK || (err = param_id(rq, 0, &id, rs)) != SRV_OK ||
        (err = param_version(rq, &v, rs)) != SRV_OK)
        return err;
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    snprintf(vb, sizeof vb, "%d", v);
    if ((err = ds__exec(DS_SQL_VERSION_GET, vals, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return fail(rs, SRV_ENOTFOUND, "no such dataset version");
    }
    j = json_pack("{s:I,s:i,s:s,s:I,s:o,s:s}", "dataset_id", (json_int_t)id, "version", v,
                  "content_sha256", PQgetvalue(r, 0, 0),
                  "n_windows", (json_int_t)strtoll(PQgetvalue(r, 0, 1), NULL, 10),
                  "summary", json_loads(PQgetvalue(r, 0, 2), 0, NULL), "created_at", PQgetvalue(r, 0, 5));
    PQclear(r);
    return srv_respond_json_take(rs, 200, j);
}

/* ---- streamed export ----------------------------------------------------- */

static ssize_t export_stream(void *ctx, uint64_t pos, char *buf, size_t max)
{
    struct ds_export *e = ctx;
    const char *p;
    size_t len;
    int rc;

    (void)pos;
    for (;;) {
        p = ds__export_pending(e, &len);
        if (len > 0)
            break;
        rc = ds__export_step(e);
        if (rc == 0)
            return SRV_STREAM_END;
        if (rc < 0) {
            srv_log("error", "datasets: export failed mid-stream: %s", srv_err_code(rc));
            return SRV_STREAM_ERROR;
        }
    }
    if (len > max)
        len = max;
    memcpy(buf, p, len);
    ds__export_consume(e, len);
    return (ssize_t)len;
}

static void export_stream_free(void *ctx)
{
    ds__export_free(ctx);
}

int ds_api_export(struct srv_request *rq, struct srv_response *rs)
{
    struct ds_export *e = NULL;
    enum ds_format f;
    int64_t id;
    int err, v;

    if ((err = need_reader(rq, rs)) != SRV_OK || (err = param_id(rq, 0, &id, rs)) != SRV_OK ||
        (err = param_version(rq, &v, rs)) != SRV_OK)
        return err;
    if (ds__format_parse(rq->query ? rq->query(rq, "format") : NULL, &f) != SRV_OK)
        return fail(rs, SRV_EBADREQ, "format must be npz, jsonl or csv");
    if ((err = ds__export_open(id, v, f, &e)) != SRV_OK)
        return err == SRV_ENOTFOUND ? fail(rs, err, "no such dataset version") : err;
    rs->status = 200;
    rs->content_type = ds__format_ctype(f);
    rs->stream = export_stream;
    rs->stream_free = export_stream_free;
    rs->stream_ctx = e;
    rs->stream_size = SRV_STREAM_SIZE_UNKNOWN;
    return SRV_OK;
}

int ds_api_manifest(struct srv_request *rq, struct srv_response *rs)
{
    char *m = NULL;
    size_t len = 0;
    int64_t id;
    int err, v;

    if ((err = need_reader(rq, rs)) != SRV_OK || (err = param_id(rq, 0, &id, rs)) != SRV_OK ||
        (err = param_version(rq, &v, rs)) != SRV_OK)
        return err;
    if ((err = ds__manifest(id, v, &m, &len)) != SRV_OK)
        return err == SRV_ENOTFOUND ? fail(rs, err, "no such dataset version") : err;
    rs->status = 200;
    rs->content_type = "application/json";
    rs->body = m;
    rs->body_len = len;
    return SRV_OK;
}

/* ---- export jobs --------------------------------------------------------- */

struct job {
    int64_t id, dataset_id;
    int version;
    enum ds_format fmt;
};

static void job_path(const struct job *j, int part, char *out, size_t cap)
{
    snprintf(out, cap, "%s/job-%lld.%s%s", export_dir, (long long)j->id, ds__format_ext(j->fmt),
             part ? ".part" : "");
}

static void job_finish(const struct job *j, const char *status, int64_t bytes, const char *sha,
                       const char *error)
{
    char idb[24], bb[24];
    const char *vals[5] = { idb, status, bb, sha, error };

    snprintf(idb, sizeof idb, "%lld", (long long)j->id);
    snprintf(bb, sizeof bb, "%lld", (long long)bytes);
    (void)ds__exec(DS_SQL_JOB_FINISH, vals, 0, NULL);
}

/* 1 when the job was cancelled meanwhile. */
static int job_progress(const struct job *j, int64_t done, int64_t bytes)
{
    char idb[24], db_[24], bb[24];
    const char *vals[3] = { idb, db_, bb };
    PGresult *r = NULL;
    int cancelled = 0;

    snprintf(idb, sizeof idb, "%lld", (long long)j->id);
    snprintf(db_, sizeof db_, "%lld", (long long)done);
    snprintf(bb, sizeof bb, "%lld", (long long)bytes);
    if (ds__exec(DS_SQL_JOB_PROGRESS, vals, 0, &r) == SRV_OK)
        cancelled = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "cancelled") == 0;
    PQclear(r);
    return cancelled;
}

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* mkdir -p: the default folder is var/exports under the working directory. */
static int mkdir_parents(const char *dir)
{
    char p[sizeof export_dir];
    size_t i;

    snprintf(p, sizeof p, "%s", dir);
    for (i = 1; p[i]; i++) {
        if (p[i] != '/')
            continue;
        p[i] = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return -1;
        p[i] = '/';
    }
    return mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static void *job_main(void *arg)
{
    struct job *j = arg;
    struct ds_export *e = NULL;
    char part[600], final[600], hex[65];
    crypto_hash_sha256_state sha;
    uint8_t digest[32];
    int64_t bytes = 0, done, total;
    double last = 0;
    int fd = -1, rc, cancelled = 0;
    const char *why = NULL;

    job_path(j, 1, part, sizeof part);
    job_path(j, 0, final, sizeof final);
    crypto_hash_sha256_init(&sha);
    if (mkdir_parents(export_dir) != 0) {
        why = "cannot create the export folder";
        goto fail;
    }
    if ((fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        why = "cannot create the export file";
        goto fail;
    }
    if (ds__export_open(j->dataset_id, j->version, j->fmt, &e) != SRV_OK) {
        why = "cannot open the version";
        goto fail;
    }
    while ((rc = ds__export_step(e)) == 1) {
        size_t len;
        const char *p = ds__export_pending(e, &len);

        while (len > 0) {
            ssize_t w = write(fd, p, len);

            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                why = "write failed (disk full?)";
                goto fail;
            }
            crypto_hash_sha256_update(&sha, (const uint8_t *)p, (size_t)w);
            ds__export_consume(e, (size_t)w);
            p += w;
            len -= (size_t)w;
            bytes += w;
        }
        if (now_s() - last > 0.25) {
            last = now_s();
            ds__export_progress(e, &done, &total);
            if (job_progress(j, done, bytes)) {
                cancelled = 1;
                goto fail;
            }
        }
    }
    if (rc < 0) {
        why = "export failed";
        goto fail;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        why = "write failed";
        goto fail;
    }
    fd = -1;
    /* A cancel that raced the last step still wins: nothing kept. */
    ds__export_progress(e, &done, &total);
    if (job_progress(j, done, bytes)) {
        cancelled = 1;
        goto fail;
    }
    if (rename(part, final) != 0) {
        why = "rename failed";
        goto fail;
    }
    crypto_hash_sha256_final(&sha, digest);
    ds__hex(digest, 32, hex);
    job_finish(j, "done", bytes, hex, NULL);
    goto out;
fail:
    if (fd >= 0)
        close(fd);
    unlink(part);
    if (!cancelled)
        job_finish(j, "failed", bytes, NULL, why ? why : "export failed");
    else
        srv_log("info", "datasets: export job %lld cancelled, file removed", (long long)j->id);
out:
    ds__export_free(e);
    db_thread_release();
    atomic_fetch_sub(&jobs_running, 1);
    free(j);
    return NULL;
}

int ds_api_job_create(struct srv_request *rq, struct srv_response *rs)
{
    char idb[24], vb[16], tb[24], by[80];
    const char *vals[5];
    json_t *body = NULL;
    struct ds_reader *rd = NULL;
    struct job *j = NULL;
    PGresult *r = NULL;
    pthread_t t;
    pthread_attr_t at;
    enum ds_format f;
    int64_t id;
    int err, v;

    if ((err = need_writer(rq, rs)) != SRV_OK || (err = param_id(rq, 0, &id, rs)) != SRV_OK ||
        (err = param_version(rq, &v, rs)) != SRV_OK)
        return err;
    body = parse_body(rq);
    if (rq->body_len && !json_is_object(body)) {
        json_decref(body);
        return fail(rs, SRV_EBADREQ, "body must be a JSON object");
    }
    err = ds__format_parse(json_string_value(json_object_get(body, "format")), &f);
    if (err == SRV_OK && json_object_get(body, "format") && !json_is_string(json_object_get(body, "format")))
        err = SRV_EBADREQ;
    json_decref(body);
    if (err != SRV_OK)
        return fail(rs, SRV_EBADREQ, "format must be npz, jsonl or csv");
    if ((err = ds_reader_open(id, v, &rd)) != SRV_OK)
        return err == SRV_ENOTFOUND ? fail(rs, err, "no such dataset version") : err;
    snprintf(tb, sizeof tb, "%lld", (long long)(f == DS_FMT_NPZ ? ds_reader_info(rd)->n_windows * 6
                                                                : ds_reader_info(rd)->n_windows));
    ds_reader_free(rd);
    if (atomic_fetch_add(&jobs_running, 1) >= DS_JOBS_MAX) {
        atomic_fetch_sub(&jobs_running, 1);
        rs->retry_after = 10;
        return fail(rs, SRV_EOVERLOAD, "too many export jobs running; retry later");
    }
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    snprintf(vb, sizeof vb, "%d", v);
    actor(rq, by, sizeof by);
    vals[0] = idb;
    vals[1] = vb;
    vals[2] = ds__format_ext(f);
    vals[3] = tb;
    vals[4] = by;
    if ((err = ds__exec(DS_SQL_JOB_INSERT, vals, 0, &r)) != SRV_OK || !(j = calloc(1, sizeof *j))) {
        atomic_fetch_sub(&jobs_running, 1);
        PQclear(r);
        return err != SRV_OK ? err : SRV_ENOMEM;
    }
    j->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    j->dataset_id = id;
    j->version = v;
    j->fmt = f;
    PQclear(r);
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, job_main, j) != 0) {
        pthread_attr_destroy(&at);
        job_finish(j, "failed", 0, NULL, "cannot start a thread");
        atomic_fetch_sub(&jobs_running, 1);
        free(j);
        return SRV_EINTERNAL;
    }
    pthread_attr_destroy(&at);
    snprintf(idb, sizeof idb, "%lld", (long long)j->id);
    return srv_respond_json_take(rs, 202, json_pack("{s:I}", "id", (json_int_t)strtoll(idb, NULL, 10)));
}

static int job_load(const struct srv_request *rq, struct srv_response *rs, PGresult **out)
{
    char idb[24];
    const char *vals[1] = { idb };
    int64_t id;
    int err;

    if ((err = need_reader(rq, rs)) != SRV_OK || (err = param_id(rq, 0, &id, rs)) != SRV_OK)
        return err;
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    if ((err = ds__exec(DS_SQL_JOB_GET, vals, 0, out)) != SRV_OK)
        return err;
    if (PQntuples(*out) != 1) {
        PQclear(*out);
        *out = NULL;
        return fail(rs, SRV_ENOTFOUND, "no such export job");
    }
    return SRV_OK;
}

int ds_api_job_get(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    int64_t total, done;
    json_t *j;
    int err;

    if ((err = job_load(rq, rs, &r)) != SRV_OK)
        return err;
    total = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    done = strtoll(PQgetvalue(r, 0, 6), NULL, 10);
    j = json_pack("{s:I,s:I,s:i,s:s,s:s,s:I,s:I,s:f,s:I,s:s}",
                  "id", (json_int_t)strtoll(PQgetvalue(r, 0, 0), NULL, 10),
                  "dataset_id", (json_int_t)strtoll(PQgetvalue(r, 0, 1), NULL, 10),
                  "version", atoi(PQgetvalue(r, 0, 2)), "format", PQgetvalue(r, 0, 3),
                  "status", PQgetvalue(r, 0, 4), "rows_total", (json_int_t)total,
                  "rows_done", (json_int_t)done,
                  "percent", total > 0 ? 100.0 * (double)done / (double)total : 0.0,
                  "bytes", (json_int_t)strtoll(PQgetvalue(r, 0, 7), NULL, 10),
                  "created_at", PQgetvalue(r, 0, 10));
    if (j && !PQgetisnull(r, 0, 8))
        json_object_set_new(j, "sha256", json_string(PQgetvalue(r, 0, 8)));
    if (j && !PQgetisnull(r, 0, 9))
        json_object_set_new(j, "error", json_string(PQgetvalue(r, 0, 9)));
    PQclear(r);
    return srv_respond_json_take(rs, 200, j);
}

int ds_api_job_cancel(struct srv_request *rq, struct srv_response *rs)
{
    char idb[24];
    const char *vals[1] = { idb };
    PGresult *r = NULL;
    int64_t id;
    int err;

    if ((err = need_writer(rq, rs)) != SRV_OK || (err = param_id(rq, 0, &id, rs)) != SRV_OK)
        return err;
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    if ((err = ds__exec(DS_SQL_JOB_CANCEL, vals, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return fail(rs, SRV_ENOTFOUND, "no such export job");
    }
    if (strcmp(PQgetvalue(r, 0, 0), "cancelled") != 0) {
        PQclear(r);
        return fail(rs, SRV_ECONFLICT, "the job has finished already");
    }
    PQclear(r);
    return srv_respond_json_take(rs, 202, json_pack("{s:s}", "status", "cancelled"));
}

struct file_stream {
    int fd;
};

static ssize_t file_stream_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
    struct file_stream *f = ctx;
    ssize_t n = pread(f->fd, buf, max, (off_t)pos);

    return n > 0 ? n : n == 0 ? SRV_STREAM_END : SRV_STREAM_ERROR;
}

static void file_stream_free(void *ctx)
{
    struct file_stream *f = ctx;

    close(f->fd);
    free(f);
}

int ds_api_job_file(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    struct job j;
    struct file_stream *fs;
    struct stat st;
    char path[600];
    int err, fd;

    if ((err = job_load(rq, rs, &r)) != SRV_OK)
        return err;
    if (strcmp(PQgetvalue(r, 0, 4), "done") != 0) {
        PQclear(r);
        return fail(rs, SRV_ECONFLICT, "the job has not finished");
    }
    memset(&j, 0, sizeof j);
    j.id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    ds__format_parse(PQgetvalue(r, 0, 3), &j.fmt);
    PQclear(r);
    job_path(&j, 0, path, sizeof path);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return fail(rs, SRV_ENOTFOUND, "the export file is gone");
    if (fstat(fd, &st) != 0 || !(fs = malloc(sizeof *fs))) {
        close(fd);
        return SRV_EINTERNAL;
    }
    fs->fd = fd;
    rs->status = 200;
    rs->content_type = ds__format_ctype(j.fmt);
    rs->stream = file_stream_read;
    rs->stream_free = file_stream_free;
    rs->stream_ctx = fs;
    rs->stream_size = (uint64_t)st.st_size;
    return SRV_OK;
}
