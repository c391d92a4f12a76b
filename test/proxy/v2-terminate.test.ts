/**
 * BIP324 v2 terminated at the proxy (`v2: terminate`), over real sockets to a real node.
 * Real implementations: litecoind 0.21 from Debian (Bitcoin Core 0.21's P2P code, regtest) as
 * the node behind the proxy, which speaks only v1: the proxy is the v2 responder. The v2
 * initiators are the proxy's own (an OutboundSession relay for a second litecoind that syncs
 * blocks; the v2 bridge of test/support for the v1 test clients), so both ends of each v2 link
 * are ours, checked against the BIP's vectors in v2-vectors.test.ts; the nodes at both ends of
 * the path are real.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NETWORKS } from '../../src/codec/index.js';
import { NODE_P2P_V2 } from '../../src/proxy/handshake.js';
import { fixtureState } from '../hooks/fixtures/state.js';
import { fixture, hooksYaml } from '../hooks/support.js';
import { X_PROTOCOL_FEATURE_ID, XClient } from '../hooks/x-protocol-client.js';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { startV2Bridge } from '../support/v2-bridge.js';
import { waitFor } from '../support/wait.js';

const skip = litecoindSkipReason();
const regtest = NETWORKS.regtest;

test('a v1 client through a v2 link: handshake, NODE_P2P_V2 in the version, ping, hooks and metrics', { skip, timeout: 120_000 }, async (t) => {
  const cleanup: (() => Promise<unknown> | void)[] = [];
  t.after(async () => {
    for (const f of cleanup.reverse()) await f();
  });
  const node: Litecoind = await startLitecoind({ name: 'v2-backend', disableWallet: true });
  cleanup.push(() => node.stop());
  const label = 'v2-smoke';
  const proxy: TestProxy = await startTestProxy(node.p2pPort, `v2: terminate\n${hooksYaml([{ module: fixture('wants'), options: { label, inbound: ['ping'], outbound: ['pong'] } }])}`, { metrics: true });
  cleanup.push(() => proxy.close());
  if (process.env.BHP_V2_DEBUG) cleanup.push(() => console.log(proxy.logs.map((l) => JSON.stringify(l)).join('\n')));
  const bridge = await startV2Bridge(proxy.port, regtest);
  cleanup.push(() => bridge.close());

  const client = await P2PClient.connect(bridge.port);
  cleanup.push(() => client.close());
  const theirs = await client.handshake(20_000);
  assert.equal(theirs.services & NODE_P2P_V2, NODE_P2P_V2, 'the proxy sets NODE_P2P_V2 in the version bitcoind sends');
  await client.ping(10_000);
  assert.ok(bridge.links[0], 'the link is v2 (no fallback)');
  assert.equal(bridge.links[0]!.ready, true);
  const [session] = proxy.proxy.sessions();
  assert.equal(session?.info.transport, 'v2');
  assert.equal(session?.info.handshakeComplete, true);
  const calls = fixtureState().calls.get(label)!;
  assert.ok(calls.includes('inbound:ping') && calls.includes('outbound:pong'), `hooks saw the frames (${calls.join(',')})`);
  assert.equal(await proxy.metricValue('bhp_v2_sessions_total', { role: 'responder' }), 1);
  assert.ok((await proxy.metricValue('bhp_messages_total', { command: 'ping', direction: 'inbound' })) >= 1, 'metrics count v2 frames by command');
  assert.ok((await proxy.metricValue('bhp_messages_total', { command: 'version', direction: 'outbound' })) === 1);
});
