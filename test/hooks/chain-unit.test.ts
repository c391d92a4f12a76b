/**
 * Chain runner rules checked without sockets (the proxy's own runner, through the
 * bitcoin-hook-proxy/testing helper); end-to-end behaviour is in runtime.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X_FEATURE_ID, HOOK_API_VERSION } from '../../src/hooks/index.js';
import { createHookHarness } from '../../src/hooks/testing.js';

const toX = {
  apiVersion: HOOK_API_VERSION,
  name: 'to-x',
  wants: { outbound: ['pong'] },
  onMessage: () => ({ replace: { command: 'x:note', payload: Buffer.from([1]) } }),
};

test('an outbound replace into an x: command reaches only peers that announced our BIP 434 feature', async () => {
  const h = await createHookHarness([{ module: toX }]);
  const plain = h.peer();
  const r1 = await h.deliver(plain, 'outbound', 'pong', { nonce: 1n });
  assert.equal(r1.forwarded, null, 'not forwarded to a peer without the feature');
  assert.equal(plain.faults[0]?.kind, 'invalid_message');
  const announced = h.peer({ features: new Map([[X_FEATURE_ID, Buffer.alloc(0)]]) });
  const r2 = await h.deliver(announced, 'outbound', 'pong', { nonce: 2n });
  assert.equal(r2.forwarded?.command, 'x:note');
  assert.equal(announced.faults.length, 0);
  await h.close();
});

test('an inbound replace into an x: command is refused: x: never goes to bitcoind', async () => {
  const h = await createHookHarness([{ module: { ...toX, wants: { inbound: ['ping'] } } }]);
  const p = h.peer({ features: new Map([[X_FEATURE_ID, Buffer.alloc(0)]]) });
  const r = await h.deliver(p, 'inbound', 'ping', { nonce: 3n });
  assert.equal(r.forwarded, null);
  assert.match(p.faults[0]?.message ?? '', /never go to bitcoind/);
  await h.close();
});
