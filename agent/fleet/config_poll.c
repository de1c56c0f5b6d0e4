/* config_poll.c - signed config polls, model fetch and install, the model
 * part of heartbeats.  See config_poll.h. */
#include "agent/fleet/config_poll.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/model/agent_model.h"
#include "agent/net/net.h"
#include "agent/upload/upload.h"
#include "schema/model.h"

#define ANSWER_MAX (64u * 1024u)        /* a config answer is a few hundred bytes */
#define REASON_MAX 200
#define PINNED_KEY_FILE "model-signing.pub"

struct config_poll {
    struct config_poll_config cfg;
    struct agent_model_slot *slot;
    char key_path[1024];
    pthread_t th;
    int running;
    atomic_bool stop;               /* also cuts a request or a registration short */
    pthread_mutex_t mu;         /* guards the report fields and the wait */
    pthread_cond_t cv;
    /* report */
    uint32_t assigned;
    uint32_t refused_version;
    char refused_sha[65];
    char refused_reason[REASON_MAX];
    int64_t refused_at;
    int key_source;             /* 0 none, 1 configured or loaded, 2 pinned now */
    int key_mismatch_logged;
};

struct buf {
    uint8_t *p;
    size_t len, cap;
};

const char *config_poll_strerror(int err)
{
    switch (err) {
    case CONFIG_POLL_OK: return "ok";
    case CONFIG_POLL_EINVAL: return "invalid argument";
    case CONFIG_POLL_ENOMEM: return "out of memory";
    case CONFIG_POLL_ENET: return "no answer from the server";
    case CONFIG_POLL_EANSWER: return "malformed config answer";
    case CONFIG_POLL_EREFUSED: return "deployed model refused";
    case CONFIG_POLL_ETHREAD: return "cannot start the poll thread";
    }
    return "unknown error";
}

int config_poll_parse(const char *json, size_t len, struct config_poll_answer *out)
{
    json_t *j, *m, *k;
    struct config_poll_answer a;
    size_t bin = 0;
    int rc = CONFIG_POLL_EANSWER;

    if (!json || !out || len > ANSWER_MAX)
        return CONFIG_POLL_EANSWER;
    memset(&a, 0, sizeof a);
    j = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(j))
        goto out;
    m = json_object_get(j, "model");
    if (json_is_object(m)) {
        json_int_t id = json_integer_value(json_object_get(m, "id"));
        json_int_t bytes = json_integer_value(json_object_get(m, "bytes"));
        const char *sha = json_string_value(json_object_get(m, "sha256"));

        if (id < 1 || id > UINT32_MAX || bytes < 1 || bytes > MODEL_MAX_BLOB || !sha ||
            strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64)
            goto out;
        const char *mode = json_string_value(json_object_get(m, "mode"));

        if (mode && strcmp(mode, "shadow") != 0 && strcmp(mode, "active") != 0)
            goto out;
        a.mode = mode && strcmp(mode, "shadow") == 0 ? AGENT_MODEL_SHADOW : AGENT_MODEL_ACTIVE;
        a.has_model = 1;
        a.model_id = (uint32_t)id;
        a.bytes = (uint32_t)bytes;
        memcpy(a.sha256, sha, 65);
    } else if (m && !json_is_null(m)) {
        goto out;
    }
    k = json_object_get(j, "model_signing_key");
    if (json_is_string(k)) {
        if (sodium_base642bin(a.signing_key, sizeof a.signing_key, json_string_value(k),
                              strlen(json_string_value(k)), NULL, &bin, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 || bin != 32)
            goto out;
        a.has_key = 1;
    }
    *out = a;
    rc = 0;
out:
    json_decref(j);
    return rc;
}

