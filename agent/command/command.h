/* command.h - the agent's two commands: `run` (device) and `replay` (offline).
 *
 * Both build the same pipeline (agent/pipeline/pipeline.h) from a struct
 * agent_config; run adds keys, registration, the spool and the uploader
 * thread, replay adds the scores file and keeps off the network. */
#ifndef PRECURSOR_COMMAND_H
#define PRECURSOR_COMMAND_H

#include <stdatomic.h>

#include "agent/config/config.h"

/* Exit status for main(): 0 ok, 1 runtime failure, 2 usage. */
int command_run(const struct agent_config *c, atomic_int *stop);
int command_replay(const struct agent_config *c, atomic_int *stop);

#endif
