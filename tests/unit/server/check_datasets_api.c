/* check_datasets_api.c - datasets, exports, export jobs and models through
 * the server in-process, over real HTTP (libcurl) and a real PostgreSQL:
 * devices upload wire_encode'd snapshots, labels are written as operators
 * and rules would, and the ML routes are checked against their contract
 * (201/202/404/422, identical bytes on re-export, the manifest's hashes
 * match the archive's entries, a signed blob that model_load accepts with
 * the key the server publishes).  Needs DATABASE_URL; skips without it. */
#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "schema/model.h"
#include "schema/wire.h"
#include "server/auth/auth.h"
#include "server/datasets/datasets.h"
#include "server/datasets/ds_int.h"
#include "server/db/db.h"
#include "server/http/http.h"
#include "server/ingest/ingest.h"
#include "server/text/text.h"
#include "server/models/models.h"
#include "server/models/models_int.h"
#include "testsrv.h"

#define SECRET "test-enroll-secret"
#define N_DEV 4
#define SNAPS_PER_DEV 3
#define NS 256                      /* samples per channel per snapshot */

struct fx {
    struct testsrv srv;
    char token[AUTH_TOKEN_LEN + 1];
    char op_token[AUTH_TOKEN_LEN + 1];
    char dir[256];
    uint8_t sk[N_DEV][64];          /* each device's signing key, to upload more */
};

static long http(struct fx *f, const char *method, const char *path, const char *body,
                 size_t len, const char *auth, struct testsrv_reply *rep)
{
    return testsrv_request(&f->srv, method, path, body, len, auth, NULL, rep);
}

static long post_json(struct fx *f, const char *path, const char *body, const char *tok,
                      struct testsrv_reply *rep)
{
    return http(f, "POST", path, body ? body : "", body ? strlen(body) : 0, tok, rep);
}

/* Devices dev-0..3 each upload 3 snapshots: two quiet (labeled normal by a
 * person) and one with a strong 50 Hz component (labeled imbalance). */
static void fx_start(struct fx *f)
{
    int d, s, i;
    char seedpath[300];

    memset(f, 0, sizeof *f);
    testsrv_db();
    testsrv_add_token("ml", f->token, sizeof f->token);
    testsrv_add_token("operator", f->op_token, sizeof f->op_token);
    snprintf(f->dir, sizeof f->dir, "%s/ds_api_XXXXXX", P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    ds_set_export_dir(f->dir);
    snprintf(seedpath, sizeof seedpath, "%s/model.key", f->dir);
    testsrv_model_key(seedpath);
    testsrv_listen(&f->srv, SECRET);

    for (d = 0; d < N_DEV; d++) {
        uint8_t pk[32], sk[64];
        char dev[16];

        crypto_sign_keypair(pk, sk);
        memcpy(f->sk[d], sk, sizeof sk);
        snprintf(dev, sizeof dev, "dev-%d", d);
        testsrv_register(&f->srv, dev, pk, SECRET);
        for (s = 0; s < SNAPS_PER_DEV; s++) {
            struct wire_meta m;
            float x[2 * NS];

            testsrv_meta_2ch(&m, dev, (uint64_t)s + 1,
                             1714564800000000LL + (int64_t)(d * 10 + s) * 1000000, NS, "vib_x",
                             "vib_y");
            for (i = 0; i < 2 * NS; i++) {
                float noise = (float)((i * 7919 + d * 131 + s * 17) % 101) / 1000.0f;

                x[i] = noise + (s == 2 ? 2.0f * (float)((i % 20) < 10 ? 1 : -1) : 0.0f);
            }
            testsrv_upload(&f->srv, &m, x, sk);
        }
    }
    /* Human labels over each whole snapshot; a weak rule label too (it is
     * dropped where a human labeled, and kept out by a sources filter). */
    testsrv_sql("INSERT INTO labels (snapshot_id, start_s, end_s, channels, class, created_by) "
                "SELECT id, 0, 0.256, '{0}', CASE WHEN seq = 3 THEN 'imbalance' ELSE 'normal' END, 'alice' "
                "FROM snapshots");
    testsrv_sql("INSERT INTO weak_labels (snapshot_id, class, source, confidence) "
                "SELECT id, 'misalignment', 'rule', 0.4 FROM snapshots WHERE device_id = 'dev-0' AND seq = 1");
}

static void fx_stop(struct fx *f)
{
    char cmd[300];

    testsrv_stop(&f->srv);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char ds_body[] =
    "{\"name\":\"bearings\",\"filter\":{\"sources\":[\"human\"]},"
    "\"window\":{\"length_s\":0.064,\"stride_s\":0.064},"
    "\"split\":{\"by\":\"device\",\"fractions\":[0.5,0.25,0.25],\"seed\":7}}";

/* The ids of a GET /api/v1/datasets answer's items, in order, as "1,2,3",
 * and its next (0 when null). */
static void datasets_page(struct fx *f, const char *path, char *ids, size_t cap, int64_t *next)
{
    struct testsrv_reply rep;
    json_t *j, *items;
    size_t i, n = 0;

    ck_assert_int_eq(http(f, "GET", path, NULL, 0, f->token, &rep), 200);
    j = testsrv_json(&rep);
    free(rep.body);
    items = json_object_get(j, "items");
    ids[0] = '\0';
    for (i = 0; i < json_array_size(items); i++)
        n += (size_t)snprintf(ids + n, cap - n, "%s%lld", i ? "," : "",
                              (long long)json_integer_value(json_object_get(json_array_get(items, i), "id")));
    /* next is there on every page: null on the last */
    ck_assert(json_is_null(json_object_get(j, "next")) || json_is_integer(json_object_get(j, "next")));
    *next = json_integer_value(json_object_get(j, "next"));
    json_decref(j);
}

/* GET /api/v1/datasets pages as the snapshots and devices do (limit,
 * after, next; offset refused), oldest first as the unpaged list was.
 * first is the one dataset there is; three more are added for the test and
 * removed after. */
static void check_datasets_paged(struct fx *f, int64_t first)
{
    static const char *const bad[] = { "/api/v1/datasets?limit=0", "/api/v1/datasets?limit=501",
                                       "/api/v1/datasets?after=x", "/api/v1/datasets?after=0",
                                       "/api/v1/datasets?offset=1" };
    struct testsrv_reply rep;
    char path[96], ids[96], want[96];
    int64_t next;
    size_t k;

    testsrv_sql("INSERT INTO datasets (name, definition, created_by)"
                " SELECT 'paged-' || g, '{}', 'test' FROM generate_series(1, 3) g");
    datasets_page(f, "/api/v1/datasets", ids, sizeof ids, &next);
    snprintf(want, sizeof want, "%lld,%lld,%lld,%lld", (long long)first, (long long)first + 1,
             (long long)first + 2, (long long)first + 3);
    ck_assert_str_eq(ids, want);
    ck_assert_int_eq(next, 0);
    datasets_page(f, "/api/v1/datasets?limit=3", ids, sizeof ids, &next);
    snprintf(want, sizeof want, "%lld,%lld,%lld", (long long)first, (long long)first + 1,
             (long long)first + 2);
    ck_assert_str_eq(ids, want);
    ck_assert_int_eq(next, first + 2);
    snprintf(path, sizeof path, "/api/v1/datasets?limit=3&after=%lld", (long long)next);
    datasets_page(f, path, ids, sizeof ids, &next);
    snprintf(want, sizeof want, "%lld", (long long)first + 3);
    ck_assert_str_eq(ids, want);
    ck_assert_int_eq(next, 0);
    /* exactly a page: no next */
    datasets_page(f, "/api/v1/datasets?limit=4", ids, sizeof ids, &next);
    ck_assert_int_eq(next, 0);
    for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ck_assert_int_eq(http(f, "GET", bad[k], NULL, 0, f->token, &rep), 400);
        ck_assert_msg(strstr(rep.body, k < 2 ? "1..500" : k < 4 ? "dataset id" : "after="), "%s: %s",
                      bad[k], rep.body);
        free(rep.body);
    }
    testsrv_sql("DELETE FROM datasets WHERE name LIKE 'paged-%'");
}

/* X.npy and F.npy as read back (malloc'd; freed by check_f_is_features). */
static char *g_x_npy, *g_f_npy;
static size_t g_x_len, g_f_len;

/* Read an npz back with libarchive: entry names, each entry's sha256, and
 * the manifest.json text. */
static void read_npz(const char *buf, size_t len, json_t **shas, char **manifest, size_t *x_bytes)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    int n = 0;

    *shas = json_object();
    *manifest = NULL;
    archive_read_support_format_zip(a);
    ck_assert_int_eq(archive_read_open_memory(a, buf, len), ARCHIVE_OK);
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        size_t sz = (size_t)archive_entry_size(e);
        char *data = malloc(sz + 1), hex[65];
        uint8_t sha[32];

        ck_assert_int_eq((long)archive_read_data(a, data, sz), (long)sz);
        data[sz] = '\0';
        if (strcmp(name, "manifest.json") == 0) {
            *manifest = data;
            data = NULL;
        } else {
            crypto_hash_sha256(sha, (const uint8_t *)data, sz);
            sodium_bin2hex(hex, sizeof hex, sha, 32);
            json_object_set_new(*shas, name, json_string(hex));
            if (strcmp(name, "X.npy") == 0) {
                *x_bytes = sz;
                g_x_npy = data;
                g_x_len = sz;
                data = NULL;
            } else if (strcmp(name, "F.npy") == 0) {
                g_f_npy = data;
                g_f_len = sz;
                data = NULL;
            }
        }
        free(data);
        n++;
    }
    archive_read_free(a);
    ck_assert_int_eq(n, 9);
}

/* F holds, row for row, the feature set of X's windows as the server (and
 * the agent) computes it: what a model of the version is trained on. */
static void check_f_is_features(const json_t *man)
{
    static struct ds_info in;
    const json_t *feat = json_object_get(man, "features");
    size_t xo, fo, n, d;
    float *f;

    ck_assert_ptr_nonnull(g_x_npy);
    ck_assert_ptr_nonnull(g_f_npy);
    memset(&in, 0, sizeof in);
    in.channel_count = (unsigned)json_array_size(json_object_get(man, "channels"));
    in.window_samples = (uint32_t)json_integer_value(json_object_get(man, "window_samples"));
    in.sample_rate = json_number_value(json_object_get(man, "sample_rate"));
    d = ds_feature_count(&in);
    ck_assert_uint_eq(d, in.channel_count * 7);
    ck_assert_str_eq(json_string_value(json_object_get(feat, "set")), "stats");
    ck_assert_uint_eq(json_array_size(json_object_get(feat, "names")), d);
    /* .npy v1: 10 bytes then the header of the length at offset 8 */
    xo = 10 + (size_t)((uint8_t)g_x_npy[8] | (uint8_t)g_x_npy[9] << 8);
    fo = 10 + (size_t)((uint8_t)g_f_npy[8] | (uint8_t)g_f_npy[9] << 8);
    ck_assert_ptr_nonnull(strstr(g_f_npy + 10, "'shape': (48, 14)"));
    n = (g_x_len - xo) / (4 * (size_t)in.channel_count * in.window_samples);
    ck_assert_uint_eq(g_f_len - fo, n * d * 4);
    f = malloc(d * sizeof *f);
    for (size_t i = 0; i < n; i++) {
        float x[2 * 64];

        ck_assert_uint_eq((size_t)in.channel_count * in.window_samples, 2 * 64);
        memcpy(x, g_x_npy + xo + i * sizeof x, sizeof x);
        ck_assert_int_eq(ds_window_features(&in, x, f), 0);
        ck_assert(memcmp(f, g_f_npy + fo + i * d * 4, d * 4) == 0);
    }
    free(f);
    free(g_x_npy);
    free(g_f_npy);
    g_x_npy = g_f_npy = NULL;
}

