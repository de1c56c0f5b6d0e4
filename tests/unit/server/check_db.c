/* check_db.c - the migration runner against a real PostgreSQL: applying
 * twice is a no-op, a database newer than the files is refused; a pooled
 * connection the database ended is replaced before a statement is sent to
 * it; and the conninfo rewrite used to point at another database, array
 * literals and reading columns by name.  The database cases need
 * DATABASE_URL and skip without it. */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/db/db.h"
#include "server/metrics/metrics.h"
#include "server/srv/srv.h"
#include "testdb.h"

START_TEST(test_array_literal)
{
    struct srv_buf b = { 0 };
    char *s;

    srv_buf_puts(&b, "x=");
    db_array_begin(&b);
    db_array_end(&b);
    db_array_begin(&b);
    db_array_text(&b, "a\"b\\c");
    db_array_text(&b, NULL);
    db_array_text(&b, "");
    db_array_int64(&b, -42);
    db_array_raw(&b, "1.5");
    db_array_end(&b);
    s = srv_buf_take(&b, NULL);
    ck_assert_str_eq(s, "x={}{\"a\\\"b\\\\c\",NULL,\"\",-42,1.5}");
    free(s);
}
END_TEST

START_TEST(test_buf_grows_and_takes)
{
    struct srv_buf b = { 0 };
    size_t len, i;
    char *s;

    for (i = 0; i < 1000; i++)
        srv_buf_printf(&b, "%05zu", i);
    s = srv_buf_take(&b, &len);
    ck_assert_uint_eq(len, 5000);
    ck_assert_uint_eq(strlen(s), 5000);
    ck_assert(memcmp(s + 4995, "00999", 5) == 0);
    ck_assert_ptr_null(b.p);
    free(s);
    s = srv_buf_take(&b, &len);     /* empty: "" */
    ck_assert_str_eq(s, "");
    ck_assert_uint_eq(len, 0);
    free(s);
}
END_TEST

START_TEST(test_conninfo_rewrite)
{
    char out[512];

    ck_assert_int_eq(db_conninfo_with_dbname("host=h port=5 user=u dbname=a", "b", out,
                                             sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "dbname='b'"));
    ck_assert_ptr_nonnull(strstr(out, "host='h'"));
    ck_assert_ptr_null(strstr(out, "dbname='a'"));
    ck_assert_int_eq(db_conninfo_with_dbname("postgresql://u@h:5/a", "b", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "dbname='b'"));
    ck_assert_ptr_nonnull(strstr(out, "port='5'"));
    ck_assert_int_eq(db_conninfo_with_dbname("host=h password='it\\'s'", "x'y", out,
                                             sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "dbname='x\\'y'"));
    ck_assert_int_eq(db_conninfo_with_dbname("host=h", "b", out, 8), SRV_ETOOBIG);
    ck_assert_int_eq(db_conninfo_with_dbname("host", "b", out, sizeof out), SRV_EBADREQ);
}
END_TEST

static int count_rows(const char *sql)
{
    PGconn *c = db_connect(testdb_conninfo);
    PGresult *r;
    int n = -1;

    ck_assert_ptr_nonnull(c);
    r = PQexec(c, sql);
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
        n = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return n;
}

/* Migration numbers leave gaps (each area has its own range), so count the
 * files rather than trusting the newest number. */
static int count_migration_files(void)
{
    DIR *d = opendir(testdb_migrations);
    struct dirent *e;
    int n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 8 && e->d_name[0] >= '0' && e->d_name[0] <= '9' &&
            strcmp(e->d_name + len - 4, ".sql") == 0)
            n++;
    }
    closedir(d);
    return n;
}

START_TEST(test_columns_by_name)
{
    PGconn *c;
    PGresult *r;

    TESTDB_REQUIRE();
    c = db_connect(testdb_conninfo);
    ck_assert_ptr_nonnull(c);
    r = PQexec(c, "SELECT 7::bigint AS n, NULL::text AS gone, true AS yes, 2.5::float8 AS x,"
                  " 'ab' AS s");
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    ck_assert_int_eq(db_int64(r, 0, "n"), 7);
    ck_assert(db_isnull(r, 0, "gone"));
    ck_assert_ptr_null(db_text(r, 0, "gone"));
    ck_assert_str_eq(db_text_or(r, 0, "gone", "-"), "-");
    ck_assert_int_eq(db_bool(r, 0, "yes"), 1);
    ck_assert(db_double(r, 0, "x") == 2.5);
    ck_assert_str_eq(db_text(r, 0, "s"), "ab");
    ck_assert_int_eq(db_len(r, 0, "s"), 2);
    /* A column the result lacks, or a row past the end, reads as NULL. */
    ck_assert_ptr_null(db_text(r, 0, "nope"));
    ck_assert_ptr_null(db_text(r, 1, "s"));
    PQclear(r);
    PQfinish(c);
}
END_TEST

