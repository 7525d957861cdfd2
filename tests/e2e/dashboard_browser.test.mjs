// Goal: prove the dashboard works in a real browser against a real chorus-manager with three real
// nodes (issue 6): the cluster page shows one Leader, two Followers and every node's name; a
// SIGKILLed worker's new pid and restart count appear without a reload, and its kill, restart
// and new start in the restart history; the stop button stops a
// node (the page says Stopped) and start brings it back; an event written by
// node-eventstore-client shows in the stream browser with its JSON; the Subscriptions page lists
// a persistent subscription group with its parked message, its detail shows the consumer's
// delivery-to-ack times (extraStatistics), and its replay and delete (confirmed first) work; the
// charts have data; the page raises no script error; the "last updated" mark turns stale while
// the manager is frozen.
// Headless Debian Chromium driven by playwright-core; a screenshot of each page is saved under
// tests/e2e/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Manager, MANAGER } from './manager_harness.mjs';
import { launchBrowser, pageHelpers } from './lib/browser.mjs';
import { es, testSettings, jsonEvent, streamName, closeQuietly } from './lib/es.mjs';

// The CMake target web_ui builds the dashboard into <build>/web-ui/dist.
const WEB_ROOT = process.env.CHORUS_WEB_ROOT ||
  path.resolve(path.dirname(MANAGER), '../web-ui/dist');
const NODE_NAMES = ['n1', 'n2', 'n3'];

// The browser test needs the manager; until it is built the test skips, saying why.
const skip = fs.existsSync(MANAGER) ? false
  : `chorus-manager not found at ${MANAGER} (set CHORUS_MANAGER or build manager/)`;
if (skip) console.log(`# dashboard browser test skipped: ${skip}`);

// Three nodes of one cluster under one manager that serves the built dashboard.
const manager = new Manager({
  nodes: NODE_NAMES.map((name) => ({ name, cluster: 'default', options: { ClusterSize: 3 } })),
  settings: { WebRoot: WEB_ROOT },
});
// The manager's external HTTP port: the dashboard, the API and the clients' gossip seed.
const base = () => `http://${manager.ip}:${manager.extHttpPort}`;
let browser;
let page;
let conn;
const problems = []; // script errors and console errors seen on the page

const { screenshot, pageWait } = pageHelpers(() => page);

function nodeRow(name) { return page.locator(`[data-testid=node-row][data-name="${name}"]`); }

before(async () => {
  if (skip) return;
  assert.ok(fs.existsSync(path.join(WEB_ROOT, 'index.html')),
    `no built dashboard in ${WEB_ROOT} (the CMake target web_ui builds it)`);
  await manager.start();
  browser = await launchBrowser({ height: 900 });
  page = browser.pages()[0] ?? await browser.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
});

after(async () => {
  closeQuietly(conn);
  if (browser) {
    await browser.close().catch(() => {});
    fs.rmSync(browser.userDataDir, { recursive: true, force: true });
  }
  await manager.cleanup();
});

test('cluster page: one Leader, two Followers and every node\'s name', { skip, timeout: 90000 },
  async () => {
    await page.goto(`${base()}/#/cluster`);
    await pageWait('one Leader and two Followers with the names n1, n2, n3', (names) => {
      const rows = [...document.querySelectorAll('[data-testid=member-row]')]
        .filter((r) => r.dataset.state !== 'Manager' && r.dataset.alive === 'true');
      const count = (s) => rows.filter((r) => r.dataset.state === s).length;
      const shown = rows.map((r) => r.dataset.name);
      return count('Leader') === 1 && count('Follower') === 2 &&
        names.every((n) => shown.includes(n));
    }, NODE_NAMES, 60000);
    const text = await page.locator('[data-testid=cluster-table]').innerText();
    for (const n of NODE_NAMES) assert.match(text, new RegExp(`\\b${n}\\b`));
    assert.equal(await page.locator('[data-testid=last-updated]').first()
      .getAttribute('data-stale'), 'false');
    await screenshot('cluster');
  });

test('read-only until login; login with the database\'s admin user', { skip, timeout: 30000 },
  async () => {
    await page.goto(`${base()}/#/machine`);
    await page.locator('[data-testid=read-only]').waitFor({ timeout: 10000 });
    await page.locator('[data-testid=node-row]').first().waitFor({ timeout: 10000 });
    assert.ok(await page.locator('[data-testid=action-stop]').first().isDisabled(),
      'actions are disabled without a login');
    await page.goto(`${base()}/#/login`);
    await screenshot('login');
    await page.fill('[data-testid=login-user]', 'admin');
    await page.fill('[data-testid=login-password]', 'changeit');
    await page.click('[data-testid=login-submit]');
    await page.locator('[data-testid=session-user]').waitFor({ timeout: 10000 });
    assert.equal(await page.locator('[data-testid=session-user]').innerText(), 'admin');
  });

