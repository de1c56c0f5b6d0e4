/* models_list.c - GET /api/v1/models: every model, newest first, with what
 * the Models page shows in one row (status, metrics, the dataset it was
 * trained from, how many deployments name it).  The metrics carry their
 * support as counts (tp, fp, fn, tn, windows_scored): a precision is read
 * with the number of windows behind it. */
#include <stdio.h>

#include "server/db/db.h"
#include "server/models/models.h"
#include "server/srv/srv.h"
#include "server/text/text.h"

#define MODELS_LIST_DEFAULT 100
#define MODELS_LIST_MAX 1000

enum { ML_LIST, ML_COUNT };

static const struct db_sql list_sql[ML_COUNT] = {
    /* $1 limit: one row, the items as a JSON array */
    [ML_LIST] = { "models_list",
        "SELECT coalesce(json_agg(x ORDER BY x.id DESC), '[]')::text AS items FROM ("
        " SELECT m.id, m.dataset_id, d.name AS dataset_name, m.version, m.kind, m.transfer, m.status,"
        "  m.metrics, m.error, m.created_by,"
        /* RFC 3339 with "Z", as GET /api/v1/models/{id} and the rest of the API */
        "  " DB_RFC3339("m.created_at") " AS created_at,"
        "  " DB_RFC3339("m.finished_at") " AS finished_at,"
        "  (SELECT count(*) FROM model_deployments md WHERE md.model_id = m.id) AS deployments"
        " FROM models m LEFT JOIN datasets d ON d.id = m.dataset_id"
        " ORDER BY m.id DESC LIMIT $1::int) x", 1 },
};

int models_api_list(struct srv_request *rq, struct srv_response *rs)
{
    char lim[16];
    const char *vals[1] = { lim };
    PGresult *r = NULL;
    int limit, err;

    if (text_parse_limit(rq->query ? rq->query(rq, "limit") : NULL, MODELS_LIST_DEFAULT,
                         MODELS_LIST_MAX, &limit) != 0)
        return srv_fail(rs, SRV_EBADREQ, "limit must be an integer in 1..1000");
    snprintf(lim, sizeof lim, "%d", limit);
    if ((err = db_exec_own(&list_sql[ML_LIST], vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    err = srv_respond_items(rs, db_text_or(r, 0, "items", "[]"));
    PQclear(r);
    return err;
}
