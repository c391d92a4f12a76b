/**
 * Bad input against the running proxy, while a well-behaved peer is connected through the same
 * proxy and must be served throughout.
 *
 * Real implementations: the backend is a real regtest litecoind (Bitcoin Core 0.21 P2P code,
 * Bitcoin's regtest magic); the well-behaved peers are a second real litecoind started with
 * -connect=PROXY (it syncs the chain through the proxy and keeps following it) and our raw P2P
 * client (test/support/p2p-client.ts, built on our codec) pinging every 200 ms. The attackers
 * are raw sockets and our P2P client, each from its own 127.0.0.x source address.
 *
 * The v2 passthrough test at the end uses a plain net server as the backend, to capture the
 * raw bytes: no BIP324-capable implementation is available here.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { NETWORKS, buildFrame, encodeFrame, hashFromHex, type Frame } from '../../src/codec/index.js';
import type { PeerSession } from '../../src/proxy/peer-session.js';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { P2PClient, badChecksumFrame, headerDeclaring, loopbackAddress } from '../support/p2p-client.js';
import { collectUntilClosed, startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { sleep, waitFor } from '../support/wait.js';

const skip = litecoindSkipReason();
const regtest = NETWORKS.regtest;
const SEND_BUFFER = 256 * 1024;
const HANDSHAKE_TIMEOUT_MS = 2000;

/** The session the proxy runs for the client connected from local port `port`. */
function sessionOf(proxy: TestProxy, port: number): PeerSession | undefined {
  return proxy.proxy.sessions().find((s) => s.info.port === port);
}

/** Open a raw socket from `localAddress` to the proxy. */
function rawConnect(port: number, localAddress: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Pings through the proxy every 200 ms and remembers every failure. */
class Pinger {
  pongs = 0;
  failures: string[] = [];
  #stop = false;
  #loop: Promise<void>;
  constructor(readonly client: P2PClient) {
    this.#loop = (async () => {
      while (!this.#stop) {
        try {
          await client.ping(3000);
          this.pongs++;
        } catch (err) {
          if (!this.#stop) this.failures.push((err as Error).message);
        }
        await sleep(200);
      }
    })();
  }
  async stop(): Promise<void> {
    this.#stop = true;
    await this.#loop;
  }
}

