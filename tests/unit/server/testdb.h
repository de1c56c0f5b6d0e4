/* testdb.h - a throw-away database for the server's DB-backed suites.
 *
 * With DATABASE_URL set, each test case creates its own database (name from
 * the pid and a random number), applies the migrations, and drops it again
 * in teardown; without DATABASE_URL the DB-backed tests skip with a message.
 * Also the checks a suite makes on its own connection to that database
 * (testdb_sql, testdb_value, testdb_value_is).  Static functions: included
 * by each suite that needs them. */
#ifndef PRECURSOR_TESTDB_H
#define PRECURSOR_TESTDB_H

#include <check.h>
#include <libpq-fe.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/db/db.h"
#include "server/srv/srv.h"

static char testdb_name[64];
static char testdb_conninfo[2048];
static char testdb_migrations[PATH_MAX];
static int testdb_ready;

static int testdb_admin(const char *sql)
{
    PGconn *c = db_connect(getenv("DATABASE_URL"));
    PGresult *r;
    int ok;

    if (!c)
        return -1;
    r = PQexec(c, sql);
    ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "testdb: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

/* Unchecked fixture: runs once per test case in the parent process. */
static void testdb_setup(void)
{
    const char *url = getenv("DATABASE_URL");
    char sql[128];

    testdb_ready = 0;
    if (!url || !*url)
        return;
    if (sodium_init() < 0)
        return;
    /* CREATE DATABASE takes no parameters; the name is digits we made. */
    snprintf(testdb_name, sizeof testdb_name, "precursor_test_%ld_%u", (long)getpid(),
             randombytes_random());
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", testdb_name);
    if (testdb_admin(sql) != 0)
        return;
    if (db_conninfo_with_dbname(url, testdb_name, testdb_conninfo, sizeof testdb_conninfo) != 0)
        return;
    if (srv_find_dir(NULL, "migrations", "0001_devices_snapshots.sql", testdb_migrations,
                     sizeof testdb_migrations) != 0)
        return;
    testdb_ready = 1;
}

static void testdb_teardown(void)
{
    char sql[160];

    if (!testdb_name[0])
        return;
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", testdb_name);
    testdb_admin(sql);
    testdb_name[0] = '\0';
}

/* Run q on c; it must succeed (a command, or rows). */
static inline void testdb_sql(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);

    ck_assert_msg(r && (PQresultStatus(r) == PGRES_COMMAND_OK ||
                        PQresultStatus(r) == PGRES_TUPLES_OK), "%s: %s", q, PQerrorMessage(c));
    PQclear(r);
}

/* The first column of q's first row on c as text (malloc'd): "NULL" for
 * SQL NULL, "none" when there is no row, so that a check names each. */
static inline char *testdb_value(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);
    char *v;

    ck_assert_msg(r && PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", q, PQerrorMessage(c));
    v = strdup(PQntuples(r) == 0 ? "none" : PQgetisnull(r, 0, 0) ? "NULL" : PQgetvalue(r, 0, 0));
    PQclear(r);
    ck_assert_ptr_nonnull(v);
    return v;
}

/* testdb_value(c, q) is want; the failure names the query. */
static inline void testdb_value_is(PGconn *c, const char *q, const char *want)
{
    char *v = testdb_value(c, q);

    ck_assert_msg(strcmp(v, want) == 0, "%s: got %s want %s", q, v, want);
    free(v);
}

/* In a test: skip (pass with a message) when no database is configured. */
#define TESTDB_REQUIRE()                                                        \
    do {                                                                        \
        if (!testdb_ready) {                                                    \
            fprintf(stderr, "SKIP %s: DATABASE_URL unset or unusable\n", __func__); \
            return;                                                             \
        }                                                                       \
    } while (0)

#endif
