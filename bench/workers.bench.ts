/**
 * `workers: 1` against `workers: 2`: aggregate 250-byte message throughput of 4 concurrent
 * peers (one connection is served by one worker, so only several peers can use a second core).
 * On a 2-core machine the load generator and the backend share those cores with the proxy.
 */
import { median, type BenchOptions, type BenchRow } from './lib.js';
import { SMALL_PER_RUN, smallMessages, spawnProxy, startBackend } from './proxy.bench.js';
import { freePort } from '../test/support/ports.js';

const PEERS = 4;

async function aggregate(port: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: PEERS }, () => smallMessages(port)));
  return (PEERS * SMALL_PER_RUN) / (Number(process.hrtime.bigint() - t0) / 1e9);
}

export async function benchWorkers(opts: BenchOptions): Promise<BenchRow[]> {
  const runs = Math.max(3, Math.min(opts.runs, 7));
  const backend = await startBackend();
  const rows: BenchRow[] = [];
  let base = 0;
  try {
    for (const n of [1, 2]) {
      const p = await spawnProxy(`workers ${n}`, ['workers', String(backend.port), String(n), String(await freePort())]);
      try {
        await aggregate(p.port); // warm-up
        const results: number[] = [];
        for (let r = 0; r < runs; r++) results.push(await aggregate(p.port));
        const m = median(results);
        if (n === 1) base = m;
        rows.push({ group: 'workers', name: `workers: ${n}, ${PEERS} peers, 250 B messages`, perSec: m, ...(n > 1 ? { ratio: m / base } : {}) });
      } finally {
        p.child.kill('SIGTERM');
        await new Promise((r) => p.child.once('exit', r));
      }
    }
  } finally {
    backend.server.close();
  }
  return rows;
}
