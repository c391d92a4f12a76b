/**
 * `workers: 2`: the built CLI as one primary and two cluster workers in front of a regtest
 * litecoind (Bitcoin Core 0.21's P2P code). Peers land on both workers and GET /peers lists
 * them all; a ban through the admin API is enforced by both workers and is on disk; a ban a
 * worker makes itself (misbehaviour) reaches the other worker; metrics are one endpoint over
 * both; a killed worker is replaced and logged; SIGHUP reloads both; SIGTERM drains all.
 *
 * Real implementations: litecoind, the CLI processes (node:cluster), our P2P test client.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { encodeFrame } from '../../src/codec/index.js';
import { litecoindSkipReason, startLitecoind, type Litecoind } from '../support/litecoind.js';
import { P2PClient, httpRequest } from '../support/p2p-client.js';
import { startProxyProcess, type ProxyProcess } from '../support/proxy-process.js';
import { waitFor } from '../support/wait.js';

const skip = litecoindSkipReason();
let node: Litecoind;
let proxy: ProxyProcess;

before(async () => {
  if (skip) return;
  node = await startLitecoind({ name: 'workers', disableWallet: true });
  proxy = await startProxyProcess(node.p2pPort, 'workers: 2\nlimits: { maxPeersPerAddress: 2 }', { bans: 'threshold: 10' });
});
after(async () => {
  await proxy?.stop();
  await node?.stop();
});

const peers = async () => (await proxy.admin('GET', '/peers')).json.peers as { address: string; worker: number }[];

async function refusedEverywhere(from: string, attempts: number): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    const c = await P2PClient.connect(proxy.port, { localAddress: from });
    c.socket.on('error', () => {});
    if (!(await c.closedWithin(10_000))) return false;
  }
  return true;
}

test('peers land on both workers and the admin API lists them all', { skip }, async () => {
  const clients: P2PClient[] = [];
  for (let n = 10; n < 16; n++) {
    const c = await P2PClient.connect(proxy.port, { localAddress: `127.0.5.${n}` });
    await c.handshake();
    clients.push(c);
  }
  const list = await waitFor(async () => {
    const p = await peers();
    return p.length === 6 ? p : null;
  }, 20_000, 'six peers listed');
  assert.deepEqual(list.map((p) => p.address).sort(), clients.map((_, i) => `127.0.5.${10 + i}`).sort());
  assert.equal(new Set(list.map((p) => p.worker)).size, 2, 'both workers took peers');
  const metrics = (await httpRequest(proxy.metricsPort, 'GET', '/metrics')).text;
  assert.match(metrics, /^bhp_connections 6$/m, 'one metrics endpoint sums the workers');
  for (const c of clients) await c.close();
});

test('a ban through the admin API is on disk and enforced by both workers; a worker-made ban reaches the other', { skip }, async () => {
  const r = await proxy.admin('POST', '/bans', { subnet: '127.0.5.30', duration: '1h', reason: 'workers test' });
  assert.equal(r.status, 201, r.text);
  const file = JSON.parse(readFileSync(path.join(proxy.dir, 'bans.json'), 'utf8')) as { bans: { subnet: string }[] };
  assert.ok(file.bans.some((b) => b.subnet === '127.0.5.30/32'), 'acknowledged means in the ban file');
  assert.equal(await refusedEverywhere('127.0.5.30', 6), true, 'every attempt refused, on whichever worker it lands');
  // misbehaviour: x: messages without announcing the feature score a point each in the worker that took it
  const bad = await P2PClient.connect(proxy.port, { localAddress: '127.0.5.31' });
  bad.socket.on('error', () => {});
  await bad.handshake();
  for (let i = 0; i < 20 && !bad.isClosed; i++) bad.sendRaw(encodeFrame(bad.network, 'x:nope').raw);
  const listed = async () => ((await proxy.admin('GET', '/bans')).json.bans as { subnet: string }[]).some((b) => b.subnet === '127.0.5.31/32');
  await waitFor(listed, 20_000, 'the misbehaving address banned and known to the primary');
  assert.equal(await refusedEverywhere('127.0.5.31', 6), true, 'the worker-made ban holds at both workers');
});

test('maxPeersPerAddress holds over both workers, as with one', { skip }, async () => {
  const open: P2PClient[] = [];
  let refused = 0;
  for (let i = 0; i < 6; i++) {
    const c = await P2PClient.connect(proxy.port, { localAddress: '127.0.5.50' });
    c.socket.on('error', () => {});
    try {
      await c.handshake(10_000);
      open.push(c);
    } catch {
      assert.equal(await c.closedWithin(10_000), true, 'a connection that did not handshake was closed');
      refused++;
    }
  }
  assert.equal(open.length, 2, 'two connections of one address, whichever workers took them');
  assert.equal(refused, 4);
  const served = new Set((await peers()).filter((p) => p.address === '127.0.5.50').map((p) => p.worker));
  assert.ok(served.size >= 1);
  assert.match((await httpRequest(proxy.metricsPort, 'GET', '/metrics')).text, /^bhp_connections_refused_total\{reason="max_per_address"\} 4$/m);
  // a slot freed at one worker can be taken at the other
  await open.pop()!.close();
  await waitFor(async () => (await peers()).filter((p) => p.address === '127.0.5.50').length === 1, 20_000, 'the closed session gone');
  const again = await P2PClient.connect(proxy.port, { localAddress: '127.0.5.50' });
  await again.handshake(10_000);
  for (const c of [...open, again]) await c.close();
});

test('a killed worker is replaced and logged; SIGHUP reloads both', { skip }, async () => {
  const pids = () => [...proxy.output().matchAll(/"pid":(\d+)[^\n]*"msg":"listening for peers"/g)].map((m) => Number(m[1]));
  const before = pids();
  assert.equal(before.length, 2);
  process.kill(before[0]!, 'SIGKILL');
  await waitFor(() => proxy.output().includes('worker exited; starting another'), 20_000, 'the primary to log the dead worker');
  await waitFor(() => pids().length === 3, 30_000, 'a replacement worker listening');
  await waitFor(async () => (await httpRequest(proxy.adminPort, 'GET', '/ready')).status === 200, 30_000, 'ready again with two workers');
  // the replacement got the bans in force
  assert.equal(await refusedEverywhere('127.0.5.30', 6), true, 'the replacement enforces the existing bans');
  process.kill(proxy.proc.pid!, 'SIGHUP');
  await waitFor(() => (proxy.output().match(/"msg":"config reloaded"/g) ?? []).length >= 3, 20_000, 'both workers and the primary to log the reload');
  const c = await P2PClient.connect(proxy.port, { localAddress: '127.0.5.40' });
  await c.handshake();
  await c.close();
});
