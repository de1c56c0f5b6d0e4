/* ds_api.c - the datasets REST routes: definitions, versions, streamed
 * exports and the manifest (export jobs: ds_jobs.c).
 *
 * Who may call which route is the route table's business (server/routes.c:
 * ml or admin to write, any role to read); handlers here check the path,
 * the body and the database.  Exports stream through srv_response.stream,
 * so the server holds one window and one page of rows per download. */
#include "server/datasets/ds_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/srv/srv.h"
#include "server/text/text.h"

int ds__param_id(const struct srv_request *rq, int64_t *out, struct srv_response *rs)
{
    if (!rq->params[0] || text_parse_id(rq->params[0], out) != 0)
        return srv_fail(rs, SRV_ENOTFOUND, "no such dataset, version or job");
    return SRV_OK;
}

int ds__param_version(const struct srv_request *rq, int64_t *id, int *version,
                      struct srv_response *rs)
{
    int64_t v;
    int err;

    if ((err = ds__param_id(rq, id, rs)) != SRV_OK)
        return err;
    if (!rq->params[1] || text_parse_id(rq->params[1], &v) != 0 || v > 1000000000)
        return srv_fail(rs, SRV_ENOTFOUND, "no such version");
    *version = (int)v;
    return SRV_OK;
}

/* ---- datasets ------------------------------------------------------------ */

/* The filter's from and to as PostgreSQL reads them (any form it takes,
 * kept as written): one it cannot read is refused now, naming the key,
 * rather than stored to fail every freeze with 400. */
static int filter_times_check(const json_t *def, struct srv_response *rs)
{
    static const char *const keys[] = { "from", "to" };
    const json_t *f = json_object_get(def, "filter");
    PGresult *r = NULL;
    int k, err;

    for (k = 0; k < 2; k++) {
        const char *vals[1] = { json_string_value(json_object_get(f, keys[k])) };

        if (!vals[0])
            continue;
        err = ds__exec(DS_SQL_TIME_CHECK, vals, 0, &r);
        PQclear(r);
        r = NULL;
        if (err == SRV_EDB)
            return srv_failf(rs, SRV_EBADREQ, "filter.%s is not a timestamp PostgreSQL reads "
                             "(2026-12-07T12:00:00Z, with Z or an offset)", keys[k]);
        if (err != SRV_OK)
            return err;
    }
    return SRV_OK;
}

int ds_api_create(struct srv_request *rq, struct srv_response *rs)
{
    json_t *body = NULL, *def = NULL;
    const char *why = "body must be a JSON object", *vals[3];
    char by[AUTH_ACTOR_MAX], *defs = NULL;
    PGresult *r = NULL;
    int err;

    if (!(body = srv_body_json(rq)) || !(def = ds__definition(body, &why))) {
        json_decref(body);
        return srv_fail(rs, SRV_EBADREQ, why);
    }
    if ((err = filter_times_check(def, rs)) != SRV_OK) {
        json_decref(def);
        json_decref(body);
        return err;
    }
    auth_actor(rq, by, sizeof by);
    defs = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
    vals[0] = json_string_value(json_object_get(def, "name"));
    vals[1] = defs;
    vals[2] = by;
    err = defs ? ds__exec(DS_SQL_CREATE, vals, 0, &r) : SRV_ENOMEM;
    if (err == SRV_OK) {
        /* Keys it does not know were left out of the definition: the client
         * hears which (a misspelt filter widens the set). */
        rs->ignored = srv_json_ignored(rq, body, ds__definition_fields);
        err = srv_respond_json_take(rs, 201, json_pack("{s:I}", "id", (json_int_t)db_int64(r, 0, "id")));
    }
    PQclear(r);
    free(defs);
    json_decref(def);
    json_decref(body);
    return err;
}

static json_t *dataset_json(const PGresult *r, int i)
{
    return json_pack("{s:I,s:s,s:o,s:s}", "id", (json_int_t)db_int64(r, i, "id"),
                     "name", db_text_or(r, i, "name", ""),
                     "definition", json_loads(db_text_or(r, i, "definition", ""), 0, NULL),
                     "created_at", db_text_or(r, i, "created_at", ""));
}

