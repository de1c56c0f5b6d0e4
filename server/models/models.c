/* models.c - training on-device models from dataset versions, and the REST
 * routes that queue them and hand out their header, signed blob and the
 * server's model-signing public key.
 *
 * Training reads the version with ds_reader (one window at a time), turns
 * each window into the detector's feature vector (7 per channel), and:
 *   anomaly    - fits schema/model.c's Gaussian on the "normal" windows only;
 *   classifier - fits nearest centroids over the version's classes.
 * Evaluation is grouped k-fold cross-validation: folds are whole split
 * groups (device, asset, ...), so a machine is never scored by a model that
 * saw it.  Alarm metrics treat "score >= threshold" as an alert on a
 * snapshot and compare the implied load with the ISA-18.2 targets. */
#include "server/models/models.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "schema/model.h"
#include "server/datasets/datasets.h"
#include "server/db/db.h"
#include "server/text/text.h"
#include "server/srv/srv.h"

#define MODELS_RUNNING_MAX 2
#define MODELS_FOLDS 5
#define MODELS_MAX_WINDOWS 2000000      /* feature rows held in memory while training */
/* ISA-18.2 / EEMUA 191: about 6 alarms per operator-hour is very likely
 * acceptable, 12 the most that is manageable. */
#define ISA_TARGET_PER_HOUR 6.0
#define ISA_MAX_PER_HOUR 12.0

static char key_file[512];
static pthread_mutex_t key_mu = PTHREAD_MUTEX_INITIALIZER;
static int key_loaded;
static uint8_t key_sk[64], key_pk[32];
static atomic_int running;

enum { M_INSERT, M_GET, M_CLAIM, M_DONE, M_FAILED, M_COUNT };
static const struct db_sql stmts[M_COUNT] = {
    [M_INSERT] = { "models_insert",
        "INSERT INTO models (dataset_id, version, kind, created_by)"
        " SELECT $1, $2, $3, $4 FROM dataset_versions WHERE dataset_id = $1 AND version = $2"
        " RETURNING id", 4 },
    [M_GET] = { "models_get",
        "SELECT id, dataset_id, version, kind, status, metrics::text, test_vector::text, error,"
        " created_at, finished_at, blob IS NOT NULL, header, blob FROM models WHERE id = $1", 1 },
    [M_CLAIM] = { "models_claim",
        "UPDATE models SET status = 'training' WHERE id = $1 AND status = 'queued'"
        " RETURNING dataset_id, version, kind", 1 },
    [M_DONE] = { "models_done",
        "UPDATE models SET status = 'done', metrics = $2::jsonb, test_vector = $3::jsonb,"
        " blob = $4::bytea, header = $5, finished_at = now() WHERE id = $1", 5 },
    [M_FAILED] = { "models_failed",
        "UPDATE models SET status = 'failed', error = $2, finished_at = now() WHERE id = $1", 2 },
};

static int mexec(int s, const char *const *vals, const int *lens, const int *fmts, int binary,
                 PGresult **out)
{
    return db_exec_own(&stmts[s], vals, lens, fmts, binary, out);
}

static int fail(struct srv_response *rs, int err, const char *msg)
{
    rs->err_message = msg;
    return err;
}

/* ---- options and the signing key ----------------------------------------- */

void models_set_key_file(const char *path)
{
    pthread_mutex_lock(&key_mu);
    snprintf(key_file, sizeof key_file, "%s", path ? path : "");
    key_loaded = 0;
    pthread_mutex_unlock(&key_mu);
}

int models_opts_take(int argc, char **argv)
{
    int i, j = 0;

    for (i = 0; i < argc; i++) {
        const char *a = argv[i];

        if (strncmp(a, "--model-key-file=", 17) == 0) {
            models_set_key_file(a + 17);
        } else if (strcmp(a, "--model-key-file") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "precursor-server: --model-key-file needs a value\n");
                return -1;
            }
            models_set_key_file(argv[++i]);
        } else {
            argv[j++] = argv[i];
        }
    }
    return j;
}

void models_opts_help(FILE *f)
{
    fprintf(f, "  --model-key-file F     Ed25519 key that signs model blobs (64 bytes: seed and\n"
               "                         public key); default var/model-signing.key, made on first use\n");
}

