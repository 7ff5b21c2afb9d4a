// The chat page's script: the typed client (`switchboard-client.ts`, generated from the
// route registry) for the WebSocket, `fetch` for the HTTP API and the local issuer.
// Compiled by `tsc` (see `tsconfig.json`) to `chat.js`, which the gateway serves at
// `/chat.js` and the deploy program uploads next to the page.
//
// Rooms have history (`seq`/`epoch` on their frames): after a reconnect the client
// resumes them by itself, so lines sent while this tab was away arrive, once each and in
// order, through the same `message` handler; when they cannot be recovered (`reset`) the
// room shows a notice and its members are reloaded. Joins use `request(..)`, so the
// answer (or error) comes back to the call that asked; after a reconnect the page rejoins
// first (so the others see it back) and the client resumes when that is done.
import { RequestError, SwitchboardClient } from './switchboard-client.js';
import type { ClientEvents, Member, Presence, Chat, Joined } from './switchboard-client.js';

const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_TEXT = 2000;
const MAX_KEPT = 500;
// CloudFront drops a WebSocket after 60 s without traffic: ping every 40 s
// (`?heartbeat=MS` shortens it, for tests; never below 1 s).
const HEARTBEAT_MS = Math.max(
  1000,
  Number(new URLSearchParams(location.search).get('heartbeat')) || 40000,
);
const DIRECTORY_REFRESH_MS = 15000;
const LS_KEY = 'switchboard.username';

function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const n = document.getElementById(id);
  if (!n) throw new Error(`#${id} is missing from the page`);
  return n as T;
}

const el = {
  status: $('status'),
  signinForm: $<HTMLFormElement>('signin-form'),
  username: $<HTMLInputElement>('username'),
  signin: $<HTMLButtonElement>('signin'),
  session: $('session'),
  meName: $('me-name'),
  connId: $('connection-id'),
  signout: $<HTMLButtonElement>('signout'),
  error: $('error'),
  errorText: $('error-text'),
  errorClose: $<HTMLButtonElement>('error-close'),
  rooms: $('rooms'),
  joinForm: $<HTMLFormElement>('join-form'),
  room: $<HTMLInputElement>('room'),
  join: $<HTMLButtonElement>('join'),
  roomTitle: $('room-title'),
  messages: $('messages'),
  sendForm: $<HTMLFormElement>('send-form'),
  message: $<HTMLInputElement>('message'),
  send: $<HTMLButtonElement>('send'),
  membersTitle: $('members-title'),
  members: $('members'),
  meInfo: $('me-info'),
  directory: $('directory'),
  refreshRooms: $<HTMLButtonElement>('refresh-rooms'),
};

// ---- state -------------------------------------------------------------

interface Line {
  kind: 'msg' | 'sys' | 'notice';
  text: string;
  sentAt: number;
  from?: string;
  connectionId?: string;
}

interface Room {
  messages: Line[];
  seq: number;
  members: Map<string, string>; // connection id -> username
  membersSeq: number;
  unread: number;
  joined: boolean;
}

interface Me {
  username: string;
  connections: unknown[];
  groups: string[];
}

interface DirectoryRoom {
  room: string;
  members: number;
}

const state = {
  name: null as string | null, // username while signed in (intent), null when signed out
  client: null as SwitchboardClient | null,
  connected: false,
  connectionId: null as string | null,
  ownIds: new Set<string>(), // every connection id this tab has had (own messages after reconnects)
  rooms: new Map<string, Room>(),
  current: null as string | null,
  neverOpened: 0, // consecutive attempts that closed before opening (likely refused at upgrade)
  countdownTimer: undefined as ReturnType<typeof setInterval> | undefined,
  token: null as { name: string; value: string; exp: number } | null,
  me: null as Me | null, // GET /http/me
  directory: [] as DirectoryRoom[], // GET /http/rooms
  directoryTimer: undefined as ReturnType<typeof setTimeout> | undefined,
  directoryInterval: undefined as ReturnType<typeof setInterval> | undefined,
};

// ---- helpers -----------------------------------------------------------

