/* ui.c - the labeling UI's benchmark helper (bench/ui.sh drives it).
 *
 *   bench-ui make --out FILE --device-id ID [--channels 8] [--samples 100000]
 *                 [--rate 10000]
 *       a signed wire-format snapshot of CHANNELS x SAMPLES i16 samples (a
 *       noisy sine per channel, one-sample spikes after the trigger) into
 *       FILE, made by the same wire_encode as the agent's; prints the
 *       device's new public key (standard base64) for registration.
 *   bench-ui latency --base URL --token T --snapshot ID [--px 1600]
 *                    [--n 500] [--runs 5]
 *       per run, N GETs each of /healthz (the baseline: the same HTTP and
 *       auth-free path, no work), the samples JSON and the samples binary
 *       form of the whole snapshot at PX columns, interleaved, on kept-alive
 *       connections; prints p50/p95/p99 of each and the median over runs.
 *   bench-ui decimate [--channels 8] [--samples 1000000] [--px 1600] [--reps 200]
 *       the samples answer's own work, in process: the binary answer
 *       (decimate_bin_write, min/max pyramid built once) of the whole
 *       snapshot and of REPS zoomed windows (an eighth of it, moving), on
 *       the same noisy sines as make; prints the best and the median.
 *
 * No database access of its own: it talks to a running server like a
 * browser does, so what it measures includes the HTTP layer (decimate
 * excepted). */
#include <curl/curl.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema/wire.h"
#include "server/decimate/decimate.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: bench-ui make --out FILE --device-id ID [--channels N] [--samples N] [--rate HZ]\n"
            "       bench-ui latency --base URL --token T --snapshot ID [--px N] [--n N] [--runs N]\n"
            "       bench-ui decimate [--channels N] [--samples N] [--px N] [--reps N]\n"
            "(bench/ui.sh runs both against a server of its own)\n");
    return 2;
}

static const char *opt(int argc, char **argv, const char *name, const char *def)
{
    int i;

    for (i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return def;
}

static long opt_long(int argc, char **argv, const char *name, long def, long lo, long hi)
{
    const char *s = opt(argc, argv, name, NULL);
    char *end;
    long v;

    if (!s)
        return def;
    v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi) {
        fprintf(stderr, "bench-ui: %s must be in [%ld, %ld]\n", name, lo, hi);
        exit(2);
    }
    return v;
}

static int cmd_make(int argc, char **argv)
{
    const char *out = opt(argc, argv, "--out", NULL), *dev = opt(argc, argv, "--device-id", NULL);
    long nch = opt_long(argc, argv, "--channels", 8, 1, WIRE_MAX_CHANNELS);
    long n = opt_long(argc, argv, "--samples", 100000, 2, 1000000);
    long rate = opt_long(argc, argv, "--rate", 10000, 1, 1000000);
    uint8_t pk[WIRE_PK_LEN], sk[WIRE_SK_LEN], *env = NULL;
    char pk64[64];
    struct wire_meta *m = calloc(1, sizeof *m);
    int16_t *x = malloc((size_t)nch * (size_t)n * sizeof *x);
    size_t len = 0;
    long c, i;
    FILE *f;
    int rc = 1;

    if (!out || !dev || !m || !x || sodium_init() < 0)
        goto done;
    crypto_sign_keypair(pk, sk);
    snprintf(m->device_id, sizeof m->device_id, "%s", dev);
    m->seq = 1;
    m->trigger_time_us = (int64_t)time(NULL) * 1000000;
    m->sample_rate = (double)rate;
    m->sample_type = WIRE_I16;
    m->channel_count = (uint8_t)nch;
    m->pre_samples = (uint32_t)(n / 2);
    m->post_samples = (uint32_t)(n - n / 2);
    snprintf(m->detector, sizeof m->detector, "bench");
    m->score = 0.9f;
    for (c = 0; c < nch; c++) {
        snprintf(m->channels[c].name, sizeof m->channels[c].name, "ch%ld", c);
        snprintf(m->channels[c].unit, sizeof m->channels[c].unit, "g");
        for (i = 0; i < n; i++) {
            double v = 3000 * sin(2 * M_PI * (50.0 + 7 * c) * (double)i / (double)rate) +
                       (double)randombytes_uniform(801) - 400;

            x[c * n + i] = (int16_t)v;
        }
        /* the kind of one-sample event decimation must not lose, after
         * the trigger, wrapped into a short snapshot */
        x[c * n + (n / 2 + 997 * (c + 1)) % n] = 32000;
    }
    if (wire_encode(m, x, sk, 0, &env, &len) != WIRE_OK) {
        fprintf(stderr, "bench-ui: wire_encode failed\n");
        goto done;
    }
    if (!(f = fopen(out, "wb")) || fwrite(env, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "bench-ui: cannot write %s\n", out);
        goto done;
    }
    sodium_bin2base64(pk64, sizeof pk64, pk, sizeof pk, sodium_base64_VARIANT_ORIGINAL);
    printf("%s\n", pk64);
    fprintf(stderr, "bench-ui: %ld x %ld i16 samples, envelope %zu bytes\n", nch, n, len);
    rc = 0;
done:
    sodium_memzero(sk, sizeof sk);
    free(env);
    free(x);
    free(m);
    return rc ? (out && dev ? 1 : usage()) : 0;
}

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    *(size_t *)ud += sz * n;
    return sz * n;
}

