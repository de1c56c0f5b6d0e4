/* models_list.c - GET /api/v1/models: every model, newest first, with what
 * the Models page shows in one row (status, metrics, the dataset it was
 * trained from, how many deployments name it).  The metrics carry their
 * support as counts (tp, fp, fn, tn, windows_scored): a precision is read
 * with the number of windows behind it.  Paged by id: `before` starts below
 * a model id, `next` is the one to pass for the page after (null on the
 * last), so every model is reachable, not only the newest 1000. */
#include <jansson.h>
#include <stdio.h>

#include "server/db/db.h"
#include "server/models/models.h"
#include "server/srv/srv.h"
#include "server/text/text.h"

#define MODELS_LIST_DEFAULT 100
#define MODELS_LIST_MAX 1000

enum { ML_LIST, ML_COUNT };

static const struct db_sql list_sql[ML_COUNT] = {
    /* $1 limit, $2 before (NULL: from the newest): one row, the items as a
     * JSON array */
    [ML_LIST] = { "models_list",
        "SELECT coalesce(json_agg(x ORDER BY x.id DESC), '[]')::text AS items FROM ("
        " SELECT m.id, m.dataset_id, d.name AS dataset_name, m.version, m.kind, m.transfer, m.status,"
        "  m.metrics, m.error, m.created_by,"
        /* RFC 3339 with "Z", as GET /api/v1/models/{id} and the rest of the API */
        "  " DB_RFC3339("m.created_at") " AS created_at,"
        "  " DB_RFC3339("m.finished_at") " AS finished_at,"
        "  (SELECT count(*) FROM model_deployments md WHERE md.model_id = m.id) AS deployments"
        " FROM models m LEFT JOIN datasets d ON d.id = m.dataset_id"
        " WHERE $2::bigint IS NULL OR m.id < $2::bigint"
        " ORDER BY m.id DESC LIMIT $1::int) x", 2 },
};

int models_api_list(struct srv_request *rq, struct srv_response *rs)
{
    char lim[16], bef[24];
    const char *vals[2] = { lim, NULL }, *b = rq->query ? rq->query(rq, "before") : NULL;
    PGresult *r = NULL;
    json_t *items, *last;
    int64_t before;
    int limit, err;

    if (text_parse_limit(rq->query ? rq->query(rq, "limit") : NULL, MODELS_LIST_DEFAULT,
                         MODELS_LIST_MAX, &limit) != 0)
        return srv_fail(rs, SRV_EBADREQ, "limit must be an integer in 1..1000");
    if ((err = srv_query_no_offset(rq, rs, "before")) != SRV_OK)
        return err;
    if (b) {
        if (text_parse_id(b, &before) != 0)
            return srv_fail(rs, SRV_EBADREQ, "before must be a model id (the next of a previous page)");
        snprintf(bef, sizeof bef, "%lld", (long long)before);
        vals[1] = bef;
    }
    /* one more than asked: whether a page follows */
    snprintf(lim, sizeof lim, "%d", limit + 1);
    if ((err = db_exec_own(&list_sql[ML_LIST], vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    items = json_loads(db_text_or(r, 0, "items", "[]"), 0, NULL);
    PQclear(r);
    if (!json_is_array(items)) {
        json_decref(items);
        return SRV_ENOMEM;
    }
    if (json_array_size(items) > (size_t)limit)
        json_array_remove(items, (size_t)limit);
    else
        limit = 0;
    last = json_array_get(items, json_array_size(items) - 1);
    return srv_respond_json_take(rs, 200, json_pack("{s:o,s:o}", "items", items, "next",
                                                    limit && last ? json_incref(json_object_get(last, "id"))
                                                                  : json_null()));
}
