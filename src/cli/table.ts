/** Plain-text tables for a terminal; every cell is made safe to print (peers choose their user agents). */
import { withoutControls } from '../logging.js';

export type Cell = string | number | boolean | null | undefined;

/** Columns padded to their widest cell, two spaces apart; numbers right-aligned. */
export function table(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = rows.map((r) => r.map(cellText));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || r[i] === null || r[i] === undefined));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...text.map(line)].join('\n');
}

function cellText(c: Cell): string {
  if (c === null || c === undefined || c === '') return '-';
  return withoutControls(String(c));
}

/** 1234567 → "1.2 MB" (SI, as the config's sizes). */
export function bytes(n: unknown): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '-';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** How long ago (or from now) an ISO time is, as "3h12m" / "in 23h59m". */
export function relative(iso: unknown, now = Date.now()): string {
  const t = typeof iso === 'string' ? Date.parse(iso) : NaN;
  if (!Number.isFinite(t)) return '-';
  const ms = t - now;
  const s = Math.round(Math.abs(ms) / 1000);
  const parts: [number, string][] = [
    [Math.floor(s / 86400), 'd'],
    [Math.floor((s % 86400) / 3600), 'h'],
    [Math.floor((s % 3600) / 60), 'm'],
    [s % 60, 's'],
  ];
  const first = parts.findIndex(([v]) => v > 0);
  const text = first < 0 ? '0s' : parts.slice(first, first + 2).map(([v, u]) => `${v}${u}`).join('');
  return ms > 0 ? `in ${text}` : `${text} ago`;
}
