/* check_detect_manip.c - manipulated channels (valve positions, set-points):
 * an operator's move of one and the plant's transient after it trigger
 * nothing once the channel is declared, and trigger without the
 * declaration; a fault of a process channel still triggers; the exported
 * score does not depend on the declaration; the list's errors are clear. */
#include <check.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/command/command.h"
#include "agent/config/config.h"
#include "agent/config/detect_opts.h"
#include "agent/core/detect.h"

#define NCH 6
#define MV 0                    /* the valve position */

static unsigned char arena[1 << 18], arena2[1 << 18];

struct plant {
    uint64_t rng;
    double valve, flow, press;  /* flow follows the valve with a 20 s lag */
};

static double uniform(struct plant *p)
{
    p->rng ^= p->rng << 13; p->rng ^= p->rng >> 7; p->rng ^= p->rng << 17;
    return (double)(p->rng >> 11) / 9007199254740992.0 - 0.5;
}

/* A small process at 1 Hz: the valve (channel 0) sets the flow (1), which
 * sets a pressure (2) at once and a level (3) slowly; 4 and 5 are
 * temperatures that move with neither.  At move_at the operator steps the
 * valve from 40 to 55 %; at fault_at the pressure (channel 2) leaves its
 * relation to the flow by 2 units (a blockage; its noise is 0.02 wide). */
static void plant_frame(struct plant *p, long i, long move_at, long fault_at, float *x)
{
    double target = (move_at >= 0 && i >= move_at) ? 55.0 : 40.0;

    p->valve = target;
    p->flow += (0.05 * p->valve - p->flow) / 20.0;
    x[0] = (float)(p->valve + 0.05 * uniform(p));
    x[1] = (float)(p->flow + 0.02 * uniform(p));
    x[2] = (float)(1.0 + 0.5 * p->flow + 0.02 * uniform(p) +
                   (fault_at >= 0 && i >= fault_at ? 2.0 : 0.0));
    p->press += (0.3 * p->flow - p->press) / 200.0;
    x[3] = (float)(p->press + 0.01 * uniform(p));
    x[4] = (float)(20.0 + 0.1 * uniform(p));
    x[5] = (float)(21.0 + 0.1 * uniform(p));
}

static void plant_init(struct plant *p)
{
    p->rng = 0x2545F4914F6CDD1Dull;
    p->valve = 40.0;
    p->flow = 2.0;
    p->press = 0.6;
}

/* Runs n frames; counts triggers in [from, to) and, if d2 is given, checks
 * that it exports the same score on every frame. */
static long run(struct detect *d, struct detect *d2, long n, long move_at, long fault_at,
                long from, long to, long *total, unsigned *last_channel)
{
    struct plant p;
    struct detect_result r, r2;
    float x[NCH];
    long i, in = 0;

    plant_init(&p);
    *total = 0;
    for (i = 0; i < n; i++) {
        plant_frame(&p, i, move_at, fault_at, x);
        detect_step(d, x, (int64_t)i * 1000000, &r);
        if (d2) {
            detect_step(d2, x, (int64_t)i * 1000000, &r2);
            ck_assert_msg(memcmp(&r.score, &r2.score, sizeof(r.score)) == 0,
                          "frame %ld: exported score %g with, %g without the declaration", i,
                          (double)r.score, (double)r2.score);
        }
        if (!r.triggered)
            continue;
        (*total)++;
        if (last_channel)
            *last_channel = r.channel;
        if (i >= from && i < to)
            in++;
    }
    return in;
}

static struct detect *init_with(void *a, size_t len, uint64_t manipulated)
{
    struct detect_config c;

    detect_config_defaults(&c);
    c.manipulated = manipulated;
    return detect_init(&c, NCH, 1.0, a, len);
}

/* The transient of the move (the flow settling over about a minute, the
 * level over ten) triggers without the declaration and not with it; the
 * exported score is the same either way. */
