import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FrameDecoder,
  FrameError,
  HEADER_SIZE,
  MAX_PROTOCOL_MESSAGE_LENGTH,
  NETWORKS,
  decodeFrames,
  encodeFrame,
  type ChecksumPolicy,
  type Frame,
  type FrameErrorCode,
  type Network,
} from '../../src/codec/index.js';

const regtest = NETWORKS.regtest;

interface Collected {
  decoder: FrameDecoder;
  frames: Frame[];
  errors: FrameError[];
  /** event order: 'frame:<command>' or 'error:<code>' */
  events: string[];
  /** the largest bufferedBytes seen after any push */
  maxBuffered: number;
  push(chunk: Buffer): void;
}

function collect(options: { network?: Network; maxPayload?: number; checksum?: ChecksumPolicy } = {}): Collected {
  const frames: Frame[] = [];
  const errors: FrameError[] = [];
  const events: string[] = [];
  const decoder = new FrameDecoder(
    { network: options.network ?? regtest, maxPayload: options.maxPayload, checksum: options.checksum },
    {
      onFrame: (f) => {
        frames.push(f.copy());
        events.push(`frame:${f.command}`);
      },
      onError: (e) => {
        errors.push(e);
        events.push(`error:${e.code}`);
      },
    },
  );
  const c: Collected = {
    decoder,
    frames,
    errors,
    events,
    maxBuffered: 0,
    push(chunk) {
      decoder.push(chunk);
      c.maxBuffered = Math.max(c.maxBuffered, decoder.bufferedBytes);
    },
  };
  return c;
}

function pushBytewise(c: Collected, buf: Buffer): void {
  for (let i = 0; i < buf.length; i++) c.push(buf.subarray(i, i + 1));
}

