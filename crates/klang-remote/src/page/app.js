// klang remote: pairs once, then shows the engine's state as it is pushed (SSE read
// through fetch, so the token travels in a header) and sends each change with a fresh
// nonce and the server's time (the replay guard). No libraries, nothing fetched but
// klang's own /api.
'use strict';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'klang-remote-token';
let token = localStorage.getItem(TOKEN_KEY);
let clockOffset = 0; // server clock minus ours, from every pushed state
let state = null;
const held = new Set(); // controls under the user's finger are not overwritten

function show(text, isError) {
  const m = $('msg');
  m.textContent = text || '';
  m.className = isError ? 'err' : '';
}

function nonce() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function fmtDb(db) {
  return (db > 0 ? '+' : db < 0 ? '−' : '±') + Math.abs(db).toFixed(1) + ' dB';
}

function unpaired(why) {
  token = null;
  localStorage.removeItem(TOKEN_KEY);
  $('main-view').hidden = true;
  $('pair-view').hidden = false;
  $('online').className = 'dot';
  show(why || 'Not paired yet.', !!why);
}

async function pair(code) {
  show('Pairing…');
  try {
    const r = await fetch('/api/pair', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ code: String(code).trim() }),
    });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) {
      unpaired(j.error || 'pairing failed (' + r.status + ')');
      return;
    }
    token = j.token;
    localStorage.setItem(TOKEN_KEY, token);
    show('Paired.');
    start();
  } catch (e) {
    unpaired('cannot reach klang: ' + e);
  }
}

async function send(command) {
  if (!token) return;
  try {
    const r = await fetch('/api/command', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + token },
      body: JSON.stringify({ nonce: nonce(), ts: Date.now() + clockOffset, command }),
    });
    const j = await r.json().catch(() => ({}));
    if (r.status === 401) return unpaired(j.error);
    if (r.ok) show(j.message);
    else show(j.message || j.error || 'refused (' + r.status + ')', true);
  } catch (e) {
    show('cannot reach klang: ' + e, true);
  }
}

// Sliders send while moving, at most every 120 ms, and always the final value.
function throttled(make) {
  let timer = null;
  let last = null;
  return (value, final) => {
    last = value;
    if (final) {
      clearTimeout(timer);
      timer = null;
      send(make(last));
    } else if (!timer) {
      timer = setTimeout(() => {
        timer = null;
        send(make(last));
      }, 120);
    }
  };
}

function slider(id, make, label) {
  const el = $(id);
  const go = throttled(make);
  el.addEventListener('pointerdown', () => held.add(id));
  const release = () => setTimeout(() => held.delete(id), 400);
  el.addEventListener('pointerup', release);
  el.addEventListener('pointercancel', release);
  el.addEventListener('input', () => {
    $(id + '-value').textContent = label(+el.value);
    go(+el.value, false);
  });
  el.addEventListener('change', () => go(+el.value, true));
}

function stepper(id, key, cmd, delta, clampTo) {
  $(id).addEventListener('click', () => {
    if (!state) return;
    let v = state[key] + delta;
    if (clampTo) v = Math.min(v, clampTo());
    send({ cmd, db: Math.round(v * 2) / 2 });
  });
}

function toggle(id, key) {
  $(id).addEventListener('click', () => state && send({ cmd: id, on: !state[key] }));
}

function render(s) {
  if (state && s.version < state.version) return;
  state = s;
  document.body.dataset.version = s.version;
  $('preset-name').textContent = s.preset;
  const vol = $('volume');
  vol.max = s.max_db;
  if (!held.has('volume')) vol.value = s.volume_db;
  $('volume-value').textContent = s.muted ? 'muted' : fmtDb(s.volume_db);
  for (const k of ['bass', 'treble']) {
    if (!held.has(k)) $(k).value = s[k + '_db'];
    $(k + '-value').textContent = fmtDb(s[k + '_db']);
  }
  $('mute').setAttribute('aria-pressed', s.muted);
  $('loudness').setAttribute('aria-pressed', s.loudness);
  $('bypass').setAttribute('aria-pressed', s.bypass);
  const box = $('presets');
  if (box.dataset.names !== s.presets.join('\n')) {
    box.dataset.names = s.presets.join('\n');
    box.replaceChildren(
      ...s.presets.map((name) => {
        const b = document.createElement('button');
        b.textContent = name;
        b.dataset.preset = name;
        b.addEventListener('click', () => send({ cmd: 'preset', name }));
        return b;
      }),
    );
  }
  for (const b of box.children) b.setAttribute('aria-pressed', b.dataset.preset === s.preset);
  plot(s);
}

