/* rules_api.c - the REST handlers for rules (labeling functions): create,
 * list, read with coverage/overlap/conflict/accuracy, update, delete,
 * validate, and a snapshot's features and weak label with its provenance.
 *
 * Everything is checked before anything is written: the expression
 * compiles (400 naming the position), its class exists, its channels are
 * channels the fleet has (400), the name is free (409).  Creating or
 * changing a rule evaluates it over every stored snapshot before answering,
 * so the statistics in the answer are current. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/auth/auth.h"
#include "server/db/db.h"
#include "server/labels/labels.h"
#include "server/rules/rules_expr.h"
#include "server/rules/rules_int.h"
#include "server/text/text.h"

/* The {id} of the path; msg says what it must be. */
static int path_id(const struct srv_request *rq, struct srv_response *rs, const char *msg,
                   int64_t *id)
{
    return text_parse_id(rq->params[0], id) == 0 ? SRV_OK : srv_fail(rs, SRV_EBADREQ, msg);
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* The demo= of a rule's figures (srv_query_demo's mode).  Unlike the
 * listings, whose default leaves the demo history out, a rule's figures are
 * over every stored snapshot unless asked: they were so before demo= was
 * taken here, and the UI always asks. */
static int rules_demo(const struct srv_request *rq, struct srv_response *rs, const char **demo)
{
    const char *v = rq->query ? rq->query(rq, "demo") : NULL;

    if (!v || !*v) {
        *demo = "1";
        return SRV_OK;
    }
    return srv_query_demo(rq, rs, demo);
}

/* The rule's figures per equipment type where it applies, with the counts
 * behind each and the reason an accuracy is withheld. */
static json_t *by_type_json(int64_t id, const char *demo)
{
    struct rules_type_stats ts[RULES_MAX_TYPES];
    size_t n = 0;
    json_t *a;

    if (rules_stats_by_type(id, demo, ts, RULES_MAX_TYPES, &n) != SRV_OK || !(a = json_array()))
        return json_null();
    for (size_t i = 0; i < n; i++) {
        const struct rules_type_stats *t = &ts[i];
        json_t *o = json_pack("{s:s,s:I,s:I,s:f,s:I,s:I}", "equipment_type", t->equipment_type,
                              "snapshots", (json_int_t)t->snapshots, "hits", (json_int_t)t->hits,
                              "coverage", t->coverage, "labeled_hits", (json_int_t)t->labeled,
                              "agreeing", (json_int_t)t->agreeing);
        if (!o)
            continue;
        json_object_set_new(o, "accuracy", num_or_null(t->accuracy));
        json_object_set_new(o, "accuracy_ci", isfinite(t->accuracy) ?
                            json_pack("[f,f]", t->acc_lo, t->acc_hi) : json_null());
        json_object_set_new(o, "accuracy_refused", t->refused[0] ? json_string(t->refused) : json_null());
        json_array_append_new(a, o);
    }
    return a;
}

/* A stored rule row (RULE_COLS) with its statistics (demo: rules_demo). */
static json_t *rule_json(const PGresult *r, int i, const char *demo)
{
    int64_t id = db_int64(r, i, "id");
    struct rules_stats st;
    char ca[40], ua[40];
    json_t *j;

    text_rfc3339(db_int64(r, i, "created_us"), ca, sizeof ca);
    text_rfc3339(db_int64(r, i, "updated_us"), ua, sizeof ua);
    j = json_pack("{s:I,s:s,s:s,s:s,s:f,s:b,s:s,s:s,s:s}", "id", (json_int_t)id,
                  "name", db_text(r, i, "name"), "expr", db_text(r, i, "expr"),
                  "class", db_text(r, i, "class"), "weight", db_double(r, i, "weight"),
                  "enabled", db_bool(r, i, "enabled"), "created_by", db_text(r, i, "created_by"),
                  "created_at", ca, "updated_at", ua);
    if (j && rules_stats_get(id, demo, &st) == SRV_OK) {
        json_object_set_new(j, "coverage", json_real(st.coverage));
        json_object_set_new(j, "overlap", json_real(st.overlap));
        json_object_set_new(j, "conflict", json_real(st.conflict));
        json_object_set_new(j, "accuracy", num_or_null(st.accuracy));
        json_object_set_new(j, "hits", json_integer(st.hits));
        json_object_set_new(j, "snapshots", json_integer(st.snapshots));
        json_object_set_new(j, "labeled_hits", json_integer(st.labeled));
        json_object_set_new(j, "by_equipment_type", by_type_json(id, demo));
    }
    return j;
}

