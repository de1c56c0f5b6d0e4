/* check_decimate.c - min/max per pixel column: a one-sample spike survives
 * at every width, columns tile the range exactly, narrow ranges go raw, and
 * out-of-range requests are refused. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "schema/wire.h"
#include "server/decimate/decimate.h"

#define N 100000

static int16_t *make_spiky(size_t spike_hi, size_t spike_lo)
{
    int16_t *x = calloc(2 * N, sizeof *x);
    size_t i;

    for (i = 0; i < 2 * N; i++)
        x[i] = (int16_t)((i * 7919u) % 201) - 100;    /* noise in [-100, 100] */
    x[spike_hi] = 30000;                                /* channel 0 */
    x[N + spike_lo] = -30000;                           /* channel 1 */
    return x;
}

START_TEST(test_spike_every_px)
{
    int16_t *x = make_spiky(12345, 99999);
    struct decimate_src s = { x, WIRE_I16, N, 2, NULL };
    double *mn = malloc(DECIMATE_PX_MAX * sizeof *mn), *mx = malloc(DECIMATE_PX_MAX * sizeof *mx);
    unsigned px;

    for (px = 1; px <= DECIMATE_PX_MAX; px += (px < 64 ? 1 : 37)) {
        unsigned c, hits = 0;
        double top = -1e9, bottom = 1e9;

        ck_assert_int_eq(decimate_minmax(&s, 0, 0, N, px, mn, mx), 0);
        for (c = 0; c < px; c++) {
            if (mx[c] == 30000) {
                hits++;
                /* the spike is in the column whose range holds its index */
                ck_assert_uint_le(decimate_col_start(0, N, px, c), 12345);
                ck_assert_uint_gt(decimate_col_start(0, N, px, c + 1), 12345);
            }
            if (mx[c] > top)
                top = mx[c];
        }
        ck_assert_uint_eq(hits, 1);
        ck_assert(top == 30000);
        ck_assert_int_eq(decimate_minmax(&s, 1, 0, N, px, mn, mx), 0);
        for (c = 0; c < px; c++)
            if (mn[c] < bottom)
                bottom = mn[c];
        ck_assert_msg(bottom == -30000, "last-sample dip lost at px=%u", px);
    }
    /* a zoomed window that holds the spike keeps it too */
    ck_assert_int_eq(decimate_minmax(&s, 0, 12000, 13001, 300, mn, mx), 0);
    {
        unsigned c, hits = 0;

        for (c = 0; c < 300; c++)
            hits += mx[c] == 30000;
        ck_assert_uint_eq(hits, 1);
    }
    free(mn);
    free(mx);
    free(x);
}
END_TEST

START_TEST(test_columns_tile_range)
{
    size_t i0 = 17, i1 = 17 + 1001;
    unsigned px, c, bad = 0;

    /* Half a million comparisons: counted here and asserted once, since
     * each Check assertion costs a message to the runner. */
    for (px = 1; px <= 1001; px++) {
        ck_assert_uint_eq(decimate_col_start(i0, i1, px, 0), i0);
        ck_assert_uint_eq(decimate_col_start(i0, i1, px, px), i1);
        for (c = 0; c < px; c++)
            bad += decimate_col_start(i0, i1, px, c) >= decimate_col_start(i0, i1, px, c + 1);
    }
    ck_assert_uint_eq(bad, 0);
}
END_TEST

START_TEST(test_raw_when_narrow)
{
    ck_assert_int_eq(decimate_is_raw(0, 2000, 1000), 1);
    ck_assert_int_eq(decimate_is_raw(0, 2001, 1000), 0);
    ck_assert_int_eq(decimate_is_raw(500, 501, 1), 1);
    ck_assert_int_eq(decimate_is_raw(0, N, 1600), 0);
}
END_TEST

