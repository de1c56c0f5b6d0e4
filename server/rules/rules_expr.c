/* rules_expr.c - tokenizer, recursive-descent parser with static types, and
 * evaluator for rule expressions (grammar in rules_expr.h).
 *
 * The parser builds a flat node array (no allocation per node) and checks
 * types as it goes, so a rule that compiles can only fail at run time by
 * lacking data, which makes it abstain.  Every error names the position and
 * what was expected there. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/rules/rules_expr.h"

enum ty { T_NUM, T_STR, T_BOOL, T_CHAN };

enum nk {
    N_NUM, N_STR, N_BOOL, N_META, N_CHAN, N_FEAT, N_BAND, N_ABS, N_MIN, N_MAX,
    N_NEG, N_NOT, N_AND, N_OR, N_ADD, N_SUB, N_MUL, N_DIV,
    N_LT, N_LE, N_GT, N_GE, N_EQ, N_NE
};

enum meta { M_EQUIPMENT, M_SITE, M_DEVICE, M_DETECTOR, M_SCORE, M_RATE };
enum feat { F_RMS, F_PEAK, F_CREST, F_KURT, F_MEAN, F_STD, F_DOM };

struct node {
    enum nk kind;
    enum ty ty;
    int a, b, c;        /* children (node indices), -1 when unused */
    int which;          /* meta / feat / string slot */
    double num;
};

struct rules_expr {
    struct node nodes[RULES_EXPR_MAX_NODES];
    int nn, root;
    char strs[RULES_EXPR_MAX_LEN + 1];     /* string literals, NUL-separated */
    size_t strs_used;
    const char *chans[RULES_EXPR_MAX_CHANNELS];
    size_t nchans;
    char cls[RULES_CLASS_MAX + 1];
};

enum tk { K_END, K_NUM, K_STR, K_NAME, K_LP, K_RP, K_COMMA, K_ARROW,
          K_LT, K_LE, K_GT, K_GE, K_EQ, K_NE, K_PLUS, K_MINUS, K_STAR, K_SLASH, K_BAD };

struct parser {
    const char *src;
    size_t len, pos;        /* pos: start of the current token */
    enum tk tok;
    size_t tlen;            /* current token's length */
    double num;
    int depth;
    struct rules_expr *x;
    struct rules_expr_error *e;
    int failed;
};

static void error_at(struct parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void error_at(struct parser *p, size_t pos, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->failed)
        return;     /* the first error is the one that explains the rest */
    p->failed = 1;
    p->e->pos = (int)pos;
    n = snprintf(p->e->msg, sizeof p->e->msg, "at position %zu: ", pos);
    va_start(ap, fmt);
    vsnprintf(p->e->msg + n, sizeof p->e->msg - (size_t)n, fmt, ap);
    va_end(ap);
}

/* A short rendering of the current token for "found ..." */
static const char *found(struct parser *p, char *buf, size_t cap)
{
    if (p->tok == K_END)
        return "end of rule";
    snprintf(buf, cap, "'%.*s'", (int)(p->tlen > 20 ? 20 : p->tlen), p->src + p->pos);
    return buf;
}

static int is_name_start(int c) { return isalpha(c) || c == '_'; }
static int is_name_char(int c) { return isalnum(c) || c == '_'; }

