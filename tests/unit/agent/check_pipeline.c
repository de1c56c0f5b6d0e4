/* check_pipeline.c - the sample path end to end, without a network: a
 * synthetic source with a known step triggers at the step, the local action
 * sees the event in its environment, and the snapshot decodes (wire_parse,
 * wire_verify, wire_decode_samples) to exactly the input window.  Overlapping
 * events are merged or held off as configured.  A scheduled baseline
 * capture takes windows of normal data without a trigger or an action. */
#include <check.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/pipeline/pipeline.h"
#include "agent/source/source.h"
#include "schema/wire.h"
#include "testsynth.h"

Suite *pipeline_suite(void);

#define CH TESTSYNTH_CH
#define RATE TESTSYNTH_RATE
#define T0 TESTSYNTH_T0
#define TOTAL 12000

static float data[TOTAL * CH];

/* A source that replays data[] in blocks that do not line up with anything
 * (333 frames), with units. */
static struct source *synth_open(void)
{
    struct source *s = testsynth_open(data, TOTAL, 333, NULL);

    snprintf(s->chan[0].unit, sizeof(s->chan[0].unit), "l/s");
    snprintf(s->chan[1].unit, sizeof(s->chan[1].unit), "g");
    return s;
}

/* Deterministic noise (LCG), amplitude about 0.1. */
static void fill_noise(void)
{
    testsynth_noise(data, TOTAL * CH, 12345);
}

/* ---- a sink that keeps every envelope ---- */
struct kept {
    int n;
    uint64_t next;
    uint8_t *env[8];
    size_t len[8];
    /* streamed (begin/commit, as the spool takes them): the one in hand */
    uint8_t *file;
    size_t file_len, file_cap, appends, biggest_append;
    int begun;
};

static uint64_t kept_seq(void *ctx)
{
    return ((struct kept *)ctx)->next;
}

static int kept_put(void *ctx, uint64_t seq, const struct wire_meta *m, const uint8_t *env,
                    size_t len)
{
    struct kept *k = ctx;

    ck_assert_uint_eq(seq, k->next);
    ck_assert_uint_eq(m->seq, seq);
    ck_assert_int_lt(k->n, 8);
    k->env[k->n] = malloc(len);
    memcpy(k->env[k->n], env, len);
    k->len[k->n] = len;
    k->n++;
    k->next++;
    return 0;
}

static int kept_append(void *ctx, const void *p, size_t len)
{
    struct kept *k = ctx;

    ck_assert(k->begun);
    if (k->file_len + len > k->file_cap) {
        k->file_cap = (k->file_len + len) * 2;
        k->file = realloc(k->file, k->file_cap);
        ck_assert_ptr_nonnull(k->file);
    }
    memcpy(k->file + k->file_len, p, len);
    k->file_len += len;
    k->appends++;
    if (len > k->biggest_append)
        k->biggest_append = len;
    return 0;
}

static int kept_patch(void *ctx, uint64_t off, const void *p, size_t len)
{
    struct kept *k = ctx;

    ck_assert_uint_le(off + len, k->file_len);
    memcpy(k->file + off, p, len);
    return 0;
}

static int kept_read(void *ctx, uint64_t off, void *p, size_t len)
{
    struct kept *k = ctx;

    ck_assert_uint_le(off + len, k->file_len);
    memcpy(p, k->file + off, len);
    return 0;
}

static int kept_begin(void *ctx, uint64_t seq, struct wire_file *f)
{
    struct kept *k = ctx;

    ck_assert_uint_eq(seq, k->next);
    ck_assert(!k->begun);
    k->begun = 1;
    k->file = NULL;
    k->file_len = k->file_cap = 0;
    *f = (struct wire_file){ kept_append, kept_patch, kept_read, k };
    return 0;
}

static int kept_commit(void *ctx, uint64_t seq, const struct wire_meta *m, size_t len)
{
    struct kept *k = ctx;

    ck_assert(k->begun);
    ck_assert_uint_eq(seq, k->next);
    ck_assert_uint_eq(m->seq, seq);
    ck_assert_uint_eq(len, k->file_len);
    ck_assert_int_lt(k->n, 8);
    k->env[k->n] = k->file;
    k->len[k->n] = len;
    k->file = NULL;
    k->begun = 0;
    k->n++;
    k->next++;
    return 0;
}

