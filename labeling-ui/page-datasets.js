// page-datasets.js - the ML team's datasets in the browser: definitions,
// their frozen versions, exports with a progress bar and a download link,
// and a model trained on a version (the models page then follows it).
// Reading is open to every role; freezing, exporting and training take the
// ml or admin role, and the page says so when the server refuses
// (docs/DATASETS.md).
import { api } from './http.js';
import { el, crumbs, showPage, showError, place } from './dom.js';
import { fmtTime, dash } from './format.js';
import { modelHash } from './router.js';
import { canModel, MODEL_NOTE } from './session.js';

const POLL_MS = 300;
const TEMPLATE = {
  name: 'bearings',
  filter: { sources: ['human'], equipment_types: ['rotating'] },
  window: { length_s: 0.1, stride_s: 0.1 },
  split: { by: 'time', fractions: [0.6, 0.2, 0.2], seed: 1 },
};

function summary(def) {
  const f = (def && def.filter) || {}, w = (def && def.window) || {}, s = (def && def.split) || {};
  const parts = [];
  if (f.equipment_types) parts.push(`types ${f.equipment_types.join(', ')}`);
  if (f.sources) parts.push(`sources ${f.sources.join(', ')}`);
  if (w.length_s) parts.push(`windows ${w.length_s} s / ${w.stride_s} s`);
  if (s.by) parts.push(`split by ${s.by}`);
  return parts.join(' · ') || '—';
}

// One export: POST .../export-jobs, then the job's progress until its file
// can be downloaded.
async function exportVersion(id, v, format, box) {
  const bar = el('progress', { max: 100, value: 0, class: 'export-progress', 'data-version': v });
  const text = el('span', { class: 'hint' }, ' starting…');
  box.replaceChildren(bar, text);
  let job;
  try { job = await api('POST', `/api/v1/datasets/${id}/versions/${v}/export-jobs`, { format }); } catch (e) {
    box.replaceChildren(el('span', { class: 'error' }, e.message));
    return;
  }
  for (;;) {
    let j;
    try { j = await api('GET', `/api/v1/export-jobs/${job.id}`); } catch (e) {
      box.replaceChildren(el('span', { class: 'error' }, e.message));
      return;
    }
    bar.value = Number(j.percent) || 0;
    text.textContent = ` ${j.status} · ${bar.value.toFixed(0)} % · ${dash(j.rows_done)} of ${dash(j.rows_total)} rows`;
    if (j.status === 'done') {
      box.append(' ', el('a', { href: `/api/v1/export-jobs/${job.id}/file`, download: `dataset-${id}-v${v}.${format}`, class: 'download' },
        `download ${format} (${(j.bytes / 1024).toFixed(0)} KiB)`));
      return;
    }
    if (j.status !== 'queued' && j.status !== 'running') {
      // failed or cancelled: the server's reason, in words
      if (j.error) box.append(' ', el('span', { class: 'error export-error' }, j.error));
      return;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

// Train a model on one version: POST /api/v1/models, then its page, which
// follows the training.  A few-shot model may read the relations between
// channels instead of each channel's features, and borrows related
// equipment types' labels unless transfer is unticked.
function trainControl(id, v) {
  const kind = el('select', { 'data-act': 'train-kind' },
    [['fewshot', 'few-shot classifier'], ['classifier', 'classifier'], ['anomaly', 'anomaly (normal only)']]
      .map(([k, text]) => el('option', { value: k }, text)));
  const relations = el('input', { type: 'checkbox', 'data-act': 'train-relations' });
  const transfer = el('input', { type: 'checkbox', 'data-act': 'train-transfer', checked: true });
  const fewshotOnly = el('span', { class: 'hint' },
    el('label', { title: 'the residuals of a map of normal operation across channels (process data)' }, relations, ' relations'), ' ',
    el('label', { title: 'labels of related equipment types that share a failure mode' }, transfer, ' transfer'));
  const note = el('span', { class: 'hint' });
  kind.onchange = () => { fewshotOnly.hidden = kind.value !== 'fewshot'; };
  const train = async () => {
    const body = { dataset_id: id, version: v, kind: kind.value };
    if (kind.value === 'fewshot') {
      if (relations.checked) body.feature_set = 'relations';
      body.transfer = transfer.checked;
    }
    note.className = 'hint';
    note.textContent = ' starting…';
    try {
      const r = await api('POST', '/api/v1/models', body);
      location.hash = modelHash(r.id);
    } catch (e) { note.className = 'error'; note.textContent = ` ${e.message}`; }
  };
  return el('span', { class: 'train-box' }, kind, ' ', fewshotOnly, ' ',
    el('button', { 'data-act': 'train', onclick: train }, 'Train'), note);
}

// The newest finished export of each format of version v (jobs: GET
// /api/v1/export-jobs, newest first), as links to their files: what was
// exported before can be downloaded again, by every role.
function filesCell(id, v, jobs) {
  const newest = new Map();
  for (const j of jobs) if (j.version === v && j.status === 'done' && !newest.has(j.format)) newest.set(j.format, j);
  if (!newest.size) return el('td', { class: 'files muted' }, '—');
  return el('td', { class: 'files' }, [...newest.values()].flatMap((j, i) => [i ? ' · ' : '',
    el('a', { href: `/api/v1/export-jobs/${j.id}/file`, download: `dataset-${id}-v${v}.${j.format}`, class: 'file',
      title: `export job ${j.id}, ${fmtTime(j.created_at)}` }, `${j.format} (${Math.max(1, Math.round(j.bytes / 1024))} KiB)`)]));
}

// Exporting and training columns for a role that may (ml, admin) only.
function versionRow(id, ver, jobs) {
  const box = el('span', { class: 'export-box' });
  const format = el('select', {}, ['npz', 'jsonl', 'csv'].map((f) => el('option', { value: f }, f)));
  return el('tr', { 'data-version': ver.version },
    el('td', {}, `v${ver.version}`), el('td', {}, dash(ver.n_windows)),
    el('td', { class: 'mono', title: ver.content_sha256 }, (ver.content_sha256 || '').slice(0, 12)),
    el('td', {}, fmtTime(ver.created_at)), filesCell(id, ver.version, jobs),
    canModel() ? [
      el('td', {}, format, ' ', el('button', { 'data-act': 'export', onclick: () => exportVersion(id, ver.version, format.value, box) }, 'Export'), ' ', box),
      el('td', {}, trainControl(id, ver.version))] : null);
}

const VERSION_HEAD = ['version', 'windows', 'content sha256', 'frozen', 'exported files'];
const READ_ONLY = `Read only: creating a dataset, freezing a version, exporting and training ${MODEL_NOTE}.`;

async function showVersions(d, box) {
  let full, jobs;
  try {
    [full, jobs] = await Promise.all([api('GET', `/api/v1/datasets/${d.id}`),
      api('GET', `/api/v1/export-jobs?dataset_id=${d.id}&limit=500`)]);
  } catch (e) { box.replaceChildren(el('p', { class: 'error' }, e.message)); return; }
  const note = el('span', { class: 'hint' });
  const freeze = el('button', {
    'data-act': 'freeze',
    onclick: async () => {
      try {
        await api('POST', `/api/v1/datasets/${d.id}/versions`);
        showDatasets(d.id);       // the list's version count too
      } catch (e) { note.textContent = ` ${e.message}`; note.className = 'error'; }
    },
  }, 'Freeze a new version');
  const head = canModel() ? [...VERSION_HEAD, 'export', 'train a model'] : VERSION_HEAD;
  place(box, el('h3', {}, `${d.name}: versions`), canModel() ? el('p', {}, freeze, note) : null,
    el('table', { class: 'versions', id: `versions-${d.id}` },
      el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))),
      el('tbody', {}, (full.versions || []).length ? full.versions.map((v) => versionRow(d.id, v, jobs.items))
        : el('tr', {}, el('td', { colspan: head.length, class: 'muted' },
          canModel() ? 'No version frozen yet: freeze one to export it or train on it.' : 'No version frozen yet.')))));
}