static void next(struct parser *p)
{
    const char *s = p->src;
    size_t i = p->pos + p->tlen;

    while (i < p->len && isspace((unsigned char)s[i]))
        i++;
    p->pos = i;
    p->tlen = 1;
    if (i >= p->len) {
        p->tok = K_END;
        p->tlen = 0;
        return;
    }
    switch (s[i]) {
    case '(': p->tok = K_LP; return;
    case ')': p->tok = K_RP; return;
    case ',': p->tok = K_COMMA; return;
    case '+': p->tok = K_PLUS; return;
    case '-': p->tok = K_MINUS; return;
    case '*': p->tok = K_STAR; return;
    case '/': p->tok = K_SLASH; return;
    case '<': p->tok = s[i + 1] == '=' ? K_LE : K_LT; p->tlen = s[i + 1] == '=' ? 2 : 1; return;
    case '>': p->tok = s[i + 1] == '=' ? K_GE : K_GT; p->tlen = s[i + 1] == '=' ? 2 : 1; return;
    case '=':
        p->tlen = 2;
        p->tok = s[i + 1] == '=' ? K_EQ : s[i + 1] == '>' ? K_ARROW : K_BAD;
        if (p->tok == K_BAD)
            p->tlen = 1;
        return;
    case '!': p->tok = s[i + 1] == '=' ? K_NE : K_BAD; p->tlen = p->tok == K_NE ? 2 : 1; return;
    case '"': {
        size_t j = i + 1;

        while (j < p->len && s[j] != '"' && s[j] != '\n')
            j++;
        if (j >= p->len || s[j] != '"') {
            p->tok = K_BAD;
            p->tlen = j - i;
            return;
        }
        p->tok = K_STR;
        p->tlen = j + 1 - i;
        return;
    }
    default:
        break;
    }
    if (isdigit((unsigned char)s[i]) || (s[i] == '.' && isdigit((unsigned char)s[i + 1]))) {
        char *end;

        p->num = strtod(s + i, &end);
        p->tok = isfinite(p->num) ? K_NUM : K_BAD;
        p->tlen = (size_t)(end - (s + i));
        if (is_name_char((unsigned char)*end))
            p->tok = K_BAD;     /* "12abc" */
        return;
    }
    if (is_name_start((unsigned char)s[i])) {
        size_t j = i;

        while (j < p->len && is_name_char((unsigned char)s[j]))
            j++;
        p->tok = K_NAME;
        p->tlen = j - i;
        return;
    }
    p->tok = K_BAD;
}

static int tok_is(const struct parser *p, const char *word)
{
    return p->tok == K_NAME && strlen(word) == p->tlen && memcmp(p->src + p->pos, word, p->tlen) == 0;
}

static int add(struct parser *p, size_t at, enum nk k, enum ty t, int a, int b, int c)
{
    struct node *n;

    if (p->failed)
        return -1;
    if (p->x->nn >= RULES_EXPR_MAX_NODES) {
        error_at(p, at, "rule too large (more than %d nodes)", RULES_EXPR_MAX_NODES);
        return -1;
    }
    n = &p->x->nodes[p->x->nn];
    memset(n, 0, sizeof *n);
    n->kind = k;
    n->ty = t;
    n->a = a;
    n->b = b;
    n->c = c;
    return p->x->nn++;
}

static enum ty ty_of(struct parser *p, int n)
{
    return n >= 0 ? p->x->nodes[n].ty : T_NUM;
}

static const char *ty_name(enum ty t)
{
    switch (t) {
    case T_NUM: return "a number";
    case T_STR: return "a string";
    case T_BOOL: return "a condition";
    default: return "a channel";
    }
}

static int need(struct parser *p, int n, enum ty t, size_t at)
{
    if (!p->failed && ty_of(p, n) != t)
        error_at(p, at, "expected %s, found %s", ty_name(t), ty_name(ty_of(p, n)));
    return n;
}

static int parse_or(struct parser *p);

static int enter(struct parser *p)
{
    if (++p->depth > RULES_EXPR_MAX_DEPTH) {
        error_at(p, p->pos, "rule nested too deeply (more than %d levels)", RULES_EXPR_MAX_DEPTH);
        return -1;
    }
    return 0;
}

static const struct { const char *name; enum meta m; enum ty t; } metas[] = {
    { "equipment_type", M_EQUIPMENT, T_STR }, { "site", M_SITE, T_STR },
    { "device", M_DEVICE, T_STR }, { "detector", M_DETECTOR, T_STR },
    { "score", M_SCORE, T_NUM }, { "sample_rate", M_RATE, T_NUM },
};

