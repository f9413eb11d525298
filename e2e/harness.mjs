// Browser-test harness for `node --test`: start a real `nimbus up` on a free
// loopback port with a throw-away data dir, drive it with headless Chromium
// through playwright-core, and keep screenshots under e2e/artifacts/.
//
//   NIMBUS_BIN        binary to start (default: <repo>/bin/nimbus; `make build` makes it)
//   CHROMIUM          browser executable (default: /usr/bin/chromium)
//   NIMBUS_E2E_KEEP=1 keep data dirs after stop() (their paths are printed)

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const artifactsDir = path.join(repoRoot, 'e2e', 'artifacts');

/** freePort asks the kernel for an unused loopback port (there is a small race until nimbus binds it). */
export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

/**
 * parseOpenrc reads the `export NAME=value` lines of an openrc file, undoing
 * shell quoting ('single', "double", backslash), and returns {NAME: value}.
 */
export function parseOpenrc(text) {
  const env = {};
  for (const line of text.split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]] = unquoteShell(m[2]);
  }
  return env;
}

function unquoteShell(s) {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in openrc value: ${s}`);
      out += s.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length && '$`"\\\n'.includes(s[i + 1])) i++;
        out += s[i++];
      }
      if (i >= s.length) throw new Error(`unterminated " in openrc value: ${s}`);
    } else if (c === '\\' && i + 1 < s.length) {
      out += s[++i];
    } else if (c === '#' || /\s/.test(c)) {
      break; // comment or trailing whitespace ends the word
    } else {
      out += c;
    }
  }
  return out;
}

/**
 * startNimbus runs `nimbus up --data <tmp> --listen 127.0.0.1:<free port>`,
 * waits (30 s at most) until GET /identity/v3 answers 200 and admin-openrc
 * exists, and returns {url, port, dataDir, adminPassword, openrc, log(), stop()}.
 * It builds nothing: run `make build` first. The default args run no node
 * agent (`--agents 0`): pages that need guests pass their own, e.g.
 * ['--agents', '1', '--virt-type', 'qemu'].
 */
export async function startNimbus({ bin = process.env.NIMBUS_BIN || path.join(repoRoot, 'bin', 'nimbus'), args = ['--agents', '0'], env = {}, timeoutMs = 30_000 } = {}) {
  if (!existsSync(bin)) throw new Error(`${bin} does not exist: run 'make build' first`);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'nimbus-e2e-'));
  // QEMU runs as its own user and must traverse to the guests' disks.
  await chmod(dataDir, 0o711);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;

  const child = spawn(bin, ['up', '--data', dataDir, '--listen', `127.0.0.1:${port}`, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let exited = null;
  child.stdout.setEncoding('utf8').on('data', (d) => { output += d; });
  child.stderr.setEncoding('utf8').on('data', (d) => { output += d; });
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => { exited = { code, signal }; resolve(exited); });
    child.on('error', (err) => { output += `\nspawn error: ${err.message}\n`; exited = { code: -1, signal: null }; resolve(exited); });
  });
  const log = () => output;

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exitPromise;
      clearTimeout(timer);
    }
    await mkdir(artifactsDir, { recursive: true });
    await writeFile(path.join(artifactsDir, `nimbus-${port}.log`), output);
    if (process.env.NIMBUS_E2E_KEEP) console.log(`# nimbus data dir kept: ${dataDir}`);
    else await rm(dataDir, { recursive: true, force: true });
  };

  const fail = async (why) => {
    await stop();
    throw new Error(`${why}\n--- nimbus output ---\n${output}--- end of nimbus output ---`);
  };

  const deadline = Date.now() + timeoutMs;
  const openrcPath = path.join(dataDir, 'admin-openrc');
  for (;;) {
    if (exited) return fail(`nimbus exited (code ${exited.code}, signal ${exited.signal}) before it answered ${url}/identity/v3`);
    if (Date.now() > deadline) return fail(`nimbus did not answer 200 on ${url}/identity/v3 with ${openrcPath} written within ${timeoutMs / 1000} s`);
    try {
      const res = await fetch(`${url}/identity/v3`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200 && existsSync(openrcPath)) break;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }

  const openrc = parseOpenrc(await readFile(openrcPath, 'utf8'));
  const adminPassword = openrc.OS_PASSWORD;
  if (!adminPassword) return fail(`${openrcPath} has no OS_PASSWORD`);
  return { url, port, dataDir, adminPassword, openrc, log, stop };
}

/** launchBrowser starts headless Debian Chromium; close it with `await browser.close()`. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', // root in CI
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** screenshot saves a full-page PNG as e2e/artifacts/<name>.png and returns its path. */
export async function screenshot(page, name) {
  await mkdir(artifactsDir, { recursive: true });
  const file = path.join(artifactsDir, `${String(name).replace(/[^A-Za-z0-9._-]+/g, '_')}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * watchPage records CSP violations and page errors in the returned array:
 * the dashboard must run under its strict policy without a single one.
 */
export function watchPage(page) {
  const problems = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) problems.push(msg.text());
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  return problems;
}

/** login signs user in through the login form and waits for the overview. */
export async function login(page, baseURL, user, password) {
  await page.goto(`${baseURL}/auth/login`);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await Promise.all([
    page.waitForURL(/\/project\/overview$/),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
}

/** projectToken is a project-scoped Keystone token for user. */
export async function projectToken(baseURL, user, password, project) {
  const res = await fetch(`${baseURL}/identity/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ auth: {
      identity: { methods: ['password'], password: { user: { name: user, domain: { name: 'Default' }, password } } },
      scope: { project: { name: project, domain: { name: 'Default' } } },
    } }),
  });
  if (res.status !== 201) throw new Error(`${user} login: ${res.status} ${await res.text()}`);
  return res.headers.get('x-subject-token');
}

/**
 * apiCall sends an authenticated OpenStack API request (a Uint8Array body
 * as octet-stream, anything else as JSON) and returns {status, headers,
 * body}, the body parsed when it is JSON.
 */
export async function apiCall(baseURL, token, method, p, body, headers = {}) {
  const h = { 'X-Auth-Token': token, 'OpenStack-API-Version': 'compute 2.79', ...headers };
  let payload;
  if (body instanceof Uint8Array) {
    h['Content-Type'] = 'application/octet-stream';
    payload = body;
  } else if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(`${baseURL}${p}`, { method, headers: h, body: payload, signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  let parsed = text;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body: parsed };
}

/**
 * eventually polls cond (truthy when done; it may call note(text) to
 * explain itself) every 500 ms for at most timeoutMs.
 */
export async function eventually(what, timeoutMs, cond) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const r = await cond((note) => { last = note; });
    if (r) return r;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; last: ${last}`);
    await sleep(500);
  }
}
