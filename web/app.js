// Sluice web UI: lists streams, creates and deletes them, and shows a stream's fragments.
// Uses only the native REST API (/v1/...).

const $ = (sel) => document.querySelector(sel);

function bytes(n) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function when(ts) {
  return ts ? new Date(ts).toLocaleString() : '—';
}

async function api(path, options = {}) {
  const resp = await fetch(path, { headers: { 'content-type': 'application/json' }, ...options });
  if (!resp.ok) {
    let msg = `${resp.status}`;
    try { msg = (await resp.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return resp.status === 204 ? null : resp.json();
}

async function refresh() {
  const { streams } = await api('/v1/streams?limit=1000');
  const tbody = $('#streams tbody');
  tbody.replaceChildren();
  $('#empty').hidden = streams.length > 0;
  $('#push-example').textContent =
    `ffmpeg -re -i in.mp4 -c copy -f mp4 -movflags frag_keyframe+empty_moov+default_base_moof -method PUT ${location.origin}/v1/streams/NAME/media`;
  for (const s of streams) {
    const tr = document.createElement('tr');
    tr.className = 'clickable';
    const cells = [
      s.name,
      s.live ? 'live' : 'idle',
      String(s.fragmentCount),
      bytes(s.bytesStored),
      s.retentionHours ? `${s.retentionHours} h` : 'no age limit',
      when(s.latestServerTimestamp),
    ];
    for (const [i, text] of cells.entries()) {
      const td = document.createElement('td');
      td.textContent = text;
      if (i === 1) td.className = s.live ? 'live' : 'idle';
      tr.append(td);
    }
    const del = document.createElement('button');
    del.className = 'danger';
    del.textContent = 'Delete';
    del.onclick = async (ev) => {
      ev.stopPropagation();
      if (!confirm(`Delete stream ${s.name} and all its media?`)) return;
      await api(`/v1/streams/${encodeURIComponent(s.name)}`, { method: 'DELETE' });
      $('#detail').hidden = true;
      refresh();
    };
    const td = document.createElement('td');
    td.append(del);
    tr.append(td);
    tr.onclick = () => showStream(s.name);
    tbody.append(tr);
  }
}

async function showStream(name) {
  const base = `/v1/streams/${encodeURIComponent(name)}`;
  $('#detail').hidden = false;
  $('#detail-name').textContent = name;
  $('#live-link').href = `${base}/hls/live.m3u8`;
  $('#vod-link').href = `${base}/hls/index.m3u8`;
  $('#tail-link').href = `${base}/media?start=earliest`;
  const { fragments } = await api(`${base}/fragments?limit=200`);
  const tbody = $('#fragments tbody');
  tbody.replaceChildren();
  for (const f of fragments.slice(-200).reverse()) {
    const tr = document.createElement('tr');
    for (const text of [f.fragmentNumber, when(f.producerTimestamp), when(f.serverTimestamp),
      `${(f.durationMs / 1000).toFixed(3)} s`, bytes(f.sizeBytes), f.keyframe ? 'yes' : '']) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    tbody.append(tr);
  }
}

$('#create').onsubmit = async (ev) => {
  ev.preventDefault();
  $('#create-error').textContent = '';
  try {
    await api('/v1/streams', {
      method: 'POST',
      body: JSON.stringify({ name: $('#name').value, retentionHours: Number($('#retention').value) }),
    });
    $('#name').value = '';
    refresh();
  } catch (e) {
    $('#create-error').textContent = e.message;
  }
};

refresh().catch((e) => { $('#create-error').textContent = `Cannot reach the server: ${e.message}`; });
setInterval(() => refresh().catch(() => {}), 5000);
