/* check_fleet.c - the fleet side of ingest, in-process over real HTTP and a
 * real PostgreSQL with the group committer running: pipeline order (each
 * refusal names the first failing step), concurrent uploads committed in
 * fewer transactions than snapshots (repeats and conflicts inside one batch
 * answered exactly), the token bucket's 429 + Retry-After,
 * sequence far ahead, enrollment tokens, approve/revoke/rotate, the
 * /metrics text, and slow or lying clients.  Needs DATABASE_URL; skips without it. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "schema/wire.h"
#include "server/auth/auth.h"
#include "server/fleet/fleet.h"
#include "server/ingest/ingest.h"
#include "server/ingest/ingest_int.h"
#include "server/text/text.h"
#include "server/metrics/metrics.h"
#include "testsrv.h"

#define FX_THREADS 16   /* http pool threads, enough for the concurrent uploads */

struct fx {
    struct testsrv s;
    char admin[AUTH_TOKEN_LEN + 1];
};

/* One request into rep, freeing the body of its previous one first: a test
 * starts rep at { 0 }, reuses it and frees rep.body once at the end. */
static long http(const struct fx *f, const char *method, const char *path, const void *body,
                 size_t len, const char *auth, struct testsrv_reply *rep)
{
    free(rep->body);
    return testsrv_request(&f->s, method, path, body, len, auth, NULL, rep);
}

/* The server as `serve` runs it with flags, and an admin token. */
static void fx_start(struct fx *f, unsigned threads, const char *const *flags, int nflags)
{
    memset(f, 0, sizeof *f);
    testsrv_db();
    testsrv_add_token("admin", f->admin, sizeof f->admin);
    testsrv_serve(&f->s, NULL, threads, flags, nflags);
}

static void fx_stop(struct fx *f)
{
    testsrv_stop(&f->s);
}

/* A token through the API, then a device enrolled with it. */
static void enroll(struct fx *f, const char *dev, const uint8_t pk[32], int pre_approved,
                   long want)
{
    struct testsrv_reply rep = { 0 };
    char body[512], k64[64];
    json_t *j;
    const char *tok;

    snprintf(body, sizeof body, "{\"site\":\"s1\",\"tags\":[\"a\",\"b\"],\"pre_approved\":%s}",
             pre_approved ? "true" : "false");
    ck_assert_int_eq(http(f, "POST", "/api/v1/enrollment-tokens", body, strlen(body), f->admin,
                          &rep), 201);
    j = testsrv_json(&rep);
    tok = json_string_value(json_object_get(j, "token"));
    ck_assert_ptr_nonnull(tok);
    text_b64_encode(pk, 32, k64, sizeof k64);
    snprintf(body, sizeof body, "{\"token\":\"%s\",\"device_id\":\"%s\",\"public_key\":\"%s\"}",
             tok, dev, k64);
    json_decref(j);
    ck_assert_int_eq(http(f, "POST", "/api/v1/devices/enroll", body, strlen(body), NULL, &rep),
                     want);
    free(rep.body);
}

static uint8_t *envelope(const char *dev, uint64_t seq, float bias, const uint8_t *sk,
                         size_t *len)
{
    struct wire_meta m;

    testsrv_meta_2ch(&m, dev, seq, 1714564800123456LL, 256, "x", "y");
    return testsrv_envelope(&m, bias, sk, len);
}

/* Damage the last payload byte before the signature and sign again: the
 * header and frame header still parse, the signature verifies, only the
 * decompression fails. */
static void corrupt_and_resign(uint8_t *e, size_t len, const uint8_t *sk)
{
    e[len - WIRE_SIG_LEN - 1] ^= 0x5a;
    e[len - WIRE_SIG_LEN - 2] ^= 0xa5;
    crypto_sign_detached(e + len - WIRE_SIG_LEN, NULL, e, len - WIRE_SIG_LEN, sk);
}

