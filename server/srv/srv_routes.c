/* srv_routes.c - every route the server answers, declared in one table, and
 * the matcher the http layer uses.  schema/openapi.json documents each of
 * them; tests/unit/server/check_routes.c fails when one is missing there. */
#include <string.h>

#include "server/api/api.h"
#include "server/datasets/datasets.h"
#include "server/models/models.h"
#include "server/deploy/deploy.h"
#include "server/fleet/fleet.h"
#include "server/ingest/ingest.h"
#include "server/metrics/metrics.h"
#include "server/labels/labels.h"
#include "server/session/session.h"
#include "server/ui/ui.h"
#include "server/alerts/alerts.h"
#include "server/metrics_ops/opsmetrics.h"
#include "server/rules/rules.h"
#include "server/taxonomy/taxonomy.h"
#include "server/srv/srv.h"

/* Role gates for routes whose handlers check no role themselves.  Taxonomy
 * and rule changes and alert feedback (a disposition is a label source) are
 * operator or admin work (docs/ARCHITECTURE.md, issue 6); without the gate an
 * ml token, read-only outside datasets and models, could write them.  The
 * gate runs before the handler, so a refused request touches nothing.
 * schema/openapi.json lists the same roles as x-roles; check_routes.c holds
 * both to each other. */
static int need_operator(const struct srv_request *rq, struct srv_response *rs)
{
    if (rq->role != SRV_ROLE_OPERATOR && rq->role != SRV_ROLE_ADMIN) {
        rs->err_message = "needs the operator or admin role";
        return SRV_EFORBIDDEN;
    }
    return SRV_OK;
}

#define SRV_OPERATOR_GATE(fn)                                                  \
    static int fn##_op(struct srv_request *rq, struct srv_response *rs)        \
    {                                                                          \
        int err = need_operator(rq, rs);                                       \
        return err != SRV_OK ? err : fn(rq, rs);                               \
    }
SRV_OPERATOR_GATE(taxonomy_api_type_put)
SRV_OPERATOR_GATE(taxonomy_api_mode_create)
SRV_OPERATOR_GATE(taxonomy_api_asset_put)
SRV_OPERATOR_GATE(taxonomy_api_device_asset)
SRV_OPERATOR_GATE(rules_api_create)
SRV_OPERATOR_GATE(rules_api_update)
SRV_OPERATOR_GATE(rules_api_delete)
SRV_OPERATOR_GATE(alerts_api_ack)
SRV_OPERATOR_GATE(alerts_api_disposition)