/* The functions that make a number (ch() makes a channel and is parsed on
 * its own): node kind, feature for N_FEAT, argument types. */
static const struct fn {
    const char *name;
    enum nk kind;
    enum feat which;
    int nargs;
    enum ty args[3];
} fns[] = {
    { "rms", N_FEAT, F_RMS, 1, { T_CHAN } },
    { "peak", N_FEAT, F_PEAK, 1, { T_CHAN } },
    { "crest", N_FEAT, F_CREST, 1, { T_CHAN } },
    { "crest_factor", N_FEAT, F_CREST, 1, { T_CHAN } },
    { "kurtosis", N_FEAT, F_KURT, 1, { T_CHAN } },
    { "mean", N_FEAT, F_MEAN, 1, { T_CHAN } },
    { "std", N_FEAT, F_STD, 1, { T_CHAN } },
    { "dominant_freq", N_FEAT, F_DOM, 1, { T_CHAN } },
    { "band_energy", N_BAND, F_RMS, 3, { T_CHAN, T_NUM, T_NUM } },
    { "abs", N_ABS, F_RMS, 1, { T_NUM } },
    { "min", N_MIN, F_RMS, 2, { T_NUM, T_NUM } },
    { "max", N_MAX, F_RMS, 2, { T_NUM, T_NUM } },
};

static int expect(struct parser *p, enum tk t, const char *what)
{
    char b[32];

    if (p->failed)
        return -1;
    if (p->tok != t) {
        error_at(p, p->pos, "expected %s, found %s", what, found(p, b, sizeof b));
        return -1;
    }
    next(p);
    return 0;
}

/* "(" args ")" after a function's name, nargs arguments of the given
 * types. */
static int parse_call(struct parser *p, const char *fname, int nargs, const enum ty *types,
                      int args[3])
{
    int i;

    expect(p, K_LP, "'(' after function name");
    for (i = 0; i < nargs && !p->failed; i++) {
        size_t apos;

        if (i > 0) {
            char b[48];

            snprintf(b, sizeof b, "',' (%s takes %d arguments)", fname, nargs);
            expect(p, K_COMMA, b);
        }
        apos = p->pos;
        args[i] = parse_or(p);
        need(p, args[i], types[i], apos);
    }
    if (!p->failed && p->tok == K_COMMA)
        error_at(p, p->pos, "expected ')' (%s takes %d argument%s)", fname, nargs,
             nargs == 1 ? "" : "s");
    expect(p, K_RP, "')' after arguments");
    return p->failed ? -1 : 0;
}

/* A leaf node with its payload (the number, or the slot in which). */
static int add_leaf(struct parser *p, size_t at, enum nk k, enum ty t, double num, int which)
{
    int n = add(p, at, k, t, -1, -1, -1);

    if (n >= 0) {
        p->x->nodes[n].num = num;
        p->x->nodes[n].which = which;
    }
    next(p);
    return n;
}

static int parse_string(struct parser *p)
{
    size_t at = p->pos, sl = p->tlen - 2;
    int slot = (int)p->x->strs_used;

    if (sl > FEAT_NAME_MAX) {
        error_at(p, at, "string longer than %d bytes", FEAT_NAME_MAX);
        return -1;
    }
    if (p->failed)
        return -1;
    memcpy(p->x->strs + p->x->strs_used, p->src + at + 1, sl);
    p->x->strs[p->x->strs_used + sl] = '\0';
    p->x->strs_used += sl + 1;
    return add_leaf(p, at, N_STR, T_STR, 0, slot);
}

/* ch("name"): the channel a feature function reads; its name is kept for
 * rules_expr_channels. */