static void kept_abort(void *ctx, uint64_t seq)
{
    struct kept *k = ctx;

    (void)seq;
    free(k->file);
    k->file = NULL;
    k->begun = 0;
}

static uint8_t pk[WIRE_PK_LEN], sk[WIRE_SK_LEN];

static void base_config(struct pipeline_config *pc, struct kept *k)
{
    memset(pc, 0, sizeof(*pc));
    detect_config_defaults(&pc->detect);
    pc->device_id = "unit-1";
    pc->secret_key = sk;
    pc->ring_s = 5;
    pc->pre_s = 0.5;
    pc->post_s = 1.0;
    pc->max_window_s = 3;
    pc->zstd_level = 3;
    pc->sink.next_seq = kept_seq;
    pc->sink.put = kept_put;
    pc->sink.ctx = k;
    k->next = 1;
}

/* The same sink taking each envelope as it is encoded (put is not called). */
static void streamed_sink(struct pipeline_config *pc)
{
    pc->sink.put = NULL;
    pc->sink.begin = kept_begin;
    pc->sink.commit = kept_commit;
    pc->sink.abort = kept_abort;
}

/* Parses, verifies and decodes snapshot i; checks it against data[]. */
static uint64_t check_snapshot(struct kept *k, int i, uint32_t pre, uint32_t post)
{
    struct wire_meta m;
    struct wire_view v;
    float *out;
    uint64_t trig, first;

    ck_assert_int_eq(wire_parse(k->env[i], k->len[i], &m, &v), 0);
    ck_assert_int_eq(wire_verify(k->env[i], k->len[i], pk), 0);
    ck_assert_str_eq(m.device_id, "unit-1");
    ck_assert_uint_eq(m.seq, (uint64_t)i + 1);
    ck_assert_uint_eq(m.channel_count, CH);
    ck_assert_str_eq(m.channels[1].name, "vib");
    ck_assert_str_eq(m.channels[0].unit, "l/s");
    ck_assert_double_eq(m.sample_rate, RATE);
    ck_assert_uint_eq(m.sample_type, WIRE_F32);
    ck_assert_uint_eq(m.pre_samples, pre);
    ck_assert_uint_eq(m.post_samples, post);
    ck_assert_float_ge(m.score, 0.9f);
    ck_assert_msg(!strcmp(m.detector, "level") || !strcmp(m.detector, "feature"),
                  "detector '%s'", m.detector);
    trig = (uint64_t)((m.trigger_time_us - T0) / 1000);
    first = trig - pre;
    out = malloc(wire_samples_bytes(&m));
    ck_assert_int_eq(wire_decode_samples(&m, &v, out, wire_samples_bytes(&m)), 0);
    for (unsigned c = 0; c < CH; c++)
        for (uint32_t j = 0; j < pre + post; j++)
            ck_assert_msg(out[c * (pre + post) + j] == data[(first + j) * CH + c],
                          "channel %u sample %u differs", c, j);
    free(out);
    return trig;
}

static void kept_free(struct kept *k)
{
    for (int i = 0; i < k->n; i++)
        free(k->env[i]);
}

