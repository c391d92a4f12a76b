import { PayloadError } from './errors.js';

/** bitcoind's MAX_SIZE: no CompactSize-prefixed length may exceed it (serialize.h). */
export const MAX_SIZE = 0x02000000;

/**
 * Cursor over one payload. Every read checks bounds and throws PayloadError naming the
 * command, so a decoder can never read past the payload or allocate from an unchecked length.
 */
export class PayloadReader {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    readonly command: string,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  fail(code: PayloadError['code'], message: string): never {
    throw new PayloadError(code, this.command, message);
  }

  #need(n: number, what: string): number {
    const at = this.pos;
    if (this.buf.length - at < n) this.fail('TRUNCATED', `payload ends inside ${what} at byte ${at} (need ${n}, have ${this.buf.length - at})`);
    this.pos = at + n;
    return at;
  }

  u8(what = 'uint8'): number {
    return this.buf[this.#need(1, what)]!;
  }
  u16be(what = 'uint16'): number {
    return this.buf.readUInt16BE(this.#need(2, what));
  }
  u32(what = 'uint32'): number {
    return this.buf.readUInt32LE(this.#need(4, what));
  }
  i32(what = 'int32'): number {
    return this.buf.readInt32LE(this.#need(4, what));
  }
  u64(what = 'uint64'): bigint {
    return this.buf.readBigUInt64LE(this.#need(8, what));
  }
  i64(what = 'int64'): bigint {
    return this.buf.readBigInt64LE(this.#need(8, what));
  }
  /** A view (no copy) of the next n bytes. */
  bytes(n: number, what = 'bytes'): Buffer {
    const at = this.#need(n, what);
    return this.buf.subarray(at, at + n);
  }
  bool(what = 'bool'): boolean {
    return this.u8(what) !== 0;
  }

  /** CompactSize, canonical only (bitcoind rejects non-shortest encodings), at most `max`. */
  compactSize(what = 'CompactSize', max = MAX_SIZE): number {
    const first = this.u8(what);
    let n: number;
    if (first < 0xfd) return checkMax(this, first, max, what);
    if (first === 0xfd) {
      n = this.buf.readUInt16LE(this.#need(2, what));
      if (n < 0xfd) this.fail('NON_CANONICAL', `${what}: non-canonical CompactSize`);
    } else if (first === 0xfe) {
      n = this.buf.readUInt32LE(this.#need(4, what));
      if (n < 0x10000) this.fail('NON_CANONICAL', `${what}: non-canonical CompactSize`);
    } else {
      const big = this.buf.readBigUInt64LE(this.#need(8, what));
      if (big < 0x100000000n) this.fail('NON_CANONICAL', `${what}: non-canonical CompactSize`);
      this.fail('LIMIT', `${what}: ${big} is above the limit of ${max}`);
    }
    return checkMax(this, n, max, what);
  }

  /** A CompactSize-prefixed byte string (a view), at most maxLen bytes. */
  varBytes(what = 'string', maxLen = MAX_SIZE): Buffer {
    const n = this.compactSize(`${what} length`, maxLen);
    return this.bytes(n, what);
  }

  /** A CompactSize-prefixed string, kept as latin1 so that any byte round-trips. */
  varString(what = 'string', maxLen = MAX_SIZE): string {
    return this.varBytes(what, maxLen).toString('latin1');
  }

  /** Ensures the structure consumed the whole payload. */
  end(): void {
    if (this.pos !== this.buf.length) this.fail('TRAILING_BYTES', `${this.buf.length - this.pos} unexpected bytes after the message at byte ${this.pos}`);
  }
}

function checkMax(r: PayloadReader, n: number, max: number, what: string): number {
  if (n > max) r.fail('LIMIT', `${what}: ${n} is above the limit of ${max}`);
  return n;
}
