/* detect_opts.h - detector settings by name, for the config file and flags.
 *
 * Kept out of agent/core/ because it uses stdio; the core stays portable. */
#ifndef PRECURSOR_DETECT_OPTS_H
#define PRECURSOR_DETECT_OPTS_H

#include <stdio.h>

#include "agent/core/detect.h"

/* Set one key of c from its text: profile, threshold, rearm, hold_off_s,
 * max_per_hour, level_alpha, window, warmup_s, lik_short, lik_long,
 * quiet_frames, novelty_half, detectors (comma list of level, feature,
 * model, multi, context, range, sequence).  "auto" is taken by profile,
 * hold_off_s, max_per_hour, window and detectors.  Returns 0, -1 for an
 * unknown key, -2 for a bad value (c is then unchanged).  Cross-field checks
 * (rearm <= threshold) are detect_init's and agent_config_check's. */
int detect_opts_set(struct detect_config *c, const char *key, const char *value);

/* What key takes, for an error message ("a number from 1e-06 to 1"), in buf
 * or a static text; NULL for a key detect_opts_set does not know. */
const char *detect_opts_want(const char *key, char *buf, size_t len);

/* Resolve a comma list of manipulated channels (names, or 0-based indices
 * where no channel has that name) against the stream's channel names
 * (names may be NULL: indices only) into c->manipulated.  Returns 0 (an
 * empty list clears it) or -2 with err saying which entry and why (unknown
 * name, index beyond the stream, a repeat, every channel declared); c is
 * then unchanged. */
int detect_opts_manipulated(struct detect_config *c, const char *list,
                            const char *const *names, unsigned channels,
                            char *err, size_t errlen);

/* One line per key with its shipped default, for --help. */
void detect_opts_help(FILE *f);

#endif
