/* ds_version.c - dataset versions in PostgreSQL: the statements this module
 * owns, the one query that gathers labels from every source, freezing a
 * version (labels, windows, split, content hash) in a single statement, and
 * the paged reader that export and training walk a version with.
 *
 * A version is immutable: its labels are copied (later edits do not reach
 * it), its windows and their split are stored in export order, and its
 * content hash covers the policies, members, labels and windows, so two
 * versions with the same hash export the same bytes. */
#include "server/datasets/ds_int.h"

#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/wire.h"
#include "server/db/db.h"
#include "server/decimate/decimate.h"
#include "server/srv/srv.h"

#define DS_PAGE 512
#define DS_MAX_WINDOWS 5000000      /* per version: bounds what a version insert sends */
#define DS_MAX_LABEL_ROWS 1000000

static const struct db_sql stmts[DS_SQL_COUNT] = {
    [DS_SQL_CREATE] = { "ds_create",
        "INSERT INTO datasets (name, definition, created_by) VALUES ($1, $2::jsonb, $3) "
        "RETURNING id", 3 },
    [DS_SQL_LIST] = { "ds_list",
        "SELECT d.id, d.name, d.definition::text, d.created_at, "
        "(SELECT count(*) FROM dataset_versions v WHERE v.dataset_id = d.id) "
        "FROM datasets d ORDER BY d.id", 0 },
    [DS_SQL_GET] = { "ds_get",
        "SELECT id, name, definition::text, created_at FROM datasets WHERE id = $1", 1 },
    [DS_SQL_VERSIONS] = { "ds_versions",
        "SELECT version, encode(content_sha256, 'hex'), n_windows, created_at "
        "FROM dataset_versions WHERE dataset_id = $1 ORDER BY version", 1 },
    /* The label-gathering query: human labels (spans), then weak labels
     * (rule, vote, disposition from the domain tables) on snapshots no human
     * labeled, then dispositions with a class no weak label carries yet.
     * Weak labels and dispositions cover the whole snapshot (end NULL). */
    [DS_SQL_GATHER] = { "ds_gather",
        "WITH lab AS ("
        " SELECT l.snapshot_id, l.start_s, l.end_s, l.class, 'human'::text AS source,"
        "        l.confidence FROM labels l"
        " UNION ALL"
        " SELECT w.snapshot_id, 0, NULL, w.class, w.source, w.confidence FROM weak_labels w"
        "  WHERE NOT EXISTS (SELECT 1 FROM labels h WHERE h.snapshot_id = w.snapshot_id)"
        " UNION ALL"
        " SELECT a.snapshot_id, 0, NULL, a.class, 'disposition', 1 FROM alert_dispositions a"
        "  WHERE a.class IS NOT NULL"
        "    AND NOT EXISTS (SELECT 1 FROM labels h WHERE h.snapshot_id = a.snapshot_id)"
        "    AND NOT EXISTS (SELECT 1 FROM weak_labels w WHERE w.snapshot_id = a.snapshot_id))"
        " SELECT s.id, (extract(epoch FROM s.trigger_time) * 1000000)::bigint, s.sample_rate,"
        "  s.pre_samples, s.pre_samples + s.post_samples, s.channels::text, s.device_id,"
        "  COALESCE(d.asset_id, d.id), COALESCE(d.equipment_type, ''),"
        "  lab.start_s, COALESCE(lab.end_s, (s.pre_samples + s.post_samples) / s.sample_rate),"
        "  lab.class, lab.source, lab.confidence"
        " FROM lab JOIN snapshots s ON s.id = lab.snapshot_id JOIN devices d ON d.id = s.device_id"
        " WHERE lab.source = ANY ($1::text[]) AND lab.confidence >= $2::real"
        "  AND ($3::text[] IS NULL OR lab.class = ANY ($3::text[]))"
        "  AND ($4::text[] IS NULL OR d.equipment_type = ANY ($4::text[]))"
        "  AND ($5::text[] IS NULL OR d.site = ANY ($5::text[]))"
        "  AND ($6::timestamptz IS NULL OR s.trigger_time >= $6::timestamptz)"
        "  AND ($7::timestamptz IS NULL OR s.trigger_time < $7::timestamptz)"
        " ORDER BY s.id, lab.start_s, lab.end_s, lab.class, lab.source", 7 },
    [DS_SQL_VERSION_INSERT] = { "ds_version_insert",
        "WITH v AS (INSERT INTO dataset_versions"
        "  (dataset_id, version, content_sha256, n_windows, summary, created_by)"
        "  SELECT $1, COALESCE(max(version), 0) + 1, decode($2, 'hex'), $3, $4::jsonb, $5"
        "  FROM dataset_versions WHERE dataset_id = $1 RETURNING version),"
        " l AS (INSERT INTO dataset_version_labels"
        "  SELECT $1, v.version, u.* FROM v, unnest($6::bigint[], $7::float8[], $8::float8[],"
        "   $9::text[], $10::text[], $11::real[]) AS u RETURNING 1),"
        " w AS (INSERT INTO dataset_windows"
        "  SELECT $1, v.version, u.* FROM v, unnest($12::bigint[], $13::bigint[], $14::int[],"
        "   $15::bigint[], $16::smallint[], $17::text[], $18::int[], $19::smallint[]) AS u"
        "  RETURNING 1)"
        " SELECT v.version, (SELECT count(*) FROM l), (SELECT count(*) FROM w) FROM v", 19 },
    [DS_SQL_VERSION_GET] = { "ds_version_get",
        "SELECT encode(v.content_sha256, 'hex'), v.n_windows, v.summary::text, v.manifest,"
        " d.definition::text, v.created_at FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id"
        " WHERE v.dataset_id = $1 AND v.version = $2", 2 },
    [DS_SQL_WINDOWS_PAGE] = { "ds_windows_page",
        "SELECT row, snapshot_id, start_sample, start_us, cls, source, grp, split"
        " FROM dataset_windows WHERE dataset_id = $1 AND version = $2 AND row >= $3"
        " ORDER BY row LIMIT $4", 4 },
    [DS_SQL_MANIFEST_SET] = { "ds_manifest_set",
        "UPDATE dataset_versions SET manifest = $3 WHERE dataset_id = $1 AND version = $2"
        " AND manifest IS NULL", 3 },
    [DS_SQL_JOB_INSERT] = { "ds_job_insert",
        "INSERT INTO export_jobs (dataset_id, version, format, rows_total, created_by)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id", 5 },
    [DS_SQL_JOB_GET] = { "ds_job_get",
        "SELECT id, dataset_id, version, format, status, rows_total, rows_done, bytes,"
        " encode(sha256, 'hex'), error, created_at, finished_at FROM export_jobs WHERE id = $1", 1 },
    [DS_SQL_JOB_PROGRESS] = { "ds_job_progress",
        "UPDATE export_jobs SET rows_done = $2, bytes = $3,"
        " status = CASE WHEN status = 'queued' THEN 'running' ELSE status END"
        " WHERE id = $1 RETURNING status", 3 },
    [DS_SQL_JOB_FINISH] = { "ds_job_finish",
        "UPDATE export_jobs SET status = $2, bytes = $3, sha256 = decode($4, 'hex'), error = $5,"
        " rows_done = CASE WHEN $2 = 'done' THEN rows_total ELSE rows_done END,"
        " finished_at = now() WHERE id = $1 AND status IN ('queued', 'running')", 5 },
    [DS_SQL_JOB_CANCEL] = { "ds_job_cancel",
        "UPDATE export_jobs SET status = CASE WHEN status IN ('queued', 'running')"
        " THEN 'cancelled' ELSE status END,"
        " finished_at = COALESCE(finished_at, now()) WHERE id = $1 RETURNING status", 1 },
};

