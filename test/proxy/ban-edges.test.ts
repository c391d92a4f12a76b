/**
 * The edges of a ban's life. One that runs out: the peer gets in again, and bhp_bans (bans in
 * force) stops counting it without any other ban change happening. One that lands while the
 * peer's connection is already admitted and waiting for bitcoind to accept the proxy's connection:
 * the peer must not get its session once bitcoind does.
 *
 * Real implementations: a regtest litecoind (Bitcoin Core 0.21's P2P code) behind the proxy, our
 * P2P client as the peer, the metrics listener scraped over HTTP as Prometheus does. For the slow
 * backend, a python3 listening socket whose accept queue is full (connects to it wait for SYN
 * retransmits, as to a bitcoind too busy to accept), which accepts when told to.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { cleanupStack } from '../support/cleanup.js';
import { litecoindSkipReason, startLitecoind } from '../support/litecoind.js';
import { P2PClient, httpRequest } from '../support/p2p-client.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { sleep, waitFor } from '../support/wait.js';

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

/** A listener with a full accept queue: it accepts (everything, from then on) once `accept()` is called. */
const SLOW_ACCEPT = `
import socket, sys, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)
print(s.getsockname()[1], flush=True)
fill = []
for _ in range(3):
    c = socket.socket(); c.setblocking(False); fill.append(c)
    try: c.connect(('127.0.0.1', s.getsockname()[1]))
    except BlockingIOError: pass
time.sleep(0.3)
print('full', flush=True)
sys.stdin.readline()
held = []
s.settimeout(0.2)
while True:
    try: held.append(s.accept()[0])
    except socket.timeout: pass
`;

test('a ban that lands while the peer waits for the backend connection: no session once bitcoind accepts', { timeout: 60_000 }, async (t) => {
  const steps = cleanupStack(t);
  const py = spawn('python3', ['-c', SLOW_ACCEPT], { stdio: ['pipe', 'pipe', 'inherit'] });
  steps.push(() => py.kill('SIGKILL'));
  let out = '';
  py.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => out.includes('full'), 10_000, 'the slow backend');
  const proxy = await startTestProxy(Number(out.split('\n')[0]), 'limits: { backendConnectTimeout: 20s }');
  steps.push(() => proxy.close());
  const c = await P2PClient.connect(proxy.port, { localAddress: '127.0.9.1' });
  steps.push(() => c.close());
  c.socket.on('error', () => {});
  await sleep(300); // admitted: the proxy's connection to the backend is in its SYN retransmits
  assert.equal(c.isClosed, false);
  assert.ok(proxy.proxy.ban('127.0.9.1', 3_600_000, 'banned by the operator meanwhile'));
  py.stdin!.write('accept\n');
  await waitFor(() => c.isClosed || proxy.proxy.sessions().length > 0, 15_000, 'the backend connection to open');
  await sleep(200);
  assert.deepEqual(proxy.proxy.sessions().map((s) => s.address), [], 'no session for the banned address');
  assert.ok(await c.closedWithin(2000), 'the banned peer is closed');
  assert.equal(await proxy.metricValue('bhp_connections_refused_total', { reason: 'banned' }), 1);
});
