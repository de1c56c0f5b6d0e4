/* alerts_demo.c - `precursor-server demo-history`: six months of alert
 * history for the demo (`make run`), so the rules and operational metrics
 * pages mean something on first start.
 *
 * Months of real-time simulation are out of reach, so the history is
 * synthetic and says so: devices "demo-*" at site "demo-site", dispositions
 * by "demo-history" with outcomes starting "demo data:".  The snapshots are
 * nevertheless real: signed wire v1 envelopes with generated waveforms
 * (bearing impulses, pump cavitation, rotor-bar current modulation, and
 * false alarms that are plain noise with a slow transient), stored through
 * ingest_envelope like any upload, so the server's worker computes their
 * features and evaluates the rules on them.  Only the trigger times and the
 * disposition times are in the past.  The operators' follow-through falls
 * from about 97 % in the first month to about 43 % in the last, and their
 * time to acknowledge grows: the slide into ignoring alerts that the
 * operational metrics page is there to show.
 *
 * Runs once: when a "demo-*" device exists it does nothing. */
#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "schema/wire.h"
#include "server/alerts/alerts.h"
#include "server/db/db.h"
#include "server/ingest/ingest.h"

#define DEMO_DAYS 182
#define DEMO_RATE 2000.0
#define DEMO_HALF 1024u                 /* samples before and from the trigger */
#define DEMO_N (2 * DEMO_HALF)
#define DEMO_MAX_CH 4
#define DEMO_PI 3.14159265358979323846

enum demo_kind { K_FALSE, K_FAULT };

struct demo_device {
    const char *id, *equipment, *site_type, *fault_class;
    int nch;
    const char *ch[DEMO_MAX_CH], *unit[DEMO_MAX_CH];
    double per_day;                     /* mean alerts per day */
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    uint64_t seq;
};

static struct demo_device devs[] = {
    { "demo-bearing-2", "bearing", "rotating", "bearing_outer_race", 4, { "accel_x", "accel_y", "accel_z", "temp" },
      { "g", "g", "g", "degC" }, 2.2, { 0 }, { 0 }, 0 },
    { "demo-pump-2", "pump", "centrifugal_pump", "cavitation", 3, { "vib", "pressure", "temp" },
      { "g", "bar", "degC" }, 1.0, { 0 }, { 0 }, 0 },
    { "demo-motor-2", "motor", "motor", "rotor_bar", 4, { "i_a", "i_b", "i_c", "temp" },
      { "A", "A", "A", "degC" }, 0.7, { 0 }, { 0 }, 0 },
};
#define NDEV (sizeof devs / sizeof devs[0])

/* Labeling functions an engineer might have written for this fleet; two of
 * them disagree on purpose so the rules page shows a conflict. */
static const char *const demo_rules[][3] = {
    { "bearing impulses (kurtosis)", "kurtosis(ch(\"accel_x\")) > 5 => bearing_outer_race",
      "bearing_outer_race" },
    { "bearing resonance band", "band_energy(ch(\"accel_x\"), 600, 900) > 0.3 => bearing_outer_race",
      "bearing_outer_race" },
    { "large vibration peak", "peak(ch(\"accel_x\")) > 2 => imbalance", "imbalance" },
    { "pump cavitation band", "band_energy(ch(\"vib\"), 500, 1000) > 0.4 => cavitation",
      "cavitation" },
    { "rotor bar current", "rms(ch(\"i_a\")) > 11 => rotor_bar", "rotor_bar" },
};

enum { DQ_PRESENT, DQ_DEVICE, DQ_RULE, DQ_LABEL, DQ_MARK, DQ_DISPOSE };

