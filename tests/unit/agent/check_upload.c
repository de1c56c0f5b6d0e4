/* check_upload.c - the uploader against a tiny scripted HTTP server
 * (libmicrohttpd, in this process): 201 deletes, 500 retries then
 * succeeds, 429 with Retry-After is waited out (measured), 409
 * dead-letters, heartbeats are signed over the exact body, a stop sends
 * a last one; and the back-off function itself, deterministic under a seeded RNG. */
#include <check.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "schema/devmsg.h"
#include "agent/spool/spool.h"
#include "agent/upload/upload.h"

Suite *upload_suite(void);

/* ---- scripted server ---- */

#define MAX_REQ 64
#define BODY_MAX 65536

struct reply {
    unsigned status;
    const char *retry_after;       /* NULL: no header */
    const char *body;              /* NULL: {} */
};

struct req {
    char path[64];
    uint8_t body[BODY_MAX];
    size_t len;
    int64_t t_ms;
    char device[80];
    char sig[128];
    char ts[32];
};

static struct {
    pthread_mutex_t mu;
    struct reply script[16];
    size_t nscript, next;          /* past the script: 201 */
    struct req reqs[MAX_REQ];
    size_t nreq;
    struct MHD_Daemon *d;
    uint16_t port;
} srv = { .mu = PTHREAD_MUTEX_INITIALIZER };

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct conn {
    uint8_t *buf;
    size_t len;
};

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version,
                               const char *data, size_t *data_size, void **ctx)
{
    struct conn *cn = *ctx;
    struct MHD_Response *r;
    struct reply rep = { 201, NULL, NULL };
    enum MHD_Result ret;
    const char *h;

    if (!cn) {
        cn = calloc(1, sizeof *cn);
        cn->buf = malloc(BODY_MAX);
        *ctx = cn;
        return MHD_YES;
    }
    if (*data_size) {
        size_t k = *data_size;
        if (cn->len + k > BODY_MAX)
            k = BODY_MAX - cn->len;
        memcpy(cn->buf + cn->len, data, k);
        cn->len += k;
        *data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&srv.mu);
    if (strcmp(url, "/api/v1/snapshots") == 0 && srv.next < srv.nscript)
        rep = srv.script[srv.next++];
    if (strcmp(url, "/api/v1/heartbeats") == 0)
        rep.status = 204;
    if (srv.nreq < MAX_REQ) {
        struct req *q = &srv.reqs[srv.nreq++];
        snprintf(q->path, sizeof q->path, "%s", url);
        memcpy(q->body, cn->buf, cn->len);
        q->len = cn->len;
        q->t_ms = now_ms();
        h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Precursor-Device");
        snprintf(q->device, sizeof q->device, "%s", h ? h : "");
        h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Precursor-Signature");
        snprintf(q->sig, sizeof q->sig, "%s", h ? h : "");
        h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Precursor-Timestamp");
        snprintf(q->ts, sizeof q->ts, "%s", h ? h : "");
    }
    pthread_mutex_unlock(&srv.mu);
    r = rep.body ? MHD_create_response_from_buffer(strlen(rep.body), (void *)rep.body,
                                                   MHD_RESPMEM_PERSISTENT)
                 : MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
    if (rep.retry_after)
        MHD_add_response_header(r, "Retry-After", rep.retry_after);
    ret = MHD_queue_response(c, rep.status, r);
    MHD_destroy_response(r);
    return ret;
}

static void done_cb(void *cls, struct MHD_Connection *c, void **ctx,
                    enum MHD_RequestTerminationCode toe)
{
    struct conn *cn = *ctx;
    if (cn) {
        free(cn->buf);
        free(cn);
        *ctx = NULL;
    }
}

/* What the next start() gives as upload_config.reregister (NULL: none),
 * and how often it was called. */
static int (*rereg_fn)(void *ctx, const atomic_bool *abort, char *err, size_t errlen);
static atomic_int rereg_calls;

static char dir[512];
static struct spool *sp;
static struct upload_counters counters;
static uint8_t pk[32], sk[64];

static void setup(void)
{
    const char *t = getenv("TMPDIR");
    const union MHD_DaemonInfo *di;

    snprintf(dir, sizeof dir, "%s/upload-test-XXXXXX", t && *t ? t : P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    srv.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                             handler, NULL, MHD_OPTION_NOTIFY_COMPLETED, done_cb, NULL,
                             MHD_OPTION_END);
    ck_assert_ptr_nonnull(srv.d);
    di = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
    srv.port = di->port;
    ck_assert_int_ge(sodium_init(), 0);
    crypto_sign_keypair(pk, sk);
    rereg_fn = NULL;
    atomic_store(&rereg_calls, 0);
}

