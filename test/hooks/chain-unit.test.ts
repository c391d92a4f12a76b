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

test('wants may be a function of the validated options: unlisted commands stay on the fast path', async () => {
  const seen: string[] = [];
  const listed = {
    apiVersion: HOOK_API_VERSION,
    name: 'listed',
    options: { safeParse: (o: unknown) => ({ success: true as const, data: o as { commands: string[] } }) },
    wants: (o: { commands: string[] }) => ({ inbound: o.commands }),
    onMessage: (m: { command: string }) => void seen.push(m.command),
  };
  const h = await createHookHarness([{ module: listed, options: { commands: ['getaddr'] } }]);
  assert.equal(h.chain.hooksFor('inbound', 'getaddr').length, 1);
  assert.equal(h.chain.hooksFor('inbound', 'ping').length, 0, 'not wanted: fast path');
  const p = h.peer();
  await h.deliver(p, 'inbound', 'ping', { nonce: 1n });
  await h.deliver(p, 'inbound', 'getaddr');
  assert.deepEqual(seen, ['getaddr']);
  await h.close();
});

test('a wants function that returns a bad shape refuses the module at load', async () => {
  const bad = { apiVersion: HOOK_API_VERSION, name: 'bad-wants', wants: () => ({ sideways: '*' }) };
  await assert.rejects(createHookHarness([{ module: bad as never }]), /bad-wants.*unknown direction "sideways"/);
});

test('outbound runs the chain in reverse (Envoy write-filter order), inbound in list order', async () => {
  const order: string[] = [];
  const mk = (name: string) => ({
    apiVersion: HOOK_API_VERSION,
    name,
    wants: { inbound: ['ping'], outbound: ['pong'] },
    onMessage: (msg: { direction: string }) => void order.push(`${msg.direction}:${name}`),
  });
  const h = await createHookHarness([{ module: mk('first') }, { module: mk('second') }, { module: mk('third') }]);
  const p = h.peer();
  await h.deliver(p, 'inbound', 'ping', { nonce: 1n });
  await h.deliver(p, 'outbound', 'pong', { nonce: 1n });
  assert.deepEqual(order, ['inbound:first', 'inbound:second', 'inbound:third', 'outbound:third', 'outbound:second', 'outbound:first']);
  await h.close();
});

test('features() runs under the hook runtime: a throw or a malformed answer is a fault, a good answer becomes feature frames', async () => {
  // the malformed answers are what a plain-JS module could return
  const mk = (name: string, features: () => unknown) => ({ apiVersion: HOOK_API_VERSION, name, features: features as () => { id: string }[] });
  const good = await createHookHarness([{ module: mk('good', () => [{ id: 'example/feature/1', data: Buffer.from('d') }]) }]);
  const p = good.peer({ version: 70017 });
  const frames = good.chain.features(p);
  assert.deepEqual(frames.map((f) => f.command), ['feature']);
  assert.equal(p.faults.length, 0);
  await good.close();
  for (const [name, fn, kind] of [
    ['throws', () => { throw new Error('boom'); }, 'throw'],
    ['not-array', () => ({ id: 'x' }), 'malformed'],
    ['async', async () => [], 'malformed'],
    ['short-id', () => [{ id: 'ab' }], 'invalid_message'],
  ] as const) {
    const h = await createHookHarness([{ module: mk(name, fn) }]);
    const peer = h.peer({ version: 70017 });
    assert.deepEqual(h.chain.features(peer), [], `${name}: nothing announced`);
    assert.equal(peer.faults[0]?.kind, kind, `${name}: fault kind`);
    await h.close();
  }
});
