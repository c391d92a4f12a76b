/**
 * What an idle session holds: after the handshake and pings, a session has made none of the
 * parts it makes on first use (logger, log limiter, hook budget, detector, lane queues), so
 * thousands of idle peers do not each carry them; a peer that causes a log line gets its
 * logger then, with the same bindings as before. Nothing here measures RSS or time: it fails
 * when one of those parts is made eagerly again.
 * Real implementations: litecoind 0.21 from Debian (Bitcoin Core 0.21's P2P code) as the
 * backend and as a peer syncing through the proxy; three more peers are the test's P2P client.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, NETWORKS } from '../../src/codec/index.js';
import { startLitecoind, litecoindSkipReason } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { HookCostEstimate } from '../../src/proxy/hook-cost-estimate.js';
import { waitFor } from '../support/wait.js';
import { cleanupStack } from '../support/cleanup.js';

test('idle sessions make no logger, log limiter, hook budget, detector or lane queue until used', { skip: litecoindSkipReason(), timeout: 120_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const node = await startLitecoind({ name: 'backend' });
  cleanup.push(() => node.stop());
  const proxy = await startTestProxy(node.p2pPort);
  cleanup.push(() => proxy.close());
  proxy.log.level = 'warn'; // as in production: routine info lines are not written

  await node.generate(3);
  const peer = await startLitecoind({ name: 'peer', extraArgs: [`-connect=127.0.0.1:${proxy.port}`] });
  cleanup.push(() => peer.stop());
  await peer.waitForHeight(3, 60_000);
  const clients = await Promise.all([0, 1, 2].map(() => P2PClient.connect(proxy.port)));
  cleanup.push(() => Promise.all(clients.map((c) => c.close())));
  for (const c of clients) {
    await c.handshake();
    await c.ping();
  }
  await waitFor(() => proxy.proxy.sessions().filter((s) => s.info.handshakeComplete).length === 4, 10_000, 'four sessions past the handshake');

  for (const s of proxy.proxy.sessions()) {
    assert.deepEqual(s.madeOnUse, [], `session ${s.info.id} (${s.info.userAgent}) made nothing on first use`);
  }
  assert.equal(proxy.logs.filter((l) => l.msg === 'peer connected').length, 0, 'no info line at warn');

  // a log line this peer causes makes its logger, bound to the peer as always
  proxy.log.level = 'info';
  const c = clients[0]!;
  const session = proxy.proxy.sessions().find((s) => s.info.port === c.socket.localPort)!;
  c.sendRaw(encodeFrame(NETWORKS.regtest, 'x:nosuch', Buffer.alloc(0)).raw);
  await waitFor(() => proxy.logs.some((l) => l.logReason === 'x_without_feature'), 10_000, 'the x: line');
  const line = proxy.logs.find((l) => l.logReason === 'x_without_feature')!;
  assert.equal(line.peer, `127.0.0.1:${c.socket.localPort}`);
  assert.equal(line.session, session.info.id);
  assert.deepEqual(session.madeOnUse, ['logger', 'logLimiter']);
  for (const other of proxy.proxy.sessions()) if (other !== session) assert.deepEqual(other.madeOnUse, [], 'the other sessions still made nothing');
});

test('a hook-cost estimate that never sampled holds no sample arrays', () => {
  const e = new HookCostEstimate();
  assert.equal(e.sampled, false);
  assert.equal(e.perFrame, 0);
  e.sample(0.0001, 0.0002);
  assert.equal(e.sampled, true);
  assert.equal(e.perFrame, 0.0001);
});
