/* models_int.h - what the models module's files share: the statements it
 * owns (listed once, in models.c) and marking a model failed. */
#ifndef PRECURSOR_MODELS_INT_H
#define PRECURSOR_MODELS_INT_H

#include <libpq-fe.h>
#include <stdint.h>

#include "server/models/models.h"

enum models_stmt {
    M_INSERT,       /* dataset, version, kind, by -> id (no row: no such version) */
    M_GET,          /* id -> the model's row */
    M_CLAIM,        /* id -> dataset_id, version, kind when it was queued */
    M_DONE,         /* id, metrics, test_vector, blob (binary), header */
    M_FAILED,       /* id, error */
    M_COUNT
};

/* Run one of the statements above (db_exec_own on its table entry). */
int models__exec(enum models_stmt s, const char *const *vals, const int *lens, const int *fmts,
                 int binary, PGresult **out);

/* Record why model id will not be trained (best effort). */
void models__mark_failed(int64_t id, const char *why);

#endif
