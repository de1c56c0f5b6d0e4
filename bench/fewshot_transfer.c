/* fewshot_transfer.c - does transfer from related equipment help a
 * five-shot model, the way the server trains it (server/models/
 * models_transfer.c)?
 *
 * A simulated target machine (a 6205 bearing at two speeds, classes normal,
 * inner race, outer race, ball, three severities) gives 5 labeled windows
 * per class from one severity-1 recording; every other recording is tested.
 * A related machine of another type (a 6203 at another speed, another
 * structural resonance, twice the amplitude) has its faults labeled: as the
 * server does, they come in as weak labels (MODELS_TRANSFER_WEIGHT) in a
 * domain of their own, its normal windows unlabeled.  Each machine's
 * windows are read with the envelope set and its own kinematics.
 *
 * Printed per learner, over the same trials (which recording and windows
 * are labeled): mean accuracy and per-class recall, and the difference
 * transfer makes against the same learner without it in the same trial.
 * A control puts the related rows in the target's domain (no per-domain
 * standardisation).  Nothing here was tuned to its result. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/featureset.h"
#include "schema/spectral.h"
#include "server/models/models_fewshot.h"
#include "server/models/models_int.h"

#define FS 12000.0f
#define N 4096
#define PER_REC 20                      /* windows per recording */
#define K 4                             /* classes */
#define SHOTS 5
#define TRIALS 40
#define F FEATURESET_ENVELOPE_NFEAT