test('a SIGKILLed worker\'s new pid and restart count show without a reload',
  { skip, timeout: 60000 }, async () => {
    await page.goto(`${base()}/#/machine`);
    await pageWait('three Running nodes', () => [...document.querySelectorAll(
      '[data-testid=node-row]')].filter((r) => r.dataset.state === 'Running').length === 3);
    const victim = (await manager.nodes()).find((n) => n.role !== 'Leader' && n.pid > 0);
    assert.ok(victim, 'a running follower to kill');
    await page.evaluate(() => { window.__noReload = true; });
    process.kill(victim.pid, 'SIGKILL');
    await pageWait(`${victim.name} with a new pid and ${victim.restarts + 1} restart(s)`,
      ({ name, pid, restarts }) => {
        const row = document.querySelector(`[data-testid=node-row][data-name="${name}"]`);
        return row && row.dataset.state === 'Running' && row.dataset.pid !== '' &&
          Number(row.dataset.pid) !== pid && Number(row.dataset.restarts) === restarts;
      }, { name: victim.name, pid: victim.pid, restarts: victim.restarts + 1 });
    assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
    const info = (await manager.nodes()).find((n) => n.name === victim.name);
    assert.equal(await nodeRow(victim.name).getAttribute('data-pid'), String(info.pid));
    // The restart history lists the kill with its cause, the restart and the new start (newest
    // first), without a reload.
    await pageWait(`${victim.name}'s kill, restart and new start in the restart history`,
      ({ name, pid }) => {
        const rows = [...document.querySelectorAll('[data-testid=history-row]')]
          .filter((r) => r.dataset.node === name);
        const at = (event, text) => rows.findIndex((r) => r.dataset.event === event &&
          r.innerText.includes(text));
        const started = at('started', `pid ${pid}`);
        const restarting = at('restarting', 'in ');
        const exited = at('exited', 'killed by signal 9');
        return started >= 0 && started < restarting && restarting < exited;
      }, { name: victim.name, pid: info.pid }, 15000);
  });

test('the stop button stops a node and start brings it back', { skip, timeout: 90000 },
  async () => {
    const target = (await manager.nodes()).find((n) => n.role !== 'Leader');
    await nodeRow(target.name).locator('[data-testid=action-stop]').click();
    await page.locator('[data-testid=confirm-yes]').click();
    await pageWait(`${target.name} Stopped`, (name) => {
      const row = document.querySelector(`[data-testid=node-row][data-name="${name}"]`);
      return row?.dataset.state === 'Stopped' && row.innerText.includes('Stopped');
    }, target.name);
    const result = page.locator('[data-testid=action-result]');
    await result.waitFor({ timeout: 30000 });
    assert.equal(await result.getAttribute('data-ok'), 'true', await result.innerText());
    assert.equal((await manager.nodes()).find((n) => n.name === target.name).state, 'Stopped');
    await screenshot('machine-stopped');

    await nodeRow(target.name).locator('[data-testid=action-start]').click();
    await page.locator('[data-testid=confirm-yes]').click();
    await pageWait(`${target.name} Running again`, (name) => {
      const row = document.querySelector(`[data-testid=node-row][data-name="${name}"]`);
      return row?.dataset.state === 'Running' && row.dataset.pid !== '';
    }, target.name);
    await pageWait('the history listing the stop', (name) => [...document.querySelectorAll(
      '[data-testid=history-row]')].some((r) => r.dataset.node === name), target.name);
    await screenshot('machine');
  });

test('a node\'s log tail follows over Server-Sent Events', { skip, timeout: 30000 }, async () => {
  await page.selectOption('[data-testid=log-node]', 'n1');
  await page.check('[data-testid=log-follow]');
  await pageWait('log lines from the follow stream', () => {
    const box = document.querySelector('[data-testid=log-box]');
    return box?.dataset.source === 'follow' && Number(box.dataset.lines) > 0;
  }, undefined, 15000);
  assert.match(await page.locator('[data-testid=log-box]').innerText(), /chorus-worker|\[\w+\]/);
  await page.uncheck('[data-testid=log-follow]');
});

test('an event written by node-eventstore-client shows in the stream browser with its JSON',
  { skip, timeout: 60000 }, async () => {
    // The manager's external HTTP port is the only gossip seed the client gets.
    conn = es.createConnection({ ...testSettings, maxReconnections: 20, maxRetries: 10,
      gossipTimeout: 1000, maxDiscoverAttempts: 20 },
    [new es.GossipSeed({ host: manager.ip, port: manager.extHttpPort })], 'dashboard-e2e');
    conn.on('error', () => {});
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('client did not connect')), 20000);
      conn.once('connected', () => { clearTimeout(timer); resolve(); });
      conn.connect().catch(reject);
    });
    const stream = streamName('dash');
    const marker = `marker-${Date.now()}`;
    await conn.appendToStream(stream, es.expectedVersion.any,
      jsonEvent({ order: 7, marker, items: ['a', 'b'] }, 'OrderPlaced', { source: 'e2e' }));

    await page.goto(`${base()}/#/streams`);
    await pageWait(`${stream} among the recently written streams`, (s) => !!document
      .querySelector(`[data-testid=recent-stream][data-stream="${s}"]`), stream);
    await screenshot('streams');
    await page.click(`[data-testid=recent-stream][data-stream="${stream}"] a`);
    const event = page.locator('[data-testid=stream-event][data-number="0"]');
    await event.waitFor({ timeout: 15000 });
    assert.equal(await event.getAttribute('data-type'), 'OrderPlaced');
    const data = JSON.parse(await event.locator('[data-testid=event-data]').innerText());
    assert.deepEqual(data, { order: 7, marker, items: ['a', 'b'] });
    const meta = JSON.parse(await event.locator('[data-testid=event-metadata]').innerText());
    assert.deepEqual(meta, { source: 'e2e' });
    await screenshot('stream-events');

    // Admins also browse $all, where the same event is among the newest.
    await page.click('[data-testid=open-all]');
    await pageWait('the event in $all', (m) => [...document.querySelectorAll(
      '[data-testid=stream-event]')].some((e) => e.innerText.includes(m)), marker, 15000);
  });