START_TEST(test_pipeline_order)
{
    struct fx f;
    struct testsrv_reply rep = { 0 };
    uint8_t pk[32], sk[64], pk2[32], sk2[64], pk3[32], sk3[64];
    uint8_t *e;
    size_t l;

    TESTDB_REQUIRE();
    fx_start(&f, FX_THREADS, NULL, 0);
    crypto_sign_keypair(pk, sk);
    crypto_sign_keypair(pk2, sk2);
    /* Unknown device, wrong key: the lookup comes first. */
    e = envelope("ord-x", 1, 0, sk2, &l);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e, l, NULL, &rep), 403);
    ck_assert_str_eq(testsrv_error_code(&rep), "unknown_device");
    free(e);
    /* Pending device: refused before its signature is looked at.  (Its own
     * key: a key held by one device may not enroll another.) */
    crypto_sign_keypair(pk3, sk3);
    enroll(&f, "ord-p", pk3, 0, 201);
    e = envelope("ord-p", 1, 0, sk2, &l);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e, l, NULL, &rep), 403);
    ck_assert_str_eq(testsrv_error_code(&rep), "device_not_active");
    free(e);
    enroll(&f, "ord-a", pk, 1, 201);
    e = envelope("ord-a", 1, 0, sk, &l);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e, l, NULL, &rep), 201);
    free(e);
    /* Wrong key and a used seq: the signature comes before the seq check. */
    e = envelope("ord-a", 1, 9, sk2, &l);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e, l, NULL, &rep), 403);
    ck_assert_str_eq(testsrv_error_code(&rep), "bad_signature");
    free(e);
    /* Used seq and an undecodable frame: the seq check comes before
     * decompression (409, not 400). */
    e = envelope("ord-a", 1, 7, sk, &l);
    corrupt_and_resign(e, l, sk);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e, l, NULL, &rep), 409);
    free(e);
    /* The same damage on a new seq reaches decompression: 400, not stored. */
    e = envelope("ord-a", 2, 7, sk, &l);
    corrupt_and_resign(e, l, sk);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e, l, NULL, &rep), 400);
    ck_assert_str_eq(testsrv_error_code(&rep), "bad_frame");
    free(e);
    /* Far ahead of the last stored seq: 422. */
    e = envelope("ord-a", 1 + FLEET_SEQ_AHEAD_MAX + 5, 0, sk, &l);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e, l, NULL, &rep), 422);
    ck_assert_str_eq(testsrv_error_code(&rep), "seq_out_of_range");
    free(e);
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM snapshots"), 1);
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM snapshot_seqs"), 1);
    free(rep.body);
    fx_stop(&f);
}
END_TEST

struct up_arg {
    struct fx *f;
    uint8_t *e;
    size_t l;
    long status;
};

static void *upload_thread(void *p)
{
    struct up_arg *a = p;
    struct testsrv_reply rep = { 0 };

    a->status = http(a->f, "POST", "/api/v1/snapshots", a->e, a->l, NULL, &rep);
    free(rep.body);
    return NULL;
}

static unsigned long long metric(const char *text, const char *name)
{
    const char *p = text;
    size_t n = strlen(name);

    while ((p = strstr(p, name)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtoull(p + n + 1, NULL, 10);
        p += n;
    }
    return 0;
}

START_TEST(test_group_commit_and_idempotency)
{
    enum { N = 48 };
    static const char *const flags[] = { "--committers", "1", "--batch-max", "64" };
    struct fx f;
    struct up_arg a[N];
    pthread_t t[N];
    uint8_t pk[32], sk[64];
    struct testsrv_reply rep = { 0 };
    char *text;
    size_t tl;
    int i;

    TESTDB_REQUIRE();
    fx_start(&f, FX_THREADS, flags, 4);
    crypto_sign_keypair(pk, sk);
    enroll(&f, "gc-1", pk, 1, 201);
    /* The committer waits until all N are queued: on a slow or loaded
     * machine (ThreadSanitizer) the uploads could otherwise arrive one
     * batch apart each, and batching is what is under test. */
    ingest__commit_hold(1);
    for (i = 0; i < N; i++) {
        a[i].f = &f;
        a[i].e = envelope("gc-1", (uint64_t)i + 1, (float)i, sk, &a[i].l);
        ck_assert_int_eq(pthread_create(&t[i], NULL, upload_thread, &a[i]), 0);
    }
    for (i = 0; i < 3000 && ingest_queue_depth() < N; i++)
        usleep(10 * 1000);
    ck_assert_uint_eq(ingest_queue_depth(), N);
    ingest__commit_hold(0);
    for (i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(a[i].status, 201);
    }
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM snapshots WHERE device_id = 'gc-1'"), N);
    ck_assert_int_eq(testsrv_scalar("SELECT last_seq FROM devices WHERE id = 'gc-1'"), N);
    ck_assert_int_eq(metrics_render(16, &text, &tl), 0);
    ck_assert_uint_eq(metric(text, "precursor_ingest_commit_rows_total"), N);
    /* Batched: the N queued rows in one transaction. */
    ck_assert_uint_eq(metric(text, "precursor_ingest_commit_batches_total"), 1);
    free(text);
    /* Replays: 200, nothing new. */
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", a[i].e, a[i].l, NULL, &rep), 200);
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM snapshots WHERE device_id = 'gc-1'"), N);
    for (i = 0; i < N; i++)
        free(a[i].e);
    free(rep.body);
    fx_stop(&f);
}
END_TEST

/* Repeats and conflicts inside one committer batch: the batch statement
 * sends each (device, seq) once, so the exact answers must come from what
 * it stored.  Per (device, seq): A twice (same bytes), B once (other
 * bytes), all at once; exactly one 201, then 200 for the winner's bytes and
 * 409 for the others, and one row stored. */
START_TEST(test_batch_repeats_and_conflicts)
{
    enum { NDEV = 2, NSEQ = 12, N = NDEV * NSEQ * 3 };
    static const char *const flags[] = { "--committers", "1", "--batch-max", "256" };
    static const char *const devs[NDEV] = { "bd-1", "bd-2" };
    struct fx f;
    struct up_arg *a;
    pthread_t *t;
    uint8_t pk[NDEV][32], sk[NDEV][64];
    char sql[128];
    int d, q, i;

    TESTDB_REQUIRE();   /* before any allocation: a skip must not leak */
    a = calloc(N, sizeof *a);
    t = calloc(N, sizeof *t);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(t);
    fx_start(&f, FX_THREADS, flags, 4);
    for (d = 0; d < NDEV; d++) {
        crypto_sign_keypair(pk[d], sk[d]);
        enroll(&f, devs[d], pk[d], 1, 201);
    }
    for (i = 0; i < N; i++) {
        d = i / (NSEQ * 3);
        q = (i / 3) % NSEQ;
        a[i].f = &f;
        /* i % 3: 0 and 1 the same bytes (A), 2 other bytes (B). */
        a[i].e = envelope(devs[d], (uint64_t)q + 1, (float)q + (i % 3 == 2 ? 100.0f : 0.0f),
                          sk[d], &a[i].l);
    }
    for (i = 0; i < N; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, upload_thread, &a[i]), 0);
    for (i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (i = 0; i < N; i += 3) {
        long s0 = a[i].status, s1 = a[i + 1].status, s2 = a[i + 2].status;

        ck_assert_int_eq((s0 == 201) + (s1 == 201) + (s2 == 201), 1);
        if (s2 == 201) {
            ck_assert_int_eq(s0, 409);
            ck_assert_int_eq(s1, 409);
        } else {
            ck_assert_int_eq(s0 + s1, 201 + 200);
            ck_assert_int_eq(s2, 409);
        }
    }
    for (d = 0; d < NDEV; d++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM snapshots WHERE device_id = '%s'",
                 devs[d]);
        ck_assert_int_eq(testsrv_scalar(sql), NSEQ);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM snapshot_seqs WHERE device_id = '%s'",
                 devs[d]);
        ck_assert_int_eq(testsrv_scalar(sql), NSEQ);
        snprintf(sql, sizeof sql, "SELECT last_seq FROM devices WHERE id = '%s'", devs[d]);
        ck_assert_int_eq(testsrv_scalar(sql), NSEQ);
    }
    for (i = 0; i < N; i++)
        free(a[i].e);
    free(a);
    free(t);
    fx_stop(&f);
}
END_TEST

