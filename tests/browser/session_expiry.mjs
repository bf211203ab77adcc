// A playback-session URL in hls.js, to its expiry: hls.js plays the session's playlist (no
// headers, the token in every URL), the script writes the file FLAG once playback has advanced,
// the test then moves the server's clock past the session's expiry, and hls.js must be refused
// (403) from then on: no request it makes after the first refusal is answered with media.

import { writeFileSync } from 'node:fs';
import { baseUrl, hlsPage, waitFor, withBrowser } from './lib.mjs';

const base = baseUrl();
const url = `${base}${process.env.SESSION_URL}`;
const flag = process.env.FLAG;

await withBrowser('session_expiry', async (context, ctx) => {
  const page = await hlsPage(context, base);
  const issued = new WeakMap();
  const answers = [];
  const failed = [];
  context.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`); });
  page.on('request', (r) => issued.set(r, Date.now()));
  page.on('response', (r) => {
    if (r.url().includes('/hls/')) answers.push({ at: issued.get(r.request()) ?? 0, status: r.status(), url: r.url() });
  });
  await page.evaluate((src) => {
    const v = document.getElementById('v');
    window.refusals = [];
    const hls = new window.Hls();
    hls.on(window.Hls.Events.ERROR, (_, d) => {
      if (d.response && d.response.code) window.refusals.push({ code: d.response.code, details: d.details, fatal: d.fatal });
    });
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => v.play());
    hls.loadSource(src);
    hls.attachMedia(v);
  }, url);
  const start = await waitFor('playback to start', async () => {
    const t = await page.evaluate(() => document.getElementById('v').currentTime);
    return t > 0 ? t : null;
  }, 30_000);
  await waitFor('playback to advance 2 s', async () => {
    const t = await page.evaluate(() => document.getElementById('v').currentTime);
    return t >= start + 2 ? t : null;
  }, 30_000);
  if (answers.some((a) => a.status !== 200)) throw new Error(`refused before expiry: ${JSON.stringify(answers.filter((a) => a.status !== 200))}`);
  if (!answers.every((a) => /[?&]token=v1\./.test(a.url))) throw new Error('a request went without the token');
  const before = answers.length;
  writeFileSync(flag, 'playing');
  const refused = await waitFor('hls.js to be refused after expiry', async () => {
    const r = await page.evaluate(() => window.refusals);
    return r.find((x) => x.code === 403) || null;
  }, 60_000);
  const firstRefusal = Math.min(...answers.filter((a) => a.status === 403).map((a) => a.at));
  // Give hls.js time to retry; nothing it asks for after the first refusal is served.
  await new Promise((r) => setTimeout(r, 3000));
  const late = answers.filter((a) => a.at > firstRefusal && a.status === 200);
  if (late.length) throw new Error(`served after expiry: ${late.map((a) => a.url).join(' ')}`);
  const statuses = [...new Set(answers.slice(before).map((a) => a.status))];
  console.log(`played ${before} requests on the session; after expiry hls.js got ${refused.code} (${refused.details}), statuses since: ${statuses.join(',')}`);
  // The refusals are the point of this test, and the sign-in probe of the page hls.js is loaded
  // from (hlsPage) answers 401: the browser logs each as a failed resource. Nothing else fails.
  const unexpected = failed.filter((f) => !/^401 .*\/v1\/auth\/whoami$/.test(f) && !/^403 .*\/hls\//.test(f));
  if (unexpected.length) throw new Error(`failed requests: ${unexpected.join(' | ')}`);
  const errors = ctx.consoleErrors.filter((e) => !/^Failed to load resource: the server responded with a status of 40[13]/.test(e));
  if (errors.length) throw new Error(`console errors: ${errors.join(' | ')}`);
  const kinds = {};
  for (const a of answers) { const k = new URL(a.url).pathname.split('/').pop().replace(/\d+/g, 'N'); kinds[k] = (kinds[k] || 0) + 1; }
  console.log(`requests by resource: ${JSON.stringify(kinds)}`);
});
