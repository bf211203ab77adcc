// A stream page's events panel: the events in the timeline's window (producers' metadata on
// either clock), newest first; a click plays from the event.

import { api, iso, qs } from './api.js';
import { clock, dateTime, el } from './format.js';

export class EventsPanel {
  /** `base` is the stream's API path; `onPick(t)` plays from instant `t`. */
  constructor(base, onPick) {
    this.base = base;
    this.onPick = onPick;
    this.list = el('ul.events');
    this.note = el('span.muted');
    this.card = el('section.card.events-card', {}, el('div.card-head', {}, el('h2', {}, 'Events'), this.note), this.list);
  }

  /** Events stamped on either clock (producers may send server-clock events), in time order. */
  async fetch(start, end) {
    const lists = await Promise.all(['producer', 'server'].map((timestamps) =>
      api(`${this.base}/events${qs({ start: iso(start), end: iso(end), timestamps, limit: 1000 })}`)
        .then((r) => r.events).catch(() => [])));
    const seen = new Set();
    return lists.flat()
      .filter((e) => !seen.has(e.sequenceNumber) && seen.add(e.sequenceNumber))
      .sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
  }

  /** Shows the newest 50 of `events`; `spanMs` is the window's length (long windows show dates). */
  render(events, spanMs) {
    const shown = events.slice(-50).reverse();
    const longView = spanMs > 20 * 3600e3;
    this.note.textContent = events.length ? `${events.length} in view` : '';
    if (!shown.length) {
      this.list.replaceChildren(el('li.empty-row', {}, 'No events in this range. Producers attach metadata with POST ', el('code', {}, `${this.base}/events`), '.'));
      return;
    }
    this.list.replaceChildren(...shown.map((ev) => {
      const t = Date.parse(ev.timestamp);
      return el('li', { onclick: () => this.onPick(t), title: 'Play from this event' },
        el('span.ev-time', { title: new Date(t).toLocaleString() }, longView ? dateTime(t) : clock(t, true)),
        el('span.ev-type', {}, ev.type),
        el('span.ev-data', {}, ev.data === null || ev.data === undefined ? '' : JSON.stringify(ev.data)));
    }));
  }
}
