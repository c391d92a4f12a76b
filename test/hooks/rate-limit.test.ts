/**
 * hooks/rate-limit: unit tests through the real chain runner (createHookHarness, loading the
 * compiled module by path as the proxy does), and tests through the real proxy in front of a
 * real node. Real implementation: litecoind 0.21 from Debian (Bitcoin Core 0.21's P2P code,
 * regtest magic fabfb5da) as the backend that answers pings; our raw P2P test client
 * (test/support/p2p-client.ts) as the peers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeMessage, encodeFrame, encodePayload, resolveNetwork } from '../../src/codec/index.js';
import { defineHook, HOOK_API_VERSION } from '../../src/hooks/index.js';
import { createHookHarness } from '../../src/hooks/testing.js';
import { startLitecoind, litecoindSkipReason, type Litecoind } from '../support/litecoind.js';
import { P2PClient } from '../support/p2p-client.js';
import { startTestProxy } from '../support/proxy-harness.js';
import { sleep, waitFor } from '../support/wait.js';
import { cleanupStack } from '../support/cleanup.js';

const MODULE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../hooks/rate-limit.js');
const REGTEST = resolveNetwork('regtest');
const hookYaml = (options: object) => `hooks:\n  - { module: ${JSON.stringify(MODULE)}, options: ${JSON.stringify(options)} }`;

/** A stand-in for a paywall hook: sets peer.state `tier` when the peer sends `x:paid`. */
const tierSetter = defineHook({
  apiVersion: HOOK_API_VERSION,
  name: 'tier-setter',
  commands: {
    'x:paid': (_msg, peer) => {
      peer.state.set('tier', 'paid');
    },
  },
});

async function pings(h: Awaited<ReturnType<typeof createHookHarness>>, peer: ReturnType<Awaited<ReturnType<typeof createHookHarness>>['peer']>, n: number): Promise<number> {
  let passed = 0;
  for (let i = 0; i < n; i++) if ((await h.deliver(peer, 'inbound', 'ping', { nonce: BigInt(i) })).forwarded) passed++;
  return passed;
}

test('per-peer bucket: burst passes, the rest is dropped, tokens come back at the rate', async () => {
  const h = await createHookHarness([{ module: MODULE, options: { tiers: { default: { peer: { ping: { rate: 20, burst: 3 } } } } } }]);
  assert.equal(h.chain.hooksFor('inbound', 'inv').length, 0, 'unlimited commands take the raw fast path');
  assert.equal(h.chain.hooksFor('outbound', 'ping').length, 0, 'outbound is never limited');
  const a = h.peer();
  const b = h.peer({ address: '198.51.100.8' });
  assert.equal(await pings(h, a, 10), 3, 'burst of 3');
  assert.equal(await pings(h, b, 10), 3, 'another peer has its own bucket');
  await sleep(250); // 20/s: five tokens back, capped at the burst of 3
  assert.equal(await pings(h, a, 10), 3);
  assert.equal(a.closed, false, 'drop is the default action');
  await h.close();
});

test('per-address buckets are shared by every session of the address; `*` counts all commands', async () => {
  const h = await createHookHarness([
    { module: MODULE, options: { tiers: { default: { address: { '*': { rate: 0.001, burst: 5 } } } }, action: { misbehave: 10 } } },
  ]);
  assert.equal(h.chain.hooksFor('inbound', 'anything').length, 1, '`*` sees every inbound frame');
  const s1 = h.peer({ address: '203.0.113.5' });
  const s2 = h.peer({ address: '203.0.113.5' });
  const other = h.peer({ address: '203.0.113.6' });
  assert.equal(await pings(h, s1, 3), 3);
  assert.notEqual((await h.deliver(s2, 'inbound', 'getaddr')).forwarded, null);
  assert.equal(await pings(h, s2, 3), 1, 'the address has 5 tokens for all its sessions');
  assert.equal(s2.misbehaviour, 20, 'misbehave 10 per message over the limit');
  assert.equal(await pings(h, other, 3), 3, 'another address is not affected');
  await h.close();
});

