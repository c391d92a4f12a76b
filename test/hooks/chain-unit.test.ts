/**
 * Chain runner rules checked without sockets (the proxy's own runner, through the
 * bitcoin-hook-proxy/testing helper); end-to-end behaviour is in runtime.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X_FEATURE_ID, HOOK_API_VERSION } from '../../src/hooks/index.js';
import { createHookHarness } from '../../src/hooks/testing.js';
import { HookFault, checkResult } from '../../src/hooks/result.js';
import { checkAcceptResult } from '../../src/hooks/accept-result.js';

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

test('passRange: hooks over frames as ranges of a read, until one is not passed; what came of that one', async () => {
  const { NETWORKS, encodeFrame } = await import('../../src/codec/index.js');
  const { PASSED } = await import('../../src/hooks/chain.js');
  const net = NETWORKS.regtest;
  const N = 50;
  const source = Buffer.concat(
    Array.from({ length: N }, (_, i) => {
      const p = Buffer.alloc(8);
      p.writeBigUInt64LE(BigInt(i));
      return encodeFrame(net, 'ping', p).raw;
    }),
  );
  const frameAt = (i: number) => i * 32;
  let actOn = -1;
  let action: 'drop' | 'replace' | 'await' | 'throw' | 'size-only' = 'drop';
  const seen: number[] = [];
  const after: string[] = [];
  const first = {
    apiVersion: HOOK_API_VERSION,
    name: 'first',
    wants: { inbound: ['ping'] },
    onMessage: (m: { payload: Buffer; size: number }) => {
      if (action === 'size-only') return void seen.push(m.size);
      const nonce = Number(m.payload.readBigUInt64LE(0));
      seen.push(nonce);
      if (nonce !== actOn) return undefined;
      if (action === 'drop') return { action: 'drop' as const };
      if (action === 'replace') return { replace: { command: 'pong', payload: Buffer.from(m.payload) } };
      if (action === 'await') return Promise.resolve(undefined);
      throw new Error('boom');
    },
  };
  const second = { apiVersion: HOOK_API_VERSION, name: 'second', wants: { inbound: ['ping', 'pong'] }, onMessage: (m: { command: string }) => void after.push(m.command) };
  const h = await createHookHarness([{ module: first }, { module: second }]);
  const run = (max = N) => {
    seen.length = 0;
    after.length = 0;
    const p = h.peer();
    const end = h.chain.passRange('inbound', source, 'ping', 0, source.length, max, p, Date.now());
    return { p, end, frames: h.chain.lastFrames, at: h.chain.lastFrameStart, out: h.chain.lastOut, bytesSeen: h.chain.lastBytesSeen };
  };

  let r = run();
  assert.deepEqual([r.end, r.frames, r.out], [source.length, N, PASSED], 'all passed: the whole range, every frame');
  assert.deepEqual(seen, Array.from({ length: N }, (_, i) => i), 'each frame seen once, in order, with its own payload');
  assert.equal(after.length, N);
  assert.equal(r.bytesSeen, true, 'a hook read the payload');

  r = run(7);
  assert.deepEqual([r.end, r.frames, r.out], [frameAt(7), 7, PASSED], 'stops after max frames');

  action = 'size-only';
  r = run();
  assert.equal(r.bytesSeen, false, 'hooks that only read the size leave the read buffer free');
  assert.deepEqual(seen, Array(N).fill(8));

  actOn = 12;
  action = 'drop';
  r = run();
  assert.deepEqual([r.end, r.frames, r.at, r.out], [frameAt(13), 13, frameAt(12), null], 'dropped: stops after that frame');
  assert.equal(after.length, 12, 'the dropped frame reached no later hook');

  action = 'replace';
  r = run();
  assert.equal(r.end, frameAt(13));
  const replaced = r.out as { command: string; payload: Buffer };
  assert.equal(replaced.command, 'pong');
  assert.equal(Number(replaced.payload.readBigUInt64LE(0)), 12);
  assert.equal(after.at(-1), 'pong', 'the later hook saw the replacement');

  action = 'await';
  r = run();
  assert.equal(r.end, frameAt(13));
  const awaited = (await r.out) as { raw: Buffer };
  assert.ok(awaited.raw.equals(source.subarray(frameAt(12), frameAt(13))), 'an awaiting hook gets a Frame of that range, passed on whole');
  assert.equal(after.length, 13, 'the rest of the chain ran after the promise');

  action = 'throw';
  r = run();
  assert.deepEqual([r.end, r.out], [frameAt(13), null]);
  assert.equal(r.p.faults[0]?.kind, 'throw');
  await h.close();
});

test('a ban with a duration of 0 or one that does not read is a malformed result, from onMessage and onAccept alike', () => {
  // it made no ban (the ban list makes none of 0 ms), no disconnect, and the frame went on
  for (const duration of [0, -5, '0s', 'soon', Number.NaN]) {
    assert.throws(() => checkResult('h', { ban: { reason: 'r', duration } }), (e: unknown) => e instanceof HookFault && e.kind === 'malformed' && /ban\.duration must be more than 0/.test(e.message), String(duration));
    assert.throws(() => checkAcceptResult('h', { ban: { reason: 'r', duration } }), (e: unknown) => e instanceof HookFault && e.kind === 'malformed', String(duration));
  }
  for (const duration of [undefined, 60, '10m', '24h']) {
    assert.equal(checkResult('h', { ban: { reason: 'r', duration } })?.ban !== undefined, true, String(duration));
    assert.ok(checkAcceptResult('h', { ban: { reason: 'r', duration } }), String(duration));
  }
  assert.ok(checkResult('h', { ban: true }));
});
