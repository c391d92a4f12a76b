/** Kept for the callers of the former duration parser (src/proxy/peer-session.ts); the one parser is units.ts. */
import { parseDuration } from './units.js';

export function parseDurationMs(v: string): number | undefined {
  return parseDuration(v) ?? undefined;
}
