import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Block, Transaction } from 'bitcoinjs-lib';
import {
  type AddrV2Entry,
  blockHash,
  buildFrame,
  codecFor,
  decodeFrame,
  decodeMessage,
  decodePayload,
  encodeBlockHeader,
  encodeMessage,
  encodePayload,
  encodeFrame,
  FrameDecoder,
  FrameError,
  hash256,
  hashFromHex,
  hashToHex,
  InvType,
  type KnownCommand,
  knownCommands,
  type MessageTypes,
  NETWORKS,
  NetworkId,
  PayloadError,
  type PayloadErrorCode,
  peekBlockHeader,
  RawBlock,
  RawTransaction,
  type Frame,
} from '../../src/codec/index.js';
import { filePrng, randomBytes } from '../support/seed.js';

const rand = filePrng(import.meta.url);
const h = (n: number) => Buffer.alloc(32, n);
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function isPayloadError(code: PayloadErrorCode) {
  return (e: unknown) => e instanceof PayloadError && e.code === code;
}

/** encode, compare with the expected bytes when given, decode back to the same value. */
function roundTrip<C extends KnownCommand>(command: C, value: MessageTypes[C], bytes?: Buffer): Buffer {
  const encoded = encodeMessage(command, value);
  if (bytes) assert.equal(encoded.toString('hex'), bytes.toString('hex'), `${command} encoding`);
  const decoded = decodeMessage(command, encoded);
  assert.deepEqual(decoded, value, `${command} decode(encode(x))`);
  assert.ok(encodePayload(command, decoded).equals(encoded), `${command} encode(decode(b))`);
  return encoded;
}

// A segwit transaction built with bitcoinjs-lib (two inputs, one with a witness), and the
// legacy transaction of mainnet block 170.
const SEGWIT_TX = (() => {
  const t = new Transaction();
  t.version = 2;
  t.locktime = 0x11;
  t.addInput(Buffer.alloc(32, 0xaa), 0, 0xfffffffe, hex('160014' + '11'.repeat(20)));
  t.addInput(Buffer.alloc(32, 0xbb), 1, 0xffffffff);
  t.addOutput(hex('0014' + '22'.repeat(20)), 12_345n);
  t.addOutput(hex('6a'), 0n);
  t.setWitness(0, [Buffer.alloc(71, 0x30), Buffer.alloc(33, 0x02)]);
  t.setWitness(1, []);
  return Buffer.from(t.toBuffer());
})();
const LEGACY_TX = hex(`0100000001c997a5e56e104102fa209c6a852dd90660a20b2d9c352423edce25857fcd3704000000004847304402204e45e16932b8af514961a1d3a1a25fdf3f4f7732e9d624c6c61548ab5fb8cd410220181522ec8eca07de4860a4acdd12909d831cc56cbbac4622082221a8768d1d0901ffffffff0200ca9a3b00000000434104ae1a62fe09c5f51b13905f07f06b99a2f7159b2225f374cd378d71302fa28414e7aab37397f554a7df5f142c21c1b7303b8a0626f1baded5c72a704f7e6cd84cac00286bee0000000043410411db93e1dcdb8a016b49840f8c53bc1eb68a382e97b1482ecad7b148a6909a5cb2e0eaddfb84ccf9744464f82e160bfa9b8b64f9d4c03f999b8643f656b412a3ac00000000`);

