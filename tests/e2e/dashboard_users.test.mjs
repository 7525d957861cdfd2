// Goal: prove the dashboard's Users page in a real browser against a real chorus-manager and
// node: the page and its navigation entry exist for admins only; an admin creates a user, edits
// its full name and groups, disables it (confirmed; the node then refuses its credentials),
// enables it, resets its password (confirmed; only the new one works) and deletes it (a
// cancelled confirmation changes nothing; a confirmed one removes it); no script errors.
// Headless Debian Chromium driven by playwright-core; screenshots go to tests/e2e/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Manager, MANAGER, waitFor } from './manager_harness.mjs';

const WEB_ROOT = process.env.CHORUS_WEB_ROOT ||
  path.resolve(path.dirname(MANAGER), '../web-ui/dist');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.resolve(import.meta.dirname, 'artifacts');

const skip = fs.existsSync(MANAGER) ? false
  : `chorus-manager not found at ${MANAGER} (set CHORUS_MANAGER or build manager/)`;
if (skip) console.log(`# dashboard users test skipped: ${skip}`);

const manager = new Manager({
  nodes: [{ name: 'u1', cluster: 'default', options: { ClusterSize: 1, MemDb: true } }],
  settings: { WebRoot: WEB_ROOT },
});
const base = () => `http://${manager.ip}:${manager.extHttpPort}`;
const login = `dash-${randomUUID().slice(0, 8)}`;
let browser;
let page;
const problems = [];

function basic(user, password) {
  return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
}

// Whether the node accepts these credentials (through the manager's users proxy).
async function accepted(user, password) {
  const res = await manager.fetch('/api/users/%24current', { auth: basic(user, password) });
  assert.ok(res.status === 200 || res.status === 401, `unexpected ${res.status}`);
  return res.status === 200;
}

async function screenshot(name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `dashboard-users-${name}.png`),
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

const row = () => page.locator(`[data-testid=user-row][data-login="${login}"]`);

async function waitForRow(what, check) {
  return pageWait(what, ({ name, check: c }) => {
    const r = document.querySelector(`[data-testid=user-row][data-login="${name}"]`);
    return new Function('r', `return ${c}`)(r);
  }, { name: login, check });
}

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
  await waitFor(async () => (await manager.fetch('/api/users/%24current',
    { auth: basic('admin', 'changeit') })).status === 200,
  { what: 'the node answering the users API', timeoutMs: 30000 });
  const { chromium } = await import('playwright-core');
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-chromium-'));
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  browser.userDataDir = userDataDir;
  page = browser.pages()[0] ?? await browser.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // The refused credential checks of this test are expected 401s, not page problems.
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

test('the Users page is for admins only', { skip, timeout: 30000 }, async () => {
  await page.goto(`${base()}/#/users`);
  await page.locator('[data-testid=users-needs-admin]').waitFor({ timeout: 10000 });
  assert.equal(await page.locator('[data-testid=nav-users]').count(), 0, 'no entry when anonymous');
  await logIn('admin', 'changeit');
  assert.equal(await page.locator('[data-testid=nav-users]').count(), 1);
  await page.click('[data-testid=nav-users]');
  await pageWait('admin and ops listed', () => ['admin', 'ops'].every((n) =>
    document.querySelector(`[data-testid=user-row][data-login="${n}"]`)));
});

test('create, edit, disable, enable, reset the password of and delete a user',
  { skip, timeout: 60000 }, async () => {
    await page.fill('[data-testid=user-create-login]', login);
    await page.fill('[data-testid=user-create-fullname]', 'Dash Board');
    await page.fill('[data-testid=user-create-groups]', 'dev, $ops');
    await page.fill('[data-testid=user-create-password]', 'first-pw');
    await page.fill('[data-testid=user-create-confirm]', 'other');
    await page.click('[data-testid=user-create-submit]');
    await pageWait('the mismatch explained', () => /differ/.test(
      document.querySelector('[data-testid=user-create] [data-testid=error]')?.textContent ?? ''));
    assert.equal(await row().count(), 0, 'nothing sent for a mismatched password');
    await page.fill('[data-testid=user-create-confirm]', 'first-pw');
    await page.click('[data-testid=user-create-submit]');
    await waitForRow('the new user', "r && r.dataset.groups === 'dev,$ops'");
    assert.equal(await accepted(login, 'first-pw'), true);
    await screenshot('created');

    await row().locator('[data-testid=user-edit]').click();
    await row().locator('[data-testid=user-edit-fullname]').fill('Renamed User');
    await row().locator('[data-testid=user-edit-groups]').fill('qa');
    await row().locator('[data-testid=user-save]').click();
    await waitForRow('the edited user', "r && r.dataset.groups === 'qa' && " +
      "r.textContent.includes('Renamed User')");

    await row().locator('[data-testid=user-disable]').click();
    await page.locator('[data-testid=confirm-dialog]').waitFor({ timeout: 5000 });
    await screenshot('confirm-disable');
    await page.click('[data-testid=confirm-yes]');
    await waitForRow('the disabled user', "r && r.dataset.disabled === 'true'");
    assert.equal(await accepted(login, 'first-pw'), false, 'a disabled user is refused');
    await row().locator('[data-testid=user-enable]').click();
    await waitForRow('the enabled user', "r && r.dataset.disabled === 'false'");
    assert.equal(await accepted(login, 'first-pw'), true);

    await row().locator('[data-testid=user-reset]').click();
    await row().locator('[data-testid=user-reset-password]').fill('second-pw');
    await row().locator('[data-testid=user-reset-confirm]').fill('second-pw');
    await row().locator('[data-testid=user-reset-submit]').click();
    await page.click('[data-testid=confirm-yes]');
    await pageWait('the reset reported', () => document.querySelector(
      '[data-testid=user-action-result]')?.dataset.ok === 'true');
    assert.equal(await accepted(login, 'first-pw'), false);
    assert.equal(await accepted(login, 'second-pw'), true);
    await screenshot('list');

    await row().locator('[data-testid=user-delete]').click();
    await page.click('[data-testid=confirm-no]');
    assert.equal(await row().count(), 1, 'a cancelled delete changes nothing');
    assert.equal(await accepted(login, 'second-pw'), true);
    await row().locator('[data-testid=user-delete]').click();
    await page.click('[data-testid=confirm-yes]');
    await pageWait('the user gone', (n) => !document.querySelector(
      `[data-testid=user-row][data-login="${n}"]`) && document.querySelector(
      '[data-testid=user-action-result]')?.dataset.ok === 'true', login);
    assert.equal(await accepted(login, 'second-pw'), false, 'a deleted user is refused');
  });

test('a non-admin sees neither the entry nor the page', { skip, timeout: 30000 }, async () => {
  const res = await manager.fetch('/api/users/ops', { auth: basic('admin', 'changeit') });
  assert.equal(res.status, 200);
  await logIn('ops', 'changeit');
  assert.equal(await page.locator('[data-testid=nav-users]').count(), 0);
  await page.goto(`${base()}/#/users`);
  await page.locator('[data-testid=users-needs-admin]').waitFor({ timeout: 10000 });
  const list = await manager.fetch('/api/users', { auth: basic('ops', 'changeit') });
  assert.equal(list.status, 401, 'the node refuses the list to non-admins too');
});

test('no script errors on the page', { skip }, () => {
  assert.deepEqual(problems, []);
});
