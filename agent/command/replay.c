/* replay.c - `precursor-agent replay`: the on-device path over a file, offline.
 *
 * Outside scorers rely on this contract: read FILE in any source format (CSV
 * default, NAB `timestamp,value` included), run exactly the pipeline `run`
 * uses as fast as possible, write OUT.csv with the header
 * `timestamp,anomaly_score,trigger` (with --trigger-score a 4th column,
 * `trigger_score`) and one row per input row (CSV
 * timestamps are written back as they were in the input; binary input gets
 * unix seconds per frame), and put snapshots into --spool if given.  No
 * network is touched.
 *
 * --triggers OUT.csv is for the engineer commissioning detectors on a
 * plant's history: every trigger with the detector and channel that fired,
 * and on stderr the triggers per hour of stream time and the channels that
 * fired most (the bad actors to look at, or to declare --manipulated). */
#include "agent/command/command.h"
#include "agent/command/command_int.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/spool/spool.h"

/* Snapshots need a signing key: the device's if one is named, else a
 * throwaway pair (the envelopes are for local inspection). */
static int replay_keys(const struct agent_config *c, struct keys *keys)
{
    char err[512];

    if (c->key_dir[0]) {
        if (keys_load_or_create(c->key_dir, keys, err, sizeof(err)) != 0) {
            fprintf(stderr, "replay: keys: %s\n", err);
            return -1;
        }
        return 0;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "replay: libsodium failed to initialise\n");
        return -1;
    }
    crypto_sign_keypair(keys->pk, keys->sk);
    return 0;
}

/* The (detector, channel) pairs that fired most, at most `most` of them. */
static void print_top_triggers(struct pipeline *p, const struct source *src, unsigned most)
{
    static const uint8_t detectors[] = { DETECT_LEVEL, DETECT_FEATURE, DETECT_MODEL, DETECT_MULTI,
                                         DETECT_CONTEXT, DETECT_RANGE, DETECT_SEQUENCE };
    uint8_t done[sizeof detectors][WIRE_MAX_CHANNELS];
    unsigned shown = 0, left = 0;

    memset(done, 0, sizeof done);
    fprintf(stderr, "replay: triggers by detector and channel, most first:");
    for (;;) {
        uint64_t best = 0, n;
        unsigned bd = 0, bc = 0;

        for (unsigned d = 0; d < sizeof detectors; d++)
            for (unsigned ch = 0; ch < src->channels; ch++)
                if (!done[d][ch] && (n = pipeline_trigger_count(p, detectors[d], ch)) > best) {
                    best = n;
                    bd = d;
                    bc = ch;
                }
        if (best == 0)
            break;
        done[bd][bc] = 1;
        if (shown == most) {
            left++;
            continue;
        }
        if (src->chan[bc].name[0])
            fprintf(stderr, "%s %s %s: %llu", shown ? "," : "", detect_name(detectors[bd]),
                    src->chan[bc].name, (unsigned long long)best);
        else
            fprintf(stderr, "%s %s channel %u: %llu", shown ? "," : "", detect_name(detectors[bd]),
                    bc, (unsigned long long)best);
        shown++;
    }
    if (left)
        fprintf(stderr, " and %u more", left);
    fputc('\n', stderr);
}

int command_replay(const struct agent_config *c, atomic_int *stop)
{
    struct command_parts cp;
    struct pipeline_stats st;
    FILE *scores = NULL, *triggers = NULL;
    char err[512];
    int status = 1, rc;

    memset(&cp, 0, sizeof(cp));
    if (c->spool_dir[0]) {
        if (replay_keys(c, &cp.keys) != 0)
            return 1;
        rc = spool_open(c->spool_dir, 0, &cp.sp);
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
    if (c->triggers[0]) {
        triggers = fopen(c->triggers, "w");
        if (triggers == NULL) {
            fprintf(stderr, "replay: triggers %s: %s\n", c->triggers, strerror(errno));
            goto out;
        }
    }
    /* Binary input starts at unix time 0: replay output must not depend on
     * the clock. */
    if (command_open_source(c, NULL, 0, &cp.src, err, sizeof(err)) != 0) {
        fprintf(stderr, "replay: %s\n", err);
        goto out;
    }
    command_pipeline_config(c, &cp.pc);
    cp.pc.device_id = c->device_id[0] ? c->device_id : "replay";
    cp.pc.on_trigger = cp.pc.alarm_fifo = cp.pc.alarm_socket = NULL;
    cp.pc.scores = scores;
    cp.pc.scores_trigger = c->trigger_score;
    cp.pc.triggers = triggers;
    cp.pc.block_frames = 4096;
    if (cp.sp != NULL) {
        cp.pc.secret_key = cp.keys.sk;
        cp.pc.sink = command_spool_sink(cp.sp);
    }
    if (command_parts_start(&cp, c, 0, err, sizeof(err)) != 0) {
        fprintf(stderr, "replay: %s\n", err);
        goto out;
    }
    rc = pipeline_run(cp.p, stop);
    if (rc != 0) {
        fprintf(stderr, "replay: %s\n", rc == PIPELINE_EIO ? "writing scores or triggers failed"
                                                          : pipeline_err(cp.p));
        goto out;
    }
    pipeline_get_stats(cp.p, &st);
    fprintf(stderr, "replay: %llu rows, %llu triggers, %llu snapshots%s\n",
            (unsigned long long)st.frames, (unsigned long long)st.triggers,
            (unsigned long long)st.snapshots,
            cp.sp != NULL ? " spooled" : " captured (kept nowhere: --spool DIR keeps them)");
    if (triggers != NULL) {
        double hours = (double)(st.t_last_us - st.t_first_us) / 3.6e9;

        if (hours > 0)
            fprintf(stderr, "replay: %.2f h of stream time, %.2f triggers per hour\n", hours,
                    (double)st.triggers / hours);
        if (st.triggers > 0)
            print_top_triggers(cp.p, cp.src, 8);
    }
    status = st.sink_errors == 0 ? 0 : 1;
out:
    command_parts_release(&cp);
    if (scores != NULL && fclose(scores) != 0 && status == 0) {
        fprintf(stderr, "replay: scores %s: %s\n", c->scores, strerror(errno));
        status = 1;
    }
    if (triggers != NULL && fclose(triggers) != 0 && status == 0) {
        fprintf(stderr, "replay: triggers %s: %s\n", c->triggers, strerror(errno));
        status = 1;
    }
    return status;
}
