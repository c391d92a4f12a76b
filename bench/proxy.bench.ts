/**
 * End to end through a proxy process, against a plain socket.pipe proxy measured in the same
 * run: 1 MB block download, 250-byte messages, ping round trips, memory with 1,000 idle peers.
 * The backend is a bitcoind-shaped server in this process (it speaks the frames, answers
 * version, ping and the bench's requests): the measurement is the proxy's overhead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { buildFrame, encodeFrame, NETWORKS, type VersionMessage } from '../src/codec/index.js';
import { median, type BenchOptions, type BenchRow } from './lib.js';

const NET = NETWORKS.regtest;
const BLOCK = encodeFrame(NET, 'block', Buffer.alloc(1_000_000, 7)).raw;
const SMALL = encodeFrame(NET, 'tx', Buffer.alloc(250, 1)).raw;
const BLOCKS_PER_RUN = 200;
export const SMALL_PER_RUN = 200_000;
const PINGS = 1000;
const IDLE_PEERS = 1000;

function version(): Buffer {
  const addr = { services: 0n, ip: Buffer.alloc(16), port: 0 };
  const v: VersionMessage = { version: 70016, services: 0x409n, timestamp: 0n, addrRecv: addr, addrFrom: addr, nonce: 1n, userAgent: '/bench/', startHeight: 0, relay: true };
  return buildFrame(NET, 'version', v).raw;
}
export const VERSION = version();
export const VERACK = encodeFrame(NET, 'verack').raw;

/** Splits frames by header only; calls back with command and payload. */
export function splitter(onFrame: (cmd: string, payload: Buffer) => void): (chunk: Buffer) => void {
  let buf: Buffer = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    let pos = 0;
    while (buf.length - pos >= 24) {
      const len = buf.readUInt32LE(pos + 16);
      if (buf.length - pos < 24 + len) break;
      const end = buf.indexOf(0, pos + 4);
      const cmd = buf.toString('latin1', pos + 4, Math.min(end < 0 ? pos + 16 : end, pos + 16));
      onFrame(cmd, buf.subarray(pos + 24, pos + 24 + len));
      pos += 24 + len;
    }
    buf = pos === buf.length ? Buffer.alloc(0) : buf.subarray(pos);
  };
}

/** The bitcoind-shaped backend: version → version+verack; ping → pong; getblocks → N blocks; tx ×N → "done". */
export async function startBackend(): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    let txs = 0;
    s.on('error', () => {});
    s.on(
      'data',
      splitter((cmd, payload) => {
        if (cmd === 'version') s.write(Buffer.concat([VERSION, VERACK]));
        else if (cmd === 'ping') s.write(encodeFrame(NET, 'pong', payload).raw);
        else if (cmd === 'getblocks') sendBlocks(s, payload.readUInt32LE(0));
        else if (cmd === 'tx' && ++txs % SMALL_PER_RUN === 0) s.write(encodeFrame(NET, 'notfound', Buffer.from([0])).raw);
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as net.AddressInfo).port };
}

function sendBlocks(s: net.Socket, n: number): void {
  let sent = 0;
  const more = () => {
    while (sent < n) {
      sent++;
      if (!s.write(BLOCK)) return void s.once('drain', more);
    }
  };
  more();
}

export interface ProxyProc {
  name: string;
  child: ChildProcess;
  port: number;
}