function node(tag: string, cls?: string, text?: unknown): HTMLElement {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text !== undefined) n.textContent = String(text);
  return n;
}
function charLen(s: string): number {
  return Array.from(s).length;
}
function showError(msg: string): void {
  el.errorText.textContent = msg;
  el.error.hidden = false;
}
function clearError(): void {
  el.error.hidden = true;
  el.errorText.textContent = '';
}
function setStatus(stateName: string, text: string): void {
  el.status.dataset.state = stateName;
  el.status.textContent = text;
}
function fmtTime(ms: number | undefined): string {
  const d = new Date(typeof ms === 'number' ? ms : Date.now());
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}
function getRoom(name: string): Room {
  let r = state.rooms.get(name);
  if (!r) {
    r = { messages: [], seq: 0, members: new Map(), membersSeq: 0, unread: 0, joined: false };
    state.rooms.set(name, r);
  }
  return r;
}
function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function wsUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

// ---- HTTP API (/http/* on the page's own origin: CloudFront in AWS, the local gateway
// here) ------------------------------------------------------------------
async function api<T>(path: string, retried = false): Promise<T> {
  if (!state.name) throw new Error('signed out');
  const token = await idToken(state.name);
  const res = await fetch(`/http${path}`, {
    headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
  });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401 && !retried) {
    state.token = null; // a fresh token, once
    return api<T>(path, true);
  }
  if (!res.ok) {
    const e = body.error || {};
    throw new Error(`${e.code || 'HTTP ' + res.status}: ${e.message || body.message || 'request failed'}`);
  }
  return body as T;
}

async function refreshMe(): Promise<void> {
  try {
    state.me = await api<Me>('/me');
  } catch (e) {
    state.me = null;
    console.warn('GET /http/me:', errorMessage(e));
  }
  render();
}
async function refreshDirectory(): Promise<void> {
  clearTimeout(state.directoryTimer);
  state.directoryTimer = undefined;
  if (!state.name) return;
  try {
    state.directory = (await api<{ rooms?: DirectoryRoom[] }>('/rooms')).rooms || [];
  } catch (e) {
    console.warn('GET /http/rooms:', errorMessage(e));
  }
  render();
}
// Presence changes move the counts: refresh soon, once per burst.
function scheduleDirectoryRefresh(): void {
  if (state.directoryTimer !== undefined || !state.name) return;
  state.directoryTimer = setTimeout(() => {
    void refreshDirectory();
    void refreshMe();
  }, 250);
}
// The members of a room as the store has them (catches presence missed while offline);
// dropped if a presence frame arrived meanwhile, which is newer.
async function refreshMembers(name: string): Promise<void> {
  const r = state.rooms.get(name);
  if (!r || !r.joined) return;
  const seq = r.membersSeq;
  try {
    const body = await api<{ members: Member[] }>(`/rooms/${encodeURIComponent(name)}/members`);
    if (state.rooms.get(name) === r && r.joined && r.membersSeq === seq) {
      setMembers(r, body.members);
      render();
    }
  } catch (e) {
    console.warn('GET members:', errorMessage(e));
  }
}