static const struct db_sql demo_sql[] = {
    [DQ_PRESENT] = { "demo_present", "SELECT 1 FROM devices WHERE id LIKE 'demo-%' LIMIT 1", 0 },
    [DQ_DEVICE] = { "demo_device",
        "INSERT INTO devices (id, public_key, equipment_type, site, tags, demo)"
        " VALUES ($1, decode($2, 'hex'), $3, $4, '{demo}', true)", 4 },
    [DQ_RULE] = { "demo_rule",
        "INSERT INTO rules (name, expr, class, created_by) VALUES ($1, $2, $3,"
        " 'demo-history') ON CONFLICT (name) DO NOTHING", 3 },
    /* a labeled snapshot is labeled for the queue too (labeled_at) */
    [DQ_LABEL] = { "demo_label",
        "WITH l AS (INSERT INTO labels (snapshot_id, start_s, end_s, channels, class, notes,"
        " created_by) VALUES ($1::bigint, 0.4, 0.6, '{0}', $2, 'demo data',"
        " 'demo-history') RETURNING snapshot_id)"
        " UPDATE snapshots SET labeled_at = now() FROM l"
        " WHERE snapshots.id = l.snapshot_id AND labeled_at IS NULL", 2 },
    /* stored through ingest like an upload; then marked as demo data */
    [DQ_MARK] = { "demo_mark",
        "UPDATE snapshots SET demo = true WHERE id = $1::bigint", 1 },
    /* $1 snapshot, $2 acknowledged (unix us), $3 disposition (NULL: only
     * acknowledged), $4 work order, $5 outcome, $6 class, $7 disposed (us) */
    [DQ_DISPOSE] = { "demo_dispose",
        "INSERT INTO alert_dispositions (snapshot_id, acknowledged_at, acknowledged_by,"
        " disposition, work_order, outcome, class, disposed_at, disposed_by)"
        " VALUES ($1::bigint, timestamptz 'epoch' + $2::bigint * interval '1 microsecond',"
        " 'demo-history', $3::text, $4, $5, $6,"
        " timestamptz 'epoch' + $7::bigint * interval '1 microsecond',"
        " CASE WHEN $3::text IS NULL THEN NULL ELSE 'demo-history' END)"
        " ON CONFLICT (snapshot_id) DO NOTHING", 7 },
};

/* xorshift64*: the history is the same for the same seed (see
 * ALERTS_DEMO_SEED) */
static uint64_t rng_state;

static double urand(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}

static double nrand(void)
{
    double u = urand(), v = urand();

    return sqrt(-2.0 * log(u > 1e-300 ? u : 1e-300)) * cos(2.0 * DEMO_PI * v);
}

static double erand(double mean)
{
    return -mean * log(1.0 - urand());
}

static int exec(int q, const char *const *vals, PGresult **out)
{
    return db_exec_own(&demo_sql[q], vals, NULL, NULL, 0, out);
}

/* Samples of one alert, planar float32 (channel after channel). */
static void waveform(const struct demo_device *d, enum demo_kind k, float *x)
{
    int c;
    unsigned i;

    for (c = 0; c < d->nch; c++) {
        float *y = x + (size_t)c * DEMO_N;
        double ph = urand() * 2.0 * DEMO_PI;

        for (i = 0; i < DEMO_N; i++) {
            double t = i / DEMO_RATE, v;

            if (strcmp(d->ch[c], "temp") == 0) {
                y[i] = (float)(45.0 + 0.05 * nrand() + (k == K_FAULT ? 8.0 : 0.0));
                continue;
            }
            if (d->equipment[0] == 'm') {     /* motor phase current, 50 Hz */
                double amp = 10.0 + (k == K_FAULT ? 2.0 + 2.5 * sin(2.0 * DEMO_PI * 2.0 * t) : 0.0);
                v = amp * sqrt(2.0) * sin(2.0 * DEMO_PI * 50.0 * t + ph + c * 2.094) +
                    0.2 * nrand();
            } else if (strcmp(d->ch[c], "pressure") == 0) {
                v = 4.0 + 0.02 * nrand() - (k == K_FAULT ? 0.4 : 0.0);
            } else {                        /* vibration: 1x at 25 Hz plus noise */
                v = 0.3 * sin(2.0 * DEMO_PI * 25.0 * t + ph) + 0.08 * nrand();
                if (k == K_FAULT && d->equipment[0] == 'b' && c == 0) {
                    /* outer-race impulses every 1/87 s ringing at 750 Hz */
                    double tau = fmod(t, 1.0 / 87.0);
                    v += 2.5 * exp(-tau * 900.0) * sin(2.0 * DEMO_PI * 750.0 * tau);
                } else if (k == K_FAULT && d->equipment[0] == 'p') {
                    /* cavitation: broadband bursts between 500 and 1000 Hz */
                    v += 0.6 * sin(2.0 * DEMO_PI * (600.0 + 300.0 * urand()) * t) * nrand();
                }
            }
            if (k == K_FALSE && i >= DEMO_HALF - 200 && i < DEMO_HALF + 200)
                v += 0.8 * sin(DEMO_PI * (i - (DEMO_HALF - 200)) / 400.0); /* slow bump */
            y[i] = (float)v;
        }
    }
}

