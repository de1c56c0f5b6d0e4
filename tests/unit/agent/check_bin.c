/* check_bin.c - raw i16le/f32le frames, synthesised time, truncated last frame. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/source/source.h"

Suite *bin_suite(void);

static char path[64];

static void write_file(const unsigned char *b, size_t n)
{
    int fd;
    FILE *f;

    strcpy(path, "check_bin_XXXXXX");     /* in the working folder */
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

START_TEST(i16le_frames)
{
    /* 2 channels, 3 frames: (1,-2) (32767,-32768) (256, 0) */
    const unsigned char b[] = {1, 0, 0xfe, 0xff, 0xff, 0x7f, 0x00, 0x80, 0x00, 0x01, 0, 0};
    struct source *s;
    float v[16];
    int64_t t[8];
    size_t n;

    write_file(b, sizeof(b));
    ck_assert_int_eq(source_bin_open(path, "i16le", 2, 100.0, 1000000, &s), 0);
    ck_assert_int_eq(s->wire_type, WIRE_I16);
    ck_assert_ptr_null(s->ts_text);
    ck_assert_int_eq(s->next(s, v, t, 8, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_float_eq(v[0], 1.0f);
    ck_assert_float_eq(v[1], -2.0f);
    ck_assert_float_eq(v[2], 32767.0f);
    ck_assert_float_eq(v[3], -32768.0f);
    ck_assert_float_eq(v[4], 256.0f);
    ck_assert_int_eq(t[0], 1000000);
    ck_assert_int_eq(t[2], 1020000);
    ck_assert_int_eq(s->next(s, v, t, 8, &n), SOURCE_EOF);
    s->close(s);
    unlink(path);
}
END_TEST

START_TEST(f32le_frames_in_small_blocks)
{
    float in[3 * 100];
    unsigned char b[sizeof(in)];
    struct source *s;
    float v[3 * 7];
    int64_t t[7];
    size_t n, total = 0, i;
    int rc;

    for (i = 0; i < 300; i++)
        in[i] = (float)i * 0.5f - 3.0f;
    for (i = 0; i < 300; i++) {
        uint32_t u;

        memcpy(&u, &in[i], 4);
        b[4 * i] = (unsigned char)u;
        b[4 * i + 1] = (unsigned char)(u >> 8);
        b[4 * i + 2] = (unsigned char)(u >> 16);
        b[4 * i + 3] = (unsigned char)(u >> 24);
    }
    write_file(b, sizeof(b));
    ck_assert_int_eq(source_bin_open(path, "f32le", 3, 1000.0, 0, &s), 0);
    while ((rc = s->next(s, v, t, 7, &n)) == 0) {
        ck_assert_uint_le(n, 7);
        for (i = 0; i < n * 3; i++)
            ck_assert_float_eq(v[i], in[total * 3 + i]);
        ck_assert_int_eq(t[0], (int64_t)total * 1000);
        total += n;
    }
    ck_assert_int_eq(rc, SOURCE_EOF);
    ck_assert_uint_eq(total, 100);
    s->close(s);
    unlink(path);
}
END_TEST

START_TEST(truncated_last_frame)
{
    unsigned char b[4 * 2 * 5 + 3];
    struct source *s;
    float v[64];
    int64_t t[32];
    size_t n;

    memset(b, 0, sizeof(b));
    write_file(b, sizeof(b));
    ck_assert_int_eq(source_bin_open(path, "f32le", 2, 10.0, 0, &s), 0);
    ck_assert_int_eq(s->next(s, v, t, 32, &n), 0);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(s->next(s, v, t, 32, &n), SOURCE_EFORMAT);
    ck_assert_ptr_nonnull(strstr(s->err, "truncated frame 5"));
    /* named by its file, as a CSV's errors are (it said "source: truncated
     * frame 5 ...", which file not said) */
    ck_assert_msg(strncmp(s->err, path, strlen(path)) == 0 && s->err[strlen(path)] == ':',
                  "'%s' does not start with the file's name", s->err);
    s->close(s);
    unlink(path);
}
END_TEST

START_TEST(bad_arguments)
{
    struct source *s = NULL;

    ck_assert_int_eq(source_bin_open("-", "u8", 1, 10.0, 0, &s), SOURCE_EARG);
    ck_assert_int_eq(source_bin_open("-", "f32le", 0, 10.0, 0, &s), SOURCE_EARG);
    ck_assert_int_eq(source_bin_open("-", "f32le", 65, 10.0, 0, &s), SOURCE_EARG);
    ck_assert_int_eq(source_bin_open("-", "f32le", 1, 0.0, 0, &s), SOURCE_EARG);
    ck_assert_int_eq(source_bin_open("no/such", "f32le", 1, 10.0, 0, &s), SOURCE_EIO);
    ck_assert_ptr_null(s);
}
END_TEST

Suite *bin_suite(void)
{
    Suite *s = suite_create("bin");
    TCase *tc = tcase_create("frames");

    tcase_add_test(tc, i16le_frames);
    tcase_add_test(tc, f32le_frames_in_small_blocks);
    tcase_add_test(tc, truncated_last_frame);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}