test('bad input against one proxy in front of litecoind; a well-behaved peer is served throughout', { skip, timeout: 120_000 }, async (t) => {
  const nodes: Litecoind[] = [];
  const clients: P2PClient[] = [];
  const sockets: net.Socket[] = [];
  let proxy: TestProxy | undefined;
  let pinger: Pinger | undefined;
  t.after(async () => {
    await pinger?.stop();
    for (const s of sockets) s.destroy();
    await Promise.all(clients.map((c) => c.close()));
    await proxy?.close();
    await Promise.all(nodes.map((n) => n.stop()));
  });

  let a = await startLitecoind({ name: 'A', disableWallet: false });
  nodes.push(a);
  // ~400 blocks: a getheaders answer is then ~32 KB (the never-reading peer needs a big answer);
  // litecoin regtest cannot mine past height 431 here (MWEB activation needs a HogEx tx)
  await a.generate(400);
  proxy = await startTestProxy(
    a.p2pPort,
    [
      'checksum: always',
      'v2: reject', // the v1 rules for openings that are not v1's prefix; v2: terminate has its own tests (v2-bad-input)
      'limits:',
      '  maxPeers: 5000',
      '  maxPeersPerAddress: 4',
      '  maxPeersPerSubnet: 5000',
      `  handshakeTimeout: ${HANDSHAKE_TIMEOUT_MS}ms`,
      `  sendBuffer: ${SEND_BUFFER}`,
      'bans: { backendDisconnects: { count: 0 } }',
    ].join('\n'),
  );
  const p = proxy;
  const b = await startLitecoind({ name: 'B', disableWallet: true, extraArgs: [`-connect=127.0.0.1:${p.port}`] });
  nodes.push(b);
  await b.waitForHeight(400, 30_000);

  const good = await P2PClient.connect(p.port, { userAgent: '/well-behaved:1.0/' });
  clients.push(good);
  await good.handshake();
  pinger = new Pinger(good);
  let nextPeer = 0;
  const attacker = async (): Promise<P2PClient> => {
    const c = await P2PClient.connect(p.port, { localAddress: loopbackAddress(nextPeer++) });
    clients.push(c);
    return c;
  };
  /** After each case: the good peer is still connected and answered, and B follows a new block. */
  const stillServed = async (): Promise<void> => {
    const before = pinger!.pongs;
    await waitFor(() => pinger!.pongs >= before + 2, 10_000, 'two more pongs for the well-behaved peer');
    assert.equal(good.isClosed, false, 'the well-behaved raw peer is still connected');
    assert.deepEqual(pinger!.failures, [], 'no ping of the well-behaved peer failed');
    const [hash] = await a.generate(1);
    await waitFor(async () => (await b.getBestBlockHash()) === hash, 15_000, 'litecoind B to sync the new block through the proxy');
  };
  const metric = (name: string, labels: Record<string, string> = {}) => p.metricValue(name, labels);

  await t.test('wrong magic as the first bytes: the header goes to litecoind (as it would directly), then closed, counted BAD_MAGIC', async () => {
    const before = await metric('bhp_protocol_errors_total', { code: 'BAD_MAGIC' });
    const closedBefore = await metric('bhp_connections_closed_total', { reason: 'protocol_error' });
    const c = await attacker();
    c.sendRaw(buildFrame(NETWORKS.mainnet, 'version', c.versionMessage()).raw);
    assert.ok(await c.closedWithin(2000), 'closed within 2 s');
    assert.equal(await metric('bhp_protocol_errors_total', { code: 'BAD_MAGIC' }), before + 1);
    assert.equal(await metric('bhp_connections_closed_total', { reason: 'protocol_error' }), closedBefore + 1);
    await stillServed();
  });

  await t.test('wrong magic after the handshake: closed, counted BAD_MAGIC', async () => {
    const before = await metric('bhp_protocol_errors_total', { code: 'BAD_MAGIC' });
    const closedBefore = await metric('bhp_connections_closed_total', { reason: 'protocol_error' });
    const c = await attacker();
    await c.handshake();
    c.sendRaw(encodeFrame(NETWORKS.mainnet, 'ping', Buffer.alloc(8)).raw);
    assert.ok(await c.closedWithin(2000), 'closed within 2 s');
    assert.equal(await metric('bhp_protocol_errors_total', { code: 'BAD_MAGIC' }), before + 1);
    assert.equal(await metric('bhp_connections_closed_total', { reason: 'protocol_error' }), closedBefore + 1);
    await stillServed();
  });

  await t.test('bad checksum after the handshake: frame dropped before litecoind, connection kept, counted BAD_CHECKSUM', async () => {
    const before = await metric('bhp_protocol_errors_total', { code: 'BAD_CHECKSUM' });
    const c = await attacker();
    await c.handshake();
    const session = await waitFor(() => sessionOf(p, c.socket.localPort!), 2000, 'the session');
    const ltcPeer = () => a.getPeerInfo().then((ps) => ps.find((x) => x.addr === `127.0.0.1:${session.info.backendLocalPort}`));
    const badNonce = Buffer.alloc(8, 0xab);
    const from = c.frames.length;
    c.sendRaw(badChecksumFrame(regtest, 'ping', badNonce));
    await c.ping(); // a good ping after the bad one is answered: the connection is kept
    assert.equal(c.isClosed, false);
    assert.equal(
      c.frames.slice(from).some((f: Frame) => f.command === 'pong' && f.payload.equals(badNonce)),
      false,
      'the bad ping got no pong',
    );
    assert.equal(await metric('bhp_protocol_errors_total', { code: 'BAD_CHECKSUM' }), before + 1);
    // litecoind counts a frame with a bad checksum under *other*: it never saw one
    const peer = await ltcPeer();
    assert.ok(peer, 'litecoind lists the session by its backend local port');
    assert.equal(peer.bytesrecv_per_msg['*other*'] ?? 0, 0, 'litecoind received no bad-checksum frame');
    assert.ok((peer.bytesrecv_per_msg.ping ?? 0) > 0, 'litecoind received the good ping');
    await c.close();
    await stillServed();
  });

  await t.test('oversized length (4,000,001 at open; 0xffffffff after handshake): closed, counted OVERSIZED', async () => {
    const before = await metric('bhp_protocol_errors_total', { code: 'OVERSIZED' });
    const c1 = await attacker();
    c1.sendRaw(headerDeclaring(regtest, 'version', 4_000_001));
    assert.ok(await c1.closedWithin(2000), 'closed within 2 s (4,000,001)');
    const c2 = await attacker();
    await c2.handshake();
    c2.sendRaw(headerDeclaring(regtest, 'block', 0xffffffff));
    assert.ok(await c2.closedWithin(2000), 'closed within 2 s (0xffffffff)');
    assert.equal(await metric('bhp_protocol_errors_total', { code: 'OVERSIZED' }), before + 2);
    await stillServed();
  });

  await t.test('garbage: its first 24 bytes go to litecoind as a header with a wrong magic, then closed (v2 policy reject)', async () => {
    const before = await metric('bhp_protocol_errors_total', { code: 'BAD_MAGIC' });
    const s = await rawConnect(p.port, loopbackAddress(nextPeer++));
    sockets.push(s);
    const done = collectUntilClosed(s);
    const garbage = Buffer.alloc(64, 0x5a);
    s.write(garbage);
    const started = Date.now();
    const { data } = await done;
    assert.ok(Date.now() - started < 2000, 'closed within 2 s');
    assert.equal(data.length, 0, 'nothing came back (no version from litecoind)');
    assert.equal(await metric('bhp_protocol_errors_total', { code: 'BAD_MAGIC' }), before + 1);
    await stillServed();
  });

  await t.test('slowloris (1 byte per second): closed by the handshake timeout', async () => {
    const before = await metric('bhp_connections_closed_total', { reason: 'handshake_timeout' });
    const s = await rawConnect(p.port, loopbackAddress(nextPeer++));
    sockets.push(s);
    const done = collectUntilClosed(s);
    const bytes = Buffer.from(encodeFrame(regtest, 'verack').raw);
    const started = Date.now();
    let i = 0;
    const dribble = setInterval(() => {
      if (!s.destroyed && i < bytes.length) s.write(bytes.subarray(i, ++i));
    }, 1000);
    try {
      await done;
    } finally {
      clearInterval(dribble);
    }
    const took = Date.now() - started;
    assert.ok(took >= HANDSHAKE_TIMEOUT_MS - 200 && took < HANDSHAKE_TIMEOUT_MS + 1500, `closed after ${took} ms`);
    assert.equal(await metric('bhp_connections_closed_total', { reason: 'handshake_timeout' }), before + 1);
    await stillServed();
  });

  await t.test('a peer that never reads while asking for ~20 MB: the proxy stops reading from litecoind, memory stays bounded', async () => {
    const c = await attacker();
    await c.handshake();
    const session = await waitFor(() => sessionOf(p, c.socket.localPort!), 2000, 'the session');
    c.socket.pause(); // from now on this peer reads nothing
    const genesis = hashFromHex(await a.getBlockHash(0));
    let maxQueued = 0;
    let pausedSeen = false;
    const watch = setInterval(() => {
      maxQueued = Math.max(maxQueued, session.peer.writableLength);
      if (session.backend.isPaused()) pausedSeen = true;
    }, 2);
    try {
      // each answer is 400 headers (~32 KB); 650 of them is ~21 MB
      for (let i = 0; i < 650; i++) c.send('getheaders', { version: 70016, locator: [genesis], hashStop: Buffer.alloc(32) });
      // until the proxy pauses the backend, or the queue toward the peer has clearly outgrown its bound
      await waitFor(() => pausedSeen || maxQueued >= SEND_BUFFER + 128 * 1024, 20_000, 'backpressure or an unbounded queue');
      // stay stuck a while: the queue must not grow
      await sleep(1000);
      maxQueued = Math.max(maxQueued, session.peer.writableLength);
    } finally {
      clearInterval(watch);
    }
    assert.ok(pausedSeen, 'the proxy paused its reads from litecoind for this session');
    assert.equal(session.closed, false, 'the session is still open (slow is not a crime)');
    assert.ok(maxQueued >= SEND_BUFFER, `queued toward the peer reached the send buffer (${maxQueued})`);
    assert.ok(maxQueued < SEND_BUFFER + 128 * 1024, `queued toward the peer stayed below sendBuffer + 128 KiB (${maxQueued})`);
    await stillServed();
    await c.close();
  });

  await t.test('1,000 connections from one address: all but maxPeersPerAddress refused, no backend connection for them', async () => {
    const source = loopbackAddress(nextPeer++);
    const before = await metric('bhp_connections_refused_total', { reason: 'max_per_address' });
    const ltcBefore = (await a.getPeerInfo()).length;
    // every socket opens with version + verack, so the accepted ones finish their handshake and
    // are not closed by the handshake timeout (which would free a slot for a later one)
    const flood: P2PClient[] = [];
    try {
      for (let batch = 0; batch < 10; batch++) {
        const opened = await Promise.all(
          Array.from({ length: 100 }, () => P2PClient.connect(p.port, { localAddress: source }).catch(() => null)),
        );
        for (const c of opened) {
          if (!c) continue;
          flood.push(c);
          c.socket.on('error', () => {});
          c.send('version', c.versionMessage());
          c.send('verack', {});
        }
      }
      assert.equal(flood.length, 1000, 'every TCP connect succeeded (refusal is a close after accept)');
      await waitFor(async () => (await metric('bhp_connections_refused_total', { reason: 'max_per_address' })) === before + 996, 10_000, '996 refusals');
      await waitFor(() => flood.filter((c) => c.isClosed).length === 996, 10_000, '996 flood sockets closed');
      const open = flood.filter((c) => !c.isClosed);
      assert.equal(open.length, 4);
      await Promise.all(open.map((c) => c.waitFor('verack', 5000)));
      assert.equal(p.proxy.sessions().filter((s) => s.address === source).length, 4, 'four sessions from the flooding address');
      const ltcPeers = (await a.getPeerInfo()).length;
      assert.ok(ltcPeers <= ltcBefore + 4, `litecoind has ${ltcPeers} peers, at most ${ltcBefore} + 4`);
      await stillServed();
    } finally {
      await Promise.all(flood.map((c) => c.close()));
    }
    await waitFor(async () => (await a.getPeerInfo()).length <= ltcBefore, 2000, 'litecoind to lose the four flood sessions');
  });

  await t.test('when the peer closes, litecoind sees its connection go within 1 s', async () => {
    const c = await attacker();
    await c.handshake();
    const session = await waitFor(() => sessionOf(p, c.socket.localPort!), 2000, 'the session');
    const addr = `127.0.0.1:${session.info.backendLocalPort}`;
    assert.ok((await a.getPeerInfo()).some((x) => x.addr === addr), 'litecoind lists the session');
    const started = Date.now();
    await c.close();
    await waitFor(async () => !(await a.getPeerInfo()).some((x) => x.addr === addr), 1000, `litecoind to drop ${addr}`, { intervalMs: 20 });
    assert.ok(Date.now() - started < 1000);
  });

  await t.test('litecoind dies mid-session: the peer is closed, new peers refused (backend_down), the proxy serves again when it is back', async () => {
    await pinger!.stop();
    const refusedBefore = await metric('bhp_connections_refused_total', { reason: 'backend_down' });
    const sessionsBefore = p.proxy.sessions().length;
    const backendClosesBefore = await Promise.all(['backend_closed', 'backend_error'].map((reason) => metric('bhp_connections_closed_total', { reason })));
    assert.ok(sessionsBefore >= 2, 'the raw peer and litecoind B are connected');
    const port = a.p2pPort;
    const stopped = a.stop();
    assert.ok(await good.closedWithin(5000), 'the well-behaved peer was closed when its backend went away');
    await stopped;
    const reasons = await Promise.all(['backend_closed', 'backend_error'].map((reason) => metric('bhp_connections_closed_total', { reason })));
    const closedByBackend = reasons[0]! + reasons[1]! - backendClosesBefore[0]! - backendClosesBefore[1]!;
    assert.ok(closedByBackend >= sessionsBefore, `${closedByBackend} of ${sessionsBefore} sessions closed as backend_closed/backend_error`);
    assert.ok(
      p.logs.some((l) => l.reason === 'backend_closed' || l.reason === 'backend_error'),
      'the close reason is logged',
    );

    const c = await attacker();
    assert.ok(await c.closedWithin(3000), 'a new peer is refused while the backend is down');
    assert.ok((await metric('bhp_connections_refused_total', { reason: 'backend_down' })) >= refusedBefore + 1);
    assert.ok(p.logs.some((l) => /backend unreachable/.test(l.msg)), 'a clear log line says the backend is unreachable');
    assert.equal(p.proxy.backendUp, false);

    // a litecoind on the same port again: the proxy serves at once
    a = await startLitecoind({ name: 'A2', disableWallet: true, extraArgs: [`-bind=127.0.0.1:${port}`] });
    nodes.push(a);
    const again = await P2PClient.connect(p.port, { userAgent: '/well-behaved:1.0/' });
    clients.push(again);
    const theirVersion = await again.handshake();
    assert.match(theirVersion.userAgent ?? '', /LitecoinCore/);
    await again.ping();
    assert.equal(p.proxy.backendUp, true);
    assert.ok(p.logs.some((l) => /backend reachable again/.test(l.msg)));
  });
});

