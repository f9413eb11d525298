// Identity administration through the dashboard, in a real browser against
// a real `nimbus up`: the admin creates a project and a user, makes the user
// a member of the project and signs out; the user signs in and sees only
// that project, no Identity menu, and a 403 for the identity pages.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, login as loginAt, screenshot, startNimbus, watchPage } from './harness.mjs';

const PROJECT = 'e2e-project';
const USER = 'e2e-user';
const USER_PASSWORD = 'E2e-user-Password-1';

let nimbus;
let browser;

before(async () => {
  nimbus = await startNimbus();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await nimbus?.stop();
});

const login = (page, user, password) => loginAt(page, nimbus.url, user, password);

async function logout(page) {
  await page.locator('details.user-menu > summary').click();
  await Promise.all([
    page.waitForURL(/\/auth\/login\?reason=signed-out$/),
    page.locator('#logout').click(),
  ]);
}

// openModal clicks a link that loads a form into the dialog and waits for it.
async function openModal(page, linkName) {
  await page.getByRole('link', { name: linkName }).first().click();
  const dialog = page.locator('dialog#modal[open]');
  await dialog.waitFor({ state: 'visible' });
  return dialog;
}

async function toast(page, text) {
  await page.locator('#toasts .toast', { hasText: text }).first().waitFor({ state: 'visible' });
}

