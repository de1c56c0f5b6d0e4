/* check_features.c - the per-channel features rules use, against values
 * computed by hand from the signal's definition: a sine's mean, std, RMS,
 * peak, crest and kurtosis (1.5), its dominant frequency from FFTW within one
 * FFT bin, band energies of a two-tone signal in the ratio of the tones'
 * powers, partial bins counted in proportion, Gaussian noise's kurtosis near
 * 3, bad input refused, and the decode of a real wire envelope; on a
 * throw-away database (skipped without DATABASE_URL) the worker's pass:
 * features stored per channel, the job recorded, an undecodable envelope
 * recorded with its error, and the registered after() called for each. */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "schema/wire.h"
#include "server/features/features.h"
#include "server/ingest/ingest.h"
#include "server/labels/labels.h"
#include "server/srv/srv.h"
#include "testdb.h"

#define RATE 2000.0
#define N 4096
#define PI 3.14159265358979323846

static void tone(float *x, size_t n, double a1, double f1, double a2, double f2, double dc)
{
    size_t i;

    for (i = 0; i < n; i++)
        x[i] = (float)(dc + a1 * sin(2 * PI * f1 * (double)i / RATE) +
                       a2 * sin(2 * PI * f2 * (double)i / RATE));
}

START_TEST(test_sine_time_features)
{
    static float x[N];
    struct feat_channel f;

    /* 2 sin(2 pi 250 t) + 1: 250 Hz has a whole number of periods in N/8
     * samples, so the sums are exact up to float rounding */
    tone(x, N, 2.0, 250.0, 0, 0, 1.0);
    ck_assert_int_eq(features_compute(x, N, RATE, &f), 0);
    ck_assert_double_eq_tol(f.mean, 1.0, 1e-4);
    ck_assert_double_eq_tol(f.std, 2.0 / sqrt(2.0), 1e-4);
    ck_assert_double_eq_tol(f.rms, sqrt(1.0 + 2.0), 1e-4);     /* sqrt(dc^2 + a^2/2) */
    ck_assert_double_eq_tol(f.peak, 3.0, 1e-4);
    ck_assert_double_eq_tol(f.crest, 3.0 / sqrt(3.0), 1e-4);
    ck_assert_double_eq_tol(f.kurtosis, 1.5, 1e-3);            /* a sine: 3/2 */
}
END_TEST

START_TEST(test_sine_dominant_frequency)
{
    static float x[N];
    struct feat_channel f;
    double bin = RATE / N, sum = 0;
    int i;

    /* 313.7 Hz is between FFT bins: the peak is the nearest bin */
    tone(x, N, 1.0, 313.7, 0, 0, 0);
    ck_assert_int_eq(features_compute(x, N, RATE, &f), 0);
    ck_assert_msg(fabs(f.dominant_hz - 313.7) <= bin, "dominant %g Hz", f.dominant_hz);
    ck_assert_double_eq_tol(f.bin_hz, RATE / 2 / FEAT_BINS, 1e-9);
    for (i = 0; i < FEAT_BINS; i++)
        sum += f.spectrum[i];
    ck_assert_double_eq_tol(sum, 1.0, 1e-4);
    /* the Hann window keeps nearly all power within +-50 Hz */
    ck_assert_msg(features_band_energy(&f, 263.7, 363.7) > 0.99, "band %g",
                  features_band_energy(&f, 263.7, 363.7));
    ck_assert_msg(features_band_energy(&f, 500, 1000) < 1e-3, "far band %g",
                  features_band_energy(&f, 500, 1000));
}
END_TEST

START_TEST(test_two_tone_band_energy)
{
    static float x[N];
    struct feat_channel f;

    /* amplitudes 1 and 2: powers 1/2 and 2, so 0.2 and 0.8 of the total */
    tone(x, N, 1.0, 100.0, 2.0, 600.0, 0.5);
    ck_assert_int_eq(features_compute(x, N, RATE, &f), 0);
    ck_assert_msg(fabs(f.dominant_hz - 600.0) <= RATE / N, "dominant %g", f.dominant_hz);
    ck_assert_double_eq_tol(features_band_energy(&f, 50, 150), 0.2, 0.01);
    ck_assert_double_eq_tol(features_band_energy(&f, 550, 650), 0.8, 0.01);
    ck_assert_double_eq_tol(features_band_energy(&f, 0, RATE / 2), 1.0, 1e-4);
    /* the mean is removed before the transform: the 0.5 offset adds nothing */
    ck_assert_msg(features_band_energy(&f, 0, 20) < 1e-3, "dc %g",
                  features_band_energy(&f, 0, 20));
}
END_TEST

