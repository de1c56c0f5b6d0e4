/* models_transfer.c - transfer from related equipment types: the windows a
 * few-shot training borrows from machines of another type that share a
 * failure mode with the target's (the taxonomy's shared classes).
 *
 * Five outer-race faults on one fan are few; the pump next to it may have
 * twenty, on the same kind of bearing.  Its windows come in as weak labels
 * (MODELS_TRANSFER_WEIGHT) in a domain of their own: the learner
 * standardises each domain by its own robust statistics, so a fault looks
 * alike across machines of another size and speed, and a related label
 * supports a class without founding it.  That standardisation needs the
 * related machine's ordinary population, so its windows labeled normal come
 * in too, unlabeled (another machine's normal is what differs most; its
 * spread is what the domain is measured by), and a type without normal
 * windows is skipped.
 *
 * The windows are read from a frozen version (ds_transfer_version), with
 * the target's feature set (the related type's own shaft speed and bearing
 * in the envelope set: defect frequencies are where they are on that
 * machine), channels matched by name and unit. */
#include "server/models/models_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/featureset.h"
#include "server/datasets/datasets.h"
#include "server/db/db.h"
#include "server/models/models_fewshot.h"
#include "server/srv/srv.h"

int32_t models__transfer_label(const struct ds_info *target, const char *related_class,
                               const char *const *shared, size_t n_shared)
{
    size_t i;
    unsigned c;

    if (!related_class)
        return MODELS_TRANSFER_DROP;
    if (strcmp(related_class, "normal") == 0)
        return target->normal_class >= 0 ? FEWSHOT_UNLABELED : MODELS_TRANSFER_DROP;
    for (i = 0; i < n_shared; i++)
        if (shared[i] && strcmp(shared[i], related_class) == 0)
            break;
    if (i == n_shared)
        return MODELS_TRANSFER_DROP;
    for (c = 0; c < target->n_classes; c++)
        if (strcmp(target->classes[c], related_class) == 0)
            return (int32_t)c;
    return MODELS_TRANSFER_DROP;
}

int models__transfer_channel_map(const struct ds_info *target, const struct ds_info *related,
                                 unsigned *map)
{
    for (unsigned c = 0; c < target->channel_count; c++) {
        unsigned k = 0;

        while (k < related->channel_count &&
               (strcmp(related->channel_names[k], target->channel_names[c]) != 0 ||
                strcmp(related->channel_units[k], target->channel_units[c]) != 0))
            k++;
        if (k == related->channel_count)
            return -1;
        map[c] = k;
    }
    return 0;
}

int models__transfer_append(struct models_transfer *t, const float *feat, unsigned per,
                            const unsigned *map, unsigned channels, int32_t label,
                            uint32_t domain)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        float *X = realloc(t->X, cap * t->d * sizeof *X);
        int32_t *l;
        uint32_t *dm;

        if (!X)
            return MODEL_ENOMEM;
        t->X = X;
        if (!(l = realloc(t->label, cap * sizeof *l)))
            return MODEL_ENOMEM;
        t->label = l;
        if (!(dm = realloc(t->domain, cap * sizeof *dm)))
            return MODEL_ENOMEM;
        t->domain = dm;
        t->cap = cap;
    }
    for (unsigned c = 0; c < channels; c++)
        memcpy(t->X + t->n * t->d + (size_t)c * per, feat + (size_t)map[c] * per,
               per * sizeof *t->X);
    t->label[t->n] = label;
    t->domain[t->n] = domain;
    t->n_labeled += label >= 0;
    t->n++;
    return MODEL_OK;
}

void models__transfer_release(struct models_transfer *t)
{
    free(t->X);
    free(t->label);
    free(t->domain);
    json_decref(t->report);
    memset(t, 0, sizeof *t);
}

/* One related type read into t as domain dom; 1 used, 0 skipped (*why set),
 * negative SRV_E*. */
