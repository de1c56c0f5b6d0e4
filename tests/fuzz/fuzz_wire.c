/* fuzz_wire.c - libFuzzer target for the wire format reader (v1 and v2).
 *
 * Runs what the server runs on an uploaded body: wire_parse, wire_verify
 * against a fixed key (the golden vectors' key, so seeds from tests/vectors
 * verify and mutations of them reach the signature check), and, when the
 * parse succeeded, wire_decode_samples into a buffer of the declared size
 * (v2 also through wire_decode_samples_scratch, the caller-buffer decoder).
 * The seed corpus is tests/fuzz/corpus/wire/ (the vectors plus mutations).
 *
 * Build and run by hand, from the repository root:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_wire.c \
 *       schema/wire.c schema/wire_predict.c $(pkg-config --cflags --libs libzstd libsodium) -lm -o fuzz_wire
 *   ./fuzz_wire -max_total_time=180 -max_len=65536 tests/fuzz/corpus/wire
 * (pass a scratch folder before the corpus folder to keep new inputs out of git)
 */
#include "schema/wire.h"

#include <stdint.h>
#include <zstd.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Public key of seed 00 01 .. 1f, see tests/vectors/README.md. */
static const uint8_t fuzz_pk[WIRE_PK_LEN] = {
    0x03, 0xa1, 0x07, 0xbf, 0xf3, 0xce, 0x10, 0xbe, 0x1d, 0x70, 0xdd, 0x18, 0xe7, 0x4b, 0xc0, 0x99,
    0x67, 0xe4, 0xd6, 0x30, 0x9b, 0xa5, 0x0d, 0x5f, 0x1d, 0xdc, 0x86, 0x64, 0x12, 0x55, 0x31, 0xb8
};

/* Decoding is bounded: a small input may declare up to 64 MiB; the fuzzer
 * should spend its time on the parser, not on memset-sized outputs. */
#define FUZZ_MAX_DECODE (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_meta m;
    struct wire_view v;
    int rc;

    (void)wire_verify(data, size, fuzz_pk);
    rc = wire_parse(data, size, &m, &v);
    if (rc == WIRE_OK) {
        size_t bytes = wire_samples_bytes(&m);
        size_t content = m.version == 2 && (m.flags & WIRE_FLAG_PREDICT) ? wire_content_bytes(&m)
                                                                         : bytes;
        /* parse promised these; a violation is a bug worth a crash */
        if (bytes == 0 || content == 0 || v.content_size != content || v.payload < data ||
            v.payload + v.payload_len > data + size || v.signed_len + WIRE_SIG_LEN != size)
            abort();
        if (bytes <= FUZZ_MAX_DECODE) {
            void *out = malloc(bytes);
            if (out) {
                (void)wire_decode_samples(&m, &v, out, bytes);
                free(out);
            }
            size_t need = wire_decode_scratch_bound(&m);
            ZSTD_DCtx *dctx = need ? ZSTD_createDCtx() : NULL;
            void *scratch = need ? malloc(need) : NULL;
            out = malloc(bytes);
            if (dctx && scratch && out)
                (void)wire_decode_samples_scratch(dctx, &m, &v, scratch, need, out, bytes);
            free(out);
            free(scratch);
            ZSTD_freeDCtx(dctx);
        }
    } else if (rc > 0 || wire_errcode(rc)[0] == '\0') {
        abort();
    }
    return 0;
}
