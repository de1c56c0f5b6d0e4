/* taxonomy_kin.c - the kinematics of equipment types and assets (shaft
 * speed, rolling-bearing geometry) that POST /api/v1/taxonomy/types and
 * /assets take, and POST /api/v1/taxonomy/classes, which adds a label class
 * of its own (one without a failure mode, e.g. "sensor_fault" on a type).
 * The spectrum view (GET /api/v1/snapshots/{id}/spectrum) reads them to
 * mark shaft harmonics and bearing defect frequencies. */
#include <stdio.h>
#include <string.h>

#include "server/db/db.h"
#include "server/taxonomy/taxonomy.h"
#include "server/taxonomy/taxonomy_int.h"
#include "server/text/text.h"

enum { KQ_TYPE_SHAFT, KQ_TYPE_BEARING, KQ_ASSET_SHAFT, KQ_ASSET_BEARING, KQ_CLASS_INSERT,
       KQ_COUNT };

#define BEARING_SET \
    " SET bearing_balls = $2::int, bearing_ball_mm = $3::float8, bearing_pitch_mm = $4::float8," \
    " bearing_contact_deg = $5::float8, bearing_designation = $6::text"

static const struct db_sql kin_sql[KQ_COUNT] = {
    [KQ_TYPE_SHAFT] = { "tax_type_shaft",
        "UPDATE equipment_types SET shaft_hz = $2::float8 WHERE name = $1", 2 },
    [KQ_TYPE_BEARING] = { "tax_type_bearing",
        "UPDATE equipment_types" BEARING_SET " WHERE name = $1", 6 },
    [KQ_ASSET_SHAFT] = { "tax_asset_shaft",
        "UPDATE assets SET shaft_hz = $2::float8 WHERE id = $1", 2 },
    [KQ_ASSET_BEARING] = { "tax_asset_bearing",
        "UPDATE assets" BEARING_SET " WHERE id = $1", 6 },
    /* $1 name, $2 description, $3 equipment type (NULL: every type); the
     * next position, so its key follows the others' */
    [KQ_CLASS_INSERT] = { "tax_class_insert",
        "INSERT INTO label_classes (name, position, description, equipment_type)"
        " SELECT $1, (SELECT coalesce(max(position), 0) + 1 FROM label_classes),"
        "  coalesce($2, ''), $3"
        " WHERE $3::text IS NULL OR EXISTS (SELECT 1 FROM equipment_types WHERE name = $3)"
        " RETURNING name, position", 3 },
};

/* A number in (lo, hi] from key of obj into txt; 1 absent, 0 read, -1 bad. */
static int number_in(const json_t *obj, const char *key, double lo, double hi, char txt[32])
{
    const json_t *v = json_object_get(obj, key);
    double d;

    if (!v)
        return 1;
    if (!json_is_number(v))
        return -1;
    d = json_number_value(v);
    if (!(d > lo && d <= hi))
        return -1;
    snprintf(txt, 32, "%.9g", d);
    return 0;
}