static json_t *wait_for(struct fx *f, const char *path, const char *key, const char *until)
{
    struct testsrv_reply rep;
    json_t *j = NULL;
    int i;

    for (i = 0; i < 200; i++) {
        ck_assert_int_eq(http(f, "GET", path, NULL, 0, f->token, &rep), 200);
        j = testsrv_json(&rep);
        free(rep.body);
        if (strcmp(json_string_value(json_object_get(j, key)), until) == 0 ||
            strcmp(json_string_value(json_object_get(j, key)), "failed") == 0)
            return j;
        json_decref(j);
        usleep(50000);
    }
    ck_abort_msg("%s never reached %s", path, until);
    return NULL;
}

/* POST /api/v1/models with body (202), wait for the training to finish and
 * fail the test unless it is done; the model's JSON, its id in *id. */
/* A timestamp field written as the whole API writes them: RFC 3339 in UTC,
 * "2026-01-02T03:04:05.678901Z", not PostgreSQL's "2026-01-02 03:04:05+00". */
static void assert_rfc3339z(const json_t *obj, const char *key)
{
    const char *t = json_string_value(json_object_get(obj, key));
    int y, mo, d, h, mi, sec, us, n = 0;

    ck_assert_msg(t != NULL, "%s missing", key);
    ck_assert_msg(sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ%n", &y, &mo, &d, &h, &mi, &sec, &us, &n) == 7 &&
                      n == 27 && t[n] == '\0',
                  "%s is '%s'", key, t);
}

/* models__training_started for the stop test: holds the training on its
 * thread, its row saying 'training', until hold_release. */
static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static int64_t hold_id;             /* the model held, 0 before */
static int hold_open;

static void hold_training(int64_t id)
{
    pthread_mutex_lock(&hold_mu);
    hold_id = id;
    pthread_cond_broadcast(&hold_cv);
    while (!hold_open)
        pthread_cond_wait(&hold_cv, &hold_mu);
    pthread_mutex_unlock(&hold_mu);
}

/* The model the hook holds, waiting up to 60 s for one (0: none came). */
static int64_t hold_wait(void)
{
    struct timespec until;
    int64_t id;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&hold_mu);
    while (!hold_id && pthread_cond_timedwait(&hold_cv, &hold_mu, &until) == 0)
        ;
    id = hold_id;
    pthread_mutex_unlock(&hold_mu);
    return id;
}

static void hold_release(void)
{
    pthread_mutex_lock(&hold_mu);
    hold_open = 1;
    pthread_cond_broadcast(&hold_cv);
    pthread_mutex_unlock(&hold_mu);
}

static json_t *train_model(struct fx *f, const char *body, long *id)
{
    struct testsrv_reply rep;
    char path[64];
    json_t *j, *m;

    ck_assert_int_eq(post_json(f, "/api/v1/models", body, f->token, &rep), 202);
    j = testsrv_json(&rep);
    *id = (long)json_integer_value(json_object_get(j, "id"));
    json_decref(j);
    free(rep.body);
    snprintf(path, sizeof path, "/api/v1/models/%ld", *id);
    m = wait_for(f, path, "status", "done");
    ck_assert_msg(strcmp(json_string_value(json_object_get(m, "status")), "done") == 0, "%s",
                  json_string_value(json_object_get(m, "error")));
    assert_rfc3339z(m, "created_at");
    assert_rfc3339z(m, "finished_at");
    return m;
}

/* The relations export of (1, version): its manifest's map must be mod's
 * (the model's blob loaded), float for float.  The manifest (the caller
 * decrefs it) for further checks; X and F are left in g_x_npy and g_f_npy. */
static json_t *relations_export_manifest(struct fx *f, int version, const struct model *mod)
{
    struct testsrv_reply rep;
    char path[96], *mtext;
    json_t *shas, *man, *map;
    size_t xb;

    snprintf(path, sizeof path, "/api/v1/datasets/1/versions/%d/export?format=npz&features=relations",
             version);
    ck_assert_int_eq(http(f, "GET", path, NULL, 0, f->token, &rep), 200);
    read_npz(rep.body, rep.len, &shas, &mtext, &xb);
    free(rep.body);
    man = json_loads(mtext, 0, NULL);
    ck_assert_ptr_nonnull(man);
    free(mtext);
    json_decref(shas);
    map = json_object_get(json_object_get(man, "features"), "map");
    ck_assert_uint_eq(json_integer_value(json_object_get(map, "rank")), mod->rel_rank);
    for (size_t i = 0; i < 2; i++) {
        ck_assert((float)json_real_value(json_array_get(json_object_get(map, "mean"), i)) ==
                  mod->rel[i]);
        ck_assert((float)json_real_value(json_array_get(json_object_get(map, "scale"), i)) ==
                  mod->rel[2 + i]);
    }
    for (size_t i = 0; i < 2 * mod->rel_rank; i++)
        ck_assert((float)json_real_value(json_array_get(json_object_get(map, "basis"), i)) ==
                  mod->rel[4 + i]);
    return man;
}