START_TEST(move_with_transient)
{
    struct detect *with = init_with(arena, sizeof(arena), 1u << MV);
    struct detect *without = init_with(arena2, sizeof(arena2), 0);
    long total_with, total_without, in_with, in_without;

    ck_assert_ptr_nonnull(with);
    ck_assert_ptr_nonnull(without);
    /* both in one pass, frame by frame, for the exported score */
    in_with = run(with, without, 7000, 3000, -1, 3000, 4000, &total_with, NULL);
    ck_assert_int_eq(in_with, 0);
    ck_assert_int_eq(total_with, 0);
    without = init_with(arena2, sizeof(arena2), 0);
    in_without = run(without, NULL, 7000, 3000, -1, 3000, 4000, &total_without, NULL);
    ck_assert_int_ge(in_without, 1);
}
END_TEST

/* Six hours of the same plant with no move: quiet with the declaration. */
START_TEST(quiet_without_move)
{
    struct detect *d = init_with(arena, sizeof(arena), 1u << MV);
    long total;

    ck_assert_ptr_nonnull(d);
    run(d, NULL, 6 * 3600, -1, -1, 0, 0, &total, NULL);
    ck_assert_int_eq(total, 0);
}
END_TEST

/* A fault of a process channel with no move of the valve still triggers,
 * naming a process channel. */
START_TEST(fault_without_move)
{
    struct detect *d = init_with(arena, sizeof(arena), 1u << MV);
    long total, in;
    unsigned ch = 99;

    ck_assert_ptr_nonnull(d);
    in = run(d, NULL, 7000, -1, 4500, 4500, 4520, &total, &ch);
    ck_assert_int_eq(in, 1);
    ck_assert_int_eq(total, 1);
    ck_assert_uint_ne(ch, MV);
}
END_TEST

/* The same fault two minutes after the valve's move, inside the settle: the
 * level trigger is held, the multivariate one (the pressure leaving its
 * relation to the flow) still fires within the settle. */
START_TEST(fault_during_settle)
{
    struct detect *d = init_with(arena, sizeof(arena), 1u << MV);
    long total, in;

    ck_assert_ptr_nonnull(d);
    in = run(d, NULL, 7000, 3000, 3120, 3120, 3300, &total, NULL);
    ck_assert_int_eq(in, 1);
}
END_TEST

START_TEST(list_parsing)
{
    static const char *const names[NCH] = { "VC101_pos", "FT104", "PT401", "LI405", "T1", "3" };
    struct detect_config c;
    char err[256];

    detect_config_defaults(&c);
    ck_assert_uint_eq(c.manipulated, 0);
    ck_assert_int_eq(detect_opts_manipulated(&c, "VC101_pos,PT401", names, NCH, err,
                                             sizeof(err)), 0);
    ck_assert_uint_eq(c.manipulated, 0x5u);
    ck_assert_int_eq(detect_opts_manipulated(&c, " PT401 ,\tVC101_pos", names, NCH, err,
                                             sizeof(err)), 0);     /* blanks around entries */
    ck_assert_uint_eq(c.manipulated, 0x5u);
    /* an index where no channel has that name; a name first */
    ck_assert_int_eq(detect_opts_manipulated(&c, "1,3", names, NCH, err, sizeof(err)), 0);
    ck_assert_uint_eq(c.manipulated, (1u << 1) | (1u << 5));
    ck_assert_int_eq(detect_opts_manipulated(&c, "", names, NCH, err, sizeof(err)), 0);
    ck_assert_uint_eq(c.manipulated, 0);
    c.manipulated = 0x1u;
    ck_assert_int_eq(detect_opts_manipulated(&c, "VC102_pos", names, NCH, err, sizeof(err)), -2);
    ck_assert_str_eq(err, "manipulated: no channel named 'VC102_pos'");
    ck_assert_int_eq(detect_opts_manipulated(&c, "7", names, NCH, err, sizeof(err)), -2);
    ck_assert_str_eq(err, "manipulated: channel index 7 beyond the stream's 6 channels (0-based)");
    ck_assert_int_eq(detect_opts_manipulated(&c, "FT104,1", names, NCH, err, sizeof(err)), -2);
    ck_assert_str_eq(err, "manipulated: channel '1' given twice");
    ck_assert_int_eq(detect_opts_manipulated(&c, "FT104,", names, NCH, err, sizeof(err)), -2);
    ck_assert_str_eq(err, "manipulated: trailing comma in 'FT104,'");
    ck_assert_int_eq(detect_opts_manipulated(&c, "FT104,,T1", names, NCH, err, sizeof(err)), -2);
    ck_assert_str_eq(err, "manipulated: empty entry in 'FT104,,T1'");
    ck_assert_int_eq(detect_opts_manipulated(&c, "0,1,2,3,4,5", NULL, NCH, err, sizeof(err)), -2);
    ck_assert_str_eq(err, "manipulated: every channel declared, none left to watch");
    ck_assert_int_eq(detect_opts_manipulated(&c, "FT104", NULL, NCH, err, sizeof(err)), -2);
    ck_assert_str_eq(err, "manipulated: no channel named 'FT104' (channels are given by "
                     "0-based index here)");
    ck_assert_uint_eq(c.manipulated, 0x1u);     /* unchanged by every error */
    /* the core refuses a channel the stream does not have */
    c.manipulated = 1u << 6;
    ck_assert_ptr_null(detect_init(&c, NCH, 1.0, arena, sizeof(arena)));
    c.manipulated = 1u << 5;
    ck_assert_ptr_nonnull(detect_init(&c, NCH, 1.0, arena, sizeof(arena)));
}
END_TEST

