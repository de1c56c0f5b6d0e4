/* rules_api.c - the REST handlers for rules (labeling functions): create,
 * list, read with coverage/overlap/conflict/accuracy, update, delete,
 * validate, and a snapshot's weak label with its provenance.
 *
 * Everything is checked before anything is written: the expression
 * compiles (400 naming the position), its class exists, its channels are
 * channels the fleet has (400), the name is free (409).  Creating or
 * changing a rule evaluates it over every stored snapshot before answering,
 * so the statistics in the answer are current. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/text/text.h"
#include "server/rules/rules_expr.h"
#include "server/rules/rules_int.h"

static int fail(struct srv_response *rs, int err, const char *msg)
{
    rs->err_message = msg;
    return err;
}

static int fail_owned(struct srv_response *rs, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_owned(struct srv_response *rs, int err, const char *fmt, ...)
{
    char *m = malloc(512);
    va_list ap;

    if (m) {
        va_start(ap, fmt);
        vsnprintf(m, 512, fmt, ap);
        va_end(ap);
        rs->err_message_owned = m;
        rs->err_message = m;
    }
    return err;
}

static json_t *body_object(const struct srv_request *rq)
{
    json_error_t je;
    json_t *j;

    if (!rq->body || rq->body_len == 0)
        return NULL;
    j = json_loadb((const char *)rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &je);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* A stored rule row (RULE_COLS order) with its statistics. */
static json_t *rule_json(PGresult *r, int i)
{
    int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    struct rules_stats st;
    char ca[40], ua[40];
    json_t *j;

    text_rfc3339(strtoll(PQgetvalue(r, i, 7), NULL, 10), ca, sizeof ca);
    text_rfc3339(strtoll(PQgetvalue(r, i, 8), NULL, 10), ua, sizeof ua);
    j = json_pack("{s:I,s:s,s:s,s:s,s:f,s:b,s:s,s:s,s:s}", "id", (json_int_t)id,
                  "name", PQgetvalue(r, i, 1), "expr", PQgetvalue(r, i, 2),
                  "class", PQgetvalue(r, i, 3), "weight", strtod(PQgetvalue(r, i, 4), NULL),
                  "enabled", PQgetvalue(r, i, 5)[0] == 't', "created_by", PQgetvalue(r, i, 6),
                  "created_at", ca, "updated_at", ua);
    if (j && rules_stats_get(id, &st) == SRV_OK) {
        json_object_set_new(j, "coverage", json_real(st.coverage));
        json_object_set_new(j, "overlap", json_real(st.overlap));
        json_object_set_new(j, "conflict", json_real(st.conflict));
        json_object_set_new(j, "accuracy", num_or_null(st.accuracy));
        json_object_set_new(j, "hits", json_integer(st.hits));
        json_object_set_new(j, "snapshots", json_integer(st.snapshots));
        json_object_set_new(j, "labeled_hits", json_integer(st.labeled));
    }
    return j;
}

/* Compile expr and check what it refers to.  On success *cls holds the
 * class (copied into cls_buf). */
