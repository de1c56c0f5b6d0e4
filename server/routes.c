/* routes.c - see routes.h.  schema/openapi.json documents each route with
 * the same roles as x-roles; tests/unit/server/check_routes.c fails when a
 * route is missing there or the roles differ.  The http layer enforces the
 * roles before the handler runs (srv_route_call). */
#include "server/alerts/alerts.h"
#include "server/api/api.h"
#include "server/auth/auth.h"
#include "server/datasets/datasets.h"
#include "server/deploy/deploy.h"
#include "server/features/features.h"
#include "server/fleet/fleet.h"
#include "server/ingest/ingest.h"
#include "server/labels/labels.h"
#include "server/metrics/metrics.h"
#include "server/metrics_ops/opsmetrics.h"
#include "server/models/models.h"
#include "server/routes.h"
#include "server/rules/rules.h"
#include "server/session/session.h"
#include "server/srv/srv.h"
#include "server/taxonomy/taxonomy.h"
#include "server/ui/ui.h"
#include "schema/wire.h"

static const struct srv_route routes[] = {
    { "GET",    "/healthz",                                       api_healthz,               SRV_ANYONE,               SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/openapi.json",                           api_openapi,               SRV_ANYONE,               SRV_BODY_NONE,     NULL },
    { "POST",   "/api/v1/devices/register",                       api_device_register,       SRV_DEVICE,               SRV_BODY_JSON,     NULL },
    { "POST",   "/api/v1/snapshots",                              ingest_api_post,           SRV_DEVICE,               SRV_BODY_ENVELOPE, &ingest_api_post_park },
    { "POST",   "/api/v1/heartbeats",                             api_heartbeat_post,        SRV_DEVICE,               SRV_BODY_JSON,     NULL },
    { "GET",    "/api/v1/snapshots",                              api_snapshots_list,        SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/snapshots/{id}",                         api_snapshot_get,          SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/snapshots/{id}/raw",                     api_snapshot_raw,          SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/devices",                                api_devices_list,          SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/devices/{id}",                           api_device_get,            SRV_USERS,                SRV_BODY_NONE,     NULL },
    /* fleet: enrollment, install script, device life cycle, metrics */
    { "POST",   "/api/v1/enrollment-tokens",                      fleet_api_token_create,    SRV_ADMIN,                SRV_BODY_JSON,     NULL },
    { "GET",    "/install.sh",                                    fleet_api_install_sh,      SRV_DEVICE,               SRV_BODY_NONE,     NULL },
    { "GET",    "/downloads/{file}",                              fleet_api_download,        SRV_ANYONE,               SRV_BODY_NONE,     NULL },
    { "POST",   "/api/v1/devices/enroll",                         fleet_api_device_enroll,   SRV_DEVICE,               SRV_BODY_JSON,     NULL },
    { "POST",   "/api/v1/devices/{id}/approve",                   fleet_api_device_approve,  SRV_ADMIN,                SRV_BODY_JSON,     NULL },
    { "POST",   "/api/v1/devices/{id}/revoke",                    fleet_api_device_revoke,   SRV_ADMIN,                SRV_BODY_JSON,     NULL },
    { "POST",   "/api/v1/devices/{id}/rotate",                    fleet_api_device_rotate,   SRV_DEVICE,               SRV_BODY_JSON,     NULL },
    { "GET",    "/metrics",                                       metrics_api_get,           SRV_ANYONE,               SRV_BODY_NONE,     NULL },
    /* labeling UI: sessions, labels, samples, queue, static files */
    { "POST",   "/api/v1/session",                                session_login,             SRV_ANYONE,               SRV_BODY_JSON,     NULL },
    { "GET",    "/api/v1/session",                                session_get,               SRV_ANYONE,               SRV_BODY_NONE,     NULL },
    { "DELETE", "/api/v1/session",                                session_logout,            SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/classes",                                labels_classes,            SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/snapshots/{id}/labels",                  labels_list,               SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "POST",   "/api/v1/snapshots/{id}/labels",                  labels_create,             SRV_ADMIN | SRV_OPERATOR, SRV_BODY_JSON,     NULL },
    { "PATCH",  "/api/v1/labels/{id}",                            labels_update,             SRV_ADMIN | SRV_OPERATOR, SRV_BODY_JSON,     NULL },
    { "DELETE", "/api/v1/labels/{id}",                            labels_delete,             SRV_ADMIN | SRV_OPERATOR, SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/labels/{id}/history",                    labels_history,            SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/snapshots/{id}/samples",                 labels_samples,            SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/snapshots/{id}/context",                 labels_context,            SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/queue",                                  labels_queue,              SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/users",                                  session_users_list,        SRV_ADMIN,                SRV_BODY_NONE,     NULL },
    { "POST",   "/api/v1/users",                                  session_user_create,       SRV_ADMIN,                SRV_BODY_JSON,     NULL },
    { "POST",   "/api/v1/users/{id}/disable",                     session_user_disable,      SRV_ADMIN,                SRV_BODY_NONE,     NULL },
    { "POST",   "/api/v1/users/{id}/password",                    session_user_password,     SRV_ADMIN,                SRV_BODY_JSON,     NULL },
    { "POST",   "/api/v1/session/password",                       session_password_change,   SRV_USERS,                SRV_BODY_JSON,     NULL },
    { "GET",    "/api/v1/tokens",                                 session_tokens_list,       SRV_ADMIN,                SRV_BODY_NONE,     NULL },
    { "DELETE", "/api/v1/tokens/{id}",                            session_token_revoke,      SRV_ADMIN,                SRV_BODY_NONE,     NULL },
    { "GET",    "/",                                              ui_index,                  SRV_ANYONE,               SRV_BODY_NONE,     NULL },
    { "GET",    "/ui/{file}",                                     ui_file,                   SRV_ANYONE,               SRV_BODY_NONE,     NULL },
    /* datasets and models */
    { "POST",   "/api/v1/datasets",                               ds_api_create,             SRV_ADMIN | SRV_ML,       SRV_BODY_JSON,     NULL },
    { "GET",    "/api/v1/datasets",                               ds_api_list,               SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/datasets/{id}",                          ds_api_get,                SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "POST",   "/api/v1/datasets/{id}/versions",                 ds_api_version_create,     SRV_ADMIN | SRV_ML,       SRV_BODY_JSON,     NULL },
    { "GET",    "/api/v1/datasets/{id}/versions/{v}",             ds_api_version_get,        SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/datasets/{id}/versions/{v}/export",      ds_api_export,             SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/datasets/{id}/versions/{v}/manifest",    ds_api_manifest,           SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "POST",   "/api/v1/datasets/{id}/versions/{v}/export-jobs", ds_api_job_create_bounded, SRV_ADMIN | SRV_ML,       SRV_BODY_JSON,     NULL },
    { "GET",    "/api/v1/export-jobs",                            ds_api_job_list,           SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/export-jobs/{id}",                       ds_api_job_get,            SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "DELETE", "/api/v1/export-jobs/{id}",                       ds_api_job_delete,         SRV_ADMIN | SRV_ML,       SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/export-jobs/{id}/file",                  ds_api_job_file_kept,      SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "POST",   "/api/v1/models",                                 models_api_create,         SRV_ADMIN | SRV_ML,       SRV_BODY_JSON,     NULL },
    { "GET",    "/api/v1/models",                                 models_api_list,           SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/models/signing-key",                     models_api_signing_key,    SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/models/{id}",                            models_api_get,            SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/models/{id}/header",                     models_api_header,         SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/models/{id}/blob",                       models_api_blob,           SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/models/{id}/devices",                    models_api_devices,        SRV_USERS,                SRV_BODY_NONE,     NULL },
    /* model deployment: assign, list; device-signed config poll and blob */
    { "POST",   "/api/v1/models/{id}/deploy",                     deploy_api_create,         SRV_ADMIN | SRV_ML,       SRV_BODY_JSON,     NULL },
    { "GET",    "/api/v1/models/{id}/deployments",                deploy_api_list,           SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/devices/{id}/config",                    deploy_api_device_config,  SRV_DEVICE,               SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/devices/{id}/model",                     deploy_api_device_model,   SRV_DEVICE,               SRV_BODY_NONE,     NULL },
    /* the alarm budget models are held to, and the rollbacks it caused */
    { "GET",    "/api/v1/alarm-budget",                           deploy_api_budget_get,     SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "PATCH",  "/api/v1/alarm-budget",                           deploy_api_budget_patch,   SRV_ADMIN,                SRV_BODY_JSON,     NULL },
    { "GET",    "/api/v1/rollbacks",                              deploy_api_rollbacks,      SRV_USERS,                SRV_BODY_NONE,     NULL },
    /* domain: taxonomy, features, rules, weak labels, alerts, ops metrics */
    { "GET",    "/api/v1/taxonomy",                               taxonomy_api_get,          SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "POST",   "/api/v1/taxonomy/types",                         taxonomy_api_type_put,     SRV_ADMIN | SRV_OPERATOR, SRV_BODY_JSON,     NULL },
    { "GET",    "/api/v1/taxonomy/types/{name}/classes",          taxonomy_api_type_classes, SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "POST",   "/api/v1/taxonomy/failure-modes",                 taxonomy_api_mode_create,  SRV_ADMIN | SRV_OPERATOR, SRV_BODY_JSON,     NULL },
    { "POST",   "/api/v1/taxonomy/classes",                       taxonomy_api_class_create, SRV_ADMIN | SRV_OPERATOR, SRV_BODY_JSON,     NULL },
    { "POST",   "/api/v1/taxonomy/assets",                        taxonomy_api_asset_put,    SRV_ADMIN | SRV_OPERATOR, SRV_BODY_JSON,     NULL },
    { "POST",   "/api/v1/devices/{id}/asset",                     taxonomy_api_device_asset, SRV_ADMIN | SRV_OPERATOR, SRV_BODY_JSON,     NULL },
    { "GET",    "/api/v1/bearings",                               taxonomy_api_bearings,     SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/snapshots/{id}/features",                features_api_get,          SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/snapshots/{id}/spectrum",                features_api_spectrum,     SRV_USERS,                SRV_BODY_NONE,     &features_api_spectrum_park },
    { "GET",    "/api/v1/snapshots/{id}/weak-label",              rules_api_weak_label,      SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/rules",                                  rules_api_list,            SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "POST",   "/api/v1/rules",                                  rules_api_create,          SRV_ADMIN | SRV_OPERATOR, SRV_BODY_JSON,     NULL },
    { "POST",   "/api/v1/rules/validate",                         rules_api_validate,        SRV_USERS,                SRV_BODY_JSON,     NULL },
    { "GET",    "/api/v1/rules/{id}",                             rules_api_get,             SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "PATCH",  "/api/v1/rules/{id}",                             rules_api_update,          SRV_ADMIN | SRV_OPERATOR, SRV_BODY_JSON,     NULL },
    { "DELETE", "/api/v1/rules/{id}",                             rules_api_delete,          SRV_ADMIN | SRV_OPERATOR, SRV_BODY_NONE,     NULL },
    { "GET",    "/api/v1/alerts",                                 alerts_api_list,           SRV_USERS,                SRV_BODY_NONE,     NULL },
    { "POST",   "/api/v1/alerts/{id}/ack",                        alerts_api_ack,            SRV_ADMIN | SRV_OPERATOR, SRV_BODY_JSON,     NULL },
    { "POST",   "/api/v1/alerts/{id}/disposition",                alerts_api_disposition,    SRV_ADMIN | SRV_OPERATOR, SRV_BODY_JSON,     NULL },
    { "GET",    "/api/v1/metrics/operational",                    opsm_api_operational,      SRV_USERS,                SRV_BODY_NONE,     NULL },
};

const struct srv_route *routes_table(size_t *n)
{
    *n = sizeof routes / sizeof routes[0];
    return routes;
}

int routes_authenticate(struct srv_request *rq, const char *authorization)
{
    return authorization ? auth_bearer(rq, authorization)
                         : session_auth(rq);
}

void routes_configure(struct srv_config *cfg)
{
    cfg->routes = routes_table(&cfg->nroutes);
    cfg->authenticate = routes_authenticate;
    cfg->envelope_len = wire_declared_len;
}
