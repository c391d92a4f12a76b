import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fileSeed } from '../support/seed.js';
import { FrameDecoder, FrameError, HEADER_SIZE, NETWORKS, encodeFrame, type ChecksumPolicy, type Frame, type Network } from '../../src/codec/index.js';

// this file's own seed: other files' draws (or skips) never change what it tests
fc.configureGlobal({ seed: fileSeed(import.meta.url) });

const NUM_RUNS = 300;
const SMALL_MAX = 1000;
/** the codes the decoder itself may report (TRUNCATED comes only from decodeFrames at end of input) */
const DECODER_CODES = new Set(['BAD_MAGIC', 'BAD_COMMAND', 'OVERSIZED', 'BAD_CHECKSUM']);
/** BAD_COMMAND and BAD_CHECKSUM drop one frame, as bitcoind does; these end the stream */
const FATAL_CODES = new Set(['BAD_MAGIC', 'OVERSIZED']);

const networkArb = fc.constantFrom(...Object.values(NETWORKS));
const policyArb = fc.constantFrom<ChecksumPolicy>('always', 'lazy');
const printable = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));
const commandArb = fc.oneof(
  fc.constantFrom('version', 'verack', 'inv', 'tx', 'block', 'ping', 'constructor', '__proto__', 'toString', 'valueOf', 'hasOwnPrope', ''),
  fc.string({ unit: printable, minLength: 0, maxLength: 12 }),
);
const payloadArb = fc.oneof(
  { weight: 2, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 120 }) },
  { weight: 2, arbitrary: fc.uint8Array({ minLength: 121, maxLength: SMALL_MAX }) },
);
const frameSpecsArb = fc.array(fc.tuple(commandArb, payloadArb), { minLength: 0, maxLength: 12 });
/** cut points as fractions, turned into chunk boundaries for a given stream length */
const cutsArb = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 });

function chunk(stream: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * stream.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(stream.subarray(prev, p)); // may be empty: empty pushes must be harmless
    prev = p;
  }
  out.push(stream.subarray(prev));
  return out;
}

interface Run {
  frames: Frame[];
  errors: unknown[];
  /** frames or errors reported after a fatal error */
  afterFatal: number;
  maxBuffered: number;
  thrown: unknown[];
}

function run(network: Network, policy: ChecksumPolicy, maxPayload: number | undefined, chunks: Buffer[]): Run {
  const r: Run = { frames: [], errors: [], afterFatal: 0, maxBuffered: 0, thrown: [] };
  let fatal = false;
  const decoder = new FrameDecoder(
    { network, checksum: policy, maxPayload },
    {
      onFrame: (f) => {
        if (fatal) r.afterFatal++;
        r.frames.push(f.copy());
      },
      onError: (e) => {
        if (fatal) r.afterFatal++;
        r.errors.push(e);
        if (e instanceof FrameError && FATAL_CODES.has(e.code)) fatal = true;
      },
    },
  );
  for (const c of chunks) {
    try {
      decoder.push(c);
    } catch (err) {
      r.thrown.push(err);
    }
    r.maxBuffered = Math.max(r.maxBuffered, decoder.bufferedBytes);
  }
  return r;
}

test('random chunking of a random valid stream yields the same frames', () => {
  fc.assert(
    fc.property(networkArb, policyArb, frameSpecsArb, cutsArb, (network, policy, specs, cuts) => {
      const want = specs.map(([cmd, payload]) => encodeFrame(network, cmd, payload));
      const stream = Buffer.concat(want.map((f) => f.raw));
      const r = run(network, policy, undefined, chunk(stream, cuts));
      assert.deepEqual(r.thrown, []);
      assert.deepEqual(r.errors, []);
      assert.deepEqual(
        r.frames.map((f) => f.command),
        want.map((f) => f.command),
      );
      assert.deepEqual(
        r.frames.map((f) => f.raw.toString('hex')),
        want.map((f) => f.raw.toString('hex')),
      );
    }),
    { numRuns: NUM_RUNS },
  );
});

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), bytes: fc.uint8Array({ minLength: 1, maxLength: 30 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), count: fc.integer({ min: 1, max: 30 }) }),
);

