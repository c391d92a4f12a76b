/**
 * Slot accounting of src/proxy/connection-limits.ts: regular slots first, then the reserve, and a
 * reserved holder moving to a regular slot once one is free. No sockets (pure counts); the
 * socket-level behaviour against a real litecoind is in reserved-slots.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionLimits } from '../../src/proxy/connection-limits.js';

test('regular slots, then reserved ones, then max_peers; a reserved holder moves to a freed regular slot', () => {
  const l = new ConnectionLimits({ maxPeers: 2, reservedPeers: 1, maxPeersPerAddress: 10, maxPeersPerSubnet: 10 });
  assert.equal(l.slot(), 'regular');
  l.acquire('192.0.2.1', l.slot()!);
  l.acquire('192.0.2.2', l.slot()!);
  assert.equal(l.slot(), 'reserved');
  assert.equal(l.check('192.0.2.3'), null);
  l.acquire('192.0.2.3', 'reserved');
  assert.equal(l.check('192.0.2.4'), 'max_peers');
  assert.equal(l.toRegular(), false, 'no regular slot free');
  l.release('192.0.2.1', 'regular');
  assert.equal(l.slot(), 'regular', 'a regular slot is free again');
  assert.equal(l.toRegular(), true);
  assert.deepEqual([l.total, l.reserved, l.slot()], [2, 0, 'reserved']);
  l.release('192.0.2.3', 'regular'); // it now holds a regular slot
  assert.deepEqual([l.total, l.reserved], [1, 0]);
});

test('no reserve configured: the old behaviour, max_peers at maxPeers', () => {
  const l = new ConnectionLimits({ maxPeers: 1, reservedPeers: 0, maxPeersPerAddress: 10, maxPeersPerSubnet: 10 });
  l.acquire('192.0.2.1', l.slot()!);
  assert.equal(l.slot(), null);
  assert.equal(l.check('192.0.2.2'), 'max_peers');
});