int config_poll_sign(const uint8_t sk[64], const char *device_id, const char *path, int64_t ts,
                     char *dev, char *tsl, char *sig, size_t cap)
{
    char msg[512], b64[sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_ORIGINAL)];
    uint8_t s[64];
    int n;

    if (!sk || !device_id || !path || !dev || !tsl || !sig || cap < 160)
        return CONFIG_POLL_EINVAL;
    /* Same text as the server's deploy_sig_message(). */
    n = snprintf(msg, sizeof msg, "precursor-get-v1\n%s\n%" PRId64, path, ts);
    if (n < 0 || (size_t)n >= sizeof msg)
        return CONFIG_POLL_EINVAL;
    crypto_sign_detached(s, NULL, (const uint8_t *)msg, (unsigned long long)n, sk);
    sodium_bin2base64(b64, sizeof b64, s, sizeof s, sodium_base64_VARIANT_ORIGINAL);
    snprintf(dev, cap, "X-Precursor-Device: %s", device_id);
    snprintf(tsl, cap, "X-Precursor-Timestamp: %" PRId64, ts);
    snprintf(sig, cap, "X-Precursor-Signature: %s", b64);
    return 0;
}

/* Signed GET of path into b (bounded by b->cap; b->p holds one byte more).
 * HTTP status or 0.  A client of its own per request, as polls are minutes
 * apart and the server closes idle connections sooner: nothing is kept
 * between polls. */
static long signed_get(struct config_poll *p, const char *path, struct buf *b)
{
    char url[1200], dev[200], tsl[200], sig[200], hdrs[640];
    struct net_client *c;
    struct net_request rq = { .method = "GET", .url = url, .headers = hdrs,
                              .connect_timeout_s = 10, .timeout_s = 30, .abort = &p->stop };
    struct net_response rs = { .body = b->p, .body_cap = b->cap + 1 };
    int rc;

    b->len = 0;
    if (config_poll_sign(p->cfg.secret_key, p->cfg.device_id, path, (int64_t)time(NULL),
                         dev, tsl, sig, sizeof dev) != 0)
        return 0;
    snprintf(url, sizeof url, "%s%s", p->cfg.server_url, path);
    snprintf(hdrs, sizeof hdrs, "%s\r\n%s\r\n%s\r\n", dev, tsl, sig);
    if (net_client_new(p->cfg.ca_file, p->cfg.pin_sha256, &c) != 0)
        return 0;
    rc = net_request(c, &rq, &rs);
    net_client_free(c);
    if (rc != 0) {
        /* Over the bound is no answer either, as before. */
        if (!atomic_load(&p->stop))
            fprintf(stderr, "agent: config poll %s: %s\n", path, rs.err);
        return 0;
    }
    b->len = rs.body_len;
    return rs.status;
}

/* signed_get, and when the server answers that it does not know the device:
 * registered again as the uploader does it (or the hint logged), then the
 * same GET once more.  A device polling alone (nothing to upload, heartbeats
 * hours apart) is known again within a poll or two, not at the next
 * heartbeat. */
static long signed_get_known(struct config_poll *p, const char *path, struct buf *b)
{
    uint64_t gen = p->cfg.forgotten ? upload_forgotten_generation(p->cfg.forgotten) : 0;
    long st = signed_get(p, path, b);

    /* The client wrote a NUL after the body (net.h): b->p holds cap + 1. */
    if (st == 403 && p->cfg.forgotten &&
        upload_forgotten_answer(p->cfg.forgotten, st, (const char *)b->p, gen, &p->stop,
                                "agent: config poll", "polling again") == 1)
        st = signed_get(p, path, b);
    return st;
}

static void set_refused(struct config_poll *p, uint32_t version, const char *sha, const char *why)
{
    pthread_mutex_lock(&p->mu);
    p->refused_version = version;
    snprintf(p->refused_sha, sizeof p->refused_sha, "%s", sha);
    snprintf(p->refused_reason, sizeof p->refused_reason, "%s", why);
    p->refused_at = (int64_t)time(NULL);
    pthread_mutex_unlock(&p->mu);
    fprintf(stderr, "agent: deployed model %u refused (%s); keeping model %u\n", version, why,
            agent_model_slot_version(p->slot));
}

/* Write the server's key next to the device key, readable by anyone (it
 * is public), via a temporary file so a crash never leaves half a key. */
