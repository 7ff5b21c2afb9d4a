// The local console in a real browser: Debian's chromium driven by playwright-core.
//
//   node tests/browser/console.mjs http://127.0.0.1:PORT OUT_DIR
//
// Two users chat on the app's page while the console (/local/) watches: it lists both
// connections and their room, logs the frames with routes and latencies, its route form
// sends a frame (validated against the route's schema first) that the other user
// receives, and a dead letter that the test put on the `orders` queue is redriven from
// the console. Screenshots go to OUT_DIR. Prints one JSON line with what it saw; exits 1
// (after screenshots) on the first failed step. Every wait is bounded.
import { join } from 'node:path';
import { STEP_MS, launch, start } from './launch.mjs';

const { baseUrl, outDir, summary, step } = start('console.mjs');
const ROOM = 'console-room';

const browser = await launch();

const pages = {};
const requests = [];
let failed = null;
async function open(name, viewport) {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(STEP_MS);
  const page = await context.newPage();
  const p = { name, page, errors: [] };
  page.on('pageerror', (e) => p.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') p.errors.push(m.text()); });
  page.on('request', (r) => requests.push(r.url()));
  pages[name] = p;
  return p;
}

try {
  const alice = await open('alice', { width: 1000, height: 600 });
  const bob = await open('bob', { width: 1000, height: 600 });
  const consolePage = await open('console', { width: 1360, height: 820 });
  const c = consolePage.page;
  const tab = (name) => c.locator(`nav button[data-tab=${name}]`).click();
  const seesMessage = (u, from, text) => u.page
    .locator(`[data-testid=chat-message][data-from="${from}"]`, { hasText: text }).first().waitFor();

  step('two users sign in and join one room');
  for (const u of [alice, bob]) {
    await u.page.goto(`${baseUrl}/`, { waitUntil: 'load' });
    await u.page.getByTestId('username').fill(u.name);
    await u.page.getByTestId('signin').click();
    await u.page.waitForFunction(() => {
      const id = document.querySelector('[data-testid=connection-id]').textContent.trim();
      return document.querySelector('[data-testid=status]').dataset.state === 'connected' && id && id !== '–';
    });
    u.id = (await u.page.getByTestId('connection-id').textContent()).trim();
    await u.page.getByTestId('room').fill(ROOM);
    await u.page.getByTestId('join').click();
    await u.page.getByTestId('message').and(u.page.locator(':enabled')).waitFor();
  }

  step('the console is live and lists both connections');
  await c.goto(`${baseUrl}/local/`, { waitUntil: 'load' });
  await c.locator('[data-testid=stream-status][data-state=live]').waitFor();
  await tab('connections');
  for (const u of [alice, bob]) {
    await c.locator(`[data-testid=connection][data-id="${u.id}"][data-user="${u.name}"]`).waitFor();
    await c.locator(`[data-testid=connection][data-id="${u.id}"] .tag`, { hasText: ROOM }).waitFor();
  }

  step('they chat; the console logs the frames with routes and latencies');
  await alice.page.getByTestId('message').fill('hello from alice');
  await alice.page.getByTestId('send').click();
  await bob.page.getByTestId('message').fill('hello from bob');
  await bob.page.getByTestId('send').click();
  for (const u of [alice, bob]) await seesMessage(u, 'bob', 'hello from bob');
  await c.locator(`[data-testid=connection][data-id="${alice.id}"] [data-testid=frames-in]`)
    .filter({ hasNotText: /^0$/ }).waitFor();
  await c.screenshot({ path: join(outDir, 'console-connections.png') });

  await tab('rooms');
  await c.locator(`[data-testid=room][data-room="${ROOM}"][data-members="2"]`).waitFor();
  // The chat keeps history for every room: the card shows its position (two chat lines
  // at least, plus the presence frames).
  await c.waitForFunction((room) => {
    const card = document.querySelector(`[data-testid=room][data-room="${room}"]`);
    return card && Number(card.dataset.seq) >= 2
      && /^seq \d+ · epoch \S+$/.test(card.querySelector('[data-testid=room-history]')?.textContent ?? '');
  }, ROOM, { timeout: STEP_MS });
  await c.screenshot({ path: join(outDir, 'console-rooms.png') });

  await tab('frames');
  const sent = c.locator('[data-testid=frame][data-route=sendMessage][data-dir=in]');
  await sent.nth(1).waitFor();
  const latency = (await sent.first().getByTestId('latency').textContent()).trim();
  if (!/\d+(\.\d+)? (µs|ms|s)$/.test(latency)) throw new Error(`no latency shown: "${latency}"`);
  summary.latency = latency;
  await c.locator('[data-testid=frame][data-dir=out][data-outcome=push]').first().waitFor();
  await c.getByTestId('filter-route').selectOption('sendMessage');
  await sent.first().click();
  await c.getByTestId('payload').filter({ hasText: 'hello from' }).waitFor();
  await c.screenshot({ path: join(outDir, 'console-frames.png') });

  step('the route form validates, then sends a frame as alice that bob receives');
  await tab('routes');
  await c.locator('[data-testid=route][data-key=sendMessage]').click();
  await c.getByTestId('route-conn').selectOption(alice.id);
  await c.getByTestId('route-frame').fill(JSON.stringify({ action: 'sendMessage', room: ROOM }));
  await c.getByTestId('route-send').click();
  await c.locator('[data-testid=route-result][data-state=invalid]', { hasText: 'text: required' }).waitFor();
  await c.getByTestId('route-frame').fill(JSON.stringify({ action: 'sendMessage', room: ROOM, text: 42 }));
  await c.getByTestId('route-send').click();
  await c.locator('[data-testid=route-result][data-state=invalid]', { hasText: 'must be string' }).waitFor();
  await c.getByTestId('route-frame').fill(JSON.stringify({ action: 'sendMessage', room: ROOM, text: 'sent from the console' }));
  await c.getByTestId('route-send').click();
  await c.locator('[data-testid=route-result][data-state=sent]').waitFor();
  await seesMessage(bob, 'alice', 'sent from the console');
  await c.screenshot({ path: join(outDir, 'console-routes.png') });

  step('a dead letter is redriven from the console');
  await tab('queues');
  const orders = c.locator('[data-testid=queue][data-queue=orders]');
  await c.locator('[data-testid=queue][data-queue=orders][data-dead-letters="1"]').waitFor();
  await orders.getByTestId('dead-letters').click();
  const dead = c.getByTestId('queue-message').first();
  await dead.click();
  await c.getByTestId('queue-message-body').filter({ hasText: 'not an envelope' }).waitFor();
  await c.screenshot({ path: join(outDir, 'console-queues.png') });
  const failuresBefore = Number(await orders.getAttribute('data-failed'));
  await c.getByTestId('redrive-one').first().click();
  await c.locator('[data-testid=queue-messages] h3[data-last-action="1 message(s) redriven to orders"]').waitFor();
  // Back on the queue, the consumer gets it again (and fails it again: it is poison).
  await c.waitForFunction((before) => {
    const card = document.querySelector('[data-testid=queue][data-queue=orders]');
    return card && Number(card.dataset.failed) > before;
  }, failuresBefore, { timeout: STEP_MS });
  summary.redriven = true;

  step('the charts have samples');
  await tab('overview');
  await c.locator('svg[data-chart=frames] circle').first().waitFor();
  await c.getByTestId('latency-route').selectOption('sendMessage');
  await c.locator('svg[data-chart=latency] circle').first().waitFor();
  await c.screenshot({ path: join(outDir, 'console-overview.png') });

  step('nothing left the origin; no page errors');
  const origin = new URL(baseUrl).origin;
  const foreign = requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:'));
  if (foreign.length) throw new Error(`requests outside the origin: ${foreign.join(', ')}`);
  for (const p of Object.values(pages)) {
    if (p.errors.length) throw new Error(`${p.name}'s page logged errors: ${p.errors.join(' | ')}`);
  }
  summary.screenshots = ['overview', 'connections', 'rooms', 'frames', 'routes', 'queues']
    .map((n) => join(outDir, `console-${n}.png`));
  summary.ok = true;
} catch (e) {
  failed = e;
  summary.ok = false;
  summary.error = String(e && e.stack ? e.stack : e);
  for (const p of Object.values(pages)) {
    try { await p.page.screenshot({ path: join(outDir, `failure-console-${p.name}.png`), fullPage: true }); } catch { /* ignore */ }
    summary[`errors_${p.name}`] = p.errors;
  }
} finally {
  await browser.close().catch(() => {});
}
console.log(JSON.stringify(summary));
process.exit(failed ? 1 : 0);
