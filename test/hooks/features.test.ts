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
import { NETWORKS, decodeMessage, encodeFrame, encodeMessage, type Network } from '../../src/codec/index.js';
import { HOOK_API_VERSION, HookLoadError, X_FEATURE_ID, defineHook } from '../../src/hooks/index.js';
import { createHookHarness } from '../../src/hooks/testing.js';
import { litecoindSkipReason, startLitecoind } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { X_MANY_COMMANDS } from './fixtures/x-many.js';
import { backendPeer, fixture, hooksYaml, pingRoundTrip } from './support.js';
import { X_PROTOCOL_FEATURE_ID, XClient, featurePayload, helloRequest, parseFeatureData, parseHello, parseUnknown } from './x-protocol-client.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MODULE = path.resolve(here, '../../hooks/features.js');
const GUARD = path.resolve(here, '../../hooks/example-mempool-guard.js');
const PKG_VERSION = (JSON.parse(readFileSync(path.resolve(here, '../../../package.json'), 'utf8')) as { version: string }).version;
const xPeer = { version: 70017, features: new Map([[X_FEATURE_ID, Buffer.alloc(0)]]) };

test('the document and the API agree on the feature id', () => {
  assert.equal(X_PROTOCOL_FEATURE_ID, X_FEATURE_ID);
});

