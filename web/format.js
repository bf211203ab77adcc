// Small formatting and DOM helpers shared by the views.

/** Creates an element: el('div.card#x', {onclick}, child, 'text', …). */
export function el(spec, attrs = {}, ...children) {
  const [, tag = 'div', id, classes] = spec.match(/^([a-z0-9]+)?(?:#([\w-]+))?((?:\.[\w-]+)*)$/i) || [];
  const node = document.createElement(tag || 'div');
  if (id) node.id = id;
  if (classes) node.className = classes.slice(1).replaceAll('.', ' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k in node && typeof v !== 'string') node[k] = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i && n < 100 ? 1 : 0)} ${units[i]}`;
}

export function bitrate(bps) {
  if (bps === null || bps === undefined) return '—';
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(bps >= 1e7 ? 0 : 1)} Mb/s`;
  return `${Math.round(bps / 1e3)} kb/s`;
}

/** A duration in ms as "2.5 s", "4 min 10 s", "3 h 5 min", "2 d 4 h". */
export function duration(ms) {
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min${s % 60 >= 1 ? ` ${Math.floor(s % 60)} s` : ''}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h${m % 60 ? ` ${m % 60} min` : ''}`;
  return `${Math.floor(h / 24)} d${h % 24 ? ` ${h % 24} h` : ''}`;
}

/** "12 s ago", "3 min ago", "yesterday 14:02", or a date. */
export function ago(ts) {
  if (!ts) return '—';
  const t = new Date(ts).getTime();
  const d = Date.now() - t;
  if (d < 0) return 'just now';
  if (d < 60_000) return `${Math.max(0, Math.round(d / 1000))} s ago`;
  if (d < 3_600_000) return `${Math.round(d / 60_000)} min ago`;
  if (d < 86_400_000) return `${Math.round(d / 3_600_000)} h ago`;
  return new Date(t).toLocaleString();
}

export function clock(ms, withMs = false) {
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}${withMs ? `.${p(d.getMilliseconds(), 3)}` : ''}`;
}

export function dateTime(ms) {
  const d = new Date(ms);
  return `${d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${clock(ms)}`;
}

export function retention(s) {
  const parts = [];
  parts.push(s.retentionHours ? (s.retentionHours % 24 === 0 ? `${s.retentionHours / 24} d` : `${s.retentionHours} h`) : 'no age limit');
  if (s.retentionBytes) parts.push(`≤ ${bytes(s.retentionBytes)}`);
  return parts.join(', ');
}

/** Copies text to the clipboard, briefly marking the button. */
export function copyButton(text) {
  const b = el('button.ghost.small', { type: 'button', title: 'Copy to clipboard' }, 'Copy');
  b.onclick = async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = 'Copied';
    } catch (_) {
      b.textContent = 'Select & copy';
    }
    setTimeout(() => { b.textContent = 'Copy'; }, 1500);
  };
  return b;
}

/** The ffmpeg command that pushes a test pattern to a stream in real time. */
export function pushCommand(name) {
  return `ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -c:v libx264 -g 30 -tune zerolatency \\\n  -f mp4 -movflags frag_keyframe+empty_moov+default_base_moof -frag_duration 200000 \\\n  -method PUT ${location.origin}/v1/streams/${encodeURIComponent(name)}/media`;
}
