// latest.js - one request at a time, for the newest state only: what the
// snapshot view uses to ask for a window's samples and its spectra while
// keys keep moving the window.  Pure: no DOM, no fetch.

// A function that runs run() now when it is idle; called while run() is
// running, it only remembers that the state moved, and run() goes once more
// when the running one ends (once, however many calls came meanwhile).
// run(moved) gets a function telling whether a call came since it started,
// so that it can drop an answer already stale.  run() reports its own
// errors: one that throws anyway ends that run, not the next.
export function latestOnly(run) {
  let running = false, again = false;
  const go = async () => {
    running = true;
    again = false;
    try { await run(() => again); } catch { /* run() reports its own */ }
    running = false;
    if (again) go();
  };
  return () => { if (running) again = true; else go(); };
}
