/* srv_util.c - small helpers shared by handlers and the command line:
 * failing with a message, parsing a JSON body, building a JSON response,
 * releasing one, and finding the project folders
 * (migrations/, schema/, labeling-ui/) from a flag, the working directory or
 * the location of the running binary. */
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/srv/srv.h"

/* The shortest decimal that strtod reads back as d, spelt as jansson
 * spells a real (no '+' or leading zeros in the exponent, and a ".0" when
 * neither '.' nor 'e' is left), into out (at least 32 bytes).  No search is
 * needed: decimals of up to 15 significant digits are at least 1e-15 of d
 * apart, more than the 2^-52 of d that read back as d, so when %.15g (which
 * drops trailing zeros) reads back it is the only such decimal and the
 * shortest; else 16 digits, else the 17 that always do.  (A subnormal,
 * coarser than 2^-52 of itself, may keep more digits than it needs; it
 * still reads back.) */
size_t srv_json_real(double d, char *out)
{
    char buf[40], *e;
    int p;

    for (p = 15; p < 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (p == 17)
        snprintf(buf, sizeof buf, "%.17g", d);
    if ((e = strchr(buf, 'e')) != NULL)
        snprintf(e + 1, sizeof buf - (size_t)(e + 1 - buf), "%d", atoi(e + 1));
    else if (!strchr(buf, '.'))
        strcat(buf, ".0");
    strcpy(out, buf);
    return strlen(out);
}

/* The rewrite, in place on jansson's text: a number token only where it
 * has a '.' or an exponent; strings untouched.  Returns the new length. */
static size_t shorten_reals(char *text, size_t len)
{
    size_t r = 0, w = 0, end, n;
    char tok[40], best[40];
    int real;

    while (r < len) {
        char c = text[r];

        if (c == '"') {
            /* A string, copied as it is: its escapes cannot end it early. */
            text[w++] = text[r++];
            while (r < len && text[r] != '"') {
                if (text[r] == '\\' && r + 1 < len)
                    text[w++] = text[r++];
                text[w++] = text[r++];
            }
            if (r < len)
                text[w++] = text[r++];
            continue;
        }
        if (c != '-' && (c < '0' || c > '9')) {
            text[w++] = text[r++];
            continue;
        }
        real = 0;
        for (end = r; end < len && strchr("0123456789+-.eE", text[end]) != NULL && text[end]; end++)
            if (text[end] == '.' || text[end] == 'e' || text[end] == 'E')
                real = 1;
        n = end - r;
        /* %.17g pads only a value that needs it, so jansson's short tokens
         * are already their shortest; one too long for tok is left alone. */
        if (real && n > 6 && n < sizeof tok) {
            memcpy(tok, text + r, n);
            tok[n] = '\0';
            if (srv_json_real(strtod(tok, NULL), best) < n) {
                memcpy(text + w, best, strlen(best));
                w += strlen(best);
                r = end;
                continue;
            }
        }
        memmove(text + w, text + r, n);
        w += n;
        r = end;
    }
    if (w < len)
        text[w] = '\0';
    return w;
}

char *srv_json_dumps(const struct json_t *j, size_t flags)
{
    char *s = json_dumps(j, flags);

    if (s)
        shorten_reals(s, strlen(s));
    return s;
}

int srv_respond_json_take(struct srv_response *rs, unsigned status, struct json_t *j)
{
    char *s;

    if (!j)
        return SRV_ENOMEM;
    s = srv_json_dumps(j, JSON_COMPACT);
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

int srv_query_no_offset(const struct srv_request *rq, struct srv_response *rs,
                        const char *cursor)
{
    if (!rq->query || !rq->query(rq, "offset"))
        return SRV_OK;
    return srv_failf(rs, SRV_EBADREQ, "offset is not taken by this listing: page with "
                     "%s=<the next of the previous page>", cursor);
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

/* The longest prefix of s within max bytes that ends on a character
 * boundary (s is valid UTF-8: jansson checks keys). */
static size_t utf8_cut(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return n;
}

/* Whether some known entry names a member of the object at path ("a."
 * prefix), i.e. that object's key set is fixed and checked too. */
static int known_below(const char *path, size_t len, const char *const *known)
{
    for (size_t i = 0; known[i]; i++)
        if (strncmp(known[i], path, len) == 0 && known[i][len] == '.')
            return 1;
    return 0;
}

/* Every member of obj not known, as prefix + key, onto out (up to
 * SRV_IGNORED_MAX); *total counts them all.  A key with a dot in it is
 * never known: "a.b" in the list means member b of object a. */
static void collect_ignored(const json_t *obj, char *path, size_t plen, size_t cap,
                            const char *const *known, json_t *out, size_t *total)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v) {
        size_t klen = strlen(key);
        int fits = plen + klen < cap;

        if (fits) {
            memcpy(path + plen, key, klen + 1);
            if (!strchr(key, '.') && srv_json_known(path, known)) {
                if (json_is_object(v) && known_below(path, plen + klen, known)) {
                    path[plen + klen] = '.';
                    collect_ignored(v, path, plen + klen + 1, cap, known, out, total);
                }
                continue;
            }
        }
        ++*total;
        if (json_array_size(out) < SRV_IGNORED_MAX) {
            char name[SRV_IGNORED_KEY_MAX + 1];
            size_t n;

            /* the prefix (known keys, short) then the key, cut to the bound */
            path[plen] = '\0';
            n = utf8_cut(path, SRV_IGNORED_KEY_MAX);
            memcpy(name, path, n);
            if (n == plen) {
                size_t k = utf8_cut(key, SRV_IGNORED_KEY_MAX - n);

                memcpy(name + n, key, k);
                n += k;
            }
            name[n] = '\0';
            json_array_append_new(out, json_string(name));
        }
    }
    path[plen] = '\0';
}

json_t *srv_json_ignored(const struct srv_request *rq, const json_t *body,
                         const char *const *known)
{
    char path[256], who[96] = "", *names;
    json_t *out;
    size_t total = 0;

    if (!json_is_object(body) || !(out = json_array()))
        return NULL;
    path[0] = '\0';
    collect_ignored(body, path, 0, sizeof path, known, out, &total);
    if (total == 0) {
        json_decref(out);
        return NULL;
    }
    /* Once per request, bounded: the names are the answer's (at most
     * SRV_IGNORED_MAX of SRV_IGNORED_KEY_MAX bytes), escaped to ASCII, and
     * srv_log escapes control bytes of the path. */
    names = json_dumps(out, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (rq && rq->user_name[0])
        snprintf(who, sizeof who, " by %.64s", rq->user_name);
    else if (rq && rq->token_id > 0)
        snprintf(who, sizeof who, " by token %lld", (long long)rq->token_id);
    srv_log("warn", "%s %.128s%s: %zu unknown key%s ignored: %s",
            rq && rq->method ? rq->method : "-", rq && rq->path ? rq->path : "-", who, total,
            total == 1 ? "" : "s", names ? names : "?");
    free(names);
    return out;
}

void srv_body_ignored(const struct srv_request *rq, struct srv_response *rs,
                      const char *const *known)
{
    json_t *body = srv_body_json(rq);

    json_decref(rs->ignored);
    rs->ignored = srv_json_ignored(rq, body, known);
    json_decref(body);
}

size_t srv_ignored_header(const json_t *ignored, char *out, size_t cap)
{
    size_t i, len = 0;
    json_t *v;

    json_array_foreach(ignored, i, v) {
        /* Each name as its own JSON string, ASCII only (DEL too: no header
         * byte), kept only when it fits whole with the closing bracket. */
        char *one = json_dumps(v, JSON_ENCODE_ANY | JSON_ENSURE_ASCII), *p;
        size_t n = 0, at = len + 1;

        for (p = one; p && *p; p++)
            n += *p == 0x7f ? 6 : 1;
        if (!one || at + n + 2 > cap) {
            free(one);
            break;
        }
        out[len] = len == 0 ? '[' : ',';
        for (p = one; *p; p++) {
            if (*p == 0x7f) {
                memcpy(out + at, "\\u007F", 6);
                at += 6;
            } else {
                out[at++] = *p;
            }
        }
        len = at;
        free(one);
    }
    if (len == 0)
        return 0;
    out[len++] = ']';
    out[len] = '\0';
    return len;
}

static int json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* rs->ignored as the first member of rs's JSON object body: our own
 * answer, so valid JSON, and an object's members have no order.  0, or -1
 * when the body is no object or memory ran out (it is left as it was). */
static int splice_ignored(struct srv_response *rs)
{
    char *names, *body;
    size_t at = 0, n, len = rs->body_len;
    int empty;

    if (!rs->body || !rs->content_type ||
        strncmp(rs->content_type, "application/json", 16) != 0)
        return -1;
    while (at < len && json_space(rs->body[at]))
        at++;
    if (at == len || rs->body[at] != '{')
        return -1;
    at++;
    for (n = at; n < len && json_space(rs->body[n]); n++)
        ;
    empty = n < len && rs->body[n] == '}';
    if (!(names = json_dumps(rs->ignored, JSON_COMPACT)))
        return -1;
    n = strlen(names);
    /* {"ignored":<names>,<the rest> */
    if (!(body = malloc(len + n + sizeof "\"ignored\":,"))) {
        free(names);
        return -1;
    }
    memcpy(body, rs->body, at);
    len = at;
    memcpy(body + len, "\"ignored\":", 10);
    len += 10;
    memcpy(body + len, names, n);
    len += n;
    if (!empty)
        body[len++] = ',';
    memcpy(body + len, rs->body + at, rs->body_len - at);
    len += rs->body_len - at;
    body[len] = '\0';
    free(names);
    if (!rs->body_static)
        free(rs->body);
    rs->body = body;
    rs->body_len = len;
    rs->body_static = 0;
    return 0;
}

size_t srv_response_take_ignored(struct srv_response *rs, char *out, size_t cap)
{
    unsigned status = rs->status ? rs->status : 200;
    size_t n = 0;

    if (rs->ignored && json_array_size(rs->ignored) > 0 && status >= 200 && status < 300 &&
        !rs->stream && splice_ignored(rs) != 0)
        n = srv_ignored_header(rs->ignored, out, cap);
    json_decref(rs->ignored);
    rs->ignored = NULL;
    return n;
}

void srv_response_release(struct srv_response *rs)
{
    json_decref(rs->ignored);
    rs->ignored = NULL;
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

void srv_wilson95(uint64_t hits, uint64_t n, double *lo, double *hi)
{
    const double z = 1.959963984540054;
    double p, z2n, c, h;

    if (n == 0) {
        *lo = 0;
        *hi = 1;
        return;
    }
    p = (double)hits / (double)n;
    z2n = z * z / (double)n;
    c = (p + z2n / 2) / (1 + z2n);
    h = z * sqrt(p * (1 - p) / (double)n + z2n / (4.0 * (double)n)) / (1 + z2n);
    *lo = hits == 0 || c - h < 0 ? 0 : c - h;
    *hi = hits >= n || c + h > 1 ? 1 : c + h;
}