/* One pool thread, many concurrent uploads: a worker that waited for the
 * committer would serve them one at a time (one row per transaction); a
 * parked connection frees it, so the uploads share transactions.  The
 * committer is held until all N are queued, which the one worker can only
 * do if it parked each connection instead of waiting: without the hold, on
 * a loaded machine the uploads could arrive one commit apart each and the
 * batch count would say nothing (one CI run saw 32 of 32). */
START_TEST(test_parked_uploads_share_commits)
{
    enum { N = 32 };
    static const char *const flags[] = { "--committers", "1", "--batch-max", "256" };
    struct fx f;
    struct up_arg a[N];
    pthread_t t[N];
    uint8_t pk[32], sk[64];
    unsigned long long batches;
    char *text;
    size_t tl;
    int i;

    TESTDB_REQUIRE();
    fx_start(&f, 1, flags, 4);
    crypto_sign_keypair(pk, sk);
    enroll(&f, "park-1", pk, 1, 201);
    for (i = 0; i < N; i++) {
        a[i].f = &f;
        a[i].e = envelope("park-1", (uint64_t)i + 1, (float)i, sk, &a[i].l);
    }
    ingest__commit_hold(1);
    for (i = 0; i < N; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, upload_thread, &a[i]), 0);
    for (i = 0; i < 3000 && ingest_queue_depth() < N; i++)
        usleep(10 * 1000);
    ck_assert_uint_eq(ingest_queue_depth(), N);
    ingest__commit_hold(0);
    for (i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(a[i].status, 201);
    }
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM snapshots "
                                    "WHERE device_id = 'park-1'"), N);
    ck_assert_int_eq(testsrv_scalar("SELECT last_seq FROM devices WHERE id = 'park-1'"), N);
    ck_assert_int_eq(metrics_render(16, &text, &tl), 0);
    ck_assert_uint_eq(metric(text, "precursor_ingest_commit_rows_total"), N);
    batches = metric(text, "precursor_ingest_commit_batches_total");
    free(text);
    ck_assert_uint_lt(batches, N);
    for (i = 0; i < N; i++)
        free(a[i].e);
    fx_stop(&f);
}
END_TEST

