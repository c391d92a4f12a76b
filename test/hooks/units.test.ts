/**
 * The one size and duration parser (src/hooks/units.ts, exported by the public hook API) and
 * that the config and every shipped hook read the same string as the same value.
 *
 * Real implementations: the project's config loader (parseConfig) and the shipped hooks' own
 * option schemas (each module's default export `options`, as the loader calls it). No sockets:
 * this is parsing only. Randomness: fast-check with a fixed per-file seed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { fileSeed } from '../support/seed.js';
import { parseConfig } from '../../src/config.js';
import { parseDuration, parseSize, type HookModule } from '../../src/hooks/index.js';
import blockCache from '../../hooks/block-cache.js';
import capture from '../../hooks/capture.js';
import peerFilter from '../../hooks/peer-filter.js';

// this file's own seed: other files' draws (or skips) never change what it tests
fc.configureGlobal({ seed: fileSeed(import.meta.url) });

const SEED = fileSeed(import.meta.url, "units");

const SIZE_UNITS: [string, number][] = [['', 1], ['B', 1], ['KB', 1e3], ['MB', 1e6], ['GB', 1e9], ['TB', 1e12], ['KiB', 1024], ['MiB', 1024 ** 2], ['GiB', 1024 ** 3], ['TiB', 1024 ** 4]];
const DURATION_UNITS: [string, number][] = [['', 1000], ['ms', 1], ['s', 1000], ['m', 60_000], ['h', 3_600_000], ['d', 86_400_000], ['w', 604_800_000]];

test('sizes: SI for KB/MB/GB, IEC for KiB/MiB/GiB, plain numbers are bytes; the rest is refused', () => {
  const good: [unknown, number][] = [
    [0, 0],
    [65536, 65536],
    ['65536', 65536],
    ['5MB', 5_000_000],
    ['5mb', 5_000_000],
    ['5 Mb', 5_000_000],
    ['5MiB', 5_242_880],
    ['5mib', 5_242_880],
    ['1.5GiB', 1.5 * 2 ** 30],
    ['1.5 KB', 1500],
    ['512KiB', 524_288],
    ['100kB', 100_000],
    ['  7 B ', 7],
  ];
  for (const [v, want] of good) assert.equal(parseSize(v), want, JSON.stringify(v));
  for (const v of ['512k', '1m', '5 parsecs', '-1', -1, '1e3', 1.5, '1.5', '1.5B', 'MB', '', ' ', NaN, Infinity, 1e300, '9999999999TiB', null, undefined, true, {}, [], '5 M B', '0x10']) {
    assert.equal(parseSize(v), null, JSON.stringify(v) ?? String(v));
  }
});

test('durations: ms s m h d w, case-insensitive, plain numbers are seconds; the rest is refused', () => {
  const good: [unknown, number][] = [
    [0, 0],
    [90, 90_000],
    [0.5, 500],
    ['90', 90_000],
    ['250ms', 250],
    ['250MS', 250],
    ['60s', 60_000],
    ['10m', 600_000],
    ['10M', 600_000],
    ['24h', 86_400_000],
    ['7d', 604_800_000],
    ['2w', 1_209_600_000],
    ['2W', 1_209_600_000],
    ['1.5h', 5_400_000],
    [' 30 s ', 30_000],
  ];
  for (const [v, want] of good) assert.equal(parseDuration(v), want, JSON.stringify(v));
  for (const v of ['-1s', -1, '1y', '5 parsecs', '1.5ms', '1e300', 1e300, Infinity, NaN, 's', '', '1 h 30 m', null, undefined, false]) {
    assert.equal(parseDuration(v), null, JSON.stringify(v) ?? String(v));
  }
});

/** `n` with `unit` written in a random case, with or without a space. */
const written = (unit: string) => fc.tuple(fc.boolean(), fc.array(fc.boolean(), { minLength: unit.length, maxLength: unit.length })).map(([space, upper]) => (space ? ' ' : '') + [...unit].map((ch, i) => (upper[i] ? ch.toUpperCase() : ch.toLowerCase())).join(''));

test('property: an integer with any unit, in any case, is that integer times the unit', () => {
  for (const [units, parse] of [
    [SIZE_UNITS, parseSize],
    [DURATION_UNITS, parseDuration],
  ] as const) {
    fc.assert(
      fc.property(fc.constantFrom(...units), fc.nat({ max: 1_000_000 }), fc.context(), ([unit, scale], n, ctx) => {
        fc.pre(Number.isSafeInteger(n * scale));
        const text = fc.sample(written(unit), { seed: n, numRuns: 1 })[0]!;
        ctx.log(`${n}${text}`);
        assert.equal(parse(`${n}${text}`), n * scale);
      }),
      { seed: SEED, numRuns: 2000 },
    );
  }
});

/** What a shipped hook's options schema makes of one option. */
function hookOption(mod: HookModule<unknown>, options: Record<string, unknown>, key: string): unknown {
  const r = mod.options!.safeParse(options);
  return r.success ? (r.data as Record<string, unknown>)[key] : null;
}

function configValue(yaml: string, pick: (c: ReturnType<typeof parseConfig>) => number): number | null {
  try {
    return pick(parseConfig(`network: regtest\nbackend: 127.0.0.1:1\n${yaml}\n`, 'units.yaml', {}));
  } catch {
    return null;
  }
}

test('one parser everywhere: the config, capture, block-cache and peer-filter read a size or duration alike', () => {
  const mods = { capture, blockCache, peerFilter } as unknown as Record<string, HookModule<unknown>>;
  for (const v of ['5MB', '5MiB', '64KiB', '100kB', '2GB', '1.5 GiB', '4096', 8192, '512k', '16m', '1 TB x']) {
    const want = parseSize(v);
    const inConfig = configValue(`limits: { receiveBuffer: ${JSON.stringify(v)} }`, (c) => c.limits.receiveBuffer);
    const inCapture = hookOption(mods.capture!, { dir: '/tmp', maxFileBytes: v }, 'maxFileBytes');
    const inBlockCache = hookOption(mods.blockCache!, { maxBytes: v }, 'maxBytes');
    assert.deepEqual([inConfig, inCapture, inBlockCache], [want, want, want], `${JSON.stringify(v)} → ${want}`);
  }
  for (const v of ['90s', '15m', '2h', '7d', '2w', '1W', '2H', 900, '900', '1.5h', '1y', '5 parsecs']) {
    const ms = parseDuration(v);
    const inConfig = configValue(`bans: { duration: ${JSON.stringify(v)} }`, (c) => c.bans.duration);
    const inBlockCache = hookOption(mods.blockCache!, { txTtl: v }, 'txTtl');
    const inPeerFilter = hookOption(mods.peerFilter!, { action: 'ban', banDuration: v }, 'banDuration');
    const seconds = ms === null ? null : ms / 1000;
    assert.deepEqual([inConfig, inBlockCache, inPeerFilter], [ms, seconds, seconds], `${JSON.stringify(v)} → ${ms} ms`);
  }
});
