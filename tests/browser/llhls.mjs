// LL-HLS in a browser: hls.js with lowLatencyMode plays live.m3u8 of a stream pushed with 200 ms
// fragments (env STREAM), the playlist carries parts (EXT-X-PART) and blocking reload, the
// picture advances, and hls.js reports no errors. Prints the latency it saw (not asserted).

import { baseUrl, hlsPage, judgeHlsErrors, waitFor, withBrowser } from './lib.mjs';

const base = baseUrl();
const stream = process.env.STREAM || 'll';

await withBrowser('llhls', async (context) => {
  const page = await hlsPage(context, base);
  await page.evaluate((url) => {
    const v = document.getElementById('v');
    const hls = new window.Hls({ lowLatencyMode: true });
    window.errors = [];
    hls.on(window.Hls.Events.ERROR, (_, d) => window.errors.push(window.recordHlsError(d, hls)));
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => v.play());
    hls.loadSource(url);
    hls.attachMedia(v);
    window.hls = hls;
  }, `${base}/v1/streams/${stream}/hls/live.m3u8`);

  const t0 = await waitFor('live playback to start', () => page.evaluate(() => {
    const v = document.getElementById('v');
    return v.currentTime > 0 && !v.paused ? v.currentTime : 0;
  }), 30_000);
  await waitFor('currentTime to advance 4 s', () => page.evaluate((t) => document.getElementById('v').currentTime >= t + 4, t0), 30_000);

  const info = await page.evaluate(() => {
    const d = window.hls.levels[window.hls.currentLevel]?.details || window.hls.latestLevelDetails;
    return {
      parts: d?.partList?.length ?? 0,
      partTarget: d?.partTarget ?? null,
      canBlockReload: !!d?.canBlockReload,
      lowLatencyMode: window.hls.lowLatencyMode,
      errors: window.errors,
      latency: Date.now() - window.hls.playingDate?.getTime(),
    };
  });
  // Every hls.js error fails, except a stall proven to be the browser's (judgeHlsErrors).
  const { bad, starved } = judgeHlsErrors(info.errors);
  if (bad.length) throw new Error(`hls.js errors: ${JSON.stringify(bad)}`);
  if (!info.lowLatencyMode) throw new Error('hls.js is not in low-latency mode');
  if (!info.parts) throw new Error(`live.m3u8 carries no EXT-X-PART parts (hls.js level details: ${JSON.stringify(info)})`);
  if (!info.canBlockReload) throw new Error('live.m3u8 does not advertise CAN-BLOCK-RELOAD');
  console.log(`ll-hls: ${info.parts} parts of ${info.partTarget} s in the playlist, blocking reload, latency ${(info.latency / 1000).toFixed(2)} s, ${starved.filter((e) => !e.hlsjsBoundaryDefect).length} stalls with contiguous media buffered ahead (the browser starved), ${starved.filter((e) => e.hlsjsBoundaryDefect).length} from hls.js's live-edge boundary defect`);
}, { timeoutMs: 150_000 });