describe('empty and fixed-size messages', () => {
  it('empty payloads', () => {
    for (const c of ['verack', 'getaddr', 'mempool', 'sendheaders', 'sendaddrv2', 'wtxidrelay'] as const) {
      roundTrip(c, {}, Buffer.alloc(0));
      assert.throws(() => decodePayload(c, Buffer.from([0])), isPayloadError('TRAILING_BYTES'));
    }
  });

  it('ping, pong, sendcmpct, feefilter', () => {
    roundTrip('ping', { nonce: 0x0102030405060708n }, hex('0807060504030201'));
    roundTrip('ping', {}, Buffer.alloc(0)); // pre-BIP31 peers
    roundTrip('pong', { nonce: 0xffffffffffffffffn }, hex('ffffffffffffffff'));
    assert.throws(() => decodePayload('pong', Buffer.alloc(7)), isPayloadError('TRUNCATED'));
    roundTrip('sendcmpct', { announce: true, version: 2n }, hex('010200000000000000'));
    roundTrip('sendcmpct', { announce: false, version: 1n }, hex('000100000000000000'));
    // bitcoind reads any non-zero byte as true (p2p_compactblocks sends 2): kept exactly
    const odd = decodeMessage('sendcmpct', hex('020200000000000000'));
    assert.deepEqual(odd, { announce: true, version: 2n, announceByte: 2 });
    assert.ok(encodeMessage('sendcmpct', odd).equals(hex('020200000000000000')));
    roundTrip('feefilter', { feeRate: 1000n }, hex('e803000000000000'));
    roundTrip('feefilter', { feeRate: -1n }, hex('ffffffffffffffff'));
  });

  it('version keeps an odd relay byte', () => {
    const v: MessageTypes['version'] = {
      version: 70016,
      services: 0x409n,
      timestamp: 1_700_000_000n,
      addrRecv: { services: 0n, ip: Buffer.alloc(16), port: 0 },
      addrFrom: { services: 0x409n, ip: Buffer.alloc(16), port: 0 },
      nonce: 42n,
      userAgent: '/Satoshi:27.0.0/',
      startHeight: 800_000,
      relay: true,
      relayByte: 7,
    };
    const b = roundTrip('version', v);
    assert.equal(b.at(-1), 7);
  });

  it('reject, with and without data', () => {
    roundTrip('reject', { message: 'tx', code: 0x10, reason: 'bad-txns-inputs-missingorspent', data: h(9) });
    roundTrip('reject', { message: 'version', code: 0x11, reason: 'obsolete' }, hex('0776657273696f6e11086f62736f6c657465'));
    assert.throws(() => decodePayload('reject', hex('0d') ), isPayloadError('LIMIT'));
  });

  it('feature (BIP434)', () => {
    roundTrip('feature', { featureId: 'BIP434', data: Buffer.alloc(0) }, hex('06424950343334 00'));
    roundTrip('feature', { featureId: 'x'.repeat(80), data: Buffer.alloc(512, 1) });
    const id = (len: number) => Buffer.concat([Buffer.from([len]), Buffer.alloc(len, 0x41), Buffer.from([0])]);
    assert.throws(() => decodePayload('feature', id(3)), isPayloadError('INVALID'));
    assert.throws(() => decodePayload('feature', id(81)), isPayloadError('LIMIT'));
    assert.throws(() => decodePayload('feature', Buffer.concat([id(4).subarray(0, 5), hex('fd0102')])), isPayloadError('LIMIT'));
    assert.throws(() => encodePayload('feature', { featureId: 'BIP', data: Buffer.alloc(0) }), isPayloadError('INVALID'));
    assert.throws(() => encodePayload('feature', { featureId: 'BIP434', data: Buffer.alloc(513) }), isPayloadError('LIMIT'));
    assert.throws(() => decodePayload('feature', id(4).subarray(0, 5)), isPayloadError('TRUNCATED'));
  });
});