static void teardown(void)
{
    char cmd[600];
    if (srv.d)
        MHD_stop_daemon(srv.d);
    spool_close(sp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
}

static struct upload *start_with(uint32_t base_ms, uint32_t cap_ms, uint32_t hb_s,
                                 uint32_t timeout_s, uint64_t max_bps)
{
    struct upload_config cfg = { 0 };
    struct upload *u;
    char url[64];

    snprintf(url, sizeof url, "http://127.0.0.1:%u/", srv.port);
    cfg.server_url = url;
    cfg.device_id = "dev-1";
    memcpy(cfg.secret_key, sk, 64);
    cfg.agent_version = "0.7.0 (git abc1234)";
    cfg.detector_version = "det-1";
    cfg.backoff_base_ms = base_ms;
    cfg.backoff_cap_ms = cap_ms;
    cfg.heartbeat_s = hb_s;
    cfg.timeout_s = timeout_s;
    cfg.max_send_bytes_per_s = max_bps;
    cfg.rng_seed = 42;
    cfg.reregister = rereg_fn;
    cfg.key_dir = "/var/lib/precursor/keys";
    ck_assert_int_eq(upload_start(&cfg, sp, &counters, &u), 0);
    return u;
}

static struct upload *start(uint32_t base_ms, uint32_t cap_ms, uint32_t hb_s)
{
    return start_with(base_ms, cap_ms, hb_s, 10, 0);
}

static void put_n(int n, size_t len)
{
    for (int i = 0; i < n; i++) {
        uint64_t seq = spool_next_seq(sp);
        uint8_t *b = malloc(len);
        for (size_t k = 0; k < len; k++)
            b[k] = (uint8_t)(seq + k);
        ck_assert_int_eq(spool_put(sp, seq, 1, b, len), 0);
        free(b);
    }
}

/* Wait (at most 8 s) until the spool is empty of waiting files. */
static int drain(void)
{
    struct spool_stats st;
    for (int i = 0; i < 800; i++) {
        spool_get_stats(sp, &st);
        if (st.files == 0)
            return 0;
        usleep(10000);
    }
    return -1;
}

static size_t count_path(const char *path)
{
    size_t n = 0;
    pthread_mutex_lock(&srv.mu);
    for (size_t i = 0; i < srv.nreq; i++)
        n += strcmp(srv.reqs[i].path, path) == 0;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

/* ---- tests ---- */

START_TEST(test_classify)
{
    ck_assert_int_eq(upload_classify(201), UPLOAD_DONE);
    ck_assert_int_eq(upload_classify(200), UPLOAD_DONE);
    ck_assert_int_eq(upload_classify(409), UPLOAD_DEAD);
    ck_assert_int_eq(upload_classify(413), UPLOAD_DEAD);
    ck_assert_int_eq(upload_classify(400), UPLOAD_DEAD);
    ck_assert_int_eq(upload_classify(422), UPLOAD_DEAD);
    ck_assert_int_eq(upload_classify(401), UPLOAD_RETRY);
    ck_assert_int_eq(upload_classify(429), UPLOAD_RETRY);
    ck_assert_int_eq(upload_classify(503), UPLOAD_RETRY);
    ck_assert_int_eq(upload_classify(0), UPLOAD_RETRY);
    ck_assert_int_eq(upload_parse_retry_after("120"), 120);
    ck_assert_int_eq(upload_parse_retry_after(" 3\r\n"), 3);
    ck_assert_int_eq(upload_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), -1);
    ck_assert_int_eq(upload_parse_retry_after("9999999999"), -1);
    ck_assert_int_eq(upload_parse_retry_after(""), -1);
    ck_assert_int_eq(upload_parse_retry_after(NULL), -1);
}
END_TEST

START_TEST(test_backoff_grows_and_caps)
{
    uint64_t a = 7, b = 7;
    uint64_t prev_max = 0;

    /* Same seed, same sequence. */
    for (uint32_t i = 0; i < 50; i++)
        ck_assert_uint_eq(upload_backoff_ms(i, 1000, 300000, &a),
                          upload_backoff_ms(i, 1000, 300000, &b));
    /* Full jitter: within [0, min(cap, base*2^k)], and the ceiling is reached
     * (max of many draws near it), growing until the cap. */
    for (uint32_t k = 0; k < 64; k++) {
        uint64_t ceil_ms = k < 20 && (1000ull << k) < 300000 ? 1000ull << k : 300000;
        uint64_t mx = 0, mn = UINT64_MAX;
        for (int i = 0; i < 2000; i++) {
            uint64_t d = upload_backoff_ms(k, 1000, 300000, &a);
            ck_assert_uint_le(d, ceil_ms);
            mx = d > mx ? d : mx;
            mn = d < mn ? d : mn;
        }
        ck_assert_uint_ge(mx, ceil_ms * 95 / 100);
        ck_assert_uint_le(mn, ceil_ms / 20 + 1);
        ck_assert_uint_ge(mx, prev_max * 9 / 10);
        prev_max = mx;
    }
    ck_assert_uint_ge(prev_max, 285000);
}
END_TEST

START_TEST(test_201_deletes_in_order)
{
    struct upload *u;
    struct spool_stats st;

    put_n(3, 500);
    u = start(10, 100, 0);
    ck_assert_int_eq(drain(), 0);
    upload_stop(u);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.uploaded, 3);
    ck_assert_uint_eq(srv.nreq, 3);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_str_eq(srv.reqs[i].path, "/api/v1/snapshots");
        ck_assert_uint_eq(srv.reqs[i].len, 500);
        ck_assert_uint_eq(srv.reqs[i].body[0], (uint8_t)(i + 1));   /* oldest first */
    }
}
END_TEST

