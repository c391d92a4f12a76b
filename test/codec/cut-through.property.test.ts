/**
 * The decoder's cut-through mode (a CutThroughSink), checked with fast-check on random streams,
 * random chunking and random decisions: every byte comes out exactly once and in order,
 * whether a frame was cut through or stored whole, and a cut-through frame holds no memory.
 * Pure codec: no network, no other implementation involved.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fileSeed } from '../support/seed.js';
import { FrameDecoder, HEADER_SIZE, NETWORKS, encodeFrame, type CutThroughSink, type Frame, type FrameError } from '../../src/codec/index.js';

// this file's own seed: other files' draws (or skips) never change what it tests
fc.configureGlobal({ seed: fileSeed(import.meta.url) });

const NUM_RUNS = 300;
const regtest = NETWORKS.regtest;
const printable = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));
const specArb = fc.array(fc.tuple(fc.string({ unit: printable, maxLength: 12 }), fc.uint8Array({ maxLength: 3000 })), { maxLength: 10 });
const cutsArb = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 });

function chunk(stream: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * stream.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(stream.subarray(prev, p));
    prev = p;
  }
  out.push(stream.subarray(prev));
  return out;
}

interface Out {
  /** every byte handed on, in order: cut-through bytes and whole frames */
  bytes: Buffer[];
  events: string[];
  errors: FrameError[];
  /** largest bufferedBytes while a cut-through frame was open */
  heldDuringCut: number;
}

function run(chunks: Buffer[], cutSeed: number, earlySeed: number, maxPayload?: number): Out {
  const out: Out = { bytes: [], events: [], errors: [], heldDuringCut: 0 };
  let cutting = false;
  let i = 0;
  const sink: CutThroughSink = {
    onFrame: (f: Frame) => {
      out.bytes.push(Buffer.from(f.raw));
      out.events.push(`frame:${f.command}`);
    },
    onError: (e) => {
      out.errors.push(e);
      out.events.push(`error:${e.code}`);
    },
    wantsCut: () => ((cutSeed >> (i++ % 30)) & 1) === 1, // also for INVALID_COMMAND frames: both ways must hand every byte on
    mayCutEarly: (_h, n) => ((earlySeed >> (n % 30)) & 1) === 1,
    onCutStart: (command) => {
      cutting = true;
      out.events.push(`cut:${command}`);
    },
    onBytes: (buf, start, end) => {
      assert.ok(end > start, 'no empty byte ranges');
      out.bytes.push(Buffer.from(buf.subarray(start, end)));
    },
    onCutEnd: () => {
      cutting = false;
    },
  };
  const d = new FrameDecoder({ network: regtest, maxPayload }, sink);
  for (const c of chunks) {
    d.push(c);
    if (cutting) out.heldDuringCut = Math.max(out.heldDuringCut, d.bufferedBytes);
  }
  return out;
}

test('valid streams: the bytes handed on are the input, whatever was cut through, and cut frames hold nothing', () => {
  fc.assert(
    fc.property(specArb, cutsArb, fc.nat(), fc.nat(), (specs, cuts, cutSeed, earlySeed) => {
      const frames = specs.map(([c, p]) => encodeFrame(regtest, c, p));
      const stream = Buffer.concat(frames.map((f) => f.raw));
      const out = run(chunk(stream, cuts), cutSeed, earlySeed);
      assert.deepEqual(out.errors, []);
      assert.ok(Buffer.concat(out.bytes).equals(stream), 'byte-exact, in order');
      assert.equal(out.events.length, frames.length, 'one event per frame');
      assert.equal(out.heldDuringCut, 0, 'a frame passing through is not held');
    }),
    { numRuns: NUM_RUNS },
  );
});

test('a bad command field, a bad magic and an oversized length: the bytes bitcoind would read are handed on', () => {
  fc.assert(
    fc.property(fc.constantFrom('command', 'magic', 'size'), cutsArb, fc.nat(), fc.nat(), (kind, cuts, cutSeed, earlySeed) => {
      const good = encodeFrame(regtest, 'ping', Buffer.alloc(8, 1)).raw;
      const bad = Buffer.from(encodeFrame(regtest, 'inv', Buffer.alloc(37, 2)).raw);
      if (kind === 'command') bad[9] = 0x41; // "inv\0\0A..": data after the NUL
      if (kind === 'magic') bad[0] = 0xf9;
      if (kind === 'size') bad.writeUInt32LE(2000, 16);
      const stream = Buffer.concat([good, bad, good]);
      const out = run(chunk(stream, cuts), cutSeed, earlySeed, 1000);
      const got = Buffer.concat(out.bytes);
      if (kind === 'command') {
        assert.ok(got.equals(stream), 'a frame with a bad command goes on whole, for bitcoind to drop');
        assert.deepEqual(out.errors.map((e) => e.code), ['BAD_COMMAND']);
      } else {
        assert.ok(got.equals(stream.subarray(0, good.length + HEADER_SIZE)), 'everything up to the end of the offending header, nothing after');
        assert.deepEqual(out.errors.map((e) => e.code), [kind === 'magic' ? 'BAD_MAGIC' : 'OVERSIZED']);
      }
    }),
    { numRuns: NUM_RUNS },
  );
});