START_TEST(test_datasets_contract)
{
    struct fx f;
    struct testsrv_reply rep, rep2;
    json_t *j, *shas, *man, *files, *it;
    char path[256], *mtext = NULL;
    const char *k;
    size_t xb = 0, lines = 0, i;
    int64_t id;

    TESTDB_REQUIRE();
    fx_start(&f);
    /* Roles: an operator reads but does not define datasets. */
    ck_assert_int_eq(post_json(&f, "/api/v1/datasets", ds_body, f.op_token, &rep), 403);
    free(rep.body);
    ck_assert_int_eq(post_json(&f, "/api/v1/datasets", "{\"name\":\"x\"}", f.token, &rep), 400);
    free(rep.body);
    ck_assert_int_eq(post_json(&f, "/api/v1/datasets", "[]", f.token, &rep), 400);
    ck_assert_ptr_nonnull(strstr(rep.body, "body must be a JSON object"));
    free(rep.body);
    /* A filter refused names the key at fault, a time bound PostgreSQL
     * cannot read included: refused when defined (nothing stored), not
     * at every freeze. */
    {
        static const char *const bad[][2] = {
            { "\"min_confidence\":2", "filter.min_confidence" },
            { "\"sources\":\"human\"", "filter.sources" },
            { "\"equipment_types\":[\"\"]", "filter.equipment_types" },
            { "\"sites\":\"plant-1\"", "filter.sites" },
            { "\"classes\":[1]", "filter.classes" },
            { "\"from\":3", "filter.from" },
            { "\"to\":\"the day after\"", "filter.to is not a timestamp PostgreSQL reads" },
            { "\"from\":\"2026-13-45\"", "filter.from is not a timestamp PostgreSQL reads" },
        };
        char body[512];

        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            snprintf(body, sizeof body, "{\"name\":\"x\",\"filter\":{%s},"
                     "\"window\":{\"length_s\":1,\"stride_s\":1},"
                     "\"split\":{\"by\":\"device\",\"fractions\":[1,0,0]}}", bad[i][0]);
            ck_assert_int_eq(post_json(&f, "/api/v1/datasets", body, f.token, &rep), 400);
            j = testsrv_json(&rep);
            k = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
            ck_assert_msg(k && strncmp(k, bad[i][1], strlen(bad[i][1])) == 0,
                          "%s: %s", bad[i][0], rep.body);
            json_decref(j);
            free(rep.body);
        }
        ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM datasets"), 0);
    }
    /* A body over the limit: 413 naming the limit, as JSON. */
    {
        size_t big = 70 * 1024;
        char *body = malloc(big + 1);

        ck_assert_ptr_nonnull(body);
        memset(body, ' ', big);
        body[big] = '\0';
        ck_assert_int_eq(post_json(&f, "/api/v1/datasets", body, f.token, &rep), 413);
        ck_assert_str_eq(testsrv_error_code(&rep), "too_large");
        ck_assert_msg(strstr(rep.body, "limit of 65536 bytes"), "%s", rep.body);
        free(rep.body);
        free(body);
    }
    /* A key the server does not know, at any level, is left out of the
     * stored definition and named in the answer (a misspelt filter widens
     * the set: the client must hear of it); a client's own extra key still
     * defines the dataset, as it always did. */
    ck_assert_int_eq(post_json(&f, "/api/v1/datasets",
                               "{\"name\":\"x\",\"note\":\"mine\","
                               "\"filter\":{\"equipment_type\":[\"pump\"]},"
                               "\"window\":{\"length_s\":1,\"stride_s\":1,\"hop\":2},"
                               "\"split\":{\"by\":\"device\",\"fractions\":[1,0,0],\"k\":1}}",
                               f.token, &rep), 201);
    j = testsrv_json(&rep);
    ck_assert_msg(json_array_size(json_object_get(j, "ignored")) == 4, "%s", rep.body);
    for (i = 0; i < 4; i++) {
        static const char *const want[] = { "note", "window.hop", "split.k",
                                            "filter.equipment_type" };
        size_t n;

        for (n = 0; n < 4; n++)
            if (strcmp(json_string_value(json_array_get(json_object_get(j, "ignored"), n)),
                       want[i]) == 0)
                break;
        ck_assert_msg(n < 4, "%s not in %s", want[i], rep.body);
    }
    json_decref(j);
    free(rep.body);
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM datasets WHERE definition::text LIKE "
                                    "'%equipment_type\"%' OR definition::text LIKE '%note%' OR "
                                    "definition::text LIKE '%hop%'"), 0);
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM datasets WHERE definition::text LIKE "
                                    "'%min_confidence%'"), 1);
    /* A definition without unknown keys has no "ignored". */
    ck_assert_int_eq(post_json(&f, "/api/v1/datasets", ds_body, f.token, &rep), 201);
    j = testsrv_json(&rep);
    ck_assert_ptr_null(json_object_get(j, "ignored"));
    json_decref(j);
    free(rep.body);
    testsrv_sql("DELETE FROM datasets");
    ck_assert_int_eq(testsrv_scalar("SELECT count(*) FROM datasets"), 0);
    ck_assert_int_eq(post_json(&f, "/api/v1/datasets", ds_body, f.token, &rep), 201);
    j = testsrv_json(&rep);
    id = json_integer_value(json_object_get(j, "id"));
    ck_assert_int_gt(id, 0);
    json_decref(j);
    free(rep.body);

    snprintf(path, sizeof path, "/api/v1/datasets/%lld/versions", (long long)id);
    ck_assert_int_eq(post_json(&f, path, NULL, f.token, &rep), 201);
    j = testsrv_json(&rep);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "version")), 1);
    json_decref(j);
    free(rep.body);
    ck_assert_int_eq(post_json(&f, "/api/v1/datasets/999/versions", NULL, f.token, &rep), 404);
    free(rep.body);

    /* The version: 12 snapshots x 4 windows of 64 samples, no device in
     * two splits, the weak rule label filtered out. */
    snprintf(path, sizeof path, "/api/v1/datasets/%lld/versions/1", (long long)id);
    ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
    j = testsrv_json(&rep);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "n_windows")), N_DEV * SNAPS_PER_DEV * 4);
    ck_assert_int_eq(json_array_size(json_object_get(json_object_get(j, "summary"), "classes")), 2);
    /* The content hash of these fixed snapshots and labels: a change to
     * what the hash covers, or how, shows here. */
    ck_assert_str_eq(json_string_value(json_object_get(j, "content_sha256")),
                     "aa3cef839713e9a533dc0366b551603e31e758ffb498e89accf88aba854d505f");
    assert_rfc3339z(j, "created_at");
    json_decref(j);
    free(rep.body);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/datasets", NULL, 0, f.token, &rep), 200);
    j = testsrv_json(&rep);
    assert_rfc3339z(json_array_get(json_object_get(j, "items"), 0), "created_at");
    json_decref(j);
    free(rep.body);
    check_datasets_paged(&f, id);
    /* who made the dataset and its version: the ml token, by name and id */
    snprintf(path, sizeof path, "SELECT count(*) FROM datasets d JOIN dataset_versions v"
             " ON v.dataset_id = d.id, api_tokens k WHERE d.id = %lld AND k.name = 'ml'"
             " AND d.created_by = 'token:ml#' || k.id AND v.created_by = d.created_by", (long long)id);
    ck_assert_int_eq(testsrv_scalar(path), 1);
    testsrv_sql("DO $$ BEGIN IF EXISTS (SELECT grp FROM dataset_windows GROUP BY grp "
                "HAVING count(DISTINCT split) > 1) THEN RAISE 'group in two splits'; END IF; END $$");

    /* Export twice: the same bytes; the manifest matches the entries. */
    snprintf(path, sizeof path, "/api/v1/datasets/%lld/versions/1/export?format=npz", (long long)id);
    ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
    ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep2), 200);
    ck_assert_uint_eq(rep.len, rep2.len);
    ck_assert(memcmp(rep.body, rep2.body, rep.len) == 0);
    free(rep2.body);
    read_npz(rep.body, rep.len, &shas, &mtext, &xb);
    ck_assert_uint_eq(xb, 128 + (size_t)48 * 2 * 64 * 4);   /* header + N*C*T float32 */
    snprintf(path, sizeof path, "/api/v1/datasets/%lld/versions/1/manifest", (long long)id);
    ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep2), 200);
    ck_assert_ptr_nonnull(mtext);
    ck_assert_str_eq(rep2.body, mtext);
    man = testsrv_json(&rep2);
    files = json_object_get(man, "files");
    ck_assert_int_eq(json_object_size(files), 8);
    check_f_is_features(man);
    json_object_foreach(shas, k, it)
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(files, k), "sha256")),
                         json_string_value(it));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(man, "class_counts"), "imbalance")), 16);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(man, "label_sources"), "human")), 12);
    ck_assert(json_real_value(json_object_get(json_object_get(man, "class_weights"), "imbalance")) > 1.4);
    json_decref(man);
    json_decref(shas);
    free(mtext);
    free(rep2.body);

    /* jsonl: one line per window; csv: a header too. */
    snprintf(path, sizeof path, "/api/v1/datasets/%lld/versions/1/export?format=jsonl", (long long)id);
    ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep2), 200);
    for (i = 0; i < rep2.len; i++)
        lines += rep2.body[i] == '\n';
    ck_assert_uint_eq(lines, 48);
    free(rep2.body);
    snprintf(path, sizeof path, "/api/v1/datasets/%lld/versions/1/export?format=csv", (long long)id);
    ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep2), 200);
    ck_assert(strncmp(rep2.body, "row,snapshot_id,", 16) == 0);
    free(rep2.body);
    snprintf(path, sizeof path, "/api/v1/datasets/%lld/versions/1/export?format=xls", (long long)id);
    ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep2), 400);
    free(rep2.body);
    snprintf(path, sizeof path, "/api/v1/datasets/%lld/versions/9/export", (long long)id);
    ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep2), 404);
    free(rep2.body);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/datasets/424242", NULL, 0, f.token, &rep2), 404);
    free(rep2.body);

    /* An export job gives the same bytes as the stream, with progress. */
    snprintf(path, sizeof path, "/api/v1/datasets/%lld/versions/1/export-jobs", (long long)id);
    ck_assert_int_eq(post_json(&f, path, "{\"format\":\"npz\"}", f.token, &rep2), 202);
    j = testsrv_json(&rep2);
    free(rep2.body);
    snprintf(path, sizeof path, "/api/v1/export-jobs/%lld", (long long)json_integer_value(json_object_get(j, "id")));
    json_decref(j);
    j = wait_for(&f, path, "status", "done");
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "done");
    assert_rfc3339z(j, "created_at");
    ck_assert(json_real_value(json_object_get(j, "percent")) == 100.0);
    json_decref(j);
    strcat(path, "/file");
    ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep2), 200);
    ck_assert_uint_eq(rep2.len, rep.len);
    ck_assert(memcmp(rep.body, rep2.body, rep.len) == 0);
    free(rep2.body);
    free(rep.body);

    /* A job whose id was lost is found in the list: newest first, paged
     * by before / next, narrowed to a dataset. */
    snprintf(path, sizeof path, "/api/v1/datasets/%lld/versions/1/export-jobs", (long long)id);
    ck_assert_int_eq(post_json(&f, path, "{\"format\":\"csv\"}", f.token, &rep2), 202);
    free(rep2.body);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/export-jobs?limit=1", NULL, 0, f.token, &rep2), 200);
    j = testsrv_json(&rep2);
    free(rep2.body);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "items")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(j, "items"), 0),
                                                       "format")), "csv");
    ck_assert(json_is_integer(json_object_get(j, "next")));
    snprintf(path, sizeof path, "/api/v1/export-jobs?limit=1&before=%lld",
             (long long)json_integer_value(json_object_get(j, "next")));
    json_decref(j);
    ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep2), 200);
    j = testsrv_json(&rep2);
    free(rep2.body);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(j, "items"), 0),
                                                       "status")), "done");
    ck_assert(json_is_real(json_object_get(json_array_get(json_object_get(j, "items"), 0), "percent")));
    ck_assert(json_is_null(json_object_get(j, "next")));
    json_decref(j);
    snprintf(path, sizeof path, "/api/v1/export-jobs?dataset_id=%lld", (long long)id + 1000);
    ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep2), 200);
    j = testsrv_json(&rep2);
    free(rep2.body);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "items")), 0);
    json_decref(j);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/export-jobs?limit=0", NULL, 0, f.token, &rep2), 400);
    free(rep2.body);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/export-jobs?offset=5", NULL, 0, f.token, &rep2), 400);
    free(rep2.body);
    ck_assert_int_eq(http(&f, "GET", "/api/v1/export-jobs?dataset_id=x", NULL, 0, f.token, &rep2), 400);
    free(rep2.body);

    /* A job running when serve stops ends at its next step: its row failed
     * with the reason, no .part file left (it stayed 'running', holding
     * quota, with its half file, for ever). */
    ck_assert_int_eq(ds_jobs_stop(5000), 0);
    snprintf(path, sizeof path, "/api/v1/datasets/%lld/versions/1/export-jobs", (long long)id);
    ck_assert_int_eq(post_json(&f, path, "{\"format\":\"npz\"}", f.token, &rep2), 202);
    j = testsrv_json(&rep2);
    free(rep2.body);
    snprintf(path, sizeof path, "/api/v1/export-jobs/%lld",
             (long long)json_integer_value(json_object_get(j, "id")));
    json_decref(j);
    j = wait_for(&f, path, "status", "done");
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "failed");
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(j, "error")), "server stopped"));
    json_decref(j);
    {
        DIR *d = opendir(f.dir);
        struct dirent *de;

        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d)))
            ck_assert_msg(!strstr(de->d_name, ".part"), "%s left behind", de->d_name);
        closedir(d);
    }
    ds__jobs_resume();
    fx_stop(&f);
}
END_TEST

START_TEST(test_split_impossible_422)
{
    struct fx f;
    struct testsrv_reply rep;
    json_t *j;
    const char *msg;

    TESTDB_REQUIRE();
    fx_start(&f);
    /* Every device is of no equipment type: one group, so validation and
     * test stay empty and the first class present lacks examples. */
    ck_assert_int_eq(post_json(&f, "/api/v1/datasets",
                               "{\"name\":\"one group\",\"window\":{\"length_s\":0.064,\"stride_s\":0.064},"
                               "\"split\":{\"by\":\"equipment_type\",\"fractions\":[0.6,0.2,0.2]}}",
                               f.token, &rep), 201);
    free(rep.body);
    ck_assert_int_eq(post_json(&f, "/api/v1/datasets/1/versions", NULL, f.token, &rep), 422);
    j = testsrv_json(&rep);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "unprocessable");
    msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    ck_assert_msg(strstr(msg, "class \"imbalance\"") || strstr(msg, "class \"normal\"") ||
                  strstr(msg, "class \"misalignment\""), "%s", msg);
    json_decref(j);
    free(rep.body);
    fx_stop(&f);
}
END_TEST

static json_t *fs_rel(json_t *features)
{
    return json_object_get(features, "relations");
}

/* GET path with the ml token: status want, and the error code when it is
 * not 200. */
static void queue_refused(struct fx *f, const char *path, long want, const char *code)
{
    struct testsrv_reply rep;

    ck_assert_int_eq(http(f, "GET", path, NULL, 0, f->token, &rep), want);
    ck_assert_str_eq(testsrv_error_code(&rep), code);
    free(rep.body);
}

/* The queue's items at path (the caller decrefs the whole answer). */
static json_t *queue_items(struct fx *f, const char *path, json_t **items)
{
    struct testsrv_reply rep;
    json_t *j;

    ck_assert_int_eq(http(f, "GET", path, NULL, 0, f->token, &rep), 200);
    j = testsrv_json(&rep);
    free(rep.body);
    *items = json_object_get(j, "items");
    ck_assert_ptr_nonnull(*items);
    return j;
}

/* What the devices compute of snapshot snap (sum: its windows' softmax
 * vectors over n_classes, used of them): the argmax, by its index in the
 * version's classes, and its averaged probability are what the table holds
 * for model id. */
static void assert_predicted(long id, int64_t snap, const double *sum, unsigned n_classes,
                             size_t used)
{
    unsigned top = 0;
    char q[512];

    for (unsigned c = 1; c < n_classes; c++)
        top = sum[c] > sum[top] ? c : top;
    snprintf(q, sizeof q, "SELECT count(*) FROM model_snapshot_predictions p,"
             " dataset_versions v WHERE p.model_id = %ld AND p.snapshot_id = %lld"
             " AND v.dataset_id = 1 AND v.version = 1"
             " AND p.class = v.summary->'classes'->>%u"
             " AND abs(p.probability - %.9g) < 1e-5", id, (long long)snap, top,
             sum[top] / (double)used);
    ck_assert_msg(testsrv_scalar(q) == 1, "snapshot %lld: its device predicts class %u",
                  (long long)snap, top);
}

/* A snapshot nobody labels (detector "threshold"): quiet, with a tenth of
 * the imbalance snapshots' square wave, so that the centroid model is not
 * sure of it (a probability well inside (0.5, 1)).  x: its samples
 * (2 x NS, planar, as uploaded). */
#define UNL_AMP 0.2f
static void unlabeled_samples(int d, int seq, float *x)
{
    for (int i = 0; i < 2 * NS; i++) {
        float noise = (float)((i * 7919 + d * 131 + seq * 17) % 101) / 1000.0f;

        x[i] = noise + UNL_AMP * (float)((i % 20) < 10 ? 1 : -1);
    }
}

