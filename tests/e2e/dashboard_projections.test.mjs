// Goal: prove the dashboard's Projections page in a real browser against a real chorus-manager
// and node (--run-projections=All, standard projections started): anonymous visitors are asked
// to log in; an admin sees the standard projections with status and progress bars, creates a
// continuous projection with the form (a bad one is explained, nothing sent), opens its detail
// (query, state, statistics), disables, enables and resets it (each confirmed; a cancelled
// confirmation changes nothing) and deletes it; a signed-in user outside $admins/$ops sees the
// list but no buttons and no form, and the node (through the manager) refuses that user's
// commands and deletes; no script errors. Headless Debian Chromium driven by playwright-core;
// screenshots go to tests/e2e/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Manager, MANAGER, ADMIN, waitFor } from './manager_harness.mjs';
import { httpFetch } from './lib/tls.mjs';

const WEB_ROOT = process.env.CHORUS_WEB_ROOT ||
  path.resolve(path.dirname(MANAGER), '../web-ui/dist');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.resolve(import.meta.dirname, 'artifacts');

const skip = fs.existsSync(MANAGER) ? false
  : `chorus-manager not found at ${MANAGER} (set CHORUS_MANAGER or build manager/)`;
if (skip) console.log(`# dashboard projections test skipped: ${skip}`);

const manager = new Manager({
  nodes: [{ name: 'p1', cluster: 'default', options: { ClusterSize: 1, MemDb: true,
    RunProjections: 'All', StartStandardProjections: true } }],
  settings: { WebRoot: WEB_ROOT },
});
const base = () => `${manager.scheme}://${manager.ip}:${manager.extHttpPort}`;
const name = `dash-${randomUUID().slice(0, 8)}`;
const category = `dash${randomUUID().slice(0, 6)}`;
let browser;
let page;
const problems = [];

const basic = (user, password) =>
  'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');

// A call through the manager's relay, with a body.
async function api(method, p, { auth = ADMIN, body, type = 'application/json' } = {}) {
  const headers = { Accept: 'application/json', 'Content-Type': type };
  if (auth) headers.Authorization = auth;
  const res = await httpFetch(`${base()}${p}`, { method, headers, body,
    signal: AbortSignal.timeout(15000) });
  return { status: res.status, text: await res.text() };
}

async function screenshot(label) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `dashboard-projections-${label}.png`),
    fullPage: true });
}

async function pageWait(what, fn, arg, timeoutMs = 15000) {
  try {
    return await page.waitForFunction(fn, arg, { timeout: timeoutMs, polling: 100 });
  } catch (e) {
    await screenshot(`failed-${what.replace(/\W+/g, '-')}`).catch(() => {});
    throw new Error(`page never showed ${what} within ${timeoutMs} ms: ${e.message}`);
  }
}

const row = () => page.locator(`[data-testid=projection-row][data-name="${name}"]`);
const statusIs = (status) => pageWait(`${name} ${status}`, ({ n, s }) => document.querySelector(
  `[data-testid=projection-row][data-name="${n}"]`)?.dataset.status === s, { n: name, s: status });

async function logIn(user, password) {
  await page.goto(`${base()}/#/login`);
  await page.fill('[data-testid=login-user]', user);
  await page.fill('[data-testid=login-password]', password);
  await page.click('[data-testid=login-submit]');
  await pageWait(`logged in as ${user}`, (u) =>
    document.querySelector('[data-testid=session-user]')?.textContent === u, user);
}

before(async () => {
  if (skip) return;
  assert.ok(fs.existsSync(path.join(WEB_ROOT, 'index.html')),
    `no built dashboard in ${WEB_ROOT} (the CMake target web_ui builds it)`);
  await manager.start();
  await waitFor(async () => (await api('GET', '/api/projections/any')).status === 200,
    { what: 'the node answering the projections API', timeoutMs: 30000 });
  const { chromium } = await import('playwright-core');
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-chromium-'));
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 900 },
    ignoreHTTPSErrors: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  browser.userDataDir = userDataDir;
  page = browser.pages()[0] ?? await browser.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 401/.test(m.text())) {
      problems.push(`console: ${m.text()}`);
    }
  });
});

after(async () => {
  if (browser) {
    await browser.close().catch(() => {});
    fs.rmSync(browser.userDataDir, { recursive: true, force: true });
  }
  await manager.cleanup();
});

test('anonymous visitors are asked to log in; an admin sees the standard projections',
  { skip, timeout: 60000 }, async () => {
    await page.goto(`${base()}/#/projections`);
    await page.locator('[data-testid=projections-needs-login]').waitFor({ timeout: 10000 });
    await logIn('admin', 'changeit');
    await page.click('[data-testid=nav-projections]');
    await pageWait('the five standard projections running', () => ['$streams',
      '$stream_by_category', '$by_category', '$by_event_type', '$by_correlation_id'].every((n) =>
      document.querySelector(`[data-testid=projection-row][data-name="${n}"]`)?.dataset.status ===
        'Running'));
    await pageWait('progress bars', () =>
      document.querySelectorAll('[data-testid=projection-progress]').length >= 5);
    await screenshot('list');
  });