static int check_class(struct srv_response *rs, const char *cls)
{
    int active, err = labels_class_active(cls, &active);

    if (err == SRV_OK && !active)
        err = srv_failf(rs, SRV_EBADREQ, "unknown class '%s' (see GET /api/v1/classes)", cls);
    return err;
}

/* Every channel the rule reads must be one some snapshot has (once any
 * snapshot has features): a typo would otherwise make a rule that never
 * fires. */
static int check_channels(struct srv_response *rs, const struct rules_expr *x)
{
    struct srv_buf arr = { 0 };
    const char *const *chans;
    const char *vals[1];
    size_t nch = rules_expr_channels(x, &chans), i;
    PGresult *r = NULL;
    int err;

    db_array_begin(&arr);
    for (i = 0; i < nch; i++)
        db_array_text(&arr, chans[i]);
    db_array_end(&arr);
    vals[0] = srv_buf_take(&arr, NULL);
    if (!vals[0])
        return SRV_ENOMEM;
    err = rules_q(RQ_UNKNOWN_CHANNELS, vals, &r);
    if (err == SRV_OK && PQntuples(r) > 0)
        err = srv_failf(rs, SRV_EBADREQ, "unknown channel \"%s\": no snapshot has it",
                          db_text(r, 0, "channel"));
    PQclear(r);
    free((char *)vals[0]);
    return err;
}

/* Compile expr and check what it refers to; its class goes to cls_buf. */
static int check_expr(struct srv_response *rs, const char *expr, char *cls_buf, size_t cap)
{
    struct rules_expr *x = NULL;
    struct rules_expr_error e;
    int err;

    if (!expr || !*expr)
        return srv_fail(rs, SRV_EBADREQ, "expr must be a non-empty string");
    if (rules_expr_compile(expr, &x, &e) != 0)
        return srv_failf(rs, SRV_EBADREQ, "rule does not parse: %s", e.msg);
    snprintf(cls_buf, cap, "%s", rules_expr_class(x));
    err = check_class(rs, cls_buf);
    if (err == SRV_OK)
        err = check_channels(rs, x);
    rules_expr_free(x);
    return err;
}

/* A rule as written by a client. */
struct rule_in {
    const char *name, *expr;    /* borrowed: from the body or the stored row */
    char cls[RULES_CLASS_MAX + 1];
    double weight;
    int enabled;
    char weight_text[32];
};

static int read_weight(json_t *j, double *inout)
{
    json_t *w = json_object_get(j, "weight");

    if (!w)
        return 0;
    if (!json_is_number(w))
        return -1;
    *inout = json_number_value(w);
    return *inout > 0 && *inout <= 100 ? 0 : -1;
}

static int read_enabled(json_t *j, int *inout)
{
    json_t *e = json_object_get(j, "enabled");

    if (!e)
        return 0;
    if (!json_is_boolean(e))
        return -1;
    *inout = json_is_true(e);
    return 0;
}

static int valid_name(const char *n)
{
    size_t l = n ? strlen(n) : 0;
    return l >= 1 && l <= 100;
}

/* The body's fields over what in holds: the defaults when creating (every
 * field must then be given but weight and enabled), the stored rule when
 * updating (any field may be left out).  Then the expression is checked. */
static int read_rule(const struct srv_request *rq, struct srv_response *rs, json_t *j,
                     int updating, struct rule_in *in)
{
    json_t *name = json_object_get(j, "name"), *expr = json_object_get(j, "expr");

    static const char *const rule_fields[] = { "name", "expr", "weight", "enabled", NULL };

    if (name || !updating) {
        in->name = json_string_value(name);
        if (!valid_name(in->name))
            return srv_fail(rs, SRV_EBADREQ, "name must be a string of 1 to 100 bytes");
    }
    if (expr || !updating) {
        in->expr = json_string_value(expr);
        if (!in->expr && updating)
            return srv_fail(rs, SRV_EBADREQ, "expr must be a string");
    }
    if (read_weight(j, &in->weight) != 0 || read_enabled(j, &in->enabled) != 0)
        return srv_fail(rs, SRV_EBADREQ, "weight must be a number in (0, 100], enabled a boolean");
    rs->ignored = srv_json_ignored(rq, j, rule_fields);
    snprintf(in->weight_text, sizeof in->weight_text, "%.6g", in->weight);
    return check_expr(rs, in->expr, in->cls, sizeof in->cls);
}

