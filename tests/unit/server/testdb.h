/* testdb.h - a throw-away database for the server's DB-backed suites.
 *
 * With DATABASE_URL set, each test case creates its own database (name from
 * the pid and a random number), applies the migrations, and drops it again
 * in teardown; without DATABASE_URL the DB-backed tests skip with a message.
 * Static functions: included by each suite that needs them. */
#ifndef PRECURSOR_TESTDB_H
#define PRECURSOR_TESTDB_H

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

/* In a test: skip (pass with a message) when no database is configured. */
#define TESTDB_REQUIRE()                                                        \
    do {                                                                        \
        if (!testdb_ready) {                                                    \
            fprintf(stderr, "SKIP %s: DATABASE_URL unset or unusable\n", __func__); \
            return;                                                             \
        }                                                                       \
    } while (0)

#endif
