/**
 * The worked example hook (hooks/example-mempool-guard.ts, docs/hooks.md), tested the two ways
 * a hook author would:
 *   - unit tests with the helper for hook authors, `bitcoin-hook-proxy/testing`
 *     (src/hooks/testing.ts: fake peers through the real loader and chain runner);
 *   - loaded exactly as a third-party module, by package name and by path from a config file,
 *     into the real proxy (startProxy, and the built CLI `check`) in front of a real regtest
 *     litecoind (Litecoin Core 0.21 = Bitcoin Core 0.21's P2P code), which disconnects any peer
 *     that sends it `mempool` (no bloom filters): the peer staying connected and litecoind's
 *     getpeerinfo show that the request never got there.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { encodeFrame, NETWORKS, PayloadReader } from '../../src/codec/index.js';
import { createHookHarness } from '../../src/hooks/testing.js';
import exampleHook from '../../hooks/example-mempool-guard.js';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { loopbackAddress } from '../support/p2p-client.js';
import { startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { backendPeer, connectXPeer, hooksYaml, pingRoundTrip, sessionOf } from './support.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** the compiled example, dist/hooks/example-mempool-guard.js */
const EXAMPLE = path.resolve(here, '../../hooks/example-mempool-guard.js');
const PACKAGE_NAME = 'bitcoin-hook-proxy/hooks/example-mempool-guard';
const CLI = path.resolve(here, '../../src/cli.js');

const stats = (payload: Buffer) => JSON.parse(new PayloadReader(payload, 'x:stats').varString('stats', 10_000)) as Record<string, number>;

test('unit: mempool from a peer without a tier is dropped with misbehaviour and a log line; with a tier it passes', async () => {
  const h = await createHookHarness([{ module: EXAMPLE, options: { points: 25 } }]);
  try {
    const plain = h.peer();
    assert.deepEqual(await h.deliver(plain, 'inbound', 'mempool'), { forwarded: null });
    assert.equal(plain.misbehaviour, 25);
    assert.equal(plain.logs[0]?.hook, 'example-mempool-guard');
    assert.match(plain.logs[0]?.msg ?? '', /without a tier/);
    assert.equal(plain.disconnected, null, 'not disconnected by the hook itself');

    const paid = h.peer();
    paid.state.set('tier', 'gold'); // as a paywall hook earlier in the chain would
    assert.equal((await h.deliver(paid, 'inbound', 'mempool')).forwarded?.command, 'mempool');
    assert.equal(paid.misbehaviour, 0);
  } finally {
    await h.close();
  }
});

test('unit: counts per peer in peer.state, reported by x:stats; wants follows the options (fast path for the rest)', async () => {
  const h = await createHookHarness([{ module: EXAMPLE, options: { count: ['ping'], tierKey: 'my.tier', points: 0 } }]);
  try {
    const p = h.peer();
    await h.deliver(p, 'inbound', 'ping', { nonce: 1n });
    await h.deliver(p, 'inbound', 'ping', { nonce: 2n });
    await h.deliver(p, 'inbound', 'mempool');
    assert.equal(p.misbehaviour, 0, 'points: 0 only drops');
    await h.deliver(p, 'inbound', 'x:stats');
    const reply = p.pushed.at(-1)!;
    assert.equal(reply.command, 'x:stats');
    assert.deepEqual(stats(Buffer.from(reply.payload!)), { ping: 2, mempool: 1 });
    assert.ok(h.chain.hooksFor('inbound', 'ping').length === 1 && h.chain.hooksFor('inbound', 'mempool').length === 1);
    assert.equal(h.chain.hooksFor('inbound', 'inv').length, 0, 'inv is not counted here: fast path');
    assert.equal(h.chain.hooksFor('outbound', 'ping').length, 0, 'nothing outbound');
  } finally {
    await h.close();
  }
});

test('unit: the module object itself can be passed to the harness (type checks: HookModule with an options schema)', async () => {
  // createHookHarness's parameter type must accept a HookModule<Options>; this file does not compile otherwise
  const h = await createHookHarness([{ module: exampleHook, options: { points: 3 } }]);
  try {
    const p = h.peer();
    await h.deliver(p, 'inbound', 'mempool');
    assert.equal(p.misbehaviour, 3, 'options parsed by the schema');
  } finally {
    await h.close();
  }
});

test('unit: bad options are refused at load with the module and the key named', async () => {
  await assert.rejects(createHookHarness([{ module: EXAMPLE, options: { points: -1 } }]), /example-mempool-guard.*options\.points/s);
  await assert.rejects(createHookHarness([{ module: EXAMPLE, options: { tierKey: 'x', colour: 'red' } }]), /example-mempool-guard.*colour/s);
});

const skip = litecoindSkipReason();
let node: Litecoind;
let proxy: TestProxy;
before(async () => {
  if (skip) return;
  node = await startLitecoind({ name: 'example-hook', disableWallet: true });
  // by package name, as an operator installing the proxy would write it
  proxy = await startTestProxy(node.p2pPort, `bans: { threshold: 30 }\n${hooksYaml([{ module: PACKAGE_NAME }])}`);
});
after(async () => {
  await proxy?.close();
  await node?.stop();
});

test('in the proxy, loaded by package name: litecoind never gets mempool, x:stats answers, repeated requests ban', { skip }, async () => {
  const { client } = await connectXPeer(proxy.port, loopbackAddress(21));
  try {
    await pingRoundTrip(client, 1n);
    client.send('mempool', {});
    await pingRoundTrip(client, 2n); // litecoind would have disconnected us on a mempool
    const seen = await backendPeer(node, proxy, client);
    assert.equal(seen.bytesrecv_per_msg.mempool, undefined, 'litecoind never received mempool');
    assert.equal(sessionOf(proxy, client).info.misbehaviour, 10);
    assert.equal(await proxy.metricValue('bhp_hook_example_mempool_dropped_total'), 1);
    const line = proxy.logs.find((l) => l.hook === 'example-mempool-guard' && /without a tier/.test(l.msg));
    assert.ok(line, 'the log line is attributed to the hook');
    assert.equal(line.requests, 1);

    const from = client.frames.length;
    client.sendRaw(encodeFrame(NETWORKS.regtest, 'x:stats').raw);
    const reply = await client.waitFor('x:stats', 5000, () => true, from);
    assert.deepEqual(stats(reply.payload), { ping: 2, mempool: 1 });

    client.send('mempool', {});
    client.send('mempool', {});
    assert.ok(await client.closedWithin(5000), 'the third request reaches the ban threshold of 30');
    assert.ok(proxy.proxy.bans.list().some((b) => b.subnet.startsWith(loopbackAddress(21))));
  } finally {
    client.socket.destroy();
  }
});

test('CLI check loads it by path relative to the config file, and refuses bad options naming the key', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-example-'));
  try {
    const file = path.join(dir, 'proxy.yaml');
    const write = (options: string) =>
      writeFileSync(file, `network: regtest\nbackend: "127.0.0.1:1"\nhooks:\n  - module: ${JSON.stringify(path.relative(dir, EXAMPLE))}\n    options: ${options}\n`);
    write('{ points: 5 }');
    const ok = spawnSync(process.execPath, [CLI, 'check', '--config', file], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(ok.status, 0, ok.stderr);
    write('{ points: "many" }');
    const bad = spawnSync(process.execPath, [CLI, 'check', '--config', file], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /example-mempool-guard.*options\.points/s);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