/* Under a bandwidth cap a snapshot larger than cap x timeout still goes:
 * the timeout covers the time its body takes at the cap (12 kB at 6 kB/s
 * is 2 s, past a 1 s timeout that alone would cut every try). */
START_TEST(test_capped_upload_outlasts_the_timeout)
{
    struct upload *u;
    struct spool_stats st;

    put_n(1, 12000);
    u = start_with(10, 100, 0, 1, 6000);
    ck_assert_int_eq(drain(), 0);
    upload_stop(u);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.uploaded, 1);
    ck_assert_uint_eq(srv.nreq, 1);
    ck_assert_uint_eq(srv.reqs[0].len, 12000);
}
END_TEST

START_TEST(test_500_retries_then_succeeds)
{
    struct upload *u;
    struct spool_stats st;

    srv.script[0] = (struct reply){ 500, NULL, NULL };
    srv.script[1] = (struct reply){ 503, NULL, NULL };
    srv.script[2] = (struct reply){ 201, NULL, NULL };
    srv.nscript = 3;
    put_n(1, 100);
    u = start(20, 100, 0);
    ck_assert_int_eq(drain(), 0);
    upload_stop(u);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.uploaded, 1);
    ck_assert_uint_eq(st.dead_lettered, 0);
    ck_assert_uint_eq(count_path("/api/v1/snapshots"), 3);
    ck_assert_uint_eq(atomic_load(&counters.upload_errors), 2);
    ck_assert_int_eq(memcmp(srv.reqs[0].body, srv.reqs[2].body, 100), 0);
}
END_TEST

/* A device installed with a token that does not pre-approve it is pending
 * until an admin approves it, and the server answers its uploads 403
 * device_not_active meanwhile.  They wait and go up once it is approved;
 * every one of them was dead-lettered, never to reach the server.  Another
 * 403 (a bad signature) is still final. */
START_TEST(test_403_pending_retries_until_approved)
{
    static const char pending[] =
        "{\"error\":{\"code\":\"device_not_active\",\"message\":\"device is pending approval\"}}";
    static const char badsig[] =
        "{\"error\":{\"code\":\"bad_signature\",\"message\":\"signature does not verify\"}}";
    struct upload *u;
    struct spool_stats st;

    srv.script[0] = (struct reply){ 403, NULL, pending };
    srv.script[1] = (struct reply){ 403, NULL, pending };
    srv.script[2] = (struct reply){ 201, NULL, NULL };
    srv.script[3] = (struct reply){ 403, NULL, badsig };
    srv.nscript = 4;
    put_n(2, 100);
    u = start(20, 100, 0);
    ck_assert_int_eq(drain(), 0);
    upload_stop(u);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.uploaded, 1);
    ck_assert_uint_eq(st.dead_lettered, 1);
    ck_assert_uint_eq(count_path("/api/v1/snapshots"), 4);
    ck_assert_int_eq(memcmp(srv.reqs[0].body, srv.reqs[2].body, 100), 0);
    ck_assert_int_eq(upload_classify_answer(403, pending), UPLOAD_RETRY);
    ck_assert_int_eq(upload_classify_answer(403, badsig), UPLOAD_DEAD);
    ck_assert_int_eq(upload_classify_answer(403, "{\"error\":{\"code\":\"unknown_device\","
                                                 "\"message\":\"device is not registered\"}}"),
                     UPLOAD_RETRY);
    ck_assert_int_eq(upload_classify_answer(403, NULL), UPLOAD_DEAD);
}
END_TEST

