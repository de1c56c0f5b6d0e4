/* ds_policy.c - window and split policies.
 *
 * Splits are by group, never by window: windows of one machine (or day, or
 * equipment type) are strongly correlated, and putting some in train and
 * some in test measures memory, not generalisation.  The group order is a
 * keyed hash of the group name with the seed (BLAKE2b via libsodium), so the
 * same seed gives the same split on any machine and adding a group moves
 * only that group. */
#include "server/datasets/datasets.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

const char *ds_strerror(int err)
{
    switch (err) {
    case DS_OK: return "ok";
    case DS_EINVAL: return "policy or argument out of range";
    case DS_ETOOFEW: return "too few examples for the split asked";
    case DS_ENOMEM: return "out of memory";
    case DS_EARCHIVE: return "archive writer failed";
    case DS_ESTATE: return "export writer used out of order";
    default: return "unknown dataset error";
    }
}

static int cmp_label(const void *a, const void *b)
{
    const struct ds_label *x = a, *y = b;
    return (x->snapshot_id > y->snapshot_id) - (x->snapshot_id < y->snapshot_id);
}

int ds_windows(const struct ds_snapshot *snaps, size_t n_snaps,
               const struct ds_label *labels, size_t n_labels,
               double length_s, double stride_s, enum ds_edge edge,
               struct ds_window **out, size_t *n_out)
{
    struct ds_label *lab = NULL;
    struct ds_window *w = NULL;
    size_t n = 0, cap = 0, li = 0;

    if (!out || !n_out || !(length_s > 0) || !(stride_s > 0) || length_s > 3600 ||
        (unsigned)edge > DS_EDGE_ANY || (n_labels && !labels) || (n_snaps && !snaps))
        return DS_EINVAL;
    if (n_labels) {
        lab = malloc(n_labels * sizeof *lab);
        if (!lab)
            return DS_ENOMEM;
        memcpy(lab, labels, n_labels * sizeof *lab);
        qsort(lab, n_labels, sizeof *lab, cmp_label);
    }
    for (size_t s = 0; s < n_snaps; s++) {
        const struct ds_snapshot *sn = &snaps[s];
        size_t first, last;
        uint32_t len, stride;

        if (!(sn->rate > 0) || sn->rate > 1e7 || (s && sn->snapshot_id <= snaps[s - 1].snapshot_id)) {
            free(lab);
            free(w);
            return DS_EINVAL;
        }
        len = (uint32_t)llround(length_s * sn->rate);
        stride = (uint32_t)llround(stride_s * sn->rate);
        while (li < n_labels && lab[li].snapshot_id < sn->snapshot_id)
            li++;
        first = li;
        while (li < n_labels && lab[li].snapshot_id == sn->snapshot_id)
            li++;
        last = li;
        if (len < 1 || stride < 1 || first == last)
            continue;
        for (uint64_t st = 0; st + len <= sn->n_samples; st += stride) {
            double ws = (double)st / sn->rate, we = (double)(st + len) / sn->rate, best = 0;
            int cls = -1, src = 0;

            for (size_t k = first; k < last; k++) {
                double ov = fmin(we, lab[k].end_s) - fmax(ws, lab[k].start_s);
                int ok = edge == DS_EDGE_STRICT ? lab[k].start_s <= ws && lab[k].end_s >= we
                       : edge == DS_EDGE_MAJORITY ? ov >= 0.5 * (we - ws)
                       : ov > 0;

                if (ok && ov > best) {
                    best = ov;
                    cls = lab[k].cls;
                    src = lab[k].source;
                }
            }
            if (cls < 0)
                continue;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 256;
                struct ds_window *t = realloc(w, nc * sizeof *w);

                if (!t) {
                    free(lab);
                    free(w);
                    return DS_ENOMEM;
                }
                w = t;
                cap = nc;
            }
            w[n].snapshot_id = sn->snapshot_id;
            w[n].start = (uint32_t)st;
            w[n].start_us = sn->t0_us + (int64_t)llround((double)st * 1e6 / sn->rate);
            w[n].cls = cls;
            w[n].source = src;
            w[n].group = sn->group;
            w[n].split = 0;
            n++;
        }
    }
    free(lab);
    *out = w;
    *n_out = n;
    return DS_OK;
}

struct grp_order {
    uint32_t g;
    int64_t key;
    uint8_t h[16];
    size_t count;
};

