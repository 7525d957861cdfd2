// Goal: prove issue 15's dashboard in a real browser against three real managers on 127.0.0.1,
// 127.0.0.2 and 127.0.0.3 (one real node each, one cluster): a charts page opened after 10 s of
// writes already shows those 10 s (the manager's history), with clock-time axis labels, and has
// points for write latency, lag in events and in time, connections and disk use; the Machines
// view lists the three managers with their nodes' states and roles, and a killed peer turns
// unreachable; node logs and the restart history ask for a login and show after it, and a
// SIGKILLed node's exit, restart and new start appear in the history. Headless Debian Chromium
// driven by playwright-core; screenshots under tests/e2e/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Manager, MANAGER, freePort, waitFor } from './manager_harness.mjs';
import { es, testSettings, jsonEvent, streamName, ANY, closeQuietly } from './lib/es.mjs';

const WEB_ROOT = process.env.CHORUS_WEB_ROOT ||
  path.resolve(path.dirname(MANAGER), '../web-ui/dist');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.resolve(import.meta.dirname, 'artifacts');
const IPS = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
const WRITES_MS = 10000;

const skip = fs.existsSync(MANAGER) ? false
  : `chorus-manager not found at ${MANAGER} (set CHORUS_MANAGER or build manager/)`;
if (skip) console.log(`# dashboard history browser test skipped: ${skip}`);

const managers = [];
let browser;
let page;
let conn;
const problems = [];
const base = (m = managers[0]) => `http://${m.ip}:${m.extHttpPort}`;

async function screenshot(name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `history-${name}.png`), fullPage: true });
}

async function pageWait(what, fn, arg, timeoutMs = 30000) {
  try {
    return await page.waitForFunction(fn, arg, { timeout: timeoutMs, polling: 100 });
  } catch (e) {
    await screenshot(`failed-${what.replace(/\W+/g, '-')}`).catch(() => {});
    throw new Error(`page never showed ${what} within ${timeoutMs} ms: ${e.message}`);
  }
}

async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  context.userDataDir = userDataDir;
  return context;
}

before(async () => {
  if (skip) return;
  assert.ok(fs.existsSync(path.join(WEB_ROOT, 'index.html')),
    `no built dashboard in ${WEB_ROOT} (the CMake target web_ui builds it)`);
  const ports = {};
  for (const k of ['mInt', 'mExt', 'IntTcpPort', 'ExtTcpPort', 'IntHttpPort', 'ExtHttpPort']) {
    ports[k] = await freePort();
  }
  for (const ip of IPS) {
    const seeds = IPS.filter((x) => x !== ip).map((x) => `${x}:${ports.mInt}`).join(',');
    managers.push(new Manager({
      ip,
      // Only ports: the manager gives the node its machine's address. On disk, for disk use.
      nodes: [{ name: `node-${ip.split('.')[3]}`, options: { ClusterSize: 3,
        IntTcpPort: ports.IntTcpPort, ExtTcpPort: ports.ExtTcpPort,
        IntHttpPort: ports.IntHttpPort, ExtHttpPort: ports.ExtHttpPort } }],
      settings: { IntHttpPort: ports.mInt, ExtHttpPort: ports.mExt, GossipSeed: seeds,
        GossipIntervalMs: 300, WebRoot: WEB_ROOT },
    }));
  }
  await Promise.all(managers.map((m) => m.start()));
  await Promise.all(managers.map((m) => m.waitForCluster(2, 60000)));
  browser = await launchBrowser();
  page = browser.pages()[0] ?? await browser.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
});

after(async () => {
  closeQuietly(conn);
  if (browser) {
    await browser.close().catch(() => {});
    fs.rmSync(browser.userDataDir, { recursive: true, force: true });
  }
  await Promise.all(managers.map((m) => m.cleanup()));
});

test('a charts page opened after 10 s of writes already shows them, in clock time',
  { skip, timeout: 120000 }, async () => {
    conn = es.createConnection({ ...testSettings, maxReconnections: 20, maxRetries: 10,
      gossipTimeout: 1000, maxDiscoverAttempts: 20 },
    managers.map((m) => new es.GossipSeed({ host: m.ip, port: m.extHttpPort })), 'history-e2e');
    conn.on('error', () => {});
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('client did not connect')), 20000);
      conn.once('connected', () => { clearTimeout(timer); resolve(); });
      conn.connect().catch(reject);
    });
    // 10 s of writes before the page exists.
    const stream = streamName('charts');
    const began = Date.now();
    let written = 0;
    while (Date.now() - began < WRITES_MS) {
      await conn.appendToStream(stream, ANY, jsonEvent({ i: written }, 'T'));
      written++;
    }
    // The leader's manager: the writes and their latency happened on its node. A follower's
    // manager: lag figures, which its leader (on another machine) reports.
    const roles = await Promise.all(managers.map(async (m) => (await m.nodes())[0].role));
    const leader = managers[roles.indexOf('Leader')];
    const follower = managers[roles.indexOf('Follower')];
    assert.ok(leader && follower, `roles: ${roles}`);
    const charts = [
      [leader, ['writes', 'writeP99', 'connections', 'disk']],
      [follower, ['writes', 'lagEvents', 'lagMs', 'lagBytes', 'disk']],
    ];
    for (const [m, metrics] of charts) {
      const opened = Date.now();
      await page.goto(`${base(m)}/#/charts`);
      // History, not live sampling: the page holds points from before it opened.
      for (const metric of metrics) {
        await pageWait(`the ${metric} chart of ${m.ip} with the past 10 s`, ({ mt, since }) => {
          const el = document.querySelector(`[data-testid=chart-${mt}]`);
          return el && Number(el.dataset.points) >= 8 && Number(el.dataset.firstMs) <= since;
        }, { mt: metric, since: opened - 8000 }, 5000);
      }
      const labels = await page.locator('[data-testid=chart-writes] .uplot')
        .getAttribute('data-time-labels');
      assert.ok(labels && labels.split(' ').every((l) => /^\d\d:\d\d(:\d\d)?$/.test(l)),
        `clock-time labels, not ":17.500": ${labels}`);
      await screenshot(`charts-${m === leader ? 'leader' : 'follower'}`);
    }
    // The managers' documents: a sample a second; write latency of those writes on the leader;
    // the follower's lag as its leader reports it.
    const ofLeader = (await leader.json(`/api/metrics-history?since=${began}`)).body;
    assert.ok(ofLeader.times.length >= 9, `${ofLeader.times.length} samples`);
    const p99 = Object.values(ofLeader.series.writeP99Ms).flat().filter((v) => v !== null);
    assert.ok(p99.length >= 5 && p99.every((v) => v > 0), `write latency figures: ${p99}`);
    const ofFollower = (await follower.json(`/api/metrics-history?since=${began}`)).body;
    for (const figure of ['lagEvents', 'lagMs']) {
      const values = Object.values(ofFollower.series[figure]).flat().filter((v) => v !== null);
      assert.ok(values.length >= 9 && values.every((v) => v >= 0), `${figure}: ${values}`);
    }
  });

