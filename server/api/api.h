/* api.h - HTTP handlers of the REST API, one per route in srv_routes.c.
 *
 * Each takes the parsed request and fills the response, or returns a negative
 * SRV_E* code that the http layer turns into the JSON error body.  They talk
 * to PostgreSQL only through db_* and to the envelope only through ingest_*. */
#ifndef PRECURSOR_API_H
#define PRECURSOR_API_H

#include "server/srv/srv.h"

int api_healthz(struct srv_request *rq, struct srv_response *rs);
int api_openapi(struct srv_request *rq, struct srv_response *rs);
int api_device_register(struct srv_request *rq, struct srv_response *rs);
int api_heartbeat_post(struct srv_request *rq, struct srv_response *rs);
int api_snapshots_list(struct srv_request *rq, struct srv_response *rs);
int api_snapshot_get(struct srv_request *rq, struct srv_response *rs);
int api_snapshot_raw(struct srv_request *rq, struct srv_response *rs);
int api_devices_list(struct srv_request *rq, struct srv_response *rs);
int api_device_get(struct srv_request *rq, struct srv_response *rs);

#endif
