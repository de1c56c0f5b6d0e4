/* api.h - HTTP handlers of the core REST API: health, the OpenAPI document,
 * device registration and heartbeats, snapshots and devices as the ML team
 * reads them (routes in server/routes.c).
 *
 * Each takes the parsed request and fills the response, or returns a negative
 * SRV_E* code that the http layer turns into the JSON error body.  Device
 * keys come from server/fleet; SQL from the module's own table. */
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