/* Device d uploads it as seq; its id. */
static int64_t upload_unlabeled(struct fx *f, int d, int seq)
{
    struct wire_meta m;
    float x[2 * NS];
    char dev[16], q[160];

    snprintf(dev, sizeof dev, "dev-%d", d);
    testsrv_meta_2ch(&m, dev, (uint64_t)seq, 1714564800000000LL + (int64_t)(d * 10 + seq) * 1000000,
                     NS, "vib_x", "vib_y");
    unlabeled_samples(d, seq, x);
    testsrv_upload(&f->srv, &m, x, f->sk[d]);
    snprintf(q, sizeof q, "SELECT id FROM snapshots WHERE device_id = '%s' AND seq = %d", dev, seq);
    return testsrv_scalar(q);
}

/* test_models' snapshots outside version 1: UNL_DEV's UNL_SEQ, received
 * before the version was frozen and labeled by nobody (predicted), and its
 * UNL_LATE_SEQ, received after (not predicted). */
#define UNL_DEV 1
#define UNL_SEQ 10
#define UNL_LATE_SEQ 11

/* The device-parity invariant for the snapshot no label reached
 * (UNL_DEV's UNL_SEQ, snap): its windows cut as the version cuts its own
 * (64 samples every 64 from the first), their features as the blob the
 * server serves (mod, a centroid model of the moments set: the same blob
 * for every device) computes them on the device, softmax vectors averaged,
 * argmax: the class and probability the table holds. */
static void check_unlabeled_parity(long id, const struct model *mod, int64_t snap)
{
    struct relations_map rm;
    struct featureset_spec spec;
    float x[2 * NS], fv[MODEL_MAX_FEATURES], p[MODEL_MAX_CLASSES];
    double sum[MODEL_MAX_CLASSES] = { 0 };
    size_t used = 0;

    unlabeled_samples(UNL_DEV, UNL_SEQ, x);
    model_feature_spec(mod, &rm, &spec);
    ck_assert_uint_eq(featureset_scratch_floats(&spec), 0);
    for (size_t j = 0; j + 64 <= NS; j += 64) {
        ck_assert_int_eq(featureset_compute(&spec, x + j, NS, 2, NULL, 0, fv), FEATURESET_OK);
        model_classify(mod, fv, mod->n_features, p);
        for (unsigned c = 0; c < mod->n_classes; c++)
            sum[c] += p[c];
        used++;
    }
    ck_assert_uint_eq(used, NS / 64);
    /* not sure of it: another feature or window would show */
    for (unsigned c = 0; c < mod->n_classes; c++)
        ck_assert_msg(sum[c] / (double)used < 0.99, "class %u: probability %g", c,
                      sum[c] / (double)used);
    assert_predicted(id, snap, sum, mod->n_classes, used);
}

/* The same for a few-shot model id whose devices each run a blob of their
 * own: the blob the server serves for UNL_DEV (its center, its feature
 * set's spectra) on the unlabeled snapshot's windows. */
static void check_unlabeled_device_parity(struct fx *f, long id, const uint8_t pk[32],
                                          const uint8_t layout[32], int64_t snap)
{
    struct model *dm = malloc(sizeof *dm);
    struct relations_map rm;
    struct featureset_spec spec;
    struct testsrv_reply rep;
    float x[2 * NS], fv[MODEL_MAX_FEATURES], p[MODEL_MAX_CLASSES], *scratch;
    double sum[MODEL_MAX_CLASSES] = { 0 };
    size_t used = 0, ns;
    uint8_t dg[32];
    char path[128], dev[16];

    ck_assert_ptr_nonnull(dm);
    snprintf(dev, sizeof dev, "dev-%d", UNL_DEV);
    snprintf(path, sizeof path, "/api/v1/models/%ld/blob?device=%s", id, dev);
    ck_assert_int_eq(http(f, "GET", path, NULL, 0, f->token, &rep), 200);
    ck_assert_int_eq(model_device_digest(dev, dg), 0);
    ck_assert_int_eq(model_load_device((const uint8_t *)rep.body, rep.len, pk, layout, dg, dm), 0);
    free(rep.body);
    model_feature_spec(dm, &rm, &spec);
    ck_assert_uint_ne(spec.id, FEATURESET_STATS);
    ns = featureset_scratch_floats(&spec);
    ck_assert_ptr_nonnull(scratch = malloc((ns ? ns : 1) * sizeof *scratch));
    unlabeled_samples(UNL_DEV, UNL_SEQ, x);
    for (size_t j = 0; j + 64 <= NS; j += 64) {
        ck_assert_int_eq(featureset_compute(&spec, x + j, NS, 2, scratch, ns, fv), FEATURESET_OK);
        model_classify(dm, fv, dm->n_features, p);
        for (unsigned c = 0; c < dm->n_classes; c++)
            sum[c] += p[c];
        used++;
    }
    assert_predicted(id, snap, sum, dm->n_classes, used);
    free(scratch);
    free(dm);
}

/* Active learning: a done classifier id (of version 1) predicted every
 * snapshot of its version, and the queue puts the least certain first.
 * anomaly_id is a done anomaly model, which predicts no class. */
static void check_uncertain_queue(struct fx *f, long id, long anomaly_id, int64_t unl,
                                  int64_t late, json_t *metrics)
{
    char path[160], q[512];
    json_t *j, *items, *it, *j2, *items2, *sp;
    double last = -1.0;
    size_t i, n, total;
    int seen_unl = 0;

    /* every snapshot of the version, and the one of its devices no label
     * reached before it was frozen; not the one received after */
    snprintf(q, sizeof q, "SELECT count(*) FROM model_snapshot_predictions WHERE model_id = %ld", id);
    n = (size_t)testsrv_scalar(q);
    ck_assert_uint_eq(n, (size_t)testsrv_scalar("SELECT count(DISTINCT snapshot_id) FROM dataset_windows"
                                                " WHERE dataset_id = 1 AND version = 1") + 1);
    ck_assert_uint_eq(n, N_DEV * SNAPS_PER_DEV + 1);
    snprintf(q, sizeof q, "SELECT count(*) FROM model_snapshot_predictions p"
             " WHERE p.model_id = %ld AND p.probability > 0 AND p.probability <= 1"
             " AND p.margin >= 0 AND p.margin <= 1 AND p.class IN ('normal', 'imbalance')"
             " AND (p.snapshot_id = %lld OR p.snapshot_id IN (SELECT snapshot_id FROM dataset_windows"
             "  WHERE dataset_id = 1 AND version = 1))", id, (long long)unl);
    ck_assert_uint_eq((size_t)testsrv_scalar(q), n);
    snprintf(q, sizeof q, "SELECT count(*) FROM model_snapshot_predictions WHERE model_id = %ld"
             " AND snapshot_id = %lld", id, (long long)late);
    ck_assert_int_eq(testsrv_scalar(q), 0);
    sp = json_object_get(metrics, "snapshot_predictions");
    ck_assert_ptr_nonnull(sp);
    ck_assert_int_eq(json_integer_value(json_object_get(sp, "version_snapshots")),
                     N_DEV * SNAPS_PER_DEV);
    ck_assert_int_eq(json_integer_value(json_object_get(sp, "unlabeled_snapshots")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(sp, "skipped")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(sp, "capped")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(sp, "caps"), "snapshots")),
                     DS_UNLABELED_SNAPSHOTS_MAX);
    /* the queue also lists the late one, after those predicted */
    total = n + 1;
    snprintf(q, sizeof q, "SELECT count(*) FROM model_snapshot_predictions WHERE model_id = %ld",
             anomaly_id);
    ck_assert_int_eq(testsrv_scalar(q), 0);

    /* least certain first, each item with the table's row */
    snprintf(path, sizeof path, "/api/v1/queue?sort=uncertain&model=%ld&limit=500", id);
    j = queue_items(f, path, &items);
    ck_assert_uint_eq(json_array_size(items), total);
    json_array_foreach(items, i, it) {
        json_t *mp = json_object_get(it, "model_prediction");
        double margin = json_number_value(json_object_get(mp, "margin"));

        ck_assert(json_is_null(json_object_get(it, "labeled_at")));
        if (i == n) {
            ck_assert(json_is_null(mp));
            ck_assert_int_eq(json_integer_value(json_object_get(it, "id")), late);
            continue;
        }
        seen_unl |= json_integer_value(json_object_get(it, "id")) == unl;
        ck_assert(json_is_object(mp));
        /* reals in every answer, 1.0 included (schema/openapi.json, info) */
        ck_assert(json_is_real(json_object_get(mp, "probability")));
        ck_assert(json_is_real(json_object_get(mp, "margin")));
        ck_assert_msg(margin >= last, "item %zu: margin %g after %g", i, margin, last);
        last = margin;
        snprintf(q, sizeof q, "SELECT count(*) FROM model_snapshot_predictions WHERE model_id = %ld"
                 " AND snapshot_id = %lld AND class = '%s' AND probability = '%.9g'::real"
                 " AND margin = '%.9g'::real", id,
                 (long long)json_integer_value(json_object_get(it, "id")),
                 json_string_value(json_object_get(mp, "class")),
                 json_number_value(json_object_get(mp, "probability")), margin);
        ck_assert_msg(testsrv_scalar(q) == 1, "item %zu differs from the table", i);
    }
    ck_assert_msg(seen_unl, "the unlabeled snapshot is not among the ranked ones");
    json_decref(j);

    /* a model with another sort: the same order as without, predictions added */
    snprintf(path, sizeof path, "/api/v1/queue?sort=time&model=%ld&limit=500", id);
    j = queue_items(f, path, &items);
    j2 = queue_items(f, "/api/v1/queue?sort=time&limit=500", &items2);
    ck_assert_uint_eq(json_array_size(items), json_array_size(items2));
    json_array_foreach(items, i, it) {
        json_t *other = json_array_get(items2, i);

        ck_assert_int_eq(json_integer_value(json_object_get(it, "id")),
                         json_integer_value(json_object_get(other, "id")));
        ck_assert(json_is_object(json_object_get(it, "model_prediction")) ==
                  (json_integer_value(json_object_get(it, "id")) != late));
        ck_assert_ptr_null(json_object_get(other, "model_prediction"));
    }
    json_decref(j);
    json_decref(j2);

    /* a snapshot the model did not predict comes after those it did */
    snprintf(q, sizeof q, "DELETE FROM model_snapshot_predictions WHERE model_id = %ld AND"
             " snapshot_id = (SELECT min(snapshot_id) FROM model_snapshot_predictions"
             " WHERE model_id = %ld)", id, id);
    testsrv_sql(q);
    snprintf(path, sizeof path, "/api/v1/queue?sort=uncertain&model=%ld&limit=500", id);
    j = queue_items(f, path, &items);
    ck_assert_uint_eq(json_array_size(items), total);
    /* the last two, in the queue's own order: it and the late one */
    {
        int64_t a = json_integer_value(json_object_get(json_array_get(items, n - 1), "id"));
        int64_t b = json_integer_value(json_object_get(json_array_get(items, n), "id"));
        int64_t gone = testsrv_scalar("SELECT min(snapshot_id) FROM dataset_windows"
                                      " WHERE dataset_id = 1 AND version = 1");

        ck_assert((a == gone && b == late) || (a == late && b == gone));
        ck_assert(json_is_null(json_object_get(json_array_get(items, n - 1), "model_prediction")));
        ck_assert(json_is_null(json_object_get(json_array_get(items, n), "model_prediction")));
    }
    for (i = 0; i + 1 < n; i++)
        ck_assert(json_is_object(json_object_get(json_array_get(items, i), "model_prediction")));
    json_decref(j);

    /* refusals, each with its code */
    queue_refused(f, "/api/v1/queue?sort=uncertain", 400, "bad_request");
    queue_refused(f, "/api/v1/queue?sort=uncertain&model=x1", 400, "bad_request");
    queue_refused(f, "/api/v1/queue?sort=uncertain&model=0", 400, "bad_request");
    queue_refused(f, "/api/v1/queue?sort=uncertain&model=-3", 400, "bad_request");
    queue_refused(f, "/api/v1/queue?model=", 400, "bad_request");
    queue_refused(f, "/api/v1/queue?sort=uncertain&model=987654", 404, "not_found");
    snprintf(path, sizeof path, "/api/v1/queue?sort=uncertain&model=%ld", anomaly_id);
    queue_refused(f, path, 422, "unprocessable");
    testsrv_sql("INSERT INTO models (dataset_id, version, kind, created_by)"
                " VALUES (1, 1, 'fewshot', 'test')");
    snprintf(path, sizeof path, "/api/v1/queue?sort=uncertain&model=%lld",
             (long long)testsrv_scalar("SELECT max(id) FROM models"));
    queue_refused(f, path, 422, "unprocessable");
    testsrv_sql("DELETE FROM models WHERE id = (SELECT max(id) FROM models)");
}

