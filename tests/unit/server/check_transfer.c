/* check_transfer.c - transfer from related equipment in few-shot training:
 * which rows of a related type come in (shared classes as weak labels,
 * normal windows unlabeled, the rest dropped), their channels matched by
 * name and their domain, leave-one-group-out never testing them, and the
 * whole path through the REST API with a real server and PostgreSQL: a
 * type whose failure modes share a class with the version's lends its
 * windows, a type without the version's channels is skipped with its
 * reason, and "transfer": false turns it off.  The DB-backed test needs
 * DATABASE_URL; it skips without. */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "schema/model.h"
#include "schema/wire.h"
#include "server/auth/auth.h"
#include "server/datasets/datasets.h"
#include "server/db/db.h"
#include "server/http/http.h"
#include "server/models/models.h"
#include "server/models/models_fewshot.h"
#include "server/models/models_int.h"
#include "testsrv.h"

static void info_init(struct ds_info *in, const char *const *classes, unsigned n_classes,
                      const char *const *channels, unsigned n_channels)
{
    memset(in, 0, sizeof *in);
    in->normal_class = -1;
    in->n_classes = n_classes;
    for (unsigned c = 0; c < n_classes; c++) {
        snprintf(in->classes[c], sizeof in->classes[c], "%s", classes[c]);
        if (strcmp(classes[c], "normal") == 0)
            in->normal_class = (int)c;
    }
    in->channel_count = n_channels;
    for (unsigned c = 0; c < n_channels; c++) {
        snprintf(in->channel_names[c], sizeof in->channel_names[c], "%s", channels[c]);
        snprintf(in->channel_units[c], sizeof in->channel_units[c], "g");
    }
}

START_TEST(transfer_selects_shared_classes)
{
    static const char *const cls[] = { "bearing_outer_race", "imbalance", "normal" };
    static const char *const ch[] = { "vib_x" };
    static const char *const shared[] = { "bearing_outer_race" };
    struct ds_info *in = malloc(sizeof *in);

    info_init(in, cls, 3, ch, 1);
    /* a shared class of the version: its index, a weak label */
    ck_assert_int_eq(models__transfer_label(in, "bearing_outer_race", shared, 1), 0);
    /* a class of the version the related type does not share (its modes
     * do not record it): dropped, even though the names agree */
    ck_assert_int_eq(models__transfer_label(in, "imbalance", shared, 1), MODELS_TRANSFER_DROP);
    /* the related machine's normal: unlabeled, for its domain's statistics */
    ck_assert_int_eq(models__transfer_label(in, "normal", shared, 1), FEWSHOT_UNLABELED);
    /* shared by the taxonomy but not in the version: nothing to teach */
    static const char *const wide[] = { "bearing_outer_race", "misalignment" };
    ck_assert_int_eq(models__transfer_label(in, "misalignment", wide, 2), MODELS_TRANSFER_DROP);
    ck_assert_int_eq(models__transfer_label(in, NULL, wide, 2), MODELS_TRANSFER_DROP);
    /* a version without a normal class takes no related normal either */
    static const char *const faults[] = { "bearing_outer_race", "imbalance" };
    info_init(in, faults, 2, ch, 1);
    ck_assert_int_eq(models__transfer_label(in, "normal", shared, 1), MODELS_TRANSFER_DROP);
    free(in);
}
END_TEST

