// Live DASH in Chromium: dash.js and Shaka each play URL (a dynamic MPD, `mode=live`) for
// SECONDS seconds and report, as one JSON line per player: how far playback advanced, how far
// behind the newest listed media it played (latency to the live edge, from the player's own
// clock: dash.js getCurrentLiveLatency, Shaka's seekRange end), stalls (`waiting` events after
// playback began), and every error the player reported. The Rust side (tests/dash.rs) judges.

import { join } from 'node:path';
import { baseUrl, hlsPage, repoRoot, sleep, waitFor, withBrowser } from './lib.mjs';

const base = baseUrl();
const url = process.env.URL.startsWith('http') ? process.env.URL : `${base}${process.env.URL}`;
const seconds = Number(process.env.SECONDS_TO_PLAY || 12);
const scripts = {
  'dash.js': join(repoRoot, 'node_modules/dashjs/dist/modern/umd/dash.all.min.js'),
  shaka: join(repoRoot, 'node_modules/shaka-player/dist/shaka-player.compiled.js'),
};

async function play(context, player) {
  const page = await hlsPage(context, base);
  await page.addScriptTag({ path: scripts[player] });
  await page.evaluate(({ player, url }) => {
    const v = document.getElementById('v');
    window.errors = [];
    window.waiting = 0;
    v.addEventListener('error', () => window.errors.push({ media: v.error && v.error.message }));
    v.addEventListener('playing', () => { if (window.firstTime === undefined) window.firstTime = v.currentTime; });
    v.addEventListener('waiting', () => { if (window.firstTime !== undefined) window.waiting += 1; });
    if (player === 'dash.js') {
      const p = window.dashjs.MediaPlayer().create();
      p.on(window.dashjs.MediaPlayer.events.ERROR, (e) => window.errors.push({ dashjs: JSON.stringify(e.error || e).slice(0, 300) }));
      p.initialize(v, url, true);
      window.latency = () => p.getCurrentLiveLatency();
    } else {
      window.shaka.polyfill.installAll();
      const p = new window.shaka.Player();
      p.attach(v).then(() => p.load(url)).then(() => v.play())
        .catch((e) => window.errors.push({ shaka: e.code, data: JSON.stringify(e.data).slice(0, 300) }));
      p.addEventListener('error', (e) => window.errors.push({ shaka: e.detail.code, data: JSON.stringify(e.detail.data).slice(0, 300) }));
      window.latency = () => p.seekRange().end - v.currentTime;
      window.isLive = () => p.isLive();
    }
  }, { player, url });
  await waitFor(`${player} to start playing`, () => page.evaluate(() => window.firstTime !== undefined || window.errors.length > 0), 30_000);
  const start = await page.evaluate(() => document.getElementById('v').currentTime);
  await sleep(seconds * 1000);
  const out = await page.evaluate((start) => {
    const v = document.getElementById('v');
    return {
      advanced: v.currentTime - start,
      latency: window.latency(),
      live: window.isLive ? window.isLive() : true,
      frames: v.getVideoPlaybackQuality().totalVideoFrames,
      stalls: window.waiting,
      errors: window.errors,
    };
  }, start);
  await page.close();
  return out;
}

await withBrowser('dash-live', async (context) => {
  for (const player of ['dash.js', 'shaka']) {
    console.log(JSON.stringify({ player, ...(await play(context, player)) }));
  }
});