START_TEST(test_rate_limit_retry_after)
{
    static const char *const flags[] = { "--device-rate", "0.5", "--device-burst", "2" };
    struct fx f;
    struct testsrv_reply rep = { 0 };
    uint8_t pk[32], sk[64];
    uint8_t *e;
    char retry_after[16];
    size_t l;
    int i;

    TESTDB_REQUIRE();
    fx_start(&f, FX_THREADS, flags, 4);
    crypto_sign_keypair(pk, sk);
    enroll(&f, "rl-1", pk, 1, 201);
    for (i = 1; i <= 3; i++) {
        e = envelope("rl-1", (uint64_t)i, 0, sk, &l);
        http(&f, "POST", "/api/v1/snapshots", e, l, NULL, &rep);
        free(e);
        if (i <= 2)
            ck_assert_int_eq(rep.status, 201);
    }
    ck_assert_int_eq(rep.status, 429);
    ck_assert_str_eq(testsrv_error_code(&rep), "rate_limited");
    ck_assert(testsrv_header(&rep, "Retry-After", retry_after, sizeof retry_after));
    ck_assert_int_ge(atoi(retry_after), 1);
    ck_assert_int_le(atoi(retry_after), 2);
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM snapshots WHERE device_id = 'rl-1'"), 2);
    free(rep.body);
    fx_stop(&f);
}
END_TEST

START_TEST(test_enroll_approve_revoke_rotate)
{
    struct fx f;
    struct testsrv_reply rep = { 0 };
    uint8_t pk[32], sk[64], pk2[32], sk2[64], sig[64];
    char msg[256], body[512], k64[64], s64[128];
    size_t ml, l;
    uint8_t *e;
    int64_t ts, ntok;

    TESTDB_REQUIRE();
    fx_start(&f, FX_THREADS, NULL, 0);
    crypto_sign_keypair(pk, sk);
    crypto_sign_keypair(pk2, sk2);
    enroll(&f, "life-1", pk, 0, 201);
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM devices WHERE id = 'life-1' AND status = "
                                    "'pending' AND site = 's1' AND tags = '{a,b}'"), 1);
    /* A misspelt field is refused, not dropped: "expires" (the CLI's word)
     * would otherwise make a token that never expires. */
    ntok = testsrv_scalar("SELECT count(*) FROM enrollment_tokens");
    snprintf(body, sizeof body, "{\"expires\":\"24h\"}");
    ck_assert_int_eq(http(&f, "POST", "/api/v1/enrollment-tokens", body, strlen(body), f.admin,
                          &rep), 400);
    ck_assert_msg(strstr(rep.body, "unknown field") && strstr(rep.body, "expires"), "%s", rep.body);
    snprintf(body, sizeof body, "{\"site\":7}");
    ck_assert_int_eq(http(&f, "POST", "/api/v1/enrollment-tokens", body, strlen(body), f.admin,
                          &rep), 400);
    /* A use limit on a reusable token would be dropped: refused. */
    snprintf(body, sizeof body, "{\"uses\":3,\"reusable\":true}");
    ck_assert_int_eq(http(&f, "POST", "/api/v1/enrollment-tokens", body, strlen(body), f.admin,
                          &rep), 400);
    ck_assert_msg(strstr(rep.body, "not both"), "%s", rep.body);
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM enrollment_tokens"), ntok);
    /* Only admins approve. */
    ck_assert_int_eq(http(&f, "POST", "/api/v1/devices/life-1/approve", NULL, 0, NULL, &rep), 401);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/devices/nope/approve", NULL, 0, f.admin, &rep), 404);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/devices/life-1/approve", NULL, 0, f.admin, &rep),
                     200);
    e = envelope("life-1", 1, 0, sk, &l);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e, l, NULL, &rep), 201);
    free(e);
    /* Rotation signed by a key that is not the current one: 403. */
    ts = fleet_now_ms();
    ck_assert_int_eq(fleet_rotate_message("life-1", pk2, ts, msg, sizeof msg, &ml), 0);
    crypto_sign_detached(sig, NULL, (const uint8_t *)msg, ml, sk2);
    text_b64_encode(pk2, 32, k64, sizeof k64);
    text_b64_encode(sig, 64, s64, sizeof s64);
    snprintf(body, sizeof body, "{\"public_key\":\"%s\",\"signature\":\"%s\","
             "\"timestamp\":%lld}", k64, s64, (long long)ts);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/devices/life-1/rotate", body, strlen(body), NULL,
                          &rep), 403);
    crypto_sign_detached(sig, NULL, (const uint8_t *)msg, ml, sk);
    text_b64_encode(sig, 64, s64, sizeof s64);
    snprintf(body, sizeof body, "{\"public_key\":\"%s\",\"signature\":\"%s\","
             "\"timestamp\":%lld}", k64, s64, (long long)ts);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/devices/life-1/rotate", body, strlen(body), NULL,
                          &rep), 200);
    /* Back to the retired key, signed by the current one: keys must be fresh. */
    ck_assert_int_eq(fleet_rotate_message("life-1", pk, ts + 1, msg, sizeof msg, &ml), 0);
    crypto_sign_detached(sig, NULL, (const uint8_t *)msg, ml, sk2);
    text_b64_encode(pk, 32, k64, sizeof k64);
    text_b64_encode(sig, 64, s64, sizeof s64);
    snprintf(body, sizeof body, "{\"public_key\":\"%s\",\"signature\":\"%s\","
             "\"timestamp\":%lld}", k64, s64, (long long)ts + 1);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/devices/life-1/rotate", body, strlen(body), NULL,
                          &rep), 409);
    /* The old key no longer uploads (the cache was invalidated); the new does. */
    e = envelope("life-1", 2, 0, sk, &l);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e, l, NULL, &rep), 403);
    ck_assert_str_eq(testsrv_error_code(&rep), "bad_signature");
    free(e);
    e = envelope("life-1", 2, 0, sk2, &l);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e, l, NULL, &rep), 201);
    free(e);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/devices/life-1/revoke", NULL, 0, f.admin, &rep),
                     200);
    e = envelope("life-1", 3, 0, sk2, &l);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e, l, NULL, &rep), 403);
    ck_assert_str_eq(testsrv_error_code(&rep), "device_not_active");
    free(e);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/devices/life-1/approve", NULL, 0, f.admin, &rep),
                     409);
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM snapshots "
                                    "WHERE device_id = 'life-1'"), 2);
    /* The same id with another key: 409. */
    enroll(&f, "life-1", pk, 1, 409);
    free(rep.body);
    fx_stop(&f);
}
END_TEST

