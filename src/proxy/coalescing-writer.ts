import type { Socket } from 'node:net';

/**
 * Writes frames to a socket, merging frames that sit next to each other in memory (the usual
 * case: consecutive untouched frames of one socket read) into one write. On the fast path a
 * whole read becomes a single write, whatever the number of frames in it.
 */
export class CoalescingWriter {
  #ab: ArrayBufferLike | null = null;
  #start = 0;
  #end = 0;

  constructor(private readonly dst: Socket) {}

  add(raw: Buffer): void {
    if (this.#ab === raw.buffer && raw.byteOffset === this.#end) {
      this.#end += raw.length;
      return;
    }
    this.flush();
    this.#ab = raw.buffer;
    this.#start = raw.byteOffset;
    this.#end = raw.byteOffset + raw.length;
  }

  flush(): void {
    if (this.#ab === null) return;
    const len = this.#end - this.#start;
    const view = Buffer.from(this.#ab as ArrayBuffer, this.#start, len);
    this.#ab = null;
    if (!this.dst.destroyed) this.dst.write(view);
  }
}
