// The web UI with no streams: the list's empty state, creating a stream with the form, and the
// new stream's "no video yet" state (desktop and phone widths). Screenshots: list-empty.png,
// stream-empty.png, stream-empty-phone.png.

import { join } from 'node:path';
import { artifactDir, baseUrl, withBrowser } from './lib.mjs';

const base = baseUrl();
const shots = artifactDir();

await withBrowser('ui_empty', async (context) => {
  const page = await context.newPage();
  await page.goto(`${base}/`);
  await page.getByText('No streams yet').waitFor({ timeout: 15_000 });
  const cmd = await page.locator('.empty pre').textContent();
  if (!cmd.includes(`${base}/v1/streams/`)) throw new Error(`the empty state's push command does not name this server: ${cmd}`);
  await page.screenshot({ path: join(shots, 'list-empty.png'), fullPage: true });

  // A bad name is refused with the server's message, and nothing is created.
  await page.fill('input[name=name]', 'bad name!');
  await page.evaluate(() => { document.querySelector('input[name=name]').removeAttribute('pattern'); });
  await page.click('form.create button[type=submit]');
  await page.locator('.form-error').filter({ hasText: /name/i }).waitFor({ timeout: 10_000 });

  await page.fill('input[name=name]', 'cam1');
  await page.click('form.create button[type=submit]');
  await page.waitForURL(/#\/streams\/cam1$/, { timeout: 10_000 });
  await page.getByText('No video yet').waitFor({ timeout: 15_000 });
  await page.getByText('No data yet').waitFor({ timeout: 5_000 });
  await page.screenshot({ path: join(shots, 'stream-empty.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(shots, 'stream-empty-phone.png'), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 1) throw new Error(`the stream page is ${overflow}px wider than a 390px phone screen`);
});
