/* replay.c - `precursor-agent replay`: the on-device path over a file, offline.
 *
 * Contract (issue 3 item 10, relied on by outside scorers): read FILE in any
 * source format (CSV default, NAB `timestamp,value` included), run exactly the
 * pipeline `run` uses as fast as possible, write OUT.csv with the header
 * `timestamp,anomaly_score,trigger` and one row per input row (CSV
 * timestamps are written back as they were in the input; binary input gets
 * unix seconds per frame), and put snapshots into --spool if given.  No
 * network is touched. */
#include "agent/command/command.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/fleet/keys.h"
#include "agent/model/agent_model.h"
#include "agent/spool/spool.h"

int agent_replay(const struct agent_config *c, atomic_int *stop)
{
    struct keys keys;
    struct spool *sp = NULL;
    struct source *src = NULL;
    struct pipeline *p = NULL;
    struct agent_model_slot *ms = NULL;
    struct pipeline_config pc;
    struct pipeline_stats st;
    FILE *scores = NULL;
    char err[512];
    int status = 1, rc;

    memset(&keys, 0, sizeof(keys));
    if (c->spool_dir[0]) {
        /* Snapshots need a signing key: the device's if one is named, else a
         * throwaway pair (the envelopes are for local inspection). */
        if (c->key_dir[0]) {
            if (keys_load_or_create(c->key_dir, &keys, err, sizeof(err)) != 0) {
                fprintf(stderr, "replay: keys: %s\n", err);
                return 1;
            }
        } else {
            if (sodium_init() < 0) {
                fprintf(stderr, "replay: libsodium failed to initialise\n");
                return 1;
            }
            crypto_sign_keypair(keys.pk, keys.sk);
        }
        rc = spool_open(c->spool_dir, 0, &sp);
        if (rc != 0) {
            fprintf(stderr, "replay: spool %s: %s\n", c->spool_dir, spool_strerror(rc));
            goto out;
        }
    }
    scores = fopen(c->scores, "w");
    if (scores == NULL) {
        fprintf(stderr, "replay: scores %s: %s\n", c->scores, strerror(errno));
        goto out;
    }
    /* Binary input starts at unix time 0: replay output must not depend on
     * the clock. */
    if (agent_open_source(c, NULL, 0, &src, err, sizeof(err)) != 0) {
        fprintf(stderr, "replay: %s\n", err);
        goto out;
    }
    agent_pipeline_config(c, &pc);
    pc.device_id = c->device_id[0] ? c->device_id : "replay";
    pc.on_trigger = pc.alarm_fifo = pc.alarm_socket = NULL;
    pc.scores = scores;
    pc.block_frames = 4096;
    if (sp != NULL) {
        pc.secret_key = keys.sk;
        pc.sink = agent_spool_sink(sp);
    }
    if (agent_model_setup(c, src, &pc, &ms, err, sizeof(err)) != 0) {
        fprintf(stderr, "replay: %s\n", err);
        goto out;
    }
    if (pipeline_init(&pc, src, &p, err, sizeof(err)) != 0) {
        fprintf(stderr, "replay: %s\n", err);
        goto out;
    }
    rc = pipeline_run(p, stop);
    if (rc != 0) {
        fprintf(stderr, "replay: %s\n", rc == PIPELINE_EIO ? "writing scores failed"
                                                          : pipeline_err(p));
        goto out;
    }
    pipeline_get_stats(p, &st);
    fprintf(stderr, "replay: %llu rows, %llu triggers, %llu snapshots%s\n",
            (unsigned long long)st.frames, (unsigned long long)st.triggers,
            (unsigned long long)st.snapshots, sp != NULL ? " spooled" : "");
    status = st.sink_errors == 0 ? 0 : 1;
out:
    pipeline_free(p);
    agent_model_slot_free(ms);
    if (src != NULL)
        src->close(src);
    if (scores != NULL && fclose(scores) != 0 && status == 0) {
        fprintf(stderr, "replay: scores %s: %s\n", c->scores, strerror(errno));
        status = 1;
    }
    if (sp != NULL)
        spool_close(sp);
    keys_wipe(&keys);
    return status;
}
