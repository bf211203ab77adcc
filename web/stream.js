// A stream's page: the player (live with a latency readout, or replay of a recorded range), the
// replay timeline (recorded ranges, gaps, events; zoom from minutes to days; click or drag to
// play; download a clip of the selection), frame grab, the stream's events and its fragments.

import { api, iso, playbackSigner, qs, recentBitrate, streamPath } from './api.js';
import { ago, bitrate, bytes, clock, copyButton, dateTime, duration, el, pushCommand, retention } from './format.js';
import { Player } from './player.js';
import { setConnected } from './status.js';
import { EventsPanel } from './stream-events.js';
import { FragmentsPanel } from './stream-fragments.js';
import { FrameGrab } from './stream-frame.js';
import { Timeline } from './timeline.js';

const POLL_MS = 2000;
const ZOOMS = [['5m', 5 * 60e3], ['15m', 15 * 60e3], ['1h', 3600e3], ['6h', 6 * 3600e3], ['1d', 86400e3], ['7d', 7 * 86400e3], ['30d', 30 * 86400e3]];
/** Longest range a click on the timeline plays (a longer recording is played in pieces). */
const CLICK_PLAY_MS = 3600e3;

export function renderStream(root, name, params) {
  const base = streamPath(name);
  // The page's state, in one place: the stream's description (polled), whether the page is
  // gone, whether the timeline follows now, the selected range, the recent bitrate, and timers.
  const page = { desc: null, stopped: false, follow: true, selection: null, rate: null, timers: {} };
  // Players, the clip link and frame grabs carry a playback-session token, so they work when
  // the server requires credentials (they cannot send headers).
  const signer = playbackSigner(name);
  let sign = (url) => url;
  signer.then((s) => { sign = s; frame.sign = s; });

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
  const frame = new FrameGrab(base, name,
    () => player.playingDate() ?? (page.desc?.latestProducerTimestamp ? Date.parse(page.desc.latestProducerTimestamp) : null),
    (message) => { showBanner(message); setTimeout(() => showBanner(null), 5000); });
  const grabBtn = frame.button;
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
    onclick: () => { page.follow = true; timeline.setView(Date.now() - span, Date.now() + span * 0.02); },
  }, label));
  const fitBtn = el('button#fit.seg', { type: 'button', title: 'Everything stored', onclick: fitAll }, 'All');
  const toolbar = el('div.toolbar', {},
    el('div.segmented', {}, el('button.seg', { type: 'button', title: 'Earlier', onclick: () => { page.follow = false; timeline.pan(-0.5); } }, '◀'),
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
    onView: (s, e) => { page.follow = e >= Date.now() - (e - s) * 0.05; scheduleFetch(); },
    onPick: pickTime,
    onSelect: selectRange,
    onHover: (text) => { hoverInfo.textContent = text ?? 'Click to play from a moment · drag to select a range · wheel to zoom · drag the time axis to pan'; },
  });

  // ---- events and fragments -----------------------------------------------------------------
  const events = new EventsPanel(base, pickTime);
  const fragments = new FragmentsPanel(base);
  const refreshFragments = () => { if (!page.stopped) fragments.refresh(page.selection, page.desc); };

  root.append(head, stats, banner,
    el('div.stream-grid', {}, playerCard, events.card),
    timelineCard, fragments.card, frame.dialog);

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
    if (!page.desc) return;
    if (!page.desc.fragmentCount) {
      setOverlay({
        title: 'No video yet',
        text: 'This stream has no recorded media. Push fragmented MP4 to it and the live picture appears here by itself:',
        code: pushCommand(name),
      });
    } else {
      const last = Date.parse(page.desc.latestProducerTimestamp);
      setOverlay({
        title: 'Producer offline',
        text: `Nothing is being pushed right now. The last fragment arrived ${ago(page.desc.latestServerTimestamp)}. Pick a moment on the timeline, or:`,
        actions: [el('button.primary', { type: 'button', onclick: () => playRange(Math.max(Date.parse(page.desc.earliestProducerTimestamp), last - 60e3), last + 5e3) }, 'Play the last minute')],
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
          page.desc?.live && s.mode === 'replay' ? el('button.primary', { type: 'button', onclick: goLive }, 'Go live') : null],
      });
    } else if (s.kind === 'ended' && s.mode === 'replay') {
      setOverlay({
        title: 'End of the range', tone: 'soft',
        actions: [el('button', { type: 'button', onclick: () => playRange(player.range.start, player.range.end) }, 'Replay'),
          page.desc?.live ? el('button.primary', { type: 'button', onclick: goLive }, 'Go live') : null],
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
    jumpLive.disabled = !page.desc?.live && m !== 'live';
  }

  function goLive() {
    if (!page.desc?.live && page.desc) { idleOverlay(); return; }
    signer.then((s) => { if (!page.stopped) { player.playLive(s(`${base}/hls/master.m3u8`)); updateMode(); } });
    updateMode();
  }

  function playRange(start, end) {
    const url = `${base}/hls/master.m3u8${qs({ mode: 'on_demand', start: iso(start), end: iso(end) })}`;
    signer.then((s) => { if (!page.stopped) { player.playRange(s(url), { start, end }); updateMode(); } });
    updateMode();
  }

  jumpLive.onclick = () => {
    if (player.mode === 'live') player.seekToLive();
    else goLive();
  };

  function pickTime(t) {
    const data = timeline.data;
    const latest = page.desc?.latestProducerTimestamp ? Date.parse(page.desc.latestProducerTimestamp) : null;
    if (page.desc?.live && latest !== null && t >= latest - 2000) { goLive(); return; }
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
    page.selection = sel && sel.end - sel.start >= 500 ? sel : null;
    if (!page.selection) {
      selInfo.hidden = true;
      clipLink.classList.add('disabled');
      clipLink.setAttribute('aria-disabled', 'true');
      clipLink.removeAttribute('href');
      refreshFragments();
      return;
    }
    const { start, end } = page.selection;
    const clipUrl = `${base}/clip.mp4${qs({ start: iso(start), end: iso(end) })}`;
    clipLink.href = sign(clipUrl);
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
    const since = page.desc.earliestProducerTimestamp ? Date.parse(page.desc.earliestProducerTimestamp) : now;
    const span = Math.min(15 * 60e3, Math.max(60e3, (now - since) * 1.1));
    page.follow = true;
    timeline.setView(now - span * 0.95, now + span * 0.05);
  }

  function fitAll() {
    if (!page.desc?.earliestProducerTimestamp) return;
    const s = Date.parse(page.desc.earliestProducerTimestamp);
    const e = page.desc.live ? Date.now() : Date.parse(page.desc.latestProducerTimestamp);
    const pad = Math.max(5000, (e - s) * 0.04);
    page.follow = !!page.desc.live;
    timeline.setView(s - pad, e + pad);
  }

  frame.probe().then((supported) => { if (!page.stopped) grabBtn.hidden = !supported; });

  // ---- data ---------------------------------------------------------------------------------

  function renderStats() {
    const d = page.desc;
    statePill.className = `pill ${d.live ? 'live' : 'idle'}`;
    statePill.textContent = d.live ? 'Live' : d.fragmentCount ? 'Producer offline' : 'No data yet';
    statePill.title = d.producer ? `${d.producer.protocol} from ${d.producer.remoteAddr}, since ${new Date(d.producer.connectedAt).toLocaleString()}` : '';
    const stat = (label, value, title) => el('div.stat', { title }, el('span.k', {}, label), el('span.v', {}, value));
    grabBtn.disabled = !d.fragmentCount;
    stats.replaceChildren(...[
      stat('Bitrate', d.live ? bitrate(page.rate) : '—', 'Media bitrate of the last 10 s'),
      stat('Stored', bytes(d.bytesStored)),
      stat('Fragments', d.fragmentCount.toLocaleString()),
      stat('Retention', retention(d)),
      stat('Recorded since', d.earliestProducerTimestamp ? dateTime(Date.parse(d.earliestProducerTimestamp)) : '—'),
      stat('Last fragment', ago(d.latestServerTimestamp), d.latestServerTimestamp ? new Date(d.latestServerTimestamp).toLocaleString() : ''),
      d.producer ? stat('Producer', `${d.producer.protocol} · ${d.producer.remoteAddr}`) : null,
    ].filter(Boolean));
  }

  async function poll() {
    clearTimeout(page.timers.poll);
    try {
      const wasLive = page.desc?.live;
      page.desc = await api(base);
      setConnected(true);
      if (banner.dataset.kind === 'poll') { showBanner(null); delete banner.dataset.kind; }
      page.rate = page.desc.live ? await recentBitrate(name).catch(() => page.rate) : null;
      if (page.stopped) return;
      renderStats();
      if (!wasLive && wasLive !== false && !params.get('start')) initialView();
      if (!player.mode) {
        if (page.desc.live) goLive();
        else idleOverlay();
      } else if (page.desc.live && !wasLive && player.mode === 'live') {
        goLive();
      }
      updateMode();
      if (page.follow) {
        const span = timeline.end - timeline.start;
        timeline.setView(Date.now() - span * 0.95, Date.now() + span * 0.05, false);
        scheduleFetch(0);
      }
      if (!page.selection) refreshFragments();
    } catch (e) {
      if (e.status === 404) {
        player.destroy();
        root.replaceChildren(el('div.empty', {}, el('div.empty-icon', {}, '?'), el('h2', {}, `No stream “${name}”`),
          el('p', {}, 'It may have been deleted.'), el('a.button.primary', { href: '#/' }, 'All streams')));
        page.stopped = true;
        return;
      }
      setConnected(e.status !== 0);
      banner.dataset.kind = 'poll';
      showBanner(e.status === 0 ? 'Cannot reach the Sluice server; retrying…' : `Could not load the stream: ${e.message}`);
    }
    if (!page.stopped) page.timers.poll = setTimeout(poll, POLL_MS);
  }

  function scheduleFetch(delay = 150) {
    clearTimeout(page.timers.fetch);
    page.timers.fetch = setTimeout(fetchTimeline, delay);
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
      const [data, evs] = await Promise.all([
        api(`${base}/timeline${qs({ start: iso(start), end: iso(end), buckets })}`),
        events.fetch(start, end),
      ]);
      if (seq !== fetchSeq || page.stopped) return;
      timeline.setData(data, evs);
      const recorded = data.ranges.reduce((a, r) => a + r.durationMs, 0);
      // Gaps between recordings (not the time before the first or after the last one).
      const first = data.ranges.length ? data.ranges[0].start : null;
      const last = data.ranges.length ? data.ranges[data.ranges.length - 1].end : null;
      const inner = data.gaps.filter((g) => first !== null && g.start >= first && g.end <= last).length;
      rangeNote.textContent = data.fragmentCount
        ? `${duration(recorded)} recorded in view${inner ? ` · ${inner} gap${inner > 1 ? 's' : ''}` : ''}${data.resolution === 'buckets' ? ' · overview' : ''}`
        : 'No data in this range — zoom out or pick another time';
      events.render(evs, timeline.end - timeline.start);
    } catch (e) {
      if (seq === fetchSeq) rangeNote.textContent = `Timeline unavailable: ${e.message}`;
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
    page.follow = false;
    const pad = (pe - ps) * 0.1;
    timeline.setView(ps - pad, pe + pad, false);
    timeline.setSelection({ start: ps, end: pe });
  } else {
    timeline.setView(Date.now() - 15 * 60e3, Date.now() + 15e3, false);
  }
  scheduleFetch(0);
  poll();
  page.timers.tick = setInterval(tick, 250);

  return () => {
    page.stopped = true;
    clearTimeout(page.timers.poll);
    clearTimeout(page.timers.fetch);
    clearInterval(page.timers.tick);
    timeline.destroy();
    player.destroy();
  };
}
