/* ds_version.c - freezing a dataset version: read the definition, gather
 * the labels it selects from every source, cut them into windows, split
 * whole groups, hash the content and insert it all in one statement.
 *
 * A version is immutable: its labels are copied (later edits do not reach
 * it), its windows and their split are stored in export order, and its
 * content hash covers the policies, members, labels and windows, so two
 * versions with the same hash export the same bytes.  The hash input is a
 * text whose every byte is fixed below (hash_input): changing it changes
 * the hash of every version frozen from then on. */
#include "server/datasets/ds_int.h"

#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/db/db.h"
#include "server/srv/srv.h"

#define DS_MAX_WINDOWS 5000000      /* per version: bounds what a version insert sends */
#define DS_MAX_LABEL_ROWS 1000000
#define N_ARRAYS 14                 /* array parameters of DS_SQL_VERSION_INSERT */

/* The window and split policy a definition stores. */
struct policy {
    double len_s, stride_s, fr[DS_SPLITS];
    enum ds_edge edge;
    const char *by;                 /* borrowed from the definition */
    uint64_t seed;
    unsigned min_per_split;
};

/* One labeled snapshot.  Device, asset and type are cut to 64 bytes: group
 * names, and so content hashes, are made from that much, and a version's
 * hash must come out the same when it is frozen again. */
struct member {
    int64_t id, t0_us;
    double rate;
    uint32_t n;
    const char *channels;           /* the snapshots.channels JSON text, in the result */
    char device[65], asset[65], eqtype[65];
};

/* Everything one version build holds; build_release frees it. */
struct build {
    json_t *def;
    struct policy pol;
    PGresult *g;                    /* gathered label rows, one per label */
    size_t n_lab, n_mem, n_win;
    uint32_t n_cls, n_grp;
    struct ds_label *labs;          /* labs[i] is row i of g */
    const char **classes;           /* sorted names, pointing into g */
    struct member *mem;
    struct ds_snapshot *snaps;      /* snaps[i] describes mem[i] */
    char **groups;
    int64_t *order;                 /* per group: its first snapshot's t0 (time split) */
    struct ds_window *win;
    json_t *chans;                  /* the one channel layout */
    double rate0;                   /* and the one sample rate */
    char *why;                      /* malloc'd, for SRV_EUNPROCESSABLE and SRV_EBADREQ */
};

static void build_release(struct build *b)
{
    uint32_t i;

    for (i = 0; b->groups && i < b->n_grp; i++)
        free(b->groups[i]);
    free(b->groups);
    free(b->classes);
    free(b->order);
    free(b->mem);
    free(b->snaps);
    free(b->labs);
    free(b->win);
    json_decref(b->def);
    json_decref(b->chans);
    PQclear(b->g);
}

