/* features_api.c - GET /api/v1/snapshots/{id}/features: the features the
 * worker stored for a snapshot, one object per channel with its spectrum. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/db/db.h"
#include "server/features/features.h"
#include "server/features/features_int.h"
#include "server/srv/srv.h"
#include "server/text/text.h"

/* PostgreSQL's {a,b} array text is JSON once the braces are brackets; NULL
 * when it is not.  Its numbers are reals, 0 too (answered 0.0). */
static json_t *spectrum_json(const char *text)
{
    char *txt = text ? strdup(text) : NULL, *b = txt ? strchr(txt, '{') : NULL;
    char *e = txt ? strrchr(txt, '}') : NULL;
    json_t *spec = NULL;

    if (b && e) {
        *b = '[';
        *e = ']';
        spec = json_loads(txt, JSON_DECODE_INT_AS_REAL, NULL);
    }
    free(txt);
    return spec;
}

static json_t *channel_json(const PGresult *r, int i)
{
    json_t *spec = spectrum_json(db_text(r, i, "spectrum"));

    return json_pack("{s:s,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:o}",
                     "channel", db_text(r, i, "channel"),
                     "mean", db_double(r, i, "mean"), "std", db_double(r, i, "std"),
                     "rms", db_double(r, i, "rms"), "peak", db_double(r, i, "peak"),
                     "crest", db_double(r, i, "crest"), "kurtosis", db_double(r, i, "kurtosis"),
                     "dominant_hz", db_double(r, i, "dominant_hz"),
                     "bin_hz", db_double(r, i, "bin_hz"), "spectrum", spec ? spec : json_null());
}

int features_api_get(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    json_t *items;
    int64_t id;
    char idb[24];
    const char *vals[1] = { idb };
    int i, err;

    if (text_parse_id(rq->params[0], &id) != 0)
        return srv_fail(rs, SRV_EBADREQ, "snapshot id must be a positive integer");
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    err = db_exec_own(&features__sql[FQ_SNAPSHOT], vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    items = json_array();
    for (i = 0; i < PQntuples(r); i++)
        json_array_append_new(items, channel_json(r, i));
    PQclear(r);
    if (json_array_size(items) == 0) {
        json_decref(items);
        return srv_fail(rs, SRV_ENOTFOUND, "no features for this snapshot (yet)");
    }
    return srv_respond_json_take(rs, 200, json_pack("{s:I,s:o}", "snapshot_id", (json_int_t)id,
                                                    "channels", items));
}
