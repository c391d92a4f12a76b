/**
 * `npm run bench`: runs every bench module and prints one table of medians.
 * Add a module by exporting a BenchModule from bench/<name>.bench.ts and listing it below.
 * Usage: node dist/bench/run.js [--runs N] [group ...]   (groups filter the modules by name)
 */
import { benchCodec } from './codec.bench.js';
import { benchChain, benchProxy } from './proxy.bench.js';
import { formatTable, type BenchModule, type BenchRow } from './lib.js';

const MODULES: Record<string, BenchModule> = {
  codec: benchCodec,
  proxy: benchProxy,
  chain: benchChain,
  pipeline: async (o) => (await import('./pipeline.bench.js')).benchPipeline(o),
  'block-cache': async (o) => (await import('./block-cache.bench.js')).benchBlockCache(o),
  'cut-through': async (o) => (await import('./cut-through.bench.js')).benchCutThrough(o),
  v2: async (o) => (await import('./v2.bench.js')).benchV2(o),
  workers: async (o) => (await import('./workers.bench.js')).benchWorkers(o),
};

async function main(argv: string[]): Promise<void> {
  let runs = 11;
  const groups: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--runs') runs = Number(argv[++i]);
    else groups.push(a);
  }
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs needs a positive integer');
  for (const g of groups) {
    if (!Object.prototype.hasOwnProperty.call(MODULES, g)) throw new Error(`unknown bench group "${g}": expected ${Object.keys(MODULES).join(', ')}`);
  }
  const selected = groups.length ? groups : Object.keys(MODULES);
  console.log(`node ${process.version}, ${process.arch}; median of ${runs} runs after one warm-up`);
  const rows: BenchRow[] = [];
  for (const name of selected) {
    const t0 = Date.now();
    rows.push(...(await MODULES[name]!({ runs })));
    console.error(`[bench] ${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  console.log(formatTable(rows));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
