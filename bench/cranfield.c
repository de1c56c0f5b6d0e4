/* cranfield.c - the agent's detectors on the Cranfield multiphase flow rig,
 * against two PCA baselines measured in the same run.
 *
 *   bench-cranfield [DIR] [key=value ...]
 *
 * DIR (default $CRANFIELD_DIR, else ../shared/data/cranfield-mpf) holds the
 * corpus: FaultyCase*.csv (timestamp, 24 channels, label at 1 Hz) and
 * events.csv.  key=value are detect_opts keys for the agent.  The label
 * column is never shown to a detector.
 *
 * Methods, each a stream of triggers:
 *   agent     detect_step with the default configuration (+ key=value)
 *   agent_mv  the same with the rig's manipulated variables declared: the
 *             valve positions x20-x22 (VC501, VC302 air, VC101 water), by their names in the
 *             corpus's channel table (manipulated=LIST replaces the list)
 *   pca_t2    Hotelling T-squared on the principal components that hold 90 %
 *             of the variance, standardised and trained on the first 20 % of
 *             the run's normal rows; limit: chi-square 99 %
 *   pca_t2q   the same, alarming also on the residual Q (SPE) beyond its
 *             Jackson-Mudholkar 99 % limit
 * A baseline triggers when its statistic is beyond its limit and its last
 * trigger is at least the agent's own hold-off old (the profile's, or
 * hold_off_s=): the comparison is of detectors, not of alarm-flood rules.
 *
 * CRANFIELD_VERBOSE (any value) lists the triggers, =2 also every crossing of the
 * default row with its scores (fired or suppressed).
 *
 * Figures, over all files:
 *   recall    events with a trigger in [start, end)
 *   fph       triggers on normal rows (label 0) per hour of normal data; the
 *             first 20 % of each run's normal rows (the baselines' training
 *             data) are left out for every method
 *   nab       a NAB-style score: a window of 10 % of the file / events after
 *             each event start; the first trigger in it earns the scaled
 *             sigmoid of its position (1 at the start, 0 at the end), a
 *             missed window -1, a trigger on scored normal rows -0.11;
 *             normalised 0 (no triggers) .. 100 (all events at their start). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/core/detect.h"
#include "agent/config/detect_opts.h"
#include "bench/bench.h"

#define NCH 24
#define MAX_EV 4
#define TRAIN_FRAC 0.2
#define VAR_KEEP 0.90
#define Z99 2.3263479
#define FP_WEIGHT 0.11

struct run {
    char name[128];
    char chan[NCH][65];         /* channel names from the header */
    size_t rows;
    float *x;                   /* rows * NCH */
    unsigned char *label;
    long ev_start[MAX_EV], ev_end[MAX_EV];
    unsigned n_ev;
};

struct tally {
    const char *name;
    unsigned caught, events;
    long false_trig;
    double normal_s, nab_raw, nab_perfect, nab_null;
};

static int read_run(const char *dir, const char *file, struct run *r)
{
    char path[1024], line[8192];
    size_t cap = 4096;
    FILE *f;

    snprintf(path, sizeof(path), "%.900s/%.120s", dir, file);
    f = fopen(path, "r");
    if (!f)
        return -1;
    r->x = malloc(cap * NCH * sizeof(float));
    r->label = malloc(cap);
    r->rows = 0;
    if (!fgets(line, sizeof(line), f)) {
        fclose(f);
        return -1;
    }
    {
        char *p = strchr(line, ',');    /* after the timestamp */
        unsigned c;

        for (c = 0; c < NCH && p; c++) {
            size_t n = strcspn(++p, ",\r\n");

            snprintf(r->chan[c], sizeof(r->chan[c]), "%.*s", (int)(n < 64 ? n : 64), p);
            p = strchr(p, ',');
        }
    }
    while (fgets(line, sizeof(line), f)) {
        char *p = line, *end;
        unsigned c;

        if (r->rows == cap) {
            cap *= 2;
            r->x = realloc(r->x, cap * NCH * sizeof(float));
            r->label = realloc(r->label, cap);
        }
        strtod(p, &end);        /* timestamp: rows are 1 s apart */
        for (c = 0; c < NCH; c++) {
            p = end + 1;
            r->x[r->rows * NCH + c] = (float)strtod(p, &end);
        }
        r->label[r->rows] = (unsigned char)strtol(end + 1, NULL, 10);
        r->rows++;
    }
    fclose(f);
    return 0;
}

