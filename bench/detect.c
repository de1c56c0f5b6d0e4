/* detect.c (bench) - sample-path cost: ring_push + detect_step per frame.
 *
 * 8 channels at 10 kHz, 60 s of f32 samples generated into memory (noisy
 * vibration with a few bursts).  Baseline, in the same run: a plain pass
 * over the same input that sums the samples, and detect_step without the
 * multivariate detector (its cost is the difference).  Prints the median of
 * 5 runs as
 *   detect <name> ns_per_sample_channel=<x>
 * and the ratio of the sample path to the plain read. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <math.h>

#include "agent/core/detect.h"
#include "agent/core/detect_multi.h"
#include "agent/core/ring.h"

#define CH 8
#define RATE 10000
#define SECONDS 60
#define FRAMES ((size_t)RATE * SECONDS)
#define RUNS 5

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median(double *v)
{
    qsort(v, RUNS, sizeof(*v), cmp_d);
    return v[RUNS / 2];
}

int main(void)
{
    float *in = malloc(sizeof(float) * FRAMES * CH);
    struct detect_config proc, proc_no_ctx, proc_seq;
    struct detect_config cfg, no_multi, no_range;
    size_t dlen, rlen, i;
    void *darena, *rarena;
    double t_plain[RUNS], t_path[RUNS], t_detect[RUNS], t_no_multi[RUNS], t_no_range[RUNS];
    double t_proc[RUNS], t_proc_no_ctx[RUNS], t_proc_seq[RUNS];
    volatile float sink = 0;
    uint64_t seed = 1;
    unsigned long triggers = 0;
    struct ring ring;
    int run;

    if (!in)
        return 1;
    for (i = 0; i < FRAMES * CH; i++) {
        size_t f = i / CH;
        double u;

        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        u = (double)(seed >> 11) / 9007199254740992.0 - 0.5;
        in[i] = (float)(sin(2.0 * M_PI * 97.0 * (double)f / RATE) + u *
                        ((f / RATE) % 13 == 12 ? 4.0 : 0.5));
    }
    detect_config_defaults(&cfg);
    no_multi = cfg;
    no_multi.enable = DETECT_LEVEL | DETECT_FEATURE;  /* the vibration profile's, less multi */
    /* The process profile (level, multi, context, range) forced on the same
     * data: the contextual and the range detectors' cost per sample, from
     * runs without each. */
    proc = cfg;
    proc.profile = DETECT_PROFILE_PROCESS;
    proc_no_ctx = proc;
    proc_no_ctx.enable = DETECT_LEVEL | DETECT_MULTI | DETECT_RANGE;
    no_range = proc;
    no_range.enable = DETECT_LEVEL | DETECT_MULTI | DETECT_CONTEXT;
    /* The sequence detector (in no profile) on top of the process profile:
     * its cost is the difference. */
    proc_seq = proc;
    proc_seq.enable = DETECT_LEVEL | DETECT_MULTI | DETECT_CONTEXT | DETECT_RANGE |
                      DETECT_SEQUENCE;
    dlen = detect_arena_size(&proc_seq, CH);        /* room for every set timed below */
    rlen = ring_arena_size(CH, RATE * 10);
    darena = malloc(dlen);
    rarena = malloc(rlen);
    if (!darena || !rarena)
        return 1;

    for (run = 0; run < RUNS; run++) {
        struct detect *d;
        struct detect_result r;
        double t0;
        float sum = 0;

        t0 = now_ns();
        for (i = 0; i < FRAMES * CH; i++)
            sum += in[i];
        sink = sum;
        t_plain[run] = now_ns() - t0;

        d = detect_init(&cfg, CH, RATE, darena, dlen);
        if (!d || ring_init(&ring, CH, RATE * 10, rarena, rlen) != 0) {
            fprintf(stderr, "bench: init failed\n");
            return 1;
        }
        t0 = now_ns();
        for (i = 0; i < FRAMES; i++) {
            ring_push(&ring, in + i * CH, (int64_t)i * 100);
            detect_step(d, in + i * CH, (int64_t)i * 100, &r);
            triggers += r.triggered;
        }
        t_path[run] = now_ns() - t0;

        d = detect_init(&cfg, CH, RATE, darena, dlen);
        t0 = now_ns();
        for (i = 0; i < FRAMES; i++) {
            detect_step(d, in + i * CH, (int64_t)i * 100, &r);
            triggers += r.triggered;
        }
        t_detect[run] = now_ns() - t0;

        d = detect_init(&no_multi, CH, RATE, darena, dlen);
        t0 = now_ns();
        for (i = 0; i < FRAMES; i++) {
            detect_step(d, in + i * CH, (int64_t)i * 100, &r);
            triggers += r.triggered;
        }
        t_no_multi[run] = now_ns() - t0;

        d = detect_init(&no_range, CH, RATE, darena, dlen);
        t0 = now_ns();
        for (i = 0; i < FRAMES; i++) {
            detect_step(d, in + i * CH, (int64_t)i * 100, &r);
            triggers += r.triggered;
        }
        t_no_range[run] = now_ns() - t0;

        d = detect_init(&proc, CH, RATE, darena, dlen);
        t0 = now_ns();
        for (i = 0; i < FRAMES; i++) {
            detect_step(d, in + i * CH, (int64_t)i * 100, &r);
            triggers += r.triggered;
        }
        t_proc[run] = now_ns() - t0;

        d = detect_init(&proc_no_ctx, CH, RATE, darena, dlen);
        t0 = now_ns();
        for (i = 0; i < FRAMES; i++) {
            detect_step(d, in + i * CH, (int64_t)i * 100, &r);
            triggers += r.triggered;
        }
        t_proc_no_ctx[run] = now_ns() - t0;

        d = detect_init(&proc_seq, CH, RATE, darena, dlen);
        t0 = now_ns();
        for (i = 0; i < FRAMES; i++) {
            detect_step(d, in + i * CH, (int64_t)i * 100, &r);
            triggers += r.triggered;
        }
        t_proc_seq[run] = now_ns() - t0;
    }
    {
        double n = (double)FRAMES * CH;
        double plain = median(t_plain) / n, path = median(t_path) / n;
        double det = median(t_detect) / n, nom = median(t_no_multi) / n;

        printf("detect plain_read ns_per_sample_channel=%.3f\n", plain);
        printf("detect ring_push+detect_step ns_per_sample_channel=%.3f\n", path);
        printf("detect detect_step ns_per_sample_channel=%.3f\n", det);
        printf("detect detect_step_without_multi ns_per_sample_channel=%.3f\n", nom);
        printf("detect multi_cost ns_per_sample_channel=%.3f\n", det - nom);
        printf("detect process_profile ns_per_sample_channel=%.3f\n", median(t_proc) / n);
        printf("detect range_cost ns_per_sample_channel=%.3f\n",
               (median(t_proc) - median(t_no_range)) / n);
        printf("detect context_cost ns_per_sample_channel=%.3f\n",
               (median(t_proc) - median(t_proc_no_ctx)) / n);
        printf("detect process_profile+sequence ns_per_sample_channel=%.3f\n",
               median(t_proc_seq) / n);
        printf("detect sequence_cost ns_per_sample_channel=%.3f\n",
               (median(t_proc_seq) - median(t_proc)) / n);
        printf("detect ratio_to_plain_read=%.1f\n", path / plain);
        printf("detect arena_bytes=%zu multi_state_bytes=%zu\n", detect_arena_size_at(&cfg, CH, RATE),
               detect_multi_size(CH));
        printf("detect arena_bytes_process=%zu arena_bytes_process+sequence=%zu\n",
               detect_arena_size_at(&proc, CH, RATE), detect_arena_size_at(&proc_seq, CH, RATE));
        printf("detect channels=%d rate=%d seconds=%d runs=%d triggers_per_run=%lu sink=%g\n",
               CH, RATE, SECONDS, RUNS, triggers / (7 * RUNS), (double)sink);
    }
    free(in);
    free(darena);
    free(rarena);
    return 0;
}