static const struct srv_route routes[] = {
    { "GET",  "/healthz",                      api_healthz,         SRV_AUTH_NONE,   SRV_BODY_NONE },
    { "GET",  "/api/v1/openapi.json",          api_openapi,         SRV_AUTH_NONE,   SRV_BODY_NONE },
    { "POST", "/api/v1/devices/register",      api_device_register, SRV_AUTH_DEVICE, SRV_BODY_JSON },
    { "POST", "/api/v1/snapshots",             ingest_api_post,     SRV_AUTH_DEVICE, SRV_BODY_ENVELOPE },
    { "POST", "/api/v1/heartbeats",            api_heartbeat_post,  SRV_AUTH_DEVICE, SRV_BODY_JSON },
    { "GET",  "/api/v1/snapshots",             api_snapshots_list,  SRV_AUTH_TOKEN,  SRV_BODY_NONE },
    { "GET",  "/api/v1/snapshots/{id}",        api_snapshot_get,    SRV_AUTH_TOKEN,  SRV_BODY_NONE },
    { "GET",  "/api/v1/snapshots/{id}/raw",    api_snapshot_raw,    SRV_AUTH_TOKEN,  SRV_BODY_NONE },
    { "GET",  "/api/v1/devices",               api_devices_list,    SRV_AUTH_TOKEN,  SRV_BODY_NONE },
    { "GET",  "/api/v1/devices/{id}",          api_device_get,      SRV_AUTH_TOKEN,  SRV_BODY_NONE },
    /* fleet (issue 4): enrollment, install script, device life cycle, metrics */
    { "POST", "/api/v1/enrollment-tokens",     fleet_api_token_create,   SRV_AUTH_TOKEN,  SRV_BODY_JSON },
    { "GET",  "/install.sh",                   fleet_api_install_sh,     SRV_AUTH_NONE,   SRV_BODY_NONE },
    { "GET",  "/downloads/{file}",             fleet_api_download,       SRV_AUTH_NONE,   SRV_BODY_NONE },
    { "POST", "/api/v1/devices/enroll",        fleet_api_device_enroll,  SRV_AUTH_DEVICE, SRV_BODY_JSON },
    { "POST", "/api/v1/devices/{id}/approve",  fleet_api_device_approve, SRV_AUTH_TOKEN,  SRV_BODY_NONE },
    { "POST", "/api/v1/devices/{id}/revoke",   fleet_api_device_revoke,  SRV_AUTH_TOKEN,  SRV_BODY_NONE },
    { "POST", "/api/v1/devices/{id}/rotate",   fleet_api_device_rotate,  SRV_AUTH_DEVICE, SRV_BODY_JSON },
    { "GET",  "/metrics",                      metrics_api_get,          SRV_AUTH_NONE,   SRV_BODY_NONE },
    /* labeling UI (issue 5): sessions, labels, samples, queue, static files */
    { "POST",   "/api/v1/session",                  session_login,  SRV_AUTH_NONE,  SRV_BODY_JSON },
    { "GET",    "/api/v1/session",                  session_get,    SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "DELETE", "/api/v1/session",                  session_logout, SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/classes",                  labels_classes, SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/snapshots/{id}/labels",    labels_list,    SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "POST",   "/api/v1/snapshots/{id}/labels",    labels_create,  SRV_AUTH_TOKEN, SRV_BODY_JSON },
    { "PATCH",  "/api/v1/labels/{id}",              labels_update,  SRV_AUTH_TOKEN, SRV_BODY_JSON },
    { "DELETE", "/api/v1/labels/{id}",              labels_delete,  SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/labels/{id}/history",      labels_history, SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/snapshots/{id}/samples",   labels_samples, SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/snapshots/{id}/context",   labels_context, SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/queue",                    labels_queue,   SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/users",                    session_users_list,  SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "POST",   "/api/v1/users",                    session_user_create, SRV_AUTH_TOKEN, SRV_BODY_JSON },
    { "GET",    "/",                                ui_index,       SRV_AUTH_NONE,  SRV_BODY_NONE },
    { "GET",    "/ui/{file}",                       ui_file,        SRV_AUTH_NONE,  SRV_BODY_NONE },
    /* datasets and models (issue 7) */
    { "POST",   "/api/v1/datasets",                             ds_api_create,         SRV_AUTH_TOKEN, SRV_BODY_JSON },
    { "GET",    "/api/v1/datasets",                             ds_api_list,           SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/datasets/{id}",                        ds_api_get,            SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "POST",   "/api/v1/datasets/{id}/versions",               ds_api_version_create, SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/datasets/{id}/versions/{v}",           ds_api_version_get,    SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/datasets/{id}/versions/{v}/export",    ds_api_export,         SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/datasets/{id}/versions/{v}/manifest",  ds_api_manifest,       SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "POST",   "/api/v1/datasets/{id}/versions/{v}/export-jobs", ds_api_job_create,   SRV_AUTH_TOKEN, SRV_BODY_JSON },
    { "GET",    "/api/v1/export-jobs/{id}",                     ds_api_job_get,        SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "DELETE", "/api/v1/export-jobs/{id}",                     ds_api_job_cancel,     SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/export-jobs/{id}/file",                ds_api_job_file,       SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "POST",   "/api/v1/models",                               models_api_create,     SRV_AUTH_TOKEN, SRV_BODY_JSON },
    { "GET",    "/api/v1/models/signing-key",                   models_api_signing_key, SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/models/{id}",                          models_api_get,        SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/models/{id}/header",                   models_api_header,     SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/models/{id}/blob",                     models_api_blob,       SRV_AUTH_TOKEN, SRV_BODY_NONE },
    /* model deployment (issue 7 item 7): assign, list; device-signed config poll and blob */
    { "POST",   "/api/v1/models/{id}/deploy",                   deploy_api_create,     SRV_AUTH_TOKEN, SRV_BODY_JSON },
    { "GET",    "/api/v1/models/{id}/deployments",              deploy_api_list,       SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/devices/{id}/config",                  deploy_api_device_config, SRV_AUTH_DEVICE, SRV_BODY_NONE },
    { "GET",    "/api/v1/devices/{id}/model",                   deploy_api_device_model,  SRV_AUTH_DEVICE, SRV_BODY_NONE },
    /* domain (issue 6): taxonomy, features, rules, weak labels, alerts, ops metrics */
    { "GET",    "/api/v1/taxonomy",                     taxonomy_api_get,          SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "POST",   "/api/v1/taxonomy/types",               taxonomy_api_type_put_op,  SRV_AUTH_TOKEN, SRV_BODY_JSON },
    { "GET",    "/api/v1/taxonomy/types/{name}/classes", taxonomy_api_type_classes, SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "POST",   "/api/v1/taxonomy/failure-modes",       taxonomy_api_mode_create_op, SRV_AUTH_TOKEN, SRV_BODY_JSON },
    { "POST",   "/api/v1/taxonomy/assets",              taxonomy_api_asset_put_op, SRV_AUTH_TOKEN, SRV_BODY_JSON },
    { "POST",   "/api/v1/devices/{id}/asset",           taxonomy_api_device_asset_op, SRV_AUTH_TOKEN, SRV_BODY_JSON },
    { "GET",    "/api/v1/snapshots/{id}/features",      rules_api_features,        SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/snapshots/{id}/weak-label",    rules_api_weak_label,      SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/rules",                        rules_api_list,            SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "POST",   "/api/v1/rules",                        rules_api_create_op,       SRV_AUTH_TOKEN, SRV_BODY_JSON },
    { "POST",   "/api/v1/rules/validate",               rules_api_validate,        SRV_AUTH_TOKEN, SRV_BODY_JSON },
    { "GET",    "/api/v1/rules/{id}",                   rules_api_get,             SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "PATCH",  "/api/v1/rules/{id}",                   rules_api_update_op,       SRV_AUTH_TOKEN, SRV_BODY_JSON },
    { "DELETE", "/api/v1/rules/{id}",                   rules_api_delete_op,       SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "GET",    "/api/v1/alerts",                       alerts_api_list,           SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "POST",   "/api/v1/alerts/{id}/ack",              alerts_api_ack_op,         SRV_AUTH_TOKEN, SRV_BODY_NONE },
    { "POST",   "/api/v1/alerts/{id}/disposition",      alerts_api_disposition_op, SRV_AUTH_TOKEN, SRV_BODY_JSON },
    { "GET",    "/api/v1/metrics/operational",          opsm_api_operational,      SRV_AUTH_TOKEN, SRV_BODY_NONE },
};

const struct srv_route *srv_routes(size_t *n)
{
    *n = sizeof routes / sizeof routes[0];
    return routes;
}

/* Walk pattern and path segment by segment.  A "{...}" segment captures one
 * non-empty path segment, copied NUL-terminated into caps. */
static int route_path_match(const char *pattern, const char *path,
                            char *caps, size_t caps_cap,
                            const char *params[SRV_MAX_PARAMS])
{
    const char *p = pattern, *q = path;
    size_t used = 0;
    int np = 0;

    while (*p && *q) {
        if (*p != '/' || *q != '/')
            return 0;
        p++;
        q++;
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            size_t len = strcspn(q, "/");

            if (!pe || len == 0 || np >= SRV_MAX_PARAMS || used + len + 1 > caps_cap)
                return 0;
            memcpy(caps + used, q, len);
            caps[used + len] = '\0';
            params[np++] = caps + used;
            used += len + 1;
            p = pe + 1;
            q += len;
        } else {
            size_t lp = strcspn(p, "/"), lq = strcspn(q, "/");

            if (lp != lq || memcmp(p, q, lp) != 0)
                return 0;
            p += lp;
            q += lq;
        }
    }
    return *p == '\0' && *q == '\0';
}

const struct srv_route *srv_route_match(const char *method, const char *path,
                                        char *caps_buf, size_t caps_cap,
                                        const char *params[SRV_MAX_PARAMS],
                                        int *err)
{
    size_t i, n;
    const struct srv_route *r = srv_routes(&n);
    int path_seen = 0;

    for (i = 0; i < n; i++) {
        const char *tmp[SRV_MAX_PARAMS] = { NULL, NULL };

        if (!route_path_match(r[i].pattern, path, caps_buf, caps_cap, tmp))
            continue;
        path_seen = 1;
        /* HEAD is answered like GET; libmicrohttpd drops the body. */
        if (strcmp(r[i].method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(r[i].method, "GET") == 0)) {
            memcpy(params, tmp, sizeof tmp);
            return &r[i];
        }
    }
    *err = path_seen ? SRV_EMETHOD : SRV_ENOTFOUND;
    return NULL;
}
