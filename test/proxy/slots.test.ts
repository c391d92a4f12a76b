/**
 * Slots under attack: peers that never finish their handshake (slow, or trickling bytes) cannot
 * keep a well-behaved peer out, because when every slot is taken the proxy evicts as bitcoind
 * does, handshaking peers first; and connect/close churn is refused by the per-address and
 * per-subnet connection rate before it reaches bitcoind.
 *
 * Real implementations: a real regtest litecoind 0.21 (Bitcoin Core 0.21's P2P code) behind the
 * proxy; attackers and well-behaved peers are our raw P2P test client and plain sockets bound to
 * distinct 127.0.0.0/8 source addresses (Linux routes all of 127/8 to loopback), so the proxy
 * sees distinct addresses, /24s and /16 netgroups. Backend connections are counted by a TCP relay
 * in front of litecoind (test/support/tcp-recorder.ts), which sees every connection the proxy
 * opens to the node.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { buildFrame, NETWORKS } from '../../src/codec/index.js';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { TcpRecorder } from '../support/tcp-recorder.js';
import { sleep, waitFor } from '../support/wait.js';

/** Attacker `i` of `groups` /16 netgroups: 127.(10 + g).(k).(n) */
function attackerAddress(i: number, groups: number): string {
  const g = i % groups;
  const n = Math.floor(i / groups);
  return `127.${10 + g}.${Math.floor(n / 200)}.${(n % 200) + 2}`;
}

/** A well-behaved peer's source address, in a netgroup of its own. */
const goodAddress = (n: number) => `127.${100 + n}.0.2`;

/** The first bytes of a real version frame: enough to look like v1, never enough to finish. */
const VERSION_FRAME = buildFrame(NETWORKS.regtest, 'version', {
  version: 70016,
  services: 0x409n,
  timestamp: 1_700_000_000n,
  addrRecv: { services: 0n, ip: Buffer.alloc(16), port: 0 },
  addrFrom: { services: 0n, ip: Buffer.alloc(16), port: 0 },
  nonce: 42n,
  userAgent: '/slowloris:0.1/',
  startHeight: 0,
  relay: true,
}).raw;

/**
 * Peers that hold a slot without finishing the handshake and reconnect when closed (bounded by
 * `maxConnects`). `trickleMs`: send one more byte of the version frame every so often (slowloris);
 * 0: send the first 30 bytes once and go quiet (a slow handshaker).
 */
class Swarm {
  readonly sockets = new Set<net.Socket>();
  connects = 0;
  closedByProxy = 0;
  #stopped = false;
  #timer: NodeJS.Timeout | null = null;
  readonly #sent = new WeakMap<net.Socket, number>();

  constructor(
    readonly port: number,
    readonly addresses: string[],
    readonly trickleMs: number,
    readonly maxConnects: number,
  ) {}

  async start(): Promise<void> {
    await Promise.all(this.addresses.map((a) => this.#open(a)));
    if (this.trickleMs > 0) {
      this.#timer = setInterval(() => {
        for (const s of this.sockets) {
          const sent = this.#sent.get(s) ?? 0;
          if (sent >= VERSION_FRAME.length - 1) continue; // never the last byte
          s.write(VERSION_FRAME.subarray(sent, sent + 1));
          this.#sent.set(s, sent + 1);
        }
      }, this.trickleMs);
    }
  }

  #open(localAddress: string): Promise<void> {
    if (this.#stopped || this.connects >= this.maxConnects) return Promise.resolve();
    this.connects++;
    return new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: this.port, localAddress });
      s.on('error', () => {});
      s.on('data', () => {});
      s.once('connect', () => {
        this.sockets.add(s);
        const first = this.trickleMs > 0 ? 4 : 30;
        s.write(VERSION_FRAME.subarray(0, first));
        this.#sent.set(s, first);
        resolve();
      });
      s.once('close', () => {
        resolve();
        if (!this.sockets.delete(s) || this.#stopped) return;
        this.closedByProxy++;
        setTimeout(() => void this.#open(localAddress), 20); // come straight back, as an attacker would
      });
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}

async function goodPeer(port: number, n: number, clients: P2PClient[]): Promise<P2PClient> {
  const c = await P2PClient.connect(port, { localAddress: goodAddress(n), userAgent: `/well-behaved-${n}:1.0/` });
  c.socket.on('error', () => {});
  clients.push(c);
  await c.handshake(15_000);
  return c;
}

interface Rig {
  ltc: Litecoind;
  relay: TcpRecorder;
  proxy: TestProxy;
  clients: P2PClient[];
}

/** litecoind, a counting relay in front of it, and the proxy pointed at the relay. */
async function rig(t: { after(fn: () => Promise<void>): void }, yaml: string): Promise<Rig> {
  const clients: P2PClient[] = [];
  const parts: Partial<Rig> = { clients };
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await parts.proxy?.close();
    await parts.relay?.close();
    await parts.ltc?.stop();
  });
  // room for the proxy's peers plus sessions still closing: bitcoind must not evict on its own
  parts.ltc = await startLitecoind({ name: 'slots', disableWallet: true, extraArgs: ['-maxconnections=400'] });
  parts.relay = await TcpRecorder.start('127.0.0.1', parts.ltc.p2pPort);
  parts.proxy = await startTestProxy(parts.relay.port, yaml, { metrics: true });
  return parts as Rig;
}

