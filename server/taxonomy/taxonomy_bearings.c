/* taxonomy_bearings.c - the table of common rolling bearings (migration
 * 0081): GET /api/v1/bearings lists them with their defect frequencies as
 * orders of shaft speed, and a type's or an asset's bearing_designation is
 * looked up here into the four figures the kinematics store. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "server/db/db.h"
#include "server/features/features.h"
#include "server/taxonomy/taxonomy.h"
#include "server/taxonomy/taxonomy_int.h"

#define BEARING_Q_MAX 64

enum { BQ_LIST, BQ_GET, BQ_COUNT };

static const struct db_sql bearing_sql[BQ_COUNT] = {
    /* $1: a case-insensitive piece of the designation or manufacturer, or NULL */
    [BQ_LIST] = { "bearings_list",
        "SELECT designation, manufacturer, kind, rolling_elements, ball_mm, pitch_mm, contact_deg,"
        " source FROM bearings WHERE $1::text IS NULL"
        " OR strpos(lower(designation), lower($1)) > 0 OR strpos(lower(manufacturer), lower($1)) > 0"
        " ORDER BY designation LIMIT 200", 1 },
    [BQ_GET] = { "bearings_get",
        "SELECT designation, rolling_elements, ball_mm, pitch_mm, contact_deg FROM bearings"
        " WHERE lower(designation) = lower($1)", 1 },
};

/* BPFO, BPFI, BSF and FTF as orders of the shaft speed (at 1 Hz). */
static json_t *orders_json(int balls, double ball_mm, double pitch_mm, double contact_deg)
{
    struct feat_bearing b = { balls, ball_mm, pitch_mm, contact_deg };
    double o[4];

    features_bearing_tones(&b, 1.0, o);
    return json_pack("{s:f,s:f,s:f,s:f}", "bpfo", o[0], "bpfi", o[1], "bsf", o[2], "ftf", o[3]);
}

/* GET /api/v1/bearings[?q=] */
int taxonomy_api_bearings(struct srv_request *rq, struct srv_response *rs)
{
    const char *q = rq->query ? rq->query(rq, "q") : NULL, *vals[1];
    PGresult *r = NULL;
    json_t *items;
    int err, i;

    if (q && strlen(q) > BEARING_Q_MAX)
        return srv_fail(rs, SRV_EBADREQ, "q must be at most 64 bytes");
    vals[0] = q && *q ? q : NULL;
    if ((err = db_exec_own(&bearing_sql[BQ_LIST], vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    items = json_array();
    for (i = 0; items && i < PQntuples(r); i++) {
        int n = (int)db_int64(r, i, "rolling_elements");
        double bd = db_double(r, i, "ball_mm"), pd = db_double(r, i, "pitch_mm");
        double ca = db_double(r, i, "contact_deg");

        json_array_append_new(items, json_pack("{s:s,s:s,s:s,s:i,s:f,s:f,s:f,s:s,s:o}",
                              "designation", db_text_or(r, i, "designation", ""),
                              "manufacturer", db_text_or(r, i, "manufacturer", ""),
                              "kind", db_text_or(r, i, "kind", ""), "balls", n, "ball_mm", bd,
                              "pitch_mm", pd, "contact_deg", ca,
                              "source", db_text_or(r, i, "source", ""),
                              "orders", orders_json(n, bd, pd, ca)));
    }
    PQclear(r);
    return srv_respond_json_take(rs, 200, json_pack("{s:o}", "items", items ? items : json_array()));
}

int taxonomy__bearing_lookup(const char *designation, struct taxonomy_kin *k)
{
    const char *vals[1] = { designation };
    PGresult *r = NULL;
    int err;

    if ((err = db_exec_own(&bearing_sql[BQ_GET], vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return SRV_ENOTFOUND;
    }
    snprintf(k->txt[1], 32, "%lld", (long long)db_int64(r, 0, "rolling_elements"));
    snprintf(k->txt[2], 32, "%.9g", db_double(r, 0, "ball_mm"));
    snprintf(k->txt[3], 32, "%.9g", db_double(r, 0, "pitch_mm"));
    snprintf(k->txt[4], 32, "%.9g", db_double(r, 0, "contact_deg"));
    snprintf(k->designation, sizeof k->designation, "%s", db_text_or(r, 0, "designation", ""));
    for (int i = 1; i < 5; i++)
        k->v[i] = k->txt[i];
    k->v[5] = k->designation;
    k->bearing_given = 1;
    PQclear(r);
    return SRV_OK;
}
