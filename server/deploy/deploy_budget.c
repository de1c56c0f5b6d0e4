/* deploy_budget.c - deployed models held to what they promised: a device's
 * reported counters against its model's predicted rate and the fleet's
 * alarm budget; the alarm-budget setting's routes; the rollback watcher,
 * which takes an active model back on a device that has run it over its
 * budget for the configured period, and the list of rollbacks.
 *
 * Rates are windows at or above the model's threshold per unit of the
 * device's running time (frames / sample rate), as the agent reports them in
 * every heartbeat: the same unit training predicts in (alarming windows
 * among held-out normal windows at the device's window rate). */
#include "server/deploy/deploy.h"
#include "server/deploy/deploy_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/metrics/metrics.h"
#include "server/srv/srv.h"
#include "server/srv/srv_worker.h"
#include "server/text/text.h"

/* ---- counters, predictions, rates ------------------------------------------ */

static double num(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);

    return json_is_number(v) ? json_number_value(v) : 0.0;
}

void deploy__stats(const json_t *hb, int64_t model_id, struct deploy_dev_stats *out)
{
    const json_t *models = hb ? json_object_get(hb, "models") : NULL, *m;
    size_t i;

    memset(out, 0, sizeof *out);
    json_array_foreach(models, i, m) {
        const char *mode = json_string_value(json_object_get(m, "mode"));

        if (!json_is_object(m) || json_integer_value(json_object_get(m, "version")) != model_id)
            continue;
        out->found = 1;
        out->active = mode && strcmp(mode, "active") == 0;
        out->windows = num(m, "windows");
        out->above = num(m, "above_threshold");
        out->run_s = num(m, "run_s");
        out->hold_off_s = num(m, "hold_off_s");
        out->alerts = json_is_number(json_object_get(m, "alerts")) ? num(m, "alerts") : out->above;
        /* Device-supplied: nothing negative or inconsistent is believed. */
        if (out->windows < 0 || out->above < 0 || out->above > out->windows || out->run_s < 0 ||
            out->hold_off_s < 0 || out->alerts < 0 || out->alerts > out->above)
            memset(out, 0, sizeof *out);
        return;
    }
}

void deploy__prediction(const char *metrics, struct deploy_pred *out)
{
    json_t *m = metrics ? json_loads(metrics, 0, NULL) : NULL;
    const json_t *p = json_object_get(m, "prediction");

    memset(out, 0, sizeof *out);
    if (json_is_object(p) && json_is_number(json_object_get(p, "predicted_alerts_per_device_per_day"))) {
        out->known = 1;
        out->per_day = num(p, "predicted_alerts_per_device_per_day");
        out->floor_per_day = num(p, "alarm_fraction_resolution") * num(p, "window_rate_hz") * 86400.0;
        out->frac = num(p, "predicted_alarm_fraction");
        out->frac_floor = num(p, "alarm_fraction_resolution");
    }
    json_decref(m);
}

double deploy__observed_per_day(const struct deploy_dev_stats *st)
{
    return st->run_s > 0 ? st->alerts / st->run_s * 86400.0 : 0.0;
}

/* A count the device reported (windows, alarms) as an integer, as the
 * rollbacks list shows the same counts; a device's non-integral or huge
 * number stays the real it sent. */
static json_t *count_json(double v)
{
    return v == floor(v) && fabs(v) < 9007199254740992.0 ? json_integer((json_int_t)v) : json_real(v);
}

json_t *deploy__rates_json(const char *device_id, const struct deploy_dev_stats *st,
                           const struct deploy_pred *p, const struct models_budget *b)
{
    json_t *o = json_pack("{s:s,s:o,s:o,s:o,s:f,s:o,s:f}", "device_id", device_id,
                          "mode_reported", st->found ? json_string(st->active ? "active" : "shadow")
                                                     : json_null(),
                          "windows", count_json(st->windows), "above_threshold", count_json(st->above),
                          "run_s", st->run_s, "alerts", count_json(st->alerts),
                          "budget_alerts_per_day",
                          models_budget_device_per_hour(b, st->hold_off_s) * 24.0);

    if (!o)
        return NULL;
    json_object_set_new(o, "observed_alerts_per_day",
                        st->found && st->run_s > 0 ? json_real(deploy__observed_per_day(st))
                                                   : json_null());
    json_object_set_new(o, "predicted_alerts_per_device_per_day",
                        p->known ? json_real(p->per_day) : json_null());
    json_object_set_new(o, "predicted_floor_per_day",
                        p->known ? json_real(p->floor_per_day) : json_null());
    json_object_set_new(o, "observed_alarm_fraction",
                        st->found && st->windows > 0 ? json_real(st->above / st->windows) : json_null());
    json_object_set_new(o, "predicted_alarm_fraction", p->known ? json_real(p->frac) : json_null());
    json_object_set_new(o, "predicted_fraction_floor", p->known ? json_real(p->frac_floor) : json_null());
    return o;
}