function payloadOf(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

/** A header with arbitrary fields (no validation), for building invalid frames. */
function rawHeader(magic: Buffer, commandField: Buffer, length: number, sum = Buffer.alloc(4)): Buffer {
  assert.equal(commandField.length, 12);
  const h = Buffer.alloc(HEADER_SIZE);
  magic.copy(h, 0);
  commandField.copy(h, 4);
  h.writeUInt32LE(length, 16);
  sum.copy(h, 20);
  return h;
}

function commandField(text: string): Buffer {
  const f = Buffer.alloc(12);
  f.write(text, 'latin1');
  return f;
}

const sample = (): Frame[] => [
  encodeFrame(regtest, 'version', payloadOf(102)),
  encodeFrame(regtest, 'verack'),
  encodeFrame(regtest, 'ping', payloadOf(8, 2)),
  encodeFrame(regtest, 'inv', payloadOf(37, 3)),
  encodeFrame(regtest, 'block', payloadOf(5000, 4)),
  encodeFrame(regtest, 'sendcmpct', payloadOf(9, 5)),
];

function assertSameFrames(got: Frame[], want: Frame[]): void {
  assert.deepEqual(
    got.map((f) => f.command),
    want.map((f) => f.command),
  );
  for (let i = 0; i < want.length; i++) {
    assert.ok(got[i]!.raw.equals(want[i]!.raw), `raw bytes of frame ${i} (${want[i]!.command}) differ`);
  }
}

test('1 byte at a time yields every frame with its exact raw bytes', () => {
  for (const policy of ['always', 'lazy'] as const) {
    const want = sample();
    const c = collect({ checksum: policy });
    pushBytewise(c, Buffer.concat(want.map((f) => f.raw)));
    assertSameFrames(c.frames, want);
    assert.deepEqual(c.errors, []);
    assert.equal(c.decoder.bufferedBytes, 0);
  }
});

test('many frames inside one chunk are all delivered, as views of that chunk', () => {
  const want = sample();
  const stream = Buffer.concat(want.map((f) => f.raw));
  const views: Frame[] = [];
  const decoder = new FrameDecoder({ network: regtest }, { onFrame: (f) => views.push(f), onError: (e) => assert.fail(e) });
  decoder.push(stream);
  assertSameFrames(views, want);
  // zero copy: each delivered frame lies inside the pushed chunk
  for (const f of views) assert.equal(f.raw.buffer, stream.buffer);
  assert.equal(decoder.bufferedBytes, 0);
});

test('a zero-length payload frame at the end of a chunk and split headers are handled', () => {
  const want = [encodeFrame(regtest, 'verack'), encodeFrame(regtest, 'getaddr'), encodeFrame(regtest, 'pong', payloadOf(8))];
  const stream = Buffer.concat(want.map((f) => f.raw));
  for (let cut = 0; cut <= stream.length; cut++) {
    const c = collect();
    c.push(stream.subarray(0, cut));
    c.push(stream.subarray(cut));
    assertSameFrames(c.frames, want);
    assert.equal(c.decoder.bufferedBytes, 0, `cut at ${cut}`);
  }
});

test('raw bytes equal the input bytes exactly, whatever the chunking', () => {
  const want = sample();
  const stream = Buffer.concat(want.map((f) => f.raw));
  for (const size of [1, 2, 3, 7, 23, 24, 25, 100, 4096, stream.length]) {
    const c = collect();
    for (let i = 0; i < stream.length; i += size) c.push(stream.subarray(i, i + size));
    assertSameFrames(c.frames, want);
    assert.ok(Buffer.concat(c.frames.map((f) => f.raw)).equals(stream), `chunk size ${size}`);
  }
});

interface FatalCase {
  name: string;
  bad: Buffer;
  code: FrameErrorCode;
  message: RegExp;
  maxPayload?: number;
}

const fatalCases: FatalCase[] = [
  {
    name: 'wrong magic (mainnet frame on regtest)',
    bad: encodeFrame(NETWORKS.mainnet, 'ping', payloadOf(8)).raw,
    code: 'BAD_MAGIC',
    message: /wrong network magic f9beb4d9, expected fabfb5da \(regtest\)/,
  },
  {
    name: 'payload length above 4,000,000',
    bad: rawHeader(regtest.magic, commandField('block'), MAX_PROTOCOL_MESSAGE_LENGTH + 1),
    code: 'OVERSIZED',
    message: /"block" declares 4000001 payload bytes, above the maximum of 4000000/,
  },
  {
    name: 'payload length 0xffffffff',
    bad: rawHeader(regtest.magic, commandField('tx'), 0xffffffff),
    code: 'OVERSIZED',
    message: /"tx" declares 4294967295 payload bytes, above the maximum of 4000000/,
  },
  {
    name: 'payload length above a configured lower maxPayload',
    bad: rawHeader(regtest.magic, commandField('inv'), 1001),
    code: 'OVERSIZED',
    message: /"inv" declares 1001 payload bytes, above the maximum of 1000/,
    maxPayload: 1000,
  },
];

const badCommandCases: FatalCase[] = [
  {
    name: 'non-printable byte in the command',
    bad: rawHeader(regtest.magic, commandField('pi\x01g'), 0),
    code: 'BAD_COMMAND',
    message: /non-printable byte 0x01 at 2/,
  },
  {
    name: 'byte above 0x7e in the command',
    bad: rawHeader(regtest.magic, commandField('ping\x7f'), 0),
    code: 'BAD_COMMAND',
    message: /non-printable byte 0x7f at 4/,
  },
  {
    name: 'data after the NUL padding',
    bad: rawHeader(regtest.magic, Buffer.from('ping\0\0\0x\0\0\0\0', 'latin1'), 0),
    code: 'BAD_COMMAND',
    message: /data after NUL padding \(byte 7\)/,
  },
  {
    name: '0xff in the last command byte',
    bad: rawHeader(regtest.magic, Buffer.from('abcdefghijk\xff', 'latin1'), 0),
    code: 'BAD_COMMAND',
    message: /non-printable byte 0xff at 11/,
  },
];

for (const bc of badCommandCases) {
  test(`not fatal: ${bc.name} -> BAD_COMMAND drops that frame and decoding goes on (bitcoind drops it, keeps the peer)`, () => {
    for (const bytewise of [false, true]) {
      for (const checksum of ['lazy', 'always'] as const) {
        const before = encodeFrame(regtest, 'ping', payloadOf(8));
        const after = encodeFrame(regtest, 'pong', payloadOf(8));
        const c = collect({ checksum });
        const stream = Buffer.concat([before.raw, bc.bad, after.raw]);
        if (bytewise) pushBytewise(c, stream);
        else c.push(stream);
        assertSameFrames(c.frames, [before, after]);
        assert.deepEqual(c.events, ['frame:ping', `error:${checksum === 'always' ? 'BAD_CHECKSUM' : 'BAD_COMMAND'}`, 'frame:pong']);
        if (checksum === 'lazy') assert.match(c.errors[0]!.message, bc.message);
        assert.equal(c.decoder.failed, null);
      }
    }
  });
}

for (const fc of fatalCases) {
  test(`fatal: ${fc.name} -> ${fc.code}; earlier frames delivered, later input ignored`, () => {
    for (const bytewise of [false, true]) {
      const before = sample().filter((f) => f.length <= (fc.maxPayload ?? MAX_PROTOCOL_MESSAGE_LENGTH));
      assert.ok(before.length >= 4);
      const after = encodeFrame(regtest, 'pong', payloadOf(8));
      const stream = Buffer.concat([...before.map((f) => f.raw), fc.bad, after.raw]);
      const c = collect({ maxPayload: fc.maxPayload });
      if (bytewise) pushBytewise(c, stream);
      else c.push(stream);
      // more valid input after the failure is ignored too
      c.push(after.raw);
      assertSameFrames(c.frames, before);
      assert.equal(c.errors.length, 1, `exactly one error (${bytewise ? 'bytewise' : 'one chunk'})`);
      const err = c.errors[0]!;
      assert.ok(err instanceof FrameError);
      assert.equal(err.name, 'FrameError');
      assert.equal(err.code, fc.code);
      assert.match(err.message, fc.message);
      assert.equal(c.decoder.failed, err);
      assert.equal(c.decoder.bufferedBytes, 0);
      assert.deepEqual(c.events.at(-1), `error:${fc.code}`);
    }
  });
}

test('a 12-character printable command with no NUL is valid', () => {
  const f = encodeFrame(regtest, 'abcdefghijkl', payloadOf(3));
  const c = collect();
  c.push(f.raw);
  assertSameFrames(c.frames, [f]);
  assert.equal(c.frames[0]!.command, 'abcdefghijkl');
});

test('payload exactly at maxPayload is accepted', () => {
  const f = encodeFrame(regtest, 'tx', payloadOf(1000));
  const c = collect({ maxPayload: 1000 });
  pushBytewise(c, f.raw);
  assertSameFrames(c.frames, [f]);
  assert.ok(c.maxBuffered <= HEADER_SIZE + 1000);
});

test('maxPayload above 4,000,000 or not an integer is refused', () => {
  const sink = { onFrame() {}, onError() {} };
  assert.throws(() => new FrameDecoder({ network: regtest, maxPayload: MAX_PROTOCOL_MESSAGE_LENGTH + 1 }, sink), RangeError);
  assert.throws(() => new FrameDecoder({ network: regtest, maxPayload: -1 }, sink), RangeError);
  assert.throws(() => new FrameDecoder({ network: regtest, maxPayload: 1.5 }, sink), RangeError);
});

function corrupt(frame: Frame): Buffer {
  const raw = Buffer.from(frame.raw);
  raw[raw.length - 1]! ^= 0x01;
  return raw;
}

test('BAD_CHECKSUM with `always` drops only that frame and decoding continues', () => {
  for (const bytewise of [false, true]) {
    const [a, b, c3] = [encodeFrame(regtest, 'ping', payloadOf(8)), encodeFrame(regtest, 'inv', payloadOf(37)), encodeFrame(regtest, 'pong', payloadOf(8))];
    const stream = Buffer.concat([a.raw, corrupt(b), c3.raw, corrupt(a)]);
    const c = collect({ checksum: 'always' });
    if (bytewise) pushBytewise(c, stream);
    else c.push(stream);
    assertSameFrames(c.frames, [a, c3]);
    assert.deepEqual(c.events, ['frame:ping', 'error:BAD_CHECKSUM', 'frame:pong', 'error:BAD_CHECKSUM']);
    assert.equal(c.errors[0]!.command, 'inv');
    assert.match(c.errors[0]!.message, /checksum mismatch on "inv" \(37 bytes\)/);
    assert.equal(c.decoder.failed, null, 'a bad checksum is not fatal');
  }
});

test('BAD_CHECKSUM with `lazy` delivers the frame and assertChecksum() throws', () => {
  const good = encodeFrame(regtest, 'ping', payloadOf(8));
  const bad = corrupt(encodeFrame(regtest, 'inv', payloadOf(37)));
  const c = collect({ checksum: 'lazy' });
  c.push(Buffer.concat([bad, good.raw]));
  assert.deepEqual(c.events, ['frame:inv', 'frame:ping']);
  assert.ok(c.frames[0]!.raw.equals(bad));
  assert.equal(c.frames[0]!.checksumValid(), false);
  assert.throws(
    () => c.frames[0]!.assertChecksum(),
    (e: unknown) => e instanceof FrameError && e.code === 'BAD_CHECKSUM' && e.command === 'inv' && /checksum mismatch on "inv" \(37 bytes\)/.test(e.message),
  );
  assert.doesNotThrow(() => c.frames[1]!.assertChecksum());
});

test('the default checksum policy is lazy', () => {
  const d = new FrameDecoder({ network: regtest }, { onFrame() {}, onError() {} });
  assert.equal(d.checksumPolicy, 'lazy');
});

test('commands named like object properties are ordinary unknown frames with raw bytes intact', () => {
  // `hasOwnProperty` has 14 characters and cannot be a wire command (see the encodeFrame test);
  // its 12-byte prefix and the other property names below can.
  const names = ['constructor', '__proto__', 'toString', 'hasOwnProper', 'valueOf', 'prototype', 'length', 'name', '__defineGett'];
  const want = names.map((n, i) => encodeFrame(regtest, n, payloadOf(i * 3, i)));
  for (const policy of ['always', 'lazy'] as const) {
    const c = collect({ checksum: policy });
    c.push(Buffer.concat(want.map((f) => f.raw)));
    assertSameFrames(c.frames, want);
    assert.deepEqual(c.errors, []);
    for (const f of c.frames) assert.equal(typeof f.command, 'string');
  }
});

test('unknown commands pass as raw frames', () => {
  const f = encodeFrame(regtest, 'zzz-unknown!', payloadOf(50));
  assert.deepEqual(
    decodeFrames(f.raw, { network: regtest, checksum: 'always' }).map((x) => [x.command, x.raw.toString('hex')]),
    [['zzz-unknown!', f.raw.toString('hex')]],
  );
});

test('encodeFrame produces frames the decoder accepts, on every network', () => {
  for (const network of Object.values(NETWORKS)) {
    const frames = [encodeFrame(network, 'verack'), encodeFrame(network, 'inv', payloadOf(37)), encodeFrame(network, 'abcdefghijkl', payloadOf(1))];
    const got = decodeFrames(Buffer.concat(frames.map((f) => f.raw)), { network, checksum: 'always' });
    assertSameFrames(got, frames);
    for (const f of frames) {
      assert.ok(f.raw.subarray(0, 4).equals(network.magic));
      assert.equal(f.raw.readUInt32LE(16), f.length);
      assert.equal(f.checksumValid(), true);
    }
  }
});

test('encodeFrame matches a known verack frame byte for byte', () => {
  // mainnet verack: empty payload, checksum 5df6e0e2 (first 4 bytes of sha256d(""))
  assert.equal(encodeFrame(NETWORKS.mainnet, 'verack').raw.toString('hex'), 'f9beb4d976657261636b000000000000000000005df6e0e2');
});

test('encodeFrame rejects commands longer than 12 bytes or non-printable, and oversized payloads', () => {
  const isBadCommand = (re: RegExp) => (e: unknown) => e instanceof FrameError && e.code === 'BAD_COMMAND' && re.test(e.message);
  assert.throws(() => encodeFrame(regtest, 'abcdefghijklm'), isBadCommand(/longer than 12 bytes/));
  assert.throws(() => encodeFrame(regtest, 'hasOwnProperty'), isBadCommand(/"hasOwnProperty" is longer than 12 bytes/));
  assert.throws(() => encodeFrame(regtest, 'pi\x00g'), isBadCommand(/non-printable/));
  assert.throws(() => encodeFrame(regtest, 'ping\n'), isBadCommand(/non-printable/));
  assert.throws(() => encodeFrame(regtest, 'p\x7fng'), isBadCommand(/non-printable/));
  assert.throws(() => encodeFrame(regtest, 'pïng'), isBadCommand(/non-printable/));
  assert.throws(
    () => encodeFrame(regtest, 'tx', Buffer.alloc(11), 10),
    (e: unknown) => e instanceof FrameError && e.code === 'OVERSIZED' && /"tx" is 11 bytes, above the maximum of 10/.test(e.message),
  );
});

test('decodeFrames reports a stream that ends inside a frame as TRUNCATED', () => {
  const f = encodeFrame(regtest, 'ping', payloadOf(8));
  assert.throws(
    () => decodeFrames(f.raw.subarray(0, 30), { network: regtest }),
    (e: unknown) => e instanceof FrameError && e.code === 'TRUNCATED' && /30 bytes left over/.test(e.message),
  );
});

test('bufferedBytes never exceeds HEADER_SIZE + maxPayload', () => {
  for (const maxPayload of [0, 1, 100, 5000]) {
    const frames = [
      encodeFrame(regtest, 'verack'),
      encodeFrame(regtest, 'tx', payloadOf(maxPayload)),
      encodeFrame(regtest, 'tx', payloadOf(Math.floor(maxPayload / 2))),
      encodeFrame(regtest, 'tx', payloadOf(maxPayload)),
    ];
    const stream = Buffer.concat(frames.map((f) => f.raw));
    for (const size of [1, 5, 24, 25, 1000, 4096]) {
      const c = collect({ maxPayload });
      for (let i = 0; i < stream.length; i += size) {
        c.push(stream.subarray(i, i + size));
        assert.ok(c.decoder.bufferedBytes <= HEADER_SIZE + maxPayload, `buffered ${c.decoder.bufferedBytes} > bound (max ${maxPayload}, chunk ${size})`);
      }
      assertSameFrames(c.frames, frames);
    }
    // a frame declaring more than the maximum is refused at its header, before any payload is held
    const c = collect({ maxPayload });
    pushBytewise(c, rawHeader(regtest.magic, commandField('block'), maxPayload + 1));
    pushBytewise(c, Buffer.alloc(maxPayload + 100));
    assert.equal(c.errors[0]?.code, 'OVERSIZED');
    assert.ok(c.maxBuffered < HEADER_SIZE, `held ${c.maxBuffered} bytes of a refused frame`);
  }
});

test('a 4 MB frame fed in 64 KiB chunks is held in one buffer and delivered intact', () => {
  const f = encodeFrame(regtest, 'block', payloadOf(MAX_PROTOCOL_MESSAGE_LENGTH));
  const c = collect({ checksum: 'always' });
  for (let i = 0; i < f.raw.length; i += 65536) c.push(f.raw.subarray(i, i + 65536));
  assertSameFrames(c.frames, [f]);
  assert.ok(c.maxBuffered <= HEADER_SIZE + MAX_PROTOCOL_MESSAGE_LENGTH);
});
