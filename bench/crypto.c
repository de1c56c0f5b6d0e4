/* crypto.c - the per-upload cryptography of ingest, libsodium against
 * OpenSSL's libcrypto, on the same bytes in the same run.
 *
 * Every stored snapshot costs the server an Ed25519 verify (a SHA-512 of the
 * whole envelope inside it, then the point arithmetic) and a SHA-256 of the
 * envelope for the stored digest.  This measures each step with both
 * libraries on a 16 KB message (the loadgen's and bench-ingest's size) and
 * on a 1 KB one (the point arithmetic alone, nearly), checks that both
 * libraries accept the same signature bytes and refuse a flipped bit, and
 * prints microseconds per operation (the median of RUNS runs) and each
 * OpenSSL figure as a ratio of libsodium's.
 *
 *   make BUILD=build/bench build/bench/bin/bench-crypto && build/bench/bin/bench-crypto
 */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"

#define RUNS 7

struct msg {
    const uint8_t *p;
    size_t len;
    const uint8_t *sig;
    const uint8_t *pk;
    EVP_PKEY *ossl_pk;
};

static volatile int sink;

static int sodium_verify(const struct msg *m)
{
    return crypto_sign_ed25519_verify_detached(m->sig, m->p, m->len, m->pk) == 0;
}

static int ossl_verify(const struct msg *m)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && EVP_DigestVerifyInit(c, NULL, NULL, NULL, m->ossl_pk) == 1 &&
             EVP_DigestVerify(c, m->sig, 64, m->p, m->len) == 1;

    EVP_MD_CTX_free(c);
    return ok;
}

static int sodium_sha256(const struct msg *m)
{
    uint8_t d[32];

    crypto_hash_sha256(d, m->p, m->len);
    return d[0];
}

static int ossl_sha256(const struct msg *m)
{
    uint8_t d[32];

    SHA256(m->p, m->len, d);
    return d[0];
}

static int sodium_sha512(const struct msg *m)
{
    uint8_t d[64];

    crypto_hash_sha512(d, m->p, m->len);
    return d[0];
}

static int ossl_sha512(const struct msg *m)
{
    uint8_t d[64];

    SHA512(m->p, m->len, d);
    return d[0];
}

/* Microseconds per call, median of RUNS runs of n calls. */
static double time_us(int (*fn)(const struct msg *), const struct msg *m, unsigned n)
{
    double v[RUNS];
    unsigned r, i;

    for (r = 0; r < RUNS; r++) {
        double t0 = bench_now_s();

        for (i = 0; i < n; i++)
            sink += fn(m);
        v[r] = (bench_now_s() - t0) * 1e6 / n;
    }
    qsort(v, RUNS, sizeof v[0], bench_cmp_double);
    return v[RUNS / 2];
}

static int measure(size_t len)
{
    uint8_t pk[32], sk[64], sig[64];
    uint8_t *p = malloc(len);
    struct msg m = { p, len, sig, pk, NULL };
    unsigned n = len > 4096 ? 2000 : 4000;
    double sv, ov, s256, o256, s512, o512;
    int agree;

    if (!p)
        return -1;
    randombytes_buf(p, len);
    crypto_sign_ed25519_keypair(pk, sk);
    crypto_sign_ed25519_detached(sig, NULL, p, len, sk);
    m.ossl_pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk, 32);
    if (!m.ossl_pk) {
        free(p);
        return -1;
    }
    /* Same signature bytes: both accept it, both refuse a flipped bit. */
    agree = sodium_verify(&m) && ossl_verify(&m);
    p[len / 2] ^= 1;
    agree = agree && !sodium_verify(&m) && !ossl_verify(&m);
    p[len / 2] ^= 1;

    sv = time_us(sodium_verify, &m, n);
    ov = time_us(ossl_verify, &m, n);
    s256 = time_us(sodium_sha256, &m, n * 4);
    o256 = time_us(ossl_sha256, &m, n * 4);
    s512 = time_us(sodium_sha512, &m, n * 4);
    o512 = time_us(ossl_sha512, &m, n * 4);
    printf("crypto %zu-byte message (same signature accepted by both: %s)\n", len,
           agree ? "yes" : "NO");
    printf("  Ed25519 verify  libsodium %7.1f us  OpenSSL %7.1f us  ratio %.2f\n", sv, ov, ov / sv);
    printf("  SHA-256         libsodium %7.1f us  OpenSSL %7.1f us  ratio %.2f\n", s256, o256,
           o256 / s256);
    printf("  SHA-512         libsodium %7.1f us  OpenSSL %7.1f us  ratio %.2f\n", s512, o512,
           o512 / s512);
    printf("  per upload (verify + SHA-256): libsodium %.1f us, OpenSSL %.1f us, ratio %.2f\n",
           sv + s256, ov + o256, (ov + o256) / (sv + s256));
    EVP_PKEY_free(m.ossl_pk);
    free(p);
    return agree ? 0 : -1;
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    if (measure(16384) != 0 || measure(1024) != 0)
        return 1;
    return 0;
}