export async function spawnProxy(name: string, args: string[]): Promise<ProxyProc> {
  const script = fileURLToPath(new URL('./proxy-process.js', import.meta.url));
  const child = spawn(process.execPath, ['--expose-gc', script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  return { name, child, port };
}

/** The child runs a full GC, then reports its RSS (so garbage does not blur a 1,000-peer delta). */
export function rssBytes(p: ProxyProc): Promise<number> {
  return ask(p, 'mem', /MEM (\d+)/);
}

/** CPU time (user + system, µs) the proxy process has used so far. */
function cpuMicros(p: ProxyProc): Promise<number> {
  return ask(p, 'cpu', /CPU (\d+)/);
}

function ask(p: ProxyProc, what: string, answer: RegExp): Promise<number> {
  p.child.stdin!.write(`${what}\n`);
  return new Promise((resolve) => {
    const onData = (d: Buffer) => {
      const m = answer.exec(d.toString());
      if (m) {
        p.child.stdout!.off('data', onData);
        resolve(Number(m[1]));
      }
    };
    p.child.stdout!.on('data', onData);
  });
}

/** A client that has done the version exchange through the proxy. */
export async function client(port: number): Promise<{ s: net.Socket; frames: (cb: (cmd: string, payload: Buffer) => void) => void; rawBytes: (cb: (n: number) => void) => void }> {
  const s = net.connect({ host: '127.0.0.1', port });
  s.setNoDelay(true);
  await new Promise<void>((r, j) => {
    s.once('connect', () => r());
    s.once('error', j);
  });
  let frameCb: ((cmd: string, payload: Buffer) => void) | null = null;
  let byteCb: ((n: number) => void) | null = null;
  const split = splitter((cmd, p) => frameCb?.(cmd, p));
  let handshake: (() => void) | null = null;
  const ready = new Promise<void>((r) => (handshake = r));
  frameCb = (cmd) => {
    if (cmd === 'verack') handshake?.();
  };
  s.on('data', (c: Buffer) => {
    if (byteCb) byteCb(c.length);
    else split(c);
  });
  s.write(Buffer.concat([VERSION, VERACK]));
  await ready;
  return {
    s,
    frames: (cb) => {
      frameCb = cb;
      byteCb = null;
    },
    rawBytes: (cb) => {
      byteCb = cb;
    },
  };
}

async function blockDownload(port: number): Promise<number> {
  const c = await client(port);
  const total = BLOCKS_PER_RUN * BLOCK.length;
  let got = 0;
  const t0 = process.hrtime.bigint();
  const done = new Promise<void>((r) =>
    c.rawBytes((n) => {
      got += n;
      if (got >= total) r();
    }),
  );
  const req = Buffer.alloc(4);
  req.writeUInt32LE(BLOCKS_PER_RUN);
  c.s.write(encodeFrame(NET, 'getblocks', req).raw);
  await done;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  c.s.destroy();
  return total / seconds / 1e6;
}

export async function smallMessages(port: number): Promise<number> {
  const c = await client(port);
  const done = new Promise<void>((r) => c.frames((cmd) => cmd === 'notfound' && r()));
  const batch = Buffer.concat(Array.from({ length: 100 }, () => SMALL));
  const t0 = process.hrtime.bigint();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const more = () => {
      while (sent < SMALL_PER_RUN) {
        sent += 100;
        if (!c.s.write(batch)) return void c.s.once('drain', more);
      }
      resolve();
    };
    more();
  });
  await done;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  c.s.destroy();
  return SMALL_PER_RUN / seconds;
}

async function pingRtts(port: number): Promise<number[]> {
  const c = await client(port);
  const rtts: number[] = [];
  let resolvePong: (() => void) | null = null;
  c.frames((cmd) => cmd === 'pong' && resolvePong?.());
  const nonce = Buffer.alloc(8);
  for (let i = 0; i < PINGS; i++) {
    nonce.writeUInt32LE(i);
    const pong = new Promise<void>((r) => (resolvePong = r));
    const t0 = process.hrtime.bigint();
    c.s.write(encodeFrame(NET, 'ping', nonce).raw);
    await pong;
    rtts.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  c.s.destroy();
  return rtts;
}

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function idleMemory(p: ProxyProc): Promise<number> {
  const before = await rssBytes(p);
  const sockets: net.Socket[] = [];
  for (let i = 0; i < IDLE_PEERS; i += 50) {
    const batch = await Promise.all(Array.from({ length: 50 }, () => client(p.port)));
    sockets.push(...batch.map((c) => c.s));
  }
  await new Promise((r) => setTimeout(r, 300));
  const after = await rssBytes(p);
  for (const s of sockets) s.destroy();
  await new Promise((r) => setTimeout(r, 300));
  return after - before;
}

/** Median of `runs` measurements per proxy after one warm-up each, in rotating order. */
export async function interleaved(procs: ProxyProc[], runs: number, fn: (port: number) => Promise<number>): Promise<number[]> {
  const results: number[][] = procs.map(() => []);
  for (const p of procs) await fn(p.port);
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < procs.length; k++) {
      const i = (r + k) % procs.length;
      results[i]!.push(await fn(procs[i]!.port));
    }
  }
  return results.map(median);
}