test('v2 policy passthrough: a non-v1 opening is piped raw both ways, hooks bypassed, counted', { timeout: 20_000 }, async (t) => {
  // Backend: a plain net server that records every byte and answers with fixed bytes, because
  // no BIP324-capable implementation is available here; the point is that the proxy passes
  // the bytes through unchanged in both directions.
  const received: Buffer[] = [];
  const answer = Buffer.from('c0ffee'.repeat(100), 'hex');
  const backendSockets: net.Socket[] = [];
  const backend = net.createServer((s) => {
    backendSockets.push(s);
    s.on('data', (c: Buffer) => {
      received.push(Buffer.from(c));
      if (received.length === 1) s.write(answer);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  const backendPort = (backend.address() as net.AddressInfo).port;
  const proxy = await startTestProxy(backendPort, 'v2: passthrough');
  let peer: net.Socket | undefined;
  t.after(async () => {
    peer?.destroy();
    for (const s of backendSockets) s.destroy();
    await proxy.close();
    await new Promise<void>((r) => backend.close(() => r()));
  });
  // 64 bytes that could be a BIP324 ellswift key (not magic + "version"), then more
  const opening = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff));
  const more = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 13) & 0xff));
  peer = await rawConnect(proxy.port, '127.0.0.1');
  const fromBackend: Buffer[] = [];
  peer.on('data', (c: Buffer) => fromBackend.push(c));
  // in two writes, the first shorter than the 16 bytes detection needs
  peer.write(opening.subarray(0, 7));
  await sleep(50);
  peer.write(Buffer.concat([opening.subarray(7), more]));
  const expected = Buffer.concat([opening, more]);
  await waitFor(() => Buffer.concat(received).length >= expected.length, 5000, 'the backend to receive every byte');
  assert.ok(Buffer.concat(received).equals(expected), 'the backend got the bytes unchanged and in order');
  await waitFor(() => Buffer.concat(fromBackend).length >= answer.length, 5000, 'the peer to receive the answer');
  assert.ok(Buffer.concat(fromBackend).equals(answer), 'the peer got the backend bytes unchanged');
  assert.equal(await proxy.metricValue('bhp_v2_passthrough_total'), 1);
  assert.equal(await proxy.metricValue('bhp_protocol_errors_total'), 0, 'no frame parsing on a passthrough session');
  assert.equal(proxy.proxy.sessions()[0]?.info.transport, 'v2-passthrough');
});