describe('inventory and locators', () => {
  it('inv, getdata, notfound', () => {
    const items = [
      { type: InvType.WITNESS_TX, hash: h(1) },
      { type: InvType.BLOCK, hash: h(2) },
      { type: 0xdeadbeef, hash: h(3) }, // unknown types are kept
    ];
    for (const c of ['inv', 'getdata', 'notfound'] as const) {
      const b = roundTrip(c, items);
      assert.equal(b.length, 1 + 36 * 3);
      assert.equal(b.readUInt32LE(1), 0x40000001);
    }
    roundTrip('inv', [], hex('00'));
  });

  it('50,000 entries pass, 50,001 are LIMIT both ways', () => {
    const many = Array.from({ length: 50_000 }, (_, i) => ({ type: 1, hash: h(i & 0xff) }));
    roundTrip('inv', many);
    const over = Buffer.concat([hex('fd51c3'), Buffer.alloc(36 * 50_001)]);
    assert.throws(() => decodePayload('inv', over), isPayloadError('LIMIT'));
    assert.throws(() => decodePayload('getdata', hex('fd51c3')), isPayloadError('LIMIT'));
    assert.throws(() => encodePayload('notfound', [...many, { type: 1, hash: h(0) }]), isPayloadError('LIMIT'));
  });

  it('a count the payload cannot back is TRUNCATED before allocating', () => {
    assert.throws(() => decodePayload('inv', hex('fd0001')), isPayloadError('TRUNCATED'));
  });

  it('non-canonical CompactSize is NON_CANONICAL', () => {
    assert.throws(() => decodePayload('inv', hex('fd0100') ), isPayloadError('NON_CANONICAL'));
    assert.throws(() => decodePayload('inv', hex('fe01000000')), isPayloadError('NON_CANONICAL'));
    assert.throws(() => decodePayload('inv', hex('ff0100000000000000')), isPayloadError('NON_CANONICAL'));
    assert.throws(() => decodePayload('headers', hex('fd0000')), isPayloadError('NON_CANONICAL'));
  });

  it('a hash that is not 32 bytes is refused when encoding', () => {
    assert.throws(() => encodePayload('inv', [{ type: 1, hash: Buffer.alloc(31) }]), isPayloadError('INVALID'));
  });

  it('getheaders and getblocks (101 hashes at most)', () => {
    for (const c of ['getheaders', 'getblocks'] as const) {
      roundTrip(c, { version: 70016, locator: [h(1), h(2)], hashStop: Buffer.alloc(32) });
      roundTrip(c, { version: 70016, locator: Array.from({ length: 101 }, (_, i) => h(i)), hashStop: h(7) });
      const over = Buffer.concat([hex('80110100 66'), Buffer.alloc(32 * 103)]);
      assert.throws(() => decodePayload(c, over), isPayloadError('LIMIT'));
      assert.throws(() => encodePayload(c, { version: 1, locator: Array.from({ length: 102 }, () => h(0)), hashStop: h(0) }), isPayloadError('LIMIT'));
    }
  });
});

describe('headers and block header access', () => {
  // The mainnet genesis block header.
  const GENESIS = hex(
    '0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c',
  );
  const genesis = { version: 1, prevBlock: Buffer.alloc(32), merkleRoot: GENESIS.subarray(36, 68), time: 1231006505, bits: 0x1d00ffff, nonce: 2083236893 };

  it('genesis header fields and hash', () => {
    assert.ok(encodeBlockHeader(genesis).equals(GENESIS));
    assert.equal(hashToHex(blockHash(genesis)), '000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f');
    assert.equal(hashToHex(blockHash(GENESIS)), '000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f');
    const peek = peekBlockHeader(GENESIS);
    assert.deepEqual({ ...peek, hash: undefined }, { ...genesis, hash: undefined });
    assert.ok(hashFromHex(hashToHex(peek.hash)).equals(peek.hash));
    assert.throws(() => hashFromHex('00'), RangeError);
  });

  it('headers: 2,000 pass, 2,001 are LIMIT, a non-zero tx count is INVALID', () => {
    roundTrip('headers', [genesis], Buffer.concat([hex('01'), GENESIS, hex('00')]));
    const max = Array.from({ length: 2000 }, (_, i) => ({ ...genesis, nonce: i }));
    roundTrip('headers', max);
    const over = Buffer.concat([hex('fdd107'), Buffer.alloc(81 * 2001)]);
    assert.throws(() => decodePayload('headers', over), isPayloadError('LIMIT'));
    assert.throws(() => encodePayload('headers', [...max, genesis]), isPayloadError('LIMIT'));
    assert.throws(() => decodePayload('headers', Buffer.concat([hex('01'), GENESIS, hex('01')])), isPayloadError('INVALID'));
    assert.throws(() => decodePayload('headers', Buffer.concat([hex('01'), GENESIS])), isPayloadError('TRUNCATED'));
  });
});

