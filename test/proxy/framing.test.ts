/**
 * bitcoind's framing rules, judged by bitcoind itself: each odd stream is sent once straight to
 * a node and once through the proxy, and the node must see the same thing both times: its
 * getpeerinfo byte counters (bytesrecv, bytesrecv_per_msg), whether it keeps the peer, and the
 * lines its net log writes about the peer (HEADER ERROR, received:, disconnecting).
 *
 * Real implementation: litecoind 0.21 from Debian (Bitcoin Core 0.21's net.cpp and
 * net_processing.cpp; Bitcoin's regtest magic), started with -debug=net. The streams are raw
 * bytes from our test P2P client (test/support/p2p-client.ts); the async hook is a test fixture
 * (test/hooks/fixtures/gate.ts).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { NETWORKS, encodeFrame } from '../../src/codec/index.js';
import { fixtureState } from '../hooks/fixtures/state.js';
import { fixture, hooksYaml } from '../hooks/support.js';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { P2PClient, headerDeclaring } from '../support/p2p-client.js';
import { startTestProxy, type TestProxy } from '../support/proxy-harness.js';
import { sleep, waitFor } from '../support/wait.js';

const skip = litecoindSkipReason();
const regtest = NETWORKS.regtest;

/** What the node saw of one connection, with everything that legitimately differs removed. */
interface Seen {
  kept: boolean;
  bytesrecv: number | null;
  bytesrecvPerMsg: Record<string, number> | null;
  log: string[];
}

interface Case {
  name: string;
  /** version + verack first (the node's answers are read, not compared) */
  handshake: boolean;
  bytes: () => Buffer;
  /** the node drops the peer */
  disconnects: boolean;
  /** what the proxy counts in bhp_protocol_errors_total */
  code: string | null;
  /** a line of the node's log for this peer that must appear both ways */
  logLine: RegExp;
}

function pingBadCommand(): Buffer {
  const raw = Buffer.from(encodeFrame(regtest, 'ping', Buffer.alloc(8, 0x11)).raw);
  raw[4 + 6] = 0x78; // "ping\0\0x\0...": a byte after the NUL padding
  return raw;
}

const CASES: Case[] = [
  {
    name: 'a peer that opens with ping (no version)',
    handshake: false,
    bytes: () => encodeFrame(regtest, 'ping', Buffer.alloc(8, 0x22)).raw,
    disconnects: false,
    code: null,
    logLine: /received: ping \(8 bytes\)/,
  },
  {
    name: 'a command field with bytes after the NUL',
    handshake: true,
    bytes: pingBadCommand,
    disconnects: false,
    code: 'BAD_COMMAND',
    logLine: /HEADER ERROR - COMMAND/,
  },
  {
    name: 'a wrong magic (mainnet ping on regtest)',
    handshake: true,
    bytes: () => encodeFrame(NETWORKS.mainnet, 'ping', Buffer.alloc(8, 0x33)).raw,
    disconnects: true,
    code: 'BAD_MAGIC',
    logLine: /HEADER ERROR - MESSAGESTART/,
  },
  {
    name: 'an oversized length (block of 4,000,001 bytes)',
    handshake: true,
    bytes: () => headerDeclaring(regtest, 'block', 4_000_001),
    disconnects: true,
    code: 'OVERSIZED',
    logLine: /HEADER ERROR - SIZE/,
  },
  {
    name: 'a partial frame (the first 12 bytes of a ping)',
    handshake: true,
    bytes: () => encodeFrame(regtest, 'ping', Buffer.alloc(8, 0x44)).raw.subarray(0, 12),
    disconnects: false,
    code: null,
    logLine: /^$/, // the node logs nothing about a partial header; the byte counter is the evidence
  },
];

function debugLog(node: Litecoind): string {
  return readFileSync(path.join(node.datadir, 'regtest', 'debug.log'), 'utf8');
}

