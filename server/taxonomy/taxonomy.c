/* taxonomy.c - REST handlers of the equipment taxonomy.  Inputs are checked
 * here (names, lengths); referential checks happen in the one statement
 * that writes, so nothing is half-written. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/db/db.h"
#include "server/text/text.h"
#include "server/taxonomy/taxonomy.h"
#include "server/taxonomy/taxonomy_int.h"

enum { TQ_TYPES, TQ_MODES, TQ_ASSETS, TQ_TYPE_PUT, TQ_MODE_INSERT, TQ_ASSET_PUT,
       TQ_DEVICE_ASSET, TQ_TYPE_CLASSES, TQ_COUNT };

static const struct db_sql taxonomy_sql[TQ_COUNT] = {
    [TQ_TYPES] = { "tax_types",
        "SELECT coalesce(json_agg(json_build_object('name', name, 'parent', parent,"
        " 'description', description, 'shaft_hz', shaft_hz,"
        " 'bearing_designation', bearing_designation, 'bearing', CASE WHEN bearing_balls IS NULL THEN NULL"
        " ELSE json_build_object('balls', bearing_balls, 'ball_mm', bearing_ball_mm,"
        " 'pitch_mm', bearing_pitch_mm, 'contact_deg', bearing_contact_deg) END)"
        " ORDER BY name), '[]')::text AS types FROM equipment_types", 0 },
    [TQ_MODES] = { "tax_modes",
        "SELECT coalesce(json_agg(json_build_object('id', id, 'equipment_type', equipment_type,"
        " 'mode', mode, 'mechanism', mechanism, 'cause', cause, 'class', class) ORDER BY id),"
        " '[]')::text AS modes FROM failure_modes", 0 },
    [TQ_ASSETS] = { "tax_assets",
        "SELECT coalesce(json_agg(json_build_object('id', a.id, 'equipment_type', a.equipment_type,"
        " 'site', a.site, 'description', a.description, 'shaft_hz', a.shaft_hz,"
        " 'bearing_designation', a.bearing_designation,"
        " 'bearing', CASE WHEN a.bearing_balls IS NULL THEN NULL"
        " ELSE json_build_object('balls', a.bearing_balls, 'ball_mm', a.bearing_ball_mm,"
        " 'pitch_mm', a.bearing_pitch_mm, 'contact_deg', a.bearing_contact_deg) END,"
        " 'devices', (SELECT coalesce("
        " json_agg(d.id ORDER BY d.id), '[]') FROM devices d WHERE d.asset_id = a.id))"
        " ORDER BY a.id), '[]')::text AS assets FROM assets a", 0 },
    /* parent must exist (or be null); the trigger refuses cycles */
    [TQ_TYPE_PUT] = { "tax_type_put",
        "INSERT INTO equipment_types (name, parent, description)"
        " SELECT $1, $2, coalesce($3, '') WHERE $2::text IS NULL"
        "  OR EXISTS (SELECT 1 FROM equipment_types WHERE name = $2)"
        " ON CONFLICT (name) DO UPDATE SET parent = EXCLUDED.parent,"
        "  description = CASE WHEN $3::text IS NULL THEN equipment_types.description"
        "  ELSE EXCLUDED.description END RETURNING name", 3 },
    /* the class is created with the type when new */
    [TQ_MODE_INSERT] = { "tax_mode_insert",
        "WITH t AS (SELECT name FROM equipment_types WHERE name = $1),"
        " c AS (INSERT INTO label_classes (name, position, description, equipment_type)"
        "  SELECT $5, (SELECT coalesce(max(position), 0) + 1 FROM label_classes), $2, t.name"
        "  FROM t ON CONFLICT (name) DO NOTHING RETURNING name)"
        " INSERT INTO failure_modes (equipment_type, mode, mechanism, cause, class)"
        " SELECT t.name, $2, $3, $4, $5 FROM t RETURNING id", 5 },
    [TQ_ASSET_PUT] = { "tax_asset_put",
        "INSERT INTO assets (id, equipment_type, site, description)"
        " SELECT $1, $2, $3, coalesce($4, '') WHERE EXISTS"
        "  (SELECT 1 FROM equipment_types WHERE name = $2)"
        " ON CONFLICT (id) DO UPDATE SET equipment_type = EXCLUDED.equipment_type,"
        "  site = EXCLUDED.site, description = EXCLUDED.description RETURNING id", 4 },
    /* the device takes the asset's type and site, which rules read */
    [TQ_DEVICE_ASSET] = { "tax_device_asset",
        "UPDATE devices d SET asset_id = a.id, equipment_type = a.equipment_type,"
        " site = coalesce(a.site, d.site) FROM assets a WHERE d.id = $1 AND a.id = $2"
        " RETURNING d.id, a.equipment_type", 2 },
    [TQ_TYPE_CLASSES] = { "tax_type_classes",
        "SELECT (SELECT count(*) FROM equipment_types WHERE name = $1) AS known,"
        " (SELECT coalesce(json_agg(json_build_object('name', c.name, 'equipment_type',"
        " c.equipment_type, 'description', c.description) ORDER BY c.position, c.name), '[]')"
        " FROM label_classes c WHERE c.active AND (c.equipment_type IS NULL OR"
        " c.equipment_type IN (SELECT taxonomy_related_types($1))))::text AS items", 1 },
};

