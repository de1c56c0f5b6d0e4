/* check_labels.c - label bodies are parsed and bounded before they reach
 * the database (required fields, spans, channels, classes, confidence, text
 * lengths), checked against their snapshot, and the UI's static file names
 * and the session cookie are parsed strictly; the UI's files are revalidated
 * by ETag.  With DATABASE_URL: failed
 * logins are limited per client address as well as per username, the
 * users API answers admins only, and a snapshot's context leaves the demo
 * history out as the listings do. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "server/auth/auth.h"
#include "server/labels/labels.h"
#include "server/session/session.h"
#include "server/ui/ui.h"
#include "testsrv.h"

static int parse(const char *text, int partial, struct labels_input *in, const char **why)
{
    json_t *j = json_loads(text, 0, NULL);
    int err;

    ck_assert_ptr_nonnull(j);
    err = labels_parse(j, partial, in, why);
    /* strings in *in are borrowed from j: tests only look at numbers after */
    json_decref(j);
    return err;
}

START_TEST(test_valid_post)
{
    struct labels_input in;
    const char *why = NULL;

    ck_assert_int_eq(parse("{\"start_s\":0.5,\"end_s\":0.75,\"channels\":[0,2],"
                           "\"class\":\"imbalance\",\"confidence\":0.8,\"notes\":\"n\"}",
                           0, &in, &why), 0);
    ck_assert(in.has_span && in.start_s == 0.5 && in.end_s == 0.75);
    ck_assert_uint_eq(in.n_channels, 2);
    ck_assert_int_eq(in.channels[1], 2);
    ck_assert(in.has_confidence && in.confidence == 0.8);
    ck_assert_int_eq(labels_check(&in, 1000, 1000, 3, &why), 0);
}
END_TEST

START_TEST(test_refused_post)
{
    static const char *bad[] = {
        "[]",
        "{\"end_s\":1,\"channels\":[0],\"class\":\"other\"}",
        "{\"start_s\":1,\"end_s\":1,\"channels\":[0],\"class\":\"other\"}",
        "{\"start_s\":2,\"end_s\":1,\"channels\":[0],\"class\":\"other\"}",
        "{\"start_s\":-1,\"end_s\":1,\"channels\":[0],\"class\":\"other\"}",
        "{\"start_s\":\"0\",\"end_s\":1,\"channels\":[0],\"class\":\"other\"}",
        "{\"start_s\":0,\"end_s\":1,\"class\":\"other\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[],\"class\":\"other\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[1,1],\"class\":\"other\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[-1],\"class\":\"other\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[64],\"class\":\"other\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0.5],\"class\":\"other\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0]}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0],\"class\":\"Other\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0],\"class\":\"a b\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0],\"class\":\"\"}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0],\"class\":\"other\",\"confidence\":1.5}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0],\"class\":\"other\",\"confidence\":-0.1}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0],\"class\":\"other\",\"notes\":5}",
        "{\"start_s\":0,\"end_s\":1,\"channels\":[0],\"class\":\"other\",\"cause\":[]}",
    };
    struct labels_input in;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;

        ck_assert_msg(parse(bad[i], 0, &in, &why) == SRV_EBADREQ, "accepted %s", bad[i]);
        ck_assert_ptr_nonnull(why);
    }
}
END_TEST

START_TEST(test_text_lengths)
{
    char body[6000], notes[4002];
    struct labels_input in;
    const char *why = NULL;

    memset(notes, 'x', 4001);
    notes[4001] = '\0';
    snprintf(body, sizeof body, "{\"start_s\":0,\"end_s\":1,\"channels\":[0],"
             "\"class\":\"other\",\"notes\":\"%s\"}", notes);
    ck_assert_int_eq(parse(body, 0, &in, &why), SRV_EBADREQ);
    notes[4000] = '\0';
    snprintf(body, sizeof body, "{\"start_s\":0,\"end_s\":1,\"channels\":[0],"
             "\"class\":\"other\",\"notes\":\"%s\"}", notes);
    ck_assert_int_eq(parse(body, 0, &in, &why), 0);
    notes[201] = '\0';
    snprintf(body, sizeof body, "{\"failure_mode\":\"%s\"}", notes);
    ck_assert_int_eq(parse(body, 1, &in, &why), SRV_EBADREQ);
}
END_TEST