START_TEST(test_range_bounds)
{
    size_t a, b;

    /* whole snapshot, clamped at both ends */
    ck_assert_int_eq(decimate_range(-5, 1e9, 1000, N, &a, &b), 0);
    ck_assert_uint_eq(a, 0);
    ck_assert_uint_eq(b, N);
    /* [1.0 s, 2.0 s] at 1 kHz: samples 1000..2000 inclusive */
    ck_assert_int_eq(decimate_range(1.0, 2.0, 1000, N, &a, &b), 0);
    ck_assert_uint_eq(a, 1000);
    ck_assert_uint_eq(b, 2001);
    /* refused: empty, reversed, outside, not finite, bad rate */
    ck_assert_int_eq(decimate_range(2.0, 2.0, 1000, N, &a, &b), -1);
    ck_assert_int_eq(decimate_range(3.0, 2.0, 1000, N, &a, &b), -1);
    ck_assert_int_eq(decimate_range(200.0, 300.0, 1000, N, &a, &b), -1);
    ck_assert_int_eq(decimate_range(NAN, 2.0, 1000, N, &a, &b), -1);
    ck_assert_int_eq(decimate_range(0, INFINITY, 1000, N, &a, &b), -1);
    ck_assert_int_eq(decimate_range(0, 1, 0, N, &a, &b), -1);
    ck_assert_int_eq(decimate_range(0, 1, 1000, 0, &a, &b), -1);
}
END_TEST

START_TEST(test_minmax_refuses)
{
    int16_t x[10] = { 0 };
    struct decimate_src s = { x, WIRE_I16, 10, 1, NULL };
    double mn[16], mx[16];

    ck_assert_int_eq(decimate_minmax(&s, 0, 0, 10, 0, mn, mx), -1);        /* px 0 */
    ck_assert_int_eq(decimate_minmax(&s, 0, 0, 10, 11, mn, mx), -1);       /* px > samples */
    ck_assert_int_eq(decimate_minmax(&s, 1, 0, 10, 2, mn, mx), -1);        /* no channel 1 */
    ck_assert_int_eq(decimate_minmax(&s, 0, 0, 11, 2, mn, mx), -1);        /* past the end */
    ck_assert_int_eq(decimate_minmax(&s, 0, 5, 5, 1, mn, mx), -1);         /* empty */
    ck_assert_int_eq(decimate_minmax(&s, 0, 0, 10, 10, mn, mx), 0);        /* one per column */
}
END_TEST

START_TEST(test_sample_types)
{
    float f[4] = { 1.5f, -2.25f, 3.0f, 0.0f };
    int32_t i[4] = { 7, -1000000, 2000000000, 0 };
    struct decimate_src sf = { f, WIRE_F32, 4, 1, NULL }, si = { i, WIRE_I32, 4, 1, NULL };
    double mn[2], mx[2];

    ck_assert_int_eq(decimate_minmax(&sf, 0, 0, 4, 2, mn, mx), 0);
    ck_assert(mn[0] == -2.25 && mx[0] == 1.5 && mn[1] == 0.0 && mx[1] == 3.0);
    ck_assert_int_eq(decimate_minmax(&si, 0, 0, 4, 1, mn, mx), 0);
    ck_assert(mn[0] == -1000000 && mx[0] == 2000000000);
}
END_TEST

/* Little-endian readers, written independently of the encoder's. */
static uint64_t rd_u(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;

    while (n--)
        v = (v << 8) | p[n];
    return v;
}

static double rd_f64(const uint8_t *p)
{
    uint64_t v = rd_u(p, 8);
    double d;

    memcpy(&d, &v, sizeof d);
    return d;
}

static float rd_f32(const uint8_t *p)
{
    uint32_t v = (uint32_t)rd_u(p, 4);
    float f;

    memcpy(&f, &v, sizeof f);
    return f;
}

