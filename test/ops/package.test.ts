/**
 * The package as npm ships it: LICENSE, engines, the test command, a `prepare` build so a pack
 * (or a git install) of an unbuilt checkout ships dist/, every export resolving to a file in
 * the pack, and the main entry importable.
 *
 * Real implementations: npm (the one running this machine's Node) packs a copy of the sources
 * with no dist/; the TypeScript compiler builds it through `prepare`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
interface Pkg {
  name: string;
  license: string;
  engines: { node: string };
  main: string;
  types: string;
  bin: Record<string, string>;
  scripts: Record<string, string>;
  files: string[];
  exports: Record<string, { types: string; default: string }>;
}
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Pkg;

test('LICENSE is the MIT license package.json names', () => {
  assert.equal(pkg.license, 'MIT');
  const text = readFileSync(path.join(ROOT, 'LICENSE'), 'utf8');
  assert.match(text, /^MIT License\n/);
  assert.match(text, /Permission is hereby granted, free of charge/);
  assert.ok(pkg.files.includes('LICENSE'));
});

test('engines, and a test command that works on Node 20, 22 and 24 (no directory or glob argument to --test)', () => {
  assert.equal(pkg.engines.node, '>=20.19');
  assert.match(pkg.scripts.test!, /node scripts\/run-tests\.mjs$/);
  assert.doesNotMatch(pkg.scripts.test!, /--test\s+\S*dist\/test\/?(\s|$)/);
  assert.equal(pkg.scripts.prepare, 'npm run build');
  // the runner refuses a filter that matches nothing, and runs what matches
  const none = spawnSync(process.execPath, [path.join(ROOT, 'scripts/run-tests.mjs'), 'no-such-test-file'], { encoding: 'utf8' });
  assert.equal(none.status, 2);
  assert.match(none.stderr, /no test file matches no-such-test-file/);
  const one = spawnSync(process.execPath, [path.join(ROOT, 'scripts/run-tests.mjs'), 'test/support/seed.test.js'], { encoding: 'utf8', env: { ...process.env, NODE_TEST_CONTEXT: undefined } });
  assert.equal(one.status, 0, one.stdout + one.stderr);
  assert.match(one.stdout, /^(# |ℹ )pass [1-9]/m); // tap (Node 20, 22 on a pipe) or spec (Node 24)
  assert.match(one.stdout, /^(# |ℹ )fail 0$/m);
});

test('npm pack of a checkout without dist/ builds it (prepare) and ships the CLI, the entry points, the schema and the LICENSE', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-pack-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'LICENSE', 'README.md', 'src', 'hooks', 'scripts', 'schema', 'deploy', 'docs']) cpSync(path.join(ROOT, p), path.join(dir, p), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  assert.ok(!existsSync(path.join(dir, 'dist')));
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8', timeout: 170_000 });
  assert.equal(r.status, 0, r.stderr);
  const [info] = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as { files: { path: string }[] }[];
  const files = new Set(info!.files.map((f) => f.path));
  for (const f of ['dist/src/cli.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'schema/config.schema.json', 'LICENSE', 'README.md', 'deploy/grafana/bitcoin-hook-proxy.json', 'deploy/prometheus/alerts.yml']) {
    assert.ok(files.has(f), `the pack has ${f}`);
  }
  assert.ok(![...files].some((f) => f.startsWith('dist/test/') || f.startsWith('src/') || f.startsWith('dist/bench/')), 'no tests, benchmarks or TypeScript sources');
  // main, types, bin and every export (a wildcard: at least one file) point into the pack
  const inPack = (target: string) => (target.includes('*') ? [...files].some((f) => new RegExp(`^${target.replace(/^\.\//, '').replace('*', '[^/]+')}$`).test(f)) : files.has(target.replace(/^\.\//, '')));
  for (const target of [pkg.main, pkg.types, ...Object.values(pkg.bin)]) assert.ok(inPack(target), `${target} is in the pack`);
  for (const [name, e] of Object.entries(pkg.exports)) {
    if (typeof e === 'string') continue;
    assert.ok(inPack(e.default) && inPack(e.types), `export ${name}: ${e.default}`);
  }
});

test('the main entry exports the embedding API and the hook API', async () => {
  const main = (await import(pathToFileURL(path.join(ROOT, pkg.main)).href)) as Record<string, unknown>;
  for (const name of ['startProxy', 'loadConfig', 'parseConfig', 'ConfigError', 'defineHook', 'HOOK_API_VERSION', 'HookLoadError', 'codec']) assert.ok(name in main, `exports ${name}`);
  assert.equal(typeof main.startProxy, 'function');
});

test('installed from npm (no devDependencies): demo says how to add bcoin there, not only in a clone', { timeout: 60_000 }, (t) => {
  // the package as npm installs it into a project: dist/ and package.json, its dependencies
  // beside it, no bcoin (a devDependency). Real implementations: the built CLI, Node's resolver.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-installed-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const modules = path.join(dir, 'project', 'node_modules');
  const installed = path.join(modules, pkg.name);
  for (const p of ['package.json', 'dist/src', 'dist/hooks']) cpSync(path.join(ROOT, p), path.join(installed, p), { recursive: true });
  const deps = Object.keys((JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies);
  for (const d of deps) {
    mkdirSync(path.dirname(path.join(modules, d)), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules', d), path.join(modules, d));
  }
  const r = spawnSync(process.execPath, [path.join(installed, pkg.bin[pkg.name]!), 'demo'], { cwd: path.join(dir, 'project'), encoding: 'utf8', timeout: 50_000 });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /npm install bcoin/, 'says what to install where the package was installed from npm');
  assert.match(r.stderr, /"leveldown": "6\.1\.1"/, "bcoin's own leveldown does not build on Node 20+: the override that makes it install");
  const help = spawnSync(process.execPath, [path.join(installed, pkg.bin[pkg.name]!), 'demo', '--help'], { encoding: 'utf8', timeout: 50_000 });
  assert.match(help.stdout, /npm install bcoin/);
});