test('the Subscriptions page lists a group with its parked message; replay and delete are ' +
  'confirmed', { skip, timeout: 60000 }, async () => {
    const admin = new es.UserCredentials('admin', 'changeit');
    const stream = streamName('dash-ps');
    const group = es.PersistentSubscriptionSettings.create();
    group.startFrom = 0;
    group.maxRetryCount = 0;
    group.extraStatistics = true;
    await conn.createPersistentSubscription(stream, 'workers', group, admin);
    let park = true;
    const sub = await conn.connectToPersistentSubscription(stream, 'workers', (s, e) => {
      if (park) s.fail(e, es.PersistentSubscriptionNakEventAction.Park, 'e2e');
      else s.acknowledge(e);
    }, undefined, admin, 10, false);
    await conn.appendToStream(stream, es.expectedVersion.any, jsonEvent({ n: 1 }, 'Work'));

    await page.goto(`${base()}/#/subscriptions`);
    const row = `[data-testid=subscription][data-stream="${stream}"]`;
    await pageWait('the group with one parked message', (r) => document.querySelector(r)
      ?.querySelector('[data-testid=subscription-parked]')?.innerText === '1', row);
    await screenshot('subscriptions');
    await page.click(`${row} a`);
    await page.locator('[data-testid=subscription-detail]').waitFor({ timeout: 15000 });
    // extraStatistics: the consumer's delivery-to-ack times (its park nak was an answer).
    await pageWait('the consumer\'s delivery-to-ack times', () => /^mean \d+ · median \d+/
      .test(document.querySelector('[data-testid=consumer-latency]')?.innerText ?? ''),
    undefined, 15000);
    park = false;
    // Replay is confirmed first; cancelling does nothing.
    await page.click('[data-testid=replay-parked]');
    await page.click('[data-testid=confirm-no]');
    await page.click('[data-testid=replay-parked]');
    await page.click('[data-testid=confirm-yes]');
    await pageWait('no parked message after the replay', () => document
      .querySelector('[data-testid=detail-parked]')?.innerText.startsWith('0'), undefined, 15000);
    await screenshot('subscription-detail');
    await page.click('[data-testid=delete-subscription]');
    await page.click('[data-testid=confirm-yes]');
    await pageWait('the list without the deleted group', (r) =>
      window.location.hash === '#/subscriptions' && document.querySelector(
        '[data-testid=subscriptions]') && !document.querySelector(r), row, 15000);
    sub.stop();
  });

test('the charts have data', { skip, timeout: 30000 }, async () => {
  await page.goto(`${base()}/#/charts`);
  for (const metric of ['writes', 'reads', 'lagBytes']) {
    await pageWait(`points on the ${metric} chart`, (m) => Number(document
      .querySelector(`[data-testid=chart-${m}]`)?.dataset.points) >= 3, metric, 15000);
    const series = await page.locator(`[data-testid=chart-${metric}]`).getAttribute('data-series');
    assert.equal(series, '3', `one ${metric} series per node`);
  }
  assert.ok(await page.locator('[data-testid=chart-writes] canvas').count() > 0, 'uPlot drew');
  await screenshot('charts');
});

test('the phone-sized layout shows the nodes', { skip, timeout: 30000 }, async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base()}/#/machine`);
  await pageWait('three node cards', () =>
    document.querySelectorAll('[data-testid=node-row]').length === 3);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no horizontal scrolling on a phone (page is ${width} px wide)`);
  await screenshot('machine-phone');
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('no script errors on the page', { skip }, () => {
  assert.deepEqual(problems, []);
});

test('the "last updated" mark turns stale while the manager does not answer', { skip,
  timeout: 60000 }, async () => {
  await page.goto(`${base()}/#/cluster`);
  await pageWait('a fresh mark', () => document.querySelector(
    '[data-testid=last-updated]')?.dataset.stale === 'false');
  process.kill(manager.pid, 'SIGSTOP');
  try {
    await pageWait('a stale mark', () => document.querySelector(
      '[data-testid=last-updated]')?.dataset.stale === 'true', undefined, 15000);
    await screenshot('cluster-stale');
  } finally {
    process.kill(manager.pid, 'SIGCONT');
  }
  await pageWait('a fresh mark again', () => document.querySelector(
    '[data-testid=last-updated]')?.dataset.stale === 'false', undefined, 20000);
});
