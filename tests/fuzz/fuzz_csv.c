/* fuzz_csv.c - libFuzzer target: the CSV source over arbitrary bytes.
 *
 * The input is read through fmemopen, every frame is pulled and its
 * timestamp text read back; any outcome but a crash or a sanitizer report is
 * fine (bad input must be an error code). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "agent/source/source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static float samples[64 * WIRE_MAX_CHANNELS];
    static int64_t t[64];
    struct source *s;
    FILE *f;
    size_t n, i;
    int rc;

    if (size == 0)
        return 0;
    f = fmemopen((void *)data, size, "r");
    if (!f)
        return 0;
    if (source_csv_fopen(f, "fuzz", 0, &s) == 0) {
        while ((rc = s->next(s, samples, t, 1 + (size % 64), &n)) == 0) {
            for (i = 0; i < n; i++) {
                const char *ts = s->ts_text(s, i);

                if (!ts || strlen(ts) == 0)
                    __builtin_trap();   /* every handed-out frame has its text */
            }
        }
        if (rc < 0 && s->err[0] == '\0')
            __builtin_trap();           /* an error always says why */
        s->close(s);
    }
    fclose(f);
    return 0;
}
