/* alerts.h - alert feedback: every triggered snapshot is an alert; operators
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

/* `precursor-server demo-history [--database-url URL] [--seed N]`
 * (alerts_demo.c): once per database, six months of synthetic alert history
 * marked as demo data.  Returns the process exit status. */
int alerts_demo_main(int argc, char **argv);

#endif
