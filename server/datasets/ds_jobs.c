/* ds_jobs.c - export jobs: an export written to a file by a background
 * thread, for versions too large to stream in one request.
 *
 * Each job runs in a detached thread of its own (at most DS_JOBS_MAX at
 * once), writes <dir>/job-<id>.<ext>.part and renames it when complete; a
 * cancelled or failed job unlinks its file, so nothing is left behind.  The
 * job's row carries its progress, and a cancel is noticed at the next
 * progress update. */
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

#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/srv/srv.h"
#include "server/text/text.h"

#define DS_JOBS_MAX 4           /* export jobs running at once */

static char export_dir[512] = "var/exports";
static atomic_int jobs_running;
static atomic_int jobs_stopping;    /* serve is stopping: every job ends, its file removed */

#define JOB_STOPPED_WHY "the server stopped during the export; start the job again"

void ds_set_export_dir(const char *dir)
{
    snprintf(export_dir, sizeof export_dir, "%s", dir);
}

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

/* Record progress; 1 when the job was cancelled meanwhile. */
static int job_progress(const struct job *j, const struct ds_export *e, int64_t bytes)
{
    char idb[24], db_[24], bb[24];
    const char *vals[3] = { idb, db_, bb };
    PGresult *r = NULL;
    int64_t done, total;
    int cancelled = 0;

    ds__export_progress(e, &done, &total);
    snprintf(idb, sizeof idb, "%lld", (long long)j->id);
    snprintf(db_, sizeof db_, "%lld", (long long)done);
    snprintf(bb, sizeof bb, "%lld", (long long)bytes);
    if (ds__exec(DS_SQL_JOB_PROGRESS, vals, 0, &r) == SRV_OK)
        cancelled = PQntuples(r) == 1 && strcmp(db_text_or(r, 0, "status", ""), "cancelled") == 0;
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

/* Where a job's file stands while it is written. */
struct job_file {
    int fd;
    int64_t bytes;
    crypto_hash_sha256_state sha;
    int cancelled;
};

/* Everything produced so far into the file (and its hash). */
static const char *job_drain(struct ds_export *e, struct job_file *f)
{
    size_t len;
    const char *p = ds__export_pending(e, &len);

    while (len > 0) {
        ssize_t w = write(f->fd, p, len);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return "write failed (disk full?)";
        crypto_hash_sha256_update(&f->sha, (const uint8_t *)p, (size_t)w);
        ds__export_consume(e, (size_t)w);
        p += w;
        len -= (size_t)w;
        f->bytes += w;
    }
    return NULL;
}

/* The whole export into f, with progress every quarter second; NULL when
 * complete (or cancelled: f->cancelled), else why it failed. */
static const char *job_write(const struct job *j, struct job_file *f)
{
    struct ds_export *e = NULL;
    const char *why = NULL;
    double last = 0;
    int rc = 0;

    if (ds__export_open(j->dataset_id, j->version, j->fmt, &e) != SRV_OK)
        return "cannot open the version";
    while (!why && (rc = ds__export_step(e)) == 1) {
        if (atomic_load(&jobs_stopping)) {
            why = JOB_STOPPED_WHY;
            break;
        }
        if ((why = job_drain(e, f)) || now_s() - last <= 0.25)
            continue;
        last = now_s();
        if ((f->cancelled = job_progress(j, e, f->bytes)))
            break;
    }
    if (!why && !f->cancelled && rc < 0)
        why = "export failed";
    if (!why && !f->cancelled) {
        int bad = fsync(f->fd) != 0;

        bad |= close(f->fd) != 0;
        f->fd = -1;
        if (bad)
            why = "write failed";
        else    /* a cancel that raced the last step still wins: nothing kept */
            f->cancelled = job_progress(j, e, f->bytes);
    }
    ds__export_free(e);
    return why;
}

static void *job_main(void *arg)
{
    struct job *j = arg;
    struct job_file f = { .fd = -1 };
    char part[600], final[600], hex[65];
    uint8_t digest[32];
    const char *why = NULL;

    job_path(j, 1, part, sizeof part);
    job_path(j, 0, final, sizeof final);
    crypto_hash_sha256_init(&f.sha);
    if (mkdir_parents(export_dir) != 0)
        why = "cannot create the export folder";
    else if ((f.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        why = "cannot create the export file";
    else if (!(why = job_write(j, &f)) && !f.cancelled && rename(part, final) != 0)
        why = "rename failed";
    if (!why && !f.cancelled) {
        crypto_hash_sha256_final(&f.sha, digest);
        sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
        job_finish(j, "done", f.bytes, hex, NULL);
    } else {
        if (f.fd >= 0)
            close(f.fd);
        unlink(part);
        if (!f.cancelled)
            job_finish(j, "failed", f.bytes, NULL, why);
        if (why && strcmp(why, JOB_STOPPED_WHY) == 0)
            srv_log("info", "datasets: export job %lld ended by the stop, file removed",
                    (long long)j->id);
        else
            srv_log("info", "datasets: export job %lld cancelled, file removed", (long long)j->id);
    }
    db_thread_release();
    atomic_fetch_sub(&jobs_running, 1);
    free(j);
    return NULL;
}

int ds_jobs_stop(unsigned wait_ms)
{
    unsigned waited = 0;
    int left;

    atomic_store(&jobs_stopping, 1);
    while ((left = atomic_load(&jobs_running)) > 0 && waited < wait_ms) {
        usleep(50 * 1000);
        waited += 50;
    }
    if (left > 0)
        srv_log("warn", "datasets: %d export job(s) still running at stop; their rows stay "
                "'running' and their .part files in %s", left, export_dir);
    return left;
}

void ds__jobs_resume(void)
{
    atomic_store(&jobs_stopping, 0);
}

/* The body's format (npz when absent; the body may be absent too): NULL,
 * or what is wrong. */
static const char *job_format(const struct srv_request *rq, struct srv_response *rs,
                              enum ds_format *f)
{
    json_t *body = srv_body_json(rq), *fmt;
    const char *why = NULL;

    static const char *const job_fields[] = { "format", NULL };

    if (rq->body_len && !json_is_object(body))
        why = "body must be a JSON object";
    else if ((fmt = json_object_get(body, "format")) && !json_is_string(fmt))
        why = "format must be npz, jsonl or csv";
    else if (ds__format_parse(json_string_value(fmt), f) != SRV_OK)
        why = "format must be npz, jsonl or csv";
    else if (json_object_get(body, "features"))
        why = "features is for the streamed export (GET .../export?format=npz&features=relations), "
              "not for jobs";
    else
        rs->ignored = srv_json_ignored(rq, body, job_fields);
    json_decref(body);
    return why;
}

/* The job's row, then its thread; the row is marked failed when no thread
 * starts.  Counts against DS_JOBS_MAX from here on. */
static int job_start(const struct srv_request *rq, const struct job *tmpl, int64_t rows_total,
                     int64_t *job_id)
{
    char idb[24], vb[16], tb[24], by[AUTH_ACTOR_MAX];
    const char *vals[5] = { idb, vb, ds__format_ext(tmpl->fmt), tb, by };
    PGresult *r = NULL;
    struct job *j = NULL;
    pthread_t t;
    pthread_attr_t at;
    int err, started;

    snprintf(idb, sizeof idb, "%lld", (long long)tmpl->dataset_id);
    snprintf(vb, sizeof vb, "%d", tmpl->version);
    snprintf(tb, sizeof tb, "%lld", (long long)rows_total);
    auth_actor(rq, by, sizeof by);
    if ((err = ds__exec(DS_SQL_JOB_INSERT, vals, 0, &r)) != SRV_OK || !(j = malloc(sizeof *j))) {
        PQclear(r);
        return err != SRV_OK ? err : SRV_ENOMEM;
    }
    *j = *tmpl;
    j->id = *job_id = db_int64(r, 0, "id");
    PQclear(r);
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    started = pthread_create(&t, &at, job_main, j) == 0;
    pthread_attr_destroy(&at);
    if (!started) {
        job_finish(j, "failed", 0, NULL, "cannot start a thread");
        free(j);
        return SRV_EINTERNAL;
    }
    return SRV_OK;
}

int ds_api_job_create(struct srv_request *rq, struct srv_response *rs)
{
    struct ds_reader *rd = NULL;
    struct job j = { 0 };
    const char *why;
    int64_t rows_total, job_id = 0;
    int err;

    if ((err = ds__param_version(rq, &j.dataset_id, &j.version, rs)) != SRV_OK)
        return err;
    if ((why = job_format(rq, rs, &j.fmt)))
        return srv_fail(rs, SRV_EBADREQ, why);
    if ((err = ds_reader_open(j.dataset_id, j.version, &rd)) != SRV_OK)
        return err == SRV_ENOTFOUND ? srv_fail(rs, err, "no such dataset version") : err;
    /* npz: one pass over the rows for each per-window array. */
    rows_total = ds_reader_info(rd)->n_windows * (j.fmt == DS_FMT_NPZ ? 6 : 1);
    ds_reader_free(rd);
    if (atomic_fetch_add(&jobs_running, 1) >= DS_JOBS_MAX) {
        atomic_fetch_sub(&jobs_running, 1);
        rs->retry_after = 10;
        return srv_fail(rs, SRV_EOVERLOAD, "too many export jobs running; retry later");
    }
    if ((err = job_start(rq, &j, rows_total, &job_id)) != SRV_OK) {
        atomic_fetch_sub(&jobs_running, 1);
        return err;
    }
    return srv_respond_json_take(rs, 202, json_pack("{s:I}", "id", (json_int_t)job_id));
}

static int job_load(const struct srv_request *rq, struct srv_response *rs, PGresult **out)
{
    char idb[24];
    const char *vals[1] = { idb };
    int64_t id;
    int err;

    if ((err = ds__param_id(rq, &id, rs)) != SRV_OK)
        return err;
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    if ((err = ds__exec(DS_SQL_JOB_GET, vals, 0, out)) != SRV_OK)
        return err;
    if (PQntuples(*out) != 1) {
        PQclear(*out);
        *out = NULL;
        return srv_fail(rs, SRV_ENOTFOUND, "no such export job");
    }
    return SRV_OK;
}

/* One job's answer from row i of a DS_SQL_JOB_GET or DS_SQL_JOB_LIST result. */
static json_t *job_json(const PGresult *r, int i)
{
    int64_t total = db_int64(r, i, "rows_total"), done = db_int64(r, i, "rows_done");
    json_t *j = json_pack("{s:I,s:I,s:i,s:s,s:s,s:I,s:I,s:f,s:I,s:s}",
                          "id", (json_int_t)db_int64(r, i, "id"),
                          "dataset_id", (json_int_t)db_int64(r, i, "dataset_id"),
                          "version", (int)db_int64(r, i, "version"),
                          "format", db_text_or(r, i, "format", ""), "status", db_text_or(r, i, "status", ""),
                          "rows_total", (json_int_t)total, "rows_done", (json_int_t)done,
                          "percent", total > 0 ? 100.0 * (double)done / (double)total : 0.0,
                          "bytes", (json_int_t)db_int64(r, i, "bytes"),
                          "created_at", db_text_or(r, i, "created_at", ""));

    if (j && db_text(r, i, "sha256"))
        json_object_set_new(j, "sha256", json_string(db_text(r, i, "sha256")));
    if (j && db_text(r, i, "error"))
        json_object_set_new(j, "error", json_string(db_text(r, i, "error")));
    return j;
}

int ds_api_job_get(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    json_t *j;
    int err;

    if ((err = job_load(rq, rs, &r)) != SRV_OK)
        return err;
    j = job_json(r, 0);
    PQclear(r);
    return srv_respond_json_take(rs, 200, j);
}

/* GET /api/v1/export-jobs[?dataset_id=&limit=&before=]: the jobs, newest
 * first, each as GET /api/v1/export-jobs/{id} answers it, so that a job
 * whose id was lost (a client restarted) can be found again; paged by id
 * as the models are (next: the before of the next page, null on the last). */
int ds_api_job_list(struct srv_request *rq, struct srv_response *rs)
{
    const char *q_ds = rq->query ? rq->query(rq, "dataset_id") : NULL;
    const char *q_before = rq->query ? rq->query(rq, "before") : NULL;
    char dsb[24], befb[24], lim[16];
    const char *vals[3] = { NULL, NULL, lim };
    PGresult *r = NULL;
    json_t *items, *j;
    int64_t v;
    int limit, i, n, err;

    if (text_parse_limit(rq->query ? rq->query(rq, "limit") : NULL, DS_JOB_LIST_DEFAULT,
                         DS_JOB_LIST_MAX, &limit) != 0)
        return srv_failf(rs, SRV_EBADREQ, "limit must be an integer in 1..%d", DS_JOB_LIST_MAX);
    if (q_ds) {
        if (text_parse_id(q_ds, &v) != 0)
            return srv_fail(rs, SRV_EBADREQ, "dataset_id must be a positive integer");
        snprintf(dsb, sizeof dsb, "%lld", (long long)v);
        vals[0] = dsb;
    }
    if (q_before) {
        if (text_parse_id(q_before, &v) != 0)
            return srv_fail(rs, SRV_EBADREQ, "before must be an export job id (the next of a previous page)");
        snprintf(befb, sizeof befb, "%lld", (long long)v);
        vals[1] = befb;
    }
    if ((err = srv_query_no_offset(rq, rs, "before")) != SRV_OK)
        return err;
    snprintf(lim, sizeof lim, "%d", limit + 1);     /* one more: whether a page follows */
    if ((err = ds__exec(DS_SQL_JOB_LIST, vals, 0, &r)) != SRV_OK)
        return err;
    n = PQntuples(r);
    items = json_array();
    for (i = 0; items && i < n && i < limit; i++) {
        json_t *one = job_json(r, i);

        if (!one || json_array_append_new(items, one) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    j = items ? json_pack("{s:o,s:o}", "items", items,
                          "next", n > limit ? json_integer((json_int_t)db_int64(r, limit - 1, "id"))
                                            : json_null())
              : NULL;
    PQclear(r);
    if (!j)
        return SRV_ENOMEM;
    return srv_respond_json_take(rs, 200, j);
}

int ds_api_job_cancel(struct srv_request *rq, struct srv_response *rs)
{
    char idb[24];
    const char *vals[1] = { idb };
    PGresult *r = NULL;
    int64_t id;
    int err, cancelled;

    if ((err = ds__param_id(rq, &id, rs)) != SRV_OK)
        return err;
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    if ((err = ds__exec(DS_SQL_JOB_CANCEL, vals, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return srv_fail(rs, SRV_ENOTFOUND, "no such export job");
    }
    cancelled = strcmp(db_text_or(r, 0, "status", ""), "cancelled") == 0;
    PQclear(r);
    if (!cancelled)
        return srv_fail(rs, SRV_ECONFLICT, "the job has finished already");
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
    if (strcmp(db_text_or(r, 0, "status", ""), "done") != 0) {
        PQclear(r);
        return srv_fail(rs, SRV_ECONFLICT, "the job has not finished");
    }
    memset(&j, 0, sizeof j);
    j.id = db_int64(r, 0, "id");
    ds__format_parse(db_text_or(r, 0, "format", ""), &j.fmt);
    PQclear(r);
    job_path(&j, 0, path, sizeof path);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return srv_fail(rs, SRV_ENOTFOUND, "the export file is gone");
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

void ds__job_file(int64_t id, enum ds_format fmt, char *out, size_t cap)
{
    const struct job j = { .id = id, .fmt = fmt };

    job_path(&j, 0, out, cap);
}