describe('addr and addrv2', () => {
  it('addr: 1,000 pass, 1,001 are LIMIT', () => {
    const entry = { time: 1_700_000_000, services: 0x409n, ip: Buffer.from('00000000000000000000ffff7f000001', 'hex'), port: 8333 };
    const b = roundTrip('addr', [entry]);
    assert.equal(b.toString('hex'), '01' + '00f15365' + '0904000000000000' + '00000000000000000000ffff7f000001' + '208d');
    roundTrip('addr', Array.from({ length: 1000 }, (_, i) => ({ ...entry, port: i })));
    const over = Buffer.concat([hex('fde903'), Buffer.alloc(30 * 1001)]);
    assert.throws(() => decodePayload('addr', over), isPayloadError('LIMIT'));
    assert.throws(() => encodePayload('addr', Array.from({ length: 1001 }, () => entry)), isPayloadError('LIMIT'));
  });

  it('addrv2: every BIP155 network, unknown ids kept, u64 services', () => {
    const sizes: Record<number, number> = { [NetworkId.IPV4]: 4, [NetworkId.IPV6]: 16, [NetworkId.TORV2]: 10, [NetworkId.TORV3]: 32, [NetworkId.I2P]: 32, [NetworkId.CJDNS]: 16 };
    const entries: AddrV2Entry[] = Object.entries(sizes).map(([id, len], i) => ({
      time: 1_700_000_000 + i,
      services: [0n, 0xfcn, 0xfdn, 0x10000n, 0x100000000n, 0xffffffffffffffffn][i]!,
      networkId: Number(id),
      addr: randomBytes(rand, len),
      port: 8333 + i,
    }));
    entries.push({ time: 1, services: 1n, networkId: 42, addr: randomBytes(rand, 512), port: 1 });
    entries.push({ time: 1, services: 1n, networkId: 0, addr: Buffer.alloc(0), port: 0 });
    roundTrip('addrv2', entries);
    // IPv4 127.0.0.1:8333, services NODE_NETWORK|NODE_WITNESS as CompactSize 0xfd 0x0409
    roundTrip('addrv2', [{ time: 0, services: 0x409n, networkId: 1, addr: hex('7f000001'), port: 8333 }], hex('01 00000000 fd0904 01 04 7f000001 208d'));
  });

  it('addrv2: wrong lengths for known ids are INVALID, 513 bytes LIMIT, 1,001 entries LIMIT, non-canonical services', () => {
    const one = (id: number, len: number) => Buffer.concat([hex('01 00000000 00'), Buffer.from([id]), len < 0xfd ? Buffer.from([len]) : hex('fd' + len.toString(16).padStart(4, '0').replace(/(..)(..)/, '$2$1')), Buffer.alloc(len), hex('0000')]);
    assert.ok(decodeMessage('addrv2', one(1, 4)));
    assert.throws(() => decodePayload('addrv2', one(1, 16)), isPayloadError('INVALID'));
    assert.throws(() => decodePayload('addrv2', one(4, 16)), isPayloadError('INVALID'));
    assert.throws(() => decodePayload('addrv2', one(99, 513)), isPayloadError('LIMIT'));
    assert.throws(() => encodePayload('addrv2', [{ time: 0, services: 0n, networkId: 2, addr: Buffer.alloc(4), port: 0 }]), isPayloadError('INVALID'));
    assert.throws(() => decodePayload('addrv2', Buffer.concat([hex('fde903'), Buffer.alloc(9 * 1001)])), isPayloadError('LIMIT'));
    assert.throws(() => decodePayload('addrv2', hex('01 00000000 fd0100 01 04 7f000001 208d')), isPayloadError('NON_CANONICAL'));
  });
});

