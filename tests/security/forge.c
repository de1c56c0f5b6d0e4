/* forge.c - makes the hostile inputs tests/security/run.sh sends: signed
 * envelopes (genuine, conflicting, zstd bombs of three kinds, a bad
 * signature) for a device whose Ed25519 key comes from a seed, so the shell
 * can register the same key with the server.  Test tool only; linked with
 * the build's schema archive so genuine envelopes are what the agent makes.
 *
 *   forge pk SEEDHEX                                  base64 public key
 *   forge envelope SEEDHEX DEVICE SEQ KIND OUT        KIND below
 *   forge sign SEEDHEX FILE                           base64 Ed25519 signature of
 *                                                     FILE's bytes (heartbeats,
 *                                                     rotations: the caller builds
 *                                                     the signed message itself)
 *
 * KIND: ok (40 bytes of samples), other (same seq, other samples),
 * bomb-lie (frame header declares the 40 bytes the metadata says, its blocks
 * hold 256 MiB of zeros), bomb-nosize (256 MiB frame without a declared
 * size), bomb-declared (frame declares 256 MiB), badsig (ok with one
 * signature bit flipped).  Every bomb is re-signed by the device's key, so
 * the server's zstd checks, not its signature check, must stop it. */
#define ZSTD_STATIC_LINKING_ONLY
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "schema/wire.h"

#define BOMB_BYTES (256u << 20)

static int seed_keys(const char *hex, uint8_t pk[WIRE_PK_LEN], uint8_t sk[WIRE_SK_LEN])
{
    uint8_t seed[32];
    size_t n = 0;

    if (sodium_hex2bin(seed, sizeof seed, hex, strlen(hex), NULL, &n, NULL) != 0 || n != 32)
        return -1;
    return crypto_sign_seed_keypair(pk, sk, seed);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* 256 MiB of zeros as one frame; with_size chooses the content-size field. */
static uint8_t *zeros_frame(int with_size, size_t *out_len)
{
    uint8_t *src = calloc(1, BOMB_BYTES), *dst;
    size_t cap = ZSTD_compressBound(BOMB_BYTES), n;
    ZSTD_CCtx *cc = ZSTD_createCCtx();

    dst = malloc(cap);
    if (!src || !dst || !cc) {
        free(src);
        free(dst);
        ZSTD_freeCCtx(cc);
        return NULL;
    }
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 19);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, with_size);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 0);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 20);
    n = ZSTD_compress2(cc, dst, cap, src, BOMB_BYTES);
    ZSTD_freeCCtx(cc);
    free(src);
    if (ZSTD_isError(n)) {
        free(dst);
        return NULL;
    }
    *out_len = n;
    return dst;
}

/* Replace the payload of a genuine envelope with frame and re-sign. */
static uint8_t *repack(const uint8_t *env, const uint8_t *frame, size_t flen,
                       const uint8_t sk[WIRE_SK_LEN], size_t *out_len)
{
    uint32_t hlen = get32(env + 8);
    size_t total = hlen + flen + WIRE_SIG_LEN;
    uint8_t *out = malloc(total);

    if (!out)
        return NULL;
    memcpy(out, env, hlen);
    put32(out + 12, (uint32_t)flen);
    memcpy(out + hlen, frame, flen);
    crypto_sign_detached(out + hlen + flen, NULL, out, hlen + flen, sk);
    *out_len = total;
    return out;
}

