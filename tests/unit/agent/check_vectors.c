/* check_vectors.c - the golden wire envelopes on the agent's side.
 *
 * tests/vectors/ is shared with the schema suite and the server's
 * integration test: here each envelope must parse and verify with the
 * vectors' public key, and go through the agent's spool (put, close,
 * re-open, take) byte for byte, as an upload would send it. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/spool/spool.h"
#include "schema/wire.h"

Suite *vectors_suite(void);

static const char *const vector_names[] = { "i16_2ch", "f32_4ch", "i32_1ch",
                                            "v2_i16_2ch", "v2_i32_1ch", "v2_f32_2ch" };
#define VECTORS (sizeof vector_names / sizeof vector_names[0])

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* public_key=<hex> from the vector's .txt */
static int vector_pk(const char *name, uint8_t pk[WIRE_PK_LEN])
{
    char path[256], line[512];
    FILE *f;
    int found = -1;

    snprintf(path, sizeof path, "tests/vectors/%s.txt", name);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "public_key=", 11) == 0) {
            for (int i = 0; i < WIRE_PK_LEN; i++) {
                unsigned v;
                if (sscanf(line + 11 + 2 * i, "%2x", &v) != 1)
                    break;
                pk[i] = (uint8_t)v;
                if (i == WIRE_PK_LEN - 1)
                    found = 0;
            }
        }
    fclose(f);
    return found;
}

START_TEST(test_vector_parses_and_verifies)
{
    const char *name = vector_names[_i];
    char path[256];
    uint8_t pk[WIRE_PK_LEN], *env;
    size_t len;
    struct wire_meta m;
    struct wire_view v;

    snprintf(path, sizeof path, "tests/vectors/%s.prsn", name);
    env = slurp(path, &len);
    ck_assert_msg(env != NULL, "cannot read %s", path);
    ck_assert_int_eq(vector_pk(name, pk), 0);
    ck_assert_int_eq(wire_parse(env, len, &m, &v), 0);
    ck_assert_uint_eq(m.version, name[0] == 'v' ? 2 : 1);
    ck_assert_int_eq(wire_verify(env, len, pk), 0);
    env[len / 2] ^= 0x01;
    ck_assert_int_ne(wire_verify(env, len, pk), 0);
    free(env);
}
END_TEST

START_TEST(test_vector_through_spool)
{
    const char *name = vector_names[_i];
    char path[256], dir[] = "/tmp/precursor-vec-XXXXXX";
    uint8_t *env, *back = NULL;
    size_t len, back_len = 0;
    uint64_t seq = 0;
    struct spool *sp;

    snprintf(path, sizeof path, "tests/vectors/%s.prsn", name);
    env = slurp(path, &len);
    ck_assert_ptr_nonnull(env);
    ck_assert_ptr_nonnull(mkdtemp(dir));

    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    ck_assert_int_eq(spool_put(sp, spool_next_seq(sp), 1, env, len), 0);
    spool_close(sp);

    ck_assert_int_eq(spool_open(dir, 0, &sp), 0);
    ck_assert_int_eq(spool_take(sp, &seq, &back, &back_len), 0);
    ck_assert_uint_eq(seq, 1);
    ck_assert_uint_eq(back_len, len);
    ck_assert_int_eq(memcmp(back, env, len), 0);
    ck_assert_int_eq(spool_done(sp, seq), 0);
    spool_close(sp);

    free(back);
    free(env);
    {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

Suite *vectors_suite(void)
{
    Suite *s = suite_create("vectors");
    TCase *tc = tcase_create("golden");

    tcase_add_loop_test(tc, test_vector_parses_and_verifies, 0, VECTORS);
    tcase_add_loop_test(tc, test_vector_through_spool, 0, VECTORS);
    suite_add_tcase(s, tc);
    return s;
}
