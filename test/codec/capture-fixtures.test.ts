import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CAPTURE_RECORD_HEADER_SIZE, encodeCaptureFile, encodeCaptureRecord, readCaptureFile } from '../../src/codec/capture-format.js';
import {
  codecFor,
  decodeFrame,
  decodePayload,
  encodeFrame,
  encodePayload,
  FrameDecoder,
  FrameError,
  MAX_ADDR_TO_SEND,
  NETWORKS,
  PayloadError,
  PayloadReader,
  PayloadWriter,
  readAddrV2Entry,
  writeAddrV2Entry,
  type Frame,
} from '../../src/codec/index.js';
import { captureFiles } from './support-fixtures.js';
import { filePrng } from '../support/seed.js';

// Records per command over every file of test/fixtures/bitcoind-capture (bitcoind 31.99 functional tests).
const EXPECTED_COUNTS: Record<string, number> = {
  cmpctblock: 556,
  inv: 421,
  headers: 370,
  ping: 342,
  pong: 342,
  getdata: 137,
  block: 121,
  version: 93,
  sendcmpct: 83,
  getblocktxn: 82,
  tx: 80,
  blocktxn: 73,
  verack: 68,
  wtxidrelay: 67,
  getheaders: 64,
  sendaddrv2: 41,
  feefilter: 41,
  getaddr: 30,
  sendheaders: 21,
  addrv2: 2,
};

/**
 * Records that break one of bitcoind's limits on purpose. p2p_addrv2_relay.py sends an addrv2
 * of 1010 entries to check MAX_ADDR_TO_SEND: bitcoind deserializes it, then punishes the peer
 * and ignores the message. Our codec refuses it with LIMIT before allocating; its bytes are
 * still checked for an exact round trip entry by entry below.
 */
const OVER_LIMIT = new Map([['p2p_addrv2_relay-2/msgs_recv.dat#11', 'addrv2']]);

const files = captureFiles();

