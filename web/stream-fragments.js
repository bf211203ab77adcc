// A stream page's fragments table: the fragments of the selection, or the newest 50.

import { api, authorizedDownload, iso, qs } from './api.js';
import { bytes, clock, dateTime, el } from './format.js';

export class FragmentsPanel {
  constructor(base) {
    this.base = base;
    this.body = el('tbody');
    this.note = el('span.muted');
    this.seq = 0;
    this.card = el('section.card.flush-body', {},
      el('div.card-head', {}, el('h2', {}, 'Fragments'), this.note),
      el('div.table-wrap.fragments-scroll', {}, el('table.fragments', {},
        el('thead', {}, el('tr', {}, ['#', 'Producer time', 'Server time', 'Duration', 'Size', 'Key', ''].map((h, i) => el('th', { class: i === 3 || i === 4 ? 'num' : null }, h)))),
        this.body)));
  }

  /** Lists the fragments of `selection` ({start, end}), or else the newest of the stream `desc`. */
  async refresh(selection, desc) {
    const seq = ++this.seq;
    const base = this.base;
    try {
      let rows;
      if (selection) {
        const r = await api(`${base}/fragments${qs({ start: iso(selection.start), end: iso(selection.end), limit: 100 })}`);
        rows = r.fragments;
        this.note.textContent = `${r.fragments.length}${r.next ? '+' : ''} in the selection`;
      } else if (desc?.latestProducerTimestamp) {
        const from = Date.parse(desc.latestProducerTimestamp) - 120e3;
        const r = await api(`${base}/fragments${qs({ start: iso(from), limit: 2000 })}`);
        rows = r.fragments.slice(-50).reverse();
        this.note.textContent = 'newest 50';
      } else {
        rows = [];
        this.note.textContent = '';
      }
      if (seq !== this.seq) return;
      if (!rows.length) {
        this.body.replaceChildren(el('tr', {}, el('td.empty-row', { colSpan: 7 }, selection ? 'No fragments in the selection.' : 'No fragments yet.')));
        return;
      }
      this.body.replaceChildren(...rows.map((f) => el('tr', {},
        el('td.mono', {}, f.fragmentNumber),
        el('td.mono', {}, dateTime(Date.parse(f.producerTimestamp)) + `.${String(Date.parse(f.producerTimestamp) % 1000).padStart(3, '0')}`),
        el('td.mono', {}, clock(Date.parse(f.serverTimestamp), true)),
        el('td.num', {}, `${(f.durationMs / 1000).toFixed(3)} s`),
        el('td.num', {}, bytes(f.sizeBytes)),
        el('td', {}, el('span.tags', {}, f.keyframe ? el('span.tag.key', {}, 'key') : '', f.discontinuity ? el('span.tag.disc', { title: 'first fragment of a producer session or a new init segment' }, 'disc') : '')),
        el('td', {}, el('a.small-link', {
          href: `${base}/fragments/${f.fragmentNumber}/media`,
          download: `${desc?.name ?? 'fragment'}-${f.fragmentNumber}.m4s`,
          title: 'The stored moof+mdat',
          onclick: authorizedDownload((m) => { this.note.textContent = m; }),
        }, '↓')))));
    } catch (e) {
      if (seq === this.seq) this.note.textContent = `Could not list fragments: ${e.message}`;
    }
  }
}
