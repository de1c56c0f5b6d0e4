/* rules_int.h - internals shared by the rules module's files: its SQL
 * statements (listed once, in rules_sql.c), lists of ids, and the paged
 * walk over snapshots with features that evaluation is built on. */
#ifndef PRECURSOR_RULES_INT_H
#define PRECURSOR_RULES_INT_H

#include <libpq-fe.h>

#include "server/rules/rules.h"

enum rules_q {
    RQ_CONTEXT,             /* after, upto, limit -> snapshot metadata x channel features */
    RQ_RULES_ENABLED,       /* -> id, expr, class, weight */
    RQ_RULE_GET,            /* id -> id, name, expr, class, weight, enabled, created_by, times */
    RQ_RULES_LIST,          /* -> the same, all rules */
    RQ_RULE_INSERT,         /* name, expr, class, weight, enabled, created_by -> id */
    RQ_RULE_UPDATE,         /* id, name, expr, class, weight, enabled -> id */
    RQ_RULE_DELETE,         /* id -> deleted (0|1) x snapshot_id it hit (NULL: none) */
    RQ_RULE_HITS,           /* rule -> snapshot_id */
    RQ_RULE_HITS_SET,       /* rule, ids[] -> replaces the rule's hits */
    RQ_VOTE_INPUT,          /* ids[] -> snapshot_id, rule_id, class, weight */
    RQ_DISPOSITION_CLASS,   /* ids[] -> snapshot_id, class */
    RQ_WEAK_PUT,            /* snapshot, class, source, confidence, votes json */
    RQ_SNAPSHOTS_HITS_SET,  /* snapshots[], pairs' snapshots[], pairs' rules[] */
    RQ_WEAK_DELETE_MANY,    /* snapshots[] */
    RQ_WEAK_GET,            /* snapshot -> found, class, source, confidence, votes, human */
    RQ_STATS,               /* rule -> snapshots, hits, overlapping, conflicting, labeled, agreeing */
    RQ_UNKNOWN_CHANNELS,    /* names[] -> channel no snapshot has (none when no features yet) */
    RQ_STATS_BY_TYPE,       /* rule, channels[] -> equipment_type, snapshots, hits, labeled, agreeing */
    RQ_COUNT
};

/* Run statement q (db_exec_own; out may be NULL). */
int rules_q(enum rules_q q, const char *const *values, PGresult **out);
/* The same with one bigint parameter. */
int rules_q_id(enum rules_q q, int64_t id, PGresult **out);

/* A growable list of ids. */
struct rules_ids {
    int64_t *v;
    size_t n, cap;
};
int rules_ids_push(struct rules_ids *ids, int64_t id);
/* Append column col of every row of r (NULLs skipped). */
int rules_ids_from(struct rules_ids *ids, const PGresult *r, const char *col);
void rules_ids_free(struct rules_ids *ids);

/* {1,2,3} for PostgreSQL's bigint[] input, malloc'd; NULL on ENOMEM. */
char *rules_id_array(const int64_t *ids, size_t n);

#endif
