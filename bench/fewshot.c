/* fewshot.c - 5-shot classification of failure modes: the project's few-shot
 * learner against k-NN and nearest-centroid baselines, all in the same run,
 * on windows of recordings other than the labeled ones.
 *
 *   bench-fewshot [--data DIR] [--corpus cranfield|bearing|both] [--trials N]
 *                 [--inductive] [--protos N] [--rounds N] [--shrink S]
 *                 [--ref-weight W] [--max-features N] [--budget BYTES]
 *                 [--rel-keep F] [--server-reference] [--server-map] [--propagate K]
 *                 [--trim-limit box|max] [--trim-conf P] [--label-guard on|off]
 *                 [--trim-t2 on|off] [--bearing-window N] [--seed N] [--no-geometry]
 *                 [--speeds RPM,RPM,...] [--shipped envelope|spectral] [--by-machine]
 *                 [--header-out FILE]
 *
 * cranfield: DIR/cranfield-mpf (default DIR: $PRECURSOR_DATA, else
 *   ../shared/data): 64 s windows (stride 32 s) of the 24 process channels;
 *   classes normal + the six fault cases; per trial, for each class, 5
 *   windows drawn from one recording (rotating which), tested on every
 *   window of the recordings no class was labeled from.
 * bearing: vibration made here from bearing kinematics (6205 geometry,
 *   12 kHz): impacts at BPFO / BPFI / 2xBSF ringing a resonance, inner race
 *   modulated by shaft rotation, ball by the cage, slip jitter, shaft
 *   harmonics and noise; four speeds x three severities x two outer-race
 *   load zones.  Labeled: 5 windows per class at the smallest severity and
 *   one speed; tested on all other speeds and severities.
 *   --speeds: the machines' shaft speeds in rpm, 2 to 8 of them, 300..3600
 *   (default 1797,1772,1750,1730: four speeds within 4%); e.g.
 *   600,900,1200,1800, a variable-speed fleet.  The first is the speed the
 *   classes are labeled at.  Nothing else of the generator changes with the
 *   list: an impact's amplitude and the shaft harmonics' do not grow with
 *   speed, only their rates and frequencies follow it.
 *   --shipped: the set in the "shipped set" rows: "envelope" (default) the
 *   set a fewshot model is trained on where the kinematics are known, at
 *   each machine's shaft speed (with --no-geometry, without its bearing);
 *   "spectral" the fixed-Hz set the server falls back to where no shaft
 *   speed is known, for the same-run comparison of orders and fixed bands
 *   (docs/BENCHMARKS.md, seventh round of 2026-12-07).
 *
 * Each recording (cranfield) or speed (bearing) is a machine; its first
 * REF_WINDOWS windows are its commissioning period, assumed normal, never
 * tested: "device ref" methods centre each machine on them (the baselines
 * on the same referenced features, as the ablation), the others do not.
 *
 * cranfield also has relation views (schema/relations.h): each window in the
 * residual subspace of a linear model of normal operation, the map fitted
 * without labels on every window, on the commissioning windows only, on
 * those and the windows the commissioning map finds normal (the trimmed
 * fit, what the server fits: ds_relations_fit_trimmed), or on means centred
 * on each machine's commissioning; the residuals' trend within the window;
 * within-window channel-pair correlations.  The baselines read them too.
 *
 * --trim-limit: the limit on a candidate's squared prediction error in the
 * trimmed fit (ds_relations_fit_trimmed_by): "max" (default, the server's)
 * the normal windows' largest in-sample SPE; "box" the control limit of
 * process monitoring, Box's g chi2_h at 99% on their cross-validated SPE
 * (measured against "max" and not shipped: docs/BENCHMARKS.md).
 * --trim-conf P: that limit's confidence (default 0.99, fixed before its
 * first run): a sensitivity check only, never the choice.
 * --label-guard on|off: whether the server map's refit admits a candidate
 * only if its nearest window among those assumed normal and those labeled
 * a fault is one assumed normal ("on", the default and the server's:
 * ds_relations_fit_trimmed; "off", the refit before it, for the same-run
 * comparison: docs/BENCHMARKS.md, fourth round of 2026-12-07).
 * --trim-t2 on|off: whether every trimmed refit also holds a candidate to
 * the largest T-squared of the windows assumed normal in the first map
 * (RELATIONS_LIMIT_T2; docs/BENCHMARKS.md, fifth round of 2026-12-07).
 *
 * Under each learner row's confusion matrix: recall by the fault's severity
 * (class right / called any fault), where the corpus grades it; with
 * --by-machine, each machine's accuracy and recall by class, with the call
 * a class is most often mistaken for (bearing: a machine is a speed).
 *
 * --propagate K: the learner spreads labels over a K-nearest-row graph
 * instead of self-training (models_fewshot.h).  --header-out FILE: the C
 * header of one device's blob of the shipped cranfield row (device ref,
 * trimmed relations, the scale on the map's fit windows), for its flash and
 * RAM on the device.
 *
 * Few-shot learner: all windows are its unlabeled data (their labels are
 * never read), unless --inductive, which gives it only the labeled
 * recordings' windows and the commissioning ones.  It is fitted within the
 * device's parameter budget (--budget, default the server's).  Baselines
 * see the labeled windows only. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/featureset.h"
#include "schema/relations.h"
#include "schema/spectral.h"
#include "server/models/models.h"
#include "server/models/models_fewshot.h"
#include "server/datasets/ds_relations.h"
#include "server/srv/srv.h"

#define SHOTS 5
#define MAX_LINE 4096
#define CF_CH 24
#define CF_WIN 64
#define CF_STRIDE 32
#define MAX_FILES 16
/* Windows of a machine's commissioning period, its own reference of normal
 * operation: 5 windows (3 minutes at cranfield's 64 s windows, stride 32 s)
 * because the earliest fault of that corpus starts at 240 s; a real
 * commissioning period would be hours. */
#define REF_WINDOWS 5

/* The feature views of every window: the bench's own project features
 * (with bearing geometry where known), the simple spectral
 * baseline, and the one extractor's sets as the server computes them:
 * "stats" v1 (what the server's classifier reads) and the set a "fewshot"
 * model is trained on and the device computes: "envelope" v1 where the
 * kinematics are known (bearing), "spectral" v1 where not (cranfield). */
enum view { V_PROJECT, V_SIMPLE, V_STATS, V_SHIPPED, V_REL, V_REL_COMM, V_REL_PROJECT, V_RELC_PROJECT, V_CORR, V_RELC_CORR, V_RELC_TREND, V_REL_TRIM, V_RELD_COMM, V_RELD_TRIM, V_REL_TRIM_S, NVIEW };
/* views extracted window by window; the relation views are fitted on the
 * whole corpus after loading (relations_build) */
#define NPUSH (V_SHIPPED + 1)

/* one feature set's matrix */
struct fset {
    const char *name;
    uint32_t nf;
    float *x;
};

struct corpus {
    const char *name;
    uint32_t n, cap, n_classes;
    int32_t *truth;
    uint32_t *group;           /* recording */
    uint32_t *device;          /* the machine a recording is from */
    uint8_t *reference;        /* 1 = its device's commissioning window (assumed normal) */
    int32_t *group_class;      /* the fault class of the recording's fault rows */
    uint32_t n_groups;
    struct fset fs[NVIEW];     /* what enum view names */
    const char *const *class_names;
    /* per window, for the relation views (multichannel corpora only): each
     * channel's mean and the window itself, channel-major (n_ch x win) */
    uint32_t n_ch, win;
    float *win_mean, *win_x;
    /* per window, the fault's severity band (SEV_*): how far the seeded
     * fault had gone, for the report by severity only; never read by a
     * method */
    uint8_t *sev;
    /* bearing: each machine's shaft speed, rpm (NULL: a machine is a recording) */
    const double *device_rpm;
};

/* Severity bands of a fault window.  Bearing-sim: the generator's three
 * severities.  cranfield: the manipulated element's travel from its normal
 * position as a fraction of its full travel (corpus README: valve 90 % ->
 * 0 % for the air and water lines, VC404 100 % -> 0 %, bypass 0 % -> 90 %),
 * in thirds, at the window's middle second; slugging and the 2-inch line
 * are on/off faults, not graded.  Fixed before the first report, by the
 * README's reading of the values, not by results. */
enum { SEV_NONE, SEV_MILD, SEV_MEDIUM, SEV_SEVERE, NSEV };
static const char *const sev_names[NSEV] = { "-", "mild", "medium", "severe" };

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "fewshot: out of memory\n");
        exit(1);
    }
    return q;
}

static void corpus_push(struct corpus *c, int32_t truth, uint32_t group, uint32_t device, int reference,
                        const float *const f[NPUSH])
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        c->truth = xrealloc(c->truth, c->cap * sizeof *c->truth);
        c->group = xrealloc(c->group, c->cap * sizeof *c->group);
        c->device = xrealloc(c->device, c->cap * sizeof *c->device);
        c->reference = xrealloc(c->reference, c->cap * sizeof *c->reference);
        c->sev = xrealloc(c->sev, c->cap * sizeof *c->sev);
        for (int s = 0; s < NPUSH; s++)
            c->fs[s].x = xrealloc(c->fs[s].x, (size_t)c->cap * c->fs[s].nf * sizeof(float));
        if (c->n_ch) {
            c->win_mean = xrealloc(c->win_mean, (size_t)c->cap * c->n_ch * sizeof(float));
            c->win_x = xrealloc(c->win_x, (size_t)c->cap * c->n_ch * c->win * sizeof(float));
        }
    }
    c->truth[c->n] = truth;
    c->group[c->n] = group;
    c->device[c->n] = device;
    c->reference[c->n] = (uint8_t)reference;
    c->sev[c->n] = SEV_NONE;
    for (int s = 0; s < NPUSH; s++)
        memcpy(c->fs[s].x + (size_t)c->n * c->fs[s].nf, f[s], c->fs[s].nf * sizeof(float));
    c->n++;
}

/* RMS, kurtosis and crest of n samples into out[0..2] (simple_spectral's). */
static void simple_moments(const float *x, uint32_t n, float *out)
{
    double m = 0, m2 = 0, m4 = 0, pk = 0;
    for (uint32_t i = 0; i < n; i++)
        m += x[i] / n;
    for (uint32_t i = 0; i < n; i++) {
        double d = x[i] - m;
        m2 += d * d / n;
        m4 += d * d * d * d / n;
        pk = fabs(d) > pk ? fabs(d) : pk;
    }
    out[0] = (float)sqrt(m2);
    out[1] = m2 > 0 ? (float)(m4 / (m2 * m2)) : 0;
    out[2] = m2 > 0 ? (float)(pk / sqrt(m2)) : 0;
}

