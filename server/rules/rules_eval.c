/* rules_eval.c - evaluation of rules over stored features (one rule over
 * every snapshot, or every enabled rule over one snapshot) and per-rule
 * statistics.  A pass of the features worker is evaluated as one batch.
 *
 * Snapshots are read in pages of RULES_PAGE (metadata joined with one row
 * per channel) so evaluating a rule over the whole history holds one page in
 * memory, not the history. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/db/db.h"
#include "server/features/features.h"
#include "server/rules/rules_expr.h"
#include "server/rules/rules_int.h"
#include "server/srv/srv.h"

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

/* PostgreSQL's "{0.1,0.2}" text of a real[] -> spectrum; missing entries
 * stay 0. */
static void parse_spectrum(const char *s, float *out)
{
    size_t i = 0;

    memset(out, 0, sizeof(float) * FEAT_BINS);
    if (!s)
        return;
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

static void row_channel(const PGresult *r, int row, struct feat_channel *f)
{
    snprintf(f->name, sizeof f->name, "%s", db_text_or(r, row, "channel", ""));
    f->mean = db_double(r, row, "mean");
    f->std = db_double(r, row, "std");
    f->rms = db_double(r, row, "rms");
    f->peak = db_double(r, row, "peak");
    f->crest = db_double(r, row, "crest");
    f->kurtosis = db_double(r, row, "kurtosis");
    f->dominant_hz = db_double(r, row, "dominant_hz");
    f->bin_hz = db_double(r, row, "bin_hz");
    parse_spectrum(db_text(r, row, "spectrum"), f->spectrum);
}

/* The metadata of the snapshot on row (strings borrowed from r). */
static void row_snapshot(const PGresult *r, int row, struct snap_ctx *c)
{
    c->id = db_int64(r, row, "id");
    c->device = db_text(r, row, "device_id");
    c->site = db_text(r, row, "site");
    c->etype = db_text(r, row, "equipment_type");
    c->detector = db_text(r, row, "detector");
    c->score = db_double(r, row, "score");
    c->rate = db_double(r, row, "sample_rate");
    c->nch = 0;
}

typedef int (*snap_fn)(const struct snap_ctx *c, void *arg);

/* Call fn for each snapshot of one page (rows ordered by snapshot); c ends
 * on the page's last snapshot. */
static int page_snapshots(const PGresult *r, struct snap_ctx *c, snap_fn fn, void *arg)
{
    int i, n = PQntuples(r), err = SRV_OK;

    for (i = 0; i < n && err == SRV_OK; i++) {
        if (i == 0 || db_int64(r, i, "id") != c->id) {
            if (i > 0)
                err = fn(c, arg);
            row_snapshot(r, i, c);
        }
        if (c->nch < sizeof c->ch / sizeof c->ch[0])
            row_channel(r, i, &c->ch[c->nch++]);
    }
    if (n > 0 && err == SRV_OK)
        err = fn(c, arg);
    return err;
}

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
        int n;

        snprintf(a, sizeof a, "%" PRId64, after);
        err = rules_q(RQ_CONTEXT, vals, &r);
        if (err != SRV_OK)
            break;
        n = PQntuples(r);
        err = page_snapshots(r, c, fn, arg);
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

struct rule_scan {
    const struct rules_expr *x;
    struct rules_ids hits;
};

static int scan_one(const struct snap_ctx *c, void *arg)
{
    struct rule_scan *s = arg;

    return eval_on(s->x, c) ? rules_ids_push(&s->hits, c->id) : SRV_OK;
}

/* Compile the stored rule rule_id. */
static int compile_stored(int64_t rule_id, struct rules_expr **x)
{
    struct rules_expr_error e;
    PGresult *r = NULL;
    int err = rules_q_id(RQ_RULE_GET, rule_id, &r);

    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1)
        err = SRV_ENOTFOUND;
    else if (rules_expr_compile(db_text(r, 0, "expr"), x, &e) != 0)
        err = SRV_EINTERNAL;    /* stored rules compiled when written */
    PQclear(r);
    return err;
}

/* Replace the hits of rule_id by hits; *old gets the hits it had. */
static int replace_rule_hits(int64_t rule_id, const struct rules_ids *hits,
                             struct rules_ids *old)
{
    char idb[24], *arr;
    const char *vals[2] = { idb, NULL };
    PGresult *r = NULL;
    int err = rules_q_id(RQ_RULE_HITS, rule_id, &r);

