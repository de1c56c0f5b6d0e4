/* check_ingest.c - the server in-process, over real HTTP (libcurl) and a
 * real PostgreSQL: register a device with a key made here, upload envelopes
 * made with wire_encode, and check every answer of the ingest contract and
 * the read API, including that refused uploads leave nothing stored.  Needs
 * DATABASE_URL (a fresh database per run); skips without it. */
#include <check.h>
#include <curl/curl.h>
#include <endian.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "agent/spool/spool.h"
#include "agent/upload/upload.h"
#include "schema/devmsg.h"
#include "schema/wire.h"
#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/http/http.h"
#include "server/ingest/ingest.h"
#include "server/routes.h"
#include "server/text/text.h"
#include "testsrv.h"

#define SECRET "test-enroll-secret"

struct fx {
    struct testsrv s;
    char token[AUTH_TOKEN_LEN + 1];
    uint8_t pk[WIRE_PK_LEN], sk[WIRE_SK_LEN];
};

/* One request; body may be NULL.  Returns the status, fills rep. */
static long http(struct fx *f, const char *method, const char *path, const void *body,
                 size_t len, const char *auth, struct testsrv_reply *rep)
{
    return testsrv_request(&f->s, method, path, body, len, auth, NULL, rep);
}

static void fx_start(struct fx *f)
{
    memset(f, 0, sizeof *f);
    testsrv_db();
    testsrv_add_token("ml", f->token, sizeof f->token);
    crypto_sign_keypair(f->pk, f->sk);
    testsrv_listen(&f->s, SECRET);
}

static void fx_stop(struct fx *f)
{
    testsrv_stop(&f->s);
}

static void make_meta(struct wire_meta *m, const char *dev, uint64_t seq)
{
    memset(m, 0, sizeof *m);
    snprintf(m->device_id, sizeof m->device_id, "%s", dev);
    m->seq = seq;
    m->trigger_time_us = 1714564800123456LL;
    m->sample_rate = 1000.0;
    m->sample_type = WIRE_F32;
    m->channel_count = 2;
    m->pre_samples = 100;
    m->post_samples = 156;
    snprintf(m->detector, sizeof m->detector, "threshold");
    m->score = 0.75f;
    snprintf(m->channels[0].name, sizeof m->channels[0].name, "vib_x");
    snprintf(m->channels[0].unit, sizeof m->channels[0].unit, "g");
    snprintf(m->channels[1].name, sizeof m->channels[1].name, "temp");
    snprintf(m->channels[1].unit, sizeof m->channels[1].unit, "degC");
}

static uint8_t *envelope(const char *dev, uint64_t seq, float bias, const uint8_t *sk,
                         size_t *len)
{
    struct wire_meta m;

    make_meta(&m, dev, seq);
    return testsrv_envelope(&m, bias, sk, len);
}

