import type { Socket } from 'node:net';

/**
 * Writes byte ranges to a socket, merging ranges that sit next to each other in memory (the usual
 * case: consecutive untouched frames of one socket read) into one write. On the fast path a
 * whole read becomes a single write, whatever the number of frames in it, and no Buffer is
 * made per frame: only one view per flush.
 */
export class CoalescingWriter {
  #ab: ArrayBufferLike | null = null;
  #start = 0;
  #end = 0;

  constructor(private readonly dst: Socket) {}

  add(raw: Buffer): void {
    this.addRange(raw, 0, raw.length);
  }

  /** `buf[start..end)`; it must stay unchanged until flushed (and, once written, until the socket sent it). */
  addRange(buf: Buffer, start: number, end: number): void {
    const from = buf.byteOffset + start;
    if (this.#ab === buf.buffer && from === this.#end) {
      this.#end += end - start;
      return;
    }
    this.flush();
    this.#ab = buf.buffer;
    this.#start = from;
    this.#end = buf.byteOffset + end;
  }

  flush(): void {
    if (this.#ab === null) return;
    const len = this.#end - this.#start;
    const view = Buffer.from(this.#ab as ArrayBuffer, this.#start, len);
    this.#ab = null;
    if (!this.dst.destroyed && !this.dst.writableEnded) this.dst.write(view);
  }
}
