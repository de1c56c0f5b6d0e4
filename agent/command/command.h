/* agent.h - the agent's two commands: `run` (device) and `replay` (offline).
 *
 * Both build the same pipeline (agent/pipeline/pipeline.h) from a struct
 * agent_config; run adds keys, registration, the spool and the uploader
 * thread, replay adds the scores file and keeps off the network. */
#ifndef PRECURSOR_AGENT_H
#define PRECURSOR_AGENT_H

#include <stdatomic.h>
#include <stddef.h>

#include "agent/config/config.h"
#include "agent/pipeline/pipeline.h"
#include "agent/source/source.h"

struct spool;

/* Exit status for main(): 0 ok, 1 runtime failure, 2 usage. */
int agent_run(const struct agent_config *c, atomic_int *stop);
int agent_replay(const struct agent_config *c, atomic_int *stop);

/* Open the configured source.  fault_log is for the simulator (may be NULL);
 * start_us is the first frame's time for the simulator (0 = now) and for
 * binary input (taken as is); CSV carries its own. */
int agent_open_source(const struct agent_config *c, FILE *fault_log, int64_t start_us,
                      struct source **out, char *err, size_t errlen);
/* Fill a pipeline config from the agent's (strings borrowed from c). */
void agent_pipeline_config(const struct agent_config *c, struct pipeline_config *pc);
/* A sink that puts snapshots into sp; priority follows the score. */
struct pipeline_sink agent_spool_sink(struct spool *sp);

#endif
