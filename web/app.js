// Sluice web UI: a hash router over two views, the stream list (#/) and a stream's page
// (#/streams/<name>). Each view returns a cleanup function that stops its timers and player.
// Uses only the native REST API (/v1/…) and hls.js (loaded before this module).

import { api, setCredentials } from './api.js';
import { el } from './format.js';
import { renderList } from './list.js';
import { renderStream } from './stream.js';

const view = document.getElementById('view');
const crumbs = document.getElementById('crumbs');
let cleanup = null;

function route() {
  if (cleanup) cleanup();
  cleanup = null;
  view.replaceChildren();
  const hash = location.hash.replace(/^#/, '') || '/';
  const m = hash.match(/^\/streams\/([^/?]+)(?:\?(.*))?$/);
  if (m) {
    const name = decodeURIComponent(m[1]);
    const params = new URLSearchParams(m[2] || '');
    document.title = `${name} · Sluice`;
    crumbs.replaceChildren(Object.assign(document.createElement('a'), { href: '#/', textContent: 'Streams' }),
      Object.assign(document.createElement('span'), { textContent: ` / ${name}` }));
    cleanup = renderStream(view, name, params);
  } else {
    document.title = 'Sluice';
    crumbs.replaceChildren();
    cleanup = renderList(view);
  }
}

/**
 * The sign-in form, shown when the server answers 401 (`[auth]` on). The credentials stay in this
 * page's memory (api.js); the streams listed afterwards are those the user has a grant on.
 */
function showLogin(message) {
  if (cleanup) cleanup();
  cleanup = null;
  document.title = 'Sign in · Sluice';
  crumbs.replaceChildren();
  const user = el('input', { name: 'user', autocomplete: 'username', required: true });
  const pass = el('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = el('p.form-error', { hidden: !message, role: 'alert' }, message || '');
  const form = el('form.card.login', {},
    el('h1', {}, 'Sign in'),
    el('p.muted', {}, 'This Sluice requires credentials.'),
    el('label', {}, 'User', user),
    el('label', {}, 'Password', pass),
    error,
    el('button.primary', { type: 'submit' }, 'Sign in'));
  form.onsubmit = async (e) => {
    e.preventDefault();
    setCredentials(user.value, pass.value);
    try {
      await api('/v1/auth/whoami');
      route();
    } catch (err) {
      setCredentials(null);
      error.hidden = false;
      error.textContent = err.status === 401 ? 'Wrong user name or password.' : err.message;
    }
  };
  view.replaceChildren(form);
  user.focus();
}

window.addEventListener('sluice-login', () => {
  if (!view.querySelector('form.login')) showLogin(null);
});
window.addEventListener('hashchange', route);
// Whether the server needs credentials before anything is shown.
api('/v1/auth/whoami').then((who) => (who.signInRequired ? showLogin(null) : route()), () => route());