test('§6.1: the discovery hex examples of docs/x-protocol.md are the bytes the hook and the client build', async () => {
  const doc = readFileSync(path.resolve(here, '../../../docs/x-protocol.md'), 'utf8');
  const section = doc.slice(doc.indexOf('### 6.1 Discovery'), doc.indexOf('### 6.2'));
  // each code block: hex groups, then two or more spaces and a comment
  const blocks = [...section.matchAll(/```\n([\s\S]*?)```/g)].map((m) =>
    m[1]!
      .split('\n')
      .map((line) => line.trim().split(/\s{2,}/)[0]!.replace(/ /g, ''))
      .join(''),
  );
  const frame = (command: string, payload: Buffer) => encodeFrame(NETWORKS.regtest, command, payload).raw.toString('hex');
  const { encodeFeatureData, encodeHelloAnswer } = (await import(MODULE)) as typeof import('../../hooks/features.js');
  assert.deepEqual(blocks, [
    frame('feature', encodeMessage('feature', { featureId: X_FEATURE_ID, data: encodeFeatureData(['x:hello']) })),
    frame('feature', featurePayload(X_PROTOCOL_FEATURE_ID)),
    frame('x:hello', helloRequest(0x0102030405060708n)),
    frame(
      'x:hello',
      encodeHelloAnswer({ nonce: 0x0102030405060708n, name: 'bitcoin-hook-proxy', version: '0.1.0', apiVersion: '1.1', network: 'regtest', modules: [{ name: 'features', xCommands: ['x:hello'] }], peerFeatures: [X_FEATURE_ID] }),
    ),
    frame('x:unknown', Buffer.from('05783a666f6f', 'hex')),
  ]);
  assert.equal(parseUnknown(Buffer.from('05783a666f6f', 'hex')), 'x:foo');
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
  // features last in the chain: x:hello still leads the list and survives the cut (§2)
  const h = await createHookHarness([...many.map((module) => ({ module })), { module: MODULE, options: {} }]);
  const f = h.chain.featureProviders[0]!;
  const data = Buffer.from(f.module.features!(h.peer(xPeer), f.ctx)[0]!.data!);
  assert.ok(data.length <= 512, `${data.length} bytes`);
  const parsed = parseFeatureData(data);
  assert.equal(parsed.truncated, true);
  assert.equal(parsed.commands[0], 'x:hello');
  assert.ok(parsed.commands.length > 30 && parsed.commands.length < 61, `${parsed.commands.length} commands`);
  // the longest prefix of the chain order that fits
  assert.deepEqual(parsed.commands.slice(1), many.slice(0, parsed.commands.length - 1).map((_, i) => `x:c${String(i).padStart(8, '0')}`));
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
  // redundant veracks (litecoind ignores them) do not count the peer again in features_peers_total
  for (let i = 0; i < 3; i++) plain.sendRaw(encodeFrame(plain.network, 'verack').raw);
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

/**
 * Issue 16, the x: protocol as an independent client found it: each numbered rule of
 * docs/x-protocol.md that the client exercised, through the proxy in front of litecoind, with
 * the client written from the document. One node and one proxy; a fresh client per rule.
 */
test('through the proxy in front of litecoind: the edge rules of docs/x-protocol.md', { skip: litecoindSkipReason(), timeout: 120_000 }, async (t) => {
  const node = await startLitecoind({ name: 'features-rules', disableWallet: true });
  t.after(() => node.stop());
  // every client comes from 127.0.0.1 and stays connected until the end
  // v2: reject, so that a connection opening with `feature` is read as v1 (§2.7) rather than taken for v2
  const proxy = await startTestProxy(node.p2pPort, `v2: reject\nlimits: { maxPeersPerAddress: 40 }\n${hooksYaml([{ module: MODULE, options: {} }, { module: GUARD, options: {} }])}`);
  t.after(() => proxy.close());
  let nonce = 100n;
  const xClient = async (o: Parameters<typeof XClient.connect>[1] = {}) => {
    const c = await XClient.connect(proxy.port, o);
    t.after(() => c.close());
    return c;
  };
  /** x: frames that arrived after `from`, once a ping sent after them came back */
  const xAfter = async (c: XClient, from: number) => {
    await pingRoundTrip(c.p2p, ++nonce);
    return c.p2p.frames.slice(from).filter((f) => f.command.startsWith('x:'));
  };

  await t.test('§1.5, §2.9: a feature id that is not printable ASCII is not recorded, so x:hello stays printable', async () => {
    const c = await xClient({ features: [featurePayload('acc\x01ptance/1'), featurePayload(X_FEATURE_ID), featurePayload('acceptance/2')] });
    const hello = await c.hello(++nonce); // the client's parser rejects any non-printable var_str
    assert.deepEqual(hello.features, [X_FEATURE_ID, 'acceptance/2']);
  });

  await t.test('§2.2: the proxy sends its feature immediately after the version, before the node\'s other pre-verack messages', async () => {
    const c = await xClient();
    assert.equal(c.handshake[0], 'version');
    assert.equal(c.handshake[1], 'feature', c.handshake.join(','));
    assert.ok(c.handshake.indexOf('wtxidrelay') > 1 && c.handshake.indexOf('sendaddrv2') > 1, c.handshake.join(','));
    assert.equal(c.handshake.at(-1), 'verack');
  });

  await t.test('§2.3: the version is raised to 70017 only for clients of 70017 or higher', async () => {
    assert.equal((await xClient()).theirVersion, 70017, "litecoind's 70016 raised for a 70017 client");
    assert.equal((await xClient({ version: 70018 })).theirVersion, 70017);
    const old = await xClient({ version: 70016 });
    assert.equal(old.theirVersion, 70016, 'a 70016 client sees the node\'s own number');
    assert.equal(old.handshake.includes('feature'), false, '§2.1: no feature to a client below 70017');
    assert.equal(old.offered, null);
  });

  await t.test('§2.5, §2.6: a client announces after reading the proxy\'s version; the proxy also accepts it right after the client\'s version', async () => {
    const late = await xClient(); // section 5's order
    assert.deepEqual((await late.hello(++nonce)).features, [X_FEATURE_ID]);
    const early = await xClient({ announce: 'early' });
    assert.deepEqual((await early.hello(++nonce)).features, [X_FEATURE_ID]);
  });

  await t.test('§2.6, §2.7: a feature sent by a client below 70017, or before its version, is not recorded: no x: answer at all', async () => {
    // a connection that does not start with `version` is v1 all the same (v2: reject does no detection);
    // the node scores it, the feature is not recorded
    const p = await P2PClient.connect(proxy.port);
    t.after(() => p.close());
    p.sendRaw(encodeFrame(p.network, 'feature', featurePayload(X_FEATURE_ID)).raw);
    await p.handshake();
    const first = p.frames.length;
    p.sendRaw(encodeFrame(p.network, 'x:hello', helloRequest(++nonce)).raw);
    await pingRoundTrip(p, ++nonce);
    assert.equal(p.isClosed, false);
    assert.deepEqual(p.frames.slice(first).filter((f) => f.command.startsWith('x:')), []);
    // a 70016 client that announces anyway (before reading the version, as it cannot know)
    const old = await xClient({ version: 70016, announce: 'early' });
    const at = old.p2p.frames.length;
    old.sendX('x:hello', helloRequest(++nonce));
    old.sendX('x:nosuch', Buffer.alloc(0));
    assert.deepEqual(await xAfter(old, at), []);
    assert.equal(old.p2p.isClosed, false);
  });

  await t.test('§2.9: a feature id announced twice is recorded once, at its first position', async () => {
    const c = await xClient({ features: [featurePayload('other/feature/a'), featurePayload(X_FEATURE_ID), featurePayload('other/feature/a', Buffer.from('again'))] });
    assert.deepEqual((await c.hello(++nonce)).features, ['other/feature/a', X_FEATURE_ID]);
  });

  await t.test('§2.9: invalid feature messages are ignored (not recorded, no answer, connection kept)', async () => {
    const id = (s: string) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]);
    const invalid = [
      Buffer.concat([Buffer.from('fd1100', 'hex'), Buffer.from('bad/noncanonical'), Buffer.from([0])]), // 17 bytes as 0xfd 0x0011
      Buffer.concat([id('bad'), Buffer.from([0])]), // id of 3 bytes
      Buffer.concat([id(`bad/${'x'.repeat(77)}`), Buffer.from([0])]), // id of 81 bytes
      Buffer.concat([id('bad/bigdata'), Buffer.from('fd0102', 'hex'), Buffer.alloc(513)]), // 513 bytes of data
      Buffer.concat([id('bad/trailing'), Buffer.from([0]), Buffer.from([7])]), // a byte after the data
      Buffer.concat([id('bad/truncated'), Buffer.from([5, 1, 2])]), // data ends early
      Buffer.from([40, 0x62]), // id ends early
    ];
    const c = await xClient({ features: [...invalid, featurePayload(X_FEATURE_ID)] });
    assert.deepEqual((await c.hello(++nonce)).features, [X_FEATURE_ID]);
    assert.equal(c.p2p.isClosed, false);
  });

  await t.test('§2.6: a feature sent after the client\'s verack is not recorded', async () => {
    const c = await xClient();
    c.sendX('feature', featurePayload('late/feature/1'));
    assert.deepEqual((await c.hello(++nonce)).features, [X_FEATURE_ID]);
  });

  await t.test('§3.1: x: commands before the handshake get no answer, neither x:hello nor x:unknown; after it both are answered', async () => {
    const c = await xClient({
      beforeVerack: (p2p) => {
        for (const cmd of ['x:hello', 'x:nosuch']) p2p.sendRaw(encodeFrame(p2p.network, cmd, helloRequest(1n)).raw);
      },
    });
    assert.deepEqual(await xAfter(c, 0), [], 'nothing answered to the early x: commands');
    const hello = await c.hello(++nonce);
    assert.equal(hello.network, 'regtest');
    const at = c.p2p.frames.length;
    c.sendX('x:nosuch', Buffer.alloc(0));
    const after = await xAfter(c, at);
    assert.deepEqual(after.map((f) => [f.command, parseUnknown(f.payload)]), [['x:unknown', 'x:nosuch']]);
  });

  await t.test('§3.3: the empty command `x:` is an unknown command like any other', async () => {
    const c = await xClient();
    const at = c.p2p.frames.length;
    c.sendX('x:', Buffer.alloc(0));
    const after = await xAfter(c, at);
    assert.deepEqual(after.map((f) => [f.command, parseUnknown(f.payload)]), [['x:unknown', 'x:']]);
  });

  await t.test('§1.2: a command field with a non-printable byte drops that message and keeps the connection, as litecoind does', async () => {
    const bad = (network: Network) => {
      const raw = Buffer.from(encodeFrame(network, 'x:aoo', Buffer.alloc(0)).raw);
      raw[4 + 2] = 0x01; // "x:\x01oo"
      return raw;
    };
    const c = await xClient();
    const at = c.p2p.frames.length;
    c.p2p.sendRaw(bad(c.p2p.network));
    await pingRoundTrip(c.p2p, ++nonce);
    assert.equal(c.p2p.isClosed, false, 'the proxy keeps the connection');
    assert.ok(!c.p2p.frames.slice(at).some((f) => f.command.startsWith('x:')), 'nothing is answered');
    assert.ok(proxy.logs.some((l) => l.code === 'BAD_COMMAND'), 'counted as a protocol error');
    // the same frame straight to litecoind: it keeps the connection
    const direct = await P2PClient.connect(node.p2pPort);
    t.after(() => direct.close());
    await direct.handshake();
    direct.sendRaw(bad(direct.network));
    await pingRoundTrip(direct, ++nonce);
    assert.equal(direct.isClosed, false);
    // and the proxy keeps serving everyone else
    assert.equal((await (await xClient()).hello(++nonce)).network, 'regtest');
  });
});