START_TEST(test_band_energy_partial_bins)
{
    struct feat_channel f;
    int i;

    memset(&f, 0, sizeof f);
    f.bin_hz = 10.0;
    for (i = 0; i < FEAT_BINS; i++)
        f.spectrum[i] = 1.0f / FEAT_BINS;
    ck_assert_double_eq_tol(features_band_energy(&f, 0, 320), 0.5, 1e-6);
    ck_assert_double_eq_tol(features_band_energy(&f, 5, 20), 1.5 / FEAT_BINS, 1e-6);
    ck_assert_double_eq_tol(features_band_energy(&f, 0, 1e9), 1.0, 1e-6);
    ck_assert_double_eq(features_band_energy(&f, 100, 100), 0.0);
    ck_assert_double_eq(features_band_energy(&f, 200, 100), 0.0);
    f.bin_hz = 0;
    ck_assert_double_eq(features_band_energy(&f, 0, 100), 0.0);
}
END_TEST

START_TEST(test_noise_kurtosis)
{
    enum { M = 1 << 17 };
    float *x = malloc(M * sizeof *x);
    struct feat_channel f;
    uint64_t s = 12345;
    size_t i;

    ck_assert_ptr_nonnull(x);
    for (i = 0; i < M; i++) {
        double u, v;

        s = s * 6364136223846793005ull + 1442695040888963407ull;
        u = ((double)(s >> 11) + 1.0) / 9007199254740993.0;
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        v = (double)(s >> 11) / 9007199254740992.0;
        x[i] = (float)(sqrt(-2 * log(u)) * cos(2 * PI * v));
    }
    ck_assert_int_eq(features_compute(x, M, RATE, &f), 0);
    ck_assert_msg(fabs(f.kurtosis - 3.0) < 0.1, "kurtosis %g", f.kurtosis);
    /* white noise spreads its power: no band of 1/8 holds much more than 1/8 */
    ck_assert_msg(features_band_energy(&f, 0, RATE / 16) < 0.15, "band %g",
                  features_band_energy(&f, 0, RATE / 16));
    free(x);
}
END_TEST

/* Plans are kept by size: the same input gives bit-identical features on a
 * kept plan as on the first (planning) call, and sizes past the kept slots
 * still compute, each the same as on its own. */
START_TEST(test_kept_plans_same_answers)
{
    static float x[N];
    struct feat_channel first, again, other;
    size_t n;

    memset(&first, 0, sizeof first);    /* compute leaves the name alone */
    memset(&again, 0, sizeof again);
    memset(&other, 0, sizeof other);
    tone(x, N, 2.0, 250.0, 0.5, 600.0, 0.3);
    ck_assert_int_eq(features_compute(x, 3001, RATE, &first), 0);
    for (n = 3002; n < 3002 + 12; n++)                 /* more sizes than slots */
        ck_assert_int_eq(features_compute(x, n, RATE, &other), 0);
    ck_assert_int_eq(features_compute(x, 3001, RATE, &again), 0);
    ck_assert_mem_eq(&first, &again, sizeof first);
    ck_assert_int_eq(features_compute(x, 3013, RATE, &again), 0);  /* planned per call */
    ck_assert_mem_eq(&other, &again, sizeof other);
    ck_assert_double_eq_tol(first.dominant_hz, 250.0, RATE / 3001);
}
END_TEST

START_TEST(test_bad_input)
{
    float x[4] = { 1, 2, 3, 4 };
    struct feat_channel f;

    ck_assert_int_eq(features_compute(x, 1, RATE, &f), -EINVAL);
    ck_assert_int_eq(features_compute(NULL, 4, RATE, &f), -EINVAL);
    ck_assert_int_eq(features_compute(x, 4, 0, &f), -EINVAL);
    ck_assert_int_eq(features_compute(x, 4, -1, &f), -EINVAL);
    ck_assert_int_eq(features_compute(x, 4, NAN, &f), -EINVAL);
    /* a constant has no spread: zeros, not NaN */
    x[0] = x[1] = x[2] = x[3] = 2;
    ck_assert_int_eq(features_compute(x, 4, RATE, &f), 0);
    ck_assert_double_eq(f.std, 0);
    ck_assert_double_eq(f.kurtosis, 0);
    ck_assert_double_eq_tol(f.crest, 1.0, 1e-9);
}
END_TEST