static const char *const names[K] = { "normal", "inner_race", "outer_race", "ball" };

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}
static double nrand(void)
{
    double u = urand() + 1e-12, v = urand();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* A machine: its bearing, speeds, structural resonance and gain. */
struct machine {
    struct spectral_bearing b;
    double fr[2];
    double res, gain;
    int speeds;
};

/* One window of class cls at shaft speed fr and severity sev (1..3):
 * impacts at the defect frequency ringing at the machine's resonance, the
 * inner race's and the ball's modulated as they pass the load zone. */
static void window(const struct machine *m, int cls, double fr, int sev, float *x)
{
    float f[SPECTRAL_NDEFECTS];
    double amp = (sev == 1 ? 0.6 : sev == 2 ? 1.0 : 1.5) * m->gain, damp = 1200.0 + 200.0 * sev;
    double phase = urand() * 6.283185307179586, res = m->res * (1 + 0.05 * (urand() - 0.5));

    spectral_defect_freqs(&m->b, (float)fr, f);
    for (int i = 0; i < N; i++) {
        double t = i / FS;
        x[i] = (float)(m->gain * (0.25 * sin(6.283185307179586 * fr * t + phase) +
                                  0.08 * sin(2 * 6.283185307179586 * fr * t) + 0.15 * nrand()));
    }
    if (cls == 0)
        return;
    double rate = cls == 1 ? f[SPECTRAL_BPFI] : cls == 2 ? f[SPECTRAL_BPFO] : 2 * f[SPECTRAL_BSF];
    for (double t0 = urand() / rate; t0 < N / FS; t0 += (1.0 + 0.015 * nrand()) / rate) {
        double a = amp;

        if (cls == 1)
            a *= 0.5 * (1 + cos(6.283185307179586 * fr * t0));
        else if (cls == 3)
            a *= 0.6 * (1 + cos(6.283185307179586 * f[SPECTRAL_FTF] * t0));
        for (int i = (int)(t0 * FS) + 1; i < N && i < (int)(t0 * FS) + 200; i++) {
            double dt = i / FS - t0;
            x[i] += (float)(a * exp(-dt * damp) * sin(6.283185307179586 * res * dt));
        }
    }
}

struct rows {
    float *x;
    int32_t *truth;
    uint32_t *rec;                      /* recording */
    int *sev;
    uint32_t n, n_rec;
};

static void make(const struct machine *m, struct rows *r, float *scratch, size_t ns)
{
    static float x[N];
    size_t cap = (size_t)K * 3 * 2 * PER_REC;

    r->x = malloc(cap * F * sizeof *r->x);
    r->truth = malloc(cap * sizeof *r->truth);
    r->rec = malloc(cap * sizeof *r->rec);
    r->sev = malloc(cap * sizeof *r->sev);
    for (int cls = 0; cls < K; cls++)
        for (int sp = 0; sp < m->speeds; sp++)
            for (int sev = 1; sev <= (cls ? 3 : 1); sev++) {
                struct featureset_spec spec = { FEATURESET_ENVELOPE, FEATURESET_ENVELOPE_VERSION, N, N, FS,
                                                { (float)m->fr[sp], m->b.n_elements, m->b.ball_d,
                                                  m->b.pitch_d, m->b.contact_deg }, NULL };
                uint32_t g = r->n_rec++;

                for (int w = 0; w < PER_REC; w++) {
                    window(m, cls, m->fr[sp], sev, x);
                    if (featureset_compute(&spec, x, N, 1, scratch, ns, r->x + (size_t)r->n * F) != 0) {
                        fprintf(stderr, "fewshot_transfer: featureset_compute failed\n");
                        exit(1);
                    }
                    r->truth[r->n] = cls;
                    r->rec[r->n] = g;
                    r->sev[r->n] = sev;
                    r->n++;
                }
            }
}

enum { L_KNN, L_WITHOUT, L_WITH, L_ONE_DOMAIN, NL };
static const char *const lname[NL] = { "3-NN (target labels)", "fewshot, no transfer",
                                       "fewshot + transfer", "fewshot + transfer, one domain" };

struct tally {
    double acc[NL][TRIALS];
    double recall[NL][K];
};

int main(void)
{
    const struct machine target = { { 9, 7.94f, 39.04f, 0.0f }, { 29.95, 29.53 }, 3400.0, 1.0, 2 };
    const struct machine related = { { 8, 6.746f, 28.50f, 0.0f }, { 24.0, 0 }, 2500.0, 2.0, 1 };
    struct featureset_spec sp = { FEATURESET_ENVELOPE, FEATURESET_ENVELOPE_VERSION, N, N, FS,
                                  { 30.0f, 9, 7.94f, 39.04f, 0.0f }, NULL };
    size_t ns = featureset_scratch_floats(&sp);
    float *scratch = malloc(ns * sizeof *scratch);
    struct rows t = { 0 }, r = { 0 };
    static struct tally tl;
    struct fewshot_params p;

    make(&target, &t, scratch, ns);
    make(&related, &r, scratch, ns);
    models_fewshot_defaults(&p);
    uint32_t n_all = t.n + r.n;
    float *X = malloc((size_t)n_all * F * sizeof *X), *w = malloc(n_all * sizeof *w);
    int32_t *lab = malloc(n_all * sizeof *lab), *tested = malloc(t.n * sizeof *tested);
    uint32_t *dom = malloc(n_all * sizeof *dom), *zero = calloc(n_all, sizeof *zero);
    uint32_t related_labeled = 0;

    memcpy(X, t.x, (size_t)t.n * F * sizeof *X);
    memcpy(X + (size_t)t.n * F, r.x, (size_t)r.n * F * sizeof *X);
    for (uint32_t i = 0; i < r.n; i++) {
        lab[t.n + i] = r.truth[i] == 0 ? FEWSHOT_UNLABELED : r.truth[i];
        w[t.n + i] = MODELS_TRANSFER_WEIGHT;
        dom[t.n + i] = 1;
        related_labeled += r.truth[i] != 0;
    }
    printf("fewshot_transfer: target 6205 at %.2f/%.2f Hz, %u windows in %u recordings; related 6203 "
           "at %.1f Hz, resonance %.0f Hz, gain %.1f: %u windows (%u labeled, weight %.2g, normal "
           "unlabeled); %d-shot per class from one severity-1 recording, tested on the other "
           "recordings; %d trials; envelope set (%d features)\n",
           target.fr[0], target.fr[1], t.n, t.n_rec, related.fr[0], related.res, related.gain, r.n,
           related_labeled, (double)MODELS_TRANSFER_WEIGHT, SHOTS, TRIALS, F);
    for (int trial = 0; trial < TRIALS; trial++) {
        uint32_t hits[NL] = { 0 }, n_test = 0, ch[NL][K] = { { 0 } }, cn[K] = { 0 };
        uint32_t pick[K];

        /* per class one severity-1 recording, then SHOTS of its windows */
        for (int c = 0; c < K; c++) {
            uint32_t cands[4], nc = 0;

            for (uint32_t i = 0; i < t.n; i += PER_REC)
                if (t.truth[i] == c && t.sev[i] == 1)
                    cands[nc++] = t.rec[i];
            pick[c] = cands[(uint32_t)(urand() * nc) % nc];
        }
        for (uint32_t i = 0; i < t.n; i++) {
            lab[i] = FEWSHOT_UNLABELED;
            w[i] = 1.0f;
            dom[i] = 0;
            tested[i] = t.rec[i] != pick[t.truth[i]];
        }
        for (int c = 0; c < K; c++)
            for (int s = 0; s < SHOTS;) {
                uint32_t i = (uint32_t)(urand() * t.n) % t.n;

                if (t.rec[i] == pick[c] && lab[i] == FEWSHOT_UNLABELED) {
                    lab[i] = c;
                    s++;
                }
            }
        struct fewshot_data d_t = { X, t.n, F, lab, w, NULL, K, NULL, NULL, -1 };
        struct fewshot_data d_all = { X, n_all, F, lab, w, dom, K, NULL, NULL, -1 };
        struct fewshot_data d_one = { X, n_all, F, lab, w, zero, K, NULL, NULL, -1 };
        struct fewshot_model m[NL];
        struct fewshot_baseline b;

        if (models_baseline_fit(&d_t, 3, &b) != 0 || models_fewshot_fit(&d_t, &p, &m[L_WITHOUT]) != 0 ||
            models_fewshot_fit(&d_all, &p, &m[L_WITH]) != 0 ||
            models_fewshot_fit(&d_one, &p, &m[L_ONE_DOMAIN]) != 0) {
            fprintf(stderr, "fewshot_transfer: a fit failed\n");
            return 1;
        }
        for (uint32_t i = 0; i < t.n; i++) {
            const float *x = X + (size_t)i * F;
            int pr[NL];

            if (!tested[i])
                continue;
            pr[L_KNN] = models_baseline_predict(&b, x);
            for (int l = L_WITHOUT; l < NL; l++)
                pr[l] = models_fewshot_predict(&m[l], x, NULL);
            n_test++;
            cn[t.truth[i]]++;
            for (int l = 0; l < NL; l++)
                if (pr[l] == t.truth[i]) {
                    hits[l]++;
                    ch[l][t.truth[i]]++;
                }
        }
        for (int l = 0; l < NL; l++) {
            tl.acc[l][trial] = (double)hits[l] / n_test;
            for (int c = 0; c < K; c++)
                tl.recall[l][c] += (double)ch[l][c] / cn[c] / TRIALS;
        }
        models_baseline_release(&b);
        for (int l = L_WITHOUT; l < NL; l++)
            models_fewshot_release(&m[l]);
    }
    for (int l = 0; l < NL; l++) {
        double mean = 0, dmean = 0, dmin = 1, dmax = -1;

        for (int k = 0; k < TRIALS; k++) {
            double dd = tl.acc[l][k] - tl.acc[L_WITHOUT][k];

            mean += tl.acc[l][k] / TRIALS;
            dmean += dd / TRIALS;
            dmin = dd < dmin ? dd : dmin;
            dmax = dd > dmax ? dd : dmax;
        }
        printf("%-32s accuracy %5.1f %%", lname[l], 100 * mean);
        if (l != L_WITHOUT)
            printf("  vs fewshot without transfer %+5.1f points (trials %+.1f .. %+.1f)", 100 * dmean, 100 * dmin,
                   100 * dmax);
        printf("  recall");
        for (int c = 0; c < K; c++)
            printf(" %s %.0f %%", names[c], 100 * tl.recall[l][c]);
        printf("\n");
    }
    free(X);
    free(w);
    free(lab);
    free(tested);
    free(dom);
    free(zero);
    free(scratch);
    return 0;
}