static const char forgot_body[] =
    "{\"error\":{\"code\":\"unknown_device\",\"message\":\"device is not registered\"}}";

/* Which answers lead to registering again: only a 403 whose code is
 * unknown_device (the server has no such device).  A device the server
 * knows but has not approved or has revoked, a bad signature, an
 * unauthorized request or a message that merely quotes the code do not:
 * those are an operator's decisions or other faults.  Tries are spaced by
 * the back-off; without a secret the hint comes once an hour. */
START_TEST(test_forgot_decide)
{
    static const char *const not_forgotten[] = {
        "{\"error\":{\"code\":\"device_not_active\",\"message\":\"device is pending approval\"}}",
        "{\"error\":{\"code\":\"device_not_active\",\"message\":\"device is revoked\"}}",
        "{\"error\":{\"code\":\"bad_signature\",\"message\":\"signature does not verify\"}}",
        "{\"error\":{\"code\":\"enrollment_refused\",\"message\":\"unknown_device\"}}",
        "{\"error\":{\"code\":\"forbidden\",\"message\":\"not allowed for this role\"}}",
        "{\"error\":\"unknown_device\"}",
        "{\"code\":\"unknown_device\"}",
        "\"unknown_device\"",
        "{\"error\":{\"code\":\"unknown_device\"", /* cut short: not JSON */
        "",
        NULL,
    };
    struct upload_forgot st = { 0 };
    uint64_t rng = 42;
    int64_t t = 1000000;

    /* Every answer that is not unknown_device, with or without a secret. */
    for (size_t i = 0; i < sizeof not_forgotten / sizeof not_forgotten[0]; i++) {
        ck_assert_int_eq(upload_answer_forgotten(403, not_forgotten[i]), 0);
        ck_assert_int_eq(upload_forgot_decide(&st, 403, not_forgotten[i], 1, t, 1000, 300000,
                                              &rng), UPLOAD_FORGOT_NOTHING);
        ck_assert_int_eq(upload_forgot_decide(&st, 403, not_forgotten[i], 0, t, 1000, 300000,
                                              &rng), UPLOAD_FORGOT_NOTHING);
    }
    /* The code on another status is not the server's unknown_device. */
    for (long status = 0; status < 600; status++) {
        if (status == 403)
            continue;
        ck_assert_int_eq(upload_answer_forgotten(status, forgot_body), 0);
        ck_assert_int_eq(upload_forgot_decide(&st, status, forgot_body, 1, t, 1000, 300000,
                                              &rng), UPLOAD_FORGOT_NOTHING);
    }
    ck_assert_int_eq(st.attempt, 0);
    ck_assert_int_eq(upload_answer_forgotten(403, forgot_body), 1);
    ck_assert_int_eq(upload_answer_forgotten(403, "{\"error\":{\"message\":\"gone\","
                                                  "\"code\":\"unknown_device\"}}"), 1);
    /* Still retried, not dead-lettered, while it is mended. */
    ck_assert_int_eq(upload_classify_answer(403, forgot_body), UPLOAD_RETRY);

    /* With a secret: a try now, none before the back-off has passed (at
     * least its base), and the next back-off ceiling is higher. */
    for (int k = 0; k < 12; k++) {
        int64_t gap;

        ck_assert_int_eq(upload_forgot_decide(&st, 403, forgot_body, 1, t, 1000, 300000, &rng),
                         UPLOAD_FORGOT_REGISTER);
        ck_assert_int_eq(st.attempt, (uint32_t)k + 1);
        gap = st.next_ms - t;
        ck_assert_int_ge(gap, 1000);
        ck_assert_int_le(gap, k < 9 ? 1000LL << k : 300000);
        ck_assert_int_eq(upload_forgot_decide(&st, 403, forgot_body, 1, t, 1000, 300000, &rng),
                         UPLOAD_FORGOT_NOTHING);
        ck_assert_int_eq(upload_forgot_decide(&st, 403, forgot_body, 1, st.next_ms - 1, 1000,
                                              300000, &rng), UPLOAD_FORGOT_NOTHING);
        ck_assert_int_eq(st.attempt, (uint32_t)k + 1);
        t = st.next_ms;
    }
    /* A success resets the back-off (the uploader does this). */
    st.attempt = 0;
    ck_assert_int_eq(upload_forgot_decide(&st, 403, forgot_body, 1, t, 1000, 300000, &rng),
                     UPLOAD_FORGOT_REGISTER);
    ck_assert_int_le(st.next_ms - t, 1000);

    /* Without a secret: the hint, then nothing for an hour, then again. */
    memset(&st, 0, sizeof st);
    ck_assert_int_eq(upload_forgot_decide(&st, 403, forgot_body, 0, t, 1000, 300000, &rng),
                     UPLOAD_FORGOT_HINT);
    for (int64_t dt = 0; dt < UPLOAD_FORGOT_HINT_S * 1000LL; dt += 7919)
        ck_assert_int_eq(upload_forgot_decide(&st, 403, forgot_body, 0, t + dt, 1000, 300000,
                                              &rng), UPLOAD_FORGOT_NOTHING);
    ck_assert_int_eq(upload_forgot_decide(&st, 403, forgot_body, 0,
                                          t + UPLOAD_FORGOT_HINT_S * 1000LL, 1000, 300000,
                                          &rng), UPLOAD_FORGOT_HINT);
    ck_assert_int_eq(st.attempt, 0);
}
END_TEST

