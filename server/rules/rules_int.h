/* rules_int.h - internals shared by the rules module's files: its SQL
 * statements (listed once, in rules_sql.c) and small request helpers. */
#ifndef PRECURSOR_RULES_INT_H
#define PRECURSOR_RULES_INT_H

#include <libpq-fe.h>

#include "server/rules/rules.h"

enum rules_q {
    RQ_PENDING_FEATURES,    /* limit -> snapshot ids without a feature_jobs row */
    RQ_ENVELOPE,            /* id -> envelope (binary) */
    RQ_FEATURES_PUT,        /* snapshot, channel, 9 numbers, spectrum */
    RQ_JOB_DONE,            /* snapshot, error|NULL */
    RQ_CONTEXT,             /* after, upto, limit -> snapshot metadata x channel features */
    RQ_RULES_ENABLED,       /* -> id, expr, class, weight */
    RQ_RULE_GET,            /* id -> id, name, expr, class, weight, enabled, created_by, times */
    RQ_RULES_LIST,          /* -> the same, all rules */
    RQ_RULE_INSERT,         /* name, expr, class, weight, enabled, created_by -> id */
    RQ_RULE_UPDATE,         /* id, name, expr, class, weight, enabled -> id */
    RQ_RULE_DELETE,         /* id -> ids of snapshots it hit */
    RQ_RULE_HITS,           /* rule -> snapshot ids */
    RQ_RULE_HITS_SET,       /* rule, ids[] -> replaces the rule's hits */
    RQ_SNAPSHOT_HITS_SET,   /* snapshot, rule ids[] -> replaces the snapshot's hits */
    RQ_VOTE_INPUT,          /* ids[] -> snapshot, rule id, class, weight */
    RQ_DISPOSITION_CLASS,   /* ids[] -> snapshot, class */
    RQ_WEAK_PUT,            /* snapshot, class, source, confidence, votes json */
    RQ_WEAK_DELETE,         /* snapshot */
    RQ_WEAK_GET,            /* snapshot -> weak label row, human classes */
    RQ_STATS,               /* rule -> snapshots, hits, overlapping, conflicting, labeled, agreeing */
    RQ_CLASS_EXISTS,        /* class -> 1 */
    RQ_UNKNOWN_CHANNELS,    /* names[] -> names no snapshot has (empty when no features yet) */
    RQ_SNAPSHOT_FEATURES,   /* snapshot -> channel rows */
    RQ_COUNT
};

int rules_q(enum rules_q q, const char *const *values, const int *lengths,
            const int *formats, int binary, PGresult **out);

/* {1,2,3} for PostgreSQL's bigint[] text input, malloc'd; NULL on ENOMEM. */
char *rules_id_array(const int64_t *ids, size_t n);

#endif
