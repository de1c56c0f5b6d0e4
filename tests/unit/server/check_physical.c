/* check_physical.c - physical units end to end: the agent's pipeline runs
 * the simulator as a 16-bit ADC (int16 codes, 1/2048 g per code) and emits
 * wire v2 snapshots; the server stores them; the samples endpoint and a
 * dataset's npz export then read g, not codes; so do the features.  The expected
 * values come from a second run of the same simulator (it is a function of
 * its seed), so nothing here trusts the codec it checks.  Also the golden
 * vectors (v1 and v2) through the server's ingest and samples endpoint.
 * Needs DATABASE_URL; skips without it. */
#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/pipeline/pipeline.h"
#include "agent/source/source.h"
#include "schema/wire.h"
#include "server/datasets/datasets.h"
#include "server/features/features.h"
#include "testsrv.h"

Suite *physical_suite(void);

#define SECRET "physical-enroll-secret"
#define RATE 2000.0
#define SECONDS 40.0
#define T0 1700000000000000LL
#define FULL_SCALE 16.0
#define MAX_SNAPS 8

struct kept {
    int n;
    uint64_t next;
    uint8_t *env[MAX_SNAPS];
    size_t len[MAX_SNAPS];
};

static uint64_t kept_seq(void *ctx) { return ((struct kept *)ctx)->next; }

static int kept_put(void *ctx, uint64_t seq, const struct wire_meta *m, const uint8_t *env,
                    size_t len)
{
    struct kept *k = ctx;

    (void)m;
    if (k->n < MAX_SNAPS) {
        k->env[k->n] = malloc(len);
        memcpy(k->env[k->n], env, len);
        k->len[k->n++] = len;
    }
    k->next = seq + 1;
    return 0;
}

static struct sim_config sim_cfg(void)
{
    struct sim_config sc = { .equipment = "bearing", .rate = RATE, .seed = 21,
                             .fault_every_s = 6, .speed = 0, .duration_s = SECONDS,
                             .start_us = T0, .adc_full_scale = FULL_SCALE };
    return sc;
}

/* The simulator's codes, interleaved frames x channels, from its own run. */
static float *sim_codes(unsigned *channels, size_t *frames)
{
    struct sim_config sc = sim_cfg();
    struct source *src;
    size_t cap = (size_t)(RATE * SECONDS), got = 0, k;
    float *all, blk[256 * 8];
    int64_t ts[256];

    ck_assert_int_eq(source_sim_open(&sc, &src), 0);
    *channels = src->channels;
    all = malloc(cap * src->channels * sizeof *all);
    while (got < cap && src->next(src, blk, ts, 256, &k) == 0) {
        memcpy(all + got * src->channels, blk, k * src->channels * sizeof *blk);
        got += k;
    }
    src->close(src);
    *frames = got;
    return all;
}

/* The agent: pipeline over the simulator, snapshots kept. */
static void agent_run(struct kept *k, const char *device, const uint8_t *sk)
{
    struct sim_config sc = sim_cfg();
    struct pipeline_config pc;
    struct pipeline *p = NULL;
    struct source *src;
    char err[256];

    memset(&pc, 0, sizeof pc);
    detect_config_defaults(&pc.detect);
    pc.device_id = device;
    pc.secret_key = sk;
    pc.ring_s = 5;
    pc.pre_s = 0.5;
    pc.post_s = 1.0;
    pc.max_window_s = 3;
    pc.zstd_level = 3;
    pc.sink.next_seq = kept_seq;
    pc.sink.put = kept_put;
    pc.sink.ctx = k;
    k->next = 1;
    ck_assert_int_eq(source_sim_open(&sc, &src), 0);
    ck_assert_uint_eq(src->wire_type, WIRE_I16);
    ck_assert_int_eq(pipeline_init(&pc, src, &p, err, sizeof err), 0);
    ck_assert_int_eq(pipeline_run(p, NULL), 0);
    pipeline_free(p);
    src->close(src);
}