START_TEST(test_register)
{
    struct fx f;
    uint8_t pk2[WIRE_PK_LEN], sk2[WIRE_SK_LEN];
    struct testsrv_reply rep;
    json_t *j;
    char k64[64];

    TESTDB_REQUIRE();
    fx_start(&f);
    ck_assert_int_eq(testsrv_register_status(&f.s, "reg-1", f.pk, SECRET), 201);
    ck_assert_int_eq(testsrv_register_status(&f.s, "reg-1", f.pk, SECRET), 200);
    crypto_sign_keypair(pk2, sk2);
    ck_assert_int_eq(testsrv_register_status(&f.s, "reg-1", pk2, SECRET), 409);
    ck_assert_int_eq(testsrv_register_status(&f.s, "reg-2", pk2, "wrong"), 403);
    ck_assert_int_eq(testsrv_register_status(&f.s, "bad id", pk2, SECRET), 400);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/devices/register", "{", 1, NULL, &rep), 400);
    free(rep.body);
    /* The device view shows the key we registered, standard base64. */
    ck_assert_int_eq(http(&f, "GET", "/api/v1/devices/reg-1", NULL, 0, f.token, &rep), 200);
    j = testsrv_json(&rep);
    text_b64_encode(f.pk, WIRE_PK_LEN, k64, sizeof k64);
    ck_assert_str_eq(json_string_value(json_object_get(j, "public_key")), k64);
    json_decref(j);
    free(rep.body);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/devices/reg-2", NULL, 0, f.token, &rep), 404);
    free(rep.body);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/devices", NULL, 0, f.token, &rep), 200);
    j = testsrv_json(&rep);
    ck_assert_int_ge(json_array_size(json_object_get(j, "items")), 1);
    json_decref(j);
    free(rep.body);
    /* A demo device is listed only when asked, as the snapshots are. */
    ck_assert_int_eq(testsrv_register_status(&f.s, "demo-reg-3", pk2, SECRET), 201);
    testsrv_sql("UPDATE devices SET demo = true WHERE id = 'demo-reg-3'");
    {
        static const struct {
            const char *path, *ids;
        } cases[] = {
            { "/api/v1/devices", "reg-1" },
            { "/api/v1/devices?demo=exclude", "reg-1" },
            { "/api/v1/devices?demo=include", "demo-reg-3,reg-1" },
            { "/api/v1/devices?demo=1", "demo-reg-3,reg-1" },
            { "/api/v1/devices?demo=only", "demo-reg-3" },
        };
        size_t c, i;

        for (c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            char ids[64] = "";

            ck_assert_int_eq(http(&f, "GET", cases[c].path, NULL, 0, f.token, &rep), 200);
            j = testsrv_json(&rep);
            free(rep.body);
            for (i = 0; i < json_array_size(json_object_get(j, "items")); i++) {
                json_t *d = json_array_get(json_object_get(j, "items"), i);
                const char *id = json_string_value(json_object_get(d, "id"));

                snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%s", i ? "," : "", id);
                ck_assert(json_is_true(json_object_get(d, "demo")) == (strncmp(id, "demo-", 5) == 0));
            }
            ck_assert_msg(strcmp(ids, cases[c].ids) == 0, "%s: %s", cases[c].path, ids);
            json_decref(j);
        }
    }
    ck_assert_int_eq(http(&f, "GET", "/api/v1/devices?demo=maybe", NULL, 0, f.token, &rep), 400);
    ck_assert_ptr_nonnull(strstr(rep.body, "demo must be"));
    free(rep.body);
    fx_stop(&f);
}
END_TEST

START_TEST(test_ingest_contract)
{
    struct fx f;
    struct testsrv_reply rep;
    uint8_t *e1, *e2, *raw;
    size_t l1, l2;
    json_t *j, *item;
    int64_t id;
    char path[128];

    TESTDB_REQUIRE();
    fx_start(&f);
    ck_assert_int_eq(testsrv_register_status(&f.s, "ing-1", f.pk, SECRET), 201);
    e1 = envelope("ing-1", 1, 0.0f, f.sk, &l1);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e1, l1, NULL, &rep), 201);
    j = testsrv_json(&rep);
    id = json_integer_value(json_object_get(j, "id"));
    ck_assert_int_gt(id, 0);
    ck_assert_str_eq(json_string_value(json_object_get(j, "device_id")), "ing-1");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), 1);
    json_decref(j);
    free(rep.body);

    /* Same bytes again: 200 and the same id. */
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e1, l1, NULL, &rep), 200);
    j = testsrv_json(&rep);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "id")), id);
    json_decref(j);
    free(rep.body);

    /* Same seq, other bytes: 409. */
    e2 = envelope("ing-1", 1, 5.0f, f.sk, &l2);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e2, l2, NULL, &rep), 409);
    ck_assert_str_eq(testsrv_error_code(&rep), "conflict");
    free(rep.body);
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM snapshots WHERE device_id = 'ing-1'"), 1);

    /* Read API: auth required, list, one item, raw byte-identical. */
    ck_assert_int_eq(http(&f, "GET", "/api/v1/snapshots", NULL, 0, NULL, &rep), 401);
    free(rep.body);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/snapshots", NULL, 0,
                          "prc_0000000000000000000000000000000000000000000000000000000000000000",
                          &rep), 401);
    free(rep.body);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/snapshots?limit=1000", NULL, 0, f.token, &rep), 200);
    j = testsrv_json(&rep);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "items")), 1);
    item = json_array_get(json_object_get(j, "items"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(item, "id")), id);
    ck_assert_str_eq(json_string_value(json_object_get(item, "trigger_time")),
                     "2024-05-01T12:00:00.123456Z");
    ck_assert_int_eq(json_integer_value(json_object_get(item, "bytes")), (json_int_t)l1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
        json_object_get(item, "channels"), 1), "unit")), "degC");
    ck_assert_str_eq(json_string_value(json_object_get(item, "sample_type")), "float32");
    ck_assert(json_is_null(json_object_get(j, "next")));
    json_decref(j);
    free(rep.body);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/snapshots?limit=0", NULL, 0, f.token, &rep), 400);
    free(rep.body);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/snapshots?after=x", NULL, 0, f.token, &rep), 400);
    free(rep.body);
    /* The listings page by cursor: an offset, which would answer the first
     * page again and again, is refused with how to page. */
    ck_assert_int_eq(http(&f, "GET", "/api/v1/snapshots?limit=1&offset=1", NULL, 0, f.token, &rep), 400);
    ck_assert_ptr_nonnull(strstr(rep.body, "after="));
    free(rep.body);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/devices?offset=100", NULL, 0, f.token, &rep), 400);
    ck_assert_ptr_nonnull(strstr(rep.body, "after="));
    free(rep.body);
    /* No token: 401 naming the scheme it wants (RFC 7235), as JSON. */
    ck_assert_int_eq(http(&f, "GET", "/api/v1/snapshots", NULL, 0, NULL, &rep), 401);
    ck_assert_ptr_nonnull(strcasestr(rep.headers, "WWW-Authenticate: Bearer"));
    ck_assert_str_eq(testsrv_error_code(&rep), "unauthorized");
    free(rep.body);
    snprintf(path, sizeof path, "/api/v1/snapshots/%lld/raw", (long long)id);
    ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
    ck_assert_uint_eq(rep.len, l1);
    raw = (uint8_t *)rep.body;
    ck_assert_mem_eq(raw, e1, l1);
    free(rep.body);
    snprintf(path, sizeof path, "/api/v1/snapshots/%lld", (long long)id);
    ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
    free(rep.body);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/snapshots/999999", NULL, 0, f.token, &rep), 404);
    free(rep.body);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/nothing", NULL, 0, f.token, &rep), 404);
    ck_assert_str_eq(testsrv_error_code(&rep), "not_found");
    free(rep.body);
    free(e1);
    free(e2);
    fx_stop(&f);
}
END_TEST

