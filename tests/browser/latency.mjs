// Glass-to-glass latency in Chromium (used by scripts/bench-latency.sh, not by the test suite):
// hls.js plays live.m3u8 of STREAM (lowLatencyMode unless LL=0) and samples, every 100 ms for
// SECONDS seconds after a WARMUP, the distance between the PROGRAM-DATE-TIME of the frame on
// screen (hls.playingDate) and the wall clock. Prints one JSON line: p50, p95, min, max, samples.
// Both modes are configured as the web UI's live player is: after a stall they catch up to the
// target latency at up to 1.5x speed (maxLiveSyncPlaybackRate) instead of staying behind.

import { baseUrl, hlsPage, sleep, withBrowser } from './lib.mjs';

const base = baseUrl();
const stream = process.env.STREAM || 'bench';
const seconds = Number(process.env.SECONDS_TO_SAMPLE || 60);
const warmup = Number(process.env.WARMUP || 8);
const lowLatency = process.env.LL !== '0';

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

await withBrowser('latency', async (context) => {
  const page = await hlsPage(context, base);
  await page.evaluate(({ url, lowLatency }) => {
    const v = document.getElementById('v');
    const hls = new window.Hls({ lowLatencyMode: lowLatency, maxLiveSyncPlaybackRate: 1.5 });
    window.errors = [];
    hls.on(window.Hls.Events.ERROR, (_, d) => window.errors.push(`${d.fatal ? 'FATAL ' : ''}${d.details}`));
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => v.play());
    hls.loadSource(url);
    hls.attachMedia(v);
    window.hls = hls;
  }, { url: `${base}/v1/streams/${stream}/hls/live.m3u8`, lowLatency });
  await sleep(warmup * 1000);
  const samples = [];
  const stalls = [];
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const s = await page.evaluate(() => {
      const d = window.hls.playingDate;
      const v = document.getElementById('v');
      return { lat: d ? Date.now() - d.getTime() : null, playing: !v.paused && v.readyState >= 3 };
    });
    if (s.lat !== null && s.playing) samples.push(s.lat);
    else stalls.push(Date.now());
    await sleep(100);
  }
  if (samples.length < 10) throw new Error(`only ${samples.length} samples: the player did not play`);
  const info = await page.evaluate(() => {
    const d = window.hls.latestLevelDetails || window.hls.levels[window.hls.currentLevel]?.details;
    return { parts: d?.partList?.length ?? 0, errors: window.errors };
  });
  samples.sort((a, b) => a - b);
  console.log(JSON.stringify({
    mode: lowLatency ? 'hls.js lowLatencyMode' : 'hls.js default',
    llHlsPlaylist: info.parts > 0,
    samples: samples.length,
    notPlayingSamples: stalls.length,
    p50_ms: pct(samples, 50),
    p95_ms: pct(samples, 95),
    min_ms: samples[0],
    max_ms: samples[samples.length - 1],
    hlsErrors: info.errors.length,
    errorKinds: [...new Set(info.errors)],
  }));
}, { timeoutMs: (seconds + warmup + 60) * 1000 });
