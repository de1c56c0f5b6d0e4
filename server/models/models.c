/* models.c - the models module's statements, the server's model-signing
 * key, and the REST routes that queue trainings (models_train.c) and hand
 * out a model, its C header, its signed blob and the signing public key.
 *
 * Who may call which route is the route table's business (server/routes.c:
 * ml or admin to train, any role to read). */
#include "server/models/models_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/srv/srv.h"
#include "server/text/text.h"

int models__training_max = 2;
void (*models__training_started)(int64_t id);

static char key_file[512];
static pthread_mutex_t key_mu = PTHREAD_MUTEX_INITIALIZER;
static int key_loaded;
static uint8_t key_sk[64], key_pk[32];
static atomic_int running;

static const struct db_sql stmts[M_COUNT] = {
    [M_INSERT] = { "models_insert",
        "INSERT INTO models (dataset_id, version, kind, created_by, transfer, feature_set)"
        " SELECT $1, $2, $3, $4, $5::boolean, $6 FROM dataset_versions"
        " WHERE dataset_id = $1 AND version = $2 RETURNING id", 6 },
    [M_GET] = { "models_get",
        "SELECT id, dataset_id, version, kind, transfer, status, metrics::text AS metrics,"
        " test_vector::text AS test_vector, error, " DB_RFC3339("created_at") " AS created_at,"
        " " DB_RFC3339("finished_at") " AS finished_at, header, blob"
        " FROM models WHERE id = $1", 1 },
    [M_CLAIM] = { "models_claim",
        "UPDATE models SET status = 'training' WHERE id = $1 AND status = 'queued'"
        " RETURNING dataset_id, version, kind, transfer, feature_set", 1 },
    /* The model done and, in the same statement, what it predicts for each
     * snapshot of its version and of its devices' no label reached ($6..$9
     * as arrays, NULL for none: an anomaly model): a done classifier never
     * lacks them, a failed one never has them. */
    [M_DONE] = { "models_done",
        "WITH d AS (UPDATE models SET status = 'done', metrics = $2::jsonb,"
        "  test_vector = $3::jsonb, blob = $4::bytea, header = $5, finished_at = now()"
        "  WHERE id = $1 AND status = 'training' RETURNING id)"
        " INSERT INTO model_snapshot_predictions (model_id, snapshot_id, class, probability, margin)"
        " SELECT d.id, u.* FROM d, unnest($6::bigint[], $7::text[], $8::real[], $9::real[]) AS u", 9 },
    [M_FAILED] = { "models_failed",
        "UPDATE models SET status = 'failed', error = $2, finished_at = now()"
        " WHERE id = $1 AND status IN ('queued', 'training')", 2 },
    /* How the version's machines turn, an asset's values winning over its
     * type's (the view device_kinematics, as the spectrum endpoint reads
     * them): per snapshot of the version, its device's. */
    [M_KINEMATICS] = { "models_kinematics",
        "SELECT s.id AS snapshot_id, s.device_id, k.shaft_hz, k.balls, k.ball_mm, k.pitch_mm,"
        " k.contact_deg FROM snapshots s"
        " LEFT JOIN device_kinematics k ON k.device_id = s.device_id"
        " WHERE s.id IN (SELECT snapshot_id FROM dataset_windows"
        "  WHERE dataset_id = $1::bigint AND version = $2::int) ORDER BY s.id", 2 },
    /* Transfer: the equipment types related to the version's (the taxonomy's
     * taxonomy_related_types: ancestors, siblings and their subtrees) whose
     * failure modes, their own or inherited from an ancestor, record a class
     * that the version's types' failure modes record too and the version
     * holds ($3, the version's classes): per type the shared classes (a JSON
     * array) and how many snapshots humans labeled with one of them there. */
    [M_RELATED] = { "models_related",
        "WITH RECURSIVE tgt AS (SELECT DISTINCT d.equipment_type AS t"
        "  FROM (SELECT DISTINCT snapshot_id FROM dataset_windows"
        "   WHERE dataset_id = $1::bigint AND version = $2::int) w"
        "  JOIN snapshots s ON s.id = w.snapshot_id JOIN devices d ON d.id = s.device_id"
        "  WHERE d.equipment_type IS NOT NULL),"
        " anc(type, name, depth) AS (SELECT name, name, 0 FROM equipment_types"
        "  UNION ALL SELECT anc.type, e.parent, anc.depth + 1 FROM anc"
        "  JOIN equipment_types e ON e.name = anc.name"
        "  WHERE e.parent IS NOT NULL AND anc.depth < 32),"
        " modes AS (SELECT DISTINCT anc.type, f.class FROM anc"
        "  JOIN failure_modes f ON f.equipment_type = anc.name),"
        " rel AS (SELECT DISTINCT r.name AS type FROM tgt"
        "  CROSS JOIN LATERAL taxonomy_related_types(tgt.t) AS r(name)"
        "  WHERE r.name NOT IN (SELECT t FROM tgt)),"
        " shared AS (SELECT rel.type, m.class FROM rel JOIN modes m ON m.type = rel.type"
        "  WHERE m.class = ANY ($3::text[]) AND EXISTS (SELECT 1 FROM modes mt"
        "   JOIN tgt ON mt.type = tgt.t WHERE mt.class = m.class))"
        " SELECT sh.type, to_json(array_agg(sh.class ORDER BY sh.class))::text AS classes,"
        "  (SELECT count(DISTINCT l.snapshot_id) FROM labels l"
        "   JOIN snapshots s ON s.id = l.snapshot_id JOIN devices d ON d.id = s.device_id"
        "   WHERE d.equipment_type = sh.type AND l.class = ANY (array_agg(sh.class))) AS labeled,"
        "  (SELECT count(*) FROM tgt) AS target_types"
        " FROM shared sh GROUP BY sh.type ORDER BY sh.type", 3 },
    /* The agents' scheduled baseline snapshots among the version's windows:
     * what the relations set may assume normal. */
    [M_SCHEDULED] = { "models_scheduled",
        "SELECT DISTINCT w.snapshot_id FROM dataset_windows w JOIN snapshots s ON s.id = w.snapshot_id"
        " WHERE w.dataset_id = $1::bigint AND w.version = $2::int AND s.detector = 'schedule'", 2 },
    /* Which device each of the version's snapshots is from, and whether it
     * is a scheduled baseline: each device's reference windows. */
    [M_SNAP_DEVICES] = { "models_snap_devices",
        "SELECT s.id AS snapshot_id, s.device_id, s.detector = 'schedule' AS scheduled"
        " FROM snapshots s WHERE s.id IN (SELECT snapshot_id FROM dataset_windows"
        "  WHERE dataset_id = $1::bigint AND version = $2::int) ORDER BY s.id", 2 },
    [M_DEVICE_REF] = { "models_device_ref",
        "INSERT INTO model_device_refs (model_id, device_id, reference_windows, blob, predictions)"
        " VALUES ($1::bigint, $2, $3::int, $4::bytea, $5::jsonb)", 5 },
    [M_DEVICE_REFS] = { "models_device_refs",
        "SELECT device_id, reference_windows, encode(sha256(blob), 'hex') AS sha256,"
        " octet_length(blob) AS bytes, predictions::text AS predictions"
        " FROM model_device_refs WHERE model_id = $1::bigint ORDER BY device_id", 1 },
    [M_DEVICE_BLOB] = { "models_device_blob",
        "SELECT r.blob FROM model_device_refs r JOIN models m ON m.id = r.model_id"
        " WHERE r.model_id = $1::bigint AND r.device_id = $2 AND m.status = 'done'", 2 },
};

