/* featgolden.h - the feature-set golden vectors (tests/vectors/features/
 * stats_v1.txt and spectral_v1.txt) for the schema, agent and server suites: fixed windows and the exact
 * feature vector each must give, whoever computes it.  Static functions,
 * included by each suite.
 *
 * File format, one record per window:
 *   window <set id> <set version> <window> <hop> <sample rate> <channels>
 *   kin <shaft Hz> <elements> <ball d> <pitch d> <contact deg>   (envelope set only)
 *   map <rank> <mean[C]> <scale[C]> <basis[C][rank]>   (relations set only, C = channels)
 *   x <channel> <window samples as C99 hexadecimal floats>   (one line per channel)
 *   f <featureset_count features as hexadecimal floats>
 * Lines starting with '#' are comments. */
#ifndef PRECURSOR_FEATGOLDEN_H
#define PRECURSOR_FEATGOLDEN_H

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/featureset.h"

/* One file per set and version; featgolden_read loads them all. */
#define FEATGOLDEN_NFILES 4
static const char *const featgolden_files[FEATGOLDEN_NFILES] = {
    "tests/vectors/features/stats_v1.txt", "tests/vectors/features/spectral_v1.txt",
    "tests/vectors/features/envelope_v1.txt", "tests/vectors/features/relations_v1.txt"
};
/* The kinematics the envelope set's golden windows are computed with: a
 * shaft at 29.7 Hz in an SKF 6205 (9 balls, 7.94 / 39.04 mm, 0 degrees). */
#define FEATGOLDEN_KIN { 29.7f, 9u, 7.94f, 39.04f, 0.0f }
#define FEATGOLDEN_MAX 16
#define FEATGOLDEN_MAX_CH 2
#define FEATGOLDEN_MAX_W 64
/* The map the relations set's golden windows are read through (2
 * channels, rank 1), written by hand: centers, scales, a unit column. */
#define FEATGOLDEN_REL_RANK 1u
static const float featgolden_rel[2 * (2 + FEATGOLDEN_REL_RANK)] = { 0.5f, -0.25f, 2.0f, 0.75f,
                                                                     0.6f, 0.8f };
#define FEATGOLDEN_REL_FLOATS (FEATGOLDEN_MAX_CH * (FEATGOLDEN_MAX_CH + 1))

struct featgolden {
    struct featureset_spec spec;    /* relations: spec.rel is &map */
    unsigned channels;
    struct relations_map map;       /* relations set only: over rel */
    float rel[FEATGOLDEN_REL_FLOATS];
    float x[FEATGOLDEN_MAX_CH * FEATGOLDEN_MAX_W];     /* channel-major, stride = window */
    float f[FEATGOLDEN_MAX_CH * FEATURESET_MAX_PER_CHANNEL];
    unsigned nf;
};

/* The samples of window k; what the file holds (featgolden_write). */
static inline void featgolden_samples(int k, unsigned c, unsigned i, float *v)
{
    static uint32_t lcg = 12345u;

    if (c == 0 && i == 0)
        lcg = 12345u + (uint32_t)k;
    lcg = lcg * 1103515245u + 12345u;
    switch (k) {
    case 0:         /* an offset sine and noise with a spike */
        *v = c == 0 ? 0.5f + 2.0f * sinf(0.2f * (float)i)
                    : (float)((lcg >> 9) & 0xffff) / 32768.0f - 1.0f + (i == 40 ? 8.0f : 0.0f);
        break;
    case 1:         /* a flat channel: every floor at work */
        *v = 3.0f;
        break;
    default:        /* a ramp with a broken sample; integer counts */
        *v = c == 0 ? (i == 10 ? NAN : 0.01f * (float)i) : (float)((i * 37u) % 101u) - 50.0f;
        break;
    }
}

