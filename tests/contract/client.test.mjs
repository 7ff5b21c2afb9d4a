// The generated client's delivery logic, on the compiled JS the page loads
// (`app/web/switchboard-client.js`, or the file named by SWITCHBOARD_CLIENT_JS):
//
//   node --test tests/contract/client.test.mjs
//
// `RoomOrder` gets room frames scrambled and duplicated and must hand each over exactly
// once, in seq order; `SwitchboardClient` runs over a fake WebSocket: it resumes after a
// drop, de-duplicates the replay against live frames, reports recovered / reset /
// refused, and matches `request(..)` answers by id (errors, timeouts, closes).
// No network, no dependency: node's own test runner. Every wait is bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = process.env.SWITCHBOARD_CLIENT_JS || join(here, '../../app/web/switchboard-client.js');
// An `.mjs` copy: the page's `.js` is an ES module with no package.json saying so.
const copy = join(mkdtempSync(join(tmpdir(), 'switchboard-client-')), 'switchboard-client.mjs');
copyFileSync(source, copy);
const { RoomOrder, SwitchboardClient, RequestError } = await import(pathToFileURL(copy).href);

/** A small deterministic PRNG (mulberry32), so a failure names its seed. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle(items, random) {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

const frame = (room, seq, epoch = 'E1') => ({ action: 'message', room, text: `${room}#${seq}`, seq, epoch });
const frames = (out) => out.filter((o) => o.kind === 'frame').map((o) => o.frame.seq);
const events = (out) => out.filter((o) => o.kind !== 'frame').map((o) => `${o.kind}:${o.room}:${o.seq}${o.reason ? ':' + o.reason : ''}`);

test('RoomOrder: scrambled and duplicated frames come out once each, in order, per room', () => {
  for (const seed of [1, 7, 42, 1234, 99999]) {
    const random = rng(seed);
    const order = new RoomOrder(10000);
    // Two rooms interleaved; every frame 1-3 times; seq 1 first so each room starts at 1.
    const input = [frame('a', 1), frame('b', 1)];
    for (const room of ['a', 'b']) {
      for (let seq = 2; seq <= 300; seq++) {
        const copies = 1 + Math.floor(random() * 3);
        for (let c = 0; c < copies; c++) input.push(frame(room, seq));
      }
    }
    const scrambled = [...input.slice(0, 2), ...shuffle(input.slice(2), random)];
    const seen = { a: [], b: [] };
    for (const f of scrambled) {
      for (const o of order.accept(f.room, f.seq, f.epoch, f)) {
        assert.equal(o.kind, 'frame', `seed ${seed}: no event expected, got ${JSON.stringify(o)}`);
        seen[o.frame.room].push(o.frame.seq);
      }
    }
    const all = Array.from({ length: 300 }, (_, i) => i + 1);
    assert.deepEqual(seen.a, all, `seed ${seed}: room a`);
    assert.deepEqual(seen.b, all, `seed ${seed}: room b`);
    assert.deepEqual(order.positions(), [
      { room: 'a', epoch: 'E1', seq: 300 },
      { room: 'b', epoch: 'E1', seq: 300 },
    ]);
  }
});

test('RoomOrder: a gap is held until the replay fills it; resumed then reports recovered', () => {
  const order = new RoomOrder();
  assert.deepEqual(frames(order.accept('r', 1, 'E1', frame('r', 1))), [1]);
  assert.deepEqual(frames(order.accept('r', 2, 'E1', frame('r', 2))), [2]);
  // Live frames that skipped ahead (sent while the client was away) wait.
  assert.deepEqual(frames(order.accept('r', 5, 'E1', frame('r', 5))), []);
  assert.deepEqual(frames(order.accept('r', 6, 'E1', frame('r', 6))), []);
  assert.equal(order.hasGap('r'), true);
  assert.deepEqual(order.position('r'), { room: 'r', epoch: 'E1', seq: 2 });
  // The replay: 3..6, of which 5 and 6 are duplicates.
  const out = [3, 4, 5, 6].flatMap((s) => order.accept('r', s, 'E1', frame('r', s)));
  assert.deepEqual(frames(out), [3, 4, 5, 6]);
  assert.deepEqual(events(order.resumed('r', 'E1', 6, true)), ['recovered:r:6']);
  assert.equal(order.hasGap('r'), false);
  assert.deepEqual(frames(order.accept('r', 7, 'E1', frame('r', 7))), [7]);
});

test('RoomOrder: recovered:false resets the room; held frames after LAST follow, older ones are dropped', () => {
  const order = new RoomOrder();
  order.accept('r', 1, 'E1', frame('r', 1));
  order.accept('r', 8, 'E2', frame('r', 8, 'E2')); // a new epoch, live: reset at once
  order.accept('r', 10, 'E2', frame('r', 10, 'E2'));
  const out = order.resumed('r', 'E3', 11, false);
  assert.deepEqual(events(out), ['reset:r:11:resume']);
  assert.deepEqual(frames(out), []);
  const next = order.accept('r', 12, 'E3', frame('r', 12, 'E3'));
  assert.deepEqual(frames(next), [12]);
  assert.deepEqual(order.position('r'), { room: 'r', epoch: 'E3', seq: 12 });
});

test('RoomOrder: a live frame with a new epoch resets the room and starts over from it', () => {
  const order = new RoomOrder();
  order.accept('r', 1, 'E1', frame('r', 1));
  order.accept('r', 2, 'E1', frame('r', 2));
  const out = order.accept('r', 1, 'E2', frame('r', 1, 'E2'));
  assert.deepEqual(events(out), ['reset:r:0:epoch']);
  assert.deepEqual(frames(out), [1]);
  assert.deepEqual(frames(order.accept('r', 2, 'E2', frame('r', 2, 'E2'))), [2]);
});

test('RoomOrder: the holding buffer is bounded; overflowing it closes the gap with a reset', () => {
  const order = new RoomOrder(3);
  order.accept('r', 1, 'E1', frame('r', 1));
  for (const s of [3, 4, 5]) assert.deepEqual(order.accept('r', s, 'E1', frame('r', s)), []);
  const out = order.accept('r', 6, 'E1', frame('r', 6));
  assert.deepEqual(frames(out), [3, 4, 5, 6]);
  assert.deepEqual(events(out), ['reset:r:6:gap']);
  // The lost frame, if it still comes, is not handed over out of order.
  assert.deepEqual(order.accept('r', 2, 'E1', frame('r', 2)), []);
});

test('RoomOrder: resumed with frames still missing up to LAST hands over what it has and resets', () => {
  const order = new RoomOrder();
  order.accept('r', 1, 'E1', frame('r', 1));
  order.accept('r', 3, 'E1', frame('r', 3));
  order.accept('r', 6, 'E1', frame('r', 6));
  const out = order.resumed('r', 'E1', 4, true);
  assert.deepEqual(frames(out), [3]);
  assert.deepEqual(events(out), ['reset:r:4:gap']);
  assert.deepEqual(frames(order.accept('r', 5, 'E1', frame('r', 5))), [5, 6]);
});

// ---- the client over a fake socket ------------------------------------------------

const sockets = [];
class FakeSocket {
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    sockets.push(this);
  }
  send(data) {
    if (this.readyState !== 1) throw new Error('not open');
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000, reason = '') {
    this.drop(code, reason);
  }
  // The server's side.
  accept() {
    this.readyState = 1;
    this.onopen?.({});
  }
  push(obj) {
    this.onmessage?.({ data: typeof obj === 'string' ? obj : JSON.stringify(obj) });
  }
  drop(code = 1006, reason = '') {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

/** Polls `cond` every 2 ms for at most 3 s. */
async function until(cond, what) {
  const deadline = Date.now() + 3000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function newClient(extra = {}) {
  const client = new SwitchboardClient({
    url: 'ws://127.0.0.1:1/ws',
    WebSocket: FakeSocket,
    heartbeatMs: 0,
    reconnect: { minMs: 1, maxMs: 2 },
    ...extra,
  });
  const seen = [];
  const hooks = [];
  client.on('message', (f) => seen.push(f.seq === undefined ? f.text : f.seq));
  for (const h of ['recovered', 'reset', 'refused']) client.hook(h, (e) => hooks.push({ h, ...e }));
  return { client, seen, hooks };
}

async function connected(client, count) {
  client.connect();
  await until(() => sockets.length === count, 'a socket');
  const ws = sockets[count - 1];
  ws.accept();
  return ws;
}

test('client: after a drop it resumes by itself and hands over the missed frames once, in order', async () => {
  sockets.length = 0;
  const { client, seen, hooks } = newClient();
  const ws1 = await connected(client, 1);
  assert.deepEqual(ws1.sent, [], 'nothing to resume on the first connection');
  for (const s of [1, 3, 2, 2, 4]) ws1.push(frame('lobby', s));
  ws1.push({ action: 'message', room: 'plain', text: 'no history' }); // passes through
  assert.deepEqual(seen, [1, 2, 3, 4, 'no history']);

  ws1.drop();
  await until(() => sockets.length === 2, 'the reconnect');
  const ws2 = sockets[1];
  ws2.accept();
  assert.deepEqual(ws2.sent[0], { action: 'resume', rooms: [{ room: 'lobby', since: 4, epoch: 'E1' }] });
  // A live frame beats the replay; the replay repeats it; then the answer.
  ws2.push(frame('lobby', 9));
  for (const s of [5, 6, 7, 8, 9]) ws2.push(frame('lobby', s));
  ws2.push({ action: 'resumed', rooms: [{ room: 'lobby', epoch: 'E1', seq: 9, recovered: true }] });
  ws2.push(frame('lobby', 9));
  ws2.push(frame('lobby', 10));
  assert.deepEqual(seen, [1, 2, 3, 4, 'no history', 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(hooks, [{ h: 'recovered', room: 'lobby', epoch: 'E1', seq: 9 }]);
  client.close();
});

test('client: recovered:false reports reset; a refused room is forgotten and not resumed again', async () => {
  sockets.length = 0;
  const { client, seen, hooks } = newClient();
  const ws1 = await connected(client, 1);
  ws1.push(frame('a', 1));
  ws1.push({ action: 'message', room: 'b', text: 'b', seq: 3, epoch: 'B1' });
  ws1.drop();
  await until(() => sockets.length === 2, 'the reconnect');
  const ws2 = sockets[1];
  ws2.accept();
  assert.deepEqual(ws2.sent[0].rooms, [
    { room: 'a', since: 1, epoch: 'E1' },
    { room: 'b', since: 3, epoch: 'B1' },
  ]);
  ws2.push({
    action: 'resumed',
    rooms: [
      { room: 'a', epoch: 'E9', seq: 40, recovered: false },
      { room: 'b', error: { code: 'forbidden', message: 'not any more' } },
    ],
  });
  assert.deepEqual(hooks, [
    { h: 'reset', room: 'a', epoch: 'E9', seq: 40, reason: 'resume' },
    { h: 'refused', room: 'b', error: { code: 'forbidden', message: 'not any more' } },
  ]);
  ws2.push(frame('a', 41, 'E9'));
  assert.deepEqual(seen, [1, 3, 41]);
  assert.deepEqual(client.rooms, [{ room: 'a', epoch: 'E9', seq: 41 }]);
  client.forgetRoom('a');
  ws2.drop();
  await until(() => sockets.length === 3, 'the second reconnect');
  sockets[2].accept();
  assert.deepEqual(sockets[2].sent, [], 'no room left to resume');
  client.close();
});

test('client: with beforeResume, resume waits until it settles (rejoin first, then replay)', async () => {
  sockets.length = 0;
  let release;
  const calls = [];
  const { client, seen } = newClient({
    beforeResume: () => {
      calls.push(sockets.length);
      return new Promise((r) => { release = r; });
    },
  });
  const ws1 = await connected(client, 1);
  await until(() => calls.length === 1, 'beforeResume');
  release();
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(ws1.sent, [], 'nothing to resume on the first connection');
  ws1.push(frame('lobby', 1));
  ws1.drop();
  await until(() => sockets.length === 2, 'the reconnect');
  const ws2 = sockets[1];
  ws2.accept();
  await until(() => calls.length === 2, 'beforeResume again');
  assert.deepEqual(calls, [1, 2]);
  ws2.send(JSON.stringify({ action: 'join', room: 'lobby' })); // what the app does in beforeResume
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(ws2.sent.map((f) => f.action), ['join'], 'resume waits for beforeResume');
  ws2.push(frame('lobby', 3)); // the join's own presence: held behind the gap
  release();
  await until(() => ws2.sent.length === 2, 'the resume');
  assert.deepEqual(ws2.sent[1], { action: 'resume', rooms: [{ room: 'lobby', since: 1, epoch: 'E1' }] });
  ws2.push(frame('lobby', 2));
  assert.deepEqual(seen, [1, 2, 3]);
  client.close();
});

test('client: a gap that stays open asks for the missing frames with resume', async () => {
  sockets.length = 0;
  const { client, seen } = newClient({ gapMs: 5 });
  const ws = await connected(client, 1);
  ws.push(frame('r', 1));
  ws.push(frame('r', 3));
  await until(() => ws.sent.length === 1, 'the gap resume');
  assert.deepEqual(ws.sent[0], { action: 'resume', rooms: [{ room: 'r', since: 1, epoch: 'E1' }] });
  ws.push(frame('r', 2));
  ws.push(frame('r', 3));
  ws.push({ action: 'resumed', rooms: [{ room: 'r', epoch: 'E1', seq: 3, recovered: true }] });
  assert.deepEqual(seen, [1, 2, 3]);
  client.close();
});

test('client: request() matches answers by id, rejects error frames, times out, and fails on close', async () => {
  sockets.length = 0;
  const { client } = newClient();
  const errors = [];
  client.hook('error', (e) => errors.push(e.code));
  const members = [];
  client.on('members', (f) => members.push(f.room));
  const ws = await connected(client, 1);

  const a = client.request('members', { room: 'a' });
  const b = client.request('members', { room: 'b' });
  const c = client.request('join', { room: 'c' });
  const [ra, rb, rc] = ws.sent;
  assert.equal(ra.action, 'members');
  assert.equal(ra.room, 'a');
  const ids = new Set([ra.id, rb.id, rc.id]);
  assert.equal(ids.size, 3, 'ids are unique');
  for (const id of ids) assert.ok(typeof id === 'string' && id.length >= 1 && id.length <= 64);
  // Answers in reverse order, and an unrelated frame of the same action.
  ws.push({ action: 'members', room: 'x', members: [] });
  ws.push({ error: { code: 'forbidden', message: 'no', route: 'join' }, id: rc.id });
  ws.push({ action: 'members', room: 'b', members: [], id: rb.id });
  ws.push({ action: 'members', room: 'a', members: [], id: ra.id });
  assert.equal((await a).room, 'a');
  assert.equal((await b).room, 'b');
  await assert.rejects(c, (e) => {
    assert.ok(e instanceof RequestError);
    assert.equal(e.code, 'forbidden');
    assert.equal(e.route, 'join');
    assert.equal(e.frame.id, rc.id);
    return true;
  });
  assert.deepEqual(members, ['x'], 'answers to requests skip on() handlers');
  assert.deepEqual(errors, [], 'error frames of requests skip the error hook');

  await assert.rejects(client.request('whoami', {}, { timeoutMs: 5 }), (e) => e.code === 'timeout');
  const late = ws.sent[ws.sent.length - 1];
  ws.push({ error: { code: 'internal' }, id: late.id }); // after the timeout: a plain error frame
  assert.deepEqual(errors, ['internal']);

  const pending = client.request('whoami', {});
  ws.drop();
  await assert.rejects(pending, (e) => e.code === 'closed');
  await assert.rejects(client.request('whoami', {}), (e) => e.code === 'not_connected');
  client.close();
});

test('client: request("resume") resolves with the answer, and the answer still moves the rooms', async () => {
  sockets.length = 0;
  const { client, seen, hooks } = newClient();
  const ws = await connected(client, 1);
  ws.push(frame('r', 1));
  const answer = client.request('resume', { rooms: [{ room: 'r', since: 1, epoch: 'E1' }] });
  const sent = ws.sent[ws.sent.length - 1];
  assert.equal(sent.action, 'resume');
  ws.push(frame('r', 2));
  ws.push({ action: 'resumed', id: sent.id, rooms: [{ room: 'r', epoch: 'E1', seq: 2, recovered: true }] });
  assert.equal((await answer).rooms[0].seq, 2);
  assert.deepEqual(seen, [1, 2]);
  assert.deepEqual(hooks, [{ h: 'recovered', room: 'r', epoch: 'E1', seq: 2 }]);
  client.close();
});
