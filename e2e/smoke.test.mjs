// Smoke test: a fresh `nimbus up` serves a login page with a password field.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, screenshot, startNimbus } from './harness.mjs';

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

test('the dashboard at / shows a login form with a password field', { timeout: 60_000 }, async () => {
  const page = await browser.newPage();
  try {
    const res = await page.goto(`${nimbus.url}/`);
    assert.ok(res, 'no response for /');
    assert.equal(res.status(), 200, `GET / (ended at ${page.url()}) answered ${res.status()}`);
    await page.locator('input[type=password]').first().waitFor({ state: 'visible', timeout: 10_000 });
  } finally {
    await screenshot(page, 'smoke-login').catch(() => {});
    await page.close();
  }
});
