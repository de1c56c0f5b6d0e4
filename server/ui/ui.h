/* ui.h - serves the labeling UI's static files (labeling-ui/dist when it was
 * built, else labeling-ui/ itself) at / and /<file>.  Only flat file names
 * of a known type are served, so no request can leave the folder. */
#ifndef PRECURSOR_UI_H
#define PRECURSOR_UI_H

#include <stddef.h>

#include "server/srv/srv.h"

#define UI_FILE_MAX (8u << 20)

/* 1 when name is a servable file name: [A-Za-z0-9._-]{1,128}, not starting
 * with '.', with an extension ui_content_type knows. */
int ui_name_ok(const char *name);
/* Content type for a file name by extension, or NULL. */
const char *ui_content_type(const char *name);

/* Length of a file's ETag: 32 hex digits in quotes. */
#define UI_ETAG_LEN 34

/* 1 when an If-None-Match header's value names etag (or is "*"). */
int ui_etag_matches(const char *if_none_match, const char *etag);

int ui_index(struct srv_request *rq, struct srv_response *rs);
int ui_file(struct srv_request *rq, struct srv_response *rs);

#endif
