import type { Block } from 'bitcoinjs-lib';
import { bitcoinjs } from './bitcoinjs.js';
import { hash256 } from '../checksum.js';
import { PayloadReader } from '../reader.js';
import { PayloadWriter } from '../writer.js';
import { checkCount, type Hash, readCount, readHash, readWhole, writeHash } from './common.js';
import { defineCodec } from './registry.js';
import { type RawTransaction, readTransactions } from './tx.js';

export const BLOCK_HEADER_SIZE = 80;
/** bitcoind's MAX_HEADERS_RESULTS: the most headers one headers message may carry. */
export const MAX_HEADERS_RESULTS = 2000;

export interface BlockHeader {
  version: number;
  /** wire order */
  prevBlock: Hash;
  /** wire order */
  merkleRoot: Hash;
  time: number;
  bits: number;
  nonce: number;
}

export function readBlockHeader(r: PayloadReader, what = 'header'): BlockHeader {
  return {
    version: r.i32(`${what}.version`),
    prevBlock: readHash(r, `${what}.prevBlock`),
    merkleRoot: readHash(r, `${what}.merkleRoot`),
    time: r.u32(`${what}.time`),
    bits: r.u32(`${what}.bits`),
    nonce: r.u32(`${what}.nonce`),
  };
}

export function writeBlockHeader(w: PayloadWriter, h: BlockHeader, command: string): PayloadWriter {
  w.i32(h.version);
  writeHash(w, h.prevBlock, command, 'prevBlock');
  writeHash(w, h.merkleRoot, command, 'merkleRoot');
  return w.u32(h.time).u32(h.bits).u32(h.nonce);
}

/** The 80-byte serialization of a header. */
export function encodeBlockHeader(h: BlockHeader): Buffer {
  const w = new PayloadWriter(BLOCK_HEADER_SIZE);
  writeBlockHeader(w, h, 'header');
  return w.finish();
}

/** The block hash (hash256 of the 80-byte header), wire order; hashToHex for display. */
export function blockHash(header: BlockHeader | Uint8Array): Hash {
  if (header instanceof Uint8Array) return hash256(header.subarray(0, BLOCK_HEADER_SIZE));
  return hash256(encodeBlockHeader(header));
}

/** The header fields of a block (or cmpctblock, or headers entry) from its first 80 bytes, without reading further. */
export function peekBlockHeader(payload: Buffer, command = 'block'): BlockHeader & { hash: Hash } {
  const r = new PayloadReader(payload.subarray(0, BLOCK_HEADER_SIZE), command);
  const header = readBlockHeader(r);
  return { ...header, hash: blockHash(payload) };
}

export type HeadersMessage = BlockHeader[];

export const headers = defineCodec<HeadersMessage>({
  command: 'headers',
  decode(r) {
    const n = readCount(r, 'headers', MAX_HEADERS_RESULTS, BLOCK_HEADER_SIZE + 1);
    const out = new Array<BlockHeader>(n);
    for (let i = 0; i < n; i++) {
      out[i] = readBlockHeader(r, `headers[${i}]`);
      // bitcoind reads and ignores this count; a headers entry is a block without transactions.
      const txCount = r.compactSize(`headers[${i}] tx count`);
      if (txCount !== 0) r.fail('INVALID', `headers[${i}] has tx count ${txCount}, expected 0`);
    }
    return out;
  },
  encode(w, m) {
    w.compactSize(checkCount(m.length, MAX_HEADERS_RESULTS, 'headers', 'headers'));
    for (const h of m) writeBlockHeader(w, h, 'headers').u8(0);
  },
});

/**
 * A block kept as its exact bytes. Decoding walks every transaction (to check the structure
 * and find the boundaries) but builds nothing more than views; header fields come from the
 * first 80 bytes, and the full parse is bitcoinjs-lib's, on demand.
 */
export class RawBlock {
  constructor(
    /** the whole serialization (a view into the payload it was decoded from) */
    readonly raw: Buffer,
    /** each transaction as a view into raw */
    readonly txs: readonly RawTransaction[],
  ) {}

  /** Reads exactly one block from `buf`. */
  static parse(buf: Uint8Array, command = 'block'): RawBlock {
    return readWhole(buf, command, readBlock);
  }

  static fromBlock(block: Block): RawBlock {
    return RawBlock.parse(block.toBuffer());
  }

  get header(): BlockHeader {
    return readBlockHeader(new PayloadReader(this.raw, 'block'));
  }

  /** hash256 of the header, wire order */
  get hash(): Hash {
    return blockHash(this.raw);
  }

  /** The full parse, by bitcoinjs-lib. */
  block(): Block {
    return bitcoinjs().Block.fromBuffer(this.raw);
  }
}

export function readBlock(r: PayloadReader): RawBlock {
  const start = r.pos;
  r.bytes(BLOCK_HEADER_SIZE, 'header');
  const txs = readTransactions(r, 'tx');
  return new RawBlock(r.buf.subarray(start, r.pos), txs);
}

export const block = defineCodec<RawBlock>({
  command: 'block',
  decode: readBlock,
  encode: (w, b) => void w.bytes(b.raw),
});
