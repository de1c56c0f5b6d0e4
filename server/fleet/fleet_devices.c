/* fleet_devices.c - what the fleet API says about a device beyond its
 * row: the fields an operator scans a fleet by (agent and model version,
 * spool depth, drops, upload errors, last heartbeat) lifted out of the raw
 * latest heartbeat, and one health word computed from them, so a dashboard
 * need not know the heartbeat's schema.  Pure: no database, no HTTP. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "server/fleet/fleet.h"

static json_t *int_or_null(const json_t *body, const char *key, json_int_t *out)
{
    const json_t *v = json_object_get(body, key);

    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return json_null();
    if (out)
        *out = json_integer_value(v);
    return json_integer(json_integer_value(v));
}

static json_t *str_or_null(const json_t *body, const char *key)
{
    const char *s = json_string_value(json_object_get(body, key));

    /* The agent's own words, echoed: bound what a device can make us echo. */
    if (!s || strlen(s) > FLEET_VERSION_MAX)
        return json_null();
    return json_string(s);
}

/* model_version: the running model's version, an integer once the agent
 * polls its config (agent/fleet/config_poll.c), or the text it was started
 * with; either as sent. */
static json_t *model_version_or_null(const json_t *body)
{
    const json_t *v = json_object_get(body, "model_version");

    return json_is_integer(v) ? json_integer(json_integer_value(v)) : str_or_null(body, "model_version");
}

const char *fleet_device_health_word(const char *status, int have_heartbeat, int64_t age_s,
                                     int64_t spool_files, int64_t dropped, int64_t dead)
{
    if (!status || strcmp(status, "active") != 0)
        return status && strcmp(status, "pending") == 0 ? "pending" : "revoked";
    if (!have_heartbeat)
        return "unknown";
    if (age_s > FLEET_HEARTBEAT_STALE_S)
        return "stale";
    if (dropped > 0 || dead > 0 || spool_files > FLEET_SPOOL_BACKLOG)
        return "degraded";
    return "ok";
}

json_t *fleet_device_health(const char *status, const json_t *hb_body, int64_t hb_received_us,
                            int64_t now_us)
{
    json_int_t files = 0, dropped = 0, dead = 0;
    int have = json_is_object(hb_body) && hb_received_us > 0;
    int64_t age_s = have ? (now_us - hb_received_us) / 1000000 : -1;
    const char *word;
    json_t *o;

    o = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
                  "agent_version", str_or_null(hb_body, "agent_version"),
                  "detector_version", str_or_null(hb_body, "detector_version"),
                  "model_version", model_version_or_null(hb_body),
                  "spool_depth", int_or_null(hb_body, "spool_files", &files),
                  "spool_bytes", int_or_null(hb_body, "spool_bytes", NULL),
                  "drops", int_or_null(hb_body, "dropped", &dropped),
                  "dead_lettered", int_or_null(hb_body, "dead_lettered", &dead),
                  "upload_errors", int_or_null(hb_body, "upload_errors", NULL),
                  /* how often the agent registered again with a server that
                   * had forgotten it (a rebuilt database): null before agents
                   * reported it */
                  "reregistrations", int_or_null(hb_body, "reregistrations", NULL));
    if (!o)
        return NULL;
    json_object_set_new(o, "heartbeat_age_s", have && age_s >= 0 ? json_integer(age_s)
                                                                  : json_null());
    word = fleet_device_health_word(status, have, age_s < 0 ? 0 : age_s, files, dropped, dead);
    /* The agent's last heartbeat says it stopped on purpose: that, rather
     * than "stale" an interval later, unless the device is not active. */
    if (have && json_is_true(json_object_get(hb_body, "stopping")) &&
        strcmp(word, "pending") != 0 && strcmp(word, "revoked") != 0)
        word = "stopped";
    json_object_set_new(o, "health", json_string(word));
    return o;
}