static int rereg_ok(void *ctx, const atomic_bool *abort, char *err, size_t errlen)
{
    (void)ctx; (void)abort; (void)err; (void)errlen;
    atomic_fetch_add(&rereg_calls, 1);
    return 0;
}
static int rereg_fail(void *ctx, const atomic_bool *abort, char *err, size_t errlen)
{
    (void)ctx; (void)abort;
    atomic_fetch_add(&rereg_calls, 1);
    snprintf(err, errlen, "registration refused (HTTP 403, enrollment secret wrong)");
    return -1;
}

/* The server forgot the device: the uploader registers again once and sends
 * the same snapshot at once, then the rest; nothing is dead-lettered, and
 * the heartbeat counts it. */
START_TEST(test_unknown_device_registers_again)
{
    struct upload *u;
    struct spool_stats st;
    char *hb;

    srv.script[0] = (struct reply){ 201, NULL, NULL };
    srv.script[1] = (struct reply){ 403, NULL, forgot_body };
    srv.nscript = 2;
    put_n(3, 100);
    rereg_fn = rereg_ok;
    u = start(5000, 10000, 0);      /* a back-off would outlast drain() */
    ck_assert_int_eq(drain(), 0);
    upload_stop(u);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.uploaded, 3);
    ck_assert_uint_eq(st.dead_lettered, 0);
    ck_assert_int_eq(atomic_load(&rereg_calls), 1);
    ck_assert_uint_eq(atomic_load(&counters.reregistrations), 1);
    ck_assert_uint_eq(count_path("/api/v1/snapshots"), 4);
    ck_assert_int_eq(memcmp(srv.reqs[1].body, srv.reqs[2].body, 100), 0);  /* seq 2 again */
    hb = upload_heartbeat_json(&(struct upload_config){ .device_id = "dev-1" }, sp, &counters,
                               1, 0);
    ck_assert_ptr_nonnull(strstr(hb, "\"reregistrations\":1"));
    free(hb);
}
END_TEST

/* A registration that fails is not repeated for every answer: at most one
 * per back-off, and the snapshots stay in the spool. */
START_TEST(test_unknown_device_tries_spaced)
{
    struct upload *u;
    struct spool_stats st;

    for (int i = 0; i < 16; i++)
        srv.script[i] = (struct reply){ 403, NULL, forgot_body };
    srv.nscript = 16;
    put_n(2, 100);
    rereg_fn = rereg_fail;
    u = start(200, 400, 0);
    usleep(1500000);
    upload_stop(u);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.files, 2);
    ck_assert_uint_eq(st.dead_lettered, 0);
    ck_assert_uint_eq(atomic_load(&counters.reregistrations), 0);
    /* 1.5 s, at least 200 ms apart: the first at once, at most 7 more. */
    ck_assert_int_ge(atomic_load(&rereg_calls), 2);
    ck_assert_int_le(atomic_load(&rereg_calls), 8);
    ck_assert_int_le((int)atomic_load(&rereg_calls), (int)count_path("/api/v1/snapshots"));
}
END_TEST

/* No enrollment secret: one line that says what to run, not one per
 * upload, and the snapshots wait. */