// Sign-in: an id token from the local issuer (POST /local/token), reused until a minute
// before it expires. Browsers cannot set headers on a WebSocket, so the token travels
// as a subprotocol next to "switchboard" (the one the server echoes).
async function idToken(name: string): Promise<string> {
  const now = Date.now() / 1000;
  if (state.token && state.token.name === name && state.token.exp - 60 > now) return state.token.value;
  const res = await fetch('/local/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: name }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((body.error && body.error.message) || `sign-in failed (HTTP ${res.status})`);
  state.token = { name, value: body.idToken, exp: now + body.expiresIn };
  return body.idToken;
}

// ---- connection: the typed client ---------------------------------------

function attemptLabel(attempt: number): string {
  return attempt > 10 ? '10+' : String(attempt);
}

function startClient(name: string): void {
  const client = new SwitchboardClient({
    url: wsUrl,
    protocols: async () => ['switchboard', await idToken(name)],
    heartbeatMs: HEARTBEAT_MS,
    reconnect: { minMs: 1000, maxMs: 30000 },
    // Rejoin before the client resumes: `join` announces us to the room only when it
    // makes us a member, and `resume` would already have (silently).
    beforeResume: () => Promise.all([...state.rooms.keys()].map((room) => requestJoin(room))),
  });
  state.client = client;
  const mine = (): boolean => state.client === client;

  client.hook('connecting', ({ attempt }) => {
    if (!mine()) return;
    clearCountdown();
    setStatus('connecting', attempt ? `reconnecting… (attempt ${attemptLabel(attempt)})` : 'connecting…');
  });
  client.hook('failure', ({ error }) => {
    if (mine()) showError(`Could not sign in or connect: ${errorMessage(error)}`);
  });
  client.hook('open', () => {
    if (!mine()) return;
    clearCountdown();
    state.connected = true;
    state.neverOpened = 0;
    setStatus('connected', 'connected');
    client.send('whoami');
    // Rejoined in `beforeResume` (which tells the others we are back and gets the
    // members); then the client resumes the rooms (the lines missed).
    for (const r of state.rooms.values()) {
      r.joined = false;
      r.members.clear();
    }
    startDirectoryRefresh();
    void refreshMe();
    void refreshDirectory();
    render();
  });
  client.hook('close', (ev: ClientEvents['close']) => {
    if (!mine()) return;
    state.connected = false;
    state.connectionId = null;
    stopDirectoryRefresh();
    for (const r of state.rooms.values()) r.joined = false;
    if (!ev.opened) {
      state.neverOpened++;
      if (state.neverOpened === 1 || state.neverOpened % 5 === 0) {
        showError(
          `The server refused or could not be reached (signing in as "${name}"). ` +
            'If this persists, the username may have been rejected (HTTP 401/403). Still retrying…',
        );
      }
    } else if (ev.code >= 4400 && ev.code < 4500) {
      showError(`Connection closed by server (${ev.code}${ev.reason ? ': ' + ev.reason : ''}). Retrying…`);
    }
    render();
  });
  client.hook('reconnecting', ({ attempt, at }) => {
    if (!mine()) return;
    clearCountdown();
    const tick = (): void => {
      const s = Math.max(0, Math.ceil((at - Date.now()) / 1000));
      setStatus('reconnecting', `reconnecting in ${s}s (attempt ${attemptLabel(attempt)})`);
    };
    tick();
    state.countdownTimer = setInterval(tick, 250);
  });
  client.hook('error', (e) => {
    if (mine()) showError(`${e.code || 'error'}: ${e.message || 'request failed'}${e.route ? ` (${e.route})` : ''}`);
  });
  // History: lines missed could not be recovered (the room's history was lost or no
  // longer reaches back): say so, and reload what the page can (the members).
  client.hook('reset', ({ room, reason }) => {
    const r = mine() ? state.rooms.get(room) : undefined;
    if (!r) return;
    pushMsg(r, {
      kind: 'notice',
      text:
        reason === 'resume'
          ? 'Some messages sent while you were away could not be recovered.'
          : 'Some messages of this room were lost.',
      sentAt: Date.now(),
    });
    void refreshMembers(room);
    render();
  });
  client.hook('refused', ({ room, error }) => {
    if (!mine() || !state.rooms.has(room)) return;
    removeRoom(room);
    showError(`Could not rejoin ${room}: ${error.message || error.code}`);
    render();
  });

  // ---- protocol: one typed handler per server message ----------------------
  client.on('whoami', (f) => {
    state.connectionId = f.connectionId || null;
    if (f.connectionId) state.ownIds.add(f.connectionId);
    render();
  });
  client.on('left', (f) => {
    removeRoom(f.room);
    scheduleDirectoryRefresh();
    render();
  });
  client.on('members', (f) => {
    const r = state.rooms.get(f.room);
    if (r) setMembers(r, f.members);
    render();
  });
  client.on('presence', (f: Presence) => {
    scheduleDirectoryRefresh();
    const r = state.rooms.get(f.room);
    if (!r) return;
    r.membersSeq++;
    if (f.event === 'join') {
      if (!r.members.has(f.connectionId)) addSys(r, `${f.username} joined`);
      r.members.set(f.connectionId, f.username);
    } else {
      if (r.members.delete(f.connectionId)) addSys(r, `${f.username} left`);
    }
    render();
  });
  client.on('message', (f: Chat) => {
    const r = state.rooms.get(f.room);
    if (!r) return;
    pushMsg(r, { kind: 'msg', from: f.from, connectionId: f.connectionId, text: f.text, sentAt: f.sentAt });
    if (f.room !== state.current) r.unread++;
    render();
  });

  client.connect();
}

// `join` as a request: the answer (members) or the error comes back here.
async function requestJoin(room: string): Promise<void> {
  const client = state.client;
  if (!client) return;
  try {
    onJoined(await client.request('join', { room }));
  } catch (e) {
    if (state.client !== client) return;
    if (e instanceof RequestError && (e.code === 'closed' || e.code === 'not_connected')) return; // rejoined on reconnect
    showError(`Could not join ${room}: ${errorMessage(e)}`);
    if (e instanceof RequestError && e.frame) {
      // Refused: the room is not ours.
      client.forgetRoom(room);
      removeRoom(room);
      render();
    }
  }
}
function onJoined(f: Joined): void {
  const r = state.rooms.get(f.room);
  if (!r) return; // left before the reply arrived
  r.joined = true;
  r.membersSeq++;
  setMembers(r, f.members);
  if (!state.current || !state.rooms.has(state.current)) state.current = f.room;
  scheduleDirectoryRefresh();
  render();
}

function clearCountdown(): void {
  clearInterval(state.countdownTimer);
  state.countdownTimer = undefined;
}
function startDirectoryRefresh(): void {
  stopDirectoryRefresh();
  state.directoryInterval = setInterval(() => void refreshDirectory(), DIRECTORY_REFRESH_MS);
}
function stopDirectoryRefresh(): void {
  clearInterval(state.directoryInterval);
  state.directoryInterval = undefined;
}

function signIn(name: string): void {
  state.name = name;
  try {
    localStorage.setItem(LS_KEY, name);
  } catch {
    // storage unavailable
  }
  state.neverOpened = 0;
  clearError();
  startClient(name);
  render();
  el.room.focus();
}

function signOut(): void {
  state.name = null;
  state.token = null;
  state.me = null;
  state.directory = [];
  clearCountdown();
  stopDirectoryRefresh();
  clearTimeout(state.directoryTimer);
  state.directoryTimer = undefined;
  const client = state.client;
  state.client = null;
  state.connected = false;
  state.connectionId = null;
  if (client) client.close(1000, 'sign out');
  state.rooms.clear();
  state.current = null;
  state.ownIds.clear();
  setStatus('signed-out', 'signed out');
  render();
}

function setMembers(r: Room, list: Member[] | undefined): void {
  r.members.clear();
  if (Array.isArray(list)) for (const m of list) if (m && m.connectionId) r.members.set(m.connectionId, m.username);
}
function pushMsg(r: Room, m: Line): void {
  r.messages.push(m);
  r.seq++;
  if (r.messages.length > MAX_KEPT) r.messages.splice(0, r.messages.length - MAX_KEPT);
}
function addSys(r: Room, text: string): void {
  pushMsg(r, { kind: 'sys', text, sentAt: Date.now() });
}
function removeRoom(name: string): void {
  state.rooms.delete(name);
  if (state.current === name) state.current = state.rooms.keys().next().value ?? null;
}

// ---- rendering ---------------------------------------------------------
let renderedRoom: string | null = null;
let renderedKey = '';
function render(): void {
  const signedIn = !!state.name;
  el.signinForm.hidden = signedIn;
  el.session.hidden = !signedIn;
  el.meName.textContent = state.name || '';
  el.connId.textContent = state.connectionId || '–';
  const me = state.me && state.me.username === state.name ? state.me : null;
  const sessions = me ? me.connections.length : 0;
  el.meInfo.textContent = me
    ? `· ${sessions} session${sessions === 1 ? '' : 's'}${me.groups.length ? ' · ' + me.groups.join(', ') : ''}`
    : '';
  el.meInfo.dataset.sessions = String(sessions);
  el.join.disabled = !signedIn;
  const currentRoom = state.current ? state.rooms.get(state.current) : undefined;
  const canSend = state.connected && !!currentRoom && currentRoom.joined;
  el.message.disabled = !canSend;
  el.send.disabled = !canSend;

  // rooms
  el.rooms.replaceChildren();
  if (!state.rooms.size) {
    el.rooms.append(node('li', 'empty', signedIn ? 'No rooms yet — join one below.' : 'Sign in to join rooms.'));
  }
  for (const [name, r] of state.rooms) {
    const li = node('li', name === state.current ? 'active' : '');
    li.dataset.testid = 'room-item';
    li.dataset.room = name;
    li.title = r.joined ? name : `${name} (rejoining…)`;
    const label = node('span', 'name', '# ' + name);
    if (!r.joined) label.style.opacity = '.55';
    li.append(label);
    if (r.unread) li.append(node('span', 'badge', r.unread > 99 ? '99+' : r.unread));
    const leave = node('button', '', '×') as HTMLButtonElement;
    leave.type = 'button';
    leave.title = `Leave ${name}`;
    leave.dataset.testid = 'leave';
    leave.setAttribute('aria-label', `Leave ${name}`);
    leave.addEventListener('click', (e) => {
      e.stopPropagation();
      leaveRoom(name);
    });
    li.append(leave);
    li.addEventListener('click', () => selectRoom(name));
    el.rooms.append(li);
  }

  // every room with members (GET /http/rooms)
  el.directory.replaceChildren();
  if (signedIn && !state.directory.length) el.directory.append(node('li', 'empty', 'No rooms with members.'));
  for (const d of signedIn ? state.directory : []) {
    const mine = state.rooms.has(d.room);
    const li = node('li', mine ? 'mine' : '');
    li.dataset.testid = 'directory-room';
    li.dataset.room = d.room;
    li.dataset.count = String(d.members);
    li.title = mine ? `Show ${d.room}` : `Join ${d.room}`;
    li.append(node('span', 'name', '# ' + d.room), node('span', 'count', `${d.members} online`));
    li.addEventListener('click', () => joinRoom(d.room));
    el.directory.append(li);
  }

  // messages
  const cur = currentRoom ?? null;
  el.roomTitle.textContent = cur ? `# ${state.current}` : 'No room selected';
  const atBottom = el.messages.scrollHeight - el.messages.scrollTop - el.messages.clientHeight < 40;
  const msgs = cur ? cur.messages : [];
  const key = `${state.current}|${cur ? cur.seq : -1}|${state.connectionId}|${!!state.name}`;
  if (key !== renderedKey) {
    el.messages.replaceChildren();
    if (!cur) el.messages.append(node('li', 'sys', signedIn ? 'Join a room to start chatting.' : 'Sign in to start chatting.'));
    for (const m of msgs) el.messages.append(m.kind === 'msg' ? msgNode(m) : sysNode(m));
    if (renderedRoom !== state.current || atBottom) el.messages.scrollTop = el.messages.scrollHeight;
    renderedRoom = state.current;
    renderedKey = key;
  }

  // members
  el.members.replaceChildren();
  const members = cur ? [...cur.members.entries()] : [];
  el.membersTitle.textContent = cur ? `Members (${members.length})` : 'Members';
  members.sort((a, b) => String(a[1]).localeCompare(String(b[1])));
  for (const [cid, uname] of members) {
    const li = node('li', cid === state.connectionId ? 'me' : '');
    li.dataset.testid = 'member';
    li.dataset.connectionId = cid;
    li.title = `${uname} (${cid})`;
    li.append(node('span', 'uname', uname));
    if (cid === state.connectionId) li.append(document.createTextNode(' (you)'));
    el.members.append(li);
  }
  if (cur && !members.length) el.members.append(node('li', 'empty', cur.joined ? 'Nobody here.' : 'Rejoining…'));
}

function msgNode(m: Line): HTMLElement {
  const own = m.connectionId !== undefined && state.ownIds.has(m.connectionId);
  const li = node('li', own ? 'msg own' : 'msg');
  li.dataset.testid = 'chat-message';
  li.dataset.from = m.from || '';
  const meta = node('div', 'meta');
  meta.append(node('span', 'from', own ? `${m.from} (you)` : m.from));
  const t = node('time', '', fmtTime(m.sentAt)) as HTMLTimeElement;
  if (typeof m.sentAt === 'number') {
    t.dateTime = new Date(m.sentAt).toISOString();
    t.title = new Date(m.sentAt).toLocaleString();
  }
  meta.append(t);
  li.append(meta, node('div', 'text', m.text));
  return li;
}
function sysNode(m: Line): HTMLElement {
  const li = node('li', m.kind === 'notice' ? 'sys notice' : 'sys', `${fmtTime(m.sentAt)} · ${m.text}`);
  if (m.kind === 'notice') li.dataset.testid = 'history-notice';
  return li;
}

// ---- actions -----------------------------------------------------------
function selectRoom(name: string): void {
  const r = state.rooms.get(name);
  if (!r) return;
  state.current = name;
  r.unread = 0;
  render();
  void refreshMembers(name);
  if (!el.message.disabled) el.message.focus();
}
function joinRoom(name: string): void {
  if (!NAME_RE.test(name)) {
    showError('Room names are 1–64 characters: letters, digits, "-", "_" or ".".');
    return;
  }
  const existing = state.rooms.get(name);
  if (existing && existing.joined) {
    selectRoom(name);
    return;
  }
  getRoom(name);
  state.current = name;
  if (state.connected) void requestJoin(name); // otherwise joined on (re)connect
  render();
}
function leaveRoom(name: string): void {
  // Forget the room locally right away (offline, nothing is sent) so that it is not
  // resumed after a reconnect; again once the server answers, in case a frame of the
  // room still on its way made the client follow it again.
  const client = state.client;
  client?.forgetRoom(name);
  client
    ?.request('leave', { room: name })
    .then(() => {
      if (!state.rooms.has(name)) client.forgetRoom(name);
      scheduleDirectoryRefresh();
    })
    .catch(() => {
      if (!state.rooms.has(name)) client.forgetRoom(name);
    });
  removeRoom(name);
  render();
}

el.signinForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const name = el.username.value.trim();
  if (!NAME_RE.test(name)) {
    showError('Usernames are 1–64 characters: letters, digits, "-", "_" or "." (no spaces).');
    el.username.focus();
    return;
  }
  el.username.value = name;
  signIn(name);
});
el.signout.addEventListener('click', signOut);
el.joinForm.addEventListener('submit', (e) => {
  e.preventDefault();
  if (!state.name) return;
  const name = el.room.value.trim();
  joinRoom(name);
  if (NAME_RE.test(name)) el.room.value = '';
});
el.sendForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = el.message.value;
  if (!state.current || !text.trim()) return;
  if (charLen(text) > MAX_TEXT) {
    showError(`Messages are limited to ${MAX_TEXT} characters.`);
    return;
  }
  if (state.client?.send('sendMessage', { room: state.current, text })) el.message.value = '';
  else showError('Not connected — the message was not sent.');
  el.message.focus();
});
el.errorClose.addEventListener('click', clearError);
el.refreshRooms.addEventListener('click', () => {
  void refreshDirectory();
  void refreshMe();
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !el.error.hidden) clearError();
});
// Come back quickly when the network returns instead of waiting out the backoff.
window.addEventListener('online', () => state.client?.reconnectNow());

// ---- boot --------------------------------------------------------------
try {
  const saved = localStorage.getItem(LS_KEY);
  if (saved) el.username.value = saved;
} catch {
  // ignore
}
setStatus('signed-out', 'signed out');
render();
(el.username.value ? el.signin : el.username).focus();
