/**
 * Cut-through against store-and-forward and a raw pipe, in one run: time to the last byte of
 * one 1 MB and one 4 MB block through each, and the proxy's peak memory while 50 peers each
 * download 4 MB blocks and read slowly. Store-and-forward is the same proxy with
 * `checksum: always` (it must see a frame whole before forwarding any byte of it).
 * The backend is a bitcoind-shaped server in this process that answers `getblocks` with blocks
 * of the requested size; the measurement is what the proxy adds.
 */
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { encodeFrame, NETWORKS } from '../src/codec/index.js';
import { median, type BenchOptions, type BenchRow } from './lib.js';
import { VERACK, VERSION, client, spawnProxy, splitter, type ProxyProc } from './proxy.bench.js';

const NET = NETWORKS.regtest;
const SIZES = [1_000_000, 3_999_000] as const;
const BLOCKS = new Map<number, Buffer>(SIZES.map((n) => [n, encodeFrame(NET, 'block', Buffer.alloc(n, 9)).raw]));
const SLOW_PEERS = 50;
const SLOW_BLOCKS = 2;
/** bytes per second each slow peer reads */
const SLOW_RATE = 2_000_000;

/** version → version+verack; getblocks(count u32, size u32) → count blocks of that size. */
async function startBackend(): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => {});
    s.on(
      'data',
      splitter((cmd, payload) => {
        if (cmd === 'version') s.write(Buffer.concat([VERSION, VERACK]));
        else if (cmd === 'getblocks') send(s, BLOCKS.get(payload.readUInt32LE(4))!, payload.readUInt32LE(0));
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as net.AddressInfo).port };
}

function send(s: net.Socket, block: Buffer, n: number): void {
  let sent = 0;
  const more = () => {
    while (sent < n) {
      sent++;
      if (!s.write(block)) return void s.once('drain', more);
    }
  };
  more();
}

function request(count: number, size: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32LE(count, 0);
  p.writeUInt32LE(size, 4);
  return encodeFrame(NET, 'getblocks', p).raw;
}

/** ms from the request to the last byte of one block of `size`. */
async function timeToLastByte(port: number, size: number): Promise<number> {
  const c = await client(port);
  const total = BLOCKS.get(size)!.length;
  let got = 0;
  const t0 = process.hrtime.bigint();
  const done = new Promise<void>((r) =>
    c.rawBytes((n) => {
      got += n;
      if (got >= total) r();
    }),
  );
  c.s.write(request(1, size));
  await done;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  c.s.destroy();
  return ms;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Peak RSS growth of the proxy process while SLOW_PEERS peers each fetch SLOW_BLOCKS 4 MB blocks at SLOW_RATE. */
async function slowPeersPeak(p: ProxyProc): Promise<number> {
  const pid = p.child.pid!;
  const peers = [];
  for (let i = 0; i < SLOW_PEERS; i += 10) peers.push(...(await Promise.all(Array.from({ length: 10 }, () => client(p.port)))));
  await new Promise((r) => setTimeout(r, 300));
  const base = rssOf(pid);
  let peak = base;
  const poll = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 20);
  const total = SLOW_BLOCKS * BLOCKS.get(SIZES[1])!.length;
  await Promise.all(
    peers.map(
      (c) =>
        new Promise<void>((resolve) => {
          let got = 0;
          c.rawBytes((n) => {
            got += n;
            if (got >= total) return resolve();
            c.s.pause();
            setTimeout(() => c.s.resume(), (n / SLOW_RATE) * 1000);
          });
          c.s.write(request(SLOW_BLOCKS, SIZES[1]));
        }),
    ),
  );
  clearInterval(poll);
  for (const c of peers) c.s.destroy();
  await new Promise((r) => setTimeout(r, 500));
  return peak - base;
}

export async function benchCutThrough(opts: BenchOptions): Promise<BenchRow[]> {
  const runs = Math.max(5, Math.min(opts.runs, 15));
  const backend = await startBackend();
  const procs = [
    await spawnProxy('raw pipe', ['raw', String(backend.port)]),
    await spawnProxy('bhp cut-through (lazy)', ['bhp', String(backend.port), '0']),
    await spawnProxy('bhp store-and-forward (always)', ['bhp', String(backend.port), '0', 'always']),
  ];
  const rows: BenchRow[] = [];
  try {
    for (const size of SIZES) {
      const times: number[][] = procs.map(() => []);
      for (const p of procs) await timeToLastByte(p.port, size); // warm-up
      for (let r = 0; r < runs; r++) {
        for (let k = 0; k < procs.length; k++) {
          const i = (r + k) % procs.length;
          times[i]!.push(await timeToLastByte(procs[i]!.port, size));
        }
      }
      const med = times.map(median);
      procs.forEach((p, i) =>
        rows.push({
          group: 'cut-through',
          name: `${p.name}: last byte of a ${(size / 1e6).toFixed(0)} MB block`,
          ...(i > 0 ? { ratio: med[i]! / med[0]! } : {}),
          note: `${med[i]!.toFixed(2)} ms median of ${runs}${i > 0 ? '; ratio is time / raw pipe time' : ''}`,
        }),
      );
    }
    for (const p of procs) {
      const peak = await slowPeersPeak(p);
      rows.push({
        group: 'cut-through',
        name: `${p.name}: peak RSS, ${SLOW_PEERS} slow peers x ${SLOW_BLOCKS} 4 MB blocks`,
        note: `+${(peak / 1e6).toFixed(1)} MB (${(peak / SLOW_PEERS / 1e6).toFixed(2)} MB/peer; each reads ${SLOW_RATE / 1e6} MB/s)`,
      });
    }
  } finally {
    for (const p of procs) p.child.kill();
    backend.server.close();
  }
  return rows;
}
