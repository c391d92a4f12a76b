/** Parsers for the human-friendly values an operator writes in YAML: durations, sizes, host:port. */
import { parseDurationMs } from './hooks/duration.js';

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1000, mb: 1000 ** 2, gb: 1000 ** 3, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** "60s", "10m", "24h", "1d", "250ms", or a plain number of seconds → milliseconds. */
export function parseDuration(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.round(v * 1000) : null;
  if (typeof v !== 'string') return null;
  return parseDurationMs(v) ?? null;
}

/** "5MB", "512KiB", or a plain number of bytes → bytes. */
export function parseSize(v: unknown): number | null {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? v : null;
  if (typeof v !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*$/i.exec(v);
  if (!m) return null;
  const unit = SIZE_UNITS[(m[2] ?? '').toLowerCase()];
  return unit === undefined ? null : Math.round(Number(m[1]) * unit);
}

export interface HostPort {
  host: string;
  port: number;
}

/** "1.2.3.4:8333", "[::]:8333", "localhost:8333" → { host, port }. */
export function parseHostPort(v: unknown): HostPort | null {
  if (typeof v !== 'string') return null;
  const m = /^\[([0-9a-fA-F:.%\w]+)\]:(\d{1,5})$/.exec(v) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(v);
  if (!m) return null;
  const port = Number(m[2]);
  if (port > 65535) return null;
  return { host: m[1]!, port };
}

export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
