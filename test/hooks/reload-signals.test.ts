/**
 * Reload as an operator triggers it: SIGHUP to the real CLI process and POST /reload on the
 * admin API. A valid new config swaps the hook chain; a broken one is refused and the old
 * chain keeps running. A SIGHUP while the proxy is still starting (systemd reloads a Type=simple
 * unit whenever asked) must not kill it: it reloads once up. The backend is a plain TCP server
 * (no peer traffic is needed here; reload under live P2P traffic through litecoind is in
 * runtime.test.ts).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../support/ports.js';
import { httpRequest } from '../support/p2p-client.js';
import { waitFor } from '../support/wait.js';
import { HOOK_API_VERSION } from '../../src/hooks/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const TOKEN = 'reload-test-token-0123456789';

/** A backend that holds connections, a temporary directory, and `write(hooks)` for the config file in it. */
async function setup(t: TestContext): Promise<{ dir: string; file: string; adminPort: number; write: (hooks: string) => void }> {
  const backend = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.after(() => backend.close());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-reload-'));
  const file = path.join(dir, 'proxy.yaml');
  const adminPort = await freePort();
  const listenPort = await freePort();
  const write = (hooks: string) =>
    writeFileSync(
      file,
      [
        'network: regtest',
        `listen: 127.0.0.1:${listenPort}`,
        `backend: 127.0.0.1:${(backend.address() as net.AddressInfo).port}`,
        'metrics: false',
        `admin: { listen: "127.0.0.1:${adminPort}", token: "${TOKEN}" }`,
        hooks,
      ].join('\n'),
    );
  return { dir, file, adminPort, write };
}

test('SIGHUP and POST /reload swap the hook chain; a broken config is refused and the old chain stays', { timeout: 60_000 }, async (t) => {
  const { file, adminPort, write } = await setup(t);
  write('hooks: []');
  const child = spawn(process.execPath, [path.join(root, 'dist/src/cli.js'), 'run', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  t.after(() => child.kill('SIGKILL'));
  const hooks = async () => ((await httpRequest(adminPort, 'GET', '/hooks', { token: TOKEN })).json as { hooks: { name: string }[] }).hooks.map((h) => h.name);
  await waitFor(async () => (await hooks()).length === 0, 10_000, 'the admin API to answer with an empty chain');

  const guard = path.join(root, 'dist/hooks/example-mempool-guard.js');
  write(`hooks:\n  - module: ${JSON.stringify(guard)}`);
  child.kill('SIGHUP');
  await waitFor(async () => (await hooks()).includes('example-mempool-guard'), 10_000, 'SIGHUP to load the new chain');

  write(`hooks:\n  - module: ./does-not-exist.js`);
  const refused = await httpRequest(adminPort, 'POST', '/reload', { token: TOKEN });
  assert.equal(refused.status, 422, 'a config whose module fails to load is refused');
  assert.match(JSON.stringify(refused.json), /does-not-exist/);
  assert.deepEqual(await hooks(), ['example-mempool-guard'], 'the old chain keeps running');

  write('hooks: []');
  const ok = await httpRequest(adminPort, 'POST', '/reload', { token: TOKEN });
  assert.equal(ok.status, 200);
  assert.deepEqual(await hooks(), []);
  assert.match(output, /reload refused/);

  child.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  assert.equal(code, 0, output);
});

test('a SIGHUP while the hooks load does not kill the proxy: it starts, then reloads the config', { timeout: 60_000 }, async (t) => {
  const { dir, file, adminPort, write } = await setup(t);
  const marker = path.join(dir, 'init-started');
  // a hook whose init takes 2 s the first time (a slow start: a hook loading a big file, say)
  writeFileSync(
    path.join(dir, 'slow.mjs'),
    `import { existsSync, writeFileSync } from 'node:fs';
export default { apiVersion: ${JSON.stringify(HOOK_API_VERSION)}, name: 'slow', async init() {
  if (existsSync(${JSON.stringify(marker)})) return;
  writeFileSync(${JSON.stringify(marker)}, '');
  await new Promise((r) => setTimeout(r, 2000));
} };`,
  );
  write('hooks:\n  - module: ./slow.mjs');
  const child = spawn(process.execPath, [path.join(root, 'dist/src/cli.js'), 'run', '--config', file, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  t.after(() => child.kill('SIGKILL'));
  await waitFor(() => existsSync(marker), 10_000, 'the slow hook to start its init');
  // the operator changed the config and reloaded while the proxy was still starting
  write('hooks: []');
  child.kill('SIGHUP');
  const hooks = async () => ((await httpRequest(adminPort, 'GET', '/hooks', { token: TOKEN })).json as { hooks: { name: string }[] }).hooks.map((h) => h.name);
  const outcome = await Promise.race([exited.then((e) => `exited: ${JSON.stringify(e)}`), waitFor(async () => (await hooks().catch(() => null))?.length === 0, 15_000, 'the reloaded (empty) chain').then(() => 'reloaded')]);
  assert.equal(outcome, 'reloaded', output);
  child.kill('SIGTERM');
  assert.deepEqual(await exited, { code: 0, signal: null }, output);
});

test('a reload that changes settings read only at start (bans.file, log.level, ...) says which ones wait for a restart', { timeout: 60_000 }, async (t) => {
  const { dir, file, adminPort, write } = await setup(t);
  write(`hooks: []\nbans: { file: "${path.join(dir, 'bans.json')}" }`);
  const child = spawn(process.execPath, [path.join(root, 'dist/src/cli.js'), 'run', '--config', file, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  t.after(() => child.kill('SIGKILL'));
  await waitFor(async () => (await httpRequest(adminPort, 'GET', '/health').catch(() => null))?.status === 200, 10_000, 'the admin API');
  write(`hooks: []\nbans: { file: "${path.join(dir, 'other-bans.json')}", threshold: 50 }\nlog: { level: debug }`);
  assert.equal((await httpRequest(adminPort, 'POST', '/reload', { token: TOKEN })).status, 200);
  const lines = output.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string });
  const warning = lines.find((l) => l.level === 40 && /restart/.test(l.msg));
  assert.ok(warning, `a warning about the settings that wait for a restart (log: ${output})`);
  assert.match(warning.msg, /bans\.file, log\.level/);
  assert.doesNotMatch(warning.msg, /threshold|listen/, 'only what changed and waits');
});