static int envelope(const char *hex, const char *dev, const char *seq_s, const char *kind,
                    const char *path)
{
    uint8_t pk[WIRE_PK_LEN], sk[WIRE_SK_LEN], *env = NULL, *out = NULL, *frame = NULL;
    int16_t samples[20];
    struct wire_meta m;
    size_t len = 0, flen = 0, i;
    FILE *f;
    int rc = 1;

    if (seed_keys(hex, pk, sk) != 0 || strlen(dev) > WIRE_MAX_NAME)
        return 2;
    memset(&m, 0, sizeof m);
    snprintf(m.device_id, sizeof m.device_id, "%s", dev);
    m.seq = strtoull(seq_s, NULL, 10);
    m.trigger_time_us = 1700000000000000LL;
    m.sample_rate = 1000.0;
    m.sample_type = WIRE_I16;
    m.channel_count = 1;
    m.pre_samples = 10;
    m.post_samples = 10;
    snprintf(m.detector, sizeof m.detector, "forge");
    m.score = 0.5f;
    snprintf(m.channels[0].name, sizeof m.channels[0].name, "x");
    for (i = 0; i < 20; i++)
        samples[i] = (int16_t)(strcmp(kind, "other") == 0 ? 1000 - (int)i : (int)i);
    if (wire_encode(&m, samples, sk, 0, &env, &len) != WIRE_OK)
        return 1;
    if (strcmp(kind, "ok") == 0 || strcmp(kind, "other") == 0) {
        out = env;
        env = NULL;
    } else if (strcmp(kind, "badsig") == 0) {
        out = env;
        env = NULL;
        out[len - 1] ^= 0x01;
    } else if (strcmp(kind, "bomb-nosize") == 0 || strcmp(kind, "bomb-declared") == 0 ||
               strcmp(kind, "bomb-lie") == 0) {
        frame = zeros_frame(strcmp(kind, "bomb-declared") == 0, &flen);
        if (!frame)
            goto done;
        if (strcmp(kind, "bomb-lie") == 0) {
            /* Frame header: magic(4), descriptor(1), window descriptor(1).
             * Set Single_Segment: the window byte becomes a 1-byte content
             * size, which we set to what the metadata declares (40). */
            if (flen < 6 || (frame[4] & 0xC3) != 0 || (frame[4] & 0x20) != 0)
                goto done;
            frame[4] |= 0x20;
            frame[5] = (uint8_t)wire_samples_bytes(&m);
        }
        out = repack(env, frame, flen, sk, &len);
    } else {
        fprintf(stderr, "forge: unknown kind %s\n", kind);
        rc = 2;
        goto done;
    }
    if (!out)
        goto done;
    f = fopen(path, "wb");
    if (f && fwrite(out, 1, len, f) == len && fclose(f) == 0)
        rc = 0;
    else if (f)
        fclose(f);
done:
    free(env);
    free(out);
    free(frame);
    return rc;
}

static int sign_file(const char *seed, const char *path)
{
    uint8_t pk[WIRE_PK_LEN], sk[WIRE_SK_LEN], sig[64], buf[1 << 16];
    char b64[sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_ORIGINAL)];
    FILE *f = fopen(path, "rb");
    size_t n;

    if (!f || seed_keys(seed, pk, sk) != 0) {
        if (f)
            fclose(f);
        return 2;
    }
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    crypto_sign_detached(sig, NULL, buf, n, sk);
    sodium_bin2base64(b64, sizeof b64, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
    puts(b64);
    return 0;
}

int main(int argc, char **argv)
{
    uint8_t pk[WIRE_PK_LEN], sk[WIRE_SK_LEN];
    char b64[sodium_base64_ENCODED_LEN(WIRE_PK_LEN, sodium_base64_VARIANT_ORIGINAL)];

    if (sodium_init() < 0)
        return 1;
    if (argc == 3 && strcmp(argv[1], "pk") == 0) {
        if (seed_keys(argv[2], pk, sk) != 0)
            return 2;
        sodium_bin2base64(b64, sizeof b64, pk, sizeof pk, sodium_base64_VARIANT_ORIGINAL);
        puts(b64);
        return 0;
    }
    if (argc == 7 && strcmp(argv[1], "envelope") == 0)
        return envelope(argv[2], argv[3], argv[4], argv[5], argv[6]);
    if (argc == 4 && strcmp(argv[1], "sign") == 0)
        return sign_file(argv[2], argv[3]);
    fprintf(stderr, "usage: forge pk SEEDHEX | forge envelope SEEDHEX DEVICE SEQ KIND OUT\n");
    return 2;
}