test('the Machines view lists every manager with its node, reached through the peers',
  { skip, timeout: 60000 }, async () => {
    await page.goto(`${base()}/#/machines`);
    await pageWait('three reachable machines, one Leader and two Followers', () => {
      const machines = [...document.querySelectorAll('[data-testid=machine]')];
      const nodes = [...document.querySelectorAll('[data-testid=machine-node]')];
      const roles = nodes.map((n) => n.dataset.role).sort().join(',');
      return machines.length === 3 && machines.every((m) => m.dataset.reachable === 'true') &&
        nodes.every((n) => n.dataset.state === 'Running') && roles === 'Follower,Follower,Leader';
    });
    const names = await page.locator('[data-testid=machine-node]').evaluateAll(
      (rows) => rows.map((r) => r.dataset.name).sort());
    assert.deepEqual(names, ['node-1', 'node-2', 'node-3']);
    await screenshot('machines');
  });

test('logs and the restart history ask for a login; after it a SIGKILLed node\'s exit, restart '
  + 'and new start show', { skip, timeout: 90000 }, async () => {
  // Logged out, the page asks for a login instead of requesting what the manager refuses (a 401
  // with WWW-Authenticate would make the browser pop up its own password dialog).
  const asked = [];
  const onRequest = (r) => {
    if (/\/api\/(history|nodes\/[^/]+\/log)/.test(r.url())) asked.push(r.url());
  };
  page.on('request', onRequest);
  await page.goto(`${base()}/#/machine`);
  await page.locator('[data-testid=history-login]').waitFor({ timeout: 10000 });
  await page.locator('[data-testid=log-login]').waitFor({ timeout: 10000 });
  await page.locator('[data-testid=node-row]').first().waitFor({ timeout: 10000 });
  assert.equal(await page.locator('[data-testid=history-row]').count(), 0);
  assert.ok(await page.locator('[data-testid=log-follow]').isDisabled(), 'no follow without login');
  page.off('request', onRequest);
  assert.deepEqual(asked, []);
  const refused = await managers[0].fetch('/api/history');
  assert.equal(refused.status, 401);
  await screenshot('machine-logged-out');

  await page.goto(`${base()}/#/login`);
  await page.fill('[data-testid=login-user]', 'admin');
  await page.fill('[data-testid=login-password]', 'changeit');
  await page.click('[data-testid=login-submit]');
  await page.locator('[data-testid=session-user]').waitFor({ timeout: 10000 });
  await page.goto(`${base()}/#/machine`);
  for (const source of ['tail', 'follow']) {
    if (source === 'follow') await page.check('[data-testid=log-follow]');
    await pageWait(`log lines from the ${source}`, (s) => {
      const box = document.querySelector('[data-testid=log-box]');
      return box?.dataset.source === s && Number(box.dataset.lines) > 0 &&
        /chorus-worker|\[\w+\]/.test(box.innerText);
    }, source, 15000);
  }

  const m = managers[0];
  const victim = (await m.nodes())[0];
  process.kill(victim.pid, 'SIGKILL');
  await pageWait(`${victim.name}'s kill, restart and new start in the history`, (name) => {
    const rows = [...document.querySelectorAll('[data-testid=history-row]')]
      .filter((r) => r.dataset.node === name);
    const exited = rows.findIndex((r) => r.dataset.event === 'exited' &&
      r.innerText.includes('killed by signal 9'));
    const restarting = rows.findIndex((r) => r.dataset.event === 'restarting');
    const started = rows.findIndex((r) => r.dataset.event === 'started');
    // Newest first: started above restarting above exited.
    return exited > 0 && restarting >= 0 && started >= 0 && started < restarting &&
      restarting < exited;
  }, victim.name, 20000);
  await screenshot('machine-history');
  await page.uncheck('[data-testid=log-follow]');
});

test('a peer manager that is gone shows as unreachable in the Machines view',
  { skip, timeout: 60000 }, async () => {
    await managers[2].kill();
    await page.goto(`${base()}/#/machines`);
    await pageWait('127.0.0.3 unreachable', () => [...document.querySelectorAll(
      '[data-testid=machine]')].some((m) => m.dataset.address.startsWith('127.0.0.3:') &&
      m.dataset.reachable === 'false'), undefined, 15000);
    await screenshot('machines-peer-down');
  });

test('no script errors on the page', { skip }, () => {
  assert.deepEqual(problems, []);
});
