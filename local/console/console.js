// The Switchboard local console. Hand-written, no build step, no external requests.
// Reads /local/api/* and one live stream (/local/stream, server-sent events read with
// fetch so that the admin secret can go in a header). Everything shown is built with
// textContent: payloads are the app's users' data.
'use strict';

const MAX_FRAMES = 2000;      // frames kept in the log
const MAX_ROWS = 400;         // frames rendered at once
const MAX_SAMPLES = 15 * 60;  // chart history, one sample a second

const state = {
  overview: null, connections: [], rooms: [], queues: [], samples: [], frames: [],
  paused: false, selectedFrame: null, tab: 'overview', route: null, pushTarget: null,
  dropped: 0, latencyRoute: '',
};

// ---------- small helpers ----------
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k.startsWith('data')) el.setAttribute(k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()), v);
    else el.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svgEl(tag, attrs = {}) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

const secret = () => sessionStorage.getItem('switchboard-admin-secret') || '';

function headers(extra = {}) {
  const hs = { ...extra };
  if (secret()) hs.Authorization = `Bearer ${secret()}`;
  return hs;
}

async function api(path, { method = 'GET', body } = {}) {
  const opts = { method, headers: headers(method === 'GET' ? {} : { 'x-switchboard-console': '1' }) };
  if (body !== undefined) opts.body = body;
  const res = await fetch(path, opts);
  if (res.status === 403 && !secret()) $('[data-testid=auth]').hidden = false;
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!res.ok) throw new Error((json && json.message) || `${res.status} ${res.statusText}`);
  return json;
}

function notify(message) {
  const box = $('[data-testid=notice]');
  $('span', box).textContent = message;
  box.hidden = false;
}

