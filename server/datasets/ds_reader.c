/* ds_reader.c - walking a stored version: its summary as struct ds_info,
 * then its window rows a page at a time in export order and, when asked,
 * each window's samples cut out of the snapshot (decoded once per snapshot:
 * rows come ordered by snapshot).  Export and training both read versions
 * this way, so memory is one page plus one snapshot whatever the version's
 * size. */
#include "server/datasets/ds_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/wire.h"
#include "server/db/db.h"
#include "server/decimate/decimate.h"
#include "server/ingest/ingest.h"
#include "server/srv/srv.h"

#define DS_PAGE 512

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
    struct ds_reader *r;
    PGresult *res = NULL;
    int err;

    if ((err = ds__version_row(dataset_id, version, &res)) != SRV_OK)
        return err;
    if (!(r = calloc(1, sizeof *r))) {
        PQclear(res);
        return SRV_ENOMEM;
    }
    r->info.dataset_id = dataset_id;
    r->info.version = version;
    r->info.n_windows = db_int64(res, 0, "n_windows");
    err = info_from_summary(r, db_text_or(res, 0, "summary", ""));
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
    PGresult *res = NULL;
    const uint8_t *env = NULL;
    size_t len = 0;
    struct wire_meta m;
    struct wire_view v;
    void *raw = NULL;
    size_t need, n;
    int err;

    err = ingest_stored(id, &res, &env, &len);
    if (err == SRV_ENOTFOUND)
        srv_log("error", "datasets: snapshot %lld of a version is gone", (long long)id);
    if (err != SRV_OK && err != SRV_ENOTFOUND)
        goto out;
    err = SRV_EINTERNAL;
    if (!env || wire_parse(env, len, &m, &v) != WIRE_OK ||
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
    /* physical units: code * scale + offset of each channel (wire v2) */
    if (wire_to_physical(&m, raw, r->snap) != WIRE_OK)
        goto out;
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
    row->row = db_int64(r->page, i, "row");
    row->snapshot_id = db_int64(r->page, i, "snapshot_id");
    row->start_sample = (uint32_t)db_int64(r->page, i, "start_sample");
    row->start_us = db_int64(r->page, i, "start_us");
    row->cls = (int)db_int64(r->page, i, "cls");
    snprintf(row->source, sizeof row->source, "%s", db_text_or(r->page, i, "source", ""));
    row->group = (uint32_t)db_int64(r->page, i, "grp");
    row->split = (int)db_int64(r->page, i, "split");
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