static int store_snapshot(struct demo_device *d, enum demo_kind k, int64_t trigger_us,
                          int64_t *id)
{
    static float x[DEMO_MAX_CH * DEMO_N];
    struct ingest_result res;
    struct wire_meta m;
    char ids[24];
    const char *why = NULL, *mark[1] = { ids };
    uint8_t *env = NULL;
    size_t len = 0;
    int c, err, tries;

    memset(&m, 0, sizeof m);
    snprintf(m.device_id, sizeof m.device_id, "%s", d->id);
    m.seq = ++d->seq;
    m.trigger_time_us = trigger_us;
    m.sample_rate = DEMO_RATE;
    m.sample_type = WIRE_F32;
    m.channel_count = (uint8_t)d->nch;
    m.pre_samples = DEMO_HALF;
    m.post_samples = DEMO_HALF;
    snprintf(m.detector, sizeof m.detector, "feature");
    m.score = (float)(k == K_FAULT ? 0.9 + 0.1 * urand() : 0.9 + 0.05 * urand());
    for (c = 0; c < d->nch; c++) {
        snprintf(m.channels[c].name, sizeof m.channels[c].name, "%s", d->ch[c]);
        snprintf(m.channels[c].unit, sizeof m.channels[c].unit, "%s", d->unit[c]);
    }
    waveform(d, k, x);
    err = wire_encode(&m, x, d->sk, 0, &env, &len);
    if (err != 0) {
        fprintf(stderr, "demo-history: wire_encode failed (%d)\n", err);
        return SRV_EINTERNAL;
    }
    /* the per-device upload bucket applies here too: wait as told */
    for (tries = 0; tries < 100; tries++) {
        memset(&res, 0, sizeof res);
        err = ingest_envelope(env, len, &res, &why);
        if (err != SRV_ERATELIMIT && err != SRV_EOVERLOAD)
            break;
        sleep(res.retry_after ? res.retry_after : 1);
    }
    free(env);
    if (err != SRV_OK) {
        fprintf(stderr, "demo-history: ingest of %s seq %" PRIu64 " failed: %s\n", d->id,
                m.seq, why ? why : srv_err_message(err));
        return err;
    }
    *id = res.id;
    snprintf(ids, sizeof ids, "%" PRId64, res.id);
    return exec(DQ_MARK, mark, NULL);
}

/* What the operators did with one alert. */
struct demo_outcome {
    int touched;            /* 0: never touched, ignored once the window passed */
    int followed;           /* investigated: action taken or no fault found */
    const char *disp;       /* NULL: acknowledged, never dispositioned */
    const char *outcome, *cls;
};

/* Follow-through falls linearly from 97 % in month 0 (the oldest of six)
 * to 43 % in month 5. */
static struct demo_outcome demo_outcome(enum demo_kind k, int month)
{
    struct demo_outcome o = { 1, 0, NULL, NULL, NULL };
    double v;

    if (urand() < 0.97 - 0.54 * month / 5.0) {
        o.followed = 1;
        o.disp = k == K_FAULT ? "action_taken" : "no_fault_found";
        o.outcome = k == K_FAULT ? "demo data: fault confirmed on site, part replaced"
                                 : "demo data: inspected, no fault found";
        o.cls = k == K_FAULT ? NULL : "normal";
        return o;
    }
    v = urand();
    if (v < 0.15) {
        o.disp = "duplicate";
        o.outcome = "demo data: same event as an earlier alert";
    } else if (v < 0.50) {
        o.disp = "not_actionable";
        o.outcome = "demo data: production could not stop";
    } else if (v >= 0.70) {
        o.touched = 0;
    }
    return o;
}

/* Record what the operators did with alert id of month `month`: a
 * disposition row (none when the alert was ignored), acknowledged later the
 * later the month. */
static int record_disposition(const struct demo_device *d, int64_t id, enum demo_kind k,
                              int64_t trigger_us, int month, int *followed)
{
    double ack_min = 3.0 + 25.0 * month;            /* mean minutes to acknowledge */
    int64_t ack_us = trigger_us + (int64_t)(erand(ack_min) * 60e6) + 20000000;
    int64_t disp_us = ack_us + (int64_t)(erand(30.0) * 60e6);
    char idb[24], ack[24], dsp[24], wo[32];
    const char *vals[7];
    struct demo_outcome o = demo_outcome(k, month);

    *followed = o.followed;
    snprintf(idb, sizeof idb, "%" PRId64, id);
    /* a fifth of the investigated alerts were also labeled by hand, which
     * gives the rules an accuracy to show */
    if (o.followed && urand() < 0.2) {
        const char *lv[2] = { idb, k == K_FAULT ? d->fault_class : "normal" };
        int err = exec(DQ_LABEL, lv, NULL);

        if (err != SRV_OK)
            return err;
    }
    if (!o.touched)
        return SRV_OK;
    snprintf(ack, sizeof ack, "%" PRId64, ack_us);
    snprintf(dsp, sizeof dsp, "%" PRId64, disp_us);
    snprintf(wo, sizeof wo, "WO-%06" PRId64, 100000 + id);
    vals[0] = idb;
    vals[1] = ack;
    vals[2] = o.disp;
    vals[3] = o.disp && strcmp(o.disp, "action_taken") == 0 ? wo : NULL;
    vals[4] = o.outcome;
    vals[5] = o.cls;
    vals[6] = o.disp ? dsp : NULL;
    return exec(DQ_DISPOSE, vals, NULL);
}