/** The node's log lines about peer `id` after `offset`, without timestamps and ids. */
function linesAbout(node: Litecoind, offset: number, id: number): string[] {
  return debugLog(node)
    .slice(offset)
    .split('\n')
    .filter((l) => new RegExp(`peer=${id}\\b`).test(l))
    .map((l) => l.replace(/^\S+ /, '').replace(/peer=\d+/g, 'peer=N'))
    .filter((l) => /HEADER ERROR|CHECKSUM ERROR|received: |disconnecting|Misbehaving|non-version/.test(l))
    // the handshake's own lines may be logged just after the offset was taken (another thread)
    .filter((l) => !/received: (version|verack) /.test(l));
}

/**
 * Send the case's bytes on `client`, whose connection the node lists as `addr`; wait until the
 * node counted every byte or dropped the peer; return what it saw.
 */
async function observe(node: Litecoind, client: P2PClient, addr: string, c: Case): Promise<Seen> {
  const entry = await waitFor(async () => (await node.getPeerInfo()).find((p) => p.addr === addr), 5000, `litecoind to list ${addr}`);
  if (c.handshake) {
    await client.handshake();
    // the node has read our verack once it counted it
    await waitFor(async () => (await node.getPeerInfo()).find((p) => p.addr === addr)?.bytesrecv_per_msg.verack, 5000, 'the node to count our verack');
  }
  const before = (await node.getPeerInfo()).find((p) => p.addr === addr)!.bytesrecv;
  const logOffset = debugLog(node).length;
  const bytes = c.bytes();
  client.sendRaw(bytes);
  let last: Seen = { kept: true, bytesrecv: null, bytesrecvPerMsg: null, log: [] };
  try {
    await waitFor(
      async () => {
        const p = (await node.getPeerInfo()).find((x) => x.addr === addr);
        last = { kept: p !== undefined, bytesrecv: p ? p.bytesrecv as number : null, bytesrecvPerMsg: p ? p.bytesrecv_per_msg : null, log: [] };
        return !p || (p.bytesrecv as number) >= (before as number) + bytes.length;
      },
      5000,
      'the node to count the bytes or drop the peer',
    );
  } catch {
    // compared below: the report says what differed
  }
  await sleep(300); // a disconnect decision or a log line may follow the byte count
  const p = (await node.getPeerInfo()).find((x) => x.addr === addr);
  if (!p) last = { kept: false, bytesrecv: null, bytesrecvPerMsg: null, log: [] };
  last.log = linesAbout(node, logOffset, entry.id);
  return last;
}

test('the node sees the same through the proxy as directly, per framing case', { skip, timeout: 180_000 }, async (t) => {
  let node: Litecoind | undefined;
  let proxy: TestProxy | undefined;
  const clients: P2PClient[] = [];
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await proxy?.close();
    await node?.stop();
  });
  node = await startLitecoind({ name: 'framing', disableWallet: true, extraArgs: ['-debug=net'] });
  const n = node;
  // v2: reject, as the node compared against has no v2 (with terminate, a stream opening with ping is taken for v2, as Core 27+ takes it)
  proxy = await startTestProxy(n.p2pPort, 'v2: reject\nbans: { backendDisconnects: { count: 0 } }');
  const px = proxy;

  for (const c of CASES) {
    await t.test(c.name, async () => {
      const direct = await P2PClient.connect(n.p2pPort);
      clients.push(direct);
      direct.socket.on('error', () => {});
      const seenDirect = await observe(n, direct, `127.0.0.1:${direct.socket.localPort}`, c);

      const errorsBefore = c.code ? await px.metricValue('bhp_protocol_errors_total', { code: c.code }) : 0;
      const via = await P2PClient.connect(px.port);
      clients.push(via);
      via.socket.on('error', () => {});
      const session = await waitFor(() => px.proxy.sessions().find((s) => s.info.port === via.socket.localPort), 5000, 'the session');
      const seenVia = await observe(n, via, `127.0.0.1:${session.info.backendLocalPort}`, c);

      assert.deepEqual(seenVia, seenDirect, 'the node saw the same through the proxy as directly');
      assert.equal(seenDirect.kept, !c.disconnects, `the node ${c.disconnects ? 'drops' : 'keeps'} the peer`);
      if (!c.disconnects) assert.ok(seenDirect.bytesrecv !== null && seenDirect.bytesrecv > 0);
      if (c.logLine.source !== '^$') assert.ok(seenDirect.log.some((l) => c.logLine.test(l)), `the node logged ${c.logLine} (${seenDirect.log.join(' | ')})`);
      if (c.code) assert.equal(await px.metricValue('bhp_protocol_errors_total', { code: c.code }), errorsBefore + 1, `the proxy counted ${c.code}`);
      if (c.disconnects) {
        assert.ok(await via.closedWithin(5000), 'the proxy closed the peer too');
        assert.equal(session.closeReason, 'protocol_error');
      } else {
        assert.equal(session.closed, false, 'the proxy keeps the peer');
      }
    });
  }
});