/* GET /api/v1/datasets[?limit=&after=]: oldest first, as the list was
 * before it was paged, and paged as the snapshots and the devices are (next:
 * the after of the next page, null on the last): up to a page of datasets,
 * the answer a client of the unpaged list knew, with "next": null. */
int ds_api_list(struct srv_request *rq, struct srv_response *rs)
{
    const char *q_after = rq->query ? rq->query(rq, "after") : NULL;
    char lim[16], aftb[24];
    const char *vals[2] = { lim, NULL };
    PGresult *r = NULL;
    json_t *items, *j;
    int64_t v;
    int limit, n, i, err;

    if (text_parse_limit(rq->query ? rq->query(rq, "limit") : NULL, DS_LIST_DEFAULT, DS_LIST_MAX,
                         &limit) != 0)
        return srv_failf(rs, SRV_EBADREQ, "limit must be an integer in 1..%d", DS_LIST_MAX);
    if ((err = srv_query_no_offset(rq, rs, "after")) != SRV_OK)
        return err;
    if (q_after) {
        if (text_parse_id(q_after, &v) != 0)
            return srv_fail(rs, SRV_EBADREQ, "after must be a dataset id (the next of a previous page)");
        snprintf(aftb, sizeof aftb, "%lld", (long long)v);
        vals[1] = aftb;
    }
    snprintf(lim, sizeof lim, "%d", limit + 1);     /* one more: whether a page follows */
    if ((err = ds__exec(DS_SQL_LIST, vals, 0, &r)) != SRV_OK)
        return err;
    n = PQntuples(r) > limit ? limit : PQntuples(r);
    items = json_array();
    for (i = 0; items && i < n; i++) {
        json_t *d = dataset_json(r, i);

        if (d && json_object_set_new(d, "versions", json_integer(db_int64(r, i, "versions"))) != 0) {
            json_decref(d);
            d = NULL;
        }
        if (!d || json_array_append_new(items, d) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    j = items ? json_pack("{s:o,s:o}", "items", items, "next",
                          PQntuples(r) > limit ? json_integer((json_int_t)db_int64(r, n - 1, "id"))
                                               : json_null())
              : NULL;
    PQclear(r);
    if (!j)
        return SRV_ENOMEM;
    return srv_respond_json_take(rs, 200, j);
}

static json_t *versions_json(const PGresult *v)
{
    json_t *vs = json_array();
    int i;

    for (i = 0; vs && i < PQntuples(v); i++)
        json_array_append_new(vs, json_pack("{s:i,s:s,s:I,s:s}",
                                            "version", (int)db_int64(v, i, "version"),
                                            "content_sha256", db_text_or(v, i, "content_sha256", ""),
                                            "n_windows", (json_int_t)db_int64(v, i, "n_windows"),
                                            "created_at", db_text_or(v, i, "created_at", "")));
    return vs;
}

int ds_api_get(struct srv_request *rq, struct srv_response *rs)
{
    char idb[24];
    const char *vals[1] = { idb };
    PGresult *r = NULL, *v = NULL;
    json_t *d;
    int64_t id;
    int err;

    if ((err = ds__param_id(rq, &id, rs)) != SRV_OK)
        return err;
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    if ((err = ds__exec(DS_SQL_GET, vals, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return srv_fail(rs, SRV_ENOTFOUND, "no such dataset");
    }
    if ((err = ds__exec(DS_SQL_VERSIONS, vals, 0, &v)) != SRV_OK) {
        PQclear(r);
        return err;
    }
    d = dataset_json(r, 0);
    json_object_set_new(d, "versions", versions_json(v));
    PQclear(r);
    PQclear(v);
    return srv_respond_json_take(rs, 200, d);
}

/* ---- versions ------------------------------------------------------------ */

int ds_api_version_create(struct srv_request *rq, struct srv_response *rs)
{
    char by[AUTH_ACTOR_MAX], *why = NULL;
    int64_t id;
    int err, version = 0;

    static const char *const version_fields[] = { NULL };    /* no body is read */

    if ((err = ds__param_id(rq, &id, rs)) != SRV_OK)
        return err;
    srv_body_ignored(rq, rs, version_fields);
    auth_actor(rq, by, sizeof by);
    err = ds__version_create(id, by, &version, &why);
    if (err == SRV_ENOTFOUND) {
        free(why);
        return srv_fail(rs, err, "no such dataset");
    }
    if (err != SRV_OK && why)
        err = srv_failf(rs, err, "%s", why);  /* what is wrong with the labels */
    free(why);
    if (err != SRV_OK)
        return err;
    return srv_respond_json_take(rs, 201, json_pack("{s:i}", "version", version));
}

int ds_api_version_get(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    int64_t id;
    int err, v;
    json_t *j;

    if ((err = ds__param_version(rq, &id, &v, rs)) != SRV_OK)
        return err;
    if ((err = ds__version_row(id, v, &r)) != SRV_OK)
        return err == SRV_ENOTFOUND ? srv_fail(rs, err, "no such dataset version") : err;
    j = json_pack("{s:I,s:i,s:s,s:I,s:o,s:s}", "dataset_id", (json_int_t)id, "version", v,
                  "content_sha256", db_text_or(r, 0, "content_sha256", ""),
                  "n_windows", (json_int_t)db_int64(r, 0, "n_windows"),
                  "summary", json_loads(db_text_or(r, 0, "summary", ""), 0, NULL),
                  "created_at", db_text_or(r, 0, "created_at", ""));
    PQclear(r);
    return srv_respond_json_take(rs, 200, j);
}

/* ---- streamed export ----------------------------------------------------- */

static ssize_t export_stream(void *ctx, uint64_t pos, char *buf, size_t max)
{
    struct ds_export *e = ctx;
    ssize_t n;

    (void)pos;
    if (max == 0)
        return 0;
    n = ds__export_read(e, buf, max);
    if (n == 0)
        return SRV_STREAM_END;
    if (n < 0) {
        srv_log("error", "datasets: export failed mid-stream: %s", srv_err_code((int)n));
        return SRV_STREAM_ERROR;
    }
    return n;
}

static void export_stream_free(void *ctx)
{
    ds__export_free(ctx);
}

int ds_api_export(struct srv_request *rq, struct srv_response *rs)
{
    struct ds_export *e = NULL;
    enum ds_format f;
    const char *why = NULL;
    int64_t id;
    int err, v;

    if ((err = ds__param_version(rq, &id, &v, rs)) != SRV_OK)
        return err;
    if (ds__format_parse(rq->query ? rq->query(rq, "format") : NULL, &f) != SRV_OK)
        return srv_fail(rs, SRV_EBADREQ, "format must be npz, jsonl or csv");
    /* features=relations: F holds the relation features (refused, with
     * why, before the first byte when the version cannot give them) */
    if ((err = ds__export_open_features(id, v, f, rq->query ? rq->query(rq, "features") : NULL, &e,
                                        &why)) != SRV_OK)
        return err == SRV_ENOTFOUND ? srv_fail(rs, err, "no such dataset version")
               : why            ? srv_fail(rs, err, why)
                                : err;
    rs->status = 200;
    rs->content_type = ds__format_ctype(f);
    rs->stream = export_stream;
    rs->stream_free = export_stream_free;
    rs->stream_ctx = e;
    rs->stream_size = SRV_STREAM_SIZE_UNKNOWN;
    return SRV_OK;
}

int ds_api_manifest(struct srv_request *rq, struct srv_response *rs)
{
    char *m = NULL;
    size_t len = 0;
    int64_t id;
    int err, v;

    if ((err = ds__param_version(rq, &id, &v, rs)) != SRV_OK)
        return err;
    if ((err = ds__manifest(id, v, &m, &len)) != SRV_OK)
        return err == SRV_ENOTFOUND ? srv_fail(rs, err, "no such dataset version") : err;
    rs->status = 200;
    rs->content_type = "application/json";
    rs->body = m;
    rs->body_len = len;
    return SRV_OK;
}
