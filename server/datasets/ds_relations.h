/* ds_relations.h - fitting the relation map (schema/relations.h) the
 * server ships with a model: no labels, only windows of normal operation.
 * Here, below both, because a relations model's training (server/models)
 * and the dataset export's relation features (ds_export.c) fit the same map.
 *
 * From each fit window's per-channel means (one row per window): every
 * channel's mean and standard deviation over the rows, the eigenvectors of
 * the channels' correlation, and the leading ones up to var_keep of the
 * total variance as the basis of what normal operation moves together (the
 * rest is the residual subspace where a broken relation shows).  Which rows
 * to fit on is the caller's: windows known or assumed normal (a machine's
 * commissioning period, scheduled baseline snapshots); faults in the fit
 * windows become part of "normal" and stop showing in the residual.
 *
 * Returns 0 or a negative MODEL_E* code (schema/model.h). */
#ifndef PRECURSOR_DS_RELATIONS_H
#define PRECURSOR_DS_RELATIONS_H

#include <stdint.h>

#include "schema/relations.h"

/* The variance the principal subspace keeps unless told otherwise (the
 * usual rule of process monitoring). */
#define RELATIONS_VAR_KEEP 0.90

/* A fitted map and the storage its pointers borrow from. */
struct relations_fit {
    struct relations_map map;
    float mean[RELATIONS_MAX_CH], scale[RELATIONS_MAX_CH];
    float basis[RELATIONS_MAX_CH * RELATIONS_MAX_CH];
    double explained;               /* the variance the kept components explain, 0..1 */
    double eig[RELATIONS_MAX_CH];   /* the kept components' eigenvalues (standardised units) */
};

/* Fit on the rows of means (n_rows x n_ch, row-major) where use[i] != 0
 * (use NULL: every row); at least 3 rows.  var_keep in (0, 1). */
int ds_relations_fit(const float *means, uint32_t n_rows, uint32_t n_ch, const uint8_t *use,
                         double var_keep, struct relations_fit *out);

/* The limit on a candidate's squared prediction error (SPE) under which
 * the trimmed refit takes it as normal.
 * RELATIONS_LIMIT_MAX: the largest in-sample SPE of the normal rows.
 * Biased low (each row shaped the map it is measured in) and as erratic as
 * the one row farthest out, but what the server fits with: the standard
 * limit below was measured against it and did not earn its place
 * (docs/BENCHMARKS.md, "Five-shot failure modes", third round of
 * 2026-12-07).
 * RELATIONS_LIMIT_BOX: the control limit of process monitoring at
 * RELATIONS_LIMIT_CONF, Box's approximation SPE ~ g chi2(h) with g and h
 * matched to the mean and variance of the normal rows' cross-validated
 * SPE (ds_relations_spe_limit; each normal row's SPE in the map fitted
 * without its fold, so the limit describes a window the map has not seen,
 * as every candidate is).  An option (the bench's --trim-limit box). */
enum relations_limit { RELATIONS_LIMIT_BOX, RELATIONS_LIMIT_MAX };
/* Or'ed into a limit: a candidate must also keep its Hotelling T-squared
 * in the first map (inside the principal subspace: the sum of its scores
 * squared over their eigenvalues) at most the largest of the normal rows'
 * (the bench's --trim-t2 on). */
#define RELATIONS_LIMIT_T2 0x100

/* The limit ds_relations_fit_trimmed uses (server training, every
 * evaluation fold, the export: one function, so one map). */
#define RELATIONS_LIMIT_DEFAULT RELATIONS_LIMIT_MAX
/* Box's confidence: fixed before it was first measured, not tuned. */
#define RELATIONS_LIMIT_CONF 0.99
/* Folds of the cross-validated SPE (fewer when fewer normal rows). */
#define RELATIONS_LIMIT_FOLDS 10u