test('a wrong magic behind a frame an async hook holds: the header waits for that frame, then the node sees what it sees directly', { skip, timeout: 120_000 }, async (t) => {
  let node: Litecoind | undefined;
  let proxy: TestProxy | undefined;
  const clients: P2PClient[] = [];
  const state = fixtureState();
  t.after(async () => {
    state.gate = null;
    await Promise.all(clients.map((c) => c.close()));
    await proxy?.close();
    await node?.stop();
  });
  node = await startLitecoind({ name: 'framing-lane', disableWallet: true, extraArgs: ['-debug=net'] });
  const n = node;
  proxy = await startTestProxy(n.p2pPort, `bans: { backendDisconnects: { count: 0 } }\n${hooksYaml([{ module: fixture('gate') }])}`);
  const px = proxy;
  const bytes = Buffer.concat([encodeFrame(regtest, 'ping', Buffer.alloc(8, 0x55)).raw, encodeFrame(NETWORKS.mainnet, 'ping', Buffer.alloc(8, 0x66)).raw]);

  const run = async (client: P2PClient, addr: string, whileHeld?: () => Promise<void>): Promise<string[]> => {
    const id = (await waitFor(async () => (await n.getPeerInfo()).find((p) => p.addr === addr), 5000, `litecoind to list ${addr}`)).id;
    await client.handshake();
    await waitFor(async () => (await n.getPeerInfo()).find((p) => p.addr === addr)?.bytesrecv_per_msg.verack, 5000, 'the node to count our verack');
    await sleep(100); // and to log it
    const offset = debugLog(n).length;
    client.sendRaw(bytes);
    await whileHeld?.();
    await waitFor(async () => !(await n.getPeerInfo()).some((p) => p.addr === addr), 10_000, 'the node to drop the peer');
    return linesAbout(n, offset, id);
  };

  const direct = await P2PClient.connect(n.p2pPort);
  clients.push(direct);
  direct.socket.on('error', () => {});
  const seenDirect = await run(direct, `127.0.0.1:${direct.socket.localPort}`);
  // one read holds both: bitcoind queues the ping, then drops the peer on the header before processing it
  assert.ok(seenDirect.some((l) => /HEADER ERROR - MESSAGESTART/.test(l)), seenDirect.join(' | '));

  let release: () => void = () => {};
  state.gate = new Promise<void>((r) => (release = r));
  state.gated.length = 0;
  const via = await P2PClient.connect(px.port);
  clients.push(via);
  via.socket.on('error', () => {});
  const session = await waitFor(() => px.proxy.sessions().find((s) => s.info.port === via.socket.localPort), 5000, 'the session');
  const seenVia = await run(via, `127.0.0.1:${session.info.backendLocalPort}`, async () => {
    await waitFor(() => state.gated.includes('ping'), 5000, 'the gate hook to hold the ping');
    await sleep(300);
    assert.equal(session.closed, false, 'the session waits for the held frame before the fatal header');
    release();
  });
  assert.deepEqual(seenVia, seenDirect, 'the node logged the same about the peer, in the same order');
  assert.equal(session.closeReason, 'protocol_error');
});