static double now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double pct(double *v, long n, double p)
{
    long k = (long)ceil(p * (double)n) - 1;

    return v[k < 0 ? 0 : k];
}

#define KINDS 3

static int cmd_latency(int argc, char **argv)
{
    const char *base = opt(argc, argv, "--base", NULL), *token = opt(argc, argv, "--token", NULL);
    long snap = opt_long(argc, argv, "--snapshot", 0, 1, 1L << 62);
    long px = opt_long(argc, argv, "--px", 1600, 1, 8192);
    long n = opt_long(argc, argv, "--n", 500, 10, 1000000);
    long runs = opt_long(argc, argv, "--runs", 5, 1, 100);
    static const char *names[KINDS] = { "healthz (baseline)", "samples json", "samples bin" };
    char url[KINDS][512], auth[256];
    CURL *c[KINDS];
    struct curl_slist *h = NULL;
    double *t[KINDS], p50[KINDS][100], p95[KINDS][100], p99[KINDS][100];
    size_t bytes[KINDS] = { 0 };
    long r, i, k;
    int rc = 1;

    if (!base || !token || !snap)
        return usage();
    snprintf(url[0], sizeof url[0], "%s/healthz", base);
    snprintf(url[1], sizeof url[1], "%s/api/v1/snapshots/%ld/samples?px=%ld", base, snap, px);
    snprintf(url[2], sizeof url[2], "%s/api/v1/snapshots/%ld/samples?px=%ld&format=bin", base, snap, px);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    h = curl_slist_append(NULL, auth);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (k = 0; k < KINDS; k++) {
        t[k] = malloc((size_t)n * sizeof *t[k]);
        c[k] = curl_easy_init();     /* one kept-alive connection per kind */
        if (!t[k] || !c[k])
            return 1;
        curl_easy_setopt(c[k], CURLOPT_URL, url[k]);
        curl_easy_setopt(c[k], CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c[k], CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(c[k], CURLOPT_NOSIGNAL, 1L);
    }
    for (r = 0; r < runs; r++) {
        for (i = 0; i < n; i++)
            for (k = 0; k < KINDS; k++) {
                size_t got = 0;
                long st = 0;
                double t0 = now_ms();

                curl_easy_setopt(c[k], CURLOPT_WRITEDATA, &got);
                if (curl_easy_perform(c[k]) != CURLE_OK ||
                    curl_easy_getinfo(c[k], CURLINFO_RESPONSE_CODE, &st) != CURLE_OK || st != 200) {
                    fprintf(stderr, "bench-ui: %s answered %ld\n", url[k], st);
                    goto done;
                }
                t[k][i] = now_ms() - t0;
                bytes[k] = got;
            }
        for (k = 0; k < KINDS; k++) {
            qsort(t[k], (size_t)n, sizeof *t[k], cmp_d);
            p50[k][r] = pct(t[k], n, 0.50);
            p95[k][r] = pct(t[k], n, 0.95);
            p99[k][r] = pct(t[k], n, 0.99);
            printf("run %ld %-20s p50 %7.3f ms  p95 %7.3f ms  p99 %7.3f ms  (%zu bytes)\n", r + 1,
                   names[k], p50[k][r], p95[k][r], p99[k][r], bytes[k]);
        }
    }
    printf("median of %ld runs of %ld requests, px=%ld:\n", runs, n, px);
    for (k = 0; k < KINDS; k++) {
        qsort(p50[k], (size_t)runs, sizeof(double), cmp_d);
        qsort(p95[k], (size_t)runs, sizeof(double), cmp_d);
        qsort(p99[k], (size_t)runs, sizeof(double), cmp_d);
    }
    for (k = 0; k < KINDS; k++)
        printf("  %-20s p50 %7.3f ms  p95 %7.3f ms  p99 %7.3f ms  p99/baseline-p99 %.1fx\n",
               names[k], p50[k][runs / 2], p95[k][runs / 2], p99[k][runs / 2],
               p99[k][runs / 2] / p99[0][runs / 2]);
    rc = 0;
done:
    for (k = 0; k < KINDS; k++) {
        curl_easy_cleanup(c[k]);
        free(t[k]);
    }
    curl_slist_free_all(h);
    curl_global_cleanup();
    return rc;
}

static int cmd_decimate(int argc, char **argv)
{
    long ch = opt_long(argc, argv, "--channels", 8, 1, WIRE_MAX_CHANNELS);
    long n = opt_long(argc, argv, "--samples", 1000000, DECIMATE_PYR_MIN_N, 1L << 26);
    long px = opt_long(argc, argv, "--px", 1600, 1, DECIMATE_PX_MAX);
    long reps = opt_long(argc, argv, "--reps", 200, 1, 100000);
    int16_t *x = malloc((size_t)(ch * n) * sizeof *x);
    double *whole = malloc((size_t)reps * sizeof *whole), *zoom = malloc((size_t)reps * sizeof *zoom);
    struct decimate_src src;
    struct decimate_pyramid *pyr;
    struct decimate_bin_info info = { 10000, (uint32_t)(n / 2) };
    size_t cap, sink_sum = 0;
    uint8_t *out;
    long r, c, i;

    if (!x || !whole || !zoom)
        return 1;
    /* a noisy sine per channel, as make's */
    for (c = 0; c < ch; c++)
        for (i = 0; i < n; i++)
            x[c * n + i] = (int16_t)(3000 * sin(2 * M_PI * 50 * (double)i / 10000 + c) +
                                     (double)((i * 2654435761u + (unsigned long)c) % 401) - 200);
    src.samples = x;
    src.sample_type = WIRE_I16;
    src.n = (size_t)n;
    src.channels = (unsigned)ch;
    src.pyr = NULL;
    src.pyr = pyr = decimate_pyramid_build(&src, NULL);
    cap = decimate_bin_size(&src, 0, (size_t)n, (unsigned)px);
    if (!pyr || !cap || !(out = malloc(cap)))
        return 1;
    for (r = 0; r < reps; r++) {
        size_t a = (size_t)(r * 7919) % (size_t)(n / 2), b = a + (size_t)n / 8, len;
        double t0 = now_ms();

        len = decimate_bin_write(&src, &info, 0, (size_t)n, (unsigned)px, out, cap);
        whole[r] = now_ms() - t0;
        sink_sum += len + out[len - 1];
        t0 = now_ms();
        len = decimate_bin_write(&src, &info, a, b, (unsigned)px, out, cap);
        zoom[r] = now_ms() - t0;
        sink_sum += len;
    }
    qsort(whole, (size_t)reps, sizeof *whole, cmp_d);
    qsort(zoom, (size_t)reps, sizeof *zoom, cmp_d);
    printf("decimate %ld ch x %ld i16 samples, px=%ld, %ld reps: whole best %.3f ms median %.3f ms;"
           " an eighth, moving: best %.3f ms median %.3f ms (%zu)\n", ch, n, px, reps, whole[0],
           whole[reps / 2], zoom[0], zoom[reps / 2], sink_sum % 10);
    decimate_pyramid_free(pyr);
    free(out);
    free(x);
    free(whole);
    free(zoom);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "make") == 0)
        return cmd_make(argc - 2, argv + 2);
    if (strcmp(argv[1], "latency") == 0)
        return cmd_latency(argc - 2, argv + 2);
    if (strcmp(argv[1], "decimate") == 0)
        return cmd_decimate(argc - 2, argv + 2);
    return usage();
}
