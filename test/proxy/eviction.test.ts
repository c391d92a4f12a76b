/**
 * The eviction choice itself (src/proxy/eviction.ts), on peer records as sessions fill them:
 * handshaking peers go first, then idle ones, then bitcoind's SelectNodeToEvict order (protect
 * by keyed netgroup, lowest ping, latest tx, latest block, uptime; evict the youngest of the
 * largest netgroup). No sockets: the choice is a pure function of the records; the socket-level
 * behaviour against a real litecoind is in slots.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeFrame, NETWORKS } from '../../src/codec/index.js';
import { Eviction, HANDSHAKE_GRACE_MS, IDLE_AFTER_MS, netGroup } from '../../src/proxy/eviction.js';
import { activityOf, noteInboundCommand, notePing, notePong } from '../../src/proxy/peer-activity.js';
import type { PeerInfo } from '../../src/proxy/peer-info.js';

const T0 = 1_700_000_000_000;
let nextId = 1;

function peer(address: string, connectedAt: number, handshakeComplete = true): PeerInfo {
  return {
    id: nextId++,
    address,
    port: 8333,
    backendLocalPort: null,
    connectedAt,
    transport: 'v1',
    version: 70016,
    services: 0x409n,
    userAgent: '/t/',
    startHeight: 0,
    relay: true,
    handshakeComplete,
    bytesIn: 100,
    bytesOut: 100,
    messagesIn: 1,
    messagesOut: 1,
    misbehaviour: 0,
    priority: false,
    reserved: false,
    features: new Map(),
    state: new Map(),
  };
}

test('netgroups are /16 for IPv4 and /32 for IPv6, as bitcoind without an asmap', () => {
  assert.equal(netGroup('203.0.113.7'), netGroup('203.0.200.1'));
  assert.notEqual(netGroup('203.0.113.7'), netGroup('203.1.113.7'));
  assert.equal(netGroup('2001:db8:1::1'), netGroup('2001:db8:ffff::2'));
  assert.notEqual(netGroup('2001:db8::1'), netGroup('2001:db9::1'));
});

test('a peer still in its handshake after the grace goes first: the youngest of the largest netgroup among them', () => {
  const e = new Eviction();
  const established = Array.from({ length: 30 }, (_, i) => peer(`198.51.${i}.1`, T0 + i));
  const slow = [peer('10.1.0.1', T0 + 100, false), peer('10.1.0.2', T0 + 200, false), peer('10.2.0.1', T0 + 300, false)];
  const now = T0 + HANDSHAKE_GRACE_MS + 1000;
  const chosen = e.select([...established, ...slow], now);
  assert.equal(chosen?.address, '10.1.0.2', 'two handshaking peers in 10.1/16: its youngest, not the younger loner in 10.2/16');

  // a newcomer inside the grace is not a first candidate: the youngest of the largest netgroup goes instead
  const crowd = Array.from({ length: 30 }, (_, i) => peer(`10.9.${i}.1`, T0 + 1000 + i));
  const newcomer = peer('192.0.2.1', now - 10, false);
  const victim = e.select([...crowd, newcomer], now);
  assert.ok(victim && victim !== newcomer && victim.address.startsWith('10.9.'), `the newcomer in its own netgroup stays (${victim?.address})`);
});

test('an idle peer goes next, before any peer that talks', () => {
  const e = new Eviction();
  const peers = Array.from({ length: 30 }, (_, i) => peer(`198.51.${i}.1`, T0 + i));
  e.sample(peers, T0);
  for (const p of peers.slice(1)) p.bytesIn += 10; // everyone but the oldest talks
  e.sample(peers, T0 + IDLE_AFTER_MS / 2);
  assert.equal(e.idle(peers[0]!, T0 + IDLE_AFTER_MS), true);
  assert.equal(e.idle(peers[1]!, T0 + IDLE_AFTER_MS), false);
  assert.equal(e.select(peers, T0 + IDLE_AFTER_MS)?.address, peers[0]!.address, 'the oldest peer, protected by uptime otherwise, is idle');
});

test("established peers: protected by ping, tx, block and uptime; the youngest of the largest netgroup is evicted; too few peers: nobody", () => {
  const e = new Eviction();
  // 40 peers: 20 in 10.9/16 (the attacker's netgroup, connected last), 20 spread over netgroups
  const honest = Array.from({ length: 20 }, (_, i) => peer(`172.${16 + i}.0.1`, T0 + i * 1000));
  const crowd = Array.from({ length: 20 }, (_, i) => peer(`10.9.${i}.1`, T0 + 100_000 + i * 1000));
  const all = [...honest, ...crowd];
  const victim = e.select(all, T0 + 200_000)!;
  assert.ok(victim.address.startsWith('10.9.'), `evicted from the largest netgroup (${victim.address})`);

  // the crowd's youngest becomes useful: a fast ping, a recent block; it is no longer the one
  const youngest = crowd[crowd.length - 1]!;
  const ping = encodeFrame(NETWORKS.regtest, 'ping', Buffer.from('0102030405060708', 'hex'));
  notePing(youngest, ping);
  notePong(youngest, encodeFrame(NETWORKS.regtest, 'pong', Buffer.from('0102030405060708', 'hex')));
  assert.ok(activityOf(youngest).minPingMs < 1000, 'a pong with the nonce of the ping in flight sets the ping time');
  notePong(youngest, encodeFrame(NETWORKS.regtest, 'pong', Buffer.from('0102030405060708', 'hex')));
  noteInboundCommand(youngest, 'block');
  assert.ok(activityOf(youngest).lastBlockAt > 0);
  const next = e.select(all, T0 + 200_000)!;
  assert.notEqual(next, youngest, 'a peer with the lowest ping and the latest block is protected');
  assert.ok(next.address.startsWith('10.9.'));

  // Core protects 4 + 8 + 4 + 4 and half the rest: with 20 peers none is left to evict
  assert.equal(e.select(honest, T0 + 200_000), null);
});

test('a priority (paid) peer is never evicted: not when handshaking, not when idle, not as the youngest of the largest netgroup', () => {
  const e = new Eviction();
  const now = T0 + HANDSHAKE_GRACE_MS + IDLE_AFTER_MS + 1000;
  const slow = peer('10.1.0.1', T0, false);
  const crowd = Array.from({ length: 30 }, (_, i) => peer(`10.9.${i}.1`, T0 + 1000 + i));
  assert.equal(e.select([...crowd, slow], now), slow, 'without priority the handshaking peer goes');
  slow.priority = true;
  const victim = e.select([...crowd, slow], now);
  assert.notEqual(victim, slow);
  assert.ok(victim?.address.startsWith('10.9.'));
  for (const p of crowd) p.priority = true;
  assert.equal(e.select([...crowd, slow], now), null, 'every peer paid: nobody is evicted');
});