/* Simple spectral features of the baseline: rms, kurtosis, crest and
 * 16 linear FFT band energies (log) of one channel's frame. */
static void simple_spectral(const float *x, uint32_t n, float *scratch, float *power, float *out)
{
    simple_moments(x, n, out);
    spectral_power(x, n, scratch, power);
    for (uint32_t b = 0; b < 16; b++) {
        double e = 0;
        for (uint32_t k = 1 + b * (n / 32); k < 1 + (b + 1) * (n / 32) && k <= n / 2; k++)
            e += power[k];
        out[3 + b] = (float)log10(e + 1e-12);
    }
}

/* One channel's frame through featureset_compute (set id, version 1; kin
 * for the envelope set, else NULL). */
static void extractor(uint16_t id, const float *x, uint32_t n, float fs, float *scratch, size_t ns,
                      const struct featureset_kin *kin, float *out)
{
    struct featureset_spec sp = { id, 1, n, n, fs, FEATURESET_NO_KIN, NULL };

    if (kin)
        sp.kin = *kin;
    if (featureset_compute(&sp, x, n, 1, scratch, ns, out) != 0) {
        fprintf(stderr, "fewshot: featureset_compute(%s) failed\n", featureset_name(id));
        exit(1);
    }
}

/* Scratch floats for the shipped spectral sets at window n, rate fs. */
static size_t extractor_scratch(uint32_t n, float fs)
{
    struct featureset_spec sp = { FEATURESET_SPECTRAL, FEATURESET_SPECTRAL_VERSION, n, n, fs,
                                  FEATURESET_NO_KIN, NULL };

    return featureset_scratch_floats(&sp);
}

/* Each channel's mean over a window of n rows (row-major, nch channels) and
 * the window channel-major, as a device hands it to its feature sets. */
static void window_store(const float *rows, uint32_t n, uint32_t nch, float *mean, float *xcm)
{
    for (uint32_t a = 0; a < nch; a++) {
        double m = 0;
        for (uint32_t i = 0; i < n; i++)
            m += (xcm[(size_t)a * n + i] = rows[(size_t)i * nch + a]);
        mean[a] = (float)(m / n);
    }
}

/* ---------------- cranfield ---------------- */

static const char *const cf_names[] = { "normal", "air_line_blockage", "water_line_blockage",
                                        "top_sep_blockage", "open_bypass", "slugging", "press_2inch" };

static int cf_read(const char *path, float **rows, int **label, uint32_t *n)
{
    FILE *f = fopen(path, "r");
    char line[MAX_LINE];
    uint32_t cap = 0;
    *n = 0;
    *rows = NULL;
    *label = NULL;
    if (!f || !fgets(line, sizeof line, f)) {
        fprintf(stderr, "fewshot: cannot read %s\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        if (!strchr(line, '\n') && !feof(f)) {
            fprintf(stderr, "fewshot: %s: line over %d bytes\n", path, MAX_LINE);
            fclose(f);
            return -1;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 4096;
            *rows = xrealloc(*rows, (size_t)cap * CF_CH * sizeof **rows);
            *label = xrealloc(*label, cap * sizeof **label);
        }
        char *p = line, *end;
        strtod(p, &end);                       /* timestamp */
        for (int c = 0; c < CF_CH; c++) {
            if (*end != ',') {
                fprintf(stderr, "fewshot: %s row %u: %d columns\n", path, *n, c);
                fclose(f);
                return -1;
            }
            (*rows)[(size_t)*n * CF_CH + c] = (float)strtod(end + 1, &end);
        }
        (*label)[*n] = (int)strtol(end + 1, &end, 10);
        (*n)++;
    }
    fclose(f);
    return 0;
}

/* Project features of one channel's 64 s: level, log rms, and the portable
 * spectral set (log bands, spectral kurtosis) of the frame. */
static const struct spectral_config cf_spec = { .fs = 1.0f, .n = CF_WIN, .log_bands = 4,
                                                .f_lo = 1.0f / 32, .sk_seg = 16 };

/* The severity band of every second of one cranfield file of fault case
 * fault (1..6), n seconds, from severity_steps.csv (file, start_s, end_s
 * exclusive, evofault, label); NULL when the table is absent or the case is
 * not graded (SEV_NONE for every window then). */
