/**
 * Reload as an operator triggers it: SIGHUP to the real CLI process and POST /reload on the
 * admin API. A valid new config swaps the hook chain; a broken one is refused and the old
 * chain keeps running. The backend is a plain TCP server (no peer traffic is needed here;
 * reload under live P2P traffic through litecoind is in runtime.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../support/ports.js';
import { httpRequest } from '../support/p2p-client.js';
import { waitFor } from '../support/wait.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const TOKEN = 'reload-test-token-0123456789';

test('SIGHUP and POST /reload swap the hook chain; a broken config is refused and the old chain stays', { timeout: 60_000 }, async (t) => {
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