/* The features worker's handoff: a stored upload leaves a copy of exactly
 * its bytes under its id once committed; a repeat (200) or a conflict (409)
 * adds nothing; with the handoff off nothing is kept. */
START_TEST(test_handoff_after_commit)
{
    struct fx f;
    struct testsrv_reply rep;
    struct ingest_handoff_stats st;
    uint8_t *e1, *e2, *e3, *held[1];
    size_t l1, l2, l3, held_len[1];
    json_t *j;
    int64_t id;

    TESTDB_REQUIRE();
    fx_start(&f);
    ck_assert_int_eq(testsrv_register_status(&f.s, "hand-1", f.pk, SECRET), 201);
    ingest_handoff_configure(1u << 20);
    e1 = envelope("hand-1", 1, 0.0f, f.sk, &l1);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e1, l1, NULL, &rep), 201);
    j = testsrv_json(&rep);
    id = json_integer_value(json_object_get(j, "id"));
    json_decref(j);
    free(rep.body);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e1, l1, NULL, &rep), 200);
    free(rep.body);
    e2 = envelope("hand-1", 1, 5.0f, f.sk, &l2);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e2, l2, NULL, &rep), 409);
    free(rep.body);
    ingest_handoff_stats(&st);
    ck_assert_uint_eq(st.kept, 1);
    ck_assert_uint_eq(st.entries, 1);
    ck_assert_uint_eq(st.bytes, l1);
    ck_assert_uint_eq(ingest_handoff_take(&id, 1, held, held_len), 1);
    ck_assert_uint_eq(held_len[0], l1);
    ck_assert_mem_eq(held[0], e1, l1);
    free(held[0]);
    /* off: stored as before, nothing held */
    ingest_handoff_configure(0);
    e3 = envelope("hand-1", 2, 0.0f, f.sk, &l3);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e3, l3, NULL, &rep), 201);
    free(rep.body);
    ingest_handoff_stats(&st);
    ck_assert_uint_eq(st.kept + st.entries + st.refused, 0);
    free(e1);
    free(e2);
    free(e3);
    fx_stop(&f);
}
END_TEST

START_TEST(test_pagination)
{
    struct fx f;
    struct testsrv_reply rep;
    json_t *j;
    char path[128], next[32];
    int seq, pages = 0, seen = 0;

    TESTDB_REQUIRE();
    fx_start(&f);
    ck_assert_int_eq(testsrv_register_status(&f.s, "page-1", f.pk, SECRET), 201);
    for (seq = 1; seq <= 5; seq++) {
        size_t l;
        uint8_t *e = envelope("page-1", (uint64_t)seq, (float)seq, f.sk, &l);
        ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e, l, NULL, &rep), 201);
        free(rep.body);
        free(e);
    }
    next[0] = '\0';
    do {
        snprintf(path, sizeof path, "/api/v1/snapshots?limit=2&after=%s", next);
        ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
        j = testsrv_json(&rep);
        seen += (int)json_array_size(json_object_get(j, "items"));
        if (json_is_string(json_object_get(j, "next")))
            snprintf(next, sizeof next, "%s", json_string_value(json_object_get(j, "next")));
        else
            next[0] = '\0';
        json_decref(j);
        free(rep.body);
        pages++;
    } while (next[0] && pages < 10);
    ck_assert_int_eq(seen, (int)testsrv_scalar("SELECT count(*) FROM snapshots"));
    ck_assert_int_ge(pages, 3);
    fx_stop(&f);
}
END_TEST

