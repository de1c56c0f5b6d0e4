// page-users.js - the admin page: the users, a form to add one, and the
// account life cycle: disable a user, set a password, list and revoke API
// tokens.  The server answers these to admins only; anyone else who comes
// here sees its 403, and everyone may change their own password here.
import { api } from './http.js';
import { el, crumbs, showPage } from './dom.js';
import { fmtTime } from './format.js';
import { session } from './session.js';

const ROLES = ['operator', 'ml', 'admin'];
// The server's shortest password, in bytes (SESSION_PASSWORD_MIN in
// server/session/session.h; it counts strlen of the UTF-8): checked here
// before a password is sent, the server's other rules (not the username,
// enough different characters, not a common one) answered by it.
const PASSWORD_MIN = 10;
const bytes = (s) => new TextEncoder().encode(s).length;

function refused(e) {
  return el('div', { class: 'card forbidden', id: 'forbidden' },
    el('h2', {}, e.status === 403 ? '403 Forbidden' : `Error ${e.status || ''}`), el('p', {}, e.message),
    el('p', {}, el('a', { href: '#/queue' }, 'Back to the queue')));
}

function addUserForm() {
  const err = el('p', { class: 'error', id: 'user-error' });
  const form = el('form', { class: 'card filters', id: 'user-form' },
    el('label', {}, 'Username', el('input', {
      name: 'username', id: 'new-username', required: true, maxlength: 64, pattern: '[A-Za-z0-9._\\-]+',
      autocomplete: 'off',
    })),
    el('label', {}, `Password (${PASSWORD_MIN}+ characters, not a common one)`, el('input', {
      name: 'password', id: 'new-password', type: 'password', required: true, minlength: PASSWORD_MIN,
      autocomplete: 'new-password',
    })),
    el('label', {}, 'Role',
      el('select', { name: 'role', id: 'new-role' }, ROLES.map((r) => el('option', { value: r }, r)))),
    el('button', { class: 'primary', type: 'submit' }, 'Add user'), err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { username: form.username.value, password: form.password.value, role: form.role.value };
    try {
      const u = await api('POST', '/api/v1/users', body);
      showUsers(`added ${u.username} (${u.role})`);
    } catch (e) { err.textContent = e.message; }
  });
  return form;
}

// A button that runs act() and shows the page again with what happened.
function action(label, attrs, act) {
  const b = el('button', Object.assign({ type: 'button' }, attrs), label);
  b.addEventListener('click', async () => {
    try { showUsers(await act()); } catch (e) { showUsers(`${label}: ${e.message}`, true); }
  });
  return b;
}

// What is wrong with a new password and its confirmation before the server
// is asked, or '' (the server says the rest).
function passwordProblem(pw, again) {
  if (bytes(pw) < PASSWORD_MIN) return `The password is too short: at least ${PASSWORD_MIN} characters.`;
  if (pw !== again) return 'The two passwords differ: type the same one twice.';
  return '';
}

// An admin sets a user's password in a row under the user's: the password
// twice, hidden as typed, checked before it is sent; the server's refusal
// shown in the row.  One such row at a time.
function passwordRow(u) {
  const err = el('p', { class: 'error', id: 'set-password-error', role: 'alert' });
  const field = (name, label, extra) => el('label', {}, label, el('input', {
    name, type: 'password', required: true, autocomplete: 'new-password', ...extra,
  }));
  const form = el('form', { class: 'filters', id: 'set-password-form' },
    field('password', `New password for ${u.username} (${PASSWORD_MIN}+ characters, not a common one)`,
      { id: 'set-password' }),
    field('again', 'The same again', { id: 'set-password-again' }),
    el('button', { class: 'primary', type: 'submit' }, 'Set password'),
    el('button', { type: 'button', onclick: () => row.remove() }, 'Cancel'), err);
  const row = el('tr', { id: 'set-password-row', 'data-password-for': u.username },
    el('td', { colspan: 4, class: 'form-cell' }, form));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const pw = form.password.value;
    const problem = passwordProblem(pw, form.again.value);
    if (problem) { err.textContent = problem; return; }
    err.textContent = '';
    try {
      await api('POST', `/api/v1/users/${u.id}/password`, { password: pw });
      showUsers(`new password for ${u.username}; their sessions ended`);
    } catch (e) { err.textContent = `Refused: ${e.message}`; }
  });
  return row;
}

