// follow.js - ask again until something moves: what the models page uses
// to follow a training to its end without a reload.  Pure: no DOM, no fetch.

// While unfinished(state) holds: wait(), then, if the page is still
// current(), fetch() the state again; when key() of the new state differs
// from the old one, changed(new) and stop (the caller shows the page anew,
// which follows again if something is still unfinished).  A fetch that
// fails stops following: the page stays as it is, and a reload starts over.
export async function followUntilMoved({ state, unfinished, key, fetch, current, changed, wait }) {
  for (let s = state; unfinished(s);) {
    await wait();
    if (!current()) return;
    let now;
    try { now = await fetch(); } catch { return; }
    if (!current()) return;
    if (key(now) !== key(s)) {
      changed(now);
      return;
    }
    s = now;
  }
}