/* name, expr, class, weight, enabled: the parameters both writes share. */
static void rule_params(const struct rule_in *in, const char **vals)
{
    vals[0] = in->name;
    vals[1] = in->expr;
    vals[2] = in->cls;
    vals[3] = in->weight_text;
    vals[4] = in->enabled ? "true" : "false";
}

static int write_rule(struct srv_response *rs, enum rules_q q, const char *const *vals,
                      PGresult **r)
{
    int err = rules_q(q, vals, r);

    return err == SRV_ECONFLICT ? srv_fail(rs, err, "a rule with this name exists") : err;
}

static int respond_rule(struct srv_response *rs, unsigned status, int64_t id, const char *demo)
{
    PGresult *r = NULL;
    json_t *j;
    int err = rules_q_id(RQ_RULE_GET, id, &r);

    if (err != SRV_OK)
        return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return srv_fail(rs, SRV_ENOTFOUND, "no such rule");
    }
    j = rule_json(r, 0, demo);
    PQclear(r);
    return srv_respond_json_take(rs, status, j);
}

int rules_api_create(struct srv_request *rq, struct srv_response *rs)
{
    json_t *j = srv_body_json(rq);
    struct rule_in in = { .weight = 1, .enabled = 1 };
    char who[AUTH_ACTOR_MAX];
    const char *vals[6];
    PGresult *r = NULL;
    int64_t id;
    int err;

    if (!json_is_object(j)) {
        json_decref(j);
        return srv_fail(rs, SRV_EBADREQ, "body must be a JSON object");
    }
    err = read_rule(rq, rs, j, 0, &in);
    if (err != SRV_OK)
        goto out;
    rule_params(&in, vals);
    vals[5] = auth_actor(rq, who, sizeof who);
    err = write_rule(rs, RQ_RULE_INSERT, vals, &r);
    if (err != SRV_OK)
        goto out;
    id = db_int64(r, 0, "id");
    err = rules_eval_rule(id);
    if (err == SRV_OK)
        err = srv_respond_json_take(rs, 201, json_pack("{s:I,s:s}", "id", (json_int_t)id,
                                                       "class", in.cls));
out:
    PQclear(r);
    json_decref(j);
    return err;
}

int rules_api_list(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    json_t *items;
    const char *demo;
    int i, err = rules_demo(rq, rs, &demo);

    if (err == SRV_OK)
        err = rules_q(RQ_RULES_LIST, NULL, &r);
    if (err != SRV_OK)
        return err;
    items = json_array();
    for (i = 0; items && i < PQntuples(r); i++)
        json_array_append_new(items, rule_json(r, i, demo));
    PQclear(r);
    return srv_respond_json_take(rs, 200, json_pack("{s:o}", "items", items));
}

int rules_api_get(struct srv_request *rq, struct srv_response *rs)
{
    int64_t id;
    const char *demo;
    int err = path_id(rq, rs, "rule id must be a positive integer", &id);

    if (err == SRV_OK)
        err = rules_demo(rq, rs, &demo);
    return err == SRV_OK ? respond_rule(rs, 200, id, demo) : err;
}

/* The stored rule id as the starting point of an update: in borrows from
 * *r, which the caller clears. */
static int stored_rule(struct srv_response *rs, int64_t id, struct rule_in *in, PGresult **r)
{
    int err = rules_q_id(RQ_RULE_GET, id, r);

    if (err != SRV_OK)
        return err;
    if (PQntuples(*r) != 1)
        return srv_fail(rs, SRV_ENOTFOUND, "no such rule");
    in->name = db_text(*r, 0, "name");
    in->expr = db_text(*r, 0, "expr");
    in->weight = db_double(*r, 0, "weight");
    in->enabled = db_bool(*r, 0, "enabled");
    return SRV_OK;
}

