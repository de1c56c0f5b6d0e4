/* rules.h - labeling functions over snapshot features: storage, evaluation
 * over every stored snapshot and every new one, per-rule statistics and the
 * weighted vote into weak labels.
 *
 * Ingest never waits for any of this: the features worker
 * (server/features/) computes the features of each new snapshot and then
 * calls rules_eval_snapshots, which evaluates every enabled rule on it and
 * re-votes.  A new or changed rule is evaluated over all stored snapshots
 * before its handler answers. */
#ifndef PRECURSOR_RULES_H
#define PRECURSOR_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "server/srv/srv.h"

/* One rule's vote on one snapshot. */
struct rules_vote_in {
    int64_t rule_id;
    const char *cls;        /* borrowed */
    double weight;          /* > 0 */
};

/* What the vote decided.  source: "rule" (one rule voted), "vote" (several
 * rules, weighted majority), "disposition" (an operator's disposition named
 * the class; it outranks rules).  has_label 0 when nobody voted or the top
 * classes tie. */
struct rules_vote_out {
    int has_label;
    char cls[65];
    const char *source;
    double confidence;      /* winning weight / total weight */
};

/* Weighted majority over n votes; disposition_cls (may be NULL) wins
 * outright.  Pure. */
void rules_vote(const struct rules_vote_in *v, size_t n, const char *disposition_cls,
                struct rules_vote_out *out);

/* Statistics of one rule as fractions of all snapshots, the demo history
 * counted as demo says (srv_query_demo's mode: "0" without it, "1" with it,
 * "2" it alone). */
struct rules_stats {
    int64_t snapshots, hits, overlapping, conflicting, labeled, agreeing;
    double coverage, overlap, conflict;
    double accuracy;        /* NaN when no hit has a human label */
};
int rules_stats_get(int64_t rule_id, const char *demo, struct rules_stats *out);

/* A rule's figures on one equipment type, over the snapshots it applies to
 * (those with features on every channel it reads), with the counts behind
 * them.  accuracy is NaN, and refused says why, when fewer than
 * RULES_MIN_LABELED of its hits there carry a human label; acc_lo/acc_hi are
 * the 95% Wilson interval otherwise. */
#define RULES_MIN_LABELED 5
#define RULES_MAX_TYPES 64
struct rules_type_stats {
    char equipment_type[65];        /* "" for devices without one */
    int64_t snapshots, hits, labeled, agreeing;
    double coverage;                /* hits / snapshots */
    double accuracy, acc_lo, acc_hi;
    char refused[96];
};
/* Up to cap types into out, *n written.  0, SRV_ENOTFOUND or SRV_E*. */
int rules_stats_by_type(int64_t rule_id, const char *demo, struct rules_type_stats *out, size_t cap,
                        size_t *n);

/* Evaluate rule_id over every snapshot that has features, replace its hits
 * and re-vote the snapshots whose hits changed.  0 or SRV_E*. */
int rules_eval_rule(int64_t rule_id);
/* Evaluate every enabled rule on one snapshot and re-vote it. */
int rules_eval_snapshot(int64_t snapshot_id);
/* The same for several snapshots in a few statements (a features_after_fn
 * for the features worker); ids in any order. */
int rules_eval_snapshots(const int64_t *ids, size_t n);
/* Recompute the weak labels of these snapshots from their hits and
 * dispositions. */
int rules_revote(const int64_t *ids, size_t n);

/* HTTP handlers. */
int rules_api_create(struct srv_request *rq, struct srv_response *rs);
int rules_api_list(struct srv_request *rq, struct srv_response *rs);
int rules_api_get(struct srv_request *rq, struct srv_response *rs);
int rules_api_update(struct srv_request *rq, struct srv_response *rs);
int rules_api_delete(struct srv_request *rq, struct srv_response *rs);
int rules_api_validate(struct srv_request *rq, struct srv_response *rs);
int rules_api_weak_label(struct srv_request *rq, struct srv_response *rs);

#endif