const char *deploy__promotion_refusal(const struct deploy_dev_stats *st,
                                      const struct deploy_pred *p,
                                      const struct models_budget *b)
{
    double obs_frac, ref;

    if (!st->found || st->active)
        return "no shadow run of this model reported";
    if (st->run_s < DEPLOY_MIN_SHADOW_S || st->windows < 1)
        return "shadow run too short (needs 60 s of the device's data)";
    if (deploy__observed_per_day(st) > models_budget_device_per_hour(b, st->hold_off_s) * 24.0)
        return "observed shadow alert rate over the device's alarm budget";
    if (!p->known)
        return "the model has no predicted rate to compare with";
    /* The model's alarm rate: the fraction of windows at or above its
     * threshold, as training measured it on held-out normal windows.  A
     * prediction of 0 from n held-out windows only says "below 1/n": the
     * comparison uses what the held-out set could resolve. */
    obs_frac = st->above / st->windows;
    ref = p->frac > p->frac_floor ? p->frac : p->frac_floor;
    if (obs_frac > DEPLOY_RATE_FACTOR * ref)
        return "observed shadow alarm fraction more than 2x the predicted one";
    return NULL;
}

/* ---- SQL ------------------------------------------------------------------ */

enum { W_CANDIDATES, W_ROLLBACK, W_LIST, W_COUNT };
static const struct db_sql wsql[W_COUNT] = {
    /* Devices whose deployment in force is active, with their latest heartbeat. */
    [W_CANDIDATES] = { "deploy_watch_candidates",
        "SELECT d.id AS device_id, dep.id AS deployment, dep.model_id, h.body::text AS hb"
        " FROM devices d JOIN heartbeats h ON h.device_id = d.id"
        " JOIN model_deployments dep ON dep.id = deployment_for_device(d.id, d.equipment_type, d.site)"
        " WHERE d.status = 'active' AND dep.mode = 'active'", 0 },
    [W_ROLLBACK] = { "deploy_watch_rollback",
        "INSERT INTO model_rollbacks (device_id, deployment_id, model_id, observed_per_hour,"
        " budget_per_hour, run_s, windows, above_threshold, reason)"
        " VALUES ($1, $2::bigint, $3::bigint, $4::float8, $5::float8, $6::float8, $7::float8::bigint,"
        " $8::float8::bigint, $9)"
        " ON CONFLICT (device_id, deployment_id) DO NOTHING RETURNING id", 9 },
    [W_LIST] = { "deploy_rollbacks_list",
        "SELECT id, device_id, deployment_id, model_id, observed_per_hour, budget_per_hour, run_s,"
        " windows, above_threshold, reason,"
        " (extract(epoch FROM created_at) * 1000000)::bigint AS created_us"
        " FROM model_rollbacks WHERE ($1::bigint IS NULL OR model_id = $1::bigint)"
        " ORDER BY id DESC LIMIT 500", 1 },
};

/* ---- the rollback watcher ---------------------------------------------------- */