int models__exec(enum models_stmt s, const char *const *vals, const int *lens, const int *fmts,
                 int binary, PGresult **out)
{
    return db_exec_own(&stmts[s], vals, lens, fmts, binary, out);
}

void models__mark_failed(int64_t id, const char *why)
{
    char idb[24];
    const char *vals[2] = { idb, why };

    snprintf(idb, sizeof idb, "%lld", (long long)id);
    (void)models__exec(M_FAILED, vals, NULL, NULL, 0, NULL);
}

/* ---- options and the signing key ----------------------------------------- */

void models_set_key_file(const char *path)
{
    pthread_mutex_lock(&key_mu);
    snprintf(key_file, sizeof key_file, "%s", path ? path : "");
    key_loaded = 0;
    pthread_mutex_unlock(&key_mu);
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

/* First use without a flag: make a key pair, private to the server.  Under
 * key_mu; another process may make the same file meanwhile, and then its
 * key is the one. */
static int key_generate(const char *path)
{
    int fd, rc = SRV_OK;

    (void)mkdir("var", 0755);
    crypto_sign_keypair(key_pk, key_sk);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST && read_key(path, key_sk) == 0) {
        key_loaded = 1;
    } else if (fd < 0 || write(fd, key_sk, 64) != 64 || fsync(fd) != 0) {
        srv_log("error", "models: cannot write %s: %s", path, strerror(errno));
        rc = SRV_EINTERNAL;
    } else {
        srv_log("info", "models: generated the model-signing key %s", path);
        key_loaded = 1;
    }
    if (fd >= 0)
        close(fd);
    return rc;
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
            rc = key_generate(path);
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

/* ---- routes -------------------------------------------------------------- */

/* The models training now, so a stop can say which never finished. */
#define TRAINING_IDS 16
static pthread_mutex_t training_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t training_ids[TRAINING_IDS];

static void training_mark(int64_t id, int64_t was)
{
    pthread_mutex_lock(&training_mu);
    for (size_t i = 0; i < TRAINING_IDS; i++)
        if (training_ids[i] == was) {
            training_ids[i] = id;
            break;
        }
    pthread_mutex_unlock(&training_mu);
}

static void *train_main(void *arg)
{
    int64_t id = *(int64_t *)arg;

    free(arg);
    training_mark(id, 0);
    (void)models_train(id);
    training_mark(0, id);
    db_thread_release();
    atomic_fetch_sub(&running, 1);
    return NULL;
}

int models_training_stop(unsigned wait_ms)
{
    unsigned waited = 0;
    int left = 0;

    while (atomic_load(&running) > 0 && waited < wait_ms) {
        usleep(50 * 1000);
        waited += 50;
    }
    pthread_mutex_lock(&training_mu);
    for (size_t i = 0; i < TRAINING_IDS; i++) {
        if (!training_ids[i])
            continue;
        /* The thread ends with the process: its row would say 'training'
         * for ever and no client would learn to start it again. */
        models__mark_failed(training_ids[i], "the server stopped during training; train it again");
        srv_log("warn", "models: model %lld was still training at stop: marked failed",
                (long long)training_ids[i]);
        training_ids[i] = 0;
        left++;
    }
    pthread_mutex_unlock(&training_mu);
    return left;
}

/* One of the models__training_max training slots, taken before the model's
 * row is inserted: a request refused for want of one (503, Retry-After)
 * leaves nothing behind, as a 503 promises, rather than a failed model the
 * client never got the id of. */
static int slot_take(struct srv_response *rs)
{
    if (atomic_fetch_add(&running, 1) >= models__training_max) {
        atomic_fetch_sub(&running, 1);
        rs->retry_after = 30;
        return srv_fail(rs, SRV_EOVERLOAD, "too many models training; retry after Retry-After");
    }
    return SRV_OK;
}

/* Train model id in a thread of its own, in the slot slot_take() took (the
 * thread gives it back when it ends). */
static int train_start(int64_t id)
{
    int64_t *idp;
    pthread_t th;
    pthread_attr_t at;
    int started;

    if (!(idp = malloc(sizeof *idp))) {
        atomic_fetch_sub(&running, 1);
        models__mark_failed(id, "out of memory");
        return SRV_ENOMEM;
    }
    *idp = id;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    started = pthread_create(&th, &at, train_main, idp) == 0;
    pthread_attr_destroy(&at);
    if (!started) {
        atomic_fetch_sub(&running, 1);
        models__mark_failed(id, "cannot start a thread");
        free(idp);
        return SRV_EINTERNAL;
    }
    return SRV_OK;
}

int models_api_create(struct srv_request *rq, struct srv_response *rs)
{
    json_t *body = srv_body_json(rq);
    const char *kind = json_string_value(json_object_get(body, "kind")), *vals[6], *why;
    json_t *fsj = json_object_get(body, "feature_set");
    json_t *ds = json_object_get(body, "dataset_id"), *v = json_object_get(body, "version");
    json_t *tf = json_object_get(body, "transfer");
    char dsb[24], vb[16], by[AUTH_ACTOR_MAX];
    PGresult *r = NULL;
    int64_t id;
    int err;

    static const char *const model_fields[] = { "dataset_id", "version", "kind", "feature_set",
                                                "transfer", NULL };

    /* each refusal names the field to change */
    why = !json_is_object(body) ? "body must be a JSON object"
        : !json_is_integer(ds) || json_integer_value(ds) < 1
            ? "dataset_id must be a dataset's id, a positive integer (GET /api/v1/datasets)"
        : !json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000000
            ? "version must be a version of the dataset, an integer from 1 (GET /api/v1/datasets/{id})"
        : !kind || (strcmp(kind, "anomaly") != 0 && strcmp(kind, "classifier") != 0 &&
                    strcmp(kind, "fewshot") != 0)
            ? "kind must be anomaly, classifier or fewshot"
            : NULL;
    if (why) {
        json_decref(body);
        return srv_fail(rs, SRV_EBADREQ, why);
    }
    if (tf && !json_is_boolean(tf)) {
        json_decref(body);
        return srv_fail(rs, SRV_EBADREQ, "transfer must be true or false");
    }
    /* A feature set by name: "relations" (fewshot only); absent or null,
     * the kind's own choice as before. */
    if (fsj && !json_is_null(fsj) &&
        (!json_is_string(fsj) || strcmp(json_string_value(fsj), "relations") != 0 ||
         strcmp(kind, "fewshot") != 0)) {
        json_decref(body);
        return srv_fail(rs, SRV_EBADREQ, "feature_set may be \"relations\", with kind fewshot");
    }
    rs->ignored = srv_json_ignored(rq, body, model_fields);
    snprintf(dsb, sizeof dsb, "%lld", (long long)json_integer_value(ds));
    snprintf(vb, sizeof vb, "%lld", (long long)json_integer_value(v));
    auth_actor(rq, by, sizeof by);
    vals[0] = dsb;
    vals[1] = vb;
    vals[2] = kind;
    vals[3] = by;
    /* transfer from related equipment: the few-shot learner's, on unless refused */
    vals[4] = strcmp(kind, "fewshot") == 0 && !json_is_false(tf) ? "true" : "false";
    vals[5] = fsj && json_is_string(fsj) ? "relations" : NULL;
    if ((err = slot_take(rs)) != SRV_OK) {
        json_decref(body);
        return err;
    }
    err = models__exec(M_INSERT, vals, NULL, NULL, 0, &r);
    json_decref(body);
    if (err == SRV_OK && PQntuples(r) != 1) {
        PQclear(r);
        err = srv_fail(rs, SRV_ENOTFOUND, "no such dataset version");
    }
    if (err != SRV_OK) {
        atomic_fetch_sub(&running, 1);
        return err;
    }
    id = db_int64(r, 0, "id");
    PQclear(r);
    if ((err = train_start(id)) != SRV_OK)
        return err;
    return srv_respond_json_take(rs, 202, json_pack("{s:I}", "id", (json_int_t)id));
}

/* The model's row, or 404. */
static int load(const struct srv_request *rq, struct srv_response *rs, int binary, PGresult **out)
{
    char idb[24];
    const char *vals[1] = { idb };
    int64_t id;
    int err;

    if (!rq->params[0] || text_parse_id(rq->params[0], &id) != 0)
        return srv_fail(rs, SRV_ENOTFOUND, "no such model");
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    if ((err = models__exec(M_GET, vals, NULL, NULL, binary, out)) != SRV_OK)
        return err;
    if (PQntuples(*out) != 1) {
        PQclear(*out);
        *out = NULL;
        return srv_fail(rs, SRV_ENOTFOUND, "no such model");
    }
    return SRV_OK;
}

/* The id of the model in the path as the text of a statement's parameter,
 * once load() has found the model (404 otherwise), for the statements that
 * read what belongs to it. */
static int load_id(const struct srv_request *rq, struct srv_response *rs, char idb[24])
{
    PGresult *r = NULL;
    int err;

    if ((err = load(rq, rs, 0, &r)) != SRV_OK)
        return err;
    snprintf(idb, 24, "%s", db_text_or(r, 0, "id", ""));
    PQclear(r);
    return SRV_OK;
}

/* A JSON column as its value, null when SQL NULL. */
static json_t *json_column(const PGresult *r, const char *name)
{
    const char *v = db_text(r, 0, name);

    return v ? json_loads(v, 0, NULL) : json_null();
}

int models_api_get(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    json_t *j;
    int err;

    if ((err = load(rq, rs, 0, &r)) != SRV_OK)
        return err;
    j = json_pack("{s:I,s:I,s:i,s:s,s:b,s:s,s:s}", "id", (json_int_t)db_int64(r, 0, "id"),
                  "dataset_id", (json_int_t)db_int64(r, 0, "dataset_id"),
                  "version", (int)db_int64(r, 0, "version"), "kind", db_text_or(r, 0, "kind", ""),
                  "transfer", db_bool(r, 0, "transfer"),
                  "status", db_text_or(r, 0, "status", ""),
                  "created_at", db_text_or(r, 0, "created_at", ""));
    if (j) {
        json_object_set_new(j, "metrics", json_column(r, "metrics"));
        json_object_set_new(j, "test_vector", json_column(r, "test_vector"));
        if (db_text(r, 0, "error"))
            json_object_set_new(j, "error", json_string(db_text(r, 0, "error")));
        if (db_text(r, 0, "finished_at"))
            json_object_set_new(j, "finished_at", json_string(db_text(r, 0, "finished_at")));
    }
    PQclear(r);
    return srv_respond_json_take(rs, 200, j);
}

/* One column of the model as the whole answer (409 until trained). */
static int respond_column(struct srv_request *rq, struct srv_response *rs, const char *col,
                          int binary, const char *ctype)
{
    PGresult *r = NULL;
    int err;

    if ((err = load(rq, rs, binary, &r)) != SRV_OK)
        return err;
    if (db_isnull(r, 0, col)) {
        /* a failed model never will: say so and why, not "wait" */
        err = strcmp(db_text_or(r, 0, "status", ""), "failed") == 0
                  ? srv_failf(rs, SRV_ECONFLICT, "the model failed to train (%.300s): train another",
                              db_text_or(r, 0, "error", "no reason recorded"))
                  : srv_fail(rs, SRV_ECONFLICT, "the model has not finished training");
        PQclear(r);
        return err;
    }
    err = srv_respond_copy(rs, 200, ctype, db_text(r, 0, col),
                           (size_t)db_len(r, 0, col));
    PQclear(r);
    return err;
}

/* The blob made for device dev of the model in the path (binary result,
 * column "blob"); answers 400 / 404 itself. */
static int device_blob(struct srv_request *rq, struct srv_response *rs, const char *dev,
                       PGresult **out)
{
    const char *vals[2];
    PGresult *r = NULL;
    char idb[24];
    int err;

    if (!text_valid_device_id(dev))
        return srv_fail(rs, SRV_EBADREQ, "device must be a device id");
    if ((err = load_id(rq, rs, idb)) != SRV_OK)
        return err;
    vals[0] = idb;
    vals[1] = dev;
    if ((err = models__exec(M_DEVICE_BLOB, vals, NULL, NULL, 1, &r)) != SRV_OK)
        return err;
    if (PQntuples(r) != 1 || db_isnull(r, 0, "blob")) {
        PQclear(r);
        return srv_fail(rs, SRV_ENOTFOUND, "no blob of its own for this device: it runs the "
                        "model's (GET /api/v1/models/{id}/devices)");
    }
    *out = r;
    return SRV_OK;
}

int models_api_header(struct srv_request *rq, struct srv_response *rs)
{
    const char *dev = rq->query ? rq->query(rq, "device") : NULL;
    struct model *m;
    PGresult *r = NULL;
    char *h = NULL;
    size_t hlen;
    int err;

    if (!dev)
        return respond_column(rq, rs, "header", 0, "text/x-c");
    /* the header of one device's blob: its reference as the center */
    if ((err = device_blob(rq, rs, dev, &r)) != SRV_OK)
        return err;
    if (!(m = malloc(sizeof *m))) {
        PQclear(r);
        return SRV_ENOMEM;
    }
    err = model_parse((const uint8_t *)db_text(r, 0, "blob"), (size_t)db_len(r, 0, "blob"), m) ==
                  MODEL_OK &&
                  models_emit_header(m, "precursor_model", &h, &hlen) == MODEL_OK
              ? SRV_OK : SRV_EINTERNAL;
    PQclear(r);
    free(m);
    if (err != SRV_OK)
        return err;
    rs->body = h;
    rs->body_len = hlen;
    rs->status = 200;
    rs->content_type = "text/x-c";
    return SRV_OK;
}

int models_api_blob(struct srv_request *rq, struct srv_response *rs)
{
    const char *dev = rq->query ? rq->query(rq, "device") : NULL;
    PGresult *r = NULL;
    int err;

    if (!dev)
        return respond_column(rq, rs, "blob", 1, "application/octet-stream");
    /* the blob made for one device (its own reference as the center) */
    if ((err = device_blob(rq, rs, dev, &r)) != SRV_OK)
        return err;
    err = srv_respond_copy(rs, 200, "application/octet-stream", db_text(r, 0, "blob"),
                           (size_t)db_len(r, 0, "blob"));
    PQclear(r);
    return err;
}

int models_api_devices(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    const char *vals[1];
    char idb[24];
    json_t *items, *j;
    int err;

    if ((err = load_id(rq, rs, idb)) != SRV_OK)
        return err;
    vals[0] = idb;
    if ((err = models__exec(M_DEVICE_REFS, vals, NULL, NULL, 0, &r)) != SRV_OK)
        return err;
    if (!(items = json_array())) {
        PQclear(r);
        return SRV_ENOMEM;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *pred = json_loads(db_text_or(r, i, "predictions", "null"), 0, NULL);
        /* a blob of its own: centred on its reference windows, or (envelope
         * set) the model's center read at its own shaft speed and bearing */
        int own = !db_isnull(r, i, "sha256"), refs = db_int64(r, i, "reference_windows") > 0;
        json_t *o = json_pack("{s:s,s:I,s:b,s:b,s:s,s:o}", "device_id",
                              db_text_or(r, i, "device_id", ""), "reference_windows",
                              (json_int_t)db_int64(r, i, "reference_windows"), "own_reference",
                              own && refs, "own_blob", own, "center",
                              own && refs ? "the median of its reference windows"
                                          : "the model's (no reference windows)",
                              "predictions", pred ? pred : json_null());

        if (o && own) {
            json_object_set_new(o, "sha256", json_string(db_text_or(r, i, "sha256", "")));
            json_object_set_new(o, "bytes", json_integer((json_int_t)db_int64(r, i, "bytes")));
        }
        if (!o || json_array_append_new(items, o) != 0) {
            PQclear(r);
            json_decref(items);
            return SRV_ENOMEM;
        }
    }
    PQclear(r);
    j = json_pack("{s:o}", "items", items);
    return srv_respond_json_take(rs, 200, j);
}

int models_api_signing_key(struct srv_request *rq, struct srv_response *rs)
{
    uint8_t sk[64], pk[32];
    char b64[64], hex[65];
    int err;

    if ((err = models_signing_key(sk, pk)) != SRV_OK)
        return err;
    sodium_memzero(sk, sizeof sk);
    if (text_b64_encode(pk, sizeof pk, b64, sizeof b64) != 0)
        return SRV_EINTERNAL;
    sodium_bin2hex(hex, sizeof hex, pk, sizeof pk);
    return srv_respond_json_take(rs, 200, json_pack("{s:s,s:s,s:s}", "algorithm", "ed25519",
                                                    "public_key", b64, "public_key_hex", hex));
}