static int setup_devices(void)
{
    size_t i;
    int err;

    for (i = 0; i < NDEV; i++) {
        char hex[2 * crypto_sign_PUBLICKEYBYTES + 1];
        const char *vals[4];

        crypto_sign_keypair(devs[i].pk, devs[i].sk);
        sodium_bin2hex(hex, sizeof hex, devs[i].pk, sizeof devs[i].pk);
        vals[0] = devs[i].id;
        vals[1] = hex;
        vals[2] = devs[i].site_type;
        vals[3] = "demo-site";
        err = exec(DQ_DEVICE, vals, NULL);
        if (err != SRV_OK)
            return err;
    }
    for (i = 0; i < sizeof demo_rules / sizeof demo_rules[0]; i++) {
        const char *vals[3] = { demo_rules[i][0], demo_rules[i][1], demo_rules[i][2] };

        err = exec(DQ_RULE, vals, NULL);
        if (err != SRV_OK)
            return err;
    }
    return SRV_OK;
}

/* One day of one device: Poisson-ish count, sometimes a chattering burst
 * (three or more within a minute) or, once, a flood for the ISA line. */
static int device_day(struct demo_device *d, int64_t day_us, int month, int flood,
                      long *n_alerts, long *n_followed)
{
    int n = 0, i, err;
    double lambda = d->per_day, l = exp(-lambda), p = urand();
    int64_t t[64];

    while (p > l && n < 20) {
        p *= urand();
        n++;
    }
    for (i = 0; i < n; i++)
        t[i] = day_us + (int64_t)(urand() * 86400e6);
    if (n > 0 && urand() < 0.08)                    /* chattering: 3 more within 40 s */
        for (i = 0; i < 3 && n < 60; i++, n++)
            t[n] = t[0] + (int64_t)((i + 1) * 12e6);
    if (flood)                                      /* an alarm flood: 14 in 8 minutes */
        for (i = 0; i < 14 && n < 64; i++, n++)
            t[n] = day_us + 36000000000LL + (int64_t)(i * 34e6);
    for (i = 0; i < n; i++) {
        enum demo_kind k = urand() < 0.45 ? K_FAULT : K_FALSE;
        int64_t id;
        int followed;

        if ((err = store_snapshot(d, k, t[i], &id)) != SRV_OK ||
            (err = record_disposition(d, id, k, t[i], month, &followed)) != SRV_OK)
            return err;
        (*n_alerts)++;
        *n_followed += followed;
    }
    return SRV_OK;
}

/* Six months of history ending yesterday (whole days, so the newest week
 * is complete); one alarm flood on the first device 40 days ago. */
static int demo_history(long *alerts, long *followed)
{
    int64_t now_us = (int64_t)time(NULL) * 1000000LL;
    int64_t start_us = (now_us / 86400000000LL - DEMO_DAYS) * 86400000000LL;
    int day, err;
    size_t d;

    for (day = 0; day < DEMO_DAYS; day++) {
        int month = day * 6 / DEMO_DAYS;

        for (d = 0; d < NDEV; d++) {
            err = device_day(&devs[d], start_us + (int64_t)day * 86400000000LL, month,
                             d == 0 && day == DEMO_DAYS - 40, alerts, followed);
            if (err != SRV_OK)
                return err;
        }
    }
    return SRV_OK;
}

int alerts_demo_run(const char *database_url, uint64_t seed)
{
    long alerts = 0, followed = 0;
    PGresult *r = NULL;
    int err;

    rng_state = seed * 2654435761ull + 1;
    if (sodium_init() < 0 || db_init(database_url) != SRV_OK)
        return SRV_EINTERNAL;
    err = exec(DQ_PRESENT, NULL, &r);
    if (err == SRV_OK && PQntuples(r) > 0) {
        fprintf(stderr, "demo-history: already present, nothing to do\n");
        goto out;
    }
    if (err == SRV_OK && (err = setup_devices()) == SRV_OK &&
        (err = demo_history(&alerts, &followed)) == SRV_OK)
        fprintf(stderr, "demo-history: %ld alerts over %d days on %zu demo devices, %ld "
                "followed through; features and rule hits follow from the server's worker\n",
                alerts, DEMO_DAYS, NDEV, followed);
    if (err != SRV_OK)
        fprintf(stderr, "demo-history: failed: %s\n", srv_err_message(err));
out:
    PQclear(r);
    db_shutdown();
    return err;
}
