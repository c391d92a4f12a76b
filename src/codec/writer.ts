/** Growable payload builder; the counterpart of PayloadReader. */
export class PayloadWriter {
  #buf: Buffer;
  #len = 0;

  constructor(initial = 256) {
    this.#buf = Buffer.allocUnsafe(initial);
  }

  #room(n: number): number {
    const at = this.#len;
    if (at + n > this.#buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, at + n));
      this.#buf.copy(next, 0, 0, at);
      this.#buf = next;
    }
    this.#len = at + n;
    return at;
  }

  u8(v: number): this {
    this.#buf[this.#room(1)] = v;
    return this;
  }
  u16be(v: number): this {
    this.#buf.writeUInt16BE(v, this.#room(2));
    return this;
  }
  u32(v: number): this {
    this.#buf.writeUInt32LE(v >>> 0, this.#room(4));
    return this;
  }
  i32(v: number): this {
    this.#buf.writeInt32LE(v, this.#room(4));
    return this;
  }
  u64(v: bigint): this {
    this.#buf.writeBigUInt64LE(v, this.#room(8));
    return this;
  }
  i64(v: bigint): this {
    this.#buf.writeBigInt64LE(v, this.#room(8));
    return this;
  }
  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }
  bytes(b: Uint8Array): this {
    this.#buf.set(b, this.#room(b.length));
    return this;
  }
  compactSize(n: number): this {
    if (n < 0xfd) return this.u8(n);
    if (n <= 0xffff) {
      this.u8(0xfd);
      this.#buf.writeUInt16LE(n, this.#room(2));
    } else if (n <= 0xffffffff) {
      this.u8(0xfe);
      this.#buf.writeUInt32LE(n, this.#room(4));
    } else {
      this.u8(0xff);
      this.#buf.writeBigUInt64LE(BigInt(n), this.#room(8));
    }
    return this;
  }
  varBytes(b: Uint8Array): this {
    return this.compactSize(b.length).bytes(b);
  }
  varString(s: string): this {
    return this.varBytes(Buffer.from(s, 'latin1'));
  }

  /** The bytes written so far (a copy sized exactly). */
  finish(): Buffer {
    return Buffer.from(this.#buf.subarray(0, this.#len));
  }
}
