/**
 * The package root: `import ... from 'bitcoin-hook-proxy'` resolves through package.json
 * `exports["."]` (Node's self-reference) to the built dist/src/index.js, carries the
 * programmatic API, and a proxy started with it serves a real node.
 *
 * Real implementations: Node's package resolution; the proxy (loadConfig/startProxy as exported
 * by the root) in front of bcoin 1.0.2 from npm (a Bitcoin full node, regtest); the peer is a raw
 * P2P client on our codec (test/support/p2p-client.ts) doing the version handshake and a ping.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bcoinAvailable, startBcoin } from '../support/bcoin-node.js';
import { P2PClient } from '../support/p2p-client.js';
import { freePort } from '../support/ports.js';

type Root = typeof import('../../src/index.js');

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
// a variable specifier: tsc must not look for the package's .d.ts before it has built them
const PACKAGE: string = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string }).name;

test('the package name resolves to the built root entry, and every documented subpath to a built file', () => {
  assert.equal(PACKAGE, 'bitcoin-hook-proxy');
  assert.equal(fileURLToPath(import.meta.resolve(PACKAGE)), path.join(ROOT, 'dist/src/index.js'));
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { main: string; types: string; exports: Record<string, { default: string; types: string } | string> };
  assert.equal(path.resolve(ROOT, pkg.main), path.join(ROOT, 'dist/src/index.js'), '`main` is the root entry too');
  for (const sub of ['codec', 'hooks', 'testing', 'hooks/capture']) {
    assert.ok(readFileSync(fileURLToPath(import.meta.resolve(`${PACKAGE}/${sub}`))).length > 0, `${PACKAGE}/${sub} is built`);
  }
});

test('the root exports the programmatic API: config, startProxy, the hook API and the codec', async () => {
  const root = (await import(PACKAGE)) as Root;
  for (const name of ['startProxy', 'loadConfig', 'parseConfig', 'ConfigError', 'createLogger', 'defineHook', 'HookLoadError', 'HookFault', 'parseSize', 'parseDuration'] as const) {
    assert.equal(typeof root[name], 'function', name);
  }
  assert.equal(typeof root.HOOK_API_VERSION, 'string');
  // the same module instances as the subpaths: one HookLoadError class, one codec
  const hooks = (await import(`${PACKAGE}/hooks`)) as typeof import('../../src/hooks/index.js');
  assert.equal(root.HookLoadError, hooks.HookLoadError);
  assert.equal(root.codec.encodeFrame, ((await import(`${PACKAGE}/codec`)) as typeof import('../../src/codec/index.js')).encodeFrame);
  assert.throws(() => root.parseConfig('network: regtest\n', 'x.yaml'), (err: unknown) => err instanceof root.ConfigError && /backend \(not set; add it at the top level\): required/.test(err.message));
  assert.equal(root.parseSize('5MiB'), 5 * 2 ** 20);
});

test('a proxy started through the package root serves a bcoin node: handshake and ping', { skip: bcoinAvailable() ? false : 'bcoin not installed', timeout: 60_000 }, async (t) => {
  const { loadConfig, startProxy, createLogger } = (await import(PACKAGE)) as Root;
  const node = await startBcoin({ name: 'root-backend', sync: false });
  t.after(() => node.stop());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-root-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const file = path.join(dir, 'proxy.yaml');
  writeFileSync(file, ['network: regtest', `listen: "127.0.0.1:${port}"`, `backend: "${node.p2pAddress}"`, 'metrics: false', 'log: { level: silent }'].join('\n'));
  const config = loadConfig(file);
  const running = await startProxy(config, { log: createLogger('silent'), defaultMetrics: false });
  t.after(() => running.close());
  const peer = await P2PClient.connect(port);
  t.after(() => peer.socket.destroy());
  const theirs = await peer.handshake(20_000);
  assert.match(theirs.userAgent ?? '', /bcoin/i, "bcoin's own version came through");
  await peer.ping(20_000);
});
