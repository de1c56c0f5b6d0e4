// page-deployments.js - where a model runs and how it behaves there
// (#/deployments/<model id>): per deployment its mode and, per device, what
// the device reports (running, pending, refused, rolled back), its observed
// alarm fraction and alerts per day next to what training predicted and the
// device's alarm budget; promotion of a shadow deployment to active (the
// server refuses with the numbers while they miss); the fleet's alarm
// budget (admins change it) and the rollbacks it caused.
import { api } from './http.js';
import { el, crumbs, showPage, showError, place } from './dom.js';
import { fmtTime } from './format.js';
import { isAdmin, canModel } from './session.js';
import { rateVerdict, fmtFrac, fmtRate, fmtDuration, fmtPredicted } from './deploy-rates.js';

const HEAD = ['device', 'status', 'mode', 'ran', 'windows', 'alarm fraction (observed / predicted)',
  'alerts per day (observed / predicted / budget)', 'verdict'];

// rb: the rollback of this device's deployment, if any: its numbers are
// the ones that mattered (the device reports the model afresh afterwards).
function deviceRow(d, rb) {
  const v = rb ? { state: 'over_budget', text: `rolled back: ${rb.reason}` } : rateVerdict(d);
  return el('tr', { class: `dep-${v.state}`, 'data-device': d.device_id },
    el('td', {}, d.device_id), el('td', { class: `status-${d.status}` }, d.status.replace('_', ' ')),
    el('td', {}, d.mode_reported || '—'), el('td', {}, fmtDuration(d.run_s)),
    el('td', { class: 'num' }, d.windows ? String(d.windows) : '—'),
    el('td', { class: 'num' }, `${fmtFrac(d.observed_alarm_fraction)} / ${fmtPredicted(d.predicted_alarm_fraction, d.predicted_fraction_floor, fmtFrac)}`),
    el('td', { class: 'num' }, `${fmtRate(d.observed_alerts_per_day)} / ` +
      `${fmtPredicted(d.predicted_alerts_per_device_per_day, d.predicted_floor_per_day, fmtRate)} / ${fmtRate(d.budget_alerts_per_day)}`),
    el('td', { class: v.state === 'ok' ? 'ok' : v.state === 'no_data' ? 'muted' : 'bad' }, v.text));
}

// Promote: the same targets, mode active.  A refusal shows the server's
// per-device numbers under the button.
function promoteButton(modelId, dep, out) {
  const target = dep.devices ? { devices: dep.devices }
    : { equipment_type: dep.equipment_type, site: dep.site };
  return el('button', {
    class: 'primary', onclick: async () => {
      out.replaceChildren();
      try {
        await api('POST', `/api/v1/models/${modelId}/deploy`, { ...target, mode: 'active' });
        showDeployments(modelId);
      } catch (e) {
        const devs = (e.body && e.body.devices) || [];
        place(out, el('p', { class: 'error', role: 'alert' }, `Promotion refused: ${e.message}`),
          devs.length ? el('table', { class: 'grid' }, el('tr', {}, HEAD.map((h) => el('th', {}, h))),
            devs.map((d) => deviceRow({ status: d.refusal ? 'refused' : 'ok', ...d }))) : null);
      }
    },
  }, 'Promote to active');
}

function deploymentCard(modelId, dep, rollbacks) {
  const rbOf = (devId) => rollbacks.find((r) => r.deployment_id === dep.id && r.device_id === devId);
  const out = el('div', {});
  const whom = dep.devices ? dep.devices.join(', ')
    : [dep.equipment_type, dep.site].filter(Boolean).join(' @ ');
  const devs = dep.devices_status || [];
  return el('div', { class: 'card', id: `deployment-${dep.id}` },
    el('h3', {}, `Deployment ${dep.id}: ${dep.mode}${dep.forced ? ' (forced)' : ''} to ${whom}`),
    el('p', { class: 'muted' }, `by ${dep.created_by}, ${fmtTime(dep.created_at)}; ` +
      `in force on ${dep.devices_assigned} device(s), ${dep.devices_running_it_now} of them report running it`),
    devs.length ? el('table', { class: 'grid' }, el('tr', {}, HEAD.map((h) => el('th', {}, h))),
      devs.map((d) => deviceRow(d, d.status === 'rolled_back' ? rbOf(d.device_id) : null)))
      : el('p', { class: 'muted' }, 'No device has this deployment in force (a newer one replaced it).'),
    dep.mode !== 'shadow' ? null : canModel() ? promoteButton(modelId, dep, out)
      : el('p', { class: 'hint promote-read-only' }, 'Promoting it to active needs the ml or admin role.'), out);
}