/* A signed two-channel f32 envelope: a 125 Hz tone on accel_x, 750 Hz on
 * accel_y.  The caller frees *env. */
static void two_tone_envelope(uint8_t **env, size_t *len)
{
    static float x[2 * 1024];
    uint8_t pk[WIRE_PK_LEN], sk[WIRE_SK_LEN];
    struct wire_meta m;

    ck_assert_int_ge(sodium_init(), 0);
    crypto_sign_keypair(pk, sk);
    memset(&m, 0, sizeof m);
    snprintf(m.device_id, sizeof m.device_id, "d1");
    m.seq = 1;
    m.trigger_time_us = 1714564800000000LL;
    m.sample_rate = RATE;
    m.sample_type = WIRE_F32;
    m.channel_count = 2;
    m.pre_samples = 512;
    m.post_samples = 512;
    snprintf(m.detector, sizeof m.detector, "level");
    snprintf(m.channels[0].name, sizeof m.channels[0].name, "accel_x");
    snprintf(m.channels[1].name, sizeof m.channels[1].name, "accel_y");
    tone(x, 1024, 1.0, 125.0, 0, 0, 0);
    tone(x + 1024, 1024, 1.0, 750.0, 0, 0, 0);
    ck_assert_int_eq(wire_encode(&m, x, sk, 0, env, len), 0);
}

