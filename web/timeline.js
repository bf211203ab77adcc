// The replay timeline: a canvas showing a time window (minutes to days) with the recorded
// ranges (exact, or per-bucket coverage when zoomed out), the gaps, the stream's events, the
// selection and the playhead. Wheel or the zoom buttons zoom around the cursor; dragging the
// axis strip pans; click plays from a point, drag selects a range.

import { clock } from './format.js';

const MIN_SPAN = 20_000; // 20 s
const MAX_SPAN = 90 * 86_400_000; // 90 days
const AXIS_H = 22;
const EVENTS_H = 16;
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800]
  .map((s) => s * 1000);

const COLORS = ['#d97706', '#7c3aed', '#db2777', '#059669', '#2563eb', '#dc2626', '#0891b2'];
const colorOf = (type) => COLORS[[...type].reduce((a, c) => (a * 31 + c.charCodeAt(0)) >>> 0, 7) % COLORS.length];

export class Timeline {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{onView: (start:number,end:number)=>void, onPick: (t:number)=>void,
   *          onSelect: (sel: {start:number,end:number}|null)=>void, onHover?: (info: string|null)=>void}} hooks
   */
  constructor(canvas, hooks) {
    this.canvas = canvas;
    this.hooks = hooks;
    this.start = Date.now() - 15 * 60_000;
    this.end = Date.now();
    this.data = null; // the /timeline answer
    this.events = [];
    this.selection = null;
    this.playhead = null;
    this.now = Date.now();
    this.drag = null;
    this.hover = null;
    this.resizeObserver = new ResizeObserver(() => this.draw());
    this.resizeObserver.observe(canvas);
    canvas.addEventListener('wheel', (e) => this.onWheel(e), { passive: false });
    canvas.addEventListener('pointerdown', (e) => this.onDown(e));
    canvas.addEventListener('pointermove', (e) => this.onMove(e));
    canvas.addEventListener('pointerup', (e) => this.onUp(e));
    canvas.addEventListener('pointerleave', () => { this.hover = null; this.hooks.onHover?.(null); this.draw(); });
  }

  destroy() { this.resizeObserver.disconnect(); }

  width() { return this.canvas.clientWidth || 600; }
  xOf(t) { return ((t - this.start) / (this.end - this.start)) * this.width(); }
  tOf(x) { return this.start + (x / this.width()) * (this.end - this.start); }

  /** Sets the window (clamped to sane spans) and tells the owner to fetch it. */
  setView(start, end, notify = true) {
    let span = Math.min(MAX_SPAN, Math.max(MIN_SPAN, end - start));
    const mid = (start + end) / 2;
    if (end - start !== span) { start = mid - span / 2; end = mid + span / 2; }
    this.start = Math.round(start);
    this.end = Math.round(end);
    this.draw();
    if (notify) this.hooks.onView(this.start, this.end);
  }

  zoom(factor, anchorT = (this.start + this.end) / 2) {
    const f = (anchorT - this.start) / (this.end - this.start);
    const span = Math.min(MAX_SPAN, Math.max(MIN_SPAN, (this.end - this.start) * factor));
    this.setView(anchorT - f * span, anchorT - f * span + span);
  }

  pan(fraction) {
    const d = (this.end - this.start) * fraction;
    this.setView(this.start + d, this.end + d);
  }

  setData(data, events) {
    this.data = data;
    this.events = events || [];
    this.draw();
  }

  setPlayhead(t) { this.playhead = t; this.now = Date.now(); this.draw(); }

  setSelection(sel) { this.selection = sel; this.draw(); this.hooks.onSelect(sel); }

  /** Is `t` inside a recorded range of the current data? */
  recordedAt(t) {
    return !!this.data?.ranges?.some((r) => t >= Date.parse(r.start) && t < Date.parse(r.end));
  }

  localX(e) { return e.clientX - this.canvas.getBoundingClientRect().left; }
  localY(e) { return e.clientY - this.canvas.getBoundingClientRect().top; }

  onWheel(e) {
    e.preventDefault();
    if (Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
      this.pan(e.deltaX / this.width());
      return;
    }
    this.zoom(e.deltaY > 0 ? 1.25 : 0.8, this.tOf(this.localX(e)));
  }

  onDown(e) {
    this.canvas.setPointerCapture(e.pointerId);
    const x = this.localX(e);
    const onAxis = this.localY(e) > this.canvas.clientHeight - AXIS_H;
    this.drag = { x0: x, t0: this.tOf(x), moved: false, pan: onAxis, start: this.start, end: this.end };
  }

  onMove(e) {
    const x = this.localX(e);
    const t = this.tOf(x);
    this.hover = { x, t };
    const ev = this.eventNear(x, this.localY(e));
    this.hooks.onHover?.(ev
      ? `${clock(Date.parse(ev.timestamp))} · ${ev.type}${ev.data !== null && ev.data !== undefined ? ` · ${JSON.stringify(ev.data).slice(0, 80)}` : ''}`
      : `${new Date(t).toLocaleString()} · ${this.recordedAt(t) ? 'recorded' : 'no data'}`);
    if (this.drag) {
      if (Math.abs(x - this.drag.x0) > 4) this.drag.moved = true;
      if (this.drag.moved) {
        if (this.drag.pan) {
          const dt = ((this.drag.x0 - x) / this.width()) * (this.drag.end - this.drag.start);
          this.start = this.drag.start + dt;
          this.end = this.drag.end + dt;
        } else {
          this.selection = { start: Math.min(this.drag.t0, t), end: Math.max(this.drag.t0, t) };
        }
      }
    }
    this.draw();
  }

  onUp(e) {
    const d = this.drag;
    this.drag = null;
    if (!d) return;
    if (d.pan) {
      if (d.moved) this.setView(this.start, this.end);
      return;
    }
    if (d.moved && this.selection) {
      this.setSelection(this.selection);
    } else {
      const ev = this.eventNear(this.localX(e), this.localY(e));
      this.hooks.onPick(ev ? Date.parse(ev.timestamp) : d.t0);
    }
  }

  eventNear(x, y) {
    if (y > EVENTS_H + 2) return null;
    let best = null;
    let bestD = 6;
    for (const ev of this.events) {
      const d = Math.abs(this.xOf(Date.parse(ev.timestamp)) - x);
      if (d < bestD) { best = ev; bestD = d; }
    }
    return best;
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const bandTop = EVENTS_H + 4;
    const bandH = h - AXIS_H - bandTop - 4;

    // The band: hatched where nothing is recorded.
    g.fillStyle = '#f1f3f6';
    g.fillRect(0, bandTop, w, bandH);
    g.save();
    g.beginPath();
    g.rect(0, bandTop, w, bandH);
    g.clip();
    g.strokeStyle = '#e2e6ec';
    g.lineWidth = 1;
    for (let x = -bandH; x < w; x += 8) {
      g.beginPath();
      g.moveTo(x, bandTop + bandH);
      g.lineTo(x + bandH, bandTop);
      g.stroke();
    }
    g.restore();

    // The future (right of now) is plain.
    const nowX = this.xOf(Date.now());
    if (nowX < w) {
      g.fillStyle = '#fafbfc';
      g.fillRect(Math.max(0, nowX), bandTop, w - Math.max(0, nowX), bandH);
    }

    const data = this.data;
    if (data) {
      if (data.resolution === 'buckets') {
        for (const b of data.buckets) {
          if (!b.fragments) continue;
          const x0 = this.xOf(Date.parse(b.start));
          const x1 = this.xOf(Date.parse(b.end));
          g.fillStyle = `rgba(31, 111, 235, ${0.35 + 0.65 * Math.min(1, b.coverage)})`;
          g.fillRect(x0, bandTop, Math.max(1, x1 - x0 + 0.5), bandH);
        }
      } else {
        g.fillStyle = '#1f6feb';
        for (const r of data.ranges) {
          const x0 = this.xOf(Date.parse(r.start));
          const x1 = this.xOf(Date.parse(r.end));
          g.fillRect(x0, bandTop, Math.max(1.5, x1 - x0), bandH);
        }
      }
    }

    if (data && !data.ranges.length) {
      g.font = '13px system-ui, sans-serif';
      g.fillStyle = '#6b7485';
      g.textBaseline = 'middle';
      const msg = 'No recordings in this range';
      g.fillText(msg, (w - g.measureText(msg).width) / 2, bandTop + bandH / 2);
    }

    // Selection.
    if (this.selection) {
      const x0 = this.xOf(this.selection.start);
      const x1 = this.xOf(this.selection.end);
      g.fillStyle = 'rgba(245, 158, 11, 0.25)';
      g.fillRect(x0, 0, x1 - x0, h - AXIS_H);
      g.fillStyle = '#d97706';
      g.fillRect(x0 - 1, 0, 2, h - AXIS_H);
      g.fillRect(x1 - 1, 0, 2, h - AXIS_H);
    }

    // Events: small diamonds above the band.
    for (const ev of this.events) {
      const x = this.xOf(Date.parse(ev.timestamp));
      if (x < -5 || x > w + 5) continue;
      g.fillStyle = colorOf(ev.type || '');
      g.beginPath();
      g.moveTo(x, 2);
      g.lineTo(x + 5, EVENTS_H / 2 + 1);
      g.lineTo(x, EVENTS_H);
      g.lineTo(x - 5, EVENTS_H / 2 + 1);
      g.closePath();
      g.fill();
    }

    // Axis.
    const span = this.end - this.start;
    const step = STEPS.find((s) => (s / span) * w >= 90) || STEPS[STEPS.length - 1];
    const tz = new Date().getTimezoneOffset() * 60_000;
    g.fillStyle = '#6b7485';
    g.strokeStyle = '#c9cfd8';
    g.font = '11px system-ui, sans-serif';
    g.textBaseline = 'top';
    const axisY = h - AXIS_H;
    g.fillStyle = '#fff';
    g.fillRect(0, axisY, w, AXIS_H);
    g.beginPath();
    g.moveTo(0, axisY + 0.5);
    g.lineTo(w, axisY + 0.5);
    g.stroke();
    g.fillStyle = '#6b7485';
    const first = Math.ceil((this.start - tz) / step) * step + tz;
    for (let t = first; t <= this.end; t += step) {
      const x = Math.round(this.xOf(t)) + 0.5;
      g.beginPath();
      g.moveTo(x, axisY);
      g.lineTo(x, axisY + 5);
      g.stroke();
      const d = new Date(t);
      let label;
      if (step >= 86_400_000) label = d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
      else if (d.getHours() === 0 && d.getMinutes() === 0 && d.getSeconds() === 0) label = d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
      else if (step >= 60_000) label = clock(t).slice(0, 5);
      else label = clock(t);
      const tw = g.measureText(label).width;
      if (x - tw / 2 > 0 && x + tw / 2 < w) g.fillText(label, x - tw / 2, axisY + 7);
    }

    // Now line.
    if (nowX >= 0 && nowX <= w) {
      g.fillStyle = '#2e7d32';
      g.fillRect(nowX - 1, bandTop - 2, 2, bandH + 4);
    }
    // Playhead.
    if (this.playhead !== null && this.playhead !== undefined) {
      const x = this.xOf(this.playhead);
      if (x >= 0 && x <= w) {
        g.fillStyle = '#e5484d';
        g.fillRect(x - 1, 0, 2, h - AXIS_H);
        g.beginPath();
        g.moveTo(x - 5, 0);
        g.lineTo(x + 5, 0);
        g.lineTo(x, 6);
        g.fill();
      }
    }
    // Hover cursor.
    if (this.hover && !this.drag) {
      g.fillStyle = 'rgba(29, 36, 48, 0.35)';
      g.fillRect(Math.round(this.hover.x), bandTop, 1, bandH);
    }
  }
}