START_TEST(transfer_maps_channels_and_domains)
{
    static const char *const cls[] = { "bearing_outer_race", "normal" };
    static const char *const tch[] = { "vib_x", "vib_y" };
    static const char *const rch[] = { "temp", "vib_y", "vib_x" };
    static const char *const other[] = { "acc_1", "vib_x" };
    struct ds_info *t = malloc(sizeof *t), *r = malloc(sizeof *r);
    struct models_transfer tf = { 0 };
    unsigned map[64];
    /* the related version's features: channel k holds k*10 + j */
    float feat[3 * 2];

    info_init(t, cls, 2, tch, 2);
    info_init(r, cls, 2, rch, 3);
    ck_assert_int_eq(models__transfer_channel_map(t, r, map), 0);
    ck_assert_uint_eq(map[0], 2);
    ck_assert_uint_eq(map[1], 1);
    /* a unit that differs is another channel */
    snprintf(r->channel_units[2], sizeof r->channel_units[2], "mm/s");
    ck_assert_int_eq(models__transfer_channel_map(t, r, map), -1);
    snprintf(r->channel_units[2], sizeof r->channel_units[2], "g");
    info_init(r, cls, 2, other, 2);
    ck_assert_int_eq(models__transfer_channel_map(t, r, map), -1);

    info_init(r, cls, 2, rch, 3);
    ck_assert_int_eq(models__transfer_channel_map(t, r, map), 0);
    for (unsigned k = 0; k < 3; k++)
        for (unsigned j = 0; j < 2; j++)
            feat[k * 2 + j] = (float)(k * 10 + j);
    tf.d = 4;
    /* rows of two related types: domain 1 and 2, labels as given; many
     * rows, so the arrays grow */
    for (int i = 0; i < 600; i++)
        ck_assert_int_eq(models__transfer_append(&tf, feat, 2, map, 2, i % 3 == 0 ? 0 : FEWSHOT_UNLABELED,
                                                 i < 300 ? 1u : 2u), MODEL_OK);
    ck_assert_uint_eq(tf.n, 600);
    ck_assert_uint_eq(tf.n_labeled, 200);
    ck_assert_uint_eq(tf.domain[0], 1);
    ck_assert_uint_eq(tf.domain[299], 1);
    ck_assert_uint_eq(tf.domain[300], 2);
    ck_assert_int_eq(tf.label[3], 0);
    ck_assert_int_eq(tf.label[4], FEWSHOT_UNLABELED);
    /* the target's channel order: vib_x (related channel 2) first */
    for (size_t i = 0; i < tf.n; i += 123) {
        ck_assert_float_eq(tf.X[i * 4 + 0], 20.0f);
        ck_assert_float_eq(tf.X[i * 4 + 1], 21.0f);
        ck_assert_float_eq(tf.X[i * 4 + 2], 10.0f);
        ck_assert_float_eq(tf.X[i * 4 + 3], 11.0f);
    }
    models__transfer_release(&tf);
    ck_assert_ptr_null(tf.X);
    free(t);
    free(r);
}
END_TEST

/* Leave-one-group-out with related rows: they teach in every fold and are
 * never a group of their own nor tested, whatever group they carry. */
START_TEST(logo_never_tests_transferred_rows)
{
    enum { NT = 30, NR = 40, N = NT + NR, F = 2 };
    float x[N * F];
    int32_t lab[N];
    float w[N];
    uint32_t dom[N], grp[N];
    struct fewshot_params p;
    struct eval_report *with = malloc(sizeof *with), *without = malloc(sizeof *without);

    for (int i = 0; i < N; i++) {
        int tgt = i < NT, c = i % 2;

        /* two well separated classes; the related machine's at another scale */
        x[i * F + 0] = (float)(c ? 5 : 0) * (tgt ? 1.0f : 3.0f) + 0.1f * (float)(i % 7);
        x[i * F + 1] = (float)((i * 13) % 5) * 0.1f;
        lab[i] = c;
        w[i] = tgt ? 1.0f : MODELS_TRANSFER_WEIGHT;
        dom[i] = tgt ? 0 : 1 + (uint32_t)(i % 2);
        /* target rows in groups 0..2; related rows claim groups 0..4 */
        grp[i] = tgt ? (uint32_t)(i % 3) : (uint32_t)(i % 5);
    }
    models_fewshot_defaults(&p);
    struct fewshot_data d = { x, N, F, lab, w, dom, 2, NULL, NULL, -1, NULL, NULL, NULL, 0 };
    ck_assert_int_eq(models_eval_logo(&d, grp, EVAL_FEWSHOT, &p, 0, -1, with), 0);
    struct fewshot_data dt = { x, NT, F, lab, NULL, NULL, 2, NULL, NULL, -1, NULL, NULL, NULL, 0 };
    ck_assert_int_eq(models_eval_logo(&dt, grp, EVAL_FEWSHOT, &p, 0, -1, without), 0);
    /* the target's three groups, its 30 windows: nothing more is tested */
    ck_assert_uint_eq(with->n_groups, 3);
    ck_assert_uint_eq(with->accuracy.n, NT);
    ck_assert_uint_eq(without->accuracy.n, NT);
    ck_assert_uint_eq(with->recall[0].n + with->recall[1].n, NT);
    ck_assert_int_eq(with->accuracy.ok, 1);
    /* the baselines ignore them too (weight < 1, another domain) */
    ck_assert_int_eq(models_eval_logo(&d, grp, EVAL_KNN, &p, 3, -1, with), 0);
    ck_assert_uint_eq(with->accuracy.n, NT);
    free(with);
    free(without);
}
END_TEST