static int read_type(const struct ds_info *target, const struct featureset_spec *fs,
                     int64_t dsid, int version, const char *const *shared, size_t n_shared,
                     size_t cap_rows, uint32_t dom, struct models_transfer *t, json_t *entry,
                     const char **why)
{
    struct ds_reader *rd = NULL;
    struct ds_info *rin = NULL;
    struct ds_row row;
    const float *x;
    float *feat = NULL;
    struct models_kinmap *km = NULL;
    unsigned map[64], per = featureset_per_channel(fs->id, fs->version);
    size_t n0 = t->n, seen = 0, stride, labeled = 0, normal = 0;
    int rc;

    if ((rc = ds_reader_open(dsid, version, &rd)) != SRV_OK) {
        *why = "its transfer version is unreadable";
        return rc == SRV_ENOMEM ? rc : 0;
    }
    rc = 0;
    if (!(rin = malloc(sizeof *rin))) {
        rc = SRV_ENOMEM;
        goto out;
    }
    *rin = *ds_reader_info(rd);
    rin->feature_set = fs->id;
    if (rin->window_samples != target->window_samples || rin->sample_rate != target->sample_rate) {
        *why = "its windows have another sample rate or length than the target's";
        goto out;
    }
    if (models__transfer_channel_map(target, rin, map) != 0) {
        *why = "it lacks one of the target's channels (matched by name and unit)";
        goto out;
    }
    /* the envelope set reads each of its windows at its own machine's
     * defect frequencies, as the target's */
    if (fs->id == FEATURESET_ENVELOPE) {
        if (!(km = calloc(1, sizeof *km))) {
            rc = SRV_ENOMEM;
            goto out;
        }
        if (!models__version_kinmap(rin, km, why))
            goto out;           /* *why: the envelope set needs its own speed and bearing */
        rin->feature_kin = km->kins[km->modal];
    }
    if (ds_feature_count(rin) != rin->channel_count * per) {
        *why = "the target's feature set does not apply to its windows";
        goto out;
    }
    if (!(feat = malloc((size_t)rin->channel_count * per * sizeof *feat))) {
        rc = SRV_ENOMEM;
        goto out;
    }
    stride = ((size_t)rin->n_windows + cap_rows - 1) / (cap_rows ? cap_rows : 1);
    while ((rc = ds_reader_next(rd, &row, &x)) == 1) {
        int32_t lab;

        if (seen++ % (stride ? stride : 1) != 0)
            continue;
        lab = models__transfer_label(target, rin->classes[row.cls], shared, n_shared);
        if (lab == MODELS_TRANSFER_DROP)
            continue;
        if (km) {
            const struct featureset_kin *k = models__kinmap_find(km, row.snapshot_id);

            if (!k) {
                rc = SRV_EINTERNAL;
                break;
            }
            rin->feature_kin = *k;
        }
        if (ds_window_features(rin, x, feat) != DS_OK) {
            rc = SRV_EINTERNAL;
            break;
        }
        if (models__transfer_append(t, feat, per, map, target->channel_count, lab, dom) !=
            MODEL_OK) {
            rc = SRV_ENOMEM;
            break;
        }
        labeled += lab >= 0;
        normal += lab == FEWSHOT_UNLABELED;
    }
    if (rc < 0 && rc != SRV_ENOMEM) {
        *why = "reading its windows failed";
        rc = 0;
    } else if (rc >= 0 && (labeled == 0 || normal == 0)) {
        *why = labeled == 0 ? "no window of a shared class"
                            : "no window labeled normal to standardise its domain by";
        rc = 0;
    } else if (rc >= 0) {
        rc = 1;
    }
    json_object_set_new(entry, "windows", json_integer(rc == 1 ? (json_int_t)(t->n - n0) : 0));
    json_object_set_new(entry, "labeled_windows", json_integer(rc == 1 ? (json_int_t)labeled : 0));
    json_object_set_new(entry, "normal_windows", json_integer(rc == 1 ? (json_int_t)normal : 0));
    if (rc != 1) {                  /* a skipped type leaves nothing behind */
        t->n_labeled -= labeled;
        t->n = n0;
    }
out:
    if (km)
        models__kinmap_release(km);
    free(km);
    free(feat);
    free(rin);
    ds_reader_free(rd);
    return rc;
}