START_TEST(test_migrate_twice)
{
    int applied = -1, newest = -1, files = count_migration_files();

    TESTDB_REQUIRE();
    ck_assert_int_ge(files, 2);
    ck_assert_int_eq(db_migrate(testdb_conninfo, testdb_migrations, &applied, &newest), 0);
    ck_assert_int_ge(newest, 2);
    ck_assert_int_eq(applied, files);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM schema_migrations"), files);
    ck_assert_int_eq(count_rows("SELECT max(version) FROM schema_migrations"), newest);
    ck_assert_int_eq(db_migrate(testdb_conninfo, testdb_migrations, &applied, &newest), 0);
    ck_assert_int_eq(applied, 0);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM schema_migrations"), files);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM snapshots"), 0);
}
END_TEST

START_TEST(test_newer_schema_refused)
{
    PGconn *c;
    PGresult *r;
    int applied, newest;

    TESTDB_REQUIRE();
    ck_assert_int_eq(db_migrate(testdb_conninfo, testdb_migrations, &applied, &newest), 0);
    c = db_connect(testdb_conninfo);
    ck_assert_ptr_nonnull(c);
    r = PQexec(c, "INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')");
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    ck_assert_int_eq(db_migrate(testdb_conninfo, testdb_migrations, &applied, &newest),
                     SRV_ESCHEMA);
    r = PQexec(c, "DELETE FROM schema_migrations WHERE version = 9999");
    PQclear(r);
    PQfinish(c);
    ck_assert_int_eq(db_migrate(testdb_conninfo, testdb_migrations, &applied, &newest), 0);
}
END_TEST

START_TEST(test_unreachable_database)
{
    int applied, newest;

    unsigned long long failed = metrics_db_connect_failures();
    PGconn *c;

    TESTDB_REQUIRE();
    ck_assert_int_eq(db_migrate("host=127.0.0.1 port=1 connect_timeout=2", testdb_migrations,
                                &applied, &newest), SRV_EUNAVAIL);
    /* Counted for /metrics: the pool's gauge alone showed a full pool. */
    ck_assert_uint_gt(metrics_db_connect_failures(), failed);
    c = db_connect("host=127.0.0.1 port=1 connect_timeout=2");
    ck_assert_ptr_null(c);
    ck_assert_uint_eq(metrics_db_connect_failures(), failed + 2);
    ck_assert_int_eq(db_migrate(testdb_conninfo, "/nonexistent-dir", &applied, &newest),
                     SRV_EMIGRATION);
}
END_TEST

/* A restarted PostgreSQL ends the sessions idle in the pool.  The next
 * statement on that thread must find the connection dead before it sends
 * and reconnect, not fail its request with SRV_EUNAVAIL (503). */
START_TEST(test_terminated_connection_replaced)
{
    static const struct db_sql pid_sql = { "db_test_backend_pid", "SELECT pg_backend_pid()", 0 };
    PGresult *r = NULL;
    char sql[128];
    long pid, pid2;

    TESTDB_REQUIRE();
    ck_assert_int_eq(db_init(testdb_conninfo), 0);
    ck_assert_int_eq(db_exec_own(&pid_sql, NULL, NULL, NULL, 0, &r), SRV_OK);
    pid = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%ld)", pid);
    ck_assert_int_eq(count_rows(sql), 0);   /* 't' reads as 0 */
    /* pg_terminate_backend returns before the backend has gone: wait. */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE pid = %ld", pid);
    for (int i = 0; i < 200 && count_rows(sql) != 0; i++)
        usleep(10000);
    ck_assert_int_eq(db_exec_own(&pid_sql, NULL, NULL, NULL, 0, &r), SRV_OK);
    pid2 = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    ck_assert_int_ne(pid2, pid);
    db_thread_release();
    db_shutdown();
}
END_TEST

/* Migration 0085 rewrites the actor forms earlier servers wrote into the
 * one auth_actor writes, where the token is known without doubt, and
 * leaves the rest as written.  The database is migrated up to 0084 from a
 * folder of copies, the old forms inserted, then the real folder applied. */
static void copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    char buf[8192];
    size_t n;

    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(out);
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