/* Cyclic Jacobi: eigenvalues of the symmetric n x n matrix a (destroyed)
 * into w, eigenvectors into the columns of v. */
static void jacobi(double *a, unsigned n, double *w, double *v)
{
    unsigned i, j, k, sweep;

    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++)
            v[i * n + j] = i == j;
    for (sweep = 0; sweep < 100; sweep++) {
        double off = 0.0;

        for (i = 0; i < n; i++)
            for (j = i + 1; j < n; j++)
                off += a[i * n + j] * a[i * n + j];
        if (off < 1e-22)
            break;
        for (i = 0; i < n; i++) {
            for (j = i + 1; j < n; j++) {
                double th, t, c, s;

                if (fabs(a[i * n + j]) < 1e-300)
                    continue;
                th = (a[j * n + j] - a[i * n + i]) / (2.0 * a[i * n + j]);
                t = (th >= 0 ? 1.0 : -1.0) / (fabs(th) + sqrt(th * th + 1.0));
                c = 1.0 / sqrt(t * t + 1.0);
                s = t * c;
                for (k = 0; k < n; k++) {
                    double aki = a[k * n + i], akj = a[k * n + j];

                    a[k * n + i] = c * aki - s * akj;
                    a[k * n + j] = s * aki + c * akj;
                }
                for (k = 0; k < n; k++) {
                    double aik = a[i * n + k], ajk = a[j * n + k];

                    a[i * n + k] = c * aik - s * ajk;
                    a[j * n + k] = s * aik + c * ajk;
                }
                for (k = 0; k < n; k++) {
                    double vki = v[k * n + i], vkj = v[k * n + j];

                    v[k * n + i] = c * vki - s * vkj;
                    v[k * n + j] = s * vki + c * vkj;
                }
            }
        }
    }
    for (i = 0; i < n; i++)
        w[i] = a[i * n + i];
}

struct pca {
    double mu[NCH], sd[NCH], w[NCH], v[NCH * NCH];
    unsigned k, order[NCH];
    double t2_lim, q_lim;
};