static int read_key(const char *path, uint8_t sk[64])
{
    uint8_t buf[65];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    n = read(fd, buf, sizeof buf);
    close(fd);
    if (n == 32) {              /* a bare seed */
        uint8_t pk[32];

        crypto_sign_seed_keypair(pk, sk, buf);
    } else if (n == 64) {
        memcpy(sk, buf, 64);
    } else {
        sodium_memzero(buf, sizeof buf);
        return -EINVAL;
    }
    sodium_memzero(buf, sizeof buf);
    return 0;
}

int models_signing_key(uint8_t sk[64], uint8_t pk[32])
{
    const char *path;
    int rc = SRV_OK;

    pthread_mutex_lock(&key_mu);
    if (!key_loaded) {
        path = key_file[0] ? key_file : "var/model-signing.key";
        if (sodium_init() < 0) {
            rc = SRV_EINTERNAL;
        } else if (read_key(path, key_sk) == 0) {
            key_loaded = 1;
        } else if (key_file[0]) {
            srv_log("error", "models: cannot read the model key %s (32 or 64 bytes)", path);
            rc = SRV_EINTERNAL;
        } else {
            /* First use without a flag: make one, private to the server. */
            int fd;

            (void)mkdir("var", 0755);
            crypto_sign_keypair(key_pk, key_sk);
            fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0 && errno == EEXIST && read_key(path, key_sk) == 0) {
                key_loaded = 1;     /* another process made it meanwhile */
            } else if (fd < 0 || write(fd, key_sk, 64) != 64 || fsync(fd) != 0) {
                srv_log("error", "models: cannot write %s: %s", path, strerror(errno));
                rc = SRV_EINTERNAL;
            } else {
                srv_log("info", "models: generated the model-signing key %s", path);
                key_loaded = 1;
            }
            if (fd >= 0)
                close(fd);
        }
        if (key_loaded)
            crypto_sign_ed25519_sk_to_pk(key_pk, key_sk);
    }
    if (rc == SRV_OK) {
        memcpy(sk, key_sk, 64);
        memcpy(pk, key_pk, 32);
    }
    pthread_mutex_unlock(&key_mu);
    return rc;
}

/* ---- training ------------------------------------------------------------ */

struct trainset {
    float *X;                   /* n x d */
    int *y;
    uint32_t *group;
    int64_t *snap;
    size_t n;
    uint16_t d;
};

static void trainset_free(struct trainset *t)
{
    free(t->X);
    free(t->y);
    free(t->group);
    free(t->snap);
}

static int load_features(struct ds_reader *rd, struct trainset *t)
{
    const struct ds_info *in = ds_reader_info(rd);
    struct ds_row row;
    const float *x;
    size_t cap;
    unsigned c;
    int rc;

    if (in->n_windows <= 0 || in->n_windows > MODELS_MAX_WINDOWS ||
        (size_t)in->channel_count * MODEL_NFEAT > MODEL_MAX_FEATURES)
        return SRV_EUNPROCESSABLE;
    cap = (size_t)in->n_windows;
    t->d = (uint16_t)(in->channel_count * MODEL_NFEAT);
    t->X = malloc(cap * t->d * sizeof *t->X);
    t->y = malloc(cap * sizeof *t->y);
    t->group = malloc(cap * sizeof *t->group);
    t->snap = malloc(cap * sizeof *t->snap);
    if (!t->X || !t->y || !t->group || !t->snap)
        return SRV_ENOMEM;
    while ((rc = ds_reader_next(rd, &row, &x)) == 1) {
        if (t->n == cap)
            return SRV_EINTERNAL;
        for (c = 0; c < in->channel_count; c++)
            model_window_features(x + (size_t)c * in->window_samples, in->window_samples,
                                  t->X + t->n * t->d + c * MODEL_NFEAT);
        t->y[t->n] = row.cls;
        t->group[t->n] = row.group;
        t->snap[t->n] = row.snapshot_id;
        t->n++;
    }
    return rc < 0 ? rc : SRV_OK;
}

/* Train on the rows selected by use[] (NULL: all). */
static int fit(const struct trainset *t, const unsigned char *use, int kind, const struct ds_info *in,
               struct model *m, const char **why)
{
    float *X = malloc(t->n * t->d * sizeof *X);
    int *y = malloc(t->n * sizeof *y), bad = -1, rc;
    size_t i, k = 0;