START_TEST(test_binary_minmax)
{
    int16_t *x = make_spiky(12345, 99999);
    struct decimate_src s = { x, WIRE_I16, N, 2, NULL };
    struct decimate_bin_info info = { 1000.0, 40000 };
    const unsigned px = 1600;
    size_t len = decimate_bin_size(&s, 0, N, px), c;
    uint8_t *b = malloc(len);
    double *mn = malloc(px * sizeof *mn), *mx = malloc(px * sizeof *mx);
    unsigned ch, hits = 0, bad = 0;

    ck_assert_uint_eq(len, DECIMATE_BIN_HEADER + px * 8 + 2 * (size_t)px * 2 * 4);
    ck_assert_uint_eq(decimate_bin_write(&s, &info, 0, N, px, b, len - 1), 0);
    ck_assert_uint_eq(decimate_bin_write(&s, &info, 0, N, px, b, len), len);
    ck_assert(memcmp(b, "PRSS", 4) == 0);
    ck_assert_uint_eq(rd_u(b + 4, 2), 1);
    ck_assert_uint_eq(b[6], DECIMATE_BIN_MINMAX);
    ck_assert_uint_eq(b[7], DECIMATE_BIN_F32);
    ck_assert_uint_eq(rd_u(b + 8, 4), 2);
    ck_assert_uint_eq(rd_u(b + 12, 4), px);
    ck_assert_uint_eq(rd_u(b + 16, 8), 0);
    ck_assert_uint_eq(rd_u(b + 24, 8), N);
    ck_assert_uint_eq(rd_u(b + 32, 8), N);
    ck_assert(rd_f64(b + 40) == 1000.0 && rd_f64(b + 48) == 40.0);
    ck_assert_uint_eq(rd_u(b + 56, 4), 40000);
    for (c = 0; c < px; c++)
        bad += rd_f64(b + 64 + c * 8) != decimate_col_start(0, N, px, (unsigned)c) / 1000.0;
    /* the same extremes as the JSON path's decimate_minmax, spike included */
    for (ch = 0; ch < 2; ch++) {
        const uint8_t *v = b + 64 + px * 8 + (size_t)ch * px * 2 * 4;

        ck_assert_int_eq(decimate_minmax(&s, ch, 0, N, px, mn, mx), 0);
        for (c = 0; c < px; c++) {
            bad += rd_f32(v + c * 4) != mn[c];
            bad += rd_f32(v + (px + c) * 4) != mx[c];
            hits += rd_f32(v + (px + c) * 4) == 30000 || rd_f32(v + c * 4) == -30000;
        }
    }
    ck_assert_uint_eq(bad, 0);
    ck_assert_uint_eq(hits, 2);
    free(mn);
    free(mx);
    free(b);
    free(x);
}
END_TEST

START_TEST(test_binary_raw_and_i32)
{
    int16_t *x = make_spiky(500, 10);
    int32_t big[3] = { 16777217, -2000000001, 5 };      /* not exact as float */
    struct decimate_src s = { x, WIRE_I16, N, 2, NULL }, si = { big, WIRE_I32, 3, 1, NULL };
    struct decimate_bin_info info = { 250.0, 0 };
    uint8_t b[4096];
    size_t len = decimate_bin_size(&s, 400, 600, 100), i;

    /* 200 samples at 100 px: raw */
    ck_assert_uint_eq(len, 64 + 200 * 8 + 2 * 200 * 4);
    ck_assert_uint_eq(decimate_bin_write(&s, &info, 400, 600, 100, b, sizeof b), len);
    ck_assert_uint_eq(b[6], DECIMATE_BIN_RAW);
    ck_assert_uint_eq(rd_u(b + 12, 4), 200);
    for (i = 0; i < 200; i++)
        ck_assert(rd_f64(b + 64 + i * 8) == (400 + i) / 250.0 &&
                  rd_f32(b + 64 + 200 * 8 + i * 4) == x[400 + i] &&
                  rd_f32(b + 64 + 200 * 8 + 800 + i * 4) == x[N + 400 + i]);
    /* i32 travels as f64, exactly */
    len = decimate_bin_write(&si, &info, 0, 3, 8, b, sizeof b);
    ck_assert_uint_eq(len, 64 + 3 * 8 + 3 * 8);
    ck_assert_uint_eq(b[7], DECIMATE_BIN_F64);
    ck_assert(rd_f64(b + 64 + 24) == 16777217.0 && rd_f64(b + 64 + 32) == -2000000001.0);
    /* out of range */
    ck_assert_uint_eq(decimate_bin_size(&s, 0, N + 1, 100), 0);
    ck_assert_uint_eq(decimate_bin_size(&s, 5, 5, 100), 0);
    ck_assert_uint_eq(decimate_bin_size(&s, 0, N, 0), 0);
    ck_assert_uint_eq(decimate_bin_size(&s, 0, N, DECIMATE_PX_MAX + 1), 0);
    free(x);
}
END_TEST

/* The pyramid answers exactly what the sample scan answers: every type,
 * a length that leaves ragged blocks, NaNs (one starting a column, others
 * inside), equal values of both signs of zero, and many ranges and widths,
 * through decimate_minmax and the binary answer alike. */
