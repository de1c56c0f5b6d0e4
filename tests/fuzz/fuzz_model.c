/* fuzz_model.c - libFuzzer target for the on-device model blob reader.
 *
 * Runs what the agent runs on a fetched blob: model_load against a fixed
 * trusted key (seed 00 01 .. 1f, the one tests/unit/schema/check_model.c
 * signs the seed corpus with), then model_parse alone so mutations that break
 * the signature still reach the bounds checks, and scores the test input of
 * anything that parsed; a relations model's map is hostile data too, so its
 * features are computed from a fixed window through the blob's map.  Seed
 * corpus: tests/fuzz/corpus/model/ (good_relations_v2_4: a set-4 blob;
 * device_v2_5: the same made for device "dev-a", loaded as that device too).
 *
 * Build and run by hand, from the repository root:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_model.c \
 *       schema/model.c $(pkg-config --cflags --libs libsodium) -lm -o fuzz_model
 *   ./fuzz_model -max_total_time=180 tests/fuzz/corpus/model
 */
#include "schema/model.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct model g_m;
static uint8_t g_pk[MODEL_PK_LEN], g_dev[MODEL_DEVICE_DIGEST_LEN];
static int g_init;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    float x[MODEL_MAX_FEATURES];

    if (!g_init) {
        uint8_t seed[32], sk[MODEL_SK_LEN];

        for (int i = 0; i < 32; i++)
            seed[i] = (uint8_t)i;
        if (sodium_init() < 0)
            abort();
        crypto_sign_ed25519_seed_keypair(g_pk, sk, seed);
        if (model_device_digest("dev-a", g_dev) != 0)
            abort();
        g_init = 1;
    }
    (void)model_load(data, size, g_pk, NULL, &g_m);
    (void)model_load_device(data, size, g_pk, NULL, g_dev, &g_m);
    if (model_parse(data, size, &g_m) == 0) {
        static float win[8192], scratch[8192], out[MODEL_MAX_FEATURES];
        struct relations_map rm;
        struct featureset_spec fs;

        model_test_input(&g_m, x);
        (void)model_score(&g_m, x, g_m.n_features);
        model_feature_spec(&g_m, &rm, &fs);
        if (fs.id == FEATURESET_RELATIONS && !model_features_unsupported(&g_m) &&
            (size_t)g_m.channel_count * fs.window <= 8192 && featureset_scratch_floats(&fs) <= 8192) {
            for (size_t i = 0; i < (size_t)g_m.channel_count * fs.window; i++)
                win[i] = (float)(i % 13u) - 6.0f;
            (void)featureset_compute(&fs, win, fs.window, g_m.channel_count, scratch, 8192, out);
            (void)model_score(&g_m, out, g_m.n_features);
        }
    }
    return 0;
}
