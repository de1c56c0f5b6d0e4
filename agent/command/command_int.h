/* command_int.h - what `run` and `replay` share: opening the configured
 * source, the pipeline configuration, the spool as the pipeline's sink, and
 * the parts both set up and release in the same order. */
#ifndef PRECURSOR_COMMAND_INT_H
#define PRECURSOR_COMMAND_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "agent/config/config.h"
#include "agent/fleet/keys.h"
#include "agent/pipeline/pipeline.h"
#include "agent/source/source.h"

struct spool;
struct agent_model_slot;

/* Everything a command owns while its pipeline runs; zeroed = nothing yet. */
struct command_parts {
    struct keys keys;
    struct spool *sp;                   /* NULL: snapshots are only counted */
    struct source *src;
    struct agent_model_slot *ms;        /* NULL: no model configured */
    struct pipeline_config pc;
    struct pipeline *p;
};

/* Open the configured source.  fault_log is for the simulator (may be NULL);
 * start_us is the first frame's time for the simulator (0 = now) and for
 * binary input (taken as is); CSV carries its own. */
int command_open_source(const struct agent_config *c, FILE *fault_log, int64_t start_us,
                        struct source **out, char *err, size_t errlen);
/* Fill a pipeline config from the agent's (strings borrowed from c). */
void command_pipeline_config(const struct agent_config *c, struct pipeline_config *pc);
/* A sink that puts snapshots into sp; priority follows the score. */
struct pipeline_sink command_spool_sink(struct spool *sp);
/* With cp->src open and cp->pc filled: set up the model (runtime = empty
 * slot a config poll fills later, see agent_model_setup_runtime) and the
 * pipeline.  On failure err says why. */
int command_parts_start(struct command_parts *cp, const struct agent_config *c, int runtime,
                        char *err, size_t errlen);
/* Frees what cp holds, pipeline first (it borrows the rest); wipes the keys. */
void command_parts_release(struct command_parts *cp);

#endif
