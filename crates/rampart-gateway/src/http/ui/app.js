// rampart's dashboard: plain JavaScript, no build step, no dependencies.
// Pages (hash routes): #/ rollouts, #/r/NAME one rollout, #/r/NAME/pairs its shadow pairs.
// Every view polls its data calls under /ui/api/ every 2 s; the comparison report (a cache the
// gateway refreshes in the background) every 5 s, every 2 s while it computes its first one.
'use strict';

const POLL_MS = 2000;
const REPORT_MS = 5000;
const view = document.getElementById('view');
const crumbs = document.getElementById('crumbs');
const live = document.getElementById('live');

let route = null;       // {page, name}
let timer = null;
let reportAt = 0;
let report = null;
const PAGE = 20;
// The pairs page's filters, and its place: `pages` holds the cursor of each page shown so far
// (null for the newest), so Older follows the server's `next` and Newer steps back.
const pairFilter = { cls: '', tenant: '', flag: '', pages: [null] };
const FLAGS = { refusal: 'refusal', format_change: 'format change', low_similarity: 'low similarity' };

function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
const enc = encodeURIComponent;
function pct(x, digits = 1) { return x == null ? '—' : (100 * x).toFixed(digits) + '%'; }
function num(x, digits = 3) { return x == null ? '—' : Number(x).toFixed(digits); }
function dur(ms) {
  if (ms == null || ms < 0) return '—';
  const s = Math.round(ms / 1000);
  if (s < 90) return s + 's';
  if (s < 5400) return Math.round(s / 60) + 'm';
  if (s < 172800) return (s / 3600).toFixed(1) + 'h';
  return (s / 86400).toFixed(1) + 'd';
}
function time(ms) { return ms ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—'; }

async function api(path, opts = {}) {
  const headers = Object.assign({ 'x-rampart-ui': '1' }, opts.body ? { 'content-type': 'application/json' } : {});
  const r = await fetch('/ui/api/' + path, Object.assign({ credentials: 'same-origin', headers }, opts));
  if (r.status === 401) { location.reload(); throw new Error('signed out'); }
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error((body && body.error && body.error.message) || ('HTTP ' + r.status));
  return body;
}

function phaseOf(r) { return (r.status && r.status.phase) || 'stage'; }
function stateLabel(r) {
  const p = phaseOf(r);
  return p === 'stage' ? 'running' : p;
}
function health(r) {
  const st = r.status;
  const p = phaseOf(r);
  if (p === 'rolled_back') return ['bad', 'rolled back'];
  if (!st || !st.evaluation) return ['', 'no evaluation yet'];
  const g = st.evaluation.guardrails || [];
  if (g.some((x) => x.breached)) return ['bad', 'a guardrail breached'];
  if (p === 'holding' || p === 'paused') return ['warn', p];
  if (g.length && g.every((x) => !x.exposure_met)) return ['', 'not enough exposure yet'];
  return ['ok', 'guardrails within bounds'];
}
function nextGateEta(r) {
  const gates = r.status && r.status.evaluation && r.status.evaluation.gates;
  if (!gates) return '—';
  const pending = gates.reports.filter((g) => !g.passed);
  if (!pending.length) return 'all passed';
  const etas = pending.map((g) => g.eta_seconds).filter((x) => x != null);
  return etas.length === pending.length ? dur(1000 * Math.max(...etas)) : 'unknown';
}

// ---------------------------------------------------------------- rollouts
async function renderRollouts() {
  const d = await api('rollouts');
  crumbs.innerHTML = '<span>Rollouts</span>';
  const rows = d.rollouts.map((r) => {
    const [light, why] = health(r);
    const since = r.status && r.status.state ? d.now_ms - r.status.state.stage_epoch_ms : null;
    return `<tr data-rollout="${esc(r.name)}">
      <td><span class="light ${light}" title="${esc(why)}"></span></td>
      <td><a href="#/r/${enc(r.name)}">${esc(r.name)}</a></td>
      <td>${esc(r.route)}</td>
      <td class="stage">${esc(r.stage)}</td>
      <td class="num">${num(r.percent, 1)}%</td>
      <td class="num">${num(r.shadow_percent, 1)}%</td>
      <td><span class="pill ${esc(phaseOf(r))}">${esc(stateLabel(r))}</span></td>
      <td class="num">${dur(since)}</td>
      <td class="num">${esc(nextGateEta(r))}</td>
    </tr>`;
  }).join('');
  view.innerHTML = `<h1>Rollouts</h1>
    <table id="rollouts"><thead><tr><th></th><th>rollout</th><th>route</th><th>stage</th>
    <th class="num">canary</th><th class="num">shadow</th><th>state</th><th class="num">in stage</th>
    <th class="num">next gate ETA</th></tr></thead><tbody>${rows ||
      '<tr><td colspan="9" class="muted">No rollouts configured.</td></tr>'}</tbody></table>`;
}

// ---------------------------------------------------------------- one rollout
function rolloutSkeleton(name) {
  crumbs.innerHTML = `<a href="#/">Rollouts</a><span>${esc(name)}</span><a href="#/r/${enc(name)}/pairs">Pairs</a>`;
  view.innerHTML = `<h1>${esc(name)} <span id="state" class="pill"></span> <span class="muted">stage</span> <span id="stage"></span></h1>
    <div id="summary" class="muted"></div>
    <div class="actions">
      <button data-action="pause">Pause</button><button data-action="resume">Resume</button>
      <button data-action="promote">Promote</button><button data-action="rollback">Rollback</button>
      <a href="#/r/${enc(name)}/pairs" style="margin-left:auto">Shadow pairs →</a>
    </div>
    <h2>Stages</h2><div id="timeline"></div>
    <h2>Gates</h2><div id="gates-box"></div>
    <h2>Guardrails</h2><div class="legend"><span><i style="background:var(--canary)"></i>canary</span><span><i style="background:var(--control)"></i>control</span><span><i style="background:var(--warn)"></i>anytime-valid bound</span><span><i style="background:var(--bad)"></i>threshold</span></div>
    <div id="charts" class="cards"></div>
    <h2>Traffic this stage</h2><div id="traffic"></div>
    <section id="outcomes-section" hidden><h2>Outcomes</h2><div id="outcomes"></div></section>
    <h2>Comparison report</h2><div id="report"><p class="muted">Loading…</p></div>
    <h2>Audit log</h2><div id="audit"></div>`;
  for (const b of view.querySelectorAll('button[data-action]')) {
    b.addEventListener('click', () => confirmAction(name, b.dataset.action));
  }
  reportAt = 0;
  report = null;
}

function renderTimeline(r, audit) {
  const idx = r.status && r.status.state && r.status.state.phase.index;
  const cur = r.stages.findIndex((s) => s.name === r.stage);
  const at = idx ?? cur;
  const steps = r.stages.map((s, i) => {
    const cls = i < at ? 'done' : i === at ? 'current' : '';
    const what = s.percent > 0 ? `canary ${s.percent}%` : `shadow ${s.shadow_percent}%`;
    return `<div class="step ${cls}" data-stage="${esc(s.name)}">${esc(s.name)}<br><span class="muted">${esc(what)} · min ${dur(1000 * s.min_duration_seconds)}</span></div>`;
  }).join('');
  const decisions = audit.slice(-8).reverse().map((e) =>
    `<tr><td>${esc(time(e.ts_ms))}</td><td>${esc(e.action)}</td><td>${esc(e.from_state)} → ${esc(e.to_state)}</td><td>${esc(e.reason)}</td></tr>`).join('');
  return `<div class="timeline">${steps}</div>` +
    (decisions ? `<table><thead><tr><th>when</th><th>decision</th><th>move</th><th>reason</th></tr></thead><tbody>${decisions}</tbody></table>` : '');
}

function renderGates(r) {
  const gates = r.status && r.status.evaluation && r.status.evaluation.gates;
  if (!gates) return '<p class="muted">No gate evaluated (not in a running stage, or no check yet).</p>';
  const rows = gates.reports.map((g) => `<tr data-gate="${esc(g.name)}">
    <td><span class="light ${g.passed ? 'ok' : 'warn'}"></span> ${esc(g.name)}</td>
    <td>${esc(g.evidence)}</td><td class="num">${num(g.value)}</td><td class="num">${num(g.threshold)}</td>
    <td class="num">${g.samples}</td><td class="num">${g.samples_needed ?? '—'}</td>
    <td class="num">${g.passed ? 'passed' : g.eta_seconds == null ? '—' : dur(1000 * g.eta_seconds)}</td></tr>`).join('');
  return `<table id="gates"><thead><tr><th>gate</th><th>checks</th><th class="num">value</th><th class="num">needs</th>
    <th class="num">samples seen</th><th class="num">samples needed</th><th class="num">ETA</th></tr></thead><tbody>${rows}</tbody></table>` +
    (gates.conflict ? `<p class="bad">${esc(gates.conflict)}</p>` : '');
}

// One SVG per guardrail: canary and control values above, the bound against the threshold below.
function chart(name, pts) {
  const W = 320, H = 140, top = [8, 86], bot = [100, 132];
  const t0 = pts[0].t_ms, t1 = Math.max(pts[pts.length - 1].t_ms, t0 + 1);
  const x = (t) => 6 + (W - 12) * (t - t0) / (t1 - t0);
  const scale = (vals, [a, b]) => {
    const v = vals.filter((z) => z != null && isFinite(z));
    let lo = Math.min(0, ...v), hi = Math.max(...v, lo + 1e-9);
    if (hi === lo) hi = lo + 1;
    return (z) => b - (b - a) * (z - lo) / (hi - lo);
  };
  const g = pts.map((p) => [p.t_ms, p.guardrails.find((q) => q.name === name)]).filter(([, q]) => q);
  const yTop = scale(g.flatMap(([, q]) => [q.canary, q.control]), top);
  const yBot = scale(g.flatMap(([, q]) => [q.evidence, q.threshold]), bot);
  const line = (key, y, cls) => {
    const d = g.filter(([, q]) => q[key] != null).map(([t, q], i) => `${i ? 'L' : 'M'}${x(t).toFixed(1)},${y(q[key]).toFixed(1)}`).join('');
    return d ? `<path class="${cls}" d="${d}"/>` : '';
  };
  const dots = (key, y, cls) => g.filter(([, q]) => q[key] != null)
    .map(([t, q]) => `<circle class="${cls}" cx="${x(t).toFixed(1)}" cy="${y(q[key]).toFixed(1)}" r="2"><title>${esc(key)} ${num(q[key], 4)} at ${esc(time(t))}</title></circle>`).join('');
  const last = g.length ? g[g.length - 1][1] : null;
  return `<div class="card" data-guardrail="${esc(name)}"><h3>${last && last.breached ? '<span class="light bad"></span> ' : ''}${esc(name)}</h3>
    <div class="muted">canary ${num(last && last.canary, 4)} · control ${num(last && last.control, 4)} · bound ${num(last && last.evidence, 4)} vs ${num(last && last.threshold, 4)}</div>
    <svg class="chart" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none">
      <line x1="0" x2="${W}" y1="93" y2="93" stroke="#e4e7ec"/>
      ${line('control', yTop, 'control')}${line('canary', yTop, 'canary')}
      ${dots('control', yTop, 'control')}${dots('canary', yTop, 'canary')}
      ${last ? `<line class="threshold" x1="0" x2="${W}" y1="${yBot(last.threshold).toFixed(1)}" y2="${yBot(last.threshold).toFixed(1)}"/>` : ''}
      ${line('evidence', yBot, 'bound')}
    </svg></div>`;
}

function renderCharts(points) {
  if (!points.length) return '<p class="muted">No guardrail check yet.</p>';
  const names = [...new Set(points.flatMap((p) => p.guardrails.map((g) => g.name)))];
  return names.map((n) => chart(n, points)).join('');
}

function renderTraffic(r) {
  const st = r.status;
  if (!st) return '<p class="muted">No traffic yet.</p>';
  const row = (label, c) => `<tr><td>${label}</td><td class="num">${c.requests}</td><td class="num">${c.errors}</td>
    <td class="num">${c.refusals}</td><td class="num">${c.thumbs_up}</td><td class="num">${c.thumbs_down}</td></tr>`;
  const srm = st.evaluation && st.evaluation.gates && st.evaluation.gates.reports.find((g) => /srm|ratio/i.test(g.name));
  const pairs = st.stage_pairs ? `<p>Shadow pairs this stage: <b>${st.stage_pairs.pairs}</b> (candidate errors ${st.stage_pairs.candidate_errors}, refusals ${st.stage_pairs.candidate_refusals} vs baseline ${st.stage_pairs.baseline_refusals})</p>` : '';
  return `<table id="traffic-table"><thead><tr><th>cohort</th><th class="num">requests</th><th class="num">errors</th>
    <th class="num">refusals</th><th class="num">thumbs up</th><th class="num">thumbs down</th></tr></thead><tbody>
    ${row('control', st.stage_control)}${row('canary', st.stage_canary)}</tbody></table>
    <p>Sample-ratio check: ${srm ? `${srm.passed ? 'ok' : '<b class="bad">mismatch</b>'} (p = ${num(srm.value, 4)})` : '<span class="muted">not evaluated yet</span>'}</p>${pairs}`;
}

// ---------------------------------------------------------------- outcomes
// Business outcomes per name and cohort (n, mean, anytime-valid interval) since the slow-signal
// epoch, from the published status; the section shows only when there are any.
function renderOutcomes(r) {
  const list = (r.status && r.status.outcomes) || [];
  const iv = (lo, hi) => (lo == null ? '' : ` [${num(lo, 2)}, ${num(hi, 2)}]`);
  const rows = list.flatMap((o) => o.cohorts.map((c, i) => `<tr data-outcome="${esc(o.name)}" data-cohort="${esc(c.cohort)}">
    <td>${i ? '' : esc(o.name) + (o.slow_signal ? ' <span class="muted">slow gate</span>' : '')}</td><td>${esc(c.cohort)}</td>
    <td class="num">${c.n}</td><td class="num">${num(c.mean, 2)}${iv(c.ci_low, c.ci_high)}</td>
    <td class="num">${i ? '' : o.difference ? num(o.difference.estimate, 2) + iv(o.difference.ci_low, o.difference.ci_high) : '—'}</td></tr>`)).join('');
  return [list.length > 0, `<table id="outcomes-table"><thead><tr><th>outcome</th><th>cohort</th><th class="num">n</th>
    <th class="num">mean [interval]</th><th class="num">canary − control</th></tr></thead><tbody>${rows}</tbody></table>
    <p class="muted">Intervals are anytime-valid (the slow gates' test), at ${list.length ? pct(1 - list[0].alpha, 0) : ''}.</p>`];
}

function renderReport(rep) {
  if (!rep) return '<p class="muted">Loading…</p>';
  if (!rep.pairs) return '<p class="muted">No shadow pairs yet.</p>';
  const m = rep; // the metrics are flattened into the report
  const rate = (p) => `${pct(p.baseline_rate)} → ${pct(p.candidate_rate)}${p.flagged ? ' <b class="bad">flagged</b>' : ''}`;
  const cards = [
    ['Equivalence', `${pct(m.equivalence.rate)} [${pct(m.equivalence.ci_low)}, ${pct(m.equivalence.ci_high)}] of ${rep.comparable_pairs} pairs`],
    ['Length', `ratio ${num(m.length_ratio.estimate, 2)} [${num(m.length_ratio.ci_low, 2)}, ${num(m.length_ratio.ci_high, 2)}]${m.length_ratio.flagged ? ' <b class="bad">flagged</b>' : ''}`],
    ['Refusals', rate(m.refusal)],
    ['Errors', rate(m.errors)],
    ['Openings', m.openings.phrase ? `“${esc(m.openings.phrase)}” ${pct(m.openings.share_delta)}${m.openings.drift_flagged ? ' <b class="bad">flagged</b>' : ''}` : 'no drift'],
    ['Judge win rate', rep.judge ? `${pct(rep.judge.win_rate)} [${pct(rep.judge.ci_low)}, ${pct(rep.judge.ci_high)}] of ${rep.judge.judged_pairs}` : '<span class="muted">no judge</span>'],
    ['Cost per request', `$${num(m.cost.baseline_mean_usd, 5)} → $${num(m.cost.candidate_mean_usd, 5)}`],
    ['Latency p95', `${num(m.latency.baseline_p95_ms, 0)} → ${num(m.latency.candidate_p95_ms, 0)} ms`],
  ].map(([h, b]) => `<div class="card"><h3>${h}</h3>${b}</div>`).join('');
  const classes = (rep.classes || []).map((c) => `<tr><td>${esc(c.class)}</td><td class="num">${c.pairs}</td>
    <td class="num">${pct(c.equivalence.rate)}</td><td class="num">${pct(c.refusal.baseline_rate)} → ${pct(c.refusal.candidate_rate)}</td>
    <td>${esc((c.flags || []).join(', '))}</td></tr>`).join('');
  return `<p>${rep.pairs} pairs. Flags: ${rep.flags.length ? `<b class="bad">${esc(rep.flags.join(', '))}</b>` : 'none'}</p>
    <div class="cards">${cards}</div>
    ${classes ? `<h2>Per class</h2><table id="classes"><thead><tr><th>class</th><th class="num">pairs</th><th class="num">equivalent</th><th class="num">refusals</th><th>flags</th></tr></thead><tbody>${classes}</tbody></table>` : ''}`;
}

function renderAudit(entries) {
  if (!entries.length) return '<p class="muted">No entries.</p>';
  return `<table id="audit-log"><thead><tr><th>when</th><th>actor</th><th>action</th><th>from → to</th><th>reason</th></tr></thead><tbody>` +
    entries.slice().reverse().map((e) => `<tr><td>${esc(time(e.ts_ms))}</td><td>${esc(e.actor)}</td><td>${esc(e.action)}</td>
      <td>${esc(e.from_state)} → ${esc(e.to_state)}</td><td>${esc(e.reason)}</td></tr>`).join('') + '</tbody></table>';
}

async function renderRollout(name) {
  if (!document.getElementById('timeline')) rolloutSkeleton(name);
  const [r, hist, audit] = await Promise.all([
    api(`rollouts/${enc(name)}`),
    api(`rollouts/${enc(name)}/history`),
    api(`rollouts/${enc(name)}/events?limit=50`),
  ]);
  if (!route || route.name !== name) return;
  document.getElementById('state').textContent = stateLabel(r);
  document.getElementById('state').className = 'pill ' + phaseOf(r);
  document.getElementById('stage').textContent = r.stage;
  const since = r.status && r.status.state ? r.now_ms - r.status.state.stage_epoch_ms : null;
  const [light, why] = health(r);
  document.getElementById('summary').innerHTML = `<span class="light ${light}"></span> ${esc(why)} · route ${esc(r.route)} ·
    ${esc(r.baseline)} → ${esc(r.candidate)} · canary ${num(r.percent, 1)}% · shadow ${num(r.shadow_percent, 1)}% · ${dur(since)} in stage · next gate ${esc(nextGateEta(r))}`;
  document.getElementById('timeline').innerHTML = renderTimeline(r, audit.events);
  document.getElementById('gates-box').innerHTML = renderGates(r);
  document.getElementById('charts').innerHTML = renderCharts(hist.points);
  document.getElementById('traffic').innerHTML = renderTraffic(r);
  const [hasOutcomes, outcomes] = renderOutcomes(r);
  document.getElementById('outcomes-section').hidden = !hasOutcomes;
  if (hasOutcomes) document.getElementById('outcomes').innerHTML = outcomes;
  document.getElementById('audit').innerHTML = renderAudit(audit.events);
  if (Date.now() - reportAt > REPORT_MS) {
    reportAt = Date.now();
    api(`rollouts/${enc(name)}/report`).then((rep) => {
      // Not computed yet (the gateway just started): ask again at the next poll.
      if (rep.pending) reportAt = 0;
      else report = rep;
      const el = document.getElementById('report');
      if (el) el.innerHTML = rep.pending ? '<p class="muted">Computing the report…</p>' : renderReport(rep);
    }).catch((e) => { const el = document.getElementById('report'); if (el) el.textContent = 'Report unavailable: ' + e.message; });
  }
}

// ---------------------------------------------------------------- actions
const dlg = document.getElementById('confirm');
let pending = null;
function confirmAction(name, action) {
  pending = { name, action };
  document.getElementById('confirm-title').textContent = `${action[0].toUpperCase()}${action.slice(1)} ${name}?`;
  document.getElementById('confirm-text').textContent = {
    pause: 'Freezes the ramp; the split stays, shadow traffic stops.',
    resume: 'Lets the controller move the rollout again.',
    promote: 'Moves to the next stage now, whatever the gates say.',
    rollback: 'Routes everyone to the baseline now.',
  }[action] || '';
  document.getElementById('confirm-reason').value = '';
  document.getElementById('confirm-error').textContent = '';
  dlg.showModal();
}
document.getElementById('confirm-cancel').addEventListener('click', () => dlg.close());
document.getElementById('confirm-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const reason = document.getElementById('confirm-reason').value.trim();
  if (!reason || !pending) return;
  const { name, action } = pending;
  try {
    await api(`rollouts/${enc(name)}/${action}`, { method: 'POST', body: JSON.stringify({ reason, actor: 'dashboard' }) });
    dlg.close();
    pending = null;
    refresh();
  } catch (err) {
    document.getElementById('confirm-error').textContent = err.message;
  }
});