    if (err == SRV_OK)
        err = rules_ids_from(old, r, "snapshot_id");
    PQclear(r);
    if (err != SRV_OK)
        return err;
    arr = rules_id_array(hits->v, hits->n);
    if (!arr)
        return SRV_ENOMEM;
    snprintf(idb, sizeof idb, "%" PRId64, rule_id);
    vals[1] = arr;
    err = rules_q(RQ_RULE_HITS_SET, vals, NULL);
    free(arr);
    return err;
}

int rules_eval_rule(int64_t rule_id)
{
    struct rule_scan s = { NULL, { NULL, 0, 0 } };
    struct rules_ids old = { NULL, 0, 0 };
    struct rules_expr *x = NULL;
    int err;

    err = compile_stored(rule_id, &x);
    if (err != SRV_OK)
        return err;
    s.x = x;
    err = for_each_snapshot(0, INT64_MAX, scan_one, &s);
    if (err == SRV_OK)
        err = replace_rule_hits(rule_id, &s.hits, &old);
    /* every snapshot whose hits may have changed gets a new vote */
    if (err == SRV_OK)
        err = rules_revote(old.v, old.n);
    if (err == SRV_OK)
        err = rules_revote(s.hits.v, s.hits.n);
    rules_expr_free(x);
    rules_ids_free(&s.hits);
    rules_ids_free(&old);
    return err;
}

struct compiled {
    int64_t id;
    struct rules_expr *x;
};

struct snap_scan {
    struct compiled *rules;
    size_t n;
    const int64_t *want;        /* the snapshots asked for, ascending */
    size_t nwant;
    struct rules_ids seen;      /* those with features, in order */
    struct rules_ids hit_snap, hit_rule;    /* (snapshot, rule) pairs that hit */
};

static int id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static int scan_snapshot(const struct snap_ctx *c, void *arg)
{
    struct snap_scan *s = arg;
    size_t i;
    int err;

    if (!bsearch(&c->id, s->want, s->nwant, sizeof *s->want, id_cmp))
        return SRV_OK;      /* in the id range, not asked for */
    err = rules_ids_push(&s->seen, c->id);
    for (i = 0; i < s->n && err == SRV_OK; i++)
        if (eval_on(s->rules[i].x, c)) {
            err = rules_ids_push(&s->hit_snap, c->id);
            if (err == SRV_OK)
                err = rules_ids_push(&s->hit_rule, s->rules[i].id);
        }
    return err;
}

/* Compile every enabled rule (at most RULES_MAX_RULES) into s. */
static int compile_enabled(struct snap_scan *s)
{
    PGresult *r = NULL;
    int i, n, err = rules_q(RQ_RULES_ENABLED, NULL, &r);

    if (err != SRV_OK)
        return err;
    n = PQntuples(r);
    if (n > RULES_MAX_RULES)
        n = RULES_MAX_RULES;
    s->rules = calloc((size_t)n + 1, sizeof *s->rules);
    for (i = 0; s->rules && i < n; i++) {
        struct rules_expr_error e;

        if (rules_expr_compile(db_text(r, i, "expr"), &s->rules[s->n].x, &e) == 0)
            s->rules[s->n++].id = db_int64(r, i, "id");
    }
    PQclear(r);
    return s->rules ? SRV_OK : SRV_ENOMEM;
}

/* The rules are compiled once, the snapshots read in pages over the range
 * of their ids, the hits of all of them replaced in one statement and the
 * votes recomputed together: a pass of the features worker costs a few
 * statements, not a few per snapshot. */
int rules_eval_snapshots(const int64_t *ids, size_t n)
{
    struct snap_scan s;
    int64_t *want = NULL;
    char *arr[3] = { NULL, NULL, NULL };
    const char *vals[3];
    size_t i;
    int err;

    if (n == 0)
        return SRV_OK;
    memset(&s, 0, sizeof s);
    want = malloc(n * sizeof *want);
    if (!want)
        return SRV_ENOMEM;
    memcpy(want, ids, n * sizeof *want);
    qsort(want, n, sizeof *want, id_cmp);
    s.want = want;
    s.nwant = n;
    err = compile_enabled(&s);
    if (err == SRV_OK)
        err = for_each_snapshot(want[0] - 1, want[n - 1], scan_snapshot, &s);
    if (err != SRV_OK || s.seen.n == 0)
        goto out;
    arr[0] = rules_id_array(s.seen.v, s.seen.n);
    arr[1] = rules_id_array(s.hit_snap.v, s.hit_snap.n);
    arr[2] = rules_id_array(s.hit_rule.v, s.hit_rule.n);
    if (!arr[0] || !arr[1] || !arr[2]) {
        err = SRV_ENOMEM;
        goto out;
    }
    for (i = 0; i < 3; i++)
        vals[i] = arr[i];
    err = rules_q(RQ_SNAPSHOTS_HITS_SET, vals, NULL);
    if (err == SRV_OK)
        err = rules_revote(s.seen.v, s.seen.n);
out:
    for (i = 0; i < s.n; i++)
        rules_expr_free(s.rules[i].x);
    free(s.rules);
    rules_ids_free(&s.seen);
    rules_ids_free(&s.hit_snap);
    rules_ids_free(&s.hit_rule);
    for (i = 0; i < 3; i++)
        free(arr[i]);
    free(want);
    return err;
}