static int parse_ch(struct parser *p, size_t at)
{
    static const enum ty t[] = { T_STR };
    int n, args[3] = { -1, -1, -1 };
    size_t lp, k, dup = 0;
    const char *nm;

    next(p);
    lp = p->pos;
    if (parse_call(p, "ch", 1, t, args) != 0)
        return -1;
    if (p->x->nodes[args[0]].kind != N_STR) {
        error_at(p, lp, "expected a channel name in quotes");
        return -1;
    }
    if (p->x->nchans >= RULES_EXPR_MAX_CHANNELS) {
        error_at(p, at, "more than %d channels in one rule", RULES_EXPR_MAX_CHANNELS);
        return -1;
    }
    nm = p->x->strs + p->x->nodes[args[0]].which;
    for (k = 0; k < p->x->nchans; k++)
        dup |= strcmp(p->x->chans[k], nm) == 0;
    if (!dup)
        p->x->chans[p->x->nchans++] = nm;
    n = add(p, at, N_CHAN, T_CHAN, args[0], -1, -1);
    if (n >= 0)
        p->x->nodes[n].which = p->x->nodes[args[0]].which;
    return n;
}

static int parse_fn(struct parser *p, size_t at, const struct fn *f)
{
    int n, args[3] = { -1, -1, -1 };

    next(p);
    if (parse_call(p, f->name, f->nargs, f->args, args) != 0)
        return -1;
    n = add(p, at, f->kind, T_NUM, args[0], args[1], args[2]);
    if (n >= 0)
        p->x->nodes[n].which = f->which;
    return n;
}

static int unknown_name(struct parser *p, size_t at)
{
    size_t l = p->tlen;
    int shown = (int)(l > 40 ? 40 : l);

    next(p);
    if (p->tok == K_LP)
        error_at(p, at, "unknown function '%.*s'; expected one of rms, peak, crest, "
             "kurtosis, mean, std, dominant_freq, band_energy, ch, abs, min, max",
             shown, p->src + at);
    else
        error_at(p, at, "unknown name '%.*s'; expected one of equipment_type, site, "
             "device, detector, score, sample_rate, true, false", shown, p->src + at);
    return -1;
}

static int parse_name(struct parser *p)
{
    size_t at = p->pos, i;

    if (tok_is(p, "true") || tok_is(p, "false"))
        return add_leaf(p, at, N_BOOL, T_BOOL, tok_is(p, "true"), 0);
    for (i = 0; i < sizeof metas / sizeof metas[0]; i++)
        if (tok_is(p, metas[i].name))
            return add_leaf(p, at, N_META, metas[i].t, 0, metas[i].m);
    if (tok_is(p, "ch"))
        return parse_ch(p, at);
    for (i = 0; i < sizeof fns / sizeof fns[0]; i++)
        if (tok_is(p, fns[i].name))
            return parse_fn(p, at, &fns[i]);
    return unknown_name(p, at);
}

static int parse_primary(struct parser *p)
{
    size_t at = p->pos;
    char b[32];
    int n;

    if (p->failed)
        return -1;
    switch (p->tok) {
    case K_NUM:
        return add_leaf(p, at, N_NUM, T_NUM, p->num, 0);
    case K_STR:
        return parse_string(p);
    case K_LP:
        next(p);
        n = parse_or(p);
        expect(p, K_RP, "')'");
        return n;
    case K_NAME:
        return parse_name(p);
    default:
        if (p->tok == K_BAD && p->src[at] == '"')
            error_at(p, at, "unterminated string");
        else
            error_at(p, at, "expected a number, a string, a name or '(', found %s",
                 found(p, b, sizeof b));
        return -1;
    }
}

static int parse_unary(struct parser *p)
{
    size_t at = p->pos;
    int n;

    if (enter(p) != 0)
        return -1;
    if (p->tok == K_MINUS) {
        next(p);
        n = parse_unary(p);
        n = add(p, at, N_NEG, T_NUM, need(p, n, T_NUM, at + 1), -1, -1);
    } else {
        n = parse_primary(p);
    }
    p->depth--;
    return n;
}

