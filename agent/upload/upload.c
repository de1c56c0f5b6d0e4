/* upload.c - the uploader thread: spool -> POST /api/v1/snapshots, plus
 * signed heartbeats to /api/v1/heartbeats.
 *
 * One HTTP client (agent/net), reused so the connection stays open.  The thread
 * sleeps on its own condition variable during a back-off (a new snapshot
 * does not cut a back-off short; upload_stop() does) and on the spool's
 * while the spool is empty.  Heartbeats go out on their schedule whatever
 * the snapshot path is doing. */
#include "agent/upload/upload.h"
#include "agent/net/net.h"
#include "agent/spool/spool.h"
#include "schema/devmsg.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define RESP_MAX 1024               /* response body kept for the dead-letter reason */
#define FINAL_HB_TIMEOUT_S 2        /* the last heartbeat, sent while the agent stops */

struct upload {
    struct upload_config cfg;       /* strings below are our copies */
    char *url_snap, *url_hb;
    struct spool *sp;
    struct upload_counters *c;

    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stop;
    int final;                      /* the last heartbeat: not aborted by stop, short timeouts */

    struct net_client *net;
    uint64_t rng;
    struct timespec started;

    char resp[RESP_MAX + 1];
    size_t resp_len;
    char net_err[160];          /* why the last request had no answer */
    long retry_after;               /* seconds from the last response, -1 if none */
    /* Heartbeat timestamps (schema/devmsg.h) follow the server's clock: the
     * server takes them only within DEVMSG_FRESH_S of its own, and a device
     * clock may be off by days.  skew_ms is the server's Date minus ours at
     * the last answer; hb_last_ms the last timestamp the server accepted,
     * which the next must exceed. */
    int64_t skew_ms;
    int64_t hb_last_ms;
    long hb_status;                 /* the last heartbeat's answer, 0 if none */
    /* Registration again with a server that forgot the device: the
     * agent's shared one (upload_config.forgotten) or our own. */
    struct upload_forgotten *forgotten;
    int own_forgotten;
    uint64_t sent_gen;              /* its generation when the last request went out */
};

enum upload_verdict upload_classify(long s)
{
    if (s >= 200 && s < 300)
        return UPLOAD_DONE;
    switch (s) {
    case 400: case 403: case 404: case 409: case 413: case 422:
        return UPLOAD_DEAD;
    default:
        /* 401 (device not yet registered / key being rotated), 408, 429,
         * 5xx, other codes and no response at all: the server may accept
         * it later, so keep it. */
        return UPLOAD_RETRY;
    }
}

enum upload_verdict upload_classify_answer(long s, const char *body)
{
    /* Both mend without the agent: an admin approves the device, or enrolls
     * it (again) on a server that does not know it yet (a rebuilt database,
     * a device moved from a lab server); the snapshots wait for that. */
    if (s == 403 && body != NULL && (strstr(body, "\"device_not_active\"") != NULL ||
                                     strstr(body, "\"unknown_device\"") != NULL))
        return UPLOAD_RETRY;
    return upload_classify(s);
}

int upload_answer_forgotten(long s, const char *body)
{
    json_t *j, *code;
    int yes;

    if (s != 403 || body == NULL)
        return 0;
    /* The code, parsed: a message that quotes "unknown_device" is not one. */
    j = json_loads(body, 0, NULL);
    code = json_object_get(json_object_get(j, "error"), "code");
    yes = json_is_string(code) && strcmp(json_string_value(code), "unknown_device") == 0;
    json_decref(j);
    return yes;
}

enum upload_forgot_action upload_forgot_decide(struct upload_forgot *st, long s,
                                               const char *body, int can_register,
                                               int64_t now_ms, uint32_t base_ms,
                                               uint32_t cap_ms, uint64_t *rng)
{
    uint64_t wait_ms;

    if (!upload_answer_forgotten(s, body) || now_ms < st->next_ms)
        return UPLOAD_FORGOT_NOTHING;
    if (!can_register) {
        st->next_ms = now_ms + (int64_t)UPLOAD_FORGOT_HINT_S * 1000;
        return UPLOAD_FORGOT_HINT;
    }
    /* The snapshots' own back-off, never under its base: a fleet that a
     * rebuilt server forgot comes back spread out, and a device whose
     * registration keeps failing asks ever more rarely, up to the cap. */
    wait_ms = upload_backoff_ms(st->attempt, base_ms, cap_ms, rng);
    if (wait_ms < base_ms)
        wait_ms = base_ms;
    st->next_ms = now_ms + (int64_t)wait_ms;
    if (st->attempt < 63)
        st->attempt++;
    return UPLOAD_FORGOT_REGISTER;
}