test('99 slow handshaking peers from 7 netgroups holding every slot do not keep new well-behaved peers out', { skip: litecoindSkipReason(), timeout: 120_000 }, async (t) => {
  const { proxy: p, clients } = await rig(t, 'limits: { maxPeers: 99 }');
  const swarm = new Swarm(p.port, Array.from({ length: 99 }, (_, i) => attackerAddress(i, 7)), 0, 600);
  t.after(() => swarm.stop());
  await swarm.start();
  await waitFor(() => p.proxy.sessions().length === 99, 15_000, 'the slow peers to hold all 99 slots');
  assert.ok(p.proxy.sessions().every((s) => !s.info.handshakeComplete));

  // a new peer gets in (one handshaking attacker is evicted) and is served while attackers come back
  const first = await goodPeer(p.port, 1, clients);
  await first.ping();
  const second = await goodPeer(p.port, 2, clients);
  for (let i = 0; i < 10; i++) {
    await Promise.all([first.ping(10_000), second.ping(10_000)]);
    await sleep(100);
  }
  assert.ok(swarm.closedByProxy >= 2, `attackers were evicted (${swarm.closedByProxy})`);
  assert.equal(first.isClosed || second.isClosed, false, 'the well-behaved peers are never evicted');
  assert.ok((await p.metricValue('bhp_connections_closed_total', { reason: 'evicted' })) >= 2);
  const sessions = p.proxy.sessions();
  assert.ok(sessions.length <= 99, `never more than maxPeers sessions (${sessions.length})`);
  const good = sessions.filter((s) => s.info.handshakeComplete).map((s) => s.address).sort();
  assert.deepEqual(good, [goodAddress(1), goodAddress(2)]);
  t.diagnostic(`attacker connects: ${swarm.connects}, evicted: ${await p.metricValue('bhp_connections_closed_total', { reason: 'evicted' })}`);
});

test('60 established peers from 3 netgroups holding every slot: a peer from another netgroup gets in and stays while they reconnect', { skip: litecoindSkipReason(), timeout: 120_000 }, async (t) => {
  const { proxy: p, clients } = await rig(t, 'limits: { maxPeers: 60 }');
  let stopped = false;
  let reconnects = 0;
  /** An attacker that completes its handshake and, when evicted, comes straight back. */
  const attacker = async (address: string): Promise<void> => {
    while (!stopped && reconnects < 300) {
      const c = await P2PClient.connect(p.port, { localAddress: address }).catch(() => null);
      if (!c) return;
      c.socket.on('error', () => {});
      clients.push(c);
      await c.handshake(15_000).catch(() => {});
      await c.closed;
      if (!stopped) reconnects++;
    }
  };
  // 3 netgroups (/16) of 20, spread over /24s so that maxPeersPerSubnet (16 per /24) lets all in
  const addresses = Array.from({ length: 60 }, (_, i) => `127.${10 + (i % 3)}.${Math.floor(i / 3) % 4}.${i + 2}`);
  const running = addresses.map((a) => attacker(a));
  await waitFor(() => p.proxy.sessions().filter((s) => s.info.handshakeComplete).length === 60, 30_000, '60 established attackers');

  const honest = await goodPeer(p.port, 1, clients).catch((err: Error) => {
    throw new Error(`${err.message}; proxy said: ${JSON.stringify(p.logs.filter((l) => String(l.peer).startsWith(goodAddress(1))).slice(-5))}`);
  });
  for (let i = 0; i < 10; i++) {
    await honest.ping(10_000);
    await sleep(200);
  }
  stopped = true;
  assert.equal(honest.isClosed, false, 'the peer from its own netgroup is never the one evicted');
  assert.ok(reconnects >= 1, 'an attacker was evicted to let it in');
  const evicted = p.logs.filter((l) => l.msg === 'evicted to make room for a new peer').map((l) => String(l.peer));
  assert.ok(evicted.length >= 1);
  assert.ok(evicted.every((peer) => !peer.startsWith(`${goodAddress(1)}:`)), 'only attackers were evicted');
  t.diagnostic(`evicted: ${evicted.length}, attacker reconnects: ${reconnects}`);
  for (const c of clients) c.socket.destroy();
  await Promise.all(running);
});

