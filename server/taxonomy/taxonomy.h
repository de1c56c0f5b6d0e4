/* taxonomy.h - the equipment taxonomy: a tree of equipment types, failure
 * modes per type (mode, mechanism, cause: ISO 14224 in spirit) each recorded
 * as a label class, assets of a type, and devices assigned to assets.
 *
 * Label classes live in label_classes (the labeling module's table, which
 * GET /api/v1/classes lists); a failure mode adds its class there with the
 * type it belongs to, so classes come from the taxonomy.  Classes usable on
 * a type are those of the type, its ancestors and its parent's subtree
 * (SQL function taxonomy_related_types), so siblings share them.  The tree
 * is kept a tree by a trigger: a cycle is refused with 400. */
#ifndef PRECURSOR_TAXONOMY_H
#define PRECURSOR_TAXONOMY_H

#include "server/srv/srv.h"

int taxonomy_api_get(struct srv_request *rq, struct srv_response *rs);
int taxonomy_api_type_put(struct srv_request *rq, struct srv_response *rs);
int taxonomy_api_mode_create(struct srv_request *rq, struct srv_response *rs);
int taxonomy_api_asset_put(struct srv_request *rq, struct srv_response *rs);
int taxonomy_api_device_asset(struct srv_request *rq, struct srv_response *rs);
int taxonomy_api_type_classes(struct srv_request *rq, struct srv_response *rs);
/* POST /api/v1/taxonomy/classes: a label class without a failure mode
 * (taxonomy_kin.c, with the types' and assets' shaft speed and bearing). */
int taxonomy_api_class_create(struct srv_request *rq, struct srv_response *rs);
/* GET /api/v1/bearings[?q=]: the table of common bearings with their defect
 * frequencies as orders of shaft speed (taxonomy_bearings.c). */
int taxonomy_api_bearings(struct srv_request *rq, struct srv_response *rs);

#endif