static void pca_train(const struct run *r, size_t *train_rows, struct pca *m)
{
    static double cov[NCH * NCH];
    size_t i, n = 0, normal = 0, want;
    unsigned a, b;
    double tot = 0.0, acc = 0.0, th1 = 0, th2 = 0, th3 = 0, h0;

    for (i = 0; i < r->rows; i++)
        normal += r->label[i] == 0;
    want = (size_t)(TRAIN_FRAC * (double)normal);
    memset(m, 0, sizeof(*m));
    memset(cov, 0, sizeof(cov));
    /* The first `want` normal rows: mean, sd, correlation. */
    for (i = 0; i < r->rows && n < want; i++) {
        if (r->label[i])
            continue;
        n++;
        for (a = 0; a < NCH; a++)
            m->mu[a] += r->x[i * NCH + a];
        *train_rows = i + 1;
    }
    for (a = 0; a < NCH; a++)
        m->mu[a] /= (double)n;
    for (i = 0, n = 0; i < *train_rows; i++) {
        if (r->label[i])
            continue;
        n++;
        for (a = 0; a < NCH; a++)
            for (b = 0; b < NCH; b++)
                cov[a * NCH + b] += (r->x[i * NCH + a] - m->mu[a]) * (r->x[i * NCH + b] - m->mu[b]);
    }
    for (a = 0; a < NCH; a++)
        m->sd[a] = sqrt(cov[a * NCH + a] / (double)(n - 1)) + 1e-9 + 1e-6 * fabs(m->mu[a]);
    for (a = 0; a < NCH; a++)
        for (b = 0; b < NCH; b++)
            cov[a * NCH + b] /= (double)(n - 1) * m->sd[a] * m->sd[b];
    jacobi(cov, NCH, m->w, m->v);
    for (a = 0; a < NCH; a++)
        m->order[a] = a;
    for (a = 0; a < NCH; a++)           /* by eigenvalue, largest first */
        for (b = a + 1; b < NCH; b++)
            if (m->w[m->order[b]] > m->w[m->order[a]]) {
                unsigned t = m->order[a];

                m->order[a] = m->order[b];
                m->order[b] = t;
            }
    for (a = 0; a < NCH; a++)
        tot += m->w[a] > 0 ? m->w[a] : 0;
    for (m->k = 0; m->k < NCH && acc < VAR_KEEP * tot; m->k++)
        acc += m->w[m->order[m->k]];
    /* chi-square 99 % by Wilson-Hilferty; Q by Jackson-Mudholkar. */
    {
        double k = m->k, c = 1.0 - 2.0 / (9.0 * k) + Z99 * sqrt(2.0 / (9.0 * k));

        m->t2_lim = k * c * c * c;
    }
    for (a = m->k; a < NCH; a++) {
        double l = m->w[m->order[a]] > 1e-12 ? m->w[m->order[a]] : 1e-12;

        th1 += l;
        th2 += l * l;
        th3 += l * l * l;
    }
    h0 = 1.0 - 2.0 * th1 * th3 / (3.0 * th2 * th2);
    m->q_lim = th1 * pow(Z99 * sqrt(2.0 * th2 * h0 * h0) / th1 + 1.0 +
                         th2 * h0 * (h0 - 1.0) / (th1 * th1), 1.0 / h0);
}

/* max(T2 / limit, Q / limit) (with_q) or T2 / limit of one frame. */
static double pca_stat(const struct pca *m, const float *x, int with_q)
{
    double z[NCH], t2 = 0.0, q = 0.0, q_all = 0.0;
    unsigned a, j;

    for (a = 0; a < NCH; a++) {
        z[a] = (x[a] - m->mu[a]) / m->sd[a];
        q_all += z[a] * z[a];
    }
    for (j = 0; j < m->k; j++) {
        unsigned e = m->order[j];
        double t = 0.0;

        for (a = 0; a < NCH; a++)
            t += m->v[a * NCH + e] * z[a];
        t2 += t * t / (m->w[e] > 1e-12 ? m->w[e] : 1e-12);
        q += t * t;
    }
    q = q_all - q;              /* residual: what the kept components miss */
    t2 /= m->t2_lim;
    q /= m->q_lim;
    return with_q && q > t2 ? q : t2;
}

static double sigmoid_weight(double pos)
{
    /* NAB's scaled sigmoid: 1 at the window's start... about -1 past it. */
    return 2.0 / (1.0 + exp(5.0 * pos)) - 1.0;
}

/* Score one method's triggers on run r into t. */
static void score(const struct run *r, const unsigned char *trig, size_t skip_normal_to,
                  struct tally *t)
{
    double win = 0.1 * (double)r->rows / (double)r->n_ev;
    double max_tp = sigmoid_weight(-1.0);
    unsigned e;
    size_t i;

    for (e = 0; e < r->n_ev; e++) {
        long a = r->ev_start[e], b = r->ev_start[e] + (long)win;
        int caught = 0, in_win = 0;

        for (i = (size_t)a; i < (size_t)r->ev_end[e] && i < r->rows; i++)
            caught |= trig[i];
        for (i = (size_t)a; i < (size_t)b && i < r->rows && !in_win; i++) {
            if (trig[i]) {
                /* position -1 at the window's start, 0 at its end (NAB) */
                double pos = -((double)b - (double)i) / win;

                t->nab_raw += sigmoid_weight(pos) / max_tp;
                in_win = 1;
            }
        }
        if (!in_win)
            t->nab_raw -= 1.0;
        t->caught += caught;
        t->events++;
        t->nab_perfect += 1.0;
        t->nab_null -= 1.0;
    }
    for (i = skip_normal_to; i < r->rows; i++) {
        if (r->label[i])
            continue;
        t->normal_s += 1.0;
        if (trig[i]) {
            t->false_trig++;
            t->nab_raw -= FP_WEIGHT;
        }
    }
}

