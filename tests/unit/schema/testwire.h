/* testwire.h - what the wire suites (check_wire.c for v1, check_wire2.c for
 * v2) share: the golden vectors' signing key, a deterministic generator,
 * re-signing a tampered envelope, the full reader path, and the vector
 * files' hex, file, read and regenerate helpers.  Static inline functions, included by each
 * suite (each uses its own subset). */
#ifndef PRECURSOR_TESTWIRE_H
#define PRECURSOR_TESTWIRE_H

#include <check.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/wire.h"

/* Read relative to the current directory: the runner starts from the
 * repository root. */
#define TESTWIRE_VEC_DIR "tests/vectors"

static uint8_t g_pk[WIRE_PK_LEN], g_sk[WIRE_SK_LEN];

/* The vectors' key: seed bytes 00 01 02 ... 1f. */
static inline void keys_init(void)
{
    uint8_t seed[32];

    ck_assert_int_ge(sodium_init(), 0);
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)i;
    crypto_sign_ed25519_seed_keypair(g_pk, g_sk, seed);
}

static inline uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* Sign again after a test changed the envelope's bytes, so that the parser,
 * not the signature check, is what meets the change. */
static inline void resign(uint8_t *buf, size_t len)
{
    crypto_sign_ed25519_detached(buf + len - WIRE_SIG_LEN, NULL, buf, len - WIRE_SIG_LEN, g_sk);
}

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Full reader path: parse, verify, decode; returns the decoded samples
 * (caller frees). */
static inline void *decode_all(const uint8_t *env, size_t len, struct wire_meta *m)
{
    struct wire_view v;
    void *out;
    size_t bytes;

    ck_assert_int_eq(wire_parse(env, len, m, &v), WIRE_OK);
    ck_assert_int_eq(wire_verify(env, len, g_pk), WIRE_OK);
    bytes = wire_samples_bytes(m);
    ck_assert_uint_gt(bytes, 0);
    out = malloc(bytes);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(wire_decode_samples(m, &v, out, bytes), WIRE_OK);
    return out;
}

static inline void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static inline uint8_t *file_read(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long l;

    ck_assert_msg(f != NULL, "cannot open %s (run from the repository root)", path);
    fseek(f, 0, SEEK_END);
    l = ftell(f);
    rewind(f);
    buf = malloc((size_t)l + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)l, f), (size_t)l);
    fclose(f);
    buf[l] = 0;
    *n = (size_t)l;
    return buf;
}

static inline void file_write(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");

    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* A golden vector's file, tests/vectors/<name>.<ext>, read whole. */
static inline uint8_t *vector_read(const char *name, const char *ext, size_t *n)
{
    char path[512];

    snprintf(path, sizeof path, TESTWIRE_VEC_DIR "/%s.%s", name, ext);
    return file_read(path, n);
}

/* With WIRE_REGEN_VECTORS=<dir> the vector tests write each vector afresh
 * instead of checking it: its envelope as <dir>/<name>.prsn and its
 * description as <dir>/<name>.txt. */
static inline void vector_write(const char *dir, const char *name, const uint8_t *env,
                                size_t len, const char *txt)
{
    char path[512];

    snprintf(path, sizeof path, "%s/%s.prsn", dir, name);
    file_write(path, env, len);
    snprintf(path, sizeof path, "%s/%s.txt", dir, name);
    file_write(path, txt, strlen(txt));
}

#endif