describe('tx and block', () => {
  it('segwit tx: txid and wtxid from the bytes, without a full parse, agree with bitcoinjs-lib', () => {
    const tx = decodeMessage('tx', SEGWIT_TX);
    assert.ok(tx.hasWitness);
    assert.equal(tx.version, 2);
    assert.equal(tx.locktime, 0x11);
    assert.ok(!tx.txid().equals(tx.wtxid()));
    const full = tx.transaction();
    assert.equal(hashToHex(tx.txid()), full.getId());
    assert.ok(tx.wtxid().equals(Buffer.from(full.getHash(true))));
    assert.ok(Buffer.from(full.toBuffer()).equals(SEGWIT_TX));
    assert.equal(tx.stripped().length, full.byteLength(false));
    roundTrip('tx', tx, SEGWIT_TX);
    assert.deepEqual(RawTransaction.fromTransaction(full), tx);
  });

  it('legacy tx: txid == wtxid', () => {
    const tx = decodeMessage('tx', LEGACY_TX);
    assert.equal(tx.hasWitness, false);
    assert.equal(hashToHex(tx.txid()), 'f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16');
    assert.ok(tx.txid().equals(tx.wtxid()));
  });

  it('bitcoind rejects superfluous witness records and unknown flags, and so do we', () => {
    const legacy = Transaction.fromBuffer(LEGACY_TX);
    // marker + flag 1 but every witness empty
    const n = LEGACY_TX.length;
    const superfluous = Buffer.concat([LEGACY_TX.subarray(0, 4), hex('0001'), LEGACY_TX.subarray(4, n - 4), hex('00'), LEGACY_TX.subarray(n - 4)]);
    assert.equal(legacy.ins.length, 1);
    assert.throws(() => decodePayload('tx', superfluous), isPayloadError('INVALID'));
    const flag3 = Buffer.from(SEGWIT_TX);
    flag3[5] = 3;
    assert.throws(() => decodePayload('tx', flag3), isPayloadError('INVALID'));
    for (let cut = 0; cut < SEGWIT_TX.length; cut += 7) {
      assert.throws(() => decodePayload('tx', SEGWIT_TX.subarray(0, cut)), isPayloadError('TRUNCATED'));
    }
    assert.throws(() => decodePayload('tx', Buffer.concat([SEGWIT_TX, hex('00')])), isPayloadError('TRAILING_BYTES'));
  });

  it('block: header fields and txids without a full parse; full parse by bitcoinjs-lib', () => {
    const coinbase = new Transaction();
    coinbase.addInput(Buffer.alloc(32), 0xffffffff, 0xffffffff, hex('03a08601'));
    coinbase.addOutput(hex('51'), 50n * 100_000_000n);
    const b = new Block();
    b.version = 0x20000000;
    b.prevHash = h(5);
    b.timestamp = 1_700_000_000;
    b.bits = 0x207fffff;
    b.nonce = 3;
    b.transactions = [coinbase, Transaction.fromBuffer(LEGACY_TX), Transaction.fromBuffer(SEGWIT_TX)];
    b.merkleRoot = Block.calculateMerkleRoot(b.transactions);
    const bytes = Buffer.from(b.toBuffer());
    const raw = decodeMessage('block', bytes);
    assert.ok(raw instanceof RawBlock);
    assert.equal(raw.header.version, 0x20000000);
    assert.ok(raw.header.prevBlock.equals(h(5)));
    assert.equal(raw.header.bits, 0x207fffff);
    assert.equal(hashToHex(raw.hash), b.getId());
    assert.deepEqual(raw.txs.map((t) => hashToHex(t.txid())), b.transactions.map((t) => t.getId()));
    assert.ok(raw.txs[2]!.hasWitness);
    assert.ok(Buffer.from(raw.block().toBuffer()).equals(bytes));
    roundTrip('block', raw, bytes);
    assert.deepEqual(RawBlock.fromBlock(b), raw);
    assert.throws(() => decodePayload('block', bytes.subarray(0, 79)), isPayloadError('TRUNCATED'));
    assert.throws(() => decodePayload('block', Buffer.concat([bytes.subarray(0, 80), hex('05')])), isPayloadError('TRUNCATED'));
  });
});

describe('compact blocks (BIP152)', () => {
  const header = { version: 4, prevBlock: h(1), merkleRoot: h(2), time: 3, bits: 4, nonce: 5 };
  const tx = RawTransaction.parse(LEGACY_TX);
  const wtx = RawTransaction.parse(SEGWIT_TX);

  it('cmpctblock with differential prefilled indexes', () => {
    const m = { header, nonce: 0x1122334455667788n, shortIds: [hex('010203040506'), hex('0a0b0c0d0e0f')], prefilled: [{ index: 0, tx }, { index: 3, tx: wtx }] };
    const b = roundTrip('cmpctblock', m);
    // after header, nonce and the shortids: count 2, index 0 (diff 0), ..., index 3 (diff 3-0-1 = 2)
    const at = 80 + 8 + 1 + 12;
    assert.equal(b[at], 2);
    assert.equal(b[at + 1], 0);
    assert.equal(b[at + 2 + LEGACY_TX.length], 2);
    assert.throws(() => encodePayload('cmpctblock', { ...m, prefilled: [{ index: 3, tx }, { index: 3, tx }] }), isPayloadError('INVALID'));
    assert.throws(() => encodePayload('cmpctblock', { ...m, shortIds: [hex('0102')] }), isPayloadError('INVALID'));
  });

  it('getblocktxn keeps the differential encoding exact and refuses 16-bit overflow', () => {
    roundTrip('getblocktxn', { blockHash: h(9), indexes: [0, 1, 5, 300, 65535] }, Buffer.concat([h(9), hex('05 00 00 03 fd2601 fdd2fe')]));
    roundTrip('getblocktxn', { blockHash: h(9), indexes: [] });
    assert.throws(() => decodePayload('getblocktxn', Buffer.concat([h(9), hex('02 fdffff 00')])), isPayloadError('INVALID'));
    assert.throws(() => encodePayload('getblocktxn', { blockHash: h(9), indexes: [65536] }), isPayloadError('INVALID'));
  });

  it('blocktxn', () => {
    roundTrip('blocktxn', { blockHash: h(4), txs: [tx, wtx] });
    roundTrip('blocktxn', { blockHash: h(4), txs: [] }, Buffer.concat([h(4), hex('00')]));
    assert.throws(() => decodePayload('blocktxn', Buffer.concat([h(4), hex('05'), LEGACY_TX])), isPayloadError('TRUNCATED'));
  });
});

