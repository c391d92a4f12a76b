/**
 * Redis comes back without its data: killed before its append-only file or snapshot had the
 * newest writes (Debian's default redis.conf snapshots at most once a minute), or a failover to
 * a replica that lagged. A ban the proxy acknowledged (on disk in its ban file) and had published
 * is then missing from the hash; that is not a ban lifted elsewhere, and the proxy must not lift
 * it, neither in memory nor in its ban file.
 *
 * Real implementations: Debian's redis-server (started by the test on a free port, its data
 * directory wiped between a SIGKILL and the restart), the proxy in process with its ban file,
 * our P2P client as the banned peer (refused before any node is contacted, so the backend is a
 * port nobody listens on).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Redis } from 'ioredis';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cleanupStack } from '../support/cleanup.js';
import { P2PClient } from '../support/p2p-client.js';
import { freePort } from '../support/ports.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { RedisServer, redisSkipReason } from '../support/redis.js';
import { sleep, waitFor } from '../support/wait.js';

const skip = redisSkipReason();

test('Redis restarted empty: the bans this proxy published stay banned, in memory and in its ban file', { skip, timeout: 60_000 }, async (t) => {
  const steps = cleanupStack(t);
  const redis = await RedisServer.start();
  steps.push(() => redis.stop());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bhp-redis-loss-'));
  steps.push(() => rmSync(dir, { recursive: true, force: true }));
  const banFile = path.join(dir, 'bans.json');
  const proxy = await startTestProxy(await freePort(), [`store: { redis: "${redis.url}", prefix: "loss:", syncInterval: 1s }`, `bans: { file: ${JSON.stringify(banFile)} }`].join('\n'));
  steps.push(() => proxy.close());
  await waitFor(() => proxy.proxy.storeUp === true, 10_000, 'the store to connect');

  assert.ok(proxy.proxy.ban('127.0.7.7', 3_600_000, 'acknowledged before the crash'));
  await proxy.proxy.bans.flush(); // what POST /bans waits for before its 201
  // published: a second proxy on the same Redis would see it
  await waitFor(async () => (await hashed(redis.url)).includes('127.0.7.7/32'), 10_000, 'the ban in Redis');

  await redis.kill();
  for (const f of readdirSync(redis.dir)) rmSync(path.join(redis.dir, f), { recursive: true, force: true });
  await redis.restart();
  await waitFor(() => proxy.proxy.storeUp === true, 20_000, 'the store to reconnect');
  await sleep(2500); // two sync intervals: the full comparison ran against the empty hash

  assert.ok(proxy.proxy.bans.find('127.0.7.7'), 'still banned here');
  await proxy.proxy.bans.flush();
  const onDisk = JSON.parse(readFileSync(banFile, 'utf8')) as { bans: { subnet: string }[] };
  assert.ok(onDisk.bans.some((b) => b.subnet === '127.0.7.7/32'), 'still in the ban file');
  const c = await P2PClient.connect(proxy.port, { localAddress: '127.0.7.7' });
  c.socket.on('error', () => {});
  assert.ok(await c.closedWithin(5000), 'the banned peer is refused');
  await c.close();
  await waitFor(async () => (await hashed(redis.url)).includes('127.0.7.7/32'), 10_000, 'the ban published again to the fleet');
});

/** The subnets in the ban hash, read with a Redis client of its own. */
async function hashed(url: string): Promise<string[]> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await r.connect();
    return Object.keys(await r.hgetall('loss:bans'));
  } finally {
    r.disconnect();
  }
}