    if (!X || !y) {
        free(X);
        free(y);
        return SRV_ENOMEM;
    }
    for (i = 0; i < t->n; i++) {
        if (use && !use[i])
            continue;
        if (kind == MODEL_ANOMALY && t->y[i] != in->normal_class)
            continue;           /* the anomaly model never sees a failure */
        memcpy(X + k * t->d, t->X + i * t->d, t->d * sizeof *X);
        y[k++] = t->y[i];
    }
    if (kind == MODEL_ANOMALY)
        rc = model_train_anomaly(X, k, t->d, 0.99f, m);
    else
        rc = model_train_centroid(X, y, k, t->d, (uint16_t)in->n_classes,
                                  in->normal_class >= 0 ? (uint16_t)in->normal_class : MODEL_NO_CLASS,
                                  m, &bad);
    free(X);
    free(y);
    if (rc == MODEL_ETOOFEW)
        *why = kind == MODEL_ANOMALY ? "needs at least 2 windows labeled normal"
                                     : "a class has no training window";
    return rc == MODEL_OK ? SRV_OK : rc == MODEL_ENOMEM ? SRV_ENOMEM : SRV_EUNPROCESSABLE;
}

static json_t *evaluate(const struct trainset *t, int kind, const struct ds_info *in)
{
    unsigned char *use = malloc(t->n), *alarm = calloc(t->n, 1), *scored = calloc(t->n, 1);
    struct model *m = malloc(sizeof *m);
    uint32_t folds = in->n_groups < MODELS_FOLDS ? in->n_groups : MODELS_FOLDS;
    size_t i, tp = 0, fp = 0, fn = 0, tn = 0, correct = 0, n_scored = 0, snaps = 0, snap_alarms = 0;
    unsigned f, skipped = 0;
    double days, per_dev_day, per_hour;
    const char *why = NULL;
    json_t *j = NULL;

    if (!use || !alarm || !scored || !m)
        goto out;
    for (f = 0; folds >= 2 && f < folds; f++) {
        for (i = 0; i < t->n; i++)
            use[i] = t->group[i] % folds != f;
        if (fit(t, use, kind, in, m, &why) != SRV_OK) {
            skipped++;
            continue;
        }
        for (i = 0; i < t->n; i++) {
            const float *x = t->X + i * t->d;

            if (use[i])
                continue;
            scored[i] = 1;
            alarm[i] = model_score(m, x, t->d) >= m->threshold;
            if (kind == MODEL_CENTROID && model_classify(m, x, t->d, NULL) == t->y[i])
                correct++;
        }
    }
    for (i = 0; i < t->n; i++) {
        int pos = t->y[i] != in->normal_class;

        if (!scored[i])
            continue;
        n_scored++;
        tp += alarm[i] && pos;
        fp += alarm[i] && !pos;
        fn += !alarm[i] && pos;
        tn += !alarm[i] && !pos;
    }
    /* Alerts per snapshot: a snapshot alarms when any of its windows does
     * (windows come ordered by snapshot). */
    for (i = 0; i < t->n; i++) {
        int any = 0, seen = 0;
        size_t k = i;

        for (; k < t->n && t->snap[k] == t->snap[i]; k++) {
            seen |= scored[k];
            any |= scored[k] && alarm[k];
        }
        snaps += seen;
        snap_alarms += any;
        i = k - 1;
    }
    days = (double)(in->t_max_us - in->t_min_us) / 86400e6;
    if (days < 1)
        days = 1;
    per_dev_day = (double)snap_alarms / ((in->n_devices ? in->n_devices : 1) * days);
    per_hour = (double)snap_alarms / (days * 24);
    j = json_pack("{s:s,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:I,s:I,s:f,s:f,s:f,s:f,s:b,s:s}",
                  "cv", "grouped k-fold over split groups", "folds", (int)folds,
                  "folds_skipped", (int)skipped, "windows_scored", (json_int_t)n_scored,
                  "tp", (json_int_t)tp, "fp", (json_int_t)fp, "fn", (json_int_t)fn, "tn", (json_int_t)tn,
                  "precision", tp + fp ? (double)tp / (double)(tp + fp) : 0.0,
                  "recall", tp + fn ? (double)tp / (double)(tp + fn) : 0.0,
                  "snapshots_scored", (json_int_t)snaps, "snapshots_alerting", (json_int_t)snap_alarms,
                  "expected_alerts_per_device_per_day", per_dev_day,
                  "expected_alerts_per_operator_hour", per_hour,
                  "isa18_2_target_per_operator_hour", ISA_TARGET_PER_HOUR,
                  "isa18_2_max_manageable_per_operator_hour", ISA_MAX_PER_HOUR,
                  "meets_isa18_2_target", per_hour <= ISA_TARGET_PER_HOUR,
                  "alerts_basis", "snapshots in the version over the days they span, one operator");
    if (j && kind == MODEL_CENTROID)
        json_object_set_new(j, "accuracy", json_real(n_scored ? (double)correct / (double)n_scored : 0));
    if (j && folds < 2)
        json_object_set_new(j, "note", json_string("fewer than 2 groups: no cross-validation"));
out:
    free(use);
    free(alarm);
    free(scored);
    free(m);
    return j;
}