START_TEST(test_step_triggers_and_snapshot_matches)
{
    struct pipeline_config pc;
    struct pipeline_stats st;
    struct kept k = { 0 };
    struct pipeline *p = NULL;
    struct source *src;
    char err[256], out_path[256], cmd[512], line[256], row[128];
    FILE *scores = tmpfile(), *f;
    uint64_t trig;
    long rows = 0, trig_rows = 0, trig_row = -1;

    fill_noise();
    for (size_t i = 8000; i < TOTAL; i++)
        data[i * CH + 1] += 5.0f;                  /* the step, on "vib" */
    snprintf(out_path, sizeof(out_path), "%s/precursor-action-%ld", P_tmpdir, (long)getpid());
    snprintf(cmd, sizeof(cmd), "echo \"$PRECURSOR_DEVICE_ID $PRECURSOR_EVENT_TIME_US "
             "$PRECURSOR_CHANNEL $PRECURSOR_DETECTOR $PRECURSOR_SCORE\" > %s", out_path);

    base_config(&pc, &k);
    pc.on_trigger = cmd;
    pc.scores = scores;
    src = synth_open();
    ck_assert_int_eq(pipeline_init(&pc, src, &p, err, sizeof(err)), 0);
    ck_assert_int_eq(pipeline_run(p, NULL), 0);
    pipeline_get_stats(p, &st);
    pipeline_free(p);                              /* waits for the action */
    src->close(src);

    ck_assert_uint_eq(st.frames, TOTAL);
    ck_assert_uint_eq(st.triggers, 1);
    ck_assert_uint_eq(st.snapshots, 1);
    ck_assert_uint_eq(st.action_errors, 0);
    ck_assert_uint_eq(st.lat_count, 1);
    ck_assert_int_eq(k.n, 1);
    trig = check_snapshot(&k, 0, 500, 1000);
    ck_assert_uint_ge(trig, 8000);
    ck_assert_uint_le(trig, 8050);                 /* within 50 ms of the step */

    f = fopen(out_path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    fclose(f);
    unlink(out_path);
    snprintf(row, sizeof(row), "unit-1 %lld vib ", (long long)(T0 + (int64_t)trig * 1000));
    ck_assert_msg(strncmp(line, row, strlen(row)) == 0, "action saw '%s'", line);

    rewind(scores);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), scores));
    ck_assert_str_eq(line, "timestamp,anomaly_score,trigger\n");
    while (fgets(line, sizeof(line), scores) != NULL) {
        size_t len = strlen(line);
        if (len > 2 && line[len - 2] == '1') {
            trig_rows++;
            trig_row = rows;
        }
        rows++;
    }
    fclose(scores);
    ck_assert_int_eq(rows, TOTAL);
    ck_assert_int_eq(trig_rows, 1);
    ck_assert_int_eq(trig_row, (long)trig);
    kept_free(&k);
}
END_TEST

/* replay --trigger-score: a 4th column with the trigger's own score, on every
 * row; the triggering row's is at the threshold or above, while the first
 * column stays the exported score (docs/DETECTORS.md). */
START_TEST(test_scores_with_trigger_score)
{
    struct pipeline_config pc;
    struct pipeline_stats st;
    struct kept k = { 0 };
    struct pipeline *p = NULL;
    struct source *src;
    char err[256], line[256];
    FILE *scores = tmpfile();
    long rows = 0, trig_rows = 0;

    fill_noise();
    for (size_t i = 8000; i < TOTAL; i++)
        data[i * CH + 1] += 5.0f;
    base_config(&pc, &k);
    pc.scores = scores;
    pc.scores_trigger = 1;
    src = synth_open();
    ck_assert_int_eq(pipeline_init(&pc, src, &p, err, sizeof(err)), 0);
    ck_assert_int_eq(pipeline_run(p, NULL), 0);
    pipeline_get_stats(p, &st);
    pipeline_free(p);
    src->close(src);
    rewind(scores);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), scores));
    ck_assert_str_eq(line, "timestamp,anomaly_score,trigger,trigger_score\n");
    while (fgets(line, sizeof(line), scores) != NULL) {
        double ts, score, tscore;
        int trig;

        ck_assert_int_eq(sscanf(line, "%lf,%lf,%d,%lf", &ts, &score, &trig, &tscore), 4);
        ck_assert(score >= 0.0 && score <= 1.0 && tscore >= 0.0 && tscore <= 1.0);
        if (trig) {
            trig_rows++;
            ck_assert_double_ge(tscore, (double)pc.detect.threshold - 1e-6);
        }
        rows++;
    }
    fclose(scores);
    ck_assert_int_eq(rows, TOTAL);
    ck_assert_int_eq(trig_rows, (long)st.triggers);
    ck_assert_int_ge(trig_rows, 1);
    kept_free(&k);
}
END_TEST

/* replay --triggers: one row per trigger, the same count as the scores
 * file's trigger rows and at the same timestamps, naming the detector and
 * the channel (its name quoted where it holds a comma); the pipeline counts
 * them by detector and channel, and knows the stream time it read. */
