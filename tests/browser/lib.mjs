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
  await page.goto(`${base}/`);
  const hlsSrc = await page.evaluate(() => document.querySelector('script[src*="hls"]').getAttribute('src'));
  await page.setContent(`<!doctype html><html><body style="margin:0;background:#000">
    <video id="v" muted playsinline style="width:640px"></video>
    <script src="${base}${hlsSrc}"></script></body></html>`);
  await page.waitForFunction(() => !!window.Hls, null, { timeout: 10_000 });
  return page;
}
