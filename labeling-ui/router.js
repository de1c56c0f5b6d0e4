// router.js - which page a location hash shows.  The table is the UI's map:
// one row per page, first match wins, anything else is the queue.
// Pure: no DOM; app.js binds the page names to their modules.

const ROUTES = [
  { page: 'snapshot', re: /^#\/snapshot\/(\d+)/, params: (m) => ({ id: Number(m[1]) }) },
  { page: 'users', re: /^#\/admin\/users/ },
  { page: 'account', re: /^#\/account/ },
  { page: 'rules', re: /^#\/rules/ },
  { page: 'ops', re: /^#\/ops/ },
  { page: 'fleet', re: /^#\/fleet/ },
  { page: 'datasets', re: /^#\/datasets/ },
  { page: 'models', re: /^#\/models(?:\/(\d+))?/, params: (m) => ({ model: m[1] ? Number(m[1]) : null }) },
  { page: 'classes', re: /^#\/classes/ },
  { page: 'deployments', re: /^#\/deployments(?:\/(\d+))?/, params: (m) => ({ model: m[1] ? Number(m[1]) : null }) },
];
export const DEFAULT_PAGE = 'queue';

// '#/snapshot/12' -> { page: 'snapshot', params: { id: 12 } }
export function matchRoute(hash) {
  for (const r of ROUTES) {
    const m = r.re.exec(hash || '');
    if (m) return { page: r.page, params: r.params ? r.params(m) : {} };
  }
  return { page: DEFAULT_PAGE, params: {} };
}

export const snapshotHash = (id) => `#/snapshot/${id}`;
export const modelHash = (id) => `#/models/${id}`;