START_TEST(test_triggers_file)
{
    struct pipeline_config pc;
    struct pipeline_stats st;
    struct kept k = { 0 };
    struct pipeline *p = NULL;
    struct source *src;
    char err[256], line[256], want[64][32];
    FILE *scores = tmpfile(), *trig = tmpfile();
    long n_want = 0, n_rows = 0;
    uint64_t counted = 0;

    fill_noise();
    for (size_t i = 8000; i < TOTAL; i++)
        data[i * CH + 1] += 5.0f;
    base_config(&pc, &k);
    pc.scores = scores;
    pc.triggers = trig;
    src = synth_open();
    snprintf(src->chan[1].name, sizeof(src->chan[1].name), "accel,x");
    ck_assert_int_eq(pipeline_init(&pc, src, &p, err, sizeof(err)), 0);
    ck_assert_int_eq(pipeline_run(p, NULL), 0);
    pipeline_get_stats(p, &st);
    ck_assert_uint_ge(st.triggers, 1);
    ck_assert(st.t_last_us > st.t_first_us);
    ck_assert_int_eq((int)((st.t_last_us - st.t_first_us + 500) / 1000),
                     (int)((TOTAL - 1) * 1000.0 / RATE + 0.5));
    for (unsigned ch = 0; ch < CH; ch++)
        counted += pipeline_trigger_count(p, DETECT_LEVEL, ch) + pipeline_trigger_count(p, DETECT_FEATURE, ch) +
                   pipeline_trigger_count(p, DETECT_MULTI, ch);
    ck_assert_uint_eq(counted, st.triggers);
    ck_assert_uint_ge(pipeline_trigger_count(p, DETECT_LEVEL, 1) + pipeline_trigger_count(p, DETECT_FEATURE, 1) +
                      pipeline_trigger_count(p, DETECT_MULTI, 1), 1);
    ck_assert_uint_eq(pipeline_trigger_count(p, 0, 0), 0);
    pipeline_free(p);
    src->close(src);
    rewind(scores);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), scores));
    while (fgets(line, sizeof(line), scores) != NULL) {
        char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;

        ck_assert_ptr_nonnull(c2);
        if (c2[1] == '1' && n_want < 64) {
            *c1 = '\0';
            snprintf(want[n_want++], sizeof want[0], "%.31s", line);
        }
    }
    fclose(scores);
    rewind(trig);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), trig));
    ck_assert_str_eq(line, "timestamp,detector,channel,name,anomaly_score,trigger_score\n");
    while (fgets(line, sizeof(line), trig) != NULL) {
        char ts[32], det[16];
        unsigned ch;
        int off = 0;
        double score, tscore;

        ck_assert_int_eq(sscanf(line, "%31[^,],%15[^,],%u,%n", ts, det, &ch, &off), 3);
        ck_assert_int_lt(n_rows, n_want);
        ck_assert_str_eq(ts, want[n_rows]);
        ck_assert(strcmp(det, "level") == 0 || strcmp(det, "feature") == 0 || strcmp(det, "multi") == 0);
        ck_assert_uint_lt(ch, CH);
        if (ch == 1) {
            ck_assert_int_eq(strncmp(line + off, "\"accel,x\",", 10), 0);
            off += 10;
        }
        else {
            ck_assert_ptr_nonnull(strchr(line + off, ','));
            off = (int)(strchr(line + off, ',') - line) + 1;
        }
        ck_assert_int_eq(sscanf(line + off, "%lf,%lf", &score, &tscore), 2);
        ck_assert(score > 0.0 && score <= 1.0 && tscore >= (double)pc.detect.threshold - 1e-6);
        n_rows++;
    }
    fclose(trig);
    ck_assert_int_eq(n_rows, n_want);
    ck_assert_int_eq(n_rows, (long)st.triggers);
    kept_free(&k);
}
END_TEST

/* Two spikes 2 s apart, both triggering (short hold-off; the score stays up
 * about 1 s after a spike), the second inside the first's 2.5 s post window:
 * merged into one window capped at max_window_s (3.5 s), or the second held
 * off, leaving the first window as it was. */
static void run_two_spikes(int merge, struct kept *k, struct pipeline_stats *st)
{
    struct pipeline_config pc;
    struct pipeline *p = NULL;
    struct source *src;
    char err[256];

    fill_noise();
    data[8000 * CH + 0] += 20.0f;
    data[10000 * CH + 0] += 20.0f;
    base_config(&pc, k);
    pc.detect.hold_off_s = 0.2f;
    pc.post_s = 2.5;                              /* the second spike lands in the first window */
    pc.max_window_s = 3.5;
    pc.merge = merge;
    src = synth_open();
    ck_assert_int_eq(pipeline_init(&pc, src, &p, err, sizeof(err)), 0);
    ck_assert_int_eq(pipeline_run(p, NULL), 0);
    pipeline_get_stats(p, st);
    pipeline_free(p);
    src->close(src);
}

