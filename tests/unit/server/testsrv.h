/* testsrv.h - the server in-process for the suites that speak real HTTP to
 * it: http_start on an ephemeral port against testdb's database, a libcurl
 * request helper that keeps status, body and headers, JSON reply parsing,
 * one-value SQL queries, API tokens, device registration and the
 * model-signing key file.  testsrv_serve starts it as `serve` does with
 * given flags: the group committer and fleet workers too.
 *
 * Static inline functions (a suite need not use them all), included like
 * testdb.h, which it includes.  A test calls testsrv_db(), adds what it
 * needs on its own connection (tokens), then testsrv_listen() or
 * testsrv_serve(); testsrv_stop() undoes both. */
#ifndef PRECURSOR_TESTSRV_H
#define PRECURSOR_TESTSRV_H

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "schema/wire.h"
#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/features/features.h"
#include "server/fleet/fleet.h"
#include "server/http/http.h"
#include "server/ingest/ingest.h"
#include "server/options.h"
#include "server/routes.h"
#include "server/text/text.h"
#include "server/models/models.h"
#include "testdb.h"

#define TESTSRV_TIMEOUT_S 30L

/* What the test server says it is in /healthz (serve: the build's version). */
#define TESTSRV_VERSION "0.0.0 (git test)"

struct testsrv {
    struct srv_config cfg;
    struct http_server *hs;
    char base[64];
    int modules;    /* testsrv_serve started the committer and fleet workers */
};

/* body is malloc'd (the caller frees it); headers are kept as received, cut
 * at the buffer's end (enough for the few a test looks at). */
struct testsrv_reply {
    long status;
    char *body;
    size_t len;
    char headers[2048];
    size_t headers_len;
};

/* Migrations and the test thread's connection; tokens may be added next. */
static inline void testsrv_db(void)
{
    int applied, newest;

    ck_assert_int_eq(auth_init(), 0);
    ck_assert_int_eq(db_migrate(testdb_conninfo, testdb_migrations, &applied, &newest), 0);
    ck_assert_int_eq(db_init(testdb_conninfo), 0);
}

/* The server's configuration on an ephemeral port with threads pool
 * threads; secret is the enrollment secret (borrowed: it must outlive the
 * server). */
static inline void testsrv__config(struct testsrv *t, const char *secret, unsigned threads)
{
    memset(t, 0, sizeof *t);
    /* The server's threads open their own connections; the test's own is
     * not needed while it runs. */
    db_thread_release();
    t->cfg.database_url = testdb_conninfo;
    t->cfg.version = TESTSRV_VERSION;
    t->cfg.port = 0;
    t->cfg.threads = threads;
    t->cfg.max_body = 1u << 20;
    t->cfg.enroll_secret = (const uint8_t *)secret;
    t->cfg.enroll_secret_len = secret ? strlen(secret) : 0;
}

static inline void testsrv__http_start(struct testsrv *t)
{
    routes_configure(&t->cfg);
    ck_assert_int_eq(http_start(&t->cfg, &t->hs), 0);
    snprintf(t->base, sizeof t->base, "http://127.0.0.1:%u", http_port(t->hs));
}

/* Start serving on an ephemeral port; secret is the enrollment secret
 * (borrowed: it must outlive the server). */
static inline void testsrv_listen(struct testsrv *t, const char *secret)
{
    testsrv__config(t, secret, 2);
    testsrv__http_start(t);
}

/* Start serving as `serve` does with these flags (its own option table:
 * --committers, --batch-max, --conn-timeout, --device-rate ...): the fleet
 * settings, the group committer and the fleet workers, then http with
 * threads pool threads.  testsrv_stop stops them all. */
static inline void testsrv_serve(struct testsrv *t, const char *secret, unsigned threads,
                                 const char *const *flags, int nflags)
{
    struct server_options o;
    struct fleet_settings fs;
    char *argv[16];
    int i;

    ck_assert_int_le(nflags, (int)(sizeof argv / sizeof argv[0]));
    for (i = 0; i < nflags; i++)
        argv[i] = (char *)flags[i];   /* getopt may permute the copy */
    options_defaults(&o);
    ck_assert_int_eq(options_parse(OPT_SERVE, nflags, argv, &o), 0);
    fs = (struct fleet_settings){ o.agent_binary, o.retention_days, o.device_rate,
                                  o.device_burst };
    fleet_configure(&fs);
    testsrv__config(t, secret, threads);
    t->cfg.conn_timeout_s = o.conn_timeout_s;
    ck_assert_int_eq(ingest_commit_start(testdb_conninfo, o.committers, o.queue_max, o.batch_max),
                     0);
    ck_assert_int_eq(fleet_start(testdb_conninfo), 0);
    t->modules = 1;
    testsrv__http_start(t);
}