#ifdef FEATGOLDEN_WRITER
/* Writes the golden file of fs's set (path) from the fixed windows. */
static void featgolden_write(const char *path, struct featureset_spec fs)
{
    static const unsigned chans[3] = { 2, 1, 2 };
    static float scratch[4096];
    float x[FEATGOLDEN_MAX_CH * FEATGOLDEN_MAX_W], f[FEATGOLDEN_MAX_CH * FEATURESET_MAX_PER_CHANNEL];
    int rel = fs.id == FEATURESET_RELATIONS;
    /* relations reads two channels or more: every window has two */
    struct relations_map map = { 2, FEATGOLDEN_REL_RANK, featgolden_rel, featgolden_rel + 2,
                                 featgolden_rel + 4 };
    FILE *out = fopen(path, "w");

    if (rel)
        fs.rel = &map;

    ck_assert_ptr_nonnull(out);
    ck_assert_uint_le(featureset_scratch_floats(&fs), 4096);
    fprintf(out, "# Feature set \"%s\" version %u (schema/featureset.c): fixed windows and the\n"
                 "# exact feature vector each gives.  Checked by the schema, agent and server\n"
                 "# suites (tests/unit/featgolden.h); floats are C99 hexadecimal.\n",
            featureset_name(fs.id), fs.version);
    for (int k = 0; k < 3; k++) {
        unsigned nc = rel ? 2 : chans[k], nf = featureset_count(fs.id, fs.version, nc);

        for (unsigned c = 0; c < nc; c++)
            for (unsigned i = 0; i < fs.window; i++)
                featgolden_samples(k, c, i, &x[c * fs.window + i]);
        ck_assert_int_eq(featureset_compute(&fs, x, fs.window, nc, scratch, 4096, f), 0);
        fprintf(out, "window %u %u %u %u %a %u\n", fs.id, fs.version, fs.window, fs.hop,
                (double)fs.sample_rate, nc);
        if (fs.id == FEATURESET_ENVELOPE)
            fprintf(out, "kin %a %u %a %a %a\n", (double)fs.kin.shaft_hz, fs.kin.n_elements,
                    (double)fs.kin.ball_d, (double)fs.kin.pitch_d, (double)fs.kin.contact_deg);
        if (rel) {
            fprintf(out, "map %u", map.rank);
            for (unsigned i = 0; i < (2 + map.rank) * nc; i++)
                fprintf(out, " %a", (double)featgolden_rel[i]);
            fprintf(out, "\n");
        }
        for (unsigned c = 0; c < nc; c++) {
            fprintf(out, "x %u", c);
            for (unsigned i = 0; i < fs.window; i++)
                fprintf(out, " %a", (double)x[c * fs.window + i]);
            fprintf(out, "\n");
        }
        fprintf(out, "f");
        for (unsigned j = 0; j < nf; j++)
            fprintf(out, " %a", (double)f[j]);
        fprintf(out, "\n");
    }
    fclose(out);
}
#endif

/* Read every record of one file after the n records in g; returns the new count. */
static int featgolden_read_file(const char *path, struct featgolden *g, int n, int max)
{
    FILE *in = fopen(path, "r");
    static char line[8192];

    n--;
    ck_assert_msg(in != NULL, "cannot open %s (run from the repository root)", path);
    while (fgets(line, sizeof line, in)) {
        char *p = line, *e;

        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (strncmp(line, "window ", 7) == 0) {
            unsigned id, ver, w, hop, ch;
            float rate;

            ck_assert_int_lt(n + 1, max);
            n++;
            memset(&g[n], 0, sizeof g[n]);
            ck_assert_int_eq(sscanf(line + 7, "%u %u %u %u %a %u", &id, &ver, &w, &hop, &rate, &ch), 6);
            ck_assert(w <= FEATGOLDEN_MAX_W && ch <= FEATGOLDEN_MAX_CH);
            g[n].spec = (struct featureset_spec){ (uint16_t)id, (uint16_t)ver, w, hop, rate, FEATURESET_NO_KIN, NULL };
            g[n].channels = ch;
        } else if (strncmp(line, "kin ", 4) == 0 && n >= 0) {
            struct featureset_kin *k = &g[n].spec.kin;

            ck_assert_int_eq(sscanf(line + 4, "%a %u %a %a %a", &k->shaft_hz, &k->n_elements,
                                    &k->ball_d, &k->pitch_d, &k->contact_deg), 5);
        } else if (strncmp(line, "map ", 4) == 0 && n >= 0) {
            unsigned C = g[n].channels, rank = (unsigned)strtoul(line + 4, &p, 10);

            ck_assert(C >= 2 && rank < C && (2 + rank) * C <= FEATGOLDEN_REL_FLOATS);
            for (unsigned i = 0; i < (2 + rank) * C; i++, p = e) {
                g[n].rel[i] = strtof(p, &e);
                ck_assert_ptr_ne(e, p);
            }
            g[n].map = (struct relations_map){ C, rank, g[n].rel, g[n].rel + C, g[n].rel + 2 * C };
            g[n].spec.rel = &g[n].map;
        } else if (line[0] == 'x' && n >= 0) {
            unsigned c = (unsigned)strtoul(line + 2, &p, 10);

            ck_assert_uint_lt(c, g[n].channels);
            for (unsigned i = 0; i < g[n].spec.window; i++, p = e) {
                g[n].x[c * g[n].spec.window + i] = strtof(p, &e);
                ck_assert_ptr_ne(e, p);
            }
        } else if (line[0] == 'f' && n >= 0) {
            p = line + 1;
            for (g[n].nf = 0;; g[n].nf++, p = e) {
                float v = strtof(p, &e);

                if (e == p)
                    break;
                ck_assert_uint_lt(g[n].nf, FEATGOLDEN_MAX_CH * FEATURESET_MAX_PER_CHANNEL);
                g[n].f[g[n].nf] = v;
            }
        }
    }
    fclose(in);
    return n + 1;
}

/* Read every record of every set's file; returns how many. */
static int featgolden_read(struct featgolden *g, int max)
{
    int n = 0;

    for (int i = 0; i < FEATGOLDEN_NFILES; i++)
        n = featgolden_read_file(featgolden_files[i], g, n, max);
    return n;
}

/* Bit for bit: the same function of the same samples. */
static void featgolden_assert_equal(const float *got, const struct featgolden *g, const char *who)
{
    for (unsigned j = 0; j < g->nf; j++)
        ck_assert_msg(memcmp(&got[j], &g->f[j], sizeof(float)) == 0,
                      "%s: feature %u is %a, golden %a", who, j, (double)got[j], (double)g->f[j]);
}

#endif