int ds__exec(enum ds_stmt s, const char *const *vals, int binary, PGresult **out)
{
    return db_exec_own(&stmts[s], vals, NULL, NULL, binary, out);
}

void ds__hex(const uint8_t *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- a growable text buffer for array literals and the hash input --------- */

struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        char *np;

        while (nc < b->len + n + 1)
            nc *= 2;
        if (!(np = realloc(b->p, nc))) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->oom = 1;
        return;
    }
    sb_put(b, tmp, (size_t)n);
}

/* One element of a PostgreSQL array literal, always quoted. */
static void sb_pg_elem(struct sbuf *b, const char *s, int first)
{
    if (!first)
        sb_put(b, ",", 1);
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            sb_put(b, "\\", 1);
        sb_put(b, s, 1);
    }
    sb_put(b, "\"", 1);
}

/* ---- definitions --------------------------------------------------------- */

static const char *const sources[] = { "human", "rule", "vote", "disposition" };
#define N_SOURCES 4

static int source_index(const char *s)
{
    int i;

    for (i = 0; i < N_SOURCES; i++)
        if (strcmp(s, sources[i]) == 0)
            return i;
    return -1;
}

static int str_array_ok(const json_t *a, size_t max_items, size_t max_len)
{
    size_t i;
    json_t *v;

    if (!json_is_array(a) || json_array_size(a) > max_items)
        return 0;
    json_array_foreach(a, i, v)
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max_len)
            return 0;
    return 1;
}

