// deploy-rates.test.mjs - how the deployments page judges a device's model
// numbers: the server's promotion rules, and the number formats.
import test from 'node:test';
import assert from 'node:assert/strict';
import { rateVerdict, fmtFrac, fmtRate, fmtDuration, fmtPredicted } from '../../labeling-ui/deploy-rates.js';

const dev = (o) => ({ observed_alerts_per_day: 10, budget_alerts_per_day: 144, observed_alarm_fraction: 0.01,
  predicted_alarm_fraction: 0.01, predicted_fraction_floor: 0.001, ...o });

test('rateVerdict: within prediction and budget', () => {
  assert.equal(rateVerdict(dev({})).state, 'ok');
  assert.equal(rateVerdict(dev({ observed_alarm_fraction: 0.02 })).state, 'ok');    // exactly 2x
});

test('rateVerdict: more than 2x the prediction, or over the budget', () => {
  assert.equal(rateVerdict(dev({ observed_alarm_fraction: 0.021 })).state, 'over_prediction');
  assert.equal(rateVerdict(dev({ observed_alerts_per_day: 145 })).state, 'over_budget');
  // A prediction of 0 is "below the held-out resolution": judged against that.
  assert.equal(rateVerdict(dev({ predicted_alarm_fraction: 0, observed_alarm_fraction: 0.0015 })).state, 'ok');
  assert.equal(rateVerdict(dev({ predicted_alarm_fraction: 0, observed_alarm_fraction: 0.0025 })).state,
    'over_prediction');
});

test('rateVerdict: nothing reported yet', () => {
  assert.equal(rateVerdict(dev({ observed_alerts_per_day: null })).state, 'no_data');
  assert.equal(rateVerdict({}).state, 'no_data');
});

test('formats', () => {
  assert.equal(fmtFrac(0.0123), '1.23 %');
  assert.equal(fmtFrac(0.00012), '0.012 %');
  assert.equal(fmtFrac(null), '—');
  assert.equal(fmtRate(1234.5), '1235');
  assert.equal(fmtRate(12.34), '12.3');
  assert.equal(fmtDuration(3725), '1 h 2 min');
  assert.equal(fmtDuration(42), '42 s');
  // a prediction of 0 reads as "below what the held-out windows resolve"
  assert.equal(fmtPredicted(0, 0.0074, fmtFrac), '< 0.74 %');
  assert.equal(fmtPredicted(0, 5000, fmtRate), '< 5000');
  assert.equal(fmtPredicted(0.01, 0.0074, fmtFrac), '1.00 %');
  assert.equal(fmtPredicted(0, 0, fmtFrac), '0.00 %');
  assert.equal(fmtPredicted(null, 0.1, fmtFrac), '—');
});