export async function benchProxy(opts: BenchOptions): Promise<BenchRow[]> {
  const runs = Math.max(3, Math.min(opts.runs, 7));
  const backend = await startBackend();
  const procs = [
    await spawnProxy('raw socket.pipe', ['raw', String(backend.port)]),
    await spawnProxy('bitcoin-hook-proxy', ['bhp', String(backend.port), '0']),
  ];
  const rows: BenchRow[] = [];
  try {
    const cpuBefore = await Promise.all(procs.map(cpuMicros));
    const [rawMb, bhpMb] = await interleaved(procs, runs, blockDownload);
    const cpuAfter = await Promise.all(procs.map(cpuMicros));
    // CPU seconds each proxy spent per GB relayed (warm-up + runs; the same bytes for both)
    const gb = ((runs + 1) * BLOCKS_PER_RUN * BLOCK.length) / 1e9;
    const [rawCpu, bhpCpu] = procs.map((_, i) => (cpuAfter[i]! - cpuBefore[i]!) / 1e6 / gb);
    rows.push({ group: 'proxy', name: 'raw pipe: 1 MB block download', mbPerSec: rawMb!, note: `${BLOCKS_PER_RUN} blocks per run; proxy CPU ${rawCpu!.toFixed(2)} s/GB` });
    rows.push({ group: 'proxy', name: 'bhp: 1 MB block download', mbPerSec: bhpMb!, ratio: bhpMb! / rawMb!, note: `target >= 0.90; proxy CPU ${bhpCpu!.toFixed(2)} s/GB (${(bhpCpu! / rawCpu!).toFixed(2)}x)` });
    const [rawMsgs, bhpMsgs] = await interleaved(procs, runs, smallMessages);
    rows.push({ group: 'proxy', name: 'raw pipe: 250 B messages', perSec: rawMsgs!, note: `${SMALL_PER_RUN} per run` });
    rows.push({ group: 'proxy', name: 'bhp: 250 B messages', perSec: bhpMsgs!, ratio: bhpMsgs! / rawMsgs!, note: 'target >= 0.60' });

    // sequential and interleaved: never two proxies measured at once
    const rtts: number[][] = procs.map(() => []);
    for (let r = 0; r < runs; r++) for (let k = 0; k < procs.length; k++) rtts[(r + k) % procs.length]!.push(...(await pingRtts(procs[(r + k) % procs.length]!.port)));
    const [rawP50, bhpP50] = rtts.map((r) => percentile(r, 50));
    const [rawP99, bhpP99] = rtts.map((r) => percentile(r, 99));
    rows.push({ group: 'proxy', name: 'raw pipe: ping RTT p50 / p99', note: `${rawP50!.toFixed(0)} / ${rawP99!.toFixed(0)} µs` });
    rows.push({ group: 'proxy', name: 'bhp: ping RTT p50 / p99', ratio: bhpP99! / rawP99!, note: `${bhpP50!.toFixed(0)} / ${bhpP99!.toFixed(0)} µs; ratio is p99, target <= 1.5` });

    const [rawMem, bhpMem] = [await idleMemory(procs[0]!), await idleMemory(procs[1]!)];
    rows.push({ group: 'proxy', name: `raw pipe: RSS for ${IDLE_PEERS} idle peers`, note: `${(rawMem! / 1e6).toFixed(1)} MB (${(rawMem! / IDLE_PEERS / 1024).toFixed(1)} KiB/peer)` });
    rows.push({ group: 'proxy', name: `bhp: RSS for ${IDLE_PEERS} idle peers`, ratio: bhpMem! / rawMem!, note: `${(bhpMem! / 1e6).toFixed(1)} MB (${(bhpMem! / IDLE_PEERS / 1024).toFixed(1)} KiB/peer)` });
  } finally {
    for (const p of procs) p.child.kill();
    backend.server.close();
  }
  return rows;
}

/** The chain's cost: 0, 1 and 5 pass-through hooks that want every command, against the raw pipe. */
export async function benchChain(opts: BenchOptions): Promise<BenchRow[]> {
  const runs = Math.max(3, Math.min(opts.runs, 7));
  const backend = await startBackend();
  const procs = [
    await spawnProxy('raw', ['raw', String(backend.port)]),
    await spawnProxy('0 hooks', ['bhp', String(backend.port), '0']),
    await spawnProxy('1 hook', ['bhp', String(backend.port), '1']),
    await spawnProxy('5 hooks', ['bhp', String(backend.port), '5']),
  ];
  const rows: BenchRow[] = [];
  try {
    const med = await interleaved(procs, runs, smallMessages);
    procs.forEach((p, i) => rows.push({ group: 'chain', name: `${p.name}: 250 B messages`, perSec: med[i]!, ...(i > 0 ? { ratio: med[i]! / med[0]! } : {}) }));
  } finally {
    for (const p of procs) p.child.kill();
    backend.server.close();
  }
  return rows;
}
