// demo.js - whether the pages show the demo history (`make run`'s months of
// synthetic alerts on devices the server marks demo) beside the live fleet.
// Off by default, so a newcomer meets the live simulated fleet first; the
// header's "show demo data" switch turns it on, kept in localStorage.  The
// server takes the choice as the demo= query parameter.
const KEY = 'precursor.showDemo';

export function showDemo() {
  try { return localStorage.getItem(KEY) === '1'; } catch { return false; }
}

export function setShowDemo(on) {
  try { localStorage.setItem(KEY, on ? '1' : '0'); } catch { /* private mode: for this page only */ }
}

export const demoParam = () => (showDemo() ? 'include' : 'exclude');
