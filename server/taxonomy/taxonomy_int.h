/* taxonomy_int.h - what taxonomy.c and taxonomy_kin.c share: the optional
 * kinematics of a type or an asset (shaft speed, bearing geometry), read
 * from a POST body before anything is written and stored after the row. */
#ifndef PRECURSOR_TAXONOMY_INT_H
#define PRECURSOR_TAXONOMY_INT_H

#include <jansson.h>

#include "server/srv/srv.h"

/* Parameters of the kinematics update, as text: shaft_hz, balls, ball_mm,
 * pitch_mm, contact_deg and the bearing's designation in the table of
 * bearings (NULL: explicit geometry); given says which of shaft and bearing
 * the body named (a null in the body clears it). */
struct taxonomy_kin {
    char txt[5][32];
    char designation[65];
    const char *v[6];
    int shaft_given, bearing_given;
};

/* 0 with *k filled (nothing given is fine), or SRV_EBADREQ with the
 * message set.  bearing_designation (a designation of the table of
 * bearings) stands for the bearing object: one or the other. */
int taxonomy__kin_parse(const json_t *body, struct taxonomy_kin *k, struct srv_response *rs);
/* The body keys taxonomy__kin_parse reads, for a known-keys list: the
 * bearing's geometry is a fixed key set, so its members are checked too. */
#define TAXONOMY_KIN_FIELDS "shaft_hz", "bearing", "bearing.balls", "bearing.ball_mm", \
    "bearing.pitch_mm", "bearing.contact_deg", "bearing_designation"

/* Store what *k gives on equipment type or asset key (is_asset). */
int taxonomy__kin_store(const struct taxonomy_kin *k, int is_asset, const char *key);

/* The geometry of the bearing designation (case-insensitive) into k's
 * bearing fields (taxonomy_bearings.c); SRV_ENOTFOUND when the table has
 * no such bearing. */
int taxonomy__bearing_lookup(const char *designation, struct taxonomy_kin *k);

#endif
