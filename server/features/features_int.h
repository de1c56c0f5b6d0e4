/* features_int.h - what the features module's files share: its SQL and the
 * FFTW planner's lock. */
#ifndef PRECURSOR_FEATURES_INT_H
#define PRECURSOR_FEATURES_INT_H

#include <pthread.h>

#include "server/db/db.h"

/* Held while an FFTW plan is made or destroyed (features.c). */
extern pthread_mutex_t features__plan_lock;

enum features_q {
    FQ_PENDING,         /* limit -> id of snapshots without a feature_jobs row */
    FQ_PUT,             /* snapshot, channel, 8 numbers, spectrum real[] */
    FQ_JOB_DONE,        /* snapshot, error|NULL */
    FQ_SNAPSHOT,        /* snapshot -> one row per channel (GET .../features) */
    FQ_COUNT
};

/* The module's statements, listed once (features_sql.c). */
extern const struct db_sql features__sql[FQ_COUNT];

#endif