test('create, inspect, disable, enable, reset and delete a projection',
  { skip, timeout: 90000 }, async () => {
    const nodeBase = `${manager.scheme}://${manager.ip}:${manager.node('p1').options.ExtHttpPort}`;
    for (let i = 0; i < 3; i++) {
      const r = await httpFetch(`${nodeBase}/streams/${category}-${i}`, { method: 'POST',
        headers: { Authorization: ADMIN, 'Content-Type': 'application/vnd.eventstore.events+json' },
        body: JSON.stringify([{ eventId: randomUUID(), eventType: 'Counted', data: { i } }]) });
      assert.equal(r.status, 201);
    }
    // A transient one that emits is refused by the form, nothing is sent.
    await page.fill('[data-testid=projection-create-name]', name);
    await page.selectOption('[data-testid=projection-create-mode]', 'transient');
    await page.check('[data-testid=projection-create-emit]');
    await page.fill('[data-testid=projection-create-query]', 'fromAll().when({})');
    await page.click('[data-testid=projection-create-submit]');
    await pageWait('the refusal explained', () => /emit/.test(document.querySelector(
      '[data-testid=projection-create] [data-testid=error]')?.textContent ?? ''));
    assert.equal(await row().count(), 0);
    await page.selectOption('[data-testid=projection-create-mode]', 'continuous');
    await page.uncheck('[data-testid=projection-create-emit]');
    await page.fill('[data-testid=projection-create-query]', `fromCategory('${category}').when({
  $init: function () { return { count: 0 }; },
  Counted: function (s, e) { s.count += 1; }
})`);
    await page.click('[data-testid=projection-create-submit]');
    await statusIs('Running');

    await row().locator('a').click();
    await pageWait('the detail with query, state and statistics', (n) => {
      const d = document.querySelector('[data-testid=projection-detail]');
      return d?.dataset.name === n &&
        /fromCategory/.test(d.querySelector('[data-testid=projection-query]')?.value ?? '') &&
        /"count":3/.test(d.querySelector('[data-testid=projection-state]')?.textContent ?? '') &&
        /"mode": "Continuous"/.test(
          d.querySelector('[data-testid=projection-statistics]')?.textContent ?? '');
    }, name, 30000);
    await screenshot('detail');

    await row().locator('[data-testid=projection-disable]').click();
    await page.locator('[data-testid=confirm-dialog]').waitFor({ timeout: 5000 });
    await page.click('[data-testid=confirm-no]');
    assert.equal(await row().getAttribute('data-status'), 'Running', 'a cancel changes nothing');
    await row().locator('[data-testid=projection-disable]').click();
    await page.click('[data-testid=confirm-yes]');
    await statusIs('Stopped');
    await row().locator('[data-testid=projection-enable]').click();
    await page.click('[data-testid=confirm-yes]');
    await statusIs('Running');
    await row().locator('[data-testid=projection-reset]').click();
    await page.click('[data-testid=confirm-yes]');
    await pageWait('the reset reported', () => document.querySelector(
      '[data-testid=projection-action-result]')?.dataset.ok === 'true');
    await statusIs('Running');

    await row().locator('[data-testid=projection-delete]').click();
    await page.click('[data-testid=confirm-yes]');
    await pageWait('the projection gone', (n) => !document.querySelector(
      `[data-testid=projection-row][data-name="${n}"]`), name);
    assert.equal((await api('GET', `/api/projection/${name}`)).status, 404);
  });

test('a user outside $admins and $ops gets no buttons, and the node refuses the calls',
  { skip, timeout: 60000 }, async () => {
    const created = await api('POST', '/api/users', { body: JSON.stringify({
      loginName: 'watcher', fullName: 'Watcher', password: 'watch-pw', groups: [] }) });
    assert.equal(created.status, 201, created.text);
    await logIn('watcher', 'watch-pw');
    await page.goto(`${base()}/#/projections`);
    await pageWait('the list for a reader', () => document.querySelector(
      '[data-testid=projection-row][data-name="$by_category"]'));
    assert.equal(await page.locator('[data-testid=projection-create]').count(), 0);
    for (const button of ['disable', 'enable', 'reset', 'delete']) {
      assert.equal(await page.locator(`[data-testid=projection-${button}]`).count(), 0, button);
    }
    await screenshot('reader');
    const watcher = basic('watcher', 'watch-pw');
    for (const [method, p, body] of [
      ['POST', '/api/projection/%24by_category/command/disable'],
      ['POST', '/api/projection/%24by_category/command/reset'],
      ['DELETE', '/api/projection/%24by_event_type'],
      ['POST', '/api/projections/continuous?name=sneaky&type=JS', 'fromAll().when({})'],
    ]) {
      const r = await api(method, p, { auth: watcher, body, type: 'text/plain' });
      assert.equal(r.status, 401, `${method} ${p}: ${r.status} ${r.text}`);
    }
    assert.equal((await api('GET', '/api/projections/any', { auth: null })).status, 401);
    const still = JSON.parse((await api('GET', '/api/projection/%24by_category')).text);
    assert.equal(still.status, 'Running');
  });

test('no script errors on the page', { skip }, () => {
  assert.deepEqual(problems, []);
});
