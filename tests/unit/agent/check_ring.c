/* check_ring.c - ring buffer: wrap-around, planar copy, refusal of evicted
 * or future frames, arena bounds. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "agent/core/ring.h"

Suite *ring_suite(void);

#define CH 3
#define CAP 10

static int64_t arena_buf[(CAP * sizeof(int64_t) + CH * CAP * sizeof(float)) / sizeof(int64_t) + 1];

static void push_n(struct ring *r, uint64_t from, uint64_t n)
{
    for (uint64_t i = from; i < from + n; i++) {
        float f[CH];
        for (unsigned c = 0; c < CH; c++)
            f[c] = (float)(i * 10 + c);
        ring_push(r, f, (int64_t)i * 1000);
    }
}

START_TEST(test_arena_bounds)
{
    struct ring r;
    size_t need = ring_arena_size(CH, CAP);

    ck_assert_uint_eq(need, CAP * 8 + CH * CAP * 4);
    ck_assert_uint_eq(ring_arena_size(0, CAP), 0);
    ck_assert_uint_eq(ring_arena_size(CH, 0), 0);
    ck_assert_int_eq(ring_init(&r, CH, CAP, arena_buf, need - 1), -1);
    ck_assert_int_eq(ring_init(&r, CH, CAP, (char *)arena_buf + 4, need), -1);
    ck_assert_int_eq(ring_init(&r, CH, CAP, arena_buf, need), 0);
}
END_TEST

START_TEST(test_wrap_around)
{
    struct ring r;
    float out[CH * CAP];

    ck_assert_int_eq(ring_init(&r, CH, CAP, arena_buf, sizeof(arena_buf)), 0);
    push_n(&r, 0, 27);          /* wraps twice, slot 7 is next */
    ck_assert_uint_eq(r.total, 27);
    /* Window crossing the physical end of the slots: frames 18..26. */
    ck_assert_int_eq(ring_copy(&r, 17, CAP, out), 0);
    for (unsigned c = 0; c < CH; c++)
        for (unsigned i = 0; i < CAP; i++)
            ck_assert_float_eq(out[c * CAP + i], (float)((17 + i) * 10 + c));
    ck_assert_int_eq(ring_time(&r, 26), 26000);
    ck_assert_int_eq(ring_time(&r, 17), 17000);
}
END_TEST

START_TEST(test_evicted_refused)
{
    struct ring r;
    float out[CH * CAP];

    ck_assert_int_eq(ring_init(&r, CH, CAP, arena_buf, sizeof(arena_buf)), 0);
    push_n(&r, 0, 25);
    ck_assert_int_eq(ring_copy(&r, 14, 3, out), -1);   /* 14 was overwritten */
    ck_assert_int_eq(ring_copy(&r, 15, 10, out), 0);
    ck_assert_int_eq(ring_copy(&r, 15, 11, out), -1);  /* 25 not yet pushed */
    ck_assert_int_eq(ring_copy(&r, 24, 2, out), -1);
    ck_assert_int_eq(ring_copy(&r, 0, 1, out), -1);
    ck_assert_int_eq(ring_time(&r, 14), INT64_MIN);
    ck_assert_int_eq(ring_time(&r, 25), INT64_MIN);
    ck_assert_int_eq(ring_copy(&r, UINT64_MAX, 2, out), -1);
}
END_TEST

START_TEST(test_before_full)
{
    struct ring r;
    float out[CH * 4];

    ck_assert_int_eq(ring_init(&r, CH, CAP, arena_buf, sizeof(arena_buf)), 0);
    ck_assert_int_eq(ring_copy(&r, 0, 1, out), -1);
    push_n(&r, 0, 4);
    ck_assert_int_eq(ring_copy(&r, 0, 4, out), 0);
    ck_assert_float_eq(out[2 * 4 + 3], 32.0f);
    ck_assert_int_eq(ring_copy(&r, 1, 4, out), -1);
}
END_TEST

Suite *ring_suite(void)
{
    Suite *s = suite_create("ring");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_arena_bounds);
    tcase_add_test(tc, test_wrap_around);
    tcase_add_test(tc, test_evicted_refused);
    tcase_add_test(tc, test_before_full);
    suite_add_tcase(s, tc);
    return s;
}
