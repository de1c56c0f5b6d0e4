/* deploy_int.h - what the deploy module's files share: a device's reported
 * model counters (from its latest heartbeat), a model's predicted alert
 * rate (from its training metrics) and the numbers that compare them. */
#ifndef PRECURSOR_DEPLOY_INT_H
#define PRECURSOR_DEPLOY_INT_H

#include <jansson.h>
#include <stdint.h>

#include "server/models/models.h"

#define DEPLOY_MIN_SHADOW_S 60.0        /* shadow running time a promotion needs per device */
#define DEPLOY_RATE_FACTOR 2.0          /* observed may exceed predicted by this much */

/* One model's counters as a device reported them (heartbeat "models"). */
struct deploy_dev_stats {
    int found;
    int active;                 /* the device said "active" (else shadow) */
    double windows, above, run_s, hold_off_s;
    double alerts;              /* alarms annunciated, one per hold-off ("alerts"; else above) */
};

/* What training predicted for a device (metrics "prediction"). */
struct deploy_pred {
    int known;
    double per_day;             /* predicted alerts per device-day */
    double floor_per_day;       /* the smallest rate its held-out set could resolve */
    double frac;                /* predicted fraction of windows at or above the threshold */
    double frac_floor;          /* the smallest fraction its held-out set could resolve */
};

/* hb may be NULL.  Looks for the entry of model_id. */
void deploy__stats(const json_t *hb, int64_t model_id, struct deploy_dev_stats *out);
/* metrics: the model's metrics JSON text (may be NULL). */
void deploy__prediction(const char *metrics, struct deploy_pred *out);
/* Alerts per day a device's counters amount to (alarms annunciated over
 * its running time; a standing alarm again after each hold-off); 0 when it
 * has not run. */
double deploy__observed_per_day(const struct deploy_dev_stats *st);
/* {device_id, mode_reported, windows, above_threshold, run_s,
 *  alerts, observed_alerts_per_day, predicted_alerts_per_device_per_day,
 *  predicted_floor_per_day, observed_alarm_fraction, predicted_alarm_fraction,
 *  budget_alerts_per_day} for one device. */
json_t *deploy__rates_json(const char *device_id, const struct deploy_dev_stats *st,
                           const struct deploy_pred *p, const struct models_budget *b);
/* Why this device's shadow numbers refuse promotion (NULL: they allow it). */
const char *deploy__promotion_refusal(const struct deploy_dev_stats *st,
                                      const struct deploy_pred *p,
                                      const struct models_budget *b);

#endif