// ---------------------------------------------------------------- pairs
function side(s) {
  if (!s) return '<span class="muted">—</span>';
  const text = s.text ?? s.answer ?? s.content ?? '';
  const tags = [s.error ? 'error' : '', s.refusal ? 'refusal' : ''].filter(Boolean).join(' ');
  return `${tags ? `<span class="pill">${esc(tags)}</span> ` : ''}${esc(text)}`;
}

function pairsSkeleton(name) {
  crumbs.innerHTML = `<a href="#/">Rollouts</a><a href="#/r/${enc(name)}">${esc(name)}</a><span>Pairs</span>`;
  const flagOptions = Object.entries(FLAGS).map(([v, label]) => `<option value="${v}">${label}</option>`).join('');
  view.innerHTML = `<h1>Shadow pairs: ${esc(name)}</h1>
    <div class="filters"><label>class <select id="class"><option value="">all</option></select></label>
    <label>tenant <select id="tenant"><option value="">all</option></select></label>
    <label>flag <select id="flag"><option value="">any</option>${flagOptions}</select></label>
    <span class="muted" id="pairs-count"></span>
    <button id="newer">← Newer</button><button id="older">Older →</button></div><div id="pairs-box"></div>`;
  for (const [id, key] of [['class', 'cls'], ['tenant', 'tenant'], ['flag', 'flag']]) {
    document.getElementById(id).addEventListener('change', (e) => {
      pairFilter[key] = e.target.value;
      pairFilter.pages = [null];
      refresh();
    });
  }
  document.getElementById('newer').addEventListener('click', () => {
    if (pairFilter.pages.length > 1) { pairFilter.pages.pop(); refresh(); }
  });
  document.getElementById('older').addEventListener('click', (e) => {
    if (e.target.dataset.next) { pairFilter.pages.push(e.target.dataset.next); refresh(); }
  });
  const groups = (rep) => {
    addOptions('class', (rep.classes || []).map((c) => c.class), pairFilter.cls);
    addOptions('tenant', (rep.tenants || []).map((t) => t.tenant), pairFilter.tenant);
  };
  if (!report) api(`rollouts/${enc(name)}/report`).then((rep) => { if (!rep.pending) { report = rep; groups(rep); } }).catch(() => {});
  else groups(report);
}