int rules_eval_snapshot(int64_t snapshot_id)
{
    return rules_eval_snapshots(&snapshot_id, 1);
}

static double fraction(int64_t part, int64_t whole)
{
    return whole > 0 ? (double)part / (double)whole : 0;
}

int rules_stats_get(int64_t rule_id, const char *demo, struct rules_stats *out)
{
    char idb[24];
    const char *vals[2] = { idb, demo };
    PGresult *r = NULL;
    int err;

    snprintf(idb, sizeof idb, "%" PRId64, rule_id);
    err = rules_q(RQ_STATS, vals, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return SRV_EINTERNAL;
    }
    out->snapshots = db_int64(r, 0, "snapshots");
    out->hits = db_int64(r, 0, "hits");
    out->overlapping = db_int64(r, 0, "overlapping");
    out->conflicting = db_int64(r, 0, "conflicting");
    out->labeled = db_int64(r, 0, "labeled");
    out->agreeing = db_int64(r, 0, "agreeing");
    PQclear(r);
    out->coverage = fraction(out->hits, out->snapshots);
    out->overlap = fraction(out->overlapping, out->snapshots);
    out->conflict = fraction(out->conflicting, out->snapshots);
    out->accuracy = out->labeled > 0 ? (double)out->agreeing / (double)out->labeled : NAN;
    return SRV_OK;
}

/* The channels rule_id reads, as a PostgreSQL text[] literal (malloc'd). */
static int rule_channels(int64_t rule_id, char **arr_out)
{
    PGresult *r = NULL;
    struct rules_expr *x = NULL;
    struct rules_expr_error e;
    struct srv_buf arr = { 0 };
    const char *const *chans;
    int err = rules_q_id(RQ_RULE_GET, rule_id, &r);

    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return SRV_ENOTFOUND;
    }
    if (rules_expr_compile(db_text(r, 0, "expr"), &x, &e) != 0) {
        PQclear(r);
        return SRV_EINTERNAL;       /* stored rules compiled when they were written */
    }
    PQclear(r);
    size_t nch = rules_expr_channels(x, &chans);
    db_array_begin(&arr);
    for (size_t i = 0; i < nch; i++)
        db_array_text(&arr, chans[i]);
    db_array_end(&arr);
    rules_expr_free(x);
    *arr_out = srv_buf_take(&arr, NULL);
    return *arr_out ? SRV_OK : SRV_ENOMEM;
}

int rules_stats_by_type(int64_t rule_id, const char *demo, struct rules_type_stats *out, size_t cap,
                        size_t *n)
{
    char idb[24], *arr = NULL;
    const char *vals[3] = { idb, NULL, demo };
    PGresult *r = NULL;
    int err = rule_channels(rule_id, &arr);

    if (err != SRV_OK)
        return err;
    snprintf(idb, sizeof idb, "%" PRId64, rule_id);
    vals[1] = arr;
    err = rules_q(RQ_STATS_BY_TYPE, vals, &r);
    free(arr);
    if (err != SRV_OK)
        return err;
    size_t k = 0;
    for (int i = 0; i < PQntuples(r) && k < cap; i++, k++) {
        struct rules_type_stats *t = &out[k];
        memset(t, 0, sizeof *t);
        snprintf(t->equipment_type, sizeof t->equipment_type, "%s", db_text(r, i, "equipment_type"));
        t->snapshots = db_int64(r, i, "snapshots");
        t->hits = db_int64(r, i, "hits");
        t->labeled = db_int64(r, i, "labeled");
        t->agreeing = db_int64(r, i, "agreeing");
        t->coverage = fraction(t->hits, t->snapshots);
        t->accuracy = t->acc_lo = t->acc_hi = NAN;
        if (t->labeled < RULES_MIN_LABELED) {
            snprintf(t->refused, sizeof t->refused, "%" PRId64 " labeled hit(s); at least %d needed",
                     t->labeled, RULES_MIN_LABELED);
            continue;
        }
        t->accuracy = (double)t->agreeing / (double)t->labeled;
        srv_wilson95((uint64_t)t->agreeing, (uint64_t)t->labeled, &t->acc_lo, &t->acc_hi);
    }
    PQclear(r);
    *n = k;
    return SRV_OK;
}
