// The chat page in a real browser: Debian's chromium driven by playwright-core.
//
//   node tests/browser/chat.mjs http://127.0.0.1:PORT OUT_DIR
//
// Two browser contexts (two users, no shared storage) sign in through the local issuer,
// join one room, and each sees the other's message; the page's HTTP API calls (who am I,
// the room list with counts) and heartbeat are checked; then the server drops one socket
// (DELETE @connections/{id}, signed with SigV4 as a backend's SDK signs it) and, while
// alice's network is down (her page's new sockets go to a closed port), bob sends lines:
// once alice's page is back on its own, it shows them, in order and once each (the
// client's `resume` replays them), and chat flows again. Screenshots go to OUT_DIR. Prints one JSON line with what it saw; exits 1
// (after a screenshot of each page) on the first failed step. Every wait is bounded.
import { join } from 'node:path';
import { STEP_MS, launch, start } from './launch.mjs';
import { signedFetch } from './sigv4.mjs';

const { baseUrl, outDir, summary, step } = start('chat.mjs');
const ROOM = 'browser-room';
const AWAY = ['while you were away 1', 'while you were away 2', 'while you were away 3'];

const browser = await launch();

const users = {};
let failed = null;
try {
  for (const name of ['alice', 'bob']) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 640 } });
    context.setDefaultTimeout(STEP_MS);
    // A switch for "the network is down": new sockets go to a closed port on 127.0.0.1.
    await context.addInitScript(() => {
      const Real = window.WebSocket;
      window.__wsBlocked = false;
      window.WebSocket = class extends Real {
        constructor(url, protocols) {
          super(window.__wsBlocked ? 'ws://127.0.0.1:9/blocked' : url, protocols);
        }
      };
    });
    const page = await context.newPage();
    const user = { name, context, page, errors: [], sent: [], received: [] };
    page.on('pageerror', (e) => user.errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') user.errors.push(m.text()); });
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => user.sent.push(String(f.payload)));
      ws.on('framereceived', (f) => user.received.push(String(f.payload)));
    });
    users[name] = user;
  }
  const { alice, bob } = users;
  const status = (u) => u.page.getByTestId('status');
  const connectionId = async (u) => (await u.page.getByTestId('connection-id').textContent()).trim();
  const waitConnected = async (u) => {
    await u.page.waitForFunction(() => {
      const s = document.querySelector('[data-testid=status]');
      const id = document.querySelector('[data-testid=connection-id]').textContent.trim();
      return s.dataset.state === 'connected' && id && id !== '–';
    }, null, { timeout: STEP_MS });
  };
  const seesMessage = (u, from, text) => u.page
    .locator(`[data-testid=chat-message][data-from="${from}"]`, { hasText: text })
    .first()
    .waitFor({ timeout: STEP_MS });
  const send = async (u, text) => {
    await u.page.getByTestId('message').fill(text);
    await u.page.getByTestId('send').click();
  };

  step('open the page and sign in');
  // A 1 s heartbeat so that the test sees pings (40 s otherwise).
  for (const u of [alice, bob]) {
    await u.page.goto(`${baseUrl}/?heartbeat=1000`, { waitUntil: 'load', timeout: STEP_MS });
    await u.page.getByTestId('username').fill(u.name);
    await u.page.getByTestId('signin').click();
    await waitConnected(u);
    u.firstConnection = await connectionId(u);
  }
  if (alice.firstConnection === bob.firstConnection) throw new Error('two pages share a connection id');

  step('join the same room');
  for (const u of [alice, bob]) {
    await u.page.getByTestId('room').fill(ROOM);
    await u.page.getByTestId('join').click();
    await u.page.locator(`[data-testid=room-item][data-room="${ROOM}"]`).waitFor();
    await u.page.getByTestId('message').and(u.page.locator(':enabled')).waitFor();
  }
  for (const u of [alice, bob]) {
    await u.page.waitForFunction(
      () => document.querySelectorAll('[data-testid=member]').length === 2, null, { timeout: STEP_MS });
  }

  step('exchange messages');
  await send(alice, 'hello from alice');
  await send(bob, 'hello from bob');
  for (const u of [alice, bob]) {
    await seesMessage(u, 'alice', 'hello from alice');
    await seesMessage(u, 'bob', 'hello from bob');
  }

  step('the HTTP API: room list with counts, who am I');
  for (const u of [alice, bob]) {
    await u.page.locator(`[data-testid=directory-room][data-room="${ROOM}"][data-count="2"]`).waitFor();
    await u.page.locator('[data-testid=me][data-sessions="1"]').waitFor();
  }

  step('heartbeat: ping answered by pong');
  const deadline = Date.now() + STEP_MS;
  while (Date.now() < deadline) {
    const pinged = alice.sent.some((p) => p.includes('"action":"ping"'));
    const ponged = alice.received.some((p) => p.includes('"action":"pong"'));
    if (pinged && ponged) break;
    await alice.page.waitForTimeout(100);
  }
  if (!alice.sent.some((p) => p.includes('"action":"ping"'))) throw new Error('no ping frame was sent');
  if (!alice.received.some((p) => p.includes('"action":"pong"'))) throw new Error('no pong frame arrived');

  await alice.page.screenshot({ path: join(outDir, 'chat.png'), fullPage: true });
  await bob.page.screenshot({ path: join(outDir, 'chat-bob.png'), fullPage: true });
  summary.screenshots = [join(outDir, 'chat.png'), join(outDir, 'chat-bob.png')];

  step('the server drops alice\'s socket while her network is down; bob sends lines');
  const dropped = alice.firstConnection;
  await alice.page.evaluate(() => { window.__wsBlocked = true; });
  const res = await signedFetch(`${baseUrl}/ws/@connections/${encodeURIComponent(dropped)}`, 'DELETE');
  if (res.status !== 204) throw new Error(`DELETE @connections answered ${res.status}`);
  await alice.page.waitForFunction(
    () => document.querySelector('[data-testid=status]').dataset.state !== 'connected', null, { timeout: STEP_MS });
  summary.statusAfterDrop = await status(alice).getAttribute('data-state');
  for (const line of AWAY) {
    await send(bob, line);
    await seesMessage(bob, 'bob', line);
  }
  const lines = (u, from) => u.page.evaluate((who) => [...document.querySelectorAll(
    `[data-testid=chat-message][data-from="${who}"] .text`)].map((n) => n.textContent), from);
  if ((await lines(alice, 'bob')).some((t) => AWAY.includes(t))) {
    throw new Error('alice saw a line sent while her network was down');
  }

  step('the network is back: the page reconnects with backoff and resumes the room');
  await alice.page.evaluate(() => { window.__wsBlocked = false; });
  await alice.page.waitForFunction((old) => {
    const s = document.querySelector('[data-testid=status]');
    const id = document.querySelector('[data-testid=connection-id]').textContent.trim();
    return s.dataset.state === 'connected' && id && id !== '–' && id !== old;
  }, dropped, { timeout: STEP_MS });
  summary.reconnectedAs = await connectionId(alice);
  for (const line of AWAY) await seesMessage(alice, 'bob', line);
  const fromBob = await lines(alice, 'bob');
  summary.aliceSawFromBob = fromBob;
  const expected = ['hello from bob', ...AWAY];
  if (JSON.stringify(fromBob) !== JSON.stringify(expected)) {
    throw new Error(`alice's page shows bob's lines as ${JSON.stringify(fromBob)}, not ${JSON.stringify(expected)}`);
  }
  if (JSON.stringify(await lines(alice, 'alice')) !== JSON.stringify(['hello from alice'])) {
    throw new Error('alice\'s own line is duplicated after the resume');
  }
  const resumes = alice.sent.filter((p) => p.includes('"action":"resume"')).map((p) => JSON.parse(p));
  const answers = alice.received.filter((p) => p.includes('"action":"resumed"')).map((p) => JSON.parse(p));
  summary.resume = resumes[resumes.length - 1];
  summary.resumed = answers[answers.length - 1];
  if (!summary.resume || summary.resume.rooms[0]?.room !== ROOM || !(summary.resume.rooms[0].since > 0)) {
    throw new Error(`no resume of ${ROOM} with a position: ${JSON.stringify(resumes)}`);
  }
  if (!summary.resumed || summary.resumed.rooms[0]?.recovered !== true) {
    throw new Error(`the resume did not recover ${ROOM}: ${JSON.stringify(answers)}`);
  }
  if (await alice.page.locator('[data-testid=history-notice]').count()) {
    throw new Error('a recovered room shows the reset notice');
  }

  step('after the reconnect the room is rejoined and chat flows both ways');
  await alice.page.getByTestId('message').and(alice.page.locator(':enabled')).waitFor();
  await send(bob, 'are you back?');
  await seesMessage(alice, 'bob', 'are you back?');
  await send(alice, 'alice is back');
  await seesMessage(bob, 'alice', 'alice is back');
  await bob.page.waitForFunction(
    (id) => [...document.querySelectorAll('[data-testid=member]')].some((m) => m.dataset.connectionId === id),
    summary.reconnectedAs, { timeout: STEP_MS });
  await alice.page.screenshot({ path: join(outDir, 'chat-reconnected.png'), fullPage: true });

  for (const u of [alice, bob]) {
    const errors = u.errors.filter((e) => !/WebSocket connection to .* failed/.test(e));
    if (errors.length) throw new Error(`${u.name}'s page logged errors: ${errors.join(' | ')}`);
  }
  summary.ok = true;
} catch (e) {
  failed = e;
  summary.ok = false;
  summary.error = String(e && e.stack ? e.stack : e);
  for (const u of Object.values(users)) {
    try { await u.page.screenshot({ path: join(outDir, `failure-${u.name}.png`), fullPage: true }); } catch { /* ignore */ }
    summary[`errors_${u.name}`] = u.errors;
  }
} finally {
  await browser.close().catch(() => {});
}
console.log(JSON.stringify(summary));
process.exit(failed ? 1 : 0);