START_TEST(test_actor_forms_rewritten)
{
    char dir[] = "/tmp/precursor-mig-XXXXXX", src[PATH_MAX + 300], dst[PATH_MAX + 300], sql[512];
    int applied = -1, newest = -1;
    struct dirent *e;
    long ml, gone;
    DIR *d;

    TESTDB_REQUIRE();
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_ptr_nonnull(d = opendir(testdb_migrations));
    while ((e = readdir(d)) != NULL) {
        if (strlen(e->d_name) < 6 || strcmp(e->d_name + strlen(e->d_name) - 4, ".sql") != 0 ||
            strncmp(e->d_name, "0085", 4) >= 0)
            continue;
        snprintf(src, sizeof src, "%s/%s", testdb_migrations, e->d_name);
        snprintf(dst, sizeof dst, "%s/%s", dir, e->d_name);
        copy_file(src, dst);
    }
    closedir(d);
    ck_assert_int_eq(db_migrate(testdb_conninfo, dir, &applied, &newest), 0);
    ck_assert_int_lt(newest, 85);
    ck_assert_int_eq(count_rows("INSERT INTO api_tokens (name, role, token_sha256) VALUES"
                                " ('ml', 'ml', sha256('a')), ('twin', 'ml', sha256('b')),"
                                " ('twin', 'ml', sha256('c')), ('gone', 'ml', sha256('d'))"
                                " RETURNING 0"), 0);
    ml = count_rows("SELECT id FROM api_tokens WHERE name = 'ml'");
    gone = count_rows("SELECT id FROM api_tokens WHERE name = 'gone'");
    ck_assert_int_eq(count_rows("DELETE FROM api_tokens WHERE name = 'gone' RETURNING 0"), 0);
    snprintf(sql, sizeof sql,
             "INSERT INTO rules (name, expr, class, created_by) VALUES"
             " ('by id', 'rms(0) > 1', 'normal', 'token:%ld'), ('by gone id', 'rms(0) > 1', 'normal', 'token:%ld'),"
             " ('by user', 'rms(0) > 1', 'normal', 'alice'), ('by new', 'rms(0) > 1', 'normal', 'token:ml#%ld')"
             " RETURNING 0", ml, gone, ml);
    ck_assert_int_eq(count_rows(sql), 0);
    ck_assert_int_eq(count_rows("INSERT INTO labels (snapshot_id, start_s, end_s, channels, class, created_by,"
                                " updated_by) VALUES (1, 0, 1, '{0}', 'normal', 'token:ml', 'token:twin'),"
                                " (2, 0, 1, '{0}', 'normal', 'bob', NULL) RETURNING 0"), 0);
    snprintf(sql, sizeof sql, "INSERT INTO alert_dispositions (snapshot_id, acknowledged_by, disposed_by)"
             " VALUES (1, 'token:%ld', 'carol') RETURNING 0", ml);
    ck_assert_int_eq(count_rows(sql), 0);

    ck_assert_int_eq(db_migrate(testdb_conninfo, testdb_migrations, &applied, &newest), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM rules WHERE name = 'by id' AND created_by = 'token:ml#%ld'", ml);
    ck_assert_int_eq(count_rows(sql), 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM rules WHERE name = 'by gone id' AND created_by = 'token:%ld'",
             gone);
    ck_assert_int_eq(count_rows(sql), 1);      /* the token is gone: kept as written */
    ck_assert_int_eq(count_rows("SELECT count(*) FROM rules WHERE name = 'by user' AND created_by = 'alice'"), 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM rules WHERE name = 'by new' AND created_by = 'token:ml#%ld'", ml);
    ck_assert_int_eq(count_rows(sql), 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM labels WHERE snapshot_id = 1 AND created_by = 'token:ml#%ld'"
             " AND updated_by = 'token:twin'", ml);
    ck_assert_int_eq(count_rows(sql), 1);      /* two tokens are named twin: which one is not known */
    ck_assert_int_eq(count_rows("SELECT count(*) FROM labels WHERE snapshot_id = 2 AND created_by = 'bob'"
                                " AND updated_by IS NULL"), 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM alert_dispositions WHERE acknowledged_by = 'token:ml#%ld'"
             " AND disposed_by = 'carol'", ml);
    ck_assert_int_eq(count_rows(sql), 1);
    for (d = opendir(dir); d && (e = readdir(d)) != NULL;) {
        snprintf(dst, sizeof dst, "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.')
            unlink(dst);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}
END_TEST

Suite *db_suite(void);
Suite *db_suite(void)
{
    Suite *s = suite_create("db");
    TCase *pure = tcase_create("pure");
    TCase *tc = tcase_create("postgres");

    tcase_add_test(pure, test_conninfo_rewrite);
    tcase_add_test(pure, test_array_literal);
    tcase_add_test(pure, test_buf_grows_and_takes);
    suite_add_tcase(s, pure);
    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_columns_by_name);
    tcase_add_test(tc, test_migrate_twice);
    tcase_add_test(tc, test_newer_schema_refused);
    tcase_add_test(tc, test_unreachable_database);
    tcase_add_test(tc, test_terminated_connection_replaced);
    suite_add_tcase(s, tc);
    /* a database of its own, migrated in two steps */
    tc = tcase_create("actor_forms");
    tcase_add_unchecked_fixture(tc, testdb_setup, testdb_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_actor_forms_rewritten);
    suite_add_tcase(s, tc);
    return s;
}
