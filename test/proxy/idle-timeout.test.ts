/**
 * A peer that goes silent is closed after limits.idleTimeout, counted by reason, and its
 * backend connection goes with it. Backend: a silent TCP server standing in for bitcoind, and a
 * real litecoind that keeps writing to the peer (what bitcoind writes must not keep it open).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { startTestProxy, connectRaw, collectUntilClosed } from '../support/proxy-harness.js';
import { cleanupStack } from '../support/cleanup.js';
import { litecoindSkipReason, startLitecoind } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { sleep } from '../support/wait.js';

test('a silent peer is closed at idleTimeout, and its backend connection too', { timeout: 20_000 }, async (t) => {
  let backendClosed = 0;
  const backend = net.createServer((s) => {
    s.on('error', () => {});
    s.on('close', () => backendClosed++);
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.after(() => backend.close());
  const proxy = await startTestProxy((backend.address() as net.AddressInfo).port, 'limits: { idleTimeout: 1s, handshakeTimeout: 0 }');
  t.after(() => proxy.close());
  const s = await connectRaw(proxy.port);
  const t0 = Date.now();
  await collectUntilClosed(s);
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= 900 && elapsed < 5000, `closed after ${elapsed} ms`);
  assert.equal(await proxy.metricValue('bhp_connections_closed_total', { reason: 'idle_timeout' }), 1);
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(backendClosed, 1, 'the backend connection was closed as well');
});

test('a silent peer is closed at idleTimeout although litecoind keeps writing to it (new blocks)', { skip: litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  // Real: a regtest litecoind (Bitcoin Core 0.21's P2P code) announcing each new block to the
  // peer; the peer (our P2P client) reads them and sends nothing after its handshake.
  const steps = cleanupStack(t);
  const node = await startLitecoind({ name: 'idle', disableWallet: false });
  steps.push(() => node.stop());
  const proxy = await startTestProxy(node.p2pPort, 'limits: { idleTimeout: 3s }');
  steps.push(() => proxy.close());
  const c = await P2PClient.connect(proxy.port);
  steps.push(() => c.close());
  c.socket.on('error', () => {});
  await c.handshake();
  const heard = c.frames.length;
  const t0 = Date.now();
  // a block every 500 ms: litecoind writes to the peer far more often than idleTimeout
  while (!c.isClosed && Date.now() - t0 < 12_000) {
    await node.generate(1);
    await sleep(500);
  }
  const elapsed = Date.now() - t0;
  assert.ok(c.frames.length > heard, 'litecoind wrote to the peer meanwhile');
  assert.ok(c.isClosed, `the silent peer is closed (still open after ${elapsed} ms)`);
  assert.ok(elapsed < 8000, `closed after ${elapsed} ms`);
  assert.equal(await proxy.metricValue('bhp_connections_closed_total', { reason: 'idle_timeout' }), 1);
});
