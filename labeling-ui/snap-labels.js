// snap-labels.js - a snapshot's saved labels and the undo of the edits
// made in this view.  Undo is a request of its own: a created label is
// deleted, a deleted one stored again (with a new id), so the server's
// audit trail shows both steps.
import { api } from './http.js';
import { restoreBody, withoutLabel } from './spans.js';

export class LabelList {
  constructor(snapshotId, items) {
    this.snapshotId = snapshotId;
    this.items = items;
    this.undo = [];             // stack of { op: 'create' | 'delete', label }
  }

  async create(body) {
    const l = await api('POST', `/api/v1/snapshots/${this.snapshotId}/labels`, body);
    this.items.push(l);
    this.undo.push({ op: 'create', label: l });
    return l;
  }

  async remove(l) {
    await api('DELETE', `/api/v1/labels/${l.id}`);
    this.items = withoutLabel(this.items, l.id);
    this.undo.push({ op: 'delete', label: l });
  }

  // The edit undone ({ op, label }), or null when there is none.  The edit
  // leaves the stack even when its request fails (the error is thrown).
  async undoLast() {
    const u = this.undo.pop();
    if (!u) return null;
    if (u.op === 'create') {
      await api('DELETE', `/api/v1/labels/${u.label.id}`);
      this.items = withoutLabel(this.items, u.label.id);
    } else {
      this.items.push(await api('POST', `/api/v1/snapshots/${this.snapshotId}/labels`, restoreBody(u.label)));
    }
    return u;
  }
}