START_TEST(test_unknown_device_without_secret_says_what_to_run)
{
    struct upload *u;
    struct spool_stats st;
    char log[600], line[1024];
    int saved = dup(2), fd, hints = 0;
    FILE *f;

    for (int i = 0; i < 16; i++)
        srv.script[i] = (struct reply){ 403, NULL, forgot_body };
    srv.nscript = 16;
    snprintf(log, sizeof log, "%s/stderr.log", dir);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    dup2(fd, 2);
    close(fd);
    put_n(1, 100);
    rereg_fn = NULL;
    u = start(100, 200, 0);         /* 16 answers outlast 0.6 s */
    usleep(600000);
    upload_stop(u);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.files, 1);
    ck_assert_uint_eq(st.dead_lettered, 0);
    ck_assert_uint_ge(count_path("/api/v1/snapshots"), 3);
    f = fopen(log, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f) != NULL)
        if (strstr(line, "does not know device dev-1")) {
            hints++;
            ck_assert_msg(strstr(line, "precursor-agent enroll --server http://127.0.0.1:") &&
                          strstr(line, "--device-id dev-1 --key-dir /var/lib/precursor/keys "
                                       "--token-file PATH"), "hint '%s'", line);
        }
    fclose(f);
    ck_assert_int_eq(hints, 1);
}
END_TEST

/* The uploader and the config poll share one struct upload_forgotten; both
 * see the answer at once: one registration, not two racing (two markers
 * written, two counted), and both learn that it worked and send again. */
static atomic_int rereg_inside, rereg_most;

static int rereg_slow(void *ctx, const atomic_bool *abort, char *err, size_t errlen)
{
    int in = atomic_fetch_add(&rereg_inside, 1) + 1;

    (void)ctx; (void)abort; (void)err; (void)errlen;
    if (in > atomic_load(&rereg_most))
        atomic_store(&rereg_most, in);
    atomic_fetch_add(&rereg_calls, 1);
    usleep(300000);
    atomic_fetch_sub(&rereg_inside, 1);
    return 0;
}

struct answer_arg {
    struct upload_forgotten *f;
    uint64_t gen;
    const char *who;
    int rc;
};

static void *answer_thread(void *arg)
{
    struct answer_arg *a = arg;

    a->rc = upload_forgotten_answer(a->f, 403, forgot_body, a->gen, NULL, a->who, "again");
    return NULL;
}