/* One GET /install.sh into rep: token as a Bearer header (NULL: none), query
 * appended to the path as it is ("" none), extra header lines hdrs. */
static long install_get(const struct fx *f, const char *token, const char *query,
                        const char *const *hdrs, struct testsrv_reply *rep)
{
    char path[256];

    snprintf(path, sizeof path, "/install.sh%s", query);
    free(rep->body);
    return testsrv_request(&f->s, "GET", path, NULL, 0, token, hdrs, rep);
}

/* The reply's error message ({"error":{"message":...}}) into out. */
static void error_message(const struct testsrv_reply *rep, char *out, size_t cap)
{
    json_t *j = testsrv_json(rep);
    const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));

    snprintf(out, cap, "%s", m ? m : "");
    json_decref(j);
}

/* The enrollment token travels as Authorization: Bearer (out of access logs
 * and the shell's `ps` line) or, as before, ?token=: the same script either
 * way, the same refusals, and two different tokens are refused rather than
 * one of them guessed. */
START_TEST(test_install_sh_token_header)
{
    struct fx f;
    struct testsrv_reply rep = { 0 }, byq = { 0 };
    static const char *const basic[] = { "Authorization: Basic dXNlcjpwYXNz", NULL };
    char body[128], q[128], other[128], bad[72], m1[512], m2[512];
    json_t *j;
    const char *inst;
    char tok[72];
    int i;

    TESTDB_REQUIRE();
    fx_start(&f, FX_THREADS, NULL, 0);
    snprintf(body, sizeof body, "{\"uses\":5}");
    ck_assert_int_eq(http(&f, "POST", "/api/v1/enrollment-tokens", body, strlen(body), f.admin,
                          &rep), 201);
    j = testsrv_json(&rep);
    snprintf(tok, sizeof tok, "%s", json_string_value(json_object_get(j, "token")));
    /* The one-liner the API hands out carries the token in the header. */
    inst = json_string_value(json_object_get(j, "install"));
    ck_assert_ptr_nonnull(inst);
    snprintf(m1, sizeof m1, "-H 'Authorization: Bearer %s'", tok);
    ck_assert_msg(strstr(inst, m1) && strstr(inst, "/install.sh' && sh precursor-install.sh") &&
                  !strstr(inst, "token="), "%s", inst);
    json_decref(j);

    snprintf(q, sizeof q, "?token=%s", tok);
    ck_assert_int_eq(install_get(&f, NULL, q, NULL, &byq), 200);
    ck_assert_ptr_nonnull(strstr(byq.body, tok));
    /* The header alone, the header with the same query, and the query
     * beside another scheme (a proxy's Basic, which is no token): the same
     * script byte for byte. */
    ck_assert_int_eq(install_get(&f, tok, "", NULL, &rep), 200);
    ck_assert_uint_eq(rep.len, byq.len);
    ck_assert_int_eq(memcmp(rep.body, byq.body, byq.len), 0);
    ck_assert_int_eq(install_get(&f, tok, q, NULL, &rep), 200);
    ck_assert_int_eq(memcmp(rep.body, byq.body, byq.len), 0);
    ck_assert_int_eq(install_get(&f, NULL, q, basic, &rep), 200);
    ck_assert_int_eq(memcmp(rep.body, byq.body, byq.len), 0);

    /* Two different tokens: 400 JSON saying so, whichever is the good one. */
    snprintf(other, sizeof other, "?token=pen_%064d", 0);
    ck_assert_int_eq(install_get(&f, tok, other, NULL, &rep), 400);
    ck_assert_str_eq(testsrv_error_code(&rep), "bad_request");
    error_message(&rep, m1, sizeof m1);
    ck_assert_msg(strstr(m1, "two different") && strstr(m1, "Authorization: Bearer") &&
                  strstr(m1, "?token="), "%s", m1);
    ck_assert_int_eq(install_get(&f, other + 7, q, NULL, &rep), 400);
    ck_assert_str_eq(testsrv_error_code(&rep), "bad_request");

    /* A bad token is refused the same way in the header as in the query:
     * malformed, unknown, a good one cut short. */
    for (i = 0; i < 3; i++) {
        if (i == 0)
            snprintf(bad, sizeof bad, "not-a-token");
        else if (i == 1)
            snprintf(bad, sizeof bad, "pen_%064d", 0);
        else
            snprintf(bad, sizeof bad, "%.*s", (int)strlen(tok) - 1, tok);
        snprintf(q, sizeof q, "?token=%s", bad);
        ck_assert_int_eq(install_get(&f, NULL, q, NULL, &rep), 403);
        ck_assert_str_eq(testsrv_error_code(&rep), "enrollment_refused");
        error_message(&rep, m1, sizeof m1);
        ck_assert_int_eq(install_get(&f, bad, "", NULL, &rep), 403);
        ck_assert_str_eq(testsrv_error_code(&rep), "enrollment_refused");
        error_message(&rep, m2, sizeof m2);
        ck_assert_str_eq(m1, m2);
    }

    /* Neither (a Basic header is none): the refusal names both ways. */
    ck_assert_int_eq(install_get(&f, NULL, "", NULL, &rep), 403);
    ck_assert_str_eq(testsrv_error_code(&rep), "enrollment_refused");
    error_message(&rep, m1, sizeof m1);
    ck_assert_msg(strstr(m1, "?token=") && strstr(m1, "Authorization: Bearer"), "%s", m1);
    ck_assert_int_eq(install_get(&f, NULL, "", basic, &rep), 403);
    ck_assert_int_eq(install_get(&f, "", "?token=", NULL, &rep), 403);
    ck_assert_str_eq(testsrv_error_code(&rep), "enrollment_refused");
    free(rep.body);
    free(byq.body);
    fx_stop(&f);
}
END_TEST

