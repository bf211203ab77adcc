// The browser half of the interop matrix (tests/interop.rs): plays each job of JOBS (JSON:
// [{id, player: 'hls.js' | 'shaka' | 'dash.js' | 'native', url, rate?}]) to its end in headless
// Chromium (Shaka plays HLS and DASH by the URL; dash.js plays DASH) and prints
// one JSON line per job: decoded frames (getVideoPlaybackQuality), the buffered ranges, where
// playback began, and every error the player reported. 'native' plays a source file (a path,
// served to the page by playwright) in Chromium's own <video>, the count the others must match.
// The Rust side judges; this script only fails when a job cannot run at all.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { baseUrl, hlsPage, judgeHlsErrors, repoRoot, waitFor, withBrowser } from './lib.mjs';

const base = baseUrl();
const jobs = JSON.parse(process.env.JOBS || '[]');
const shakaJs = join(repoRoot, 'node_modules/shaka-player/dist/shaka-player.compiled.js');
const dashJs = join(repoRoot, 'node_modules/dashjs/dist/modern/umd/dash.all.min.js');

async function play(context, job) {
  const page = await hlsPage(context, base);
  if (job.player === 'shaka') await page.addScriptTag({ path: shakaJs });
  if (job.player === 'dash.js') await page.addScriptTag({ path: dashJs });
  let url = job.url;
  if (job.player === 'native') {
    const bytes = readFileSync(job.url);
    url = `${base}/__source__/${job.id}.mp4`;
    await page.route(url, (route) => route.fulfill({ status: 200, contentType: 'video/mp4', body: bytes }));
  }
  await page.evaluate(async ({ player, url, rate }) => {
    const v = document.getElementById('v');
    window.errors = [];
    window.ended = false;
    // Twice real time (job.rate) keeps the matrix short; decoded-frame counts do not depend on
    // the rate. A playlist that grows in real time is played at real time (rate 1).
    v.defaultPlaybackRate = rate;
    v.addEventListener('playing', () => { v.playbackRate = rate; });
    v.addEventListener('ended', () => { window.ended = true; });
    v.addEventListener('error', () => window.errors.push({ media: v.error && v.error.message }));
    v.addEventListener('playing', () => { if (window.firstTime === undefined) window.firstTime = v.currentTime; });
    if (player === 'hls.js') {
      const hls = new window.Hls();
      hls.on(window.Hls.Events.ERROR, (_, d) => window.errors.push(window.recordHlsError(d, hls)));
      hls.on(window.Hls.Events.MANIFEST_PARSED, () => v.play());
      hls.loadSource(url);
      hls.attachMedia(v);
    } else if (player === 'shaka') {
      window.shaka.polyfill.installAll();
      const p = new window.shaka.Player();
      await p.attach(v);
      p.addEventListener('error', (e) => window.errors.push({ shaka: e.detail.code, data: JSON.stringify(e.detail.data).slice(0, 300) }));
      p.load(url).then(() => v.play()).catch((e) => window.errors.push({ shaka: e.code, data: JSON.stringify(e.data).slice(0, 300) }));
    } else if (player === 'dash.js') {
      const p = window.dashjs.MediaPlayer().create();
      p.on(window.dashjs.MediaPlayer.events.ERROR, (e) => window.errors.push({ dashjs: JSON.stringify(e.error || e).slice(0, 300) }));
      // What the player did, for the message of a run that does not reach its end.
      window.trace = [];
      const note = (what) => { if (window.trace.length < 50) window.trace.push(`${what}@${v.currentTime.toFixed(3)}`); };
      for (const name of ['PLAYBACK_PAUSED', 'PLAYBACK_WAITING', 'PLAYBACK_STALLED', 'PLAYBACK_ENDED', 'PLAYBACK_SEEKING', 'GAP_CAUSED_INTERNAL_SEEK', 'GAP_CAUSED_SEEK_TO_PERIOD_END', 'BUFFER_EMPTY']) {
        const ev = window.dashjs.MediaPlayer.events[name];
        if (ev) p.on(ev, () => note(name));
      }
      for (const ev of ['pause', 'waiting', 'stalled', 'seeking']) v.addEventListener(ev, () => note(`video:${ev}`));
      // dash.js also ends playback itself: its end-of-stream check (every 200 ms) can see the end
      // before the element fires `ended`; it then seeks back half a second and pauses, and
      // `ended` never comes. Its PLAYBACK_ENDED is the end of this run; the frames decoded are
      // counted then, before the seek back decodes some again.
      p.on(window.dashjs.MediaPlayer.events.PLAYBACK_ENDED, (e) => {
        if (e && e.isLast === false) return;
        if (window.endFrames === undefined) window.endFrames = v.getVideoPlaybackQuality().totalVideoFrames;
        window.ended = true;
      });
      p.initialize(v, url, true);
    } else {
      v.src = url;
      v.play();
    }
  }, { player: job.player, url, rate: job.rate ?? 2 });
  try {
    await waitFor(`${job.id} (${job.player}) to play to its end`, () => page.evaluate(() => window.ended || window.errors.some((e) => e.fatal || e.shaka || e.media || e.dashjs)), 90_000, 250);
  } catch (e) {
    // Where the player stopped, so a failure says more than "timed out".
    const state = await page.evaluate(() => {
      const v = document.getElementById('v');
      const b = [];
      for (let i = 0; i < v.buffered.length; i++) b.push([v.buffered.start(i), v.buffered.end(i)]);
      return { currentTime: v.currentTime, duration: v.duration, paused: v.paused, readyState: v.readyState, buffered: b, errors: window.errors, trace: window.trace };
    });
    throw new Error(`${e.message}; the player's state: ${JSON.stringify(state)}`);
  }
  const out = await page.evaluate(() => {
    const v = document.getElementById('v');
    const b = [];
    for (let i = 0; i < v.buffered.length; i++) b.push([v.buffered.start(i), v.buffered.end(i)]);
    return { frames: window.endFrames ?? v.getVideoPlaybackQuality().totalVideoFrames, buffered: b, firstTime: window.firstTime ?? null, errors: window.errors };
  });
  // hls.js's errors are judged here, by the one rule the other browser tests use: `errors` keeps
  // every one that fails the test; `starved` the stalls proven to be the browser's.
  const { bad, starved } = judgeHlsErrors(out.errors.filter((e) => e.details !== undefined));
  out.errors = [...out.errors.filter((e) => e.details === undefined), ...bad];
  out.starved = starved;
  await page.close();
  return out;
}

await withBrowser('players', async (context) => {
  for (const job of jobs) {
    const r = await play(context, job);
    console.log(JSON.stringify({ id: job.id, player: job.player, ...r }));
  }
}, { timeoutMs: 20 * 60_000 });