/* The operator of a binary level at the current token, or -1. */
typedef int (*binop_fn)(const struct parser *p);

static int op_prod(const struct parser *p)
{
    return p->tok == K_STAR ? N_MUL : p->tok == K_SLASH ? N_DIV : -1;
}

static int op_sum(const struct parser *p)
{
    return p->tok == K_PLUS ? N_ADD : p->tok == K_MINUS ? N_SUB : -1;
}

static int op_and(const struct parser *p)
{
    return tok_is(p, "and") ? N_AND : -1;
}

static int op_or(const struct parser *p)
{
    return tok_is(p, "or") ? N_OR : -1;
}

/* operand (op operand)*, left-associative; operands and result of type t. */
static int parse_binary(struct parser *p, int (*operand)(struct parser *), binop_fn op,
                        enum ty t)
{
    size_t at = p->pos;
    int n = operand(p), k;

    while (!p->failed && (k = op(p)) >= 0) {
        size_t opos = p->pos, rpos;
        int r;

        need(p, n, t, at);
        next(p);
        rpos = p->pos;
        r = operand(p);
        need(p, r, t, rpos);
        n = add(p, opos, (enum nk)k, t, n, r, -1);
    }
    return n;
}

static int parse_prod(struct parser *p)
{
    return parse_binary(p, parse_unary, op_prod, T_NUM);
}

static int parse_sum(struct parser *p)
{
    return parse_binary(p, parse_prod, op_sum, T_NUM);
}

static int parse_cmp(struct parser *p)
{
    size_t at = p->pos, opos, rpos;
    int n = parse_sum(p), r;
    enum nk k;

    switch (p->tok) {
    case K_LT: k = N_LT; break;
    case K_LE: k = N_LE; break;
    case K_GT: k = N_GT; break;
    case K_GE: k = N_GE; break;
    case K_EQ: k = N_EQ; break;
    case K_NE: k = N_NE; break;
    default: return n;
    }
    if (p->failed)
        return -1;
    opos = p->pos;
    next(p);
    rpos = p->pos;
    r = parse_sum(p);
    if (p->failed)
        return -1;
    if (k == N_EQ || k == N_NE) {
        if (ty_of(p, n) != T_NUM && ty_of(p, n) != T_STR)
            error_at(p, at, "expected a number or a string, found %s", ty_name(ty_of(p, n)));
        need(p, r, ty_of(p, n), rpos);
    } else {
        need(p, n, T_NUM, at);
        need(p, r, T_NUM, rpos);
    }
    return add(p, opos, k, T_BOOL, n, r, -1);
}

static int parse_not(struct parser *p)
{
    size_t at = p->pos;
    int n;

    if (enter(p) != 0)
        return -1;
    if (tok_is(p, "not")) {
        next(p);
        n = parse_not(p);
        n = add(p, at, N_NOT, T_BOOL, need(p, n, T_BOOL, at + 4), -1, -1);
    } else {
        n = parse_cmp(p);
    }
    p->depth--;
    return n;
}

static int parse_and(struct parser *p)
{
    return parse_binary(p, parse_not, op_and, T_BOOL);
}

static int parse_or(struct parser *p)
{
    int n;

    if (enter(p) != 0)
        return -1;
    n = parse_binary(p, parse_and, op_or, T_BOOL);
    p->depth--;
    return n;
}

/* After the condition: "=>" CLASS and the end. */
static void parse_class(struct parser *p)
{
    char b[32];

    if (p->tok != K_ARROW) {
        error_at(p, p->pos, "expected '=>' and a class, or an operator, found %s",
             found(p, b, sizeof b));
        return;
    }
    next(p);
    if (p->tok != K_NAME || p->tlen > RULES_CLASS_MAX) {
        error_at(p, p->pos, "expected a class name after '=>', found %s", found(p, b, sizeof b));
        return;
    }
    memcpy(p->x->cls, p->src + p->pos, p->tlen);
    p->x->cls[p->tlen] = '\0';
    next(p);
    if (p->tok != K_END)
        error_at(p, p->pos, "expected end of rule after the class, found %s",
             found(p, b, sizeof b));
}

