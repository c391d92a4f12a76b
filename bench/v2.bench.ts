/**
 * BIP324 v2 through the proxy (`v2: terminate`) against v1 through the same proxy process, in
 * the same run: 1 MB block download, 250-byte messages and connection setups, with the proxy's
 * CPU. The v2 client is the proxy's own initiator (dialPeer + V2Connection) in this process; to
 * measure the proxy and not the client, it counts the download's bytes without decrypting them
 * and encrypts its 250-byte messages before the clock starts, as the v1 client counts bytes and
 * sends prebuilt batches. The backend is the bitcoind-shaped server of proxy.bench.ts (v1).
 */
import type * as net from 'node:net';
import { NETWORKS, encodeFrame } from '../src/codec/index.js';
import { V2Connection, wholeFrames } from '../src/proxy/transport/v2/connection.js';
import { dialPeer } from '../src/proxy/transport/v2/dial.js';
import type { FrameWriter } from '../src/proxy/transport/types.js';
import { median, type BenchOptions, type BenchRow } from './lib.js';
import { BLOCK, BLOCKS_PER_RUN, SMALL, SMALL_PER_RUN, VERACK, VERSION, blockDownload, client, cpuMicros, smallMessages, spawnProxy, startBackend, type ProxyProc } from './proxy.bench.js';

const NET = NETWORKS.regtest;
/** bytes queued on the client socket before it waits for drain */
const HIGH_WATER = 4 * 1024 * 1024;
/** sequential connection setups per transport */
const SETUPS = 100;

interface V2Client {
  socket: net.Socket;
  conn: V2Connection;
  out: FrameWriter;
  onFrame(cb: (command: string, length: number) => void): void;
  /** from now on count received bytes instead of decrypting them (as the v1 client counts) */
  rawBytes(cb: (n: number) => void): void;
}

async function v2Client(port: number): Promise<V2Client> {
  const { socket, v2 } = await dialPeer({ host: '127.0.0.1', port, v2: true, timeoutMs: 10_000 });
  if (!v2) throw new Error('the proxy did not answer v2 (is v2: terminate set?)');
  socket.setNoDelay(true);
  let cb: (command: string, length: number) => void = () => {};
  const conn = new V2Connection({
    role: 'initiator',
    network: NET,
    socket,
    maxMessageSize: 4_000_000,
    key: v2.key,
    garbage: v2.garbage,
    opened: true,
    events: {
      ready: () => {},
      failed: (reason, detail) => socket.destroy(new Error(`v2 failed: ${reason}: ${detail}`)),
      dropped: () => {},
    },
  });
  const reader = conn.reader(wholeFrames((f) => cb(f.command, f.length)));
  let bytes: ((n: number) => void) | null = null;
  socket.on('data', (c: Buffer) => (bytes ? bytes(c.length) : reader.push(c)));
  socket.resume();
  const out = conn.writer(socket);
  const verack = new Promise<void>((r) => (cb = (command) => command === 'verack' && r()));
  out.frame(VERSION);
  out.frame(VERACK);
  await verack;
  return { socket, conn, out, onFrame: (f) => (cb = f), rawBytes: (f) => (bytes = f) };
}

/** The v2 size of a frame: length, header, short id, payload, tag (a block has short id 2). */
const V2_BLOCK_PACKET = 3 + 1 + 1 + (BLOCK.length - 24) + 16;

async function v2BlockDownload(port: number): Promise<number> {
  const c = await v2Client(port);
  const total = BLOCKS_PER_RUN * V2_BLOCK_PACKET;
  let got = 0;
  const done = new Promise<void>((r) =>
    c.rawBytes((n) => {
      got += n;
      if (got >= total) r();
    }),
  );
  const req = Buffer.alloc(4);
  req.writeUInt32LE(BLOCKS_PER_RUN);
  const t0 = process.hrtime.bigint();
  c.out.frame(encodeFrame(NET, 'getblocks', req).raw);
  await done;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  c.socket.destroy();
  return (BLOCKS_PER_RUN * BLOCK.length) / seconds / 1e6;
}

