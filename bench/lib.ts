/** Shared helpers for the benchmarks: timing, medians and the result table. */

/** One line of the results table. Throughput fields are optional: not every bench moves bytes. */
export interface BenchRow {
  /** the bench module, e.g. "codec" */
  group: string;
  /** what was measured, e.g. "FrameDecoder always, inv 61 B" */
  name: string;
  /** median MB/s (10^6 bytes per second) */
  mbPerSec?: number;
  /** median items (frames, messages) per second */
  perSec?: number;
  /** this row's throughput divided by its baseline's, measured in the same run */
  ratio?: number;
  /** anything a reader needs to interpret the row */
  note?: string;
}

/** A bench module: bench/run.ts calls each in turn and prints all rows in one table. */
export type BenchModule = (options: BenchOptions) => Promise<BenchRow[]> | BenchRow[];

export interface BenchOptions {
  /** timed runs per measurement (after one untimed warm-up); the median is reported */
  runs: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Candidate {
  name: string;
  fn: () => void;
}

/**
 * Times each candidate `runs` times, interleaved (a, b, c, b, c, a, c, a, b, ...) after one untimed
 * warm-up round, so that allocator and GC state and machine load affect all of them alike.
 * Returns the median wall time in seconds per candidate, in the order given.
 */
export function medianSeconds(candidates: readonly Candidate[], runs: number): number[] {
  for (const c of candidates) c.fn();
  const times: number[][] = candidates.map(() => []);
  for (let r = 0; r < runs; r++) {
    // rotate the order each round, so no candidate always runs right after the same other one
    for (let k = 0; k < candidates.length; k++) {
      const i = (r + k) % candidates.length;
      const t0 = process.hrtime.bigint();
      candidates[i]!.fn();
      times[i]!.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }
  return times.map(median);
}

export interface Throughput {
  name: string;
  mbPerSec: number;
  perSec: number;
  seconds: number;
}

/** Throughput of candidates that each make one pass over `bytes` bytes holding `items` items. */
export function throughputs(candidates: readonly Candidate[], bytes: number, items: number, runs: number): Throughput[] {
  return medianSeconds(candidates, runs).map((seconds, i) => ({ name: candidates[i]!.name, mbPerSec: bytes / seconds / 1e6, perSec: items / seconds, seconds }));
}

/** Splits `buf` into views of `size` bytes (the last one shorter), as a socket would deliver it. */
export function chunks(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

function fmt(n: number | undefined, digits: number): string {
  if (n === undefined) return '';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** A plain-text table of rows, aligned for a terminal or a Markdown code block. */
export function formatTable(rows: readonly BenchRow[]): string {
  const header = ['group', 'benchmark', 'MB/s', 'items/s', 'ratio', 'note'];
  const body = rows.map((r) => [r.group, r.name, fmt(r.mbPerSec, 1), fmt(r.perSec, 0), r.ratio === undefined ? '' : `${fmt(r.ratio, 2)}x`, r.note ?? '']);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const numeric = new Set([2, 3, 4]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