/* X.npy's floats (after its 128-byte header) from an npz. */
static float *npz_x(const char *buf, size_t len, size_t *count)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    float *x = NULL;

    archive_read_support_format_zip(a);
    ck_assert_int_eq(archive_read_open_memory(a, buf, len), ARCHIVE_OK);
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        size_t sz = (size_t)archive_entry_size(e);
        char *data = malloc(sz);
        ck_assert_int_eq((long)archive_read_data(a, data, sz), (long)sz);
        if (strcmp(archive_entry_pathname(e), "X.npy") == 0) {
            ck_assert_uint_gt(sz, 128);
            *count = (sz - 128) / 4;
            x = malloc(sz - 128);
            memcpy(x, data + 128, sz - 128);
        }
        free(data);
    }
    archive_read_free(a);
    ck_assert_ptr_nonnull(x);
    return x;
}

static long req(const struct testsrv *s, const char *method, const char *path, const char *body,
                const char *tok, struct testsrv_reply *rep)
{
    return testsrv_request(s, method, path, body, body ? strlen(body) : 0, tok, NULL, rep);
}

START_TEST(test_adc_snapshot_reads_in_g)
{
    struct testsrv srv;
    struct testsrv_reply rep;
    struct kept kd[3] = { { 0 }, { 0 }, { 0 } }, *kp = &kd[0];
    char token[AUTH_TOKEN_LEN + 1], path[256], dir[256];
    uint8_t pk[3][WIRE_PK_LEN], sk[3][WIRE_SK_LEN];
    const double scale = FULL_SCALE / 32768;
    unsigned ch;
    size_t frames, nx, checked = 0;
    float *codes, *x;
    int64_t ids[3][MAX_SNAPS], row_snap = 0, row_start = 0;
    json_t *j, *vals;
    int row_i = -1;

    TESTDB_REQUIRE();
    codes = sim_codes(&ch, &frames);
    /* three devices (a dataset splits by device), the same machine each;
     * each with a key of its own, as key freshness requires (FLEET.md) */
    for (int d = 0; d < 3; d++) {
        char dev[16];
        snprintf(dev, sizeof dev, "adc-%d", d);
        crypto_sign_keypair(pk[d], sk[d]);
        agent_run(&kd[d], dev, sk[d]);
        ck_assert_int_ge(kd[d].n, 1);
    }

    testsrv_db();
    testsrv_add_token("ml", token, sizeof token);
    snprintf(dir, sizeof dir, "%s/physical_XXXXXX", P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ds_set_export_dir(dir);
    testsrv_listen(&srv, SECRET);
    for (int d = 0; d < 3; d++) {
        char dev[16];
        snprintf(dev, sizeof dev, "adc-%d", d);
        testsrv_register(&srv, dev, pk[d], SECRET);
    }

    for (int di = 0; di < 3 * MAX_SNAPS; di++) {
        int d = di / MAX_SNAPS, i = di % MAX_SNAPS;
        struct kept *kk = &kd[d];
        struct wire_meta m;
        struct wire_view v;
        int64_t id, first;
        size_t n;

        /* what the agent sent: v2, int16 codes with the ADC's scale */
        if (i >= kk->n)
            continue;
        ck_assert_int_eq(wire_parse(kk->env[i], kk->len[i], &m, &v), WIRE_OK);
        ck_assert_uint_eq(m.version, 2);
        ck_assert_uint_eq(m.sample_type, WIRE_I16);
        ck_assert(m.channels[0].scale == scale);
        ck_assert_str_eq(m.channels[0].unit, "g");
        ck_assert_int_eq(testsrv_request(&srv, "POST", "/api/v1/snapshots",
                                         (const char *)kk->env[i], kk->len[i], NULL, NULL, &rep),
                         201);
        j = testsrv_json(&rep);
        id = json_integer_value(json_object_get(j, "id"));
        ids[d][i] = id;
        json_decref(j);
        free(rep.body);

        /* the samples endpoint: raw values of axis x over the whole window, in g */
        n = (size_t)m.pre_samples + m.post_samples;
        first = (m.trigger_time_us - T0) / 500 - (int64_t)m.pre_samples;
        ck_assert_int_ge(first, 0);
        snprintf(path, sizeof path, "/api/v1/snapshots/%lld/samples?format=json&px=8192",
                 (long long)id);
        ck_assert_int_eq(req(&srv, "GET", path, NULL, token, &rep), 200);
        j = testsrv_json(&rep);
        vals = json_object_get(json_array_get(json_object_get(j, "channels"), 0), "values");
        ck_assert_msg(json_array_size(vals) == n, "%zu values for %zu samples",
                      json_array_size(vals), n);
        for (size_t t = 0; t < n; t++) {
            double want = codes[(size_t)(first + (int64_t)t) * ch] * scale;
            double got = json_number_value(json_array_get(vals, t));
            ck_assert_msg(fabs(got - want) < 1e-6, "sample %zu: %g g, want %g g", t, got, want);
            checked++;
        }
        json_decref(j);
        free(rep.body);
    }
    ck_assert_uint_gt(checked, 1000);

    /* a dataset export: the windows of the first snapshot, in g */
    testsrv_sql("INSERT INTO labels (snapshot_id, start_s, end_s, channels, class, created_by) "
                "SELECT id, 0, 0.25, '{0}', 'normal', 'alice' FROM snapshots");
    ck_assert_int_eq(req(&srv, "POST", "/api/v1/datasets",
                         "{\"name\":\"adc\",\"filter\":{\"sources\":[\"human\"]},"
                         "\"window\":{\"length_s\":0.25,\"stride_s\":0.25},"
                         "\"split\":{\"by\":\"device\",\"fractions\":[0.3,0.3,0.4],"
                         "\"seed\":1}}", token, &rep), 201);
    j = testsrv_json(&rep);
    snprintf(path, sizeof path, "/api/v1/datasets/%lld/versions",
             (long long)json_integer_value(json_object_get(j, "id")));
    json_decref(j);
    free(rep.body);
    ck_assert_msg(req(&srv, "POST", path, NULL, token, &rep) == 201, "%s", rep.body);
    free(rep.body);
    strcat(path, "/1/export?format=");
    {
        /* which snapshot and sample row 0 of X is: from the jsonl export */
        char jpath[300];
        json_error_t jerr;
        snprintf(jpath, sizeof jpath, "%sjsonl", path);
        ck_assert_int_eq(req(&srv, "GET", jpath, NULL, token, &rep), 200);
        j = json_loadb(rep.body, strcspn(rep.body, "\n"), 0, &jerr);
        ck_assert_ptr_nonnull(j);
        row_snap = json_integer_value(json_object_get(j, "snapshot_id"));
        row_start = json_integer_value(json_object_get(j, "start_sample"));
        json_decref(j);
        free(rep.body);
        for (int d = 0; d < 3; d++)
            for (int i = 0; i < kd[d].n; i++)
                if (ids[d][i] == row_snap)
                    kp = &kd[d], row_i = i;
        ck_assert_int_ge(row_i, 0);
    }
    strcat(path, "npz");
    ck_assert_int_eq(req(&srv, "GET", path, NULL, token, &rep), 200);
    x = npz_x(rep.body, rep.len, &nx);
    free(rep.body);
    {
        /* row 0: channels x 500 samples of that snapshot, in g */
        struct wire_meta m;
        struct wire_view v;
        int64_t first;
        size_t t_len = 500;

        ck_assert_int_eq(wire_parse(kp->env[row_i], kp->len[row_i], &m, &v), WIRE_OK);
        first = (m.trigger_time_us - T0) / 500 - (int64_t)m.pre_samples + row_start;
        ck_assert_uint_ge(nx, ch * t_len);
        for (unsigned c = 0; c < ch; c++)
            for (size_t t = 0; t < t_len; t++) {
                double want = codes[(size_t)(first + (int64_t)t) * ch + c] * m.channels[c].scale;
                ck_assert_msg(fabs(x[c * t_len + t] - want) < 1e-4 * (1 + fabs(want)),
                              "export ch %u sample %zu: %g, want %g (snapshot %lld)", c, t,
                              (double)x[c * t_len + t], want, (long long)row_snap);
            }
    }
    free(x);
    testsrv_stop(&srv);
    {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        ck_assert_int_eq(system(cmd), 0);
    }
    for (int d = 0; d < 3; d++)
        for (int i = 0; i < kd[d].n; i++)
            free(kd[d].env[i]);
    free(codes);
}
END_TEST

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b;
    long n;

    ck_assert_msg(f != NULL, "cannot open %s (run from the repository root)", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    b = malloc((size_t)n);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static const char *spec_query(const struct srv_request *rq, const char *key)
{
    return strcmp(key, "bins") == 0 ? "64" : NULL;
}

/* The spectrum route over HTTP, computed on the spectra thread while its
 * connection is parked, answers what its handler answers on the calling
 * thread, byte for byte; and its refusals are the handler's too. */
static void spectrum_parked_same(const struct testsrv *srv, const char *token, json_int_t id)
{
    struct testsrv_reply rep;
    struct srv_request rq;
    struct srv_response rs;
    char path[160], idb[32];
    unsigned long handed = features_spectrum_handed();

    snprintf(path, sizeof path, "/api/v1/snapshots/%lld/spectrum?bins=64", (long long)id);
    ck_assert_int_eq(req(srv, "GET", path, NULL, token, &rep), 200);
    ck_assert_uint_eq(features_spectrum_handed(), handed + 1);     /* it did park */
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    memset(&rq, 0, sizeof rq);
    memset(&rs, 0, sizeof rs);
    rq.params[0] = idb;
    rq.query = spec_query;
    rq.role = SRV_ROLE_ML;
    ck_assert_int_eq(features_api_spectrum(&rq, &rs), SRV_OK);
    ck_assert_uint_eq(rs.body_len, rep.len);
    ck_assert(memcmp(rs.body, rep.body, rep.len) == 0);
    srv_response_release(&rs);
    free(rep.body);
    snprintf(path, sizeof path, "/api/v1/snapshots/%lld/spectrum?bins=3", (long long)id);
    ck_assert_int_eq(req(srv, "GET", path, NULL, token, &rep), 400);
    free(rep.body);
    ck_assert_int_eq(req(srv, "GET", "/api/v1/snapshots/999999999/spectrum", NULL, token, &rep),
                     404);
    free(rep.body);
}

/* The golden vectors through the server: v1 and v2 ingest, and the samples
 * endpoint serves the v2 int16 vector as code * scale + offset (the v1 one
 * as its codes). */
START_TEST(test_golden_vectors_served)
{
    static const struct { const char *file, *device; } vecs[] = {
        { "tests/vectors/i16_2ch.prsn", "pump-07" },
        { "tests/vectors/v2_i16_2ch.prsn", "bearing-v2" },
    };
    struct testsrv srv;
    struct testsrv_reply rep;
    char token[AUTH_TOKEN_LEN + 1], path[256];
    uint8_t seed[32], pk[WIRE_PK_LEN], sk[WIRE_SK_LEN];

    TESTDB_REQUIRE();
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)i;
    crypto_sign_ed25519_seed_keypair(pk, sk, seed);   /* the vectors' key */
    testsrv_db();
    testsrv_add_token("ml", token, sizeof token);
    testsrv_listen(&srv, SECRET);
    for (size_t v = 0; v < 2; v++) {
        size_t len, n;
        uint8_t *env = slurp(vecs[v].file, &len);
        struct wire_meta m;
        struct wire_view wv;
        int16_t *codes;
        json_t *j;

        ck_assert_int_eq(wire_parse(env, len, &m, &wv), WIRE_OK);
        n = (size_t)m.pre_samples + m.post_samples;
        codes = malloc(wire_samples_bytes(&m));
        ck_assert_int_eq(wire_decode_samples(&m, &wv, codes, wire_samples_bytes(&m)), WIRE_OK);
        /* the vectors share one key under two device ids, which key
         * freshness refuses in a fleet: free it, as no API may */
        testsrv_sql("DELETE FROM device_keys");
        testsrv_register(&srv, vecs[v].device, pk, SECRET);
        ck_assert_int_eq(testsrv_request(&srv, "POST", "/api/v1/snapshots", (const char *)env, len,
                                         NULL, NULL, &rep), 201);
        j = testsrv_json(&rep);
        snprintf(path, sizeof path, "/api/v1/snapshots/%lld/samples?format=json&px=8192",
                 (long long)json_integer_value(json_object_get(j, "id")));
        json_decref(j);
        free(rep.body);
        ck_assert_int_eq(req(&srv, "GET", path, NULL, token, &rep), 200);
        j = testsrv_json(&rep);
        for (unsigned c = 0; c < m.channel_count; c++) {
            json_t *vals = json_object_get(json_array_get(json_object_get(j, "channels"), c),
                                           "values");
            double scale = v ? m.channels[c].scale : 1.0, offset = v ? m.channels[c].offset : 0.0;
            ck_assert_uint_eq(json_array_size(vals), n);
            for (size_t t = 0; t < n; t++) {
                double got = json_number_value(json_array_get(vals, t));
                double want = codes[c * n + t] * scale + offset;
                ck_assert_msg(fabs(got - want) < 1e-6 * (1 + fabs(want)),
                              "%s channel %u sample %zu: %g, want %g", vecs[v].file, c, t, got,
                              want);
                /* a real, whole or not (raw codes are whole: 12.0, not 12) */
                ck_assert(json_is_real(json_array_get(vals, t)));
            }
        }
        ck_assert(json_is_real(json_object_get(j, "sample_rate")));
        ck_assert(json_is_real(json_object_get(j, "trigger_s")));
        ck_assert(json_is_real(json_array_get(json_object_get(j, "t"), 0)));
        spectrum_parked_same(&srv, token, json_integer_value(json_object_get(j, "snapshot_id")));
        if (v == 1)   /* the second channel's offset is not zero: not codes */
            ck_assert(m.channels[1].offset != 0 && m.channels[1].scale != 1);
        json_decref(j);
        free(rep.body);
        free(codes);
        free(env);
    }
    testsrv_stop(&srv);
}
END_TEST

/* The features of the v2 int16 vector are those of its physical values:
 * rms and peak in g, not in codes. */
START_TEST(test_features_in_physical_units)
{
    size_t len, nch, n;
    uint8_t *env = slurp("tests/vectors/v2_i16_2ch.prsn", &len);
    struct feat_channel *fc = NULL, want;
    struct wire_meta m;
    struct wire_view v;
    int16_t *codes;
    float *x;

    ck_assert_int_eq(features_from_envelope(env, len, &fc, &nch), 0);
    ck_assert_int_eq(wire_parse(env, len, &m, &v), WIRE_OK);
    n = (size_t)m.pre_samples + m.post_samples;
    codes = malloc(wire_samples_bytes(&m));
    x = malloc(n * sizeof *x);
    ck_assert_int_eq(wire_decode_samples(&m, &v, codes, wire_samples_bytes(&m)), WIRE_OK);
    ck_assert_uint_eq(nch, m.channel_count);
    for (unsigned c = 0; c < m.channel_count; c++) {
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(codes[c * n + i] * m.channels[c].scale + m.channels[c].offset);
        ck_assert_int_eq(features_compute(x, n, m.sample_rate, &want), 0);
        ck_assert_double_eq_tol(fc[c].rms, want.rms, 1e-6 * (1 + want.rms));
        ck_assert_double_eq_tol(fc[c].peak, want.peak, 1e-6 * (1 + want.peak));
        ck_assert_double_lt(fc[c].peak, 16.0);   /* g of a +-16 g converter, not codes */
    }
    free(fc);
    free(x);
    free(codes);
    free(env);
}
END_TEST

Suite *physical_suite(void)
{
    Suite *s = suite_create("physical");
    TCase *tc = tcase_create("e2e");

    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_add_test(tc, test_adc_snapshot_reads_in_g);
    tcase_add_test(tc, test_golden_vectors_served);
    tcase_add_test(tc, test_features_in_physical_units);
    suite_add_tcase(s, tc);
    return s;
}
