/**
 * The README's first command: `npm start` runs the demo, a bcoin regtest node in-process with
 * the proxy in front. A second bcoin node (a real Bitcoin full node from npm) syncs through it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBcoin, bcoinAvailable } from '../support/bcoin-node.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

test('npm start runs the demo command', () => {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts.start ?? '', /node dist\/src\/cli\.js demo$/);
});

test('the demo serves a real node: bcoin syncs its chain through the proxy', { skip: bcoinAvailable() ? false : 'bcoin not installed', timeout: 90_000 }, async (t) => {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(root, 'dist/src/cli.js'), 'demo', '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  t.after(() => child.kill('SIGKILL'));
  await waitFor(() => output.includes(`proxy on 127.0.0.1:${port}`), 30_000, 'the demo to start');
  const peer = await startBcoin({ name: 'demo-peer', listen: false });
  t.after(() => peer.stop());
  peer.connectTo('127.0.0.1', port);
  await peer.waitForHeight(10, 30_000);
  assert.ok(peer.node.chain.height >= 10);
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  assert.equal(code, 0, output);
});
