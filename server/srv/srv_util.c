/* srv_util.c - small helpers shared by handlers and the command line:
 * failing with a message, parsing a JSON body, building a JSON response,
 * releasing one, and finding the project folders
 * (migrations/, schema/, labeling-ui/) from a flag, the working directory or
 * the location of the running binary. */
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/srv/srv.h"

int srv_respond_json_take(struct srv_response *rs, unsigned status, struct json_t *j)
{
    char *s;

    if (!j)
        return SRV_ENOMEM;
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        return SRV_ENOMEM;
    rs->status = status;
    rs->content_type = "application/json";
    rs->body = s;
    rs->body_len = strlen(s);
    rs->body_static = 0;
    return SRV_OK;
}

int srv_respond_items(struct srv_response *rs, const char *items_json)
{
    json_t *items = json_loads(items_json, 0, NULL);

    if (!items)
        return SRV_ENOMEM;
    return srv_respond_json_take(rs, 200, json_pack("{s:o}", "items", items));
}

int srv_respond_copy(struct srv_response *rs, unsigned status, const char *content_type,
                     const void *p, size_t len)
{
    if (!(rs->body = malloc(len ? len : 1)))
        return SRV_ENOMEM;
    if (len)
        memcpy(rs->body, p, len);
    rs->body_len = len;
    rs->body_static = 0;
    rs->status = status;
    rs->content_type = content_type;
    return SRV_OK;
}

int srv_fail(struct srv_response *rs, int err, const char *message)
{
    rs->err_message = message;
    return err;
}

int srv_failf(struct srv_response *rs, int err, const char *fmt, ...)
{
    char *m = NULL;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    free(rs->err_message_owned);
    rs->err_message_owned = m;      /* NULL: the code's default message */
    rs->err_message = m;
    return err;
}

int srv_query_demo(const struct srv_request *rq, struct srv_response *rs,
                   const char **sql_mode)
{
    static const struct {
        const char *word, *mode;
    } words[] = { { "exclude", "0" }, { "0", "0" }, { "false", "0" }, { "include", "1" },
                  { "1", "1" }, { "true", "1" }, { "only", "2" } };
    const char *v = rq->query ? rq->query(rq, "demo") : NULL;
    size_t i;

    *sql_mode = "0";
    if (!v || !*v)
        return SRV_OK;
    for (i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(v, words[i].word) == 0) {
            *sql_mode = words[i].mode;
            return SRV_OK;
        }
    return srv_fail(rs, SRV_EBADREQ, "demo must be exclude, include or only");
}

json_t *srv_body_json(const struct srv_request *rq)
{
    json_error_t je;

    if (!rq->body || rq->body_len == 0)
        return NULL;
    return json_loadb((const char *)rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &je);
}

int srv_json_opt_string(const json_t *obj, const char *key, size_t max, const char **out)
{
    const json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || strlen(json_string_value(v)) > max)
        return -1;
    *out = json_string_value(v);
    return 0;
}

int srv_json_known(const char *key, const char *const *known)
{
    for (size_t i = 0; known[i]; i++)
        if (strcmp(known[i], key) == 0)
            return 1;
    return 0;
}

const char *srv_json_unknown_key(const json_t *obj, const char *const *known)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v) {
        if (!srv_json_known(key, known))
            return key;
    }
    return NULL;
}

void srv_response_release(struct srv_response *rs)
{
    if (!rs->body_static)
        free(rs->body);
    free(rs->err_message_owned);
    rs->body = NULL;
    rs->err_message_owned = NULL;
    if (rs->stream && rs->stream_free)
        rs->stream_free(rs->stream_ctx);
    rs->stream = NULL;
    rs->stream_ctx = NULL;
}

static int dir_has(const char *dir, const char *marker)
{
    char p[PATH_MAX];

    if (snprintf(p, sizeof p, "%s/%s", dir, marker) >= (int)sizeof p)
        return 0;
    return access(p, R_OK) == 0;
}

static int put(char *out, size_t cap, const char *a, const char *b)
{
    int n = b ? snprintf(out, cap, "%s/%s", a, b) : snprintf(out, cap, "%s", a);
    return n > 0 && (size_t)n < cap;
}

int srv_find_dir(const char *flag, const char *rel, const char *marker,
                 char *out, size_t cap)
{
    char exe[PATH_MAX], cand[PATH_MAX];
    ssize_t n;
    int up;

    if (flag) {
        if (!dir_has(flag, marker) || !put(out, cap, flag, NULL))
            return -ENOENT;
        return 0;
    }
    if (dir_has(rel, marker))
        return put(out, cap, rel, NULL) ? 0 : -ENOENT;
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -ENOENT;
    exe[n] = '\0';
    /* <root>/build/bin/x or <root>/build/NAME/bin/x: try up to 5 parents. */
    for (up = 0; up < 5; up++) {
        char *slash = strrchr(exe, '/');

        if (!slash || slash == exe)
            break;
        *slash = '\0';
        if (!put(cand, sizeof cand, exe, rel))
            break;
        if (dir_has(cand, marker))
            return put(out, cap, cand, NULL) ? 0 : -ENOENT;
    }
    return -ENOENT;
}
