/* deploy.h - putting trained models on devices.
 *
 * An admin or ml user assigns a finished model to devices or to a device
 * group (POST /api/v1/models/{id}/deploy); agents ask for their config on a
 * timer (GET /api/v1/devices/{id}/config) and fetch the blob when the
 * assigned model differs from what they run (GET /api/v1/devices/{id}/model).
 * Both device routes are signed like heartbeats, over a message that names
 * the path and a timestamp (DEPLOY_SIG_CONTEXT, schema/MODEL.md), and a
 * timestamp more than DEPLOY_MAX_SKEW_S from the server's clock is refused.
 * Handlers return SRV_E* codes. */
#ifndef PRECURSOR_DEPLOY_H
#define PRECURSOR_DEPLOY_H

#include <stddef.h>
#include <stdint.h>

struct srv_request;
struct srv_response;
struct json_t;

#define DEPLOY_MAX_SKEW_S 300           /* signed GETs older or newer than this: refused */
#define DEPLOY_MAX_DEVICES 1000         /* devices named in one deployment */
#define DEPLOY_SIG_CONTEXT "precursor-get-v1"

/* POST /api/v1/models/{id}/deploy: {"devices":[...]} or a group, "mode":
 * "shadow" (default) or "active", "force" (active without the shadow
 * check).  Active is refused (409, with every target device's numbers)
 * unless each device that ran the model in shadow for DEPLOY_MIN_SHADOW_S
 * observed at most 2x the predicted rate and at most its alarm budget, and
 * at least one did. */
int deploy_api_create(struct srv_request *rq, struct srv_response *rs);
int deploy_api_list(struct srv_request *rq, struct srv_response *rs);
int deploy_api_device_config(struct srv_request *rq, struct srv_response *rs);
int deploy_api_device_model(struct srv_request *rq, struct srv_response *rs);
/* GET/PATCH /api/v1/alarm-budget, GET /api/v1/rollbacks[?model_id=] (deploy_budget.c). */
int deploy_api_budget_get(struct srv_request *rq, struct srv_response *rs);
int deploy_api_budget_patch(struct srv_request *rq, struct srv_response *rs);
int deploy_api_rollbacks(struct srv_request *rq, struct srv_response *rs);

/* The rollback watcher: every poll_ms, roll back (per device) each active
 * model that its device has run over its alarm budget for the budget's
 * rollback_after_s.  deploy_watch_once is one pass (the tests): how many
 * rollbacks it recorded, or -1. */
int deploy_watch_start(unsigned poll_ms);
void deploy_watch_stop(void);
int deploy_watch_once(void);
/* Rollbacks, newest first, of model_id (decimal text; NULL: all) as a JSON
 * array into *out. */
int deploy_rollbacks_json(const char *model_id, struct json_t **out);

/* The message a device signs for a GET: "precursor-get-v1\n<path>\n<ts>",
 * written to out (NUL-terminated).  Length, or -1 when it does not fit. */
int deploy_sig_message(const char *path, const char *ts, char *out, size_t cap);

/* The fleet view's "model" object for one device: assigned (model id as
 * text from deployed_model(), or NULL) and what the device's latest
 * heartbeat body (borrowed, may be NULL) says it runs, kept and refused.
 * Never NULL unless out of memory. */
struct json_t *deploy_device_model_json(const char *assigned, const struct json_t *hb_body);

#endif