/* ---- through the REST API ------------------------------------------------ */

#define SECRET "transfer-enroll-secret"
#define NS 256                      /* samples per channel per snapshot */

struct fx {
    struct testsrv srv;
    char token[AUTH_TOKEN_LEN + 1];
    char dir[256];
};

static long post_json(struct fx *f, const char *path, const char *body, struct testsrv_reply *rep)
{
    return testsrv_request(&f->srv, "POST", path, body ? body : "", body ? strlen(body) : 0,
                           f->token, NULL, rep);
}

/* Device dev uploads 4 snapshots on channels ch0, ch1 at gain: seq 1, 2
 * quiet, seq 3, 4 with impacts 60 times a second ringing at 250 Hz. */
static void device_upload(struct fx *f, const char *dev, const char *ch0, const char *ch1,
                          float gain, int salt)
{
    uint8_t pk[32], sk[64];

    crypto_sign_keypair(pk, sk);
    testsrv_register(&f->srv, dev, pk, SECRET);
    for (int s = 0; s < 4; s++) {
        struct wire_meta m;
        float x[2 * NS];

        testsrv_meta_2ch(&m, dev, (uint64_t)s + 1,
                         1714564800000000LL + (int64_t)(salt * 10 + s) * 1000000, NS, ch0, ch1);
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < NS; i++) {
                double t = i / 1000.0, ph = fmod(t * 60.0, 1.0) / 60.0;
                double noise = (double)((i * 7919 + c * 31 + salt * 131 + s * 17) % 101) / 500.0 - 0.1;
                double hit = s >= 2 ? 2.0 * exp(-ph * 400.0) * sin(2 * M_PI * 250.0 * ph) : 0.0;

                x[c * NS + i] = gain * (float)(noise + 0.3 * sin(2 * M_PI * 25.0 * t) + hit);
            }
        testsrv_upload(&f->srv, &m, x, sk);
    }
}

static json_t *wait_done(struct fx *f, long id)
{
    struct testsrv_reply rep;
    char path[64];
    json_t *j = NULL;

    snprintf(path, sizeof path, "/api/v1/models/%ld", id);
    for (int i = 0; i < 600; i++) {
        const char *st;

        ck_assert_int_eq(testsrv_request(&f->srv, "GET", path, NULL, 0, f->token, NULL, &rep), 200);
        j = testsrv_json(&rep);
        free(rep.body);
        st = json_string_value(json_object_get(j, "status"));
        if (strcmp(st, "done") == 0 || strcmp(st, "failed") == 0)
            return j;
        json_decref(j);
        usleep(100000);
    }
    ck_abort_msg("model %ld never finished", id);
    return NULL;
}

static long train(struct fx *f, const char *body)
{
    struct testsrv_reply rep;
    json_t *j;
    long id;

    ck_assert_int_eq(post_json(f, "/api/v1/models", body, &rep), 202);
    j = testsrv_json(&rep);
    id = (long)json_integer_value(json_object_get(j, "id"));
    json_decref(j);
    free(rep.body);
    return id;
}

static json_t *type_entry(json_t *report, const char *type)
{
    size_t i;
    json_t *e;

    json_array_foreach(json_object_get(report, "types"), i, e)
        if (strcmp(json_string_value(json_object_get(e, "equipment_type")), type) == 0)
            return e;
    return NULL;
}

