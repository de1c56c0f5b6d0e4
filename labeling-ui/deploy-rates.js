// deploy-rates.js - how a device's model numbers read on the deployments
// page: the observed rate next to what training predicted and the alarm
// budget, judged by the rules the server applies to a promotion
// (server/deploy/deploy_budget.c).  Pure: no DOM.

export const RATE_FACTOR = 2;   // observed may exceed the prediction by this much

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

// { state: 'no_data' | 'ok' | 'over_prediction' | 'over_budget', text }
export function rateVerdict(d) {
  const obsDay = num(d.observed_alerts_per_day), budget = num(d.budget_alerts_per_day);
  const obsFrac = num(d.observed_alarm_fraction), pred = num(d.predicted_alarm_fraction);
  const floor = num(d.predicted_fraction_floor) || 0;
  if (obsDay === null || obsFrac === null) return { state: 'no_data', text: 'not reported yet' };
  if (budget !== null && obsDay > budget)
    return { state: 'over_budget', text: `${fmtRate(obsDay)}/day over the budget of ${fmtRate(budget)}/day` };
  if (pred !== null && obsFrac > RATE_FACTOR * Math.max(pred, floor))
    return { state: 'over_prediction',
      text: `alarm fraction ${fmtFrac(obsFrac)} is more than ${RATE_FACTOR}x the predicted ${fmtFrac(Math.max(pred, floor))}` };
  return { state: 'ok', text: 'within the prediction and the budget' };
}

// 0.0123 -> '1.23 %'; tiny fractions keep two significant digits.
export function fmtFrac(v) {
  if (num(v) === null) return '—';
  const p = 100 * v;
  return `${p >= 1 || p === 0 ? p.toFixed(2) : p.toPrecision(2)} %`;
}

// A prediction of 0 from n held-out windows says "below 1/n" and no more:
// shown as "< floor" so that 0.00 % does not read as a promise of silence.
export function fmtPredicted(v, floor, fmt) {
  if (num(v) === 0 && num(floor) !== null && floor > 0) return `< ${fmt(floor)}`;
  return fmt(v);
}

export function fmtRate(v) {
  if (num(v) === null) return '—';
  return v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toPrecision(2);
}

// 3725 -> '1 h 2 min'
export function fmtDuration(s) {
  if (num(s) === null) return '—';
  if (s < 60) return `${s.toFixed(0)} s`;
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : `${m} min`;
}