START_TEST(test_metrics_text)
{
    struct fx f;
    struct testsrv_reply rep = { 0 };
    FILE *p;
    int rc;

    TESTDB_REQUIRE();
    fx_start(&f, FX_THREADS, NULL, 0);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", "x", 1, NULL, &rep), 400);
    ck_assert_int_eq(http(&f, "GET", "/metrics", NULL, 0, NULL, &rep), 200);
    ck_assert_ptr_nonnull(strstr(rep.body, "precursor_ingest_rejects_total{reason=\"bad_envelope\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(rep.body, "precursor_ingest_latency_seconds_count 1\n"));
    ck_assert_ptr_nonnull(strstr(rep.body, "precursor_ingest_queue_depth 0\n"));
    ck_assert_ptr_nonnull(strstr(rep.body, "\nprecursor_db_connect_failures_total "));
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP promtool check: promtool not installed (Debian package prometheus)\n");
    } else {
        /* The text on promtool's stdin: no temporary file. */
        p = popen("promtool check metrics", "w");
        ck_assert_ptr_nonnull(p);
        fwrite(rep.body, 1, rep.len, p);
        rc = pclose(p);
        ck_assert_msg(rc == 0, "promtool check metrics failed (%d)", rc);
    }
    free(rep.body);
    fx_stop(&f);
}
END_TEST


/* Health words from the heartbeat fields, then the same through the API:
 * fields, not only the raw heartbeat. */
START_TEST(test_device_health_fields)
{
    struct fx f;
    struct testsrv_reply rep = { 0 };
    uint8_t pk[32], sk[64];
    json_t *j, *hb;

    ck_assert_str_eq(fleet_device_health_word("revoked", 1, 0, 0, 0, 0), "revoked");
    ck_assert_str_eq(fleet_device_health_word("pending", 0, 0, 0, 0, 0), "pending");
    ck_assert_str_eq(fleet_device_health_word("active", 0, 0, 0, 0, 0), "unknown");
    ck_assert_str_eq(fleet_device_health_word("active", 1, FLEET_HEARTBEAT_STALE_S + 1, 0, 0, 0),
                     "stale");
    ck_assert_str_eq(fleet_device_health_word("active", 1, 5, 0, 3, 0), "degraded");
    ck_assert_str_eq(fleet_device_health_word("active", 1, 5, FLEET_SPOOL_BACKLOG + 1, 0, 0),
                     "degraded");
    ck_assert_str_eq(fleet_device_health_word("active", 1, 5, 2, 0, 0), "ok");
    hb = json_pack("{s:s,s:s,s:I,s:I,s:I}", "agent_version", "1.2.3", "model_version", "m7",
                   "spool_files", (json_int_t)4, "dropped", (json_int_t)0, "upload_errors",
                   (json_int_t)2);
    j = fleet_device_health("active", hb, 1000000, 11000000);
    ck_assert_str_eq(json_string_value(json_object_get(j, "agent_version")), "1.2.3");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "spool_depth")), 4);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "heartbeat_age_s")), 10);
    ck_assert_str_eq(json_string_value(json_object_get(j, "health")), "ok");
    ck_assert_str_eq(json_string_value(json_object_get(j, "model_version")), "m7");
    ck_assert(json_is_null(json_object_get(j, "reregistrations")));   /* an older agent's */
    json_decref(j);
    json_object_set_new(hb, "reregistrations", json_integer(1));
    j = fleet_device_health("active", hb, 1000000, 11000000);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "reregistrations")), 1);
    json_decref(j);
    /* an agent that polls its config reports the running model's version
     * as a number: shown as such, not as null */
    json_object_set_new(hb, "model_version", json_integer(5));
    j = fleet_device_health("active", hb, 1000000, 11000000);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "model_version")), 5);
    json_decref(j);
    /* the agent's last heartbeat: stopped on purpose, not stale later */
    json_object_set_new(hb, "stopping", json_true());
    j = fleet_device_health("active", hb, 1000000, 1000000 + 1000000LL * (FLEET_HEARTBEAT_STALE_S + 5));
    ck_assert_str_eq(json_string_value(json_object_get(j, "health")), "stopped");
    json_decref(j);
    j = fleet_device_health("revoked", hb, 1000000, 11000000);
    ck_assert_str_eq(json_string_value(json_object_get(j, "health")), "revoked");
    json_decref(j);
    json_decref(hb);

    TESTDB_REQUIRE();
    fx_start(&f, FX_THREADS, NULL, 0);
    crypto_sign_keypair(pk, sk);
    enroll(&f, "health-1", pk, 1, 201);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/devices/health-1", NULL, 0, f.admin, &rep), 200);
    j = testsrv_json(&rep);
    ck_assert_str_eq(json_string_value(json_object_get(j, "health")), "unknown");
    json_decref(j);
    testsrv_sql("INSERT INTO heartbeats (device_id, body, received_at) VALUES ('health-1', "
                "'{\"agent_version\":\"0.9\",\"spool_files\":7,\"dropped\":2}', now())");
    ck_assert_int_eq(http(&f, "GET", "/api/v1/devices?limit=1000", NULL, 0, f.admin, &rep), 200);
    ck_assert_ptr_nonnull(strstr(rep.body, "\"health-1\""));
    ck_assert_int_eq(http(&f, "GET", "/api/v1/devices/health-1", NULL, 0, f.admin, &rep), 200);
    j = testsrv_json(&rep);
    ck_assert_str_eq(json_string_value(json_object_get(j, "agent_version")), "0.9");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "spool_depth")), 7);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "drops")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(j, "health")), "degraded");
    ck_assert_ptr_nonnull(json_object_get(json_object_get(j, "heartbeat"), "body"));
    json_decref(j);
    free(rep.body);
    fx_stop(&f);
}
END_TEST

