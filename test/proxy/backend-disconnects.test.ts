/**
 * Which disconnects by bitcoind count towards a ban (bans.backendDisconnects): only those that
 * follow a completed handshake and that the proxy can attribute to the peer. A backend that is
 * killed and restarted, or that closes every connection at once (as bitcoind does when its
 * inbound slots are full), bans nobody; bitcoind disconnecting one misbehaving peer while the
 * others stay served still counts.
 *
 * Real implementations: a real regtest litecoind 0.21 (Bitcoin Core 0.21's P2P code) killed with
 * SIGKILL and restarted on the same port, and disconnecting a peer that sends `mempool` with
 * bloom filters off (net_processing.cpp: "mempool request with bloom filters disabled,
 * disconnect peer"; Core's p2p_nobloomfilter_messages.py); our raw P2P test client as peers from
 * distinct 127.0.0.0/8 source addresses. The "closes at once" backend is a plain TCP server that
 * accepts and closes, which is all bitcoind does with a connection it has no slot for (the
 * decision never looks at P2P bytes).
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { P2PClient, loopbackAddress } from '../support/p2p-client.js';
import { startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { sleep, waitFor } from '../support/wait.js';

/** The settle delay of the tracker (1.5 s) plus a margin for a busy CI machine. */
const JUDGED_WITHIN_MS = 15_000;

/** Connect from `from` and complete the version handshake through the proxy. */
async function handshaken(port: number, from: string, clients: P2PClient[]): Promise<P2PClient> {
  const c = await P2PClient.connect(port, { localAddress: from });
  c.socket.on('error', () => {});
  clients.push(c);
  await c.handshake(15_000);
  return c;
}

function judgedTotal(p: TestProxy): number {
  const v = p.proxy.backendDisconnectVerdicts;
  return v.counted + v.outage + v.massClose + v.noSurvivor;
}

test('litecoind killed and restarted 5 times under 12 peers bans nobody; peers are refused with backend_down meanwhile and served again after', { skip: litecoindSkipReason(), timeout: 240_000 }, async (t) => {
  const clients: P2PClient[] = [];
  let ltc: Litecoind | undefined;
  let proxy: TestProxy | undefined;
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await proxy?.close();
    await ltc?.stop();
  });
  ltc = await startLitecoind({ name: 'restart', disableWallet: true });
  // count 2: on the old rule every peer would be banned at the second restart
  proxy = await startTestProxy(ltc.p2pPort, 'bans: { backendDisconnects: { count: 2, window: 10m, duration: 1h } }', { metrics: true });
  const p = proxy;
  const node = ltc;
  const N = 12;
  const ROUNDS = 5;
  const from = (i: number) => loopbackAddress(100 + i);

  for (let round = 0; round < ROUNDS; round++) {
    // out of reach of the last round's failed connects, which would mark this round's closes too
    if (round > 0) await sleep(2000);
    const peers = await Promise.all(Array.from({ length: N }, (_, i) => handshaken(p.port, from(i), clients)));
    await Promise.all(peers.map((c) => c.ping(10_000)));
    await node.kill();
    for (const c of peers) assert.ok(await c.closedWithin(10_000), `round ${round}: the session closes with the backend`);

    // even rounds: while the backend is down, a new peer is refused (no slot held, nothing
    // half-open), and that failed connect marks the outage; odd rounds: nobody connects, the
    // closes are judged by their number alone
    if (round % 2 === 1) {
      await node.restart();
      continue;
    }
    const refusedBefore = await p.metricValue('bhp_connections_refused_total', { reason: 'backend_down' });
    const early = await P2PClient.connect(p.port, { localAddress: from(N) });
    early.socket.on('error', () => {});
    clients.push(early);
    assert.ok(await early.closedWithin(10_000), `round ${round}: a peer is refused while litecoind is down`);
    assert.equal(await p.metricValue('bhp_connections_refused_total', { reason: 'backend_down' }), refusedBefore + 1);
    assert.equal(p.proxy.backendUp, false);

    await node.restart();
  }

  // every candidate is judged, none counted
  await waitFor(() => judgedTotal(p) >= N * ROUNDS, JUDGED_WITHIN_MS, `all ${N * ROUNDS} closes by the backend to be judged`);
  const v = p.proxy.backendDisconnectVerdicts;
  assert.equal(v.counted, 0, `no close was attributed to a peer (${JSON.stringify(v)})`);
  assert.ok(v.outage > 0 && v.massClose > 0, `${JSON.stringify(v)}: ` + 'both signals were seen: failed connects and a mass close');
  t.diagnostic(`verdicts over ${ROUNDS} restarts under ${N} peers: ${JSON.stringify(v)}`);
  assert.equal(p.proxy.bans.size, 0, 'nobody is banned');
  assert.equal(await p.metricValue('bhp_bans_added_total', { reason: 'backend_disconnects' }), 0);

  // and everyone is served again
  const again = await Promise.all(Array.from({ length: N + 1 }, (_, i) => handshaken(p.port, from(i), clients)));
  await Promise.all(again.map((c) => c.ping(10_000)));
  assert.equal(p.proxy.backendUp, true);
});