function mutate(buf: Buffer, m: Mutation): Buffer {
  const at = Math.min(Math.floor(m.at * buf.length), Math.max(buf.length - 1, 0));
  switch (m.kind) {
    case 'flip': {
      if (buf.length === 0) return buf;
      const out = Buffer.from(buf);
      out[at]! ^= 1 << m.bit;
      return out;
    }
    case 'truncate':
      return buf.subarray(0, at);
    case 'insert':
      return Buffer.concat([buf.subarray(0, at), m.bytes, buf.subarray(at)]);
    case 'delete':
      return Buffer.concat([buf.subarray(0, at), buf.subarray(at + m.count)]);
  }
}

function assertOnlyTypedErrors(r: Run, input: Buffer, policy: ChecksumPolicy): void {
  assert.deepEqual(r.thrown, [], 'push() threw');
  for (const e of r.errors) {
    assert.ok(e instanceof FrameError, `error is not a FrameError: ${String(e)}`);
    assert.ok(DECODER_CODES.has(e.code), `unknown code ${e.code}`);
    assert.ok(e.message.length > 0);
  }
  assert.equal(r.afterFatal, 0, 'events after a fatal error');
  assert.equal(r.errors.filter((e) => e instanceof FrameError && FATAL_CODES.has(e.code)).length <= 1, true);
  assert.ok(r.maxBuffered <= HEADER_SIZE + SMALL_MAX, `buffered ${r.maxBuffered} bytes`);
  if (policy === 'lazy') {
    // nothing is invented: the frames are pieces of the input, in order (frames with a bad
    // command field between them are dropped)
    let at = 0;
    for (const f of r.frames) {
      const found = input.indexOf(f.raw, at);
      assert.ok(found >= at, 'a delivered frame is not in the input after the previous one');
      at = found + f.raw.length;
    }
  }
  for (const f of r.frames) assert.ok(f.raw.length >= HEADER_SIZE && f.raw.length <= HEADER_SIZE + SMALL_MAX);
}

test('mutated valid streams (bit flips, truncation, insertion, deletion) only produce typed errors within the memory bound', () => {
  fc.assert(
    fc.property(
      networkArb,
      policyArb,
      frameSpecsArb,
      fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
      cutsArb,
      (network, policy, specs, mutations, cuts) => {
        let stream: Buffer = Buffer.concat(specs.map(([cmd, payload]) => encodeFrame(network, cmd, payload).raw));
        for (const m of mutations) stream = mutate(stream, m);
        const r = run(network, policy, SMALL_MAX, chunk(stream, cuts));
        assertOnlyTypedErrors(r, stream, policy);
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

test('random bytes (bare, or behind a valid magic) only produce typed errors within the memory bound', () => {
  fc.assert(
    fc.property(
      networkArb,
      policyArb,
      fc.boolean(),
      fc.uint8Array({ maxLength: 3000 }),
      cutsArb,
      (network, policy, withMagic, bytes, cuts) => {
        const stream = withMagic ? Buffer.concat([network.magic, bytes]) : Buffer.from(bytes);
        const r = run(network, policy, SMALL_MAX, chunk(stream, cuts));
        assertOnlyTypedErrors(r, stream, policy);
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

test('headers with random fields behind the right magic: OVERSIZED exactly when the length is above the maximum', () => {
  fc.assert(
    fc.property(networkArb, fc.string({ unit: printable, maxLength: 12 }), fc.nat({ max: 0xffffffff }), (network, cmd, len) => {
      const h = Buffer.alloc(HEADER_SIZE);
      network.magic.copy(h, 0);
      h.write(cmd, 4, 'latin1');
      h.writeUInt32LE(len, 16);
      const r = run(network, 'lazy', SMALL_MAX, [h]);
      assertOnlyTypedErrors(r, h, 'lazy');
      if (len > SMALL_MAX) {
        assert.equal(r.errors.length, 1);
        assert.equal((r.errors[0] as FrameError).code, 'OVERSIZED');
        assert.equal((r.errors[0] as FrameError).command, cmd);
      } else {
        assert.equal(r.errors.length, 0);
        assert.equal(r.frames.length, len === 0 ? 1 : 0);
      }
    }),
    { numRuns: NUM_RUNS },
  );
});
