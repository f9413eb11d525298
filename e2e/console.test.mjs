// The noVNC console in a real browser against a real `nimbus up` with one
// local agent: upload the tiny guest image through Glance, boot a server
// through the compute API, ask for a noVNC console, open it in Chromium and
// check that it connects and shows the guest's screen; then delete the
// server. Needs root, libvirtd (scripts/libvirt-ensure) and `make build`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { apiCall, eventually, launchBrowser, projectToken, repoRoot, screenshot, startNimbus } from './harness.mjs';

const run = promisify(execFile);
const BIN = process.env.NIMBUS_BIN || path.join(repoRoot, 'bin', 'nimbus');

let nimbus;
let browser;
let token;
let imageDir;

before(async () => {
  imageDir = await mkdtemp(path.join(os.tmpdir(), 'nimbus-e2e-image-'));
  nimbus = await startNimbus({ args: ['--agents', '1', '--virt-type', 'qemu'], timeoutMs: 120_000 });
  // libvirt runs QEMU as its own user, which must reach the instance disks
  // under the data dir; mkdtemp made it 0700.
  await chmod(nimbus.dataDir, 0o711);
  browser = await launchBrowser();
  token = await adminToken();
});

after(async () => {
  await browser?.close();
  await nimbus?.stop();
  if (imageDir) await rm(imageDir, { recursive: true, force: true });
});

const adminToken = () => projectToken(nimbus.url, 'admin', nimbus.adminPassword, 'admin');
const api = (method, p, body, headers) => apiCall(nimbus.url, token, method, p, body, headers);

async function must(want, method, p, body, headers) {
  const r = await api(method, p, body, headers);
  assert.equal(r.status, want, `${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
  return r;
}

test('the noVNC console of a booted server connects and shows its screen', { timeout: 300_000 }, async () => {
  // The tiny guest image: built (cached .debs make it ~7 s) and uploaded
  // through Glance, as a user would.
  const imageFile = path.join(imageDir, 'tiny.qcow2');
  await run(BIN, ['image', 'build', '--output', imageFile], { timeout: 180_000 });
  const { body: img } = await must(201, 'POST', '/image/v2/images',
    { name: 'tiny-e2e', disk_format: 'qcow2', container_format: 'bare' });
  await must(204, 'PUT', `/image/v2/images/${img.id}/file`, new Uint8Array(await readFile(imageFile)));
  await eventually(`image ${img.id} active`, 60_000, async (note) => {
    const { body } = await must(200, 'GET', `/image/v2/images/${img.id}`);
    note(body.status);
    return body.status === 'active';
  });

  const { body: created } = await must(202, 'POST', '/compute/v2.1/servers',
    { server: { name: 'console-e2e', imageRef: img.id, flavorRef: '1', networks: 'none' } });
  const id = created.server.id;
  const page = await browser.newPage({ viewport: { width: 1024, height: 768 } });
  try {
    await eventually(`server ${id} ACTIVE`, 120_000, async (note) => {
      const { body } = await must(200, 'GET', `/compute/v2.1/servers/${id}`);
      if (body.server.status === 'ERROR') throw new Error(`server ${id} went to ERROR: ${JSON.stringify(body.server.fault)}`);
      note(body.server.status);
      return body.server.status === 'ACTIVE';
    });
    // Wait for the guest to finish booting so its screen shows the banner.
    await eventually(`guest ${id} ready on its serial console`, 90_000, async (note) => {
      const r = await api('POST', `/compute/v2.1/servers/${id}/action`, { 'os-getConsoleOutput': {} });
      const out = r.body?.output ?? '';
      note(`${r.status} ${out.slice(-300)}`);
      return r.status === 200 && out.includes('nimbus-guest: ready');
    });

    const { body: rc } = await must(200, 'POST', `/compute/v2.1/servers/${id}/remote-consoles`,
      { remote_console: { protocol: 'vnc', type: 'novnc' } });
    const consoleURL = rc.remote_console.url;
    assert.ok(consoleURL.startsWith(`${nimbus.url}/`), `console URL ${consoleURL} is not on ${nimbus.url}`);

    const problems = [];
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) problems.push(msg.text());
    });
    await page.goto(consoleURL);
    const status = page.locator('#status');
    await status.filter({ hasText: /^Connected$/ }).waitFor({ timeout: 30_000 }).catch(async (err) => {
      throw new Error(`console status is ${JSON.stringify(await status.textContent())}, want "Connected": ${err.message}`);
    });
    assert.equal(await page.locator('body').getAttribute('data-state'), 'connected');
    // The token must not stay in the address bar (it is single-use).
    assert.ok(!page.url().includes('token'), `console page URL still holds the token: ${page.url()}`);

    // The framebuffer canvas shows something: some pixel is not black.
    await eventually('a non-black pixel in the console canvas', 30_000, async (note) => {
      const r = await page.evaluate(() => {
        const canvas = document.querySelector('#screen canvas');
        if (!canvas || !canvas.width || !canvas.height) return { lit: 0, size: 'no canvas' };
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let lit = 0;
        for (let i = 0; i < data.length; i += 4) {
          if (data[i] > 16 || data[i + 1] > 16 || data[i + 2] > 16) lit++;
        }
        return { lit, size: `${canvas.width}x${canvas.height}` };
      });
      note(JSON.stringify(r));
      return r.lit > 0;
    });
    await screenshot(page, 'console-01-connected');
    assert.deepEqual(problems, [], `console page problems: ${problems.join('; ')}`);
  } catch (err) {
    await screenshot(page, 'console-99-failure').catch(() => {});
    throw err;
  } finally {
    await page.close();
    const del = await api('DELETE', `/compute/v2.1/servers/${id}`);
    if (del.status === 204) {
      await eventually(`server ${id} deleted`, 90_000, async (note) => {
        const r = await api('GET', `/compute/v2.1/servers/${id}`);
        note(String(r.status));
        return r.status === 404;
      });
    }
    assert.equal(del.status, 204, `DELETE server ${id}: ${del.status} ${JSON.stringify(del.body)}`);
  }
});