test('tiers: a peer whose state another hook set gets that tier\'s limits; per-rule action', async () => {
  const h = await createHookHarness([
    { module: tierSetter },
    {
      module: MODULE,
      options: {
        tierKey: 'tier',
        tiers: {
          default: { peer: { getdata: { rate: 0.001, burst: 2, action: 'disconnect' } } },
          paid: { peer: { getdata: { rate: 0.001, burst: 50 } } },
        },
      },
    },
  ]);
  const inv = Buffer.from('00', 'hex'); // an empty getdata
  const free = h.peer();
  const paying = h.peer();
  await h.deliver(paying, 'inbound', 'x:paid');
  assert.equal(paying.state.get('tier'), 'paid');
  let n = 0;
  for (let i = 0; i < 20; i++) if ((await h.deliver(paying, 'inbound', 'getdata', inv)).forwarded) n++;
  assert.equal(n, 20, 'the paid tier allows 50');
  assert.notEqual((await h.deliver(free, 'inbound', 'getdata', inv)).forwarded, null);
  assert.notEqual((await h.deliver(free, 'inbound', 'getdata', inv)).forwarded, null);
  assert.equal((await h.deliver(free, 'inbound', 'getdata', inv)).forwarded, null);
  assert.match(free.disconnected ?? '', /rate-limit: getdata over the peer limit .*tier default/);
  const unknownTier = h.peer();
  unknownTier.state.set('tier', 'gold');
  assert.equal(await (async () => {
    let k = 0;
    for (let i = 0; i < 5; i++) if ((await h.deliver(unknownTier, 'inbound', 'getdata', inv)).forwarded) k++;
    return k;
  })(), 2, 'an unknown tier name falls back to default');
  await h.close();
});

test('a peer whose tier changes gets the new tier\'s buckets at once, per peer and per address, both ways', async () => {
  const h = await createHookHarness([
    {
      module: MODULE,
      options: {
        tiers: {
          default: { peer: { ping: { rate: 0.001, burst: 2 } }, address: { pong: { rate: 0.001, burst: 1 } } },
          paid: { peer: { ping: { rate: 0.001, burst: 5 } }, address: { pong: { rate: 0.001, burst: 3 } } },
        },
      },
    },
  ]);
  const p = h.peer({ address: '203.0.113.77' });
  const pongs = async (n: number) => {
    let k = 0;
    for (let i = 0; i < n; i++) if ((await h.deliver(p, 'inbound', 'pong', { nonce: BigInt(i) })).forwarded) k++;
    return k;
  };
  assert.equal(await pings(h, p, 4), 2, 'free: burst 2');
  assert.equal(await pongs(3), 1, 'free address bucket: burst 1');
  p.state.set('tier', 'paid'); // what a paywall grant does
  assert.equal(await pings(h, p, 8), 5, 'paid at once: the paid burst of 5, not the drained free bucket');
  assert.equal(await pongs(5), 3, 'the address bucket of the paid tier too');
  p.state.delete('tier'); // the pass ended
  assert.equal(await pings(h, p, 4), 2, 'back to free: the free tier\'s own bucket');
  await h.close();
});

test('the wall clock stepping back (NTP) neither drains nor starves a bucket: elapsed time is never negative', async () => {
  // msg.receivedAt is Date.now(); a step back of an hour made the refill an hour of negative
  // tokens, so every peer's bucket stayed empty (and each message got the rule's action) for the hour
  for (const scope of ['peer', 'address']) {
    const h = await createHookHarness([{ module: MODULE, options: { tiers: { default: { [scope]: { ping: { rate: 10, burst: 5 } } } } } }]);
    const a = h.peer();
    const ping = (at: number) => h.chain.run('inbound', encodeFrame(REGTEST, 'ping', encodePayload('ping', { nonce: 1n }), 4_000_000), a, at);
    const t0 = 1_800_000_000_000;
    let passed = 0;
    for (let i = 0; i < 6; i++) if (await ping(t0)) passed++;
    assert.equal(passed, 5, `${scope}: the burst passes`);
    const back = t0 - 3_600_000; // the clock is set back an hour
    assert.equal(await ping(back), null, `${scope}: still empty right after the step: nothing was refilled`);
    assert.ok(await ping(back + 200), `${scope}: 200 ms later by the new clock, 2 tokens came back as on any clock`);
    assert.ok(await ping(back + 200), scope);
    assert.equal(await ping(back + 200), null, scope);
    await h.close();
  }
});

test('bad options are refused with the key named', async () => {
  const cases: [object, RegExp][] = [
    [{ tiers: { paid: { peer: { ping: { rate: 1 } } } } }, /options\.tiers\.default: a tier named "default" is required/],
    [{ tiers: { default: { peer: { ping: { rate: 0 } } } } }, /options\.tiers\.default\.peer\.ping\.rate/],
    [{ tiers: { default: { peer: { ping: { rate: 1, burst: 0.5 } } } } }, /options\.tiers\.default\.peer\.ping\.burst/],
    [{ tiers: { default: { peer: { ping: { rate: 1, action: 'ban' } } } } }, /options\.tiers\.default\.peer\.ping\.action/],
    [{ tiers: { default: { peers: {} } } }, /options\.tiers\.default.*peers/],
    [{ tiers: { default: {} }, maxAddresses: 0 }, /options\.maxAddresses/],
  ];
  for (const [options, re] of cases) await assert.rejects(createHookHarness([{ module: MODULE, options: options as Record<string, unknown> }]), re, JSON.stringify(options));
});