static int cmp_grp(const void *a, const void *b)
{
    const struct grp_order *x = a, *y = b;
    int c = (x->key > y->key) - (x->key < y->key);

    if (c == 0)
        c = memcmp(x->h, y->h, sizeof x->h);
    if (c == 0)
        c = (x->g > y->g) - (x->g < y->g);
    return c;
}

int ds_split(struct ds_window *w, size_t n, const char *const *group_names,
             const int64_t *order_key, uint32_t n_groups, const double fractions[DS_SPLITS],
             uint64_t seed, unsigned min_per_split, int *bad_class, int *bad_split)
{
    struct grp_order *o;
    int *split_of;
    size_t counts[DS_MAX_CLASSES][DS_SPLITS], present[DS_MAX_CLASSES];
    double sum = 0, acc = 0;
    uint8_t key[crypto_generichash_KEYBYTES];
    int sp = 0, taken = 0;

    if ((n && !w) || n_groups == 0 || !fractions || (!order_key && !group_names))
        return DS_EINVAL;
    for (int i = 0; i < DS_SPLITS; i++) {
        if (!(fractions[i] >= 0) || fractions[i] > 1)
            return DS_EINVAL;
        sum += fractions[i];
    }
    if (fabs(sum - 1.0) > 1e-6)
        return DS_EINVAL;
    if (sodium_init() < 0)
        return DS_ENOMEM;
    o = calloc(n_groups, sizeof *o);
    split_of = calloc(n_groups, sizeof *split_of);
    if (!o || !split_of) {
        free(o);
        free(split_of);
        return DS_ENOMEM;
    }
    memset(key, 0, sizeof key);
    for (int i = 0; i < 8; i++)
        key[i] = (uint8_t)(seed >> (8 * i));
    for (uint32_t g = 0; g < n_groups; g++) {
        o[g].g = g;
        o[g].key = order_key ? order_key[g] : 0;
        if (!order_key)
            crypto_generichash(o[g].h, sizeof o[g].h, (const uint8_t *)group_names[g],
                               strlen(group_names[g]), key, sizeof key);
    }
    for (size_t i = 0; i < n; i++) {
        if (w[i].group >= n_groups || w[i].cls < 0 || w[i].cls >= DS_MAX_CLASSES) {
            free(o);
            free(split_of);
            return DS_EINVAL;
        }
    }
    /* counts per group, found through the group index (o is still in g order) */
    for (size_t i = 0; i < n; i++)
        o[w[i].group].count++;
    qsort(o, n_groups, sizeof *o, cmp_grp);
    for (uint32_t k = 0; k < n_groups; k++) {
        /* Move on while the current split would pass its share by more than
         * half of this group (nearest, not first past: two devices split
         * half and half go one each, whichever is larger) and a later split
         * wants some; a split with a share keeps its first group; an
         * empty-fraction split is skipped. */
        while (sp < DS_SPLITS - 1 &&
               (fractions[sp] == 0 ||
                (taken && acc + 0.5 * (double)o[k].count >=
                              (fractions[0] + (sp >= 1 ? fractions[1] : 0)) * (double)n))) {
            sp++;
            taken = 0;
        }
        split_of[o[k].g] = sp;
        acc += (double)o[k].count;
        taken = 1;
    }
    memset(counts, 0, sizeof counts);
    memset(present, 0, sizeof present);
    for (size_t i = 0; i < n; i++) {
        w[i].split = split_of[w[i].group];
        counts[w[i].cls][w[i].split]++;
        present[w[i].cls]++;
    }
    free(o);
    free(split_of);
    for (int c = 0; c < DS_MAX_CLASSES; c++) {
        if (!present[c])
            continue;
        for (int s = 0; s < DS_SPLITS; s++) {
            if (fractions[s] > 0 && counts[c][s] < min_per_split) {
                if (bad_class)
                    *bad_class = c;
                if (bad_split)
                    *bad_split = s;
                return DS_ETOOFEW;
            }
        }
    }
    return DS_OK;
}

void ds_class_weights(const size_t *counts, unsigned k, double *weights)
{
    size_t total = 0;
    unsigned present = 0;

    for (unsigned c = 0; c < k; c++) {
        total += counts[c];
        present += counts[c] > 0;
    }
    for (unsigned c = 0; c < k; c++)
        weights[c] = counts[c] ? (double)total / ((double)present * (double)counts[c]) : 0.0;
}
