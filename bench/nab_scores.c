/* nab_scores.c - NAB scores through the agent's own CSV source and detectors.
 *
 *   bench-nab_scores IN.csv OUT.csv [key=value ...]
 *
 * Writes "timestamp,anomaly_score,trigger,trigger_score", one row per input
 * row, the same file `precursor-agent replay --trigger-score` writes; used to
 * tune the detectors before replay existed and to cross-check it.  key=value
 * are detect_opts keys.  nab_score.py reads the column named anomaly_score;
 * to score the trigger's own score, rename the 4th column to that. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/core/detect.h"
#include "agent/config/detect_opts.h"
#include "agent/source/source.h"
#include "bench/bench.h"

#define BLOCK 256

int main(int argc, char **argv)
{
    struct detect_config cfg;
    struct source *src;
    struct detect *d;
    static float samples[BLOCK * WIRE_MAX_CHANNELS];
    static int64_t t_us[BLOCK];
    void *arena;
    FILE *out;
    size_t n, i;
    int rc, a;

    if (argc < 3) {
        fprintf(stderr, "usage: %s IN.csv OUT.csv [key=value ...]\n", argv[0]);
        return 2;
    }
    detect_config_defaults(&cfg);
    for (a = 3; a < argc; a++) {
        char key[64];
        const char *value;

        if (bench_key_value(argv[a], key, sizeof(key), &value) != 0 ||
            detect_opts_set(&cfg, key, value)) {
            fprintf(stderr, "bad option %s\n", argv[a]);
            return 2;
        }
    }
    if (source_csv_open(argv[1], 0, &src)) {
        fprintf(stderr, "%s\n", source_open_error());
        return 1;
    }
    arena = malloc(detect_arena_size(&cfg, src->channels));
    d = arena ? detect_init(&cfg, src->channels, src->rate, arena,
                            detect_arena_size(&cfg, src->channels)) : NULL;
    out = fopen(argv[2], "w");
    if (!d || !out) {
        fprintf(stderr, "cannot start\n");
        return 1;
    }
    fprintf(out, "timestamp,anomaly_score,trigger,trigger_score\n");
    while ((rc = src->next(src, samples, t_us, BLOCK, &n)) == 0) {
        for (i = 0; i < n; i++) {
            struct detect_result r;

            detect_step(d, samples + i * src->channels, t_us[i], &r);
            fprintf(out, "%s,%.6f,%d,%.6f\n", src->ts_text(src, i), (double)r.score, r.triggered,
                    (double)r.trigger_score);
        }
    }
    if (rc < 0)
        fprintf(stderr, "%s\n", src->err);
    fclose(out);
    src->close(src);
    free(arena);
    return rc < 0;
}