int models__transfer_load(const struct ds_info *target, const struct featureset_spec *fs,
                          int64_t model_id, struct models_transfer *t)
{
    char db[24], vb[16], by[40];
    struct srv_buf cls = { 0 };
    const char *vals[3] = { db, vb, NULL };
    json_t *types = json_array();
    PGresult *r = NULL;
    int err, i, rows;
    unsigned share;

    memset(t, 0, sizeof *t);
    t->d = (uint16_t)(target->channel_count * featureset_per_channel(fs->id, fs->version));
    t->report = json_pack("{s:b,s:f,s:o}", "enabled", 1, "weight", (double)MODELS_TRANSFER_WEIGHT,
                          "types", types);
    if (!t->report)
        return SRV_ENOMEM;
    snprintf(db, sizeof db, "%lld", (long long)target->dataset_id);
    snprintf(vb, sizeof vb, "%d", target->version);
    snprintf(by, sizeof by, "model %lld", (long long)model_id);
    db_array_begin(&cls);
    for (unsigned c = 0; c < target->n_classes; c++)
        if ((int)c != target->normal_class)
            db_array_text(&cls, target->classes[c]);
    db_array_end(&cls);
    vals[2] = cls.p;
    err = cls.oom ? SRV_ENOMEM : models__exec(M_RELATED, vals, NULL, NULL, 0, &r);
    srv_buf_free(&cls);
    if (err != SRV_OK) {
        json_object_set_new(t->report, "reason", json_string("reading the taxonomy failed"));
        return err == SRV_ENOMEM ? err : SRV_OK;
    }
    rows = PQntuples(r);
    /* each type with labels of a shared class an equal share of the rows */
    for (i = 0, share = 0; i < rows; i++)
        share += db_int64(r, i, "labeled") > 0;
    share = share < 1 ? 1 : share > MODELS_TRANSFER_MAX_TYPES ? MODELS_TRANSFER_MAX_TYPES : share;
    for (i = 0; i < rows && t->n_types < MODELS_TRANSFER_MAX_TYPES; i++) {
        const char *type = db_text_or(r, i, "type", ""), *why = NULL, *shared[DS_MAX_CLASSES + 1];
        json_t *sj = json_loads(db_text_or(r, i, "classes", "[]"), 0, NULL);
        json_t *entry = json_pack("{s:s,s:O}", "equipment_type", type, "shared_classes",
                                  sj ? sj : json_array());
        size_t ns = 0, k;
        char *dwhy = NULL;
        int64_t tds = 0;
        int tv = 0, used = 0;

        json_array_append_new(types, entry);
        for (k = 0; sj && k < json_array_size(sj) && ns < DS_MAX_CLASSES; k++)
            shared[ns++] = json_string_value(json_array_get(sj, k));
        if (db_int64(r, i, "labeled") == 0) {
            why = "no snapshot of it is labeled with a shared class";
        } else {
            shared[ns] = "normal";
            err = ds_transfer_version(target->dataset_id, target->version, type, shared, ns + 1,
                                      by, &tds, &tv, &dwhy);
            if (err == SRV_OK) {
                json_object_set_new(entry, "dataset_id", json_integer(tds));
                json_object_set_new(entry, "version", json_integer(tv));
                used = read_type(target, fs, tds, tv, shared, ns, MODELS_TRANSFER_MAX_ROWS / share,
                                 t->n_types + 1, t, entry, &why);
            } else if (err == SRV_ENOMEM) {
                used = SRV_ENOMEM;
            } else {
                why = dwhy ? dwhy : "freezing its windows failed";
            }
        }
        if (used == 1)
            t->n_types++;
        else if (why)
            json_object_set_new(entry, "reason", json_string(why));
        json_object_set_new(entry, "used", json_boolean(used == 1));
        free(dwhy);
        json_decref(sj);
        if (used < 0) {
            PQclear(r);
            return used;
        }
    }
    PQclear(r);
    if (rows == 0)
        json_object_set_new(t->report, "reason",
                            json_string("no related equipment type shares a failure mode class "
                                        "with the version's machines"));
    json_object_set_new(t->report, "types_used", json_integer(t->n_types));
    json_object_set_new(t->report, "windows", json_integer((json_int_t)t->n));
    json_object_set_new(t->report, "labeled_windows", json_integer((json_int_t)t->n_labeled));
    return SRV_OK;
}
