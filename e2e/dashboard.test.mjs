// The tenant's whole instance flow in the dashboard, in real browsers
// against a real `nimbus up` with one libvirt agent and the network data
// plane: alice (project A) creates a key pair, launches the tiny image on
// her private network and watches the row go from BUILD to ACTIVE without
// a reload (the live socket), opens the console (noVNC connected, a lit
// framebuffer), associates a floating IP, stops and starts the instance
// and deletes it, seeing the row go live. Bob (project B) has the
// instances page open the whole time and never sees any of it; the admin
// sees the instance in All instances and the hypervisor's usage change.
// Needs root, libvirtd (scripts/libvirt-ensure) and `make build`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { apiCall, eventually, launchBrowser, login as loginAt, projectToken, repoRoot, screenshot, startNimbus, watchPage } from './harness.mjs';

const login = (page, user, password) => loginAt(page, nimbus.url, user, password);

const run = promisify(execFile);
const BIN = process.env.NIMBUS_BIN || path.join(repoRoot, 'bin', 'nimbus');
const PASSWORD = 'E2e-dashboard-Pass-1';
const VM = 'dash-vm';

let nimbus;
let browser;
let imageDir;
let adminToken;

before(async () => {
  imageDir = await mkdtemp(path.join(os.tmpdir(), 'nimbus-e2e-image-'));
  nimbus = await startNimbus({ args: ['--agents', '1', '--virt-type', 'qemu'], timeoutMs: 120_000 });
  await chmod(nimbus.dataDir, 0o711);
  browser = await launchBrowser();
  adminToken = await tokenFor('admin', nimbus.adminPassword, 'admin');
});

after(async () => {
  await browser?.close();
  await nimbus?.stop();
  if (imageDir) await rm(imageDir, { recursive: true, force: true });
});

const tokenFor = (user, password, project) => projectToken(nimbus.url, user, password, project);
const api = (token, method, p, body) => apiCall(nimbus.url, token, method, p, body);

