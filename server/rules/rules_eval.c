/* rules_eval.c - evaluation of rules over stored features, the re-vote of
 * weak labels, per-rule statistics and the background worker.
 *
 * Snapshots are read in pages of RULES_PAGE (metadata joined with one row
 * per channel) so evaluating a rule over the whole history holds one page in
 * memory, not the history. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/db/db.h"
#include "server/features/features.h"
#include "server/rules/rules_expr.h"
#include "server/rules/rules_int.h"

#define RULES_PAGE 200
#define RULES_MAX_RULES 1000

struct snap_ctx {
    int64_t id;
    const char *device, *site, *etype, *detector;
    double score, rate;
    struct feat_channel ch[FEAT_NAME_MAX];
    size_t nch;
};

static const struct feat_channel *ctx_channel(void *p, const char *name)
{
    struct snap_ctx *c = p;
    size_t i;

    for (i = 0; i < c->nch; i++)
        if (strcmp(c->ch[i].name, name) == 0)
            return &c->ch[i];
    return NULL;
}

/* "{0.1,0.2}" -> spectrum; missing entries stay 0. */
static void parse_spectrum(const char *s, float *out)
{
    size_t i = 0;

    memset(out, 0, sizeof(float) * FEAT_BINS);
    if (*s == '{')
        s++;
    while (*s && *s != '}' && i < FEAT_BINS) {
        char *end;
        double v = strtod(s, &end);

        if (end == s)
            break;
        out[i++] = isfinite(v) ? (float)v : 0.0f;
        s = *end == ',' ? end + 1 : end;
    }
}

static double num(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NAN : strtod(PQgetvalue(r, row, col), NULL);
}

static const char *str_or_null(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static void row_channel(PGresult *r, int row, int c0, struct feat_channel *f)
{
    snprintf(f->name, sizeof f->name, "%s", PQgetvalue(r, row, c0));
    f->mean = num(r, row, c0 + 1);
    f->std = num(r, row, c0 + 2);
    f->rms = num(r, row, c0 + 3);
    f->peak = num(r, row, c0 + 4);
    f->crest = num(r, row, c0 + 5);
    f->kurtosis = num(r, row, c0 + 6);
    f->dominant_hz = num(r, row, c0 + 7);
    f->bin_hz = num(r, row, c0 + 8);
    parse_spectrum(PQgetvalue(r, row, c0 + 9), f->spectrum);
}

typedef int (*snap_fn)(const struct snap_ctx *c, void *arg);

/* Call fn for every snapshot with features and after < id <= upto. */
static int for_each_snapshot(int64_t after, int64_t upto, snap_fn fn, void *arg)
{
    struct snap_ctx *c = malloc(sizeof *c);
    char a[24], u[24], lim[16];
    const char *vals[3] = { a, u, lim };
    int err = SRV_OK;

    if (!c)
        return SRV_ENOMEM;
    snprintf(u, sizeof u, "%" PRId64, upto);
    snprintf(lim, sizeof lim, "%d", RULES_PAGE);
    for (;;) {
        PGresult *r = NULL;
        int i, n;

        snprintf(a, sizeof a, "%" PRId64, after);
        err = rules_q(RQ_CONTEXT, vals, NULL, NULL, 0, &r);
        if (err != SRV_OK)
            break;
        n = PQntuples(r);
        for (i = 0; i < n && err == SRV_OK; i++) {
            int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10);

            if (i == 0 || id != c->id) {
                if (i > 0)
                    err = fn(c, arg);
                c->id = id;
                c->device = str_or_null(r, i, 1);
                c->site = str_or_null(r, i, 2);
                c->etype = str_or_null(r, i, 3);
                c->detector = str_or_null(r, i, 4);
                c->score = num(r, i, 5);
                c->rate = num(r, i, 6);
                c->nch = 0;
            }
            if (c->nch < sizeof c->ch / sizeof c->ch[0])
                row_channel(r, i, 7, &c->ch[c->nch++]);
        }
        if (n > 0 && err == SRV_OK)
            err = fn(c, arg);
        after = n > 0 ? c->id : after;
        PQclear(r);
        if (err != SRV_OK || n == 0)
            break;
    }
    free(c);
    return err;
}

static int eval_on(const struct rules_expr *x, const struct snap_ctx *c)
{
    struct rules_env env = { c->etype, c->site, c->device, c->detector, c->score, c->rate,
                             ctx_channel, (void *)c };

    return rules_expr_eval(x, &env);
}

struct idvec {
    int64_t *v;
    size_t n, cap;
};