int rules_api_update(struct srv_request *rq, struct srv_response *rs)
{
    json_t *j = NULL;
    PGresult *old = NULL, *r = NULL;
    struct rule_in in = { 0 };
    char idb[24];
    const char *vals[6] = { idb }, *demo;
    int64_t id;
    int err = path_id(rq, rs, "rule id must be a positive integer", &id);

    if (err == SRV_OK)
        err = rules_demo(rq, rs, &demo);
    if (err != SRV_OK)
        return err;
    j = srv_body_json(rq);
    if (!json_is_object(j)) {
        json_decref(j);
        return srv_fail(rs, SRV_EBADREQ, "body must be a JSON object");
    }
    err = stored_rule(rs, id, &in, &old);
    if (err == SRV_OK)
        err = read_rule(rq, rs, j, 1, &in);
    if (err != SRV_OK)
        goto out;
    snprintf(idb, sizeof idb, "%" PRId64, id);
    rule_params(&in, vals + 1);
    err = write_rule(rs, RQ_RULE_UPDATE, vals, &r);
    if (err == SRV_OK && PQntuples(r) != 1)
        err = srv_fail(rs, SRV_ENOTFOUND, "no such rule");
    if (err == SRV_OK)
        err = rules_eval_rule(id);
    if (err == SRV_OK)
        err = respond_rule(rs, 200, id, demo);
out:
    PQclear(old);
    PQclear(r);
    json_decref(j);
    return err;
}

int rules_api_delete(struct srv_request *rq, struct srv_response *rs)
{
    struct rules_ids hit = { NULL, 0, 0 };
    PGresult *r = NULL;
    int64_t id;
    int err = path_id(rq, rs, "rule id must be a positive integer", &id);

    if (err != SRV_OK)
        return err;
    err = rules_q_id(RQ_RULE_DELETE, id, &r);
    if (err != SRV_OK)
        return err;
    if (db_int64(r, 0, "deleted") != 1) {
        PQclear(r);
        return srv_fail(rs, SRV_ENOTFOUND, "no such rule");
    }
    /* the snapshots it voted on get a vote without it */
    err = rules_ids_from(&hit, r, "snapshot_id");
    PQclear(r);
    if (err == SRV_OK)
        err = rules_revote(hit.v, hit.n);
    rules_ids_free(&hit);
    if (err == SRV_OK)
        rs->status = 204;
    return err;
}

int rules_api_validate(struct srv_request *rq, struct srv_response *rs)
{
    json_t *j = srv_body_json(rq), *out;
    const char *expr = json_string_value(json_object_get(j, "expr"));
    struct rules_expr *x = NULL;
    struct rules_expr_error e;
    const char *const *chans;
    size_t i, n;

    static const char *const validate_fields[] = { "expr", NULL };

    if (!expr) {
        json_decref(j);
        return srv_fail(rs, SRV_EBADREQ, "body must be {\"expr\": \"...\"}");
    }
    rs->ignored = srv_json_ignored(rq, j, validate_fields);
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

/* The effective label: a human one is never replaced by a weak one. */
static json_t *effective_label(json_t *human, json_t *weak)
{
    if (human && json_array_size(human) > 0)
        return json_pack("{s:O,s:s}", "class", json_array_get(human, 0), "source", "human");
    if (!json_is_null(weak))
        return json_pack("{s:O,s:O}", "class", json_object_get(weak, "class"),
                         "source", json_object_get(weak, "source"));
    return json_null();
}

int rules_api_weak_label(struct srv_request *rq, struct srv_response *rs)
{
    PGresult *r = NULL;
    json_t *human, *weak = json_null();
    int64_t id;
    int err = path_id(rq, rs, "snapshot id must be a positive integer", &id);

    if (err != SRV_OK)
        return err;
    err = rules_q_id(RQ_WEAK_GET, id, &r);
    if (err != SRV_OK)
        return err;
    if (db_int64(r, 0, "found") == 0) {
        PQclear(r);
        return srv_fail(rs, SRV_ENOTFOUND, "no such snapshot");
    }
    human = json_loads(db_text_or(r, 0, "human", ""), 0, NULL);
    if (!db_isnull(r, 0, "class"))
        weak = json_pack("{s:s,s:s,s:f,s:o}", "class", db_text(r, 0, "class"),
                         "source", db_text(r, 0, "source"),
                         "confidence", db_double(r, 0, "confidence"),
                         "votes", json_loads(db_text_or(r, 0, "votes", ""), 0, NULL));
    PQclear(r);
    return srv_respond_json_take(rs, 200, json_pack("{s:I,s:o,s:o,s:o}", "snapshot_id",
                                                    (json_int_t)id, "human",
                                                    human ? human : json_array(),
                                                    "weak", weak,
                                                    "effective", effective_label(human, weak)));
}

