/**
 * block-cache: blocks served per second to a peer through the proxy with the block-cache hook
 * (answers from the cache) against the same requests through the proxy without it (answered by
 * the backend node), in the same run, plus the backend asked directly.
 *
 * Backend: a real regtest litecoind (Litecoin Core 0.21 = Bitcoin Core 0.21's P2P code). Two
 * block sets: empty regtest blocks (~250 B each: per-message cost) and blocks carrying
 * transactions (tens of kB each: per-byte cost). A raw client (our codec's FrameDecoder)
 * sends one getdata of MSG_WITNESS_BLOCK for all blocks of a set and counts the `block`
 * frames until all arrived; runs are interleaved over the three targets. The proxies run in
 * this process (so does the client); litecoind is its own process.
 */
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { buildFrame, FrameDecoder, hashFromHex, InvType, NETWORKS, type InvVector, type VersionMessage } from '../src/codec/index.js';
import { startProxy, type RunningProxy } from '../src/app.js';
import { parseConfig } from '../src/config.js';
import { litecoindAvailable, litecoindSkipReason, startLitecoind, type Litecoind } from '../test/support/litecoind.js';
import { median, type BenchOptions, type BenchRow } from './lib.js';

const NET = NETWORKS.regtest;
const HOOK = fileURLToPath(new URL('../hooks/block-cache.js', import.meta.url));
const EMPTY_BLOCKS = 400;
const FULL_BLOCKS = 10;
const TXS_PER_BLOCK = 10;
const OUTPUTS_PER_TX = 50;

interface Client {
  socket: net.Socket;
  /** send one getdata, resolve with the seconds until `items.length` blocks arrived */
  fetch(items: InvVector[]): Promise<{ seconds: number; bytes: number }>;
}

async function connectClient(port: number): Promise<Client> {
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let onFrame: (command: string, size: number) => void = () => {};
  const decoder = new FrameDecoder({ network: NET, checksum: 'lazy', maxPayload: 4_000_000 }, { onFrame: (f) => onFrame(f.command, f.payload.length), onError: (e) => socket.destroy(e) });
  socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  const zero = { services: 0n, ip: Buffer.alloc(16), port: 0 };
  const version: VersionMessage = { version: 70016, services: 0x409n, timestamp: BigInt(Math.floor(Date.now() / 1000)), addrRecv: zero, addrFrom: zero, nonce: BigInt(Date.now()), userAgent: '/bhp-bench:0.1/', startHeight: 0, relay: false };
  await new Promise<void>((resolve) => {
    onFrame = (command) => {
      if (command === 'version') socket.write(buildFrame(NET, 'verack', {}).raw);
      else if (command === 'verack') resolve();
    };
    socket.write(buildFrame(NET, 'version', version).raw);
  });
  // let the post-handshake chatter (sendcmpct, feefilter, getheaders, ...) settle
  await new Promise((r) => setTimeout(r, 200));
  return {
    socket,
    fetch(items) {
      return new Promise((resolve) => {
        let got = 0;
        let bytes = 0;
        const t0 = process.hrtime.bigint();
        onFrame = (command, size) => {
          if (command !== 'block') return;
          bytes += size;
          if (++got === items.length) resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, bytes });
        };
        socket.write(buildFrame(NET, 'getdata', items).raw);
      });
    },
  };
}

async function proxyFor(backendPort: number, hooks: string): Promise<RunningProxy> {
  const yaml = ['network: regtest', 'listen: 127.0.0.1:0', `backend: 127.0.0.1:${backendPort}`, 'metrics: false', hooks].join('\n');
  return startProxy(parseConfig(yaml, 'bench.yaml'), { log: pino({ level: 'silent' }), defaultMetrics: false });
}

/** Blocks with transactions: sendmany to many fresh addresses, then mine. */
async function fullBlocks(node: Litecoind): Promise<string[]> {
  const addresses: string[] = [];
  for (let i = 0; i < OUTPUTS_PER_TX; i++) addresses.push(await node.getNewAddress());
  const amounts = Object.fromEntries(addresses.map((a) => [a, 0.001]));
  const hashes: string[] = [];
  for (let b = 0; b < FULL_BLOCKS; b++) {
    for (let i = 0; i < TXS_PER_BLOCK; i++) await node.rpc('sendmany', ['', amounts]);
    hashes.push(...(await node.generate(1)));
  }
  return hashes;
}

export async function benchBlockCache(opts: BenchOptions): Promise<BenchRow[]> {
  if (!litecoindAvailable()) return [{ group: 'block-cache', name: 'skipped', note: String(litecoindSkipReason()) }];
  const runs = Math.max(3, Math.min(opts.runs, 11));
  const node = await startLitecoind({ name: 'bench-block-cache' });
  const closers: (() => Promise<unknown> | void)[] = [() => node.stop()];
  const rows: BenchRow[] = [];
  try {
    const t0 = Date.now();
    const step = (what: string) => process.env.BHP_BENCH_VERBOSE && console.error(`[block-cache] ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await node.generate(EMPTY_BLOCKS - FULL_BLOCKS); // matures coinbases for the spends below
    step('mined');
    const tip = await node.getBlockCount();
    const empty: string[] = [];
    for (let i = 0; i < EMPTY_BLOCKS - FULL_BLOCKS; i++) empty.push(await node.getBlockHash(tip - i)); // sequential: RPC work queue is 16
    step('hashes');
    const full = await fullBlocks(node);
    step('full blocks');
    const plain = await proxyFor(node.p2pPort, '');
    closers.push(() => plain.close());
    const cached = await proxyFor(node.p2pPort, `hooks:\n  - { module: ${JSON.stringify(HOOK)}, options: { maxBytes: 256MiB } }`);
    closers.push(() => cached.close());
    const targets = [
      { name: 'litecoind direct', port: node.p2pPort },
      { name: 'proxy, no hook (litecoind answers)', port: plain.proxy.addresses()[0]!.port },
      { name: 'proxy + block-cache (cache answers)', port: cached.proxy.addresses()[0]!.port },
    ];
    const clients = await Promise.all(targets.map((t) => connectClient(t.port)));
    for (const c of clients) closers.push(() => void c.socket.destroy());

    for (const [label, hashes] of [
      [`${empty.length} empty blocks`, empty],
      [`${full.length} blocks of ${TXS_PER_BLOCK} txs`, full],
    ] as const) {
      const items = hashes.map((h) => ({ type: InvType.WITNESS_BLOCK, hash: hashFromHex(h) }));
      for (const c of clients) await c.fetch(items); // warm-up; fills the cache
      const perSec: number[][] = targets.map(() => []);
      const mbPerSec: number[][] = targets.map(() => []);
      for (let r = 0; r < runs; r++) {
        for (let k = 0; k < targets.length; k++) {
          const i = (r + k) % targets.length;
          const { seconds, bytes } = await clients[i]!.fetch(items);
          perSec[i]!.push(items.length / seconds);
          mbPerSec[i]!.push(bytes / seconds / 1e6);
        }
      }
      const med = perSec.map(median);
      const mb = mbPerSec.map(median);
      targets.forEach((t, i) =>
        rows.push({
          group: 'block-cache',
          name: `${t.name}: ${label}`,
          perSec: med[i]!,
          mbPerSec: mb[i]!,
          ...(i === 2 ? { ratio: med[2]! / med[1]!, note: 'ratio: cache vs litecoind through the proxy' } : i === 0 ? { note: 'one getdata per run' } : {}),
        }),
      );
    }
  } finally {
    for (const f of closers.reverse()) await f();
  }
  return rows;
}
