/* rules_expr.h - the rule (labeling function) expression language.
 *
 *   rule    := expr "=>" CLASS
 *   expr    := and ("or" and)*
 *   and     := not ("and" not)*
 *   not     := "not" not | cmp
 *   cmp     := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?
 *   sum     := prod (("+" | "-") prod)*
 *   prod    := unary (("*" | "/") unary)*
 *   unary   := "-" unary | primary
 *   primary := NUMBER | STRING | "true" | "false" | NAME | NAME "(" args ")" | "(" expr ")"
 *
 * Functions over a channel's features: rms, peak, crest, kurtosis, mean,
 * std, dominant_freq (each f(ch("name"))), band_energy(ch("name"), lo_hz,
 * hi_hz) (fraction of power in the band); abs, min, max over numbers.
 * Metadata names: equipment_type, site, device, detector (strings), score,
 * sample_rate (numbers).  Types are checked when the rule is compiled.
 *
 * Bounded by construction: no loops or user functions, at most
 * RULES_EXPR_MAX_LEN bytes, RULES_EXPR_MAX_NODES nodes and
 * RULES_EXPR_MAX_DEPTH nesting, so evaluation is linear in the rule's size.
 * A rule whose value is unknown for a snapshot (channel absent, metadata
 * missing, division by zero) abstains. */
#ifndef PRECURSOR_RULES_EXPR_H
#define PRECURSOR_RULES_EXPR_H

#include <stddef.h>

#include "server/features/features.h"

#define RULES_EXPR_MAX_LEN 1024
#define RULES_EXPR_MAX_NODES 256
#define RULES_EXPR_MAX_DEPTH 32
#define RULES_EXPR_MAX_CHANNELS 16
#define RULES_CLASS_MAX 64

struct rules_expr;

/* Where a compile failed: pos is a 0-based byte offset into the source,
 * msg reads "at position N: expected ..., found ...". */
struct rules_expr_error {
    int pos;
    char msg[200];
};

/* What a snapshot offers a rule.  Strings may be NULL (missing); channel
 * returns NULL for a channel the snapshot does not have. */
struct rules_env {
    const char *equipment_type, *site, *device, *detector;
    double score, sample_rate;
    const struct feat_channel *(*channel)(void *ctx, const char *name);
    void *ctx;
};

/* Compile src.  0 and *out (free with rules_expr_free), or -EINVAL with *e
 * filled, or -ENOMEM. */
int rules_expr_compile(const char *src, struct rules_expr **out, struct rules_expr_error *e);
void rules_expr_free(struct rules_expr *x);

/* The class after "=>". */
const char *rules_expr_class(const struct rules_expr *x);
/* The channel names the rule reads (string literals of ch()). */
size_t rules_expr_channels(const struct rules_expr *x, const char *const **names);

/* 1: the rule fires (votes for its class); 0: it abstains. */
int rules_expr_eval(const struct rules_expr *x, const struct rules_env *env);

#endif