START_TEST(test_from_envelope)
{
    uint8_t *env = NULL;
    struct feat_channel *fc = NULL;
    size_t len = 0, n = 0;

    two_tone_envelope(&env, &len);
    ck_assert_int_eq(features_from_envelope(env, len, &fc, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(fc[0].name, "accel_x");
    ck_assert_str_eq(fc[1].name, "accel_y");
    ck_assert_msg(fabs(fc[0].dominant_hz - 125.0) <= RATE / 1024, "%g", fc[0].dominant_hz);
    ck_assert_msg(fabs(fc[1].dominant_hz - 750.0) <= RATE / 1024, "%g", fc[1].dominant_hz);
    free(fc);
    fc = NULL;
    /* a truncated envelope is an error code, not a crash */
    ck_assert_int_lt(features_from_envelope(env, len / 2, &fc, &n), 0);
    ck_assert_ptr_null(fc);
    free(env);
}
END_TEST

static PGconn *g_admin;
static int64_t g_after_ids[8];
static size_t g_after_n;

static int record_after(const int64_t *ids, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (g_after_n < sizeof g_after_ids / sizeof g_after_ids[0])
            g_after_ids[g_after_n++] = ids[i];
    return SRV_OK;
}

/* The worker suites' database: migrated, the server's pool, the test's
 * own connection (g_admin) and device d1 for the snapshots to belong to. */
static void worker_db(void)
{
    PGresult *r;

    ck_assert_int_eq(db_migrate(testdb_conninfo, testdb_migrations, NULL, NULL), 0);
    ck_assert_int_eq(db_init(testdb_conninfo), 0);
    g_admin = db_connect(testdb_conninfo);
    ck_assert_ptr_nonnull(g_admin);
    r = PQexec(g_admin, "INSERT INTO devices (id, public_key) VALUES"
                        " ('d1', decode(repeat('00', 32), 'hex')) ON CONFLICT DO NOTHING");
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
}

static void add_snapshot(int id, const uint8_t *env, size_t len)
{
    char idb[16];
    const char *vals[2] = { idb, (const char *)env };
    const int lens[2] = { 0, (int)len }, fmts[2] = { 0, 1 };
    PGresult *r;

    snprintf(idb, sizeof idb, "%d", id);
    r = PQexecParams(g_admin,
                     "INSERT INTO snapshots (id, device_id, seq, trigger_time, sample_rate,"
                     " sample_type, channel_count, channels, pre_samples, post_samples, detector,"
                     " score, envelope, bytes, sha256) VALUES ($1::bigint, 'd1', $1::bigint, now(),"
                     " 2000, 3, 2, '[{\"name\":\"accel_x\"},{\"name\":\"accel_y\"}]', 512, 512,"
                     " 'level', 0.5, $2, 1, decode(repeat('00', 32), 'hex'))",
                     2, NULL, vals, lens, fmts, 0);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(g_admin));
    PQclear(r);
}

static char *value(const char *q) { return testdb_value(g_admin, q); }
static void value_is(const char *q, const char *want) { testdb_value_is(g_admin, q, want); }

/* GET /api/v1/snapshots/{id}/features as the route table calls it: the
 * status, and for 200 the second channel's name and dominant frequency. */
static void api_get_is(const char *id, unsigned status, const char *chan, double hz)
{
    struct srv_request rq;
    struct srv_response rs;
    json_t *j, *c;
    int err;

    memset(&rq, 0, sizeof rq);
    memset(&rs, 0, sizeof rs);
    rq.params[0] = id;
    rq.role = SRV_ROLE_ML;
    err = features_api_get(&rq, &rs);
    ck_assert_uint_eq(err == SRV_OK ? rs.status : (unsigned)srv_err_status(err), status);
    if (status == 200) {
        j = json_loadb(rs.body, rs.body_len, 0, NULL);
        ck_assert_ptr_nonnull(j);
        c = json_array_get(json_object_get(j, "channels"), 1);
        ck_assert_str_eq(json_string_value(json_object_get(c, "channel")), chan);
        ck_assert(fabs(json_real_value(json_object_get(c, "dominant_hz")) - hz) < 1.0);
        ck_assert_uint_eq(json_array_size(json_object_get(c, "spectrum")), 64);
        /* every bin a real, a bin of 0 too (0.0): the API's reals keep a '.' */
        for (size_t k = 0; k < 64; k++)
            ck_assert(json_is_real(json_array_get(json_object_get(c, "spectrum"), k)));
        json_decref(j);
    }
    srv_response_release(&rs);
}

/* The spectrum route's one query parameter in these tests: channel. */
static const char *g_channel;

static const char *channel_query(const struct srv_request *rq, const char *key)
{
    return strcmp(key, "channel") == 0 ? g_channel : NULL;
}

/* GET /api/v1/snapshots/{id}/spectrum (whole snapshot; channel=g_channel
 * when set) as the route table calls it: its 200 body, malloc'd, into
 * *body. */
static size_t spectrum_body(const char *id, char **body)
{
    struct srv_request rq;
    struct srv_response rs;
    size_t n;

    memset(&rq, 0, sizeof rq);
    memset(&rs, 0, sizeof rs);
    rq.params[0] = id;
    rq.role = SRV_ROLE_ML;
    rq.query = channel_query;
    ck_assert_int_eq(features_api_spectrum(&rq, &rs), SRV_OK);
    ck_assert_uint_eq(rs.status, 200);
    n = rs.body_len;
    *body = malloc(n);
    ck_assert_ptr_nonnull(*body);
    memcpy(*body, rs.body, n);
    srv_response_release(&rs);
    return n;
}

/* The waveform view's samples route, which keeps the decoded samples. */
static void view_samples(const char *id)
{
    struct srv_request rq;
    struct srv_response rs;

    memset(&rq, 0, sizeof rq);
    memset(&rs, 0, sizeof rs);
    rq.params[0] = id;
    rq.role = SRV_ROLE_ML;
    ck_assert_int_eq(labels_samples(&rq, &rs), SRV_OK);
    ck_assert_uint_eq(rs.status, 200);
    srv_response_release(&rs);
}

START_TEST(test_worker_pass)
{
    uint8_t *env = NULL;
    size_t len = 0;

    TESTDB_REQUIRE();
    worker_db();
    two_tone_envelope(&env, &len);
    add_snapshot(1, env, len);
    add_snapshot(2, env, len / 2);      /* truncated: recorded, never retried */
    free(env);

    ck_assert_int_eq(features_worker_pass(10, record_after), 2);
    ck_assert_uint_eq(g_after_n, 2);
    ck_assert_int_eq(g_after_ids[0], 1);
    ck_assert_int_eq(g_after_ids[1], 2);
    value_is("SELECT string_agg(channel || ':' || round(dominant_hz), ',' ORDER BY channel)"
             " FROM snapshot_features WHERE snapshot_id = 1", "accel_x:125,accel_y:750");
    value_is("SELECT array_length(spectrum, 1) FROM snapshot_features"
             " WHERE snapshot_id = 1 AND channel = 'accel_x'", "64");
    value_is("SELECT round(sum(s)::numeric, 3) FROM snapshot_features, unnest(spectrum) s"
             " WHERE snapshot_id = 1 AND channel = 'accel_x'", "1.000");
    value_is("SELECT coalesce(error, 'ok') FROM feature_jobs WHERE snapshot_id = 1", "ok");
    value_is("SELECT error FROM feature_jobs WHERE snapshot_id = 2",
             "envelope could not be decoded");
    value_is("SELECT count(*) FROM snapshot_features WHERE snapshot_id = 2", "0");
    /* nothing left: the next pass takes nothing and calls nobody */
    ck_assert_int_eq(features_worker_pass(10, record_after), 0);
    ck_assert_uint_eq(g_after_n, 2);
    /* The worker's passes start above a floor.  A short pass moves *last to
     * the highest id there is (6 and 7 done elsewhere, e.g. another server's
     * worker); an id that shows up below the floor later (4: its
     * transaction committed after a higher id was taken) is not seen from
     * the floor but is by a sweep of the ids below it. */
    {
        int64_t last = 0;

        two_tone_envelope(&env, &len);
        add_snapshot(5, env, len);
        add_snapshot(6, env, len);
        add_snapshot(7, env, len);
        value_is("INSERT INTO feature_jobs (snapshot_id) VALUES (6), (7) RETURNING 'ok'", "ok");
        ck_assert_int_eq(features_worker_pass_range(10, 2, INT64_MAX, record_after, &last), 1);
        ck_assert_int_eq(last, 7);
        ck_assert_int_eq(g_after_ids[g_after_n - 1], 5);
        add_snapshot(4, env, len);
        free(env);
        ck_assert_int_eq(features_worker_pass_range(10, 7, INT64_MAX, record_after, &last), 0);
        ck_assert_int_eq(last, 7);
        ck_assert_int_eq(features_worker_pass_range(10, 2, 7, record_after, &last), 1);
        ck_assert_int_eq(g_after_ids[g_after_n - 1], 4);
        value_is("SELECT count(*) FROM snapshot_features WHERE snapshot_id IN (4, 5)", "4");
        value_is("SELECT count(*) FROM snapshot_features WHERE snapshot_id IN (6, 7)", "0");
    }
    /* a bin of exactly 0 (a silent band) is stored as PostgreSQL writes it, "0" */
    value_is("UPDATE snapshot_features SET spectrum[1] = 0 WHERE snapshot_id = 1 RETURNING 'ok'",
             "ok");
    api_get_is("1", 200, "accel_y", 750.0);
    api_get_is("2", 404, NULL, 0);
    api_get_is("x", 400, NULL, 0);
    {
        /* The spectra read the waveform view's decoded samples once the
         * view holds them: the same answer, byte for byte, as from the
         * stored envelope. */
        char *stored = NULL, *held = NULL;
        size_t n_stored = spectrum_body("1", &stored), n_held;

        struct srv_request rq;
        struct srv_response rs;

        view_samples("1");
        /* the stored envelope made unreadable: only the held samples answer */
        PQclear(PQexec(g_admin, "UPDATE snapshots SET envelope = '\\x00'::bytea WHERE id = 1"));
        n_held = spectrum_body("1", &held);
        ck_assert_uint_eq(n_held, n_stored);
        ck_assert(memcmp(held, stored, n_stored) == 0);
        free(held);
        {
            /* channel=NAME: that channel's spectra only, the same numbers;
             * a name the snapshot lacks: none */
            json_t *all = json_loadb(stored, n_stored, 0, NULL), *one, *none;

            g_channel = "accel_y";
            n_held = spectrum_body("1", &held);
            one = json_loadb(held, n_held, 0, NULL);
            free(held);
            g_channel = "no_such_channel";
            n_held = spectrum_body("1", &held);
            none = json_loadb(held, n_held, 0, NULL);
            free(held);
            g_channel = NULL;
            ck_assert_ptr_nonnull(all);
            ck_assert_ptr_nonnull(one);
            ck_assert_ptr_nonnull(none);
            ck_assert_uint_eq(json_array_size(json_object_get(one, "channels")), 1);
            ck_assert(json_equal(json_array_get(json_object_get(one, "channels"), 0),
                                 json_array_get(json_object_get(all, "channels"), 1)));
            ck_assert_uint_eq(json_array_size(json_object_get(none, "channels")), 0);
            json_decref(all);
            json_decref(one);
            json_decref(none);
        }
        free(stored);
        /* gone from the database, gone for the API, held or not */
        PQclear(PQexec(g_admin, "DELETE FROM snapshot_features WHERE snapshot_id = 1;"
                                " DELETE FROM feature_jobs WHERE snapshot_id = 1;"
                                " DELETE FROM snapshots WHERE id = 1"));
        value_is("SELECT count(*) FROM snapshots WHERE id = 1", "0");
        memset(&rq, 0, sizeof rq);
        memset(&rs, 0, sizeof rs);
        rq.params[0] = "1";
        rq.role = SRV_ROLE_ML;
        ck_assert_uint_eq(srv_err_status(features_api_spectrum(&rq, &rs)), 404);
        srv_response_release(&rs);
    }
    PQfinish(g_admin);
    g_admin = NULL;
    db_shutdown();
}
END_TEST

/* Every stored column of a snapshot's feature rows, as one text. */
static char *features_text(int id)
{
    char q[512];

    snprintf(q, sizeof q,
             "SELECT string_agg(concat_ws(' ', channel, mean, std, rms, peak, crest, kurtosis,"
             " dominant_hz, bin_hz, spectrum::text), ';' ORDER BY channel)"
             " FROM snapshot_features WHERE snapshot_id = %d", id);
    return value(q);
}

static void same_features(int a, int b)
{
    char *x = features_text(a), *y = features_text(b);

    ck_assert_msg(strcmp(x, "NULL") != 0, "snapshot %d has no features", a);
    ck_assert_msg(strcmp(x, y) == 0, "%d: %s\n%d: %s", a, x, b, y);
    free(x);
    free(y);
}

/* The envelope the upload handed over (ingest_handoff) and the one read
 * back from the database give the same rows; a handoff whose budget is
 * full refuses, and that snapshot is read back; every pending snapshot gets
 * its features and its job row either way; what the worker will not ask
 * for again is dropped. */
START_TEST(test_worker_handoff)
{
    struct ingest_handoff_stats st;
    uint8_t *env = NULL, *held[2];
    size_t len = 0, held_len[2];
    int64_t last = 0, two[2] = { 30, 31 };

    TESTDB_REQUIRE();
    worker_db();
    two_tone_envelope(&env, &len);

    /* 20 from memory only (its stored envelope made unreadable: had the
     * worker read it back, the job would say so), 21 from the database. */
    ingest_handoff_configure(1u << 20);
    add_snapshot(20, env, len);
    add_snapshot(21, env, len);
    PQclear(PQexec(g_admin, "UPDATE snapshots SET envelope = '\\x00'::bytea WHERE id = 20"));
    ck_assert_int_eq(ingest_handoff_put(20, env, len), 1);
    ck_assert_int_eq(features_worker_pass_range(10, 19, INT64_MAX, NULL, &last), 2);
    ck_assert_int_eq(last, 21);
    value_is("SELECT coalesce(error, 'ok') FROM feature_jobs WHERE snapshot_id = 20", "ok");
    value_is("SELECT coalesce(error, 'ok') FROM feature_jobs WHERE snapshot_id = 21", "ok");
    same_features(20, 21);
    value_is("SELECT string_agg(channel || ':' || round(dominant_hz), ',' ORDER BY channel)"
             " FROM snapshot_features WHERE snapshot_id = 20", "accel_x:125,accel_y:750");
    ingest_handoff_stats(&st);
    ck_assert_uint_eq(st.taken, 1);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.bytes, 0);

    /* Room for one envelope: the second is refused, read back, and both
     * come out as the first two did. */
    ingest_handoff_configure(len + len / 2);
    add_snapshot(22, env, len);
    add_snapshot(23, env, len);
    ck_assert_int_eq(ingest_handoff_put(22, env, len), 1);
    ck_assert_int_eq(ingest_handoff_put(23, env, len), 0);
    ingest_handoff_stats(&st);
    ck_assert_uint_eq(st.kept, 1);
    ck_assert_uint_eq(st.refused, 1);
    ck_assert_int_eq(features_worker_pass_range(10, 21, INT64_MAX, NULL, &last), 2);
    ingest_handoff_stats(&st);
    ck_assert_uint_eq(st.taken, 1);
    ck_assert_uint_eq(st.entries, 0);
    same_features(22, 21);
    same_features(23, 21);
    /* the taken entry freed its room */
    ck_assert_int_eq(ingest_handoff_put(24, env, len), 1);
    /* nothing skipped: every snapshot has its job row */
    value_is("SELECT count(*) FROM snapshots s WHERE NOT EXISTS"
             " (SELECT 1 FROM feature_jobs j WHERE j.snapshot_id = s.id)", "0");

    /* Held for ids the worker will not ask for again: dropped. */
    ingest_handoff_configure(1u << 20);
    ck_assert_int_eq(ingest_handoff_put(30, env, len), 1);
    ck_assert_int_eq(ingest_handoff_put(31, env, len), 1);
    ingest_handoff_forget_upto(30);
    ingest_handoff_stats(&st);
    ck_assert_uint_eq(st.entries, 1);
    ck_assert_uint_eq(st.bytes, len);
    ck_assert_uint_eq(ingest_handoff_take(two, 2, held, held_len), 1);
    ck_assert_ptr_null(held[0]);
    ck_assert_ptr_nonnull(held[1]);
    ck_assert_uint_eq(held_len[1], len);
    ck_assert_mem_eq(held[1], env, len);
    free(held[1]);
    /* off: keeps nothing, and forgets what it held */
    ck_assert_int_eq(ingest_handoff_put(32, env, len), 1);
    ingest_handoff_configure(0);
    ck_assert_int_eq(ingest_handoff_put(33, env, len), 0);
    ingest_handoff_stats(&st);
    ck_assert_uint_eq(st.entries + st.bytes + st.refused, 0);
    free(env);
    PQfinish(g_admin);
    g_admin = NULL;
    db_shutdown();
}
END_TEST

