/**
 * The store behind ctx.store and the paywall's shared state, against a real Debian
 * redis-server started by the test (skipped, visibly, when it is not installed), and the same
 * contract against the in-process MemoryKv. Several RedisStore instances on one Redis stand for
 * several proxies: one payment hash is granted once, a balance debited from two proxies at once
 * never goes below zero and loses no debit, and while Redis is down every operation refuses
 * with StoreUnavailableError (a claim is never granted on a guess) and comes back after restart.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import type { HookStore } from '../../src/hooks/index.js';
import { MemoryKv, StoreUnavailableError } from '../../src/hooks/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { Ban } from '../../src/proxy/ban-list.js';
import { SharedPaywallStore } from '../../hooks/paywall/shared-store.js';
import type { GrantRecord } from '../../hooks/paywall/store.js';
import { RedisServer, redisSkipReason } from '../support/redis.js';
import { filePrng } from '../support/seed.js';
import { waitFor } from '../support/wait.js';

const skip = redisSkipReason();
const rand = filePrng(import.meta.url);
const quiet = pino({ level: process.env.BHP_TEST_LOG ?? 'silent' });
let redis: RedisServer;
const open: RedisStore[] = [];

async function proxyStore(): Promise<RedisStore> {
  const s = new RedisStore({ redis: redis.url, prefix: 'test:', syncInterval: 60_000, pingInterval: 100 }, quiet);
  await s.start();
  open.push(s);
  return s;
}

before(async () => {
  if (!skip) redis = await RedisServer.start();
});
after(async () => {
  for (const s of open) await s.close();
  await redis?.stop();
});

/** The contract both implementations keep. */
async function contract(a: HookStore, b: HookStore, other: HookStore): Promise<void> {
  const key = `k${Math.floor(rand() * 1e9)}`;
  assert.equal(await a.get(key), null);
  await a.set(key, 'v1');
  assert.equal(await b.get(key), 'v1', 'the same namespace sees the same key');
  assert.equal(await other.get(key), null, 'another namespace does not');
  assert.equal(await a.setNX(key, 'v2'), false);
  assert.equal(await b.setNX(`${key}-nx`, 'x'), true);
  assert.equal(await a.setNX(`${key}-nx`, 'y'), false);
  assert.equal(await a.get(`${key}-nx`), 'x');
  assert.equal(await a.incrBy(`${key}-n`, 5n), 5n);
  assert.equal(await b.incrBy(`${key}-n`, -7n), -2n, 'without a floor a counter goes negative');
  assert.equal(await b.incrBy(`${key}-n`, -7n, { floor: 0n }), 0n, 'with floor 0 it stops at zero');
  await assert.rejects(a.incrBy(key, 1n), 'a key holding text is not a counter');
  await assert.rejects(a.incrBy(`${key}-big`, 2n ** 60n), RangeError);
  assert.equal(await a.delete(key), true);
  assert.equal(await a.delete(key), false);
  assert.equal(await a.expire(key, 10), false, 'expire on a missing key');
  await a.set(`${key}-ttl`, 'gone soon', { ttlSeconds: 0.2 });
  assert.equal(await b.get(`${key}-ttl`), 'gone soon');
  await waitFor(async () => (await b.get(`${key}-ttl`)) === null, 10_000, 'the key to expire');
  await assert.rejects(a.set(key, 'x', { ttlSeconds: -1 }), RangeError);
}

test('MemoryKv keeps the store contract', async () => {
  const kv = new MemoryKv();
  await contract(kv.namespace('h'), kv.namespace('h'), kv.namespace('other'));
  assert.equal(kv.namespace('h').shared, false);
});

test('RedisStore keeps the store contract across two proxies', { skip }, async () => {
  const [p1, p2] = [await proxyStore(), await proxyStore()];
  await contract(p1.hookStore('h'), p2.hookStore('h'), p1.hookStore('other'));
  assert.equal(p1.hookStore('h').shared, true);
});