static inline void testsrv_stop(struct testsrv *t)
{
    http_stop(t->hs);
    t->hs = NULL;
    features_spectrum_stop();   /* as the server does after http_stop */
    if (t->modules) {
        fleet_stop();
        ingest_commit_stop();   /* after http_stop: no upload waits on it */
        t->modules = 0;
    }
    db_shutdown();
}

static inline size_t testsrv_on_data(char *p, size_t sz, size_t n, void *ud)
{
    struct testsrv_reply *r = ud;
    char *nb = realloc(r->body, r->len + sz * n + 1);

    if (!nb)
        return 0;
    memcpy(nb + r->len, p, sz * n);
    r->body = nb;
    r->len += sz * n;
    r->body[r->len] = '\0';
    return sz * n;
}

static inline size_t testsrv_on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct testsrv_reply *r = ud;
    size_t room = sizeof r->headers - 1 - r->headers_len, take = sz * n < room ? sz * n : room;

    memcpy(r->headers + r->headers_len, p, take);
    r->headers_len += take;
    r->headers[r->headers_len] = '\0';
    return sz * n;
}

/* One request.  body (len bytes) may be NULL; it goes as application/json,
 * except to /api/v1/snapshots where it is an envelope.  token adds a Bearer
 * header; hdrs are extra header lines, NULL-terminated (may be NULL).
 * Returns the status and fills *rep. */
static inline long testsrv_request(const struct testsrv *t, const char *method, const char *path,
                            const void *body, size_t len, const char *token,
                            const char *const *hdrs, struct testsrv_reply *rep)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char url[512], auth[256];

    ck_assert_ptr_nonnull(c);
    memset(rep, 0, sizeof *rep);
    snprintf(url, sizeof url, "%s%s", t->base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, testsrv_on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, rep);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, testsrv_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, rep);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, TESTSRV_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);   /* tests call it from many threads */
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        h = curl_slist_append(h, strcmp(path, "/api/v1/snapshots") == 0
                                     ? "Content-Type: application/octet-stream"
                                     : "Content-Type: application/json");
    }
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    for (; hdrs && *hdrs; hdrs++)
        h = curl_slist_append(h, *hdrs);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rep->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rep->status;
}

/* The reply's body as JSON (new reference); fails the test when it is not. */
static inline json_t *testsrv_json(const struct testsrv_reply *r)
{
    json_t *j = json_loads(r->body ? r->body : "", 0, NULL);

    ck_assert_msg(j != NULL, "reply is not JSON: %s", r->body ? r->body : "(empty)");
    return j;
}

/* The reply's error code ({"error":{"code":...}}), "-" when it has none;
 * fails the test when the body is not JSON.  Valid until the next call. */
static inline const char *testsrv_error_code(const struct testsrv_reply *r)
{
    static char code[64];
    json_t *j = testsrv_json(r);
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));

    snprintf(code, sizeof code, "%s", c ? c : "-");
    json_decref(j);
    return code;
}

/* The value of header name (case-insensitive) into out, cut at cap - 1
 * bytes; 1 when the reply has it, else 0 and out empty. */
static inline int testsrv_header(const struct testsrv_reply *r, const char *name, char *out,
                                 size_t cap)
{
    size_t n = strlen(name);
    const char *p = r->headers;

    out[0] = '\0';
    while (*p) {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            p += strspn(p, " \t");
            snprintf(out, cap, "%.*s", (int)strcspn(p, "\r\n"), p);
            return 1;
        }
        p += strcspn(p, "\n");
        p += *p == '\n';
    }
    return 0;
}

/* One integer from a query on a connection of its own: the first column of
 * its only row, or -1 when it fails or returns other than one row. */
static inline int64_t testsrv_scalar(const char *sql)
{
    PGconn *c = db_connect(testdb_conninfo);
    PGresult *r = PQexec(c, sql);
    int64_t n = -1;

    if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return n;
}

/* Run one statement on a connection of its own (the server's are busy). */
static inline void testsrv_sql(const char *q)
{
    PGconn *c = db_connect(testdb_conninfo);

    testdb_sql(c, q);
    PQfinish(c);
}

/* A new API token of role (also its name) into tok; between testsrv_db()
 * and testsrv_listen(). */