json_t *ds__definition(const json_t *body, const char **why)
{
    const json_t *f = json_object_get(body, "filter"), *w = json_object_get(body, "window"),
                 *sp = json_object_get(body, "split");
    json_t *nf, *nw, *ns, *fr, *v;
    const char *by, *edge;
    double len_s, stride_s, sum = 0, conf = 0;
    size_t i;
    json_int_t seed = 0, minps = 1;

    if (!json_is_object(body) || !json_is_string(json_object_get(body, "name")) ||
        json_string_length(json_object_get(body, "name")) == 0 ||
        json_string_length(json_object_get(body, "name")) > 200)
        return *why = "name must be a string of 1..200 characters", NULL;
    if (f && !json_is_object(f))
        return *why = "filter must be an object", NULL;
    if (!json_is_object(w) || !json_is_number(json_object_get(w, "length_s")) ||
        !json_is_number(json_object_get(w, "stride_s")))
        return *why = "window needs length_s and stride_s", NULL;
    len_s = json_number_value(json_object_get(w, "length_s"));
    stride_s = json_number_value(json_object_get(w, "stride_s"));
    if (!(len_s > 0 && len_s <= 3600) || !(stride_s > 0 && stride_s <= 3600))
        return *why = "window length_s and stride_s must be in (0, 3600]", NULL;
    edge = json_string_value(json_object_get(w, "edge"));
    if (!edge)
        edge = "majority";
    if (strcmp(edge, "majority") && strcmp(edge, "strict") && strcmp(edge, "any"))
        return *why = "window edge must be majority, strict or any", NULL;
    if (!json_is_object(sp) || !json_is_string(json_object_get(sp, "by")))
        return *why = "split needs by", NULL;
    by = json_string_value(json_object_get(sp, "by"));
    if (strcmp(by, "device") && strcmp(by, "asset") && strcmp(by, "time") &&
        strcmp(by, "equipment_type") && strcmp(by, "day"))
        return *why = "split by must be device, asset, time, day or equipment_type", NULL;
    fr = json_object_get(sp, "fractions");
    if (!json_is_array(fr) || json_array_size(fr) != DS_SPLITS)
        return *why = "split fractions must be [train, validation, test]", NULL;
    json_array_foreach(fr, i, v) {
        double x = json_is_number(v) ? json_number_value(v) : -1;

        if (!(x >= 0 && x <= 1))
            return *why = "split fractions must be numbers in [0, 1]", NULL;
        sum += x;
    }
    if (fabs(sum - 1) > 1e-6)
        return *why = "split fractions must add up to 1", NULL;
    if ((v = json_object_get(sp, "seed")) && !json_is_integer(v))
        return *why = "split seed must be an integer", NULL;
    seed = v ? json_integer_value(v) : 0;
    if ((v = json_object_get(sp, "min_per_split")) &&
        (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100000))
        return *why = "split min_per_split must be an integer in [1, 100000]", NULL;
    minps = v ? json_integer_value(v) : 1;

    nf = json_object();
    if ((v = f ? json_object_get(f, "sources") : NULL)) {
        json_t *e;

        if (!str_array_ok(v, N_SOURCES, 16))
            goto badf;
        json_array_foreach(v, i, e)
            if (source_index(json_string_value(e)) < 0) {
                json_decref(nf);
                return *why = "filter sources must be among human, rule, vote, disposition", NULL;
            }
        json_object_set(nf, "sources", v);
    } else {
        json_object_set_new(nf, "sources", json_pack("[ssss]", "human", "rule", "vote", "disposition"));
    }
    if ((v = f ? json_object_get(f, "min_confidence") : NULL)) {
        conf = json_is_number(v) ? json_number_value(v) : -1;
        if (!(conf >= 0 && conf <= 1))
            goto badf;
    }
    json_object_set_new(nf, "min_confidence", json_real(conf));
    {
        static const char *const lists[] = { "classes", "equipment_types", "sites" };
        size_t k;

        for (k = 0; k < 3; k++) {
            if (!(v = f ? json_object_get(f, lists[k]) : NULL) || json_is_null(v))
                continue;
            if (!str_array_ok(v, 256, 64))
                goto badf;
            json_object_set(nf, lists[k], v);
        }
    }
    {
        static const char *const times[] = { "from", "to" };
        size_t k;

        for (k = 0; k < 2; k++) {
            if (!(v = f ? json_object_get(f, times[k]) : NULL) || json_is_null(v))
                continue;
            if (!json_is_string(v) || json_string_length(v) > 64)
                goto badf;
            json_object_set(nf, times[k], v);
        }
    }
    nw = json_pack("{s:f,s:f,s:s}", "length_s", len_s, "stride_s", stride_s, "edge", edge);
    ns = json_pack("{s:s,s:O,s:I,s:I}", "by", by, "fractions", fr, "seed", seed,
                   "min_per_split", minps);
    return json_pack("{s:O,s:o,s:o,s:o}", "name", json_object_get(body, "name"), "filter", nf,
                     "window", nw, "split", ns);
badf:
    json_decref(nf);
    *why = "filter: sources, classes, equipment_types, sites are string lists; "
           "min_confidence in [0, 1]; from/to timestamps";
    return NULL;
}

/* ---- freezing a version -------------------------------------------------- */

struct member {
    int64_t id, t0_us;
    double rate;
    uint32_t n;
    char *channels;             /* the snapshots.channels JSON text */
    char device[65], asset[65], eqtype[65];
};