/* ingest_stored_many: the envelopes as stored, in the order asked, no row
 * for an id that has none, and as many as fit the byte budget (always the
 * first). */
START_TEST(test_stored_many)
{
    struct fx f;
    struct testsrv_reply rep;
    uint8_t *e[3];
    size_t l[3];
    int64_t id[3], ask[4];
    PGresult *r = NULL;
    int i;

    TESTDB_REQUIRE();
    fx_start(&f);
    ck_assert_int_eq(testsrv_register_status(&f.s, "many-1", f.pk, SECRET), 201);
    for (i = 0; i < 3; i++) {
        json_t *j;

        e[i] = envelope("many-1", (uint64_t)i + 1, (float)i, f.sk, &l[i]);
        ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e[i], l[i], NULL, &rep), 201);
        j = testsrv_json(&rep);
        id[i] = (int64_t)json_integer_value(json_object_get(j, "id"));
        ck_assert_int_gt(id[i], 0);
        json_decref(j);
        free(rep.body);
    }
    ask[0] = id[2];
    ask[1] = id[0];
    ask[2] = id[2] + 1000000;       /* no such snapshot */
    ask[3] = id[1];
    ck_assert_int_eq(ingest_stored_many(ask, 4, 1u << 20, &r), 0);
    ck_assert_int_eq(PQntuples(r), 3);
    for (i = 0; i < 3; i++) {
        int want = i == 0 ? 2 : i == 1 ? 0 : 1;

        ck_assert_int_eq(db_int64(r, i, "id"), id[want]);
        ck_assert_int_eq(db_len(r, i, "envelope"), (int)l[want]);
        ck_assert_mem_eq(db_text(r, i, "envelope"), e[want], l[want]);
    }
    PQclear(r);
    ck_assert_int_eq(ingest_stored_many(ask, 4, 1, &r), 0);     /* the first, whatever its size */
    ck_assert_int_eq(PQntuples(r), 1);
    ck_assert_int_eq(db_int64(r, 0, "id"), id[2]);
    PQclear(r);
    ck_assert_int_eq(ingest_stored_many(ask, 4, l[2] + l[0], &r), 0);
    ck_assert_int_eq(PQntuples(r), 2);
    PQclear(r);
    for (i = 0; i < 3; i++)
        free(e[i]);
    fx_stop(&f);
}
END_TEST

/* Rebuild e (header_len, payload_len from wire.c's header table) with a new
 * zstd payload and a valid signature. */
static uint8_t *replace_payload(const uint8_t *e, size_t len, const uint8_t *payload,
                                size_t plen, const uint8_t *sk, size_t *out_len)
{
    uint32_t hlen = (uint32_t)e[8] | (uint32_t)e[9] << 8 | (uint32_t)e[10] << 16 |
                    (uint32_t)e[11] << 24;
    uint8_t *o;
    size_t n;

    ck_assert_uint_lt(hlen, len);
    n = hlen + plen + WIRE_SIG_LEN;
    o = malloc(n);
    memcpy(o, e, hlen);
    o[12] = (uint8_t)plen;
    o[13] = (uint8_t)(plen >> 8);
    o[14] = (uint8_t)(plen >> 16);
    o[15] = (uint8_t)(plen >> 24);
    memcpy(o + hlen, payload, plen);
    crypto_sign_detached(o + hlen + plen, NULL, o, hlen + plen, sk);
    *out_len = n;
    return o;
}