describe('user agent and registry', () => {
  const base = { version: 70016, services: 0n, timestamp: 0n, addrRecv: { services: 0n, ip: Buffer.alloc(16), port: 0 }, addrFrom: { services: 0n, ip: Buffer.alloc(16), port: 0 }, nonce: 0n };

  it('a 256-byte user agent passes, 257 bytes is LIMIT', () => {
    roundTrip('version', { ...base, userAgent: 'u'.repeat(256), startHeight: 0, relay: false });
    const b = encodeMessage('version', { ...base, userAgent: 'u'.repeat(257) });
    assert.throws(() => decodePayload('version', b), isPayloadError('LIMIT'));
  });

  it('commands named like object properties are unknown everywhere', () => {
    for (const c of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'prototype']) {
      assert.equal(codecFor(c), undefined, c);
      assert.ok(!knownCommands().includes(c));
      assert.throws(() => decodePayload(c, Buffer.alloc(0)), isPayloadError('INVALID'));
      assert.throws(() => encodePayload(c, {}), isPayloadError('INVALID'));
      assert.throws(() => buildFrame(NETWORKS.regtest, c, {}), (e) => e instanceof PayloadError || e instanceof FrameError);
      if (c.length > 12) continue; // hasOwnProperty cannot be a P2P command at all (BAD_COMMAND at the frame layer)
      // a real frame through the decoder: passes as an unknown command, its payload has no codec
      const got: Frame[] = [];
      const decoder = new FrameDecoder({ network: NETWORKS.regtest, checksum: 'always' }, { onFrame: (f) => got.push(f.copy()), onError: assert.fail });
      decoder.push(encodeFrame(NETWORKS.regtest, c, Buffer.from([1, 2])).raw);
      assert.equal(got.length, 1);
      assert.equal(got[0]!.command, c);
      assert.throws(() => decodeFrame(got[0]!), isPayloadError('INVALID'));
    }
  });

  it('knows every command of the issue', () => {
    const want = 'version verack ping pong inv getdata notfound getheaders getblocks headers addr addrv2 sendaddrv2 wtxidrelay sendheaders getaddr mempool sendcmpct feefilter reject feature getblocktxn blocktxn cmpctblock tx block';
    assert.deepEqual([...knownCommands()].sort(), want.split(' ').sort());
  });

  it('buildFrame and decodeFrame', () => {
    const frame = buildFrame(NETWORKS.mainnet, 'ping', { nonce: 7n });
    assert.equal(frame.raw.toString('hex', 0, 20), 'f9beb4d9' + '70696e670000000000000000' + '08000000');
    assert.equal(frame.raw.toString('hex', 24), '0700000000000000');
    assert.ok(frame.raw.subarray(20, 24).equals(hash256(frame.payload).subarray(0, 4)));
    const got: Frame[] = [];
    new FrameDecoder({ network: NETWORKS.mainnet }, { onFrame: (f) => got.push(f.copy()), onError: assert.fail }).push(frame.raw);
    assert.deepEqual(decodeFrame(got[0]!), { nonce: 7n });
  });
});
