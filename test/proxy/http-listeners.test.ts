/**
 * The HTTP listeners (metrics, admin) answer without a token on /metrics, /health and /ready,
 * and the metrics one is often opened to a Prometheus host. Connections that never send a
 * request must not take the file descriptors the proxy needs for peers and for bitcoind: one
 * address holds a bounded number of them, and peers and other HTTP clients are served meanwhile.
 *
 * Real implementations: the built CLI (`node dist/src/cli.js run`) as a child process under a
 * file descriptor limit of 200 (bash's ulimit), real TCP connections from addresses in
 * 127.0.0.0/8; the backend is a plain net server that holds connections (no P2P bytes needed:
 * the harm was the proxy failing to connect to it).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { CLI, tempDir } from '../support/cli-process.js';
import { cleanupStack } from '../support/cleanup.js';
import { httpRequest } from '../support/p2p-client.js';
import { freePort } from '../support/ports.js';
import { ADMIN_TOKEN } from '../support/proxy-harness.js';
import { sleep, waitFor } from '../support/wait.js';

/** `n` connections from `localAddress` that never send a byte; how many are still open after a moment. */
async function holdIdle(port: number, localAddress: string, n: number, held: net.Socket[]): Promise<number> {
  const mine: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    s.on('error', () => {});
    mine.push(s);
  }
  held.push(...mine);
  await sleep(1000);
  return mine.filter((s) => s.readyState === 'open').length;
}

/** Whether a peer connecting now is kept (relayed to the backend) rather than closed by the proxy. */
function peerKept(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    let closed = false;
    s.on('close', () => (closed = true));
    setTimeout(() => {
      s.destroy();
      resolve(!closed);
    }, 800);
  });
}

test('idle connections to the metrics and admin listeners cannot use up the file descriptors peers and bitcoind need', { timeout: 60_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const dir = tempDir(t);
  const backend = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => new Promise<void>((r) => backend.close(() => r())));
  const [port, metricsPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const file = path.join(dir, 'proxy.yaml');
  writeFileSync(
    file,
    [
      'network: regtest',
      `listen: 127.0.0.1:${port}`,
      `backend: 127.0.0.1:${(backend.address() as net.AddressInfo).port}`,
      `metrics: { listen: "127.0.0.1:${metricsPort}" }`,
      `admin: { listen: "127.0.0.1:${adminPort}", token: "${ADMIN_TOKEN}" }`,
    ].join('\n'),
  );
  const child = spawn('bash', ['-c', `ulimit -n 200 && exec "${process.execPath}" "${CLI}" run --config "${file}" --log-format json`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  cleanup.push(() => child.kill('SIGKILL'));
  await waitFor(async () => (await httpRequest(metricsPort, 'GET', '/health').catch(() => null))?.status === 200, 10_000, 'the metrics listener');
  assert.ok(await peerKept(port), 'a peer is served before');

  const held: net.Socket[] = [];
  cleanup.push(() => held.forEach((s) => s.destroy()));
  const onMetrics = await holdIdle(metricsPort, '127.0.0.9', 150, held);
  const onAdmin = await holdIdle(adminPort, '127.0.0.9', 150, held);
  assert.ok(onMetrics <= 16 && onAdmin <= 16, `one address holds at most 16 idle connections per listener (held ${onMetrics} on metrics, ${onAdmin} on admin)`);

  assert.ok(await peerKept(port), `a peer is still served while they are held (proxy log: ${output.split('\n').filter((l) => /EMFILE/.test(l))[0] ?? 'no EMFILE'})`);
  assert.equal((await httpRequest(metricsPort, 'GET', '/metrics')).status, 200, 'Prometheus from another address still scrapes');
  assert.equal((await httpRequest(adminPort, 'GET', '/peers', { token: ADMIN_TOKEN })).status, 200, 'the admin API still answers another address');
  assert.doesNotMatch(output, /EMFILE/);
});