/* End to end through replay: --manipulated is resolved against the CSV's
 * header when the source is open; an unknown name stops replay before any
 * row is scored, a known one (or an index) runs. */
START_TEST(replay_resolves_names)
{
    char dir[] = "/tmp/manipXXXXXX", in[64], out[64];
    static struct agent_config c;
    atomic_int stop = 0;
    FILE *f;
    long i, rows = 0;
    char line[256];

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(in, sizeof(in), "%s/in.csv", dir);
    snprintf(out, sizeof(out), "%s/out.csv", dir);
    f = fopen(in, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "timestamp,VC101_pos,FT104\n");
    for (i = 0; i < 100; i++)
        fprintf(f, "%ld,%g,%g\n", 1700000000 + i, 40.0 + (i >= 50 ? 15.0 : 0.0),
                2.0 + 0.001 * (double)(i % 7));
    fclose(f);
    agent_config_defaults(&c, AGENT_CMD_REPLAY);
    snprintf(c.input, sizeof(c.input), "%s", in);
    snprintf(c.scores, sizeof(c.scores), "%s", out);
    snprintf(c.manipulated, sizeof(c.manipulated), "VC102_pos");
    ck_assert_int_eq(command_replay(&c, &stop), 1);
    f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_null(fgets(line, sizeof(line), f));   /* nothing scored */
    fclose(f);
    snprintf(c.manipulated, sizeof(c.manipulated), "VC101_pos");
    ck_assert_int_eq(command_replay(&c, &stop), 0);
    snprintf(c.manipulated, sizeof(c.manipulated), "1");
    ck_assert_int_eq(command_replay(&c, &stop), 0);
    f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f))
        rows++;
    fclose(f);
    ck_assert_int_eq(rows, 101);                        /* header and one row per row */
    unlink(in);
    unlink(out);
    rmdir(dir);
}
END_TEST

Suite *detect_manip_suite(void);

Suite *detect_manip_suite(void)
{
    Suite *s = suite_create("detect_manip");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, move_with_transient);
    tcase_add_test(tc, quiet_without_move);
    tcase_add_test(tc, fault_without_move);
    tcase_add_test(tc, fault_during_settle);
    tcase_add_test(tc, list_parsing);
    tcase_add_test(tc, replay_resolves_names);
    suite_add_tcase(s, tc);
    return s;
}
