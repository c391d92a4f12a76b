/**
 * IPv6 peers: listening on [::1], the /64 per-subnet limit, and the version rewrite giving an
 * IPv6 peer its own address. The backend is a bitcoind-shaped TCP server that sends a version
 * message on connect (a real node waits for the peer's version first; the rewrite is the same).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { buildFrame, FrameDecoder, NETWORKS, decodePayload, type Frame, type VersionMessage } from '../../src/codec/index.js';
import { startProxy } from '../../src/app.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import { parseConfig } from '../../src/config.js';

const NET = NETWORKS.regtest;

test('IPv6: listen on [::1], /64 subnet limit, addrRecv rewritten to the IPv6 peer', { timeout: 30_000 }, async (t) => {
  const zero = { services: 0n, ip: Buffer.alloc(16), port: 0 };
  const version: VersionMessage = { version: 70016, services: 0x409n | (1n << 11n), timestamp: 0n, addrRecv: { ...zero, port: 1 }, addrFrom: zero, nonce: 9n, userAgent: '/backend/', startHeight: 1, relay: true };
  const backend = net.createServer((s) => {
    s.on('error', () => {});
    s.write(buildFrame(NET, 'version', version).raw);
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.after(() => backend.close());
  const port = await freePort('::1');
  const config = parseConfig(
    ['network: regtest', `listen: ["[::1]:${port}"]`, `backend: 127.0.0.1:${(backend.address() as net.AddressInfo).port}`, 'metrics: false', 'log: { level: silent }', 'v2: reject', 'limits: { maxPeersPerAddress: 10, maxPeersPerSubnet: 2 }'].join('\n'),
    'v6.yaml',
  );
  const running = await startProxy(config, { defaultMetrics: false });
  t.after(() => running.close());

  const received: Frame[] = [];
  const c1 = net.connect({ host: '::1', port });
  t.after(() => c1.destroy());
  const dec = new FrameDecoder({ network: NET, checksum: 'always' }, { onFrame: (f) => received.push(f.copy()), onError: (e) => assert.fail(e.message) });
  c1.on('data', (d: Buffer) => dec.push(d));
  await waitFor(() => received.length > 0, 5000, 'the version from the backend through the IPv6 listener');
  const v = decodePayload<VersionMessage>('version', received[0]!.payload);
  assert.equal(v.addrRecv.ip.toString('hex'), '00000000000000000000000000000001', 'addrRecv is ::1, the peer as it really is');
  assert.equal(v.addrRecv.port, c1.localPort, 'and its real port');
  assert.equal(v.services & (1n << 11n), 0n, 'NODE_P2P_V2 cleared under v2: reject');

  const c2 = net.connect({ host: '::1', port });
  t.after(() => c2.destroy());
  await waitFor(() => running.proxy.sessions().length === 2, 5000, 'a second IPv6 session');
  assert.equal(running.proxy.sessions()[0]!.address, '::1');
  const c3 = net.connect({ host: '::1', port });
  c3.on('error', () => {});
  await new Promise((r) => c3.once('close', r));
  assert.equal(await running.metrics.registry.getSingleMetric('bhp_connections_refused_total')!.get().then((m) => m.values.find((x) => x.labels.reason === 'max_per_subnet')?.value), 1, 'third peer of the /64 refused');
});