static int pg_list_param(const json_t *def, const char *key, struct sbuf *b)
{
    const json_t *a = json_object_get(json_object_get(def, "filter"), key), *v;
    size_t i;

    if (!a)
        return 0;
    sb_put(b, "{", 1);
    json_array_foreach(a, i, v)
        sb_pg_elem(b, json_string_value(v), i == 0);
    sb_put(b, "}", 1);
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int find_name(char **names, uint32_t n, const char *s)
{
    uint32_t i;

    for (i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

static const char *split_name(int s)
{
    return s == 0 ? "train" : s == 1 ? "validation" : "test";
}

static void group_of(const struct member *m, const char *by, char *out, size_t cap)
{
    if (strcmp(by, "asset") == 0)
        snprintf(out, cap, "%s", m->asset);
    else if (strcmp(by, "equipment_type") == 0)
        snprintf(out, cap, "%s", m->eqtype[0] ? m->eqtype : "(none)");
    else if (strcmp(by, "time") == 0 || strcmp(by, "day") == 0)
        snprintf(out, cap, "%lld", (long long)(m->t0_us / 86400000000LL));    /* UTC day */
    else
        snprintf(out, cap, "%s", m->device);
}

int ds__version_create(int64_t dataset_id, const char *created_by, int *version, char **why)
{
    char idb[24], confb[32], *defs = NULL;
    const char *vals[19];
    PGresult *r = NULL, *g = NULL;
    json_t *def = NULL, *summary = NULL, *chans = NULL;
    struct sbuf p_src = { 0 }, p_cls = { 0 }, p_eq = { 0 }, p_site = { 0 };
    struct sbuf hin = { 0 }, a[14];
    struct member *mem = NULL;
    struct ds_snapshot *snaps = NULL;
    struct ds_label *labs = NULL;
    struct ds_window *win = NULL;
    char **classes = NULL, **groups = NULL;
    int64_t *order = NULL;
    size_t n_mem = 0, n_lab = 0, n_win = 0, i, rows;
    uint32_t n_cls = 0, n_grp = 0;
    size_t counts[DS_MAX_CLASSES] = { 0 }, src_counts[N_SOURCES] = { 0 };
    double fr[DS_SPLITS], rate0 = 0, len_s, stride_s;
    const char *by, *edge_s;
    enum ds_edge edge;
    int err, bad_class = -1, bad_split = -1, drc;
    uint8_t sha[32];
    char shahex[65], nwin[24], *sums = NULL;
    unsigned devices = 0;

    memset(a, 0, sizeof a);
    *why = NULL;
    snprintf(idb, sizeof idb, "%lld", (long long)dataset_id);
    vals[0] = idb;
    if ((err = ds__exec(DS_SQL_GET, vals, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        err = SRV_ENOTFOUND;
        goto out;
    }
    def = json_loads(PQgetvalue(r, 0, 2), 0, NULL);
    PQclear(r);
    r = NULL;
    if (!def) {
        err = SRV_EINTERNAL;
        goto out;
    }
    len_s = json_number_value(json_object_get(json_object_get(def, "window"), "length_s"));
    stride_s = json_number_value(json_object_get(json_object_get(def, "window"), "stride_s"));
    edge_s = json_string_value(json_object_get(json_object_get(def, "window"), "edge"));
    edge = !edge_s || strcmp(edge_s, "majority") == 0 ? DS_EDGE_MAJORITY
         : strcmp(edge_s, "strict") == 0 ? DS_EDGE_STRICT : DS_EDGE_ANY;
    by = json_string_value(json_object_get(json_object_get(def, "split"), "by"));
    for (i = 0; i < DS_SPLITS; i++)
        fr[i] = json_number_value(json_array_get(json_object_get(json_object_get(def, "split"),
                                                                 "fractions"), i));

    /* Gather: the one query over every label source, filtered. */
    pg_list_param(def, "sources", &p_src);
    snprintf(confb, sizeof confb, "%.9g",
             json_number_value(json_object_get(json_object_get(def, "filter"), "min_confidence")));
    vals[0] = p_src.p;
    vals[1] = confb;
    vals[2] = pg_list_param(def, "classes", &p_cls) ? p_cls.p : NULL;
    vals[3] = pg_list_param(def, "equipment_types", &p_eq) ? p_eq.p : NULL;
    vals[4] = pg_list_param(def, "sites", &p_site) ? p_site.p : NULL;
    vals[5] = json_string_value(json_object_get(json_object_get(def, "filter"), "from"));
    vals[6] = json_string_value(json_object_get(json_object_get(def, "filter"), "to"));
    if (p_src.oom || p_cls.oom || p_eq.oom || p_site.oom) {
        err = SRV_ENOMEM;
        goto out;
    }
    if ((err = ds__exec(DS_SQL_GATHER, vals, 0, &g)) != SRV_OK) {
        if (err == SRV_EDB)
            *why = strdup("filter could not be applied (check from/to timestamps)");
        err = err == SRV_EDB ? SRV_EBADREQ : err;
        goto out;
    }
    n_lab = (size_t)PQntuples(g);
    if (n_lab == 0) {
        *why = strdup("no labels match the filter");
        err = SRV_EUNPROCESSABLE;
        goto out;
    }
    if (n_lab > DS_MAX_LABEL_ROWS) {
        *why = strdup("more than 1000000 labels match: narrow the filter");
        err = SRV_EUNPROCESSABLE;
        goto out;
    }
    mem = calloc(n_lab, sizeof *mem);
    snaps = calloc(n_lab, sizeof *snaps);
    labs = calloc(n_lab, sizeof *labs);
    classes = calloc(DS_MAX_CLASSES, sizeof *classes);
    groups = calloc(n_lab, sizeof *groups);
    order = calloc(n_lab, sizeof *order);
    if (!mem || !snaps || !labs || !classes || !groups || !order) {
        err = SRV_ENOMEM;
        goto out;
    }
    /* Classes: sorted names, so indices do not depend on row order. */
    for (i = 0; i < n_lab; i++) {
        const char *c = PQgetvalue(g, (int)i, 11);

        if (find_name(classes, n_cls, c) >= 0)
            continue;
        if (n_cls == DS_MAX_CLASSES) {
            *why = strdup("more than 64 classes match: narrow the filter");
            err = SRV_EUNPROCESSABLE;
            goto out;
        }
        classes[n_cls++] = PQgetvalue(g, (int)i, 11);
    }
    qsort(classes, n_cls, sizeof *classes, cmp_str);
    for (i = 0; i < n_lab; i++) {
        int64_t sid = strtoll(PQgetvalue(g, (int)i, 0), NULL, 10);
        char gname[80];

        if (n_mem == 0 || mem[n_mem - 1].id != sid) {
            struct member *m = &mem[n_mem];
            double rate = strtod(PQgetvalue(g, (int)i, 2), NULL);
            long long pre = strtoll(PQgetvalue(g, (int)i, 3), NULL, 10);
            int gi;

            m->id = sid;
            m->rate = rate;
            m->t0_us = strtoll(PQgetvalue(g, (int)i, 1), NULL, 10) -
                       (int64_t)llround((double)pre * 1e6 / rate);
            m->n = (uint32_t)strtoul(PQgetvalue(g, (int)i, 4), NULL, 10);
            m->channels = PQgetvalue(g, (int)i, 5);
            snprintf(m->device, sizeof m->device, "%s", PQgetvalue(g, (int)i, 6));
            snprintf(m->asset, sizeof m->asset, "%s", PQgetvalue(g, (int)i, 7));
            snprintf(m->eqtype, sizeof m->eqtype, "%s", PQgetvalue(g, (int)i, 8));
            /* One channel layout and rate per version: X is one array. */
            if (n_mem == 0) {
                rate0 = rate;
                chans = json_loads(m->channels, 0, NULL);
            } else if (rate != rate0 || strcmp(m->channels, mem[0].channels) != 0) {
                char msg[200];

                snprintf(msg, sizeof msg, "snapshot %lld has another sample rate or channel "
                         "layout than snapshot %lld: filter to one equipment type",
                         (long long)sid, (long long)mem[0].id);
                *why = strdup(msg);
                err = SRV_EUNPROCESSABLE;
                goto out;
            }
            group_of(m, by, gname, sizeof gname);
            if ((gi = find_name(groups, n_grp, gname)) < 0) {
                if (!(groups[n_grp] = strdup(gname))) {
                    err = SRV_ENOMEM;
                    goto out;
                }
                order[n_grp] = m->t0_us;
                gi = (int)n_grp++;
            } else if (m->t0_us < order[gi]) {
                order[gi] = m->t0_us;
            }
            snaps[n_mem].snapshot_id = sid;
            snaps[n_mem].t0_us = m->t0_us;
            snaps[n_mem].rate = rate;
            snaps[n_mem].n_samples = m->n;
            snaps[n_mem].group = (uint32_t)gi;
            n_mem++;
        }
        labs[i].snapshot_id = sid;
        labs[i].start_s = strtod(PQgetvalue(g, (int)i, 9), NULL);
        labs[i].end_s = strtod(PQgetvalue(g, (int)i, 10), NULL);
        labs[i].cls = find_name(classes, n_cls, PQgetvalue(g, (int)i, 11));
        labs[i].source = source_index(PQgetvalue(g, (int)i, 12));
    }
    for (i = 0; i < n_mem; i++) {
        size_t k;

        for (k = 0; k < i && strcmp(mem[k].device, mem[i].device) != 0; k++)
            ;
        devices += k == i;
    }
    drc = ds_windows(snaps, n_mem, labs, n_lab, len_s, stride_s, edge, &win, &n_win);
    if (drc == DS_OK && n_win == 0) {
        *why = strdup("no window fits inside a label: shorten the window or relax the edge policy");
        err = SRV_EUNPROCESSABLE;
        goto out;
    }
    if (drc == DS_OK && n_win > DS_MAX_WINDOWS) {
        *why = strdup("more than 5000000 windows: raise the stride or narrow the filter");
        err = SRV_EUNPROCESSABLE;
        goto out;
    }
    if (drc == DS_OK)
        drc = ds_split(win, n_win, (const char *const *)groups,
                       strcmp(by, "time") == 0 ? order : NULL, n_grp, fr,
                       (uint64_t)json_integer_value(json_object_get(json_object_get(def, "split"), "seed")),
                       (unsigned)json_integer_value(json_object_get(json_object_get(def, "split"),
                                                                    "min_per_split")),
                       &bad_class, &bad_split);
    if (drc == DS_ETOOFEW) {
        char msg[300];
        size_t have = 0;

        for (i = 0; i < n_win; i++)
            have += win[i].cls == bad_class && win[i].split == bad_split;
        snprintf(msg, sizeof msg, "class \"%s\" has too few examples for the %s split "
                 "(%zu window%s there; split by %s over %u groups)",
                 bad_class >= 0 && (uint32_t)bad_class < n_cls ? classes[bad_class] : "?",
                 split_name(bad_split), have, have == 1 ? "" : "s", by, n_grp);
        *why = strdup(msg);
        err = SRV_EUNPROCESSABLE;
        goto out;
    }
    if (drc != DS_OK) {
        *why = strdup(ds_strerror(drc));
        err = drc == DS_ENOMEM ? SRV_ENOMEM : SRV_EUNPROCESSABLE;
        goto out;
    }

    /* Arrays for the one insert, and the content hash over the same text. */
    defs = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
    sb_put(&hin, defs ? defs : "", defs ? strlen(defs) : 0);
    for (i = 0; i < 14; i++)
        sb_put(&a[i], "{", 1);
    for (i = 0; i < n_lab; i++) {
        const char *sep = i ? "," : "";

        sb_printf(&a[0], "%s%lld", sep, (long long)labs[i].snapshot_id);
        sb_printf(&a[1], "%s%.17g", sep, labs[i].start_s);
        sb_printf(&a[2], "%s%.17g", sep, labs[i].end_s);
        sb_printf(&a[3], "%s%s", sep, classes[labs[i].cls]);
        sb_printf(&a[4], "%s%s", sep, sources[labs[i].source]);
        sb_printf(&a[5], "%s%s", sep, PQgetvalue(g, (int)i, 13));
        sb_printf(&hin, "\nL%lld,%.17g,%.17g,%s,%s,%s", (long long)labs[i].snapshot_id,
                  labs[i].start_s, labs[i].end_s, classes[labs[i].cls], sources[labs[i].source],
                  PQgetvalue(g, (int)i, 13));
        src_counts[labs[i].source]++;
    }
    for (i = 0; i < n_mem; i++)
        sb_printf(&hin, "\nM%lld,%lld,%.17g,%u,%s", (long long)mem[i].id, (long long)mem[i].t0_us,
                  mem[i].rate, mem[i].n, groups[snaps[i].group]);
    for (i = 0; i < n_win; i++) {
        const char *sep = i ? "," : "";

        sb_printf(&a[6], "%s%zu", sep, i);
        sb_printf(&a[7], "%s%lld", sep, (long long)win[i].snapshot_id);
        sb_printf(&a[8], "%s%u", sep, win[i].start);
        sb_printf(&a[9], "%s%lld", sep, (long long)win[i].start_us);
        sb_printf(&a[10], "%s%d", sep, win[i].cls);
        sb_printf(&a[11], "%s%s", sep, sources[win[i].source]);
        sb_printf(&a[12], "%s%u", sep, win[i].group);
        sb_printf(&a[13], "%s%d", sep, win[i].split);
        sb_printf(&hin, "\nW%lld,%u,%d,%s,%d", (long long)win[i].snapshot_id, win[i].start,
                  win[i].cls, sources[win[i].source], win[i].split);
        counts[win[i].cls]++;
    }
    for (i = 0; i < 14; i++) {
        sb_put(&a[i], "}", 1);
        if (a[i].oom)
            hin.oom = 1;
    }
    if (hin.oom || !defs) {
        err = SRV_ENOMEM;
        goto out;
    }
    crypto_hash_sha256(sha, (const uint8_t *)hin.p, hin.len);
    ds__hex(sha, 32, shahex);

    /* Summary: what the manifest and the reader need without a rescan. */
    {
        json_t *cl = json_array(), *gr = json_array(), *cc = json_object(), *sc = json_object();
        int64_t tmin = win[0].start_us, tmax = win[0].start_us;

        for (i = 0; i < n_cls; i++) {
            json_array_append_new(cl, json_string(classes[i]));
            json_object_set_new(cc, classes[i], json_integer((json_int_t)counts[i]));
        }
        for (i = 0; i < n_grp; i++)
            json_array_append_new(gr, json_string(groups[i]));
        for (i = 0; i < N_SOURCES; i++)
            if (src_counts[i])
                json_object_set_new(sc, sources[i], json_integer((json_int_t)src_counts[i]));
        for (i = 0; i < n_win; i++) {
            if (win[i].start_us < tmin)
                tmin = win[i].start_us;
            if (win[i].start_us > tmax)
                tmax = win[i].start_us;
        }
        summary = json_pack("{s:o,s:o,s:o,s:o,s:O,s:f,s:I,s:I,s:i,s:I,s:I}",
                            "classes", cl, "groups", gr, "class_counts", cc,
                            "label_sources", sc, "channels", chans ? chans : json_array(),
                            "sample_rate", rate0,
                            "window_samples", (json_int_t)llround(len_s * rate0),
                            "n_windows", (json_int_t)n_win, "devices", (int)devices,
                            "t_min_us", (json_int_t)tmin, "t_max_us", (json_int_t)tmax);
        sums = summary ? json_dumps(summary, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    }
    if (!sums) {
        err = SRV_ENOMEM;
        goto out;
    }
    snprintf(nwin, sizeof nwin, "%zu", n_win);
    snprintf(idb, sizeof idb, "%lld", (long long)dataset_id);
    vals[0] = idb;
    vals[1] = shahex;
    vals[2] = nwin;
    vals[3] = sums;
    vals[4] = created_by;
    for (i = 0; i < 14; i++)
        vals[5 + i] = a[i].p;
    if ((err = ds__exec(DS_SQL_VERSION_INSERT, vals, 0, &r)) != SRV_OK)
        goto out;
    rows = (size_t)strtoull(PQgetvalue(r, 0, 2), NULL, 10);
    if (PQntuples(r) != 1 || rows != n_win) {
        err = SRV_EINTERNAL;
        goto out;
    }
    *version = atoi(PQgetvalue(r, 0, 0));
    err = SRV_OK;
out:
    for (i = 0; groups && i < n_grp; i++)
        free(groups[i]);
    for (i = 0; i < 14; i++)
        free(a[i].p);
    free(groups);
    free(classes);
    free(order);
    free(mem);
    free(snaps);
    free(labs);
    free(win);
    free(defs);
    free(sums);
    free(hin.p);
    free(p_src.p);
    free(p_cls.p);
    free(p_eq.p);
    free(p_site.p);
    json_decref(def);
    json_decref(summary);
    json_decref(chans);
    PQclear(g);
    PQclear(r);
    return err;
}

/* ---- the reader ---------------------------------------------------------- */

struct ds_reader {
    struct ds_info info;
    char **groups;
    PGresult *page;
    int page_i;
    int64_t next_row;
    int64_t cur_snap;
    float *snap;                /* channel-major, info.channel_count * snap_n */
    size_t snap_n;
    float *x;                   /* one window */
};

void ds_reader_free(struct ds_reader *r)
{
    uint32_t i;

    if (!r)
        return;
    for (i = 0; r->groups && i < r->info.n_groups; i++)
        free(r->groups[i]);
    free(r->groups);
    PQclear(r->page);
    free(r->snap);
    free(r->x);
    free(r);
}

static int info_from_summary(struct ds_reader *r, const char *text)
{
    json_t *s = json_loads(text, 0, NULL), *v;
    struct ds_info *in = &r->info;
    size_t i;
    int rc = SRV_EINTERNAL;

    if (!s)
        return rc;
    v = json_object_get(s, "classes");
    if (json_array_size(v) > DS_MAX_CLASSES)
        goto out;
    in->normal_class = -1;
    in->n_classes = (unsigned)json_array_size(v);
    for (i = 0; i < in->n_classes; i++) {
        snprintf(in->classes[i], sizeof in->classes[i], "%s",
                 json_string_value(json_array_get(v, i)) ? json_string_value(json_array_get(v, i)) : "");
        if (strcmp(in->classes[i], "normal") == 0)
            in->normal_class = (int)i;
    }
    v = json_object_get(s, "groups");
    in->n_groups = (uint32_t)json_array_size(v);
    if (!(r->groups = calloc(in->n_groups ? in->n_groups : 1, sizeof *r->groups)))
        goto out;
    for (i = 0; i < in->n_groups; i++) {
        const char *gs = json_string_value(json_array_get(v, i));

        if (!(r->groups[i] = strdup(gs ? gs : "")))
            goto out;
    }
    v = json_object_get(s, "channels");
    in->channel_count = (unsigned)json_array_size(v);
    if (in->channel_count == 0 || in->channel_count > 64)
        goto out;
    for (i = 0; i < in->channel_count; i++) {
        const char *nm = json_string_value(json_object_get(json_array_get(v, i), "name"));
        const char *un = json_string_value(json_object_get(json_array_get(v, i), "unit"));

        snprintf(in->channel_names[i], sizeof in->channel_names[i], "%s", nm ? nm : "");
        snprintf(in->channel_units[i], sizeof in->channel_units[i], "%s", un ? un : "");
    }
    in->sample_rate = json_number_value(json_object_get(s, "sample_rate"));
    in->window_samples = (uint32_t)json_integer_value(json_object_get(s, "window_samples"));
    in->n_devices = (unsigned)json_integer_value(json_object_get(s, "devices"));
    in->t_min_us = json_integer_value(json_object_get(s, "t_min_us"));
    in->t_max_us = json_integer_value(json_object_get(s, "t_max_us"));
    if (in->window_samples == 0 || in->window_samples > (1u << 24))
        goto out;
    rc = SRV_OK;
out:
    json_decref(s);
    return rc;
}

int ds_reader_open(int64_t dataset_id, int version, struct ds_reader **out)
{
    char idb[24], vb[16];
    const char *vals[2] = { idb, vb };
    struct ds_reader *r;
    PGresult *res = NULL;
    int err;

    snprintf(idb, sizeof idb, "%lld", (long long)dataset_id);
    snprintf(vb, sizeof vb, "%d", version);
    if ((err = ds__exec(DS_SQL_VERSION_GET, vals, 0, &res)) != SRV_OK)
        return err;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return SRV_ENOTFOUND;
    }
    if (!(r = calloc(1, sizeof *r))) {
        PQclear(res);
        return SRV_ENOMEM;
    }
    r->info.dataset_id = dataset_id;
    r->info.version = version;
    r->info.n_windows = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    err = info_from_summary(r, PQgetvalue(res, 0, 2));
    PQclear(res);
    if (err == SRV_OK &&
        !(r->x = malloc((size_t)r->info.channel_count * r->info.window_samples * sizeof *r->x)))
        err = SRV_ENOMEM;
    if (err != SRV_OK) {
        ds_reader_free(r);
        return err;
    }
    r->cur_snap = -1;
    *out = r;
    return SRV_OK;
}

const struct ds_info *ds_reader_info(const struct ds_reader *r)
{
    return &r->info;
}

const char *ds_reader_group(const struct ds_reader *r, uint32_t g)
{
    return g < r->info.n_groups ? r->groups[g] : "";
}

void ds_reader_rewind(struct ds_reader *r)
{
    PQclear(r->page);
    r->page = NULL;
    r->page_i = 0;
    r->next_row = 0;
}

/* Decode one snapshot into floats (channel-major); checks it still has the
 * version's layout (the database is outside input too). */
static int load_snapshot(struct ds_reader *r, int64_t id)
{
    char idb[24];
    const char *vals[1] = { idb };
    PGresult *res = NULL;
    struct wire_meta m;
    struct wire_view v;
    struct decimate_src src;
    void *raw = NULL;
    size_t need, n, i;
    unsigned c;
    int err;

    snprintf(idb, sizeof idb, "%lld", (long long)id);
    if ((err = db_exec(DB_SNAPSHOT_RAW, vals, NULL, NULL, 1, &res)) != SRV_OK)
        return err;
    err = SRV_EINTERNAL;
    if (PQntuples(res) != 1) {
        srv_log("error", "datasets: snapshot %lld of a version is gone", (long long)id);
        goto out;
    }
    if (wire_parse((const uint8_t *)PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), &m, &v) != WIRE_OK ||
        (need = wire_samples_bytes(&m)) == 0 || m.channel_count != r->info.channel_count)
        goto out;
    if (!(raw = malloc(need))) {
        err = SRV_ENOMEM;
        goto out;
    }
    if (wire_decode_samples(&m, &v, raw, need) != WIRE_OK)
        goto out;
    n = (size_t)m.pre_samples + m.post_samples;
    free(r->snap);
    r->snap = NULL;
    r->cur_snap = -1;
    if (!(r->snap = malloc(n * m.channel_count * sizeof *r->snap))) {
        err = SRV_ENOMEM;
        goto out;
    }
    src.samples = raw;
    src.sample_type = m.sample_type;
    src.n = n;
    src.channels = m.channel_count;
    for (c = 0; c < m.channel_count; c++)
        for (i = 0; i < n; i++)
            r->snap[c * n + i] = (float)decimate_value(&src, c, i);
    r->snap_n = n;
    r->cur_snap = id;
    err = SRV_OK;
out:
    free(raw);
    PQclear(res);
    return err;
}

int ds_reader_next(struct ds_reader *r, struct ds_row *row, const float **x)
{
    int err, i;

    if (!r->page || r->page_i >= PQntuples(r->page)) {
        char idb[24], vb[16], fb[24], lb[16];
        const char *vals[4] = { idb, vb, fb, lb };

        if (r->page && PQntuples(r->page) < DS_PAGE)
            return 0;
        PQclear(r->page);
        r->page = NULL;
        snprintf(idb, sizeof idb, "%lld", (long long)r->info.dataset_id);
        snprintf(vb, sizeof vb, "%d", r->info.version);
        snprintf(fb, sizeof fb, "%lld", (long long)r->next_row);
        snprintf(lb, sizeof lb, "%d", DS_PAGE);
        if ((err = ds__exec(DS_SQL_WINDOWS_PAGE, vals, 0, &r->page)) != SRV_OK)
            return err;
        r->page_i = 0;
        if (PQntuples(r->page) == 0)
            return 0;
    }
    i = r->page_i++;
    row->row = strtoll(PQgetvalue(r->page, i, 0), NULL, 10);
    row->snapshot_id = strtoll(PQgetvalue(r->page, i, 1), NULL, 10);
    row->start_sample = (uint32_t)strtoul(PQgetvalue(r->page, i, 2), NULL, 10);
    row->start_us = strtoll(PQgetvalue(r->page, i, 3), NULL, 10);
    row->cls = atoi(PQgetvalue(r->page, i, 4));
    snprintf(row->source, sizeof row->source, "%s", PQgetvalue(r->page, i, 5));
    row->group = (uint32_t)strtoul(PQgetvalue(r->page, i, 6), NULL, 10);
    row->split = atoi(PQgetvalue(r->page, i, 7));
    r->next_row = row->row + 1;
    if (row->cls < 0 || (unsigned)row->cls >= r->info.n_classes || row->group >= r->info.n_groups)
        return SRV_EINTERNAL;
    if (x) {
        unsigned c;
        size_t T = r->info.window_samples;

        if (row->snapshot_id != r->cur_snap && (err = load_snapshot(r, row->snapshot_id)) != SRV_OK)
            return err;
        if ((size_t)row->start_sample + T > r->snap_n)
            return SRV_EINTERNAL;
        for (c = 0; c < r->info.channel_count; c++)
            memcpy(r->x + c * T, r->snap + c * r->snap_n + row->start_sample, T * sizeof *r->x);
        *x = r->x;
    }
    return 1;
}