START_TEST(test_forgotten_shared_one_registration)
{
    struct upload_forgotten_config fc = { .server_url = "http://127.0.0.1:1", .device_id = "dev-1",
                                          .reregister = rereg_slow, .counters = &counters,
                                          .rng_seed = 42 };
    struct upload_forgotten *f = NULL;
    struct answer_arg a[2];
    pthread_t th[2];
    uint64_t gen;

    memset(&counters, 0, sizeof counters);
    atomic_store(&rereg_calls, 0);
    atomic_store(&rereg_inside, 0);
    atomic_store(&rereg_most, 0);
    ck_assert_int_eq(upload_forgotten_new(&fc, &f), 0);
    gen = upload_forgotten_generation(f);
    for (int i = 0; i < 2; i++) {
        a[i] = (struct answer_arg){ f, gen, i ? "agent: config poll" : "upload", -1 };
        ck_assert_int_eq(pthread_create(&th[i], NULL, answer_thread, &a[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(a[0].rc, 1);
    ck_assert_int_eq(a[1].rc, 1);
    ck_assert_int_eq(atomic_load(&rereg_calls), 1);
    ck_assert_int_eq(atomic_load(&rereg_most), 1);
    ck_assert_uint_eq(atomic_load(&counters.reregistrations), 1);
    ck_assert_uint_eq(upload_forgotten_generation(f), gen + 1);
    /* An answer to a request sent before that registration is stale: known
     * again, send once more, without another registration. */
    ck_assert_int_eq(upload_forgotten_answer(f, 403, forgot_body, gen, NULL, "upload", "again"), 1);
    ck_assert_int_eq(atomic_load(&rereg_calls), 1);
    /* Sent after it and still forgotten: a new try, but only after the
     * back-off (1 s base): not at once. */
    ck_assert_int_eq(upload_forgotten_answer(f, 403, forgot_body, gen + 1, NULL, "upload",
                                             "again"), 0);
    ck_assert_int_eq(atomic_load(&rereg_calls), 1);
    /* Other answers never register. */
    ck_assert_int_eq(upload_forgotten_answer(f, 500, forgot_body, gen + 1, NULL, "upload",
                                             "again"), 0);
    upload_forgotten_free(f);
}
END_TEST

/* The server down: each attempt is one line that names the snapshot, the
 * URL, why, and when the next try is (it was the URL and the reason only,
 * the same as a heartbeat's). */
START_TEST(test_server_down_says_snapshot_and_retry)
{
    struct upload *u;
    struct spool_stats st;
    char log[600], line[512], want[128];
    int saved = dup(2), fd, lines = 0;
    FILE *f;

    MHD_stop_daemon(srv.d);         /* nothing listens on srv.port now */
    srv.d = NULL;
    snprintf(log, sizeof log, "%s/stderr.log", dir);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    dup2(fd, 2);
    close(fd);
    put_n(1, 100);
    u = start(20, 100, 0);
    usleep(400000);
    upload_stop(u);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.files, 1);             /* still waiting, nothing lost */
    ck_assert_uint_eq(st.dead_lettered, 0);
    snprintf(want, sizeof want, "upload: snapshot 1 not sent to http://127.0.0.1:%u/api/v1/"
             "snapshots: ", srv.port);
    f = fopen(log, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f) != NULL) {
        ck_assert_msg(strncmp(line, want, strlen(want)) == 0 && strstr(line, "; retry in "),
                      "log line '%s'", line);
        lines++;
    }
    fclose(f);
    ck_assert_int_ge(lines, 2);
}
END_TEST

START_TEST(test_429_retry_after_honoured)
{
    struct upload *u;
    int64_t gap;

    srv.script[0] = (struct reply){ 429, "1", NULL };
    srv.nscript = 1;
    put_n(1, 100);
    u = start(5, 20, 0);            /* back-off alone would retry within 20 ms */
    ck_assert_int_eq(drain(), 0);
    upload_stop(u);
    ck_assert_uint_eq(srv.nreq, 2);
    gap = srv.reqs[1].t_ms - srv.reqs[0].t_ms;
    fprintf(stderr, "429 Retry-After 1: retried after %" PRId64 " ms\n", gap);
    ck_assert_int_ge(gap, 950);
    ck_assert_int_le(gap, 2000);
}
END_TEST

START_TEST(test_409_dead_letters)
{
    struct upload *u;
    struct spool_stats st;
    char p[600];

    srv.script[0] = (struct reply){ 409, NULL, NULL };
    srv.nscript = 1;
    put_n(2, 100);
    u = start(10, 100, 0);
    ck_assert_int_eq(drain(), 0);
    upload_stop(u);
    spool_get_stats(sp, &st);
    ck_assert_uint_eq(st.dead_lettered, 1);
    ck_assert_uint_eq(st.uploaded, 1);
    ck_assert_uint_eq(count_path("/api/v1/snapshots"), 2);   /* never retried */
    snprintf(p, sizeof p, "%s/dead/%020d.snap.reason", dir, 1);
    ck_assert_int_eq(access(p, R_OK), 0);
}
END_TEST

START_TEST(test_heartbeat_signed)
{
    struct upload *u;
    struct req *hb = NULL;
    unsigned char sig[64];
    uint8_t *msg;
    size_t mlen;
    int64_t ts;
    size_t siglen = 0;
    json_t *j;
    json_error_t err;

    put_n(1, 10);
    u = start(10, 100, 1);
    /* The counter moves when the server's answer is in, after the request is
     * recorded: wait on the counter (and a third request, so the last one
     * recorded came after the upload), not on the requests alone. */
    for (int i = 0; i < 1500 && (atomic_load(&counters.heartbeats) < 2 ||
                                 count_path("/api/v1/heartbeats") < 3); i++)
        usleep(10000);
    upload_stop(u);
    for (size_t i = 0; i < srv.nreq; i++)
        if (strcmp(srv.reqs[i].path, "/api/v1/heartbeats") == 0)
            hb = &srv.reqs[i];
    ck_assert_ptr_nonnull(hb);
    ck_assert_uint_ge(atomic_load(&counters.heartbeats), 2);
    ck_assert_str_eq(hb->device, "dev-1");
    ck_assert_int_eq(sodium_base642bin(sig, sizeof sig, hb->sig, strlen(hb->sig), NULL,
                                       &siglen, NULL, sodium_base64_VARIANT_ORIGINAL), 0);
    ck_assert_uint_eq(siglen, 64);
    /* signed over device id, timestamp and body (schema/devmsg.h) */
    ck_assert_int_eq(devmsg_parse_ts(hb->ts, &ts), 0);
    ck_assert(devmsg_fresh(ts, (int64_t)time(NULL) * 1000));
    ck_assert_int_eq(devmsg_heartbeat("dev-1", ts, hb->body, hb->len, &msg, &mlen), 0);
    ck_assert_int_eq(crypto_sign_verify_detached(sig, msg, mlen, pk), 0);
    ck_assert_int_ne(crypto_sign_verify_detached(sig, hb->body, hb->len, pk), 0);
    msg[mlen - 1] ^= 1;
    ck_assert_int_ne(crypto_sign_verify_detached(sig, msg, mlen, pk), 0);
    free(msg);
    ck_assert_int_eq(devmsg_heartbeat("dev-2", ts, hb->body, hb->len, &msg, &mlen), 0);
    ck_assert_int_ne(crypto_sign_verify_detached(sig, msg, mlen, pk), 0);
    free(msg);
    j = json_loadb((const char *)hb->body, hb->len, 0, &err);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "uploaded")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "last_seq")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(j, "detector_version")), "det-1");
    /* which build runs, inside the signed body (verified above) */
    ck_assert_str_eq(json_string_value(json_object_get(j, "agent_version")), "0.7.0 (git abc1234)");
    ck_assert(json_is_array(json_object_get(j, "gaps")));
    json_decref(j);
}
END_TEST

