/**
 * Automatic bans are bounded (bans.maxAutomatic): a peer rotating addresses (an IPv6 /64 holds
 * 2^64 of them) and misbehaving from each must not grow the ban list and its file without end.
 * At the bound a new automatic ban replaces the one that ends soonest; an operator's bans are
 * never evicted nor counted.
 *
 * Real implementations: the proxy itself (startTestProxy) with the shipped message-filter hook
 * and a real ban file on disk; peers are real TCP connections from distinct 127.0.0.0/8
 * addresses speaking P2P frames from the test client; the backend is a plain net server that
 * holds connections (the bans are made before any reply of the node matters).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BanList } from '../../src/proxy/ban-list.js';
import { cleanupStack } from '../support/cleanup.js';
import { P2PClient, httpRequest, loopbackAddress } from '../support/p2p-client.js';
import { ADMIN_TOKEN, startTestProxy } from '../support/proxy-harness.js';
import { waitFor } from '../support/wait.js';

const HOUR = 3600_000;
const MESSAGE_FILTER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../hooks/message-filter.js');

function tempDir(t: Parameters<typeof cleanupStack>[0], prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanupStack(t).push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('BanList: at maxAutomatic a new automatic ban evicts the one ending soonest; operator bans stay; the flag survives the file', async (t) => {
  const file = path.join(tempDir(t, 'bhp-ban-bound-'), 'bans.json');
  let now = 1_000_000;
  const evicted: string[] = [];
  const bans = new BanList(file, { now: () => now, maxAutomatic: 3, onEvict: (b) => evicted.push(b.subnet) });
  bans.add('10.0.0.1', 3 * HOUR, 'a', true);
  bans.add('10.0.0.2', 1 * HOUR, 'b', true); // ends soonest
  bans.add('10.0.0.3', 2 * HOUR, 'c', true);
  bans.add('10.9.0.0/16', 1, 'operator', false); // ends sooner still, but is not automatic
  assert.equal(bans.automaticCount, 3);
  bans.add('10.0.0.4', 4 * HOUR, 'd', true);
  assert.deepEqual(evicted, ['10.0.0.2/32']);
  assert.equal(bans.find('10.0.0.2'), null, 'the evicted ban no longer holds');
  assert.ok(bans.find('10.9.1.1'), 'the operator ban holds');
  assert.equal(bans.automaticCount, 3);

  // an automatic ban of an address the operator banned keeps the operator's ban
  bans.add('10.9.0.0/16', 5 * HOUR, 'misbehaviour', true);
  assert.equal(bans.find('10.9.1.1')?.automatic, undefined);
  assert.equal(bans.automaticCount, 3);
  // re-banning a held automatic address extends it without evicting another
  bans.add('10.0.0.1', 6 * HOUR, 'again', true);
  assert.deepEqual(evicted, ['10.0.0.2/32']);

  // expired automatic bans make room before any live one is evicted
  now += 2 * HOUR + 1; // 10.0.0.3 ended
  bans.add('10.0.0.5', HOUR, 'e', true);
  assert.deepEqual(evicted, ['10.0.0.2/32'], 'the expired ban made room, no live ban was evicted');
  await bans.flush();

  const saved = (JSON.parse(readFileSync(file, 'utf8')) as { bans: { subnet: string; automatic?: boolean }[] }).bans;
  assert.deepEqual(saved.filter((b) => b.automatic).map((b) => b.subnet).sort(), ['10.0.0.1/32', '10.0.0.4/32', '10.0.0.5/32']);
  assert.deepEqual(saved.filter((b) => !b.automatic).map((b) => b.subnet), ['10.9.0.0/16']);

  // a restart with a lower bound keeps the latest-ending automatic bans
  const reloaded = new BanList(file, { now: () => now, maxAutomatic: 2 });
  await reloaded.load();
  assert.equal(reloaded.automaticCount, 2);
  assert.ok(reloaded.find('10.9.0.1'), 'the operator ban is loaded');
  assert.ok(reloaded.find('10.0.0.1') && reloaded.find('10.0.0.4'), 'the two latest-ending automatic bans are kept');
});

test('proxy: 12 addresses misbehaving with bans.maxAutomatic 4 leave 4 automatic bans, 8 evictions counted, the admin ban kept', { timeout: 60_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const file = path.join(tempDir(t, 'bhp-ban-bound-proxy-'), 'bans.json');
  const backend = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => new Promise<void>((r) => backend.close(() => r())));
  const yaml = [
    `bans: { file: "${file}", maxAutomatic: 4 }`,
    'hooks:',
    `  - module: ${JSON.stringify(MESSAGE_FILTER)}`,
    '    options: { inbound: { deny: [{ command: mempool, action: { misbehave: 100 } }] } }',
  ].join('\n');
  const proxy = await startTestProxy((backend.address() as net.AddressInfo).port, yaml, { metrics: true, admin: true });
  cleanup.push(() => proxy.close());
  const admin = await httpRequest(proxy.adminPort!, 'POST', '/bans', { body: { subnet: '127.0.200.0/24', duration: '1h', reason: 'operator' }, token: ADMIN_TOKEN });
  assert.equal(admin.status, 201);

  for (let i = 1; i <= 12; i++) {
    const c = await P2PClient.connect(proxy.port, { localAddress: loopbackAddress(i) });
    cleanup.push(() => c.socket.destroy());
    c.send('version', c.versionMessage());
    c.send('mempool', {});
    assert.ok(await c.closedWithin(5000), `peer ${i} is banned and disconnected`);
  }
  await waitFor(async () => (await proxy.metricValue('bhp_bans_evicted_total')) === 8, 5000, '8 evictions');
  const list = (await httpRequest(proxy.adminPort!, 'GET', '/bans', { token: ADMIN_TOKEN })).json as { bans: { subnet: string; automatic?: boolean }[] };
  assert.deepEqual(list.bans.filter((b) => !b.automatic).map((b) => b.subnet), ['127.0.200.0/24'], 'the admin ban is kept');
  assert.deepEqual(list.bans.filter((b) => b.automatic).map((b) => b.subnet).sort(), [9, 10, 11, 12].map((i) => `${loopbackAddress(i)}/32`).sort(), 'the 4 latest automatic bans');
  assert.equal(await proxy.metricValue('bhp_bans'), 5);
  await waitFor(() => (JSON.parse(readFileSync(file, 'utf8')) as { bans: unknown[] }).bans.length === 5, 5000, 'the ban file to hold 5 bans');
});
