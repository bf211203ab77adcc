// The stream list: every stream with its state, bitrate, retention, stored bytes and last
// fragment; create and delete streams. Refreshes every 3 s.

import { api, recentBitrate, streamPath } from './api.js';
import { setConnected } from './status.js';
import { ago, bitrate, bytes, copyButton, el, pushCommand, retention } from './format.js';

const REFRESH_MS = 3000;

export function renderList(root) {
  const error = el('div.banner.error', { hidden: true, role: 'alert' });
  const nameInput = el('input', {
    name: 'name', placeholder: 'e.g. front-door', required: true, autocomplete: 'off',
    pattern: '[a-zA-Z0-9_.\\-]{1,256}', title: 'Letters, digits, "_", "." and "-" (1–256 characters)',
  });
  const retentionInput = el('input', { name: 'retention', type: 'number', min: '0', max: '87600', value: '24' });
  const createError = el('span.form-error', { role: 'alert' });
  const form = el('form.create', {},
    el('label', {}, el('span', {}, 'Name'), nameInput),
    el('label', {}, el('span', {}, 'Retention (hours, 0 = no age limit)'), retentionInput),
    el('button.primary', { type: 'submit' }, 'Create stream'),
    createError);
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    createError.textContent = '';
    try {
      const s = await api('/v1/streams', {
        method: 'POST',
        body: JSON.stringify({ name: nameInput.value.trim(), retentionHours: Number(retentionInput.value) }),
      });
      nameInput.value = '';
      location.hash = `#/streams/${encodeURIComponent(s.name)}`;
    } catch (e) {
      createError.textContent = e.message;
    }
  };

  const tbody = el('tbody');
  const table = el('div.table-wrap', {}, el('table.streams', {},
    el('thead', {}, el('tr', {}, ['Stream', 'State', 'Bitrate', 'Retention', 'Stored', 'Last fragment', '']
      .map((h, i) => el('th', { class: i === 2 || i === 4 ? 'num' : null }, h)))),
    tbody));
  const empty = el('div.empty', { hidden: true });
  const summary = el('span.muted');

  root.append(
    el('div.page-head', {}, el('h1', {}, 'Streams'), summary),
    error,
    el('section.card', {}, form),
    el('section.card.flush', {}, table, empty),
  );

  const bitrates = new Map();
  let timer = null;
  let stopped = false;

  function renderEmpty() {
    const cmd = pushCommand('my-camera');
    empty.replaceChildren(
      el('div.empty-icon', {}, '▶'),
      el('h2', {}, 'No streams yet'),
      el('p', {}, 'Create a stream above, then push video to it. Any fragmented-MP4 producer works; with ffmpeg:'),
      el('div.code', {}, el('pre', {}, cmd), copyButton(cmd.replaceAll('\\\n  ', ''))),
    );
  }

  function row(s) {
    const live = s.live;
    const del = el('button.ghost.danger.small', { type: 'button', title: `Delete ${s.name}` }, 'Delete');
    del.onclick = async (ev) => {
      ev.stopPropagation();
      if (!confirm(`Delete stream “${s.name}” and all of its recorded media? This cannot be undone.`)) return;
      try {
        await api(streamPath(s.name), { method: 'DELETE' });
        refresh();
      } catch (e) {
        error.hidden = false;
        error.textContent = `Could not delete ${s.name}: ${e.message}`;
      }
    };
    const href = `#/streams/${encodeURIComponent(s.name)}`;
    const tr = el('tr.clickable', { dataset: { stream: s.name } },
      el('td', {}, el('a.stream-name', { href }, s.name)),
      el('td', {}, live
        ? el('span.pill.live', { title: s.producer ? `${s.producer.protocol} from ${s.producer.remoteAddr}` : '' }, 'Live')
        : el('span.pill.idle', {}, s.fragmentCount ? 'Idle' : 'No data')),
      el('td.num', {}, live ? bitrate(bitrates.get(s.name) ?? null) : '—'),
      el('td', {}, retention(s)),
      el('td.num', {}, bytes(s.bytesStored)),
      el('td', { title: s.latestServerTimestamp ? new Date(s.latestServerTimestamp).toLocaleString() : '' }, ago(s.latestServerTimestamp)),
      el('td.actions', {}, del));
    tr.onclick = (ev) => { if (!ev.target.closest('a,button')) location.hash = href; };
    return tr;
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const { streams } = await api('/v1/streams?limit=1000');
      setConnected(true);
      error.hidden = true;
      await Promise.all(streams.filter((s) => s.live).map(async (s) => {
        try { bitrates.set(s.name, await recentBitrate(s.name)); } catch (_) { /* keep the last */ }
      }));
      if (stopped) return;
      tbody.replaceChildren(...streams.map(row));
      table.hidden = streams.length === 0;
      empty.hidden = streams.length > 0;
      if (!streams.length) renderEmpty();
      const liveCount = streams.filter((s) => s.live).length;
      summary.textContent = streams.length
        ? `${streams.length} stream${streams.length > 1 ? 's' : ''} · ${liveCount} live · ${bytes(streams.reduce((a, s) => a + s.bytesStored, 0))} stored`
        : '';
    } catch (e) {
      setConnected(e.status !== 0);
      error.hidden = false;
      error.textContent = e.status === 0
        ? 'Cannot reach the Sluice server. Is it running? Retrying every few seconds…'
        : `Could not list streams: ${e.message}`;
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }

  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
