// The web UI with a live stream (cam1, ffmpeg pushing in real time) and a recorded one (archive,
// a 6 s fixture): the list shows both; cam1's page plays live (currentTime advances, no hls.js
// errors, a latency readout); a frame can be grabbed when the server offers frames; archive's
// page plays a range selected by dragging on the timeline and offers its clip for download.
// Screenshots: list.png, stream-live.png, frame.png, stream-replay.png, stream-replay-phone.png.

import { join } from 'node:path';
import { artifactDir, baseUrl, judgeHlsErrors, waitFor, withBrowser } from './lib.mjs';

const base = baseUrl();
const shots = artifactDir();

function playerState(page) {
  return page.evaluate(() => {
    const p = window.sluicePlayer;
    if (!p) return null;
    return { mode: p.mode, t: p.video.currentTime, paused: p.video.paused, date: p.playingDate(), errors: p.errors };
  });
}

// Every hls.js error fails, except a stall proven to be the browser's (judgeHlsErrors).
function checkErrors(state, what) {
  const { bad, starved } = judgeHlsErrors(state.errors);
  if (bad.length) throw new Error(`${what}: hls.js errors ${JSON.stringify(bad)}`);
  for (const e of starved) {
    console.log(e.hlsjsBoundaryDefect
      ? `${what}: ${e.details} at ${e.playhead.toFixed(3)} s, just before segment end ${e.lastCompleteEnd.toFixed(3)} s: hls.js's live-edge boundary defect (lib.mjs)`
      : `${what}: ${e.details} with ${e.buffer.toFixed(2)} s of contiguous media buffered ahead (the browser, not the media)`);
  }
}

/** Waits until the player in `mode` has played `secs` seconds of media. */
async function waitPlaying(page, mode, secs) {
  const first = await waitFor(`${mode} playback to start`, async () => {
    const s = await playerState(page);
    return s && s.mode === mode && s.t > 0 && !s.paused ? s : null;
  }, 30_000);
  return waitFor(`${mode} currentTime to advance ${secs} s past ${first.t}`, async () => {
    const s = await playerState(page);
    if (s.mode !== mode) throw new Error(`player left ${mode} mode for ${s.mode}`);
    return s.t >= first.t + secs ? s : null;
  }, 30_000);
}

await withBrowser('ui', async (context) => {
  const page = await context.newPage();

  // The list.
  await page.goto(`${base}/`);
  await page.locator('tr[data-stream=cam1] .pill.live').waitFor({ timeout: 15_000 });
  await page.locator('tr[data-stream=archive]').getByText('Idle').waitFor({ timeout: 5_000 });
  await waitFor('cam1 bitrate', async () => /b\/s/.test(await page.locator('tr[data-stream=cam1] td').nth(2).textContent()), 15_000);
  await page.screenshot({ path: join(shots, 'list.png'), fullPage: true });

  // Live.
  await page.click('tr[data-stream=cam1] a.stream-name');
  await page.waitForURL(/#\/streams\/cam1$/);
  const live = await waitPlaying(page, 'live', 3);
  checkErrors(live, 'live');
  if (live.date === null) throw new Error('live playback has no PROGRAM-DATE-TIME (hls.playingDate is null)');
  const latency = await waitFor('the latency readout', async () => {
    const t = await page.locator('#latency').textContent();
    return /Latency \d+\.\d+ s/.test(t) ? t : null;
  });
  console.log(`live: ${latency}`);
  await page.click('#jump-live');
  await waitPlaying(page, 'live', 1);
  await page.waitForTimeout(1000);
  await page.screenshot({ path: join(shots, 'stream-live.png'), fullPage: true });

  // Frame grab, when the server has the frames endpoint.
  if (await page.locator('#grab-frame').isVisible()) {
    await page.click('#grab-frame');
    await page.locator('dialog.frame-dialog[open] img').waitFor({ timeout: 20_000 });
    const w = await waitFor('the grabbed frame to decode', () => page.evaluate(() => document.querySelector('dialog.frame-dialog img').naturalWidth), 10_000);
    if (w !== 640) throw new Error(`grabbed frame is ${w}px wide, expected 640`);
    await page.screenshot({ path: join(shots, 'frame.png') });
    await page.keyboard.press('Escape');
    console.log('frame grab: ok');
  } else {
    console.log('frame grab: the server has no frames endpoint; button hidden');
  }
  checkErrors(await playerState(page), 'live, later');

  // Replay: the archive stream, a range dragged on the timeline.
  await page.goto(`${base}/#/streams/archive`);
  await page.getByText('Producer offline').first().waitFor({ timeout: 15_000 });
  await page.click('#fit');
  await waitFor('the timeline to show the recording', async () => /recorded in view/.test(await page.locator('.range-note').textContent()), 15_000);
  const box = await page.locator('#timeline').boundingBox();
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width * 0.15, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, y, { steps: 5 });
  await page.mouse.move(box.x + box.width * 0.85, y, { steps: 5 });
  await page.mouse.up();
  const replay = await waitPlaying(page, 'replay', 1.5);
  checkErrors(replay, 'replay');
  const range = await page.evaluate(() => window.sluicePlayer.range);
  if (replay.date === null || replay.date < range.start - 1500 || replay.date > range.end + 1500) {
    throw new Error(`replay is at ${new Date(replay.date).toISOString()}, outside the selection ${JSON.stringify(range)}`);
  }
  const href = await page.locator('#download-clip').getAttribute('href');
  if (!href || !href.includes('/clip.mp4?')) throw new Error(`download link is ${href}`);
  const clip = await page.evaluate(async (u) => {
    const r = await fetch(u);
    return { status: r.status, type: r.headers.get('content-type'), size: (await r.arrayBuffer()).byteLength };
  }, href);
  if (clip.status !== 200 || clip.type !== 'video/mp4' || clip.size < 10_000) throw new Error(`clip download: ${JSON.stringify(clip)}`);
  const frags = await page.locator('table.fragments tbody tr').count();
  if (frags < 1) throw new Error('the fragment table of the selection is empty');
  console.log(`replay: selection ${new Date(range.start).toISOString()} → ${new Date(range.end).toISOString()}, clip ${clip.size} bytes, ${frags} fragments listed`);
  await page.screenshot({ path: join(shots, 'stream-replay.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(500);
  await page.screenshot({ path: join(shots, 'stream-replay-phone.png'), fullPage: true });
  checkErrors(await playerState(page), 'replay, later');
});