test('a backend that closes every connection at once bans nobody after 10 connects from one address', { timeout: 60_000 }, async (t) => {
  let accepted = 0;
  const backend = net.createServer((s) => {
    accepted++;
    s.on('error', () => {});
    s.destroy(); // what bitcoind does when no inbound slot is free
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  const clients: P2PClient[] = [];
  let proxy: TestProxy | undefined;
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await proxy?.close();
    await new Promise<void>((r) => backend.close(() => r()));
  });
  proxy = await startTestProxy((backend.address() as net.AddressInfo).port, 'bans: { backendDisconnects: { count: 3, window: 10m, duration: 1h } }');
  const p = proxy;
  const source = loopbackAddress(40);
  // a bystander that is never served either (every backend connection closes)
  for (let i = 0; i < 10; i++) {
    const c = await P2PClient.connect(p.port, { localAddress: source });
    c.socket.on('error', () => {});
    clients.push(c);
    c.send('version', c.versionMessage());
    assert.ok(await c.closedWithin(5000), `connect ${i + 1} is closed`);
  }
  await waitFor(() => accepted >= 10, 5000, 'ten backend connections');
  await sleep(2500); // past the settle delay: a late verdict would show now
  assert.equal(p.proxy.bans.find(source), null, 'not banned');
  assert.equal(p.proxy.bans.size, 0);
  assert.equal(judgedTotal(p), 0, 'a close before the handshake is not even a candidate');
  // the address is still accepted (and closed by the backend again), not refused as banned
  const last = await P2PClient.connect(p.port, { localAddress: source });
  last.socket.on('error', () => {});
  clients.push(last);
  assert.ok(await last.closedWithin(5000));
  await waitFor(() => accepted >= 11, 5000, 'an eleventh backend connection: the peer was not refused');
});

test('litecoind disconnecting one misbehaving peer after its handshake, while others stay served, counts and bans at the threshold', { skip: litecoindSkipReason(), timeout: 120_000 }, async (t) => {
  const clients: P2PClient[] = [];
  let ltc: Litecoind | undefined;
  let proxy: TestProxy | undefined;
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await proxy?.close();
    await ltc?.stop();
  });
  ltc = await startLitecoind({ name: 'misbehave', disableWallet: true });
  proxy = await startTestProxy(ltc.p2pPort, 'bans: { backendDisconnects: { count: 3, window: 10m, duration: 1h } }', { metrics: true });
  const p = proxy;
  const bystanders = await Promise.all([0, 1, 2].map((i) => handshaken(p.port, loopbackAddress(60 + i), clients)));
  const victim = loopbackAddress(70);

  /** Handshake from the victim address, send `mempool`: litecoind (bloom filters off) disconnects it. */
  const misbehave = async () => {
    const c = await handshaken(p.port, victim, clients);
    c.send('mempool', {});
    assert.ok(await c.closedWithin(10_000), 'litecoind disconnects a peer that sends mempool');
  };
  for (let i = 1; i <= 2; i++) {
    await misbehave();
    await waitFor(() => p.proxy.backendDisconnectVerdicts.counted === i, JUDGED_WITHIN_MS, `disconnect ${i} to be counted`);
    assert.equal(p.proxy.bans.find(victim), null, `${i} disconnects are below the count`);
    await Promise.all(bystanders.map((c) => c.ping(10_000)));
  }
  await misbehave();
  const ban = await waitFor(() => p.proxy.bans.find(victim), JUDGED_WITHIN_MS, 'the third attributable disconnect to ban the address');
  assert.equal(ban.subnet, `${victim}/32`);
  assert.match(ban.reason, /bitcoind disconnected it 3 times/);
  assert.ok(ban.until - Date.now() > 59 * 60_000 && ban.until - Date.now() <= 3600_000, 'banned for the configured hour');
  assert.equal(await p.metricValue('bhp_bans_added_total', { reason: 'backend_disconnects' }), 1);
  const v = p.proxy.backendDisconnectVerdicts;
  assert.equal(v.counted, 3, JSON.stringify(v));

  // the others were never touched and are still served; the banned address is refused at accept
  for (const c of bystanders) assert.equal(c.isClosed, false);
  await Promise.all(bystanders.map((c) => c.ping(10_000)));
  const again = await P2PClient.connect(p.port, { localAddress: victim });
  again.socket.on('error', () => {});
  clients.push(again);
  assert.ok(await again.closedWithin(5000), 'the banned address is refused');
  assert.equal(await p.metricValue('bhp_connections_refused_total', { reason: 'banned' }), 1);
  assert.equal(p.proxy.bans.size, 1, 'only the misbehaving address is banned');
});