// note: what the last Save did, shown under the form.
function budgetCard(b, note) {
  const field = (name, value, step) => el('label', {}, name.replace(/_/g, ' '),
    el('input', { type: 'number', name, value, step, min: 0, disabled: !isAdmin() }));
  // One line for the outcome: a refusal replaces the last one instead of
  // piling up under the form, and a save says it was saved.
  const out = el('p', { id: 'budget-note', class: 'muted' }, note || '');
  const form = el('form', {
    class: 'filters', onsubmit: async (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target);
      try {
        await api('PATCH', '/api/v1/alarm-budget', {
          per_operator_hour: Number(f.get('per_operator_hour')),
          devices_per_operator: Number(f.get('devices_per_operator')),
          rollback_after_s: Number(f.get('rollback_after_s')),
        });
        showDeployments(currentModel, 'Alarm budget saved.');
      } catch (e) { out.textContent = e.message; out.className = 'error'; }
    },
  }, field('per_operator_hour', b.per_operator_hour, 'any'), field('devices_per_operator', b.devices_per_operator, 1),
  field('rollback_after_s', b.rollback_after_s, 'any'),
  isAdmin() ? el('button', { type: 'submit' }, 'Save') : el('span', { class: 'hint', id: 'budget-read-only' }, 'changing it needs the admin role'));
  return el('div', { class: 'card', id: 'alarm-budget' }, el('h3', {}, 'Alarm budget'),
    el('p', { class: 'def' }, `A device's share: ${fmtRate(b.device_per_hour)} alerts per hour ` +
      `(${b.per_operator_hour} per operator-hour, ISA-18.2 suggests ${b.isa18_2_default_per_operator_hour}, ` +
      `over ${b.devices_per_operator || `${b.active_devices} active`} device(s)); at most one per hold-off. ` +
      `An active model over its share for ${fmtDuration(b.rollback_after_s)} of a device's running time ` +
      'is rolled back on that device.'), form, out);
}

function rollbacksCard(items) {
  return el('div', { class: 'card', id: 'rollbacks' }, el('h3', {}, 'Rollbacks'),
    items.length ? el('table', { class: 'grid' },
      el('tr', {}, ['when', 'device', 'model', 'deployment', 'reason'].map((h) => el('th', {}, h))),
      items.map((r) => el('tr', {}, el('td', {}, fmtTime(r.at)), el('td', {}, r.device_id),
        el('td', {}, el('a', { href: `#/deployments/${r.model_id}` }, String(r.model_id))),
        el('td', {}, String(r.deployment_id)), el('td', {}, r.reason))))
      : el('p', { class: 'muted' }, 'No model has been rolled back.'));
}

let currentModel = null;

export async function showDeployments(modelId, budgetNote) {
  currentModel = modelId || null;
  crumbs(modelId ? `Deployments of model ${modelId}` : 'Deployments');
  const pick = el('form', {
    class: 'filters', onsubmit: (ev) => {
      ev.preventDefault();
      location.hash = `#/deployments/${new FormData(ev.target).get('model')}`;
    },
  }, el('label', {}, 'Model', el('input', { type: 'number', name: 'model', min: 1, value: modelId || '' })),
  el('button', { type: 'submit' }, 'Show'));
  let budget, rollbacks, deps = null;
  try {
    // The deployments of a model that does not exist answer 404: said as
    // such, not as "Model 999 is not deployed" nor as a failed page.
    const absent = (e) => { if (e.status === 404) return null; throw e; };
    [budget, rollbacks, deps] = await Promise.all([api('GET', '/api/v1/alarm-budget'),
      api('GET', '/api/v1/rollbacks' + (modelId ? `?model_id=${modelId}` : '')),
      modelId ? api('GET', `/api/v1/models/${modelId}/deployments`).catch(absent) : null]);
  } catch (e) { showError(e.message); return; }
  const cards = !modelId ? [] : !deps ? [el('p', { class: 'error', id: 'no-such-model' }, `There is no model ${modelId}.`)]
    : deps.items.length
    ? deps.items.map((d) => deploymentCard(modelId, d, deps.rollbacks || []))
    : [el('p', { class: 'muted' }, `Model ${modelId} is not deployed.`)];
  showPage(el('h2', {}, 'Model deployments'), pick, el('div', { id: 'deployments' }, cards),
    budgetCard(budget, budgetNote), rollbacksCard(rollbacks.items));
}