static int idvec_push(struct idvec *iv, int64_t id)
{
    if (iv->n == iv->cap) {
        size_t nc = iv->cap ? iv->cap * 2 : 256;
        int64_t *nv = realloc(iv->v, nc * sizeof *nv);

        if (!nv)
            return SRV_ENOMEM;
        iv->v = nv;
        iv->cap = nc;
    }
    iv->v[iv->n++] = id;
    return SRV_OK;
}

struct rule_scan {
    const struct rules_expr *x;
    struct idvec hits;
};

static int scan_one(const struct snap_ctx *c, void *arg)
{
    struct rule_scan *s = arg;

    return eval_on(s->x, c) ? idvec_push(&s->hits, c->id) : SRV_OK;
}

static int ids_from_result(PGresult *r, int col, struct idvec *iv)
{
    int i, err = SRV_OK;

    for (i = 0; i < PQntuples(r) && err == SRV_OK; i++)
        err = idvec_push(iv, strtoll(PQgetvalue(r, i, col), NULL, 10));
    return err;
}

int rules_eval_rule(int64_t rule_id)
{
    char idb[24], *arr = NULL;
    const char *vals[2] = { idb, NULL };
    struct rule_scan s = { NULL, { NULL, 0, 0 } };
    struct idvec old = { NULL, 0, 0 };
    struct rules_expr *x = NULL;
    struct rules_expr_error e;
    PGresult *r = NULL;
    int err;

    snprintf(idb, sizeof idb, "%" PRId64, rule_id);
    err = rules_q(RQ_RULE_GET, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        err = SRV_ENOTFOUND;
        goto out;
    }
    if (rules_expr_compile(PQgetvalue(r, 0, 2), &x, &e) != 0) {
        err = SRV_EINTERNAL;    /* stored rules compiled when written */
        goto out;
    }
    PQclear(r);
    r = NULL;
    s.x = x;
    err = for_each_snapshot(0, INT64_MAX, scan_one, &s);
    if (err != SRV_OK)
        goto out;
    err = rules_q(RQ_RULE_HITS, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK || (err = ids_from_result(r, 0, &old)) != SRV_OK)
        goto out;
    PQclear(r);
    r = NULL;
    arr = rules_id_array(s.hits.v, s.hits.n);
    if (!arr) {
        err = SRV_ENOMEM;
        goto out;
    }
    vals[1] = arr;
    err = rules_q(RQ_RULE_HITS_SET, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        goto out;
    /* every snapshot whose hits may have changed gets a new vote */
    err = rules_revote(old.v, old.n);
    if (err == SRV_OK)
        err = rules_revote(s.hits.v, s.hits.n);
out:
    PQclear(r);
    rules_expr_free(x);
    free(arr);
    free(s.hits.v);
    free(old.v);
    return err;
}

struct compiled {
    int64_t id;
    struct rules_expr *x;
};

struct snap_scan {
    struct compiled *rules;
    size_t n;
    struct idvec hit_rules;
    int seen;
};

static int scan_snapshot(const struct snap_ctx *c, void *arg)
{
    struct snap_scan *s = arg;
    size_t i;
    int err = SRV_OK;

    s->seen = 1;
    for (i = 0; i < s->n && err == SRV_OK; i++)
        if (eval_on(s->rules[i].x, c))
            err = idvec_push(&s->hit_rules, s->rules[i].id);
    return err;
}

int rules_eval_snapshot(int64_t snapshot_id)
{
    struct snap_scan s = { NULL, 0, { NULL, 0, 0 }, 0 };
    char idb[24], *arr = NULL;
    const char *vals[2] = { idb, NULL };
    PGresult *r = NULL;
    int i, n, err;

    err = rules_q(RQ_RULES_ENABLED, NULL, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    n = PQntuples(r);
    if (n > RULES_MAX_RULES)
        n = RULES_MAX_RULES;
    s.rules = calloc((size_t)n + 1, sizeof *s.rules);
    if (!s.rules) {
        err = SRV_ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        struct rules_expr_error e;

        if (rules_expr_compile(PQgetvalue(r, i, 1), &s.rules[s.n].x, &e) == 0)
            s.rules[s.n++].id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    }
    PQclear(r);
    r = NULL;
    err = for_each_snapshot(snapshot_id - 1, snapshot_id, scan_snapshot, &s);
    if (err != SRV_OK || !s.seen)
        goto out;
    arr = rules_id_array(s.hit_rules.v, s.hit_rules.n);
    if (!arr) {
        err = SRV_ENOMEM;
        goto out;
    }
    snprintf(idb, sizeof idb, "%" PRId64, snapshot_id);
    vals[1] = arr;
    err = rules_q(RQ_SNAPSHOT_HITS_SET, vals, NULL, NULL, 0, &r);
    if (err == SRV_OK)
        err = rules_revote(&snapshot_id, 1);
out:
    PQclear(r);
    if (s.rules)
        for (i = 0; i < (int)s.n; i++)
            rules_expr_free(s.rules[i].x);
    free(s.rules);
    free(s.hit_rules.v);
    free(arr);
    return err;
}

/* Write (or clear) the weak label of one snapshot from its votes. */
static int write_vote(int64_t id, const struct rules_vote_in *v, size_t n, const char *disp)
{
    struct rules_vote_out o;
    char idb[24], conf[32], *votes = NULL;
    const char *vals[5];
    json_t *arr = json_array();
    PGresult *r = NULL;
    size_t i;
    int err;

    if (!arr)
        return SRV_ENOMEM;
    rules_vote(v, n, disp, &o);
    snprintf(idb, sizeof idb, "%" PRId64, id);
    vals[0] = idb;
    if (!o.has_label) {
        json_decref(arr);
        err = rules_q(RQ_WEAK_DELETE, vals, NULL, NULL, 0, &r);
        PQclear(r);
        return err;
    }
    for (i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:I,s:s,s:f}", "rule_id", (json_int_t)v[i].rule_id,
                                             "class", v[i].cls, "weight", v[i].weight));
    votes = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!votes)
        return SRV_ENOMEM;
    snprintf(conf, sizeof conf, "%.6f", o.confidence);
    vals[1] = o.cls;
    vals[2] = o.source;
    vals[3] = conf;
    vals[4] = votes;
    err = rules_q(RQ_WEAK_PUT, vals, NULL, NULL, 0, &r);
    PQclear(r);
    free(votes);
    return err;
}

