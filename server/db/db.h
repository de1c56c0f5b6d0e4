/* db.h - PostgreSQL access for the server: one libpq connection per worker
 * thread (connected lazily, dropped after a failure so the next call
 * reconnects, closed when the thread exits) on which the modules' own
 * statements are prepared as they are first used; reading columns by name;
 * array literals; the migration runner.
 *
 * Functions return 0 or a negative SRV_E* code; results are PGresult the
 * caller PQclear()s. */
#ifndef PRECURSOR_DB_H
#define PRECURSOR_DB_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

/* Set the conninfo every worker connection uses (copied).  Call before any
 * statement runs; db_shutdown() forgets it and closes the calling thread's conn. */
int db_init(const char *conninfo);
void db_shutdown(void);

/* Run a statement on this thread's connection, preparing it there under
 * name first when this connection has not yet (also inside a transaction).
 * values/lengths/formats as in PQexecPrepared (lengths/formats may be NULL
 * for all-text).  On success *out is the result (PGRES_TUPLES_OK or
 * PGRES_COMMAND_OK).  Errors: SRV_EUNAVAIL (no connection), SRV_ECONFLICT
 * (unique violation), SRV_EBADREQ (refused by one of our triggers), SRV_EDB
 * (anything else; logged). */
int db_exec_sql(const char *name, const char *sql, int nparams,
                const char *const *values, const int *lengths, const int *formats,
                int binary_result, PGresult **out);

/* One entry of a module's own statement table (each module lists its SQL
 * once, in one table), run with db_exec_own(): the same as
 * db_exec_sql(st->name, st->sql, st->n, ...), except that out may be NULL
 * when the caller wants only success or failure (the result is cleared).
 * Names are unique across modules: prefix them with the module's. */
struct db_sql {
    const char *name, *sql;
    int n;
};
int db_exec_own(const struct db_sql *st, const char *const *values, const int *lengths,
                const int *formats, int binary_result, PGresult **out);

/* db_exec_own in two halves, for a thread with work to do while PostgreSQL
 * runs the statement and sends its answer: db_send_own sends it (SRV_OK, or
 * the error db_exec_own would give), db_wait_own waits for its answer
 * (exactly as db_exec_own returns it; after every successful send, and
 * nothing else on this thread's connection between), and db_poll_own in
 * between takes what has arrived, so the server is not held up on a full
 * socket. */
int db_send_own(const struct db_sql *st, const char *const *values, const int *lengths,
                const int *formats, int binary_result);
void db_poll_own(void);
int db_wait_own(const struct db_sql *st, PGresult **out);

/* Columns by name (db_row.c): the text value of row's column name, NULL
 * when SQL NULL (or, a bug, when the result has no such column: logged).
 * The numeric readers answer 0 for NULL; db_bool is 1 only for 't'. */
int db_isnull(const PGresult *r, int row, const char *name);
const char *db_text(const PGresult *r, int row, const char *name);
const char *db_text_or(const PGresult *r, int row, const char *name, const char *dflt);
int db_len(const PGresult *r, int row, const char *name);
int64_t db_int64(const PGresult *r, int row, const char *name);
double db_double(const PGresult *r, int row, const char *name);
int db_bool(const PGresult *r, int row, const char *name);

/* A timestamptz as every JSON answer of the API writes it: RFC 3339 in UTC
 * with Z and microseconds, "2026-12-07T12:00:00.123456Z" (the form of
 * text_rfc3339, and of schema/openapi.json).  PostgreSQL's own forms depend
 * on the session's TimeZone ("2026-12-07 17:45:00.123456+05:45" as text,
 * "...+00:00" inside json_build_object), so every time column that reaches
 * an answer as text goes through this, also inside json_build_object.  col
 * is an SQL expression in a string literal; NULL stays NULL. */
#define DB_RFC3339(col) \
    "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* PostgreSQL array literals, the one way to pass a list as one parameter
 * (db_row.c): db_array_begin, elements, db_array_end, into a struct srv_buf
 * (which may hold other text before).  Text elements are always quoted with
 * " and \ escaped, NULL for a NULL pointer; raw puts a token as it is (a
 * number formatted by the caller, or NULL). */
struct srv_buf;
void db_array_begin(struct srv_buf *b);
void db_array_end(struct srv_buf *b);
void db_array_text(struct srv_buf *b, const char *s);
void db_array_int64(struct srv_buf *b, int64_t v);
void db_array_raw(struct srv_buf *b, const char *token);

/* Close this thread's connection now (the thread-exit destructor does the
 * same). */
void db_thread_release(void);

/* Apply every NNNN_name.sql in dir not yet recorded in schema_migrations,
 * each in its own transaction, under a PostgreSQL advisory lock.  Returns
 * SRV_ESCHEMA when the database records a version newer than the newest
 * file, SRV_EMIGRATION when a file fails, SRV_EUNAVAIL when the database
 * cannot be reached.  *applied (may be NULL) counts files applied now,
 * *newest the newest version known afterwards. */
int db_migrate(const char *conninfo, const char *dir, int *applied, int *newest);

/* Rebuild conninfo (key=value or URI) as a key=value string with dbname
 * replaced.  0, SRV_EBADREQ (unparsable) or SRV_ETOOBIG (out too small). */
int db_conninfo_with_dbname(const char *conninfo, const char *dbname,
                            char *out, size_t cap);

/* Connect with the same settings the workers use (for the CLI and tests);
 * NULL on failure, message logged. */
PGconn *db_connect(const char *conninfo);

#endif
