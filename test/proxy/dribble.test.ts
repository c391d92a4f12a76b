/**
 * A peer whose bytes arrive in pieces of 1 to 29 bytes, cut anywhere (inside the transport's
 * first bytes, headers and payloads), under each v2 policy: the proxy must see the same
 * stream as from a peer that writes whole messages. The stage reads the peer's version, the
 * hooks see every frame they want, a denied command never reaches the node, and pings are
 * answered.
 *
 * Real implementations: litecoind 0.21 from Debian (Bitcoin Core 0.21's P2P code, regtest)
 * behind the proxy; our raw P2P test client behind a relay that cuts its bytes, and for v2 our
 * v2 bridge (the proxy's own initiator, checked against the BIP 324 vectors in
 * v2-vectors.test.ts) behind a relay that cuts its ciphertext; the shipped message-filter and
 * features hooks and the `wants` recorder fixture.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NETWORKS } from '../../src/codec/index.js';
import { fixture, hooksYaml } from '../hooks/support.js';
import { fixtureState } from '../hooks/fixtures/state.js';
import { XClient } from '../hooks/x-protocol-client.js';
import { cleanupStack } from '../support/cleanup.js';
import { startDribbleRelay } from '../support/dribble-relay.js';
import { litecoindSkipReason, startLitecoind } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { fileSeed } from '../support/seed.js';
import { startV2Bridge } from '../support/v2-bridge.js';
import { sleep, waitFor } from '../support/wait.js';

const skip = litecoindSkipReason();
const HOOKS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../hooks');
const FILTER = path.join(HOOKS, 'message-filter.js');
const FEATURES = path.join(HOOKS, 'features.js');

for (const policy of ['reject', 'passthrough', 'terminate'] as const) {
  test(`v2: ${policy}: a peer dribbling its bytes gets the same service as one writing whole messages`, { skip, timeout: 120_000 }, async (t) => {
    const cleanup = cleanupStack(t);
    const node = await startLitecoind({ name: `dribble-${policy}`, disableWallet: true });
    cleanup.push(() => node.stop());
    const label = `dribble-${policy}`;
    const hooks = hooksYaml([
      { module: fixture('wants'), options: { label, inbound: ['version', 'verack', 'ping', 'mempool'], outbound: ['pong'] } },
      { module: FILTER, options: { inbound: { deny: ['mempool'] } } },
    ]);
    const proxy = await startTestProxy(node.p2pPort, `v2: ${policy}\n${hooks}`);
    cleanup.push(() => proxy.close());
    const relay = await startDribbleRelay(proxy.port, { maxPiece: 29, delayMs: 1, seed: fileSeed(import.meta.url, policy) });
    cleanup.push(() => relay.close());
    const userAgent = `/bhp-test-client:dribble-${policy}/`;
    const c = await P2PClient.connect(relay.port, { userAgent });
    cleanup.push(() => c.close());

    await c.handshake(20_000);
    const session = proxy.proxy.sessions()[0];
    assert.equal(session?.info.transport, 'v1');
    assert.equal(session?.info.userAgent, userAgent, "the stage read the peer's version");
    for (let i = 0; i < 5; i++) {
      c.send('mempool', {});
      await c.ping(10_000);
    }
    // in order: the last pong is back, so litecoind has read everything before it
    const peer = (await node.rpc<{ subver: string; bytesrecv_per_msg: Record<string, number> }[]>('getpeerinfo')).find((p) => p.subver === userAgent);
    assert.ok(peer, 'litecoind has the peer, with its user agent');
    assert.equal(peer.bytesrecv_per_msg.mempool, undefined, 'no mempool got past the filter');
    assert.equal(peer.bytesrecv_per_msg.ping, 5 * 32, 'every ping, once');
    const calls = fixtureState().calls.get(label)!;
    assert.deepEqual(
      calls.filter((k) => k.startsWith('inbound:')),
      ['inbound:version', 'inbound:verack', ...Array.from({ length: 5 }, () => ['inbound:mempool', 'inbound:ping']).flat()],
      'the hook saw every frame it wants, in order',
    );
    await waitFor(() => calls.filter((k) => k === 'outbound:pong').length >= 5 || null, 5000, 'the pongs through the outbound hook');
    await sleep(50);
    assert.equal(c.isClosed, false);
  });
}

test('v2: terminate: a v2 peer whose ciphertext arrives in pieces of 1 to 29 bytes: handshake, x:hello, pings', { skip, timeout: 120_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const node = await startLitecoind({ name: 'dribble-v2', disableWallet: true });
  cleanup.push(() => node.stop());
  const label = 'dribble-v2';
  const hooks = hooksYaml([{ module: FEATURES }, { module: fixture('wants'), options: { label, inbound: ['ping'], outbound: ['pong'] } }]);
  const proxy = await startTestProxy(node.p2pPort, `v2: terminate\n${hooks}`);
  cleanup.push(() => proxy.close());
  const relay = await startDribbleRelay(proxy.port, { maxPiece: 29, delayMs: 1, seed: fileSeed(import.meta.url, 'v2') });
  cleanup.push(() => relay.close());
  const bridge = await startV2Bridge(relay.port, NETWORKS.regtest);
  cleanup.push(() => bridge.close());
  const x = await XClient.connect(bridge.port);
  cleanup.push(() => x.p2p.close());
  for (let i = 0; i < 3; i++) {
    await x.p2p.ping(10_000);
    assert.equal((await x.hello()).network, 'regtest');
  }
  assert.ok(bridge.links[0]?.ready, 'the link was v2');
  assert.equal(proxy.proxy.sessions()[0]?.info.transport, 'v2');
  assert.deepEqual(fixtureState().calls.get(label)!.filter((k) => k.startsWith('inbound:')), ['inbound:ping', 'inbound:ping', 'inbound:ping']);
});
