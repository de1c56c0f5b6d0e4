/* sim.c - built-in simulator source: rotating equipment with rare faults.
 *
 * For demos and tests: multi-channel vibration or current plus a slow
 * temperature channel, with faults injected at random times drawn from the
 * seed (exponential inter-arrival, mean fault_every_s).  Each fault's start,
 * end and kind are known: written to fault_log and kept in a small history
 * that tests read with sim_faults().  Everything is a function of the seed and
 * the frame number, so two runs with one seed give the same samples.
 *
 * Equipment:
 *   bearing  accel_x/y/z [g] + temp [degC].  Shaft 25 Hz (1500 rpm); a 6205
 *            deep-groove bearing: 9 balls, ball 7.94 mm, pitch 39.04 mm,
 *            contact angle 0, so BPFO = 9/2 fr (1 - d/D) = 89.6 Hz and
 *            BPFI = 9/2 fr (1 + d/D) = 135.4 Hz.  A defect hits the race once
 *            per defect period; each hit rings a structural resonance (a
 *            two-pole resonator at min(700 Hz, 0.35 rate)).  Inner-race hits
 *            are modulated by shaft rotation (the defect turns with the load
 *            zone).  Faults: outer_race, inner_race.
 *   motor    i_a/i_b/i_c [A] + temp.  50 Hz supply, 10 A rms, slip 3 %.
 *            Faults: broken_rotor_bar (sidebands at (1 +- 2s) f),
 *            phase_imbalance (one phase's amplitude and angle drift).
 *   pump     vib [g] (1x at 29.5 Hz and vane pass 6x) + pressure [bar]
 *            (5 bar with vane-pass pulsation) + temp.  Faults: cavitation
 *            (broadband bursts, pressure dips and jitter), blockage
 *            (pressure rise, vane-pass vibration up).
 * A fault lasts 3 to 8 s; its severity grows over the first 60 % of that,
 * and temperature rises while it lasts.
 *
 * ADC mode (sim_config.adc_full_scale > 0): every channel leaves as the
 * 16-bit code a converter would give (vibration: +-adc_full_scale g in 32768
 * steps, temperature 0.01 degC, pressure 1 mbar, current full scale / 32768),
 * and the bearing uses its full kinematics, for codec benchmarks at 12 and
 * 48 kHz: the shaft speed wanders by about 0.5 %; the defect frequencies come
 * from the geometry (FTF = fr/2 (1 - d/D), BPFO = n FTF, BPFI = n/2 fr
 * (1 + d/D), BSF = D/(2d) fr (1 - (d/D)^2)); impacts slip by 1 % each (rolling
 * elements do not keep exact time); outer-race hits are fixed in the load
 * zone, inner-race hits are modulated at shaft speed, ball hits (twice per
 * ball revolution) at cage speed (FTF); each hit rings a structural
 * resonance (3.2 kHz, 0.8 ms) and the sensor's mounted resonance (min(9 kHz,
 * 0.4 rate), 0.15 ms); the machine adds low-passed broadband noise and the
 * sensor white noise.  Fault kinds: outer_race, inner_race, ball. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/source/source.h"
#include "agent/source/sim.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

enum sim_kind {
    SIM_OUTER_RACE = 1,
    SIM_INNER_RACE,
    SIM_ROTOR_BAR,
    SIM_PHASE_IMBALANCE,
    SIM_CAVITATION,
    SIM_BLOCKAGE,
    SIM_BALL
};

#define SIM_HISTORY 256
#define SIM_QUIET_S 5.0         /* no fault this soon after the start or the last one */
#define SIM_MAX_BLOCK_S 0.02    /* real-time blocks of at most 20 ms keep latency low */

enum sim_equipment { EQ_BEARING, EQ_MOTOR, EQ_PUMP };

struct sim {
    enum sim_equipment eq;
    double rate;
    double speed;
    double fault_every_s;
    uint64_t end_frame;                 /* 0 = forever */
    int64_t start_us;
    FILE *fault_log;
    uint64_t rng[4];
    uint64_t frame;                     /* next frame to produce */

