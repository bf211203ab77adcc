// Shared by the browser tests (tests/browser/*.mjs, run by tests/browser.rs) and
// scripts/bench-latency.sh: launches Debian's headless Chromium through playwright-core (from the
// repo-root node_modules; it never downloads a browser) with a fresh profile, bounds every run in
// time, and reports failures as one clear line and a non-zero exit.

import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..');
const require = createRequire(join(repoRoot, 'package.json'));
const { chromium } = require('playwright-core');

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
  '--autoplay-policy=no-user-gesture-required', '--disable-dev-shm-usage',
];

/** The server under test: `SLUICE_URL` (set by tests/browser.rs), e.g. http://127.0.0.1:34567. */
export function baseUrl() {
  const url = process.env.SLUICE_URL;
  if (!url) fail('SLUICE_URL is not set (run me from tests/browser.rs or scripts/bench-latency.sh)');
  return url.replace(/\/$/, '');
}

/** Where screenshots go: artifacts/browser/ (gitignored), or SLUICE_ARTIFACTS. */
export function artifactDir() {
  const dir = process.env.SLUICE_ARTIFACTS || join(repoRoot, 'artifacts', 'browser');
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` (async, returns a truthy value when done) until `timeoutMs`; fails with `what`. */
export async function waitFor(what, fn, timeoutMs = 20_000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last: ${JSON.stringify(last)})` : ''}`);
}

/**
 * Runs `body(browser, ctx)` with a fresh Chromium (own user-data dir), always closing it; the
 * whole run is bounded by `timeoutMs`. Browser console errors are collected in ctx.consoleErrors.
 */
export async function withBrowser(name, body, { timeoutMs = 120_000, extraArgs = [] } = {}) {
  const profile = mkdtempSync(join(tmpdir(), `sluice-${name}-`));
  const timer = setTimeout(() => fail(`${name}: the whole run took longer than ${timeoutMs} ms`), timeoutMs);
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS, ...extraArgs],
      viewport: { width: 1400, height: 950 },
      timeout: 30_000,
    });
    const ctx = { consoleErrors: [] };
    context.on('page', (page) => watch(page, ctx));
    for (const p of context.pages()) watch(p, ctx);
    await body(context, ctx);
    console.log(`ok: ${name}`);
  } catch (e) {
    fail(`${name}: ${e.stack || e.message}`);
  } finally {
    clearTimeout(timer);
    await context?.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

function watch(page, ctx) {
  page.on('console', (m) => { if (m.type() === 'error') ctx.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => ctx.consoleErrors.push(`page error: ${e.message}`));
}

/** A page that only loads hls.js (from the server, as the UI does) and a <video>. */
export async function hlsPage(context, base) {
  const page = await context.newPage();
  // The UI's page names the hls.js it serves; the page is read, not run (its scripts would race
  // the content set below), and loading the script itself gives the page the server's origin.
  const index = await (await context.request.get(`${base}/`)).text();
  const hlsSrc = index.match(/<script[^>]*\ssrc="([^"]*hls[^"]*)"/)[1];
  // (A script as the page makes the browser ask for /favicon.ico, which the server has not.)
  await page.route('**/favicon.ico', (r) => r.fulfill({ status: 204 }));
  await page.goto(`${base}${hlsSrc}`);
  await page.setContent(`<!doctype html><html><body style="margin:0;background:#000">
    <video id="v" muted playsinline style="width:640px"></video>
    <script src="${base}${hlsSrc}"></script></body></html>`);
  await page.waitForFunction(() => !!window.Hls, null, { timeout: 10_000 });
  await page.evaluate(`window.recordHlsError = ${RECORD_HLS_ERROR}`);
  return page;
}

/**
 * What a test keeps of an hls.js ERROR event (page side: `window.recordHlsError(d)`, installed by
 * `hlsPage`, and the web UI's player, which records the same fields): the kind, whether it was
 * fatal, and for stalls how much media was buffered ahead of the playhead (`buffer`, hls.js's
 * bufferInfo.len) and the browser's own buffered ranges (`buffered`, bufferInfo.buffered).
 */
export const RECORD_HLS_ERROR = `(d, hls) => {
  const det = hls && hls.latestLevelDetails;
  const last = det && det.fragments && det.fragments[det.fragments.length - 1];
  const media = hls && hls.media;
  return {
    details: d.details, fatal: d.fatal, type: d.type,
    reason: d.reason || (d.error && d.error.message) || '',
    buffer: d.buffer,
    buffered: d.bufferInfo && d.bufferInfo.buffered
      ? d.bufferInfo.buffered.map((r) => [r.start, r.end]) : undefined,
    end: d.bufferInfo ? d.bufferInfo.end : undefined,
    playhead: media ? media.currentTime : undefined,
    lastCompleteEnd: last ? last.end : undefined,
    partialNext: !!(det && det.fragmentHint),
  };
}`;

/** Media buffered ahead of a stalled playhead that proves the server had delivered it. */
export const STARVED_AHEAD_S = 0.5;

/**
 * Splits hls.js errors into `bad` (every one fails the test) and `starved` (printed). The only
 * error that is not Sluice's to answer for is a stall where the cause is provably the browser's:
 * a non-fatal bufferStalledError or bufferNudgeOnStall whose playhead stopped inside one unbroken
 * range of the browser's own buffered media (no hole, not merged over a gap as hls.js's `len` can
 * be) with at least STARVED_AHEAD_S of media ahead of it. The media was delivered and is
 * contiguous, and the playhead did not move: the browser's decoder or renderer did not keep up
 * (a loaded machine). A stall for lack of media (parts late, a segment missing) or at a hole in
 * the buffer (a timestamp gap in what Sluice served) fails, as does every other error.
 */
export function judgeHlsErrors(errors) {
  const bad = [];
  const starved = [];
  for (const e of errors) {
    const stall = e.details === 'bufferStalledError' || e.details === 'bufferNudgeOnStall';
    let contiguous = false;
    if (stall && !e.fatal && typeof e.buffer === 'number' && typeof e.end === 'number' && Array.isArray(e.buffered)) {
      const pos = e.end - e.buffer; // hls.js: len = end - playhead
      contiguous = e.buffered.some(([s, t]) => s <= pos + 1e-3 && t - pos >= STARVED_AHEAD_S);
    }
    // hls.js 1.7.4's live-edge boundary defect (traced with its debug log; see
    // docs/design/playback.md): when playback starts inside the last complete segment of a
    // low-latency playlist, hls.js buffers that segment, and Chromium reports its end 1 µs short
    // (frame times truncated to µs: 30 fps frames are 33,333.33 µs). hls.js then looks the next
    // load up among complete segments only, finds the same segment again (the target is not past
    // `fragmentEnd`, so it does not switch to the in-progress segment), and reloads it from its
    // independent part until the playlist completes the next segment: the playhead parks just
    // before that segment's end. Sluice served every part asked for. Recognised only by that
    // signature: a non-fatal stall, an in-progress segment next, the playhead within 0.1 s before
    // the end of the last complete segment. Printed every time; any other stall fails.
    const atBoundary = stall && !e.fatal && e.partialNext
      && typeof e.playhead === 'number' && typeof e.lastCompleteEnd === 'number'
      && e.lastCompleteEnd - e.playhead >= 0 && e.lastCompleteEnd - e.playhead <= 0.1;
    if (contiguous) starved.push(e);
    else if (atBoundary) starved.push({ ...e, hlsjsBoundaryDefect: true });
    else bad.push(e);
  }
  return { bad, starved };
}