/* The worker as the server runs it, with uploads' envelopes handed over
 * while it runs: every snapshot gets its features, the held ones are
 * used, and the handoff is empty once it caught up. */
START_TEST(test_worker_thread_handoff)
{
    struct ingest_handoff_stats st;
    uint8_t *env = NULL;
    size_t len = 0;
    char *left = NULL;
    int id, i;

    TESTDB_REQUIRE();
    worker_db();
    two_tone_envelope(&env, &len);
    /* stored before the start (as before a restart): read back */
    add_snapshot(100, env, len);
    ck_assert_int_eq(features_worker_start(50, 1u << 20, NULL), SRV_OK);
    for (id = 101; id <= 140; id++) {
        /* held before its row is visible, so that no pass can find the
         * row first (an upload hands over right after its commit) */
        ck_assert_int_eq(ingest_handoff_put(id, env, len), 1);
        add_snapshot(id, env, len);
    }
    for (i = 0; i < 600; i++) {
        free(left);
        left = value("SELECT count(*) FROM snapshots s WHERE NOT EXISTS"
                     " (SELECT 1 FROM feature_jobs j WHERE j.snapshot_id = s.id)");
        if (strcmp(left, "0") == 0)
            break;
        usleep(20000);
    }
    ingest_handoff_stats(&st);
    features_worker_stop();
    ck_assert_str_eq(left, "0");
    free(left);
    ck_assert_uint_eq(st.kept, 40);
    ck_assert_uint_eq(st.taken, 40);
    ck_assert_uint_eq(st.entries, 0);
    value_is("SELECT count(*) FROM feature_jobs WHERE snapshot_id BETWEEN 100 AND 140"
             " AND error IS NULL", "41");
    same_features(100, 140);
    ingest_handoff_stats(&st);
    ck_assert_uint_eq(st.budget, 0);    /* stopped: off */
    free(env);
    PQfinish(g_admin);
    g_admin = NULL;
    db_shutdown();
}
END_TEST

Suite *features_suite(void);
Suite *features_suite(void)
{
    Suite *s = suite_create("features");
    TCase *tc = tcase_create("pure");

    tcase_add_test(tc, test_sine_time_features);
    tcase_add_test(tc, test_sine_dominant_frequency);
    tcase_add_test(tc, test_two_tone_band_energy);
    tcase_add_test(tc, test_band_energy_partial_bins);
    tcase_add_test(tc, test_noise_kurtosis);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_kept_plans_same_answers);
    tcase_add_test(tc, test_from_envelope);
    suite_add_tcase(s, tc);
    tc = tcase_create("worker");
    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_worker_pass);
    tcase_add_test(tc, test_worker_handoff);
    tcase_add_test(tc, test_worker_thread_handoff);
    suite_add_tcase(s, tc);
    return s;
}
