#!/usr/bin/env node
// Runs every compiled test file with `node --test`, listing the files itself: Node 20 has no
// globs in --test, and from Node 21 on a directory argument is no longer searched. Works the
// same on Node 20, 22 and 24. Arguments filter the files by substring:
//   node scripts/run-tests.mjs            # every dist/test/**/*.test.js
//   node scripts/run-tests.mjs codec/ bans
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const testDir = join(root, 'dist', 'test');

function list(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...list(p));
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

let files;
try {
  files = list(testDir).sort();
} catch {
  console.error(`no compiled tests in ${testDir}: run \`npm run build\` first`);
  process.exit(2);
}
const filters = process.argv.slice(2);
if (filters.length) files = files.filter((f) => filters.some((s) => relative(root, f).includes(s)));
if (!files.length) {
  console.error(`no test file matches ${filters.join(', ')}`);
  process.exit(2);
}
const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...files.map((f) => relative(root, f))], { cwd: root, stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
