/* rules_vote.c - the weighted majority vote that turns rule hits into one
 * weak label per snapshot, keeping where it came from, and the re-vote that
 * stores it.  Ties abstain: a coin flip between two classes would be a
 * label nobody can defend. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/db/db.h"
#include "server/rules/rules_int.h"

void rules_vote(const struct rules_vote_in *v, size_t n, const char *disposition_cls,
                struct rules_vote_out *out)
{
    double total = 0, best = 0;
    const char *best_cls = NULL;
    int tie = 0;
    size_t i, j, voters = 0;

    memset(out, 0, sizeof *out);
    if (disposition_cls && *disposition_cls) {
        out->has_label = 1;
        snprintf(out->cls, sizeof out->cls, "%s", disposition_cls);
        out->source = "disposition";
        out->confidence = 1;
        return;
    }
    for (i = 0; i < n; i++)
        if (v[i].weight > 0) {
            total += v[i].weight;
            voters++;
        }
    /* n is small (the rules that fired): quadratic is fine and needs no map */
    for (i = 0; i < n; i++) {
        double w = 0;
        int seen = 0;

        if (!(v[i].weight > 0))
            continue;
        for (j = 0; j < i; j++)
            seen |= v[j].weight > 0 && strcmp(v[j].cls, v[i].cls) == 0;
        if (seen)
            continue;
        for (j = i; j < n; j++)
            if (v[j].weight > 0 && strcmp(v[j].cls, v[i].cls) == 0)
                w += v[j].weight;
        if (w > best) {
            best = w;
            best_cls = v[i].cls;
            tie = 0;
        } else if (w == best) {
            tie = 1;
        }
    }
    if (!best_cls || tie)
        return;
    out->has_label = 1;
    snprintf(out->cls, sizeof out->cls, "%s", best_cls);
    out->source = voters == 1 ? "rule" : "vote";
    out->confidence = best / total;
}

/* Write the weak label of one snapshot from its votes; one with none goes
 * to *clear (its label is deleted with the others of the chunk). */
static int write_vote(int64_t id, const struct rules_vote_in *v, size_t n, const char *disp,
                      struct rules_ids *clear)
{
    struct rules_vote_out o;
    char idb[24], conf[32], *votes;
    const char *vals[5] = { idb };
    json_t *arr;
    size_t i;
    int err;

    rules_vote(v, n, disp, &o);
    if (!o.has_label)
        return rules_ids_push(clear, id);
    arr = json_array();
    if (!arr)
        return SRV_ENOMEM;
    for (i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:I,s:s,s:f}", "rule_id", (json_int_t)v[i].rule_id,
                                             "class", v[i].cls, "weight", v[i].weight));
    votes = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!votes)
        return SRV_ENOMEM;
    snprintf(idb, sizeof idb, "%" PRId64, id);
    snprintf(conf, sizeof conf, "%.6f", o.confidence);
    vals[1] = o.cls;
    vals[2] = o.source;
    vals[3] = conf;
    vals[4] = votes;
    err = rules_q(RQ_WEAK_PUT, vals, NULL);
    free(votes);
    return err;
}

/* Vote snapshot id from the rows of hv (its rules' hits) and dc (a
 * disposition's class); v has room for every row of hv. */
static int vote_one(int64_t id, const PGresult *hv, const PGresult *dc, struct rules_vote_in *v,
                    struct rules_ids *clear)
{
    const char *disp = NULL;
    size_t k = 0;
    int row;

    for (row = 0; row < PQntuples(dc); row++)
        if (db_int64(dc, row, "snapshot_id") == id)
            disp = db_text(dc, row, "class");
    for (row = 0; row < PQntuples(hv); row++) {
        if (db_int64(hv, row, "snapshot_id") != id)
            continue;
        v[k].rule_id = db_int64(hv, row, "rule_id");
        v[k].cls = db_text_or(hv, row, "class", "");
        v[k].weight = db_double(hv, row, "weight");
        k++;
    }
    return write_vote(id, v, k, disp, clear);
}

#define REVOTE_CHUNK 500

static int revote_chunk(const int64_t *ids, size_t n)
{
    char *arr = rules_id_array(ids, n);
    const char *vals[1] = { arr };
    PGresult *hv = NULL, *dc = NULL;
    struct rules_vote_in *v = NULL;
    struct rules_ids clear = { NULL, 0, 0 };
    size_t i;
    int err;

    if (!arr)
        return SRV_ENOMEM;
    err = rules_q(RQ_VOTE_INPUT, vals, &hv);
    if (err == SRV_OK)
        err = rules_q(RQ_DISPOSITION_CLASS, vals, &dc);
    if (err == SRV_OK) {
        v = calloc((size_t)PQntuples(hv) + 1, sizeof *v);
        if (!v)
            err = SRV_ENOMEM;
    }
    /* ids may repeat and come unordered: each id is voted from its own rows */
    for (i = 0; i < n && err == SRV_OK; i++)
        err = vote_one(ids[i], hv, dc, v, &clear);
    if (err == SRV_OK && clear.n > 0) {
        /* one statement for every snapshot left without a label */
        char *carr = rules_id_array(clear.v, clear.n);
        const char *cvals[1] = { carr };

        err = carr ? rules_q(RQ_WEAK_DELETE_MANY, cvals, NULL) : SRV_ENOMEM;
        free(carr);
    }
    rules_ids_free(&clear);
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