describe('bitcoind capture fixtures', () => {
  it('are all there', () => {
    assert.equal(files.length, 55); // p2p_handshake-2 has only msgs_sent.dat
    assert.ok(files.every((f) => f.records.length > 0));
  });

  it('every payload decodes with its command codec and re-encodes byte for byte', () => {
    const counts: Record<string, number> = {};
    let overLimit = 0;
    for (const file of files) {
      for (const [i, rec] of file.records.entries()) {
        assert.ok(codecFor(rec.command), `${file.name}#${i}: no codec for "${rec.command}"`);
        if (OVER_LIMIT.has(`${file.name}#${i}`)) {
          assert.equal(rec.command, OVER_LIMIT.get(`${file.name}#${i}`));
          assert.throws(() => decodePayload(rec.command, rec.payload), (e) => e instanceof PayloadError && e.code === 'LIMIT');
          overLimit++;
          continue;
        }
        let value: unknown;
        try {
          value = decodePayload(rec.command, rec.payload);
        } catch (err) {
          assert.fail(`${file.name}#${i} ${rec.command} (${rec.payload.length} bytes) does not decode: ${(err as Error).message}`);
        }
        const again = encodePayload(rec.command, value);
        assert.ok(again.equals(rec.payload), `${file.name}#${i} ${rec.command} re-encodes differently`);
        assert.deepEqual(decodePayload(rec.command, again), value);
        counts[rec.command] = (counts[rec.command] ?? 0) + 1;
      }
    }
    assert.deepEqual(counts, EXPECTED_COUNTS);
    assert.equal(overLimit, OVER_LIMIT.size);
  });

  it('the oversized addrv2 record is well formed apart from its count and round-trips entry by entry', () => {
    const rec = files.find((f) => f.name === 'p2p_addrv2_relay-2/msgs_recv.dat')!.records[11]!;
    const r = new PayloadReader(rec.payload, 'addrv2');
    const n = r.compactSize('count');
    assert.equal(n, 1010);
    const entries = Array.from({ length: n }, (_, i) => readAddrV2Entry(r, `addrv2[${i}]`));
    r.end();
    const w = new PayloadWriter().compactSize(n);
    for (const e of entries) writeAddrV2Entry(w, e);
    assert.ok(w.finish().equals(rec.payload));
    // the first 1000 entries make a valid addrv2 that round-trips through the codec
    const valid = encodePayload('addrv2', entries.slice(0, MAX_ADDR_TO_SEND));
    assert.deepEqual(decodePayload('addrv2', valid), entries.slice(0, MAX_ADDR_TO_SEND));
  });

  it('capture files re-encode byte for byte', () => {
    for (const file of files) {
      assert.ok(encodeCaptureFile(file.records).equals(file.bytes), file.name);
      const first = file.records[0]!;
      assert.equal(encodeCaptureRecord(first).length, CAPTURE_RECORD_HEADER_SIZE + first.payload.length);
      assert.ok(first.timeMicros > 1_600_000_000_000_000n, 'time is microseconds since the epoch');
    }
  });

  it('replay as wire frames through FrameDecoder fed in random-size chunks', () => {
    const rand = filePrng(import.meta.url, 'chunking');
    let total = 0;
    for (const [n, file] of files.entries()) {
      const network = n % 2 === 0 ? NETWORKS.regtest : NETWORKS.mainnet;
      const stream = Buffer.concat(file.records.map((r) => encodeFrame(network, r.command, r.payload).raw));
      const got: Frame[] = [];
      const errors: FrameError[] = [];
      const decoder = new FrameDecoder({ network, checksum: n % 3 === 0 ? 'always' : 'lazy' }, {
        onFrame: (f) => got.push(f.copy()),
        onError: (e) => errors.push(e),
      });
      for (let pos = 0; pos < stream.length; ) {
        // mostly small chunks, sometimes 1 byte, sometimes large
        const r = rand();
        const size = r < 0.2 ? 1 : r < 0.9 ? 1 + Math.floor(rand() * 100) : 1 + Math.floor(rand() * 70_000);
        decoder.push(stream.subarray(pos, pos + size));
        pos += size;
      }
      assert.deepEqual(errors, [], file.name);
      assert.equal(decoder.bufferedBytes, 0);
      assert.equal(got.length, file.records.length, file.name);
      for (const [i, frame] of got.entries()) {
        const rec = file.records[i]!;
        assert.equal(frame.command, rec.command);
        assert.ok(frame.payload.equals(rec.payload));
        if (OVER_LIMIT.has(`${file.name}#${i}`)) {
          assert.throws(() => decodeFrame(frame), PayloadError);
        } else {
          assert.ok(encodePayload(frame.command, decodeFrame(frame)).equals(rec.payload));
        }
        total++;
      }
    }
    assert.equal(total, Object.values(EXPECTED_COUNTS).reduce((a, b) => a + b, 0) + OVER_LIMIT.size);
  });

  it('a corrupted frame is refused by decodeFrame with BAD_CHECKSUM', () => {
    const rec = files[0]!.records.find((r) => r.payload.length > 0)!;
    const frame = encodeFrame(NETWORKS.regtest, rec.command, rec.payload);
    const bad = Buffer.from(frame.raw);
    bad[bad.length - 1]! ^= 1;
    const decoder: Frame[] = [];
    new FrameDecoder({ network: NETWORKS.regtest, checksum: 'lazy' }, { onFrame: (f) => decoder.push(f), onError: assert.fail }).push(bad);
    assert.throws(() => decodeFrame(decoder[0]!), (e) => e instanceof FrameError && e.code === 'BAD_CHECKSUM');
  });
});

describe('capture format', () => {
  it('round-trips generated records', () => {
    const records = [
      { timeMicros: 0n, command: 'verack', payload: Buffer.alloc(0) },
      { timeMicros: 0xffffffffffffffffn, command: 'abcdefghijkl', payload: Buffer.from('0102', 'hex') },
      { timeMicros: 1_700_000_000_123_456n, command: 'x:hello', payload: Buffer.alloc(300, 7) },
    ];
    const bytes = encodeCaptureFile(records);
    assert.equal(bytes.length, 3 * CAPTURE_RECORD_HEADER_SIZE + 302);
    assert.deepEqual(readCaptureFile(bytes), records);
    assert.equal(bytes.toString('latin1', 8, 20), 'verack\0\0\0\0\0\0');
    assert.equal(bytes.readUInt32LE(20), 0);
  });

  it('refuses truncated files and bad commands with FrameError', () => {
    const bytes = encodeCaptureRecord({ timeMicros: 1n, command: 'ping', payload: Buffer.alloc(8) });
    for (let cut = 1; cut < bytes.length; cut++) {
      assert.throws(() => readCaptureFile(bytes.subarray(0, cut)), (e) => e instanceof FrameError && e.code === 'TRUNCATED');
    }
    const bad = Buffer.from(bytes);
    bad[8] = 0x07;
    assert.throws(() => readCaptureFile(bad), (e) => e instanceof FrameError && e.code === 'BAD_COMMAND');
    assert.throws(() => encodeCaptureRecord({ timeMicros: 1n, command: 'thirteen-char', payload: Buffer.alloc(0) }), FrameError);
  });
});
