/**
 * hooks/features: unit tests through the real chain runner (createHookHarness loading the
 * compiled module by path), and end to end through the real proxy in front of a real node:
 * litecoind 0.21 from Debian (Bitcoin Core 0.21's P2P code, protocol 70016, regtest magic
 * fabfb5da). The peers are the x: protocol client written from docs/x-protocol.md
 * (test/hooks/x-protocol-client.ts) and our raw P2P test client (test/support/p2p-client.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeMessage, encodeFrame } from '../../src/codec/index.js';
import { HOOK_API_VERSION, HookLoadError, X_FEATURE_ID, defineHook } from '../../src/hooks/index.js';
import { createHookHarness } from '../../src/hooks/testing.js';
import { litecoindSkipReason, startLitecoind } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { backendPeer, hooksYaml, pingRoundTrip } from './support.js';
import { X_PROTOCOL_FEATURE_ID, XClient, helloRequest, parseFeatureData, parseHello, parseUnknown } from './x-protocol-client.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MODULE = path.resolve(here, '../../hooks/features.js');
const GUARD = path.resolve(here, '../../hooks/example-mempool-guard.js');
const PKG_VERSION = (JSON.parse(readFileSync(path.resolve(here, '../../../package.json'), 'utf8')) as { version: string }).version;
const xPeer = { version: 70017, features: new Map([[X_FEATURE_ID, Buffer.alloc(0)]]) };

test('the document and the API agree on the feature id', () => {
  assert.equal(X_PROTOCOL_FEATURE_ID, X_FEATURE_ID);
});

test('features(peer) announces the x: commands of the whole chain, parsed by the client written from the document', async () => {
  const h = await createHookHarness([{ module: MODULE, options: {} }, { module: GUARD, options: {} }]);
  const [f] = h.chain.featureProviders;
  assert.ok(f, 'the features hook provides features');
  const out = f.module.features!(h.peer(xPeer), f.ctx);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.id, X_FEATURE_ID);
  assert.deepEqual(parseFeatureData(Buffer.from(out[0]!.data!)), { dataVersion: 1, truncated: false, commands: ['x:hello', 'x:stats'] });
  const mine = (dir: 'inbound' | 'outbound', cmd: string) => h.chain.hooksFor(dir, cmd).filter((x) => x.name === 'features').length;
  assert.equal(mine('inbound', 'verack'), 1);
  assert.equal(mine('inbound', 'ping') + mine('outbound', 'ping'), 0, 'only verack leaves the fast path');
  assert.equal(mine('outbound', 'version'), 0, 'without serviceBit the version is not touched');
  await h.close();
});

test('feature data stays within 512 bytes and says when the list was cut', async () => {
  const many = Array.from({ length: 60 }, (_, i) =>
    defineHook({ apiVersion: HOOK_API_VERSION, name: `m${i}`, commands: { [`x:c${String(i).padStart(8, '0')}`]: () => undefined } }),
  );
  const h = await createHookHarness([{ module: MODULE, options: {} }, ...many.map((module) => ({ module }))]);
  const f = h.chain.featureProviders[0]!;
  const data = Buffer.from(f.module.features!(h.peer(xPeer), f.ctx)[0]!.data!);
  assert.ok(data.length <= 512, `${data.length} bytes`);
  const parsed = parseFeatureData(data);
  assert.equal(parsed.truncated, true);
  assert.equal(parsed.commands[0], 'x:hello');
  assert.ok(parsed.commands.length > 30 && parsed.commands.length < 61, `${parsed.commands.length} commands`);
  // x:hello has them all
  const peer = h.peer(xPeer);
  await h.deliver(peer, 'inbound', 'x:hello', helloRequest(7n));
  const hello = parseHello(Buffer.from(peer.pushed[0]!.payload!));
  assert.equal(hello.modules.flatMap((m) => m.commands).length, 61);
  await h.close();
});

test('x:hello: answered after the handshake to a peer that announced our feature, refused otherwise', async () => {
  const h = await createHookHarness([{ module: MODULE, options: { name: 'my-proxy', version: '9.8.7' } }, { module: GUARD, options: {} }]);
  const ok = h.peer({ ...xPeer, features: new Map([['other/feature', Buffer.from('x')], [X_FEATURE_ID, Buffer.alloc(0)]]) });
  assert.equal((await h.deliver(ok, 'inbound', 'x:hello', Buffer.concat([helloRequest(0x0102030405060708n), Buffer.from('future')]))).forwarded, null);
  assert.equal(ok.pushed.length, 1);
  assert.equal(ok.pushed[0]!.command, 'x:hello');
  assert.deepEqual(parseHello(Buffer.from(ok.pushed[0]!.payload!)), {
    nonce: 0x0102030405060708n,
    helloVersion: 1,
    software: 'my-proxy',
    softwareVersion: '9.8.7',
    hookApiVersion: HOOK_API_VERSION,
    network: 'regtest',
    modules: [
      { name: 'features', commands: ['x:hello'] },
      { name: 'example-mempool-guard', commands: ['x:stats'] },
    ],
    features: ['other/feature', X_FEATURE_ID],
  });

  const plain = h.peer({ version: 70017 });
  await h.deliver(plain, 'inbound', 'x:hello', helloRequest(1n));
  const early = h.peer({ ...xPeer, handshakeComplete: false });
  await h.deliver(early, 'inbound', 'x:hello', helloRequest(1n));
  const short = h.peer(xPeer);
  await h.deliver(short, 'inbound', 'x:hello', Buffer.from('0102', 'hex'));
  for (const p of [plain, early, short]) {
    assert.deepEqual(p.pushed, []);
    assert.equal(p.misbehaviour, 0, 'default: just dropped');
    assert.equal(p.closed, false);
  }
  await h.close();

  const strict = await createHookHarness([{ module: MODULE, options: { refused: { misbehave: 5 } } }]);
  const p = strict.peer({ version: 70017 });
  await strict.deliver(p, 'inbound', 'x:hello', helloRequest(1n));
  assert.equal(p.misbehaviour, 5);
  assert.deepEqual(p.pushed, []);
  await strict.close();
});

test('serviceBit: set in the version bitcoind sends to peers older than 70017 only', async () => {
  const h = await createHookHarness([{ module: MODULE, options: { serviceBit: 28 } }]);
  const version = (v: number) => ({ version: v, services: 0x409n, timestamp: 1n, addrRecv: { services: 0n, ip: Buffer.alloc(16), port: 0 }, userAgent: '/x/', startHeight: 0, relay: true });
  const old = h.peer({ version: 70016 });
  const out = await h.deliver(old, 'outbound', 'version', version(70016));
  assert.equal(decodeMessage('version', out.forwarded!.payload).services, 0x409n | (1n << 28n));
  const modern = h.peer({ version: 70017 });
  const same = await h.deliver(modern, 'outbound', 'version', version(70017));
  assert.equal(decodeMessage('version', same.forwarded!.payload).services, 0x409n);
  await h.close();
});

test('options are validated', async () => {
  for (const options of [{ serviceBit: 23 }, { serviceBit: 32 }, { name: '' }, { refused: 'ban' }, { nope: 1 }]) {
    await assert.rejects(createHookHarness([{ module: MODULE, options }]), HookLoadError, JSON.stringify(options));
  }
});

test('through the proxy in front of litecoind: discovery, x:hello, silence to peers without the feature, nothing x: reaches litecoind', { skip: litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  const node = await startLitecoind({ name: 'features', disableWallet: true });
  t.after(() => node.stop());
  const proxy = await startTestProxy(node.p2pPort, hooksYaml([{ module: MODULE, options: {} }, { module: GUARD, options: {} }]));
  t.after(() => proxy.close());

  // section 5 of the document, against a real node behind the proxy
  const x = await XClient.connect(proxy.port);
  t.after(() => x.close());
  const iv = x.handshake.indexOf('version');
  const ifeat = x.handshake.indexOf('feature');
  const iverack = x.handshake.indexOf('verack');
  assert.ok(iv === 0 && iv < ifeat && ifeat < iverack, `feature between version and verack: ${x.handshake.join(',')}`);
  assert.deepEqual(x.offered, { dataVersion: 1, truncated: false, commands: ['x:hello', 'x:stats'] });
  assert.equal(decodeMessage('version', x.p2p.frames[0]!.payload).version, 70017, "litecoind's 70016 is raised to 70017");
  const hello = await x.hello(42n);
  assert.equal(hello.nonce, 42n);
  assert.equal(hello.software, 'bitcoin-hook-proxy');
  assert.equal(hello.softwareVersion, PKG_VERSION);
  assert.equal(hello.hookApiVersion, HOOK_API_VERSION);
  assert.equal(hello.network, 'regtest');
  assert.deepEqual(hello.modules, [
    { name: 'features', commands: ['x:hello'] },
    { name: 'example-mempool-guard', commands: ['x:stats'] },
  ]);
  assert.deepEqual(hello.features, [X_FEATURE_ID]);
  x.sendX('x:nosuch', Buffer.alloc(0));
  const unknown = await x.p2p.waitFor('x:unknown');
  assert.equal(parseUnknown(unknown.payload), 'x:nosuch');
  await pingRoundTrip(x.p2p, 11n);

  // a 70017 peer that did not announce the feature: it is offered the feature, but gets no x: message
  const plain = await P2PClient.connect(proxy.port);
  t.after(() => plain.close());
  plain.socket.on('error', () => {});
  await plain.handshake(10_000, { version: 70017 });
  assert.ok(plain.frames.some((f) => f.command === 'feature'), 'the proxy announces to every 70017 peer');
  for (const cmd of ['x:hello', 'x:nosuch']) plain.sendRaw(encodeFrame(plain.network, cmd, helloRequest(5n)).raw);
  await pingRoundTrip(plain, 12n);
  assert.deepEqual(
    plain.frames.filter((f) => f.command.startsWith('x:')).map((f) => f.command),
    [],
  );
  assert.equal(plain.isClosed, false);

  // litecoind saw neither client's x: messages; the only unknown message it got is the XClient's `feature` (24 + 24 bytes)
  const xInfo = await backendPeer(node, proxy, x.p2p);
  const plainInfo = await backendPeer(node, proxy, plain);
  assert.equal(xInfo.bytesrecv_per_msg['*other*'], 48, JSON.stringify(xInfo.bytesrecv_per_msg));
  assert.equal(plainInfo.bytesrecv_per_msg['*other*'], undefined, JSON.stringify(plainInfo.bytesrecv_per_msg));
  assert.equal(Object.keys(xInfo.bytesrecv_per_msg).filter((k) => k.startsWith('x:')).length, 0);
  assert.ok(xInfo.bytesrecv_per_msg.ping! > 0, 'the pings did reach litecoind');

  assert.equal(await proxy.metricValue('bhp_hook_features_announced_total'), 2);
  assert.equal(await proxy.metricValue('bhp_hook_features_peers_total', { x_feature: 'yes' }), 1);
  assert.equal(await proxy.metricValue('bhp_hook_features_peers_total', { x_feature: 'no' }), 1);
  assert.equal(await proxy.metricValue('bhp_hook_features_hello_total', { outcome: 'answered' }), 1);
  assert.equal(await proxy.metricValue('bhp_hook_features_hello_total', { outcome: 'not_announced' }), 1);
});

test('through the proxy: serviceBit for a 70016 peer, none and a feature for a 70017 peer', { skip: litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  const node = await startLitecoind({ name: 'features-bit', disableWallet: true });
  t.after(() => node.stop());
  const proxy = await startTestProxy(node.p2pPort, hooksYaml([{ module: MODULE, options: { serviceBit: 29 } }]));
  t.after(() => proxy.close());
  const old = await XClient.connect(proxy.port, { version: 70016, announce: false });
  t.after(() => old.close());
  const oldVersion = decodeMessage('version', old.p2p.frames[0]!.payload);
  assert.equal(oldVersion.services & (1n << 29n), 1n << 29n);
  assert.equal(oldVersion.services & 0x01000409n, 0x01000409n, "litecoind's own bits are kept");
  assert.equal(old.offered, null, 'no feature message to a 70016 peer');
  const modern = await XClient.connect(proxy.port);
  t.after(() => modern.close());
  assert.equal(decodeMessage('version', modern.p2p.frames[0]!.payload).services & (1n << 29n), 0n);
  assert.deepEqual(modern.offered?.commands, ['x:hello']);
  assert.equal((await modern.hello(3n)).modules.length, 1);
});