/* The device-parity invariant: what the table says a snapshot is, the
 * blob the server serves (mod, a centroid model of the moments set)
 * computes from the snapshot's windows as the export's F holds them (the
 * vectors the device computes): softmax vectors averaged, argmax. */
static void check_prediction_parity(struct fx *f, long id, const struct model *mod)
{
    struct testsrv_reply rep;
    json_t *shas;
    char *mtext, q[512];
    size_t xb, fo, nrows, d = mod->n_features;
    double sum[MODEL_MAX_CLASSES] = { 0 };
    size_t used = 0, snaps = 0;
    int64_t cur = -1;

    ck_assert_int_eq(http(f, "GET", "/api/v1/datasets/1/versions/1/export?format=npz", NULL, 0,
                          f->token, &rep), 200);
    read_npz(rep.body, rep.len, &shas, &mtext, &xb);
    free(rep.body);
    free(mtext);
    json_decref(shas);
    fo = 10 + (size_t)((uint8_t)g_f_npy[8] | (uint8_t)g_f_npy[9] << 8);
    nrows = (g_f_len - fo) / (d * 4);
    ck_assert_uint_eq(nrows, 48);
    for (size_t i = 0; i <= nrows; i++) {
        int64_t snap = -1;
        float x[MODEL_MAX_FEATURES], p[MODEL_MAX_CLASSES];

        if (i < nrows) {
            snprintf(q, sizeof q, "SELECT snapshot_id FROM dataset_windows WHERE dataset_id = 1"
                     " AND version = 1 ORDER BY row OFFSET %zu LIMIT 1", i);
            snap = testsrv_scalar(q);
        }
        if (snap != cur && used > 0) {
            assert_predicted(id, cur, sum, mod->n_classes, used);
            snaps++;
            memset(sum, 0, sizeof sum);
            used = 0;
        }
        if (i == nrows)
            break;
        cur = snap;
        memcpy(x, g_f_npy + fo + i * d * 4, d * 4);
        model_classify(mod, x, (uint32_t)d, p);
        for (unsigned c = 0; c < mod->n_classes; c++)
            sum[c] += p[c];
        used++;
    }
    ck_assert_uint_eq(snaps, N_DEV * SNAPS_PER_DEV);
    free(g_x_npy);
    free(g_f_npy);
    g_x_npy = g_f_npy = NULL;
}

/* The same invariant for a few-shot relations model whose every device
 * runs a blob of its own (dev-0..N_DEV-1): each window of the version (the
 * export's X, xo its data's offset in g_x_npy, nw windows of 2 x 64)
 * through the feature map and model of the blob served for its snapshot's
 * device, the softmax vectors averaged per snapshot, must give the class
 * and probability the table holds. */
static void check_device_parity(struct fx *f, long id, const uint8_t pk[32], const uint8_t layout[32],
                                size_t xo, size_t nw)
{
    struct model *dm[N_DEV];
    struct relations_map rmap[N_DEV];
    struct featureset_spec rfs[N_DEV];
    struct testsrv_reply rep;
    double sum[MODEL_MAX_CLASSES] = { 0 };
    size_t used = 0, snaps = 0;
    int64_t cur = -1;
    char path[128], q[512];

    for (int d = 0; d < N_DEV; d++) {
        uint8_t dg[32];
        char dev[16];

        snprintf(dev, sizeof dev, "dev-%d", d);
        snprintf(path, sizeof path, "/api/v1/models/%ld/blob?device=%s", id, dev);
        ck_assert_int_eq(http(f, "GET", path, NULL, 0, f->token, &rep), 200);
        ck_assert_ptr_nonnull(dm[d] = malloc(sizeof *dm[d]));
        ck_assert_int_eq(model_device_digest(dev, dg), 0);
        ck_assert_int_eq(model_load_device((const uint8_t *)rep.body, rep.len, pk, layout, dg, dm[d]), 0);
        free(rep.body);
        model_feature_spec(dm[d], &rmap[d], &rfs[d]);
        ck_assert_uint_le(featureset_scratch_floats(&rfs[d]), 512);
    }
    for (size_t i = 0; i <= nw; i++) {
        int64_t snap = -1, d = 0;
        float xw[2 * 64], fv[MODEL_MAX_FEATURES], p[MODEL_MAX_CLASSES], scratch[512];

        if (i < nw) {
            snprintf(q, sizeof q, "SELECT snapshot_id FROM dataset_windows WHERE dataset_id = 1"
                     " AND version = 1 ORDER BY row OFFSET %zu LIMIT 1", i);
            snap = testsrv_scalar(q);
            snprintf(q, sizeof q, "SELECT substr(device_id, 5)::int FROM snapshots WHERE id = %lld",
                     (long long)snap);
            d = testsrv_scalar(q);
            ck_assert(d >= 0 && d < N_DEV);
        }
        if (snap != cur && used > 0) {
            assert_predicted(id, cur, sum, dm[0]->n_classes, used);
            snaps++;
            memset(sum, 0, sizeof sum);
            used = 0;
        }
        if (i == nw)
            break;
        cur = snap;
        memcpy(xw, g_x_npy + xo + i * sizeof xw, sizeof xw);
        ck_assert_int_eq(featureset_compute(&rfs[d], xw, 64, 2, scratch, 512, fv), FEATURESET_OK);
        model_classify(dm[d], fv, dm[d]->n_features, p);
        for (unsigned c = 0; c < dm[d]->n_classes; c++)
            sum[c] += p[c];
        used++;
    }
    ck_assert_uint_eq(snaps, N_DEV * SNAPS_PER_DEV);
    for (int d = 0; d < N_DEV; d++)
        free(dm[d]);
}