START_TEST(test_merge_and_hold_off)
{
    struct kept k = { 0 };
    struct pipeline_stats st;
    uint64_t trig;

    run_two_spikes(1, &k, &st);
    ck_assert_uint_eq(st.triggers, 2);
    ck_assert_uint_eq(st.merged, 1);
    ck_assert_int_eq(k.n, 1);
    trig = check_snapshot(&k, 0, 500, 3000);       /* 2.5 s after the second, capped at 3.5 s */
    ck_assert_uint_eq(trig, 8000);
    kept_free(&k);

    memset(&k, 0, sizeof(k));
    run_two_spikes(0, &k, &st);
    ck_assert_uint_eq(st.triggers, 2);
    ck_assert_uint_eq(st.held_off, 1);
    ck_assert_int_eq(k.n, 1);
    trig = check_snapshot(&k, 0, 500, 2500);
    ck_assert_uint_eq(trig, 8000);
    kept_free(&k);
}
END_TEST

START_TEST(test_cut_short_at_end)
{
    struct pipeline_config pc;
    struct pipeline *p = NULL;
    struct kept k = { 0 };
    struct source *src;
    char err[256];

    fill_noise();
    for (size_t i = 11700; i < TOTAL; i++)
        data[i * CH + 1] += 5.0f;
    base_config(&pc, &k);
    src = synth_open();
    ck_assert_int_eq(pipeline_init(&pc, src, &p, err, sizeof(err)), 0);
    ck_assert_int_eq(pipeline_run(p, NULL), 0);
    pipeline_free(p);
    src->close(src);
    ck_assert_int_eq(k.n, 1);
    /* The window keeps what arrived before the end of input. */
    struct wire_meta m;
    struct wire_view v;
    ck_assert_int_eq(wire_parse(k.env[0], k.len[0], &m, &v), 0);
    ck_assert_uint_eq(m.pre_samples, 500);
    ck_assert_uint_eq((uint64_t)((m.trigger_time_us - T0) / 1000) + m.post_samples, TOTAL);
    kept_free(&k);
}
END_TEST

/* Runs data[] with a capture every 2 s and an action that would leave a
 * file behind; returns whether the action ran. */
static int run_scheduled(struct kept *k, struct pipeline_stats *st)
{
    struct pipeline_config pc;
    struct pipeline *p = NULL;
    struct source *src;
    char err[256], out_path[256], cmd[512];
    int acted;

    snprintf(out_path, sizeof(out_path), "%s/precursor-sched-%ld", P_tmpdir, (long)getpid());
    unlink(out_path);
    snprintf(cmd, sizeof(cmd), "echo acted > %s", out_path);
    base_config(&pc, k);
    pc.on_trigger = cmd;
    pc.capture_every_s = 2.0;
    src = synth_open();
    ck_assert_int_eq(pipeline_init(&pc, src, &p, err, sizeof(err)), 0);
    ck_assert_int_eq(pipeline_run(p, NULL), 0);
    pipeline_get_stats(p, st);
    pipeline_free(p);                              /* waits for an action */
    src->close(src);
    acted = access(out_path, F_OK) == 0;
    unlink(out_path);
    return acted;
}

/* Snapshot i's detector name and trigger frame. */
static uint64_t kept_meta(struct kept *k, int i, struct wire_meta *m)
{
    struct wire_view v;

    ck_assert_int_eq(wire_parse(k->env[i], k->len[i], m, &v), 0);
    ck_assert_int_eq(wire_verify(k->env[i], k->len[i], pk), 0);
    return (uint64_t)((m->trigger_time_us - T0) / 1000);
}

/* Normal data, 12 s: a baseline window at 2, 4, 6, 8 and 10 s (the clock
 * starts at the first frame; 12 s is past the end), no trigger, no action. */
START_TEST(test_scheduled_capture_on_normal_data)
{
    struct kept k = { 0 };
    struct pipeline_stats st;
    struct wire_meta m;

    fill_noise();
    ck_assert_int_eq(run_scheduled(&k, &st), 0);
    ck_assert_uint_eq(st.triggers, 0);
    ck_assert_uint_eq(st.lat_count, 0);
    ck_assert_uint_eq(st.scheduled, 5);
    ck_assert_uint_eq(st.snapshots, 5);
    ck_assert_int_eq(k.n, 5);
    for (int i = 0; i < k.n; i++) {
        ck_assert_uint_eq(kept_meta(&k, i, &m), 2000u * (unsigned)(i + 1));
        ck_assert_str_eq(m.detector, "schedule");
        ck_assert_float_eq(m.score, 0.0f);
        ck_assert_uint_eq(m.pre_samples, 500);
        ck_assert_uint_eq(m.post_samples, 1000);
    }
    kept_free(&k);
}
END_TEST

