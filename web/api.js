// The native REST API, as the UI uses it. Every failure is an ApiError with the HTTP status and
// the server's error code and message ({"error":{"code","message"}}).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The signed-in user's credentials, kept in this page's memory only (never in storage or a
// cookie): a reload asks again. Null when the server needs none or nobody has signed in.
let authorization = null;

/** Signs in as `user` (Basic credentials for every request); null signs out. */
export function setCredentials(user, password) {
  authorization = user === null ? null
    : `Basic ${btoa(String.fromCharCode(...new TextEncoder().encode(`${user}:${password}`)))}`;
}

/** `fetch` with the signed-in user's credentials. */
export function authFetch(path, options = {}) {
  const headers = { ...(authorization ? { authorization } : {}), ...(options.headers || {}) };
  return fetch(path, { ...options, headers });
}

/**
 * A click handler for a download link (`<a href download>`) of a resource that needs
 * credentials: with a signed-in user the file is fetched with them and saved from memory (a
 * plain link would go without the Authorization header); otherwise the link works as it is.
 * Failures are reported through `onError(message)`.
 */
export function authorizedDownload(onError) {
  return async (ev) => {
    if (!authorization) return;
    ev.preventDefault();
    const link = ev.currentTarget;
    try {
      const resp = await authFetch(link.getAttribute('href'));
      if (!resp.ok) {
        let message = `${resp.status} ${resp.statusText}`;
        try { message = (await resp.json()).error.message; } catch (_) { /* not JSON */ }
        throw new Error(message);
      }
      const url = URL.createObjectURL(await resp.blob());
      const a = Object.assign(document.createElement('a'), { href: url, download: link.getAttribute('download') || '' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (e) {
      onError(`download failed: ${e.message}`);
    }
  };
}

/** JSON request to the API; resolves to the parsed body (null for 204). A 401 asks the user to
 *  sign in (the `sluice-login` event) and rejects. */
export async function api(path, options = {}) {
  let resp;
  try {
    resp = await authFetch(path, {
      ...options,
      headers: { 'content-type': 'application/json', ...(options.headers || {}) },
    });
  } catch (e) {
    throw new ApiError(0, 'NetworkError', `cannot reach the server (${e.message})`);
  }
  if (resp.status === 401) window.dispatchEvent(new CustomEvent('sluice-login'));
  if (!resp.ok) {
    let code = `HTTP${resp.status}`;
    let message = `${resp.status} ${resp.statusText}`;
    try {
      const body = await resp.json();
      code = body.error.code;
      message = body.error.message;
    } catch (_) { /* not a JSON error body */ }
    throw new ApiError(resp.status, code, message);
  }
  return resp.status === 204 ? null : resp.json();
}

export const enc = encodeURIComponent;

/**
 * A playback session for a stream (`POST …/playback-sessions`, 12 h): players, clip links and
 * frame requests carry its token instead of headers. Resolves to a function that adds the token
 * to a URL of that stream (the URL unchanged if no session could be made).
 */
export async function playbackSigner(name) {
  try {
    const s = await api(`${streamPath(name)}/playback-sessions`, {
      method: 'POST', body: JSON.stringify({ expiresInSeconds: 43200 }),
    });
    return (url) => `${url}${url.includes('?') ? '&' : '?'}token=${enc(s.token)}`;
  } catch (_) {
    return (url) => url;
  }
}

/** Base path of a stream's resources. */
export const streamPath = (name) => `/v1/streams/${enc(name)}`;

/** Query string from an object, skipping null/undefined values. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== '') p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

export const iso = (ms) => new Date(ms).toISOString();

/**
 * Media bitrate (bits/s) of a stream's last `windowSec` seconds on the server clock, from its
 * fragment listing; null when nothing arrived in that window.
 */
export async function recentBitrate(name, windowSec = 10) {
  const start = iso(Date.now() - windowSec * 1000);
  const { fragments } = await api(`${streamPath(name)}/fragments${qs({ start, timestamps: 'server', limit: 2000 })}`);
  if (!fragments.length) return null;
  const bytes = fragments.reduce((a, f) => a + f.sizeBytes, 0);
  const ms = fragments.reduce((a, f) => a + f.durationMs, 0);
  return ms > 0 ? (bytes * 8) / (ms / 1000) : null;
}