async function must(token, want, method, p, body) {
  const r = await api(token, method, p, body);
  assert.equal(r.status, want, `${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

// A project with one member, through the identity API.
async function projectWithMember(project, user) {
  const p = await must(adminToken, 201, 'POST', '/identity/v3/projects', { project: { name: project, domain_id: 'default' } });
  const u = await must(adminToken, 201, 'POST', '/identity/v3/users',
    { user: { name: user, domain_id: 'default', password: PASSWORD, default_project_id: p.project.id } });
  const roles = await must(adminToken, 200, 'GET', '/identity/v3/roles?name=member');
  await must(adminToken, 204, 'PUT', `/identity/v3/projects/${p.project.id}/users/${u.user.id}/roles/${roles.roles[0].id}`);
  return p.project.id;
}

// rowAction opens the instance row's Actions menu and picks an item.
async function rowAction(page, row, item) {
  await row.locator('details.row-menu > summary').click();
  await row.locator('.dropdown-menu').getByText(item, { exact: true }).click();
}

test('tenant launches, watches live, uses the console and a floating IP, stops, starts and deletes; others see only what they may', { timeout: 600_000 }, async () => {
  // The tiny guest image, public, uploaded by the admin through Glance.
  const imageFile = path.join(imageDir, 'tiny.qcow2');
  await run(BIN, ['image', 'build', '--output', imageFile], { timeout: 180_000 });
  const img = await must(adminToken, 201, 'POST', '/image/v2/images',
    { name: 'tiny-e2e', disk_format: 'qcow2', container_format: 'bare', visibility: 'public' });
  await must(adminToken, 204, 'PUT', `/image/v2/images/${img.id}/file`, new Uint8Array(await readFile(imageFile)));
  await eventually('image active', 60_000, async (note) => {
    const b = await must(adminToken, 200, 'GET', `/image/v2/images/${img.id}`);
    note(b.status);
    return b.status === 'active';
  });

  await projectWithMember('dash-a', 'alice');
  await projectWithMember('dash-b', 'bob');
  const alice = await tokenFor('alice', PASSWORD, 'dash-a');
  // Alice's private network, routed to the public one.
  const pub = (await must(alice, 200, 'GET', '/network/v2.0/networks?router:external=true')).networks[0];
  const net = (await must(alice, 201, 'POST', '/network/v2.0/networks', { network: { name: 'alice-net' } })).network;
  const sub = (await must(alice, 201, 'POST', '/network/v2.0/subnets',
    { subnet: { network_id: net.id, cidr: '10.10.0.0/24', ip_version: 4, name: 'alice-subnet' } })).subnet;
  const rtr = (await must(alice, 201, 'POST', '/network/v2.0/routers',
    { router: { name: 'alice-router', external_gateway_info: { network_id: pub.id } } })).router;
  await must(alice, 200, 'PUT', `/network/v2.0/routers/${rtr.id}/add_router_interface`, { subnet_id: sub.id });

  const ctxA = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const ctxB = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const ctxAdmin = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const pa = await ctxA.newPage();
  const pb = await ctxB.newPage();
  const padm = await ctxAdmin.newPage();
  const problems = [...[pa, pb, padm].map(watchPage)];
  let serverID = '';
  let step = 'login';
  try {
    await login(pa, 'alice', PASSWORD);
    await login(pb, 'bob', PASSWORD);
    await login(padm, 'admin', nimbus.adminPassword);

    // The admin notes the hypervisor's vCPUs in use before.
    await padm.goto(`${nimbus.url}/admin/hypervisors`);
    const vcpus = padm.locator('meter[aria-label="vCPUs used"]').first();
    const vcpusBefore = Number(await vcpus.getAttribute('value'));

    // Bob watches his (empty) instances page, live, the whole time.
    await pb.goto(`${nimbus.url}/project/instances`);
    await pb.locator('body[data-live="connected"]').waitFor({ timeout: 15_000 });

    step = 'key pair';
    await pa.goto(`${nimbus.url}/project/key-pairs`);
    await pa.getByRole('link', { name: 'Create key pair' }).first().click();
    const kpDialog = pa.locator('dialog#modal[open]');
    await kpDialog.getByLabel('Name').fill('alice-key');
    const [download] = await Promise.all([
      pa.waitForEvent('download'),
      kpDialog.getByRole('button', { name: 'Create and download' }).click(),
    ]);
    assert.match(download.suggestedFilename(), /alice-key/);
    await pa.locator('#main', { hasText: 'alice-key' }).waitFor();
    await screenshot(pa, 'dashboard-01-key-pair');

    step = 'launch';
    // A second tab of alice's shows the network topology, live.
    const topo = await ctxA.newPage();
    problems.push(watchPage(topo));
    await topo.goto(`${nimbus.url}/project/network-topology`);
    await topo.locator('body[data-live="connected"]').waitFor({ timeout: 15_000 });
    await topo.locator('#topology .topo-router', { hasText: 'alice-router' }).waitFor();
    await topo.evaluate(() => { window.nimbusNoReload = true; });
    await pa.goto(`${nimbus.url}/project/instances`);
    await pa.locator('body[data-live="connected"]').waitFor({ timeout: 15_000 });
    // A marker that a reload would wipe: the row must change without one.
    await pa.evaluate(() => { window.nimbusNoReload = true; });
    await pa.getByRole('link', { name: 'Launch instance' }).first().click();
    const launch = pa.locator('dialog#modal[open]');
    await launch.getByLabel('Instance name').fill(VM);
    await launch.locator('#f-image').selectOption(img.id);
    // Choosing the image re-renders the form (fit hints): wait for it.
    await launch.locator('#f-image option:checked', { hasText: 'tiny-e2e' }).waitFor({ state: 'attached' });
    const tiny = await launch.locator('#f-flavor option', { hasText: /^m1\.tiny/ }).first().getAttribute('value');
    await launch.locator('#f-flavor').selectOption(tiny);
    await launch.locator('#f-key_name').selectOption('alice-key');
    // A second key pair made inside the dialog downloads its private key
    // and becomes the instance's key.
    await launch.getByText('Create a key pair', { exact: true }).click();
    await launch.getByLabel('Key pair name', { exact: true }).fill('alice-key2');
    const [download2] = await Promise.all([
      pa.waitForEvent('download'),
      launch.getByRole('button', { name: 'Create and download' }).click(),
    ]);
    assert.equal(download2.suggestedFilename(), 'alice-key2.pem');
    assert.match(await readFile(await download2.path(), 'utf8'), /PRIVATE KEY-----/);
    assert.equal(await launch.locator('#f-key_name').inputValue(), 'alice-key2');
    const netBox = launch.locator(`input[name="network"][value="${net.id}"]`);
    assert.equal(await netBox.isChecked(), true, 'the only network is preselected');
    assert.equal(await launch.locator('input[name="security_group"][value="default"]').isChecked(), true);
    await screenshot(pa, 'dashboard-02-launch-dialog');
    await launch.getByRole('button', { name: 'Launch', exact: true }).click();
    const row = pa.locator('tr[id^="instance-"]', { hasText: VM });
    await row.waitFor({ timeout: 20_000 });
    serverID = (await row.getAttribute('id')).slice('instance-'.length);
    await screenshot(pa, 'dashboard-03-building');
    await row.locator('.badge.status-active').waitFor({ timeout: 120_000 });
    assert.equal(await pa.evaluate(() => window.nimbusNoReload), true, 'the page was reloaded');
    assert.match(await row.textContent(), /10\.10\.0\.\d+/, 'the row shows the fixed address');
    await screenshot(pa, 'dashboard-04-active');
    // The topology tab drew the new instance on alice-net by itself.
    await topo.locator(`#topo-instance-${serverID}`).waitFor({ timeout: 15_000 });
    assert.equal(await topo.evaluate(() => window.nimbusNoReload), true, 'the topology page was reloaded');
    await screenshot(topo, 'dashboard-04b-topology');

    step = 'admin sees it';
    await padm.goto(`${nimbus.url}/admin/instances`);
    const admRow = padm.locator(`#instance-${serverID}`);
    await admRow.waitFor({ timeout: 10_000 });
    assert.match(await admRow.textContent(), /dash-a/, 'the admin list names the project');
    await padm.goto(`${nimbus.url}/admin/hypervisors`);
    const vcpusAfter = Number(await padm.locator('meter[aria-label="vCPUs used"]').first().getAttribute('value'));
    assert.equal(vcpusAfter, vcpusBefore + 1, 'the hypervisor shows one more vCPU in use');
    await screenshot(padm, 'dashboard-05-admin-hypervisors');

    step = 'console';
    // The guest finishes booting so its screen shows something.
    await eventually('guest ready', 90_000, async (note) => {
      const r = await api(alice, 'POST', `/compute/v2.1/servers/${serverID}/action`, { 'os-getConsoleOutput': {} });
      const out = r.body?.output ?? '';
      note(out.slice(-200));
      return out.includes('nimbus-guest: ready');
    });
    const detail = await ctxA.newPage();
    problems.push(watchPage(detail));
    await detail.goto(`${nimbus.url}/project/instances/${serverID}?tab=console`);
    const frame = detail.frameLocator('iframe.console-frame');
    await frame.locator('#status', { hasText: /^Connected$/ }).waitFor({ timeout: 30_000 });
    await eventually('a lit pixel in the console', 30_000, async (note) => {
      const lit = await detail.frames().find((f) => f.url().includes('/console/'))?.evaluate(() => {
        const c = document.querySelector('#screen canvas');
        if (!c || !c.width) return 0;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] > 16 || d[i + 1] > 16 || d[i + 2] > 16) n++;
        return n;
      });
      note(String(lit));
      return lit > 0;
    });
    await screenshot(detail, 'dashboard-06-console');
    await detail.close();

    step = 'floating IP';
    await rowAction(pa, row, 'Floating IP…');
    const fipDialog = pa.locator('dialog#modal[open]');
    const pool = await fipDialog.locator('#f-floating_ip option', { hasText: 'Allocate a new address from public' }).getAttribute('value');
    await fipDialog.locator('#f-floating_ip').selectOption(pool);
    await fipDialog.getByRole('button', { name: 'Associate' }).click();
    await pa.locator('#toasts .toast', { hasText: /is associated/ }).first().waitFor();
    await row.filter({ hasText: /172\.24\.4\.\d+ \(floating\)/ }).waitFor({ timeout: 15_000 });
    await screenshot(pa, 'dashboard-07-floating-ip');

    step = 'stop';
    await rowAction(pa, row, 'Stop…');
    await pa.locator('dialog#modal[open]').getByRole('button', { name: 'Stop instance' }).click();
    await row.locator('.badge', { hasText: 'SHUTOFF' }).waitFor({ timeout: 60_000 });
    await screenshot(pa, 'dashboard-08-stopped');

    step = 'start';
    await rowAction(pa, row, 'Start');
    await row.locator('.badge.status-active').waitFor({ timeout: 60_000 });
    await screenshot(pa, 'dashboard-09-started');

    step = 'delete';
    await rowAction(pa, row, 'Delete…');
    await pa.locator('dialog#modal[open]').getByRole('button', { name: 'Delete instance' }).click();
    await pa.locator(`#instance-${serverID}`).waitFor({ state: 'detached', timeout: 60_000 });
    assert.equal(await pa.evaluate(() => window.nimbusNoReload), true, 'the page was reloaded');
    await screenshot(pa, 'dashboard-10-deleted');
    await topo.locator(`#topo-instance-${serverID}`).waitFor({ state: 'detached', timeout: 15_000 });
    assert.equal(await topo.evaluate(() => window.nimbusNoReload), true, 'the topology page was reloaded');
    await topo.close();

    step = 'bob saw nothing';
    assert.equal(await pb.locator(`#instance-${serverID}`).count(), 0);
    assert.doesNotMatch(await pb.locator('#main').textContent(), new RegExp(VM));
    await screenshot(pb, 'dashboard-11-other-project');
    assert.deepEqual(problems.flat(), [], `page problems: ${problems.flat().join('; ')}`);
  } catch (err) {
    await screenshot(pa, `dashboard-99-failure-${step.replace(/\W+/g, '-')}`).catch(() => {});
    throw new Error(`step ${step}: ${err.message}`, { cause: err });
  } finally {
    // Leave nothing on the host: the guest, the floating IP, the router
    // and the network (the data plane outlives the cloud otherwise).
    if (serverID) {
      const r = await api(alice, 'DELETE', `/compute/v2.1/servers/${serverID}`);
      if (r.status === 204) {
        await eventually('server gone', 90_000, async () => (await api(alice, 'GET', `/compute/v2.1/servers/${serverID}`)).status === 404);
      }
    }
    const fips = await api(alice, 'GET', '/network/v2.0/floatingips');
    for (const f of fips.body?.floatingips ?? []) await api(alice, 'DELETE', `/network/v2.0/floatingips/${f.id}`);
    await api(alice, 'PUT', `/network/v2.0/routers/${rtr.id}/remove_router_interface`, { subnet_id: sub.id });
    await api(alice, 'DELETE', `/network/v2.0/routers/${rtr.id}`);
    await eventually('network deletable', 30_000, async () => [204, 404].includes((await api(alice, 'DELETE', `/network/v2.0/networks/${net.id}`)).status));
    await ctxA.close();
    await ctxB.close();
    await ctxAdmin.close();
  }
});