int taxonomy__kin_parse(const json_t *body, struct taxonomy_kin *k, struct srv_response *rs)
{
    const json_t *shaft = json_object_get(body, "shaft_hz"), *b = json_object_get(body, "bearing");
    const json_t *des = json_object_get(body, "bearing_designation");
    int i, err;

    memset(k, 0, sizeof *k);
    for (i = 0; i < 6; i++)
        k->v[i] = NULL;
    k->shaft_given = shaft != NULL;
    k->bearing_given = b != NULL || des != NULL;
    if (b && des)
        return srv_fail(rs, SRV_EBADREQ, "give bearing (the geometry) or bearing_designation, "
                        "not both");
    if (shaft && !json_is_null(shaft)) {
        if (number_in(body, "shaft_hz", 0, 2000, k->txt[0]) != 0)
            return srv_fail(rs, SRV_EBADREQ, "shaft_hz must be a number in (0, 2000]");
        k->v[0] = k->txt[0];
    }
    if (b && !json_is_null(b)) {
        const json_t *balls = json_object_get(b, "balls");
        double bd, pd;

        if (!json_is_object(b) || !json_is_integer(balls) || json_integer_value(balls) < 3 ||
            json_integer_value(balls) > 100 ||
            number_in(b, "ball_mm", 0, 1000, k->txt[2]) != 0 ||
            number_in(b, "pitch_mm", 0, 5000, k->txt[3]) != 0 ||
            number_in(b, "contact_deg", -1e-9, 60, k->txt[4]) != 0)
            return srv_fail(rs, SRV_EBADREQ, "bearing needs balls (3..100), ball_mm, pitch_mm "
                            "(mm, ball_mm < pitch_mm) and contact_deg (0..60)");
        bd = json_number_value(json_object_get(b, "ball_mm"));
        pd = json_number_value(json_object_get(b, "pitch_mm"));
        if (!(bd < pd))
            return srv_fail(rs, SRV_EBADREQ, "bearing ball_mm must be less than pitch_mm");
        snprintf(k->txt[1], 32, "%d", (int)json_integer_value(balls));
        for (i = 1; i < 5; i++)
            k->v[i] = k->txt[i];
    }
    if (des && !json_is_null(des)) {
        if (!json_is_string(des) || json_string_length(des) < 1 || json_string_length(des) > 64)
            return srv_fail(rs, SRV_EBADREQ, "bearing_designation must be a designation of "
                            "GET /api/v1/bearings (at most 64 bytes)");
        err = taxonomy__bearing_lookup(json_string_value(des), k);
        if (err == SRV_ENOTFOUND)
            return srv_fail(rs, SRV_EBADREQ, "unknown bearing_designation: GET /api/v1/bearings "
                            "lists the table, or give the geometry as bearing");
        if (err != SRV_OK)
            return err;
    }
    return SRV_OK;
}

int taxonomy__kin_store(const struct taxonomy_kin *k, int is_asset, const char *key)
{
    const char *vals[6] = { key, k->v[0], NULL, NULL, NULL, NULL };
    int err = SRV_OK, i;

    if (k->shaft_given)
        err = db_exec_own(&kin_sql[is_asset ? KQ_ASSET_SHAFT : KQ_TYPE_SHAFT], vals, NULL, NULL,
                          0, NULL);
    if (err == SRV_OK && k->bearing_given) {
        for (i = 1; i < 6; i++)
            vals[i] = k->v[i];
        err = db_exec_own(&kin_sql[is_asset ? KQ_ASSET_BEARING : KQ_TYPE_BEARING], vals, NULL,
                          NULL, 0, NULL);
    }
    return err;
}

/* POST /api/v1/taxonomy/classes {name, description, equipment_type} */
int taxonomy_api_class_create(struct srv_request *rq, struct srv_response *rs)
{
    json_t *j = srv_body_json(rq);
    const char *vals[3] = { NULL, NULL, NULL };
    PGresult *r = NULL;
    int err;

    static const char *const class_fields[] = { "name", "description", "equipment_type", NULL };

    if (!json_is_object(j)) {
        json_decref(j);
        return srv_fail(rs, SRV_EBADREQ, "body must be a JSON object");
    }
    vals[0] = json_string_value(json_object_get(j, "name"));
    if (!text_valid_name(vals[0]) || srv_json_opt_string(j, "description", 2000, &vals[1]) != 0 ||
        srv_json_opt_string(j, "equipment_type", 64, &vals[2]) != 0 ||
        (vals[2] && !text_valid_name(vals[2]))) {
        json_decref(j);
        return srv_fail(rs, SRV_EBADREQ, "need name ([a-z0-9_]{1,64}); description at most 2000 "
                        "bytes; equipment_type, when given, a type name");
    }
    rs->ignored = srv_json_ignored(rq, j, class_fields);
    err = db_exec_own(&kin_sql[KQ_CLASS_INSERT], vals, NULL, NULL, 0, &r);
    if (err == SRV_ECONFLICT)
        err = srv_fail(rs, SRV_ECONFLICT, "a class of this name exists");
    else if (err == SRV_OK && PQntuples(r) != 1)
        err = srv_fail(rs, SRV_EBADREQ, "unknown equipment type");
    else if (err == SRV_OK)
        err = srv_respond_json_take(rs, 201, json_pack("{s:s,s:s,s:s?,s:I}", "name", vals[0],
                                    "description", vals[1] ? vals[1] : "", "equipment_type",
                                    vals[2], "position", (json_int_t)db_int64(r, 0, "position")));
    PQclear(r);
    json_decref(j);
    return err;
}
