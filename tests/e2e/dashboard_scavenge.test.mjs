// Goal: prove scavenging through chorus-manager on a real 3-node cluster: the node and cluster
// scavenge routes refuse anonymous callers and ordinary users (401); a node's scavenge started
// through the manager removes the events of hard-deleted and capped streams and reports its
// progress and the space saved; a cluster scavenge runs the nodes one at a time (followers
// first, the leader last, never two at once) and every node ends with Success; and in a real
// browser (headless Chromium via playwright-core) the machine page shows each node's disk use and
// the data volume's free space, and its Scavenge buttons (confirmed, for a logged-in operator)
// scavenge a node and the cluster with their results. Screenshots go to tests/e2e/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Manager, MANAGER, ADMIN, waitFor } from './manager_harness.mjs';
import { launchBrowser, pageHelpers } from './lib/browser.mjs';
import { connect, closeQuietly } from './lib/es.mjs';
import { Scenario } from './lib/scavenge_scenario.mjs';

const WEB_ROOT = process.env.CHORUS_WEB_ROOT ||
  path.resolve(path.dirname(MANAGER), '../web-ui/dist');
const OPS = 'Basic ' + Buffer.from('ops:changeit').toString('base64');
const USER = `plain-${randomUUID().slice(0, 8)}`;
const USER_AUTH = 'Basic ' + Buffer.from(`${USER}:pw`).toString('base64');
// Streams written before the scavenges: half hard-deleted, a quarter capped (scavenge_scenario).
const STREAMS = 8;
const PER_STREAM = 100;

const skip = fs.existsSync(MANAGER) ? false : `chorus-manager not found at ${MANAGER}`;

const m = new Manager({
  nodes: ['n1', 'n2', 'n3'].map((name) => ({ name, options: { ClusterSize: 3 } })),
  settings: { WebRoot: WEB_ROOT },
});
let browser;
let page;
const problems = [];

