import { PayloadError } from '../errors.js';
import { PayloadReader } from '../reader.js';
import type { PayloadWriter } from '../writer.js';

/** A 32-byte hash (txid, block hash, ...) in wire order: the reverse of how explorers print it. */
export type Hash = Buffer;

export const HASH_SIZE = 32;

/** A hash as it is usually displayed: wire bytes reversed, hex. */
export function hashToHex(hash: Uint8Array): string {
  return Buffer.from(hash).reverse().toString('hex');
}

/** The wire-order hash from its usual display form (64 hex digits, reversed). */
export function hashFromHex(hex: string): Hash {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new RangeError(`a hash is 64 hex digits, got "${hex}"`);
  return Buffer.from(hex, 'hex').reverse();
}

export function readHash(r: PayloadReader, what: string): Hash {
  return r.bytes(HASH_SIZE, what);
}

/** Writes exactly 32 bytes; anything else is a caller bug, reported as INVALID for the command. */
export function writeHash(w: PayloadWriter, hash: Uint8Array, command: string, what: string): void {
  w.bytes(checkLength(hash, HASH_SIZE, command, what));
}

export function checkLength(b: Uint8Array, len: number, command: string, what: string): Uint8Array {
  if (b.length !== len) throw new PayloadError('INVALID', command, `${what} must be ${len} bytes, got ${b.length}`);
  return b;
}

/**
 * A CompactSize-prefixed count of items of at least `minItemSize` bytes each, at most `max`.
 * The count is also checked against the bytes left, so no decoder allocates from a length the
 * payload cannot back.
 */
export function readCount(r: PayloadReader, what: string, max: number, minItemSize: number): number {
  const n = r.compactSize(`${what} count`, max);
  if (n * minItemSize > r.remaining) {
    r.fail('TRUNCATED', `${what}: ${n} entries of at least ${minItemSize} bytes need more than the ${r.remaining} bytes left`);
  }
  return n;
}

/** Fails encoding with LIMIT when a list is longer than the decoder would accept. */
export function checkCount(n: number, max: number, command: string, what: string): number {
  if (n > max) throw new PayloadError('LIMIT', command, `${what}: ${n} entries, above the limit of ${max}`);
  return n;
}

/** A CompactSize over the whole uint64 range (BIP155 services), canonical only. */
export function readCompactSize64(r: PayloadReader, what: string): bigint {
  const first = r.u8(what);
  if (first < 0xfd) return BigInt(first);
  let n: bigint;
  let min: bigint;
  if (first === 0xfd) {
    n = BigInt(r.bytes(2, what).readUInt16LE(0));
    min = 0xfdn;
  } else if (first === 0xfe) {
    n = BigInt(r.bytes(4, what).readUInt32LE(0));
    min = 0x10000n;
  } else {
    n = r.bytes(8, what).readBigUInt64LE(0);
    min = 0x100000000n;
  }
  if (n < min) r.fail('NON_CANONICAL', `${what}: non-canonical CompactSize`);
  return n;
}

export function writeCompactSize64(w: PayloadWriter, n: bigint): void {
  if (n < 0n || n > 0xffffffffffffffffn) throw new RangeError(`CompactSize out of range: ${n}`);
  if (n <= 0xffffffffn) w.compactSize(Number(n));
  else w.u8(0xff).u64(n);
}

/**
 * A bool byte. bitcoind reads any non-zero byte as true; a byte other than 0 or 1 is returned
 * as `odd` so that the message can be written back exactly (see writeBoolByte).
 */
export function readBoolByte(r: PayloadReader, what: string): { value: boolean; odd?: number } {
  const b = r.u8(what);
  return b > 1 ? { value: true, odd: b } : { value: b === 1 };
}

/** Writes `odd` when it still means `value` (non-zero is true), else 0 or 1. */
export function writeBoolByte(w: PayloadWriter, value: boolean, odd?: number): PayloadWriter {
  return w.u8(odd !== undefined && value && odd > 1 && odd <= 0xff ? odd : value ? 1 : 0);
}

/**
 * Absolute indexes in BIP152's differential encoding (bitcoind's DifferenceFormatter): each
 * CompactSize is the gap to the previous index minus one, and every index must fit in 16 bits.
 */
export function readDifferentialIndex(r: PayloadReader, previous: number, what: string): number {
  const index = previous + 1 + r.compactSize(what);
  if (index > 0xffff) r.fail('INVALID', `${what}: differential index overflows 16 bits (${index})`);
  return index;
}

export function writeDifferentialIndex(w: PayloadWriter, index: number, previous: number, command: string, what: string): void {
  if (!Number.isInteger(index) || index <= previous || index > 0xffff) {
    throw new PayloadError('INVALID', command, `${what}: indexes must be increasing integers up to 65535 (got ${index} after ${previous})`);
  }
  w.compactSize(index - previous - 1);
}

/** Reads one structure that must fill all of `buf` (any Uint8Array; no copy). */
export function readWhole<T>(buf: Uint8Array, command: string, read: (r: PayloadReader) => T): T {
  const r = new PayloadReader(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), command);
  const value = read(r);
  r.end();
  return value;
}