#define REVOTE_CHUNK 500

static int revote_chunk(const int64_t *ids, size_t n)
{
    char *arr = rules_id_array(ids, n);
    const char *vals[1] = { arr };
    PGresult *hv = NULL, *dc = NULL;
    struct rules_vote_in *v = NULL;
    size_t i;
    int row = 0, nrows, err;

    if (!arr)
        return SRV_ENOMEM;
    err = rules_q(RQ_VOTE_INPUT, vals, NULL, NULL, 0, &hv);
    if (err == SRV_OK)
        err = rules_q(RQ_DISPOSITION_CLASS, vals, NULL, NULL, 0, &dc);
    if (err != SRV_OK)
        goto out;
    nrows = PQntuples(hv);
    v = calloc((size_t)nrows + 1, sizeof *v);
    if (!v) {
        err = SRV_ENOMEM;
        goto out;
    }
    /* ids may repeat and come unordered: each id is voted from its own rows */
    for (i = 0; i < n && err == SRV_OK; i++) {
        const char *disp = NULL;
        size_t k = 0;
        int j;

        for (j = 0; j < PQntuples(dc); j++)
            if (strtoll(PQgetvalue(dc, j, 0), NULL, 10) == ids[i])
                disp = PQgetvalue(dc, j, 1);
        for (row = 0; row < nrows; row++) {
            if (strtoll(PQgetvalue(hv, row, 0), NULL, 10) != ids[i])
                continue;
            v[k].rule_id = strtoll(PQgetvalue(hv, row, 1), NULL, 10);
            v[k].cls = PQgetvalue(hv, row, 2);
            v[k].weight = strtod(PQgetvalue(hv, row, 3), NULL);
            k++;
        }
        err = write_vote(ids[i], v, k, disp);
    }
out:
    PQclear(hv);
    PQclear(dc);
    free(v);
    free(arr);
    return err;
}

int rules_revote(const int64_t *ids, size_t n)
{
    size_t at;
    int err = SRV_OK;

    for (at = 0; at < n && err == SRV_OK; at += REVOTE_CHUNK)
        err = revote_chunk(ids + at, n - at < REVOTE_CHUNK ? n - at : REVOTE_CHUNK);
    return err;
}

int rules_stats_get(int64_t rule_id, struct rules_stats *out)
{
    char idb[24];
    const char *vals[1] = { idb };
    PGresult *r = NULL;
    int err;

    snprintf(idb, sizeof idb, "%" PRId64, rule_id);
    err = rules_q(RQ_STATS, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return SRV_EINTERNAL;
    }
    out->snapshots = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    out->hits = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    out->overlapping = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    out->conflicting = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    out->labeled = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    out->agreeing = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    PQclear(r);
    if (out->snapshots > 0) {
        out->coverage = (double)out->hits / (double)out->snapshots;
        out->overlap = (double)out->overlapping / (double)out->snapshots;
        out->conflict = (double)out->conflicting / (double)out->snapshots;
    } else {
        out->coverage = out->overlap = out->conflict = 0;
    }
    out->accuracy = out->labeled > 0 ? (double)out->agreeing / (double)out->labeled : NAN;
    return SRV_OK;
}