async function call(p, { method = 'GET', auth, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (auth) headers.Authorization = auth;
  if (body) headers['Content-Type'] = 'application/json';
  const res = await fetch(`http://${m.ip}:${m.extHttpPort}${p}`,
    { method, headers, body: body && JSON.stringify(body), signal: AbortSignal.timeout(15000) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch {}
  return { status: res.status, body: json, text };
}

// Awaits the end of node `name`'s scavenge started through the manager; its final state.
async function nodeScavengeEnd(name) {
  return waitFor(async () => {
    const r = await call(`/api/nodes/${name}/scavenge`, { auth: ADMIN });
    if (r.status !== 200) throw new Error(`GET /api/nodes/${name}/scavenge: ${r.text}`);
    const s = r.body.scavenge;
    return s && s.scavengeResult !== 'InProgress' ? s : false;
  }, { timeoutMs: 30000, intervalMs: 200, what: `the end of ${name}'s scavenge` });
}

const { screenshot, pageWait } = pageHelpers(() => page);

before(async () => {
  if (skip) return;
  await m.start();
  const gossip = await m.waitForCluster(2, 60000);
  const leader = gossip.members[0];
  const conn = await connect(
    { tcpEndpoint: `tcp://${leader.externalTcpIp}:${leader.externalTcpPort}` });
  try {
    const scenario = new Scenario({ streams: STREAMS, perStream: PER_STREAM, dataBytes: 1000 });
    await scenario.write(conn);
    await scenario.retire(conn);
  } finally {
    closeQuietly(conn);
  }
  const created = await call('/api/users', { method: 'POST', auth: ADMIN,
    body: { loginName: USER, fullName: 'Plain user', password: 'pw', groups: [] } });
  assert.ok(created.status === 201 || created.status === 200, created.text);
});

after(async () => {
  if (browser) {
    await browser.close().catch(() => {});
    fs.rmSync(browser.userDataDir, { recursive: true, force: true });
  }
  await m.cleanup();
});

test('the scavenge routes refuse anonymous callers and ordinary users', { skip }, async () => {
  const routes = [['POST', '/api/nodes/n1/scavenge'], ['GET', '/api/nodes/n1/scavenge'],
    ['POST', '/api/cluster/scavenge?cluster=default'],
    ['GET', '/api/cluster/scavenge?cluster=default']];
  for (const [method, p] of routes) {
    const anonymous = await call(p, { method });
    assert.equal(anonymous.status, 401, `${method} ${p} anonymous: ${anonymous.text}`);
    const plain = await call(p, { method, auth: USER_AUTH });
    assert.equal(plain.status, 401, `${method} ${p} as ${USER}: ${plain.text}`);
  }
  const unknown = await call('/api/nodes/nope/scavenge', { method: 'POST', auth: ADMIN });
  assert.equal(unknown.status, 404, unknown.text);
  // Nothing was started by the refused calls.
  const none = await call('/api/cluster/scavenge?cluster=default', { auth: ADMIN });
  assert.equal(none.body.state, 'None', none.text);
});

test('a node scavenge through the manager removes retired events and reports the result',
  { skip, timeout: 60000 }, async () => {
    const started = await call('/api/nodes/n2/scavenge', { method: 'POST', auth: OPS });
    assert.equal(started.status, 200, started.text);
    assert.equal(started.body.node, 'n2');
    assert.match(started.body.scavengeId, /^[0-9a-f-]{36}$/);
    const end = await nodeScavengeEnd('n2');
    assert.equal(end.scavengeId, started.body.scavengeId);
    assert.equal(end.scavengeResult, 'Success', JSON.stringify(end));
    assert.equal(end.progressPercent, 100);
    // 4 deleted streams of 100 events, 2 capped at 10 of 100 (their metadata events stay).
    assert.ok(end.eventsRemoved >= 4 * PER_STREAM + 2 * (PER_STREAM - 10),
      `events removed: ${end.eventsRemoved}`);
    assert.ok(end.spaceSavedBytes >= 0);
    assert.equal(end.nodeEndpoint.length > 0, true);
  });

test('a cluster scavenge runs one node at a time, followers first and the leader last',
  { skip, timeout: 90000 }, async () => {
    const leader = (await m.nodes()).find((n) => n.role === 'Leader').name;
    const started = await call('/api/cluster/scavenge?cluster=default', { method: 'POST',
      auth: ADMIN });
    assert.equal(started.status, 200, started.text);
    assert.equal(started.body.state, 'Running');
    const order = started.body.nodes.map((n) => n.node);
    assert.deepEqual([...order].sort(), ['n1', 'n2', 'n3']);
    assert.equal(order[2], leader, `the leader last: ${order}`);
    const again = await call('/api/cluster/scavenge?cluster=default', { method: 'POST',
      auth: ADMIN });
    assert.equal(again.status, 409, again.text);
    const seen = [];
    const end = await waitFor(async () => {
      const r = await call('/api/cluster/scavenge?cluster=default', { auth: OPS });
      if (r.status !== 200) throw new Error(`GET /api/cluster/scavenge: ${r.text}`);
      seen.push(r.body.nodes.map((n) => n.state));
      return r.body.state !== 'Running' ? r.body : false;
    }, { timeoutMs: 60000, intervalMs: 100, what: 'the end of the cluster scavenge' });
    // Never two at once, and a node starts only after the ones before it finished.
    for (const states of seen) {
      assert.ok(states.filter((s) => s === 'Running').length <= 1, `two at once: ${states}`);
      const firstWaiting = states.indexOf('Waiting');
      if (firstWaiting >= 0) {
        assert.ok(states.slice(firstWaiting).every((s) => s === 'Waiting'), `order: ${states}`);
      }
    }
    assert.equal(end.state, 'Success', JSON.stringify(end));
    for (const n of end.nodes) {
      assert.equal(n.state, 'Success', JSON.stringify(n));
      assert.equal(n.progressPercent, 100);
      assert.match(n.scavengeId, /^[0-9a-f-]{36}$/);
    }
    assert.ok(end.finishedAt >= end.startedAt);
    assert.ok(seen.some((s) => s.includes('Running')), `progress was seen: ${seen.slice(0, 5)}`);
  });

test('the machine page shows disk use, and scavenges a node and the cluster',
  { skip, timeout: 120000 }, async () => {
    assert.ok(fs.existsSync(path.join(WEB_ROOT, 'index.html')), `no dashboard in ${WEB_ROOT}`);
    browser = await launchBrowser({ height: 1400 });
    page = browser.pages()[0] ?? await browser.newPage();
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    const base = `http://${m.ip}:${m.extHttpPort}`;
    await page.goto(`${base}/#/machine`);
    // Disk use per node, as the nodes report it in /stats.
    await pageWait('disk use of three nodes and the volume\'s free space', () => {
      const rows = [...document.querySelectorAll('[data-testid=disk-row]')];
      const tile = document.querySelector('[data-testid=volume-free]');
      return rows.length === 3 && rows.every((r) => Number(r.dataset.databaseBytes) > 0) &&
        Number(tile?.dataset.freeBytes) > 0;
    });
    const stats = (await m.nodes()).find((n) => n.name === 'n1').space;
    assert.ok(stats.databaseBytes > 0 && stats.diskTotalBytes >= stats.diskFreeBytes, stats);
    const free = Number(await page.locator('[data-testid=volume-free]')
      .getAttribute('data-free-bytes'));
    const total = Number(await page.locator('[data-testid=volume-free]')
      .getAttribute('data-total-bytes'));
    assert.equal(total, stats.diskTotalBytes);
    assert.ok(free > 0 && free <= total);
    assert.ok(await page.locator('[data-testid=action-scavenge]').first().isDisabled(),
      'scavenge is disabled without a login');
    await page.goto(`${base}/#/login`);
    await page.fill('[data-testid=login-user]', 'admin');
    await page.fill('[data-testid=login-password]', 'changeit');
    await page.click('[data-testid=login-submit]');
    await page.locator('[data-testid=session-user]').waitFor({ timeout: 10000 });
    await page.goto(`${base}/#/machine`);
    const row = page.locator('[data-testid=node-row][data-name="n1"]');
    await row.locator('[data-testid=action-scavenge]').click();
    await page.locator('[data-testid=confirm-dialog]').waitFor({ timeout: 5000 });
    await page.locator('[data-testid=confirm-yes]').click();
    await pageWait('n1\'s scavenge result', () => {
      const line = document.querySelector('[data-testid=scavenge-node][data-name="n1"]');
      return line?.dataset.result === 'Success' && /saved/.test(line.textContent);
    });
    // The page also shows the cluster scavenge of the test before; this one starts later.
    const before = (await call('/api/cluster/scavenge?cluster=default', { auth: ADMIN })).body;
    await page.locator('[data-testid=action-scavenge-cluster][data-cluster="default"]').click();
    await page.locator('[data-testid=confirm-yes]').click();
    await pageWait('a new cluster scavenge done on every node', (previous) => {
      const c = document.querySelector('[data-testid=scavenge-cluster][data-cluster="default"]');
      const steps = [...(c?.querySelectorAll('[data-testid=scavenge-step]') ?? [])];
      return Number(c?.dataset.started) > previous && c?.dataset.state === 'Success' &&
        steps.length === 3 &&
        steps.every((s) => s.dataset.state === 'Success' && /saved/.test(s.textContent));
    }, before.startedAt ?? 0, 60000);
    await screenshot('machine-scavenge');
    assert.deepEqual(problems, []);
  });