const short = (id) => (id ? String(id).slice(0, 8) + '…' : '–');
const clock = (t) => new Date(t).toLocaleTimeString([], { hour12: false }) + '.' + String(t % 1000).padStart(3, '0');
function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}
function micros(us) {
  if (us === undefined || us === null) return '';
  if (us < 1000) return `${us} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}
function pretty(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}
function debounce(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

// ---------- tabs ----------
function showTab(tab) {
  state.tab = tab;
  for (const b of $$('nav button')) b.classList.toggle('active', b.dataset.tab === tab);
  for (const p of $$('[data-panel]')) p.hidden = p.dataset.panel !== tab;
  render();
  if (tab === 'queues') loadQueues();
}

function render() {
  if (state.tab === 'overview') renderCharts();
  if (state.tab === 'connections') renderConnections();
  if (state.tab === 'rooms') renderRooms();
  if (state.tab === 'frames') renderFrames();
  if (state.tab === 'routes') renderRouteConnections();
  $('[data-count=connections]').textContent = state.connections.length;
  $('[data-count=rooms]').textContent = state.rooms.length;
}

// ---------- connections ----------
async function loadConnections() {
  try { state.connections = await api('/local/api/connections'); } catch (e) { notify(`connections: ${e.message}`); }
  render();
}
const refreshConnections = debounce(loadConnections, 250);

function renderConnections() {
  const body = $('[data-testid=connections] tbody');
  const now = Date.now();
  body.replaceChildren(...state.connections.map((c) => h('tr', { dataTestid: 'connection', dataId: c.id, dataUser: c.user },
    h('td', {}, h('code', { title: c.id, text: c.id })),
    h('td', { title: JSON.stringify(c.claims) }, c.user || h('span', { class: 'muted', text: 'anonymous' })),
    h('td', { class: 'mono', text: c.sourceIp || '' }),
    h('td', { class: 'ua', title: c.userAgent || '', text: c.userAgent || '' }),
    h('td', {}, c.rooms.map((r) => h('span', { class: 'tag', text: r }))),
    h('td', { text: ago(now - c.connectedAt) }),
    h('td', { text: ago(now - c.lastActiveAt) }),
    h('td', { class: 'num', dataTestid: 'frames-in', text: c.framesIn }),
    h('td', { class: 'num', text: c.framesOut }),
    h('td', { class: 'actions' },
      h('button', { class: 'secondary small', onclick: () => openPush(c.id) }, 'Send…'),
      h('button', { class: 'danger small', dataTestid: 'close-connection', onclick: () => closeConnection(c.id) }, 'Close')),
  )));
  $('[data-empty=connections]').hidden = state.connections.length > 0;
}

async function closeConnection(id) {
  try { await api(`/local/api/connections/${encodeURIComponent(id)}/close`, { method: 'POST' }); } catch (e) { notify(`close: ${e.message}`); }
  refreshConnections();
}

function openPush(id) {
  state.pushTarget = id;
  const form = $('[data-testid=push-form]');
  $('[data-field=target]', form).textContent = id;
  $('.result', form).textContent = '';
  form.hidden = false;
  $('textarea', form).focus();
}

async function sendPush(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const result = $('.result', form);
  try {
    await api(`/local/api/connections/${encodeURIComponent(state.pushTarget)}/send`, { method: 'POST', body: form.frame.value });
    result.className = 'result good';
    result.textContent = 'sent';
  } catch (e) {
    result.className = 'result bad';
    result.textContent = e.message;
  }
}

// ---------- rooms ----------
async function loadRooms() {
  try { state.rooms = await api('/local/api/rooms'); } catch (e) { notify(`rooms: ${e.message}`); }
  render();
}
const refreshRooms = debounce(loadRooms, 300);

function renderRooms() {
  const box = $('[data-testid=rooms]');
  const names = new Map(state.connections.map((c) => [c.id, c.user]));
  box.replaceChildren(...state.rooms.map((r) => {
    const textarea = h('textarea', { rows: 2, spellcheck: 'false' });
    textarea.value = JSON.stringify({ action: 'notice', room: r.room, text: 'hello room' });
    const result = h('span', { class: 'result' });
    const send = async (e) => {
      e.preventDefault();
      try {
        const out = await api(`/local/api/rooms/${encodeURIComponent(r.room)}/send`, { method: 'POST', body: textarea.value });
        result.className = 'result good';
        result.textContent = `sent to ${out.sent}` + (out.gone ? `, ${out.gone} gone` : '');
      } catch (err) { result.className = 'result bad'; result.textContent = err.message; }
    };
    const hist = r.history && r.history.epoch ? r.history : null;
    const position = hist
      ? h('span', { class: 'tag', dataTestid: 'room-history', title: 'history: latest seq and epoch', text: `seq ${hist.seq} · epoch ${hist.epoch}` })
      : h('span', { class: 'muted', text: !r.history ? 'no history' : r.history.error ? `history: ${r.history.error}` : 'history: nothing sent yet' });
    return h('div', { class: 'card', dataTestid: 'room', dataRoom: r.room, dataMembers: r.members.length, dataSeq: hist ? hist.seq : '' },
      h('h3', {}, r.room, h('span', { class: 'muted', text: `${r.members.length} member${r.members.length === 1 ? '' : 's'}` }), position),
      h('ul', {}, r.members.map((m) => h('li', { dataTestid: 'room-member', dataConnectionId: m.connectionId },
        h('b', { text: m.username || names.get(m.connectionId) || 'anonymous' }), h('code', { class: 'muted', text: m.connectionId })))),
      h('form', { class: 'composer', onsubmit: send }, textarea, h('div', { class: 'row' }, h('button', {}, 'Send to room'), result)));
  }));
  $('[data-empty=rooms]').hidden = state.rooms.length > 0;
}

// ---------- frames ----------
function addFrame(ev) {
  state.frames.push(ev);
  if (state.frames.length > MAX_FRAMES) state.frames.splice(0, state.frames.length - MAX_FRAMES);
  if (ev.route && ![...$('[data-filter=route]').options].some((o) => o.value === ev.route)) {
    $('[data-filter=route]').append(h('option', { value: ev.route, text: ev.route }));
  }
  scheduleFrames();
}

let framesQueued = false;
function scheduleFrames() {
  if (framesQueued || state.paused || state.tab !== 'frames') return;
  framesQueued = true;
  setTimeout(() => { framesQueued = false; renderFrames(); }, 200);
}

function outcomeOf(f) {
  if (f.type === 'close') return 'close';
  if (f.type === 'connect') return 'connect';
  return f.outcome;
}

function matches(f) {
  const conn = $('[data-filter=conn]').value.trim();
  const route = $('[data-filter=route]').value;
  const outcome = $('[data-filter=outcome]').value;
  return (!conn || (f.conn || '').startsWith(conn)) && (!route || f.route === route) && (!outcome || outcomeOf(f) === outcome);
}

function outcomeTag(f) {
  const kind = outcomeOf(f);
  let label = kind;
  if (kind === 'error') label = `error ${f.code || f.status}`;
  if (kind === 'close') label = `close ${f.code}`;
  if (kind === 'none') label = 'no reply';
  return h('span', { class: `tag ${kind}`, text: label });
}

function renderFrames() {
  if (state.paused) return;
  const shown = state.frames.filter(matches).slice(-MAX_ROWS).reverse();
  $('[data-testid=frame-count]').textContent = `${shown.length} of ${state.frames.length} events`;
  $('[data-testid=frames] tbody').replaceChildren(...shown.map((f) => {
    const dir = f.type === 'frame' ? f.dir : (f.type === 'connect' ? 'in' : 'out');
    return h('tr', {
      dataTestid: 'frame', dataRoute: f.route || '', dataDir: dir, dataOutcome: outcomeOf(f), dataConn: f.conn,
      class: f === state.selectedFrame ? 'selected' : null,
      onclick: () => selectFrame(f),
    },
    h('td', { class: 'mono', text: clock(f.t) }),
    h('td', { class: `dir dir-${dir}`, title: dir === 'in' ? 'from the client' : 'to the client', text: dir === 'in' ? '→' : '←' }),
    h('td', {}, h('code', { title: f.conn, text: short(f.conn) })),
    h('td', { text: f.route || (f.type === 'frame' ? '' : f.type) }),
    h('td', { class: 'num', text: f.size ?? '' }),
    h('td', { class: 'num', dataTestid: 'latency', text: micros(f.latencyUs) }),
    h('td', {}, outcomeTag(f)));
  }));
}

function selectFrame(f) {
  state.selectedFrame = f;
  const rows = [['time', new Date(f.t).toISOString()], ['connection', f.conn], ['direction', f.dir || f.type]];
  if (f.route) rows.push(['route', f.route]);
  if (f.latencyUs !== undefined) rows.push(['latency', micros(f.latencyUs)]);
  if (f.size !== undefined) rows.push(['size', `${f.size} bytes`]);
  if (f.status) rows.push(['status', f.status]);
  if (f.reason) rows.push(['reason', f.reason]);
  if (f.query !== undefined) rows.push(['query', f.query]);
  if (f.user !== undefined) rows.push(['identity', f.user || 'anonymous']);
  const detail = $('[data-testid=frame-detail]');
  detail.replaceChildren(h('h3', {}, outcomeTag(f)),
    h('dl', {}, rows.map(([k, v]) => [h('dt', { text: k }), h('dd', { text: String(v) })])),
    f.payload !== undefined ? h('pre', { dataTestid: 'payload', text: pretty(f.payload) }) : null);
  const paused = state.paused;
  state.paused = false;
  renderFrames();
  state.paused = paused;
}

// ---------- routes ----------
function selectionField() {
  const expr = (state.overview && state.overview.manifest && state.overview.manifest.routeSelectionExpression) || '';
  const m = /^\$request\.body\.([A-Za-z0-9_]+)$/.exec(expr);
  return m ? m[1] : 'action';
}

function contractRoute(key) {
  const c = state.overview && state.overview.contract;
  return c && c.routes ? c.routes[key] : null;
}

function renderRoutes() {
  const routes = (state.overview && state.overview.manifest && state.overview.manifest.routes) || [];
  $('[data-testid=routes] tbody').replaceChildren(...routes.map((r) => {
    const opts = Object.entries(r.options || {})
      .filter(([, v]) => v !== null && !(Array.isArray(v) && v.length === 0))
      .map(([k, v]) => h('span', { class: 'tag', text: `${k}: ${Array.isArray(v) ? v.join(', ') : v}` }));
    const caps = r.capabilities || {};
    const capTags = [caps.connections && 'connections', caps.store && 'store', ...(caps.state || []).map((s) => `state ${s.split('::').pop()}`)]
      .filter(Boolean).map((c) => h('span', { class: 'tag', text: c }));
    const contract = contractRoute(r.key);
    const payload = contract && contract.payload ? schemaName(contract.payload) : (r.kind === 'custom' ? 'none' : '');
    const sendable = r.kind === 'custom' || r.key === '$default';
    return h('tr', { dataTestid: 'route', dataKey: r.key, class: state.route === r.key ? 'selected' : null, onclick: sendable ? () => selectRoute(r) : null, style: sendable ? 'cursor:pointer' : null },
      h('td', {}, h('code', { text: r.key }), r.builtin ? h('span', { class: 'tag', text: 'built-in' }) : null),
      h('td', {}, h('code', { text: r.fn })),
      h('td', { class: 'mono muted', text: `${r.file}:${r.line}` }),
      h('td', {}, opts),
      h('td', {}, capTags),
      h('td', { class: 'mono', text: payload }));
  }));
}

function resolveRef(schema) {
  const schemas = (state.overview && state.overview.contract && state.overview.contract.schemas) || {};
  let s = schema;
  for (let i = 0; s && s.$ref && i < 16; i++) s = schemas[s.$ref.split('/').pop()];
  return s || {};
}

function schemaName(schema) {
  if (schema.$ref) return schema.$ref.split('/').pop();
  if (schema['x-switchboard-open']) return `${String(schema['x-switchboard-open']).split('::').pop()} (any)`;
  return schema.type || 'any';
}

function example(schema, depth = 0) {
  const s = resolveRef(schema);
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  if (Array.isArray(s.anyOf) && s.anyOf.length) return example(s.anyOf[0], depth + 1);
  if (Array.isArray(s.oneOf) && s.oneOf.length) return example(s.oneOf[0], depth + 1);
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
  if (type === 'object' || s.properties) {
    const out = {};
    if (depth > 4) return out;
    for (const name of s.required || Object.keys(s.properties || {})) out[name] = example((s.properties || {})[name] || {}, depth + 1);
    return out;
  }
  return { string: '', integer: 1, number: 1, boolean: false, array: [], null: null }[type] ?? null;
}

function selectRoute(r) {
  state.route = r.key;
  const form = $('[data-testid=route-form]');
  const contract = contractRoute(r.key);
  $('[data-field=route]', form).textContent = r.key;
  $('[data-field=doc]', form).textContent = (contract && contract.doc) || r.doc || '';
  const frame = { [selectionField()]: r.key };
  if (contract && contract.payload) Object.assign(frame, example(contract.payload));
  form.frame.value = JSON.stringify(frame, null, 2);
  $('[data-field=schema]', form).textContent = contract && contract.payload
    ? JSON.stringify(expandSchema(contract.payload), null, 2) : 'This route reads no payload.';
  $('[data-testid=route-result]').textContent = '';
  renderRoutes();
  renderRouteConnections();
}

function expandSchema(schema, depth = 0) {
  const s = resolveRef(schema);
  if (depth > 4 || !s.properties) return s;
  const props = {};
  for (const [k, v] of Object.entries(s.properties)) props[k] = expandSchema(v, depth + 1);
  return { ...s, properties: props };
}

function renderRouteConnections() {
  const select = $('[data-testid=route-conn]');
  const current = select.value;
  select.replaceChildren(...state.connections.map((c) => h('option', { value: c.id, text: `${c.user || 'anonymous'} · ${short(c.id)}` })));
  if (state.connections.some((c) => c.id === current)) select.value = current;
}

// A small JSON Schema subset: $ref, type, required, properties, items, enum, const,
// anyOf/oneOf. Returns a list of problems ([] when valid).
function validate(value, schema, path = '$', depth = 0) {
  const s = resolveRef(schema);
  if (depth > 16) return [];
  if (Array.isArray(s.anyOf) || Array.isArray(s.oneOf)) {
    const options = s.anyOf || s.oneOf;
    if (!options.some((o) => validate(value, o, path, depth + 1).length === 0)) return [`${path}: matches none of the allowed shapes`];
  }
  if ('const' in s && JSON.stringify(value) !== JSON.stringify(s.const)) return [`${path}: must be ${JSON.stringify(s.const)}`];
  if (Array.isArray(s.enum) && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    return [`${path}: must be one of ${s.enum.map((e) => JSON.stringify(e)).join(', ')}`];
  }
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (!types.some((t) => isType(value, t))) return [`${path}: must be ${types.join(' or ')}`];
  }
  const problems = [];
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const name of s.required || []) if (!(name in value)) problems.push(`${path}.${name}: required`);
    for (const [name, sub] of Object.entries(s.properties || {})) {
      if (name in value) problems.push(...validate(value[name], sub, `${path}.${name}`, depth + 1));
    }
  }
  if (Array.isArray(value) && s.items && !Array.isArray(s.items)) {
    value.forEach((v, i) => problems.push(...validate(v, s.items, `${path}[${i}]`, depth + 1)));
  }
  return problems;
}

function isType(v, t) {
  switch (t) {
    case 'null': return v === null;
    case 'boolean': return typeof v === 'boolean';
    case 'string': return typeof v === 'string';
    case 'integer': return Number.isInteger(v);
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'array': return Array.isArray(v);
    case 'object': return v !== null && typeof v === 'object' && !Array.isArray(v);
    default: return true;
  }
}

async function sendRouteFrame(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const result = $('[data-testid=route-result]');
  result.className = 'result bad';
  if (!state.route) { result.textContent = 'Pick a route first.'; return; }
  if (!form.conn.value) { result.textContent = 'No connection to send as: connect a client first.'; return; }
  let frame;
  try { frame = JSON.parse(form.frame.value); } catch (e) { result.textContent = `Not JSON: ${e.message}`; return; }
  const contract = contractRoute(state.route);
  const problems = [];
  if (!isType(frame, 'object')) problems.push('$: must be an object');
  else if (frame[selectionField()] !== state.route) problems.push(`$.${selectionField()}: must be ${JSON.stringify(state.route)}`);
  if (contract && contract.payload && problems.length === 0) problems.push(...validate(frame, contract.payload));
  if (problems.length) { result.dataset.state = 'invalid'; result.textContent = problems.join('\n'); return; }
  try {
    const out = await api(`/local/api/connections/${encodeURIComponent(form.conn.value)}/frame`, { method: 'POST', body: JSON.stringify(frame) });
    result.className = 'result good';
    result.dataset.state = 'sent';
    result.textContent = out.reply ? `sent · reply: ${out.reply}` : 'sent · no reply';
  } catch (e) { result.dataset.state = 'failed'; result.textContent = e.message; }
}

// ---------- queues ----------
async function loadQueues() {
  try { state.queues = (await api('/local/queues')).queues || []; } catch (e) { notify(`queues: ${e.message}`); }
  renderQueues();
}

function renderQueues() {
  const box = $('[data-testid=queues]');
  box.replaceChildren(...state.queues.map((q) => {
    const stat = (label, value, alert) => h('div', { class: `stat${alert ? ' alert' : ''}` }, h('b', { text: value ?? '–' }), label);
    const c = q.consumer;
    const act = (label, fn, cls = 'secondary') => h('button', { type: 'button', class: `${cls} small`, onclick: fn, dataTestid: `${label.toLowerCase().replace(/[^a-z]+/g, '-')}` }, label);
    return h('div', { class: 'card', dataTestid: 'queue', dataQueue: q.name, dataDeadLetters: q.deadLetters, dataVisible: q.visible, dataInFlight: q.inFlight, dataFailed: c ? c.failed : 0 },
      h('h3', {}, q.name, h('span', { class: 'muted', text: `DLQ ${q.deadLetterQueue}` })),
      h('div', { class: 'stats' }, stat('visible', q.visible), stat('in flight', q.inFlight), stat('dead letters', q.deadLetters, q.deadLetters > 0)),
      h('div', { class: 'muted' }, c ? `consumer ${c.fn}: ${c.processed} processed, ${c.failed} failed, ${c.batches} batches` : 'no consumer',
        q.producers.length ? ` · producers: ${q.producers.join(', ')}` : ''),
      q.error ? h('div', { class: 'result bad', text: q.error }) : null,
      h('div', { class: 'row' },
        act('Messages', () => showMessages(q.name, false)),
        act('Dead letters', () => showMessages(q.name, true)),
        act('Redrive all', () => queueAction(q.name, 'redrive', '')),
        act('Purge', () => confirm(`Delete every message of ${q.name}?`) && queueAction(q.name, 'purge', ''), 'danger'),
        act('Purge DLQ', () => confirm(`Delete every dead letter of ${q.name}?`) && queueAction(q.name, 'purge', '?dlq=true'), 'danger')));
  }));
  $('[data-empty=queues]').hidden = state.queues.length > 0;
}

async function queueAction(name, action, query) {
  try {
    const out = await api(`/local/api/queues/${encodeURIComponent(name)}/${action}${query}`, { method: 'POST' });
    notifyOk(action === 'redrive' ? `${out.moved} message(s) redriven to ${name}` : `${out.purged} message(s) purged`);
  } catch (e) { notify(`${action}: ${e.message}`); }
  await loadQueues();
  const open = $('[data-testid=queue-messages]');
  if (!open.hidden && open.dataset.queue === name) showMessages(name, open.dataset.dlq === 'true');
}

function notifyOk(message) {
  const box = $('[data-testid=queue-messages] h3');
  box.dataset.lastAction = message;
}

async function showMessages(name, dlq) {
  const panel = $('[data-testid=queue-messages]');
  panel.hidden = false;
  panel.dataset.queue = name;
  panel.dataset.dlq = String(dlq);
  let out;
  try { out = await api(`/local/api/queues/${encodeURIComponent(name)}/messages${dlq ? '?dlq=true' : ''}`); } catch (e) { notify(e.message); return; }
  $('[data-field=title]', panel).textContent = `${out.queue}: ${out.messages.length} message(s)`;
  const detail = $('aside', panel);
  $('tbody', panel).replaceChildren(...out.messages.map((m) => h('tr', {
    dataTestid: 'queue-message', dataMessageId: m.messageId, style: 'cursor:pointer',
    onclick: () => detail.replaceChildren(h('h3', { text: m.messageId }),
      h('dl', {}, [['group', m.groupId], ['dedup id', m.dedupId], ['sequence', m.sequence], ['receives', m.receiveCount], ['sent', new Date(m.sentAt).toISOString()]]
        .map(([k, v]) => [h('dt', { text: k }), h('dd', { text: String(v) })])),
      h('pre', { dataTestid: 'queue-message-body', text: pretty(m.body) })),
  },
  h('td', {}, h('code', { text: short(m.messageId) })),
  h('td', { class: 'mono', text: m.groupId }),
  h('td', { class: 'num', text: m.receiveCount }),
  h('td', { text: clock(m.sentAt) }),
  h('td', {}, h('span', { class: `tag ${m.inFlight ? 'push' : ''}`, text: m.inFlight ? 'in flight' : (dlq ? 'dead' : 'visible') })),
  h('td', { class: 'actions' }, dlq ? h('button', {
    class: 'secondary small', dataTestid: 'redrive-one',
    onclick: (e) => { e.stopPropagation(); queueAction(name, 'redrive', `?messageId=${encodeURIComponent(m.messageId)}`); },
  }, 'Redrive') : null))));
  detail.replaceChildren(h('p', { class: 'muted', text: 'Click a message to see its body.' }));
}

// ---------- charts (hand-drawn SVG) ----------
function chart(svg, series, { unit = '', log = false } = {}) {
  const w = svg.clientWidth || 500;
  const hgt = svg.clientHeight || 170;
  const pad = { l: 46, r: 8, t: 8, b: 18 };
  const end = Date.now();
  const start = end - MAX_SAMPLES * 1000;
  const x = (t) => pad.l + ((t - start) / (end - start)) * (w - pad.l - pad.r);
  const max = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const top = niceCeil(max);
  const scale = (v) => (log ? Math.log10(1 + v) / Math.log10(1 + top) : v / top);
  const y = (v) => hgt - pad.b - scale(v) * (hgt - pad.t - pad.b);
  const kids = [];
  for (const frac of [0, 0.5, 1]) {
    const v = log ? Math.pow(10, frac * Math.log10(1 + top)) - 1 : frac * top;
    kids.push(svgEl('line', { class: 'axis', x1: pad.l, x2: w - pad.r, y1: y(v), y2: y(v) }));
    const label = svgEl('text', { x: pad.l - 4, y: y(v) + 3, 'text-anchor': 'end' });
    label.textContent = unit === 'us' ? micros(Math.round(v)) : fmt(v);
    kids.push(label);
  }
  for (const m of [15, 10, 5, 0]) {
    const label = svgEl('text', { x: x(end - m * 60000), y: hgt - 4, 'text-anchor': m === 15 ? 'start' : (m === 0 ? 'end' : 'middle') });
    label.textContent = m ? `-${m}m` : 'now';
    kids.push(label);
  }
  for (const s of series) {
    if (!s.points.length) continue;
    const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join('');
    if (s.area) {
      const first = s.points[0][0];
      const last = s.points[s.points.length - 1][0];
      kids.push(svgEl('path', { class: 'area', fill: s.color, d: `${d}L${x(last)},${y(0)}L${x(first)},${y(0)}Z` }));
    }
    kids.push(svgEl('path', { class: 'line', stroke: s.color, d }));
    const [lt, lv] = s.points[s.points.length - 1];
    kids.push(svgEl('circle', { cx: x(lt), cy: y(lv), r: 2.5, fill: s.color }));
  }
  svg.replaceChildren(...kids);
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  return [1, 2, 5, 10].map((m) => m * p).find((c) => c >= v) || v;
}
const fmt = (v) => (v >= 1000 ? `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)}k` : String(Math.round(v * 10) / 10));

function renderCharts() {
  const s = state.samples;
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  chart($('[data-chart=connections]'), [{ points: s.map((p) => [p.t, p.connections]), color: color('--in'), area: true }]);
  chart($('[data-chart=frames]'), [
    { points: s.map((p) => [p.t, p.framesIn]), color: color('--in') },
    { points: s.map((p) => [p.t, p.framesOut]), color: color('--out') }]);
  chart($('[data-chart=errors]'), [{ points: s.map((p) => [p.t, p.errors]), color: color('--err'), area: true }]);
  const select = $('[data-testid=latency-route]');
  const routes = [...new Set(s.flatMap((p) => p.routes.map((r) => r.route)))].sort();
  if (routes.join() !== [...select.options].map((o) => o.value).join()) {
    select.replaceChildren(...routes.map((r) => h('option', { value: r, text: r })));
    if (routes.includes(state.latencyRoute)) select.value = state.latencyRoute;
  }
  state.latencyRoute = select.value;
  const of = (k) => s.flatMap((p) => p.routes.filter((r) => r.route === state.latencyRoute).map((r) => [p.t, r[k]]));
  chart($('[data-chart=latency]'), [
    { points: of('p50Us'), color: color('--in') },
    { points: of('p99Us'), color: color('--p99') }], { unit: 'us' });
}

function updateMetrics(sample) {
  $('[data-testid=m-connections]').textContent = sample.connections;
  $('[data-testid=m-in]').textContent = sample.framesIn;
  $('[data-testid=m-out]').textContent = sample.framesOut;
  $('[data-testid=m-errors]').textContent = sample.errors;
}

// ---------- the live stream ----------
function onEvent(ev) {
  switch (ev.type) {
    case 'hello': break;
    case 'tick':
      state.samples.push(ev.sample);
      if (state.samples.length > MAX_SAMPLES) state.samples.shift();
      updateMetrics(ev.sample);
      if (state.tab === 'overview') renderCharts();
      if (state.tab === 'connections') renderConnections();
      if (state.tab === 'queues' && ev.sample.t % 2000 < 1000) loadQueues();
      break;
    case 'dropped': {
      state.dropped = ev.count;
      const el = $('[data-testid=dropped]');
      el.hidden = false;
      el.textContent = `${ev.count} events dropped (this tab fell behind)`;
      break;
    }
    case 'connect': addFrame(ev); refreshConnections(); break;
    case 'close': addFrame(ev); refreshConnections(); refreshRooms(); break;
    case 'frame': {
      addFrame(ev);
      const c = state.connections.find((x) => x.id === ev.conn);
      if (c) {
        if (ev.dir === 'in') { c.framesIn += 1; c.lastActiveAt = ev.t; } else c.framesOut += 1;
      }
      if (ev.dir === 'in') { refreshRooms(); refreshConnections(); }
      break;
    }
    default: break;
  }
}

async function stream() {
  const status = $('[data-testid=stream-status]');
  let backoff = 500;
  for (;;) {
    try {
      const res = await fetch('/local/stream', { headers: headers(), cache: 'no-store' });
      if (res.status === 403) { $('[data-testid=auth]').hidden = false; throw new Error('forbidden'); }
      if (!res.ok || !res.body) throw new Error(`stream: ${res.status}`);
      status.dataset.state = 'live';
      status.textContent = 'live';
      backoff = 500;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const chunk = buf.slice(0, end);
          buf = buf.slice(end + 2);
          for (const line of chunk.split('\n')) {
            if (!line.startsWith('data: ')) continue;
            try { onEvent(JSON.parse(line.slice(6))); } catch (e) { console.warn('bad event', e); }
          }
        }
      }
    } catch (e) {
      console.debug('stream', e);
    }
    status.dataset.state = 'down';
    status.textContent = 'reconnecting';
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 5000);
  }
}

// ---------- start ----------
async function start() {
  try {
    state.overview = await api('/local/api/overview');
    $('[data-testid=app-name]').textContent = state.overview.manifest.app;
    document.title = `${state.overview.manifest.app} · Switchboard console`;
    state.samples = await api('/local/api/samples');
    if (state.samples.length) updateMetrics(state.samples[state.samples.length - 1]);
  } catch (e) { notify(e.message); return; }
  renderRoutes();
  await Promise.all([loadConnections(), loadRooms()]);
  render();
  stream();
}

function wire() {
  for (const b of $$('nav button')) b.addEventListener('click', () => showTab(b.dataset.tab));
  $('[data-testid=notice] button').addEventListener('click', () => { $('[data-testid=notice]').hidden = true; });
  $('[data-testid=auth]').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem('switchboard-admin-secret', e.currentTarget.secret.value);
    location.reload();
  });
  $('[data-testid=push-form]').addEventListener('submit', sendPush);
  $('[data-testid=push-form] [data-action=cancel]').addEventListener('click', () => { $('[data-testid=push-form]').hidden = true; });
  $('[data-testid=route-form]').addEventListener('submit', sendRouteFrame);
  $('[data-testid=latency-route]').addEventListener('change', () => { state.latencyRoute = $('[data-testid=latency-route]').value; renderCharts(); });
  for (const el of $$('[data-filter]')) el.addEventListener('input', () => renderFrames());
  $('[data-action=pause]').addEventListener('click', (e) => {
    state.paused = !state.paused;
    e.currentTarget.textContent = state.paused ? 'Resume' : 'Pause';
    e.currentTarget.dataset.paused = String(state.paused);
    if (!state.paused) renderFrames();
  });
  $('[data-action=clear]').addEventListener('click', () => { state.frames = []; state.selectedFrame = null; renderFrames(); });
  window.addEventListener('resize', debounce(() => state.tab === 'overview' && renderCharts(), 150));
}

const hash = location.hash.slice(1);
wire();
if (hash && $(`nav button[data-tab="${hash}"]`)) showTab(hash);
start();
