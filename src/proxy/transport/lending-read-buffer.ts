/**
 * One reusable read buffer for a socket opened with `onread`: Node calls `next()` after every
 * read for the buffer of the following read. Reusing one buffer saves the per-read allocation,
 * but bytes still queued in a writable after a read point into it; then the buffer is "lent"
 * and the next read gets a fresh one instead of overwriting it.
 *
 * It starts small (an idle peer's handshake is a few hundred bytes, and thousands of idle peers
 * each holding 64 KB would be external memory the GC has to reckon with) and grows to `max`
 * once a read fills it: then the peer is sending in bulk.
 */
export class LendingReadBuffer {
  #buf: Buffer | null = null;
  #size: number;
  #lent = false;

  constructor(
    readonly max = 64 * 1024,
    initial = 4 * 1024,
  ) {
    this.#size = Math.min(initial, max);
  }

  /** for onread.buffer */
  readonly next = (): Buffer => {
    if (this.#lent || this.#buf === null || this.#buf.length !== this.#size) {
      this.#buf = Buffer.allocUnsafeSlow(this.#size);
      this.#lent = false;
    }
    return this.#buf;
  };

  /** The `n` bytes the last read put into `buf`, as a view (valid until the next read unless lent). */
  read(n: number, buf: Uint8Array): Buffer {
    if (n === buf.length && this.#size < this.max) this.#size = Math.min(this.max, this.#size * 4);
    return (buf as Buffer).subarray(0, n);
  }

  /** the bytes of the last read are still referenced (queued in a writable): do not reuse */
  lend(): void {
    this.#lent = true;
  }
}