static inline void testsrv_add_token(const char *role, char *tok, size_t cap)
{
    uint8_t sha[32];
    int64_t token_id;

    ck_assert_int_eq(auth_token_new(tok, cap, sha), 0);
    ck_assert_int_eq(auth_token_insert(role, role, sha, &token_id), 0);
}

/* A random model-signing seed written to path, made the server's key. */
static inline void testsrv_model_key(const char *path)
{
    uint8_t seed[32];
    FILE *kf;

    randombytes_buf(seed, sizeof seed);
    kf = fopen(path, "wb");
    ck_assert_ptr_nonnull(kf);
    ck_assert_int_eq(fwrite(seed, 1, sizeof seed, kf), sizeof seed);
    fclose(kf);
    models_set_key_file(path);
}

/* Register device dev with public key pk (32 bytes) by the enrollment
 * secret; returns the status. */
static inline long testsrv_register_status(const struct testsrv *t, const char *dev,
                                           const uint8_t *pk, const char *secret)
{
    char k64[64], body[512];
    struct testsrv_reply rep;
    long st;

    text_b64_encode(pk, 32, k64, sizeof k64);
    /* A cut body would test something else: refused here. */
    ck_assert_int_lt(snprintf(body, sizeof body,
                              "{\"device_id\":\"%s\",\"public_key\":\"%s\",\"enroll_secret\":\"%s\"}",
                              dev, k64, secret),
                     (int)sizeof body);
    st = testsrv_request(t, "POST", "/api/v1/devices/register", body, strlen(body), NULL, NULL,
                         &rep);
    free(rep.body);
    return st;
}

/* The same; expects 201. */
static inline void testsrv_register(const struct testsrv *t, const char *dev, const uint8_t *pk,
                             const char *secret)
{
    ck_assert_int_eq(testsrv_register_status(t, dev, pk, secret), 201);
}

/* The metadata of a two-channel float32 snapshot at 1 kHz, as the suites'
 * devices upload it: ns samples per channel (64 before the trigger),
 * channels ch0 and ch1 in g. */
static inline void testsrv_meta_2ch(struct wire_meta *m, const char *dev, uint64_t seq,
                                    int64_t trigger_time_us, uint32_t ns, const char *ch0,
                                    const char *ch1)
{
    memset(m, 0, sizeof *m);
    snprintf(m->device_id, sizeof m->device_id, "%s", dev);
    m->seq = seq;
    m->trigger_time_us = trigger_time_us;
    m->sample_rate = 1000.0;
    m->sample_type = WIRE_F32;
    m->channel_count = 2;
    m->pre_samples = 64;
    m->post_samples = ns - 64;
    snprintf(m->detector, sizeof m->detector, "threshold");
    m->score = 0.5f;
    snprintf(m->channels[0].name, sizeof m->channels[0].name, "%s", ch0);
    snprintf(m->channels[0].unit, sizeof m->channels[0].unit, "g");
    snprintf(m->channels[1].name, sizeof m->channels[1].name, "%s", ch1);
    snprintf(m->channels[1].unit, sizeof m->channels[1].unit, "g");
}

/* The envelope of m (at most 512 samples in all) signed with sk, malloc'd
 * into *len bytes: its samples a sawtooth raised by bias, so that another
 * bias makes other bytes for the same seq. */
static inline uint8_t *testsrv_envelope(const struct wire_meta *m, float bias, const uint8_t *sk,
                                        size_t *len)
{
    float samples[2 * 256];
    size_t n = (size_t)m->channel_count * (m->pre_samples + m->post_samples), i;
    uint8_t *out = NULL;

    ck_assert_uint_le(n, sizeof samples / sizeof samples[0]);
    for (i = 0; i < n; i++)
        samples[i] = bias + (float)(i % 17) * 0.25f;
    ck_assert_int_eq(wire_encode(m, samples, sk, 0, &out, len), 0);
    return out;
}

/* Sign the samples with sk and upload them; expects 201. */
static inline void testsrv_upload(const struct testsrv *t, const struct wire_meta *m,
                                  const void *samples, const uint8_t *sk)
{
    struct testsrv_reply rep;
    uint8_t *env = NULL;
    size_t len;

    ck_assert_int_eq(wire_encode(m, samples, sk, 0, &env, &len), 0);
    ck_assert_int_eq(testsrv_request(t, "POST", "/api/v1/snapshots", (const char *)env, len,
                                     NULL, NULL, &rep), 201);
    free(rep.body);
    free(env);
}

#endif