static uint8_t *cf_severity(const char *dir, const char *file, int fault, uint32_t n)
{
    /* normal position and full travel of the manipulated element */
    static const double home[7] = { 0, 90, 90, 100, 0, 0, 0 }, travel[7] = { 0, 90, 90, 100, 90, 0, 0 };
    char path[1024], line[256];
    if (fault < 1 || fault > 4)
        return NULL;
    snprintf(path, sizeof path, "%s/cranfield-mpf/severity_steps.csv", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    uint8_t *band = calloc(n ? n : 1, 1);
    while (band && fgets(line, sizeof line, f)) {
        char name[128];
        long a, b;
        double v;
        int lab;
        if (sscanf(line, "%127[^,],%ld,%ld,%lf,%d", name, &a, &b, &v, &lab) != 5 || strcmp(name, file) != 0 ||
            !lab || a < 0 || b <= a)
            continue;
        double frac = fabs(v - home[fault]) / travel[fault];
        uint8_t s = frac <= 1.0 / 3 ? SEV_MILD : frac <= 2.0 / 3 ? SEV_MEDIUM : SEV_SEVERE;
        for (long t = a; t < b && t < (long)n; t++)
            band[t] = s;
    }
    fclose(f);
    return band;
}

static int cranfield_load(const char *dir, struct corpus *c)
{
    char path[1024], line[256];
    snprintf(path, sizeof path, "%s/cranfield-mpf/files.csv", dir);
    FILE *list = fopen(path, "r");
    if (!list || !fgets(line, sizeof line, list)) {
        fprintf(stderr, "fewshot: no %s (pass --data DIR or set PRECURSOR_DATA)\n", path);
        if (list)
            fclose(list);
        return -1;
    }
    uint32_t nsp = spectral_feature_count(&cf_spec);
    c->name = "cranfield-mpf";
    c->n_classes = 7;
    c->class_names = cf_names;
    c->fs[0] = (struct fset){ "project", CF_CH * (1 + nsp), NULL };
    c->fs[1] = (struct fset){ "simple-spectral", CF_CH * 19, NULL };
    c->fs[2] = (struct fset){ "stats", CF_CH * FEATURESET_STATS_NFEAT, NULL };
    c->fs[3] = (struct fset){ "spectral-v1", CF_CH * FEATURESET_SPECTRAL_NFEAT, NULL };
    c->n_ch = CF_CH;
    c->win = CF_WIN;
    c->group_class = calloc(MAX_FILES, sizeof *c->group_class);
    size_t ns = spectral_scratch_floats(&cf_spec), nx = extractor_scratch(CF_WIN, 1.0f);
    float *scratch = malloc((ns + nx + 2 * CF_WIN) * sizeof *scratch), frame[CF_WIN];
    float f0[CF_CH * 16], f1[CF_CH * 19], f2[CF_CH * FEATURESET_STATS_NFEAT], pw[CF_WIN / 2 + 1];
    float f3[CF_CH * FEATURESET_SPECTRAL_NFEAT];
    while (fgets(line, sizeof line, list) && c->n_groups < MAX_FILES) {
        char *comma = strchr(line, ',');
        if (!comma)
            continue;
        *comma = 0;
        int fault = atoi(comma + 1);
        float *rows;
        int *lab;
        uint32_t n;
        snprintf(path, sizeof path, "%s/cranfield-mpf/%s", dir, line);
        if (fault < 1 || fault > 6 || cf_read(path, &rows, &lab, &n) != 0)
            return -1;
        uint32_t g = c->n_groups++;
        c->group_class[g] = fault;
        uint8_t *band = cf_severity(dir, line, fault, n);
        for (uint32_t s = 0; s + CF_WIN <= n; s += CF_STRIDE) {
            int sum = 0;
            for (uint32_t i = s; i < s + CF_WIN; i++)
                sum += lab[i] != 0;
            if (sum != 0 && sum != CF_WIN)
                continue;                      /* a window across a fault edge has no one label */
            for (int ch = 0; ch < CF_CH; ch++) {
                double m = 0;
                for (uint32_t i = 0; i < CF_WIN; i++)
                    m += (frame[i] = rows[(size_t)(s + i) * CF_CH + ch]) / CF_WIN;
                float *o = f0 + ch * (1 + nsp);
                o[0] = (float)m;
                if (spectral_features(&cf_spec, frame, scratch, ns, o + 1) != 0)
                    memset(o + 1, 0, nsp * sizeof *o);
                o[1] = logf(o[1] + 1e-9f);     /* rms on a log scale: ranges span decades */
                simple_spectral(frame, CF_WIN, scratch, pw, f1 + ch * 19);
                extractor(FEATURESET_STATS, frame, CF_WIN, 1.0f, NULL, 0, NULL,
                          f2 + ch * FEATURESET_STATS_NFEAT);
                extractor(FEATURESET_SPECTRAL, frame, CF_WIN, 1.0f, scratch, ns + nx, NULL,
                          f3 + ch * FEATURESET_SPECTRAL_NFEAT);
            }
            const float *fx[NPUSH] = { f0, f1, f2, f3 };
            /* each recording is a machine; its first windows its commissioning */
            corpus_push(c, sum ? fault : 0, g, g, s < REF_WINDOWS * CF_STRIDE && !sum, fx);
            if (sum && band)
                c->sev[c->n - 1] = band[s + CF_WIN / 2];
            window_store(rows + (size_t)s * CF_CH, CF_WIN, CF_CH, c->win_mean + (size_t)(c->n - 1) * CF_CH,
                         c->win_x + (size_t)(c->n - 1) * CF_CH * CF_WIN);
        }
        free(band);
        free(rows);
        free(lab);
    }
    fclose(list);
    free(scratch);
    return c->n_groups == MAX_FILES ? 0 : -1;
}

/* ---------------- bearing (generated from kinematics) ---------------- */

static const char *const br_names[] = { "normal", "inner_race", "outer_race", "ball" };
#define BR_FS 12000.0f
#define BR_N 4096
static const struct spectral_bearing br_6205 = { 9, 7.94f, 39.04f, 0.0f };
/* --bearing-window N (64..4096): the bearing windows' length.  The default
 * 4096 is a power of two; 3000 is 0.25 s at 12 kHz, the windows the issue's
 * user cut.  Every view reads all of a window: the spectral ones zero-pad
 * it to the next power of two as the shipped sets do (schema/spectral.h),
 * the simple baseline's 16 bands come from its spectrum zero-padded to
 * BR_N and its moments from its own samples. */
static uint32_t g_br_n = BR_N;
/* --no-geometry: the shipped set as the server computes it for a machine
 * whose shaft speed the taxonomy knows and whose bearing it does not: the
 * orders, no defect energies (they read 0) */
static int g_no_geometry;
/* --speeds: each machine's shaft speed, rpm */
#define BR_MAX_SPEEDS 8
static double g_rpm[BR_MAX_SPEEDS] = { 1797, 1772, 1750, 1730 };
static int g_n_speeds = 4;
/* --shipped spectral: the shipped view is the fixed-Hz set, no kinematics */
static int g_shipped_spectral;

/* --speeds LIST: 2..BR_MAX_SPEEDS comma-separated rpm, each 300..3600:
 * a two-pole motor on a drive, 5 to 60 Hz.  Below 5 Hz an order band of
 * the envelope set, one shaft order wide, spans under two bins of the
 * 4,096-point spectrum at 12 kHz.  -1 (the list unchanged) otherwise. */
static int parse_speeds(const char *s)
{
    double v[BR_MAX_SPEEDS];
    int n = 0;

    for (;;) {
        char *end;
        if (n == BR_MAX_SPEEDS)
            return -1;
        v[n] = strtod(s, &end);
        if (end == s || !(v[n] >= 300 && v[n] <= 3600))
            return -1;
        n++;
        if (*end == 0)
            break;
        if (*end != ',')
            return -1;
        s = end + 1;
    }
    if (n < 2)
        return -1;
    memcpy(g_rpm, v, (size_t)n * sizeof *v);
    g_n_speeds = n;
    return 0;
}

static uint32_t pow2_ceil(uint32_t n)
{
    uint32_t p = 64;

    while (p < n)
        p *= 2;
    return p;
}

/* One random stream for the generator and the label draws, in the order
 * the corpora run: the figures of one corpus depend on whether the other
 * ran first.  --seed N starts it elsewhere (splitmix64 of N), to see how
 * much of a figure is the draw; without it, the stream every recorded
 * figure came from. */
static uint64_t rng_state = 88172645463325252ull;

static void rng_seed(uint64_t n)
{
    uint64_t z = n + 0x9E3779B97F4A7C15ull;

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    rng_state = z ? z : 88172645463325252ull;
}
static double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static double nrand(void)
{
    double u = urand() + 1e-12, v = urand();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* One window (g_br_n samples) of class cls at shaft speed fr, severity sev (1..3),
 * outer-race load zone zone (0 in the zone, 1 at 90 degrees: weaker, and
 * modulated by the shaft as the load passes). */
static void bearing_window(int cls, double fr, int sev, int zone, float *x)
{
    float f[SPECTRAL_NDEFECTS];
    spectral_defect_freqs(&br_6205, (float)fr, f);
    double res = 3400.0 + 300.0 * urand(), damp = 1200.0 + 200.0 * sev;
    double amp = sev == 1 ? 0.6 : sev == 2 ? 1.0 : 1.5, phase = urand() * 6.283185307179586;
    for (uint32_t i = 0; i < g_br_n; i++) {
        double t = i / BR_FS;
        x[i] = (float)(0.25 * sin(6.283185307179586 * fr * t + phase) +
                       0.08 * sin(2 * 6.283185307179586 * fr * t) + 0.15 * nrand());
    }
    if (cls == 0)
        return;
    double rate = cls == 1 ? f[SPECTRAL_BPFI] : cls == 2 ? f[SPECTRAL_BPFO] : 2 * f[SPECTRAL_BSF];
    for (double t0 = urand() / rate; t0 < g_br_n / BR_FS; t0 += (1.0 + 0.015 * nrand()) / rate) {
        double a = amp;
        if (cls == 1)          /* the inner race turns through the load zone */
            a *= 0.5 * (1 + cos(6.283185307179586 * fr * t0));
        else if (cls == 2 && zone)
            a *= 0.35 * (1 + 0.8 * cos(6.283185307179586 * fr * t0));
        else if (cls == 3)     /* the ball in and out of the load zone, at cage speed */
            a *= 0.6 * (1 + cos(6.283185307179586 * f[SPECTRAL_FTF] * t0));
        for (int i = (int)(t0 * BR_FS) + 1; i < (int)g_br_n && i < (int)(t0 * BR_FS) + 200; i++) {
            double dt = i / BR_FS - t0;
            x[i] += (float)(a * exp(-dt * damp) * sin(6.283185307179586 * res * dt));
        }
    }
}

static int bearing_make(struct corpus *c)
{
    const double *rpm = g_rpm;
    c->name = "bearing-sim";
    c->device_rpm = g_rpm;
    c->n_classes = 4;
    c->class_names = br_names;
    uint32_t n2 = pow2_ceil(g_br_n);        /* the FFT a window is zero-padded to */
    struct spectral_config sc = { .fs = BR_FS, .n = n2, .len = n2 == g_br_n ? 0 : g_br_n,
                                  .log_bands = 8, .f_lo = 20.0f,
                                  .order_bands = 6, .sk_seg = 64, .has_bearing = 1,
                                  .bearing = br_6205 };
    sc.shaft_hz = 30.0f;
    uint32_t nsp = spectral_feature_count(&sc);
    c->fs[0] = (struct fset){ "project", nsp, NULL };
    c->fs[1] = (struct fset){ "simple-spectral", 19, NULL };
    c->fs[2] = (struct fset){ "stats", FEATURESET_STATS_NFEAT, NULL };
    c->fs[3] = g_shipped_spectral ? (struct fset){ "spectral-v1", FEATURESET_SPECTRAL_NFEAT, NULL }
                                  : (struct fset){ "envelope-v1", FEATURESET_ENVELOPE_NFEAT, NULL };
    c->group_class = calloc(4 * 3 * 2 * (size_t)g_n_speeds, sizeof *c->group_class);
    size_t ns = spectral_scratch_floats(&sc), nx = extractor_scratch(BR_N, BR_FS) + 64;
    ns = ns > nx ? ns : nx;     /* the envelope set's scratch is the spectral set's (SK segment 64) */
    float *scratch = malloc((ns + 2 * BR_N) * sizeof *scratch), *pw = malloc((BR_N / 2 + 1) * sizeof *pw);
    static float x[BR_N], xpad[BR_N];
    float f0[64], f1[19], f2[FEATURESET_STATS_NFEAT], f3[FEATURESET_ENVELOPE_NFEAT];
    /* a recording: one class at one speed, severity and zone; 20 windows each */
    for (int cls = 0; cls < 4; cls++)
        for (int sp = 0; sp < g_n_speeds; sp++)
            for (int sev = 1; sev <= 3; sev++)
                for (int zone = 0; zone < (cls == 2 ? 2 : 1); zone++) {
                    if (cls == 0 && sev > 1)
                        continue;             /* normal has no severity */
                    uint32_t g = c->n_groups++;
                    c->group_class[g] = cls;
                    sc.shaft_hz = (float)(rpm[sp] / 60.0);
                    for (int w = 0; w < 20; w++) {
                        bearing_window(cls, rpm[sp] / 60.0, sev, zone, x);
                        if (spectral_features(&sc, x, scratch, ns, f0) != 0)
                            return -1;
                        f0[0] = logf(f0[0]);
                        if (g_br_n == BR_N) {
                            simple_spectral(x, BR_N, scratch, pw, f1);
                        } else {
                            /* moments of the whole window, bands of its zero-padded spectrum */
                            memset(xpad, 0, sizeof xpad);
                            memcpy(xpad, x, g_br_n * sizeof *x);
                            simple_spectral(xpad, BR_N, scratch, pw, f1);
                            simple_moments(x, g_br_n, f1);
                        }
                        struct featureset_kin kin = { sc.shaft_hz, br_6205.n_elements,
                                                      br_6205.ball_d, br_6205.pitch_d,
                                                      br_6205.contact_deg };

                        if (g_no_geometry)
                            kin = (struct featureset_kin){ sc.shaft_hz, 0u, 0.0f, 0.0f, 0.0f };

                        extractor(FEATURESET_STATS, x, g_br_n, BR_FS, NULL, 0, NULL, f2);
                        if (g_shipped_spectral)
                            extractor(FEATURESET_SPECTRAL, x, g_br_n, BR_FS, scratch, ns, NULL, f3);
                        else
                            extractor(FEATURESET_ENVELOPE, x, g_br_n, BR_FS, scratch, ns, &kin, f3);
                        const float *fx[NPUSH] = { f0, f1, f2, f3 };
                        /* each speed is a machine; its commissioning: the first
                         * windows of its healthy recording */
                        corpus_push(c, cls, g, (uint32_t)sp, cls == 0 && w < REF_WINDOWS, fx);
                        if (cls != 0)
                            c->sev[c->n - 1] = (uint8_t)sev;
                    }
                }
    free(scratch);
    free(pw);
    return 0;
}

/* ---------------- relation views ---------------- */

/* A process fault breaks the relations between channels; a set-point change
 * moves related channels together and keeps them (schema/relations.h).  The
 * map (ds_relations_fit: principal subspace of the standardised window
 * means up to 90% of the variance, the usual rule, set before any run) is
 * fitted without labels, on every window (V_REL: the unlabeled pool, faults
 * included) or on the machines' commissioning windows only (V_REL_COMM:
 * assumed normal, as a monitoring model is fitted on normal operation).
 * Both variants were laid down before the first run.  The map's parameters
 * count against the device budget of the model that reads them. */
static uint32_t g_rel_bytes[NVIEW];
static double g_rel_keep = RELATIONS_VAR_KEEP;   /* --rel-keep: a sensitivity check, not a knob */

static struct relations_fit g_rf_comm;   /* the commissioning-fitted map, for the trend view */
static struct relations_fit g_rf_trim;   /* the trimmed map: what the server fits (--header-out) */
static uint8_t *g_trim_mask;             /* the windows of its final fit (V_REL_TRIM_S's scale rows) */
static const char *g_header_out;         /* --header-out: the C header of what ships, last trial */
static enum relations_limit g_trim_limit = RELATIONS_LIMIT_DEFAULT;   /* --trim-limit */
static double g_trim_conf = RELATIONS_LIMIT_CONF;   /* --trim-conf: a sensitivity check, not a knob */
static int g_label_guard = 1;            /* --label-guard: the server map's refit guarded by the fault labels */
static int g_trim_t2 = 0;                /* --trim-t2: the refit's T-squared limit beside the SPE's */

/* The trimmed fit as the bench runs it (the limit --trim-limit names),
 * with what it took said: the windows, the limit, and how many of the
 * windows it added are faults (the truth, read only to say so). */
static int trimmed_fit(const struct corpus *c, const char *what, const float *means, const uint8_t *normal,
                       const uint8_t *cand, const uint8_t *fault, struct relations_fit *rf, uint32_t *n_fit,
                       uint8_t *mask)
{
    uint8_t *m = mask ? mask : xrealloc(NULL, c->n ? c->n : 1);
    double lim = 0;
    uint32_t nfault = 0, nadd = 0;
    int rc = ds_relations_fit_guarded(means, c->n, c->n_ch, normal, cand, fault, g_rel_keep,
                                      (unsigned)g_trim_limit | (g_trim_t2 ? RELATIONS_LIMIT_T2 : 0u),
                                      g_trim_conf, rf, n_fit, m, &lim);
    if (rc == 0) {
        for (uint32_t i = 0; i < c->n; i++)
            if (m[i] && !normal[i]) {
                nadd++;
                nfault += c->truth[i] != 0;
            }
        char how[48];
        if (g_trim_limit == RELATIONS_LIMIT_MAX)
            snprintf(how, sizeof how, "largest in-sample");
        else
            snprintf(how, sizeof how, "Box %g%%", 100 * g_trim_conf);
        printf("%s: %s: trimmed fit (%s limit, SPE <= %.3g%s%s): %u windows, %u added, %u of them faults "
               "(the truth, read only to say so)\n", c->name, what, how, lim, g_trim_t2 ? ", T-squared limit" : "",
               fault ? ", label guard" : "",
               *n_fit, nadd, nfault);
    }
    if (!mask)
        free(m);
    return rc;
}

static void relations_build(struct corpus *c, enum view v, const uint8_t *fit, int trimmed)
{
    struct relations_fit rf;
    uint32_t n_trim = 0;
    if (trimmed)
        g_trim_mask = xrealloc(g_trim_mask, c->n);
    if ((trimmed ? trimmed_fit(c, "commissioning map", c->win_mean, fit, NULL, NULL, &rf, &n_trim, g_trim_mask)
                 : ds_relations_fit(c->win_mean, c->n, c->n_ch, fit, g_rel_keep, &rf)) != 0) {
        fprintf(stderr, "fewshot: relation fit failed\n");
        exit(1);
    }
    uint32_t nf = RELATIONS_NFEAT(c->n_ch), nfit = 0;
    size_t ns = relations_scratch_floats(&rf.map);
    float *scratch = xrealloc(NULL, ns * sizeof *scratch);
    c->fs[v] = (struct fset){ v == V_REL ? "relations" : v == V_REL_TRIM ? "relations-trimmed" : "relations-commissioning", nf,
                              xrealloc(NULL, (size_t)c->n * nf * sizeof(float)) };
    for (uint32_t i = 0; i < c->n; i++) {
        nfit += trimmed ? 0 : !fit || fit[i];
        if (relations_features(&rf.map, c->win_x + (size_t)i * c->n_ch * c->win, c->win, c->win, scratch, ns,
                               c->fs[v].x + (size_t)i * nf) != 0) {
            fprintf(stderr, "fewshot: relation features failed\n");
            exit(1);
        }
    }
    free(scratch);
    if (trimmed)
        nfit = n_trim;
    if (v == V_REL_TRIM) {
        g_rf_trim = rf;
        g_rf_trim.map.mean = g_rf_trim.mean;
        g_rf_trim.map.scale = g_rf_trim.scale;
        g_rf_trim.map.basis = g_rf_trim.basis;
    }
    if (v == V_REL_COMM) {
        g_rf_comm = rf;
        g_rf_comm.map.mean = g_rf_comm.mean;
        g_rf_comm.map.scale = g_rf_comm.scale;
        g_rf_comm.map.basis = g_rf_comm.basis;
    }
    g_rel_bytes[v] = ds_relations_bytes(&rf.map);
    printf("%s: %s fitted on %u windows: %u of %u components (%.1f%% of the variance), "
           "%u bytes of map\n", c->name, c->fs[v].name, nfit, rf.map.rank, c->n_ch, 100 * rf.explained,
           g_rel_bytes[v]);
}

/* Relations after each device's own reference: the map fitted on window
 * means centred on the median of their device's commissioning windows
 * (between-machine set-point offsets out of the fit, so its components
 * are spent on how a machine moves, not where each one sits); a device
 * reads it with its own mean, the fit's plus its median, which a
 * per-device blob could carry.  Fitted on the commissioning windows, or
 * trimmed (ds_relations_fit_trimmed).  Set before its run. */
static void relations_build_centred(struct corpus *c, enum view v, int trimmed)
{
    uint32_t C = c->n_ch, nd = 0, nf = RELATIONS_NFEAT(C), n_fit = 0;
    for (uint32_t i = 0; i < c->n; i++)
        nd = c->device[i] + 1 > nd ? c->device[i] + 1 : nd;
    float *med = xrealloc(NULL, (size_t)nd * C * sizeof *med), *cm = xrealloc(NULL, (size_t)c->n * C * sizeof *cm);
    float *v_ = xrealloc(NULL, c->n * sizeof *v_);
    for (uint32_t k = 0; k < nd; k++)
        for (uint32_t a = 0; a < C; a++) {
            uint32_t m = 0;
            for (uint32_t i = 0; i < c->n; i++)
                if (c->device[i] == k && c->reference[i])
                    v_[m++] = c->win_mean[(size_t)i * C + a];
            for (uint32_t x = 1; x < m; x++)        /* insertion sort: 5 values */
                for (uint32_t y = x; y > 0 && v_[y - 1] > v_[y]; y--) {
                    float t = v_[y];
                    v_[y] = v_[y - 1];
                    v_[y - 1] = t;
                }
            med[(size_t)k * C + a] = m ? v_[m / 2] : 0.0f;
        }
    for (uint32_t i = 0; i < c->n; i++)
        for (uint32_t a = 0; a < C; a++)
            cm[(size_t)i * C + a] = c->win_mean[(size_t)i * C + a] - med[(size_t)c->device[i] * C + a];
    struct relations_fit rf;
    int rc = trimmed ? trimmed_fit(c, "device-centred map", cm, c->reference, NULL, NULL, &rf, &n_fit, NULL)
                     : ds_relations_fit(cm, c->n, C, c->reference, g_rel_keep, &rf);
    if (rc != 0) {
        fprintf(stderr, "fewshot: centred relation fit failed\n");
        exit(1);
    }
    size_t ns = relations_scratch_floats(&rf.map);
    float *scratch = xrealloc(NULL, ns * sizeof *scratch), mean_d[RELATIONS_MAX_CH];
    c->fs[v] = (struct fset){ trimmed ? "relations-device-centred-trimmed" : "relations-device-centred", nf,
                              xrealloc(NULL, (size_t)c->n * nf * sizeof(float)) };
    for (uint32_t i = 0; i < c->n; i++) {
        struct relations_map m = rf.map;
        for (uint32_t a = 0; a < C; a++)
            mean_d[a] = rf.mean[a] + med[(size_t)c->device[i] * C + a];
        m.mean = mean_d;
        if (relations_features(&m, c->win_x + (size_t)i * C * c->win, c->win, c->win, scratch, ns,
                               c->fs[v].x + (size_t)i * nf) != 0) {
            fprintf(stderr, "fewshot: relation features failed\n");
            exit(1);
        }
    }
    g_rel_bytes[v] = ds_relations_bytes(&rf.map);
    printf("%s: %s fitted on %u windows: %u of %u components (%.1f%% of the variance), %u bytes of map\n",
           c->name, c->fs[v].name, trimmed ? n_fit : REF_WINDOWS * c->n_groups, rf.map.rank, C,
           100 * rf.explained, g_rel_bytes[v]);
    free(scratch);
    free(med);
    free(cm);
    free(v_);
}

/* The relation views and their concatenation with the project features;
 * empty (nf 0) for single-channel corpora. */
static void relations_views(struct corpus *c)
{
    if (c->n_ch < 2 || c->n_ch > RELATIONS_MAX_CH) {
        c->fs[V_REL] = (struct fset){ "relations", 0, NULL };
        c->fs[V_REL_COMM] = (struct fset){ "relations-commissioning", 0, NULL };
        c->fs[V_REL_PROJECT] = (struct fset){ "relations+project", 0, NULL };
        c->fs[V_RELC_PROJECT] = (struct fset){ "relations-commissioning+project", 0, NULL };
        c->fs[V_CORR] = (struct fset){ "correlations", 0, NULL };
        c->fs[V_RELC_CORR] = (struct fset){ "relations-commissioning+correlations", 0, NULL };
        c->fs[V_RELC_TREND] = (struct fset){ "relations-commissioning+trend", 0, NULL };
        c->fs[V_REL_TRIM] = (struct fset){ "relations-trimmed", 0, NULL };
        c->fs[V_RELD_COMM] = (struct fset){ "relations-device-centred", 0, NULL };
        c->fs[V_RELD_TRIM] = (struct fset){ "relations-device-centred-trimmed", 0, NULL };
        c->fs[V_REL_TRIM_S] = (struct fset){ "relations-trimmed", 0, NULL };
        return;
    }
    relations_build(c, V_REL, NULL, 0);
    relations_build(c, V_REL_COMM, c->reference, 0);
    /* The map refitted on the plentiful unlabeled windows that the
     * commissioning map finds normal (ds_relations_fit_trimmed; set before
     * its run): what the server fits. */
    relations_build(c, V_REL_TRIM, c->reference, 1);
    /* the same features; the learner measures its scale on the map's fit windows */
    c->fs[V_REL_TRIM_S] = c->fs[V_REL_TRIM];
    g_rel_bytes[V_REL_TRIM_S] = g_rel_bytes[V_REL_TRIM];
    relations_build_centred(c, V_RELD_COMM, 0);
    relations_build_centred(c, V_RELD_TRIM, 1);
    g_rel_bytes[V_REL_PROJECT] = g_rel_bytes[V_REL];
    g_rel_bytes[V_RELC_PROJECT] = g_rel_bytes[V_REL_COMM];
    g_rel_bytes[V_RELC_CORR] = g_rel_bytes[V_REL_COMM];
    for (int j = 0; j < 2; j++) {
        enum view rv = j ? V_REL_COMM : V_REL, cv = j ? V_RELC_PROJECT : V_REL_PROJECT;
        uint32_t nr = c->fs[rv].nf, np = c->fs[V_PROJECT].nf, nf = nr + np;
        c->fs[cv] = (struct fset){ j ? "relations-commissioning+project" : "relations+project", nf,
                                   xrealloc(NULL, (size_t)c->n * nf * sizeof(float)) };
        for (uint32_t i = 0; i < c->n; i++) {
            memcpy(c->fs[cv].x + (size_t)i * nf, c->fs[rv].x + (size_t)i * nr, nr * sizeof(float));
            memcpy(c->fs[cv].x + (size_t)i * nf + nr, c->fs[V_PROJECT].x + (size_t)i * np,
                   np * sizeof(float));
        }
    }
    /* Within-window relations, the brief form: the Pearson correlation of
     * every channel pair over the window (0 where a channel does not move),
     * alone and joined with the commissioning-fitted residuals.  Set-point
     * free by construction; bench only. */
    uint32_t C = c->n_ch, W = c->win, npair = C * (C - 1) / 2, nr = c->fs[V_REL_COMM].nf;
    c->fs[V_CORR] = (struct fset){ "correlations", npair, xrealloc(NULL, (size_t)c->n * npair * sizeof(float)) };
    c->fs[V_RELC_CORR] = (struct fset){ "relations-commissioning+correlations", nr + npair,
                                        xrealloc(NULL, (size_t)c->n * (nr + npair) * sizeof(float)) };
    for (uint32_t i = 0; i < c->n; i++) {
        const float *x = c->win_x + (size_t)i * C * W, *m = c->win_mean + (size_t)i * C;
        float *o = c->fs[V_CORR].x + (size_t)i * npair, *oc = c->fs[V_RELC_CORR].x + (size_t)i * (nr + npair);
        double sd[RELATIONS_MAX_CH];
        for (uint32_t a = 0; a < C; a++) {
            double v = 0;
            for (uint32_t t = 0; t < W; t++)
                v += (x[a * W + t] - m[a]) * (x[a * W + t] - m[a]);
            sd[a] = sqrt(v);
        }
        uint32_t q = 0;
        for (uint32_t a = 0; a < C; a++)
            for (uint32_t b = a + 1; b < C; b++) {
                double cv = 0;
                for (uint32_t t = 0; t < W; t++)
                    cv += (x[a * W + t] - m[a]) * (x[b * W + t] - m[b]);
                double den = sd[a] * sd[b];
                o[q++] = den > 1e-12 * (1 + fabs(m[a]) * fabs(m[b])) ? (float)(cv / den) : 0.0f;
            }
        memcpy(oc, c->fs[V_REL_COMM].x + (size_t)i * nr, nr * sizeof(float));
        memcpy(oc + nr, o, npair * sizeof(float));
    }
    /* Rates of change: per channel, the least-squares slope of its
     * relation residual within the window times the window's length (how
     * far the broken relation moved in it, in the map's standardised
     * units), joined to the commissioning-fitted residuals.  A gradual
     * closure drifts the residual; a set-point move inside the normal
     * subspace does not.  Bench only (set before its run). */
    const struct relations_map *rm = &g_rf_comm.map;
    uint32_t R = rm->rank;
    g_rel_bytes[V_RELC_TREND] = g_rel_bytes[V_REL_COMM];
    c->fs[V_RELC_TREND] = (struct fset){ "relations-commissioning+trend", nr + C,
                                         xrealloc(NULL, (size_t)c->n * (nr + C) * sizeof(float)) };
    double *zt = xrealloc(NULL, (size_t)C * W * sizeof *zt), tbar = (W - 1) / 2.0, tss = 0;
    for (uint32_t t = 0; t < W; t++)
        tss += (t - tbar) * (t - tbar);
    for (uint32_t i = 0; i < c->n; i++) {
        const float *x = c->win_x + (size_t)i * C * W;
        float *o = c->fs[V_RELC_TREND].x + (size_t)i * (nr + C);
        memcpy(o, c->fs[V_REL_COMM].x + (size_t)i * nr, nr * sizeof(float));
        for (uint32_t t = 0; t < W; t++) {
            double proj[RELATIONS_MAX_CH] = { 0 };
            for (uint32_t a = 0; a < C; a++)
                zt[a * W + t] = (x[a * W + t] - rm->mean[a]) / rm->scale[a];
            for (uint32_t q = 0; q < R; q++)
                for (uint32_t a = 0; a < C; a++)
                    proj[q] += rm->basis[a * R + q] * zt[a * W + t];
            for (uint32_t a = 0; a < C; a++)
                for (uint32_t q = 0; q < R; q++)
                    zt[a * W + t] -= rm->basis[a * R + q] * proj[q];
        }
        for (uint32_t a = 0; a < C; a++) {
            double sxy = 0;
            for (uint32_t t = 0; t < W; t++)
                sxy += (t - tbar) * zt[a * W + t];
            o[nr + a] = (float)(sxy / tss * W);
        }
    }
    free(zt);
}

/* ---------------- the trials ---------------- */

/* Every method of a run: learner (k = -1 few-shot, 0 centroid, 3 3-NN) on a
 * view, with each machine its own reference (ref = 1: the learner centres
 * each device on its commissioning windows; the baselines read the same
 * referenced features, the ablation that says where a gain comes from) or
 * not. */
static const struct method {
    const char *name;
    enum view v;
    int k, ref;
} methods[] = {
    { "fewshot, device ref (shipped set)", V_SHIPPED, -1, 1 },
    { "fewshot, device ref (project features)", V_PROJECT, -1, 1 },
    { "fewshot, no ref (shipped set)", V_SHIPPED, -1, 0 },
    { "fewshot, no ref (project features)", V_PROJECT, -1, 0 },
    { "3-NN, device ref (shipped set)", V_SHIPPED, 3, 1 },
    { "centroid, device ref (shipped set)", V_SHIPPED, 0, 1 },
    { "3-NN, device ref (project features)", V_PROJECT, 3, 1 },
    { "centroid, device ref (project features)", V_PROJECT, 0, 1 },
    { "3-NN (project features)", V_PROJECT, 3, 0 },
    { "centroid (project features)", V_PROJECT, 0, 0 },
    { "3-NN (shipped set)", V_SHIPPED, 3, 0 },
    { "centroid (shipped set)", V_SHIPPED, 0, 0 },
    { "3-NN (simple spectral)", V_SIMPLE, 3, 0 },
    { "centroid (simple spectral)", V_SIMPLE, 0, 0 },
    { "3-NN (stats v1)", V_STATS, 3, 0 },
    { "centroid (stats v1: server classifier)", V_STATS, 0, 0 },
    { "fewshot, no ref (relations)", V_REL, -1, 0 },
    { "fewshot, device ref (relations)", V_REL, -1, 1 },
    { "fewshot, no ref (relations, comm. fit)", V_REL_COMM, -1, 0 },
    { "fewshot, no ref (relations+project)", V_REL_PROJECT, -1, 0 },
    { "fewshot, device ref (relations, comm. fit)", V_REL_COMM, -1, 1 },
    { "fewshot, no ref (rel. comm. fit+project)", V_RELC_PROJECT, -1, 0 },
    { "fewshot, device ref (rel. comm. fit+project)", V_RELC_PROJECT, -1, 1 },
    { "fewshot, no ref (correlations)", V_CORR, -1, 0 },
    { "fewshot, device ref (correlations)", V_CORR, -1, 1 },
    { "fewshot, no ref (rel. comm. fit+corr.)", V_RELC_CORR, -1, 0 },
    { "fewshot, device ref (rel. comm. fit+corr.)", V_RELC_CORR, -1, 1 },
    { "fewshot, device ref (relations+project)", V_REL_PROJECT, -1, 1 },
    { "3-NN (relations)", V_REL, 3, 0 },
    { "centroid (relations)", V_REL, 0, 0 },
    { "3-NN, device ref (relations)", V_REL, 3, 1 },
    { "centroid, device ref (relations)", V_REL, 0, 1 },
    { "3-NN (relations, comm. fit)", V_REL_COMM, 3, 0 },
    { "centroid (relations, comm. fit)", V_REL_COMM, 0, 0 },
    { "3-NN (relations+project)", V_REL_PROJECT, 3, 0 },
    { "centroid (relations+project)", V_REL_PROJECT, 0, 0 },
    { "3-NN, device ref (relations, comm. fit)", V_REL_COMM, 3, 1 },
    { "centroid, device ref (relations, comm. fit)", V_REL_COMM, 0, 1 },
    { "3-NN (rel. comm. fit+project)", V_RELC_PROJECT, 3, 0 },
    { "centroid (rel. comm. fit+project)", V_RELC_PROJECT, 0, 0 },
    { "3-NN (correlations)", V_CORR, 3, 0 },
    { "centroid (correlations)", V_CORR, 0, 0 },
    { "fewshot, no ref (rel. comm. fit+trend)", V_RELC_TREND, -1, 0 },
    { "fewshot, device ref (rel. comm. fit+trend)", V_RELC_TREND, -1, 1 },
    { "3-NN (rel. comm. fit+trend)", V_RELC_TREND, 3, 0 },
    { "centroid (rel. comm. fit+trend)", V_RELC_TREND, 0, 0 },
    { "3-NN, device ref (rel. comm. fit+trend)", V_RELC_TREND, 3, 1 },
    { "centroid, device ref (rel. comm. fit+trend)", V_RELC_TREND, 0, 1 },
    { "fewshot, no ref (relations, trimmed fit)", V_REL_TRIM, -1, 0 },
    { "fewshot, device ref (relations, trimmed fit)", V_REL_TRIM, -1, 1 },
    { "3-NN (relations, trimmed fit)", V_REL_TRIM, 3, 0 },
    { "centroid (relations, trimmed fit)", V_REL_TRIM, 0, 0 },
    { "3-NN, device ref (relations, trimmed fit)", V_REL_TRIM, 3, 1 },
    { "centroid, device ref (relations, trimmed fit)", V_REL_TRIM, 0, 1 },
    { "fewshot, no ref (relations, device-centred)", V_RELD_COMM, -1, 0 },
    { "fewshot, device ref (relations, device-centred)", V_RELD_COMM, -1, 1 },
    { "3-NN (relations, device-centred)", V_RELD_COMM, 3, 0 },
    { "centroid (relations, device-centred)", V_RELD_COMM, 0, 0 },
    { "3-NN, device ref (relations, device-centred)", V_RELD_COMM, 3, 1 },
    { "centroid, device ref (relations, device-centred)", V_RELD_COMM, 0, 1 },
    { "fewshot, no ref (relations, dev.-centred trimmed)", V_RELD_TRIM, -1, 0 },
    { "fewshot, device ref (relations, dev.-centred trimmed)", V_RELD_TRIM, -1, 1 },
    { "3-NN (relations, dev.-centred trimmed)", V_RELD_TRIM, 3, 0 },
    { "centroid (relations, dev.-centred trimmed)", V_RELD_TRIM, 0, 0 },
    { "3-NN, device ref (relations, dev.-centred trimmed)", V_RELD_TRIM, 3, 1 },
    { "centroid, device ref (relations, dev.-centred trimmed)", V_RELD_TRIM, 0, 1 },
    { "fewshot, device ref (relations, trimmed, scale on fit windows)", V_REL_TRIM_S, -1, 1 },
    { "fewshot, no ref (relations, trimmed, scale on fit windows)", V_REL_TRIM_S, -1, 0 },
    { "3-NN (rel. comm. fit+corr.)", V_RELC_CORR, 3, 0 },
    { "centroid (rel. comm. fit+corr.)", V_RELC_CORR, 0, 0 },
};
#define M_COUNT ((int)(sizeof methods / sizeof methods[0]))

struct tally {
    uint32_t hits, n, ch[FEWSHOT_MAX_CLASSES], cn[FEWSHOT_MAX_CLASSES], fa, nn, det, nf;
    uint32_t n_sel, n_protos;  /* the few-shot model's size (last trial) */
    uint32_t conf[FEWSHOT_MAX_CLASSES][FEWSHOT_MAX_CLASSES];   /* truth x prediction */
    /* tested fault windows by class and severity: all, right class, called any fault */
    uint32_t sev_n[FEWSHOT_MAX_CLASSES][NSEV], sev_hit[FEWSHOT_MAX_CLASSES][NSEV], sev_det[FEWSHOT_MAX_CLASSES][NSEV];
    double acc_min, acc_max;
};

/* Which recording each class is labeled from in trial t: for bearing, the
 * smallest severity at the first speed (zone 0); for cranfield, the t-th
 * recording of the fault case (normal from the same one as air line blockage). */
static uint32_t label_group(const struct corpus *c, int bearing, uint32_t cls, uint32_t t)
{
    uint32_t seen = 0, want = bearing ? 0 : t;
    int32_t gc = (!bearing && cls == 0) ? 1 : (int32_t)cls;
    for (;;)
        for (uint32_t g = 0; g < c->n_groups; g++)
            if (c->group_class[g] == gc && seen++ == want)
                return g;
}

/* --by-machine: truth x prediction per machine of the rows that print a
 * confusion matrix (the first BY_DEV machines, the first BY_DEV_K classes) */
#define BY_DEV 16
#define BY_DEV_K 8
static int g_by_machine;
static uint32_t g_bydev[M_COUNT][BY_DEV][BY_DEV_K][BY_DEV_K];

static struct fewshot_params g_params;
static float *g_xref[NVIEW];   /* each view centred and scaled on the devices' references */

/* Device budget for a few-shot model's parameters: the server's (7 KB of
 * the device's 8 KB of flash; the rest is the score code). */
static size_t g_budget = FEWSHOT_PARAM_BYTES;
static int g_server_ref;        /* --server-reference: labeled normal windows join their machine's reference */
static int g_server_map;        /* --server-map: the trimmed map refitted per trial as the server fits it */

/* --server-map: the trimmed map (V_REL_TRIM, V_REL_TRIM_S) as the server's
 * training fits it from a trial's labels (server/models/models_train.c):
 * first on the windows assumed normal, the commissioning ones (scheduled
 * baselines labeled normal) and those a human labeled normal; then with
 * every window not labeled a fault (the version's unlabeled rows and the
 * devices' unlabeled baselines: here every other window, each machine's
 * sent as a scheduled baseline before the freeze) that the first map
 * finds normal.  The views' vectors are rewritten in place, with their
 * device-referenced copies for the baselines. */
static void server_map_refit(struct corpus *c, const int32_t *lab)
{
    uint8_t *fit = xrealloc(NULL, c->n), *cand = xrealloc(NULL, c->n), *fault = xrealloc(NULL, c->n);
    struct relations_fit rf;
    uint32_t n_trim = 0, nf = c->fs[V_REL_TRIM].nf;
    for (uint32_t i = 0; i < c->n; i++) {
        fit[i] = (uint8_t)(c->reference[i] || lab[i] == 0);
        cand[i] = (uint8_t)(lab[i] <= 0);
        fault[i] = (uint8_t)(lab[i] > 0);
    }
    if (trimmed_fit(c, "server map", c->win_mean, fit, cand, g_label_guard ? fault : NULL, &rf, &n_trim,
                    g_trim_mask) != 0) {
        fprintf(stderr, "fewshot: relation fit failed\n");
        exit(1);
    }
    size_t ns = relations_scratch_floats(&rf.map);
    float *scratch = xrealloc(NULL, (ns ? ns : 1) * sizeof *scratch);
    for (uint32_t i = 0; i < c->n; i++)
        if (relations_features(&rf.map, c->win_x + (size_t)i * c->n_ch * c->win, c->win, c->win, scratch, ns,
                               c->fs[V_REL_TRIM].x + (size_t)i * nf) != 0) {
            fprintf(stderr, "fewshot: relation features failed\n");
            exit(1);
        }
    free(scratch);
    g_rf_trim = rf;
    g_rf_trim.map.mean = g_rf_trim.mean;
    g_rf_trim.map.scale = g_rf_trim.scale;
    g_rf_trim.map.basis = g_rf_trim.basis;
    g_rel_bytes[V_REL_TRIM] = g_rel_bytes[V_REL_TRIM_S] = ds_relations_bytes(&rf.map);
    const enum view vs[2] = { V_REL_TRIM, V_REL_TRIM_S };
    for (int k = 0; k < 2; k++) {
        struct fewshot_data dr = { .x = c->fs[vs[k]].x, .n_rows = c->n, .n_feat = nf, .label = c->truth,
                                   .n_classes = c->n_classes, .device = c->device,
                                   .reference = c->reference, .reference_class = -1 };
        if (models_fewshot_referenced(&dr, g_xref[vs[k]]) != 0) {
            fprintf(stderr, "fewshot: referencing %s failed\n", c->fs[vs[k]].name);
            exit(1);
        }
    }
    printf("%s: server map: trimmed fit on %u windows (rank %u, %u bytes of map)\n", c->name, n_trim,
           rf.map.rank, g_rel_bytes[V_REL_TRIM]);
    free(fit);
    free(fault);
    free(cand);
}

static void run_trial(struct corpus *c, int bearing, uint32_t t, int inductive,
                      struct tally *tl, size_t model_bytes[])
{
    uint32_t K = c->n_classes, lg[FEWSHOT_MAX_CLASSES];
    int32_t *lab = malloc(c->n * sizeof *lab), *pred = malloc(c->n * sizeof *pred);
    int32_t *truth = malloc(c->n * sizeof *truth);
    char *labeled_group = calloc(c->n_groups, 1);
    for (uint32_t k = 0; k < K; k++) {
        lg[k] = label_group(c, bearing, k, t);
        labeled_group[lg[k]] = 1;
    }
    /* tested: the windows of recordings nobody labeled, after their machine's commissioning */
    for (uint32_t i = 0; i < c->n; i++) {
        lab[i] = FEWSHOT_UNLABELED;
        truth[i] = labeled_group[c->group[i]] || c->reference[i] ? -1 : c->truth[i];
    }
    /* 5 windows of each class from its labeling recording (not its commissioning), spread by a random start */
    for (uint32_t k = 0; k < K; k++) {
        uint32_t idx[4096], m = 0;
        for (uint32_t i = 0; i < c->n && m < 4096; i++)
            if (c->group[i] == lg[k] && c->truth[i] == (int32_t)k && !c->reference[i])
                idx[m++] = i;
        for (uint32_t s = 0; s < SHOTS && s < m; s++) {
            uint32_t j = s + (uint32_t)(urand() * (m - s));
            uint32_t tmp = idx[s];
            idx[s] = idx[j];
            idx[j] = tmp;
            lab[idx[s]] = (int32_t)k;
        }
    }
    /* --server-reference: the reference as the server's training takes
     * it (server/models/models_train.c): a machine's windows labeled normal
     * by a human join its commissioning ones */
    uint8_t *sref = malloc(c->n);
    for (uint32_t i = 0; i < c->n; i++)
        sref[i] = (uint8_t)(c->reference[i] || (g_server_ref && lab[i] == 0));
    if (g_server_map && c->fs[V_REL_TRIM].nf)
        server_map_refit(c, lab);
    for (int meth = 0; meth < M_COUNT; meth++) {
        const struct method *me = &methods[meth];
        const struct fset *f = &c->fs[me->v];
        if (f->nf == 0)
            continue;                  /* a view this corpus has not got */
        const float *xv = me->ref && me->k >= 0 ? g_xref[me->v] : f->x;
        struct fewshot_data d = { .x = xv, .n_rows = c->n, .n_feat = f->nf, .label = lab, .n_classes = K,
                                  .reference_class = -1 };
        int rc;
        if (me->k < 0) {
            struct fewshot_params p = g_params;
            struct fewshot_model m;
            float *xs = f->x;
            int32_t *ls = lab;
            uint32_t *ds = c->device;
            uint8_t *rs = sref;
            uint32_t nr = c->n;
            uint8_t *ss = me->v == V_REL_TRIM_S ? g_trim_mask : NULL;
            if (me->ref) {
                d.device = c->device;
                d.reference = sref;
                d.reference_class = 0;
            }
            d.scale_rows = ss;
            if (inductive) {           /* the labeled recordings' windows and the commissioning ones */
                xs = malloc((size_t)c->n * f->nf * sizeof *xs);
                ls = malloc(c->n * sizeof *ls);
                ds = malloc(c->n * sizeof *ds);
                rs = malloc(c->n * sizeof *rs);
                ss = ss ? malloc(c->n) : NULL;
                nr = 0;
                for (uint32_t i = 0; i < c->n; i++)
                    if (labeled_group[c->group[i]] || (me->ref && c->reference[i])) {
                        memcpy(xs + (size_t)nr * f->nf, f->x + (size_t)i * f->nf, f->nf * sizeof *xs);
                        ls[nr] = lab[i];
                        ds[nr] = c->device[i];
                        if (ss)
                            ss[nr] = g_trim_mask[i];
                        rs[nr++] = sref[i];
                    }
                d.x = xs;
                d.label = ls;
                d.n_rows = nr;
                if (me->ref) {
                    d.device = ds;
                    d.reference = rs;
                }
                d.scale_rows = ss;
            }
            uint32_t used;
            /* the relation map is flash too: the model gets what it leaves */
            rc = models_fewshot_fit_budget(&d, &p, g_budget - g_rel_bytes[me->v], &m, &used);
            if (inductive) {
                free(xs);
                free(ls);
                free(ds);
                free(rs);
                free(ss);
            }
            for (uint32_t i = 0; rc == 0 && i < c->n; i++)
                pred[i] = me->ref ? models_fewshot_predict_device(&m, c->device[i], f->x + (size_t)i * f->nf, NULL)
                                  : models_fewshot_predict(&m, f->x + (size_t)i * f->nf, NULL);
            if (rc == 0 && g_header_out && me->v == V_REL_TRIM_S && me->ref && !inductive) {
                /* the header of one device's blob (the first tested
                 * window's machine), its map the trimmed one: for the
                 * device's flash and RAM (make m4's flags) */
                static struct model mo;
                uint32_t dev = 0;
                char *hdr;
                size_t hl;
                for (uint32_t i = 0; i < c->n; i++)
                    if (truth[i] >= 0) {
                        dev = c->device[i];
                        break;
                    }
                memset(&mo, 0, sizeof mo);
                mo.channel_count = (uint8_t)c->n_ch;
                mo.features = (struct featureset_spec){ FEATURESET_RELATIONS, FEATURESET_RELATIONS_VERSION,
                                                        c->win, c->win, 1.0f, FEATURESET_NO_KIN, NULL };
                mo.rel_rank = g_rf_trim.map.rank;
                memcpy(mo.rel, g_rf_trim.mean, c->n_ch * sizeof(float));
                memcpy(mo.rel + c->n_ch, g_rf_trim.scale, c->n_ch * sizeof(float));
                memcpy(mo.rel + 2 * c->n_ch, g_rf_trim.basis, (size_t)c->n_ch * mo.rel_rank * sizeof(float));
                FILE *hf;
                if (models_fewshot_export_device(&m, dev, 0, &mo) != 0 ||
                    models_emit_header(&mo, "pm", &hdr, &hl) != 0 || !(hf = fopen(g_header_out, "w"))) {
                    fprintf(stderr, "fewshot: --header-out failed\n");
                    exit(1);
                }
                fwrite(hdr, 1, hl, hf);
                fclose(hf);
                free(hdr);
                printf("%s: header of %s (device %u) in %s: %zu bytes of parameters and map\n", c->name,
                       me->name, dev, g_header_out, models_fewshot_bytes(&m) + g_rel_bytes[me->v]);
            }
            if (rc == 0) {
                size_t by = models_fewshot_bytes(&m) + g_rel_bytes[me->v];
                model_bytes[meth] = by > model_bytes[meth] ? by : model_bytes[meth];
                tl[meth].n_sel = m.n_sel;
                tl[meth].n_protos = m.n_protos;
                models_fewshot_release(&m);
            }
        } else {
            struct fewshot_baseline b;
            uint32_t k = (uint32_t)me->k;
            rc = models_baseline_fit(&d, k, &b);
            for (uint32_t i = 0; rc == 0 && i < c->n; i++)
                pred[i] = models_baseline_predict(&b, xv + (size_t)i * f->nf);
            if (rc == 0)
                models_baseline_release(&b);
        }
        if (rc != 0) {
            fprintf(stderr, "fewshot: %s: fit failed (%d)\n", me->name, rc);
            exit(1);
        }
        struct eval_report r;
        models_eval_tally(truth, pred, c->n, K, 0, &r);
        struct tally *a = &tl[meth];
        for (uint32_t i = 0; i < c->n; i++)
            if (truth[i] >= 0 && pred[i] >= 0) {
                a->conf[truth[i]][pred[i]]++;
                if (c->device[i] < BY_DEV && truth[i] < BY_DEV_K && pred[i] < BY_DEV_K)
                    g_bydev[meth][c->device[i]][truth[i]][pred[i]]++;
                if (truth[i] != 0) {
                    a->sev_n[truth[i]][c->sev[i]]++;
                    a->sev_hit[truth[i]][c->sev[i]] += pred[i] == truth[i];
                    a->sev_det[truth[i]][c->sev[i]] += pred[i] != 0;
                }
            }
        a->hits += r.accuracy.hits;
        a->n += r.accuracy.n;
        double acc = r.accuracy.n ? (double)r.accuracy.hits / r.accuracy.n : 0;
        a->acc_min = t == 0 || acc < a->acc_min ? acc : a->acc_min;
        a->acc_max = t == 0 || acc > a->acc_max ? acc : a->acc_max;
        for (uint32_t k = 0; k < K; k++) {
            a->ch[k] += r.recall[k].hits;
            a->cn[k] += r.recall[k].n;
        }
        a->fa += r.false_alarm.hits;
        a->nn += r.false_alarm.n;
        a->det += r.detection.hits;
        a->nf += r.detection.n;
    }
    free(lab);
    free(pred);
    free(truth);
    free(labeled_group);
    free(sref);
}

/* --by-machine: each machine's accuracy and recall by class, and what a
 * class is most often called instead (where it is ever wrong). */
static void report_by_machine(const struct corpus *c, uint32_t (*conf)[BY_DEV_K][BY_DEV_K])
{
    uint32_t K = c->n_classes < BY_DEV_K ? c->n_classes : BY_DEV_K;
    printf("    by machine (recall; the call most often made instead):\n");
    for (uint32_t d = 0; d < BY_DEV; d++) {
        uint32_t n = 0, h = 0;
        for (uint32_t k = 0; k < K; k++)
            for (uint32_t q = 0; q < K; q++) {
                n += conf[d][k][q];
                h += k == q ? conf[d][k][q] : 0;
            }
        if (n == 0)
            continue;
        char who[32];
        if (c->device_rpm)
            snprintf(who, sizeof who, "%.0f rpm", c->device_rpm[d]);
        else
            snprintf(who, sizeof who, "machine %u", d);
        printf("    %-20s acc %5.1f%% (n=%u) |", who, 100.0 * h / n, n);
        for (uint32_t k = 0; k < K; k++) {
            uint32_t nk = 0, wrong = k;
            for (uint32_t q = 0; q < K; q++) {
                nk += conf[d][k][q];
                if (q != k && conf[d][k][q] > (wrong == k ? 0 : conf[d][k][wrong]))
                    wrong = q;
            }
            if (nk == 0)
                continue;
            printf(" %s %.0f%%", c->class_names[k], 100.0 * conf[d][k][k] / nk);
            if (wrong != k)
                printf(" (%s %.0f%%)", c->class_names[wrong], 100.0 * conf[d][k][wrong] / nk);
        }
        printf("\n");
    }
}

static void report(const struct corpus *c, const struct tally *tl, uint32_t trials,
                   const size_t bytes[])
{
    double lo, hi, best = 0;
    const char *best_name = "";
    printf("\n== %s: %u windows, %u recordings, %u classes, %u trial(s), %d shots/class ==\n",
           c->name, c->n, c->n_groups, c->n_classes, trials, SHOTS);
    printf("features: project %u, simple spectral %u, stats v1 %u, shipped set (%s) %u\n",
           c->fs[V_PROJECT].nf, c->fs[V_SIMPLE].nf, c->fs[V_STATS].nf, c->fs[V_SHIPPED].name,
           c->fs[V_SHIPPED].nf);
    for (int m = 0; m < M_COUNT; m++) {
        const struct tally *a = &tl[m];
        if (c->fs[methods[m].v].nf == 0)
            continue;
        srv_wilson95(a->hits, a->n, &lo, &hi);
        double acc = a->n ? (double)a->hits / a->n : 0, low = 1;
        uint32_t lowk = 0;
        if (methods[m].k >= 0 && acc > best) {
            best = acc;
            best_name = methods[m].name;
        }
        printf("%-42s acc %5.1f%% [%4.1f, %4.1f] (trials %4.1f..%4.1f) n=%u | fault det %5.1f%% "
               "false alarm %4.1f%%\n  recall:", methods[m].name, 100 * acc, 100 * lo, 100 * hi,
               100 * a->acc_min, 100 * a->acc_max, a->n, a->nf ? 100.0 * a->det / a->nf : 0,
               a->nn ? 100.0 * a->fa / a->nn : 0);
        for (uint32_t k = 0; k < c->n_classes; k++) {
            double rk = a->cn[k] ? (double)a->ch[k] / a->cn[k] : 0;
            double rlo, rhi;
            srv_wilson95(a->ch[k], a->cn[k], &rlo, &rhi);
            printf(" %s %.0f%% [%.0f, %.0f] (n=%u)", c->class_names[k], 100 * rk, 100 * rlo, 100 * rhi, a->cn[k]);
            if (a->cn[k] && rk < low) {
                low = rk;
                lowk = k;
            }
        }
        printf(" | lowest %s %.0f%%\n", c->class_names[lowk], 100 * low);
        if (methods[m].k < 0 && methods[m].ref && (methods[m].v == V_REL_COMM || methods[m].v == V_SHIPPED || methods[m].v == V_RELC_TREND || methods[m].v == V_REL_TRIM || methods[m].v == V_RELD_COMM || methods[m].v == V_RELD_TRIM || methods[m].v == V_REL_TRIM_S)) {
            printf("  confusion (rows truth, columns predicted, in class order):\n");
            for (uint32_t k = 0; k < c->n_classes; k++) {
                printf("    %-20s", c->class_names[k]);
                for (uint32_t q = 0; q < c->n_classes; q++)
                    printf(" %5u", a->conf[k][q]);
                printf("\n");
            }
            /* by severity: where the misses are (class right / called any fault) */
            for (uint32_t k = 0; k <= c->n_classes; k++) {
                uint32_t n[NSEV] = { 0 }, h[NSEV] = { 0 }, d[NSEV] = { 0 };
                for (uint32_t q = 1; q < c->n_classes; q++)
                    for (int s = 0; s < NSEV; s++)
                        if (q == k || k == c->n_classes) {
                            n[s] += a->sev_n[q][s];
                            h[s] += a->sev_hit[q][s];
                            d[s] += a->sev_det[q][s];
                        }
                if (k == 0 || (k < c->n_classes && !n[SEV_MILD] && !n[SEV_MEDIUM] && !n[SEV_SEVERE]))
                    continue;
                printf("    %-20s", k == c->n_classes ? "faults by severity" : c->class_names[k]);
                for (int s = 0; s < NSEV; s++)
                    if (n[s])
                        printf(" %s %.0f%% / %.0f%% (n=%u)", s == SEV_NONE ? "not graded" : sev_names[s],
                               100.0 * h[s] / n[s], 100.0 * d[s] / n[s], n[s]);
                printf("\n");
            }
            if (g_by_machine)
                report_by_machine(c, g_bydev[m]);
        }
    }
    printf("best baseline: %s %.1f%%\n", best_name, 100 * best);
    for (int m = 0; m < M_COUNT; m++)
        if (methods[m].k < 0 && c->fs[methods[m].v].nf) {
            double acc = tl[m].n ? (double)tl[m].hits / tl[m].n : 0;
            printf("%s - best baseline: %+.1f points (target +15); model %zu bytes of parameters "
                   "(%u of %u features, %u prototypes; budget %zu)\n", methods[m].name,
                   100 * (acc - best), bytes[m], tl[m].n_sel, c->fs[methods[m].v].nf,
                   tl[m].n_protos, g_budget);
        }
}

/* Normal vs fault with no labels at all: a window alarms when its squared
 * prediction error in the commissioning-fitted relation map (the last
 * feature of V_REL_COMM) exceeds the largest of the commissioning windows'
 * (which were in the fit, so the limit is low: the false alarms are, if
 * anything, overstated).  Every non-commissioning window is scored. */
static void spe_detector(const struct corpus *c)
{
    const struct fset *f = &c->fs[V_REL_COMM];
    if (f->nf == 0)
        return;
    float lim = -INFINITY;
    for (uint32_t i = 0; i < c->n; i++)
        if (c->reference[i] && f->x[(size_t)i * f->nf + f->nf - 1] > lim)
            lim = f->x[(size_t)i * f->nf + f->nf - 1];
    uint32_t fa = 0, nn = 0, det = 0, nf = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->reference[i])
            continue;
        int alarm = f->x[(size_t)i * f->nf + f->nf - 1] > lim;
        if (c->truth[i] == 0) {
            nn++;
            fa += alarm;
        } else {
            nf++;
            det += alarm;
        }
    }
    printf("no labels, SPE of the commissioning-fitted relations above its commissioning maximum: "
           "fault det %.1f%% (%u/%u) false alarm %.1f%% (%u/%u)\n", 100.0 * det / nf, det, nf,
           100.0 * fa / nn, fa, nn);
}