static uint64_t xorshift64s(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

uint64_t upload_backoff_ms(uint32_t attempt, uint32_t base_ms, uint32_t cap_ms,
                           uint64_t *rng_state)
{
    uint64_t ceil_ms = cap_ms;
    /* base * 2^attempt, saturating at the cap without overflow */
    if (attempt < 40 && ((uint64_t)base_ms << attempt) < cap_ms)
        ceil_ms = (uint64_t)base_ms << attempt;
    return xorshift64s(rng_state) % (ceil_ms + 1);
}

long upload_parse_retry_after(const char *v)
{
    long n = 0;
    int digits = 0;

    if (!v)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v >= '0' && *v <= '9'; v++) {
        if (++digits > 9)
            return -1;              /* beyond any sensible wait: treat as absent */
        n = n * 10 + (*v - '0');
    }
    while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
        v++;
    return digits > 0 && *v == '\0' ? n : -1;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a server that forgot the device (shared by the agent's requests) ---- */

struct upload_forgotten {
    char *server_url, *device_id, *key_dir;
    uint32_t base_ms, cap_ms;
    int (*reregister)(void *ctx, const atomic_bool *abort, char *err, size_t errlen);
    void *reregister_ctx;
    struct upload_counters *counters;
    pthread_mutex_t mu;             /* guards all below */
    pthread_cond_t cv;              /* a registration ended */
    struct upload_forgot st;
    uint64_t rng;
    uint64_t gen;                   /* registrations again that worked */
    int busy;                       /* a caller is registering now */
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int upload_forgotten_new(const struct upload_forgotten_config *cfg, struct upload_forgotten **out)
{
    struct upload_forgotten *f;
    pthread_condattr_t ca;
    struct timespec now;

    if (!cfg || !cfg->server_url || !cfg->device_id || !out)
        return UPLOAD_EINVAL;
    f = calloc(1, sizeof *f);
    if (!f)
        return UPLOAD_ENOMEM;
    f->server_url = strdup(cfg->server_url);
    f->device_id = strdup(cfg->device_id);
    f->key_dir = dup_or_null(cfg->key_dir);
    if (!f->server_url || !f->device_id || (cfg->key_dir && !f->key_dir)) {
        free(f->server_url);
        free(f->device_id);
        free(f->key_dir);
        free(f);
        return UPLOAD_ENOMEM;
    }
    f->base_ms = cfg->backoff_base_ms ? cfg->backoff_base_ms : 1000;
    f->cap_ms = cfg->backoff_cap_ms ? cfg->backoff_cap_ms : 300000;
    f->reregister = cfg->reregister;
    f->reregister_ctx = cfg->reregister_ctx;
    f->counters = cfg->counters;
    clock_gettime(CLOCK_MONOTONIC, &now);
    f->rng = cfg->rng_seed ? cfg->rng_seed
                           : (uint64_t)now.tv_nsec * 2654435761u ^ (uint64_t)time(NULL);
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = f;
    return UPLOAD_OK;
}

void upload_forgotten_free(struct upload_forgotten *f)
{
    if (!f)
        return;
    free(f->server_url);
    free(f->device_id);
    free(f->key_dir);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

uint64_t upload_forgotten_generation(struct upload_forgotten *f)
{
    uint64_t g;

    pthread_mutex_lock(&f->mu);
    g = f->gen;
    pthread_mutex_unlock(&f->mu);
    return g;
}

int upload_forgotten_answer(struct upload_forgotten *f, long status, const char *body,
                            uint64_t gen, const atomic_bool *abort, const char *who,
                            const char *next)
{
    char err[600];
    int64_t now, next_ms;
    int rc;

    /* Parsed once, outside the lock: most answers are not this one. */
    if (!f || !upload_answer_forgotten(status, body))
        return 0;
    pthread_mutex_lock(&f->mu);
    /* Another caller is registering: its outcome is this one's too, and a
     * second request meanwhile would race it (two markers written, two
     * counted).  Checked every 0.1 s for a stop. */
    while (f->busy && !(abort && atomic_load(abort))) {
        struct timespec ts;
        int64_t until = mono_ms() + 100;

        ts.tv_sec = until / 1000;
        ts.tv_nsec = (long)(until % 1000) * 1000000L;
        pthread_cond_timedwait(&f->cv, &f->mu, &ts);
    }
    if (f->busy || f->gen != gen) {
        /* Stopped while waiting; or registered again since this request
         * went out, which the answer predates. */
        rc = !f->busy;
        pthread_mutex_unlock(&f->mu);
        return rc;
    }
    now = mono_ms();
    switch (upload_forgot_decide(&f->st, status, body, f->reregister != NULL, now, f->base_ms,
                                 f->cap_ms, &f->rng)) {
    case UPLOAD_FORGOT_NOTHING:
        pthread_mutex_unlock(&f->mu);
        return 0;
    case UPLOAD_FORGOT_HINT:
        pthread_mutex_unlock(&f->mu);
        fprintf(stderr, "%s: server %s does not know device %s and the agent has no "
                "--enroll-secret-file to register again: enroll it there (precursor-agent "
                "enroll --server %s --device-id %s --key-dir %s --token-file PATH, with a token "
                "from precursor-server enroll create); snapshots wait in the spool (said again "
                "in %d s)\n", who, f->server_url, f->device_id, f->server_url, f->device_id,
                f->key_dir ? f->key_dir : "DIR", UPLOAD_FORGOT_HINT_S);
        return 0;
    case UPLOAD_FORGOT_REGISTER:
        break;
    }
    f->busy = 1;
    next_ms = f->st.next_ms;
    pthread_mutex_unlock(&f->mu);

    fprintf(stderr, "%s: server does not know device %s: registering again\n", who,
            f->device_id);
    err[0] = '\0';
    rc = f->reregister(f->reregister_ctx, abort, err, sizeof err);

    pthread_mutex_lock(&f->mu);
    f->busy = 0;
    if (rc == 0) {
        f->st.attempt = 0;
        f->gen++;
    }
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    if (rc != 0) {
        if (!(abort && atomic_load(abort)))
            fprintf(stderr, "%s: registering %s again failed: %s; next try in %" PRId64
                    " ms at the earliest\n", who, f->device_id, err[0] ? err : "no reason given",
                    next_ms - now);
        return 0;
    }
    if (f->counters)
        atomic_fetch_add(&f->counters->reregistrations, 1);
    fprintf(stderr, "%s: registered %s again with %s; %s%s%s\n", who, f->device_id,
            f->server_url, next, err[0] ? "; " : "", err);
    return 1;
}

static const char *gap_kind_name(int k)
{
    switch (k) {
    case SPOOL_GAP_DROPPED: return "dropped";
    case SPOOL_GAP_QUARANTINED: return "quarantined";
    case SPOOL_GAP_DEAD: return "dead_lettered";
    }
    return "unknown";
}

char *upload_heartbeat_json(const struct upload_config *cfg, struct spool *sp,
                            struct upload_counters *c, uint64_t uptime_s, int stopping)
{
    struct spool_stats st;
    struct spool_gap *gaps;
    size_t ng = 0;
    uint64_t total = 0;
    json_t *o, *ga;
    char *out = NULL;

    gaps = malloc(SPOOL_MAX_GAP_RANGES * sizeof *gaps);
    if (!gaps)
        return NULL;
    spool_get_stats(sp, &st);
    spool_gaps(sp, gaps, SPOOL_MAX_GAP_RANGES, &ng, &total);
    ga = json_array();
    for (size_t i = 0; i < ng; i++)
        json_array_append_new(ga, json_pack("{s:I,s:I,s:s}",
                                            "first", (json_int_t)gaps[i].first,
                                            "last", (json_int_t)gaps[i].last,
                                            "kind", gap_kind_name(gaps[i].kind)));
    o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}",
                  "device_id", cfg->device_id ? cfg->device_id : "",
                  "time", (json_int_t)time(NULL),
                  "uptime_s", (json_int_t)uptime_s,
                  "samples", (json_int_t)atomic_load(&c->samples),
                  "triggers", (json_int_t)atomic_load(&c->triggers),
                  "spooled", (json_int_t)st.spooled,
                  "uploaded", (json_int_t)st.uploaded,
                  "dropped", (json_int_t)st.dropped,
                  "quarantined", (json_int_t)st.quarantined,
                  "dead_lettered", (json_int_t)st.dead_lettered,
                  "upload_errors", (json_int_t)atomic_load(&c->upload_errors),
                  "reregistrations", (json_int_t)atomic_load(&c->reregistrations),
                  "spool_files", (json_int_t)st.files,
                  "spool_bytes", (json_int_t)st.bytes,
                  "last_seq", (json_int_t)(st.next_seq - 1),
                  "gaps_total", (json_int_t)total,
                  "gaps", ga);
    free(gaps);
    if (!o)
        return NULL;
    /* Signed with the rest of the body: a device cannot be made to claim
     * another build on the way.  Absent (not null) when unknown, as before. */
    if (cfg->agent_version)
        json_object_set_new(o, "agent_version", json_string(cfg->agent_version));
    json_object_set_new(o, "detector_version",
                        cfg->detector_version ? json_string(cfg->detector_version) : json_null());
    json_object_set_new(o, "model_version",
                        cfg->model_version ? json_string(cfg->model_version) : json_null());
    if (cfg->heartbeat_fill)
        cfg->heartbeat_fill(cfg->heartbeat_ctx, o);
    if (stopping)
        json_object_set_new(o, "stopping", json_true());
    out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return out;
}

/* ---- HTTP ---- */

static int64_t realtime_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* POST body (or len bytes of body_fd from where it stands, when body is
 * NULL) to url with the extra header lines hdrs (each ending CRLF);
 * returns the HTTP status, or 0 when there was none.  The start of the
 * answer's body is kept in u->resp, its Retry-After in u->retry_after, and
 * its Date (1 s resolution) sets the skew. */
static long post(struct upload *u, const char *url, const uint8_t *body, int body_fd,
                 size_t len, const char *hdrs)
{
    struct net_request rq = {
        .method = "POST", .url = url, .headers = hdrs, .body = body, .body_len = len,
        .body_fd = body_fd, .body_offset = body_fd >= 0 ? (long long)lseek(body_fd, 0, SEEK_CUR) : 0,
        .connect_timeout_s = 10, .timeout_s = u->cfg.timeout_s,
        .max_send_bps = u->cfg.max_send_bytes_per_s, .abort = &u->stop, .truncate = 1,
    };

    if (u->final) {
        rq.abort = NULL;
        rq.connect_timeout_s = FINAL_HB_TIMEOUT_S;
        rq.timeout_s = FINAL_HB_TIMEOUT_S;
    }
    else if (rq.max_send_bps > 0 && len / rq.max_send_bps > 0) {
        /* The timeout bounds the whole request: under a bandwidth cap it
         * is the time the body takes at the cap, plus the usual, or a
         * snapshot larger than cap x timeout could never go. */
        uint64_t send_s = len / rq.max_send_bps + 1, t = send_s + rq.timeout_s;

        rq.timeout_s = t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
    }
    struct net_response rs = { .body = (uint8_t *)u->resp, .body_cap = sizeof u->resp };
    int rc;

    u->retry_after = -1;
    u->sent_gen = upload_forgotten_generation(u->forgotten);
    rc = net_request(u->net, &rq, &rs);
    u->resp_len = rs.body_len;
    if (rc != 0) {
        snprintf(u->net_err, sizeof u->net_err, "%s", rs.err);
        /* A snapshot's line is the retry's, which also says when (run) */
        if (!atomic_load(&u->stop) && body_fd < 0)
            fprintf(stderr, "upload: %s: %s\n", url, rs.err);
        return 0;
    }
    u->retry_after = rs.retry_after;
    if (rs.date > 0)
        u->skew_ms = rs.date * 1000 + 500 - realtime_ms();
    return rs.status;
}

static int send_heartbeat(struct upload *u)
{
    struct timespec now;
    char *body;
    uint8_t *msg;
    size_t mlen;
    unsigned char sig[crypto_sign_BYTES];
    char b64[sodium_base64_ENCODED_LEN(crypto_sign_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    char hdrs[512];
    int64_t ts = realtime_ms() + u->skew_ms;
    long status;

    u->hb_status = 0;
    if (ts <= u->hb_last_ms)
        ts = u->hb_last_ms + 1;
    clock_gettime(CLOCK_MONOTONIC, &now);
    body = upload_heartbeat_json(&u->cfg, u->sp, u->c,
                                 (uint64_t)(now.tv_sec - u->started.tv_sec), u->final);
    if (!body)
        return UPLOAD_ENOMEM;
    /* Device id, timestamp and every byte of the body, so a captured
     * heartbeat cannot be replayed and fields added later are covered. */
    if (devmsg_heartbeat(u->cfg.device_id, ts, (const uint8_t *)body, strlen(body), &msg,
                         &mlen) != 0) {
        free(body);
        return UPLOAD_ENOMEM;
    }
    crypto_sign_detached(sig, NULL, msg, mlen, u->cfg.secret_key);
    free(msg);
    sodium_bin2base64(b64, sizeof b64, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
    /* The device id is a checked identifier (<= 64 bytes): the lines fit. */
    snprintf(hdrs, sizeof hdrs,
             "Content-Type: application/json\r\nX-Precursor-Device: %.64s\r\n"
             "X-Precursor-Signature: %s\r\nX-Precursor-Timestamp: %lld\r\n",
             u->cfg.device_id, b64, (long long)ts);
    status = post(u, u->url_hb, (const uint8_t *)body, -1, strlen(body), hdrs);
    u->hb_status = status;
    free(body);
    if (status >= 200 && status < 300) {
        u->hb_last_ms = ts;
        atomic_fetch_add(&u->c->heartbeats, 1);
        return 0;
    }
    if (status)
        fprintf(stderr, "upload: heartbeat answered %ld: %.200s\n", status, u->resp);
    return -1;
}

/* Sleep until the monotonic deadline, or until stopped. */
static void sleep_until(struct upload *u, int64_t deadline_ms)
{
    struct timespec ts;
    pthread_mutex_lock(&u->mu);
    while (!atomic_load(&u->stop) && mono_ms() < deadline_ms) {
        ts.tv_sec = deadline_ms / 1000;
        ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
        pthread_cond_timedwait(&u->cv, &u->mu, &ts);
    }
    pthread_mutex_unlock(&u->mu);
}

/* After an answer (status, body in u->resp) to a request sent at
 * generation u->sent_gen: when it says the server has forgotten the device,
 * register again or say what to run (upload_forgotten_answer).  1 when the
 * device is registered again: what waits may go at once. */
static int on_forgotten(struct upload *u, long status)
{
    return upload_forgotten_answer(u->forgotten, status, u->resp, u->sent_gen, &u->stop,
                                   "upload", "uploading what waits");
}

static void *run(void *arg)
{
    struct upload *u = arg;
    static const char hdrs[] = "Content-Type: application/octet-stream\r\n";
    uint32_t attempt = 0;
    int64_t next_hb = mono_ms(), retry_at = 0;

    while (!atomic_load(&u->stop)) {
        int64_t now = mono_ms();
        uint64_t seq;
        int fd;
        size_t len;
        long status;
        int rc;

        if (u->cfg.heartbeat_s && now >= next_hb) {
            send_heartbeat(u);
            next_hb = mono_ms() + (int64_t)u->cfg.heartbeat_s * 1000;
            if (on_forgotten(u, u->hb_status)) {
                /* Known again: the spool goes now, and so does a heartbeat
                 * that tells the server the device's state. */
                attempt = 0;
                retry_at = 0;
                next_hb = mono_ms();
            }
            continue;
        }
        if (now < retry_at) {
            int64_t until = retry_at;
            if (u->cfg.heartbeat_s && next_hb < until)
                until = next_hb;
            sleep_until(u, until);
            continue;
        }
        /* Sent from the spool file a piece at a time: the envelope is not
         * held in memory while it uploads. */
        rc = spool_take_fd(u->sp, &seq, &fd, &len);
        if (rc == SPOOL_ENOENT || rc != SPOOL_OK) {
            int64_t wait = 1000;
            if (rc != SPOOL_ENOENT)
                fprintf(stderr, "upload: spool: %s\n", spool_strerror(rc));
            if (u->cfg.heartbeat_s && next_hb - now < wait)
                wait = next_hb - now > 0 ? next_hb - now : 0;
            spool_wait(u->sp, (int)wait);
            continue;
        }
        status = post(u, u->url_snap, NULL, fd, len, hdrs);
        close(fd);
        switch (upload_classify_answer(status, u->resp)) {
        case UPLOAD_DONE:
            attempt = 0;
            rc = spool_done(u->sp, seq);
            if (rc != 0)
                fprintf(stderr, "upload: spool_done %" PRIu64 ": %s\n", seq, spool_strerror(rc));
            break;
        case UPLOAD_DEAD: {
            char reason[RESP_MAX + 64];
            snprintf(reason, sizeof reason, "http %ld: %s", status, u->resp);
            for (char *p = reason; *p; p++)
                if (*p == '\n' || *p == '\r')
                    *p = ' ';
            atomic_fetch_add(&u->c->upload_errors, 1);
            attempt = 0;
            spool_dead_letter(u->sp, seq, reason);
            break;
        }
        case UPLOAD_RETRY: {
            uint64_t delay;

            atomic_fetch_add(&u->c->upload_errors, 1);
            spool_release(u->sp, seq);
            if (on_forgotten(u, status)) {
                /* The same snapshot again, at once: the server stores a
                 * (device, seq) once whatever reaches it twice. */
                attempt = 0;
                retry_at = 0;
                if (u->cfg.heartbeat_s)
                    next_hb = mono_ms();
                break;
            }
            delay = upload_backoff_ms(attempt, u->cfg.backoff_base_ms, u->cfg.backoff_cap_ms,
                                      &u->rng);
            if (attempt < 63)
                attempt++;
            if ((status == 429 || status == 503) && u->retry_after >= 0) {
                long ra = u->retry_after;
                if ((uint32_t)ra > u->cfg.retry_after_cap_s)
                    ra = (long)u->cfg.retry_after_cap_s;
                delay = (uint64_t)ra * 1000;
            }
            if (status >= 400 && status < 500)     /* why: pending approval, unauthorized */
                fprintf(stderr, "upload: snapshot %" PRIu64 " answered %ld: %.200s; retry in %"
                        PRIu64 " ms\n", seq, status, u->resp, delay);
            else if (status)
                fprintf(stderr, "upload: snapshot %" PRIu64 " answered %ld, retry in %" PRIu64
                        " ms\n", seq, status, delay);
            else if (!atomic_load(&u->stop))
                fprintf(stderr, "upload: snapshot %" PRIu64 " not sent to %s: %s; retry in %" PRIu64
                        " ms\n", seq, u->url_snap, u->net_err, delay);
            retry_at = mono_ms() + (int64_t)delay;
            break;
        }
        }
    }
    /* The server learns the spool's state as it is left (files waiting,
     * gaps) and that the stop was deliberate, instead of seeing the device
     * go stale a heartbeat interval later.  Bounded: a stop waits at most
     * FINAL_HB_TIMEOUT_S for an unreachable server. */
    if (u->cfg.heartbeat_s) {
        u->final = 1;
        send_heartbeat(u);
    }
    return NULL;
}

int upload_pin_valid(const char *pin)
{
    return net_pin_valid(pin);
}

int upload_url_valid(const char *url)
{
    return net_url_valid(url);
}

static void free_upload(struct upload *u)
{
    net_client_free(u->net);
    if (u->own_forgotten)
        upload_forgotten_free(u->forgotten);
    free(u->url_snap);
    free(u->url_hb);
    free((char *)u->cfg.server_url);
    free((char *)u->cfg.device_id);
    free((char *)u->cfg.agent_version);
    free((char *)u->cfg.detector_version);
    free((char *)u->cfg.model_version);
    free((char *)u->cfg.ca_file);
    free((char *)u->cfg.pin_sha256);
    free((char *)u->cfg.key_dir);
    sodium_memzero(u->cfg.secret_key, sizeof u->cfg.secret_key);
    pthread_cond_destroy(&u->cv);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

int upload_start(const struct upload_config *cfg, struct spool *sp,
                 struct upload_counters *c, struct upload **out)
{
    struct upload *u;
    pthread_condattr_t ca;
    size_t ul;
    int rc;

    if (!cfg || !cfg->server_url || !cfg->device_id || !sp || !c || !out ||
        (cfg->pin_sha256 && !upload_pin_valid(cfg->pin_sha256)))
        return UPLOAD_EINVAL;
    if (sodium_init() < 0)
        return UPLOAD_ENET;
    u = calloc(1, sizeof *u);
    if (!u)
        return UPLOAD_ENOMEM;
    pthread_mutex_init(&u->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&u->cv, &ca);
    pthread_condattr_destroy(&ca);
    u->cfg = *cfg;
    u->cfg.server_url = dup_or_null(cfg->server_url);
    u->cfg.device_id = dup_or_null(cfg->device_id);
    u->cfg.agent_version = dup_or_null(cfg->agent_version);
    u->cfg.detector_version = dup_or_null(cfg->detector_version);
    u->cfg.model_version = dup_or_null(cfg->model_version);
    u->cfg.ca_file = dup_or_null(cfg->ca_file);
    u->cfg.pin_sha256 = dup_or_null(cfg->pin_sha256);
    u->cfg.key_dir = dup_or_null(cfg->key_dir);
    if (!u->cfg.backoff_base_ms)
        u->cfg.backoff_base_ms = 1000;
    if (!u->cfg.backoff_cap_ms)
        u->cfg.backoff_cap_ms = 300000;
    if (!u->cfg.retry_after_cap_s)
        u->cfg.retry_after_cap_s = 3600;
    if (!u->cfg.timeout_s)
        u->cfg.timeout_s = 60;
    u->sp = sp;
    u->c = c;
    clock_gettime(CLOCK_MONOTONIC, &u->started);
    u->rng = cfg->rng_seed ? cfg->rng_seed
                           : (uint64_t)u->started.tv_nsec * 2654435761u ^ (uint64_t)time(NULL);
    ul = strlen(cfg->server_url);
    while (ul > 0 && cfg->server_url[ul - 1] == '/')
        ul--;                       /* "http://h:p/" and "http://h:p" both work */
    u->url_snap = malloc(ul + 32);
    u->url_hb = malloc(ul + 32);
    rc = net_client_new(cfg->ca_file, cfg->pin_sha256, &u->net);
    if (!u->cfg.server_url || !u->cfg.device_id || !u->url_snap || !u->url_hb ||
        (cfg->agent_version && !u->cfg.agent_version) ||
        (cfg->detector_version && !u->cfg.detector_version) ||
        (cfg->model_version && !u->cfg.model_version) || (cfg->ca_file && !u->cfg.ca_file) ||
        (cfg->pin_sha256 && !u->cfg.pin_sha256) || (cfg->key_dir && !u->cfg.key_dir)) {
        free_upload(u);
        return UPLOAD_ENOMEM;
    }
    if (rc != 0) {
        free_upload(u);
        return rc == NET_ENOMEM ? UPLOAD_ENOMEM : UPLOAD_ENET;
    }
    u->forgotten = cfg->forgotten;
    if (!u->forgotten) {
        struct upload_forgotten_config fc = {
            .server_url = cfg->server_url, .device_id = cfg->device_id, .key_dir = cfg->key_dir,
            .backoff_base_ms = u->cfg.backoff_base_ms, .backoff_cap_ms = u->cfg.backoff_cap_ms,
            .rng_seed = u->rng, .reregister = cfg->reregister,
            .reregister_ctx = cfg->reregister_ctx, .counters = c,
        };

        if ((rc = upload_forgotten_new(&fc, &u->forgotten)) != 0) {
            free_upload(u);
            return rc;
        }
        u->own_forgotten = 1;
    }
    snprintf(u->url_snap, ul + 32, "%.*s/api/v1/snapshots", (int)ul, cfg->server_url);
    snprintf(u->url_hb, ul + 32, "%.*s/api/v1/heartbeats", (int)ul, cfg->server_url);
    if (pthread_create(&u->th, NULL, run, u) != 0) {
        free_upload(u);
        return UPLOAD_ETHREAD;
    }
    *out = u;
    return UPLOAD_OK;
}

void upload_stop(struct upload *u)
{
    if (!u)
        return;
    atomic_store(&u->stop, true);
    pthread_mutex_lock(&u->mu);
    pthread_cond_broadcast(&u->cv);
    pthread_mutex_unlock(&u->mu);
    spool_wake(u->sp);
    pthread_join(u->th, NULL);
    free_upload(u);
}

const char *upload_strerror(int err)
{
    switch (err) {
    case UPLOAD_OK: return "ok";
    case UPLOAD_EINVAL: return "invalid argument";
    case UPLOAD_ENOMEM: return "out of memory";
    case UPLOAD_ENET: return "the HTTP client could not be set up";
    case UPLOAD_ETHREAD: return "could not start the upload thread";
    }
    return "unknown upload error";
}
