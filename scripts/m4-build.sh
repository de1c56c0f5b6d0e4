#!/usr/bin/env bash
# m4-build.sh - build the agent's portable core (agent/core/*.c: ring buffer,
# detectors, capture; schema/featureset.c, schema/spectral.c and schema/relations.c: the models'
# feature sets) for a
# Cortex-M4 with arm-none-eabi-gcc, as
# build/m4/libprecursor-core.a, and report its size.  Fails if the core needs
# the heap or stdio: it must run on a microcontroller with no libc I/O.
set -euo pipefail
cd "$(dirname "$0")/.."

CC=${M4_CC:-arm-none-eabi-gcc}
command -v "$CC" >/dev/null || { echo "m4: $CC not found (apt-get install gcc-arm-none-eabi)"; exit 1; }
out=build/m4
mkdir -p "$out/obj"
rm -f "$out"/obj/*.o "$out/libprecursor-core.a"

flags=(-std=c11 -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -Os
       -ffreestanding -ffunction-sections -fdata-sections -fsingle-precision-constant
       -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Werror -I.)
for src in agent/core/*.c schema/featureset.c schema/spectral.c schema/relations.c; do
    "$CC" "${flags[@]}" -c "$src" -o "$out/obj/$(basename "$src" .c).o"
done
arm-none-eabi-ar rcs "$out/libprecursor-core.a" "$out"/obj/*.o

# Undefined symbols the core pulls from outside (not those one core file
# takes from another): only <string.h> and <math.h> helpers (and the
# compiler's runtime) are allowed.
defined=$(arm-none-eabi-nm --defined-only "$out/libprecursor-core.a" | awk 'NF==3 {print $3}' | sort -u)
undef=$(arm-none-eabi-nm -u "$out/libprecursor-core.a" | awk 'NF==2 {print $2}' | sort -u |
        comm -23 - <(echo "$defined"))
bad=$(echo "$undef" | grep -E '^(malloc|calloc|realloc|free|_sbrk|sbrk|printf|fprintf|sprintf|snprintf|vsnprintf|vfprintf|puts|putchar|fputs|fwrite|fread|fopen|fclose|fflush|fgets|stdout|stderr|stdin|_impure_ptr|__errno|abort|exit|_write|_read|_open|_close|time|clock_gettime)$' || true)
echo "m4: external symbols used by the core: $(echo $undef)"
if [ -n "$bad" ]; then
    echo "m4: FAIL: the portable core needs heap/stdio/system calls: $(echo $bad)"
    exit 1
fi
# Link check: a freestanding image with only libm/libgcc (nosys: no I/O
# stubs are offered, so anything needing them fails to link).  It runs the
# sample path a device would: ring, detectors, capture and its cut.
cat > "$out/main.c" <<'C'
#include "agent/core/capture.h"
#include "agent/core/detect.h"
#include "agent/core/ring.h"
#include "schema/featureset.h"
#include "schema/relations.h"
#include "schema/spectral.h"
static unsigned char arena[16384];
/* a relation map of 2 channels, rank 1, in flash as a model would carry it */
static const float rel_mean[2] = { 0, 0 }, rel_scale[2] = { 1, 1 }, rel_basis[2] = { 0.7071f, 0.7071f };
static const struct relations_map rel = { 2, 1, rel_mean, rel_scale, rel_basis };
static float rel_scratch[3 * 2 + 1 + 2], rel_out[RELATIONS_NFEAT(2)];   /* relations_hold_scratch_floats */
static float feat[2 * FEATURESET_SPECTRAL_NFEAT];
static float fs_scratch[256 + 3 * 256 + 32 + 3];   /* featureset_scratch_floats, window 256 */
/* spectral features of a 1024-sample frame with bearing geometry */
static const struct spectral_config spec = { .fs = 12000.0f, .n = 1024, .log_bands = 8,
    .f_lo = 20.0f, .shaft_hz = 30.0f, .order_bands = 6, .sk_seg = 64, .has_bearing = 1,
    .bearing = { 9, 7.94f, 39.04f, 0.0f } };
