/** Parsers for the human-friendly values an operator writes in YAML: durations, sizes, host:port. */
import ipaddr from 'ipaddr.js';

// one parser for sizes and durations, shared with every hook (src/hooks/units.ts)
export { parseDuration, parseSize } from './hooks/units.js';

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

/** Only this machine can reach it: localhost, 127.0.0.0/8, ::1 (also IPv4-mapped). */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  try {
    return ipaddr.process(host.replace(/%.*$/, '')).range() === 'loopback';
  } catch {
    return false; // a host name: it may resolve to anything
  }
}
