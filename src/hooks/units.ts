/**
 * The one parser for the sizes and durations an operator writes, in the config and in every
 * hook's options (exported through the public hook API). docs/hooks.md "Sizes and durations".
 *
 *   sizes:     a number of bytes, or a number with a unit: B; KB MB GB TB are SI (10^3 ...),
 *              KiB MiB GiB TiB are IEC (2^10 ...); case-insensitive ("5mb" = "5MB").
 *   durations: a number of seconds, or a number with a unit: ms s m h d w, case-insensitive.
 *
 * A number without a unit, written as a number or as a string ("900"), is bytes or seconds.
 * Results are integers (bytes, milliseconds) no larger than Number.MAX_SAFE_INTEGER; anything
 * else (negative, NaN, Infinity, 1e300, bare "k") is refused with null, never guessed.
 */

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const DURATION_MS: Readonly<Record<string, number>> = { '': 1000, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

const NUMBER_WITH_UNIT = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i;

function scaled(v: unknown, units: Readonly<Record<string, number>>): number | null {
  let n: number;
  let unit: number | undefined;
  if (typeof v === 'number') {
    [n, unit] = [v, units['']];
  } else if (typeof v === 'string') {
    const m = NUMBER_WITH_UNIT.exec(v);
    if (!m) return null;
    [n, unit] = [Number(m[1]), units[m[2]!.toLowerCase()]];
  } else {
    return null;
  }
  if (unit === undefined || !Number.isFinite(n) || n < 0) return null;
  if (unit === 1 && !Number.isInteger(n)) return null; // no fractions of the base unit (bytes, ms)
  const r = Math.round(n * unit);
  return Number.isSafeInteger(r) ? r : null;
}

/** "5MB" (5,000,000), "512KiB" (524,288), "1.5 GiB", or a number of bytes → bytes; null when it is not a size. */
export function parseSize(v: unknown): number | null {
  return scaled(v, SIZE_UNITS);
}

/** "250ms", "60s", "10m", "24h", "7d", "2w", or a number of seconds → milliseconds; null when it is not a duration. */
export function parseDuration(v: unknown): number | null {
  return scaled(v, DURATION_MS);
}

/** What an operator may write, for error messages. */
export const SIZE_HINT = 'a size like 5MB (SI), 512KiB (IEC) or a number of bytes';
export const DURATION_HINT = 'a duration like 500ms, 60s, 10m, 24h, 7d, 2w or a number of seconds';
