// A WHIP publisher: headless Chromium with a fake camera and microphone publishes to
// `${SLUICE_URL}/v1/streams/${WHIP_STREAM}/whip` (RFC 9725), H.264 preferred, offering only its
// 127.0.0.1 host candidates. Publishes for WHIP_SECONDS, then ends the session with DELETE
// (WHIP_END=delete, the default) or by closing the browser without a word (WHIP_END=vanish).
// Prints one JSON line: {"status", "location", "etag", "contentType", "connected", "deleteStatus"}.
// Driven by tests/whip.rs.

import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(resolve(here, '..', '..'), 'package.json'));
const { chromium } = require('playwright-core');

const base = (process.env.SLUICE_URL || '').replace(/\/$/, '');
const stream = process.env.WHIP_STREAM || 'whip';
const seconds = Number(process.env.WHIP_SECONDS || '6');
const end = process.env.WHIP_END || 'delete';

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

if (!base) fail('SLUICE_URL is not set');

// Bound the whole run.
const watchdog = setTimeout(() => fail('whip.mjs took longer than 90 s'), 90_000);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns',
  ],
});
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.error(`[page] ${m.text()}`));
  // Same origin as the API; 127.0.0.1 is a secure context, so getUserMedia works.
  await page.goto(`${base}/healthz`);
  const result = await page.evaluate(async ({ stream }) => {
    const media = await navigator.mediaDevices.getUserMedia({
      video: { width: 640, height: 360, frameRate: 30 },
      audio: true,
    });
    const pc = new RTCPeerConnection();
    for (const track of media.getTracks()) {
      const t = pc.addTransceiver(track, { direction: 'sendonly' });
      if (track.kind === 'video') {
        const h264 = RTCRtpSender.getCapabilities('video').codecs.filter(
          (c) => c.mimeType === 'video/H264' && /packetization-mode=1/.test(c.sdpFmtpLine || ''),
        );
        t.setCodecPreferences(h264);
      }
    }
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((done) => {
      if (pc.iceGatheringState === 'complete') return done();
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') done();
      });
      setTimeout(done, 5000);
    });
    // Only loopback host candidates: the test server listens on 127.0.0.1.
    const sdp = pc.localDescription.sdp
      .split('\r\n')
      .filter((l) => !l.startsWith('a=candidate:') || / 127\.0\.0\.1 \d+ typ host/.test(l))
      .join('\r\n');
    if (!/a=candidate:.* 127\.0\.0\.1 /.test(sdp)) throw new Error(`no 127.0.0.1 candidate in the offer:\n${sdp}`);
    const resp = await fetch(`/v1/streams/${stream}/whip`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp' },
      body: sdp,
    });
    const answer = await resp.text();
    const out = {
      status: resp.status,
      location: resp.headers.get('location'),
      etag: resp.headers.get('etag'),
      contentType: resp.headers.get('content-type'),
      connected: false,
    };
    if (resp.status !== 201) {
      out.error = answer;
      return out;
    }
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    out.connected = await new Promise((done) => {
      if (pc.connectionState === 'connected') return done(true);
      pc.addEventListener('connectionstatechange', () => {
        if (pc.connectionState === 'connected') done(true);
        if (pc.connectionState === 'failed') done(false);
      });
      setTimeout(() => done(false), 20000);
    });
    window.__whip = { pc, location: out.location };
    return out;
  }, { stream });
  if (result.status !== 201 || !result.connected) {
    console.log(JSON.stringify(result));
    fail(`WHIP publish failed: ${JSON.stringify(result)}`);
  }
  await new Promise((r) => setTimeout(r, seconds * 1000));
  if (end === 'delete') {
    result.deleteStatus = await page.evaluate(async () => {
      const r = await fetch(window.__whip.location, { method: 'DELETE' });
      window.__whip.pc.close();
      return r.status;
    });
  }
  console.log(JSON.stringify(result));
} catch (e) {
  fail(e.stack || String(e));
} finally {
  await browser.close();
  clearTimeout(watchdog);
}
