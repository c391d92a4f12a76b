/** The example config an operator copies must validate, with every hook in it enabled. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = path.join(root, 'dist/src/cli.js');

test('deploy/proxy.example.yaml passes `check` with all its hooks enabled', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-example-'));
  const list = path.join(dir, 'denylist.txt');
  writeFileSync(list, '# test list\n192.0.2.0/24\n');
  const text = readFileSync(path.join(root, 'deploy/proxy.example.yaml'), 'utf8')
    .replaceAll('enabled: false', 'enabled: true')
    .replace('/etc/bitcoin-hook-proxy/denylist.txt', list)
    .replace('/var/lib/bitcoin-hook-proxy/message_capture', path.join(dir, 'capture'))
    .replace('/var/lib/bitcoin-hook-proxy/paywall.json', path.join(dir, 'paywall.json'));
  assert.ok(!text.includes('enabled: false'));
  // placed in deploy/ so package names resolve exactly as for the real file
  const file = path.join(root, 'deploy', `.example-check-${process.pid}.yaml`);
  writeFileSync(file, text);
  try {
    const r = spawnSync(process.execPath, [cli, 'check', '--config', file], { env: { ...process.env, BHP_ADMIN_TOKEN: 'x'.repeat(32), BHP_PAYWALL_KEYS: `1 ${'ab'.repeat(32)}` }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /valid \(network mainnet, 2 listener\(s\), backend 127\.0\.0\.1:8433, 7 hook\(s\)\)/);
  } finally {
    spawnSync('rm', ['-f', file]);
  }
});