async function renderPairs(name) {
  if (!document.getElementById('pairs-box')) pairsSkeleton(name);
  const f = pairFilter;
  const before = f.pages[f.pages.length - 1];
  const q = `limit=${PAGE}` + (f.cls ? `&class=${enc(f.cls)}` : '') + (f.tenant ? `&tenant=${enc(f.tenant)}` : '') +
    (f.flag ? `&flag=${enc(f.flag)}` : '') + (before ? `&before=${enc(before)}` : '');
  const d = await api(`rollouts/${enc(name)}/pairs?${q}`);
  if (!route || route.name !== name || f.pages[f.pages.length - 1] !== before) return;
  addOptions('class', d.pairs.map((p) => p.class), f.cls);
  addOptions('tenant', d.pairs.map((p) => p.tenant), f.tenant);
  const first = (f.pages.length - 1) * PAGE + 1;
  document.getElementById('pairs-count').textContent = d.pairs.length ? `${first}–${first + d.pairs.length - 1}, newest first` : '';
  document.getElementById('newer').disabled = f.pages.length === 1;
  const older = document.getElementById('older');
  older.disabled = !d.next;
  older.dataset.next = d.next || '';
  const flags = (p) => (p.flags || []).map((x) => `<span class="pill flag">${esc(FLAGS[x] || x)}</span>`).join(' ');
  document.getElementById('pairs-box').innerHTML = d.pairs.length ? `<table id="pairs" class="pairs"><thead><tr><th>when</th><th>class</th><th>tenant</th>
    <th>flags</th><th>baseline</th><th>candidate</th></tr></thead><tbody>` + d.pairs.map((p) => `<tr data-ts="${p.ts_ms}" data-class="${esc(p.class)}" data-tenant="${esc(p.tenant)}" data-flags="${esc((p.flags || []).join(' '))}">
      <td>${esc(time(p.ts_ms))}<br><span class="muted">${esc(p.stage)}</span></td><td>${esc(p.class)}</td><td>${esc(p.tenant)}</td>
      <td>${flags(p)}</td><td class="text">${side(p.baseline)}</td><td class="text">${side(p.candidate)}</td></tr>`).join('') + '</tbody></table>'
    : '<p class="muted">No pairs match.</p>';
}