static int q(int i, const char *const *vals, PGresult **out)
{
    return db_exec_own(&taxonomy_sql[i], vals, NULL, NULL, 0, out);
}

static json_t *body_object(const struct srv_request *rq)
{
    json_t *j = srv_body_json(rq);

    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

int taxonomy_api_get(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r[3] = { NULL, NULL, NULL };
    json_t *out = NULL;
    int i, err = SRV_OK;

    for (i = 0; i < 3 && err == SRV_OK; i++)
        err = q(TQ_TYPES + i, NULL, &r[i]);
    if (err == SRV_OK)
        out = json_pack("{s:o,s:o,s:o}",
                        "types", json_loads(db_text_or(r[0], 0, "types", ""), 0, NULL),
                        "failure_modes", json_loads(db_text_or(r[1], 0, "modes", ""), 0, NULL),
                        "assets", json_loads(db_text_or(r[2], 0, "assets", ""), 0, NULL));
    for (i = 0; i < 3; i++)
        PQclear(r[i]);
    if (err != SRV_OK)
        return err;
    return srv_respond_json_take(rs, 200, out);
}

/* POST /api/v1/taxonomy/types {name, parent, description, shaft_hz, bearing}:
 * create or move; shaft speed and bearing geometry when given (null clears). */
int taxonomy_api_type_put(struct srv_request *rq, struct srv_response *rs)
{
    json_t *j = body_object(rq);
    struct taxonomy_kin kin;
    const char *vals[3];
    PGresult *r = NULL;
    int err;

    static const char *const type_fields[] = { "name", "parent", "description",
                                               TAXONOMY_KIN_FIELDS, NULL };

    if (!j)
        return srv_fail(rs, SRV_EBADREQ, "body must be a JSON object");
    vals[0] = json_string_value(json_object_get(j, "name"));
    if (!text_valid_name(vals[0]) || srv_json_opt_string(j, "parent", 64, &vals[1]) != 0 ||
        (vals[1] && !text_valid_name(vals[1])) ||
        srv_json_opt_string(j, "description", 2000, &vals[2]) != 0) {
        json_decref(j);
        return srv_fail(rs, SRV_EBADREQ, "name and parent must match [a-z0-9_]{1,64}, "
                        "description at most 2000 bytes");
    }
    if ((err = taxonomy__kin_parse(j, &kin, rs)) != SRV_OK) {
        json_decref(j);
        return err;
    }
    rs->ignored = srv_json_ignored(rq, j, type_fields);
    err = q(TQ_TYPE_PUT, vals, &r);
    if (err == SRV_OK && PQntuples(r) == 1)
        err = taxonomy__kin_store(&kin, 0, vals[0]);
    if (err == SRV_EBADREQ)
        err = srv_fail(rs, SRV_EBADREQ, "taxonomy cycle: a type cannot be its own ancestor "
                       "(or the tree would be deeper than 32 levels)");
    else if (err == SRV_OK && PQntuples(r) != 1)
        err = srv_fail(rs, SRV_EBADREQ, "unknown parent type");
    else if (err == SRV_OK)
        err = srv_respond_json_take(rs, 200, json_pack("{s:s,s:s?}", "name", vals[0],
                                                       "parent", vals[1]));
    PQclear(r);
    json_decref(j);
    return err;
}

int taxonomy_api_mode_create(struct srv_request *rq, struct srv_response *rs)
{
    json_t *j = body_object(rq);
    const char *vals[5];
    PGresult *r = NULL;
    int err;

    static const char *const mode_fields[] = { "equipment_type", "class", "mode", "mechanism",
                                               "cause", NULL };

    if (!j)
        return srv_fail(rs, SRV_EBADREQ, "body must be a JSON object");
    vals[0] = json_string_value(json_object_get(j, "equipment_type"));
    vals[4] = json_string_value(json_object_get(j, "class"));
    if (!text_valid_name(vals[0]) || !text_valid_name(vals[4]) ||
        srv_json_opt_string(j, "mode", 200, &vals[1]) != 0 || !vals[1] || !*vals[1] ||
        srv_json_opt_string(j, "mechanism", 200, &vals[2]) != 0 ||
        srv_json_opt_string(j, "cause", 200, &vals[3]) != 0) {
        json_decref(j);
        return srv_fail(rs, SRV_EBADREQ, "need equipment_type and class ([a-z0-9_]{1,64}), mode "
                        "(1..200 bytes); mechanism and cause at most 200 bytes");
    }
    rs->ignored = srv_json_ignored(rq, j, mode_fields);
    if (!vals[2])
        vals[2] = "";
    if (!vals[3])
        vals[3] = "";
    err = q(TQ_MODE_INSERT, vals, &r);
    if (err == SRV_ECONFLICT)
        err = srv_fail(rs, SRV_ECONFLICT, "this type already has a failure mode with this class");
    else if (err == SRV_OK && PQntuples(r) != 1)
        err = srv_fail(rs, SRV_EBADREQ, "unknown equipment type");
    else if (err == SRV_OK)
        err = srv_respond_json_take(rs, 201, json_pack("{s:I,s:s}", "id",
                                    (json_int_t)db_int64(r, 0, "id"),
                                    "class", vals[4]));
    PQclear(r);
    json_decref(j);
    return err;
}

int taxonomy_api_asset_put(struct srv_request *rq, struct srv_response *rs)
{
    json_t *j = body_object(rq);
    struct taxonomy_kin kin;
    const char *vals[4];
    PGresult *r = NULL;
    int err;

    static const char *const asset_fields[] = { "id", "equipment_type", "site", "description",
                                                TAXONOMY_KIN_FIELDS, NULL };

    if (!j)
        return srv_fail(rs, SRV_EBADREQ, "body must be a JSON object");
    vals[0] = json_string_value(json_object_get(j, "id"));
    vals[1] = json_string_value(json_object_get(j, "equipment_type"));
    if (!text_valid_device_id(vals[0]) || !text_valid_name(vals[1]) ||
        srv_json_opt_string(j, "site", 64, &vals[2]) != 0 ||
        srv_json_opt_string(j, "description", 2000, &vals[3]) != 0) {
        json_decref(j);
        return srv_fail(rs, SRV_EBADREQ, "need id ([A-Za-z0-9._-]{1,64}) and equipment_type; site "
                        "at most 64 bytes");
    }
    if ((err = taxonomy__kin_parse(j, &kin, rs)) != SRV_OK) {
        json_decref(j);
        return err;
    }
    rs->ignored = srv_json_ignored(rq, j, asset_fields);
    err = q(TQ_ASSET_PUT, vals, &r);
    if (err == SRV_OK && PQntuples(r) == 1)
        err = taxonomy__kin_store(&kin, 1, vals[0]);
    if (err == SRV_OK && PQntuples(r) != 1)
        err = srv_fail(rs, SRV_EBADREQ, "unknown equipment type");
    else if (err == SRV_OK)
        err = srv_respond_json_take(rs, 200, json_pack("{s:s,s:s}", "id", vals[0],
                                                       "equipment_type", vals[1]));
    PQclear(r);
    json_decref(j);
    return err;
}

/* POST /api/v1/devices/{id}/asset {asset_id} */
int taxonomy_api_device_asset(struct srv_request *rq, struct srv_response *rs)
{
    json_t *j = body_object(rq);
    const char *vals[2];
    PGresult *r = NULL;
    int err;

    static const char *const device_asset_fields[] = { "asset_id", NULL };

    if (!j)
        return srv_fail(rs, SRV_EBADREQ, "body must be a JSON object");
    vals[0] = rq->params[0];
    vals[1] = json_string_value(json_object_get(j, "asset_id"));
    if (!text_valid_device_id(vals[0]) || !text_valid_device_id(vals[1])) {
        json_decref(j);
        return srv_fail(rs, SRV_EBADREQ, "device id and asset_id must match [A-Za-z0-9._-]{1,64}");
    }
    rs->ignored = srv_json_ignored(rq, j, device_asset_fields);
    err = q(TQ_DEVICE_ASSET, vals, &r);
    if (err == SRV_OK && PQntuples(r) != 1)
        err = srv_fail(rs, SRV_ENOTFOUND, "no such device or asset");
    else if (err == SRV_OK)
        err = srv_respond_json_take(rs, 200, json_pack("{s:s,s:s,s:s}", "device_id", vals[0],
                                                       "asset_id", vals[1], "equipment_type",
                                                       db_text_or(r, 0, "equipment_type", "")));
    PQclear(r);
    json_decref(j);
    return err;
}

int taxonomy_api_type_classes(struct srv_request *rq, struct srv_response *rs)
{
    const char *vals[1] = { rq->params[0] };
    PGresult *r = NULL;
    json_t *items;
    int err;

    if (!text_valid_name(vals[0]))
        return srv_fail(rs, SRV_EBADREQ, "type name must match [a-z0-9_]{1,64}");
    err = q(TQ_TYPE_CLASSES, vals, &r);
    if (err != SRV_OK)
        return err;
    if (db_int64(r, 0, "known") == 0) {
        PQclear(r);
        return srv_fail(rs, SRV_ENOTFOUND, "no such equipment type");
    }
    items = json_loads(db_text_or(r, 0, "items", ""), 0, NULL);
    PQclear(r);
    return srv_respond_json_take(rs, 200, json_pack("{s:s,s:o}", "equipment_type", vals[0],
                                                    "items", items ? items : json_array()));
}