    /* current or next fault */
    uint64_t f_start, f_end;
    int f_kind;
    double f_phase;                     /* impulse clock, in defect periods */
    int f_logged;

    struct sim_fault hist[SIM_HISTORY];
    size_t n_hist;                      /* total injected; hist is a ring */

    /* state */
    double res_y1[3], res_y2[3];        /* resonator per axis */
    double res_a1, res_a2, res_gain;
    double temp, temp_base;

    /* ADC mode (adc_scale > 0): codes of adc_scale units, and the bearing's
     * kinematic model: shaft phase and speed, two resonators per axis, the
     * machine's noise filter state */
    double adc_scale;
    double shaft_phase, shaft_dev;
    double r2_a1, r2_a2, r2_y1[3], r2_y2[3];
    double noise_lp[3];

    struct timespec t0;                 /* wall clock at frame 0, for pacing */
};

/* xoshiro256** (Blackman, Vigna): small, fast, and the same on every host. */
static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(struct sim *s)
{
    uint64_t *st = s->rng;
    uint64_t r = rotl(st[1] * 5, 7) * 9, t = st[1] << 17;

    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl(st[3], 45);
    return r;
}

static double rng_unit(struct sim *s)          /* (0, 1) */
{
    return ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_gauss(struct sim *s)
{
    return sqrt(-2.0 * log(rng_unit(s))) * cos(2.0 * M_PI * rng_unit(s));
}

static void rng_seed(struct sim *s, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {       /* splitmix64 to fill the state */
        uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        s->rng[i] = z ^ (z >> 31);
    }
}

const char *sim_fault_name(int kind)
{
    switch (kind) {
    case SIM_OUTER_RACE: return "outer_race";
    case SIM_INNER_RACE: return "inner_race";
    case SIM_ROTOR_BAR: return "broken_rotor_bar";
    case SIM_PHASE_IMBALANCE: return "phase_imbalance";
    case SIM_CAVITATION: return "cavitation";
    case SIM_BLOCKAGE: return "blockage";
    case SIM_BALL: return "ball";
    }
    return "none";
}

static int64_t frame_us(const struct sim *s, uint64_t frame)
{
    return s->start_us + (int64_t)llround((double)frame * 1e6 / s->rate);
}

/* Schedules the next fault after frame `after`.  Its draws come from the one
 * generator, so the schedule is as reproducible as the samples. */
static void schedule_fault(struct sim *s, uint64_t after)
{
    double gap = -log(rng_unit(s)) * s->fault_every_s;
    double len = 3.0 + 5.0 * rng_unit(s);
    int pick = (int)(rng_next(s) >> 63);

    if (gap < SIM_QUIET_S)
        gap = SIM_QUIET_S;
    s->f_start = after + (uint64_t)(gap * s->rate);
    s->f_end = s->f_start + (uint64_t)(len * s->rate) + 1;
    /* ADC mode's bearing also has ball defects; the same draw picks. */
    if (s->adc_scale > 0 && s->eq == EQ_BEARING && (s->f_start & 1))
        pick = 2;
    s->f_kind = pick == 2 ? SIM_BALL
              : s->eq == EQ_BEARING ? (pick ? SIM_INNER_RACE : SIM_OUTER_RACE)
              : s->eq == EQ_MOTOR ? (pick ? SIM_PHASE_IMBALANCE : SIM_ROTOR_BAR)
              : (pick ? SIM_BLOCKAGE : SIM_CAVITATION);
    s->f_phase = 0;
    s->f_logged = 0;
}

static void fault_begin(struct sim *s)
{
    struct sim_fault *f = &s->hist[s->n_hist % SIM_HISTORY];

    f->start_frame = s->f_start;
    f->end_frame = s->f_end;
    f->start_us = frame_us(s, s->f_start);
    f->end_us = frame_us(s, s->f_end);
    f->kind = s->f_kind;
    f->name = sim_fault_name(s->f_kind);
    s->n_hist++;
    if (s->fault_log != NULL) {
        fprintf(s->fault_log, "%lld,%s\n", (long long)f->start_us, f->name);
        fflush(s->fault_log);
    }
    s->f_logged = 1;
}

size_t sim_faults(const struct source *src, struct sim_fault *out, size_t cap)
{
    const struct sim *s = src->impl;
    size_t have = s->n_hist < SIM_HISTORY ? s->n_hist : SIM_HISTORY;
    size_t first = s->n_hist - have, n = 0;

    for (size_t i = 0; i < have && n < cap; i++)
        out[n++] = s->hist[(first + i) % SIM_HISTORY];
    return n;
}

/* Fault severity in [0, 1] for the current frame: a ramp over the first 60 %
 * of the fault (a defect grows), then full until it ends. */
static double severity(struct sim *s)
{
    double x;

    if (s->frame < s->f_start || s->frame >= s->f_end)
        return 0;
    if (!s->f_logged)
        fault_begin(s);
    x = (double)(s->frame - s->f_start) / (double)(s->f_end - s->f_start);
    return x >= 0.6 ? 1.0 : x / 0.6;
}

/* Slow temperature: an Ornstein-Uhlenbeck drift around its base, pulled up
 * by 8 degC at full severity with a 2 s time constant. */
static float temperature(struct sim *s, double sev)
{
    double dt = 1.0 / s->rate;
    double target = s->temp_base + 8.0 * sev;

    s->temp += (target - s->temp) * dt / 2.0;
    s->temp_base += (45.0 - s->temp_base) * dt / 600.0 + 0.02 * sqrt(dt) * rng_gauss(s);
    return (float)(s->temp + 0.02 * rng_gauss(s));
}

static void gen_bearing(struct sim *s, double t, double sev, float *out)
{
    static const double fr = 25.0, bd_pd = 7.94 / 39.04;
    static const double axis_gain[3] = { 1.0, 0.8, 0.5 };
    static const double axis_phase[3] = { 0.0, 1.3, 2.1 };
    double theta = 2.0 * M_PI * fr * t;
    double kick = 0;

    if (sev > 0) {
        int inner = s->f_kind == SIM_INNER_RACE;
        double fdef = 4.5 * fr * (inner ? 1.0 + bd_pd : 1.0 - bd_pd);
        double before = s->f_phase;

        s->f_phase += fdef / s->rate;
        /* One hit per defect period (more than one if the rate is too low). */
        for (double k = floor(before) + 1; k <= s->f_phase; k += 1.0) {
            double load = inner ? 0.5 * (1.0 + cos(theta)) : 1.0;
            kick += 3.0 * sev * load * (1.0 + 0.1 * rng_gauss(s));
        }
    }
    for (int a = 0; a < 3; a++) {
        double y = s->res_a1 * s->res_y1[a] + s->res_a2 * s->res_y2[a] +
                   kick * axis_gain[a] * s->res_gain;
        double v = 0.05 * sin(theta + axis_phase[a]) +
                   0.02 * sin(2.0 * theta + 2.0 * axis_phase[a]) +
                   0.01 * sin(3.0 * theta + 0.5) + 0.02 * rng_gauss(s);

        s->res_y2[a] = s->res_y1[a];
        s->res_y1[a] = y;
        out[a] = (float)(axis_gain[a] * v + y);
    }
}

/* A two-pole resonator: coefficients for frequency f (Hz) and decay tau (s). */
static void resonator(double rate, double f, double tau, double *a1, double *a2)
{
    double w = 2.0 * M_PI * f / rate, r = exp(-1.0 / (tau * rate));

    *a1 = 2.0 * r * cos(w);
    *a2 = -r * r;
}

/* The defect's impacts this sample: the clock advances at the defect
 * frequency of the current shaft speed, each impact slips by 1 %, and its
 * size follows the load zone (inner race: shaft angle; ball: cage angle). */
static double bearing_impacts(struct sim *s, double fr, double sev)
{
    static const double n_balls = 9, bd_pd = 7.94 / 39.04;
    double ftf = 0.5 * fr * (1.0 - bd_pd), kick = 0, fdef, before;

    if (sev <= 0)
        return 0;
    fdef = s->f_kind == SIM_INNER_RACE ? 0.5 * n_balls * fr * (1.0 + bd_pd)
         : s->f_kind == SIM_BALL ? 2.0 * fr / (2.0 * bd_pd) * (1.0 - bd_pd * bd_pd)
         : n_balls * ftf;
    before = s->f_phase;
    s->f_phase += fdef / s->rate;
    for (double k = floor(before) + 1; k <= s->f_phase; k += 1.0) {
        double load = 1.0;
        if (s->f_kind == SIM_INNER_RACE)
            load = 0.5 * (1.0 + cos(s->shaft_phase));
        else if (s->f_kind == SIM_BALL)
            load = 0.5 * (1.0 + cos(s->shaft_phase * ftf / fr));
        kick += 2.0 * sev * load * (1.0 + 0.2 * rng_gauss(s));
        s->f_phase += 0.01 * rng_gauss(s);     /* slip */
    }
    return kick;
}

/* ADC mode's bearing: see the top of the file. */
static void gen_bearing_adc(struct sim *s, double sev, float *out)
{
    static const double fr0 = 25.0;
    static const double axis_gain[3] = { 1.0, 0.8, 0.5 };
    static const double axis_phase[3] = { 0.0, 1.3, 2.1 };
    double fr, kick, th;

    s->shaft_dev += (0.0 - s->shaft_dev) / (2.0 * s->rate) + 0.0005 * rng_gauss(s) / sqrt(s->rate);
    fr = fr0 * (1.0 + s->shaft_dev);
    s->shaft_phase = fmod(s->shaft_phase + 2.0 * M_PI * fr / s->rate, 2.0 * M_PI * 1e6);
    th = s->shaft_phase;
    kick = bearing_impacts(s, fr, sev);
    for (int a = 0; a < 3; a++) {
        double in = kick * axis_gain[a] + 0.03 * rng_gauss(s);   /* impacts + machine noise */
        double y = s->res_a1 * s->res_y1[a] + s->res_a2 * s->res_y2[a] + in * s->res_gain;
        double y2 = s->r2_a1 * s->r2_y1[a] + s->r2_a2 * s->r2_y2[a] + 0.3 * in;
        double v;

        s->res_y2[a] = s->res_y1[a];
        s->res_y1[a] = y;
        s->r2_y2[a] = s->r2_y1[a];
        s->r2_y1[a] = y2;
        /* broadband machine noise, low-passed at about rate / 8 */
        s->noise_lp[a] += 0.5 * (0.04 * rng_gauss(s) - s->noise_lp[a]);
        v = 0.05 * sin(th + axis_phase[a]) + 0.02 * sin(2.0 * th + 2.0 * axis_phase[a]) +
            0.01 * sin(3.0 * th + 0.5);
        out[a] = (float)(axis_gain[a] * v + y + y2 + s->noise_lp[a] + 0.004 * rng_gauss(s));
    }
}

static void gen_motor(struct sim *s, double t, double sev, float *out)
{
    static const double f = 50.0, slip = 0.03, ipk = 14.142;
    double w = 2.0 * M_PI * f * t;

    for (int p = 0; p < 3; p++) {
        double ph = -2.0 * M_PI * p / 3.0, amp = ipk, side = 0;

        if (s->f_kind == SIM_PHASE_IMBALANCE && p == 0) {
            amp *= 1.0 + 0.25 * sev;
            ph += 0.15 * sev;
        }
        if (s->f_kind == SIM_ROTOR_BAR && sev > 0)
            side = 0.08 * sev * ipk *
                   (sin(2.0 * M_PI * (1.0 - 2.0 * slip) * f * t + ph) +
                    sin(2.0 * M_PI * (1.0 + 2.0 * slip) * f * t + ph));
        out[p] = (float)(amp * sin(w + ph) + 0.01 * ipk * sin(3.0 * (w + ph)) + side +
                         0.05 * rng_gauss(s));
    }
}

static void gen_pump(struct sim *s, double t, double sev, float *out)
{
    static const double fr = 29.5;
    double theta = 2.0 * M_PI * fr * t;
    double vane = sin(6.0 * theta), vib, p;

    vib = 0.04 * sin(theta) + 0.03 * vane + 0.015 * rng_gauss(s);
    p = 5.0 + 0.05 * vane + 0.01 * rng_gauss(s);
    if (s->f_kind == SIM_CAVITATION && sev > 0) {
        /* Bubbles collapse in bursts: broadband noise gated at about 3 Hz. */
        double gate = sin(2.0 * M_PI * 3.0 * t);
        vib += 0.25 * sev * gate * gate * rng_gauss(s);
        p += -0.8 * sev + 0.15 * sev * rng_gauss(s);
    } else if (s->f_kind == SIM_BLOCKAGE && sev > 0) {
        vib += 0.12 * sev * vane;
        p += 1.5 * sev;
    }
    out[0] = (float)vib;
    out[1] = (float)p;
}

static void sleep_until_frame(struct sim *s, uint64_t frame)
{
    double sec = (double)frame / s->rate / s->speed;
    struct timespec due = s->t0;
    time_t whole = (time_t)sec;

    due.tv_sec += whole;
    due.tv_nsec += (long)((sec - (double)whole) * 1e9);
    if (due.tv_nsec >= 1000000000L) {
        due.tv_sec++;
        due.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR)
        ;
}

/* The converter: each channel to its nearest code, clipped to 16 bits. */
static void adc_quantise(const struct source *src, float *frame)
{
    for (unsigned c = 0; c < src->channels; c++) {
        double code = nearbyint((double)frame[c] / src->chan[c].scale);
        frame[c] = (float)(code > 32767 ? 32767 : code < -32768 ? -32768 : code);
    }
}

static int sim_next(struct source *src, float *samples, int64_t *t_us,
                    size_t cap, size_t *n)
{
    struct sim *s = src->impl;
    size_t i, want = cap;

    if (s->end_frame != 0 && s->frame >= s->end_frame)
        return SOURCE_EOF;
    if (want == 0) {
        snprintf(src->err, sizeof(src->err), "sim: zero-length read");
        return -EINVAL;
    }
    if (s->end_frame != 0 && want > s->end_frame - s->frame)
        want = (size_t)(s->end_frame - s->frame);
    if (s->speed > 0) {
        size_t blk = (size_t)(s->rate * SIM_MAX_BLOCK_S);
        if (blk < 1)
            blk = 1;
        if (want > blk)
            want = blk;
        /* A sample is handed out no earlier than it would exist. */
        sleep_until_frame(s, s->frame + want - 1);
    }
    for (i = 0; i < want; i++) {
        double t = (double)s->frame / s->rate;
        double sev = severity(s);
        float *out = samples + i * src->channels;

        if (s->eq == EQ_BEARING && s->adc_scale > 0)
            gen_bearing_adc(s, sev, out);
        else if (s->eq == EQ_BEARING)
            gen_bearing(s, t, sev, out);
        else if (s->eq == EQ_MOTOR)
            gen_motor(s, t, sev, out);
        else
            gen_pump(s, t, sev, out);
        out[src->channels - 1] = temperature(s, sev);
        if (s->adc_scale > 0)
            adc_quantise(src, out);
        t_us[i] = frame_us(s, s->frame);
        s->frame++;
        if (s->frame == s->f_end)
            schedule_fault(s, s->f_end);
    }
    *n = want;
    return 0;
}

static void sim_close(struct source *src)
{
    if (src == NULL)
        return;
    free(src->impl);
    free(src);
}

static void set_chan(struct source *src, unsigned i, const char *name, const char *unit)
{
    snprintf(src->chan[i].name, sizeof(src->chan[i].name), "%s", name);
    snprintf(src->chan[i].unit, sizeof(src->chan[i].unit), "%s", unit);
}

/* ADC mode: snapshots in int16 codes, each channel with its scale. */
static void adc_channels(struct source *src, double scale)
{
    src->wire_type = WIRE_I16;
    for (unsigned c = 0; c < src->channels; c++) {
        const char *u = src->chan[c].unit;
        src->chan[c].scale = !strcmp(u, "degC") ? 0.01 : !strcmp(u, "bar") ? 0.001 : scale;
        src->chan[c].offset = 0;
    }
}

int source_sim_open(const struct sim_config *cfg, struct source **out)
{
    const char *eq = cfg->equipment != NULL ? cfg->equipment : "bearing";
    double rate = cfg->rate > 0 ? cfg->rate : 2000.0;
    double every = cfg->fault_every_s > 0 ? cfg->fault_every_s : 20.0;
    struct source *src;
    struct sim *s;
    double wres, r;

    if (!(rate <= 1e7) || !(cfg->speed >= 0) || !(cfg->duration_s >= 0) ||
        !isfinite(every) || !(cfg->adc_full_scale >= 0 && cfg->adc_full_scale < 1e9))
        return -EINVAL;
    if (strcmp(eq, "bearing") && strcmp(eq, "motor") && strcmp(eq, "pump"))
        return -EINVAL;
    src = calloc(1, sizeof(*src));
    s = calloc(1, sizeof(*s));
    if (src == NULL || s == NULL) {
        free(src);
        free(s);
        return -ENOMEM;
    }
    s->eq = !strcmp(eq, "motor") ? EQ_MOTOR : !strcmp(eq, "pump") ? EQ_PUMP : EQ_BEARING;
    s->rate = rate;
    s->speed = cfg->speed;
    s->fault_every_s = every;
    s->end_frame = cfg->duration_s > 0 ? (uint64_t)llround(cfg->duration_s * rate) : 0;
    s->fault_log = cfg->fault_log;
    if (cfg->start_us != 0) {
        s->start_us = cfg->start_us;
    } else {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        s->start_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    }
    rng_seed(s, cfg->seed);
    /* Resonator: 2 ms decay, input scaled so one hit peaks near its size. */
    wres = 2.0 * M_PI * fmin(700.0, 0.35 * rate) / rate;
    r = exp(-1.0 / (0.002 * rate));
    s->res_a1 = 2.0 * r * cos(wres);
    s->res_a2 = -r * r;
    s->res_gain = sin(wres) > 0.2 ? 1.0 : sin(wres) / 0.2;
    s->adc_scale = cfg->adc_full_scale / 32768.0;
    if (s->adc_scale > 0) {
        resonator(rate, fmin(3200.0, 0.3 * rate), 0.0008, &s->res_a1, &s->res_a2);
        resonator(rate, fmin(9000.0, 0.4 * rate), 0.00015, &s->r2_a1, &s->r2_a2);
        s->res_gain = 1.0;
    }
    s->temp_base = 45.0 + 5.0 * (rng_unit(s) - 0.5);
    s->temp = s->temp_base;
    schedule_fault(s, 0);
    clock_gettime(CLOCK_MONOTONIC, &s->t0);

    src->impl = s;
    src->rate = rate;
    src->wire_type = WIRE_F32;
    src->next = sim_next;
    src->close = sim_close;
    src->ts_text = NULL;
    if (s->eq == EQ_BEARING) {
        src->channels = 4;
        set_chan(src, 0, "accel_x", "g");
        set_chan(src, 1, "accel_y", "g");
        set_chan(src, 2, "accel_z", "g");
        set_chan(src, 3, "temp", "degC");
    } else if (s->eq == EQ_MOTOR) {
        src->channels = 4;
        set_chan(src, 0, "i_a", "A");
        set_chan(src, 1, "i_b", "A");
        set_chan(src, 2, "i_c", "A");
        set_chan(src, 3, "temp", "degC");
    } else {
        src->channels = 3;
        set_chan(src, 0, "vib", "g");
        set_chan(src, 1, "pressure", "bar");
        set_chan(src, 2, "temp", "degC");
    }
    if (s->adc_scale > 0)
        adc_channels(src, s->adc_scale);
    *out = src;
    return 0;
}
