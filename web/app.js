// Sluice web UI: a hash router over two views, the stream list (#/) and a stream's page
// (#/streams/<name>). Each view returns a cleanup function that stops its timers and player.
// Uses only the native REST API (/v1/…) and hls.js (loaded before this module).

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

window.addEventListener('hashchange', route);
route();