/* A trigger during a pending baseline takes its capture over: the snapshot
 * names the detector and is cut around the trigger; the schedule goes on. */
START_TEST(test_trigger_takes_over_scheduled_capture)
{
    struct kept k = { 0 };
    struct pipeline_stats st;
    struct wire_meta m;
    uint64_t trig;

    fill_noise();
    data[6500 * CH + 0] += 20.0f;                  /* inside the 6 s baseline's post window */
    ck_assert_int_eq(run_scheduled(&k, &st), 1);
    ck_assert_uint_eq(st.triggers, 1);
    ck_assert_uint_eq(st.scheduled, 5);
    ck_assert_uint_eq(st.scheduled_dropped, 1);
    ck_assert_int_eq(k.n, 5);
    ck_assert_uint_eq(kept_meta(&k, 0, &m), 2000);
    ck_assert_uint_eq(kept_meta(&k, 1, &m), 4000);
    trig = check_snapshot(&k, 2, 500, 1000);
    ck_assert_uint_eq(trig, 6500);
    ck_assert_uint_eq(kept_meta(&k, 3, &m), 8000);
    ck_assert_str_eq(m.detector, "schedule");
    ck_assert_uint_eq(kept_meta(&k, 4, &m), 10000);
    kept_free(&k);
}
END_TEST

/* The ring no longer than the window: every window wraps in the ring (the
 * encoder reads its two pieces there, no copy), and the frame after each
 * window would overwrite its first frame, so the sample thread waits for the
 * encoder.  Each snapshot still holds exactly its input, as float32 and as
 * int16 codes converted out of the ring. */
START_TEST(test_ring_as_short_as_window)
{
    static const size_t spikes[] = { 5900, 8250, 10777 };   /* after warm-up */
    static const uint8_t kinds[] = { WIRE_F32, WIRE_I16 };

    for (int t = 0; t < 4; t++) {
        struct pipeline_config pc;
        struct pipeline_stats st;
        struct pipeline *p = NULL;
        struct kept k = { 0 };
        struct source *src;
        char err[256];

        fill_noise();
        for (size_t i = 0; i < TOTAL * CH; i++)
            data[i] = kinds[t % 2] == WIRE_I16 ? nearbyintf(data[i] * 3000) : data[i];
        for (size_t j = 0; j < 3; j++)
            data[spikes[j] * CH + 0] += kinds[t % 2] == WIRE_I16 ? 30000.0f : 20.0f;
        base_config(&pc, &k);
        pc.ring_s = 1.5;                          /* = pre_s + post_s */
        pc.detect.hold_off_s = 0.2f;
        if (t >= 2)
            streamed_sink(&pc);                   /* the spool's way */
        src = synth_open();
        src->wire_type = kinds[t % 2];
        ck_assert_int_eq(pipeline_init(&pc, src, &p, err, sizeof(err)), 0);
        ck_assert_int_eq(pipeline_run(p, NULL), 0);
        pipeline_get_stats(p, &st);
        pipeline_free(p);
        src->close(src);
        ck_assert_uint_eq(st.snapshots, 3);
        ck_assert_uint_eq(st.sink_errors, 0);
        ck_assert_int_eq(k.n, 3);
        for (int i = 0; i < 3; i++) {
            struct wire_meta m;
            struct wire_view v;
            uint64_t first;

            ck_assert_int_eq(wire_parse(k.env[i], k.len[i], &m, &v), 0);
            ck_assert_int_eq(wire_verify(k.env[i], k.len[i], pk), 0);
            ck_assert_uint_eq(m.sample_type, kinds[t % 2]);
            ck_assert_uint_eq(m.pre_samples + m.post_samples, 1500);
            first = (uint64_t)((m.trigger_time_us - T0) / 1000) - m.pre_samples;
            ck_assert_uint_ne(first % 1500, 0);   /* wrapped in the ring */
            void *out = malloc(wire_samples_bytes(&m));
            ck_assert_int_eq(wire_decode_samples(&m, &v, out, wire_samples_bytes(&m)), 0);
            for (unsigned c = 0; c < CH; c++)
                for (uint32_t j = 0; j < 1500; j++) {
                    float want = data[(first + j) * CH + c];
                    float got = kinds[t % 2] == WIRE_I16 ? ((int16_t *)out)[c * 1500 + j]
                                                         : ((float *)out)[c * 1500 + j];
                    ck_assert_msg(got == (want > 32767 ? 32767 : want),
                                  "snapshot %d channel %u sample %u differs", i, c, j);
                }
            free(out);
        }
        kept_free(&k);
    }
}
END_TEST