static void mark_failed(int64_t id, const char *why)
{
    char idb[24];
    const char *vals[2] = { idb, why };

    snprintf(idb, sizeof idb, "%lld", (long long)id);
    (void)mexec(M_FAILED, vals, NULL, NULL, 0, NULL);
}

int models_train(int64_t id)
{
    char idb[24], *hdr = NULL, *mets = NULL, *tvs = NULL;
    const char *vals[5], *why = "training failed";
    PGresult *r = NULL;
    struct ds_reader *rd = NULL;
    struct trainset t = { 0 };
    struct model *m = NULL;
    const struct ds_info *in;
    json_t *metrics = NULL, *tv = NULL, *xs;
    uint8_t sk[64], pk[32], *blob = NULL;
    size_t blob_len = 0, hlen, i;
    const char *names[64], *units[64];
    float x[MODEL_MAX_FEATURES];
    int err, kind, lens[5], fmts[5] = { 0, 0, 0, 1, 0 };
    int64_t dsid;
    int version;
    struct timespec now;

    snprintf(idb, sizeof idb, "%lld", (long long)id);
    vals[0] = idb;
    if ((err = mexec(M_CLAIM, vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return SRV_ENOTFOUND;
    }
    dsid = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    version = atoi(PQgetvalue(r, 0, 1));
    kind = strcmp(PQgetvalue(r, 0, 2), "anomaly") == 0 ? MODEL_ANOMALY : MODEL_CENTROID;
    PQclear(r);
    r = NULL;
    if ((err = ds_reader_open(dsid, version, &rd)) != SRV_OK) {
        why = "dataset version unreadable";
        goto fail;
    }
    in = ds_reader_info(rd);
    if (kind == MODEL_ANOMALY && in->normal_class < 0) {
        why = "the anomaly model needs windows labeled normal";
        err = SRV_EUNPROCESSABLE;
        goto fail;
    }
    if (kind == MODEL_CENTROID && (in->n_classes < 2 || in->n_classes > MODEL_MAX_CLASSES)) {
        why = "the classifier needs 2..32 classes";
        err = SRV_EUNPROCESSABLE;
        goto fail;
    }
    if ((err = load_features(rd, &t)) != SRV_OK) {
        why = err == SRV_EUNPROCESSABLE ? "version too large or too many channels for a model"
                                        : "reading the windows failed";
        goto fail;
    }
    if (!(m = calloc(1, sizeof *m))) {
        err = SRV_ENOMEM;
        goto fail;
    }
    if (!(metrics = evaluate(&t, kind, in))) {
        err = SRV_ENOMEM;
        goto fail;
    }
    if ((err = fit(&t, NULL, kind, in, m, &why)) != SRV_OK)
        goto fail;
    for (i = 0; i < in->channel_count; i++) {
        names[i] = in->channel_names[i];
        units[i] = in->channel_units[i];
    }
    clock_gettime(CLOCK_REALTIME, &now);
    m->channel_count = (uint8_t)in->channel_count;
    m->version = (uint32_t)id;
    m->created_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    if (model_layout_digest(names, units, in->channel_count, m->layout) != MODEL_OK ||
        (err = models_signing_key(sk, pk)) != SRV_OK ||
        model_encode(m, sk, &blob, &blob_len) != MODEL_OK ||
        model_emit_header(m, "precursor_model", &hdr, &hlen) != MODEL_OK) {
        sodium_memzero(sk, sizeof sk);
        why = "encoding the model failed";
        err = SRV_EINTERNAL;
        goto fail;
    }
    sodium_memzero(sk, sizeof sk);
    /* The test vector: what the header's self test and the agent must
     * reproduce bit for bit (floats as exact hex strings too). */
    model_test_input(m, x);
    xs = json_array();
    for (i = 0; i < m->n_features; i++)
        json_array_append_new(xs, json_real((double)x[i]));
    {
        char sh[64];
        float sc = model_score(m, x, m->n_features);

        snprintf(sh, sizeof sh, "%a", (double)sc);
        tv = json_pack("{s:o,s:f,s:s,s:i,s:f}", "input", xs, "score", (double)sc, "score_hex", sh,
                       "class", model_classify(m, x, m->n_features, NULL),
                       "threshold", (double)m->threshold);
    }
    json_object_set_new(metrics, "windows_trained", json_integer((json_int_t)t.n));
    json_object_set_new(metrics, "n_features", json_integer(m->n_features));
    json_object_set_new(metrics, "blob_bytes", json_integer((json_int_t)blob_len));
    mets = json_dumps(metrics, JSON_COMPACT | JSON_SORT_KEYS);
    tvs = tv ? json_dumps(tv, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (!mets || !tvs) {
        err = SRV_ENOMEM;
        goto fail;
    }
    vals[1] = mets;
    vals[2] = tvs;
    vals[3] = (const char *)blob;
    vals[4] = hdr;
    memset(lens, 0, sizeof lens);
    lens[3] = (int)blob_len;
    err = mexec(M_DONE, vals, lens, fmts, 0, NULL);
    goto out;
fail:
    srv_log("warn", "models: model %lld: %s", (long long)id, why);
    mark_failed(id, why);
out:
    ds_reader_free(rd);
    trainset_free(&t);
    json_decref(metrics);
    json_decref(tv);
    free(m);
    free(blob);
    free(hdr);
    free(mets);
    free(tvs);
    return err;
}

static void *train_main(void *arg)
{
    int64_t id = *(int64_t *)arg;

    free(arg);
    (void)models_train(id);
    db_thread_release();
    atomic_fetch_sub(&running, 1);
    return NULL;
}

/* ---- routes -------------------------------------------------------------- */

int models_api_create(struct srv_request *rq, struct srv_response *rs)
{
    json_t *body;
    const char *kind, *vals[4];
    char dsb[24], vb[16], by[80];
    PGresult *r = NULL;
    int64_t *idp;
    pthread_t th;
    pthread_attr_t at;
    int err;

    if (rq->role != SRV_ROLE_ML && rq->role != SRV_ROLE_ADMIN)
        return fail(rs, SRV_EFORBIDDEN, "needs the ml or admin role");
    body = rq->body ? json_loadb((const char *)rq->body, rq->body_len, 0, NULL) : NULL;
    kind = json_string_value(json_object_get(body, "kind"));
    if (!json_is_integer(json_object_get(body, "dataset_id")) ||
        !json_is_integer(json_object_get(body, "version")) || !kind ||
        (strcmp(kind, "anomaly") != 0 && strcmp(kind, "classifier") != 0) ||
        json_integer_value(json_object_get(body, "dataset_id")) < 1 ||
        json_integer_value(json_object_get(body, "version")) < 1 ||
        json_integer_value(json_object_get(body, "version")) > 1000000000) {
        json_decref(body);
        return fail(rs, SRV_EBADREQ, "needs dataset_id, version and kind anomaly|classifier");
    }
    snprintf(dsb, sizeof dsb, "%lld", (long long)json_integer_value(json_object_get(body, "dataset_id")));
    snprintf(vb, sizeof vb, "%lld", (long long)json_integer_value(json_object_get(body, "version")));
    if (rq->user_id > 0)
        snprintf(by, sizeof by, "%s", rq->user_name);
    else
        snprintf(by, sizeof by, "token:%lld", (long long)rq->token_id);
    vals[0] = dsb;
    vals[1] = vb;
    vals[2] = kind;
    vals[3] = by;
    err = mexec(M_INSERT, vals, NULL, NULL, 0, &r);
    json_decref(body);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return fail(rs, SRV_ENOTFOUND, "no such dataset version");
    }
    if (!(idp = malloc(sizeof *idp))) {
        PQclear(r);
        return SRV_ENOMEM;
    }
    *idp = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    /* Bounded: beyond the cap the request is refused (503, Retry-After)
     * and the row is marked failed, so no model stays queued forever. */
    if (atomic_fetch_add(&running, 1) >= MODELS_RUNNING_MAX) {
        atomic_fetch_sub(&running, 1);
        mark_failed(*idp, "too many models training; submit again later");
        free(idp);
        rs->retry_after = 30;
        return fail(rs, SRV_EOVERLOAD, "too many models training; retry after Retry-After");
    }
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    {
        int64_t id = *idp;

        if (pthread_create(&th, &at, train_main, idp) != 0) {
            pthread_attr_destroy(&at);
            atomic_fetch_sub(&running, 1);
            mark_failed(id, "cannot start a thread");
            free(idp);
            return SRV_EINTERNAL;
        }
        pthread_attr_destroy(&at);
        return srv_respond_json_take(rs, 202, json_pack("{s:I}", "id", (json_int_t)id));
    }
}

static int load(const struct srv_request *rq, struct srv_response *rs, int binary, PGresult **out)
{
    char idb[24];
    const char *vals[1] = { idb };
    int64_t id;
    int err;

    if (rq->role == SRV_ROLE_NONE)
        return fail(rs, SRV_EFORBIDDEN, "no role");
    if (!rq->params[0] || text_parse_id(rq->params[0], &id) != 0)
        return fail(rs, SRV_ENOTFOUND, "no such model");
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    if ((err = mexec(M_GET, vals, NULL, NULL, binary, out)) != SRV_OK)
        return err;
    if (PQntuples(*out) != 1) {
        PQclear(*out);
        *out = NULL;
        return fail(rs, SRV_ENOTFOUND, "no such model");
    }
    return SRV_OK;
}

int models_api_get(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    json_t *j;
    int err;

    if ((err = load(rq, rs, 0, &r)) != SRV_OK)
        return err;
    j = json_pack("{s:I,s:I,s:i,s:s,s:s,s:s}", "id", (json_int_t)strtoll(PQgetvalue(r, 0, 0), NULL, 10),
                  "dataset_id", (json_int_t)strtoll(PQgetvalue(r, 0, 1), NULL, 10),
                  "version", atoi(PQgetvalue(r, 0, 2)), "kind", PQgetvalue(r, 0, 3),
                  "status", PQgetvalue(r, 0, 4), "created_at", PQgetvalue(r, 0, 8));
    if (j) {
        json_object_set_new(j, "metrics", PQgetisnull(r, 0, 5) ? json_null()
                                          : json_loads(PQgetvalue(r, 0, 5), 0, NULL));
        json_object_set_new(j, "test_vector", PQgetisnull(r, 0, 6) ? json_null()
                                              : json_loads(PQgetvalue(r, 0, 6), 0, NULL));
        if (!PQgetisnull(r, 0, 7))
            json_object_set_new(j, "error", json_string(PQgetvalue(r, 0, 7)));
        if (!PQgetisnull(r, 0, 9))
            json_object_set_new(j, "finished_at", json_string(PQgetvalue(r, 0, 9)));
    }
    PQclear(r);
    return srv_respond_json_take(rs, 200, j);
}

static int respond_column(struct srv_request *rq, struct srv_response *rs, int col, const char *ctype)
{
    PGresult *r = NULL;
    int err, binary = col == 12;

    if ((err = load(rq, rs, binary, &r)) != SRV_OK)
        return err;
    if (PQgetisnull(r, 0, col)) {
        PQclear(r);
        return fail(rs, SRV_ECONFLICT, "the model has not finished training");
    }
    rs->body_len = (size_t)PQgetlength(r, 0, col);
    if (!(rs->body = malloc(rs->body_len ? rs->body_len : 1))) {
        PQclear(r);
        return SRV_ENOMEM;
    }
    memcpy(rs->body, PQgetvalue(r, 0, col), rs->body_len);
    PQclear(r);
    rs->status = 200;
    rs->content_type = ctype;
    return SRV_OK;
}

int models_api_header(struct srv_request *rq, struct srv_response *rs)
{
    return respond_column(rq, rs, 11, "text/x-c");
}

int models_api_blob(struct srv_request *rq, struct srv_response *rs)
{
    return respond_column(rq, rs, 12, "application/octet-stream");
}

int models_api_signing_key(struct srv_request *rq, struct srv_response *rs)
{
    uint8_t sk[64], pk[32];
    char b64[64], hex[65];
    int err;

    if (rq->role == SRV_ROLE_NONE)
        return fail(rs, SRV_EFORBIDDEN, "no role");
    if ((err = models_signing_key(sk, pk)) != SRV_OK)
        return err;
    sodium_memzero(sk, sizeof sk);
    if (text_b64_encode(pk, sizeof pk, b64, sizeof b64) != 0)
        return SRV_EINTERNAL;
    sodium_bin2hex(hex, sizeof hex, pk, sizeof pk);
    return srv_respond_json_take(rs, 200, json_pack("{s:s,s:s,s:s}", "algorithm", "ed25519",
                                                    "public_key", b64, "public_key_hex", hex));
}
