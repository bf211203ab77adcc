// A stream page's frame grab: the frame on screen (or the latest) as a JPEG, shown in a dialog
// with a download link. Offered only when the server has the frames endpoint.

import { authFetch, iso, qs } from './api.js';
import { dateTime, el } from './format.js';

export class FrameGrab {
  /** `instant()` is the producer time on screen (ms) or null; `onError(message)` reports. */
  constructor(base, name, instant, onError) {
    this.base = base;
    this.name = name;
    this.instant = instant;
    this.onError = onError;
    this.button = el('button#grab-frame.small.ghost', { type: 'button', hidden: true, title: 'Save the frame on screen as a JPEG' }, 'Grab frame');
    this.dialog = el('dialog.frame-dialog');
    this.button.onclick = () => this.grab();
    /** Adds the page's playback-session token to a frame URL (set by the stream page). */
    this.sign = (url) => url;
  }

  /** Shows the button if the server has the frames endpoint (a bad `at` is a 400 there; a 404
   *  that is not an API error means the route does not exist). */
  async probe() {
    let supported = false;
    try {
      const r = await authFetch(`${this.base}/frame.jpg?at=not-a-time`);
      let apiError = false;
      try { apiError = !!(await r.json()).error; } catch (_) { /* not JSON */ }
      supported = !(r.status === 404 && !apiError) && r.status !== 405;
    } catch (_) { supported = false; }
    return supported;
  }

  async grab() {
    const t = this.instant();
    const at = t === null ? 'latest' : iso(t);
    this.button.disabled = true;
    try {
      const r = await fetch(this.sign(`${this.base}/frame.jpg${qs({ at, timestamps: 'producer' })}`));
      if (!r.ok) {
        let msg = `${r.status}`;
        try { msg = (await r.json()).error.message; } catch (_) { /* not JSON */ }
        throw new Error(msg);
      }
      const url = URL.createObjectURL(await r.blob());
      const file = `${this.name}-${at.replace(/[:.]/g, '-')}.jpg`;
      this.dialog.replaceChildren(
        el('div.dialog-head', {}, el('b', {}, `Frame at ${t === null ? 'latest' : dateTime(t)}`), el('span.spacer'),
          el('a.button.small.primary', { href: url, download: file }, 'Download'),
          el('button.small.ghost', { type: 'button', onclick: () => this.dialog.close() }, 'Close')),
        el('img', { src: url, alt: `Frame of ${this.name}` }));
      this.dialog.onclose = () => URL.revokeObjectURL(url);
      this.dialog.showModal();
    } catch (e) {
      this.onError(`Could not grab a frame: ${e.message}`);
    } finally {
      this.button.disabled = false;
    }
  }
}