// ---- through the real proxy, in front of a real node ----

/** Send `n` pings at once; after a closing ping round trip beyond the limit window, count the pongs that came back. */
async function burstOfPings(c: P2PClient, n: number, base: bigint): Promise<bigint[]> {
  const from = c.frames.length;
  for (let i = 0; i < n; i++) c.send('ping', { nonce: base + BigInt(i) });
  await sleep(700); // litecoind answers each ping at once; give the answers time to come back
  return c.frames.slice(from).filter((f) => f.command === 'pong').map((f) => decodeMessage('pong', f.payload).nonce);
}

async function pingBytesAt(node: Litecoind, subver: RegExp): Promise<number> {
  const p = (await node.getPeerInfo()).find((x) => subver.test(x.subver));
  return p?.bytesrecv_per_msg.ping ?? 0;
}

test('pings beyond the burst never reach litecoind; per-address limits span sessions', { skip: litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const node = await startLitecoind({ name: 'rate-limit' });
  cleanup.push(() => node.stop());
  const proxy = await startTestProxy(
    node.p2pPort,
    hookYaml({ tiers: { default: { peer: { ping: { rate: 0.001, burst: 5 } }, address: { ping: { rate: 0.001, burst: 8 } } } } }),
    { metrics: true },
  );
  cleanup.push(() => proxy.close());

  const a = await P2PClient.connect(proxy.port, { localAddress: '127.0.0.21', userAgent: '/rl-a/' });
  cleanup.push(() => a.close());
  await a.handshake();
  const pongs = await burstOfPings(a, 12, 1000n);
  assert.deepEqual(pongs, [1000n, 1001n, 1002n, 1003n, 1004n], 'the first 5 pings were answered, no others');
  // A ping frame is 24 header bytes + 8 nonce bytes: litecoind counted exactly 5 of them.
  await waitFor(async () => (await pingBytesAt(node, /rl-a/)) === 5 * 32, 5000, 'litecoind to have received 5 pings');
  assert.equal(a.isClosed, false);

  // A second session of the same address: its own peer bucket (5), but the address has 3 left.
  const b = await P2PClient.connect(proxy.port, { localAddress: '127.0.0.21', userAgent: '/rl-b/' });
  cleanup.push(() => b.close());
  await b.handshake();
  assert.equal((await burstOfPings(b, 5, 2000n)).length, 3, 'the address limit (8) spans both sessions');
  assert.equal(await pingBytesAt(node, /rl-b/), 3 * 32);
  // another address is not affected
  const c = await P2PClient.connect(proxy.port, { localAddress: '127.0.0.22', userAgent: '/rl-c/' });
  cleanup.push(() => c.close());
  await c.handshake();
  assert.equal((await burstOfPings(c, 5, 3000n)).length, 5);

  assert.equal(await proxy.metricValue('bhp_hook_rate_limit_limited_total', { scope: 'peer', command: 'ping', tier: 'default', action: 'drop' }), 7);
  assert.equal(await proxy.metricValue('bhp_hook_rate_limit_limited_total', { scope: 'address' }), 2);
});

test('action disconnect: the peer over its limit is cut off, litecoind loses it', { skip: litecoindSkipReason(), timeout: 60_000 }, async (t) => {
  const cleanup = cleanupStack(t);
  const node = await startLitecoind({ name: 'rate-limit-dc' });
  cleanup.push(() => node.stop());
  const proxy = await startTestProxy(node.p2pPort, hookYaml({ action: 'disconnect', tiers: { default: { peer: { getaddr: { rate: 0.001, burst: 1 } } } } }));
  cleanup.push(() => proxy.close());
  const c = await P2PClient.connect(proxy.port, { userAgent: '/rl-dc/' });
  cleanup.push(() => c.close());
  await c.handshake();
  c.send('getaddr', {});
  await c.ping();
  assert.equal(c.isClosed, false, 'one getaddr is within the limit');
  c.send('getaddr', {});
  assert.equal(await c.closedWithin(5000), true, 'the second getaddr got the peer disconnected');
  await waitFor(async () => !(await node.getPeerInfo()).some((p) => /rl-dc/.test(p.subver)), 10_000, 'litecoind to lose the peer');
});
