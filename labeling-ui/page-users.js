// page-users.js - the admin page: the users and a form to add one.  The
// server answers /api/v1/users to admins only; anyone else who comes here
// sees its 403 as a page of its own.
import { api } from './http.js';
import { el, crumbs, showPage } from './dom.js';
import { fmtTime } from './format.js';

const ROLES = ['operator', 'ml', 'admin'];

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
    el('label', {}, 'Password (10+ characters)', el('input', {
      name: 'password', id: 'new-password', type: 'password', required: true, minlength: 10,
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

function usersTable(users) {
  return el('table', { id: 'users' },
    el('thead', {}, el('tr', {}, ['username', 'role', 'created', ''].map((h) => el('th', {}, h)))),
    el('tbody', {}, users.map((u) => el('tr', { 'data-user': u.username },
      el('td', {}, u.username), el('td', {}, u.role), el('td', {}, fmtTime(u.created_at)),
      el('td', {}, u.disabled ? 'disabled' : '')))));
}

export async function showUsers(note) {
  crumbs('Users');
  let list;
  try { list = await api('GET', '/api/v1/users'); } catch (e) { showPage(refused(e)); return; }
  showPage(el('h2', {}, 'Users'), addUserForm(), el('p', { class: 'muted', id: 'user-note' }, note || ''),
    usersTable(list.items));
}