test('§2.4, through the proxy in front of litecoind: a command list over 512 bytes is cut from its end, x:hello stays first', { skip: litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  const node = await startLitecoind({ name: 'features-cut', disableWallet: true });
  t.after(() => node.stop());
  // features last in the chain, after a module with 60 commands
  const proxy = await startTestProxy(node.p2pPort, hooksYaml([{ module: fixture('x-many') }, { module: MODULE, options: {} }]));
  t.after(() => proxy.close());
  const x = await XClient.connect(proxy.port);
  t.after(() => x.close());
  const offered = x.offered!;
  assert.equal(offered.truncated, true);
  assert.equal(offered.commands[0], 'x:hello');
  assert.ok(offered.commands.length > 30 && offered.commands.length < 61, `${offered.commands.length} commands`);
  assert.deepEqual(offered.commands.slice(1), X_MANY_COMMANDS.slice(0, offered.commands.length - 1), 'the longest prefix of the chain order');
  const hello = await x.hello(9n);
  assert.deepEqual(hello.modules.map((m) => m.commands.length), [60, 1], 'x:hello has them all');
});

test('§1.7, through the proxy with a custom magic: network is custom- + the magic in wire order, lowercase hex', { skip: litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  const node = await startLitecoind({ name: 'features-magic', disableWallet: true });
  t.after(() => node.stop());
  // litecoind's regtest magic, configured as a custom one in upper case
  const proxy = await startTestProxy(node.p2pPort, hooksYaml([{ module: MODULE, options: {} }]), { network: '0xFABFB5DA' });
  t.after(() => proxy.close());
  const x = await XClient.connect(proxy.port);
  t.after(() => x.close());
  const hello = await x.hello(5n);
  const wire = x.p2p.frames[0]!.raw.subarray(0, 4).toString('hex');
  assert.equal(wire, 'fabfb5da');
  assert.equal(hello.network, `custom-${wire}`);
});