START_TEST(test_models)
{
    struct fx f;
    struct testsrv_reply rep;
    json_t *j, *m;
    uint8_t pk[32], layout[32];
    const char *names[2] = { "vib_x", "vib_y" }, *units[2] = { "g", "g" };
    struct model *mod;
    char path[128];
    const char *kinds[2] = { "anomaly", "classifier" };
    float x[MODEL_MAX_FEATURES];
    long anomaly_id = 0;
    int64_t unl, late;
    int k;

    TESTDB_REQUIRE();
    mod = malloc(sizeof *mod);
    fx_start(&f);
    ck_assert_int_eq(post_json(&f, "/api/v1/datasets", ds_body, f.token, &rep), 201);
    free(rep.body);
    /* a snapshot of one of the version's devices nobody labels, received
     * before the freeze; another received after it */
    unl = upload_unlabeled(&f, UNL_DEV, UNL_SEQ);
    ck_assert_int_eq(post_json(&f, "/api/v1/datasets/1/versions", NULL, f.token, &rep), 201);
    free(rep.body);
    late = upload_unlabeled(&f, UNL_DEV, UNL_LATE_SEQ);
    {
        char q[192];

        snprintf(q, sizeof q, "SELECT count(*) FROM snapshots s, dataset_versions v"
                 " WHERE v.dataset_id = 1 AND v.version = 1 AND s.id = %lld"
                 " AND s.received_at > v.created_at", (long long)late);
        ck_assert_int_eq(testsrv_scalar(q), 1);
    }
    ck_assert_int_eq(http(&f, "GET", "/api/v1/models/signing-key", NULL, 0, f.token, &rep), 200);
    j = testsrv_json(&rep);
    ck_assert_int_eq(text_b64_decode_exact(json_string_value(json_object_get(j, "public_key")), pk, 32), 0);
    json_decref(j);
    free(rep.body);
    ck_assert_int_eq(model_layout_digest(names, units, 2, layout), 0);
    ck_assert_int_eq(post_json(&f, "/api/v1/models", "{\"dataset_id\":1,\"version\":5,\"kind\":\"anomaly\"}",
                               f.token, &rep), 404);
    free(rep.body);
    /* each refusal names the field to change */
    {
        static const char *const bad[][2] = {
            { "{\"dataset_id\":1,\"version\":1,\"kind\":\"tree\"}", "kind must be" },
            { "{\"dataset_id\":\"1\",\"version\":1,\"kind\":\"anomaly\"}", "dataset_id must be" },
            { "{\"dataset_id\":1,\"kind\":\"anomaly\"}", "version must be" },
            { "{\"dataset_id\":1,\"version\":0,\"kind\":\"anomaly\"}", "version must be" },
            { "[1]", "body must be a JSON object" },
        };

        for (k = 0; k < (int)(sizeof bad / sizeof bad[0]); k++) {
            ck_assert_int_eq(post_json(&f, "/api/v1/models", bad[k][0], f.token, &rep), 400);
            ck_assert_msg(strstr(rep.body, bad[k][1]), "%s: %s", bad[k][0], rep.body);
            free(rep.body);
        }
    }
    /* No training slot free: 503 with Retry-After, and nothing stored (a
     * client that got no id must not find a failed model in the list). */
    models__training_max = 0;
    ck_assert_int_eq(post_json(&f, "/api/v1/models", "{\"dataset_id\":1,\"version\":1,\"kind\":\"anomaly\"}",
                               f.token, &rep), 503);
    ck_assert_ptr_nonnull(strcasestr(rep.headers, "Retry-After:"));
    free(rep.body);
    models__training_max = 2;
    ck_assert_int_eq(http(&f, "GET", "/api/v1/models", NULL, 0, f.token, &rep), 200);
    j = testsrv_json(&rep);
    ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 0);
    json_decref(j);
    free(rep.body);
    /* A failed model's blob, header and deployment say it failed and why,
     * not "has not finished training" (it never will). */
    {
        int64_t fid;

        testsrv_sql("INSERT INTO models (dataset_id, version, kind, created_by, status, error)"
                    " VALUES (1, 1, 'anomaly', 'test', 'failed', 'no windows labeled normal')");
        fid = testsrv_scalar("SELECT max(id) FROM models");
        snprintf(path, sizeof path, "/api/v1/models/%lld/blob", (long long)fid);
        ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 409);
        ck_assert_msg(strstr(rep.body, "failed to train (no windows labeled normal)"), "%s", rep.body);
        free(rep.body);
        snprintf(path, sizeof path, "/api/v1/models/%lld/header", (long long)fid);
        ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 409);
        ck_assert_msg(strstr(rep.body, "failed to train"), "%s", rep.body);
        free(rep.body);
        snprintf(path, sizeof path, "/api/v1/models/%lld/deploy", (long long)fid);
        ck_assert_int_eq(post_json(&f, path, "{\"devices\":[\"dev-0\"]}", f.token, &rep), 409);
        ck_assert_msg(strstr(rep.body, "failed to train"), "%s", rep.body);
        free(rep.body);
        testsrv_sql("DELETE FROM models");
    }
    for (k = 0; k < 2; k++) {
        char body[128];
        long id;

        snprintf(body, sizeof body, "{\"dataset_id\":1,\"version\":1,\"kind\":\"%s\"}", kinds[k]);
        m = train_model(&f, body, &id);
        /* Quiet vs. square wave is easy: grouped CV must find it. */
        ck_assert(json_real_value(json_object_get(json_object_get(m, "metrics"), "recall")) > 0.9);
        ck_assert(json_real_value(json_object_get(json_object_get(m, "metrics"), "precision")) > 0.9);
        ck_assert_ptr_nonnull(json_object_get(json_object_get(json_object_get(m, "metrics"),
                                              "prediction"), "expected_alerts_per_operator_hour"));
        ck_assert_int_eq(json_array_size(json_object_get(json_object_get(m, "metrics"), "support")), 2);
        ck_assert_int_eq(json_array_size(json_object_get(json_object_get(m, "test_vector"), "input")), 14);
        snprintf(path, sizeof path, "/api/v1/models/%ld/blob", id);
        ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
        ck_assert_int_eq(model_load((const uint8_t *)rep.body, rep.len, pk, layout, mod), 0);
        model_test_input(mod, x);
        ck_assert_float_eq((float)json_real_value(json_object_get(json_object_get(m, "test_vector"), "score")),
                           model_score(mod, x, mod->n_features));
        if (k == 0) {
            anomaly_id = id;
        } else {
            struct testsrv_reply blob = rep;

            check_prediction_parity(&f, id, mod);
            check_unlabeled_parity(id, mod, unl);
            check_uncertain_queue(&f, id, anomaly_id, unl, late, json_object_get(m, "metrics"));
            rep = blob;
        }
        rep.body[10] ^= 1;      /* a flipped bit: the agent's loader refuses it */
        ck_assert_int_eq(model_load((const uint8_t *)rep.body, rep.len, pk, layout, mod), MODEL_ESIGNATURE);
        free(rep.body);
        snprintf(path, sizeof path, "/api/v1/models/%ld/header", id);
        ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
        ck_assert_ptr_nonnull(strstr(rep.body, "precursor_model_score"));
        free(rep.body);
        json_decref(m);
    }
    /* The list pages newest first: next is the before of the page after,
     * null on the last; a before that is no id is refused. */
    {
        int64_t first, second;

        ck_assert_int_eq(http(&f, "GET", "/api/v1/models?limit=1", NULL, 0, f.token, &rep), 200);
        j = testsrv_json(&rep);
        ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 1);
        first = json_integer_value(json_object_get(json_array_get(json_object_get(j, "items"), 0), "id"));
        ck_assert_int_eq(json_integer_value(json_object_get(j, "next")), first);
        json_decref(j);
        free(rep.body);
        snprintf(path, sizeof path, "/api/v1/models?limit=1&before=%lld", (long long)first);
        ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
        j = testsrv_json(&rep);
        second = json_integer_value(json_object_get(json_array_get(json_object_get(j, "items"), 0), "id"));
        ck_assert_int_lt(second, first);
        ck_assert(json_is_null(json_object_get(j, "next")));      /* the two trained above */
        json_decref(j);
        free(rep.body);
        snprintf(path, sizeof path, "/api/v1/models?limit=1&before=%lld", (long long)second);
        ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
        j = testsrv_json(&rep);
        ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 0);
        ck_assert(json_is_null(json_object_get(j, "next")));
        json_decref(j);
        free(rep.body);
        ck_assert_int_eq(http(&f, "GET", "/api/v1/models?before=x", NULL, 0, f.token, &rep), 400);
        free(rep.body);
        ck_assert_int_eq(http(&f, "GET", "/api/v1/models?offset=1", NULL, 0, f.token, &rep), 400);
        ck_assert_ptr_nonnull(strstr(rep.body, "before="));
        free(rep.body);
    }
    /* The relations set by name: fewshot only, its map fitted on the
     * windows labeled normal, carried by the blob, refitted in every fold */
    ck_assert_int_eq(post_json(&f, "/api/v1/models",
                               "{\"dataset_id\":1,\"version\":1,\"kind\":\"classifier\","
                               "\"feature_set\":\"relations\"}", f.token, &rep), 400);
    free(rep.body);
    ck_assert_int_eq(post_json(&f, "/api/v1/models",
                               "{\"dataset_id\":1,\"version\":1,\"kind\":\"fewshot\","
                               "\"feature_set\":\"spectra\"}", f.token, &rep), 400);
    free(rep.body);
    {
        long id;
        json_t *met, *fs, *ev;
        struct relations_map rm;
        struct featureset_spec spec;

        m = train_model(&f, "{\"dataset_id\":1,\"version\":1,\"kind\":\"fewshot\","
                            "\"feature_set\":\"relations\"}", &id);
        met = json_object_get(m, "metrics");
        fs = json_object_get(met, "features");
        ck_assert_str_eq(json_string_value(json_object_get(fs, "set")), "relations");
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(fs, "relations"), "channels")), 2);
        ck_assert_int_gt(json_integer_value(json_object_get(json_object_get(fs, "relations"),
                                                            "fit_windows")), 10);
        ev = json_object_get(met, "evaluation");
        ck_assert_ptr_nonnull(json_object_get(ev, "features_refit_per_fold"));
        ck_assert_ptr_nonnull(json_object_get(ev, "fewshot"));
        ck_assert_int_le(json_integer_value(json_object_get(json_object_get(met, "device"),
                                                            "param_and_map_bytes")), 7168);
        /* 2 channels at rank 1: (2 + 1) x 2 floats of map beside the parameters */
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(met, "device"),
                                                            "feature_map_bytes")),
                         4 * (2 + json_integer_value(json_object_get(fs_rel(fs), "rank"))) * 2);
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(met, "device"),
                                                            "param_and_map_bytes")),
                         json_integer_value(json_object_get(json_object_get(met, "device"), "param_bytes")) +
                         json_integer_value(json_object_get(json_object_get(met, "device"),
                                                            "feature_map_bytes")));
        ck_assert_int_eq(json_array_size(json_object_get(json_object_get(m, "test_vector"), "input")), 5);
        /* a few-shot model predicted each snapshot of its version too */
        {
            char q[256];

            snprintf(q, sizeof q, "SELECT count(*) FROM model_snapshot_predictions WHERE model_id = %ld"
                     " AND probability > 0 AND probability <= 1 AND margin >= 0 AND margin <= 1", id);
            ck_assert_int_eq(testsrv_scalar(q), N_DEV * SNAPS_PER_DEV);
        }
        snprintf(path, sizeof path, "/api/v1/models/%ld/blob", id);
        ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
        ck_assert_int_eq(model_load((const uint8_t *)rep.body, rep.len, pk, layout, mod), 0);
        ck_assert_uint_eq(mod->features.id, FEATURESET_RELATIONS);
        ck_assert_uint_eq(rep.body[5], 4);
        model_feature_spec(mod, &rm, &spec);
        ck_assert_ptr_null(featureset_unsupported(&spec, 2));
        model_test_input(mod, x);
        ck_assert_float_eq((float)json_real_value(json_object_get(json_object_get(m, "test_vector"), "score")),
                           model_score(mod, x, mod->n_features));
        free(rep.body);
        snprintf(path, sizeof path, "/api/v1/models/%ld/header", id);
        ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
        ck_assert_ptr_nonnull(strstr(rep.body, "precursor_model_rel_basis"));
        free(rep.body);
        /* Each device its own reference: every device of the version has
         * windows labeled normal, so each gets a blob of its own, bound to
         * it, and the server's prediction for its windows, on which the
         * learner's own per-device prediction agrees */
        ck_assert_ptr_nonnull(json_object_get(met, "device_reference"));
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(met, "device_reference"),
                                                            "own_reference")), N_DEV);
        ck_assert_ptr_nonnull(json_object_get(ev, "device_reference"));
        snprintf(path, sizeof path, "/api/v1/models/%ld/devices", id);
        ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
        j = testsrv_json(&rep);
        free(rep.body);
        ck_assert_int_eq(json_array_size(json_object_get(j, "items")), N_DEV);
        for (size_t i = 0; i < N_DEV; i++) {
            json_t *it = json_array_get(json_object_get(j, "items"), i), *pr = json_object_get(it, "predictions");
            char dev[16];
            uint8_t dg[32];

            snprintf(dev, sizeof dev, "dev-%zu", i);
            ck_assert_str_eq(json_string_value(json_object_get(it, "device_id")), dev);
            ck_assert(json_is_true(json_object_get(it, "own_reference")));
            ck_assert_int_gt(json_integer_value(json_object_get(it, "reference_windows")), 0);
            ck_assert_int_gt(json_integer_value(json_object_get(pr, "windows")), 0);
            ck_assert_int_eq(json_integer_value(json_object_get(pr, "learner_agrees")),
                             json_integer_value(json_object_get(pr, "windows")));
            ck_assert_int_eq(json_array_size(json_object_get(pr, "scores")),
                             (size_t)json_integer_value(json_object_get(pr, "windows")));
            snprintf(path, sizeof path, "/api/v1/models/%ld/blob?device=%s", id, dev);
            ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
            ck_assert_uint_eq(rep.body[5], 5);
            ck_assert_int_eq(model_load((const uint8_t *)rep.body, rep.len, pk, layout, mod), MODEL_EDEVICE);
            ck_assert_int_eq(model_device_digest(dev, dg), 0);
            ck_assert_int_eq(model_load_device((const uint8_t *)rep.body, rep.len, pk, layout, dg, mod), 0);
            ck_assert_uint_eq(mod->ref_windows,
                              (uint32_t)json_integer_value(json_object_get(it, "reference_windows")));
            free(rep.body);
        }
        json_decref(j);
        /* firmware for one device: the header of its blob, its own center */
        {
            char *whole;

            snprintf(path, sizeof path, "/api/v1/models/%ld/header", id);
            ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
            whole = rep.body;
            snprintf(path, sizeof path, "/api/v1/models/%ld/header?device=dev-1", id);
            ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
            ck_assert_ptr_nonnull(strstr(rep.body, "precursor_model_score"));
            ck_assert_ptr_nonnull(strstr(rep.body, "precursor_model_rel_basis"));
            ck_assert_str_ne(rep.body, whole);
            free(rep.body);
            free(whole);
            snprintf(path, sizeof path, "/api/v1/models/%ld/header?device=dev-9", id);
            ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 404);
            free(rep.body);
        }
        /* The export's F as relations: the map fitted as the model's was
         * (same windows, same order: the blob's map, float for float, in
         * the manifest), F row for row the vector featureset_compute gives
         * X's window through it */
        {
            json_t *man;
            size_t xo, fo, nw;
            struct relations_map rmap;
            struct featureset_spec rfs;
            float fv[5], scratch[512];

            man = relations_export_manifest(&f, 1, mod);
            ck_assert_str_eq(json_string_value(json_object_get(json_object_get(man, "features"), "set")),
                             "relations");
            ck_assert_int_eq(json_array_size(json_object_get(json_object_get(man, "features"), "names")), 5);
            model_feature_spec(mod, &rmap, &rfs);
            ck_assert_uint_le(featureset_scratch_floats(&rfs), 512);
            xo = 10 + (size_t)((uint8_t)g_x_npy[8] | (uint8_t)g_x_npy[9] << 8);
            fo = 10 + (size_t)((uint8_t)g_f_npy[8] | (uint8_t)g_f_npy[9] << 8);
            nw = (g_x_len - xo) / (4 * 2 * 64);
            ck_assert_ptr_nonnull(strstr(g_f_npy + 10, "'shape': (48, 5)"));
            ck_assert_uint_eq(g_f_len - fo, nw * 5 * 4);
            for (size_t i = 0; i < nw; i++) {
                float xw[2 * 64];

                memcpy(xw, g_x_npy + xo + i * sizeof xw, sizeof xw);
                ck_assert_int_eq(featureset_compute(&rfs, xw, 64, 2, scratch, 512, fv), FEATURESET_OK);
                ck_assert(memcmp(fv, g_f_npy + fo + i * 5 * 4, sizeof fv) == 0);
            }
            check_device_parity(&f, id, pk, layout, xo, nw);
            free(g_x_npy);
            free(g_f_npy);
            g_x_npy = g_f_npy = NULL;
            json_decref(man);
            /* refused before the first byte: another set, another format */
            ck_assert_int_eq(http(&f, "GET", "/api/v1/datasets/1/versions/1/export?format=npz&features=stats",
                                  NULL, 0, f.token, &rep), 400);
            free(rep.body);
            ck_assert_int_eq(http(&f, "GET", "/api/v1/datasets/1/versions/1/export?format=csv&features=relations",
                                  NULL, 0, f.token, &rep), 400);
            free(rep.body);
        }
        snprintf(path, sizeof path, "/api/v1/models/%ld/blob?device=dev-9", id);
        ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 404);
        free(rep.body);
        snprintf(path, sizeof path, "/api/v1/models/%ld/blob?device=a%%2Fb", id);
        ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 400);
        free(rep.body);
        /* the relations set predicts no snapshot outside the version */
        ck_assert_ptr_nonnull(json_object_get(json_object_get(json_object_get(m, "metrics"),
                                                              "snapshot_predictions"),
                                              "unlabeled_reason"));
        json_decref(m);
        /* a few-shot model of the spectral set predicts the unlabeled
         * snapshot as the blob served for its device computes it */
        m = train_model(&f, "{\"dataset_id\":1,\"version\":1,\"kind\":\"fewshot\"}", &id);
        ck_assert_int_eq(json_integer_value(json_object_get(
                             json_object_get(json_object_get(m, "metrics"), "snapshot_predictions"),
                             "unlabeled_snapshots")), 1);
        check_unlabeled_device_parity(&f, id, pk, layout, unl);
        json_decref(m);

        /* Normal labels cut to each snapshot's first window (8 in all):
         * too few to fit the map on, refused with the count. */
        testsrv_sql("UPDATE labels SET end_s = 0.064 WHERE class = 'normal'");
        ck_assert_int_eq(post_json(&f, "/api/v1/datasets/1/versions", NULL, f.token, &rep), 201);
        free(rep.body);
        ck_assert_int_eq(post_json(&f, "/api/v1/models",
                                   "{\"dataset_id\":1,\"version\":2,\"kind\":\"fewshot\","
                                   "\"feature_set\":\"relations\"}", f.token, &rep), 202);
        j = testsrv_json(&rep);
        id = (long)json_integer_value(json_object_get(j, "id"));
        json_decref(j);
        free(rep.body);
        snprintf(path, sizeof path, "/api/v1/models/%ld", id);
        m = wait_for(&f, path, "status", "failed");
        ck_assert_str_eq(json_string_value(json_object_get(m, "status")), "failed");
        ck_assert_msg(strstr(json_string_value(json_object_get(m, "error")), "the version has 8, it needs at least 10"),
                      "%s", json_string_value(json_object_get(m, "error")));
        json_decref(m);
        /* the export refuses the same with the same count, before any byte */
        ck_assert_int_eq(http(&f, "GET", "/api/v1/datasets/1/versions/2/export?format=npz&features=relations",
                              NULL, 0, f.token, &rep), 422);
        ck_assert_ptr_nonnull(strstr(rep.body, "the version has 8, it needs at least 10"));
        free(rep.body);
    }
    ck_assert_int_eq(http(&f, "GET", "/api/v1/models/777", NULL, 0, f.token, &rep), 404);
    free(rep.body);

    /* A training still running when serve stops (models_training_stop, here
     * without waiting for it to end) is failed, saying why and what to do:
     * its thread ends with the process, and its row would say 'training'
     * for ever, a client polling it never learning to train again. */
    {
        long sid;
        json_t *item;

        models__training_started = hold_training;
        ck_assert_int_eq(post_json(&f, "/api/v1/models", "{\"dataset_id\":1,\"version\":1,\"kind\":\"anomaly\"}",
                                   f.token, &rep), 202);
        j = testsrv_json(&rep);
        sid = (long)json_integer_value(json_object_get(j, "id"));
        json_decref(j);
        free(rep.body);
        ck_assert_int_eq(hold_wait(), sid);
        snprintf(path, sizeof path, "/api/v1/models/%ld", sid);
        ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
        j = testsrv_json(&rep);
        free(rep.body);
        ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "training");
        json_decref(j);
        ck_assert_int_eq(models_training_stop(0), 1);
        ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
        j = testsrv_json(&rep);
        free(rep.body);
        ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "failed");
        ck_assert_str_eq(json_string_value(json_object_get(j, "error")),
                         "the server stopped during training; train it again");
        assert_rfc3339z(j, "finished_at");
        json_decref(j);
        /* the Models page's list says the same, and who asked (auth_actor) */
        ck_assert_int_eq(http(&f, "GET", "/api/v1/models?limit=1", NULL, 0, f.token, &rep), 200);
        j = testsrv_json(&rep);
        free(rep.body);
        item = json_array_get(json_object_get(j, "items"), 0);
        ck_assert_int_eq(json_integer_value(json_object_get(item, "id")), sid);
        ck_assert_str_eq(json_string_value(json_object_get(item, "status")), "failed");
        ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(item, "error")), "server stopped"));
        snprintf(path, sizeof path, "token:ml#%lld",
                 (long long)testsrv_scalar("SELECT min(id) FROM api_tokens WHERE name = 'ml'"));
        ck_assert_str_eq(json_string_value(json_object_get(item, "created_by")), path);
        json_decref(j);
        /* In serve the process ends here; the fixture lets the thread go and
         * waits for it, so the server stops clean. */
        hold_release();
        models__training_started = NULL;
        ck_assert_int_eq(models_training_stop(60000), 0);
        /* the thread finished after its row was failed: the row stays
         * failed (what the client was told), not done behind its back */
        snprintf(path, sizeof path, "/api/v1/models/%ld", sid);
        ck_assert_int_eq(http(&f, "GET", path, NULL, 0, f.token, &rep), 200);
        j = testsrv_json(&rep);
        free(rep.body);
        ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "failed");
        json_decref(j);
    }
    free(mod);
    fx_stop(&f);
}
END_TEST

