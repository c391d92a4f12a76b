import type { Socket } from 'node:net';

/**
 * Writes byte ranges to a socket, merging ranges that sit next to each other in memory (the usual
 * case: consecutive untouched frames of one socket read) into one write. On the fast path a
 * whole read becomes a single write, whatever the number of frames in it, and no Buffer is
 * made per frame: only one view per flush. When a read does yield several pieces (a frame
 * stored whole between cut-through ones, an injected frame), the socket is corked from the
 * second piece until flush(), so they still leave in one writev.
 */
export class CoalescingWriter {
  /** the Buffer the pending range was last extended from: the same one again is contiguous when `start` follows on */
  #buf: Buffer | null = null;
  #bufOffset = 0;
  #ab: ArrayBufferLike | null = null;
  /** the pending range, as offsets into #ab */
  #start = 0;
  #end = 0;
  #corked = false;

  constructor(private readonly dst: Socket) {}

  add(raw: Buffer): void {
    this.addRange(raw, 0, raw.length);
  }

  /** `buf[start..end)`; it must stay unchanged until flushed (and, once written, until the socket sent it). */
  addRange(buf: Buffer, start: number, end: number): void {
    if (buf === this.#buf && this.#bufOffset + start === this.#end) {
      this.#end = this.#bufOffset + end;
      return;
    }
    const ab = buf.buffer;
    const from = buf.byteOffset + start;
    if (ab === this.#ab && from === this.#end) {
      this.#buf = buf;
      this.#bufOffset = buf.byteOffset;
      this.#end = from + end - start;
      return;
    }
    if (this.#ab !== null) {
      if (!this.#corked) {
        this.#corked = true;
        this.dst.cork();
      }
      this.#write();
    }
    this.#ab = ab;
    this.#buf = buf;
    this.#bufOffset = buf.byteOffset;
    this.#start = from;
    this.#end = from + end - start;
  }

  flush(): void {
    if (this.#ab !== null) this.#write();
    if (this.#corked) {
      this.#corked = false;
      this.dst.uncork();
    }
  }

  #write(): void {
    const view = Buffer.from(this.#ab as ArrayBuffer, this.#start, this.#end - this.#start);
    this.#ab = null;
    this.#buf = null;
    if (!this.dst.destroyed && !this.dst.writableEnded) this.dst.write(view);
  }
}