async function v2SmallMessages(port: number): Promise<number> {
  const c = await v2Client(port);
  const done = new Promise<void>((r) => c.onFrame((command) => command === 'notfound' && r()));
  // encrypted ahead (untimed), 100 messages per write, as the v1 client sends prebuilt batches
  const batches: Buffer[] = [];
  for (let sent = 0; sent < SMALL_PER_RUN; sent += 100) batches.push(Buffer.concat(Array.from({ length: 100 }, () => c.conn.encryptFrame(SMALL)).flat()));
  const t0 = process.hrtime.bigint();
  for (const b of batches) if (!c.socket.write(b) && c.socket.writableLength > HIGH_WATER) await new Promise((r) => c.socket.once('drain', r));
  await done;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  c.socket.destroy();
  return SMALL_PER_RUN / seconds;
}

/** v1 and v2 alternate on one proxy process; CPU is read around each transport's runs. */
async function measure(p: ProxyProc, runs: number, v1: (port: number) => Promise<number>, v2: (port: number) => Promise<number>) {
  await v1(p.port); // warm-up, untimed
  await v2(p.port);
  const results = { v1: [] as number[], v2: [] as number[] };
  const cpu = { v1: 0, v2: 0 };
  for (let r = 0; r < runs; r++) {
    for (const which of r % 2 === 0 ? (['v1', 'v2'] as const) : (['v2', 'v1'] as const)) {
      const before = await cpuMicros(p);
      results[which].push(await (which === 'v1' ? v1 : v2)(p.port));
      cpu[which] += (await cpuMicros(p)) - before;
    }
  }
  return { v1: median(results.v1), v2: median(results.v2), cpuV1: cpu.v1 / 1e6, cpuV2: cpu.v2 / 1e6 };
}

/** The v1 row and the v2 row (ratio to v1) of one measurement, with the proxy's CPU per GB. */
function rowsFor(what: string, m: Awaited<ReturnType<typeof measure>>, gb: number, unit: 'mbPerSec' | 'perSec', v2Note: string): BenchRow[] {
  const [c1, c2] = [m.cpuV1 / gb, m.cpuV2 / gb];
  return [
    { group: 'v2', name: `bhp v1: ${what}`, [unit]: m.v1, note: `proxy CPU ${c1.toFixed(2)} s/GB` },
    { group: 'v2', name: `bhp v2: ${what}`, [unit]: m.v2, ratio: m.v2 / m.v1, note: `proxy CPU ${c2.toFixed(2)} s/GB (${(c2 / c1).toFixed(2)}x v1); ${v2Note}` },
  ];
}

/** Connection setup (TCP, v2 handshake when v2, version/verack through the proxy), one after another. */
async function setups(p: ProxyProc, n: number, open: (port: number) => Promise<{ destroy(): void }>): Promise<{ perSec: number; cpuMs: number }> {
  const before = await cpuMicros(p);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) (await open(p.port)).destroy();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { perSec: n / seconds, cpuMs: ((await cpuMicros(p)) - before) / 1e3 / n };
}

export async function benchV2(opts: BenchOptions): Promise<BenchRow[]> {
  const runs = Math.max(3, Math.min(opts.runs, 7));
  const backend = await startBackend();
  const proxy = await spawnProxy('bitcoin-hook-proxy (v2: terminate)', ['bhp', String(backend.port), '0']);
  const rows: BenchRow[] = [];
  try {
    const blocks = await measure(proxy, runs, blockDownload, v2BlockDownload);
    rows.push(...rowsFor('1 MB block download', blocks, (runs * BLOCKS_PER_RUN * BLOCK.length) / 1e9, 'mbPerSec', 'the client counts bytes, as the v1 one'));
    const small = await measure(proxy, runs, smallMessages, v2SmallMessages);
    rows.push(...rowsFor('250 B messages', small, (runs * SMALL_PER_RUN * SMALL.length) / 1e9, 'perSec', 'the client encrypted ahead, untimed'));
    const v1Setup = await setups(proxy, SETUPS, async (port) => (await client(port)).s);
    const v2Setup = await setups(proxy, SETUPS, async (port) => (await v2Client(port)).socket);
    rows.push({ group: 'v2', name: 'bhp v1: connection setups', perSec: v1Setup.perSec, note: `proxy CPU ${v1Setup.cpuMs.toFixed(2)} ms each` });
    rows.push({
      group: 'v2',
      name: 'bhp v2: connection setups',
      perSec: v2Setup.perSec,
      ratio: v2Setup.perSec / v1Setup.perSec,
      note: `proxy CPU ${v2Setup.cpuMs.toFixed(2)} ms each (key generation and ECDH in OpenSSL, ElligatorSwift in @noble/curves bigint arithmetic)`,
    });
  } finally {
    proxy.child.kill();
    backend.server.close();
  }
  return rows;
}