/* A raw request on a socket: what curl would never send. */
static int raw_connect(const struct fx *f)
{
    struct sockaddr_in a;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = { 20, 0 };

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)http_port(f->s.hs));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(s, 0);
    ck_assert_int_eq(connect(s, (struct sockaddr *)&a, sizeof a), 0);
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return s;
}

/* Content-Length smaller than the bytes sent: the envelope is cut, fails
 * its parse or signature (400-class), and the rest is read as a next
 * request that is malformed; larger than sent and the client goes away:
 * nothing stored, and a well-formed upload is served meanwhile. */
START_TEST(test_body_lies_about_length)
{
    struct fx f;
    struct testsrv_reply rep = { 0 };
    uint8_t pk[32], sk[64], *e;
    char hdr[256], ans[2048];
    size_t l;
    ssize_t n;
    int s, s2;

    TESTDB_REQUIRE();
    fx_start(&f, FX_THREADS, NULL, 0);
    crypto_sign_keypair(pk, sk);
    enroll(&f, "liar-1", pk, 1, 201);
    e = envelope("liar-1", 1, 0, sk, &l);

    s = raw_connect(&f);
    snprintf(hdr, sizeof hdr, "POST /api/v1/snapshots HTTP/1.1\r\nHost: x\r\n"
             "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n", l - 100);
    ck_assert_int_eq(write(s, hdr, strlen(hdr)), (ssize_t)strlen(hdr));
    ck_assert_int_eq(write(s, e, l), (ssize_t)l);
    n = read(s, ans, sizeof ans - 1);
    ck_assert_int_gt(n, 12);
    ans[n] = '\0';
    ck_assert_msg(strncmp(ans, "HTTP/1.1 4", 10) == 0, "short length answered %.40s", ans);
    close(s);

    /* Longer than sent: the server waits for bytes that never come; the
     * client hangs up; meanwhile another connection is served. */
    s2 = raw_connect(&f);
    snprintf(hdr, sizeof hdr, "POST /api/v1/snapshots HTTP/1.1\r\nHost: x\r\n"
             "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n", l + 500);
    ck_assert_int_eq(write(s2, hdr, strlen(hdr)), (ssize_t)strlen(hdr));
    ck_assert_int_eq(write(s2, e, l), (ssize_t)l);
    free(e);
    e = envelope("liar-1", 2, 0, sk, &l);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e, l, NULL, &rep), 201);
    close(s2);
    free(e);
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM snapshot_seqs "
                                    "WHERE device_id = 'liar-1'"), 1);
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM snapshot_seqs WHERE device_id = 'liar-1' "
                                    "AND seq = 2"), 1);
    free(rep.body);
    fx_stop(&f);
}
END_TEST

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Has the server closed s?  Waits up to wait_ms for it to say so. */
static int peer_closed(int s, int wait_ms)
{
    struct pollfd p = { .fd = s, .events = POLLIN };
    char buf[512];

    if (poll(&p, 1, wait_ms) <= 0)
        return 0;
    return recv(s, buf, sizeof buf, MSG_DONTWAIT) <= 0;
}

