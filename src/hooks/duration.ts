/** "24h", "30m", "90s", "250ms", "1d" → ms; undefined when it does not parse (shared by config and hook results). */
export function parseDurationMs(v: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/i.exec(v);
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2]!.toLowerCase() as 'ms'];
  return Math.round(Number(m[1]) * unit);
}