int main(int argc, char **argv)
{
    const char *dir = getenv("PRECURSOR_DATA") ? getenv("PRECURSOR_DATA") : "../shared/data";
    const char *which = "both";
    uint32_t trials = 3;
    int inductive = 0;
    static const struct option opts[] = { { "data", required_argument, NULL, 'd' },
                                          { "corpus", required_argument, NULL, 'c' },
                                          { "trials", required_argument, NULL, 't' },
                                          { "inductive", no_argument, NULL, 'i' },
                                          { "protos", required_argument, NULL, 'p' },
                                          { "rounds", required_argument, NULL, 'r' },
                                          { "shrink", required_argument, NULL, 's' },
                                          { "ref-weight", required_argument, NULL, 'w' },
                                          { "max-features", required_argument, NULL, 'f' },
                                          { "budget", required_argument, NULL, 'b' },
                                          { "rel-keep", required_argument, NULL, 'k' },
                                          { "server-reference", no_argument, NULL, 'S' },
                                          { "server-map", no_argument, NULL, 'M' },
                                          { "propagate", required_argument, NULL, 'P' },
                                          { "header-out", required_argument, NULL, 'H' },
                                          { "trim-limit", required_argument, NULL, 'L' },
                                          { "trim-conf", required_argument, NULL, 'C' },
                                          { "label-guard", required_argument, NULL, 'G' },
                                          { "trim-t2", required_argument, NULL, 'T' },
                                          { "bearing-window", required_argument, NULL, 'W' },
                                          { "seed", required_argument, NULL, 'R' },
                                          { "no-geometry", no_argument, NULL, 'N' },
                                          { "speeds", required_argument, NULL, 'V' },
                                          { "shipped", required_argument, NULL, 'E' },
                                          { "by-machine", no_argument, NULL, 'Y' },
                                          { NULL, 0, NULL, 0 } };
    models_fewshot_defaults(&g_params);
    for (int o; (o = getopt_long(argc, argv, "d:c:t:ip:r:s:w:f:b:k:SMP:H:L:C:G:T:W:R:NV:E:Y", opts, NULL)) != -1;) {
        if (o == 'p')
            g_params.protos = (uint32_t)atoi(optarg);
        else if (o == 'r')
            g_params.rounds = (uint32_t)atoi(optarg);
        else if (o == 's')
            g_params.shrink = (float)atof(optarg);
        else if (o == 'w')
            g_params.reference_weight = (float)atof(optarg);
        else if (o == 'f')
            g_params.max_features = (uint32_t)atoi(optarg);
        else if (o == 'b')
            g_budget = (size_t)atol(optarg);
        else if (o == 'k')
            g_rel_keep = atof(optarg);
        else if (o == 'S')
            g_server_ref = 1;
        else if (o == 'M')
            g_server_map = 1;
        else if (o == 'G') {
            if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0) {
                fprintf(stderr, "fewshot: --label-guard on|off\n");
                return 2;
            }
            g_label_guard = strcmp(optarg, "on") == 0;
        } else if (o == 'T') {
            if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0) {
                fprintf(stderr, "fewshot: --trim-t2 on|off\n");
                return 2;
            }
            g_trim_t2 = strcmp(optarg, "on") == 0;
        }
        else if (o == 'N')
            g_no_geometry = 1;
        else if (o == 'V') {
            if (parse_speeds(optarg) != 0) {
                fprintf(stderr, "fewshot: --speeds RPM,RPM,... (2 to %d speeds, each 300..3600 rpm)\n",
                        BR_MAX_SPEEDS);
                return 2;
            }
        } else if (o == 'E') {
            if (strcmp(optarg, "envelope") != 0 && strcmp(optarg, "spectral") != 0) {
                fprintf(stderr, "fewshot: --shipped envelope|spectral\n");
                return 2;
            }
            g_shipped_spectral = strcmp(optarg, "spectral") == 0;
        }
        else if (o == 'Y')
            g_by_machine = 1;
        else if (o == 'R')
            rng_seed(strtoull(optarg, NULL, 10));
        else if (o == 'W') {
            g_br_n = (uint32_t)atoi(optarg);
            if (g_br_n < 64 || g_br_n > BR_N) {
                fprintf(stderr, "fewshot: --bearing-window 64..%d\n", BR_N);
                return 2;
            }
        }
        else if (o == 'P')
            g_params.propagate = (uint32_t)atoi(optarg);
        else if (o == 'H')
            g_header_out = optarg;
        else if (o == 'L') {
            if (strcmp(optarg, "box") != 0 && strcmp(optarg, "max") != 0) {
                fprintf(stderr, "fewshot: --trim-limit box|max\n");
                return 2;
            }
            g_trim_limit = strcmp(optarg, "max") == 0 ? RELATIONS_LIMIT_MAX : RELATIONS_LIMIT_BOX;
        } else if (o == 'C') {
            g_trim_conf = atof(optarg);
            if (!(g_trim_conf > 0 && g_trim_conf < 1)) {
                fprintf(stderr, "fewshot: --trim-conf in (0, 1)\n");
                return 2;
            }
        }
        else if (o == 'd')
            dir = optarg;
        else if (o == 'c')
            which = optarg;
        else if (o == 't')
            trials = (uint32_t)atoi(optarg);
        else if (o == 'i')
            inductive = 1;
        else
            return 2;
    }
    if (g_shipped_spectral && g_no_geometry) {
        fprintf(stderr, "fewshot: --no-geometry drops the envelope set's bearing; --shipped spectral reads "
                        "no kinematics at all\n");
        return 2;
    }
    if (trials < 1 || trials > 100) {
        fprintf(stderr, "fewshot: --trials 1..100\n");
        return 2;
    }
    for (int b = 0; b < 2; b++) {
        if (strcmp(which, "both") != 0 && strcmp(which, b ? "bearing" : "cranfield") != 0)
            continue;
        struct corpus c = { 0 };
        struct tally tl[M_COUNT];
        size_t bytes[M_COUNT] = { 0 };
        memset(tl, 0, sizeof tl);
        memset(g_bydev, 0, sizeof g_bydev);
        if ((b ? bearing_make(&c) : cranfield_load(dir, &c)) != 0) {
            fprintf(stderr, "fewshot: %s corpus not available: skipped\n", b ? "bearing" : "cranfield");
            continue;
        }
        relations_views(&c);
        for (int v = 0; v < NVIEW; v++) {
            if (c.fs[v].nf == 0)
                continue;
            struct fewshot_data dr = { .x = c.fs[v].x, .n_rows = c.n, .n_feat = c.fs[v].nf,
                                       .label = c.truth, .n_classes = c.n_classes,
                                       .device = c.device, .reference = c.reference,
                                       .reference_class = -1 };
            g_xref[v] = malloc((size_t)c.n * c.fs[v].nf * sizeof(float));
            if (!g_xref[v] || models_fewshot_referenced(&dr, g_xref[v]) != 0) {
                fprintf(stderr, "fewshot: referencing %s failed\n", c.fs[v].name);
                return 1;
            }
        }
        uint32_t nt = b ? trials : (trials < 2 ? trials : 2);   /* cases 5, 6 have two recordings */
        for (uint32_t t = 0; t < nt; t++)
            run_trial(&c, b, t, inductive, tl, bytes);
        report(&c, tl, nt, bytes);
        spe_detector(&c);
    }
    return 0;
}