/* --conn-timeout 2: an upload sent a byte a second is cut soon after 2 s
 * (libmicrohttpd's idle timeout alone would never fire: every byte is
 * activity), a connection that stops sending mid-body is closed by the idle
 * timeout, a normal upload is served while both hang, and neither slow
 * envelope is stored. */
START_TEST(test_slow_client_timeout)
{
    static const char *const flags[] = { "--conn-timeout", "2" };
    struct fx f;
    struct testsrv_reply rep = { 0 };
    uint8_t pk[32], sk[64], *e, *e2;
    char hdr[256];
    size_t l, l2, sent = 0;
    double t0, closed_at = 0;
    int s, s2, i, stalled_closed = 0;

    TESTDB_REQUIRE();
    fx_start(&f, FX_THREADS, flags, 2);
    ck_assert_uint_eq(f.s.cfg.conn_timeout_s, 2);
    crypto_sign_keypair(pk, sk);
    enroll(&f, "slow-1", pk, 1, 201);
    e = envelope("slow-1", 1, 0, sk, &l);
    e2 = envelope("slow-1", 3, 0, sk, &l2);
    snprintf(hdr, sizeof hdr, "POST /api/v1/snapshots HTTP/1.1\r\nHost: x\r\n"
             "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n", l);

    /* The stalled one: headers and half the body, then silence. */
    s2 = raw_connect(&f);
    ck_assert_int_eq(send(s2, hdr, strlen(hdr), MSG_NOSIGNAL), (ssize_t)strlen(hdr));
    ck_assert_int_eq(send(s2, e2, l2 / 2, MSG_NOSIGNAL), (ssize_t)(l2 / 2));

    s = raw_connect(&f);
    t0 = now_s();
    ck_assert_int_eq(send(s, hdr, strlen(hdr), MSG_NOSIGNAL), (ssize_t)strlen(hdr));
    for (i = 0; i < 30 && sent < l; i++) {
        if (send(s, e + sent, 1, MSG_NOSIGNAL) != 1 || peer_closed(s, 1000)) {
            closed_at = now_s() - t0;
            break;
        }
        sent++;
        if (i == 0) {
            /* Everyone else is served meanwhile. */
            free(e);
            e = envelope("slow-1", 2, 0, sk, &l);
            ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e, l, NULL, &rep), 201);
            free(e);
            e = envelope("slow-1", 1, 0, sk, &l);
        }
        if (!stalled_closed)
            stalled_closed = peer_closed(s2, 0);
    }
    ck_assert_msg(closed_at > 0, "slow upload still open after %zu bytes", sent);
    /* Cut at the first byte past 2 s; generous for a loaded sanitizer run. */
    ck_assert_msg(closed_at >= 1.9 && closed_at < 10.0, "slow upload cut after %.1f s",
                  closed_at);
    ck_assert_uint_lt(sent, 12);
    ck_assert_msg(stalled_closed || peer_closed(s2, 8000), "stalled upload never closed");
    close(s);
    close(s2);
    free(e);
    free(e2);
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM snapshot_seqs "
                                    "WHERE device_id = 'slow-1'"), 1);
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM snapshot_seqs WHERE device_id = 'slow-1' "
                                    "AND seq = 2"), 1);
    free(rep.body);
    fx_stop(&f);
}
END_TEST

Suite *fleet_suite(void);
Suite *fleet_suite(void)
{
    Suite *s = suite_create("fleet");
    TCase *tc = tcase_create("db");

    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pipeline_order);
    tcase_add_test(tc, test_group_commit_and_idempotency);
    tcase_add_test(tc, test_rate_limit_retry_after);
    tcase_add_test(tc, test_enroll_approve_revoke_rotate);
    tcase_add_test(tc, test_install_sh_token_header);
    tcase_add_test(tc, test_metrics_text);
    tcase_add_test(tc, test_device_health_fields);
    tcase_add_test(tc, test_body_lies_about_length);
    tcase_add_test(tc, test_slow_client_timeout);
    tcase_add_test(tc, test_batch_repeats_and_conflicts);
    tcase_add_test(tc, test_parked_uploads_share_commits);
    suite_add_tcase(s, tc);
    return s;
}
