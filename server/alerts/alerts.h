/* alerts.h - alert feedback: every triggered snapshot is an alert (an
 * agent's scheduled baseline, detector "schedule", is not); operators
 * acknowledge it and record its disposition (action_taken, no_fault_found,
 * not_actionable, duplicate), a work-order id and the outcome.  A
 * disposition that names a class (or no_fault_found, which means "normal")
 * is a label source: the snapshot's weak label is re-voted with it. */
#ifndef PRECURSOR_ALERTS_H
#define PRECURSOR_ALERTS_H

#include "server/srv/srv.h"

/* "action_taken" ... -> 1; anything else 0. */
int alerts_valid_disposition(const char *d);

int alerts_api_ack(struct srv_request *rq, struct srv_response *rs);
int alerts_api_disposition(struct srv_request *rq, struct srv_response *rs);
int alerts_api_list(struct srv_request *rq, struct srv_response *rs);

/* `precursor-server demo-history` (alerts_demo.c): once per database, six
 * months of synthetic alert history marked as demo data, into the database
 * at database_url.  The same seed gives the same alert times and
 * dispositions; the generator starts from seed * 2654435761 + 1, and the
 * default seed makes that the usual xorshift starting state
 * (88172645463325252).  0, or a negative code (message on stderr). */
#define ALERTS_DEMO_SEED 14329002580215659571ull
int alerts_demo_run(const char *database_url, uint64_t seed);

#endif
