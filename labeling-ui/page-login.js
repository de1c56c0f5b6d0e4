// page-login.js - the login form.  On success it hands over to onLoggedIn
// (app.js loads the session and shows the page the hash names).
import { el, showPage } from './dom.js';
import { logIn } from './session.js';

export function showLogin(onLoggedIn, msg) {
  const err = el('p', { class: 'error', id: 'login-error' }, msg || '');
  const form = el('form', { class: 'card login', id: 'login' },
    el('h2', {}, 'Log in'),
    el('label', { for: 'username' }, 'Username'),
    el('input', { id: 'username', name: 'username', autocomplete: 'username', required: true }),
    el('label', { for: 'password' }, 'Password'),
    el('input', {
      id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true,
    }),
    el('p', {}, el('button', { class: 'primary', type: 'submit' }, 'Log in')), err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await logIn(form.username.value, form.password.value);
      await onLoggedIn();
    } catch (e) { err.textContent = e.message; }
  });
  showPage(form);
  form.username.focus();
}