START_TEST(test_bad_input)
{
    struct fx f;
    struct testsrv_reply rep;
    uint8_t *e, *bad, *frame;
    uint8_t pk2[WIRE_PK_LEN], sk2[WIRE_SK_LEN];
    size_t l, lb, fcap, flen;
    char plain[2 * 256 * 4];
    ZSTD_CCtx *cc;

    TESTDB_REQUIRE();
    fx_start(&f);
    ck_assert_int_eq(testsrv_register_status(&f.s, "bad-1", f.pk, SECRET), 201);
    e = envelope("bad-1", 1, 0.0f, f.sk, &l);

    /* Wrong signature: one flipped bit in the signature. */
    bad = malloc(l);
    memcpy(bad, e, l);
    bad[l - 1] ^= 1;
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", bad, l, NULL, &rep), 403);
    ck_assert_str_eq(testsrv_error_code(&rep), "bad_signature");
    free(rep.body);
    free(bad);

    /* Signed by another key than the registered one. */
    crypto_sign_keypair(pk2, sk2);
    bad = envelope("bad-1", 1, 0.0f, sk2, &lb);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", bad, lb, NULL, &rep), 403);
    free(rep.body);
    free(bad);

    /* Truncated. */
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e, l / 2, NULL, &rep), 400);
    ck_assert_str_eq(testsrv_error_code(&rep), "bad_envelope");
    free(rep.body);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", "", 0, NULL, &rep), 400);
    free(rep.body);

    /* Unknown device. */
    bad = envelope("ghost-1", 1, 0.0f, f.sk, &lb);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", bad, lb, NULL, &rep), 403);
    ck_assert_str_eq(testsrv_error_code(&rep), "unknown_device");
    free(rep.body);
    free(bad);

    /* A zstd frame without a declared content size, correctly signed. */
    memset(plain, 7, sizeof plain);
    fcap = ZSTD_compressBound(sizeof plain);
    frame = malloc(fcap);
    cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    {
        ZSTD_outBuffer ob = { frame, fcap, 0 };
        ZSTD_inBuffer ib = { plain, sizeof plain, 0 };
        ck_assert_uint_eq(ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end), 0);
        flen = ob.pos;
    }
    ZSTD_freeCCtx(cc);
    bad = replace_payload(e, l, frame, flen, f.sk, &lb);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", bad, lb, NULL, &rep), 400);
    ck_assert_str_eq(testsrv_error_code(&rep), "bad_frame");
    free(rep.body);
    free(bad);
    free(frame);

    /* Body over --max-body (1 MiB here): 413 from Content-Length. */
    bad = calloc(1, (1u << 20) + 1);
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", bad, (1u << 20) + 1, NULL, &rep), 413);
    ck_assert_str_eq(testsrv_error_code(&rep), "too_large");
    free(rep.body);
    free(bad);

    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM snapshots WHERE device_id = 'bad-1'"), 0);
    /* The server still serves, and the valid one still goes in. */
    ck_assert_int_eq(http(&f, "POST", "/api/v1/snapshots", e, l, NULL, &rep), 201);
    free(rep.body);
    free(e);
    fx_stop(&f);
}
END_TEST

/* Declares far more than --max-body and sends slowly: the 413 must come
 * before the body is read (curl sends Expect: 100-continue and gives up
 * waiting for the body to be wanted). */
static size_t slow_read(char *buf, size_t sz, size_t n, void *ud)
{
    size_t *sent = ud;

    if (*sent >= (64u << 20))
        return 0;
    memset(buf, 0, sz * n);
    *sent += sz * n;
    return sz * n;
}

START_TEST(test_oversize_refused_before_body)
{
    struct fx f;
    struct testsrv_reply rep = { 0 };
    struct curl_slist *h = NULL;
    size_t sent = 0;
    char url[128];
    CURL *c;

    TESTDB_REQUIRE();
    fx_start(&f);
    snprintf(url, sizeof url, "%s/api/v1/snapshots", f.s.base);
    c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(64u << 20));
    curl_easy_setopt(c, CURLOPT_READFUNCTION, slow_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &sent);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, testsrv_on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &rep);
    curl_easy_setopt(c, CURLOPT_EXPECT_100_TIMEOUT_MS, 10000L);
    h = curl_slist_append(h, "Content-Type: application/octet-stream");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rep.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    ck_assert_int_eq(rep.status, 413);
    ck_assert_uint_lt(sent, 1u << 20);
    free(rep.body);
    fx_stop(&f);
}
END_TEST