/* Record the rollback of deployment dep on dev; 1 when it is new. */
static int rollback_record(const char *dev, const char *dep, const char *model,
                           const struct deploy_dev_stats *st, double budget_h)
{
    char o[32], bh[32], rs[32], w[32], a[32], why[160];
    const char *vals[9] = { dev, dep, model, o, bh, rs, w, a, why };
    PGresult *r = NULL;
    int fresh;

    snprintf(o, sizeof o, "%.9g", st->alerts / st->run_s * 3600.0);
    snprintf(bh, sizeof bh, "%.9g", budget_h);
    snprintf(rs, sizeof rs, "%.9g", st->run_s);
    snprintf(w, sizeof w, "%.0f", st->windows);
    snprintf(a, sizeof a, "%.0f", st->above);
    snprintf(why, sizeof why, "%.2f alerts/hour over %.0f s against a budget of %.2f/hour",
             st->alerts / st->run_s * 3600.0, st->run_s, budget_h);
    if (db_exec_own(&wsql[W_ROLLBACK], vals, NULL, NULL, 0, &r) != SRV_OK)
        return 0;
    fresh = PQntuples(r) == 1;
    PQclear(r);
    if (fresh) {
        srv_log("warn", "deploy: model %s rolled back on %s (deployment %s): %s", model, dev, dep, why);
        metrics_model_rollback();
    }
    return fresh;
}

int deploy_watch_once(void)
{
    struct models_budget b;
    PGresult *r = NULL;
    int n, i, rolled = 0;

    if (models_budget_get(&b) != SRV_OK ||
        db_exec_own(&wsql[W_CANDIDATES], NULL, NULL, NULL, 0, &r) != SRV_OK)
        return -1;
    n = PQntuples(r);
    for (i = 0; i < n; i++) {
        json_t *hb = json_loads(db_text_or(r, i, "hb", ""), 0, NULL);
        struct deploy_dev_stats st;
        double budget_h;

        deploy__stats(hb, db_int64(r, i, "model_id"), &st);
        json_decref(hb);
        budget_h = models_budget_device_per_hour(&b, st.hold_off_s);
        /* Over budget for the configured period of the device's own time,
         * while it acts on the model. */
        if (st.found && st.active && st.run_s >= b.rollback_after_s &&
            st.alerts / st.run_s * 3600.0 > budget_h)
            rolled += rollback_record(db_text_or(r, i, "device_id", ""),
                                      db_text_or(r, i, "deployment", ""),
                                      db_text_or(r, i, "model_id", ""), &st, budget_h);
    }
    PQclear(r);
    return rolled;
}

static int watch_pass(void *arg)
{
    (void)arg;
    (void)deploy_watch_once();
    return 0;
}

static struct srv_worker g_watcher = {
    .name = "deploy: rollback watcher", .pass = watch_pass, .finish = db_thread_release,
};

int deploy_watch_start(unsigned poll_ms)
{
    g_watcher.period_ms = poll_ms ? poll_ms : 5000;
    return srv_worker_start(&g_watcher) == 0 ? SRV_OK : SRV_EINTERNAL;
}

void deploy_watch_stop(void)
{
    srv_worker_stop(&g_watcher);
}

/* ---- routes: the budget and the rollbacks ---------------------------------------- */

static json_t *budget_json(const struct models_budget *b)
{
    char t[40];
    json_t *j = json_pack("{s:f,s:i,s:f,s:I,s:f,s:f,s:s}",
                          "per_operator_hour", b->per_operator_hour,
                          "devices_per_operator", b->devices_per_operator,
                          "rollback_after_s", b->rollback_after_s,
                          "active_devices", (json_int_t)b->active_devices,
                          "device_per_hour", models_budget_device_per_hour(b, 0),
                          "isa18_2_default_per_operator_hour", 6.0,
                          "basis", "a device's share: per_operator_hour / devices_per_operator "
                          "(0: every active device), at most one per the device's hold-off");

    if (j)
        json_object_set_new(j, "updated_at", b->updated_by[0] &&
                            text_rfc3339(b->updated_us, t, sizeof t) == 0 ? json_string(t)
                                                                           : json_null());
    return j;
}

int deploy_api_budget_get(struct srv_request *rq, struct srv_response *rs)
{
    struct models_budget b;
    int err;

    (void)rq;
    if ((err = models_budget_get(&b)) != SRV_OK)
        return err;
    return srv_respond_json_take(rs, 200, budget_json(&b));
}