function grant(hash: string, creditMsat: bigint): GrantRecord {
  return { paymentHash: hash, tokenId: randomBytes(16).toString('hex'), kind: creditMsat > 0n ? 'credit' : 'pass', tier: 't', expiresAt: 0, creditMsat, credential: 'ab', grantedAt: 1 };
}

test('one payment hash, claimed at three proxies at once, is granted once', { skip }, async () => {
  const stores = await Promise.all([proxyStore(), proxyStore(), proxyStore()]);
  const paywalls = stores.map((s) => new SharedPaywallStore(s.hookStore('paywall')));
  for (let round = 0; round < 20; round++) {
    const hash = randomBytes(32).toString('hex');
    const credit = BigInt(1 + Math.floor(rand() * 1_000_000));
    const results = await Promise.all(paywalls.map((p) => p.claim(grant(hash, credit))));
    const firsts = results.filter((r) => r.first);
    assert.equal(firsts.length, 1, `round ${round}: exactly one first claim`);
    for (const r of results) assert.equal(r.grant.tokenId, firsts[0]!.grant.tokenId, 'the others get the first grant back');
    assert.equal(await paywalls[2]!.balance(firsts[0]!.grant.tokenId), credit, 'credited once');
    for (const r of results.filter((x) => !x.first)) assert.equal(await paywalls[0]!.balance(r.grant.tokenId), credit);
  }
});

test('a balance debited on two proxies at once never goes below zero and loses no debit', { skip }, async () => {
  const [a, b] = [await proxyStore(), await proxyStore()];
  const pa = new SharedPaywallStore(a.hookStore('paywall'));
  const pb = new SharedPaywallStore(b.hookStore('paywall'));
  const g = grant(randomBytes(32).toString('hex'), 100_000n);
  assert.equal((await pa.claim(g)).first, true);
  const debits = Array.from({ length: 200 }, () => BigInt(1 + Math.floor(rand() * 1500)));
  const seen = await Promise.all(debits.map((d, i) => (i % 2 ? pa : pb).debit(g.tokenId, d)));
  for (const v of seen) assert.ok(v >= 0n, `balance ${v} went negative`);
  const total = debits.reduce((x, y) => x + y, 0n);
  const expected = total >= 100_000n ? 0n : 100_000n - total;
  assert.equal(await pb.balance(g.tokenId), expected);
  assert.ok(seen.includes(0n) === total >= 100_000n);
});

test('Redis down: operations refuse with StoreUnavailableError, a claim is not granted, bans made meanwhile are published after restart', { skip }, async () => {
  const [a, b] = [await proxyStore(), await proxyStore()];
  const banned = new Map<string, Ban[]>([['a', []], ['b', []]]);
  const sink = (name: 'a' | 'b') => ({
    applySharedBan: (ban: Ban) => void banned.get(name)!.push(ban),
    applySharedUnban: () => {},
    localBans: () => banned.get(name)!,
  });
  a.attachBans(sink('a'));
  b.attachBans(sink('b'));
  const pa = new SharedPaywallStore(a.hookStore('paywall'));
  await redis.kill();
  await waitFor(() => !a.up && !b.up, 10_000, 'both stores to notice the outage');
  await assert.rejects(pa.claim(grant(randomBytes(32).toString('hex'), 5n)), StoreUnavailableError);
  await assert.rejects(a.hookStore('x').get('k'), (e: Error) => e instanceof StoreUnavailableError && (e as StoreUnavailableError).code === 'store_unavailable');
  const ban: Ban = { subnet: '127.0.9.9/32', until: Date.now() + 3_600_000, reason: 'during the outage', created: Date.now() };
  banned.get('a')!.push(ban);
  a.banAdded(ban);
  await redis.restart();
  await waitFor(() => a.up && b.up, 20_000, 'both stores to reconnect');
  await waitFor(() => banned.get('b')!.some((x) => x.subnet === ban.subnet), 20_000, 'the ban made during the outage to reach the other proxy');
  const hash = randomBytes(32).toString('hex');
  assert.equal((await pa.claim(grant(hash, 5n))).first, true, 'claims work again');
});
