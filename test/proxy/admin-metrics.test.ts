/**
 * Admin API and Prometheus metrics over real HTTP, with a real peer session behind them.
 *
 * Real implementations: a real regtest litecoind as the backend (its getpeerinfo is what the
 * admin API's backendLocalPort must let an operator match), our raw P2P client as the peer
 * (from 127.0.0.7, so the real address differs from the 127.0.0.1 litecoind sees), the
 * proxy's own admin and metrics listeners queried with fetch. The not-ready case uses a free
 * port nobody listens on as the backend.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NETWORKS, encodeFrame } from '../../src/codec/index.js';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { P2PClient, httpRequest } from '../support/p2p-client.js';
import { freePort } from '../support/ports.js';
import { ADMIN_TOKEN, startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { waitFor } from '../support/wait.js';

/** Every sample line of a Prometheus text exposition: name, labels, value. */
function samples(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a well-formed sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function sample(all: ReturnType<typeof samples>, name: string, labels: Record<string, string> = {}): number | undefined {
  return all.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

test('admin API (bearer token, /peers matched against litecoind getpeerinfo, /health, /ready) and /metrics over HTTP', { skip: litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  let ltc: Litecoind | undefined;
  let proxy: TestProxy | undefined;
  let client: P2PClient | undefined;
  t.after(async () => {
    await client?.close();
    await proxy?.close();
    await ltc?.stop();
  });
  ltc = await startLitecoind({ name: 'admin', disableWallet: true });
  proxy = await startTestProxy(ltc.p2pPort, '', { admin: true, metrics: true, probeBackend: true });
  const adminPort = proxy.adminPort!;
  const metricsPort = proxy.metricsPort!;

  await t.test('bearer token required except for /health and /ready', async () => {
    assert.equal((await httpRequest(adminPort, 'GET', '/health')).status, 200);
    // ready once the start-up probe reached litecoind (the same readiness as the metrics listener's)
    await waitFor(async () => (await httpRequest(adminPort, 'GET', '/ready')).status === 200, 20_000, 'the admin /ready');
    const ready = await httpRequest(adminPort, 'GET', '/ready');
    assert.equal(ready.json.ready, true);
    assert.equal(ready.json.backendUp, true);
    for (const route of [['GET', '/peers'], ['GET', '/bans'], ['POST', '/bans'], ['DELETE', '/bans/1.2.3.4']] as const) {
      const none = await httpRequest(adminPort, route[0], route[1]);
      assert.equal(none.status, 401, `${route.join(' ')} without a token`);
      assert.equal(none.headers['www-authenticate'], 'Bearer');
      assert.equal((await httpRequest(adminPort, route[0], route[1], { token: 'wrong-token-0123456789' })).status, 401, `${route.join(' ')} with a wrong token`);
      assert.equal((await httpRequest(adminPort, route[0], route[1], { token: ADMIN_TOKEN.slice(0, -1) })).status, 401, `${route.join(' ')} with a prefix of the token`);
    }
    assert.equal((await httpRequest(adminPort, 'GET', '/peers', { token: ADMIN_TOKEN })).status, 200);
    assert.equal((await httpRequest(adminPort, 'GET', '/nothing-here', { token: ADMIN_TOKEN })).status, 404);
  });

  await t.test('GET /peers lists the peer with its real address, the port litecoind sees, and its handshake', async () => {
    client = await P2PClient.connect(proxy!.port, { localAddress: '127.0.0.7', userAgent: '/admin-test:2.0/' });
    await client.handshake(10_000, { startHeight: 42, services: 0x409n });
    const { json, status } = await httpRequest(adminPort, 'GET', '/peers', { token: ADMIN_TOKEN });
    assert.equal(status, 200);
    assert.equal(json.peers.length, 1);
    const peer = json.peers[0];
    assert.equal(peer.address, '127.0.0.7', 'the real address, not the 127.0.0.1 litecoind sees');
    assert.equal(peer.port, client.socket.localPort);
    assert.equal(peer.version, 70016);
    assert.equal(peer.userAgent, '/admin-test:2.0/');
    assert.equal(peer.startHeight, 42);
    assert.equal(peer.services, '0x409');
    assert.equal(peer.relay, true);
    assert.equal(peer.handshakeComplete, true);
    assert.equal(peer.transport, 'v1');
    assert.ok(peer.bytesIn > 0 && peer.bytesOut > 0);
    assert.equal(typeof peer.backendLocalPort, 'number');
    // an operator matches the entry against bitcoin-cli getpeerinfo by 127.0.0.1:backendLocalPort
    const ltcPeers = await ltc!.getPeerInfo();
    const match = ltcPeers.find((p) => p.addr === `127.0.0.1:${peer.backendLocalPort}`);
    assert.ok(match, `litecoind lists 127.0.0.1:${peer.backendLocalPort} (it has ${ltcPeers.map((p) => p.addr).join(', ')})`);
    assert.equal(match.inbound, true);
    assert.equal(match.subver, '/admin-test:2.0/', 'the same peer: litecoind saw its user agent');
    assert.equal(match.startingheight, 42);
  });

  await t.test('GET /metrics over HTTP: connections, messages by command and direction, no per-peer labels', async () => {
    await client!.ping();
    // a command with no codec must not become a label value (cardinality)
    client!.sendRaw(encodeFrame(NETWORKS.regtest, 'bogus0cmd77', Buffer.alloc(0)).raw);
    await client!.ping();
    const res = await httpRequest(metricsPort, 'GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    const all = samples(res.text);
    assert.equal(sample(all, 'bhp_connections'), 1);
    assert.equal(sample(all, 'bhp_connections_accepted_total'), 1);
    for (const direction of ['inbound', 'outbound']) {
      assert.equal(sample(all, 'bhp_messages_total', { command: 'version', direction }), 1, `version ${direction}`);
      assert.equal(sample(all, 'bhp_messages_total', { command: 'verack', direction }), 1, `verack ${direction}`);
    }
    assert.equal(sample(all, 'bhp_messages_total', { command: 'ping', direction: 'inbound' }), 2);
    assert.equal(sample(all, 'bhp_messages_total', { command: 'pong', direction: 'outbound' }), 2);
    assert.equal(sample(all, 'bhp_messages_total', { command: 'other', direction: 'inbound' }), 1);
    assert.ok((sample(all, 'bhp_message_bytes_total', { command: 'version', direction: 'inbound' }) ?? 0) > 24);
    assert.doesNotMatch(res.text, /bogus0cmd77/);
    const allowed = new Set(['command', 'direction', 'reason', 'code', 'le', 'version', 'node', 'backend', 'action', 'outcome']); // bounded enums, never peer data; build_info and backend_up: one series per process
    for (const s of all) {
      for (const [k, v] of Object.entries(s.labels)) {
        assert.ok(allowed.has(k), `label ${k} on ${s.name} is not per-peer`);
        assert.doesNotMatch(v, /127\.0\.0\.7|admin-test/, `no peer data in ${s.name}{${k}="${v}"}`);
        assert.notEqual(v, String(client!.socket.localPort));
      }
    }
    assert.equal((await httpRequest(metricsPort, 'GET', '/other')).status, 404);
    assert.equal((await httpRequest(metricsPort, 'POST', '/metrics')).status, 404);

    await client!.close();
    await waitFor(async () => (await proxy!.metricValue('bhp_connections')) === 0, 2000, 'the session to end');
    const after = samples((await httpRequest(metricsPort, 'GET', '/metrics')).text);
    assert.equal(sample(after, 'bhp_connections'), 0);
    assert.equal(sample(after, 'bhp_connections_closed_total', { reason: 'peer_closed' }), 1);
    assert.equal(sample(after, 'bhp_session_duration_seconds_count'), 1);
    assert.equal((await httpRequest(adminPort, 'GET', '/peers', { token: ADMIN_TOKEN })).json.peers.length, 0);
  });
});

test('/ready is 503 once the backend is found down; /health stays 200', { timeout: 20_000 }, async (t) => {
  // Backend: a free port nobody listens on.
  const proxy = await startTestProxy(await freePort(), '', { admin: true });
  t.after(() => proxy.close());
  const peer = await P2PClient.connect(proxy.port);
  peer.socket.on('error', () => {});
  assert.ok(await peer.closedWithin(3000), 'refused');
  const ready = await httpRequest(proxy.adminPort!, 'GET', '/ready');
  assert.equal(ready.status, 503);
  assert.equal(ready.json.backendUp, false);
  assert.equal((await httpRequest(proxy.adminPort!, 'GET', '/health')).status, 200);
  assert.equal(await proxy.metricValue('bhp_backend_connect_failures_total'), 1);
  assert.equal(await proxy.metricValue('bhp_connections_refused_total', { reason: 'backend_down' }), 1);
});