/* The map of normal operation from the few windows assumed normal and the
 * many nobody vouched for.  Fitted first on the rows where normal[i] != 0
 * (as ds_relations_fit); then every row where candidate[i] != 0 (candidate
 * NULL: every row) whose squared prediction error in that map is at most
 * the largest of the normal rows' (RELATIONS_LIMIT_DEFAULT), and whose
 * nearest row among the normal ones and those labeled a fault (fault[i]
 * != 0; fault NULL: none) is a normal one (ds_relations_fit_guarded),
 * joins them, and the map is fitted again on the union, once.  A machine's
 * normal operation spans more than its commissioning period (set-points
 * move over a run); faults still break the relations the first map holds
 * and stay out, unless slight enough to look normal to it, and then the
 * operator's fault labels keep out those that look like them.  *fit_rows
 * and fit_mask[n_rows] (either may be NULL): how many rows the second fit
 * took, and which.  Rows with a non-finite mean are never used. */
int ds_relations_fit_trimmed(const float *means, uint32_t n_rows, uint32_t n_ch,
                             const uint8_t *normal, const uint8_t *candidate, const uint8_t *fault,
                             double var_keep, struct relations_fit *out, uint32_t *fit_rows,
                             uint8_t *fit_mask);

/* Without the labels' guard, with the limit named (the bench compares
 * them) and, for RELATIONS_LIMIT_BOX, its confidence conf in (0, 1)
 * (RELATIONS_LIMIT_CONF; other values are for sensitivity checks); *limit
 * (may be NULL): the SPE limit the candidates were held to. */
int ds_relations_fit_trimmed_by(const float *means, uint32_t n_rows, uint32_t n_ch,
                                const uint8_t *normal, const uint8_t *candidate, double var_keep,
                                enum relations_limit how, double conf, struct relations_fit *out,
                                uint32_t *fit_rows, uint8_t *fit_mask, double *limit);

/* Both: the limit named and the labels' guard.  fault (may be NULL) marks the rows
 * labeled a fault (any fault class; never candidates).  A candidate under
 * the limit joins only if its nearest row, among the rows assumed normal
 * and those labeled a fault, is one assumed normal (Euclidean, on the
 * means standardised by the first map's mean and scale): a window the
 * operator's labels place with a fault is not taken as normal operation.
 * With fault NULL or marking no finite row, ds_relations_fit_trimmed_by.
 * Measured against the unguarded refit before it became the default
 * (docs/BENCHMARKS.md, "Five-shot failure modes", fourth round of
 * 2026-12-07). */
int ds_relations_fit_guarded(const float *means, uint32_t n_rows, uint32_t n_ch,
                             const uint8_t *normal, const uint8_t *candidate, const uint8_t *fault,
                             double var_keep, unsigned how, double conf,
                             struct relations_fit *out, uint32_t *fit_rows, uint8_t *fit_mask,
                             double *limit);

/* Box's control limit on n >= 2 SPE values of normal operation at
 * confidence conf in (0, 1): g chi2_h(conf), g = v / 2m, h = 2m^2 / v, m
 * and v their mean and variance (n - 1).  When they do not vary (v = 0)
 * the limit is m.  NAN for bad input. */
double ds_relations_spe_limit(const double *spe, uint32_t n, double conf);

/* The conf quantile of the chi-square distribution with dof > 0 degrees
 * of freedom (not necessarily whole), conf in (0, 1); NAN otherwise. */
double ds_chi2_quantile(double dof, double conf);

/* One fit row: each channel's mean over the finite samples of a window
 * (n_ch x n_samples, channel-major) into out[n_ch]; NAN for a channel with
 * none.  Returns whether every channel had one (a row fit may use). */
int ds_relations_window_means(const float *x, uint32_t n_ch, uint32_t n_samples, float *out);

/* Bytes of parameters a device holds for the map: (2 + rank) * n_ch floats. */
uint32_t ds_relations_bytes(const struct relations_map *m);

#endif