START_TEST(transfer_through_the_api)
{
    struct fx f;
    struct testsrv_reply rep;
    char seedpath[300];
    json_t *m, *mt, *tr, *e, *ev;
    long id;

    TESTDB_REQUIRE();
    memset(&f, 0, sizeof f);
    testsrv_db();
    testsrv_add_token("ml", f.token, sizeof f.token);
    snprintf(f.dir, sizeof f.dir, "%s/transfer_XXXXXX", P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(f.dir));
    snprintf(seedpath, sizeof seedpath, "%s/model.key", f.dir);
    testsrv_model_key(seedpath);
    testsrv_listen(&f.srv, SECRET);

    /* Three machines of the target type, two of a sibling type at three
     * times the amplitude (same bearing fault, bigger machine), one of
     * another sibling whose channels are named otherwise, and one of a
     * type outside the tree (pumps of another root share nothing). */
    testsrv_sql("INSERT INTO equipment_types (name, parent) VALUES ('press_a', 'rotating'),"
                " ('press_b', 'rotating'), ('press_c', 'rotating'), ('tank', NULL)");
    device_upload(&f, "ta-0", "vib_x", "vib_y", 1.0f, 0);
    device_upload(&f, "ta-1", "vib_x", "vib_y", 1.0f, 1);
    device_upload(&f, "ta-2", "vib_x", "vib_y", 1.0f, 2);
    device_upload(&f, "tb-0", "vib_x", "vib_y", 3.0f, 3);
    device_upload(&f, "tb-1", "vib_x", "vib_y", 3.0f, 4);
    device_upload(&f, "tc-0", "acc_1", "acc_2", 1.0f, 5);
    device_upload(&f, "tk-0", "vib_x", "vib_y", 1.0f, 6);
    testsrv_sql("UPDATE devices SET equipment_type = CASE substr(id, 1, 2) WHEN 'ta' THEN 'press_a'"
                " WHEN 'tb' THEN 'press_b' WHEN 'tc' THEN 'press_c' ELSE 'tank' END");
    testsrv_sql("INSERT INTO labels (snapshot_id, start_s, end_s, channels, class, created_by)"
                " SELECT id, 0, 0.256, '{0}', CASE WHEN seq >= 3 THEN 'bearing_outer_race'"
                " ELSE 'normal' END, 'alice' FROM snapshots");

    ck_assert_int_eq(post_json(&f, "/api/v1/datasets",
                               "{\"name\":\"press a\",\"filter\":{\"sources\":[\"human\"],"
                               "\"equipment_types\":[\"press_a\"]},"
                               "\"window\":{\"length_s\":0.128,\"stride_s\":0.128},"
                               "\"split\":{\"by\":\"device\",\"fractions\":[1,0,0],\"seed\":1}}",
                               &rep), 201);
    free(rep.body);
    ck_assert_int_eq(post_json(&f, "/api/v1/datasets/1/versions", NULL, &rep), 201);
    free(rep.body);
    ck_assert_int_eq(post_json(&f, "/api/v1/models",
                               "{\"dataset_id\":1,\"version\":1,\"kind\":\"fewshot\",\"transfer\":1}",
                               &rep), 400);
    free(rep.body);

    id = train(&f, "{\"dataset_id\":1,\"version\":1,\"kind\":\"fewshot\"}");
    m = wait_done(&f, id);
    ck_assert_msg(strcmp(json_string_value(json_object_get(m, "status")), "done") == 0, "%s",
                  json_string_value(json_object_get(m, "error")));
    ck_assert(json_is_true(json_object_get(m, "transfer")));
    mt = json_object_get(m, "metrics");
    tr = json_object_get(mt, "transfer");
    ck_assert(json_is_true(json_object_get(tr, "enabled")));
    ck_assert_float_eq(json_number_value(json_object_get(tr, "weight")), MODELS_TRANSFER_WEIGHT);
    /* press_b lends its 2 machines x 4 snapshots x 2 windows: 8 of the
     * shared class as weak labels, 8 normal unlabeled */
    ck_assert_int_eq(json_integer_value(json_object_get(tr, "types_used")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(tr, "windows")), 16);
    ck_assert_int_eq(json_integer_value(json_object_get(tr, "labeled_windows")), 8);
    e = type_entry(tr, "press_b");
    ck_assert_ptr_nonnull(e);
    ck_assert(json_is_true(json_object_get(e, "used")));
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(e, "shared_classes"), 0)),
                     "bearing_outer_race");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "normal_windows")), 8);
    ck_assert_int_gt(json_integer_value(json_object_get(e, "dataset_id")), 1);
    /* press_c shares the class but not the channels: skipped, and says so */
    e = type_entry(tr, "press_c");
    ck_assert_ptr_nonnull(e);
    ck_assert(json_is_false(json_object_get(e, "used")));
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(e, "reason")), "channels"));
    /* tank is no relative of press_a */
    ck_assert_ptr_null(type_entry(tr, "tank"));

    /* the evaluation: with transfer and without, on the same 24 target
     * windows (3 machines x 4 snapshots x 2), never on a borrowed one */
    ev = json_object_get(mt, "evaluation");
    ck_assert_ptr_nonnull(json_object_get(ev, "transfer"));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(ev, "transfer"), "windows")), 16);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(json_object_get(ev, "fewshot"),
                                                                        "accuracy"), "n")), 24);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(json_object_get(
                         json_object_get(ev, "transfer"), "without"), "accuracy"), "n")), 24);
    ck_assert(json_is_number(json_object_get(json_object_get(ev, "transfer"), "accuracy_change")) ||
              json_is_string(json_object_get(json_object_get(ev, "transfer"), "accuracy_change_reason")));
    /* the borrowed windows are a frozen version anyone can list and export */
    {
        char path[96];
        json_t *dj;

        e = type_entry(tr, "press_b");
        snprintf(path, sizeof path, "/api/v1/datasets/%lld",
                 (long long)json_integer_value(json_object_get(e, "dataset_id")));
        ck_assert_int_eq(testsrv_request(&f.srv, "GET", path, NULL, 0, f.token, NULL, &rep), 200);
        dj = testsrv_json(&rep);
        free(rep.body);
        ck_assert_str_eq(json_string_value(json_object_get(dj, "name")), "transfer from press_b");
        json_decref(dj);
        snprintf(path, sizeof path, "/api/v1/datasets/%lld/versions/%lld",
                 (long long)json_integer_value(json_object_get(e, "dataset_id")),
                 (long long)json_integer_value(json_object_get(e, "version")));
        ck_assert_int_eq(testsrv_request(&f.srv, "GET", path, NULL, 0, f.token, NULL, &rep), 200);
        dj = testsrv_json(&rep);
        free(rep.body);
        ck_assert_int_eq(json_integer_value(json_object_get(dj, "n_windows")), 16);
        json_decref(dj);
    }
    json_decref(m);

    /* turned off: no related window, and the record says so */
    id = train(&f, "{\"dataset_id\":1,\"version\":1,\"kind\":\"fewshot\",\"transfer\":false}");
    m = wait_done(&f, id);
    ck_assert_str_eq(json_string_value(json_object_get(m, "status")), "done");
    ck_assert(json_is_false(json_object_get(m, "transfer")));
    mt = json_object_get(m, "metrics");
    ck_assert(json_is_false(json_object_get(json_object_get(mt, "transfer"), "enabled")));
    ck_assert_ptr_null(json_object_get(json_object_get(mt, "evaluation"), "transfer"));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(json_object_get(
                         json_object_get(mt, "evaluation"), "fewshot"), "accuracy"), "n")), 24);
    json_decref(m);
    /* the list says it too, newest first */
    ck_assert_int_eq(testsrv_request(&f.srv, "GET", "/api/v1/models", NULL, 0, f.token, NULL, &rep), 200);
    m = testsrv_json(&rep);
    free(rep.body);
    ck_assert(json_is_false(json_object_get(json_array_get(json_object_get(m, "items"), 0), "transfer")));
    ck_assert(json_is_true(json_object_get(json_array_get(json_object_get(m, "items"), 1), "transfer")));
    json_decref(m);

    testsrv_stop(&f.srv);
    {
        char cmd[300];

        snprintf(cmd, sizeof cmd, "rm -rf %s", f.dir);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

Suite *transfer_suite(void);
Suite *transfer_suite(void)
{
    Suite *s = suite_create("transfer");
    TCase *tc = tcase_create("selection");

    tcase_add_test(tc, transfer_selects_shared_classes);
    tcase_add_test(tc, transfer_maps_channels_and_domains);
    tcase_add_test(tc, logo_never_tests_transferred_rows);
    suite_add_tcase(s, tc);
    tc = tcase_create("api");
    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, transfer_through_the_api);
    suite_add_tcase(s, tc);
    return s;
}
