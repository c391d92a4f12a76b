/**
 * Per-file seeds: each test file draws its own sequence, so skipping a suite (a missing Debian
 * package) cannot change what another draws, and every random draw in the tests goes through
 * them. Real implementation for the end-to-end check: the cross-check file run twice by
 * node --test, with python3-bitcoinlib hidden (BHP_TEST_WITHOUT) and without.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { filePrng, fileSeed, seedKey } from './seed.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

test('a seed per file: stable, different between files and salts, the same for the compiled file and its source', () => {
  const a = pathToFileURL(path.join(ROOT, 'dist/test/codec/cross-check.test.js')).href;
  const b = pathToFileURL(path.join(ROOT, 'dist/test/codec/messages.test.js')).href;
  assert.equal(seedKey(a), 'test/codec/cross-check.test');
  assert.equal(seedKey(pathToFileURL(path.join(ROOT, 'test/codec/cross-check.test.ts')).href), 'test/codec/cross-check.test');
  assert.equal(fileSeed(a), fileSeed(a));
  assert.notEqual(fileSeed(a), fileSeed(b));
  assert.notEqual(fileSeed(a, 'generated'), fileSeed(a, 'bitcoinjs'));
  const first = Array.from({ length: 5 }, filePrng(a));
  assert.deepEqual(Array.from({ length: 5 }, filePrng(a)), first, 'a fresh generator replays the same draws');
  assert.ok(first.every((x) => x >= 0 && x < 1));
});

test('BHP_TEST_SEED moves every file to other draws', () => {
  const a = pathToFileURL(path.join(ROOT, 'dist/test/codec/cross-check.test.js')).href;
  const before = fileSeed(a);
  const saved = process.env.BHP_TEST_SEED;
  try {
    process.env.BHP_TEST_SEED = '7';
    assert.notEqual(fileSeed(a), before);
  } finally {
    if (saved === undefined) delete process.env.BHP_TEST_SEED;
    else process.env.BHP_TEST_SEED = saved;
  }
  assert.equal(fileSeed(a), before);
});

test('every random draw in the tests is seeded per file: no Math.random, no literal prng seeds, fast-check configured', () => {
  const files = sources(path.join(ROOT, 'test')).filter((f) => !f.endsWith(`${path.sep}seed.ts`) && !f.endsWith(`${path.sep}seed.test.ts`));
  assert.ok(files.length > 30);
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    const rel = path.relative(ROOT, f);
    assert.doesNotMatch(text, /Math\.random\(/, `${rel} draws with Math.random (use filePrng(import.meta.url))`);
    assert.doesNotMatch(text, /\bprng\(\s*0?x?[0-9a-f]+\s*\)/i, `${rel} seeds a generator with a literal (use filePrng(import.meta.url))`);
    if (/from 'fast-check'/.test(text)) assert.match(text, /fc\.configureGlobal\(\{ seed: fileSeed\(import\.meta\.url\) \}\)/, `${rel} uses fast-check without its own seed`);
  }
});

test("skipping the python3-bitcoinlib suite changes nothing for the bcoin suite of the same file, and shows as skips", { timeout: 120_000 }, () => {
  const file = path.join(ROOT, 'dist/test/codec/cross-check.test.js');
  // the child is a fresh machine without the package, not CI (where a missing package must fail)
  const run = (without: string) => {
    const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', file], { encoding: 'utf8', env: { ...process.env, BHP_TEST_WITHOUT: without, NODE_TEST_CONTEXT: undefined, CI: undefined } });
    const count = (name: string) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(r.stdout)?.[1]);
    return { status: r.status, out: r.stdout, pass: count('pass'), fail: count('fail'), skipped: count('skipped') };
  };
  const hidden = run('python3-bitcoinlib');
  assert.equal(hidden.status, 0, hidden.out);
  assert.equal(hidden.fail, 0);
  assert.equal(hidden.skipped, 2, 'the two python3-bitcoinlib tests count as skipped');
  assert.match(hidden.out, /ok \d+ - parses and re-serializes what we generate, with the same fields\n/);
  const present = run('');
  assert.equal(present.fail, 0, present.out);
  // with python there, its two tests run instead of skipping (unless this machine lacks it too)
  assert.equal(present.pass + present.skipped, hidden.pass + hidden.skipped);
});
