// The video player: hls.js (or native HLS where hls.js is unsupported) over a <video>, in one of
// two modes: live (master.m3u8 naming live.m3u8, low-latency mode, with a latency readout from
// PROGRAM-DATE-TIME) or replay of a recorded range (master.m3u8?mode=on_demand&start&end). The
// multivariant entry point gives Safari's native HLS the CODECS it needs.
// State for tests and diagnostics is on window.sluicePlayer.

export class Player {
  /**
   * @param {HTMLVideoElement} video
   * @param {{onStatus?: (s: {kind: string, message?: string}) => void}} hooks
   */
  constructor(video, hooks = {}) {
    this.video = video;
    this.hooks = hooks;
    this.hls = null;
    this.mode = null; // 'live' | 'replay' | null
    this.url = null;
    this.errors = [];
    this.range = null;
    this.retryTimer = null;
    window.sluicePlayer = this;
    video.addEventListener('playing', () => this.status('playing'));
    video.addEventListener('waiting', () => this.status('buffering'));
    video.addEventListener('ended', () => this.status('ended'));
  }

  status(kind, message) {
    this.hooks.onStatus?.({ kind, message, mode: this.mode });
  }

  /** Plays the live edge of a stream. */
  playLive(url) {
    this.mode = 'live';
    this.range = null;
    // Catch up (play up to 1.5× faster) after a stall instead of staying behind for good.
    this.load(url, { lowLatencyMode: true, liveDurationInfinity: true, backBufferLength: 30, maxLiveSyncPlaybackRate: 1.5 });
  }

  /** Plays a recorded range (an on-demand playlist) from its start. */
  playRange(url, range) {
    this.mode = 'replay';
    this.range = range;
    this.load(url, { lowLatencyMode: false, backBufferLength: 60 });
  }

  load(url, config) {
    this.teardown();
    this.url = url;
    this.errors = [];
    this.status('loading');
    const video = this.video;
    if (window.Hls && window.Hls.isSupported()) {
      const hls = new window.Hls({ ...config, enableWorker: true, manifestLoadingMaxRetry: 2 });
      this.hls = hls;
      hls.on(window.Hls.Events.ERROR, (_, data) => this.onError(data));
      hls.on(window.Hls.Events.MANIFEST_PARSED, () => {
        video.play().catch(() => this.status('paused', 'Press play to start'));
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = url;
      video.play().catch(() => this.status('paused', 'Press play to start'));
    } else {
      this.status('error', 'This browser cannot play HLS (no Media Source Extensions).');
    }
  }

  onError(data) {
    // For diagnostics and the browser tests: stalls keep how much media was buffered ahead of
    // the playhead and the browser's buffered ranges, which tell a starved decoder from missing
    // media (tests/browser/lib.mjs, judgeHlsErrors).
    const info = data.bufferInfo;
    const det = this.hls?.latestLevelDetails;
    const last = det?.fragments?.[det.fragments.length - 1];
    this.errors.push({
      type: data.type, details: data.details, fatal: data.fatal, at: Date.now(),
      buffer: data.buffer,
      buffered: info?.buffered ? info.buffered.map((r) => [r.start, r.end]) : undefined,
      end: info?.end,
      playhead: this.video.currentTime,
      lastCompleteEnd: last?.end,
      partialNext: !!det?.fragmentHint,
    });
    if (this.errors.length > 50) this.errors.shift();
    if (!data.fatal) return;
    const Hls = window.Hls;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      this.hls.recoverMediaError();
      return;
    }
    const status = data.response?.code;
    if (status === 404 && this.mode === 'replay') {
      this.status('error', 'No recorded media in this range.');
      return;
    }
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
      this.status('error', status ? `The server answered ${status} (${data.details}); retrying…` : `Network error (${data.details}); retrying…`);
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => { if (this.hls) this.hls.startLoad(); }, 2000);
      return;
    }
    this.status('error', `Playback failed: ${data.details}`);
  }

  /** Wall-clock time (ms) of the frame on screen, from PROGRAM-DATE-TIME; null if unknown. */
  playingDate() {
    const d = this.hls?.playingDate;
    if (d && !Number.isNaN(d.getTime())) return d.getTime();
    const v = this.video;
    if (!this.hls && v.getStartDate && !Number.isNaN(v.getStartDate().getTime())) {
      return v.getStartDate().getTime() + v.currentTime * 1000;
    }
    return null;
  }

  /** Live only: how far the frame on screen is behind the wall clock, in ms. */
  latencyMs() {
    if (this.mode !== 'live') return null;
    const t = this.playingDate();
    return t === null ? null : Date.now() - t;
  }

  /** Seeks to the live edge (the player's target position behind it). */
  seekToLive() {
    const pos = this.hls?.liveSyncPosition;
    if (pos !== null && pos !== undefined && Number.isFinite(pos)) this.video.currentTime = pos;
    else if (this.video.seekable.length) this.video.currentTime = this.video.seekable.end(this.video.seekable.length - 1) - 1;
    this.video.play().catch(() => {});
  }

  teardown() {
    clearTimeout(this.retryTimer);
    if (this.hls) {
      this.hls.destroy();
      this.hls = null;
    }
    this.video.removeAttribute('src');
    this.video.load();
  }

  destroy() {
    this.teardown();
    this.mode = null;
    if (window.sluicePlayer === this) window.sluicePlayer = null;
  }
}