test('admin creates a project and a member; the member sees only that project', { timeout: 120_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const problems = watchPage(page);
  let step = 'start';
  try {
    // 1. Sign in as admin.
    step = 'admin login';
    await page.goto(`${nimbus.url}/`);
    await page.getByLabel('Password').waitFor();
    await screenshot(page, 'identity-01-login');
    await login(page, 'admin', nimbus.adminPassword);
    assert.equal(await page.locator('#nav-identity').count(), 1, 'admin sees the Identity menu');
    await screenshot(page, 'identity-02-admin-overview');

    // 2. Create a project in the dialog.
    step = 'create project';
    await page.locator('#nav-identity').getByRole('link', { name: 'Projects' }).click();
    await page.waitForURL(/\/identity-admin\/projects$/);
    let dialog = await openModal(page, 'Create project');
    await dialog.getByLabel('Name').fill(PROJECT);
    await dialog.getByLabel('Description').fill('Created by the browser test');
    await screenshot(page, 'identity-03-create-project-modal');
    await dialog.getByRole('button', { name: 'Create project' }).click();
    await toast(page, `Project “${PROJECT}” created.`);
    await page.locator('dialog#modal[open]').waitFor({ state: 'detached' }).catch(() => {});
    await assert.doesNotReject(page.locator('#projects-table tr', { hasText: PROJECT }).waitFor());
    assert.equal(await page.locator('dialog#modal').evaluate((d) => d.open), false, 'dialog closed after success');
    await screenshot(page, 'identity-04-project-created');

    // 3. Create a user; first show the inline validation.
    step = 'create user';
    await page.locator('#nav-identity').getByRole('link', { name: 'Users' }).click();
    await page.waitForURL(/\/identity-admin\/users$/);
    dialog = await openModal(page, 'Create user');
    await dialog.getByLabel('User name').fill(USER);
    await dialog.getByLabel('Email').fill('e2e@example.com');
    await dialog.getByLabel('Password', { exact: true }).fill(USER_PASSWORD);
    await dialog.getByLabel('Confirm password').fill('not the same');
    await dialog.getByRole('button', { name: 'Create user' }).click();
    await dialog.getByText('The passwords do not match.').waitFor();
    await screenshot(page, 'identity-05-create-user-validation');
    await dialog.getByLabel('Password', { exact: true }).fill(USER_PASSWORD);
    await dialog.getByLabel('Confirm password').fill(USER_PASSWORD);
    await dialog.getByLabel('Primary project', { exact: true }).selectOption({ label: PROJECT });
    await dialog.getByLabel('Role on the primary project').selectOption({ label: '— No role —' });
    await dialog.getByRole('button', { name: 'Create user' }).click();
    await toast(page, `User “${USER}” created.`);
    await page.locator('#users-table tr', { hasText: USER }).waitFor();
    await screenshot(page, 'identity-06-user-created');

    // 4. Make the user a member of the project.
    step = 'add member';
    await page.locator('#nav-identity').getByRole('link', { name: 'Projects' }).click();
    await page.locator('#projects-table tr', { hasText: PROJECT }).getByRole('link', { name: 'Members' }).click();
    await page.waitForURL(/\/members$/);
    await page.getByLabel('User or group').selectOption({ label: USER });
    await page.getByLabel('Role', { exact: true }).selectOption({ label: 'member' });
    await page.getByRole('button', { name: 'Add member' }).click();
    await toast(page, 'Member added.');
    const row = page.locator('#members-table tr', { hasText: USER });
    await row.waitFor();
    assert.match(await row.innerText(), /member/);
    await screenshot(page, 'identity-07-member-added');

    // 5. Sign out.
    step = 'admin logout';
    await logout(page);
    await page.getByText('You have signed out.').waitFor();
    await screenshot(page, 'identity-08-signed-out');

    // 6. Sign in as the new user: only their project, no Identity menu.
    step = 'member login';
    await login(page, USER, USER_PASSWORD);
    assert.equal((await page.locator('#overview-project-name').innerText()).trim(), PROJECT);
    assert.equal(await page.locator('#nav-identity').count(), 0, 'a member has no Identity menu');
    assert.equal(await page.locator('#nav-admin').count(), 0, 'a member has no Admin menu');
    await page.locator('details.project-switcher > summary').click();
    const choices = page.locator('details.project-switcher form button');
    assert.deepEqual((await choices.allInnerTexts()).map((t) => t.replace('✓', '').trim()), [PROJECT]);
    await screenshot(page, 'identity-09-member-overview');

    // 7. The identity pages answer 403, whatever the menu shows.
    step = 'member forbidden';
    const res = await page.goto(`${nimbus.url}/identity-admin/projects`);
    assert.equal(res.status(), 403);
    await page.getByText('You need the admin role to open this page.').waitFor();
    await screenshot(page, 'identity-10-member-forbidden');

    assert.deepEqual(problems, [], 'no CSP violations or script errors');
  } catch (err) {
    await screenshot(page, `identity-failed-${step.replace(/\s+/g, '-')}`).catch(() => {});
    err.message += `\n(step: ${step}; nimbus log tail:\n${nimbus.log().slice(-3000)})`;
    throw err;
  } finally {
    await context.close();
  }
});

test('the dashboard works at phone width', { timeout: 60_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 400, height: 800 } });
  const page = await context.newPage();
  const problems = watchPage(page);
  try {
    await page.goto(`${nimbus.url}/auth/login`);
    await screenshot(page, 'phone-01-login');
    await login(page, 'admin', nimbus.adminPassword);
    // The navigation is collapsed behind the Menu button.
    assert.equal(await page.locator('#sidenav').isVisible(), false, 'nav collapsed');
    await screenshot(page, 'phone-02-overview');
    await page.getByRole('button', { name: 'Menu' }).click();
    await page.locator('#sidenav').waitFor({ state: 'visible' });
    await screenshot(page, 'phone-03-nav-open');
    await page.locator('#nav-identity').getByRole('link', { name: 'Projects' }).click();
    await page.waitForURL(/\/identity-admin\/projects$/);
    await screenshot(page, 'phone-04-projects');
    await page.goto(`${nimbus.url}/identity-admin/users`);
    await openModal(page, 'Create user');
    await screenshot(page, 'phone-05-create-user-modal');
    assert.deepEqual(problems, [], 'no CSP violations or script errors');
  } finally {
    await context.close();
  }
});
