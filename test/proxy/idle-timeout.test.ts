/**
 * A peer that goes silent is closed after limits.idleTimeout, counted by reason, and its
 * backend connection goes with it. Backend: a silent TCP server standing in for bitcoind
 * (a real one would ping and keep the socket busy; the timer is the proxy's own).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { startTestProxy, connectRaw, collectUntilClosed } from '../support/proxy-harness.js';

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
