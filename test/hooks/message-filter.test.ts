/**
 * hooks/message-filter: unit tests through the real chain runner (createHookHarness, loading the
 * compiled module by path as the proxy does), and tests through the real proxy in front of a
 * real node. Real implementations: litecoind 0.21 from Debian (Bitcoin Core 0.21's P2P code,
 * regtest magic fabfb5da) as the backend and as the peer; our raw P2P test client
 * (test/support/p2p-client.ts) as a peer whose messages we choose.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NETWORKS, encodeFrame } from '../../src/codec/index.js';
import { createHookHarness } from '../../src/hooks/testing.js';
import { startLitecoind, litecoindSkipReason, type Litecoind, type PeerInfo } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { sleep, waitFor } from '../support/wait.js';
import { cleanupStack } from '../support/cleanup.js';

const MODULE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../hooks/message-filter.js');
const hookYaml = (options: object) => `hooks:\n  - { module: ${JSON.stringify(MODULE)}, options: ${JSON.stringify(options)} }`;
const harness = (options: object) => createHookHarness([{ module: MODULE, options: options as Record<string, unknown> }]);

test('deny-list: listed commands are dropped, others pass, and only the listed ones leave the fast path', async () => {
  const h = await harness({ inbound: { deny: ['mempool', 'getaddr'] } });
  const p = h.peer();
  assert.equal((await h.deliver(p, 'inbound', 'mempool')).forwarded, null);
  assert.equal((await h.deliver(p, 'inbound', 'getaddr')).forwarded, null);
  assert.equal((await h.deliver(p, 'inbound', 'ping', { nonce: 1n })).forwarded?.command, 'ping');
  assert.equal((await h.deliver(p, 'outbound', 'mempool')).forwarded?.command, 'mempool', 'outbound is not filtered');
  assert.equal(p.closed, false);
  assert.equal(h.chain.hooksFor('inbound', 'ping').length, 0, 'ping takes the raw fast path');
  assert.equal(h.chain.hooksFor('inbound', 'block').length, 0, 'block takes the raw fast path');
  assert.equal(h.chain.hooksFor('outbound', 'mempool').length, 0, 'no outbound rules: fast path');
  assert.equal(h.chain.hooksFor('inbound', 'mempool').length, 1);
  await h.close();
});

test('deny-list: per-rule actions (disconnect, misbehave N) and the direction default', async () => {
  const h = await harness({
    action: 'drop',
    inbound: { deny: [{ command: 'mempool', action: 'disconnect' }, { command: 'getaddr', action: { misbehave: 30 } }, 'tx'], action: { misbehave: 5 } },
  });
  const a = h.peer();
  assert.equal((await h.deliver(a, 'inbound', 'getaddr')).forwarded, null);
  assert.equal(a.misbehaviour, 30);
  assert.equal((await h.deliver(a, 'inbound', 'tx', Buffer.from('00', 'hex'))).forwarded, null);
  assert.equal(a.misbehaviour, 35, 'tx takes the inbound default action, misbehave 5');
  assert.equal(a.closed, false);
  assert.equal((await h.deliver(a, 'inbound', 'mempool')).forwarded, null);
  assert.match(a.disconnected ?? '', /message-filter: inbound "mempool" is denied/);
  await h.close();
});

test('allow-list: the handshake and keep-alive pass by default, everything else gets the action', async () => {
  const h = await harness({ outbound: { allow: ['headers', 'block'], action: 'disconnect' } });
  assert.equal(h.chain.hooksFor('outbound', 'anything').length, 1, 'an allow-list sees every frame of its direction');
  assert.equal(h.chain.hooksFor('inbound', 'anything').length, 0);
  const p = h.peer();
  for (const cmd of ['version', 'verack', 'pong', 'headers']) {
    assert.notEqual((await h.deliver(p, 'outbound', cmd, Buffer.alloc(cmd === 'pong' ? 8 : cmd === 'headers' ? 1 : 0))).forwarded, null, `${cmd} passes`);
  }
  assert.equal((await h.deliver(p, 'outbound', 'inv', Buffer.from('00', 'hex'))).forwarded, null);
  assert.match(p.disconnected ?? '', /outbound "inv" is not allowed/);
  await h.close();

  // alwaysAllow: [] means exactly the list: version is refused too
  const strict = await harness({ inbound: { allow: ['ping'], alwaysAllow: [] } });
  const q = strict.peer();
  assert.equal((await strict.deliver(q, 'inbound', 'verack')).forwarded, null);
  assert.equal((await strict.deliver(q, 'inbound', 'ping', { nonce: 2n })).forwarded?.command, 'ping');
  await strict.close();
});

test('bad options are refused with the key named', async () => {
  const cases: [object, RegExp][] = [
    [{}, /options\.\(root\): configure inbound, outbound or both/],
    [{ inbound: { allow: ['ping'], deny: ['tx'] } }, /options\.inbound\.deny: give either allow or deny/],
    [{ inbound: {} }, /options\.inbound: give allow/],
    [{ inbound: { deny: ['much-too-long-command'] } }, /options\.inbound\.deny\.0/],
    [{ inbound: { deny: ['tx'] }, action: 'explode' }, /options\.action: expected "drop", "disconnect" or \{ misbehave: N \}/],
    [{ inbound: { deny: [{ command: 'tx', action: { misbehave: 0 } }] } }, /options\.inbound\.deny\.0/],
    [{ outbound: { deny: ['tx'] }, inbund: {} }, /options.*inbund/],
    [{ inbound: { deny: ['tx'], alwaysAllow: ['ping'] } }, /options\.inbound\.alwaysAllow/],
  ];
  for (const [options, re] of cases) await assert.rejects(harness(options), re, JSON.stringify(options));
});

// ---- through the real proxy, in front of a real node ----

async function peerBySubver(node: Litecoind, re: RegExp): Promise<PeerInfo | undefined> {
  return (await node.getPeerInfo()).find((p) => re.test(p.subver));
}

test('read-only node: B\'s blocks never reach A through the proxy, A\'s blocks still reach B (litecoind on both sides)', { skip: litecoindSkipReason(), timeout: 90_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const a = await startLitecoind({ name: 'readonly-a' });
  cleanup.push(() => a.stop());
  const proxy = await startTestProxy(a.p2pPort, hookYaml({ inbound: { deny: ['block', 'cmpctblock', 'blocktxn', 'tx'] } }), { metrics: true });
  cleanup.push(() => proxy.close());
  await a.generate(3);
  const b = await startLitecoind({ name: 'readonly-b', extraArgs: [`-connect=127.0.0.1:${proxy.port}`] });
  cleanup.push(() => b.stop());
  await b.waitForHeight(3, 30_000); // A serves blocks through the proxy
  assert.equal(await b.getBestBlockHash(), await a.getBestBlockHash());

  const [mined] = await b.generate(1);
  // B announces it (headers or cmpctblock); A asks for it; the block never gets through.
  await waitFor(async () => ((await peerBySubver(a, /LitecoinCore/))?.bytesrecv_per_msg.headers ?? 0) > 0 || (await proxy.metricValue('bhp_hook_message_filter_filtered_total')) > 0, 15_000, 'B to announce its block to A');
  await sleep(2000);
  assert.equal(await a.getBlockCount(), 3, 'A did not accept B\'s block');
  await assert.rejects(a.rpc('getblock', [mined]), /Block not found/, 'A never stored B\'s block');
  const seen = (await peerBySubver(a, /LitecoinCore/))!.bytesrecv_per_msg;
  for (const cmd of ['block', 'cmpctblock', 'blocktxn', 'tx']) assert.equal(seen[cmd], undefined, `A received no ${cmd} (got ${JSON.stringify(seen)})`);

  // A's chain still reaches B: A mines past B's fork and B reorganises onto it.
  await a.generate(2);
  await waitFor(async () => (await b.getBestBlockHash()) === (await a.getBestBlockHash()), 30_000, 'B to follow A\'s longer chain through the proxy');
  assert.equal(await a.getBlockCount(), 5);
  const metrics = await proxy.metricsText();
  assert.match(metrics, /bhp_hook_message_filter_filtered_total\{direction="inbound",command="(block|cmpctblock)",action="drop"\} [1-9]/);
});

test('allow-list and disconnect with a raw peer: litecoind never receives what the filter stops', { skip: litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const node = await startLitecoind({ name: 'filter-raw' });
  cleanup.push(() => node.stop());
  const proxy = await startTestProxy(node.p2pPort, hookYaml({ inbound: { allow: ['getheaders'], action: 'drop' } }));
  cleanup.push(() => proxy.close());

  const c = await P2PClient.connect(proxy.port);
  cleanup.push(() => c.close());
  await c.handshake(); // version and verack pass an allow-list by default
  await c.ping(); // so do ping and pong
  c.send('getaddr', {});
  c.send('mempool', {});
  await c.ping(); // in order: once the pong is back, litecoind has read the frames before it
  const seen = (await peerBySubver(node, /bhp-test-client/))!.bytesrecv_per_msg;
  assert.ok(seen.ping! > 0 && seen.verack! > 0, `handshake and pings arrived: ${JSON.stringify(seen)}`);
  assert.equal(seen.getaddr, undefined, 'getaddr was dropped');
  assert.equal(seen.mempool, undefined, 'mempool was dropped');
  assert.equal(c.isClosed, false, 'drop keeps the peer');
  await c.close();

  // the same command with action disconnect, on a reload of the chain
  const next = structuredClone(proxy.config);
  next.hooks = [{ module: MODULE, options: { inbound: { deny: [{ command: 'mempool', action: 'disconnect' }] } }, enabled: true }];
  await proxy.reload(next);
  const d = await P2PClient.connect(proxy.port, { userAgent: '/bhp-test-client:deny/' });
  cleanup.push(() => d.close());
  await d.handshake();
  d.send('mempool', {});
  assert.equal(await d.closedWithin(5000), true, 'the proxy disconnected the peer');
  const gone = await waitFor(async () => !(await peerBySubver(node, /deny/)) || null, 10_000, 'litecoind to lose the peer');
  assert.ok(gone);
});

test('a header cut across reads at any byte gets no denied frame past the filter (a peer dribbling its headers)', { skip: litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const node = await startLitecoind({ name: 'filter-split' });
  cleanup.push(() => node.stop());
  const proxy = await startTestProxy(node.p2pPort, hookYaml({ inbound: { deny: ['getaddr', 'mempool'] } }));
  cleanup.push(() => proxy.close());
  const c = await P2PClient.connect(proxy.port, { userAgent: '/bhp-test-client:split/' });
  cleanup.push(() => c.close());
  await c.handshake();
  // Past 16 bytes the command field is whole and the length and checksum follow: the proxy once
  // compared those with command names too, found none, and let the frame through unhooked.
  for (const command of ['getaddr', 'mempool']) {
    const raw = encodeFrame(NETWORKS.regtest, command, Buffer.alloc(0)).raw;
    for (let cut = 1; cut < raw.length; cut++) {
      c.sendRaw(raw.subarray(0, cut));
      await sleep(15); // a read of its own (the client writes with Nagle off)
      c.sendRaw(raw.subarray(cut));
    }
  }
  await c.ping(); // in order: once the pong is back, litecoind has read everything before it
  const seen = (await peerBySubver(node, /split/))!.bytesrecv_per_msg;
  assert.ok(seen.ping! > 0, `pings arrived: ${JSON.stringify(seen)}`);
  assert.equal(seen.getaddr, undefined, 'no getaddr reached litecoind');
  assert.equal(seen.mempool, undefined, 'no mempool reached litecoind');
  assert.equal(c.isClosed, false);
});
