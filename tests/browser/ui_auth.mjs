// The web UI against a server with [auth] on: the sign-in form appears, a wrong password is
// refused with a message, the right one lists only the streams the user has a grant on (cam1,
// not door), cam1 plays live through a playback session (the player sends no headers), and a
// fragment downloads with the user's credentials.
// Screenshots: login.png, list-auth.png, stream-auth.png.

import { join } from 'node:path';
import { artifactDir, baseUrl, waitFor, withBrowser } from './lib.mjs';

const base = baseUrl();
const shots = artifactDir();

await withBrowser('ui_auth', async (context, ctx) => {
  const page = await context.newPage();
  // Every failed request, by URL: only the two the page makes on purpose are allowed below.
  const failed = [];
  page.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`); });
  await page.goto(`${base}/`);
  await page.locator('form.login').waitFor({ timeout: 15_000 });
  await page.screenshot({ path: join(shots, 'login.png'), fullPage: true });

  await page.fill('form.login input[name=user]', 'viewer');
  await page.fill('form.login input[name=password]', 'not-the-password');
  await page.click('form.login button[type=submit]');
  await page.locator('form.login .form-error').filter({ hasText: /wrong/i }).waitFor({ timeout: 10_000 });


  await page.fill('form.login input[name=password]', 'viewer-password');
  await page.click('form.login button[type=submit]');
  await page.locator('tr[data-stream=cam1]').waitFor({ timeout: 15_000 });
  if (await page.locator('tr[data-stream=door]').count()) throw new Error('the list shows door, which viewer has no grant on');
  await page.screenshot({ path: join(shots, 'list-auth.png'), fullPage: true });

  await page.click('tr[data-stream=cam1] a.stream-name');
  await page.waitForURL(/#\/streams\/cam1$/);
  const first = await waitFor('live playback to start', async () => {
    const s = await page.evaluate(() => ({ t: window.sluicePlayer?.video.currentTime ?? 0, url: window.sluicePlayer?.url }));
    return s.t > 0 ? s : null;
  }, 30_000);
  if (!/[?&]token=v1\./.test(first.url)) throw new Error(`the player did not use a playback session: ${first.url}`);
  await waitFor('currentTime to advance 2 s', async () => {
    const t = await page.evaluate(() => window.sluicePlayer.video.currentTime);
    return t >= first.t + 2 ? t : null;
  }, 30_000);
  await page.screenshot({ path: join(shots, 'stream-auth.png'), fullPage: true });
  // A fragment's download link needs `read`, not a playback token: it goes with the user's
  // credentials and saves the stored moof+mdat.
  const link = page.locator('table.fragments tbody a.small-link').first();
  await link.waitFor({ timeout: 15_000 });
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), link.click()]);
  const saved = await download.path();
  const { readFileSync } = await import('node:fs');
  const head = readFileSync(saved).subarray(0, 8);
  if (head.subarray(4, 8).toString('latin1') !== 'moof' || !/^cam1-\d+\.m4s$/.test(download.suggestedFilename())) {
    throw new Error(`fragment download: ${download.suggestedFilename()} starts ${head.toString('hex')}`);
  }
  // Allowed: the wrong password's 401, and the frame button's probe (a deliberate bad `at`).
  const unexpected = failed.filter((f) => !/^401 .*\/v1\/auth\/whoami$/.test(f) && !/^400 .*\/frame\.jpg\?at=not-a-time$/.test(f));
  if (unexpected.length || failed.filter((f) => f.startsWith('401')).length !== 1) throw new Error(`failed requests: ${failed.join(' | ')}`);
  // The browser logs each failed request as a console error; anything else fails.
  const errors = ctx.consoleErrors.filter((e) => !/^Failed to load resource: the server responded with a status of 40[01]/.test(e));
  if (errors.length) throw new Error(`console errors: ${errors.join(' | ')}`);
});
