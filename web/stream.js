// A stream's page: the player (live with a latency readout, or replay of a recorded range), the
// replay timeline (recorded ranges, gaps, events; zoom from minutes to days; click or drag to
// play; download a clip of the selection), frame grab, the stream's events and its fragments.

import { api, iso, qs, recentBitrate, streamPath } from './api.js';
import { setConnected } from './status.js';
import { ago, bitrate, bytes, clock, copyButton, dateTime, duration, el, pushCommand, retention } from './format.js';
import { Player } from './player.js';
import { Timeline } from './timeline.js';

const POLL_MS = 2000;
const ZOOMS = [['5m', 5 * 60e3], ['15m', 15 * 60e3], ['1h', 3600e3], ['6h', 6 * 3600e3], ['1d', 86400e3], ['7d', 7 * 86400e3], ['30d', 30 * 86400e3]];
/** Longest range a click on the timeline plays (a longer recording is played in pieces). */
const CLICK_PLAY_MS = 3600e3;

export function renderStream(root, name, params) {
  const base = streamPath(name);
  let desc = null;
  let stopped = false;
  let pollTimer = null;
  let tickTimer = null;
  let fetchTimer = null;
  let follow = true;
  let selection = null;
  let rate = null;
  let frameSupported = false;

  // ---- header -------------------------------------------------------------------------------
  const statePill = el('span.pill.idle', {}, '…');
  const stats = el('div.stats');
  const delBtn = el('button.ghost.danger.small', { type: 'button' }, 'Delete stream');
  const head = el('div.page-head', {},
    el('h1.stream-title', {}, name), statePill, el('span.spacer'), delBtn);
  const banner = el('div.banner.error', { hidden: true, role: 'alert' });

  // ---- player -------------------------------------------------------------------------------
  const video = el('video#video', { muted: true, playsInline: true, controls: true, preload: 'auto' });
  video.muted = true;
  const overlay = el('div.overlay', { hidden: true });
  const modeBadge = el('span.badge', { hidden: true });
  const latency = el('span#latency.latency', { title: 'Distance between the frame on screen (its EXT-X-PROGRAM-DATE-TIME) and this computer\'s clock' });
  const jumpLive = el('button#jump-live.small', { type: 'button', title: 'Play the live edge' }, 'Jump to live');
  const grabBtn = el('button#grab-frame.small.ghost', { type: 'button', hidden: true, title: 'Save the frame on screen as a JPEG' }, 'Grab frame');
  const clipLink = el('a#download-clip.button.small.ghost.disabled', { 'aria-disabled': 'true', title: 'Select a range on the timeline first' }, 'Download clip');
  const player = new Player(video, { onStatus: onPlayerStatus });
  const playerCard = el('section.card.player-card', {},
    el('div.video-wrap', {}, video, overlay, modeBadge),
    el('div.controls', {}, latency, el('span.spacer'), jumpLive, grabBtn, clipLink));

  // ---- timeline -----------------------------------------------------------------------------
  const canvas = el('canvas#timeline.timeline-canvas', { 'aria-label': 'Recorded time line' });
  const hoverInfo = el('span.muted.hover-info', {}, 'Click to play from a moment · drag to select a range · wheel to zoom · drag the time axis to pan');
  const windowLabel = el('span.window-label');
  const zoomBtns = ZOOMS.map(([label, span]) => el('button.seg', {
    type: 'button',
    onclick: () => { follow = true; timeline.setView(Date.now() - span, Date.now() + span * 0.02); },
  }, label));
  const fitBtn = el('button#fit.seg', { type: 'button', title: 'Everything stored', onclick: fitAll }, 'All');
  const toolbar = el('div.toolbar', {},
    el('div.segmented', {}, el('button.seg', { type: 'button', title: 'Earlier', onclick: () => { follow = false; timeline.pan(-0.5); } }, '◀'),
      el('button.seg', { type: 'button', title: 'Zoom out', onclick: () => timeline.zoom(2) }, '−'),
      el('button.seg', { type: 'button', title: 'Zoom in', onclick: () => timeline.zoom(0.5) }, '+'),
      el('button.seg', { type: 'button', title: 'Later', onclick: () => timeline.pan(0.5) }, '▶')),
    el('div.segmented', {}, ...zoomBtns, fitBtn),
    el('span.spacer'), windowLabel);
  const selInfo = el('div.selection', { hidden: true });
  const rangeNote = el('div.range-note.muted');
  const timelineCard = el('section.card.timeline-card', {},
    el('div.card-head', {}, el('h2', {}, 'Recordings'), rangeNote),
    toolbar, canvas,
    el('div.legend', {}, el('span.swatch.rec'), 'recorded', el('span.swatch.gap'), 'no data',
      el('span.swatch.ev'), 'event', el('span.swatch.head'), 'playing', el('span.swatch.now'), 'now', el('span.spacer'), hoverInfo),
    selInfo);

  const timeline = new Timeline(canvas, {
    onView: (s, e) => { follow = e >= Date.now() - (e - s) * 0.05; scheduleFetch(); },
    onPick: pickTime,
    onSelect: selectRange,
    onHover: (text) => { hoverInfo.textContent = text ?? 'Click to play from a moment · drag to select a range · wheel to zoom · drag the time axis to pan'; },
  });

  // ---- events and fragments -----------------------------------------------------------------
  const eventsList = el('ul.events');
  const eventsNote = el('span.muted');
  const fragBody = el('tbody');
  const fragNote = el('span.muted');
  const eventsCard = el('section.card.events-card', {}, el('div.card-head', {}, el('h2', {}, 'Events'), eventsNote), eventsList);
  const fragCard = el('section.card.flush-body', {},
    el('div.card-head', {}, el('h2', {}, 'Fragments'), fragNote),
    el('div.table-wrap.fragments-scroll', {}, el('table.fragments', {},
      el('thead', {}, el('tr', {}, ['#', 'Producer time', 'Server time', 'Duration', 'Size', 'Key', ''].map((h, i) => el('th', { class: i === 3 || i === 4 ? 'num' : null }, h)))),
      fragBody)));

  const frameDialog = el('dialog.frame-dialog');

  root.append(head, stats, banner,
    el('div.stream-grid', {}, playerCard, eventsCard),
    timelineCard, fragCard, frameDialog);

  // ---- behaviour ----------------------------------------------------------------------------

  delBtn.onclick = async () => {
    if (!confirm(`Delete stream “${name}” and all of its recorded media? This cannot be undone.`)) return;
    try {
      await api(base, { method: 'DELETE' });
      location.hash = '#/';
    } catch (e) { showBanner(`Could not delete: ${e.message}`); }
  };

  function showBanner(text) {
    banner.hidden = !text;
    banner.textContent = text || '';
  }

  let overlayKind = null;
  function setOverlay(o) {
    overlayKind = o?.kind ?? null;
    if (!o) { overlay.hidden = true; return; }
    overlay.hidden = false;
    overlay.className = `overlay ${o.tone || ''}`;
    overlay.replaceChildren(el('div.overlay-box', {},
      o.spinner ? el('div.spinner') : null,
      el('h3', {}, o.title),
      o.text ? el('p', {}, o.text) : null,
      o.code ? el('div.code.dark', {}, el('pre', {}, o.code), copyButton(o.code.replaceAll('\\\n  ', ''))) : null,
      o.actions ? el('div.actions', {}, ...o.actions) : null));
  }

  function idleOverlay() {
    if (!desc) return;
    if (!desc.fragmentCount) {
      setOverlay({
        title: 'No video yet',
        text: 'This stream has no recorded media. Push fragmented MP4 to it and the live picture appears here by itself:',
        code: pushCommand(name),
      });
    } else {
      const last = Date.parse(desc.latestProducerTimestamp);
      setOverlay({
        title: 'Producer offline',
        text: `Nothing is being pushed right now. The last fragment arrived ${ago(desc.latestServerTimestamp)}. Pick a moment on the timeline, or:`,
        actions: [el('button.primary', { type: 'button', onclick: () => playRange(Math.max(Date.parse(desc.earliestProducerTimestamp), last - 60e3), last + 5e3) }, 'Play the last minute')],
      });
    }
  }

  function onPlayerStatus(s) {
    if (s.kind === 'playing') setOverlay(null);
    else if (s.kind === 'loading') setOverlay({ kind: 'loading', title: s.mode === 'live' ? 'Connecting to live…' : 'Loading recording…', spinner: true, tone: 'soft' });
    else if (s.kind === 'paused') setOverlay({ title: s.message, actions: [el('button.primary', { type: 'button', onclick: () => video.play() }, 'Play')], tone: 'soft' });
    else if (s.kind === 'error') {
      setOverlay({
        title: s.mode === 'replay' ? 'Cannot play this range' : 'Live playback interrupted',
        text: s.message, tone: 'bad',
        actions: [el('button', { type: 'button', onclick: () => (s.mode === 'replay' && player.range ? playRange(player.range.start, player.range.end) : goLive()) }, 'Retry'),
          desc?.live && s.mode === 'replay' ? el('button.primary', { type: 'button', onclick: goLive }, 'Go live') : null],
      });
    } else if (s.kind === 'ended' && s.mode === 'replay') {
      setOverlay({
        title: 'End of the range', tone: 'soft',
        actions: [el('button', { type: 'button', onclick: () => playRange(player.range.start, player.range.end) }, 'Replay'),
          desc?.live ? el('button.primary', { type: 'button', onclick: goLive }, 'Go live') : null],
      });
    }
    updateMode();
  }

  function updateMode() {
    const m = player.mode;
    modeBadge.hidden = !m;
    modeBadge.className = `badge ${m === 'live' ? 'live' : 'replay'}`;
    modeBadge.textContent = m === 'live' ? '● LIVE' : m === 'replay' && player.range
      ? `REPLAY ${dateTime(player.range.start)} → ${clock(player.range.end)}` : '';
    jumpLive.disabled = !desc?.live && m !== 'live';
  }

  function goLive() {
    if (!desc?.live && desc) { idleOverlay(); return; }
    player.playLive(`${base}/hls/master.m3u8`);
    updateMode();
  }

  function playRange(start, end) {
    player.playRange(`${base}/hls/master.m3u8${qs({ mode: 'on_demand', start: iso(start), end: iso(end) })}`, { start, end });
    updateMode();
  }

  jumpLive.onclick = () => {
    if (player.mode === 'live') player.seekToLive();
    else goLive();
  };

  function pickTime(t) {
    const data = timeline.data;
    const latest = desc?.latestProducerTimestamp ? Date.parse(desc.latestProducerTimestamp) : null;
    if (desc?.live && latest !== null && t >= latest - 2000) { goLive(); return; }
    let start = t;
    if (!timeline.recordedAt(t)) {
      const next = data?.ranges?.map((r) => Date.parse(r.start)).find((s) => s > t);
      if (next === undefined) {
        hoverInfo.textContent = `No recorded media at or after ${dateTime(t)}.`;
        return;
      }
      start = next;
    }
    playRange(start, Math.min(start + CLICK_PLAY_MS, Date.now()));
  }

  function selectRange(sel) {
    selection = sel && sel.end - sel.start >= 500 ? sel : null;
    if (!selection) {
      selInfo.hidden = true;
      clipLink.classList.add('disabled');
      clipLink.setAttribute('aria-disabled', 'true');
      clipLink.removeAttribute('href');
      refreshFragments();
      return;
    }
    const { start, end } = selection;
    const clipUrl = `${base}/clip.mp4${qs({ start: iso(start), end: iso(end) })}`;
    clipLink.href = clipUrl;
    clipLink.setAttribute('download', `${name}-${iso(start).replace(/[:.]/g, '-')}.mp4`);
    clipLink.classList.remove('disabled');
    clipLink.removeAttribute('aria-disabled');
    clipLink.title = `MP4 of ${dateTime(start)} → ${dateTime(end)}`;
    selInfo.hidden = false;
    selInfo.replaceChildren(
      el('span', {}, el('b', {}, 'Selection '), `${dateTime(start)} → ${dateTime(end)} (${duration(end - start)})`),
      el('span.spacer'),
      el('button.small.primary', { type: 'button', onclick: () => playRange(start, end) }, 'Play selection'),
      el('a.button.small', { href: clipUrl, download: `${name}-${iso(start).replace(/[:.]/g, '-')}.mp4` }, 'Download clip'),
      el('button.small.ghost', { type: 'button', onclick: () => timeline.setSelection(null) }, 'Clear'));
    playRange(start, end);
    refreshFragments();
  }

  /** The first view: the last 15 minutes, or less for a stream younger than that. */
  function initialView() {
    const now = Date.now();
    const since = desc.earliestProducerTimestamp ? Date.parse(desc.earliestProducerTimestamp) : now;
    const span = Math.min(15 * 60e3, Math.max(60e3, (now - since) * 1.1));
    follow = true;
    timeline.setView(now - span * 0.95, now + span * 0.05);
  }

  function fitAll() {
    if (!desc?.earliestProducerTimestamp) return;
    const s = Date.parse(desc.earliestProducerTimestamp);
    const e = desc.live ? Date.now() : Date.parse(desc.latestProducerTimestamp);
    const pad = Math.max(5000, (e - s) * 0.04);
    follow = !!desc.live;
    timeline.setView(s - pad, e + pad);
  }

  // Frame grab: offered when the server has the frames endpoint (a bad `at` is a 400 there; a
  // 404 that is not an API error means the route does not exist).
  (async () => {
    try {
      const r = await fetch(`${base}/frame.jpg?at=not-a-time`);
      let apiError = false;
      try { apiError = !!(await r.json()).error; } catch (_) { /* not JSON */ }
      frameSupported = !(r.status === 404 && !apiError) && r.status !== 405;
    } catch (_) { frameSupported = false; }
    if (!stopped) grabBtn.hidden = !frameSupported;
  })();

  grabBtn.onclick = async () => {
    const t = player.playingDate() ?? (desc?.latestProducerTimestamp ? Date.parse(desc.latestProducerTimestamp) : null);
    const at = t === null ? 'latest' : iso(t);
    grabBtn.disabled = true;
    try {
      const r = await fetch(`${base}/frame.jpg${qs({ at, timestamps: 'producer' })}`);
      if (!r.ok) {
        let msg = `${r.status}`;
        try { msg = (await r.json()).error.message; } catch (_) { /* not JSON */ }
        throw new Error(msg);
      }
      const url = URL.createObjectURL(await r.blob());
      const file = `${name}-${at.replace(/[:.]/g, '-')}.jpg`;
      frameDialog.replaceChildren(
        el('div.dialog-head', {}, el('b', {}, `Frame at ${t === null ? 'latest' : dateTime(t)}`), el('span.spacer'),
          el('a.button.small.primary', { href: url, download: file }, 'Download'),
          el('button.small.ghost', { type: 'button', onclick: () => frameDialog.close() }, 'Close')),
        el('img', { src: url, alt: `Frame of ${name}` }));
      frameDialog.onclose = () => URL.revokeObjectURL(url);
      frameDialog.showModal();
    } catch (e) {
      showBanner(`Could not grab a frame: ${e.message}`);
      setTimeout(() => showBanner(null), 5000);
    } finally {
      grabBtn.disabled = false;
    }
  };

  // ---- data ---------------------------------------------------------------------------------

  function renderStats() {
    const d = desc;
    statePill.className = `pill ${d.live ? 'live' : 'idle'}`;
    statePill.textContent = d.live ? 'Live' : d.fragmentCount ? 'Producer offline' : 'No data yet';
    statePill.title = d.producer ? `${d.producer.protocol} from ${d.producer.remoteAddr}, since ${new Date(d.producer.connectedAt).toLocaleString()}` : '';
    const stat = (label, value, title) => el('div.stat', { title }, el('span.k', {}, label), el('span.v', {}, value));
    grabBtn.disabled = !d.fragmentCount;
    stats.replaceChildren(...[
      stat('Bitrate', d.live ? bitrate(rate) : '—', 'Media bitrate of the last 10 s'),
      stat('Stored', bytes(d.bytesStored)),
      stat('Fragments', d.fragmentCount.toLocaleString()),
      stat('Retention', retention(d)),
      stat('Recorded since', d.earliestProducerTimestamp ? dateTime(Date.parse(d.earliestProducerTimestamp)) : '—'),
      stat('Last fragment', ago(d.latestServerTimestamp), d.latestServerTimestamp ? new Date(d.latestServerTimestamp).toLocaleString() : ''),
      d.producer ? stat('Producer', `${d.producer.protocol} · ${d.producer.remoteAddr}`) : null,
    ].filter(Boolean));
  }

  async function poll() {
    clearTimeout(pollTimer);
    try {
      const wasLive = desc?.live;
      desc = await api(base);
      setConnected(true);
      if (banner.dataset.kind === 'poll') { showBanner(null); delete banner.dataset.kind; }
      rate = desc.live ? await recentBitrate(name).catch(() => rate) : null;
      if (stopped) return;
      renderStats();
      if (!wasLive && wasLive !== false && !params.get('start')) initialView();
      if (!player.mode) {
        if (desc.live) goLive();
        else idleOverlay();
      } else if (desc.live && !wasLive && player.mode === 'live') {
        goLive();
      }
      updateMode();
      if (follow) {
        const span = timeline.end - timeline.start;
        timeline.setView(Date.now() - span * 0.95, Date.now() + span * 0.05, false);
        scheduleFetch(0);
      }
      if (!selection) refreshFragments();
    } catch (e) {
      if (e.status === 404) {
        player.destroy();
        root.replaceChildren(el('div.empty', {}, el('div.empty-icon', {}, '?'), el('h2', {}, `No stream “${name}”`),
          el('p', {}, 'It may have been deleted.'), el('a.button.primary', { href: '#/' }, 'All streams')));
        stopped = true;
        return;
      }
      setConnected(e.status !== 0);
      banner.dataset.kind = 'poll';
      showBanner(e.status === 0 ? 'Cannot reach the Sluice server; retrying…' : `Could not load the stream: ${e.message}`);
    }
    if (!stopped) pollTimer = setTimeout(poll, POLL_MS);
  }

  function scheduleFetch(delay = 150) {
    clearTimeout(fetchTimer);
    fetchTimer = setTimeout(fetchTimeline, delay);
  }

  /** Events stamped on either clock (producers may send server-clock events), in time order. */
  async function fetchEvents(start, end) {
    const lists = await Promise.all(['producer', 'server'].map((timestamps) =>
      api(`${base}/events${qs({ start: iso(start), end: iso(end), timestamps, limit: 1000 })}`)
        .then((r) => r.events).catch(() => [])));
    const seen = new Set();
    return lists.flat()
      .filter((e) => !seen.has(e.sequenceNumber) && seen.add(e.sequenceNumber))
      .sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
  }

  let fetchSeq = 0;
  async function fetchTimeline() {
    const seq = ++fetchSeq;
    const start = timeline.start;
    const end = Math.min(timeline.end, Date.now() + 1000);
    windowLabel.textContent = `${dateTime(timeline.start)} → ${dateTime(timeline.end)} · ${duration(timeline.end - timeline.start)}`;
    if (end <= start) { timeline.setData({ ranges: [], gaps: [], buckets: [] }, []); return; }
    const buckets = Math.max(50, Math.min(1000, Math.floor(canvas.clientWidth / 3)));
    try {
      const [data, events] = await Promise.all([
        api(`${base}/timeline${qs({ start: iso(start), end: iso(end), buckets })}`),
        fetchEvents(start, end),
      ]);
      if (seq !== fetchSeq || stopped) return;
      timeline.setData(data, events);
      const recorded = data.ranges.reduce((a, r) => a + r.durationMs, 0);
      // Gaps between recordings (not the time before the first or after the last one).
      const first = data.ranges.length ? data.ranges[0].start : null;
      const last = data.ranges.length ? data.ranges[data.ranges.length - 1].end : null;
      const inner = data.gaps.filter((g) => first !== null && g.start >= first && g.end <= last).length;
      rangeNote.textContent = data.fragmentCount
        ? `${duration(recorded)} recorded in view${inner ? ` · ${inner} gap${inner > 1 ? 's' : ''}` : ''}${data.resolution === 'buckets' ? ' · overview' : ''}`
        : 'No data in this range — zoom out or pick another time';
      renderEvents(events);
    } catch (e) {
      if (seq === fetchSeq) rangeNote.textContent = `Timeline unavailable: ${e.message}`;
    }
  }

  function renderEvents(events) {
    const shown = events.slice(-50).reverse();
    const longView = timeline.end - timeline.start > 20 * 3600e3;
    eventsNote.textContent = events.length ? `${events.length} in view` : '';
    if (!shown.length) {
      eventsList.replaceChildren(el('li.empty-row', {}, 'No events in this range. Producers attach metadata with POST ', el('code', {}, `${base}/events`), '.'));
      return;
    }
    eventsList.replaceChildren(...shown.map((ev) => {
      const t = Date.parse(ev.timestamp);
      return el('li', { onclick: () => pickTime(t), title: 'Play from this event' },
        el('span.ev-time', { title: new Date(t).toLocaleString() }, longView ? dateTime(t) : clock(t, true)),
        el('span.ev-type', {}, ev.type),
        el('span.ev-data', {}, ev.data === null || ev.data === undefined ? '' : JSON.stringify(ev.data)));
    }));
  }

  let fragSeq = 0;
  async function refreshFragments() {
    const seq = ++fragSeq;
    try {
      let rows;
      if (selection) {
        const r = await api(`${base}/fragments${qs({ start: iso(selection.start), end: iso(selection.end), limit: 100 })}`);
        rows = r.fragments;
        fragNote.textContent = `${r.fragments.length}${r.next ? '+' : ''} in the selection`;
      } else if (desc?.latestProducerTimestamp) {
        const from = Date.parse(desc.latestProducerTimestamp) - 120e3;
        const r = await api(`${base}/fragments${qs({ start: iso(from), limit: 2000 })}`);
        rows = r.fragments.slice(-50).reverse();
        fragNote.textContent = 'newest 50';
      } else {
        rows = [];
        fragNote.textContent = '';
      }
      if (seq !== fragSeq || stopped) return;
      if (!rows.length) {
        fragBody.replaceChildren(el('tr', {}, el('td.empty-row', { colSpan: 7 }, selection ? 'No fragments in the selection.' : 'No fragments yet.')));
        return;
      }
      fragBody.replaceChildren(...rows.map((f) => el('tr', {},
        el('td.mono', {}, f.fragmentNumber),
        el('td.mono', {}, dateTime(Date.parse(f.producerTimestamp)) + `.${String(Date.parse(f.producerTimestamp) % 1000).padStart(3, '0')}`),
        el('td.mono', {}, clock(Date.parse(f.serverTimestamp), true)),
        el('td.num', {}, `${(f.durationMs / 1000).toFixed(3)} s`),
        el('td.num', {}, bytes(f.sizeBytes)),
        el('td', {}, el('span.tags', {}, f.keyframe ? el('span.tag.key', {}, 'key') : '', f.discontinuity ? el('span.tag.disc', { title: 'first fragment of a producer session or a new init segment' }, 'disc') : '')),
        el('td', {}, el('a.small-link', { href: `${base}/fragments/${f.fragmentNumber}/media`, title: 'The stored moof+mdat' }, '↓')))));
    } catch (e) {
      if (seq === fragSeq) fragNote.textContent = `Could not list fragments: ${e.message}`;
    }
  }

  // The picture is moving: a leftover "loading" overlay goes.
  video.addEventListener('timeupdate', () => {
    if (overlayKind === 'loading' && !video.paused && video.readyState >= 3) setOverlay(null);
  });

  function tick() {
    const t = player.playingDate();
    timeline.setPlayhead(t);
    const lat = player.latencyMs();
    if (player.mode === 'live' && lat !== null) {
      latency.textContent = `Latency ${(lat / 1000).toFixed(2)} s`;
      latency.className = `latency ${lat < 1500 ? 'good' : lat < 4000 ? 'ok' : 'bad'}`;
    } else if (player.mode === 'replay' && t !== null) {
      latency.textContent = `Playing ${dateTime(t)}`;
      latency.className = 'latency';
    } else {
      latency.textContent = player.mode === 'live' ? 'Latency —' : '';
      latency.className = 'latency';
    }
  }

  // Start: a deep link (#/streams/x?start=…&end=…) plays that range; otherwise live or idle.
  const ps = Date.parse(params.get('start') || '');
  const pe = Date.parse(params.get('end') || '');
  if (Number.isFinite(ps) && Number.isFinite(pe) && pe > ps) {
    follow = false;
    const pad = (pe - ps) * 0.1;
    timeline.setView(ps - pad, pe + pad, false);
    timeline.setSelection({ start: ps, end: pe });
  } else {
    timeline.setView(Date.now() - 15 * 60e3, Date.now() + 15e3, false);
  }
  scheduleFetch(0);
  poll();
  tickTimer = setInterval(tick, 250);

  return () => {
    stopped = true;
    clearTimeout(pollTimer);
    clearTimeout(fetchTimer);
    clearInterval(tickTimer);
    timeline.destroy();
    player.destroy();
  };
}