function createForm(done) {
  const text = el('textarea', { id: 'ds-definition', rows: 7, cols: 70 }, JSON.stringify(TEMPLATE, null, 2));
  const err = el('span', { class: 'error', id: 'ds-error' });
  return el('details', { class: 'card' }, el('summary', {}, 'New dataset'),
    el('p', { class: 'hint' }, 'The definition as POST /api/v1/datasets takes it (docs/DATASETS.md).'), text,
    el('p', {}, el('button', {
      class: 'primary', id: 'ds-create',
      onclick: async () => {
        let body;
        try { body = JSON.parse(text.value); } catch (e) { err.textContent = `not JSON: ${e.message}`; return; }
        try { const r = await api('POST', '/api/v1/datasets', body); done(r.id); } catch (e) { err.textContent = e.message; }
      },
    }, 'Create'), ' ', err));
}

export async function showDatasets(openId) {
  crumbs('Datasets');
  // Every dataset, oldest first, a page at a time.
  const list = { items: [] };
  try {
    for (let after = 0; ;) {
      const page = await api('GET', `/api/v1/datasets?limit=500${after ? `&after=${after}` : ''}`);
      list.items = list.items.concat(page.items);
      if (!page.next) break;
      after = page.next;
    }
  } catch (e) { showError(e.message); return; }
  const detail = el('div', { class: 'card', id: 'ds-detail' }, el('p', { class: 'muted' }, 'Pick a dataset to see its versions.'));
  // A row opens on click, or on Enter once tabbed to (it takes the focus).
  const rows = list.items.map((d) => el('tr', {
    class: 'row', 'data-dataset': d.id, tabindex: 0, onclick: () => showVersions(d, detail),
    onkeydown: (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); showVersions(d, detail); } },
  },
    el('td', {}, `#${d.id}`), el('td', {}, d.name), el('td', {}, summary(d.definition)),
    el('td', {}, dash(d.versions)), el('td', {}, fmtTime(d.created_at))));
  showPage(el('h2', {}, 'Datasets'),
    canModel() ? createForm((id) => showDatasets(id)) : el('p', { class: 'hint', id: 'ds-read-only' }, READ_ONLY),
    el('table', { id: 'datasets' },
      el('thead', {}, el('tr', {}, ['id', 'name', 'definition', 'versions', 'created'].map((h) => el('th', {}, h)))),
      el('tbody', {}, rows.length ? rows : [el('tr', { id: 'datasets-empty' }, el('td', { colspan: 5, class: 'muted' },
        canModel() ? 'No datasets yet: define one under New dataset above.' : 'No datasets yet.'))])),
    // "Pick a dataset" under an empty list offered nothing to pick
    rows.length ? detail : null);
  const open = list.items.find((d) => d.id === openId) || (list.items.length === 1 ? list.items[0] : null);
  if (open) showVersions(open, detail);
}