START_TEST(test_heartbeat_and_health)
{
    struct fx f;
    struct testsrv_reply rep;
    const char *hb = "{\"uptime_s\":12,\"spool_depth\":0}";
    uint8_t sig[WIRE_SIG_LEN], *msg;
    size_t mlen;
    int64_t ts = (int64_t)time(NULL) * 1000;
    char sig64[128], hdr1[160], hdr2[160], hdr3[160], url[128];
    struct curl_slist *h = NULL;
    CURL *c;
    json_t *j;

    TESTDB_REQUIRE();
    fx_start(&f);
    ck_assert_int_eq(http(&f, "GET", "/healthz", NULL, 0, NULL, &rep), 200);
    j = testsrv_json(&rep);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
    ck_assert_str_eq(json_string_value(json_object_get(j, "version")), TESTSRV_VERSION);
    json_decref(j);
    free(rep.body);
    ck_assert_int_eq(testsrv_register_status(&f.s, "hb-1", f.pk, SECRET), 201);
    /* signed over device id, timestamp and body (schema/devmsg.h) */
    ck_assert_int_eq(devmsg_heartbeat("hb-1", ts, (const uint8_t *)hb, strlen(hb), &msg, &mlen),
                     0);
    crypto_sign_detached(sig, NULL, msg, mlen, f.sk);
    free(msg);
    text_b64_encode(sig, sizeof sig, sig64, sizeof sig64);
    snprintf(hdr1, sizeof hdr1, "X-Precursor-Device: hb-1");
    snprintf(hdr2, sizeof hdr2, "X-Precursor-Signature: %s", sig64);
    snprintf(hdr3, sizeof hdr3, "X-Precursor-Timestamp: %lld", (long long)ts);
    h = curl_slist_append(h, hdr1);
    h = curl_slist_append(h, hdr2);
    h = curl_slist_append(h, hdr3);
    h = curl_slist_append(h, "Content-Type: application/json");
    snprintf(url, sizeof url, "%s/api/v1/heartbeats", f.s.base);
    memset(&rep, 0, sizeof rep);
    c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, hb);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, testsrv_on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &rep);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rep.status);
    ck_assert_int_eq(rep.status, 204);
    /* The same heartbeat again (captured and replayed): 409, nothing stored. */
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rep.status);
    ck_assert_int_eq(rep.status, 409);
    /* Same headers, other body: the signature no longer matches. */
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"uptime_s\":13}");
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rep.status);
    ck_assert_int_eq(rep.status, 403);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(rep.body);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/devices/hb-1", NULL, 0, f.token, &rep), 200);
    j = testsrv_json(&rep);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(json_object_get(
        j, "heartbeat"), "body"), "uptime_s")), 12);
    ck_assert(json_is_string(json_object_get(j, "last_seen")));
    json_decref(j);
    free(rep.body);
    fx_stop(&f);
}
END_TEST

/* The agent's own heartbeat (agent/upload: the JSON it builds, signed as it
 * signs it) carries the build's version; the server keeps it, and the
 * fleet list shows it as agent_version, where an operator looks for which
 * build each device runs.  An agent that sets none sends no field, shown
 * as null. */
