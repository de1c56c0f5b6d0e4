/* ds_definition.c - a dataset definition as a client sends it, checked and
 * normalised into the one form stored (defaults written out), so that two
 * definitions meaning the same thing hash the same when a version is frozen
 * from them.  A key the server does not know is left out of the stored form
 * and named in the answer (ds__definition_fields, srv_json_ignored): a
 * misspelt filter ("equipment_type" for "equipment_types") widens the
 * training set, and the client must hear of it.  Not refused: clients that
 * sent a key of their own before (a description, say) keep working. */
#include "server/datasets/ds_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const ds__sources[DS_N_SOURCES] = { "human", "rule", "vote", "disposition" };

int ds__source_index(const char *s)
{
    int i;

    for (i = 0; s && i < DS_N_SOURCES; i++)
        if (strcmp(s, ds__sources[i]) == 0)
            return i;
    return -1;
}

const char *const ds__definition_fields[] = {
    "name", "filter", "window", "split",
    "window.length_s", "window.stride_s", "window.edge",
    "split.by", "split.fractions", "split.seed", "split.min_per_split",
    "filter.sources", "filter.min_confidence", "filter.classes", "filter.equipment_types",
    "filter.sites", "filter.from", "filter.to", NULL
};

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

/* {"length_s","stride_s","edge"} with the edge defaulted; NULL and *why. */
static json_t *window_normalise(const json_t *w, const char **why)
{
    double len_s, stride_s;
    const char *edge;

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
    return json_pack("{s:f,s:f,s:s}", "length_s", len_s, "stride_s", stride_s, "edge", edge);
}

static const char *fractions_check(const json_t *fr)
{
    double sum = 0;
    size_t i;
    json_t *v;

    if (!json_is_array(fr) || json_array_size(fr) != DS_SPLITS)
        return "split fractions must be [train, validation, test]";
    json_array_foreach(fr, i, v) {
        double x = json_is_number(v) ? json_number_value(v) : -1;

        if (!(x >= 0 && x <= 1))
            return "split fractions must be numbers in [0, 1]";
        sum += x;
    }
    return fabs(sum - 1) > 1e-6 ? "split fractions must add up to 1" : NULL;
}

/* {"by","fractions","seed","min_per_split"} with the defaults; NULL and *why. */
static json_t *split_normalise(const json_t *sp, const char **why)
{
    const char *by;
    json_t *v;
    json_int_t seed, minps;

    if (!json_is_object(sp) || !json_is_string(json_object_get(sp, "by")))
        return *why = "split needs by", NULL;
    by = json_string_value(json_object_get(sp, "by"));
    if (strcmp(by, "device") && strcmp(by, "asset") && strcmp(by, "time") &&
        strcmp(by, "equipment_type") && strcmp(by, "day"))
        return *why = "split by must be device, asset, time, day or equipment_type", NULL;
    if ((*why = fractions_check(json_object_get(sp, "fractions"))))
        return NULL;
    if ((v = json_object_get(sp, "seed")) && !json_is_integer(v))
        return *why = "split seed must be an integer", NULL;
    seed = v ? json_integer_value(v) : 0;
    if ((v = json_object_get(sp, "min_per_split")) &&
        (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100000))
        return *why = "split min_per_split must be an integer in [1, 100000]", NULL;
    minps = v ? json_integer_value(v) : 1;
    return json_pack("{s:s,s:O,s:I,s:I}", "by", by, "fractions", json_object_get(sp, "fractions"),
                     "seed", seed, "min_per_split", minps);
}

/* Label sources into nf: the list given (each known), else all of them. */
static const char *filter_sources(const json_t *f, json_t *nf)
{
    json_t *v = f ? json_object_get(f, "sources") : NULL, *e;
    size_t i;

    if (!v) {
        json_object_set_new(nf, "sources", json_pack("[ssss]", ds__sources[0], ds__sources[1],
                                                     ds__sources[2], ds__sources[3]));
        return NULL;
    }
    if (!str_array_ok(v, DS_N_SOURCES, 16))
        return "filter.sources must be a list of human, rule, vote, disposition";
    json_array_foreach(v, i, e)
        if (ds__source_index(json_string_value(e)) < 0)
            return "filter.sources must be among human, rule, vote, disposition";
    json_object_set(nf, "sources", v);
    return NULL;
}

/* The filter's optional lists and time bounds, copied when valid; a
 * refusal names the key at fault. */
static const char *filter_optional(const json_t *f, json_t *nf)
{
    static const char *const lists[] = { "classes", "equipment_types", "sites" };
    static const char *const times[] = { "from", "to" };
    static const char *const bad_list[] = {
        "filter.classes must be a list of at most 256 class names (1..64 characters)",
        "filter.equipment_types must be a list of at most 256 equipment types (1..64 characters)",
        "filter.sites must be a list of at most 256 sites (1..64 characters)",
    };
    static const char *const bad_time[] = {
        "filter.from must be a timestamp string of at most 64 characters (2026-12-07T12:00:00Z)",
        "filter.to must be a timestamp string of at most 64 characters (2026-12-07T12:00:00Z)",
    };
    json_t *v;
    size_t k;

    for (k = 0; k < 3; k++) {
        if (!(v = f ? json_object_get(f, lists[k]) : NULL) || json_is_null(v))
            continue;
        if (!str_array_ok(v, 256, 64))
            return bad_list[k];
        json_object_set(nf, lists[k], v);
    }
    for (k = 0; k < 2; k++) {
        if (!(v = f ? json_object_get(f, times[k]) : NULL) || json_is_null(v))
            continue;
        if (!json_is_string(v) || json_string_length(v) > 64)
            return bad_time[k];
        json_object_set(nf, times[k], v);
    }
    return NULL;
}

static json_t *filter_normalise(const json_t *f, const char **why)
{
    json_t *nf, *v;
    double conf = 0;

    if (!(nf = json_object()))
        return *why = "out of memory", NULL;
    if ((*why = filter_sources(f, nf)))
        goto bad;
    if ((v = f ? json_object_get(f, "min_confidence") : NULL)) {
        conf = json_is_number(v) ? json_number_value(v) : -1;
        if (!(conf >= 0 && conf <= 1)) {
            *why = "filter.min_confidence must be a number in [0, 1]";
            goto bad;
        }
    }
    json_object_set_new(nf, "min_confidence", json_real(conf));
    if ((*why = filter_optional(f, nf)))
        goto bad;
    return nf;
bad:
    json_decref(nf);
    return NULL;
}

json_t *ds__definition(const json_t *body, const char **why)
{
    const json_t *f = json_object_get(body, "filter"), *name = json_object_get(body, "name");
    json_t *nw = NULL, *ns = NULL, *nf = NULL;

    if (!json_is_object(body))
        return *why = "body must be a JSON object", NULL;
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        json_string_length(name) > 200)
        return *why = "name must be a string of 1..200 characters", NULL;
    if (f && !json_is_object(f))
        return *why = "filter must be an object", NULL;
    if (!(nw = window_normalise(json_object_get(body, "window"), why)) ||
        !(ns = split_normalise(json_object_get(body, "split"), why)) ||
        !(nf = filter_normalise(f, why))) {
        json_decref(nw);
        json_decref(ns);
        return NULL;
    }
    return json_pack("{s:O,s:o,s:o,s:o}", "name", name, "filter", nf, "window", nw, "split", ns);
}
