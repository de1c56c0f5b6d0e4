/* json.c - what the shortest-real rewrite of every JSON answer costs
 * (srv_json_dumps), against jansson's own json_dumps of the same value in
 * the same run.
 *
 * The value is a page of the snapshot listing as the server answers it:
 * 1,000 items of an id, a device, a time, a sample rate and a score
 * (PostgreSQL's text of a float4, read as the nearest double: jansson
 * prints it with 17 digits, 0.75138690000000003 for 0.7513869).  Each run serialises it REPS times with each function,
 * interleaved; the figures are the medians of RUNS runs, in milliseconds
 * per page, and their ratio.
 *
 *   make BUILD=build/bench build/bench/bin/bench-json && build/bench/bin/bench-json
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "server/srv/srv.h"

#define ITEMS 1000
#define REPS 20
#define RUNS 7

static json_t *page(void)
{
    json_t *items = json_array();
    uint64_t x = 0x9e3779b97f4a7c15ULL;

    for (int i = 0; i < ITEMS && items; i++) {
        char text[32];
        double score;

        /* a real column as the listing reads it: PostgreSQL's text of a
         * float4, parsed into the nearest double */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        snprintf(text, sizeof text, "%.7g", (double)(x >> 40) / (double)(1u << 24));
        score = strtod(text, NULL);
        json_array_append_new(items, json_pack("{s:I,s:s,s:s,s:f,s:f}", "id", (json_int_t)(1000 + i),
                                               "device_id", "sim-pump-1", "trigger_time",
                                               "2026-12-07T15:31:48.114855Z", "sample_rate", 2000.0,
                                               "score", score));
    }
    return json_pack("{s:o}", "items", items);
}

int main(void)
{
    json_t *j = page();
    double plain[RUNS], shortest[RUNS];
    size_t plain_len = 0, short_len = 0;

    if (!j) {
        fprintf(stderr, "bench-json: out of memory\n");
        return 1;
    }
    for (int r = 0; r < RUNS; r++) {
        double t0 = bench_now_s(), t1, t2;

        for (int k = 0; k < REPS; k++) {
            char *s = json_dumps(j, JSON_COMPACT);

            plain_len = s ? strlen(s) : 0;
            free(s);
        }
        t1 = bench_now_s();
        for (int k = 0; k < REPS; k++) {
            char *s = srv_json_dumps(j, JSON_COMPACT);

            short_len = s ? strlen(s) : 0;
            free(s);
        }
        t2 = bench_now_s();
        plain[r] = (t1 - t0) / REPS * 1e3;
        shortest[r] = (t2 - t1) / REPS * 1e3;
    }
    double p = bench_median(plain, RUNS), s = bench_median(shortest, RUNS);

    printf("json: a %d-item listing page, median of %d runs of %d\n", ITEMS, RUNS, REPS);
    printf("json: json_dumps      %.2f ms per page, %zu bytes\n", p, plain_len);
    printf("json: srv_json_dumps  %.2f ms per page, %zu bytes (shortest reals)\n", s, short_len);
    printf("json: ratio %.2f of json_dumps's time, %.2f of its bytes\n", s / p,
           (double)short_len / (double)plain_len);
    json_decref(j);
    return 0;
}