START_TEST(test_pyramid_same_as_scan)
{
    enum { CH = 2, NS = 200003 };
    static const uint8_t types[3] = { WIRE_I16, WIRE_I32, WIRE_F32 };
    static double mn0[8192], mx0[8192], mn1[8192], mx1[8192];
    void *buf = malloc(sizeof(int32_t) * CH * NS);
    uint8_t *b0, *b1;
    uint64_t x = 12345;
    unsigned t, trial;

    ck_assert_ptr_nonnull(buf);
    b0 = malloc(1u << 20);
    b1 = malloc(1u << 20);
    for (t = 0; t < 3; t++) {
        struct decimate_src s = { buf, types[t], NS, CH, NULL }, sp;
        struct decimate_bin_info info = { 1000.0, 10 };
        size_t i, bytes = 0;

        for (i = 0; i < (size_t)CH * NS; i++) {
            int32_t v;

            x = x * 6364136223846793005ull + 1442695040888963407ull;
            v = (int32_t)((x >> 40) % 30000) - 15000;

            if (types[t] == WIRE_I16)
                ((int16_t *)buf)[i] = (int16_t)v;
            else if (types[t] == WIRE_I32)
                ((int32_t *)buf)[i] = v * 70000;
            else
                ((float *)buf)[i] = (x >> 20) % 97 == 0 ? NAN : (x >> 21) % 89 == 0 ? -0.0f
                                  : (float)v * 0.5f;
        }
        if (types[t] == WIRE_F32)
            ((float *)buf)[1000] = NAN;    /* columns starting here must be NaN */
        sp = s;
        sp.pyr = decimate_pyramid_build(&s, &bytes);
        ck_assert_ptr_nonnull(sp.pyr);
        ck_assert_uint_gt(bytes, 0);
        for (trial = 0; trial < 400; trial++) {
            size_t i0, i1, n0, n1;
            unsigned px, ch = trial % CH;

            x = x * 6364136223846793005ull + 1442695040888963407ull;
            i0 = trial == 0 ? 0 : trial == 1 ? 1000 : (size_t)(x >> 33) % NS;
            i1 = trial == 0 ? NS : i0 + 1 + (size_t)(x >> 11) % (NS - i0);
            px = 1 + (unsigned)((x >> 5) % 2000);
            if (i1 - i0 < px)
                continue;
            ck_assert_int_eq(decimate_minmax(&s, ch, i0, i1, px, mn0, mx0), 0);
            ck_assert_int_eq(decimate_minmax(&sp, ch, i0, i1, px, mn1, mx1), 0);
            ck_assert_mem_eq(mn0, mn1, px * sizeof mn0[0]);
            ck_assert_mem_eq(mx0, mx1, px * sizeof mx0[0]);
            n0 = decimate_bin_write(&s, &info, i0, i1, px, b0, 1u << 20);
            n1 = decimate_bin_write(&sp, &info, i0, i1, px, b1, 1u << 20);
            ck_assert_uint_gt(n0, 0);
            ck_assert_uint_eq(n0, n1);
            ck_assert_mem_eq(b0, b1, n0);
        }
        decimate_pyramid_free((struct decimate_pyramid *)sp.pyr);
    }
    {
        struct decimate_src s = { buf, WIRE_I16, DECIMATE_PYR_MIN_N - 1, 1, NULL };

        ck_assert_ptr_null(decimate_pyramid_build(&s, NULL));   /* too short to pay */
    }
    free(b0);
    free(b1);
    free(buf);
}
END_TEST

Suite *decimate_suite(void);
Suite *decimate_suite(void)
{
    Suite *s = suite_create("decimate");
    TCase *tc = tcase_create("core");

    /* whole 100,000-sample scans at ~300 widths, under sanitizers */
    tcase_set_timeout(tc, 30);

    tcase_add_test(tc, test_spike_every_px);
    tcase_add_test(tc, test_columns_tile_range);
    tcase_add_test(tc, test_raw_when_narrow);
    tcase_add_test(tc, test_range_bounds);
    tcase_add_test(tc, test_minmax_refuses);
    tcase_add_test(tc, test_sample_types);
    tcase_add_test(tc, test_binary_minmax);
    tcase_add_test(tc, test_binary_raw_and_i32);
    tcase_add_test(tc, test_pyramid_same_as_scan);
    suite_add_tcase(s, tc);
    return s;
}
