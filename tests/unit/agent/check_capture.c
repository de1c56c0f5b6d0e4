/* check_capture.c - the portable core's capture (agent/core/capture.c): the
 * window around a trigger, merge up to the longest window or hold-off while
 * one is pending, cut short at end of input, and the cut out of the ring. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "agent/core/capture.h"
#include "agent/core/ring.h"

Suite *capture_suite(void);

static struct detect_result hit(float score, uint16_t channel)
{
    struct detect_result r = { score, channel, DETECT_LEVEL, 1, 0, score };
    return r;
}

START_TEST(test_window_around_trigger)
{
    struct capture c;
    struct capture_window w;
    struct detect_result r = hit(0.9f, 1);

    capture_init(&c, 10, 5, 15, 0);
    ck_assert(!capture_pending(&c));
    ck_assert_int_eq(capture_trigger(&c, 100, 123456, &r), CAPTURE_STARTED);
    ck_assert(capture_pending(&c));
    ck_assert(!capture_due(&c, 104));
    ck_assert(capture_due(&c, 105));
    capture_close(&c, 105, &w);
    ck_assert(!capture_pending(&c));
    ck_assert_uint_eq(w.trigger, 100);
    ck_assert_uint_eq(w.first, 90);
    ck_assert_uint_eq(w.end, 105);
    ck_assert_uint_eq(capture_frames(&w), 15);
    ck_assert_int_eq(w.t_us, 123456);
    ck_assert_float_eq(w.score, 0.9f);
    ck_assert_uint_eq(w.channel, 1);
    ck_assert_uint_eq(w.detector, DETECT_LEVEL);

    /* Near the start there is less before the trigger than asked for. */
    ck_assert_int_eq(capture_trigger(&c, 3, 0, &r), CAPTURE_STARTED);
    capture_close(&c, 8, &w);
    ck_assert_uint_eq(w.first, 0);
    ck_assert_uint_eq(w.end, 8);
}
END_TEST

START_TEST(test_merge_up_to_longest_window)
{
    struct capture c;
    struct capture_window w;
    struct detect_result a = hit(0.8f, 0), b = hit(0.95f, 1), lower = hit(0.85f, 1);

    capture_init(&c, 10, 5, 30, 1);
    ck_assert_int_eq(capture_trigger(&c, 100, 0, &a), CAPTURE_STARTED);
    ck_assert_int_eq(capture_trigger(&c, 103, 0, &b), CAPTURE_MERGED);
    ck_assert(!capture_due(&c, 105));
    ck_assert(capture_due(&c, 108));
    /* Past the longest window (first 90 + 30 = 120) the window stops growing. */
    ck_assert_int_eq(capture_trigger(&c, 118, 0, &lower), CAPTURE_MERGED);
    capture_close(&c, 200, &w);
    ck_assert_uint_eq(w.first, 90);
    ck_assert_uint_eq(w.end, 120);
    ck_assert_uint_eq(w.trigger, 100);
    ck_assert_float_eq(w.score, 0.95f);       /* the highest score merged */
    ck_assert_uint_eq(w.channel, 0);          /* the first trigger's */
}
END_TEST

START_TEST(test_hold_off_and_cut_short)
{
    struct capture c;
    struct capture_window w;
    struct detect_result r = hit(0.9f, 0);

    capture_init(&c, 10, 5, 15, 0);
    ck_assert_int_eq(capture_trigger(&c, 100, 0, &r), CAPTURE_STARTED);
    ck_assert_int_eq(capture_trigger(&c, 102, 0, &r), CAPTURE_HELD_OFF);
    /* End of input two frames after the trigger: the window ends there. */
    capture_close(&c, 102, &w);
    ck_assert_uint_eq(w.first, 90);
    ck_assert_uint_eq(w.end, 102);
    ck_assert_uint_eq(capture_frames(&w), 12);
}
END_TEST

START_TEST(test_cut_from_ring)
{
    enum { CH = 2, CAP = 32 };
    struct ring ring;
    struct capture c;
    struct capture_window w;
    struct detect_result r = hit(0.9f, 0);
    size_t len = ring_arena_size(CH, CAP);
    void *arena = aligned_alloc(16, (len + 15) & ~(size_t)15);
    float out[CH * 6];

    ck_assert_ptr_nonnull(arena);
    ck_assert_int_eq(ring_init(&ring, CH, CAP, arena, len), 0);
    capture_init(&c, 3, 3, 6, 0);
    for (int f = 0; f < 40; f++) {
        float frame[CH] = { (float)f, (float)(1000 + f) };
        ring_push(&ring, frame, f);
        if (f == 30)
            capture_trigger(&c, (uint64_t)f, f, &r);
        if (capture_due(&c, ring.total))
            break;
    }
    capture_close(&c, ring.total, &w);
    ck_assert_int_eq(capture_cut(&ring, &w, out), 0);
    for (int i = 0; i < 6; i++) {       /* planar: channel 0, then channel 1 */
        ck_assert_float_eq(out[i], (float)(27 + i));
        ck_assert_float_eq(out[6 + i], (float)(1027 + i));
    }
    /* A window the ring has overwritten is refused. */
    for (int f = 40; f < 80; f++) {
        float frame[CH] = { 0, 0 };
        ring_push(&ring, frame, f);
    }
    ck_assert_int_eq(capture_cut(&ring, &w, out), -1);
    free(arena);
}
END_TEST

Suite *capture_suite(void)
{
    Suite *s = suite_create("capture");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_window_around_trigger);
    tcase_add_test(tc, test_merge_up_to_longest_window);
    tcase_add_test(tc, test_hold_off_and_cut_short);
    tcase_add_test(tc, test_cut_from_ring);
    suite_add_tcase(s, tc);
    return s;
}