static int pin_key(struct config_poll *p, const uint8_t pk[32])
{
    char hex[65], tmp[1100];
    int fd, ok;

    sodium_bin2hex(hex, sizeof hex, pk, 32);
    hex[64] = '\n';
    snprintf(tmp, sizeof tmp, "%s.tmp", p->key_path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    ok = write(fd, hex, 65) == 65 && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, p->key_path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int config_poll_once(struct config_poll *p)
{
    struct config_poll_answer a;
    struct buf b = { 0 };
    char path[256], hex[65];
    uint8_t sha[32];
    long st;
    int rc;

    if (!p)
        return CONFIG_POLL_EINVAL;
    if (!(b.p = malloc(MODEL_MAX_BLOB + 1)))
        return CONFIG_POLL_ENOMEM;
    b.cap = ANSWER_MAX < MODEL_MAX_BLOB ? ANSWER_MAX : MODEL_MAX_BLOB;
    snprintf(path, sizeof path, "/api/v1/devices/%s/config", p->cfg.device_id);
    st = signed_get_known(p, path, &b);
    if (st != 200) {
        if (st)
            fprintf(stderr, "agent: config poll answered %ld: %.*s\n", st,
                    (int)(b.len < 200 ? b.len : 200), (const char *)b.p);
        rc = CONFIG_POLL_ENET;
        goto out;
    }
    if ((rc = config_poll_parse((const char *)b.p, b.len, &a)) != 0)
        goto out;
    if (a.has_key) {
        if (!agent_model_slot_has_key(p->slot)) {
            if (agent_model_slot_set_key(p->slot, a.signing_key) == 0 && pin_key(p, a.signing_key) == 0) {
                p->key_source = 2;
                fprintf(stderr, "agent: pinned the server's model-signing key in %s\n", p->key_path);
            }
        } else if (agent_model_slot_set_key(p->slot, a.signing_key) != 0 && !p->key_mismatch_logged) {
            /* Not replaced: a server that changes keys must be re-trusted by hand. */
            p->key_mismatch_logged = 1;
            fprintf(stderr, "agent: the server's model-signing key differs from the pinned one\n");
        }
    }
    pthread_mutex_lock(&p->mu);
    p->assigned = a.has_model ? a.model_id : 0;
    /* A refused blob is not fetched again until the deployment changes. */
    int running = a.has_model && a.model_id == agent_model_slot_version(p->slot);
    int skip = !a.has_model || running || strcmp(a.sha256, p->refused_sha) == 0;
    pthread_mutex_unlock(&p->mu);
    if (!a.has_model && agent_model_slot_version(p->slot) &&
        agent_model_slot_mode(p->slot) == AGENT_MODEL_ACTIVE) {
        /* Taken back, with nothing deployed before it: stop acting on it. */
        agent_model_slot_set_mode(p->slot, AGENT_MODEL_SHADOW);
        (void)agent_model_save_mode(p->cfg.key_dir, AGENT_MODEL_SHADOW);
        fprintf(stderr, "agent: model %u no longer deployed: shadow only\n",
                agent_model_slot_version(p->slot));
    }
    if (running && agent_model_slot_mode(p->slot) != a.mode) {
        /* Promotion (shadow -> active) or demotion: same model, new mode. */
        agent_model_slot_set_mode(p->slot, a.mode);
        if (agent_model_save_mode(p->cfg.key_dir, a.mode) != 0)
            fprintf(stderr, "agent: cannot keep the model's mode in %s: %s\n", p->cfg.key_dir,
                    strerror(errno));
        fprintf(stderr, "agent: model %u now %s\n", a.model_id, agent_model_mode_name(a.mode));
    }
    if (skip) {
        rc = 0;
        goto out;
    }
    b.cap = MODEL_MAX_BLOB;
    snprintf(path, sizeof path, "/api/v1/devices/%s/model", p->cfg.device_id);
    st = signed_get_known(p, path, &b);
    if (st != 200) {
        if (st)
            fprintf(stderr, "agent: model fetch answered %ld: %.*s\n", st,
                    (int)(b.len < 200 ? b.len : 200), (const char *)b.p);
        rc = CONFIG_POLL_ENET;
        goto out;
    }
    crypto_hash_sha256(sha, b.p, b.len);
    sodium_bin2hex(hex, sizeof hex, sha, sizeof sha);
    if (strcmp(hex, a.sha256) != 0) {
        /* Changed between the two requests: the next poll tries again. */
        rc = CONFIG_POLL_EANSWER;
        goto out;
    }
    rc = agent_model_slot_load(p->slot, b.p, b.len);
    if (rc != 0) {
        char why[REASON_MAX - 40], full[REASON_MAX];

        agent_model_slot_refusal(p->slot, why, sizeof why);
        snprintf(full, sizeof full, "%s: %s", model_errcode(rc), why);
        set_refused(p, a.model_id, a.sha256, rc == MODEL_ESIGNATURE && !agent_model_slot_has_key(p->slot)
                                             ? "no_trusted_key" : full);
        rc = CONFIG_POLL_EREFUSED;
        goto out;
    }
    agent_model_slot_set_mode(p->slot, a.mode);
    if (!agent_model_slot_healthy(p->slot)) {
        uint32_t bad = agent_model_slot_version(p->slot);

        if (agent_model_slot_rollback(p->slot) != 0)
            fprintf(stderr, "agent: model %u unhealthy and nothing to roll back to\n", bad);
        set_refused(p, a.model_id, a.sha256, "unhealthy");
        rc = CONFIG_POLL_EREFUSED;
        goto out;
    }
    if (agent_model_save(p->cfg.key_dir, b.p, b.len, a.mode) != 0)
        fprintf(stderr, "agent: cannot keep model %u in %s (a restart waits for the next poll): "
                "%s\n", a.model_id, p->cfg.key_dir, strerror(errno));
    fprintf(stderr, "agent: model %u installed, %s (previous %u)\n",
            agent_model_slot_version(p->slot), agent_model_mode_name(a.mode),
            agent_model_slot_previous(p->slot));
    rc = 0;
out:
    free(b.p);
    return rc;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int config_poll_new(const struct config_poll_config *cfg, struct agent_model_slot *slot,
                    struct config_poll **out)
{
    struct config_poll *p;
    uint8_t pk[32];

    if (!cfg || !slot || !out || !cfg->server_url || !cfg->device_id || !cfg->key_dir ||
        !(cfg->interval_s > 0))
        return CONFIG_POLL_EINVAL;
    if (sodium_init() < 0 || !(p = calloc(1, sizeof *p)))
        return CONFIG_POLL_ENOMEM;
    p->cfg = *cfg;
    p->cfg.server_url = dup_or_null(cfg->server_url);
    p->cfg.device_id = dup_or_null(cfg->device_id);
    p->cfg.key_dir = dup_or_null(cfg->key_dir);
    p->cfg.ca_file = dup_or_null(cfg->ca_file);
    p->cfg.pin_sha256 = dup_or_null(cfg->pin_sha256);
    p->slot = slot;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (!p->cfg.server_url || !p->cfg.device_id || !p->cfg.key_dir ||
        (cfg->ca_file && !p->cfg.ca_file) || (cfg->pin_sha256 && !p->cfg.pin_sha256)) {
        config_poll_free(p);
        return CONFIG_POLL_ENOMEM;
    }
    snprintf(p->key_path, sizeof p->key_path, "%s/%s", cfg->key_dir, PINNED_KEY_FILE);
    if (agent_model_slot_has_key(slot)) {
        p->key_source = 1;
    } else if (access(p->key_path, R_OK) == 0) {
        if (agent_model_read_key(p->key_path, pk) == 0 && agent_model_slot_set_key(slot, pk) == 0)
            p->key_source = 1;
        else
            fprintf(stderr, "agent: %s is not a key; it will not be replaced\n", p->key_path);
    }
    *out = p;
    return 0;
}

static void *poll_main(void *arg)
{
    struct config_poll *p = arg;
    struct timespec ts;

    while (!atomic_load(&p->stop)) {
        (void)config_poll_once(p);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)p->cfg.interval_s;
        ts.tv_nsec += (long)((p->cfg.interval_s - (double)(time_t)p->cfg.interval_s) * 1e9);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&p->mu);
        while (!atomic_load(&p->stop) &&
               pthread_cond_timedwait(&p->cv, &p->mu, &ts) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

int config_poll_start(struct config_poll *p)
{
    if (!p || p->running)
        return CONFIG_POLL_EINVAL;
    if (pthread_create(&p->th, NULL, poll_main, p) != 0)
        return CONFIG_POLL_ETHREAD;
    p->running = 1;
    return 0;
}

void config_poll_free(struct config_poll *p)
{
    if (!p)
        return;
    if (p->running) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->stop, true);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->th, NULL);
    }
    sodium_memzero(p->cfg.secret_key, sizeof p->cfg.secret_key);
    free((char *)p->cfg.server_url);
    free((char *)p->cfg.device_id);
    free((char *)p->cfg.key_dir);
    free((char *)p->cfg.ca_file);
    free((char *)p->cfg.pin_sha256);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* What the running model did since it was installed: the server compares
 * it with the rate its training predicted (shadow) and the budget (active). */
static json_t *models_json(struct agent_model_slot *slot, double hold_off_s)
{
    struct agent_model_stats st;
    json_t *a = json_array(), *h = json_array(), *o;

    agent_model_slot_stats(slot, &st);
    if (!a || !h || st.version == 0) {
        json_decref(h);
        return a;
    }
    for (int i = 0; i < AGENT_MODEL_HIST; i++)
        json_array_append_new(h, json_integer((json_int_t)st.hist[i]));
    o = json_pack("{s:I,s:s,s:f,s:I,s:I,s:f,s:f,s:o,s:{s:s,s:i,s:i,s:i,s:f}}",
                  "version", (json_int_t)st.version, "mode", agent_model_mode_name(st.mode),
                  "threshold", (double)st.threshold, "windows", (json_int_t)st.windows,
                  "above_threshold", (json_int_t)st.above, "max_score", (double)st.max_score,
                  "run_s", st.run_s, "hist", h, "features", "set",
                  featureset_name(st.features.id), "version", st.features.version, "window",
                  (int)st.features.window, "hop", (int)st.features.hop, "sample_rate",
                  (double)st.features.sample_rate);
    if (o) {
        json_object_set_new(o, "hold_off_s", json_real(hold_off_s));
        json_object_set_new(o, "alerts", json_integer((json_int_t)st.alerts));
        json_array_append_new(a, o);
    }
    return a;
}

void config_poll_heartbeat_fill(void *ctx, void *json_object)
{
    struct config_poll *p = ctx;
    json_t *o = json_object, *m, *ref = json_null();
    uint32_t v, prev;

    if (!p || !json_is_object(o))
        return;
    v = agent_model_slot_version(p->slot);
    prev = agent_model_slot_previous(p->slot);
    pthread_mutex_lock(&p->mu);
    if (p->refused_version)
        ref = json_pack("{s:I,s:s,s:s,s:I}", "version", (json_int_t)p->refused_version,
                        "sha256", p->refused_sha, "reason", p->refused_reason,
                        "at", (json_int_t)p->refused_at);
    m = json_pack("{s:o,s:o,s:o,s:o,s:s}",
                  "version", v ? json_integer(v) : json_null(),
                  "previous", prev ? json_integer(prev) : json_null(),
                  "assigned", p->assigned ? json_integer(p->assigned) : json_null(),
                  "refused", ref ? ref : json_null(),
                  "key", p->key_source == 2 ? "pinned_on_first_contact"
                         : p->key_source == 1 ? "configured_or_pinned" : "none");
    pthread_mutex_unlock(&p->mu);
    json_object_set_new(o, "model_version", v ? json_integer(v) : json_null());
    if (m) {
        json_object_set_new(m, "mode", json_string(agent_model_mode_name(agent_model_slot_mode(p->slot))));
        json_object_set_new(o, "model", m);
    }
    json_object_set_new(o, "models", models_json(p->slot, p->cfg.hold_off_s));
}