/* A sink that takes the envelope as it is encoded (the spool's way) gets
 * the bytes a buffer sink gets, byte for byte, for the same input: the same
 * header, frame and signature; written a chunk at a time, never whole. */
START_TEST(test_streamed_sink_same_envelopes)
{
    static const size_t spikes[] = { 5900, 8250, 10777 };
    struct kept k[2] = { { 0 }, { 0 } };

    fill_noise();
    for (size_t j = 0; j < 3; j++)
        data[spikes[j] * CH + 1] += 20.0f;
    for (int streamed = 0; streamed < 2; streamed++) {
        struct pipeline_config pc;
        struct pipeline_stats st;
        struct pipeline *p = NULL;
        struct source *src;
        char err[256];

        base_config(&pc, &k[streamed]);
        pc.detect.hold_off_s = 0.2f;
        if (streamed)
            streamed_sink(&pc);
        src = synth_open();
        ck_assert_int_eq(pipeline_init(&pc, src, &p, err, sizeof(err)), 0);
        ck_assert_int_eq(pipeline_run(p, NULL), 0);
        pipeline_get_stats(p, &st);
        pipeline_free(p);
        src->close(src);
        ck_assert_uint_eq(st.sink_errors, 0);
        ck_assert_uint_eq(st.snapshots, 3);
    }
    ck_assert_int_eq(k[0].n, 3);
    ck_assert_int_eq(k[1].n, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(k[1].len[i], k[0].len[i]);
        ck_assert_msg(memcmp(k[1].env[i], k[0].env[i], k[0].len[i]) == 0,
                      "snapshot %d: streamed envelope differs", i);
        ck_assert_int_eq(wire_verify(k[1].env[i], k[1].len[i], pk), 0);
    }
    ck_assert_uint_le(k[1].biggest_append, WIRE_FILE_CHUNK);
    ck_assert_uint_ge(k[1].appends, 3 * 3);
    kept_free(&k[0]);
    kept_free(&k[1]);
}
END_TEST

START_TEST(test_bad_config_refused)
{
    struct pipeline_config pc;
    struct pipeline *p = NULL;
    struct kept k = { 0 };
    struct source *src = synth_open();
    char err[256] = "";

    base_config(&pc, &k);
    pc.detect.threshold = 7.0f;                   /* out of [0, 1]: detect_init refuses */
    ck_assert_int_eq(pipeline_init(&pc, src, &p, err, sizeof(err)), PIPELINE_EINVAL);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err, "detector") != NULL, "err '%s'", err);
    base_config(&pc, &k);
    pc.post_s = 0;
    ck_assert_int_eq(pipeline_init(&pc, src, &p, err, sizeof(err)), PIPELINE_EINVAL);
    base_config(&pc, &k);
    pc.capture_every_s = -1;
    ck_assert_int_eq(pipeline_init(&pc, src, &p, err, sizeof(err)), PIPELINE_EINVAL);
    src->close(src);
}
END_TEST

static void keys_setup(void)
{
    ck_assert_int_ge(sodium_init(), 0);
    crypto_sign_keypair(pk, sk);
}

Suite *pipeline_suite(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, keys_setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_step_triggers_and_snapshot_matches);
    tcase_add_test(tc, test_merge_and_hold_off);
    tcase_add_test(tc, test_scores_with_trigger_score);
    tcase_add_test(tc, test_triggers_file);
    tcase_add_test(tc, test_cut_short_at_end);
    tcase_add_test(tc, test_ring_as_short_as_window);
    tcase_add_test(tc, test_streamed_sink_same_envelopes);
    tcase_add_test(tc, test_bad_config_refused);
    tcase_add_test(tc, test_scheduled_capture_on_normal_data);
    tcase_add_test(tc, test_trigger_takes_over_scheduled_capture);
    suite_add_tcase(s, tc);
    return s;
}