function plot(s) {
  const c = $('plot');
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth;
  const h = c.clientHeight;
  c.width = Math.round(w * dpr);
  c.height = Math.round(h * dpr);
  const g = c.getContext('2d');
  g.scale(dpr, dpr);
  const css = getComputedStyle(document.body);
  const fg = css.color;
  let lo = -18;
  let hi = 18;
  for (const curve of s.curves)
    for (const v of curve.db) {
      if (v < lo) lo = Math.max(-60, Math.floor(v / 6) * 6);
      if (v > hi) hi = Math.min(30, Math.ceil(v / 6) * 6);
    }
  const x = (f) => ((Math.log10(f) - 1.30103) / 3) * (w - 30) + 28;
  const y = (db) => 8 + ((hi - db) / (hi - lo)) * (h - 26);
  g.font = '11px system-ui, sans-serif';
  g.strokeStyle = 'rgba(128,128,128,0.35)';
  g.fillStyle = fg;
  g.lineWidth = 1;
  for (let db = lo; db <= hi; db += 6) {
    g.beginPath();
    g.moveTo(28, y(db));
    g.lineTo(w, y(db));
    g.stroke();
    g.fillText(String(db), 2, y(db) + 4);
  }
  for (const [f, t] of [[100, '100'], [1000, '1k'], [10000, '10k']]) {
    g.beginPath();
    g.moveTo(x(f), 8);
    g.lineTo(x(f), h - 18);
    g.stroke();
    g.fillText(t, x(f) - 8, h - 4);
  }
  const colors = { L: '#4fc3f7', R: '#81c784', SUB: '#ffb74d' };
  const seen = new Set();
  for (const curve of s.curves) {
    const key = curve.db.map((v) => v.toFixed(2)).join(',');
    if (seen.has(key)) continue; // R drawn over L would hide it; draw each shape once
    seen.add(key);
    g.strokeStyle = colors[curve.name] || fg;
    g.lineWidth = 2;
    g.beginPath();
    curve.db.forEach((v, i) => {
      const py = y(Math.max(lo, Math.min(hi, v)));
      if (i === 0) g.moveTo(x(s.freqs[i]), py);
      else g.lineTo(x(s.freqs[i]), py);
    });
    g.stroke();
  }
}

async function listen() {
  while (token) {
    try {
      const r = await fetch('/api/events', {
        headers: { Authorization: 'Bearer ' + token },
        cache: 'no-store',
      });
      if (r.status === 401) {
        const j = await r.json().catch(() => ({}));
        return unpaired(j.error);
      }
      if (!r.ok) throw new Error('status ' + r.status);
      $('online').className = 'dot on';
      const reader = r.body.getReader();
      const text = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += text.decode(value, { stream: true }).replace(/\r\n/g, '\n');
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = frame
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trimStart())
            .join('\n');
          if (!data) continue;
          const j = JSON.parse(data);
          clockOffset = j.now_ms - Date.now();
          render(j.state);
        }
      }
    } catch (e) {
      show('connection lost, retrying…', true);
    }
    $('online').className = 'dot';
    await new Promise((ok) => setTimeout(ok, 1000));
  }
}

function start() {
  $('pair-view').hidden = true;
  $('main-view').hidden = false;
  listen();
}

function init() {
  slider('volume', (db) => ({ cmd: 'volume', db }), fmtDb);
  slider('bass', (db) => ({ cmd: 'bass', db }), fmtDb);
  slider('treble', (db) => ({ cmd: 'treble', db }), fmtDb);
  const max = () => (state ? state.max_db : 0);
  stepper('vol-down', 'volume_db', 'volume', -1);
  stepper('vol-up', 'volume_db', 'volume', +1, max);
  stepper('bass-down', 'bass_db', 'bass', -1);
  stepper('bass-up', 'bass_db', 'bass', +1);
  stepper('treble-down', 'treble_db', 'treble', -1);
  stepper('treble-up', 'treble_db', 'treble', +1);
  toggle('mute', 'muted');
  toggle('loudness', 'loudness');
  toggle('bypass', 'bypass');
  $('pair').addEventListener('click', () => pair($('code').value));
  $('code').addEventListener('keydown', (e) => e.key === 'Enter' && pair($('code').value));
  window.addEventListener('resize', () => state && plot(state));
  // The QR code's address carries the code in the fragment, which never reaches a server.
  const m = /code=(\d+)/.exec(location.hash);
  if (m) {
    history.replaceState(null, '', location.pathname);
    pair(m[1]);
  } else if (token) {
    start();
  } else {
    unpaired();
  }
}

init();
