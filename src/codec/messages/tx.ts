import type { Transaction } from 'bitcoinjs-lib';
import { bitcoinjs } from './bitcoinjs.js';
import { hash256 } from '../checksum.js';
import { MAX_SIZE, type PayloadReader } from '../reader.js';
import type { PayloadWriter } from '../writer.js';
import { type Hash, readCount, readWhole } from './common.js';
import { defineCodec } from './registry.js';

/** version + empty vin + empty vout + locktime: the shortest serialization bitcoind reads. */
export const MIN_TX_SIZE = 10;

/**
 * One serialized transaction, kept as its exact bytes. Decoding only walks the structure to
 * find its end and where the witness starts (enough for txid and wtxid); the full parse is
 * bitcoinjs-lib's, on demand.
 */
export class RawTransaction {
  readonly #witnessStart: number;

  /** Use skimTransaction or RawTransaction.parse: the layout must match the bytes. */
  private constructor(
    /** the whole serialization (a view into the payload it was decoded from) */
    readonly raw: Buffer,
    witnessStart: number,
  ) {
    this.#witnessStart = witnessStart;
  }

  /** Reads exactly one transaction from `buf` (the whole buffer). */
  static parse(buf: Uint8Array, command = 'tx'): RawTransaction {
    return readWhole(buf, command, skimTransaction);
  }

  /** From a bitcoinjs-lib Transaction (serialized with witness data when it has any). */
  static fromTransaction(tx: Transaction): RawTransaction {
    return RawTransaction.parse(tx.toBuffer());
  }

  /** @internal */
  static fromLayout(raw: Buffer, witnessStart: number): RawTransaction {
    return new RawTransaction(raw, witnessStart);
  }

  /** True when serialized with the segwit marker, flag and witness data. */
  get hasWitness(): boolean {
    return this.#witnessStart > 0;
  }

  /** int32 version, straight from the first 4 bytes */
  get version(): number {
    return this.raw.readInt32LE(0);
  }

  get locktime(): number {
    return this.raw.readUInt32LE(this.raw.length - 4);
  }

  /** The serialization without marker, flag and witnesses (what the txid commits to). */
  stripped(): Buffer {
    if (!this.hasWitness) return this.raw;
    const raw = this.raw;
    return Buffer.concat([raw.subarray(0, 4), raw.subarray(6, this.#witnessStart), raw.subarray(raw.length - 4)]);
  }

  /** hash256 of the non-witness serialization, wire order (hashToHex for display). */
  txid(): Hash {
    return hash256(this.stripped());
  }

  /** hash256 of the full serialization, wire order. Equals txid() for a transaction without witness. */
  wtxid(): Hash {
    return hash256(this.raw);
  }

  /** The full parse, by bitcoinjs-lib. */
  transaction(): Transaction {
    return bitcoinjs().Transaction.fromBuffer(this.raw);
  }
}

/**
 * Walks one transaction at the reader's position the way bitcoind's UnserializeTransaction
 * reads it (extended format with marker 0 and flag 1; a superfluous witness record or unknown
 * flags are INVALID as bitcoind rejects them) without building any object, and returns a view of it.
 */
export function skimTransaction(r: PayloadReader, what = 'tx'): RawTransaction {
  const start = r.pos;
  r.i32(`${what}.version`);
  let nIn = r.compactSize(`${what} input count`);
  let witnessStart = 0;
  if (nIn === 0) {
    // An empty vin is either the segwit marker or a transaction with no inputs and no outputs.
    const flags = r.u8(`${what}.flags`);
    if (flags !== 0) {
      if (flags !== 1) r.fail('INVALID', `${what}: unknown transaction optional data (flags 0x${flags.toString(16)})`);
      nIn = readCount(r, `${what} input`, MAX_SIZE, 41);
      skimInputsOutputs(r, nIn, what);
      witnessStart = r.pos;
      let anyWitness = false;
      for (let i = 0; i < nIn; i++) {
        const items = readCount(r, `${what} witness[${i}]`, MAX_SIZE, 1);
        if (items > 0) anyWitness = true;
        for (let j = 0; j < items; j++) r.varBytes(`${what} witness[${i}][${j}]`);
      }
      if (!anyWitness) r.fail('INVALID', `${what}: superfluous witness record (all witnesses empty)`);
    }
  } else {
    if (nIn * 41 > r.remaining) r.fail('TRUNCATED', `${what}: ${nIn} inputs need more than the ${r.remaining} bytes left`);
    skimInputsOutputs(r, nIn, what);
  }
  r.u32(`${what}.locktime`);
  return RawTransaction.fromLayout(r.buf.subarray(start, r.pos), witnessStart === 0 ? 0 : witnessStart - start);
}

function skimInputsOutputs(r: PayloadReader, nIn: number, what: string): void {
  for (let i = 0; i < nIn; i++) {
    r.bytes(36, `${what} input[${i}].prevout`);
    r.varBytes(`${what} input[${i}].scriptSig`);
    r.u32(`${what} input[${i}].sequence`);
  }
  const nOut = readCount(r, `${what} output`, MAX_SIZE, 9);
  for (let i = 0; i < nOut; i++) {
    r.i64(`${what} output[${i}].value`);
    r.varBytes(`${what} output[${i}].scriptPubKey`);
  }
}

export function writeTransaction(w: PayloadWriter, tx: RawTransaction): void {
  w.bytes(tx.raw);
}

export function readTransactions(r: PayloadReader, what: string): RawTransaction[] {
  const n = readCount(r, what, MAX_SIZE, MIN_TX_SIZE);
  const txs = new Array<RawTransaction>(n);
  for (let i = 0; i < n; i++) txs[i] = skimTransaction(r, `${what}[${i}]`);
  return txs;
}

export function writeTransactions(w: PayloadWriter, txs: readonly RawTransaction[]): void {
  w.compactSize(txs.length);
  for (const tx of txs) writeTransaction(w, tx);
}

export const tx = defineCodec<RawTransaction>({
  command: 'tx',
  decode: (r) => skimTransaction(r),
  encode: writeTransaction,
});
