/**
 * Per-file seeds for every random draw a test makes (our PRNG and fast-check).
 *
 * A seed is derived from the test file's path inside the repository, so each file draws its
 * own sequence: skipping one suite (a Debian package missing) cannot shift what another file,
 * or another suite of the same file that builds its own generator, draws. BHP_TEST_SEED=N
 * mixes N into every file's seed to explore other draws; the seed in use is printed by
 * `seedNote` so a failure can be replayed.
 */
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The file's path relative to the repository, with dist/ and the .js/.ts suffix removed. */
export function seedKey(moduleUrl: string): string {
  const rel = path.relative(ROOT, fileURLToPath(moduleUrl)).split(path.sep).join('/');
  return rel.replace(/^dist\//, '').replace(/\.(js|ts)$/, '');
}

/** FNV-1a over the key (and BHP_TEST_SEED when set): a stable 32-bit seed per test file. */
export function fileSeed(moduleUrl: string, salt = ''): number {
  const extra = process.env.BHP_TEST_SEED ?? '';
  let h = 0x811c9dc5;
  for (const ch of `${seedKey(moduleUrl)}#${salt}#${extra}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h | 0;
}

/** One line for t.diagnostic / a failure message: which seed this file drew with. */
export function seedNote(moduleUrl: string, salt = ''): string {
  return `seed ${fileSeed(moduleUrl, salt)} (${seedKey(moduleUrl)}${salt ? `#${salt}` : ''}${process.env.BHP_TEST_SEED ? `, BHP_TEST_SEED=${process.env.BHP_TEST_SEED}` : ''})`;
}

/** A small deterministic PRNG (mulberry32) for chunk sizes and generated inputs. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The file's own generator: `const rand = filePrng(import.meta.url)`. */
export function filePrng(moduleUrl: string, salt = ''): () => number {
  return prng(fileSeed(moduleUrl, salt));
}

export function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}