static int check_expr(struct srv_response *rs, const char *expr, char *cls_buf, size_t cap)
{
    struct rules_expr *x = NULL;
    struct rules_expr_error e;
    const char *const *chans;
    size_t nch, i, used = 0;
    char arr[RULES_EXPR_MAX_CHANNELS * (FEAT_NAME_MAX * 2 + 4) + 3];
    const char *vals[1];
    PGresult *r = NULL;
    int err;

    if (!expr || !*expr)
        return fail(rs, SRV_EBADREQ, "expr must be a non-empty string");
    if (rules_expr_compile(expr, &x, &e) != 0)
        return fail_owned(rs, SRV_EBADREQ, "rule does not parse: %s", e.msg);
    snprintf(cls_buf, cap, "%s", rules_expr_class(x));
    vals[0] = cls_buf;
    err = rules_q(RQ_CLASS_EXISTS, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        goto out;
    if (PQntuples(r) != 1) {
        err = fail_owned(rs, SRV_EBADREQ, "unknown class '%s' (see GET /api/v1/classes)", cls_buf);
        goto out;
    }
    PQclear(r);
    r = NULL;
    /* channel names as a text[] literal, each quoted with " and \ escaped */
    nch = rules_expr_channels(x, &chans);
    arr[used++] = '{';
    for (i = 0; i < nch; i++) {
        const char *p;

        if (i)
            arr[used++] = ',';
        arr[used++] = '"';
        for (p = chans[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                arr[used++] = '\\';
            arr[used++] = *p;
        }
        arr[used++] = '"';
    }
    arr[used++] = '}';
    arr[used] = '\0';
    vals[0] = arr;
    err = rules_q(RQ_UNKNOWN_CHANNELS, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        goto out;
    if (PQntuples(r) > 0)
        err = fail_owned(rs, SRV_EBADREQ, "unknown channel \"%s\": no snapshot has it",
                         PQgetvalue(r, 0, 0));
out:
    PQclear(r);
    rules_expr_free(x);
    return err;
}

static const char *actor(const struct srv_request *rq, char *buf, size_t cap)
{
    if (rq->user_id > 0 && rq->user_name[0])
        snprintf(buf, cap, "%s", rq->user_name);
    else
        snprintf(buf, cap, "token:%" PRId64, rq->token_id);
    return buf;
}

static int read_weight(json_t *j, double def, double *out)
{
    json_t *w = json_object_get(j, "weight");

    if (!w) {
        *out = def;
        return 0;
    }
    if (!json_is_number(w))
        return -1;
    *out = json_number_value(w);
    return *out > 0 && *out <= 100 ? 0 : -1;
}

static int read_enabled(json_t *j, int def, int *out)
{
    json_t *e = json_object_get(j, "enabled");

    if (!e) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(e))
        return -1;
    *out = json_is_true(e);
    return 0;
}

static int valid_name(const char *n)
{
    size_t l = n ? strlen(n) : 0;
    return l >= 1 && l <= 100;
}

static int respond_rule(struct srv_response *rs, unsigned status, int64_t id)
{
    char idb[24];
    const char *vals[1] = { idb };
    PGresult *r = NULL;
    json_t *j;
    int err;

    snprintf(idb, sizeof idb, "%" PRId64, id);
    err = rules_q(RQ_RULE_GET, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return fail(rs, SRV_ENOTFOUND, "no such rule");
    }
    j = rule_json(r, 0);
    PQclear(r);
    return srv_respond_json_take(rs, status, j);
}

int rules_api_create(struct srv_request *rq, struct srv_response *rs)
{
    json_t *j = body_object(rq);
    const char *name, *expr;
    char cls[RULES_CLASS_MAX + 1], wb[32], who[80];
    const char *vals[6];
    double weight;
    int enabled, err;
    int64_t id;
    PGresult *r = NULL;

    if (!j)
        return fail(rs, SRV_EBADREQ, "body must be a JSON object");
    name = json_string_value(json_object_get(j, "name"));
    expr = json_string_value(json_object_get(j, "expr"));
    if (!valid_name(name)) {
        err = fail(rs, SRV_EBADREQ, "name must be a string of 1 to 100 bytes");
        goto out;
    }
    if (read_weight(j, 1, &weight) != 0 || read_enabled(j, 1, &enabled) != 0) {
        err = fail(rs, SRV_EBADREQ, "weight must be a number in (0, 100], enabled a boolean");
        goto out;
    }
    err = check_expr(rs, expr, cls, sizeof cls);
    if (err != SRV_OK)
        goto out;
    snprintf(wb, sizeof wb, "%.6g", weight);
    vals[0] = name;
    vals[1] = expr;
    vals[2] = cls;
    vals[3] = wb;
    vals[4] = enabled ? "true" : "false";
    vals[5] = actor(rq, who, sizeof who);
    err = rules_q(RQ_RULE_INSERT, vals, NULL, NULL, 0, &r);
    if (err == SRV_ECONFLICT)
        err = fail(rs, SRV_ECONFLICT, "a rule with this name exists");
    if (err != SRV_OK)
        goto out;
    id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    err = rules_eval_rule(id);
    if (err != SRV_OK)
        goto out;
    err = srv_respond_json_take(rs, 201, json_pack("{s:I,s:s}", "id", (json_int_t)id,
                                                   "class", cls));
out:
    PQclear(r);
    json_decref(j);
    return err;
}

int rules_api_list(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    json_t *items;
    int i, err = rules_q(RQ_RULES_LIST, NULL, NULL, NULL, 0, &r);

    if (err != SRV_OK)
        return err;
    items = json_array();
    for (i = 0; items && i < PQntuples(r); i++)
        json_array_append_new(items, rule_json(r, i));
    PQclear(r);
    return srv_respond_json_take(rs, 200, json_pack("{s:o}", "items", items));
}

int rules_api_get(struct srv_request *rq, struct srv_response *rs)
{
    int64_t id;

    if (text_parse_id(rq->params[0], &id) != 0)
        return fail(rs, SRV_EBADREQ, "rule id must be a positive integer");
    return respond_rule(rs, 200, id);
}

int rules_api_update(struct srv_request *rq, struct srv_response *rs)
{
    json_t *j = NULL;
    PGresult *r = NULL;
    char idb[24], cls[RULES_CLASS_MAX + 1], wb[32], *name = NULL, *expr = NULL;
    const char *vals[6], *s;
    double weight;
    int enabled, err;
    int64_t id;

    if (text_parse_id(rq->params[0], &id) != 0)
        return fail(rs, SRV_EBADREQ, "rule id must be a positive integer");
    j = body_object(rq);
    if (!j)
        return fail(rs, SRV_EBADREQ, "body must be a JSON object");
    snprintf(idb, sizeof idb, "%" PRId64, id);
    vals[0] = idb;
    err = rules_q(RQ_RULE_GET, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        goto out;
    if (PQntuples(r) != 1) {
        err = fail(rs, SRV_ENOTFOUND, "no such rule");
        goto out;
    }
    /* start from the stored row, apply what the body names */
    s = json_string_value(json_object_get(j, "name"));
    if (json_object_get(j, "name") && !valid_name(s)) {
        err = fail(rs, SRV_EBADREQ, "name must be a string of 1 to 100 bytes");
        goto out;
    }
    name = strdup(s ? s : PQgetvalue(r, 0, 1));
    s = json_string_value(json_object_get(j, "expr"));
    if (json_object_get(j, "expr") && !s) {
        err = fail(rs, SRV_EBADREQ, "expr must be a string");
        goto out;
    }
    expr = strdup(s ? s : PQgetvalue(r, 0, 2));
    if (read_weight(j, strtod(PQgetvalue(r, 0, 4), NULL), &weight) != 0 ||
        read_enabled(j, PQgetvalue(r, 0, 5)[0] == 't', &enabled) != 0) {
        err = fail(rs, SRV_EBADREQ, "weight must be a number in (0, 100], enabled a boolean");
        goto out;
    }
    PQclear(r);
    r = NULL;
    if (!name || !expr) {
        err = SRV_ENOMEM;
        goto out;
    }
    err = check_expr(rs, expr, cls, sizeof cls);
    if (err != SRV_OK)
        goto out;
    snprintf(wb, sizeof wb, "%.6g", weight);
    vals[1] = name;
    vals[2] = expr;
    vals[3] = cls;
    vals[4] = wb;
    vals[5] = enabled ? "true" : "false";
    err = rules_q(RQ_RULE_UPDATE, vals, NULL, NULL, 0, &r);
    if (err == SRV_ECONFLICT)
        err = fail(rs, SRV_ECONFLICT, "a rule with this name exists");
    if (err != SRV_OK)
        goto out;
    if (PQntuples(r) != 1) {
        err = fail(rs, SRV_ENOTFOUND, "no such rule");
        goto out;
    }
    err = rules_eval_rule(id);
    if (err == SRV_OK)
        err = respond_rule(rs, 200, id);
out:
    PQclear(r);
    free(name);
    free(expr);
    json_decref(j);
    return err;
}

int rules_api_delete(struct srv_request *rq, struct srv_response *rs)
{
    char idb[24];
    const char *vals[1] = { idb };
    PGresult *r = NULL;
    int64_t id, *ids = NULL;
    size_t n = 0, cap = 0;
    const char *p;
    int err;

    if (text_parse_id(rq->params[0], &id) != 0)
        return fail(rs, SRV_EBADREQ, "rule id must be a positive integer");
    snprintf(idb, sizeof idb, "%" PRId64, id);
    err = rules_q(RQ_RULE_DELETE, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    if (strcmp(PQgetvalue(r, 0, 0), "1") != 0) {
        PQclear(r);
        return fail(rs, SRV_ENOTFOUND, "no such rule");
    }
    /* the snapshots it voted on get a vote without it */
    for (p = PQgetvalue(r, 0, 1); *p && err == SRV_OK; ) {
        char *end;
        long long v;

        while (*p == '{' || *p == ',' || *p == '}')
            p++;
        if (!*p)
            break;
        v = strtoll(p, &end, 10);
        if (end == p)
            break;
        p = end;
        if (n == cap) {
            int64_t *nv = realloc(ids, (cap = cap ? cap * 2 : 64) * sizeof *nv);

            if (!nv) {
                err = SRV_ENOMEM;
                break;
            }
            ids = nv;
        }
        ids[n++] = v;
    }
    PQclear(r);
    if (err == SRV_OK)
        err = rules_revote(ids, n);
    free(ids);
    if (err == SRV_OK)
        rs->status = 204;
    return err;
}

int rules_api_validate(struct srv_request *rq, struct srv_response *rs)
{
    json_t *j = body_object(rq), *out;
    const char *expr = j ? json_string_value(json_object_get(j, "expr")) : NULL;
    struct rules_expr *x = NULL;
    struct rules_expr_error e;
    const char *const *chans;
    size_t i, n;

    if (!expr) {
        json_decref(j);
        return fail(rs, SRV_EBADREQ, "body must be {\"expr\": \"...\"}");
    }
    if (rules_expr_compile(expr, &x, &e) != 0) {
        out = json_pack("{s:b,s:{s:i,s:s}}", "valid", 0, "error", "position", e.pos,
                        "message", e.msg);
    } else {
        json_t *ch = json_array();

        n = rules_expr_channels(x, &chans);
        for (i = 0; i < n; i++)
            json_array_append_new(ch, json_string(chans[i]));
        out = json_pack("{s:b,s:s,s:o}", "valid", 1, "class", rules_expr_class(x),
                        "channels", ch);
        rules_expr_free(x);
    }
    json_decref(j);
    return srv_respond_json_take(rs, 200, out);
}

int rules_api_weak_label(struct srv_request *rq, struct srv_response *rs)
{
    char idb[24];
    const char *vals[1] = { idb };
    PGresult *r = NULL;
    json_t *human, *weak = json_null(), *eff;
    int64_t id;
    int err;

    if (text_parse_id(rq->params[0], &id) != 0)
        return fail(rs, SRV_EBADREQ, "snapshot id must be a positive integer");
    snprintf(idb, sizeof idb, "%" PRId64, id);
    err = rules_q(RQ_WEAK_GET, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    if (strcmp(PQgetvalue(r, 0, 0), "0") == 0) {
        PQclear(r);
        return fail(rs, SRV_ENOTFOUND, "no such snapshot");
    }
    human = json_loads(PQgetvalue(r, 0, 5), 0, NULL);
    if (!PQgetisnull(r, 0, 1))
        weak = json_pack("{s:s,s:s,s:f,s:o}", "class", PQgetvalue(r, 0, 1),
                         "source", PQgetvalue(r, 0, 2),
                         "confidence", strtod(PQgetvalue(r, 0, 3), NULL),
                         "votes", json_loads(PQgetvalue(r, 0, 4), 0, NULL));
    PQclear(r);
    /* the effective label: a human one is never replaced by a weak one */
    if (human && json_array_size(human) > 0)
        eff = json_pack("{s:O,s:s}", "class", json_array_get(human, 0), "source", "human");
    else if (!json_is_null(weak))
        eff = json_pack("{s:O,s:O}", "class", json_object_get(weak, "class"),
                        "source", json_object_get(weak, "source"));
    else
        eff = json_null();
    return srv_respond_json_take(rs, 200, json_pack("{s:I,s:o,s:o,s:o}", "snapshot_id",
                                                    (json_int_t)id, "human",
                                                    human ? human : json_array(),
                                                    "weak", weak, "effective", eff));
}

int rules_api_features(struct srv_request *rq, struct srv_response *rs)
{
    char idb[24];
    const char *vals[1] = { idb };
    PGresult *r = NULL;
    json_t *items;
    int64_t id;
    int i, err;

    if (text_parse_id(rq->params[0], &id) != 0)
        return fail(rs, SRV_EBADREQ, "snapshot id must be a positive integer");
    snprintf(idb, sizeof idb, "%" PRId64, id);
    err = rules_q(RQ_SNAPSHOT_FEATURES, vals, NULL, NULL, 0, &r);
    if (err != SRV_OK)
        return err;
    items = json_array();
    for (i = 0; i < PQntuples(r); i++) {
        char *txt = strdup(PQgetvalue(r, i, 9)), *b = txt ? strchr(txt, '{') : NULL;
        char *e = txt ? strrchr(txt, '}') : NULL;
        json_t *spec = NULL;

        /* PostgreSQL's {a,b} array text is JSON once the braces are brackets */
        if (b && e) {
            *b = '[';
            *e = ']';
            spec = json_loads(txt, 0, NULL);
        }
        free(txt);

        json_array_append_new(items, json_pack(
            "{s:s,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:o}", "channel", PQgetvalue(r, i, 0),
            "mean", strtod(PQgetvalue(r, i, 1), NULL), "std", strtod(PQgetvalue(r, i, 2), NULL),
            "rms", strtod(PQgetvalue(r, i, 3), NULL), "peak", strtod(PQgetvalue(r, i, 4), NULL),
            "crest", strtod(PQgetvalue(r, i, 5), NULL),
            "kurtosis", strtod(PQgetvalue(r, i, 6), NULL),
            "dominant_hz", strtod(PQgetvalue(r, i, 7), NULL),
            "bin_hz", strtod(PQgetvalue(r, i, 8), NULL), "spectrum",
            spec ? spec : json_null()));
    }
    PQclear(r);
    if (json_array_size(items) == 0) {
        json_decref(items);
        return fail(rs, SRV_ENOTFOUND, "no features for this snapshot (yet)");
    }
    return srv_respond_json_take(rs, 200, json_pack("{s:I,s:o}", "snapshot_id", (json_int_t)id,
                                                    "channels", items));
}