static char *agent_heartbeat(const char *dev, const char *version)
{
    const char *t = getenv("TMPDIR");
    struct upload_config uc = { .device_id = dev, .agent_version = version,
                                .detector_version = "precursor-detect-1" };
    struct upload_counters c;
    struct spool *sp;
    char dir[256], cmd[300], *body;

    memset(&c, 0, sizeof c);
    snprintf(dir, sizeof dir, "%s/hb-version-XXXXXX", t && *t ? t : P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    body = upload_heartbeat_json(&uc, sp, &c, 5, 0);
    spool_close(sp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_ptr_nonnull(body);
    return body;
}

static long post_heartbeat(struct fx *f, const char *dev, const uint8_t *sk, const char *body)
{
    struct testsrv_reply rep;
    int64_t ts = (int64_t)time(NULL) * 1000;
    uint8_t sig[WIRE_SIG_LEN], *msg;
    size_t mlen;
    char sig64[128], h_dev[160], h_sig[160], h_ts[80];
    const char *hdrs[] = { h_dev, h_sig, h_ts, NULL };

    ck_assert_int_eq(devmsg_heartbeat(dev, ts, (const uint8_t *)body, strlen(body), &msg, &mlen),
                     0);
    crypto_sign_detached(sig, NULL, msg, mlen, sk);
    free(msg);
    text_b64_encode(sig, sizeof sig, sig64, sizeof sig64);
    snprintf(h_dev, sizeof h_dev, "X-Precursor-Device: %s", dev);
    snprintf(h_sig, sizeof h_sig, "X-Precursor-Signature: %s", sig64);
    snprintf(h_ts, sizeof h_ts, "X-Precursor-Timestamp: %lld", (long long)ts);
    testsrv_request(&f->s, "POST", "/api/v1/heartbeats", body, strlen(body), NULL, hdrs, &rep);
    free(rep.body);
    return rep.status;
}

static json_t *listed_device(struct fx *f, const char *dev)
{
    struct testsrv_reply rep;
    json_t *j, *items, *d, *found = NULL;
    size_t i;

    ck_assert_int_eq(http(f, "GET", "/api/v1/devices", NULL, 0, f->token, &rep), 200);
    j = testsrv_json(&rep);
    free(rep.body);
    items = json_object_get(j, "items");
    json_array_foreach(items, i, d) {
        const char *id = json_string_value(json_object_get(d, "id"));

        if (id && strcmp(id, dev) == 0)
            found = json_incref(d);
    }
    json_decref(j);
    ck_assert_msg(found != NULL, "%s is not in GET /api/v1/devices", dev);
    return found;
}

START_TEST(test_heartbeat_agent_version)
{
    struct fx f;
    uint8_t pk2[32], sk2[64];
    char *body;
    json_t *d;

    TESTDB_REQUIRE();
    fx_start(&f);
    crypto_sign_keypair(pk2, sk2);
    ck_assert_int_eq(testsrv_register_status(&f.s, "ver-1", f.pk, SECRET), 201);
    ck_assert_int_eq(testsrv_register_status(&f.s, "ver-2", pk2, SECRET), 201);

    body = agent_heartbeat("ver-1", "0.7.0 (git abc1234)");
    d = json_loads(body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(d, "agent_version")),
                     "0.7.0 (git abc1234)");
    json_decref(d);
    ck_assert_int_eq(post_heartbeat(&f, "ver-1", f.sk, body), 204);
    free(body);
    d = listed_device(&f, "ver-1");
    ck_assert_str_eq(json_string_value(json_object_get(d, "agent_version")),
                     "0.7.0 (git abc1234)");
    ck_assert_str_eq(json_string_value(json_object_get(d, "health")), "ok");
    json_decref(d);

    /* No version set: no field sent, null shown; never another device's. */
    body = agent_heartbeat("ver-2", NULL);
    ck_assert_ptr_null(strstr(body, "agent_version"));
    ck_assert_int_eq(post_heartbeat(&f, "ver-2", sk2, body), 204);
    free(body);
    d = listed_device(&f, "ver-2");
    ck_assert(json_is_null(json_object_get(d, "agent_version")));
    json_decref(d);

    /* The version is under the signature: claimed by another key, refused. */
    body = agent_heartbeat("ver-2", "9.9.9 (git forged)");
    ck_assert_int_eq(post_heartbeat(&f, "ver-2", f.sk, body), 403);
    free(body);
    d = listed_device(&f, "ver-2");
    ck_assert(json_is_null(json_object_get(d, "agent_version")));
    json_decref(d);
    fx_stop(&f);
}
END_TEST

/* Through the group committer: uploads of several devices from several
 * threads share batches, and each batch updates every device's last_seq
 * (the highest seq stored, also when a device's uploads arrive newest
 * first) and last_seen in one statement. */
#define GC_DEVICES 4
#define GC_PER_DEVICE 24

struct gc_arg {
    char dev[16];
    uint8_t pk[32], sk[64];
    int newest_first;
    int failures;
};

static void *gc_upload(void *p)
{
    struct gc_arg *a = p;
    int k;

    for (k = 0; k < GC_PER_DEVICE; k++) {
        uint64_t seq = a->newest_first ? (uint64_t)(GC_PER_DEVICE - k) : (uint64_t)(k + 1);
        struct ingest_result res;
        size_t len;
        uint8_t *e = envelope(a->dev, seq, (float)k, a->sk, &len);

        if (ingest_envelope(e, len, &res, NULL) != 0 || !res.created)
            a->failures++;
        free(e);
    }
    return NULL;
}

START_TEST(test_group_commit_devices)
{
    struct fx f;
    struct gc_arg args[GC_DEVICES];
    pthread_t t[GC_DEVICES];
    char q[256];
    int i;

    TESTDB_REQUIRE();
    fx_start(&f);
    ck_assert_int_eq(ingest_commit_start(testdb_conninfo, 2, 4096, 16), 0);
    ingest_handoff_configure(16u << 20);
    for (i = 0; i < GC_DEVICES; i++) {
        snprintf(args[i].dev, sizeof args[i].dev, "gc-%d", i);
        crypto_sign_keypair(args[i].pk, args[i].sk);
        ck_assert_int_eq(testsrv_register_status(&f.s, args[i].dev, args[i].pk, SECRET), 201);
        args[i].newest_first = i == 0;
        args[i].failures = 0;
    }
    for (i = 0; i < GC_DEVICES; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, gc_upload, &args[i]), 0);
    for (i = 0; i < GC_DEVICES; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(args[i].failures, 0);
    }
    ingest_commit_stop();
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM snapshots WHERE device_id LIKE 'gc-%'"),
                     GC_DEVICES * GC_PER_DEVICE);
    {
        /* Through the committers too, every stored row was handed over
         * once, under the id it was stored with. */
        struct ingest_handoff_stats st;
        PGconn *c = db_connect(testdb_conninfo);
        PGresult *r = PQexecParams(c, "SELECT id, envelope FROM snapshots WHERE device_id"
                                      " LIKE 'gc-%' ORDER BY id", 0, NULL, NULL, NULL, NULL, 1);
        int64_t ids[GC_DEVICES * GC_PER_DEVICE];
        uint8_t *held[GC_DEVICES * GC_PER_DEVICE];
        size_t held_len[GC_DEVICES * GC_PER_DEVICE];
        int k;

        ingest_handoff_stats(&st);
        ck_assert_uint_eq(st.kept, GC_DEVICES * GC_PER_DEVICE);
        ck_assert_int_eq(PQntuples(r), GC_DEVICES * GC_PER_DEVICE);
        for (k = 0; k < GC_DEVICES * GC_PER_DEVICE; k++) {
            uint64_t be;

            memcpy(&be, PQgetvalue(r, k, 0), 8);
            ids[k] = (int64_t)be64toh(be);
        }
        ck_assert_uint_eq(ingest_handoff_take(ids, GC_DEVICES * GC_PER_DEVICE, held, held_len),
                          GC_DEVICES * GC_PER_DEVICE);
        for (k = 0; k < GC_DEVICES * GC_PER_DEVICE; k++) {
            ck_assert_uint_eq(held_len[k], (size_t)PQgetlength(r, k, 1));
            ck_assert_mem_eq(held[k], PQgetvalue(r, k, 1), held_len[k]);
            free(held[k]);
        }
        PQclear(r);
        PQfinish(c);
        ingest_handoff_configure(0);
    }
    snprintf(q, sizeof q, "SELECT count(*) FROM devices WHERE id LIKE 'gc-%%' AND last_seq = %d"
             " AND last_seen IS NOT NULL", GC_PER_DEVICE);
    ck_assert_int_eq(testsrv_scalar(q), GC_DEVICES);
    fx_stop(&f);
}
END_TEST

