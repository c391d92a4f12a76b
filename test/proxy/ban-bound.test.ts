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
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { BanList } from '../../src/proxy/ban-list.js';
import { cleanupStack } from '../support/cleanup.js';
import { P2PClient, httpRequest, loopbackAddress } from '../support/p2p-client.js';
import { RedisServer, redisSkipReason } from '../support/redis.js';
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

test('BanList: a ban file of 60,000 automatic bans loads in seconds with the default bound, keeping the latest-ending 10,000', { timeout: 120_000 }, async (t) => {
  // Real file system. The file a proxy left before bans were bounded (the commit names 300k);
  // loading it once took and evicted each ban in turn, a walk of the list each: ~14 s for 40k.
  const file = path.join(tempDir(t, 'bhp-ban-bound-load-'), 'bans.json');
  const now = Date.now();
  const n = 60_000;
  const bans = Array.from({ length: n }, (_, i) => {
    const k = (i * 7919) % n; // every end once, not in file order
    return { subnet: `10.${k >> 16}.${(k >> 8) & 255}.${k & 255}/32`, until: now + HOUR + k * 1000, reason: 'misbehaviour', created: now, automatic: true };
  });
  writeFileSync(file, JSON.stringify({ version: 1, bans }));
  let evicted = 0;
  const list = new BanList(file, { onEvict: () => evicted++ });
  const started = performance.now();
  await list.load();
  const ms = performance.now() - started;
  assert.equal(list.automaticCount, 10_000);
  assert.ok(list.find(`10.0.${((n - 1) >> 8) & 255}.${(n - 1) & 255}`), 'the latest-ending ban is kept');
  assert.equal(list.find('10.0.0.0'), null, 'the soonest-ending ban is not');
  assert.equal(evicted, 0, 'bans over the bound in the file are not loaded, not evicted one by one');
  assert.ok(ms < 10_000, `loaded in ${Math.round(ms)} ms (the old way: minutes)`);
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

test('Redis: more automatic bans in the shared store than bans.maxAutomatic: the proxy keeps the latest-ending ones and does not re-take the rest at every sync', { timeout: 60_000, skip: redisSkipReason() }, async (t) => {
  // Real implementations: Debian's redis-server on a free port, the proxy (startTestProxy) with
  // the Redis store syncing every second. The shared hash holds what every proxy of a fleet
  // published (eviction is local: another proxy's evicted bans stay there), written here with
  // ioredis in the shape RedisStore writes, latest-ending first.
  const cleanup = cleanupStack(t);
  const redis = await RedisServer.start();
  cleanup.push(() => redis.stop());
  const client = new Redis(redis.url, { lazyConnect: true });
  await client.connect();
  cleanup.push(() => void client.disconnect());
  const now = Date.now();
  for (let i = 10; i >= 1; i--) {
    const ban = { subnet: `10.1.0.${i}/32`, until: now + i * HOUR, reason: 'misbehaviour', created: now, automatic: true };
    await client.hset('bb:bans', ban.subnet, JSON.stringify(ban));
  }
  const backend = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => new Promise<void>((r) => backend.close(() => r())));
  const yaml = [`store: { redis: "${redis.url}", prefix: "bb:", syncInterval: 1s }`, 'bans: { maxAutomatic: 3 }'].join('\n');
  const proxy = await startTestProxy((backend.address() as net.AddressInfo).port, yaml, { metrics: true, admin: true });
  cleanup.push(() => proxy.close());
  const held = async () => ((await httpRequest(proxy.adminPort!, 'GET', '/bans', { token: ADMIN_TOKEN })).json as { bans: { subnet: string }[] }).bans.map((b) => b.subnet).sort();
  await waitFor(async () => (await held()).length === 3, 10_000, 'the shared bans to arrive');
  await new Promise((r) => setTimeout(r, 3500)); // three more syncs
  assert.deepEqual(await held(), ['10.1.0.10/32', '10.1.0.8/32', '10.1.0.9/32'], 'the latest-ending automatic bans are the ones held');
  const taken = proxy.logs.filter((l) => l.msg === 'banned by another proxy').length;
  assert.ok(taken <= 10, `each shared ban taken at most once, not again at every sync (taken ${taken} times)`);
});

test('BanList: a reload that lowers bans.maxAutomatic from 40,000 to 100 evicts the surplus at the next ban without stalling the event loop', { timeout: 120_000 }, () => {
  // No file: the cost is in memory. Each eviction walked the whole list to find the soonest end,
  // so the first ban after the reload evicted 39,901 bans with as many walks (~8 s, every peer's
  // traffic stalled meanwhile).
  const n = 40_000;
  let evicted = 0;
  const bans = new BanList(null, { maxAutomatic: n, onEvict: () => evicted++ });
  for (let i = 0; i < n; i++) bans.add(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, HOUR + ((i * 7919) % n) * 1000, 'misbehaviour', true);
  bans.maxAutomatic = 100; // what a reload does
  const started = performance.now();
  bans.add('10.200.0.1', 2 * n * 1000 + HOUR, 'misbehaviour', true);
  const ms = performance.now() - started;
  assert.equal(bans.automaticCount, 100);
  assert.equal(evicted, n - 99);
  const k = n - 1; // the latest-ending of the first ones (i * 7919 % n === n - 1) is kept
  const i = [...Array(n).keys()].find((j) => (j * 7919) % n === k)!;
  assert.ok(bans.find(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`), 'the latest-ending bans are the ones kept');
  assert.ok(ms < 2000, `the surplus went in ${Math.round(ms)} ms`);
});