/* Every window of version (id, 1) through the reader: its samples are the
 * ones decoded straight from its stored envelope, in export order (2
 * channels); *rows counted, one row at seek_row read again after a seek. */
static void reader_walk(int64_t id, int64_t seek_row, int64_t *rows)
{
    struct ds_reader *rd = NULL;
    struct ds_row row;
    const float *x;
    float *dec = malloc(2 * NS * sizeof *dec), *at_seek = NULL;
    int64_t seek_snap = -1;
    uint32_t seek_start = 0, T;
    int rc;

    ck_assert_ptr_nonnull(dec);
    ck_assert_int_eq(ds_reader_open(id, 1, &rd), 0);
    T = ds_reader_info(rd)->window_samples;
    *rows = 0;
    while ((rc = ds_reader_next(rd, &row, &x)) == 1) {
        PGresult *r = NULL;
        const uint8_t *env;
        size_t len;
        struct wire_meta m;
        struct wire_view v;
        unsigned c;

        ck_assert_int_eq(row.row, *rows);
        ck_assert_int_eq(ingest_stored(row.snapshot_id, &r, &env, &len), 0);
        ck_assert_int_eq(wire_parse(env, len, &m, &v), 0);
        ck_assert_int_eq(wire_decode_samples(&m, &v, dec, 2 * NS * sizeof *dec), 0);
        for (c = 0; c < 2; c++)
            ck_assert_mem_eq(x + c * T, dec + c * NS + row.start_sample, T * sizeof *x);
        if (row.row == seek_row) {
            at_seek = malloc(2 * T * sizeof *at_seek);
            ck_assert_ptr_nonnull(at_seek);
            memcpy(at_seek, x, 2 * T * sizeof *x);
            seek_snap = row.snapshot_id;
            seek_start = row.start_sample;
        }
        PQclear(r);
        (*rows)++;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(at_seek);
    ds_reader_seek(rd, seek_row);
    ck_assert_int_eq(ds_reader_next(rd, &row, &x), 1);
    ck_assert_int_eq(row.row, seek_row);
    ck_assert_int_eq(row.snapshot_id, seek_snap);
    ck_assert_uint_eq(row.start_sample, seek_start);
    ck_assert_mem_eq(x, at_seek, 2 * T * sizeof *x);
    ds_reader_free(rd);
    free(at_seek);
    free(dec);
}

/* The npz of version (id, 1) through the export stream (malloc'd): taken
 * step by step (read_max 0, as export jobs do) or read into a buffer of
 * read_max bytes at a time (as the HTTP stream does). */
static char *export_npz(int64_t id, size_t read_max, size_t *len)
{
    struct ds_export *e = NULL;
    char *out = NULL;
    const char *p;
    size_t n;
    int rc;

    *len = 0;
    ck_assert_int_eq(ds__export_open(id, 1, DS_FMT_NPZ, &e), 0);
    if (read_max == 0) {
        while ((rc = ds__export_step(e)) == 1) {
            p = ds__export_pending(e, &n);
            out = realloc(out, *len + n + 1);
            ck_assert_ptr_nonnull(out);
            memcpy(out + *len, p, n);
            *len += n;
            ds__export_consume(e, n);
        }
        ck_assert_int_eq(rc, 0);
    } else {
        ssize_t got;

        do {
            out = realloc(out, *len + read_max);
            ck_assert_ptr_nonnull(out);
            got = ds__export_read(e, out + *len, read_max);
            ck_assert_int_ge(got, 0);
            ck_assert_uint_le((size_t)got, read_max);
            *len += (size_t)got;
        } while (got > 0);
    }
    ds__export_free(e);
    return out;
}

/* The reader over more snapshots than one batch of envelopes and more
 * windows than one page (168 snapshots, 672 windows, several per snapshot;
 * then one whole-snapshot window each): every window's samples are the
 * ones decoded straight from its stored envelope, in export order, with the
 * next batch fetched (and decoded) ahead, also when the prefetch thread may
 * decode only part of a batch or none of it.  The npz is the same bytes
 * whatever the export may keep: F and the rows from the X pass, part of F,
 * or nothing (every array read again, as before they were kept), and
 * whether it is taken step by step or read into buffers of any size. */
START_TEST(test_reader_batches)
{
    static const char whole_body[] =
        "{\"name\":\"whole\",\"filter\":{\"sources\":[\"human\"]},"
        "\"window\":{\"length_s\":0.256,\"stride_s\":0.256},"
        "\"split\":{\"by\":\"device\",\"fractions\":[0.5,0.25,0.25],\"seed\":7}}";
    const struct ds_mem_limits dflt = DS_MEM_LIMITS_DEFAULT;
    const size_t snap_bytes = 2 * NS * sizeof(float);
    struct fx f;
    struct testsrv_reply rep;
    json_t *j;
    int64_t id = 0, whole = 0, rows = 0;
    char *npz[5];
    size_t npz_len[5];
    int k;

    TESTDB_REQUIRE();
    fx_start(&f);
    testsrv_sql("INSERT INTO snapshots (device_id, seq, trigger_time, sample_rate, sample_type,"
                " channel_count, channels, pre_samples, post_samples, detector, score, envelope,"
                " bytes, sha256) SELECT device_id, seq + 100 * g, trigger_time + g * interval '1 hour',"
                " sample_rate, sample_type, channel_count, channels, pre_samples, post_samples, detector,"
                " score, envelope, bytes, sha256 FROM snapshots, generate_series(1, 13) g");
    testsrv_sql("INSERT INTO labels (snapshot_id, start_s, end_s, channels, class, created_by) "
                "SELECT id, 0, 0.256, '{0}', CASE WHEN seq % 100 = 3 THEN 'imbalance' ELSE 'normal' END,"
                " 'alice' FROM snapshots WHERE seq > 100");
    for (k = 0; k < 2; k++) {
        char path[128];

        ck_assert_int_eq(post_json(&f, "/api/v1/datasets", k ? whole_body : ds_body, f.token, &rep), 201);
        j = testsrv_json(&rep);
        *(k ? &whole : &id) = json_integer_value(json_object_get(j, "id"));
        json_decref(j);
        free(rep.body);
        snprintf(path, sizeof path, "/api/v1/datasets/%lld/versions", (long long)(k ? whole : id));
        ck_assert_int_eq(post_json(&f, path, NULL, f.token, &rep), 201);
        free(rep.body);
    }
    /* all decoded ahead, then 3 snapshots of a batch at most, then none */
    for (k = 0; k < 3; k++) {
        ds__mem_limits.decoded = k == 0 ? dflt.decoded : k == 1 ? 3 * snap_bytes : 0;
        reader_walk(id, 300, &rows);
        ck_assert_int_eq(rows, N_DEV * SNAPS_PER_DEV * 14 * 4);
        reader_walk(whole, 100, &rows);
        ck_assert_int_eq(rows, N_DEV * SNAPS_PER_DEV * 14);
    }
    ds__mem_limits = dflt;
    for (k = 0; k < 5; k++) {
        if (k == 1)     /* F of 100 windows kept, no rows, 3 snapshots decoded ahead */
            ds__mem_limits = (struct ds_mem_limits){ 100 * 2 * 7 * sizeof(float), 0, 3 * snap_bytes };
        if (k == 2)
            ds__mem_limits = (struct ds_mem_limits){ 0, 0, 0 };
        if (k == 3)
            ds__mem_limits = dflt;
        /* steps, then reads of 64 KiB (the stream's) and of 1000 bytes */
        npz[k] = export_npz(id, k < 3 ? 0 : k == 3 ? 65536 : 1000, &npz_len[k]);
    }
    ds__mem_limits = dflt;
    ck_assert_uint_gt(npz_len[0], (size_t)N_DEV * SNAPS_PER_DEV * 14 * 4 * 2 * 64 * 4);
    for (k = 1; k < 5; k++) {
        ck_assert_uint_eq(npz_len[k], npz_len[0]);
        ck_assert_mem_eq(npz[k], npz[0], npz_len[0]);
    }
    for (k = 0; k < 5; k++)
        free(npz[k]);
    fx_stop(&f);
}
END_TEST

/* Unlabeled scheduled baselines (detector "schedule") of device d, seq
 * from..from + n - 1: the quiet noise of the normal snapshots, at other seqs. */
static void upload_baselines(struct fx *f, int d, int from, int n)
{
    char dev[16];

    snprintf(dev, sizeof dev, "dev-%d", d);
    for (int s = from; s < from + n; s++) {
        struct wire_meta m;
        float x[2 * NS];

        testsrv_meta_2ch(&m, dev, (uint64_t)s, 1714564900000000LL + (int64_t)(d * 100 + s) * 1000000,
                         NS, "vib_x", "vib_y");
        snprintf(m.detector, sizeof m.detector, "schedule");
        for (int i = 0; i < 2 * NS; i++)
            x[i] = (float)((i * 7919 + d * 131 + s * 17) % 101) / 1000.0f;
        testsrv_upload(&f->srv, &m, x, f->sk[d]);
    }
}

/* Train a relations fewshot model on (1, version) and wait for it. */
static json_t *train_relations(struct fx *f, int version, long *id)
{
    char body[160];

    snprintf(body, sizeof body, "{\"dataset_id\":1,\"version\":%d,\"kind\":\"fewshot\","
             "\"feature_set\":\"relations\"}", version);
    return train_model(f, body, id);
}

static json_t *unlabeled_of(json_t *m)
{
    return json_object_get(fs_rel(json_object_get(json_object_get(m, "metrics"), "features")),
                           "unlabeled");
}

/* The model's blob, loaded (its map in rel[], its parameters in params[]). */
static void load_blob(struct fx *f, long id, struct model *mod)
{
    struct testsrv_reply rep;
    const char *names[2] = { "vib_x", "vib_y" }, *units[2] = { "g", "g" };
    uint8_t pk[32], layout[32];
    char path[64];
    json_t *j;

    ck_assert_int_eq(http(f, "GET", "/api/v1/models/signing-key", NULL, 0, f->token, &rep), 200);
    j = testsrv_json(&rep);
    ck_assert_int_eq(text_b64_decode_exact(json_string_value(json_object_get(j, "public_key")), pk, 32), 0);
    json_decref(j);
    free(rep.body);
    ck_assert_int_eq(model_layout_digest(names, units, 2, layout), 0);
    snprintf(path, sizeof path, "/api/v1/models/%ld/blob", id);
    ck_assert_int_eq(http(f, "GET", path, NULL, 0, f->token, &rep), 200);
    ck_assert_int_eq(model_load((const uint8_t *)rep.body, rep.len, pk, layout, mod), 0);
    free(rep.body);
}

/* A relations model's map also sees the devices' unlabeled scheduled
 * baselines (a version holds labeled windows only): those received up to
 * the version's freeze are candidates of its trimmed refit, counted in the
 * model's metrics; one received later is not read, so training the same
 * version again gives the same model. */
START_TEST(test_models_unlabeled_baselines)
{
    struct fx f;
    struct testsrv_reply rep;
    struct model *a = malloc(sizeof *a), *b = malloc(sizeof *b), *c = malloc(sizeof *c);
    json_t *m1, *m2, *m3, *u;
    long id1, id2, id3;
    json_int_t fit1, fit2;

    TESTDB_REQUIRE();
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(c);
    fx_start(&f);
    ck_assert_int_eq(post_json(&f, "/api/v1/datasets", ds_body, f.token, &rep), 201);
    free(rep.body);
    /* version 1 is frozen before any baseline is received */
    ck_assert_int_eq(post_json(&f, "/api/v1/datasets/1/versions", NULL, f.token, &rep), 201);
    free(rep.body);
    for (int d = 0; d < N_DEV; d++)
        upload_baselines(&f, d, 10, 4);
    /* version 2: the same labeled windows (nobody labeled the baselines) */
    ck_assert_int_eq(post_json(&f, "/api/v1/datasets/1/versions", NULL, f.token, &rep), 201);
    free(rep.body);

    m1 = train_relations(&f, 1, &id1);
    u = unlabeled_of(m1);
    ck_assert_ptr_nonnull(u);
    ck_assert_int_eq(json_integer_value(json_object_get(u, "windows")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(u, "fit_windows")), 0);
    fit1 = json_integer_value(json_object_get(fs_rel(json_object_get(json_object_get(m1, "metrics"),
                                                                     "features")), "fit_windows"));

    m2 = train_relations(&f, 2, &id2);
    u = unlabeled_of(m2);
    /* 16 snapshots of 256 samples, 4 windows of 64 each */
    ck_assert_int_eq(json_integer_value(json_object_get(u, "snapshots")), 4 * N_DEV);
    ck_assert_int_eq(json_integer_value(json_object_get(u, "windows")), 16 * N_DEV);
    ck_assert_int_gt(json_integer_value(json_object_get(u, "fit_windows")), 0);
    fit2 = json_integer_value(json_object_get(fs_rel(json_object_get(json_object_get(m2, "metrics"),
                                                                     "features")), "fit_windows"));
    ck_assert_int_eq(fit2, fit1 + json_integer_value(json_object_get(u, "fit_windows")));
    /* the same labeled windows, another map: refitted with the baselines */
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(m1, "metrics"), "windows_trained")),
                     json_integer_value(json_object_get(json_object_get(m2, "metrics"), "windows_trained")));
    load_blob(&f, id1, a);
    load_blob(&f, id2, b);
    ck_assert_uint_eq(a->features.id, FEATURESET_RELATIONS);
    ck_assert(memcmp(a->rel, b->rel, sizeof a->rel) != 0);
    /* the export's relation features fit the same map from the same
     * windows: the model's, float for float */
    {
        json_t *man = relations_export_manifest(&f, 2, b), *map;

        map = json_object_get(json_object_get(man, "features"), "map");
        ck_assert_int_eq(json_integer_value(json_object_get(map, "unlabeled_windows")), 16 * N_DEV);
        ck_assert_int_eq(json_integer_value(json_object_get(map, "fit_windows")), fit2);
        free(g_x_npy);
        free(g_f_npy);
        g_x_npy = g_f_npy = NULL;
        json_decref(man);
    }

    /* a baseline received after version 2's freeze is not read: the same
     * version trained again is the same model, parameter for parameter */
    upload_baselines(&f, 0, 20, 3);
    m3 = train_relations(&f, 2, &id3);
    ck_assert(json_equal(unlabeled_of(m3), unlabeled_of(m2)));
    load_blob(&f, id3, c);
    ck_assert_uint_eq(c->rel_rank, b->rel_rank);
    ck_assert(memcmp(c->rel, b->rel, sizeof c->rel) == 0);
    ck_assert_uint_eq(c->param_count, b->param_count);
    ck_assert(memcmp(c->params, b->params, c->param_count * sizeof *c->params) == 0);
    ck_assert(c->threshold == b->threshold);
    json_decref(m1);
    json_decref(m2);
    json_decref(m3);
    free(a);
    free(b);
    free(c);
    fx_stop(&f);
}
END_TEST

Suite *datasets_api_suite(void);
Suite *datasets_api_suite(void)
{
    Suite *s = suite_create("datasets_api");
    TCase *tc;

    /* One database per test case: each test gets its own tcase. */
    tc = tcase_create("contract");
    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_datasets_contract);
    suite_add_tcase(s, tc);
    tc = tcase_create("reader");
    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_reader_batches);
    suite_add_tcase(s, tc);
    tc = tcase_create("split");
    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_split_impossible_422);
    suite_add_tcase(s, tc);
    tc = tcase_create("models");
    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_models);
    suite_add_tcase(s, tc);
    tc = tcase_create("unlabeled");
    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_models_unlabeled_baselines);
    suite_add_tcase(s, tc);
    return s;
}