/* The committers connect and run their batch statements once, with no
 * rows and rolled back, before any upload: that warm-up must store
 * nothing and draw no id from the sequence. */
START_TEST(test_committer_warm_up_writes_nothing)
{
    const char *seq_sql = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END"
                          " FROM snapshots_id_seq";
    const char *warmed_sql = "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                             " current_database() AND state = 'idle' AND query = 'ROLLBACK'";
    int64_t seq0, snaps0, seqs0;
    int i;

    TESTDB_REQUIRE();
    seq0 = testsrv_scalar(seq_sql);
    snaps0 = testsrv_scalar("SELECT count(*) FROM snapshots");
    seqs0 = testsrv_scalar("SELECT count(*) FROM snapshot_seqs");
    ck_assert_int_eq(ingest_commit_start(testdb_conninfo, 2, 4096, 16), 0);
    for (i = 0; i < 500 && testsrv_scalar(warmed_sql) < 2; i++)
        usleep(10000);
    ck_assert_int_ge(testsrv_scalar(warmed_sql), 2);   /* both warmed with no upload yet */
    ingest_commit_stop();
    ck_assert_int_eq(testsrv_scalar(seq_sql), seq0);
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM snapshots"), snaps0);
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM snapshot_seqs"), seqs0);
}
END_TEST

Suite *ingest_suite(void);
Suite *ingest_suite(void)
{
    Suite *s = suite_create("ingest");
    TCase *tc = tcase_create("http+postgres");

    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_register);
    tcase_add_test(tc, test_ingest_contract);
    tcase_add_test(tc, test_handoff_after_commit);
    tcase_add_test(tc, test_pagination);
    tcase_add_test(tc, test_stored_many);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_oversize_refused_before_body);
    tcase_add_test(tc, test_heartbeat_and_health);
    tcase_add_test(tc, test_heartbeat_agent_version);
    tcase_add_test(tc, test_committer_warm_up_writes_nothing);
    /* last: it leaves snapshots that the counts above do not expect */
    tcase_add_test(tc, test_group_commit_devices);
    suite_add_tcase(s, tc);
    return s;
}