/* Refuse the build with a message for the client; returns err. */
static int refuse(struct build *b, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(struct build *b, int err, const char *fmt, ...)
{
    char msg[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(b->why);
    b->why = strdup(msg);
    return err;
}

static const json_t *def_get(const struct build *b, const char *part, const char *key)
{
    return json_object_get(json_object_get(b->def, part), key);
}

/* ---- the definition -------------------------------------------------------- */

static void policy_read(struct build *b)
{
    struct policy *p = &b->pol;
    const char *edge = json_string_value(def_get(b, "window", "edge"));
    size_t i;

    p->len_s = json_number_value(def_get(b, "window", "length_s"));
    p->stride_s = json_number_value(def_get(b, "window", "stride_s"));
    p->edge = !edge || strcmp(edge, "majority") == 0 ? DS_EDGE_MAJORITY
            : strcmp(edge, "strict") == 0 ? DS_EDGE_STRICT : DS_EDGE_ANY;
    p->by = json_string_value(def_get(b, "split", "by"));
    if (!p->by)
        p->by = "device";
    for (i = 0; i < DS_SPLITS; i++)
        p->fr[i] = json_number_value(json_array_get(def_get(b, "split", "fractions"), i));
    p->seed = (uint64_t)json_integer_value(def_get(b, "split", "seed"));
    p->min_per_split = (unsigned)json_integer_value(def_get(b, "split", "min_per_split"));
}

static int definition_load(struct build *b, int64_t dataset_id)
{
    char idb[24];
    const char *vals[1] = { idb };
    PGresult *r = NULL;
    int err;

    snprintf(idb, sizeof idb, "%lld", (long long)dataset_id);
    if ((err = ds__exec(DS_SQL_GET, vals, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return SRV_ENOTFOUND;
    }
    b->def = json_loads(db_text_or(r, 0, "definition", ""), 0, NULL);
    PQclear(r);
    if (!b->def)
        return SRV_EINTERNAL;
    policy_read(b);
    return SRV_OK;
}

/* ---- gathering labels ------------------------------------------------------- */

/* The filter's list under key as an array literal into out; 0 (out left
 * empty) when the filter has no such list. */
static int filter_list(const struct build *b, const char *key, struct srv_buf *out)
{
    const json_t *a = def_get(b, "filter", key), *v;
    size_t i;

    if (!a)
        return 0;
    db_array_begin(out);
    json_array_foreach(a, i, v)
        db_array_text(out, json_string_value(v));
    db_array_end(out);
    return 1;
}

static int labels_gather(struct build *b)
{
    /* The filter's lists and the parameters they are ($1, $3, $4, $5). */
    static const char *const lists[] = { "sources", "classes", "equipment_types", "sites" };
    static const int param[] = { 0, 2, 3, 4 };
    struct srv_buf p[4] = { { 0 } };
    const char *vals[7];
    char confb[32];
    int err = SRV_OK, k, oom = 0;

    for (k = 0; k < 4; k++) {
        vals[param[k]] = filter_list(b, lists[k], &p[k]) ? p[k].p : NULL;
        oom |= p[k].oom;
    }
    snprintf(confb, sizeof confb, "%.9g", json_number_value(def_get(b, "filter", "min_confidence")));
    vals[1] = confb;
    vals[5] = json_string_value(def_get(b, "filter", "from"));
    vals[6] = json_string_value(def_get(b, "filter", "to"));
    if (oom)
        err = SRV_ENOMEM;
    else if ((err = ds__exec(DS_SQL_GATHER, vals, 0, &b->g)) == SRV_EDB)
        err = refuse(b, SRV_EBADREQ, "filter could not be applied (check from/to timestamps)");
    for (k = 0; k < 4; k++)
        srv_buf_free(&p[k]);
    if (err != SRV_OK)
        return err;
    b->n_lab = (size_t)PQntuples(b->g);
    if (b->n_lab == 0)
        return refuse(b, SRV_EUNPROCESSABLE, "no labels match the filter");
    if (b->n_lab > DS_MAX_LABEL_ROWS)
        return refuse(b, SRV_EUNPROCESSABLE, "more than 1000000 labels match: narrow the filter");
    return SRV_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int find_name(const char *const *names, uint32_t n, const char *s)
{
    uint32_t i;

    for (i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

/* Class indices are positions in the sorted names, so they do not depend
 * on the order the rows came in. */
static int classes_collect(struct build *b)
{
    size_t i;

    if (!(b->classes = calloc(DS_MAX_CLASSES, sizeof *b->classes)))
        return SRV_ENOMEM;
    for (i = 0; i < b->n_lab; i++) {
        const char *c = db_text_or(b->g, (int)i, "class", "");

        if (find_name(b->classes, b->n_cls, c) >= 0)
            continue;
        if (b->n_cls == DS_MAX_CLASSES)
            return refuse(b, SRV_EUNPROCESSABLE, "more than 64 classes match: narrow the filter");
        b->classes[b->n_cls++] = c;
    }
    qsort(b->classes, b->n_cls, sizeof *b->classes, cmp_str);
    return SRV_OK;
}

/* ---- members and their groups ---------------------------------------------- */

static void group_name(const struct member *m, const char *by, char *out, size_t cap)
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

/* The member's group index, adding the group when new; -1 out of memory. */
static int group_index(struct build *b, const struct member *m)
{
    char name[80];
    int gi;

    group_name(m, b->pol.by, name, sizeof name);
    if ((gi = find_name((const char *const *)b->groups, b->n_grp, name)) >= 0) {
        if (m->t0_us < b->order[gi])
            b->order[gi] = m->t0_us;
        return gi;
    }
    if (!(b->groups[b->n_grp] = strdup(name)))
        return -1;
    b->order[b->n_grp] = m->t0_us;
    return (int)b->n_grp++;
}

/* Row i starts a new member: read it, hold it to the version's one channel
 * layout and rate (X is one array), give it its group. */
static int member_add(struct build *b, int i)
{
    struct member *m = &b->mem[b->n_mem];
    struct ds_snapshot *s = &b->snaps[b->n_mem];
    int64_t pre = db_int64(b->g, i, "pre_samples");
    int gi;

    m->id = db_int64(b->g, i, "snapshot_id");
    m->rate = db_double(b->g, i, "sample_rate");
    m->t0_us = db_int64(b->g, i, "trigger_us") - (int64_t)llround((double)pre * 1e6 / m->rate);
    m->n = (uint32_t)db_int64(b->g, i, "n_samples");
    m->channels = db_text_or(b->g, i, "channels", "");
    snprintf(m->device, sizeof m->device, "%s", db_text_or(b->g, i, "device_id", ""));
    snprintf(m->asset, sizeof m->asset, "%s", db_text_or(b->g, i, "asset", ""));
    snprintf(m->eqtype, sizeof m->eqtype, "%s", db_text_or(b->g, i, "equipment_type", ""));
    if (b->n_mem == 0) {
        b->rate0 = m->rate;
        b->chans = json_loads(m->channels, 0, NULL);
    } else if (m->rate != b->rate0 || strcmp(m->channels, b->mem[0].channels) != 0) {
        return refuse(b, SRV_EUNPROCESSABLE, "snapshot %lld has another sample rate or channel "
                      "layout than snapshot %lld: filter to one equipment type",
                      (long long)m->id, (long long)b->mem[0].id);
    }
    if ((gi = group_index(b, m)) < 0)
        return SRV_ENOMEM;
    s->snapshot_id = m->id;
    s->t0_us = m->t0_us;
    s->rate = m->rate;
    s->n_samples = m->n;
    s->group = (uint32_t)gi;
    b->n_mem++;
    return SRV_OK;
}

/* Rows come ordered by snapshot: a new snapshot id starts a member. */
static int members_collect(struct build *b)
{
    size_t n = b->n_lab, i;
    int err;

    b->mem = calloc(n, sizeof *b->mem);
    b->snaps = calloc(n, sizeof *b->snaps);
    b->labs = calloc(n, sizeof *b->labs);
    b->groups = calloc(n, sizeof *b->groups);
    b->order = calloc(n, sizeof *b->order);
    if (!b->mem || !b->snaps || !b->labs || !b->groups || !b->order)
        return SRV_ENOMEM;
    for (i = 0; i < n; i++) {
        struct ds_label *l = &b->labs[i];
        int row = (int)i;

        l->snapshot_id = db_int64(b->g, row, "snapshot_id");
        if ((b->n_mem == 0 || b->mem[b->n_mem - 1].id != l->snapshot_id) &&
            (err = member_add(b, row)) != SRV_OK)
            return err;
        l->start_s = db_double(b->g, row, "start_s");
        l->end_s = db_double(b->g, row, "end_s");
        l->cls = find_name(b->classes, b->n_cls, db_text_or(b->g, row, "class", ""));
        l->source = ds__source_index(db_text_or(b->g, row, "source", ""));
    }
    return SRV_OK;
}

/* ---- windows and the split ------------------------------------------------- */

static int ds_err(struct build *b, int drc)
{
    return refuse(b, drc == DS_ENOMEM ? SRV_ENOMEM : SRV_EUNPROCESSABLE, "%s", ds_strerror(drc));
}

static int windows_cut(struct build *b)
{
    int drc = ds_windows(b->snaps, b->n_mem, b->labs, b->n_lab, b->pol.len_s, b->pol.stride_s,
                         b->pol.edge, &b->win, &b->n_win);

    if (drc != DS_OK)
        return ds_err(b, drc);
    if (b->n_win == 0)
        return refuse(b, SRV_EUNPROCESSABLE, "no window fits inside a label: shorten the window "
                      "or relax the edge policy");
    if (b->n_win > DS_MAX_WINDOWS)
        return refuse(b, SRV_EUNPROCESSABLE, "more than 5000000 windows: raise the stride or "
                      "narrow the filter");
    return SRV_OK;
}

static const char *split_name(int s)
{
    return s == 0 ? "train" : s == 1 ? "validation" : "test";
}

/* Groups go whole into train, validation and test (a time split orders
 * them by their first snapshot); a class short of examples in a split is
 * named with how many windows it got there. */
static int split_apply(struct build *b)
{
    int bad_class = -1, bad_split = -1, drc;
    size_t have = 0, i;

    drc = ds_split(b->win, b->n_win, (const char *const *)b->groups,
                   strcmp(b->pol.by, "time") == 0 ? b->order : NULL, b->n_grp, b->pol.fr,
                   b->pol.seed, b->pol.min_per_split, &bad_class, &bad_split);
    if (drc == DS_OK)
        return SRV_OK;
    if (drc != DS_ETOOFEW)
        return ds_err(b, drc);
    for (i = 0; i < b->n_win; i++)
        have += b->win[i].cls == bad_class && b->win[i].split == bad_split;
    return refuse(b, SRV_EUNPROCESSABLE, "class \"%s\" has too few examples for the %s split "
                  "(%zu window%s there; split by %s over %u groups)",
                  bad_class >= 0 && (uint32_t)bad_class < b->n_cls ? b->classes[bad_class] : "?",
                  split_name(bad_split), have, have == 1 ? "" : "s", b->pol.by, b->n_grp);
}

/* ---- content hash, summary, insert ------------------------------------------ */

/* The bytes the content hash covers: the normalised definition, then one
 * line per label (L), member (M) and window (W). */
static void hash_input(const struct build *b, const char *defs, struct srv_buf *h)
{
    size_t i;

    srv_buf_puts(h, defs);
    for (i = 0; i < b->n_lab; i++) {
        const struct ds_label *l = &b->labs[i];

        srv_buf_printf(h, "\nL%lld,%.17g,%.17g,%s,%s,%s", (long long)l->snapshot_id, l->start_s,
                       l->end_s, b->classes[l->cls], ds__sources[l->source],
                       db_text_or(b->g, (int)i, "confidence", ""));
    }
    for (i = 0; i < b->n_mem; i++)
        srv_buf_printf(h, "\nM%lld,%lld,%.17g,%u,%s", (long long)b->mem[i].id,
                       (long long)b->mem[i].t0_us, b->mem[i].rate, b->mem[i].n,
                       b->groups[b->snaps[i].group]);
    for (i = 0; i < b->n_win; i++) {
        const struct ds_window *w = &b->win[i];

        srv_buf_printf(h, "\nW%lld,%u,%d,%s,%d", (long long)w->snapshot_id, w->start, w->cls,
                       ds__sources[w->source], w->split);
    }
}

static int content_hash(const struct build *b, char hex[65])
{
    struct srv_buf h = { 0 };
    uint8_t sha[32];
    char *defs = json_dumps(b->def, JSON_COMPACT | JSON_SORT_KEYS);

    if (!defs)
        return SRV_ENOMEM;
    hash_input(b, defs, &h);
    free(defs);
    if (h.oom) {
        srv_buf_free(&h);
        return SRV_ENOMEM;
    }
    crypto_hash_sha256(sha, (const uint8_t *)h.p, h.len);
    srv_buf_free(&h);
    sodium_bin2hex(hex, 65, sha, sizeof sha);
    return SRV_OK;
}

/* What the manifest and the reader need without a rescan
 * (dataset_versions.summary), as sorted compact JSON. */
static char *summary_text(const struct build *b)
{
    json_t *cl = json_array(), *gr = json_array(), *cc = json_object(), *sc = json_object(), *s;
    size_t counts[DS_MAX_CLASSES] = { 0 }, src_counts[DS_N_SOURCES] = { 0 }, i;
    int64_t tmin = b->win[0].start_us, tmax = b->win[0].start_us;
    unsigned devices = 0;
    char *text;

    for (i = 0; i < b->n_win; i++) {
        counts[b->win[i].cls]++;
        tmin = b->win[i].start_us < tmin ? b->win[i].start_us : tmin;
        tmax = b->win[i].start_us > tmax ? b->win[i].start_us : tmax;
    }
    for (i = 0; i < b->n_lab; i++)
        src_counts[b->labs[i].source]++;
    for (i = 0; i < b->n_cls; i++) {
        json_array_append_new(cl, json_string(b->classes[i]));
        json_object_set_new(cc, b->classes[i], json_integer((json_int_t)counts[i]));
    }
    for (i = 0; i < b->n_grp; i++)
        json_array_append_new(gr, json_string(b->groups[i]));
    for (i = 0; i < DS_N_SOURCES; i++)
        if (src_counts[i])
            json_object_set_new(sc, ds__sources[i], json_integer((json_int_t)src_counts[i]));
    for (i = 0; i < b->n_mem; i++) {
        size_t k;

        for (k = 0; k < i && strcmp(b->mem[k].device, b->mem[i].device) != 0; k++)
            ;
        devices += k == i;
    }
    s = json_pack("{s:o,s:o,s:o,s:o,s:o,s:f,s:I,s:I,s:i,s:I,s:I}",
                  "classes", cl, "groups", gr, "class_counts", cc, "label_sources", sc,
                  "channels", b->chans ? json_incref(b->chans) : json_array(),
                  "sample_rate", b->rate0,
                  "window_samples", (json_int_t)llround(b->pol.len_s * b->rate0),
                  "n_windows", (json_int_t)b->n_win, "devices", (int)devices,
                  "t_min_us", (json_int_t)tmin, "t_max_us", (json_int_t)tmax);
    text = s ? json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(s);
    return text;
}

static void array_double(struct srv_buf *a, double v)
{
    char t[32];

    snprintf(t, sizeof t, "%.17g", v);
    db_array_raw(a, t);
}

/* The labels ($6..$11) and windows ($12..$19) as array literals. */
static int insert_arrays(const struct build *b, struct srv_buf a[N_ARRAYS])
{
    size_t i;
    int k, oom = 0;

    for (k = 0; k < N_ARRAYS; k++)
        db_array_begin(&a[k]);
    for (i = 0; i < b->n_lab; i++) {
        const struct ds_label *l = &b->labs[i];

        db_array_int64(&a[0], l->snapshot_id);
        array_double(&a[1], l->start_s);
        array_double(&a[2], l->end_s);
        db_array_text(&a[3], b->classes[l->cls]);
        db_array_text(&a[4], ds__sources[l->source]);
        db_array_raw(&a[5], db_text_or(b->g, (int)i, "confidence", "NULL"));
    }
    for (i = 0; i < b->n_win; i++) {
        const struct ds_window *w = &b->win[i];

        db_array_int64(&a[6], (int64_t)i);
        db_array_int64(&a[7], w->snapshot_id);
        db_array_int64(&a[8], w->start);
        db_array_int64(&a[9], w->start_us);
        db_array_int64(&a[10], w->cls);
        db_array_text(&a[11], ds__sources[w->source]);
        db_array_int64(&a[12], w->group);
        db_array_int64(&a[13], w->split);
    }
    for (k = 0; k < N_ARRAYS; k++) {
        db_array_end(&a[k]);
        oom |= a[k].oom;
    }
    return oom ? SRV_ENOMEM : SRV_OK;
}

static int version_insert(const struct build *b, int64_t dataset_id, const char *created_by,
                          int *version)
{
    struct srv_buf a[N_ARRAYS] = { { 0 } };
    char idb[24], nwin[24], hex[65], *sums = NULL;
    const char *vals[5 + N_ARRAYS];
    PGresult *r = NULL;
    int err, k;

    if ((err = content_hash(b, hex)) != SRV_OK || (err = insert_arrays(b, a)) != SRV_OK)
        goto out;
    if (!(sums = summary_text(b))) {
        err = SRV_ENOMEM;
        goto out;
    }
    snprintf(idb, sizeof idb, "%lld", (long long)dataset_id);
    snprintf(nwin, sizeof nwin, "%zu", b->n_win);
    vals[0] = idb;
    vals[1] = hex;
    vals[2] = nwin;
    vals[3] = sums;
    vals[4] = created_by;
    for (k = 0; k < N_ARRAYS; k++)
        vals[5 + k] = a[k].p;
    if ((err = ds__exec(DS_SQL_VERSION_INSERT, vals, 0, &r)) != SRV_OK)
        goto out;
    if (PQntuples(r) != 1 || (size_t)db_int64(r, 0, "windows") != b->n_win) {
        err = SRV_EINTERNAL;
        goto out;
    }
    *version = (int)db_int64(r, 0, "version");
out:
    for (k = 0; k < N_ARRAYS; k++)
        srv_buf_free(&a[k]);
    free(sums);
    PQclear(r);
    return err;
}

int ds__version_create(int64_t dataset_id, const char *created_by, int *version, char **why)
{
    struct build b;
    int err;

    memset(&b, 0, sizeof b);
    *why = NULL;
    if ((err = definition_load(&b, dataset_id)) == SRV_OK &&
        (err = labels_gather(&b)) == SRV_OK &&
        (err = classes_collect(&b)) == SRV_OK &&
        (err = members_collect(&b)) == SRV_OK &&
        (err = windows_cut(&b)) == SRV_OK &&
        (err = split_apply(&b)) == SRV_OK)
        err = version_insert(&b, dataset_id, created_by, version);
    *why = b.why;
    build_release(&b);
    return err;
}
