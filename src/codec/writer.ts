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
    const at = this.#room(1);
    this.#buf[at] = v;
    return this;
  }
  u16be(v: number): this {
    const at = this.#room(2);
    this.#buf.writeUInt16BE(v, at);
    return this;
  }
  u32(v: number): this {
    const at = this.#room(4);
    this.#buf.writeUInt32LE(v >>> 0, at);
    return this;
  }
  i32(v: number): this {
    const at = this.#room(4);
    this.#buf.writeInt32LE(v, at);
    return this;
  }
  u64(v: bigint): this {
    const at = this.#room(8);
    this.#buf.writeBigUInt64LE(v, at);
    return this;
  }
  i64(v: bigint): this {
    const at = this.#room(8);
    this.#buf.writeBigInt64LE(v, at);
    return this;
  }
  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }
  bytes(b: Uint8Array): this {
    const at = this.#room(b.length);
    this.#buf.set(b, at);
    return this;
  }
  compactSize(n: number): this {
    if (n < 0xfd) return this.u8(n);
    if (n <= 0xffff) {
      this.u8(0xfd);
      const at = this.#room(2);
      this.#buf.writeUInt16LE(n, at);
    } else if (n <= 0xffffffff) {
      this.u8(0xfe);
      const at = this.#room(4);
      this.#buf.writeUInt32LE(n, at);
    } else {
      this.u8(0xff);
      const at = this.#room(8);
      this.#buf.writeBigUInt64LE(BigInt(n), at);
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