test('slowloris: 300 peers trickling a version byte by byte, a well-behaved peer served throughout and a new one let in', { skip: litecoindSkipReason(), timeout: 120_000 }, async (t) => {
  const { proxy: p, clients } = await rig(t, 'limits: { maxPeers: 100 }');
  const before = await goodPeer(p.port, 1, clients);
  const swarm = new Swarm(p.port, Array.from({ length: 300 }, (_, i) => attackerAddress(i, 30)), 150, 1500);
  t.after(() => swarm.stop());
  await swarm.start();
  await waitFor(() => p.proxy.sessions().length >= 100, 15_000, 'the tricklers to fill every slot');

  let pings = 0;
  const until = Date.now() + 6000;
  let late: P2PClient | null = null;
  while (Date.now() < until) {
    await before.ping(10_000);
    pings++;
    if (!late && pings === 5) late = await goodPeer(p.port, 2, clients);
    if (late) await late.ping(10_000);
    await sleep(200);
  }
  assert.ok(late, 'the late peer got in');
  assert.equal(before.isClosed, false, 'the peer that was there before is served throughout');
  assert.equal(late.isClosed, false);
  assert.ok(pings >= 5);
  assert.ok(p.proxy.sessions().length <= 100);
  assert.ok(swarm.closedByProxy > 0, 'tricklers were evicted to make room');
  t.diagnostic(`pings answered: ${pings}, trickler connects: ${swarm.connects}, evicted: ${await p.metricValue('bhp_connections_closed_total', { reason: 'evicted' })}`);
});

test('connection churn: 3,000 connect/close cycles open far fewer backend connections; a well-behaved peer is served throughout', { skip: litecoindSkipReason(), timeout: 120_000 }, async (t) => {
  const { proxy: p, relay, clients } = await rig(t, '');
  const good = await goodPeer(p.port, 1, clients);
  const backendBefore = relay.connections.length;
  const CYCLES = Number(process.env.BHP_CHURN_CYCLES ?? 3000); // the long version: BHP_CHURN_CYCLES=5000
  const sources = ['127.20.0.2', '127.20.0.3', '127.20.0.4'];
  let done = 0;
  let refused: number;
  const cycle = (i: number) =>
    new Promise<void>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: p.port, localAddress: sources[i % sources.length]! });
      s.on('error', () => {});
      s.once('connect', () => s.destroy());
      s.once('close', () => resolve());
    });
  const workers = Array.from({ length: 20 }, async (_, w) => {
    for (let i = w; i < CYCLES; i += 20) {
      await cycle(i);
      done++;
    }
  });
  const pinging = (async () => {
    let n = 0;
    while (done < CYCLES) {
      await good.ping(10_000);
      n++;
      await sleep(50);
    }
    return n;
  })();
  await Promise.all(workers);
  const pings = await pinging;
  // the proxy may still be accepting the last closed sockets: wait until every cycle is accounted for
  const accounted = async () =>
    relay.connections.length - backendBefore + (await p.metricValue('bhp_connections_refused_total', { reason: 'rate_limited' })) + (await p.metricValue('bhp_connections_refused_total', { reason: 'max_per_address' }));
  await waitFor(async () => (await accounted()) >= CYCLES, 10_000, 'every cycle to be refused or relayed').catch(() => {});
  refused = await p.metricValue('bhp_connections_refused_total', { reason: 'rate_limited' });
  // 20 cycles at a time from 3 addresses: some may find their address's 4 slots taken instead
  const perAddress = await p.metricValue('bhp_connections_refused_total', { reason: 'max_per_address' });
  const opened = relay.connections.length - backendBefore;
  t.diagnostic(`cycles: ${CYCLES}, backend connections: ${opened}, refused rate_limited: ${refused}, max_per_address: ${perAddress}, pings answered meanwhile: ${pings}`);
  assert.ok(opened < CYCLES / 10, `${opened} backend connections for ${CYCLES} cycles`);
  assert.ok(refused > CYCLES / 2, `most were refused as rate_limited (${refused})`);
  assert.equal(refused + perAddress + opened, CYCLES, 'every cycle was either refused at accept or opened one backend connection');
  assert.equal(good.isClosed, false);
  await good.ping();

  // the limit is per address and per subnet: a new address elsewhere is not affected
  const other = await goodPeer(p.port, 2, clients);
  await other.ping();
});