/* A stop sends one last heartbeat, "stopping": true, holding the spool as
 * it is left (a waiting file the server refused), even though stop cuts
 * the uploads in flight short; and a stop with the server gone still ends
 * within the last heartbeat's bound. */
START_TEST(test_last_heartbeat_on_stop)
{
    struct upload *u;
    struct req *hb = NULL;
    json_t *j;
    json_error_t err;
    int64_t t0;

    srv.script[0] = (struct reply){ 503, "30", NULL };
    srv.nscript = 1;
    put_n(1, 10);
    u = start(10, 100, 3600);       /* one heartbeat at start, the next in an hour */
    for (int i = 0; i < 800 && count_path("/api/v1/snapshots") < 1; i++)
        usleep(10000);
    ck_assert_uint_eq(count_path("/api/v1/snapshots"), 1);
    upload_stop(u);
    ck_assert_uint_eq(count_path("/api/v1/heartbeats"), 2);
    for (size_t i = 0; i < srv.nreq; i++)
        if (strcmp(srv.reqs[i].path, "/api/v1/heartbeats") == 0)
            hb = &srv.reqs[i];
    j = json_loadb((const char *)hb->body, hb->len, 0, &err);
    ck_assert_ptr_nonnull(j);
    ck_assert(json_is_true(json_object_get(j, "stopping")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "spool_files")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "uploaded")), 0);
    json_decref(j);
    j = json_loadb((const char *)srv.reqs[0].body, srv.reqs[0].len, 0, &err);
    ck_assert_ptr_nonnull(j);
    ck_assert_ptr_null(json_object_get(j, "stopping"));     /* only the last says so */
    json_decref(j);

    /* No server at all: the stop still ends, bounded by the last heartbeat. */
    MHD_stop_daemon(srv.d);
    srv.d = NULL;
    u = start(10, 100, 3600);
    usleep(200 * 1000);
    t0 = now_ms();
    upload_stop(u);
    ck_assert_int_lt(now_ms() - t0, 5000);
}
END_TEST

Suite *upload_suite(void)
{
    Suite *s = suite_create("upload");
    TCase *pure = tcase_create("pure");
    TCase *tc = tcase_create("http");
    tcase_add_test(pure, test_classify);
    tcase_add_test(pure, test_backoff_grows_and_caps);
    tcase_add_test(pure, test_forgot_decide);
    tcase_add_test(pure, test_forgotten_shared_one_registration);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_201_deletes_in_order);
    tcase_add_test(tc, test_403_pending_retries_until_approved);
    tcase_add_test(tc, test_unknown_device_registers_again);
    tcase_add_test(tc, test_unknown_device_tries_spaced);
    tcase_add_test(tc, test_unknown_device_without_secret_says_what_to_run);
    tcase_add_test(tc, test_server_down_says_snapshot_and_retry);
    tcase_add_test(tc, test_capped_upload_outlasts_the_timeout);
    tcase_add_test(tc, test_500_retries_then_succeeds);
    tcase_add_test(tc, test_429_retry_after_honoured);
    tcase_add_test(tc, test_409_dead_letters);
    tcase_add_test(tc, test_heartbeat_signed);
    tcase_add_test(tc, test_last_heartbeat_on_stop);
    suite_add_tcase(s, pure);
    suite_add_tcase(s, tc);
    return s;
}