/* Features of one snapshot, stored; a snapshot that cannot be decoded is
 * recorded with its error so the worker does not retry it forever. */
static int features_one(int64_t id)
{
    char idb[24], nums[9][32], *spec = NULL;
    const char *vals[11];
    struct feat_channel *fc = NULL;
    size_t n = 0, c, b, used;
    PGresult *r = NULL;
    const char *why = NULL;
    int err;

    snprintf(idb, sizeof idb, "%" PRId64, id);
    vals[0] = idb;
    err = rules_q(RQ_ENVELOPE, vals, NULL, NULL, 1, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        why = "snapshot vanished";
    } else {
        int e = features_from_envelope((const uint8_t *)PQgetvalue(r, 0, 0),
                                       (size_t)PQgetlength(r, 0, 0), &fc, &n);
        if (e == SRV_ENOMEM) {
            PQclear(r);
            return e;
        }
        if (e != SRV_OK)
            why = "envelope could not be decoded";
    }
    PQclear(r);
    r = NULL;
    spec = malloc(FEAT_BINS * 20 + 4);
    if (!spec) {
        free(fc);
        return SRV_ENOMEM;
    }
    for (c = 0; c < n && err == SRV_OK; c++) {
        const struct feat_channel *f = &fc[c];
        double v[9] = { f->mean, f->std, f->rms, f->peak, f->crest, f->kurtosis,
                        f->dominant_hz, f->bin_hz, 0 };
        int k;

        for (k = 0; k < 8; k++) {
            snprintf(nums[k], sizeof nums[k], "%.9g", isfinite(v[k]) ? v[k] : 0.0);
            vals[2 + k] = nums[k];
        }
        used = 0;
        spec[used++] = '{';
        for (b = 0; b < FEAT_BINS; b++)
            used += (size_t)snprintf(spec + used, 20, "%s%.6g", b ? "," : "", f->spectrum[b]);
        spec[used++] = '}';
        spec[used] = '\0';
        vals[1] = f->name;
        vals[10] = spec;
        err = rules_q(RQ_FEATURES_PUT, vals, NULL, NULL, 0, &r);
        PQclear(r);
        r = NULL;
    }
    free(spec);
    free(fc);
    if (err != SRV_OK)
        return err;
    vals[1] = why;
    err = rules_q(RQ_JOB_DONE, vals, NULL, NULL, 0, &r);
    PQclear(r);
    if (err == SRV_OK && why)
        srv_log("warn", "features: snapshot %" PRId64 ": %s", id, why);
    return err;
}

int rules_worker_pass(int batch)
{
    char lim[16];
    const char *vals[1] = { lim };
    PGresult *r = NULL;
    int i, n, err;

    snprintf(lim, sizeof lim, "%d", batch > 0 ? batch : 1);
    err = rules_q(RQ_PENDING_FEATURES, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    n = PQntuples(r);
    for (i = 0; i < n && err == SRV_OK; i++) {
        int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10);

        err = features_one(id);
        if (err == SRV_OK)
            err = rules_eval_snapshot(id);
    }
    PQclear(r);
    return err == SRV_OK ? n : err;
}

static pthread_t g_thread;
static int g_running;
static unsigned g_poll_ms;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;

static void *worker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_lock);
    while (g_running) {
        int n;

        pthread_mutex_unlock(&g_lock);
        n = rules_worker_pass(32);
        pthread_mutex_lock(&g_lock);
        if (n <= 0 && g_running) {
            /* idle or the database is away: wait, wake early on stop */
            struct timespec ts;

            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += g_poll_ms / 1000;
            ts.tv_nsec += (long)(g_poll_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&g_cond, &g_lock, &ts);
        }
    }
    pthread_mutex_unlock(&g_lock);
    db_thread_release();
    return NULL;
}

int rules_worker_start(unsigned poll_ms)
{
    int rc;

    pthread_mutex_lock(&g_lock);
    if (g_running) {
        pthread_mutex_unlock(&g_lock);
        return SRV_OK;
    }
    g_running = 1;
    g_poll_ms = poll_ms ? poll_ms : 1000;
    rc = pthread_create(&g_thread, NULL, worker_main, NULL);
    if (rc != 0)
        g_running = 0;
    pthread_mutex_unlock(&g_lock);
    if (rc != 0) {
        srv_log("error", "rules: worker thread: %s", strerror(rc));
        return SRV_EINTERNAL;
    }
    srv_log("info", "rules: feature and rule worker started (poll %u ms)", g_poll_ms);
    return SRV_OK;
}

void rules_worker_stop(void)
{
    int was;

    pthread_mutex_lock(&g_lock);
    was = g_running;
    g_running = 0;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
    if (was)
        pthread_join(g_thread, NULL);
}