int deploy_api_budget_patch(struct srv_request *rq, struct srv_response *rs)
{
    json_t *body = srv_body_json(rq), *v;
    struct models_budget b;
    char by[AUTH_ACTOR_MAX];
    int err;

    static const char *const budget_fields[] = { "per_operator_hour", "devices_per_operator",
                                                 "rollback_after_s", NULL };

    if (!json_is_object(body)) {
        json_decref(body);
        return srv_fail(rs, SRV_EBADREQ, "body must be a JSON object");
    }
    /* Fields left out keep their value; a body with none of them (a
     * misspelt name) changes nothing and must not answer as if it had. */
    if (!json_object_get(body, "per_operator_hour") && !json_object_get(body, "devices_per_operator") &&
        !json_object_get(body, "rollback_after_s")) {
        json_decref(body);
        return srv_fail(rs, SRV_EBADREQ, "give per_operator_hour, devices_per_operator or "
                        "rollback_after_s");
    }
    rs->ignored = srv_json_ignored(rq, body, budget_fields);
    if ((err = models_budget_get(&b)) != SRV_OK)
        goto out;
    if ((v = json_object_get(body, "per_operator_hour")) && !json_is_number(v))
        goto bad;
    if (v)
        b.per_operator_hour = json_number_value(v);
    if ((v = json_object_get(body, "devices_per_operator")) && !json_is_integer(v))
        goto bad;
    if (v)
        b.devices_per_operator = json_integer_value(v) > 1000000 ? -1 : (int)json_integer_value(v);
    if ((v = json_object_get(body, "rollback_after_s")) && !json_is_number(v))
        goto bad;
    if (v)
        b.rollback_after_s = json_number_value(v);
    auth_actor(rq, by, sizeof by);
    err = models_budget_set(b.per_operator_hour, b.devices_per_operator, b.rollback_after_s, by);
    if (err == SRV_EBADREQ)
        goto bad;
    if (err == SRV_OK && (err = models_budget_get(&b)) == SRV_OK) {
        srv_log("info", "deploy: alarm budget %.3g per operator-hour, %d devices per operator, "
                "rollback after %.0f s, by %s", b.per_operator_hour, b.devices_per_operator,
                b.rollback_after_s, by);
        err = srv_respond_json_take(rs, 200, budget_json(&b));
    }
    goto out;
bad:
    err = srv_fail(rs, SRV_EBADREQ, "per_operator_hour (0..1e6], devices_per_operator 0..1000000 "
                   "and rollback_after_s (0..1e7] must be numbers in range");
out:
    json_decref(body);
    return err;
}

static json_t *rollback_json(const PGresult *r, int i)
{
    char t[40];

    return json_pack("{s:I,s:s,s:I,s:I,s:f,s:f,s:f,s:I,s:I,s:s,s:s}",
                     "id", (json_int_t)db_int64(r, i, "id"),
                     "device_id", db_text_or(r, i, "device_id", ""),
                     "deployment_id", (json_int_t)db_int64(r, i, "deployment_id"),
                     "model_id", (json_int_t)db_int64(r, i, "model_id"),
                     "observed_per_hour", db_double(r, i, "observed_per_hour"),
                     "budget_per_hour", db_double(r, i, "budget_per_hour"),
                     "run_s", db_double(r, i, "run_s"),
                     "windows", (json_int_t)db_int64(r, i, "windows"),
                     "above_threshold", (json_int_t)db_int64(r, i, "above_threshold"),
                     "reason", db_text_or(r, i, "reason", ""),
                     "at", text_rfc3339(db_int64(r, i, "created_us"), t, sizeof t) == 0 ? t : "");
}

int deploy_rollbacks_json(const char *model_id, json_t **out)
{
    const char *vals[1] = { model_id };
    PGresult *r = NULL;
    json_t *items;
    int err, i;

    if ((err = db_exec_own(&wsql[W_LIST], vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    items = json_array();
    for (i = 0; items && i < PQntuples(r); i++)
        json_array_append_new(items, rollback_json(r, i));
    PQclear(r);
    *out = items;
    return items ? SRV_OK : SRV_ENOMEM;
}

int deploy_api_rollbacks(struct srv_request *rq, struct srv_response *rs)
{
    const char *m = rq->query ? rq->query(rq, "model_id") : NULL;
    json_t *items = NULL;
    int64_t id;
    int err;

    if (m && text_parse_id(m, &id) != 0)
        return srv_fail(rs, SRV_EBADREQ, "model_id must be a positive integer");
    if ((err = deploy_rollbacks_json(m, &items)) != SRV_OK)
        return err;
    return srv_respond_json_take(rs, 200, json_pack("{s:o}", "items", items));
}