static float spec_scratch[3 * 1024 + 32 + 3], spec_out[32], frame[1024];
static int64_t ring_mem[(256 * 8 + 2 * 256 * 4) / 8];   /* ring_arena_size(2, 256) */
static float window[2 * 64];
int main(void);
int main(void)
{
    struct detect_config c;
    struct detect_result r;
    struct detect *d;
    struct ring ring;
    struct capture cap;
    struct capture_window w;
    float x[2] = {0, 0};
    detect_config_defaults(&c);
    d = detect_init(&c, 2, 1000.0, arena, sizeof(arena));
    if (!d || ring_init(&ring, 2, 256, ring_mem, sizeof(ring_mem)) != 0)
        return 1;
    capture_init(&cap, 16, 16, 64, 1);
    for (unsigned f = 0; f < 1000; f++) {
        ring_push(&ring, x, f);
        detect_step(d, x, f, &r);
        if (r.triggered)
            capture_trigger(&cap, ring.total - 1, f, &r);
        if (capture_due(&cap, ring.total)) {
            capture_close(&cap, ring.total, &w);
            if (capture_cut(&ring, &w, window) != 0)
                return 2;
            /* a model's feature vector over the cut window */
            struct featureset_spec fs = { FEATURESET_STATS, FEATURESET_STATS_VERSION, 32, 32, 1000.0f, FEATURESET_NO_KIN, 0 };
            if (featureset_compute(&fs, window, 32, 2, 0, 0, feat) != 0)
                return 3;
            struct featureset_spec sp = { FEATURESET_SPECTRAL, FEATURESET_SPECTRAL_VERSION, 64, 64, 1000.0f, FEATURESET_NO_KIN, 0 };
            if (featureset_compute(&sp, window, 64, 2, fs_scratch, sizeof fs_scratch / sizeof *fs_scratch,
                                   feat) != 0)
                return 3;
            /* the relations set, its map from the model blob */
            struct featureset_spec rs = { FEATURESET_RELATIONS, FEATURESET_RELATIONS_VERSION, 64, 64, 1000.0f,
                                          FEATURESET_NO_KIN, &rel };
            if (featureset_compute(&rs, window, 64, 2, rel_scratch, sizeof rel_scratch / sizeof *rel_scratch,
                                   rel_out) != 0)
                return 3;
            for (unsigned i = 0; i < 1024; i++)
                frame[i] = window[i % (2 * 64)];
            if (spectral_features(&spec, frame, spec_scratch, sizeof spec_scratch / sizeof *spec_scratch,
                                  spec_out) != 0)
                return 3;
        }
    }
    return 0;
}
C
"$CC" "${flags[@]}" -nostartfiles -Wl,--gc-sections -Wl,-e,main -o "$out/core.elf" "$out/main.c" \
    "$out/libprecursor-core.a" -nostdlib -lm -lc_nano -lgcc 2>"$out/link.log" || {
    cat "$out/link.log"; echo "m4: FAIL: the core does not link without the C library's I/O"; exit 1; }
echo "m4: archive (text = flash, data + bss = RAM):"
arm-none-eabi-size -t "$out/libprecursor-core.a"
echo "m4: linked with a 16 KiB arena for 2 channels and 12.4 KiB of spectral scratch (n = 1024):"
arm-none-eabi-size "$out/core.elf"
echo "m4: spectral features alone (schema/spectral.o):"
arm-none-eabi-size "$out/obj/spectral.o"
echo "m4: the feature sets alone (schema/featureset.c; RAM is the caller's window and vector):"
arm-none-eabi-size "$out/obj/featureset.o"
echo "m4: relation features alone (schema/relations.c; the map is the model's, the scratch 4 n_ch + rank floats):"
arm-none-eabi-size "$out/obj/relations.o"
