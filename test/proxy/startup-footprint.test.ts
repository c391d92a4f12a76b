/**
 * A plain `run` (no Redis store, no workers, no outbound front, every peer v1) loads only what
 * it uses: the modules that are loaded on first use (ioredis, bitcoinjs-lib, @scure/btc-signer,
 * pino-pretty, proxy-protocol-js, the workers, the buyer's client) stay unloaded while real
 * peers sync through it. The CLI runs as a child process with a module-load recorder
 * (`--import`: an ESM load hook plus require.cache at exit).
 * Real implementations: litecoind 0.21 from Debian (Bitcoin Core 0.21's P2P code) as the
 * backend and as a peer that syncs blocks through the proxy; 20 more peers ping meanwhile.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startLitecoind, litecoindSkipReason } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { startProxyProcess } from '../support/proxy-process.js';
import { cleanupStack } from '../support/cleanup.js';

/** Registers the load hook and, at exit, adds every CommonJS file in require.cache. */
const REGISTER = `import { register, createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';
const out = process.env.BHP_LOADED_FILE;
register(new URL('./hooks.mjs', import.meta.url), { data: { out } });
const cache = createRequire(import.meta.url).cache;
process.on('exit', () => appendFileSync(out, Object.keys(cache).map((f) => 'cjs ' + f).join('\\n') + '\\n'));
`;
const HOOKS = `import { appendFileSync } from 'node:fs';
let out;
export function initialize(data) { out = data.out; }
export async function load(url, context, next) { appendFileSync(out, 'esm ' + url + '\\n'); return next(url, context); }
`;

/** Loaded on first use only: none of it may be in a plain run. */
const NOT_LOADED = [
  '/node_modules/ioredis/',
  '/node_modules/bitcoinjs-lib/',
  '/node_modules/@scure/btc-signer/',
  '/node_modules/@noble/curves/',
  '/node_modules/pino-pretty/',
  '/node_modules/proxy-protocol-js/',
  '/node_modules/@atomiqlabs/bolt11/',
  '/node_modules/lru-cache/',
  '/dist/src/workers.js',
  '/dist/src/store/redis-store.js',
  '/dist/src/outbound.js',
  '/dist/src/client/',
  '/dist/src/proxy/socks/',
];

test('a plain run loads none of what only redis, workers, outbound, v2 peers or full parses need', { skip: litecoindSkipReason(), timeout: 180_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-loads-'));
  writeFileSync(path.join(dir, 'register.mjs'), REGISTER);
  writeFileSync(path.join(dir, 'hooks.mjs'), HOOKS);
  const loadedFile = path.join(dir, 'loaded.txt');
  writeFileSync(loadedFile, '');

  const a = await startLitecoind({ name: 'backend' });
  cleanup.push(() => a.stop());
  await a.generate(120);
  // 21 peers from 127.0.0.1: above the per-address defaults
  const yaml = 'v2: terminate\nlimits: { maxPeersPerAddress: 50, maxPeersPerSubnet: 50, connectionRate: { perAddress: { burst: 0 }, perSubnet: { burst: 0 } } }';
  const proxy = await startProxyProcess(a.p2pPort, yaml, {
    execArgv: ['--import', pathToFileURL(path.join(dir, 'register.mjs')).href],
    env: { ...process.env, BHP_LOADED_FILE: loadedFile },
  });
  cleanup.push(() => proxy.stop());

  // a real node syncs through the proxy (headers and blocks: the bulk path) while 20 peers ping (the shared read buffer)
  const b = await startLitecoind({ name: 'peer', extraArgs: [`-connect=127.0.0.1:${proxy.port}`] });
  cleanup.push(() => b.stop());
  const clients = await Promise.all(Array.from({ length: 20 }, () => P2PClient.connect(proxy.port)));
  cleanup.push(() => Promise.all(clients.map((c) => c.close())));
  await Promise.all(clients.map((c) => c.handshake(30_000)));
  for (let round = 0; round < 5; round++) await Promise.all(clients.map((c) => c.ping(30_000)));
  await b.waitForHeight(120, 90_000);
  assert.equal(await b.getBestBlockHash(), await a.getBestBlockHash(), 'the peer synced the backend\'s chain through the proxy');

  await proxy.stop();
  assert.equal(proxy.proc.exitCode, 0, `the proxy exits cleanly on SIGTERM: ${proxy.output().slice(-1000)}`);
  const loaded = readFileSync(loadedFile, 'utf8').split('\n').filter(Boolean);
  // the recorder sees both kinds of loads: ES modules of ours and CommonJS files pino requires
  assert.ok(loaded.some((l) => l.startsWith('esm ') && l.endsWith('/dist/src/proxy/peer-session.js')), 'the load hook recorded our modules');
  assert.ok(loaded.some((l) => l.startsWith('cjs ') && l.includes('/node_modules/sonic-boom/')), 'require.cache lists what pino required');
  const unexpected = loaded.filter((l) => NOT_LOADED.some((p) => l.includes(p)));
  assert.deepEqual(unexpected, [], 'loaded although a plain run never needs it');
});