START_TEST(test_patch)
{
    struct labels_input in;
    const char *why = NULL;

    ck_assert_int_eq(parse("{\"class\":\"cavitation\"}", 1, &in, &why), 0);
    ck_assert(!in.has_span && !in.has_channels && !in.has_confidence);
    ck_assert_int_eq(parse("{}", 1, &in, &why), 0);
    /* a span only as a pair */
    ck_assert_int_eq(parse("{\"start_s\":1}", 1, &in, &why), SRV_EBADREQ);
    ck_assert_ptr_nonnull(strstr(why, "go together"));
    ck_assert_int_eq(parse("{\"end_s\":1,\"channels\":[0],\"class\":\"other\"}", 0, &in, &why),
                     SRV_EBADREQ);
    ck_assert_ptr_nonnull(strstr(why, "go together"));
    ck_assert_int_eq(parse("{\"start_s\":1,\"end_s\":2}", 1, &in, &why), 0);
}
END_TEST

START_TEST(test_check_against_snapshot)
{
    struct labels_input in;
    const char *why = NULL;

    /* 1 s of 1 kHz, 2 channels */
    ck_assert_int_eq(parse("{\"start_s\":0.9,\"end_s\":1.0,\"channels\":[1],\"class\":\"other\"}",
                           0, &in, &why), 0);
    ck_assert_int_eq(labels_check(&in, 1000, 1000, 2, &why), 0);
    ck_assert_int_eq(labels_check(&in, 1000, 1000, 1, &why), SRV_EBADREQ);   /* channel */
    ck_assert_int_eq(labels_check(&in, 1000, 500, 2, &why), SRV_EBADREQ);    /* span */
    ck_assert_int_eq(parse("{\"start_s\":0.5,\"end_s\":1.2,\"channels\":[0],\"class\":\"other\"}",
                           0, &in, &why), 0);
    ck_assert_int_eq(labels_check(&in, 1000, 1000, 2, &why), SRV_EBADREQ);
}
END_TEST

START_TEST(test_ui_names)
{
    ck_assert_int_eq(ui_name_ok("index.html"), 1);
    ck_assert_int_eq(ui_name_ok("uPlot.iife.min.js"), 1);
    ck_assert_int_eq(ui_name_ok("app.css"), 1);
    ck_assert_int_eq(ui_name_ok(".."), 0);
    ck_assert_int_eq(ui_name_ok("..html"), 0);
    ck_assert_int_eq(ui_name_ok("a..js"), 0);
    ck_assert_int_eq(ui_name_ok(".env.js"), 0);
    ck_assert_int_eq(ui_name_ok("../x.js"), 0);
    ck_assert_int_eq(ui_name_ok("x%2f.js"), 0);
    ck_assert_int_eq(ui_name_ok("passwd"), 0);
    ck_assert_int_eq(ui_name_ok("x.c"), 0);
    ck_assert_int_eq(ui_name_ok("package.json"), 0);          /* the build's, not served */
    ck_assert_int_eq(ui_name_ok("package-lock.json"), 0);
    ck_assert_int_eq(ui_name_ok(""), 0);
    ck_assert_int_eq(ui_name_ok(NULL), 0);
    ck_assert_str_eq(ui_content_type("a.js"), "text/javascript; charset=utf-8");
}
END_TEST

/* The UI's files carry their content's hash as ETag and are kept by the
 * browser and revalidated ("no-cache"), not fetched whole on every load: the
 * same file asked for with its ETag is 304 with no body, a changed file is
 * 200 with a new ETag, every other answer stays no-store (NULL). */
static const char *inm_header(const struct srv_request *rq, const char *key)
{
    return strcasecmp(key, "If-None-Match") == 0 ? rq->conn : NULL;
}

static int ui_get(const char *dir, const char *inm, struct srv_response *rs)
{
    static struct srv_config cfg;
    struct srv_request rq;

    memset(&rq, 0, sizeof rq);
    memset(rs, 0, sizeof *rs);
    cfg.ui_dir = dir;
    rq.cfg = &cfg;
    rq.method = "GET";
    rq.header = inm_header;
    rq.conn = (void *)inm;
    return ui_index(&rq, rs);
}