function addOptions(id, list, current) {
  const sel = document.getElementById(id);
  if (!sel) return;
  const have = new Set([...sel.options].map((o) => o.value));
  for (const c of list) {
    if (c && !have.has(c)) { sel.add(new Option(c, c)); have.add(c); }
  }
  sel.value = current;
}

// ---------------------------------------------------------------- routing and polling
function parse() {
  const h = location.hash.replace(/^#\/?/, '');
  const parts = h.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'r' && parts[1]) return { page: parts[2] === 'pairs' ? 'pairs' : 'rollout', name: parts[1] };
  return { page: 'rollouts', name: null };
}

async function refresh() {
  try {
    if (route.page === 'rollouts') await renderRollouts();
    else if (route.page === 'rollout') await renderRollout(route.name);
    else await renderPairs(route.name);
    live.className = '';
    live.textContent = 'live · ' + new Date().toLocaleTimeString();
  } catch (e) {
    live.className = 'stale';
    live.textContent = 'update failed: ' + e.message;
  }
}

function navigate() {
  route = parse();
  view.innerHTML = '<p class="muted">Loading…</p>';
  Object.assign(pairFilter, { cls: '', tenant: '', flag: '', pages: [null] });
  refresh();
}

window.addEventListener('hashchange', navigate);
navigate();
timer = setInterval(refresh, POLL_MS);
