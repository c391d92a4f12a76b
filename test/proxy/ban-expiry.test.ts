/**
 * A ban that runs out: the peer gets in again, and bhp_bans (bans in force) stops counting it
 * without any other ban change happening.
 *
 * Real implementations: a regtest litecoind (Bitcoin Core 0.21's P2P code) behind the proxy, our
 * P2P client as the peer, the metrics listener scraped over HTTP as Prometheus does.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanupStack } from '../support/cleanup.js';
import { litecoindSkipReason, startLitecoind } from '../support/litecoind.js';
import { P2PClient, httpRequest } from '../support/p2p-client.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { sleep } from '../support/wait.js';

test('an expired ban lets the peer in and leaves bhp_bans', { skip: litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  const steps = cleanupStack(t);
  const node = await startLitecoind({ name: 'ban-expiry', disableWallet: true });
  steps.push(() => node.stop());
  const proxy = await startTestProxy(node.p2pPort, '', { metrics: true });
  steps.push(() => proxy.close());
  const bans = async () => Number(/^bhp_bans (\S+)$/m.exec((await httpRequest(proxy.metricsPort!, 'GET', '/metrics')).text)?.[1]);
  assert.ok(proxy.proxy.ban('127.0.8.8', 1500, 'short'));
  assert.equal(await bans(), 1);
  const refused = await P2PClient.connect(proxy.port, { localAddress: '127.0.8.8' });
  refused.socket.on('error', () => {});
  assert.ok(await refused.closedWithin(3000), 'refused while banned');
  await sleep(2000);
  assert.equal(await bans(), 0, 'the expired ban is no longer in force');
  const c = await P2PClient.connect(proxy.port, { localAddress: '127.0.8.8' });
  steps.push(() => c.close());
  await c.handshake();
});