static void put_file(const char *dir, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/index.html", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_ui_revalidate)
{
    char dir[] = "/tmp/check-ui-XXXXXX", path[512], etag[sizeof ((struct srv_response *)0)->etag];
    char weak[100], list[200];
    struct srv_response rs;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    put_file(dir, "<!doctype html><p>one</p>");
    ck_assert_int_eq(ui_get(dir, NULL, &rs), SRV_OK);
    ck_assert_uint_eq(rs.status, 200);
    ck_assert_uint_eq(rs.body_len, strlen("<!doctype html><p>one</p>"));
    ck_assert_str_eq(rs.cache_control, "no-cache");
    ck_assert_uint_eq(strlen(rs.etag), UI_ETAG_LEN);
    ck_assert(rs.etag[0] == '"' && rs.etag[UI_ETAG_LEN - 1] == '"');
    snprintf(etag, sizeof etag, "%s", rs.etag);
    srv_response_release(&rs);
    /* unchanged: 304, no body, the same validator */
    ck_assert_int_eq(ui_get(dir, etag, &rs), SRV_OK);
    ck_assert_uint_eq(rs.status, 304);
    ck_assert_ptr_null(rs.body);
    ck_assert_str_eq(rs.etag, etag);
    srv_response_release(&rs);
    /* weak form and lists match too (RFC 9110's weak comparison) */
    snprintf(weak, sizeof weak, "W/%s", etag);
    snprintf(list, sizeof list, "\"0000\", %s", weak);
    ck_assert_int_eq(ui_etag_matches(weak, etag), 1);
    ck_assert_int_eq(ui_etag_matches(list, etag), 1);
    ck_assert_int_eq(ui_etag_matches("*", etag), 1);
    ck_assert_int_eq(ui_etag_matches("\"0000\"", etag), 0);
    ck_assert_int_eq(ui_etag_matches("", etag), 0);
    ck_assert_int_eq(ui_etag_matches(NULL, etag), 0);
    /* a rebuilt UI: the old validator no longer matches, the new file comes */
    put_file(dir, "<!doctype html><p>two</p>");
    ck_assert_int_eq(ui_get(dir, etag, &rs), SRV_OK);
    ck_assert_uint_eq(rs.status, 200);
    ck_assert_uint_eq(rs.body_len, strlen("<!doctype html><p>two</p>"));
    ck_assert_str_ne(rs.etag, etag);
    srv_response_release(&rs);
    snprintf(path, sizeof path, "%s/index.html", dir);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_cookie_parse)
{
    char out[65];
    const char *hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char h[200];

    snprintf(h, sizeof h, "prc_session=%s", hex);
    ck_assert_int_eq(session_cookie_value(h, out, sizeof out), 0);
    ck_assert_str_eq(out, hex);
    snprintf(h, sizeof h, "theme=dark; prc_session=%s; x=1", hex);
    ck_assert_int_eq(session_cookie_value(h, out, sizeof out), 0);
    snprintf(h, sizeof h, "xprc_session=%s", hex);
    ck_assert_int_eq(session_cookie_value(h, out, sizeof out), -1);
    snprintf(h, sizeof h, "prc_session=%sab", hex);
    ck_assert_int_eq(session_cookie_value(h, out, sizeof out), -1);
    ck_assert_int_eq(session_cookie_value("prc_session=ABCDEF", out, sizeof out), -1);
    ck_assert_int_eq(session_cookie_value(NULL, out, sizeof out), -1);
    ck_assert_int_eq(session_cookie_value(h, out, 10), -1);
}
END_TEST

/* ---- DB-backed: login limits per client address, the admin users API --- */

struct fake {
    const char *ctype;
    const char *body;
};

static const char *fake_header(const struct srv_request *rq, const char *key)
{
    const struct fake *f = rq->conn;

    return strcasecmp(key, "Content-Type") == 0 ? f->ctype : NULL;
}

static const char *fake_query(const struct srv_request *rq, const char *key)
{
    return NULL;
}

static void fake_request(struct srv_request *rq, struct fake *f, const char *method,
                         const char *client, const char *body)
{
    memset(rq, 0, sizeof *rq);
    f->ctype = "application/json";
    f->body = body;
    rq->method = method;
    rq->path = "/api/v1/session";
    rq->body = (const uint8_t *)body;
    rq->body_len = body ? strlen(body) : 0;
    rq->header = fake_header;
    rq->query = fake_query;
    rq->conn = f;
    snprintf(rq->client_addr, sizeof rq->client_addr, "%s", client);
}

static int login(const char *client, const char *user, const char *pw)
{
    struct srv_request rq;
    struct srv_response rs;
    struct fake f;
    char body[256];
    int err;

    snprintf(body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", user, pw);
    fake_request(&rq, &f, "POST", client, body);
    memset(&rs, 0, sizeof rs);
    err = session_login(&rq, &rs);
    if (err == SRV_OK)
        ck_assert(strncmp(rs.set_cookie, "prc_session=", 12) == 0);
    srv_response_release(&rs);
    return err;
}

static void db_up(void)
{
    char hash[crypto_pwhash_STRBYTES];
    int64_t id = 0;
    int applied, newest, err;

    ck_assert_int_eq(auth_init(), 0);
    ck_assert_int_eq(db_migrate(testdb_conninfo, testdb_migrations, &applied, &newest), 0);
    ck_assert_int_eq(db_init(testdb_conninfo), 0);
    ck_assert_int_eq(auth_password_hash("alice-secret-1", hash, sizeof hash), 0);
    /* the database is shared by the tests of this case: alice may exist */
    err = session_user_insert("alice", "operator", hash, &id);
    ck_assert(err == SRV_OK || err == SRV_ECONFLICT);
    if (err == SRV_OK)
        ck_assert(id > 0);
}

static long count_sql(const char *sql)
{
    PGconn *c = db_connect(testdb_conninfo);
    PGresult *r = PQexec(c, sql);
    long n = -1;

    if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    else if (r && PQresultStatus(r) == PGRES_COMMAND_OK)
        n = 0;
    PQclear(r);
    PQfinish(c);
    return n;
}

START_TEST(test_login_limit_per_client)
{
    TESTDB_REQUIRE();
    db_up();
    ck_assert_int_eq(login("192.0.2.7", "alice", "alice-secret-1"), SRV_OK);
    /* a failed login is recorded under the address it came from */
    ck_assert_int_eq(login("192.0.2.7", "nobody", "wrong-password"), SRV_EUNAUTH);
    ck_assert_int_eq(count_sql("SELECT count(*) FROM login_attempts WHERE client = '192.0.2.7'"
                               " AND username = 'nobody' AND NOT ok"), 1);
    /* that address spreads its guesses over many usernames: below every
     * per-username limit, over the per-address one */
    ck_assert_int_eq(count_sql("INSERT INTO login_attempts (username, client, ok)"
                               " SELECT 'guess' || g, '192.0.2.7', false"
                               " FROM generate_series(2, 20) g"), 0);
    ck_assert_int_eq(login("192.0.2.7", "alice", "alice-secret-1"), SRV_ERATELIMIT);
    /* another address still gets in with the right password */
    ck_assert_int_eq(login("198.51.100.9", "alice", "alice-secret-1"), SRV_OK);
    /* failures for alice spread over many addresses lock nobody out: no
     * count spans addresses (an account-wide lock is a denial of service) */
    ck_assert_int_eq(count_sql("INSERT INTO login_attempts (username, client, ok)"
                               " SELECT 'alice', '203.0.113.' || (g % 50), false"
                               " FROM generate_series(1, 200) g"), 0);
    ck_assert_int_eq(login("198.51.100.10", "alice", "alice-secret-1"), SRV_OK);
    /* one (user, address) pair backs off after its free failures, even for
     * the right password, while its wait lasts */
    ck_assert_int_eq(count_sql("INSERT INTO login_attempts (username, client, ok)"
                               " SELECT 'alice', '198.51.100.11', false"
                               " FROM generate_series(1, 8) g"), 0);
    ck_assert_int_eq(login("198.51.100.11", "alice", "alice-secret-1"), SRV_ERATELIMIT);
    ck_assert_int_eq(login("198.51.100.12", "alice", "alice-secret-1"), SRV_OK);
    /* once its failures leave the window the pair starts afresh */
    ck_assert_int_eq(count_sql("UPDATE login_attempts SET at = at - interval '1 hour'"
                               " WHERE client = '198.51.100.11'"), 0);
    ck_assert_int_eq(login("198.51.100.11", "alice", "alice-secret-1"), SRV_OK);
    ck_assert_uint_eq(session_backoff_s(4), 0);
    ck_assert_uint_eq(session_backoff_s(5), 1);
    ck_assert_uint_eq(session_backoff_s(8), 8);
    ck_assert_uint_eq(session_backoff_s(1000), SESSION_FAIL_BACKOFF_MAX_S);
    db_shutdown();
}
END_TEST

static int users_call(enum srv_role role, const char *method, const char *body, char **out)
{
    struct srv_request rq;
    struct srv_response rs;
    struct fake f;
    int err;

    fake_request(&rq, &f, method, "192.0.2.1", body);
    rq.role = role;
    rq.user_id = 1;
    snprintf(rq.user_name, sizeof rq.user_name, "root");
    memset(&rs, 0, sizeof rs);
    err = strcmp(method, "GET") == 0 ? session_users_list(&rq, &rs) : session_user_create(&rq, &rs);
    if (out)
        *out = err == SRV_OK && rs.body ? strndup(rs.body, rs.body_len) : NULL;
    if (err == SRV_OK && strcmp(method, "POST") == 0)
        ck_assert_uint_eq(rs.status, 201);
    srv_response_release(&rs);
    return err;
}

START_TEST(test_users_admin_only)
{
    char *body = NULL;
    const char *ok = "{\"username\":\"bob.k\",\"password\":\"bob-secret-22\",\"role\":\"operator\"}";

    TESTDB_REQUIRE();
    db_up();
    ck_assert_int_eq(users_call(SRV_ROLE_OPERATOR, "GET", NULL, NULL), SRV_EFORBIDDEN);
    ck_assert_int_eq(users_call(SRV_ROLE_ML, "GET", NULL, NULL), SRV_EFORBIDDEN);
    ck_assert_int_eq(users_call(SRV_ROLE_OPERATOR, "POST", ok, NULL), SRV_EFORBIDDEN);
    ck_assert_int_eq(count_sql("SELECT count(*) FROM users WHERE username = 'bob.k'"), 0);
    ck_assert_int_eq(users_call(SRV_ROLE_ADMIN, "POST",
                                "{\"username\":\"bob\",\"password\":\"short\",\"role\":\"operator\"}",
                                NULL), SRV_EBADREQ);
    /* the password policy: long enough is not enough */
    ck_assert_ptr_nonnull(auth_password_policy("1234567890", "bob"));
    ck_assert_ptr_nonnull(auth_password_policy("qwertyuiop", "bob"));
    ck_assert_ptr_nonnull(auth_password_policy("Password123", "bob"));
    ck_assert_ptr_nonnull(auth_password_policy("aaaaaaaaaaaa", "bob"));
    ck_assert_ptr_nonnull(auth_password_policy("bob.k.smith", "bob.k.smith"));
    ck_assert_ptr_null(auth_password_policy("bob-secret-22", "bob"));
    ck_assert_int_eq(users_call(SRV_ROLE_ADMIN, "POST",
                                "{\"username\":\"bob\",\"password\":\"1234567890\",\"role\":\"operator\"}",
                                NULL), SRV_EBADREQ);
    ck_assert_int_eq(users_call(SRV_ROLE_ADMIN, "POST",
                                "{\"username\":\"b o b\",\"password\":\"bob-secret-22\",\"role\":\"operator\"}",
                                NULL), SRV_EBADREQ);
    ck_assert_int_eq(users_call(SRV_ROLE_ADMIN, "POST",
                                "{\"username\":\"bob\",\"password\":\"bob-secret-22\",\"role\":\"boss\"}",
                                NULL), SRV_EBADREQ);
    ck_assert_int_eq(users_call(SRV_ROLE_ADMIN, "POST", ok, NULL), SRV_OK);
    ck_assert_int_eq(users_call(SRV_ROLE_ADMIN, "POST", ok, NULL), SRV_ECONFLICT);
    ck_assert_int_eq(users_call(SRV_ROLE_ADMIN, "GET", NULL, &body), SRV_OK);
    ck_assert_ptr_nonnull(body);
    ck_assert_ptr_nonnull(strstr(body, "\"username\":\"bob.k\""));
    ck_assert_ptr_nonnull(strstr(body, "\"username\":\"alice\""));
    ck_assert_ptr_null(strstr(body, "password"));
    free(body);
    /* the new user can log in */
    ck_assert_int_eq(login("192.0.2.50", "bob.k", "bob-secret-22"), SRV_OK);
    db_shutdown();
}
END_TEST

/* ---- GET /api/v1/snapshots/{id}/context and the demo history ---------- */

#define CTX_SECRET "context-enroll-secret"

static void ctx_device(const struct testsrv *srv, const char *dev, int first)
{
    uint8_t pk[32], sk[64];
    float x[2 * 128];

    crypto_sign_keypair(pk, sk);
    testsrv_register(srv, dev, pk, CTX_SECRET);
    for (int i = 0; i < 2 * 128; i++)
        x[i] = (float)(i % 13) * 0.1f;
    for (int s = 0; s < 2; s++) {
        struct wire_meta m;

        testsrv_meta_2ch(&m, dev, (uint64_t)s + 1,
                         1714564800000000LL + (int64_t)(first + s) * 1000000, 128, "a", "b");
        testsrv_upload(srv, &m, x, sk);
    }
}

/* The lists of snapshot id's context (with the query q): how many in
 * "device" and "equipment", how many of those are demo, and whether the
 * reference is a demo one (-1: none). */
struct ctx_counts {
    int device, equipment, demo, ref_demo;
};

static struct ctx_counts ctx_get(const struct testsrv *srv, const char *token, int64_t id,
                                 const char *q)
{
    struct ctx_counts n = { 0, 0, 0, -1 };
    struct testsrv_reply rep;
    char path[128];
    json_t *j, *it, *ref;
    size_t i;

    snprintf(path, sizeof path, "/api/v1/snapshots/%lld/context%s", (long long)id, q);
    ck_assert_int_eq(testsrv_request(srv, "GET", path, NULL, 0, token, NULL, &rep), 200);
    j = testsrv_json(&rep);
    free(rep.body);
    n.device = (int)json_array_size(json_object_get(j, "device"));
    n.equipment = (int)json_array_size(json_object_get(j, "equipment"));
    json_array_foreach(json_object_get(j, "equipment"), i, it) {
        char sql[128];

        snprintf(sql, sizeof sql, "SELECT demo::int FROM snapshots WHERE id = %lld",
                 (long long)json_integer_value(json_object_get(it, "id")));
        n.demo += (int)testsrv_scalar(sql);
    }
    ref = json_object_get(j, "reference");
    if (json_is_object(ref))
        n.ref_demo = json_is_true(json_object_get(ref, "demo"));
    json_decref(j);
    return n;
}

START_TEST(test_context_demo)
{
    struct testsrv srv;
    struct testsrv_reply rep;
    char token[AUTH_TOKEN_LEN + 1];
    struct ctx_counts n;
    int64_t live, demo;

    TESTDB_REQUIRE();
    memset(&srv, 0, sizeof srv);
    testsrv_db();
    testsrv_add_token("operator", token, sizeof token);
    testsrv_listen(&srv, CTX_SECRET);
    ctx_device(&srv, "ctx-live-1", 0);
    ctx_device(&srv, "ctx-live-2", 10);
    ctx_device(&srv, "ctx-demo-1", 20);
    testsrv_sql("UPDATE devices SET equipment_type = 'fan'");
    testsrv_sql("UPDATE devices SET demo = true WHERE id = 'ctx-demo-1'");
    testsrv_sql("UPDATE snapshots SET demo = true WHERE device_id = 'ctx-demo-1'");
    /* the only snapshot labeled normal is a demo one */
    testsrv_sql("INSERT INTO labels (snapshot_id, start_s, end_s, channels, class, created_by)"
                " SELECT id, 0, 0.1, '{0}', 'normal', 'alice' FROM snapshots"
                " WHERE device_id = 'ctx-demo-1' AND seq = 1");
    live = testsrv_scalar("SELECT id FROM snapshots WHERE device_id = 'ctx-live-1' AND seq = 1");
    demo = testsrv_scalar("SELECT id FROM snapshots WHERE device_id = 'ctx-demo-1' AND seq = 2");

    /* a live snapshot: its type's demo snapshots are left out by default */
    n = ctx_get(&srv, token, live, "");
    ck_assert_int_eq(n.device, 1);
    ck_assert_int_eq(n.equipment, 2);
    ck_assert_int_eq(n.demo, 0);
    /* ... yet the reference may be one, and says so */
    ck_assert_int_eq(n.ref_demo, 1);
    n = ctx_get(&srv, token, live, "?demo=include");
    ck_assert_int_eq(n.equipment, 4);
    ck_assert_int_eq(n.demo, 2);
    n = ctx_get(&srv, token, live, "?demo=only");
    ck_assert_int_eq(n.equipment, 2);
    ck_assert_int_eq(n.demo, 2);
    /* a demo snapshot's neighbours are its own history whatever demo says */
    n = ctx_get(&srv, token, demo, "");
    ck_assert_int_eq(n.device, 1);
    ck_assert_int_eq(n.equipment, 4);
    ck_assert_int_eq(testsrv_request(&srv, "GET", "/api/v1/snapshots/1/context?demo=maybe", NULL, 0,
                                     token, NULL, &rep), 400);
    ck_assert_str_eq(testsrv_error_code(&rep), "bad_request");
    free(rep.body);
    testsrv_stop(&srv);
}
END_TEST

/* A label's span and confidence, a snapshot's score and duration are reals
 * in every answer, 0.0 and 1.0 included (schema/openapi.json, info: a real
 * keeps its '.'), though the statements that build them print a float of
 * integral value as 0. */
START_TEST(test_label_reals)
{
    struct testsrv srv;
    struct testsrv_reply rep;
    char token[AUTH_TOKEN_LEN + 1], path[96];
    int64_t snap, label;

    TESTDB_REQUIRE();
    memset(&srv, 0, sizeof srv);
    testsrv_db();
    testsrv_add_token("operator", token, sizeof token);
    testsrv_listen(&srv, CTX_SECRET);
    ctx_device(&srv, "reals-1", 0);
    snap = testsrv_scalar("SELECT min(id) FROM snapshots WHERE device_id = 'reals-1'");
    snprintf(path, sizeof path, "/api/v1/snapshots/%lld/labels", (long long)snap);
    ck_assert_int_eq(testsrv_request(&srv, "POST", path,
                                     "{\"start_s\":0,\"end_s\":0.0625,\"channels\":[0],"
                                     "\"class\":\"normal\"}", 60, token, NULL, &rep), 201);
    ck_assert_msg(strstr(rep.body, "\"start_s\":0.0,") && strstr(rep.body, "\"confidence\":1.0"),
                  "%s", rep.body);
    free(rep.body);
    label = testsrv_scalar("SELECT max(id) FROM labels");
    ck_assert_int_eq(testsrv_request(&srv, "GET", path, NULL, 0, token, NULL, &rep), 200);
    ck_assert_msg(strstr(rep.body, "\"start_s\":0.0,") && strstr(rep.body, "\"end_s\":0.0625"),
                  "%s", rep.body);
    free(rep.body);
    snprintf(path, sizeof path, "/api/v1/labels/%lld", (long long)label);
    ck_assert_int_eq(testsrv_request(&srv, "PATCH", path, "{\"confidence\":0}", 16, token, NULL,
                                     &rep), 200);
    ck_assert_msg(strstr(rep.body, "\"confidence\":0.0"), "%s", rep.body);
    free(rep.body);
    snprintf(path, sizeof path, "/api/v1/labels/%lld/history", (long long)label);
    ck_assert_int_eq(testsrv_request(&srv, "GET", path, NULL, 0, token, NULL, &rep), 200);
    ck_assert_msg(strstr(rep.body, "\"start_s\":0.0,") && strstr(rep.body, "\"confidence\":0.0"),
                  "%s", rep.body);
    free(rep.body);
    /* Who did it, as every table records it (auth_actor): the token's name
     * to read and its id, since a second token may carry the same name. */
    {
        char token2[AUTH_TOKEN_LEN + 1], want[64], want2[64], q[256];

        snprintf(want, sizeof want, "token:operator#%lld",
                 (long long)testsrv_scalar("SELECT max(id) FROM api_tokens WHERE name = 'operator'"));
        testsrv_add_token("operator", token2, sizeof token2);
        snprintf(want2, sizeof want2, "token:operator#%lld",
                 (long long)testsrv_scalar("SELECT max(id) FROM api_tokens WHERE name = 'operator'"));
        snprintf(path, sizeof path, "/api/v1/labels/%lld", (long long)label);
        ck_assert_int_eq(testsrv_request(&srv, "PATCH", path, "{\"confidence\":0.5}", 18, token2, NULL,
                                         &rep), 200);
        free(rep.body);
        snprintf(q, sizeof q, "SELECT count(*) FROM labels WHERE id = %lld AND created_by = '%s'"
                 " AND updated_by = '%s'", (long long)label, want, want2);
        ck_assert_int_eq(testsrv_scalar(q), 1);
        snprintf(q, sizeof q, "SELECT count(*) FROM label_audit WHERE label_id = %lld"
                 " AND actor IN ('%s', '%s')", (long long)label, want, want2);
        ck_assert_int_eq(testsrv_scalar(q), 3);
        /* and GET /api/v1/session names a token's caller the same way */
        ck_assert_int_eq(testsrv_request(&srv, "GET", "/api/v1/session", NULL, 0, token2, NULL, &rep),
                         200);
        ck_assert_msg(strstr(rep.body, want2), "%s", rep.body);
        free(rep.body);
    }
    /* the queue and a snapshot's context: a score of 1 and a 1 s snapshot */
    testsrv_sql("UPDATE snapshots SET score = 1, sample_rate = pre_samples + post_samples");
    ck_assert_int_eq(testsrv_request(&srv, "GET", "/api/v1/queue", NULL, 0, token, NULL, &rep), 200);
    ck_assert_msg(strstr(rep.body, "\"score\":1.0,") && strstr(rep.body, "\"duration_s\":1.0"),
                  "%s", rep.body);
    {
        json_t *q = testsrv_json(&rep);

        ck_assert(json_is_integer(json_object_get(q, "total")) &&
                  json_is_integer(json_object_get(q, "left")) &&
                  json_is_object(json_object_get(q, "facets")));
        json_decref(q);
    }
    free(rep.body);
    snprintf(path, sizeof path, "/api/v1/snapshots/%lld/context", (long long)snap);
    ck_assert_int_eq(testsrv_request(&srv, "GET", path, NULL, 0, token, NULL, &rep), 200);
    ck_assert_msg(strstr(rep.body, "\"score\":1.0"), "%s", rep.body);
    free(rep.body);
    testsrv_stop(&srv);
}
END_TEST

Suite *labels_suite(void);
Suite *labels_suite(void)
{
    Suite *s = suite_create("labels");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_valid_post);
    tcase_add_test(tc, test_refused_post);
    tcase_add_test(tc, test_text_lengths);
    tcase_add_test(tc, test_patch);
    tcase_add_test(tc, test_check_against_snapshot);
    tcase_add_test(tc, test_ui_names);
    tcase_add_test(tc, test_ui_revalidate);
    tcase_add_test(tc, test_cookie_parse);
    suite_add_tcase(s, tc);
    tc = tcase_create("db");
    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_login_limit_per_client);
    tcase_add_test(tc, test_users_admin_only);
    tcase_add_test(tc, test_context_demo);
    tcase_add_test(tc, test_label_reals);
    suite_add_tcase(s, tc);
    return s;
}