function userActions(u) {
  if (u.disabled) return el('td', {}, 'disabled');
  const open = (ev) => {
    const old = document.getElementById('set-password-row');
    if (old) old.remove();
    const row = passwordRow(u);
    ev.target.closest('tr').after(row);
    row.querySelector('input').focus();
  };
  // the server refuses an admin's disabling of their own account (409)
  const self = !!session.me && session.me.username === u.username;
  return el('td', {},
    self ? el('span', { class: 'hint', id: 'self-note', title: 'an admin cannot disable their own account' }, 'you') : action('Disable', { class: 'danger', 'data-disable': u.username }, async () => {
      if (!window.confirm(`Disable ${u.username}? Their sessions end and their tokens are revoked.`)) return '';
      await api('POST', `/api/v1/users/${u.id}/disable`);
      return `disabled ${u.username}`;
    }),
    el('button', { type: 'button', 'data-password': u.username, onclick: open }, 'Set password'));
}

function usersTable(users) {
  return el('table', { id: 'users' },
    el('thead', {}, el('tr', {}, ['username', 'role', 'created', ''].map((h) => el('th', {}, h)))),
    el('tbody', {}, users.map((u) => el('tr', { 'data-user': u.username },
      el('td', {}, u.username), el('td', {}, u.role), el('td', {}, fmtTime(u.created_at)),
      userActions(u)))));
}

function tokensTable(tokens) {
  return el('table', { id: 'tokens' },
    el('thead', {}, el('tr', {}, ['id', 'name', 'role', 'created', 'last used', ''].map((h) => el('th', {}, h)))),
    el('tbody', {}, tokens.map((t) => el('tr', { 'data-token': String(t.id) },
      el('td', {}, String(t.id)), el('td', {}, t.name), el('td', {}, t.role),
      el('td', {}, fmtTime(t.created_at)), el('td', {}, t.last_used_at ? fmtTime(t.last_used_at) : 'never'),
      el('td', {}, t.revoked_at ? `revoked ${fmtTime(t.revoked_at)}`
        : action('Revoke', { class: 'danger', 'data-revoke': String(t.id) }, async () => {
          if (!window.confirm(`Revoke token ${t.name}? It is refused from its next request on.`)) return '';
          await api('DELETE', `/api/v1/tokens/${t.id}`);
          return `revoked token ${t.name}`;
        }))))));
}

// Anyone logged in: current and new password; every session ends after.
function ownPasswordForm() {
  const err = el('p', { class: 'error', id: 'own-password-error' });
  const form = el('form', { class: 'card filters', id: 'own-password-form' },
    el('h3', {}, 'Change my password'),
    el('label', {}, 'Current password', el('input', {
      name: 'current', type: 'password', required: true, autocomplete: 'current-password',
    })),
    el('label', {}, 'New password', el('input', {
      name: 'next', type: 'password', required: true, minlength: 10, autocomplete: 'new-password',
    })),
    el('button', { class: 'primary', type: 'submit' }, 'Change password'), err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', '/api/v1/session/password',
        { current_password: form.current.value, new_password: form.next.value });
      window.location.hash = '#/login';
      window.location.reload();
    } catch (e) { err.textContent = e.message; }
  });
  return form;
}

// Everyone's own page (the header's user name links here): who they are
// and their password, whatever their role.
export function showAccount() {
  crumbs('Account');
  const me = session.me;
  showPage(el('h2', {}, 'My account'),
    el('p', { id: 'account-who' }, `Signed in as ${me.username}, role ${me.role}.`),
    ownPasswordForm());
}

export async function showUsers(note, isErr) {
  crumbs('Users');
  let list, tokens;
  try {
    list = await api('GET', '/api/v1/users');
    tokens = await api('GET', '/api/v1/tokens');
  } catch (e) { showPage(refused(e), ownPasswordForm()); return; }
  showPage(el('h2', {}, 'Users'), addUserForm(), el('p', { class: isErr ? 'error' : 'muted', id: 'user-note' }, note || ''),
    usersTable(list.items), el('h2', {}, 'API tokens'), tokensTable(tokens.items), ownPasswordForm());
}