static int load_events(const char *dir, struct run *runs, unsigned *n_runs)
{
    char path[1024], line[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/events.csv", dir);
    f = fopen(path, "r");
    if (!f)
        return -1;
    *n_runs = 0;
    if (!fgets(line, sizeof(line), f)) {
        fclose(f);
        return -1;
    }
    while (fgets(line, sizeof(line), f) && *n_runs < 32) {
        char file[128];
        long start, end;
        struct run *r;

        if (sscanf(line, "%127[^,],%*[^,],%*[^,],%*[^,],%ld,%ld", file, &start, &end) != 3)
            continue;
        r = *n_runs ? &runs[*n_runs - 1] : NULL;
        if (!r || strcmp(r->name, file)) {
            r = &runs[(*n_runs)++];
            memset(r, 0, sizeof(*r));
            snprintf(r->name, sizeof(r->name), "%s", file);
        }
        if (r->n_ev < MAX_EV) {
            r->ev_start[r->n_ev] = start;
            r->ev_end[r->n_ev++] = end;
        }
    }
    fclose(f);
    return 0;
}

static void print_tally(const struct tally *t)
{
    printf("cranfield %-8s recall=%u/%u false_per_hour=%.2f false=%ld normal_h=%.2f nab=%.1f\n",
           t->name, t->caught, t->events,
           t->false_trig / (t->normal_s / 3600.0), t->false_trig, t->normal_s / 3600.0,
           100.0 * (t->nab_raw - t->nab_null) / (t->nab_perfect - t->nab_null));
}

int main(int argc, char **argv)
{
    static struct run runs[32];
    struct detect_config cfg;
    struct tally tal[4] = { { "agent", 0, 0, 0, 0, 0, 0, 0 }, { "pca_t2", 0, 0, 0, 0, 0, 0, 0 },
                            { "pca_t2q", 0, 0, 0, 0, 0, 0, 0 },
                            { "agent_mv", 0, 0, 0, 0, 0, 0, 0 } };
    /* The rig's actuator positions, from its channel table (not from where
     * anything triggers): VC501, VC302 (air), VC101 (water). */
    const char *mv_list = "x20_VC501_valve_pos[%],x21_VC302_valve_pos[%],x22_VC101_valve_pos[%]";
    const char *dir = getenv("CRANFIELD_DIR");
    /* CRANFIELD_VERBOSE: set, lists the triggers of both agent rows; 2 also
     * every crossing of the default row, fired or suppressed (hold-off, cap,
     * repeat), with its trigger score and exported score: a rule that removes
     * one false trigger often lets a suppressed one through. */
    const char *verbose_env = getenv("CRANFIELD_VERBOSE");
    int verbose = !verbose_env ? 0 : atoi(verbose_env) >= 2 ? 2 : 1;
    unsigned n_runs, i;
    int a = 1;

    if (argc > 1 && !strchr(argv[1], '='))
        dir = argv[a++];
    if (!dir)
        dir = "../shared/data/cranfield-mpf";
    detect_config_defaults(&cfg);
    for (; a < argc; a++) {
        char key[64];
        const char *value;

        if (bench_key_value(argv[a], key, sizeof(key), &value) != 0) {
            fprintf(stderr, "bad option %s\n", argv[a]);
            return 2;
        }
        if (!strcmp(key, "manipulated")) {
            mv_list = value;
            continue;
        }
        if (detect_opts_set(&cfg, key, value)) {
            fprintf(stderr, "bad option %s\n", argv[a]);
            return 2;
        }
    }
    if (load_events(dir, runs, &n_runs) != 0) {
        printf("cranfield: SKIP: no corpus at %s (events.csv)\n", dir);
        return 0;
    }
    for (i = 0; i < n_runs; i++) {
        struct run *r = &runs[i];
        struct detect_config res = cfg, cfg_mv = cfg;
        size_t need = detect_arena_size(&cfg, NCH), train_rows = 0, f;
        void *arena = malloc(need), *arena_mv = malloc(need);
        struct detect *d, *d_mv;
        struct pca m;
        unsigned char *trig[4];
        int64_t last[3] = { -1, -1, -1 };
        double hold;
        unsigned k;

        if (read_run(dir, r->name, r) != 0) {
            fprintf(stderr, "cranfield: cannot read %s/%s\n", dir, r->name);
            return 1;
        }
        {
            const char *names[NCH];
            char err[256];

            for (k = 0; k < NCH; k++)
                names[k] = r->chan[k];
            if (detect_opts_manipulated(&cfg_mv, mv_list, names, NCH, err, sizeof(err)) != 0) {
                fprintf(stderr, "cranfield: %s\n", err);
                return 2;
            }
        }
        detect_config_resolve(&res, 1.0);
        hold = res.hold_off_s;
        d = detect_init(&cfg, NCH, 1.0, arena, need);
        d_mv = detect_init(&cfg_mv, NCH, 1.0, arena_mv, need);
        if (!d || !d_mv) {
            fprintf(stderr, "cranfield: detector config refused\n");
            return 1;
        }
        pca_train(r, &train_rows, &m);
        for (k = 0; k < 4; k++)
            trig[k] = calloc(r->rows, 1);
        for (f = 0; f < r->rows; f++) {
            struct detect_result res_f;
            const float *x = &r->x[f * NCH];

            detect_step(d, x, (int64_t)f * 1000000, &res_f);
            trig[0][f] = res_f.triggered;
            if (res_f.triggered && verbose)
                printf("trigger %s t=%zu label=%d %s ch=%u\n", r->name, f, r->label[f],
                       detect_name(res_f.detector), res_f.channel);
            if ((res_f.triggered || res_f.suppressed) && verbose >= 2)
                printf("crossing %s t=%zu label=%d %s ch=%u fired=%u trigger_score=%.3f "
                       "score=%.3f\n", r->name, f, r->label[f], detect_name(res_f.detector),
                       res_f.channel, res_f.triggered, res_f.trigger_score, res_f.score);
            detect_step(d_mv, x, (int64_t)f * 1000000, &res_f);
            trig[3][f] = res_f.triggered;
            if (res_f.triggered && verbose)
                printf("trigger_mv %s t=%zu label=%d %s ch=%u\n", r->name, f, r->label[f],
                       detect_name(res_f.detector), res_f.channel);
            for (k = 1; k < 3; k++) {
                double s = pca_stat(&m, x, k == 2);
                /* A standing alarm is announced again after each hold-off. */
                if (f >= train_rows && s > 1.0 &&
                    (last[k] < 0 || (double)((int64_t)f - last[k]) >= hold)) {
                    trig[k][f] = 1;
                    last[k] = (int64_t)f;
                }
            }
        }
        for (k = 0; k < 4; k++) {
            struct tally one = tal[k];

            memset(&one.caught, 0, sizeof(one) - sizeof(one.name));
            score(r, trig[k], train_rows, &tal[k]);
            score(r, trig[k], train_rows, &one);
            printf("file %-26s %-8s caught=%u/%u false=%ld k=%u\n", r->name, one.name,
                   one.caught, one.events, one.false_trig, m.k);
            free(trig[k]);
        }
        free(arena);
        free(arena_mv);
        free(r->x);
        free(r->label);
    }
    printf("cranfield: agent_mv declares manipulated=%s\n", mv_list);
    print_tally(&tal[0]);
    print_tally(&tal[3]);
    for (i = 1; i < 3; i++)
        print_tally(&tal[i]);
    return 0;
}