test('v2 policy reject: no detection; the backend gets what bitcoind would read, a wrong magic ends the connection after its header', { timeout: 20_000 }, async (t) => {
  // Backend: a plain net server that records bytes, to see exactly what the proxy passed on.
  const received = new Map<number, Buffer[]>();
  const backendSockets: net.Socket[] = [];
  const backend = net.createServer((s) => {
    backendSockets.push(s);
    const mine: Buffer[] = [];
    received.set(backendSockets.length - 1, mine);
    s.on('data', (c: Buffer) => mine.push(c));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  const proxy = await startTestProxy((backend.address() as net.AddressInfo).port, 'v2: reject');
  t.after(async () => {
    for (const s of backendSockets) s.destroy();
    await proxy.close();
    await new Promise<void>((r) => backend.close(() => r()));
  });
  // magic + "version\0\0\0\0\x01": not v1's 16-byte prefix (bitcoind with v2 would take it for
  // v2), but the proxy offers no v2: it is a v1 frame whose command field is invalid
  const almost = Buffer.from(encodeFrame(regtest, 'version', Buffer.alloc(100)).raw);
  almost[15] = 0x01;
  const peer = await rawConnect(proxy.port, '127.0.0.1');
  peer.write(almost);
  await waitFor(() => Buffer.concat(received.get(0) ?? []).length >= almost.length, 5000, 'the backend to receive the frame');
  assert.ok(Buffer.concat(received.get(0)!).equals(almost), 'the frame went on unchanged, for bitcoind to drop');
  assert.equal(peer.destroyed, false, 'the connection stays');
  assert.equal(await proxy.metricValue('bhp_protocol_errors_total', { code: 'BAD_COMMAND' }), 1);
  peer.destroy();

  // bytes that are not the magic: what a BIP324 peer sends first; bitcoind without v2 reads a header and disconnects
  const ellswiftLike = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff));
  const second = await rawConnect(proxy.port, '127.0.0.1');
  const done = collectUntilClosed(second);
  second.write(ellswiftLike);
  await done;
  await waitFor(() => received.has(1) && Buffer.concat(received.get(1)!).length >= 24, 5000, 'the backend to receive the header');
  await sleep(100);
  assert.ok(Buffer.concat(received.get(1)!).equals(ellswiftLike.subarray(0, 24)), 'exactly the 24 bytes bitcoind reads as a header');
  assert.equal(await proxy.metricValue('bhp_protocol_errors_total', { code: 'BAD_MAGIC' }), 1);
  assert.equal(await proxy.metricValue('bhp_connections_closed_total', { reason: 'protocol_error' }), 1);
});
