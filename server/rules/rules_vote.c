/* rules_vote.c - the weighted majority vote that turns rule hits into one
 * weak label per snapshot, keeping where it came from.  Ties abstain: a
 * coin flip between two classes would be a label nobody can defend. */
#include <stdio.h>
#include <string.h>

#include "server/rules/rules.h"

void rules_vote(const struct rules_vote_in *v, size_t n, const char *disposition_cls,
                struct rules_vote_out *out)
{
    double total = 0, best = 0;
    const char *best_cls = NULL;
    int tie = 0;
    size_t i, j, voters = 0;

    memset(out, 0, sizeof *out);
    if (disposition_cls && *disposition_cls) {
        out->has_label = 1;
        snprintf(out->cls, sizeof out->cls, "%s", disposition_cls);
        out->source = "disposition";
        out->confidence = 1;
        return;
    }
    for (i = 0; i < n; i++)
        if (v[i].weight > 0) {
            total += v[i].weight;
            voters++;
        }
    /* n is small (the rules that fired): quadratic is fine and needs no map */
    for (i = 0; i < n; i++) {
        double w = 0;
        int seen = 0;

        if (!(v[i].weight > 0))
            continue;
        for (j = 0; j < i; j++)
            seen |= v[j].weight > 0 && strcmp(v[j].cls, v[i].cls) == 0;
        if (seen)
            continue;
        for (j = i; j < n; j++)
            if (v[j].weight > 0 && strcmp(v[j].cls, v[i].cls) == 0)
                w += v[j].weight;
        if (w > best) {
            best = w;
            best_cls = v[i].cls;
            tie = 0;
        } else if (w == best) {
            tie = 1;
        }
    }
    if (!best_cls || tie)
        return;
    out->has_label = 1;
    snprintf(out->cls, sizeof out->cls, "%s", best_cls);
    out->source = voters == 1 ? "rule" : "vote";
    out->confidence = best / total;
}
