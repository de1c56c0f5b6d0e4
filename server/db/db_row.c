/* db_row.c - see db.h: reading result columns by name and writing
 * PostgreSQL array literals.  By name, so a statement's SELECT list can
 * change order or grow without every reader counting columns again; a name
 * the result lacks is a bug, logged once per call site's name and read as
 * NULL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/db/db.h"
#include "server/srv/srv.h"

static int col(const PGresult *r, int row, const char *name)
{
    int c = PQfnumber(r, name);

    if (c < 0) {
        srv_log("error", "db: result has no column \"%s\"", name);
        return -1;
    }
    if (row < 0 || row >= PQntuples(r) || PQgetisnull(r, row, c))
        return -1;
    return c;
}

int db_isnull(const PGresult *r, int row, const char *name)
{
    return col(r, row, name) < 0;
}

const char *db_text(const PGresult *r, int row, const char *name)
{
    int c = col(r, row, name);

    return c < 0 ? NULL : PQgetvalue(r, row, c);
}

const char *db_text_or(const PGresult *r, int row, const char *name, const char *dflt)
{
    const char *v = db_text(r, row, name);

    return v ? v : dflt;
}

int db_len(const PGresult *r, int row, const char *name)
{
    int c = col(r, row, name);

    return c < 0 ? 0 : PQgetlength(r, row, c);
}

int64_t db_int64(const PGresult *r, int row, const char *name)
{
    const char *v = db_text(r, row, name);

    return v ? strtoll(v, NULL, 10) : 0;
}

double db_double(const PGresult *r, int row, const char *name)
{
    const char *v = db_text(r, row, name);

    return v ? strtod(v, NULL) : 0.0;
}

int db_bool(const PGresult *r, int row, const char *name)
{
    const char *v = db_text(r, row, name);

    return v && v[0] == 't';
}

/* Elements are separated by commas: none right after the opening brace. */
static void sep(struct srv_buf *b)
{
    if (b->len && b->p[b->len - 1] != '{')
        srv_buf_put(b, ",", 1);
}

void db_array_begin(struct srv_buf *b)
{
    srv_buf_put(b, "{", 1);
}

void db_array_end(struct srv_buf *b)
{
    srv_buf_put(b, "}", 1);
}

void db_array_text(struct srv_buf *b, const char *s)
{
    sep(b);
    if (!s) {
        srv_buf_puts(b, "NULL");
        return;
    }
    srv_buf_put(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            srv_buf_put(b, "\\", 1);
        srv_buf_put(b, s, 1);
    }
    srv_buf_put(b, "\"", 1);
}

void db_array_int64(struct srv_buf *b, int64_t v)
{
    sep(b);
    srv_buf_printf(b, "%lld", (long long)v);
}

void db_array_raw(struct srv_buf *b, const char *token)
{
    sep(b);
    srv_buf_puts(b, token);
}