static void parse_rule(struct parser *p)
{
    size_t at;

    next(p);
    if (p->tok == K_END) {
        error_at(p, 0, "expected a condition, found end of rule");
        return;
    }
    at = p->pos;
    p->x->root = parse_or(p);
    need(p, p->x->root, T_BOOL, at);
    if (!p->failed)
        parse_class(p);
}

int rules_expr_compile(const char *src, struct rules_expr **out, struct rules_expr_error *e)
{
    struct parser p;
    struct rules_expr *x;
    size_t len;

    e->pos = 0;
    e->msg[0] = '\0';
    if (!src) {
        snprintf(e->msg, sizeof e->msg, "at position 0: expected a rule");
        return -EINVAL;
    }
    len = strnlen(src, RULES_EXPR_MAX_LEN + 1);
    if (len > RULES_EXPR_MAX_LEN) {
        e->pos = RULES_EXPR_MAX_LEN;
        snprintf(e->msg, sizeof e->msg, "at position %d: rule longer than %d bytes",
                 RULES_EXPR_MAX_LEN, RULES_EXPR_MAX_LEN);
        return -EINVAL;
    }
    /* The grammar is ASCII: a byte outside it is named here, before a
     * token rendering could cut a multi-byte character in half. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];

        if (c >= 0x80 || (c < 0x20 && c != '\t' && c != '\n' && c != '\r')) {
            e->pos = (int)i;
            snprintf(e->msg, sizeof e->msg, "at position %zu: only ASCII is allowed in a rule"
                     " (byte 0x%02x; use straight quotes \" and ')", i, c);
            return -EINVAL;
        }
    }
    x = calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    memset(&p, 0, sizeof p);
    p.src = src;
    p.len = len;
    p.x = x;
    p.e = e;
    parse_rule(&p);
    if (p.failed) {
        free(x);
        return -EINVAL;
    }
    *out = x;
    return 0;
}

void rules_expr_free(struct rules_expr *x)
{
    free(x);
}

const char *rules_expr_class(const struct rules_expr *x)
{
    return x->cls;
}

size_t rules_expr_channels(const struct rules_expr *x, const char *const **names)
{
    *names = x->chans;
    return x->nchans;
}

/* Evaluation: values are numbers (booleans as 0/1, strings by slot); known
 * is cleared when something is missing.  Strings compare by pointer to
 * either the literal or the metadata value. */
struct val {
    int known;
    double num;
    const char *str;
    const struct feat_channel *ch;
};

static const struct val unknown = { 0, 0, NULL, NULL };

static struct val eval(const struct rules_expr *x, int i, const struct rules_env *env);

static struct val eval_meta(const struct node *n, const struct rules_env *env)
{
    struct val v = { 1, 0, NULL, NULL };

    switch ((enum meta)n->which) {
    case M_EQUIPMENT: v.str = env->equipment_type; break;
    case M_SITE: v.str = env->site; break;
    case M_DEVICE: v.str = env->device; break;
    case M_DETECTOR: v.str = env->detector; break;
    case M_SCORE: v.num = env->score; break;
    case M_RATE: v.num = env->sample_rate; break;
    }
    if (n->ty == T_STR && !v.str)
        v.known = 0;
    if (n->ty == T_NUM && !isfinite(v.num))
        v.known = 0;
    return v;
}

static double feature(enum feat f, const struct feat_channel *ch)
{
    switch (f) {
    case F_RMS: return ch->rms;
    case F_PEAK: return ch->peak;
    case F_CREST: return ch->crest;
    case F_KURT: return ch->kurtosis;
    case F_MEAN: return ch->mean;
    case F_STD: return ch->std;
    case F_DOM: return ch->dominant_hz;
    }
    return NAN;
}

/* A feature or band energy of a channel. */
static struct val eval_channel_fn(const struct rules_expr *x, const struct node *n,
                                  const struct rules_env *env)
{
    struct val v = { 1, 0, NULL, NULL }, a = eval(x, n->a, env), lo, hi;

    if (n->kind == N_FEAT) {
        if (!a.known)
            return a;
        v.num = feature((enum feat)n->which, a.ch);
        return v;
    }
    lo = eval(x, n->b, env);
    hi = eval(x, n->c, env);
    if (!a.known || !lo.known || !hi.known)
        return unknown;
    v.num = features_band_energy(a.ch, lo.num, hi.num);
    return v;
}

/* Three-valued: false and unknown is false, true or unknown is true. */
static struct val eval_logic(const struct rules_expr *x, const struct node *n,
                             const struct rules_env *env)
{
    struct val v = { 1, 0, NULL, NULL }, a, b;
    int is_and = n->kind == N_AND;

    a = eval(x, n->a, env);
    if (a.known && (is_and ? !a.num : a.num))
        return a;
    b = eval(x, n->b, env);
    if (b.known && (is_and ? !b.num : b.num))
        return b;
    v.known = a.known && b.known;
    v.num = is_and;
    return v;
}

/* The binary operators on numbers, and == / != on numbers or strings. */
static struct val eval_binary(const struct rules_expr *x, const struct node *n,
                              const struct rules_env *env)
{
    struct val v = { 1, 0, NULL, NULL }, a = eval(x, n->a, env), b = eval(x, n->b, env);
    int eq;

    if (!a.known || !b.known)
        return unknown;
    switch (n->kind) {
    case N_MIN: v.num = fmin(a.num, b.num); break;
    case N_MAX: v.num = fmax(a.num, b.num); break;
    case N_ADD: v.num = a.num + b.num; break;
    case N_SUB: v.num = a.num - b.num; break;
    case N_MUL: v.num = a.num * b.num; break;
    case N_DIV: v.num = b.num != 0 ? a.num / b.num : NAN; break;
    case N_LT: v.num = a.num < b.num; break;
    case N_LE: v.num = a.num <= b.num; break;
    case N_GT: v.num = a.num > b.num; break;
    case N_GE: v.num = a.num >= b.num; break;
    case N_EQ:
    case N_NE:
        eq = x->nodes[n->a].ty == T_STR ? strcmp(a.str, b.str) == 0 : a.num == b.num;
        v.num = n->kind == N_EQ ? eq : !eq;
        break;
    default:
        return unknown;
    }
    return v;
}

static struct val eval(const struct rules_expr *x, int i, const struct rules_env *env)
{
    const struct node *n = &x->nodes[i];
    struct val v = { 1, 0, NULL, NULL };

    switch (n->kind) {
    case N_NUM:
    case N_BOOL:
        v.num = n->num;
        return v;
    case N_STR:
        v.str = x->strs + n->which;
        return v;
    case N_META:
        return eval_meta(n, env);
    case N_CHAN:
        v.ch = env->channel ? env->channel(env->ctx, x->strs + n->which) : NULL;
        v.known = v.ch != NULL;
        return v;
    case N_NOT:
        v = eval(x, n->a, env);
        v.num = !v.num;
        return v;
    case N_AND:
    case N_OR:
        return eval_logic(x, n, env);
    case N_FEAT:
    case N_BAND:
        v = eval_channel_fn(x, n, env);
        break;
    case N_NEG:
    case N_ABS:
        v = eval(x, n->a, env);
        v.num = n->kind == N_NEG ? -v.num : fabs(v.num);
        break;
    default:
        v = eval_binary(x, n, env);
        break;
    }
    if (!isfinite(v.num))
        v.known = 0;
    return v;
}

int rules_expr_eval(const struct rules_expr *x, const struct rules_env *env)
{
    struct val v = eval(x, x->root, env);

    return v.known && v.num != 0;
}
