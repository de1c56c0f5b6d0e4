/* features_int.h - what the features module's files share: its SQL and the
 * FFTW planner's lock. */
#ifndef PRECURSOR_FEATURES_INT_H
#define PRECURSOR_FEATURES_INT_H

#include <pthread.h>

#include "server/db/db.h"

/* Held while an FFTW plan is made or destroyed (features.c). */
extern pthread_mutex_t features__plan_lock;

enum features_q {
    FQ_PENDING,         /* limit, above, upto -> id of snapshots in (above, upto]
                         * without a feature_jobs row */
    FQ_MAX_ID,          /* -> the highest snapshot id there is (0: none) */
    FQ_PUT_MANY,        /* a pass's channel rows and job rows, as arrays */
    FQ_SNAPSHOT,        /* snapshot -> one row per channel (GET .../features) */
    FQ_COUNT
};

/* The module's statements, listed once (features_sql.c). */
extern const struct db_sql features__sql[FQ_COUNT];

#endif
